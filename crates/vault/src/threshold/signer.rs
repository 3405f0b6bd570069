//! Signing on a guardian's device: the key share it keeps, the single-use nonces of one
//! round, and the two steps (commit, sign).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use frost_ed25519::keys::KeyPackage;
use frost_ed25519::round1::{self, SigningCommitments};
use frost_ed25519::round2;
use serde::de::Error as _;
use serde::ser::{Error as _, SerializeStruct as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use super::rand_core::{CryptoRng, RngCore};
use super::wire::{Commitment, SignatureShare, SigningPackage};
use super::{Participant, RoundId, ThresholdError};

/// A guardian's share of the group's signing key, the outcome of key generation; it stays
/// on the device. Zeroed on drop (FROST's key package zeroes its secret); `Debug` shows only
/// public parts. Serialises (for the device's own encrypted storage, never for the wire) as
/// `{"participant": 1, "key_package": "<base64 of FROST's key package>"}`.
pub struct KeyShare {
    participant: Participant,
    group_key: [u8; 32],
    key_package: KeyPackage,
}

impl KeyShare {
    /// Wraps FROST's key package of `participant`.
    pub(crate) fn new(
        participant: Participant,
        key_package: KeyPackage,
    ) -> Result<Self, ThresholdError> {
        if *key_package.identifier() != participant.identifier()? {
            return Err(ThresholdError::InvalidParameters(
                "the key package belongs to another participant",
            ));
        }
        let group_key = key_package
            .verifying_key()
            .serialize()?
            .try_into()
            .map_err(|_| ThresholdError::InvalidParameters("a group key is 32 bytes"))?;
        Ok(Self {
            participant,
            group_key,
            key_package,
        })
    }

    /// Whose share it is.
    pub fn participant(&self) -> Participant {
        self.participant
    }

    /// How many signers the group needs.
    pub fn threshold(&self) -> u16 {
        *self.key_package.min_signers()
    }

    /// The group's ed25519 verifying key.
    pub fn group_verifying_key(&self) -> [u8; 32] {
        self.group_key
    }
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare")
            .field("participant", &self.participant)
            .field("threshold", &self.threshold())
            .field("group_key", &hex::encode(self.group_key))
            .field("signing_share", &"<redacted>")
            .finish()
    }
}

impl Serialize for KeyShare {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes = Zeroizing::new(
            self.key_package
                .serialize()
                .map_err(|_| S::Error::custom("the key package does not serialise"))?,
        );
        let text = Zeroizing::new(STANDARD.encode(bytes.as_slice()));
        let mut state = serializer.serialize_struct("KeyShare", 2)?;
        state.serialize_field("participant", &self.participant)?;
        state.serialize_field("key_package", text.as_str())?;
        state.end()
    }
}

impl<'de> Deserialize<'de> for KeyShare {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Stored {
            participant: Participant,
            key_package: String,
        }
        let stored = Stored::deserialize(deserializer)?;
        let participant = stored.participant;
        let text = Zeroizing::new(stored.key_package);
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.as_bytes())
                .map_err(|_| D::Error::custom("the key package is not base64"))?,
        );
        let key_package = KeyPackage::deserialize(&bytes)
            .map_err(|_| D::Error::custom("the key package does not parse"))?;
        Self::new(participant, key_package).map_err(D::Error::custom)
    }
}

/// The secret nonces of one signing round, to keep on the device between [`commit`] and
/// [`sign`]. Used once: [`sign`] consumes them, and they cannot be cloned or serialised.
/// Zeroed on drop; `Debug` shows no secret.
pub struct SigningNonces {
    round: RoundId,
    participant: Participant,
    nonces: round1::SigningNonces,
    commitments: SigningCommitments,
}

impl SigningNonces {
    /// The round they were made for.
    pub fn round(&self) -> RoundId {
        self.round
    }
}

impl fmt::Debug for SigningNonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningNonces")
            .field("round", &self.round)
            .field("participant", &self.participant)
            .finish_non_exhaustive()
    }
}

/// The first step of signing in `round`: fresh nonces (kept on the device) and the
/// [`Commitment`] to send to the server.
pub fn commit<R: RngCore + CryptoRng>(
    share: &KeyShare,
    round: RoundId,
    rng: &mut R,
) -> Result<(SigningNonces, Commitment), ThresholdError> {
    let (nonces, commitments) = round1::commit(share.key_package.signing_share(), rng);
    let message = Commitment {
        round,
        from: share.participant,
        commitments: commitments.serialize()?,
    };
    let nonces = SigningNonces {
        round,
        participant: share.participant,
        nonces,
        commitments,
    };
    Ok((nonces, message))
}

/// The second step: signs the server's `package` with the nonces of the same round,
/// consuming them (also when signing fails: a new round needs new nonces). The package
/// must contain this signer's commitment as sent. Check [`SigningPackage::message`] first.
pub fn sign(
    share: &KeyShare,
    nonces: SigningNonces,
    package: &SigningPackage,
) -> Result<SignatureShare, ThresholdError> {
    if package.round != nonces.round || nonces.participant != share.participant {
        return Err(ThresholdError::NoncesMismatch);
    }
    let parsed = package.parse()?;
    let ours = parsed.signing_commitment(&share.participant.identifier()?);
    if ours != Some(nonces.commitments) {
        return Err(ThresholdError::MalformedRelay(
            "signing package without our commitment",
        ));
    }
    let signature = round2::sign(&parsed, &nonces.nonces, &share.key_package)?;
    let share_bytes = signature
        .serialize()
        .try_into()
        .map_err(|_| ThresholdError::InvalidParameters("a signature share is 32 bytes"))?;
    Ok(SignatureShare {
        round: package.round,
        from: share.participant,
        share: share_bytes,
    })
}
