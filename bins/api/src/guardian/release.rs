//! What vault-covered operations do before and after their guardians decide.
//!
//! - **Before**: an operator's approval of a redemption that a vault's policy covers (kind
//!   `redemption`, amount at or above the vault's minimum) does not approve it; it submits a
//!   vault request for it (once: the redemption records the request that decides it) and
//!   answers 202. The redemption stays `requested`.
//! - **After**: the decision that releases the request (exactly once, [`Releases::execute`])
//!   approves the redemption by compare-and-set (`requested` → `approved`, only by the
//!   request recorded on it). Were the process to stop between the two, the next operator
//!   approval of the redemption finds the request approved and completes it, once.
//!
//! - **Withdrawals**: a withdrawal a vault covers is recorded `held` (no transfer) and its
//!   vault request is submitted at once (a retry of the same `Idempotency-Key` submits it if
//!   a crash came between); the release moves it to `pending` with its transfer, once; a
//!   rejection, an expiry or a removal that closes the request rejects it (it never moves).
//!
//! Other operation kinds (minter-role changes, master-key rotation) are released to their
//! executors by request id; the vault's record is the authority.

use haven_core::ErrorCode;
use haven_core::audit::AuditEvent;
use haven_db::treasury::{Redemption, RedemptionStatus, Withdrawal};
use haven_vault::protocol::{RequestView, ServerMessage};
use haven_vault::{
    Amount, Caller, Operation, OperationKind, Release, RequestId, RequestState, Vault, VaultId,
    VaultRequest,
};
use serde_json::json;
use uuid::Uuid;

use super::GuardianContext;
use crate::error::ApiError;

/// Executes released operations.
#[derive(Debug, Clone)]
pub struct Releases {
    treasury: haven_db::PgTreasury,
}

impl Releases {
    /// Over the treasury's tables.
    pub fn new(treasury: haven_db::PgTreasury) -> Self {
        Self { treasury }
    }

    /// Carries out a released operation (a redemption approved, a withdrawal released); a
    /// failure is logged (the next operator approval completes a redemption).
    pub async fn execute(&self, release: &Release) {
        self.apply(
            release.request_id,
            release.vault_id,
            &release.operation,
            true,
        )
        .await;
    }

    /// A request closed without release (rejected by its guardians, expired, or left
    /// unreachable by a removal): a withdrawal it decides is rejected, once.
    pub async fn closed(&self, request: &VaultRequest) {
        self.apply(request.id, request.vault_id, &request.operation, false)
            .await;
    }

    async fn apply(
        &self,
        request: RequestId,
        vault: VaultId,
        operation: &Operation,
        released: bool,
    ) {
        let kind = operation.kind;
        match self
            .treasury
            .apply_vault_outcome(request, vault, operation, released)
            .await
        {
            Ok(true) => {
                tracing::info!(%request, %kind, released, "applied the guardians' decision")
            }
            Ok(false) => {
                tracing::info!(%request, %kind, released, "nothing waited for this decision here")
            }
            Err(error) => {
                tracing::error!(%request, %kind, released, %error, "the guardians' decision could not be applied")
            }
        }
    }
}

/// Submits a held withdrawal that `vault` covers to its guardians, unless a request already
/// decides it; the request that decides it.
pub async fn submit_withdrawal(
    guardians: &GuardianContext,
    vault: &Vault,
    withdrawal: &Withdrawal,
    caller: &Caller,
) -> Result<Uuid, ApiError> {
    if let Some(existing) = withdrawal.vault_request_id {
        return Ok(existing);
    }
    let operation = Operation::new(OperationKind::Withdrawal)
        .amount(Amount(withdrawal.amount.base_units()))
        .params(json!({
            "withdrawal_id": withdrawal.id.to_string(),
            "member_id": withdrawal.member_id.to_string(),
            "chain": withdrawal.chain,
            "address": withdrawal.address,
        }));
    let request = guardians
        .vaults
        .create_request(vault.id, operation, caller)
        .await?;
    let deciding = guardians
        .releases
        .treasury
        .attach_withdrawal_vault_request(withdrawal.id, request.id.0)
        .await
        .map_err(crate::routes::token::treasury_error)?;
    announce(guardians, &request, deciding);
    Ok(deciding)
}

