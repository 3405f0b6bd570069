//! API keys: `hvn_<live|test>_<30 base62>_<6 base62 CRC32>`.
//!
//! A key is shown once, at creation ([`ApiKey::generate`]); the server stores only its
//! [`ApiKeyHash`] (HMAC-SHA256 under a server-side pepper, [`KeyHasher`]) and a short
//! [`display_prefix`]. The checksum is the CRC-32 (ISO-HDLC, as in zlib) of `hvn_<env>_<random>`
//! in base62, most significant digit first, zero-padded to 6. It lets [`ApiKey::check_format`] refuse a mistyped
//! key without any I/O, and lets secret scanners recognise a leaked key.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use haven_core::ErrorCode;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};

/// The fixed start of every haven API key.
pub const KEY_PREFIX: &str = "hvn";

/// Number of random base62 characters in a key (≈ 178 bits).
pub const RANDOM_LEN: usize = 30;

/// Number of base62 characters of the CRC32 checksum.
pub const CHECKSUM_LEN: usize = 6;

/// Random characters kept in the [`display_prefix`].
pub const DISPLAY_RANDOM_LEN: usize = 4;

/// Smallest pepper [`KeyHasher::new`] accepts, in bytes (256 bits).
pub const MIN_PEPPER_LEN: usize = 32;

/// The longest a [`ValidationCache`] may keep an entry: revocation takes effect everywhere
/// within this bound.
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(30);

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Why an API key or the hasher was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiKeyError {
    /// The key does not have the `hvn_<env>_<30 base62>_<6 base62>` shape.
    #[error("the API key is malformed: {reason}")]
    Malformed {
        /// Which part of the shape is wrong (never contains the key).
        reason: &'static str,
    },
    /// The shape is right but the checksum does not match: a typo or a made-up key.
    #[error("the API key checksum does not match")]
    BadChecksum,
    /// The pepper is shorter than [`MIN_PEPPER_LEN`] bytes.
    #[error("the API key pepper has {len} bytes; at least {MIN_PEPPER_LEN} are required")]
    PepperTooShort {
        /// Length of the refused pepper.
        len: usize,
    },
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Rng,
}

impl ApiKeyError {
    /// The stable wire code of this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiKeyError::Malformed { .. } | ApiKeyError::BadChecksum => ErrorCode::Unauthorized,
            ApiKeyError::PepperTooShort { .. } | ApiKeyError::Rng => ErrorCode::InternalError,
        }
    }
}

/// Whether a key works against production (`live`) or a test environment (`test`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyEnv {
    /// Production.
    Live,
    /// Test / sandbox.
    Test,
}

impl KeyEnv {
    /// `"live"` or `"test"`, as it appears in the key.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyEnv::Live => "live",
            KeyEnv::Test => "test",
        }
    }
}

impl fmt::Display for KeyEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A plaintext API key. It is handed out once; it has no `Display`, its `Debug` prints only
/// the [`display_prefix`], and its memory is zeroed on drop.
pub struct PlaintextApiKey(SecretString);

impl PlaintextApiKey {
    /// The full key, to show the user once or to hash. Never log it.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// The short, non-secret prefix to store and display (`hvn_live_AbC1`).
    pub fn display_prefix(&self) -> String {
        display_prefix(self.expose_secret())
    }
}

impl fmt::Debug for PlaintextApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlaintextApiKey({}…)", self.display_prefix())
    }
}

/// Generation and offline checks of API keys.
#[derive(Debug, Clone, Copy)]
pub struct ApiKey;

impl ApiKey {
    /// A new key for `env`, drawn from the operating system's random number generator.
    pub fn generate(env: KeyEnv) -> Result<PlaintextApiKey, ApiKeyError> {
        let rng = SystemRandom::new();
        let mut body = String::with_capacity(RANDOM_LEN);
        let mut buf = [0u8; 64];
        while body.len() < RANDOM_LEN {
            rng.fill(&mut buf).map_err(|_| ApiKeyError::Rng)?;
            // Rejection sampling: 248 = 4 × 62, so bytes below it map uniformly.
            for byte in buf.iter().filter(|b| **b < 248) {
                if body.len() == RANDOM_LEN {
                    break;
                }
                body.push(char::from(BASE62[usize::from(*byte % 62)]));
            }
        }
        buf.fill(0);
        let head = format!("{KEY_PREFIX}_{}_{body}", env.as_str());
        let key = format!("{head}_{}", checksum(&head));
        Ok(PlaintextApiKey(SecretString::from(key)))
    }

