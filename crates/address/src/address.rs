use std::fmt;

use serde::{Serialize, Serializer};

use crate::Family;

/// What kind of address or account an input is, as far as its text tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// EVM: the input was in EIP-55 form and its checksum verified (`eip55`).
    Eip55,
    /// EVM: an all-lower-case body, accepted without a checksum (`lowercase`).
    LowerCase,
    /// EVM: an all-upper-case body, accepted without a checksum (`uppercase`).
    UpperCase,
    /// Solana, Cosmos, Tron: an account address (`account`). Solana program-derived
    /// addresses are accounts too.
    Account,
    /// NEAR: a named account such as `alice.near` (`named`).
    Named,
    /// NEAR: an implicit account, 64 lower-case hex (`implicit`).
    Implicit,
    /// NEAR: an ETH-implicit account, `0x` + 40 lower-case hex (NEP-518, `eth-implicit`).
    EthImplicit,
    /// NEAR: a deterministic account, `0s` + 40 lower-case hex (NEP-616, `deterministic`).
    Deterministic,
    /// TON: raw `workchain:hash` form, which carries no flags (`raw`).
    Raw,
    /// TON: user-friendly and bounceable (`bounceable`).
    Bounceable,
    /// TON: user-friendly and non-bounceable (`non-bounceable`).
    NonBounceable,
    /// Bitcoin: pay to public key hash (`p2pkh`).
    P2pkh,
    /// Bitcoin: pay to script hash (`p2sh`).
    P2sh,
    /// Bitcoin: segwit v0, 20-byte program (`p2wpkh`).
    P2wpkh,
    /// Bitcoin: segwit v0, 32-byte program (`p2wsh`).
    P2wsh,
    /// Bitcoin: segwit v1, 32-byte program (`p2tr`).
    P2tr,
    /// Bitcoin: any other segwit program, e.g. a future version (`witness-v<N>`).
    Witness {
        /// The witness version, 1–16.
        version: u8,
    },
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Kind::Eip55 => "eip55",
            Kind::LowerCase => "lowercase",
            Kind::UpperCase => "uppercase",
            Kind::Account => "account",
            Kind::Named => "named",
            Kind::Implicit => "implicit",
            Kind::EthImplicit => "eth-implicit",
            Kind::Deterministic => "deterministic",
            Kind::Raw => "raw",
            Kind::Bounceable => "bounceable",
            Kind::NonBounceable => "non-bounceable",
            Kind::P2pkh => "p2pkh",
            Kind::P2sh => "p2sh",
            Kind::P2wpkh => "p2wpkh",
            Kind::P2wsh => "p2wsh",
            Kind::P2tr => "p2tr",
            Kind::Witness { version } => return write!(f, "witness-v{version}"),
        };
        f.write_str(name)
    }
}

impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The network an address is bound to, as far as its text tells.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Network {
    /// The format is the same on every network of the family (EVM, Solana, NEAR, Tron, TON
    /// raw) (`any`).
    Any,
    /// Bitcoin mainnet, or a TON address without the test-only flag (`mainnet`).
    Mainnet,
    /// Bitcoin testnet/signet, or a TON address with the test-only flag (`testnet`).
    Testnet,
    /// A Cosmos address: its lower-case human-readable part (`cosmos`, `remes`, …).
    Hrp(String),
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Network::Any => "any",
            Network::Mainnet => "mainnet",
            Network::Testnet => "testnet",
            Network::Hrp(hrp) => hrp,
        })
    }
}

impl Serialize for Network {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A validated address in its normalized form.
///
/// Normalization per family: EVM → EIP-55; TON user-friendly → base64url with its flags
/// kept, TON raw → lower-case hex; bech32 (Bitcoin segwit, Cosmos) → lower case; Solana, NEAR,
/// Tron and base58 Bitcoin → unchanged. **Invariant:** validating `normalized()` again yields
/// the same normalized string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    family: Family,
    normalized: String,
    kind: Kind,
    network: Network,
}

impl Address {
    // Unused only when every family feature is off.
    #[cfg_attr(
        not(any(
            feature = "evm",
            feature = "solana",
            feature = "near",
            feature = "ton",
            feature = "bitcoin",
            feature = "cosmos",
            feature = "tron"
        )),
        allow(dead_code)
    )]
    pub(crate) fn new(family: Family, normalized: String, kind: Kind, network: Network) -> Self {
        Self {
            family,
            normalized,
            kind,
            network,
        }
    }

    /// The family the address was validated as.
    pub const fn family(&self) -> Family {
        self.family
    }

    /// The normalized form.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// The kind of address.
    pub const fn kind(&self) -> Kind {
        self.kind
    }

    /// The network the address belongs to.
    pub const fn network(&self) -> &Network {
        &self.network
    }

    /// The normalized form, owned.
    pub fn into_normalized(self) -> String {
        self.normalized
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized)
    }
}

impl AsRef<str> for Address {
    fn as_ref(&self) -> &str {
        &self.normalized
    }
}
