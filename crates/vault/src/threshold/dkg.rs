//! Key generation on a guardian's device: FROST's distributed key generation (no dealer:
//! nobody ever holds the group's secret), its round-1 messages signed with the device key and
//! its round-2 shares encrypted end to end.

use std::collections::BTreeMap;
use std::fmt;

use ed25519_dalek::{SigningKey, VerifyingKey};
use frost_ed25519::Identifier;
use frost_ed25519::keys::dkg::{self, round1, round2};
use ring::rand::SystemRandom;
use zeroize::Zeroizing;

use super::envelope::{self, DirectionKey, ExchangeSecret};
use super::rand_core::{CryptoRng, RngCore};
use super::signer::KeyShare;
use super::wire::{DkgEnvelope, DkgRound1, GroupKey};
use super::{Participant, SessionId, ThresholdError, check_parameters, participant_of};

/// A guardian between its round-1 message and the others': holds its secret polynomial and
/// one X25519 private key per peer (in memory only). `Debug` shows no secret.
pub struct DkgParticipant {
    session: SessionId,
    me: Participant,
    n: u16,
    t: u16,
    secret: round1::SecretPackage,
    exchange: BTreeMap<Participant, ExchangeSecret>,
    sent: DkgRound1,
}

impl DkgParticipant {
    /// Starts key generation `session` as participant `me` of `n` with threshold `t`: draws
    /// the secret polynomial (from `rng`) and one X25519 key pair per peer (from the
    /// operating system), and returns the state to keep and the [`DkgRound1`] to broadcast,
    /// signed with `device_key`.
    pub fn start<R: RngCore + CryptoRng>(
        session: SessionId,
        me: Participant,
        n: u16,
        t: u16,
        device_key: &SigningKey,
        rng: &mut R,
    ) -> Result<(Self, DkgRound1), ThresholdError> {
        check_parameters(n, t)?;
        if !(1..=n).contains(&me.0) {
            return Err(ThresholdError::UnknownParticipant(me));
        }
        let (secret, package) = dkg::part1(me.identifier()?, n, t, &mut *rng)?;
        let system = SystemRandom::new();
        let mut exchange = BTreeMap::new();
        for peer in Participant::all(n).filter(|p| *p != me) {
            exchange.insert(peer, ExchangeSecret::generate(&system)?);
        }
        let mut message = DkgRound1 {
            session,
            from: me,
            participants: n,
            threshold: t,
            package: package.serialize()?,
            exchange_keys: exchange.iter().map(|(p, k)| (*p, k.public())).collect(),
            signature: [0u8; 64],
        };
        message.sign(device_key);
        let state = Self {
            session,
            me,
            n,
            t,
            secret,
            exchange,
            sent: message.clone(),
        };
        Ok((state, message))
    }

    /// This participant's number.
    pub fn participant(&self) -> Participant {
        self.me
    }

    /// Takes every participant's round-1 message (its own included, as relayed) and their
    /// registered device keys; checks each message's device signature, session and
    /// parameters and FROST's proofs of knowledge; and returns the state to keep and one
    /// [`DkgEnvelope`] per peer, to send to the server.
    pub fn receive_round1(
        self,
        round1: &BTreeMap<Participant, DkgRound1>,
        device_keys: &BTreeMap<Participant, VerifyingKey>,
    ) -> Result<(DkgAwaitingShares, Vec<DkgEnvelope>), ThresholdError> {
        let Self {
            session,
            me,
            n,
            t,
            secret,
            mut exchange,
            sent,
        } = self;
        if let Some(stranger) = round1.keys().find(|p| !(1..=n).contains(&p.0)) {
            return Err(ThresholdError::UnknownParticipant(*stranger));
        }
        let mut packages = BTreeMap::new();
        let mut their_keys = BTreeMap::new();
        for p in Participant::all(n) {
            let message = round1.get(&p).ok_or(ThresholdError::Missing(p))?;
            if p == me {
                if *message != sent {
                    return Err(ThresholdError::OwnMessageAltered);
                }
                continue;
            }
            let device = device_keys
                .get(&p)
                .ok_or(ThresholdError::MissingDeviceKey(p))?;
            let package = message.validate(p, session, (n, t), device)?;
            let key = message
                .exchange_keys
                .get(&me)
                .ok_or(ThresholdError::Malformed {
                    from: p,
                    what: "exchange key set",
                })?;
            packages.insert(p.identifier()?, package);
            their_keys.insert(p, *key);
        }
        let (secret, shares) = dkg::part2(secret, &packages).map_err(|e| blame(e, n))?;
        let mut envelopes = Vec::with_capacity(their_keys.len());
        let mut receive = BTreeMap::new();
        for (peer, theirs) in &their_keys {
            let ours = exchange
                .remove(peer)
                .ok_or(ThresholdError::Missing(*peer))?;
            let keys = envelope::agree(ours, theirs, session, me, *peer)?;
            let share = shares
                .get(&peer.identifier()?)
                .ok_or(ThresholdError::Missing(*peer))?;
            let plaintext = Zeroizing::new(share.serialize()?);
            envelopes.push(envelope::seal(keys.send, session, me, *peer, &plaintext)?);
            receive.insert(*peer, keys.receive);
        }
        let state = DkgAwaitingShares {
            session,
            me,
            n,
            secret,
            round1: packages,
            receive,
        };
        Ok((state, envelopes))
    }
}

