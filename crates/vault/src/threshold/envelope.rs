//! End-to-end encryption of the key generation's secret shares through the untrusted server.
//!
//! Each participant publishes, per peer, a fresh X25519 public key in its signed round-1
//! message. The pair's shared secret (one agreement, of either side's private key with the
//! other's public key) goes through HKDF-SHA256 into one AES-256-GCM key and nonce per
//! direction; the derivation's info binds the session, the sender, the recipient and both
//! public keys. Each key encrypts exactly one envelope, so a nonce never repeats under a key.
//! The envelope's header (session, sender, recipient) is also the authenticated data.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, KeyInit, Nonce};
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
use ring::hkdf;
use ring::rand::SystemRandom;
use zeroize::Zeroizing;

use super::wire::{DkgEnvelope, EXCHANGE_KEY_LEN};
use super::{Participant, SessionId, ThresholdError};

/// The HKDF salt: the scheme's name and version.
const KDF_SALT: &[u8] = b"haven-vault/v1/frost-dkg-envelope/salt";
/// The start of the HKDF info.
const KDF_INFO: &[u8] = b"haven-vault/v1/frost-dkg-envelope/key\0";
/// The start of the authenticated data.
const AAD_TAG: &[u8] = b"haven-vault/v1/frost-dkg-envelope/aad\0";
/// AES-256 key and 96-bit nonce.
const KEY_AND_NONCE: usize = 32 + 12;
/// Length of the GCM tag.
const TAG_LEN: usize = 16;

/// An X25519 key pair for one peer, made in round 1 and used once in round 2.
pub(crate) struct ExchangeSecret {
    private: EphemeralPrivateKey,
    public: [u8; EXCHANGE_KEY_LEN],
}

impl ExchangeSecret {
    /// A fresh key pair from the operating system's generator.
    pub(crate) fn generate(rng: &SystemRandom) -> Result<Self, ThresholdError> {
        let failed = || ThresholdError::InvalidParameters("no X25519 key could be generated");
        let private = EphemeralPrivateKey::generate(&X25519, rng).map_err(|_| failed())?;
        let public = private
            .compute_public_key()
            .map_err(|_| failed())?
            .as_ref()
            .try_into()
            .map_err(|_| failed())?;
        Ok(Self { private, public })
    }

    /// The public half, for the round-1 message.
    pub(crate) fn public(&self) -> [u8; EXCHANGE_KEY_LEN] {
        self.public
    }
}

/// The two directional keys of one pair, from one side.
pub(crate) struct PairKeys {
    /// Encrypts our envelope to the peer.
    pub(crate) send: DirectionKey,
    /// Opens the peer's envelope to us.
    pub(crate) receive: DirectionKey,
}

/// An AES-256-GCM key and nonce for one envelope in one direction. Zeroed on drop.
pub(crate) struct DirectionKey(Zeroizing<[u8; KEY_AND_NONCE]>);

/// Agrees with `peer` on the pair's secret (our key pair for them, their public key for us)
/// and derives both directional keys.
pub(crate) fn agree(
    ours: ExchangeSecret,
    theirs: &[u8; EXCHANGE_KEY_LEN],
    session: SessionId,
    me: Participant,
    peer: Participant,
) -> Result<PairKeys, ThresholdError> {
    let failed = || ThresholdError::KeyExchange { with: peer };
    let our_public = ours.public;
    let peer_key = UnparsedPublicKey::new(&X25519, theirs);
    agreement::agree_ephemeral(ours.private, &peer_key, |shared| {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, KDF_SALT).extract(shared);
        let derive = |from: Participant, to: Participant, from_key: &[u8], to_key: &[u8]| {
            let session = session.0.as_bytes();
            let (from, to) = (from.0.to_be_bytes(), to.0.to_be_bytes());
            let info = [KDF_INFO, session, &from, &to, from_key, to_key];
            let mut out = Zeroizing::new([0u8; KEY_AND_NONCE]);
            prk.expand(&info, Len)
                .and_then(|okm| okm.fill(out.as_mut()))
                .map(|()| DirectionKey(out))
        };
        let send = derive(me, peer, &our_public, theirs)?;
        let receive = derive(peer, me, theirs, &our_public)?;
        Ok::<_, ring::error::Unspecified>(PairKeys { send, receive })
    })
    .map_err(|_| failed())?
    .map_err(|_| failed())
}

/// The HKDF output length.
struct Len;

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        KEY_AND_NONCE
    }
}

