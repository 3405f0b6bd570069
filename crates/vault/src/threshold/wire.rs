//! The messages guardians and the server exchange, as they travel in JSON frames: binary
//! fields are standard base64 (FROST's own serialisations) or lower-case hex (fixed-size
//! keys, signatures and shares). Fields are public and unchecked: whoever receives a message
//! validates it (the server's rounds and the guardian's steps do).

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use frost_ed25519::keys::PublicKeyPackage;
use frost_ed25519::keys::dkg::round1;
use serde::{Deserialize, Serialize};

use super::{Participant, RoundId, SessionId, ThresholdError};

/// Length of an X25519 public key.
pub const EXCHANGE_KEY_LEN: usize = 32;

/// The tag that starts what a device signs for its round-1 message.
const ROUND1_TAG: &[u8] = b"haven-vault/v1/frost-dkg-round1\0";

/// A participant's first key-generation message, broadcast to every participant: its FROST
/// round-1 package (commitments to its secret polynomial and a proof of knowledge), one fresh
/// X25519 public key per peer for the encrypted second round, all signed with its ed25519
/// device key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkgRound1 {
    /// The key generation.
    pub session: SessionId,
    /// The sender.
    pub from: Participant,
    /// `n`, the number of participants.
    pub participants: u16,
    /// `t`, the number of signers the key will need.
    pub threshold: u16,
    /// The FROST round-1 package (`round1::Package::serialize`), base64.
    #[serde(with = "base64_bytes")]
    pub package: Vec<u8>,
    /// Per peer, the X25519 public key the sender uses with that peer only, hex.
    #[serde(with = "hex_key_map")]
    pub exchange_keys: BTreeMap<Participant, [u8; EXCHANGE_KEY_LEN]>,
    /// The device's ed25519 signature over all of the above, hex.
    #[serde(with = "hex_array")]
    pub signature: [u8; 64],
}

impl DkgRound1 {
    /// What the device signs: `tag ‖ session (16) ‖ from ‖ n ‖ t (u16 BE each) ‖ package
    /// length (u64 BE) ‖ package ‖ key count (u16 BE) ‖ (peer (u16 BE) ‖ key (32))*`, where
    /// the tag is `"haven-vault/v1/frost-dkg-round1\0"` and the keys go by peer number.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            ROUND1_TAG.len() + 32 + self.package.len() + self.exchange_keys.len() * 34,
        );
        out.extend_from_slice(ROUND1_TAG);
        out.extend_from_slice(self.session.0.as_bytes());
        out.extend_from_slice(&self.from.0.to_be_bytes());
        out.extend_from_slice(&self.participants.to_be_bytes());
        out.extend_from_slice(&self.threshold.to_be_bytes());
        let len = u64::try_from(self.package.len()).unwrap_or(u64::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.package);
        let count = u16::try_from(self.exchange_keys.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for (peer, key) in &self.exchange_keys {
            out.extend_from_slice(&peer.0.to_be_bytes());
            out.extend_from_slice(key);
        }
        out
    }

    /// Signs the message with the device key.
    pub(crate) fn sign(&mut self, device: &SigningKey) {
        self.signature = device.sign(&self.signed_bytes()).to_bytes();
    }

    /// Checks the message as the round-1 message of `from` in a key generation of `n`
    /// participants with threshold `t`, signed by `device`, and returns its FROST package.
    pub(crate) fn validate(
        &self,
        from: Participant,
        session: SessionId,
        (n, t): (u16, u16),
        device: &VerifyingKey,
    ) -> Result<round1::Package, ThresholdError> {
        if self.from != from {
            return Err(ThresholdError::SenderMismatch {
                from,
                claimed: self.from,
            });
        }
        if self.session != session {
            return Err(ThresholdError::WrongSession);
        }
        let malformed = |what| ThresholdError::Malformed { from, what };
        if self.participants != n || self.threshold != t {
            return Err(malformed("round-1 parameters (n, t)"));
        }
        let peers: BTreeSet<Participant> = Participant::all(n).filter(|p| *p != from).collect();
        if !self.exchange_keys.keys().copied().eq(peers.iter().copied()) {
            return Err(malformed("exchange key set"));
        }
        device
            .verify_strict(
                &self.signed_bytes(),
                &Signature::from_bytes(&self.signature),
            )
            .map_err(|_| ThresholdError::BadDeviceSignature(from))?;
        let package = round1::Package::deserialize(&self.package)
            .map_err(|_| malformed("round-1 package"))?;
        let coefficients = package
            .commitment()
            .serialize()
            .map_err(|_| malformed("round-1 package"))?;
        if coefficients.len() != usize::from(t) {
            return Err(malformed("round-1 commitment length"));
        }
        Ok(package)
    }
}

