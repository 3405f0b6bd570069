//! FROST (Ed25519, SHA-512; RFC 9591) threshold keys and signatures for guardian vaults,
//! without transport: the cryptography of the guardians' devices and the bookkeeping of the
//! server that relays their messages, as plain types whose messages serialise to JSON (binary
//! fields as base64 or lower-case hex strings).
//!
//! Participants are numbered `1..=n` ([`Participant`]); the server maps guardians to numbers.
//! The group's key is never assembled anywhere: each guardian's device holds one
//! [`KeyShare`], any `t` of them sign together, and the result is an ordinary ed25519
//! signature that verifies against the group's 32-byte key ([`GroupKey::verifying_key`]).
//!
//! **Guardian side** (holds secrets):
//! - Key generation (distributed, no dealer): [`DkgParticipant::start`] returns a
//!   [`DkgRound1`] to broadcast. Beside the FROST round-1 package it carries, per peer, a fresh
//!   X25519 public key, and it is signed with the guardian's ed25519 device key, so the server
//!   can neither forge nor substitute it. [`DkgParticipant::receive_round1`] checks every
//!   peer's signature and returns one [`DkgEnvelope`] per peer: the peer's secret share,
//!   AES-256-GCM-encrypted under a key derived by HKDF-SHA256 from the pair's X25519
//!   agreement, bound to the session, the sender and the recipient. [`DkgAwaitingShares::finish`]
//!   decrypts the envelopes addressed to the guardian and returns its [`KeyShare`] and the
//!   [`GroupKey`].
//! - Signing: [`commit`] returns single-use [`SigningNonces`] (kept on the device) and a
//!   [`Commitment`]; [`sign`] consumes the nonces and answers the server's [`SigningPackage`]
//!   with a [`SignatureShare`]. Before signing, a guardian checks
//!   [`SigningPackage::message`]: it is what the group signs.
//!
//! **Server side** (public data only: none of these types has a field that could hold a
//! share or a nonce):
//! - [`DkgRound`] collects the round-1 messages, relays the envelopes to their recipients and
//!   accepts the group key once every participant reported the same one.
//! - [`SigningRound`] collects the chosen signers' commitments, hands out the signing package,
//!   aggregates the shares and verifies the result with strict ed25519 verification; a bad
//!   share is named ([`ThresholdError::InvalidSignatureShares`]).
//! - Each round has a deadline; [`SigningAttempts`] bounds how often a request is retried.
//!
//! ```
//! use std::collections::BTreeMap;
//! use chrono::{Duration, Utc};
//! use ed25519_dalek::SigningKey;
//! use haven_vault::threshold::{
//!     DeviceRng, DkgParticipant, DkgRound, Participant, RoundId, SessionId, SigningRound,
//!     commit, sign,
//! };
//!
//! let (n, t) = (3u16, 2u16);
//! let devices: Vec<SigningKey> = (1..=n).map(|i| SigningKey::from_bytes(&[i as u8; 32])).collect();
//! let keys: BTreeMap<_, _> =
//!     (1..=n).map(|i| (Participant(i), devices[usize::from(i - 1)].verifying_key())).collect();
//! let now = Utc::now();
//! let session = SessionId::generate();
//!
//! // the server's bookkeeping, and each guardian's round 1
//! let mut dkg = DkgRound::new(session, t, keys.clone(), now + Duration::minutes(5))?;
//! let mut guardians = Vec::new();
//! let mut round1 = None;
//! for i in 1..=n {
//!     let device = &devices[usize::from(i - 1)];
//!     let (state, message) =
//!         DkgParticipant::start(session, Participant(i), n, t, device, &mut DeviceRng)?;
//!     guardians.push(state);
//!     round1 = dkg.accept_round1(Participant(i), message, now)?;
//! }
//! let round1 = round1.expect("everyone sent round 1");
//!
//! // round 2: encrypted shares, relayed by recipient
//! let mut waiting = Vec::new();
//! let mut relayed = None;
//! for (i, state) in (1..=n).zip(guardians) {
//!     let (state, envelopes) = state.receive_round1(&round1, &keys)?;
//!     waiting.push(state);
//!     relayed = dkg.accept_round2(Participant(i), envelopes, now)?;
//! }
//! let mut relayed = relayed.expect("everyone sent round 2");
//!
//! let mut shares = Vec::new();
//! let mut group = None;
//! for (i, state) in (1..=n).zip(waiting) {
//!     let mine = relayed.remove(&Participant(i)).unwrap_or_default();
//!     let (share, key) = state.finish(&mine)?;
//!     group = dkg.accept_result(Participant(i), key, now)?;
//!     shares.push(share);
//! }
//! let group = group.expect("everyone agreed on the group key");
//!
//! // two of three sign
//! let round = RoundId { session: SessionId::generate(), attempt: 1 };
//! let signers = [Participant(1), Participant(2)].into_iter().collect();
//! let mut signing = SigningRound::new(round, group.clone(), b"release request 42".to_vec(),
//!     signers, now + Duration::minutes(5))?;
//! let (n1, c1) = commit(&shares[0], round, &mut DeviceRng)?;
//! let (n2, c2) = commit(&shares[1], round, &mut DeviceRng)?;
//! assert!(signing.accept_commitment(Participant(1), c1, now)?.is_none());
//! let package = signing.accept_commitment(Participant(2), c2, now)?.expect("all committed");
//! assert_eq!(package.message()?, b"release request 42");
//! let s1 = sign(&shares[0], n1, &package)?;
//! let s2 = sign(&shares[1], n2, &package)?;
//! assert!(signing.accept_share(Participant(1), s1, now)?.is_none());
//! let signature = signing.accept_share(Participant(2), s2, now)?.expect("all signed");
//!
//! let group_key = ed25519_dalek::VerifyingKey::from_bytes(&group.verifying_key())?;
//! group_key.verify_strict(b"release request 42", &ed25519_dalek::Signature::from_bytes(&signature))?;
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