    /// Checks the shape and checksum of `key` without any I/O and returns its environment.
    ///
    /// Run it before any database lookup so typos and garbage never reach the store.
    pub fn check_format(key: &str) -> Result<KeyEnv, ApiKeyError> {
        let malformed = |reason| Err(ApiKeyError::Malformed { reason });
        let mut parts = key.split('_');
        let (Some(prefix), Some(env), Some(body), Some(sum), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return malformed("expected four parts separated by '_'");
        };
        if prefix != KEY_PREFIX {
            return malformed("the key does not start with 'hvn_'");
        }
        let env = match env {
            "live" => KeyEnv::Live,
            "test" => KeyEnv::Test,
            _ => return malformed("the environment is neither 'live' nor 'test'"),
        };
        if body.len() != RANDOM_LEN || !is_base62(body) {
            return malformed("the random part is not 30 base62 characters");
        }
        if sum.len() != CHECKSUM_LEN || !is_base62(sum) {
            return malformed("the checksum is not 6 base62 characters");
        }
        let head_len = key.len() - CHECKSUM_LEN - 1;
        let expected = checksum(&key[..head_len]);
        // The checksum is derived from the key, not a secret: a plain comparison is fine.
        if expected != sum {
            return Err(ApiKeyError::BadChecksum);
        }
        Ok(env)
    }
}

fn is_base62(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The 6-character base62 encoding (most significant digit first, zero-padded) of the
/// CRC-32 (ISO-HDLC, as in zlib) of `head` = `hvn_<env>_<random>`.
fn checksum(head: &str) -> String {
    let mut value = u64::from(CRC32.checksum(head.as_bytes()));
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        // `value % 62` is below 62, so the index is in range.
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    out.iter().map(|b| char::from(*b)).collect()
}

/// The short, non-secret prefix of a key to store and display: `hvn_<env>_` and the first
/// [`DISPLAY_RANDOM_LEN`] random characters (`hvn_live_AbC1`). For a malformed input it
/// returns at most that many leading characters.
pub fn display_prefix(key: &str) -> String {
    let len = KEY_PREFIX.len() + 1 + 4 + 1 + DISPLAY_RANDOM_LEN;
    key.chars().take(len).collect()
}

/// The stored form of a key: HMAC-SHA256 of the plaintext under the server's pepper.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiKeyHash(pub [u8; 32]);

impl ApiKeyHash {
    /// The 32 hash bytes, as stored.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for ApiKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeyHash(")?;
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

/// Hashes API keys with HMAC-SHA256 under a server-side pepper.
///
/// The pepper lives outside the database, so a leaked `api_keys` table alone cannot be used
/// to test guesses. Keys carry ≈ 178 random bits, so a fast keyed hash is enough; no
/// password hash is needed.
pub struct KeyHasher {
    key: ring::hmac::Key,
}

impl KeyHasher {
    /// A hasher under `pepper`, which must have at least [`MIN_PEPPER_LEN`] bytes.
    pub fn new(pepper: &[u8]) -> Result<Self, ApiKeyError> {
        if pepper.len() < MIN_PEPPER_LEN {
            return Err(ApiKeyError::PepperTooShort { len: pepper.len() });
        }
        Ok(Self {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, pepper),
        })
    }

    /// The stored hash of `key`.
    pub fn hash(&self, key: &str) -> ApiKeyHash {
        let tag = ring::hmac::sign(&self.key, key.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        ApiKeyHash(out)
    }

    /// Whether `key` hashes to `stored`, compared in constant time.
    pub fn verify(&self, key: &str, stored: &ApiKeyHash) -> bool {
        ring::hmac::verify(&self.key, key.as_bytes(), &stored.0).is_ok()
    }
}

impl fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHasher { pepper: [redacted] }")
    }
}

/// A short-lived cache of API-key validation results, keyed by [`ApiKeyHash`] (never the
/// plaintext), so a hot key does not hit the database on every request.
///
/// Its TTL is capped at [`MAX_CACHE_TTL`] (30 s): **a revoked key stops working everywhere
/// within 30 seconds**, even on instances that validated it just before the revocation.
/// The instance that revokes a key should also call [`ValidationCache::invalidate`].
pub struct ValidationCache<V> {
    ttl: Duration,
    max_entries: usize,
    entries: Mutex<HashMap<ApiKeyHash, (Instant, V)>>,
}