/// One participant's secret share for one peer, AES-256-GCM-encrypted end to end: only the
/// recipient can open it, and only in this session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkgEnvelope {
    /// The key generation.
    pub session: SessionId,
    /// The sender.
    pub from: Participant,
    /// The recipient.
    pub to: Participant,
    /// The encrypted FROST round-2 package and its tag, base64.
    #[serde(with = "base64_bytes")]
    pub ciphertext: Vec<u8>,
}

/// The group's public key: FROST's public key package (every participant's verifying share,
/// the threshold and the group key) and the 32-byte ed25519 key that every signature of the
/// group verifies against. Public: the server stores it, anyone may see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupKey {
    #[serde(with = "base64_bytes")]
    public_key_package: Vec<u8>,
    #[serde(with = "hex_array")]
    verifying_key: [u8; 32],
}

impl GroupKey {
    /// The group key of a FROST public key package.
    pub(crate) fn from_package(package: &PublicKeyPackage) -> Result<Self, ThresholdError> {
        let verifying_key = package
            .verifying_key()
            .serialize()?
            .try_into()
            .map_err(|_| ThresholdError::InvalidParameters("a group key is 32 bytes"))?;
        Ok(Self {
            public_key_package: package.serialize()?,
            verifying_key,
        })
    }

    /// The group's ed25519 verifying key (as reported; [`crate::threshold::DkgRound`] and
    /// [`crate::threshold::SigningRound`] check it against the package).
    pub fn verifying_key(&self) -> [u8; 32] {
        self.verifying_key
    }

    /// FROST's serialised public key package.
    pub fn public_key_package(&self) -> &[u8] {
        &self.public_key_package
    }

    /// Parses and checks the key as a group of `n` participants with threshold `t`: the
    /// package parses, names exactly participants `1..=n`, and its group key is
    /// `verifying_key`, a valid ed25519 key. `None` when any of it fails.
    pub(crate) fn parse(&self, n: u16, t: u16) -> Option<(PublicKeyPackage, VerifyingKey)> {
        let package = PublicKeyPackage::deserialize(&self.public_key_package).ok()?;
        if package.min_signers() != Some(t) {
            return None;
        }
        let ids: BTreeSet<_> = Participant::all(n)
            .map(Participant::identifier)
            .collect::<Result<_, _>>()
            .ok()?;
        if package
            .verifying_shares()
            .keys()
            .copied()
            .collect::<BTreeSet<_>>()
            != ids
        {
            return None;
        }
        if package.verifying_key().serialize().ok()? != self.verifying_key {
            return None;
        }
        let key = VerifyingKey::from_bytes(&self.verifying_key).ok()?;
        (!key.is_weak()).then_some((package, key))
    }

    /// `(n, t)` as the package states them; `None` when it does not parse.
    pub(crate) fn shape(&self) -> Option<(u16, u16)> {
        let package = PublicKeyPackage::deserialize(&self.public_key_package).ok()?;
        let n = u16::try_from(package.verifying_shares().len()).ok()?;
        Some((n, package.min_signers()?))
    }
}

/// A signer's commitment to the nonces it will sign with, for one round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commitment {
    /// The signing round.
    pub round: RoundId,
    /// The signer.
    pub from: Participant,
    /// FROST's serialised signing commitments, base64.
    #[serde(with = "base64_bytes")]
    pub commitments: Vec<u8>,
}

/// What the server hands every chosen signer once all committed: the message and every
/// signer's commitments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningPackage {
    /// The signing round.
    pub round: RoundId,
    /// FROST's serialised signing package, base64.
    #[serde(with = "base64_bytes")]
    pub package: Vec<u8>,
}

impl SigningPackage {
    /// The FROST signing package.
    pub(crate) fn parse(&self) -> Result<frost_ed25519::SigningPackage, ThresholdError> {
        frost_ed25519::SigningPackage::deserialize(&self.package)
            .map_err(|_| ThresholdError::MalformedRelay("signing package"))
    }

    /// The message the group signs: a guardian checks it is what it approved before it
    /// calls [`crate::threshold::sign`].
    pub fn message(&self) -> Result<Vec<u8>, ThresholdError> {
        Ok(self.parse()?.message().clone())
    }
}