mod coordinator;
mod dkg;
mod dkg_round;
mod envelope;
mod error;
mod signer;
mod signing_round;
mod wire;

use std::fmt;

use frost_ed25519::Identifier;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use coordinator::{
    Contribution, Coordinator, JobStatus, Member, Push, Relay, Step, Target, VaultKey,
};
pub use dkg::{DkgAwaitingShares, DkgParticipant};
pub use dkg_round::{DkgPhase, DkgRound, MAX_ENVELOPE_LEN};
pub use error::ThresholdError;
/// The random-number traits of the FROST implementation (`rand_core` 0.6, the same as
/// `ed25519-dalek`'s), for callers that bring their own generator.
pub use frost_ed25519::rand_core;
pub use signer::{KeyShare, SigningNonces, commit, sign};
pub use signing_round::{SigningAttempts, SigningPhase, SigningRound};
pub use wire::{
    Commitment, DkgEnvelope, DkgRound1, EXCHANGE_KEY_LEN, GroupKey, SignatureShare, SigningPackage,
};

/// The most participants a key generation accepts (every pair exchanges an envelope, so the
/// work grows with the square).
pub const MAX_PARTICIPANTS: u16 = 64;

/// A participant's number, `1..=n`, as the server assigned it for one group.
///
/// It reads from a JSON number or a string of digits: as a map key (`{"1": …}`) it is a
/// string, also when the map sits inside a tagged or flattened message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Participant(pub u16);

impl<'de> Deserialize<'de> for Participant {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Number;
        impl serde::de::Visitor<'_> for Number {
            type Value = Participant;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a participant number, 0 to 65535")
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Participant, E> {
                u16::try_from(v)
                    .map(Participant)
                    .map_err(|_| E::custom("a participant number is at most 65535"))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Participant, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom("a participant number is not negative"))
                    .and_then(|v| self.visit_u64(v))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Participant, E> {
                if v.is_empty() || v.len() > 5 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(E::custom("a participant number is 1 to 5 digits"));
                }
                v.parse::<u64>()
                    .map_err(E::custom)
                    .and_then(|v| self.visit_u64(v))
            }
        }
        deserializer.deserialize_any(Number)
    }
}

