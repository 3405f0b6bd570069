use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::error::{AddressError, UnknownChain};
use crate::{Address, Chain};

/// The outcome of validating one address, serialized as the wire contract shared by
/// `haven-admin address validate` and `POST /api/v1/addresses/validate`:
///
/// ```json
/// {"valid":true,"chain":"evm","normalized":"0x…","kind":"eip55","network":"any"}
/// {"valid":false,"chain":"evm","error":"BAD_CHECKSUM","message":"checksum mismatch"}
/// ```
///
/// `chain` is the canonical [`Chain`] name: the family name for any alias (`eth`, `base` →
/// `evm`), and `cosmos:<hrp>` (HRP in lower case) when a Cosmos HRP was required, so the echo
/// always names the rule that was applied. `error` is [`AddressError::code`] and `message` its
/// `Display`, which never repeats the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The input is a valid address of the chain.
    Valid {
        /// The canonical chain name.
        chain: String,
        /// The validated address.
        address: Address,
    },
    /// The input is not a valid address of the chain.
    Invalid {
        /// The canonical chain name.
        chain: String,
        /// Why it is invalid.
        error: AddressError,
    },
}

impl Report {
    /// Validates `input` against an already parsed chain.
    pub fn new(chain: &Chain, input: &str) -> Self {
        let name = chain.to_string();
        match chain.validate(input) {
            Ok(address) => Report::Valid {
                chain: name,
                address,
            },
            Err(error) => Report::Invalid { chain: name, error },
        }
    }

    /// An `invalid` report with the `UNSUPPORTED_CHAIN` code, for batch modes (`--stdin`) that
    /// answer an unknown chain in one line and go on; `chain` echoes the name as given.
    pub fn unsupported_chain(err: UnknownChain) -> Self {
        let chain = err.name().to_owned();
        Report::Invalid {
            chain,
            error: err.into(),
        }
    }

    /// Whether the address is valid.
    pub const fn is_valid(&self) -> bool {
        matches!(self, Report::Valid { .. })
    }

    /// The canonical chain name echoed in the report.
    pub fn chain(&self) -> &str {
        match self {
            Report::Valid { chain, .. } | Report::Invalid { chain, .. } => chain,
        }
    }
}

impl Serialize for Report {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Report::Valid { chain, address } => {
                let mut s = serializer.serialize_struct("Report", 5)?;
                s.serialize_field("valid", &true)?;
                s.serialize_field("chain", chain)?;
                s.serialize_field("normalized", address.normalized())?;
                s.serialize_field("kind", &address.kind())?;
                s.serialize_field("network", address.network())?;
                s.end()
            }
            Report::Invalid { chain, error } => {
                let mut s = serializer.serialize_struct("Report", 4)?;
                s.serialize_field("valid", &false)?;
                s.serialize_field("chain", chain)?;
                s.serialize_field("error", error.code())?;
                s.serialize_field("message", &error.to_string())?;
                s.end()
            }
        }
    }
}

/// Validates `input` as an address of `chain` and returns the serializable outcome.
///
/// An unknown chain (or one whose feature is off) is an `Err`: the API answers it with 400 and
/// the CLI exits with 2, while an invalid address is an `Ok(Report::Invalid)`.
///
/// ```
/// let report = haven_address::report("eth", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD")?;
/// assert_eq!(
///     serde_json::to_string(&report)?,
///     r#"{"valid":false,"chain":"evm","error":"BAD_CHECKSUM","message":"checksum mismatch"}"#
/// );
/// assert!(haven_address::report("dogecoin", "D…").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn report(chain: &str, input: &str) -> Result<Report, UnknownChain> {
    let chain: Chain = chain.parse()?;
    Ok(Report::new(&chain, input))
}