/// Tells the vault's guardians about `request` if it is the one that decides (a concurrent
/// submission may have attached another one first, which was announced then).
pub fn announce(guardians: &GuardianContext, request: &VaultRequest, deciding: Uuid) {
    if deciding == request.id.0 {
        guardians.hub.push(
            request.vault_id,
            ServerMessage::RequestCreated {
                request: RequestView::from(request),
            },
        );
        metrics::counter!(crate::metrics::VAULT_REQUESTS_CREATED,
            "kind" => request.operation.kind.as_str())
        .increment(1);
    }
}

/// What an operator's approval of a redemption does when guardians may be involved.
#[derive(Debug)]
pub enum Gate {
    /// No vault covers it: the ordinary approval applies.
    Proceed,
    /// It waits for the guardians of this request (202).
    Waiting(serde_json::Value),
    /// Its request had been released: it is approved now (recovery).
    Approved(Box<Redemption>),
}

/// Decides an operator's approval of redemption `id` (see the module docs).
pub async fn gate_redemption(
    guardians: &GuardianContext,
    id: Uuid,
    caller: &Caller,
    audit: AuditEvent,
) -> Result<Gate, ApiError> {
    let releases = &guardians.releases;
    let treasury = &releases.treasury;
    let redemption = treasury
        .redemption(id)
        .await
        .map_err(crate::routes::token::treasury_error)?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no redemption {id}")))?;
    if redemption.status != RedemptionStatus::Requested {
        return Ok(Gate::Proceed);
    }
    if let Some(request) = redemption.vault_request_id {
        return decided(guardians, releases, &redemption, RequestId(request)).await;
    }
    let amount = Amount(redemption.amount.base_units());
    let Some(vault) = guardians
        .vaults
        .guarding(OperationKind::Redemption, amount)
        .await?
    else {
        return Ok(Gate::Proceed);
    };
    let operation = Operation::new(OperationKind::Redemption)
        .amount(amount)
        .params(json!({
            "redemption_id": redemption.id.to_string(),
            "member_id": redemption.member_id.to_string(),
            "currency": redemption.fiat_currency,
            "fiat_amount": redemption.fiat_amount,
            "payout_reference": redemption.payout_reference,
        }));
    let request = guardians
        .vaults
        .create_request(vault.id, operation, caller)
        .await?;
    let deciding = treasury
        .attach_vault_request(id, request.id.0, audit)
        .await
        .map_err(crate::routes::token::treasury_error)?;
    announce(guardians, &request, deciding);
    Ok(Gate::Waiting(waiting(&redemption, deciding, vault.id.0)))
}

async fn decided(
    guardians: &GuardianContext,
    releases: &Releases,
    redemption: &Redemption,
    request: RequestId,
) -> Result<Gate, ApiError> {
    let vault_request = guardians.vaults.request(request).await?;
    match vault_request.state {
        RequestState::Open => Ok(Gate::Waiting(waiting(
            redemption,
            request.0,
            vault_request.vault_id.0,
        ))),
        RequestState::Approved => {
            releases
                .treasury
                .apply_vault_outcome(
                    request,
                    vault_request.vault_id,
                    &vault_request.operation,
                    true,
                )
                .await
                .map_err(crate::routes::token::treasury_error)?;
            let now = releases
                .treasury
                .redemption(redemption.id)
                .await
                .map_err(crate::routes::token::treasury_error)?
                .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "the redemption is gone"))?;
            Ok(Gate::Approved(Box::new(now)))
        }
        state => Err(ApiError::new(
            ErrorCode::InvalidTransition,
            format!(
                "the guardians' request {request} for this redemption is {state}; reject the redemption"
            ),
        )),
    }
}

fn waiting(redemption: &Redemption, request: Uuid, vault: Uuid) -> serde_json::Value {
    json!({
        "id": redemption.id,
        "status": redemption.status.as_str(),
        "waiting_for": "guardians",
        "vault_id": vault,
        "vault_request_id": request,
    })
}