/// A signer's share of the signature, for one round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureShare {
    /// The signing round.
    pub round: RoundId,
    /// The signer.
    pub from: Participant,
    /// The share (a scalar, little-endian), hex.
    #[serde(with = "hex_array")]
    pub share: [u8; 32],
}

/// `Vec<u8>` as a standard base64 string.
pub(crate) mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize as _, Deserializer, Serializer, de::Error as _};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        STANDARD.decode(text.as_bytes()).map_err(D::Error::custom)
    }
}

/// `[u8; N]` as a lower-case hex string.
pub(crate) mod hex_array {
    use serde::{Deserialize as _, Deserializer, Serializer, de::Error as _};

    pub(crate) fn serialize<const N: usize, S: Serializer>(
        bytes: &[u8; N],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub(crate) fn deserialize<'de, const N: usize, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<[u8; N], D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        let mut out = [0u8; N];
        hex::decode_to_slice(text.as_bytes(), &mut out).map_err(D::Error::custom)?;
        Ok(out)
    }
}

/// `BTreeMap<Participant, [u8; 32]>` as an object of hex strings keyed by number.
pub(crate) mod hex_key_map {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{EXCHANGE_KEY_LEN, Participant};

    #[derive(Serialize, Deserialize)]
    #[serde(transparent)]
    struct Key(#[serde(with = "super::hex_array")] [u8; EXCHANGE_KEY_LEN]);

    pub(crate) fn serialize<S: Serializer>(
        map: &BTreeMap<Participant, [u8; EXCHANGE_KEY_LEN]>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_map(map.iter().map(|(peer, key)| (peer, Key(*key))))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<Participant, [u8; EXCHANGE_KEY_LEN]>, D::Error> {
        let map = BTreeMap::<Participant, Key>::deserialize(deserializer)?;
        Ok(map.into_iter().map(|(peer, key)| (peer, key.0)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round1() -> DkgRound1 {
        DkgRound1 {
            session: SessionId::generate(),
            from: Participant(1),
            participants: 3,
            threshold: 2,
            package: vec![1, 2, 3],
            exchange_keys: [(Participant(2), [7u8; 32]), (Participant(3), [9u8; 32])].into(),
            signature: [0u8; 64],
        }
    }

    #[test]
    fn round1_round_trips_through_json_with_text_fields() {
        let mut message = round1();
        message.sign(&SigningKey::from_bytes(&[5u8; 32]));
        let json = serde_json::to_value(&message).unwrap();
        assert_eq!(json["package"], "AQID");
        assert_eq!(json["exchange_keys"]["2"], hex::encode([7u8; 32]));
        assert_eq!(json["signature"].as_str().unwrap().len(), 128);
        let back: DkgRound1 = serde_json::from_value(json).unwrap();
        assert_eq!(back, message);
    }

    #[test]
    fn the_signature_covers_every_field() {
        let device = SigningKey::from_bytes(&[5u8; 32]);
        let mut message = round1();
        message.sign(&device);
        let key = device.verifying_key();
        let verifies = |m: &DkgRound1| {
            key.verify_strict(&m.signed_bytes(), &Signature::from_bytes(&m.signature))
                .is_ok()
        };
        assert!(verifies(&message));
        let changes: [fn(&mut DkgRound1); 6] = [
            |m| m.session = SessionId::generate(),
            |m| m.from = Participant(2),
            |m| m.participants = 4,
            |m| m.threshold = 3,
            |m| m.package.push(0),
            |m| {
                m.exchange_keys.insert(Participant(2), [8u8; 32]);
            },
        ];
        for change in changes {
            let mut altered = message.clone();
            change(&mut altered);
            assert!(!verifies(&altered));
        }
    }

    #[test]
    fn wrong_lengths_and_unknown_fields_do_not_parse() {
        let share = |text: &str| {
            serde_json::from_str::<SignatureShare>(&format!(
                r#"{{"round":{{"session":"{}","attempt":1}},"from":1,"share":"{text}"}}"#,
                SessionId::generate()
            ))
        };
        assert!(share(&"ab".repeat(32)).is_ok());
        assert!(share(&"ab".repeat(31)).is_err());
        assert!(share(&"zz".repeat(32)).is_err());
        let envelope = r#"{"session":"00000000-0000-0000-0000-000000000000","from":1,"to":2,"ciphertext":"AQID","extra":1}"#;
        assert!(serde_json::from_str::<DkgEnvelope>(envelope).is_err());
    }
}