impl fmt::Debug for DkgParticipant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkgParticipant")
            .field("session", &self.session)
            .field("me", &self.me)
            .field("n", &self.n)
            .field("t", &self.t)
            .finish_non_exhaustive()
    }
}

/// A guardian waiting for its peers' envelopes: holds its own share of its polynomial and
/// the keys to open the envelopes addressed to it. `Debug` shows no secret.
pub struct DkgAwaitingShares {
    session: SessionId,
    me: Participant,
    n: u16,
    secret: round2::SecretPackage,
    round1: BTreeMap<Identifier, round1::Package>,
    receive: BTreeMap<Participant, DirectionKey>,
}

impl DkgAwaitingShares {
    /// This participant's number.
    pub fn participant(&self) -> Participant {
        self.me
    }

    /// Opens the envelopes addressed to this participant (exactly one from each peer),
    /// checks each share against its sender's public commitment, and returns this
    /// participant's [`KeyShare`] (to store on the device) and the [`GroupKey`] (to report to
    /// the server, which accepts it once everyone reported the same).
    pub fn finish(self, envelopes: &[DkgEnvelope]) -> Result<(KeyShare, GroupKey), ThresholdError> {
        let mut shares = BTreeMap::new();
        for sealed in envelopes {
            let from = sealed.from;
            if sealed.session != self.session {
                return Err(ThresholdError::WrongSession);
            }
            if sealed.to != self.me {
                return Err(ThresholdError::Malformed {
                    from,
                    what: "envelope addressed to another participant",
                });
            }
            let key = self
                .receive
                .get(&from)
                .ok_or(ThresholdError::UnknownParticipant(from))?;
            let id = from.identifier()?;
            if shares.contains_key(&id) {
                return Err(ThresholdError::Duplicate(from));
            }
            let plaintext = envelope::open(key, sealed)?;
            let package = round2::Package::deserialize(&plaintext).map_err(|_| {
                ThresholdError::Malformed {
                    from,
                    what: "round-2 package",
                }
            })?;
            shares.insert(id, package);
        }
        if let Some(missing) = self
            .receive
            .keys()
            .find(|p| p.identifier().is_ok_and(|id| !shares.contains_key(&id)))
        {
            return Err(ThresholdError::Missing(*missing));
        }
        let (key_package, public) =
            dkg::part3(&self.secret, &self.round1, &shares).map_err(|e| blame(e, self.n))?;
        let group = GroupKey::from_package(&public)?;
        Ok((KeyShare::new(self.me, key_package)?, group))
    }
}

impl fmt::Debug for DkgAwaitingShares {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkgAwaitingShares")
            .field("session", &self.session)
            .field("me", &self.me)
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}

/// Names the participant FROST blames, when it blames one.
fn blame(error: frost_ed25519::Error, n: u16) -> ThresholdError {
    let culprit = error
        .culprits()
        .first()
        .and_then(|id| participant_of(id, Participant::all(n)));
    match (error, culprit) {
        (frost_ed25519::Error::InvalidSecretShare { .. }, Some(culprit)) => {
            ThresholdError::InvalidSecretShare { culprit }
        }
        (frost_ed25519::Error::InvalidProofOfKnowledge { .. }, Some(culprit)) => {
            ThresholdError::Malformed {
                from: culprit,
                what: "proof of knowledge",
            }
        }
        (error, _) => ThresholdError::Frost(error),
    }
}