impl Participant {
    /// The FROST identifier of this number (0 has none).
    pub(crate) fn identifier(self) -> Result<Identifier, ThresholdError> {
        Identifier::try_from(self.0).map_err(|_| ThresholdError::UnknownParticipant(self))
    }

    /// Participants `1..=n`.
    pub(crate) fn all(n: u16) -> impl Iterator<Item = Participant> {
        (1..=n).map(Participant)
    }
}

impl fmt::Display for Participant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A key generation's or a signing request's id; part of every message and of the
/// envelopes' key derivation, so nothing carries over from one session to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub Uuid);

impl SessionId {
    /// A new random id (UUID v4).
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One attempt at signing: the signing session (one per request) and the attempt number
/// (1, 2, …; see [`SigningAttempts`]). Commitments, packages and shares carry it, so a
/// message of an earlier attempt is refused by a later one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RoundId {
    /// The signing session.
    pub session: SessionId,
    /// The attempt, from 1.
    pub attempt: u32,
}

impl fmt::Display for RoundId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} attempt {}", self.session, self.attempt)
    }
}

/// A cryptographically secure generator for [`DkgParticipant::start`] and [`commit`]: the
/// thread-local generator of `rand` (ChaCha, seeded and reseeded from the operating system)
/// behind the `rand_core` 0.6 traits that FROST takes.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeviceRng;

impl rand_core::RngCore for DeviceRng {
    fn next_u32(&mut self) -> u32 {
        rand::RngCore::next_u32(&mut rand::rng())
    }

    fn next_u64(&mut self) -> u64 {
        rand::RngCore::next_u64(&mut rand::rng())
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand::RngCore::fill_bytes(&mut rand::rng(), dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        rand::RngCore::fill_bytes(&mut rand::rng(), dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for DeviceRng {}

/// The FROST identifiers of participants `1..=n`, and back.
pub(crate) fn participant_of(
    id: &Identifier,
    candidates: impl IntoIterator<Item = Participant>,
) -> Option<Participant> {
    candidates
        .into_iter()
        .find(|p| p.identifier().ok().as_ref() == Some(id))
}

/// Checks `2 ≤ t ≤ n ≤ MAX_PARTICIPANTS`.
pub(crate) fn check_parameters(n: u16, t: u16) -> Result<(), ThresholdError> {
    if !(2..=MAX_PARTICIPANTS).contains(&n) {
        return Err(ThresholdError::InvalidParameters(
            "the number of participants must be 2..=64",
        ));
    }
    if !(2..=n).contains(&t) {
        return Err(ThresholdError::InvalidParameters(
            "the threshold must be at least 2 and at most the number of participants",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::RngCore as _;

    #[test]
    fn participants_map_to_identifiers_and_back() {
        let id = Participant(3).identifier().unwrap();
        assert_eq!(
            participant_of(&id, Participant::all(5)),
            Some(Participant(3))
        );
        assert_eq!(participant_of(&id, Participant::all(2)), None);
        assert!(Participant(0).identifier().is_err());
    }

    #[test]
    fn parameters_are_checked() {
        assert!(check_parameters(3, 2).is_ok());
        assert!(check_parameters(3, 1).is_err());
        assert!(check_parameters(3, 4).is_err());
        assert!(check_parameters(1, 1).is_err());
        assert!(check_parameters(MAX_PARTICIPANTS + 1, 2).is_err());
    }

    #[test]
    fn the_device_rng_is_random() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        DeviceRng.fill_bytes(&mut a);
        DeviceRng.fill_bytes(&mut b);
        assert_ne!(a, b);
    }
}
