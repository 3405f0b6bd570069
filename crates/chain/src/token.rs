//! The HAVEN token's bindings (from the committed artifact) and its deployment.

use alloy::primitives::Address;
use alloy::providers::Provider;

use crate::{Error, Result};

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    HavenToken,
    "../../contracts/artifacts/HavenToken.json"
);

/// The committed compiler output (`contracts/artifacts/HavenToken.json`): ABI, creation
/// bytecode, compiler and OpenZeppelin versions. Regenerate with `contracts/build.sh`.
pub const ARTIFACT_JSON: &str = include_str!("../../../contracts/artifacts/HavenToken.json");

/// Token name.
pub const NAME: &str = "HAVEN";
/// Token symbol.
pub const SYMBOL: &str = "HNV";
/// Token decimals.
pub const DECIMALS: u8 = 18;

/// Deploys the token and waits for the receipt; returns the contract address.
///
/// `provider` must sign for its sender (e.g. built with `.wallet(custody_signer)`); `admin`
/// gets `DEFAULT_ADMIN_ROLE`, `minter` gets `MINTER_ROLE` and `CUSTODIAN_ROLE` (usually the
/// custody wallet that [`TokenOps`](crate::TokenOps) signs with: the operator wallet that
/// mints, and burns or moves custodial holders' tokens).
pub async fn deploy<P: Provider>(provider: &P, admin: Address, minter: Address) -> Result<Address> {
    let pending = HavenToken::deploy_builder(provider, admin, minter)
        .send()
        .await
        .map_err(|e| Error::Deploy {
            reason: e.to_string(),
        })?;
    let receipt = pending.get_receipt().await.map_err(|e| Error::Deploy {
        reason: e.to_string(),
    })?;
    if !receipt.status() {
        return Err(Error::Deploy {
            reason: format!("deployment {} reverted", receipt.transaction_hash),
        });
    }
    receipt.contract_address.ok_or_else(|| Error::Deploy {
        reason: "the receipt has no contract address".to_owned(),
    })
}
