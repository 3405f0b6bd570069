//! Validation and normalization of blockchain addresses for seven families: EVM (ERC-55),
//! Solana, NEAR, TON (TEP-2), Bitcoin (base58check, BIP-173/BIP-350 segwit), Cosmos-SDK
//! (bech32, any or a required HRP) and Tron.
//!
//! ```
//! use haven_address::{Family, Kind, Network};
//!
//! // Any alias selects its family; the result is normalized (EIP-55 here).
//! let address = haven_address::validate("base", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")?;
//! assert_eq!(address.family(), Family::Evm);
//! assert_eq!(address.normalized(), "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed");
//! assert_eq!(address.kind(), Kind::LowerCase); // accepted without a checksum
//!
//! // Errors say why.
//! let err = haven_address::validate("evm", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD").unwrap_err();
//! assert_eq!(err.code(), "BAD_CHECKSUM");
//!
//! // A Cosmos chain with a required human-readable part.
//! let remes = haven_address::validate("cosmos:remes", "remes1w508d6qejxtdg4y5r3zarvary0c5xw7k9zvx46")?;
//! assert_eq!(remes.network(), &Network::Hrp("remes".into()));
//!
//! // Which families could an input belong to?
//! assert_eq!(haven_address::detect("TNPeeaaFB7K9cmo4uQpcU32zGK8G1NYqeL"), [Family::Tron]);
//! assert_eq!(
//!     haven_address::detect("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
//!     [Family::Near, Family::Bitcoin],
//! );
//! # Ok::<(), haven_address::AddressError>(())
//! ```
//!
//! For a hot loop, parse the [`Chain`] once and call [`Chain::validate`]. For the wire, use
//! [`report`], whose [`Report`] serializes to the JSON shared by the CLI and the API.
//!
//! Rules the crate holds to, whatever the family: nothing is trimmed; empty and non-ASCII
//! input is refused before any family rule; no input makes it panic (fuzzed); error messages
//! never repeat the input.
//!
//! ## Features
//! Every family is a cargo feature, all on by default; a family whose feature is off does not
//! parse as a chain name.
//! - `evm` — ERC-55 hex addresses (uses `sha3` for keccak256).
//! - `solana` — base58 32-byte addresses (uses `bs58`).
//! - `near` — NEAR account ids: named, implicit, ETH-implicit, deterministic.
//! - `ton` — TEP-2 raw and user-friendly addresses (uses `crc`).
//! - `bitcoin` — base58check P2PKH/P2SH and segwit v0–v16 (uses `bs58`).
//! - `cosmos` — bech32 addresses with any or a required HRP.
//! - `tron` — base58check addresses with version 0x41 (uses `bs58`).
//!
//! The [`bech32`] layer is always compiled.

mod address;
pub mod bech32;
mod chain;
mod error;
mod family;
mod report;

pub use address::{Address, Kind, Network};
pub use chain::{Chain, Family};
pub use error::{AddressError, Expected, Part, Result, UnknownChain};
pub use report::{Report, report};

/// The crate's error type under its conventional name.
pub type Error = AddressError;

/// Validates `input` as an address of `chain` (a name or alias such as `eth`, `btc`,
/// `cosmos:remes`; see [`Chain`]).
///
/// An unknown chain gives [`AddressError::UnsupportedChain`]; use [`report`] or parse a
/// [`Chain`] first to tell it apart from an invalid address.
pub fn validate(chain: &str, input: &str) -> Result<Address> {
    let chain: Chain = chain.parse()?;
    chain.validate(input)
}

/// Validates `input` and returns only its normalized form.
pub fn normalize(chain: &str, input: &str) -> Result<String> {
    validate(chain, input).map(Address::into_normalized)
}

/// The enabled families `input` is a valid address of, in [`Family::ALL`] order.
///
/// Formats overlap: any lower-case alphanumeric string of 2–64 characters is a valid NEAR
/// named account, so a lower-case Cosmos or segwit address is one too.
pub fn detect(input: &str) -> Vec<Family> {
    Family::enabled()
        .filter(|family| Chain::new(*family).validate(input).is_ok())
        .collect()
}

/// Compiles and runs the README example as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
