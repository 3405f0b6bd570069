//! What the server holds, and every server round and parser fed random input.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use haven_vault::threshold::{
    Commitment, DeviceRng, DkgEnvelope, DkgRound1, GroupKey, KeyShare, Participant, SignatureShare,
    SigningPackage, SigningRound, ThresholdError, commit, sign,
};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::{
    Group, contains, generate, p, round, set, sign_all, signing_round, signing_share_bytes,
    verifies,
};

/// Every byte string in `value`: the strings themselves and whatever decodes from base64
/// or hex.
fn byte_strings(value: &Value, out: &mut Vec<Vec<u8>>) {
    match value {
        Value::String(text) => {
            out.push(text.as_bytes().to_vec());
            out.extend(STANDARD.decode(text).ok());
            out.extend(hex::decode(text).ok());
        }
        Value::Array(items) => items.iter().for_each(|item| byte_strings(item, out)),
        Value::Object(map) => {
            for (key, item) in map {
                out.push(key.as_bytes().to_vec());
                byte_strings(item, out);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[test]
fn nothing_the_server_holds_or_relays_contains_a_signing_share() {
    let mut group = generate(3, 2);
    let (signing, _) = sign_all(&mut group, round(1), &[1, 3], b"audit me");
    let mut server_side = group.relay.seen.clone();
    server_side.push(serde_json::to_value(&group.dkg).unwrap());
    server_side.push(serde_json::to_value(&signing).unwrap());
    let mut blobs = Vec::new();
    for value in &server_side {
        byte_strings(value, &mut blobs);
    }
    assert!(blobs.len() > 50, "the server saw {} strings", blobs.len());
    for share in group.shares.values() {
        let secret = signing_share_bytes(share);
        for blob in &blobs {
            assert!(
                !contains(blob, &secret),
                "participant {}",
                share.participant()
            );
        }
    }
    let devices: Vec<Vec<u8>> = group
        .devices
        .values()
        .map(|d| d.to_bytes().to_vec())
        .collect();
    for blob in &blobs {
        assert!(devices.iter().all(|secret| !contains(blob, secret)));
    }
}

/// Server rounds in each phase, and a group, for the property tests.
struct Fixture {
    group: Group,
    committing: SigningRound,
    signing: SigningRound,
    valid: Vec<Value>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut group = generate(3, 2);
        let id = round(1);
        let (_, valid_round) = sign_all(&mut group, id, &[1, 2], b"fixture");
        assert!(verifies(&group.key, b"fixture", &valid_round));
        let now = Utc::now();
        let mut committing = signing_round(&group, id, &[1, 2], b"fuzzed");
        let (n1, c1) = commit(&group.shares[&p(1)], id, &mut DeviceRng).unwrap();
        let (_, c2) = commit(&group.shares[&p(2)], id, &mut DeviceRng).unwrap();
        committing.accept_commitment(p(1), c1, now).unwrap();
        let mut signing = committing.clone();
        let package = signing.accept_commitment(p(2), c2, now).unwrap().unwrap();
        signing
            .accept_share(p(1), sign(&group.shares[&p(1)], n1, &package).unwrap(), now)
            .unwrap();
        let valid = group.relay.seen.clone();
        Fixture {
            group,
            committing,
            signing,
            valid,
        }
    })
}

/// Feeds `value`, parsed as each message type, to every server round that takes it, and
/// to the guardian-side parsers: nothing may panic.
fn feed(value: &Value, from: Participant) {
    let fx = fixture();
    let now = Utc::now();
    if let Ok(message) = serde_json::from_value::<DkgRound1>(value.clone()) {
        let _ = fx.group.snapshots[0]
            .clone()
            .accept_round1(from, message, now);
    }
    if let Ok(envelopes) = serde_json::from_value::<Vec<DkgEnvelope>>(value.clone()) {
        let _ = fx.group.snapshots[1]
            .clone()
            .accept_round2(from, envelopes, now);
    }
    if let Ok(key) = serde_json::from_value::<GroupKey>(value.clone()) {
        let _ = fx.group.snapshots[2]
            .clone()
            .accept_result(from, key.clone(), now);
        let _ = SigningRound::new(round(1), key, vec![], set(&[1, 2]), now);
    }
    if let Ok(commitment) = serde_json::from_value::<Commitment>(value.clone()) {
        let _ = fx
            .committing
            .clone()
            .accept_commitment(from, commitment, now);
    }
    if let Ok(share) = serde_json::from_value::<SignatureShare>(value.clone()) {
        let _ = fx.signing.clone().accept_share(from, share, now);
    }
    if let Ok(package) = serde_json::from_value::<SigningPackage>(value.clone()) {
        let _ = package.message();
    }
    let _ = serde_json::from_value::<KeyShare>(value.clone());
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (0u16..6).prop_map(|n| json!(n)),
        "\\PC{0,12}".prop_map(Value::String),
        "[0-9a-f]{0,130}".prop_map(Value::String),
        "[A-Za-z0-9+/]{0,90}={0,2}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,15}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// How to alter one leaf of a valid message, keeping its type most of the time so that
/// the altered message still parses and reaches the rounds' checks.
#[derive(Debug, Clone)]
struct Change {
    mask: Vec<u8>,
    number: u64,
    any: Option<Value>,
}

fn change() -> impl Strategy<Value = Change> {
    (
        prop::collection::vec(any::<u8>(), 0..80),
        prop_oneof![0u64..8, any::<u64>()],
        prop::option::weighted(0.2, json_value()),
    )
        .prop_map(|(mask, number, any)| Change { mask, number, any })
}

/// Bytes xor-ed with the mask (cycled), or cut or extended, by `number`.
fn altered_bytes(mut bytes: Vec<u8>, change: &Change) -> Vec<u8> {
    match change.number % 3 {
        0 if !change.mask.is_empty() => {
            for (byte, mask) in bytes.iter_mut().zip(change.mask.iter().cycle()) {
                *byte ^= mask;
            }
        }
        1 => bytes.truncate(usize::try_from(change.number).unwrap_or(0) % (bytes.len() + 1)),
        _ => bytes.extend_from_slice(&change.mask),
    }
    bytes
}

/// A valid message of the fixture with one leaf (at any depth) altered.
fn mutated(mut value: Value, pick: usize, change: &Change) -> Value {
    fn leaves(value: &mut Value) -> Vec<&mut Value> {
        match value {
            Value::Object(map) => map.values_mut().flat_map(leaves).collect(),
            Value::Array(items) => items.iter_mut().flat_map(leaves).collect(),
            other => vec![other],
        }
    }
    let mut all = leaves(&mut value);
    if all.is_empty() {
        return value;
    }
    let count = all.len();
    let leaf = &mut *all[pick % count];
    *leaf = match (&change.any, &*leaf) {
        (Some(any), _) => any.clone(),
        (None, Value::String(text)) => {
            if let Ok(bytes) = hex::decode(text) {
                json!(hex::encode(altered_bytes(bytes, change)))
            } else if let Ok(bytes) = STANDARD.decode(text) {
                json!(STANDARD.encode(altered_bytes(bytes, change)))
            } else {
                json!(uuid::Uuid::from_u64_pair(change.number, change.number).to_string())
            }
        }
        (None, _) => json!(change.number),
    };
    value
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_only_ever_fail_to_parse(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        prop_assert!(serde_json::from_slice::<DkgRound1>(&bytes).is_err());
        prop_assert!(serde_json::from_slice::<DkgEnvelope>(&bytes).is_err());
        prop_assert!(serde_json::from_slice::<GroupKey>(&bytes).is_err());
        prop_assert!(serde_json::from_slice::<Commitment>(&bytes).is_err());
        prop_assert!(serde_json::from_slice::<SigningPackage>(&bytes).is_err());
        prop_assert!(serde_json::from_slice::<SignatureShare>(&bytes).is_err());
        prop_assert!(serde_json::from_slice::<KeyShare>(&bytes).is_err());
    }

    #[test]
    fn random_json_never_panics_a_parser_or_a_round(value in json_value(), from in 0u16..6) {
        feed(&value, Participant(from));
    }

    #[test]
    fn altered_valid_messages_never_panic_a_round(
        index in any::<prop::sample::Index>(),
        pick in any::<usize>(),
        change in change(),
        from in 0u16..6,
    ) {
        let valid = &fixture().valid;
        let original = valid[index.index(valid.len())].clone();
        feed(&mutated(original, pick, &change), Participant(from));
    }

    #[test]
    fn random_share_and_commitment_bytes_are_refused(
        share in any::<[u8; 32]>(),
        commitments in prop::collection::vec(any::<u8>(), 0..200),
        signature in prop::collection::vec(any::<u8>(), 64),
        exchange in any::<[u8; 32]>(),
    ) {
        let fx = fixture();
        let now = Utc::now();
        let id = fx.signing.round();
        let share = SignatureShare { round: id, from: p(2), share };
        prop_assert!(fx.signing.clone().accept_share(p(2), share, now).is_err());
        let commitment = Commitment { round: id, from: p(2), commitments };
        prop_assert!(fx.committing.clone().accept_commitment(p(2), commitment, now).is_err());
        let mut message: DkgRound1 = serde_json::from_value(fx.valid[0].clone()).unwrap();
        message.signature.copy_from_slice(&signature);
        message.exchange_keys.insert(Participant(2), exchange);
        let from = message.from;
        prop_assert_eq!(
            fx.group.snapshots[0].clone().accept_round1(from, message, now),
            Err(ThresholdError::BadDeviceSignature(from))
        );
    }
}
