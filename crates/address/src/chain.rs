use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::Address;
use crate::error::{AddressError, Result, UnknownChain};

/// A family of chains that share one address format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Family {
    /// Ethereum and every EVM chain: ERC-55 checksummed hex.
    Evm,
    /// Solana: base58 of a 32-byte key.
    Solana,
    /// NEAR account ids.
    Near,
    /// TON (TEP-2) raw and user-friendly forms.
    Ton,
    /// Bitcoin base58check and segwit.
    Bitcoin,
    /// Cosmos-SDK chains: bech32 with any human-readable part.
    Cosmos,
    /// Tron: base58check with version 0x41.
    Tron,
}

/// Accepted chain names and symbols, matched without regard to case.
const NAMES: &[(&str, Family)] = &[
    ("evm", Family::Evm),
    ("eth", Family::Evm),
    ("ethereum", Family::Evm),
    ("arbitrum", Family::Evm),
    ("base", Family::Evm),
    ("optimism", Family::Evm),
    ("polygon", Family::Evm),
    ("avalanche", Family::Evm),
    ("linea", Family::Evm),
    ("bsc", Family::Evm),
    ("solana", Family::Solana),
    ("sol", Family::Solana),
    ("near", Family::Near),
    ("ton", Family::Ton),
    ("bitcoin", Family::Bitcoin),
    ("btc", Family::Bitcoin),
    ("cosmos", Family::Cosmos),
    ("tron", Family::Tron),
    ("trx", Family::Tron),
];

impl Family {
    /// Every family, enabled or not.
    pub const ALL: [Family; 7] = [
        Family::Evm,
        Family::Solana,
        Family::Near,
        Family::Ton,
        Family::Bitcoin,
        Family::Cosmos,
        Family::Tron,
    ];

    /// The canonical name, also the name of the cargo feature that enables it.
    pub const fn name(self) -> &'static str {
        match self {
            Family::Evm => "evm",
            Family::Solana => "solana",
            Family::Near => "near",
            Family::Ton => "ton",
            Family::Bitcoin => "bitcoin",
            Family::Cosmos => "cosmos",
            Family::Tron => "tron",
        }
    }

    /// Whether the family's feature is compiled in.
    pub const fn is_enabled(self) -> bool {
        match self {
            Family::Evm => cfg!(feature = "evm"),
            Family::Solana => cfg!(feature = "solana"),
            Family::Near => cfg!(feature = "near"),
            Family::Ton => cfg!(feature = "ton"),
            Family::Bitcoin => cfg!(feature = "bitcoin"),
            Family::Cosmos => cfg!(feature = "cosmos"),
            Family::Tron => cfg!(feature = "tron"),
        }
    }

    /// The families compiled in, in [`Family::ALL`] order.
    pub fn enabled() -> impl Iterator<Item = Family> {
        Family::ALL.into_iter().filter(|f| f.is_enabled())
    }

    /// Every name and symbol that selects this family (`evm`, `eth`, `base`, …).
    pub fn aliases(self) -> impl Iterator<Item = &'static str> {
        NAMES
            .iter()
            .filter(move |(_, f)| *f == self)
            .map(|(name, _)| *name)
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Family {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl FromStr for Family {
    type Err = UnknownChain;

    /// Parses a family name or alias (`eth`, `base`, `btc`, …), ignoring case.
    fn from_str(name: &str) -> Result<Self, UnknownChain> {
        NAMES
            .iter()
            .find(|(alias, _)| alias.eq_ignore_ascii_case(name))
            .map(|(_, family)| *family)
            .ok_or_else(|| UnknownChain::unknown(name))
    }
}

/// A chain to validate against: a [`Family`], and for Cosmos optionally a required
/// human-readable part.
///
/// Parse one from a name with [`str::parse`]: `evm`, `eth`, `base`, `solana`, `near`, `ton`,
/// `bitcoin`, `btc`, `cosmos`, `cosmos:remes`, `tron`, `trx` … (see [`Family::aliases`]).
/// Its [`Display`](fmt::Display) form is canonical: the family name, or `cosmos:<hrp>` with
/// the HRP in lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Chain {
    family: Family,
    hrp: Option<Box<str>>,
}

impl Chain {
    /// Longest bech32 human-readable part (BIP-173).
    const MAX_HRP: usize = 83;

    /// A chain of this family, accepting any network it has.
    pub const fn new(family: Family) -> Self {
        Self { family, hrp: None }
    }