impl<V: Clone> ValidationCache<V> {
    /// A cache whose entries live `ttl`, capped at [`MAX_CACHE_TTL`], holding at most
    /// `max_entries` keys.
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self {
            ttl: ttl.min(MAX_CACHE_TTL),
            max_entries: max_entries.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The effective TTL (after the cap).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The cached value of `hash`, if it was stored less than the TTL ago.
    pub fn get(&self, hash: &ApiKeyHash) -> Option<V> {
        self.get_at(hash, Instant::now())
    }

    /// [`get`](Self::get) as of `now`.
    pub fn get_at(&self, hash: &ApiKeyHash, now: Instant) -> Option<V> {
        let mut entries = self.lock();
        match entries.get(hash) {
            Some((stored, value)) if now.saturating_duration_since(*stored) < self.ttl => {
                Some(value.clone())
            }
            Some(_) => {
                entries.remove(hash);
                None
            }
            None => None,
        }
    }

    /// Caches `value` for `hash`.
    pub fn insert(&self, hash: ApiKeyHash, value: V) {
        self.insert_at(hash, value, Instant::now());
    }

    /// [`insert`](Self::insert) as of `now`.
    pub fn insert_at(&self, hash: ApiKeyHash, value: V, now: Instant) {
        let mut entries = self.lock();
        if entries.len() >= self.max_entries && !entries.contains_key(&hash) {
            let ttl = self.ttl;
            entries.retain(|_, (stored, _)| now.saturating_duration_since(*stored) < ttl);
            if entries.len() >= self.max_entries {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, (stored, _))| *stored)
                    .map(|(k, _)| *k);
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(hash, (now, value));
    }

    /// Forgets `hash` (call it on revocation).
    pub fn invalidate(&self, hash: &ApiKeyHash) {
        self.lock().remove(hash);
    }

    /// Number of entries, expired ones included.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ApiKeyHash, (Instant, V)>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<V> fmt::Debug for ValidationCache<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidationCache")
            .field("ttl", &self.ttl)
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn replace_char(s: &str, index: usize) -> String {
        let mut bytes = s.as_bytes().to_vec();
        bytes[index] = if bytes[index] == b'a' { b'b' } else { b'a' };
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn generated_keys_have_the_documented_shape() {
        for env in [KeyEnv::Live, KeyEnv::Test] {
            let key = ApiKey::generate(env).unwrap();
            let s = key.expose_secret();
            let parts: Vec<&str> = s.split('_').collect();
            assert_eq!(parts.len(), 4, "{s}");
            assert_eq!(parts[0], "hvn");
            assert_eq!(parts[1], env.as_str());
            assert_eq!(parts[2].len(), RANDOM_LEN);
            assert_eq!(parts[3].len(), CHECKSUM_LEN);
            assert!(parts[2].bytes().all(|b| b.is_ascii_alphanumeric()));
            assert_eq!(ApiKey::check_format(s), Ok(env));
        }
    }

    #[test]
    fn generated_keys_are_unique_and_use_the_whole_alphabet() {
        let mut seen = std::collections::HashSet::new();
        let mut chars = std::collections::HashSet::new();
        for _ in 0..200 {
            let key = ApiKey::generate(KeyEnv::Live).unwrap();
            chars.extend(key.expose_secret().split('_').nth(2).unwrap().bytes());
            assert!(seen.insert(key.expose_secret().to_owned()));
        }
        assert_eq!(chars.len(), 62, "6000 draws cover all 62 symbols");
    }

    #[test]
    fn checksum_matches_the_crc32_of_the_head_in_base62() {
        // CRC-32/ISO-HDLC("123456789") = 0xCBF43926 = 3421780262, in base62 "3jZRME".
        assert_eq!(CRC32.checksum(b"123456789"), 0xCBF4_3926);
        assert_eq!(checksum("123456789"), "3jZRME");
        let head = format!("hvn_test_{}", "A".repeat(RANDOM_LEN));
        let key = format!("{head}_{}", checksum(&head));
        assert_eq!(ApiKey::check_format(&key), Ok(KeyEnv::Test));
    }

    #[test]
    fn any_single_character_typo_in_the_random_part_fails_the_checksum() {
        let key = ApiKey::generate(KeyEnv::Live).unwrap();
        let s = key.expose_secret();
        let start = "hvn_live_".len();
        for i in start..start + RANDOM_LEN {
            let typo = replace_char(s, i);
            assert_eq!(
                ApiKey::check_format(&typo),
                Err(ApiKeyError::BadChecksum),
                "typo at {i}"
            );
        }
        let typo = replace_char(s, s.len() - 1);
        assert_eq!(ApiKey::check_format(&typo), Err(ApiKeyError::BadChecksum));
    }

    #[test]
    fn switching_the_environment_fails_the_checksum() {
        let key = ApiKey::generate(KeyEnv::Live).unwrap();
        let test = key.expose_secret().replacen("_live_", "_test_", 1);
        assert_eq!(ApiKey::check_format(&test), Err(ApiKeyError::BadChecksum));
    }

    #[test]
    fn malformed_shapes_are_refused() {
        let good = ApiKey::generate(KeyEnv::Test).unwrap();
        let good = good.expose_secret();
        let body = good.split('_').nth(2).unwrap();
        let sum = good.split('_').nth(3).unwrap();
        let cases = [
            String::new(),
            "hvn".into(),
            format!("xyz_test_{body}_{sum}"),
            format!("hvn_prod_{body}_{sum}"),
            format!("hvn_test_{}_{sum}", &body[1..]),
            format!("hvn_test_{body}x_{sum}"),
            format!("hvn_test_{}-_{sum}", &body[1..]),
            format!("hvn_test_{body}_{}", &sum[1..]),
            format!("hvn_test_{body}_{sum}_"),
            format!("{good}\n"),
            format!(" {good}"),
            format!("hvn_test_{}é_{sum}", &body[2..]),
        ];
        for case in cases {
            assert!(
                matches!(
                    ApiKey::check_format(&case),
                    Err(ApiKeyError::Malformed { .. })
                ),
                "{case:?} -> {:?}",
                ApiKey::check_format(&case)
            );
        }
    }

    #[test]
    fn debug_of_a_plaintext_key_shows_only_the_prefix() {
        let key = ApiKey::generate(KeyEnv::Live).unwrap();
        let debug = format!("{key:?}");
        let body = key.expose_secret().split('_').nth(2).unwrap();
        assert!(!debug.contains(body), "{debug}");
        assert!(debug.contains(&key.display_prefix()));
        assert_eq!(key.display_prefix(), &key.expose_secret()[..13]);
        assert!(key.display_prefix().starts_with("hvn_live_"));
    }

    #[test]
    fn hasher_needs_a_256_bit_pepper() {
        assert_eq!(
            KeyHasher::new(&[7u8; 31]).err(),
            Some(ApiKeyError::PepperTooShort { len: 31 })
        );
        assert!(KeyHasher::new(&[7u8; 32]).is_ok());
    }

    #[test]
    fn hash_is_hmac_sha256_under_the_pepper() {
        let a = KeyHasher::new(&[1u8; 32]).unwrap();
        let b = KeyHasher::new(&[2u8; 32]).unwrap();
        let key = ApiKey::generate(KeyEnv::Live).unwrap();
        let key = key.expose_secret();
        let stored = a.hash(key);
        assert_eq!(stored, a.hash(key), "deterministic");
        assert_ne!(stored, b.hash(key), "depends on the pepper");
        assert!(a.verify(key, &stored));
        assert!(!b.verify(key, &stored));
        assert!(!a.verify(&replace_char(key, 12), &stored));
        let expected = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[1u8; 32]),
            key.as_bytes(),
        );
        assert_eq!(stored.as_bytes().as_slice(), expected.as_ref());
        let debug = format!("{stored:?}");
        assert_eq!(
            debug.chars().count(),
            "ApiKeyHash(".len() + 8 + "…)".chars().count()
        );
    }

