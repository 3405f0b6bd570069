//! FROST key generation and signing with the test playing the server: every message crosses
//! it as JSON, and the guardians get only what the server relays.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use haven_vault::threshold::{
    Commitment, DeviceRng, DkgAwaitingShares, DkgEnvelope, DkgParticipant, DkgPhase, DkgRound,
    DkgRound1, GroupKey, KeyShare, Participant, RoundId, SessionId, SignatureShare,
    SigningAttempts, SigningPhase, SigningRound, ThresholdError, commit, sign,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

mod properties;

/// The server's view: every message it relayed, as JSON.
#[derive(Default)]
struct Relay {
    seen: Vec<Value>,
}

impl Relay {
    /// Sends `message` through the server: to JSON and back.
    fn pass<T: Serialize + DeserializeOwned>(&mut self, message: &T) -> T {
        let value = serde_json::to_value(message).unwrap();
        self.seen.push(value.clone());
        serde_json::from_value(value).unwrap()
    }
}

fn p(number: u16) -> Participant {
    Participant(number)
}

fn set(numbers: &[u16]) -> BTreeSet<Participant> {
    numbers.iter().copied().map(Participant).collect()
}

/// A key generation after round 1: each guardian's state and what the server broadcast.
struct Started {
    session: SessionId,
    devices: BTreeMap<Participant, SigningKey>,
    device_keys: BTreeMap<Participant, VerifyingKey>,
    states: Vec<DkgParticipant>,
    broadcast: BTreeMap<Participant, DkgRound1>,
    /// The server's round before any message.
    fresh: DkgRound,
    dkg: DkgRound,
    relay: Relay,
    now: DateTime<Utc>,
}

fn start(n: u16, t: u16) -> Started {
    let now = Utc::now();
    let devices: BTreeMap<_, _> = (1..=n)
        .map(|i| (p(i), SigningKey::from_bytes(&rand::random::<[u8; 32]>())))
        .collect();
    let device_keys: BTreeMap<_, _> = devices
        .iter()
        .map(|(i, key)| (*i, key.verifying_key()))
        .collect();
    let session = SessionId::generate();
    let mut dkg =
        DkgRound::new(session, t, device_keys.clone(), now + Duration::minutes(10)).unwrap();
    let fresh = dkg.clone();
    let mut relay = Relay::default();
    let mut states = Vec::new();
    let mut broadcast = None;
    for (i, device) in &devices {
        let (state, message) =
            DkgParticipant::start(session, *i, n, t, device, &mut DeviceRng).unwrap();
        assert!(broadcast.is_none());
        broadcast = dkg.accept_round1(*i, relay.pass(&message), now).unwrap();
        states.push(state);
    }
    Started {
        session,
        devices,
        device_keys,
        states,
        broadcast: broadcast.unwrap(),
        fresh,
        dkg,
        relay,
        now,
    }
}

/// A key generation after round 2: each guardian waiting for its envelopes, and the
/// envelopes the server relays to each.
struct Exchanged {
    started: Started,
    waiting: BTreeMap<Participant, DkgAwaitingShares>,
    inbox: BTreeMap<Participant, Vec<DkgEnvelope>>,
    snapshots: Vec<DkgRound>,
}

fn exchange(mut started: Started) -> Exchanged {
    let mut snapshots = vec![started.fresh.clone(), started.dkg.clone()];
    let mut waiting = BTreeMap::new();
    let mut inbox = None;
    for state in std::mem::take(&mut started.states) {
        let me = state.participant();
        let broadcast = started.relay.pass(&started.broadcast);
        let (state, envelopes) = state
            .receive_round1(&broadcast, &started.device_keys)
            .unwrap();
        assert_eq!(envelopes.len(), started.devices.len() - 1);
        let sent = started.relay.pass(&envelopes);
        inbox = started.dkg.accept_round2(me, sent, started.now).unwrap();
        waiting.insert(me, state);
    }
    snapshots.push(started.dkg.clone());
    Exchanged {
        started,
        waiting,
        inbox: inbox.unwrap(),
        snapshots,
    }
}

/// A generated group: the guardians' key shares and the agreed group key.
struct Group {
    devices: BTreeMap<Participant, SigningKey>,
    shares: BTreeMap<Participant, KeyShare>,
    key: GroupKey,
    dkg: DkgRound,
    /// The server's round before round 1, before round 2 and before the results.
    snapshots: Vec<DkgRound>,
    relay: Relay,
}

