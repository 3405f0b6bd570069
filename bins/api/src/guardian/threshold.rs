//! FROST threshold keys over the guardian socket: the api relays the rounds of
//! [`haven_vault::threshold::Coordinator`] between the guardians' devices and stores only
//! public data (the group key and who holds which participant's share).
//!
//! - `POST /api/v1/admin/vaults/{id}/threshold/dkg` starts a key generation among the
//!   vault's active guardians (threshold M of the policy); each device answers the relayed
//!   messages (`threshold` frames) and the group key is stored once all report the same one.
//! - `POST /api/v1/admin/vaults/{id}/threshold/sign` `{"message": "<hex>"}` starts a signing
//!   job; an attempt that times out (`HAVEN_GUARDIAN_ROUND_TIMEOUT_SECS`) is retried without
//!   its silent signers while `HAVEN_GUARDIAN_SIGNING_ATTEMPTS` and the threshold allow.
//! - `GET /api/v1/admin/vaults/{id}/threshold/{session}` tells where a job stands (the
//!   signature once signed).
//!
//! Rounds live in the process that started them: the vault's guardians must be connected to
//! that replica while a round runs.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use haven_core::ErrorCode;
use haven_core::audit::{AuditEvent, AuditSink, Severity};
use haven_vault::protocol::ServerMessage;
use haven_vault::threshold::{
    Contribution, Coordinator, JobStatus, Push, SessionId, Step, Target, ThresholdError,
};
use haven_vault::{GuardianId, VaultId};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::hub::{Event, Hub};
use super::{GuardianContext, GuardianPrincipal};
use crate::auth::Authenticated;
use crate::error::ApiError;

/// The relay's state: the coordinator, the key store, the hub it pushes through.
pub struct Relay {
    coordinator: Mutex<Coordinator>,
    store: haven_db::PgVaultStore,
    hub: Arc<Hub>,
    audit: haven_db::PgAuditLog,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").finish_non_exhaustive()
    }
}

fn threshold_error(e: ThresholdError) -> ApiError {
    let code = match e {
        ThresholdError::TimedOut
        | ThresholdError::Complete
        | ThresholdError::Failed
        | ThresholdError::WrongPhase { .. }
        | ThresholdError::Duplicate(_) => ErrorCode::Conflict,
        _ => ErrorCode::ValidationError,
    };
    ApiError::new(code, e.to_string())
}

impl Relay {
    /// A relay whose rounds time out after `timeout`, with at most `attempts` signing
    /// attempts per job. Spawns the task that expires rounds (it ends with the relay).
    pub fn start(
        store: haven_db::PgVaultStore,
        hub: Arc<Hub>,
        audit: haven_db::PgAuditLog,
        timeout: Duration,
        attempts: u32,
    ) -> anyhow::Result<Arc<Self>> {
        let relay = Arc::new(Self {
            coordinator: Mutex::new(Coordinator::new(
                chrono::Duration::from_std(timeout)?,
                attempts,
            )),
            store,
            hub,
            audit,
        });
        tokio::spawn(expire_rounds(Arc::downgrade(&relay)));
        Ok(relay)
    }

    fn coordinator(&self) -> std::sync::MutexGuard<'_, Coordinator> {
        self.coordinator
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn deliver(&self, pushes: Vec<Push>) {
        for (target, relay) in pushes {
            let message = ServerMessage::Threshold(relay);
            match target {
                Target::Vault(vault) => self.hub.push(vault, message),
                Target::Guardian(vault, guardian) => {
                    let text = haven_vault::protocol::ServerFrame::push(message).to_text();
                    self.hub
                        .send(vault, Event::FrameFor(guardian.0, Arc::new(text)));
                }
            }
        }
    }

    async fn audit(&self, actor: String, action: &str, target: String, details: serde_json::Value) {
        let event = AuditEvent::new(actor, action, Severity::High)
            .target(target)
            .details(details);
        if let Err(error) = self.audit.append(event).await {
            tracing::error!(%error, action, "could not audit a threshold round");
        }
    }

    /// Applies a guardian's contribution from its socket.
    pub async fn contribute(
        &self,
        guardian: &GuardianPrincipal,
        contribution: Contribution,
    ) -> Result<(), ApiError> {
        let step: Step = self
            .coordinator()
            .contribute(guardian.guardian_id, contribution, Utc::now())
            .map_err(threshold_error)?;
        if let Some(key) = &step.key {
            self.store.save_threshold_key(key).await?;
            let details = json!({
                "verifying_key": hex::encode(key.group.verifying_key()),
                "members": key.members,
            });
            self.audit(
                "system".into(),
                "vault.threshold.key",
                key.vault.to_string(),
                details,
            )
            .await;
        }
        if let Some((session, seconds)) = step.signed {
            metrics::histogram!(crate::metrics::VAULT_ROUND_DURATION, "kind" => "signing")
                .record(seconds);
            self.audit(
                guardian.actor(),
                "vault.threshold.signed",
                guardian.vault_id.to_string(),
                json!({"session": session}),
            )
            .await;
        }
        self.deliver(step.pushes);
        Ok(())
    }
}

