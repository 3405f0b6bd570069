//! Password hashing with argon2id at the OWASP parameters (m = 19 MiB, t = 2, p = 1).
//!
//! [`Passwords::verify_dummy`] spends the same work as a real verification, so a login for
//! an unknown user takes as long as one for a known user with a wrong password and the
//! response time does not reveal which accounts exist.

use std::fmt;

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use haven_core::ErrorCode;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::SecretString;

/// The shortest password [`Passwords::hash`] accepts, in characters.
pub const MIN_LEN: usize = 12;

/// The longest password accepted, in characters (bounds the work an attacker can cause).
pub const MAX_LEN: usize = 1024;

/// OWASP memory cost: 19 MiB, in KiB.
pub const OWASP_M_COST_KIB: u32 = 19 * 1024;
/// OWASP time cost (iterations).
pub const OWASP_T_COST: u32 = 2;
/// OWASP parallelism.
pub const OWASP_P_COST: u32 = 1;

/// Why a password was refused or could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// Shorter than [`MIN_LEN`] characters.
    #[error("the password has {len} characters; at least {MIN_LEN} are required")]
    TooShort {
        /// Length of the refused password, in characters.
        len: usize,
    },
    /// Longer than [`MAX_LEN`] characters.
    #[error("the password has {len} characters; at most {MAX_LEN} are allowed")]
    TooLong {
        /// Length of the refused password, in characters.
        len: usize,
    },
    /// The stored hash is not a PHC string this crate can verify.
    #[error("the stored password hash is malformed")]
    MalformedHash,
    /// The argon2 parameters were refused.
    #[error("invalid argon2 parameters: {reason}")]
    InvalidParams {
        /// What argon2 said.
        reason: String,
    },
    /// Hashing failed (random number generator or argon2).
    #[error("password hashing failed")]
    Hashing,
}

impl PasswordError {
    /// The stable wire code of this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            PasswordError::TooShort { .. } | PasswordError::TooLong { .. } => {
                ErrorCode::ValidationError
            }
            PasswordError::MalformedHash
            | PasswordError::InvalidParams { .. }
            | PasswordError::Hashing => ErrorCode::InternalError,
        }
    }
}

/// A stored password hash: an argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredHash(String);

impl StoredHash {
    /// Wraps a PHC string read from storage.
    pub fn from_phc(phc: impl Into<String>) -> Self {
        Self(phc.into())
    }

    /// The PHC string to store.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for StoredHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoredHash([redacted])")
    }
}

/// Reusable argon2 working memory (19 MiB at the OWASP parameters).
///
/// A thread that checks many passwords keeps one and passes it to
/// [`Passwords::verify_in`]: the memory is allocated once instead of per check, so the
/// allocator never accumulates freed 19 MiB blocks (which it may keep, fragmented, long after
/// a burst of logins). It is wiped after each use.
#[derive(Default)]
pub struct HashMemory(Vec<Block>);

impl HashMemory {
    /// Empty; it grows to the parameters' size on first use.
    pub fn new() -> Self {
        Self::default()
    }
}

impl fmt::Debug for HashMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashMemory")
            .field("blocks", &self.0.len())
            .finish()
    }
}

/// Hashes and verifies passwords with argon2id.
pub struct Passwords {
    argon2: Argon2<'static>,
    dummy: StoredHash,
}

impl Passwords {
    /// argon2id at the OWASP parameters (m = 19 MiB, t = 2, p = 1).
    pub fn owasp() -> Result<Self, PasswordError> {
        Self::with_params(OWASP_M_COST_KIB, OWASP_T_COST, OWASP_P_COST)
    }