fn generate(n: u16, t: u16) -> Group {
    let Exchanged {
        mut started,
        waiting,
        mut inbox,
        snapshots,
    } = exchange(start(n, t));
    let mut shares = BTreeMap::new();
    let mut agreed = None;
    for (me, state) in waiting {
        let mine = started.relay.pass(&inbox.remove(&me).unwrap());
        let (share, key) = state.finish(&mine).unwrap();
        assert_eq!(share.participant(), me);
        assert_eq!(share.group_verifying_key(), key.verifying_key());
        agreed = started
            .dkg
            .accept_result(me, started.relay.pass(&key), started.now)
            .unwrap();
        shares.insert(me, share);
    }
    let key = agreed.unwrap();
    assert_eq!(started.dkg.phase(started.now), DkgPhase::Complete);
    assert_eq!(started.dkg.group_key(), Some(&key));
    Group {
        devices: started.devices,
        shares,
        key,
        dkg: started.dkg,
        snapshots,
        relay: started.relay,
    }
}

fn signing_round(group: &Group, round: RoundId, signers: &[u16], message: &[u8]) -> SigningRound {
    let deadline = Utc::now() + Duration::minutes(5);
    SigningRound::new(
        round,
        group.key.clone(),
        message.to_vec(),
        set(signers),
        deadline,
    )
    .unwrap()
}

/// One attempt by `signers` with every signer answering; returns the round and signature.
fn sign_all(
    group: &mut Group,
    round: RoundId,
    signers: &[u16],
    message: &[u8],
) -> (SigningRound, [u8; 64]) {
    let now = Utc::now();
    let mut signing = signing_round(group, round, signers, message);
    let mut nonces = BTreeMap::new();
    let mut package = None;
    for &i in signers {
        let (secret, commitment) = commit(&group.shares[&p(i)], round, &mut DeviceRng).unwrap();
        nonces.insert(p(i), secret);
        let relayed = group.relay.pass(&commitment);
        package = signing.accept_commitment(p(i), relayed, now).unwrap();
    }
    let package = package.unwrap();
    let mut signature = None;
    for (i, secret) in nonces {
        let received = group.relay.pass(&package);
        assert_eq!(received.message().unwrap(), message);
        let share = sign(&group.shares[&i], secret, &received).unwrap();
        signature = signing
            .accept_share(i, group.relay.pass(&share), now)
            .unwrap();
    }
    assert_eq!(signing.phase(now), SigningPhase::Complete);
    (signing, signature.unwrap())
}

fn verifies(key: &GroupKey, message: &[u8], signature: &[u8; 64]) -> bool {
    VerifyingKey::from_bytes(&key.verifying_key())
        .unwrap()
        .verify_strict(message, &Signature::from_bytes(signature))
        .is_ok()
}

fn round(attempt: u32) -> RoundId {
    RoundId {
        session: SessionId::generate(),
        attempt,
    }
}

#[test]
fn two_of_three_generate_a_key_and_any_two_sign() {
    let mut group = generate(3, 2);
    let message = b"haven-vault/v1/release\0request 42";
    for signers in [[1, 2], [1, 3], [2, 3]] {
        let (_, signature) = sign_all(&mut group, round(1), &signers, message);
        assert!(verifies(&group.key, message, &signature), "{signers:?}");
        assert!(!verifies(&group.key, b"another message", &signature));
    }
    // all three may sign too
    let (_, signature) = sign_all(&mut group, round(1), &[1, 2, 3], message);
    assert!(verifies(&group.key, message, &signature));
    for share in group.shares.values() {
        assert_eq!(share.threshold(), 2);
    }
}

#[test]
fn a_key_share_survives_device_storage_and_never_shows_in_debug() {
    let mut group = generate(3, 2);
    let share = group.shares.remove(&p(2)).unwrap();
    let secret = signing_share_bytes(&share);
    let stored = serde_json::to_string(&share).unwrap();
    let debug = format!("{share:?}");
    assert!(debug.contains("redacted"));
    for form in [hex::encode(&secret), STANDARD.encode(&secret)] {
        assert!(!debug.contains(&form));
    }
    let restored: KeyShare = serde_json::from_str(&stored).unwrap();
    assert_eq!(restored.participant(), p(2));
    group.shares.insert(p(2), restored);
    let (_, signature) = sign_all(&mut group, round(1), &[2, 3], b"after restore");
    assert!(verifies(&group.key, b"after restore", &signature));

    // stored under another participant's number, it does not load
    let mut other: Value = serde_json::from_str(&stored).unwrap();
    other["participant"] = json!(1);
    assert!(serde_json::from_value::<KeyShare>(other).is_err());
}

