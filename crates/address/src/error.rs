use std::fmt;

use crate::Family;
use crate::bech32::Variant;

/// The result type of this crate.
pub type Result<T, E = AddressError> = std::result::Result<T, E>;

/// The part of an address a length or network refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Part {
    /// The whole input string, in characters.
    Input,
    /// The bech32 human-readable part, in characters.
    Hrp,
    /// The bech32 data part including its checksum, in characters.
    Data,
    /// The decoded payload, in bytes (base58check: version byte included, checksum excluded).
    Payload,
    /// A segwit witness program, in bytes.
    Program,
    /// The hex account hash of a raw TON address, in characters.
    Hash,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Input => "input",
            Part::Hrp => "human-readable part",
            Part::Data => "data part",
            Part::Payload => "decoded payload",
            Part::Program => "witness program",
            Part::Hash => "account hash",
        })
    }
}

/// The lengths a [`Part`] may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Expected {
    /// Exactly this many.
    Exactly(usize),
    /// Between the two bounds, both included.
    Between(usize, usize),
    /// At least this many.
    AtLeast(usize),
    /// One of the listed lengths.
    OneOf(&'static [usize]),
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Exactly(n) => write!(f, "exactly {n}"),
            Expected::Between(min, max) => write!(f, "between {min} and {max}"),
            Expected::AtLeast(n) => write!(f, "at least {n}"),
            Expected::OneOf(lengths) => {
                f.write_str("one of ")?;
                for (i, n) in lengths.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{n}")?;
                }
                Ok(())
            }
        }
    }
}

/// Why an input is not a valid address of the requested chain.
///
/// Messages never repeat the input itself (an input may be a secret pasted by mistake); they
/// name a position, a length or a byte instead. [`AddressError::code`] gives the stable
/// SCREAMING_SNAKE code used on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The input is empty.
    #[error("the address is empty")]
    Empty,
    /// The input contains a non-ASCII character. No address of any family has one, and
    /// look-alike letters (Cyrillic `а`, zero-width spaces) are the usual cause.
    #[error("non-ASCII character at position {position}")]
    NonAscii {
        /// Index of the first non-ASCII character (every character before it is ASCII, so this
        /// is both a character and a byte index).
        position: usize,
    },
    /// A character outside the family's alphabet, or not allowed at its position.
    #[error("character {character:?} at position {position} is not allowed")]
    BadCharacter {
        /// Index of the character in the input.
        position: usize,
        /// The offending character.
        character: char,
    },
    /// A part of the address has the wrong length.
    #[error("{part} has length {found}, expected {expected}")]
    BadLength {
        /// What was measured.
        part: Part,
        /// The allowed lengths.
        expected: Expected,
        /// The length found.
        found: usize,
    },
    /// The input does not start with the prefix its family requires.
    #[error("the address must start with {expected}")]
    BadPrefix {
        /// The required prefix.
        expected: &'static str,
    },
    /// The checksum does not match (EIP-55 case, base58check, bech32, TON CRC16).
    #[error("checksum mismatch")]
    BadChecksum,
    /// The bech32 checksum is valid but of the wrong variant (BIP-350: segwit v0 and Cosmos
    /// use bech32, segwit v1+ uses bech32m).
    #[error("the checksum is {found} but {expected} is required")]
    WrongChecksumVariant {
        /// The variant the address requires.
        expected: Variant,
        /// The variant the checksum verifies with.
        found: Variant,
    },
    /// Upper- and lower-case letters are mixed where the encoding forbids it (bech32).
    #[error("mixed upper and lower case")]
    MixedCase,
    /// A TON user-friendly address mixes the base64 (`+/`) and base64url (`-_`) alphabets.
    #[error("mixes the base64 and base64url alphabets")]
    MixedAlphabet,
    /// Bech32 data whose 5-to-8-bit conversion leaves more than 4 or non-zero padding bits.
    #[error("invalid padding bits in the data part")]
    BadPadding,
    /// A NEAR separator (`-`, `_`, `.`) that leads, trails or follows another separator.
    #[error("separator at position {position} is leading, trailing or doubled")]
    BadSeparator {
        /// Index of the separator.
        position: usize,
    },
    /// A bech32 string without the `1` separator.
    #[error("missing the bech32 separator '1'")]
    MissingSeparator,
    /// A version, witness version or tag byte the family does not use.
    #[error("unsupported version or tag byte {found:#04x}")]
    BadVersion {
        /// The byte found.
        found: u8,
    },
    /// A TON workchain other than 0 (basechain) or -1 (masterchain).
    #[error("unsupported workchain {found}")]
    BadWorkchain {
        /// The workchain found.
        found: i32,
    },
    /// The address belongs to another network (Bitcoin HRP, required Cosmos HRP).
    #[error("network {found:?} found where {expected} is required")]
    WrongNetwork {
        /// The network(s) accepted.
        expected: String,
        /// The network (HRP) of the input.
        found: String,
    },
    /// A Bitcoin WIF private key was given where an address was expected.
    #[error("this is a private key (WIF), not an address; treat the key as exposed")]
    PrivateKey,
    /// The chain is unknown, or its family is disabled at compile time.
    #[error("unsupported chain {chain:?}")]
    UnsupportedChain {
        /// The chain as given.
        chain: String,
    },
}