    /// argon2id with explicit costs (memory in KiB). Meant for tests that cannot afford the
    /// OWASP cost; production uses [`Passwords::owasp`].
    pub fn with_params(m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Result<Self, PasswordError> {
        let params = Params::new(m_cost_kib, t_cost, p_cost, None).map_err(|e| {
            PasswordError::InvalidParams {
                reason: e.to_string(),
            }
        })?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut random = [0u8; 32];
        SystemRandom::new()
            .fill(&mut random)
            .map_err(|_| PasswordError::Hashing)?;
        let dummy_password: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let dummy = hash_with(&argon2, &dummy_password)?;
        Ok(Self { argon2, dummy })
    }

    /// Hashes `password` with a fresh random salt, after checking its length.
    pub fn hash(&self, password: &SecretString) -> Result<StoredHash, PasswordError> {
        let password = secrecy::ExposeSecret::expose_secret(password);
        check_length(password)?;
        hash_with(&self.argon2, password)
    }

    /// Whether `password` matches `stored`. A password longer than [`MAX_LEN`] is refused
    /// before any hashing; no minimum is enforced here, so a policy change never locks
    /// anyone out.
    pub fn verify(
        &self,
        password: &SecretString,
        stored: &StoredHash,
    ) -> Result<bool, PasswordError> {
        self.verify_in(password, stored, &mut HashMemory::new())
    }

    /// [`verify`](Self::verify) in `memory`, which is reused from call to call (see
    /// [`HashMemory`]). The parameters, version and salt are the stored hash's own; the
    /// comparison is constant-time.
    pub fn verify_in(
        &self,
        password: &SecretString,
        stored: &StoredHash,
        memory: &mut HashMemory,
    ) -> Result<bool, PasswordError> {
        let password = secrecy::ExposeSecret::expose_secret(password);
        check_max_length(password)?;
        let malformed = |_| PasswordError::MalformedHash;
        let parsed = PasswordHash::new(stored.as_str()).map_err(malformed)?;
        if parsed.algorithm != argon2::ARGON2ID_IDENT {
            return Err(PasswordError::MalformedHash);
        }
        let params = Params::try_from(&parsed).map_err(malformed)?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()
            .map_err(|_| PasswordError::MalformedHash)?
            .unwrap_or_default();
        let expected = parsed.hash.ok_or(PasswordError::MalformedHash)?;
        let salt = parsed.salt.ok_or(PasswordError::MalformedHash)?;
        let mut salt_buf = [0u8; 64];
        let salt = salt.decode_b64(&mut salt_buf).map_err(malformed)?;
        let blocks = params.block_count();
        let argon2 = Argon2::new(Algorithm::Argon2id, version, params);
        memory.0.resize(blocks, Block::default());
        let mut out = zeroize::Zeroizing::new(vec![0u8; expected.len()]);
        let hashed = argon2.hash_password_into_with_memory(
            password.as_bytes(),
            salt,
            &mut out,
            &mut memory.0[..blocks],
        );
        memory.0.iter_mut().for_each(|b| *b = Block::default());
        hashed.map_err(|_| PasswordError::Hashing)?;
        let computed = Output::new(&out).map_err(malformed)?;
        // `Output`'s equality is constant-time.
        Ok(computed == expected)
    }

    /// Spends the work of one [`verify`](Self::verify) against a hash of a random password
    /// and returns `false`. Call it when the user does not exist, so a login's timing does
    /// not reveal which accounts exist.
    pub fn verify_dummy(&self, password: &SecretString) -> Result<bool, PasswordError> {
        self.verify(password, &self.dummy).map(|_| false)
    }

    /// [`verify_dummy`](Self::verify_dummy) in reused `memory`.
    pub fn verify_dummy_in(
        &self,
        password: &SecretString,
        memory: &mut HashMemory,
    ) -> Result<bool, PasswordError> {
        self.verify_in(password, &self.dummy, memory).map(|_| false)
    }

    /// Whether `stored` was made with other parameters than these and should be re-hashed
    /// at the next successful login.
    pub fn needs_rehash(&self, stored: &StoredHash) -> bool {
        let Ok(parsed) = PasswordHash::new(stored.as_str()) else {
            return true;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return true;
        };
        let ours = self.argon2.params();
        parsed.algorithm != argon2::ARGON2ID_IDENT
            || params.m_cost() != ours.m_cost()
            || params.t_cost() != ours.t_cost()
            || params.p_cost() != ours.p_cost()
    }
}

impl fmt::Debug for Passwords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params = self.argon2.params();
        f.debug_struct("Passwords")
            .field("m_cost_kib", &params.m_cost())
            .field("t_cost", &params.t_cost())
            .field("p_cost", &params.p_cost())
            .finish_non_exhaustive()
    }
}

fn check_max_length(password: &str) -> Result<(), PasswordError> {
    // Checking bytes first keeps the count itself cheap for huge inputs.
    if password.len() > MAX_LEN * 4 {
        return Err(PasswordError::TooLong {
            len: password.chars().take(MAX_LEN * 4 + 1).count(),
        });
    }
    let len = password.chars().count();
    if len > MAX_LEN {
        return Err(PasswordError::TooLong { len });
    }
    Ok(())
}

fn check_length(password: &str) -> Result<(), PasswordError> {
    check_max_length(password)?;
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(PasswordError::TooShort { len });
    }
    Ok(())
}