#[test]
fn a_silent_signer_times_out_and_a_bounded_retry_succeeds() {
    let group = generate(3, 2);
    let message = b"withdraw 5000000";
    let mut attempts = SigningAttempts::new(2);
    let session = SessionId::generate();
    let t0 = Utc::now();
    let deadline = t0 + Duration::seconds(60);
    let late = deadline + Duration::seconds(1);

    let first = RoundId {
        session,
        attempt: attempts.next_attempt().unwrap(),
    };
    let mut signing = SigningRound::new(
        first,
        group.key.clone(),
        message.to_vec(),
        set(&[1, 2]),
        deadline,
    )
    .unwrap();
    let (n1, c1) = commit(&group.shares[&p(1)], first, &mut DeviceRng).unwrap();
    let (n2, c2) = commit(&group.shares[&p(2)], first, &mut DeviceRng).unwrap();
    assert!(signing.accept_commitment(p(1), c1, t0).unwrap().is_none());
    let package = signing.accept_commitment(p(2), c2, t0).unwrap().unwrap();
    let s1 = sign(&group.shares[&p(1)], n1, &package).unwrap();
    assert!(signing.accept_share(p(1), s1, t0).unwrap().is_none());
    // participant 2 goes quiet; its share arrives after the deadline
    let s2 = sign(&group.shares[&p(2)], n2, &package).unwrap();
    assert_eq!(signing.phase(late), SigningPhase::TimedOut);
    assert_eq!(
        signing.accept_share(p(2), s2.clone(), late),
        Err(ThresholdError::TimedOut)
    );
    assert_eq!(signing.phase(t0), SigningPhase::TimedOut); // stays timed out
    assert_eq!(
        signing.accept_share(p(2), s2.clone(), t0),
        Err(ThresholdError::TimedOut)
    );
    assert_eq!(signing.signature(), None);
    assert_eq!(signing.missing(), set(&[2]));

    // attempt 2 leaves the silent signer out
    let second = RoundId {
        session,
        attempt: attempts.next_attempt().unwrap(),
    };
    assert_eq!(second.attempt, 2);
    let signers: Vec<u16> = set(&[1, 2, 3])
        .difference(&signing.missing())
        .map(|p| p.0)
        .collect();
    let mut retry = signing_round(&group, second, &signers, message);
    // a message of attempt 1 is refused by attempt 2
    let (_, stale) = commit(&group.shares[&p(1)], first, &mut DeviceRng).unwrap();
    assert!(matches!(
        retry.accept_commitment(p(1), stale, Utc::now()),
        Err(ThresholdError::WrongRound { .. })
    ));
    let mut nonces = BTreeMap::new();
    let mut package = None;
    for &i in &signers {
        let (secret, commitment) = commit(&group.shares[&p(i)], second, &mut DeviceRng).unwrap();
        nonces.insert(i, secret);
        package = retry
            .accept_commitment(p(i), commitment, Utc::now())
            .unwrap();
    }
    let package = package.unwrap();
    // attempt 1's share does not count in attempt 2
    assert!(matches!(
        retry.accept_share(p(1), s2, Utc::now()),
        Err(ThresholdError::WrongRound { .. })
    ));
    let mut signature = None;
    for (i, secret) in nonces {
        let share = sign(&group.shares[&p(i)], secret, &package).unwrap();
        signature = retry.accept_share(p(i), share, Utc::now()).unwrap();
    }
    assert!(verifies(&group.key, message, &signature.unwrap()));

    // the cap is 2: a third attempt is refused
    assert_eq!(
        attempts.next_attempt(),
        Err(ThresholdError::AttemptsExhausted { cap: 2 })
    );
}