impl AddressError {
    /// Every wire code, in declaration order.
    pub const CODES: &'static [&'static str] = &[
        "EMPTY",
        "NON_ASCII",
        "BAD_CHARACTER",
        "BAD_LENGTH",
        "BAD_PREFIX",
        "BAD_CHECKSUM",
        "WRONG_CHECKSUM_VARIANT",
        "MIXED_CASE",
        "MIXED_ALPHABET",
        "BAD_PADDING",
        "BAD_SEPARATOR",
        "MISSING_SEPARATOR",
        "BAD_VERSION",
        "BAD_WORKCHAIN",
        "WRONG_NETWORK",
        "PRIVATE_KEY",
        "UNSUPPORTED_CHAIN",
    ];

    /// The stable SCREAMING_SNAKE code of this error, one per variant.
    pub const fn code(&self) -> &'static str {
        match self {
            AddressError::Empty => "EMPTY",
            AddressError::NonAscii { .. } => "NON_ASCII",
            AddressError::BadCharacter { .. } => "BAD_CHARACTER",
            AddressError::BadLength { .. } => "BAD_LENGTH",
            AddressError::BadPrefix { .. } => "BAD_PREFIX",
            AddressError::BadChecksum => "BAD_CHECKSUM",
            AddressError::WrongChecksumVariant { .. } => "WRONG_CHECKSUM_VARIANT",
            AddressError::MixedCase => "MIXED_CASE",
            AddressError::MixedAlphabet => "MIXED_ALPHABET",
            AddressError::BadPadding => "BAD_PADDING",
            AddressError::BadSeparator { .. } => "BAD_SEPARATOR",
            AddressError::MissingSeparator => "MISSING_SEPARATOR",
            AddressError::BadVersion { .. } => "BAD_VERSION",
            AddressError::BadWorkchain { .. } => "BAD_WORKCHAIN",
            AddressError::WrongNetwork { .. } => "WRONG_NETWORK",
            AddressError::PrivateKey => "PRIVATE_KEY",
            AddressError::UnsupportedChain { .. } => "UNSUPPORTED_CHAIN",
        }
    }

    /// Whether the error is about the chain rather than the address; an API answers it with
    /// 400 instead of an `invalid` report.
    pub const fn is_unsupported_chain(&self) -> bool {
        matches!(self, AddressError::UnsupportedChain { .. })
    }
}

/// A chain name that is not known, or whose family is disabled at compile time.
///
/// Kept apart from [`AddressError`] so that callers can tell "bad request" (unknown chain) from
/// "answered: the address is invalid".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", match .disabled {
    Some(family) => format!("chain {:?} needs the `{}` feature of haven-address", .name, family.name()),
    None => format!("unknown chain {:?}", .name),
})]
pub struct UnknownChain {
    name: String,
    disabled: Option<Family>,
}

impl UnknownChain {
    pub(crate) fn unknown(name: &str) -> Self {
        // Chain names come from requests; keep what is echoed short.
        let name: String = name.chars().take(64).collect();
        Self {
            name,
            disabled: None,
        }
    }

    pub(crate) fn disabled(name: &str, family: Family) -> Self {
        Self {
            name: name.to_owned(),
            disabled: Some(family),
        }
    }

    /// The chain name as given (cut to 64 characters).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The family the name belongs to when only its feature is missing.
    pub fn disabled_family(&self) -> Option<Family> {
        self.disabled
    }
}

impl From<UnknownChain> for AddressError {
    fn from(err: UnknownChain) -> Self {
        AddressError::UnsupportedChain { chain: err.name }
    }
}