fn hash_with(argon2: &Argon2<'static>, password: &str) -> Result<StoredHash, PasswordError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| PasswordError::Hashing)?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| PasswordError::Hashing)?;
    let hash = argon2
        .hash_password(password.as_bytes(), &salt)
        .map_err(|_| PasswordError::Hashing)?;
    Ok(StoredHash(hash.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s)
    }

    fn cheap() -> Passwords {
        Passwords::with_params(64, 1, 1).unwrap()
    }

    #[test]
    fn owasp_parameters_are_argon2id_19mib_t2_p1() {
        let passwords = Passwords::owasp().unwrap();
        let stored = passwords.hash(&secret("correct horse battery")).unwrap();
        assert!(
            stored
                .as_str()
                .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            stored.as_str()
        );
        assert!(
            passwords
                .verify(&secret("correct horse battery"), &stored)
                .unwrap()
        );
        assert!(
            !passwords
                .verify(&secret("correct horse batterY"), &stored)
                .unwrap()
        );
        assert!(!passwords.needs_rehash(&stored));
        assert!(cheap().needs_rehash(&stored));
    }

    #[test]
    fn hashes_are_salted() {
        let passwords = cheap();
        let a = passwords.hash(&secret("twelve chars")).unwrap();
        let b = passwords.hash(&secret("twelve chars")).unwrap();
        assert_ne!(a, b);
        assert!(passwords.verify(&secret("twelve chars"), &a).unwrap());
        assert!(passwords.verify(&secret("twelve chars"), &b).unwrap());
    }

    #[test]
    fn length_limits_are_counted_in_characters() {
        let passwords = cheap();
        assert_eq!(
            passwords.hash(&secret("eleven char")).err(),
            Some(PasswordError::TooShort { len: 11 })
        );
        assert!(passwords.hash(&secret("twelve chars")).is_ok());
        assert!(
            passwords.hash(&secret(&"é".repeat(12))).is_ok(),
            "12 chars, 24 bytes"
        );
        assert!(passwords.hash(&secret(&"x".repeat(MAX_LEN))).is_ok());
        assert_eq!(
            passwords.hash(&secret(&"x".repeat(MAX_LEN + 1))).err(),
            Some(PasswordError::TooLong { len: MAX_LEN + 1 })
        );
        let stored = passwords.hash(&secret("twelve chars")).unwrap();
        assert_eq!(
            passwords
                .verify(&secret(&"x".repeat(MAX_LEN + 1)), &stored)
                .err(),
            Some(PasswordError::TooLong { len: MAX_LEN + 1 })
        );
        assert!(
            passwords
                .verify(&secret("short"), &stored)
                .is_ok_and(|ok| !ok),
            "verification applies no minimum"
        );
        assert_eq!(
            PasswordError::TooShort { len: 3 }.code(),
            ErrorCode::ValidationError
        );
    }

    #[test]
    fn dummy_verification_uses_the_same_parameters_and_always_fails() {
        let passwords = Passwords::owasp().unwrap();
        assert!(
            !passwords.needs_rehash(&passwords.dummy),
            "same cost as real hashes"
        );
        assert!(
            !passwords
                .verify_dummy(&secret("correct horse battery"))
                .unwrap()
        );
        assert!(!passwords.verify_dummy(&secret("")).unwrap());
    }

    #[test]
    fn dummy_verification_takes_about_as_long_as_a_real_one() {
        let passwords = Passwords::owasp().unwrap();
        let stored = passwords.hash(&secret("correct horse battery")).unwrap();
        let time = |f: &dyn Fn()| {
            let start = std::time::Instant::now();
            for _ in 0..3 {
                f();
            }
            start.elapsed()
        };
        let real = time(&|| {
            passwords
                .verify(&secret("wrong password!"), &stored)
                .unwrap();
        });
        let dummy = time(&|| {
            passwords.verify_dummy(&secret("wrong password!")).unwrap();
        });
        let ratio = real.as_secs_f64() / dummy.as_secs_f64();
        // Loose bounds: the CI machine is shared; a missing dummy would be ~1000× faster.
        assert!(
            (0.2..5.0).contains(&ratio),
            "real {real:?} vs dummy {dummy:?}"
        );
    }

    #[test]
    fn malformed_or_foreign_hashes_are_refused() {
        let passwords = cheap();
        let pw = secret("twelve chars");
        assert_eq!(
            passwords
                .verify(&pw, &StoredHash::from_phc("not a hash"))
                .err(),
            Some(PasswordError::MalformedHash)
        );
        let argon2i = "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$Jq3Uxw3n6T8N2sKc2LOdxQ";
        assert_eq!(
            passwords.verify(&pw, &StoredHash::from_phc(argon2i)).err(),
            Some(PasswordError::MalformedHash)
        );
        assert!(!format!("{:?}", passwords.hash(&pw).unwrap()).contains("argon2"));
    }

    /// Verifying in reused memory agrees with the argon2 crate's own verifier, for hashes of
    /// other parameters too (the memory grows and shrinks with them).
    #[test]
    fn verification_in_reused_memory_matches_the_reference_verifier() {
        use argon2::password_hash::PasswordVerifier;
        let mut memory = HashMemory::new();
        for (m, t) in [(64, 1), (256, 3), (64, 2), (1024, 1)] {
            let passwords = Passwords::with_params(m, t, 1).unwrap();
            let stored = passwords.hash(&secret("correct horse battery")).unwrap();
            let parsed = PasswordHash::new(stored.as_str()).unwrap();
            for (candidate, expected) in [
                ("correct horse battery", true),
                ("correct horse batterY", false),
                ("", false),
            ] {
                let reference = Argon2::default()
                    .verify_password(candidate.as_bytes(), &parsed)
                    .is_ok();
                assert_eq!(reference, expected, "{m} {t} {candidate:?}");
                let ours = passwords
                    .verify_in(&secret(candidate), &stored, &mut memory)
                    .unwrap();
                assert_eq!(ours, expected, "{m} {t} {candidate:?}");
            }
            assert!(
                memory.0.iter().all(|b| b.as_ref().iter().all(|w| *w == 0)),
                "wiped"
            );
        }
        let passwords = cheap();
        assert!(
            !passwords
                .verify_dummy_in(&secret("anything at all"), &mut memory)
                .unwrap()
        );
    }
}