#[test]
fn nonces_serve_only_their_own_round() {
    let group = generate(3, 2);
    let a = round(1);
    let b = round(1);
    let mut signing = signing_round(&group, b, &[1, 2], b"m");
    let (_, c1) = commit(&group.shares[&p(1)], b, &mut DeviceRng).unwrap();
    let (_, c2) = commit(&group.shares[&p(2)], b, &mut DeviceRng).unwrap();
    signing.accept_commitment(p(1), c1, Utc::now()).unwrap();
    let package = signing
        .accept_commitment(p(2), c2, Utc::now())
        .unwrap()
        .unwrap();
    let (for_a, _) = commit(&group.shares[&p(1)], a, &mut DeviceRng).unwrap();
    assert_eq!(
        sign(&group.shares[&p(1)], for_a, &package),
        Err(ThresholdError::NoncesMismatch)
    );
    // nonces of the right round but not the commitment in the package
    let (fresh, _) = commit(&group.shares[&p(1)], b, &mut DeviceRng).unwrap();
    assert!(matches!(
        sign(&group.shares[&p(1)], fresh, &package),
        Err(ThresholdError::MalformedRelay(_))
    ));
}

#[test]
fn a_round1_message_not_signed_by_its_device_is_refused() {
    let tampers: [fn(&mut DkgRound1, &SigningKey); 3] = [
        // a flipped signature bit
        |message, _| message.signature[0] ^= 1,
        // the server substitutes an exchange key
        |message, _| {
            message.exchange_keys.insert(p(1), [9u8; 32]);
        },
        // another device signed it
        |message, other| {
            message.signature =
                ed25519_dalek::Signer::sign(other, &message.signed_bytes()).to_bytes();
        },
    ];
    for tamper in tampers {
        let started = start(3, 2);
        let mut broadcast = started.broadcast.clone();
        tamper(broadcast.get_mut(&p(2)).unwrap(), &started.devices[&p(3)]);
        let one = started.states.into_iter().next().unwrap();
        assert_eq!(one.participant(), p(1));
        let refused = one.receive_round1(&broadcast, &started.device_keys);
        assert_eq!(
            refused.err(),
            Some(ThresholdError::BadDeviceSignature(p(2)))
        );
        // the server refuses it as well
        let deadline = started.now + Duration::minutes(1);
        let mut fresh =
            DkgRound::new(started.session, 2, started.device_keys.clone(), deadline).unwrap();
        assert_eq!(
            fresh.accept_round1(p(2), broadcast[&p(2)].clone(), started.now),
            Err(ThresholdError::BadDeviceSignature(p(2)))
        );
    }
}

#[test]
fn a_guardian_refuses_round1_sets_that_are_incomplete_or_change_its_own_message() {
    let started = start(3, 2);
    let mut states = started.states.into_iter();
    let mut missing = started.broadcast.clone();
    missing.remove(&p(3));
    let refused = states
        .next()
        .unwrap()
        .receive_round1(&missing, &started.device_keys);
    assert_eq!(refused.err(), Some(ThresholdError::Missing(p(3))));

    let mut mine_changed = started.broadcast.clone();
    mine_changed.insert(p(2), started.broadcast[&p(3)].clone());
    let refused = states
        .next()
        .unwrap()
        .receive_round1(&mine_changed, &started.device_keys);
    assert_eq!(refused.err(), Some(ThresholdError::OwnMessageAltered));

    let mut no_key = started.device_keys.clone();
    no_key.remove(&p(1));
    let refused = states
        .next()
        .unwrap()
        .receive_round1(&started.broadcast, &no_key);
    assert_eq!(refused.err(), Some(ThresholdError::MissingDeviceKey(p(1))));
}