async fn expire_rounds(relay: Weak<Relay>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let Some(relay) = relay.upgrade() else {
            return;
        };
        let (pushes, timeouts) = relay.coordinator().expire(Utc::now());
        if timeouts > 0 {
            metrics::counter!(crate::metrics::VAULT_ROUND_TIMEOUTS).increment(timeouts as u64);
            tracing::warn!(timeouts, "guardian rounds timed out");
        }
        relay.deliver(pushes);
    }
}

/// Starts a key generation among the vault's active guardians.
#[utoipa::path(
    post,
    path = "/api/v1/admin/vaults/{id}/threshold/dkg",
    tag = "vaults",
    params(("id" = Uuid, Path, description = "The vault id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 202, description = "Started: the session to follow", body = Object)),
)]
pub async fn start_dkg(
    principal: Authenticated,
    ctx: web::Data<GuardianContext>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let vault = VaultId(id.into_inner());
    let policy = ctx.vaults.vault(vault).await?.policy;
    let guardians: Vec<_> = ctx
        .vaults
        .guardians(vault)
        .await?
        .into_iter()
        .filter(|g| g.is_active())
        .map(|g| (g.id, g.device_key))
        .collect();
    let threshold = u16::try_from(policy.threshold).unwrap_or(u16::MAX);
    let (session, step) = ctx
        .threshold
        .coordinator()
        .start_dkg(vault, &guardians, threshold, Utc::now())
        .map_err(threshold_error)?;
    ctx.threshold
        .audit(
            principal.actor(),
            "vault.threshold.dkg_start",
            vault.to_string(),
            json!({"session": session, "threshold": threshold, "participants": guardians.len()}),
        )
        .await;
    ctx.threshold.deliver(step.pushes);
    Ok(HttpResponse::Accepted().json(json!({"session": session})))
}

/// `POST /api/v1/admin/vaults/{id}/threshold/sign` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignBody {
    /// What the group signs, hex (at most 4096 bytes).
    pub message: String,
}

/// Starts a signing job under the vault's threshold key.
#[utoipa::path(
    post,
    path = "/api/v1/admin/vaults/{id}/threshold/sign",
    tag = "vaults",
    params(("id" = Uuid, Path, description = "The vault id")),
    request_body = SignBody,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "Started: the session to follow", body = Object),
        (status = 404, description = "The vault has no threshold key", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn start_signing(
    req: HttpRequest,
    principal: Authenticated,
    ctx: web::Data<GuardianContext>,
    id: web::Path<Uuid>,
    body: web::Json<SignBody>,
) -> Result<HttpResponse, ApiError> {
    let _ = req;
    let vault = VaultId(id.into_inner());
    let message = hex::decode(&body.message)
        .ok()
        .filter(|m| !m.is_empty() && m.len() <= 4096)
        .ok_or_else(|| {
            ApiError::new(ErrorCode::ValidationError, "message: 1 to 4096 bytes, hex")
        })?;
    let key = ctx
        .threshold
        .store
        .threshold_key(vault)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "this vault has no threshold key"))?;
    let removed: BTreeSet<GuardianId> = ctx
        .vaults
        .guardians(vault)
        .await?
        .into_iter()
        .filter(|g| !g.is_active())
        .map(|g| g.id)
        .collect();
    let (session, step) = ctx
        .threshold
        .coordinator()
        .start_signing(key, message.clone(), &removed, Utc::now())
        .map_err(threshold_error)?;
    ctx.threshold
        .audit(
            principal.actor(),
            "vault.threshold.sign_start",
            vault.to_string(),
            json!({"session": session, "message": hex::encode(&message)}),
        )
        .await;
    ctx.threshold.deliver(step.pushes);
    Ok(HttpResponse::Accepted().json(json!({"session": session})))
}

/// Where a key generation or signing job stands.
#[utoipa::path(
    get,
    path = "/api/v1/admin/vaults/{id}/threshold/{session}",
    tag = "vaults",
    params(
        ("id" = Uuid, Path, description = "The vault id"),
        ("session" = Uuid, Path, description = "The job's session"),
    ),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "The job", body = Object)),
)]
pub async fn status(
    _principal: Authenticated,
    ctx: web::Data<GuardianContext>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (_vault, session) = path.into_inner();
    let status: Option<JobStatus> = ctx
        .threshold
        .coordinator()
        .status(SessionId(session), Utc::now());
    let status = status.ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            format!("no threshold job {session} here"),
        )
    })?;
    Ok(HttpResponse::Ok().json(status))
}