    #[test]
    fn cache_ttl_is_capped_at_thirty_seconds() {
        let cache: ValidationCache<u32> = ValidationCache::new(Duration::from_secs(300), 10);
        assert_eq!(cache.ttl(), MAX_CACHE_TTL);
        let t0 = Instant::now();
        let h = ApiKeyHash([9; 32]);
        cache.insert_at(h, 1, t0);
        assert_eq!(cache.get_at(&h, t0 + Duration::from_secs(29)), Some(1));
        assert_eq!(cache.get_at(&h, t0 + Duration::from_secs(30)), None);
        assert!(cache.is_empty(), "expired entries are dropped on read");
    }

    #[test]
    fn cache_invalidation_and_capacity() {
        let cache: ValidationCache<u32> = ValidationCache::new(Duration::from_secs(10), 2);
        let t0 = Instant::now();
        let (a, b, c) = (
            ApiKeyHash([1; 32]),
            ApiKeyHash([2; 32]),
            ApiKeyHash([3; 32]),
        );
        cache.insert_at(a, 1, t0);
        cache.insert_at(b, 2, t0 + Duration::from_secs(1));
        cache.invalidate(&a);
        assert_eq!(cache.get_at(&a, t0), None);
        cache.insert_at(a, 1, t0 + Duration::from_secs(2));
        cache.insert_at(c, 3, t0 + Duration::from_secs(3));
        assert_eq!(cache.len(), 2);
        assert_eq!(
            cache.get_at(&b, t0 + Duration::from_secs(3)),
            None,
            "oldest evicted"
        );
        assert_eq!(cache.get_at(&c, t0 + Duration::from_secs(3)), Some(3));
    }
}