#[test]
fn an_envelope_opens_only_for_its_recipient_and_unaltered() {
    // participant 3 gets the envelope 1 → 2, as addressed and readdressed to itself
    let mut exchanged = exchange(start(3, 2));
    let for_two = exchanged.inbox[&p(2)]
        .iter()
        .find(|e| e.from == p(1))
        .unwrap()
        .clone();
    let mut inbox = exchanged.inbox[&p(3)].clone();
    inbox.retain(|e| e.from != p(1));
    let mut wrong = inbox.clone();
    wrong.push(for_two.clone());
    let three = exchanged.waiting.remove(&p(3)).unwrap();
    assert!(matches!(
        three.finish(&wrong),
        Err(ThresholdError::Malformed { from, .. }) if from == p(1)
    ));

    let mut exchanged = exchange(start(3, 2));
    let for_two = exchanged.inbox[&p(2)][0].clone();
    let mut readdressed = for_two.clone();
    readdressed.to = p(3);
    let mut inbox = exchanged.inbox[&p(3)].clone();
    inbox.retain(|e| e.from != for_two.from);
    inbox.push(readdressed);
    let three = exchanged.waiting.remove(&p(3)).unwrap();
    assert_eq!(
        three.finish(&inbox).err(),
        Some(ThresholdError::Decryption { from: for_two.from })
    );

    // one flipped ciphertext bit
    let mut exchanged = exchange(start(3, 2));
    let mut inbox = exchanged.inbox[&p(2)].clone();
    let from = inbox[0].from;
    let last = inbox[0].ciphertext.len() - 1;
    inbox[0].ciphertext[last] ^= 0x80;
    let two = exchanged.waiting.remove(&p(2)).unwrap();
    assert_eq!(
        two.finish(&inbox).err(),
        Some(ThresholdError::Decryption { from })
    );

    // an envelope missing, or twice
    let mut exchanged = exchange(start(3, 2));
    let mut inbox = exchanged.inbox[&p(1)].clone();
    let dropped = inbox.pop().unwrap();
    let one = exchanged.waiting.remove(&p(1)).unwrap();
    assert_eq!(
        one.finish(&inbox).err(),
        Some(ThresholdError::Missing(dropped.from))
    );
    let mut doubled = exchanged.inbox[&p(2)].clone();
    doubled.push(doubled[0].clone());
    let two = exchanged.waiting.remove(&p(2)).unwrap();
    assert_eq!(
        two.finish(&doubled).err(),
        Some(ThresholdError::Duplicate(doubled[0].from))
    );
}

#[test]
fn a_corrupted_signature_share_fails_aggregation_naming_its_signer() {
    let group = generate(3, 2);
    let now = Utc::now();
    let id = round(1);
    let mut signing = signing_round(&group, id, &[1, 2, 3], b"pay out");
    let mut nonces = BTreeMap::new();
    let mut package = None;
    for i in 1..=3 {
        let (secret, c) = commit(&group.shares[&p(i)], id, &mut DeviceRng).unwrap();
        nonces.insert(i, secret);
        package = signing.accept_commitment(p(i), c, now).unwrap();
    }
    let package = package.unwrap();
    let mut outcome = None;
    for (i, secret) in nonces {
        let mut share = sign(&group.shares[&p(i)], secret, &package).unwrap();
        if i == 2 {
            share.share[0] ^= 1; // still a canonical scalar, no longer the right one
        }
        outcome = Some(signing.accept_share(p(i), share, now));
    }
    assert_eq!(
        outcome.unwrap(),
        Err(ThresholdError::InvalidSignatureShares {
            culprits: vec![p(2)]
        })
    );
    assert_eq!(signing.phase(now), SigningPhase::Failed);
    assert_eq!(signing.signature(), None);
}

