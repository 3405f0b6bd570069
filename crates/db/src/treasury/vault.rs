//! What a guardian vault's decision does to the treasury operation its request decides.

use haven_core::audit::{AuditEvent, Severity};
use haven_vault::{Operation, OperationKind, RequestId, VaultId};
use uuid::Uuid;

use super::{PgTreasury, TreasuryError};

/// The treasury operation a vault request decides, from its parameters.
fn decided(operation: &Operation) -> Option<(OperationKind, Uuid)> {
    let key = match operation.kind {
        OperationKind::Redemption => "redemption_id",
        OperationKind::Withdrawal => "withdrawal_id",
        _ => return None,
    };
    let id = operation.params.get(key)?.as_str()?.parse().ok()?;
    Some((operation.kind, id))
}

impl PgTreasury {
    /// Applies the outcome of vault request `request` (of `vault`, over `operation`) to the
    /// operation it decides, by compare-and-set, so a repeat or a recovery changes nothing:
    /// - released: a redemption `requested` → `approved`; a withdrawal `held` → `pending`
    ///   with its transfer;
    /// - closed without release (rejected, expired, unreachable): a withdrawal is rejected
    ///   and never moves; a redemption waits for its operator's rejection (its escrow must
    ///   be returned).
    ///
    /// Returns whether this call changed something; `false` also for operations outside the
    /// treasury (minter-role changes, key rotation).
    pub async fn apply_vault_outcome(
        &self,
        request: RequestId,
        vault: VaultId,
        operation: &Operation,
        released: bool,
    ) -> Result<bool, TreasuryError> {
        let audit =
            |action: &str| AuditEvent::new(format!("vault:{vault}"), action, Severity::High);
        match (decided(operation), released) {
            (Some((OperationKind::Redemption, id)), true) => {
                self.approve_redemption_by_vault(id, request.0, audit("redemption.approve"))
                    .await
            }
            (Some((OperationKind::Withdrawal, id)), approve) => {
                self.settle_vault_withdrawal(id, request.0, approve, audit("withdrawal.settle"))
                    .await
            }
            _ => Ok(false),
        }
    }
}