/// `tag ‖ session (16) ‖ from ‖ to (u16 BE)`.
fn associated_data(session: SessionId, from: Participant, to: Participant) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_TAG.len() + 20);
    aad.extend_from_slice(AAD_TAG);
    aad.extend_from_slice(session.0.as_bytes());
    aad.extend_from_slice(&from.0.to_be_bytes());
    aad.extend_from_slice(&to.0.to_be_bytes());
    aad
}

fn cipher(key: &DirectionKey) -> Option<(Aes256Gcm, Nonce<Aes256Gcm>)> {
    let (key, nonce) = key.0.split_at(32);
    let cipher = Aes256Gcm::new_from_slice(key).ok()?;
    let nonce = Nonce::<Aes256Gcm>::try_from(nonce).ok()?;
    Some((cipher, nonce))
}

/// Encrypts `plaintext` from `from` to `to` (the key is used for this envelope only).
pub(crate) fn seal(
    key: DirectionKey,
    session: SessionId,
    from: Participant,
    to: Participant,
    plaintext: &[u8],
) -> Result<DkgEnvelope, ThresholdError> {
    let failed = || ThresholdError::KeyExchange { with: to };
    let (cipher, nonce) = cipher(&key).ok_or_else(failed)?;
    let mut buffer = Vec::with_capacity(plaintext.len() + TAG_LEN);
    buffer.extend_from_slice(plaintext);
    cipher
        .encrypt_in_place(&nonce, &associated_data(session, from, to), &mut buffer)
        .map_err(|_| failed())?;
    Ok(DkgEnvelope {
        session,
        from,
        to,
        ciphertext: buffer,
    })
}

/// Decrypts an envelope with the key for its sender's direction; the plaintext is zeroed
/// on drop. Any altered byte, header included, fails.
pub(crate) fn open(
    key: &DirectionKey,
    envelope: &DkgEnvelope,
) -> Result<Zeroizing<Vec<u8>>, ThresholdError> {
    let failed = || ThresholdError::Decryption {
        from: envelope.from,
    };
    if envelope.ciphertext.len() < TAG_LEN {
        return Err(failed());
    }
    let (cipher, nonce) = cipher(key).ok_or_else(failed)?;
    let aad = associated_data(envelope.session, envelope.from, envelope.to);
    let mut buffer = Zeroizing::new(envelope.ciphertext.clone());
    cipher
        .decrypt_in_place(&nonce, &aad, &mut *buffer)
        .map_err(|_| failed())?;
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(session: SessionId) -> (PairKeys, PairKeys) {
        let rng = SystemRandom::new();
        let a = ExchangeSecret::generate(&rng).unwrap();
        let b = ExchangeSecret::generate(&rng).unwrap();
        let (a_public, b_public) = (a.public(), b.public());
        let one = agree(a, &b_public, session, Participant(1), Participant(2)).unwrap();
        let two = agree(b, &a_public, session, Participant(2), Participant(1)).unwrap();
        (one, two)
    }

    #[test]
    fn each_side_opens_what_the_other_sealed_and_nothing_else() {
        let session = SessionId::generate();
        let (one, two) = pair(session);
        let to_two = seal(
            one.send,
            session,
            Participant(1),
            Participant(2),
            b"share for 2",
        )
        .unwrap();
        let to_one = seal(
            two.send,
            session,
            Participant(2),
            Participant(1),
            b"share for 1",
        )
        .unwrap();
        assert_eq!(
            open(&two.receive, &to_two).unwrap().as_slice(),
            b"share for 2"
        );
        assert_eq!(
            open(&one.receive, &to_one).unwrap().as_slice(),
            b"share for 1"
        );
        // the directions differ: an envelope does not open with the key of the other way
        assert!(open(&one.receive, &to_two).is_err());

        let mut flipped = to_two.clone();
        flipped.ciphertext[0] ^= 1;
        assert!(open(&two.receive, &flipped).is_err());
        let mut readdressed = to_two.clone();
        readdressed.to = Participant(3);
        assert!(open(&two.receive, &readdressed).is_err());
        let mut other_session = to_two.clone();
        other_session.session = SessionId::generate();
        assert!(open(&two.receive, &other_session).is_err());
        let mut short = to_two;
        short.ciphertext.truncate(3);
        assert!(open(&two.receive, &short).is_err());
    }

    #[test]
    fn a_small_order_exchange_key_is_refused() {
        let rng = SystemRandom::new();
        let a = ExchangeSecret::generate(&rng).unwrap();
        let zero = [0u8; 32];
        assert!(matches!(
            agree(
                a,
                &zero,
                SessionId::generate(),
                Participant(1),
                Participant(2)
            ),
            Err(ThresholdError::KeyExchange {
                with: Participant(2)
            })
        ));
    }
}