#[test]
fn the_server_refuses_messages_out_of_turn() {
    let group = generate(3, 2);
    let now = Utc::now();
    let id = round(1);
    let mut signing = signing_round(&group, id, &[1, 2], b"m");
    let (n1, c1) = commit(&group.shares[&p(1)], id, &mut DeviceRng).unwrap();
    let (_, c3) = commit(&group.shares[&p(3)], id, &mut DeviceRng).unwrap();
    // not a chosen signer; a commitment naming someone else; a share before the package
    assert_eq!(
        signing.accept_commitment(p(3), c3.clone(), now),
        Err(ThresholdError::UnknownParticipant(p(3)))
    );
    assert_eq!(
        signing.accept_commitment(p(2), c1.clone(), now),
        Err(ThresholdError::SenderMismatch {
            from: p(2),
            claimed: p(1)
        })
    );
    let early = SignatureShare {
        round: id,
        from: p(1),
        share: [0u8; 32],
    };
    assert!(matches!(
        signing.accept_share(p(1), early, now),
        Err(ThresholdError::WrongPhase { .. })
    ));
    signing.accept_commitment(p(1), c1.clone(), now).unwrap();
    assert_eq!(
        signing.accept_commitment(p(1), c1.clone(), now),
        Err(ThresholdError::Duplicate(p(1)))
    );
    let garbage = Commitment {
        commitments: vec![1, 2, 3],
        ..c1.clone()
    };
    let mut other = signing.clone();
    assert!(matches!(
        other.accept_commitment(
            p(2),
            Commitment {
                from: p(2),
                ..garbage
            },
            now
        ),
        Err(ThresholdError::Malformed { .. })
    ));
    let (_, c2) = commit(&group.shares[&p(2)], id, &mut DeviceRng).unwrap();
    let package = signing.accept_commitment(p(2), c2, now).unwrap().unwrap();
    assert!(matches!(
        signing.accept_commitment(p(2), c1, now),
        Err(ThresholdError::WrongPhase { .. })
    ));
    let share = sign(&group.shares[&p(1)], n1, &package).unwrap();
    signing.accept_share(p(1), share.clone(), now).unwrap();
    assert_eq!(
        signing.accept_share(p(1), share, now),
        Err(ThresholdError::Duplicate(p(1)))
    );

    // too few signers, strangers, attempt 0
    let key = group.key.clone();
    let later = now + Duration::minutes(1);
    assert!(SigningRound::new(id, key.clone(), vec![], set(&[1]), later).is_err());
    assert!(SigningRound::new(id, key.clone(), vec![], set(&[1, 4]), later).is_err());
    assert!(SigningRound::new(round(0), key, vec![], set(&[1, 2]), later).is_err());
}

#[test]
fn the_key_generation_refuses_strangers_repeats_and_disagreement() {
    let mut started = start(3, 2);
    let now = started.now;
    // the round moved on to round 2: round-1 messages are out of turn
    let again = started.broadcast[&p(1)].clone();
    assert!(matches!(
        started.dkg.accept_round1(p(1), again, now),
        Err(ThresholdError::WrongPhase { .. })
    ));
    assert_eq!(
        started.dkg.accept_round2(p(4), vec![], now),
        Err(ThresholdError::UnknownParticipant(p(4)))
    );
    assert!(matches!(
        started.dkg.accept_round2(p(1), vec![], now),
        Err(ThresholdError::Malformed { .. })
    ));
    let fresh = DkgRound::new(SessionId::generate(), 2, started.device_keys.clone(), now);
    assert!(fresh.is_ok());
    let mut keys = started.device_keys.clone();
    keys.insert(p(5), keys[&p(1)]);
    assert!(DkgRound::new(SessionId::generate(), 2, keys, now).is_err());
    assert!(DkgRound::new(SessionId::generate(), 4, started.device_keys.clone(), now).is_err());

    // results: participant 2 reports another group's key
    let group = generate(3, 2);
    let other = generate(3, 2);
    let mut dkg = group.snapshots[2].clone();
    dkg.accept_result(p(1), group.key.clone(), now).unwrap();
    assert_eq!(
        dkg.accept_result(p(2), other.key.clone(), now),
        Err(ThresholdError::GroupKeyMismatch { from: p(2) })
    );
    assert_eq!(dkg.phase(now), DkgPhase::Failed);
    assert_eq!(
        dkg.accept_result(p(3), group.key.clone(), now),
        Err(ThresholdError::Failed)
    );
    // a 2-of-3 key is not a key of a 3-of-3 round
    let three = generate(3, 3);
    let mut dkg = group.snapshots[2].clone();
    assert!(matches!(
        dkg.accept_result(p(1), three.key, now),
        Err(ThresholdError::Malformed { .. })
    ));
    // past the deadline nothing is accepted
    let mut dkg = group.snapshots[2].clone();
    let late = dkg.deadline();
    assert_eq!(dkg.missing(), set(&[1, 2, 3]));
    assert_eq!(
        dkg.accept_result(p(1), group.key.clone(), late),
        Err(ThresholdError::TimedOut)
    );
    assert_eq!(dkg.phase(now), DkgPhase::TimedOut);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

fn signing_share_bytes(share: &KeyShare) -> Vec<u8> {
    let stored = serde_json::to_value(share).unwrap();
    let bytes = STANDARD
        .decode(stored["key_package"].as_str().unwrap())
        .unwrap();
    let package = frost_ed25519::keys::KeyPackage::deserialize(&bytes).unwrap();
    let secret = package.signing_share().serialize();
    assert!(contains(&bytes, &secret));
    secret
}