    /// Cosmos with a required human-readable part (`remes`, `cosmos`, `osmo` …), stored in
    /// lower case. Fails if `hrp` is not a valid bech32 HRP (1–83 characters from `!` to `~`).
    pub fn cosmos(hrp: &str) -> Result<Self, UnknownChain> {
        let valid = (1..=Self::MAX_HRP).contains(&hrp.len())
            && hrp.bytes().all(|b| (33..=126).contains(&b));
        if !valid {
            return Err(UnknownChain::unknown(&format!("cosmos:{hrp}")));
        }
        Ok(Self {
            family: Family::Cosmos,
            hrp: Some(hrp.to_ascii_lowercase().into_boxed_str()),
        })
    }

    /// The family.
    pub const fn family(&self) -> Family {
        self.family
    }

    /// The human-readable part a Cosmos address must have, if one was required.
    pub fn required_hrp(&self) -> Option<&str> {
        self.hrp.as_deref()
    }

    /// Validates `input` as an address of this chain and returns it normalized.
    ///
    /// Nothing is trimmed. Empty and non-ASCII inputs are refused before any family rule
    /// runs. Never panics, whatever the input.
    pub fn validate(&self, input: &str) -> Result<Address> {
        if input.is_empty() {
            return Err(AddressError::Empty);
        }
        if let Some(position) = input.bytes().position(|b| !b.is_ascii()) {
            return Err(AddressError::NonAscii { position });
        }
        match self.family {
            #[cfg(feature = "evm")]
            Family::Evm => crate::family::evm::validate(input),
            #[cfg(feature = "solana")]
            Family::Solana => crate::family::solana::validate(input),
            #[cfg(feature = "near")]
            Family::Near => crate::family::near::validate(input),
            #[cfg(feature = "ton")]
            Family::Ton => crate::family::ton::validate(input),
            #[cfg(feature = "bitcoin")]
            Family::Bitcoin => crate::family::bitcoin::validate(input),
            #[cfg(feature = "cosmos")]
            Family::Cosmos => crate::family::cosmos::validate(input, self.required_hrp()),
            #[cfg(feature = "tron")]
            Family::Tron => crate::family::tron::validate(input),
            // Reached only when the family's feature is off.
            #[allow(unreachable_patterns)]
            _ => Err(AddressError::UnsupportedChain {
                chain: self.to_string(),
            }),
        }
    }
}

impl From<Family> for Chain {
    fn from(family: Family) -> Self {
        Chain::new(family)
    }
}

impl FromStr for Chain {
    type Err = UnknownChain;

    /// Parses `name` or `cosmos:<hrp>`, ignoring the case of the name. A family whose feature
    /// is off does not parse.
    fn from_str(spec: &str) -> Result<Self, UnknownChain> {
        let chain = match spec.split_once(':') {
            Some((name, hrp)) if name.eq_ignore_ascii_case("cosmos") => Chain::cosmos(hrp)?,
            Some(_) => return Err(UnknownChain::unknown(spec)),
            None => Chain::new(spec.parse()?),
        };
        if !chain.family.is_enabled() {
            return Err(UnknownChain::disabled(spec, chain.family));
        }
        Ok(chain)
    }
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.hrp {
            Some(hrp) => write!(f, "{}:{hrp}", self.family),
            None => f.write_str(self.family.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_parse_to_their_family() {
        for (name, family) in NAMES {
            let chain: Chain = name.parse().unwrap();
            assert_eq!(chain.family(), *family);
            assert_eq!(chain.to_string(), family.name());
            let upper: Chain = name.to_uppercase().parse().unwrap();
            assert_eq!(upper.family(), *family);
        }
        for family in Family::ALL {
            assert!(family.aliases().any(|a| a == family.name()));
        }
    }

    #[test]
    fn cosmos_hrp_is_canonical_lower_case() {
        let chain: Chain = "Cosmos:REMES".parse().unwrap();
        assert_eq!(chain.required_hrp(), Some("remes"));
        assert_eq!(chain.to_string(), "cosmos:remes");
    }

    #[test]
    fn unknown_names_are_refused() {
        for spec in [
            "",
            "dogecoin",
            "evm:1",
            "cosmos:",
            "cosmos: x",
            " evm",
            "evm ",
        ] {
            let err = spec.parse::<Chain>().unwrap_err();
            assert_eq!(err.disabled_family(), None, "{spec}");
        }
        let long = "cosmos:".to_owned() + &"a".repeat(84);
        assert!(long.parse::<Chain>().is_err());
    }
}
