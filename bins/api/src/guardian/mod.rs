//! Guardians: their tokens, their sessions and their WebSocket.
//!
//! A guardian joins a vault with an invitation code and a device key and receives a
//! guardian token pair: JWTs of role `guardian` under their own audience (`<aud>:guardian`),
//! so a guardian token opens no user route and a user token no guardian route. The access
//! token carries its session (`fam`), so revoking a session (`DELETE
//! /api/v1/guardian/sessions/{id}`) ends its access tokens at once, not at their expiry.
//!
//! [`GuardianContext::authenticate`] is the one check, made at connect and on every
//! WebSocket frame and heartbeat: signature, algorithm, audience, expiry, role; the
//! deny-list and not-before; the session still active; the guardian still a member of its
//! vault. Approvals need more than a token: each is an ed25519 signature by the device key
//! registered at join ([`haven_vault::verify_decision`]), so a stolen token alone cannot
//! approve.

pub(crate) mod bridge;
pub(crate) mod hub;
pub(crate) mod release;
pub(crate) mod routes;
pub(crate) mod slots;
pub(crate) mod threshold;
pub(crate) mod ws;

use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};

use chrono::{DateTime, Utc};
use haven_auth::{
    IssuedToken, Jwt, JwtConfig, JwtError, Keyring, Role, SessionPolicy, SessionStore, TokenType,
};
use haven_core::ErrorCode;
use haven_vault::{GuardianId, VaultId, VaultService};
use uuid::Uuid;

use crate::config::auth::AuthConfig;
use crate::config::guardian::GuardianConfig;
use crate::error::ApiError;

/// A guardian the guard (or a frame's token) authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardianPrincipal {
    /// The guardian.
    pub guardian_id: GuardianId,
    /// Its vault (a guardian belongs to one).
    pub vault_id: VaultId,
    /// The session the token belongs to.
    pub session: Uuid,
    /// The token's `jti`.
    pub jti: Uuid,
    /// The token's expiry.
    pub expires_at: DateTime<Utc>,
}

impl GuardianPrincipal {
    /// The audit actor: `guardian:<id>`.
    pub fn actor(&self) -> String {
        format!("guardian:{}", self.guardian_id)
    }
}

/// Why a guardian token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Past its expiry.
    Expired,
    /// Revoked: the session ended, the token was denied, or the guardian was removed.
    Revoked(String),
    /// Anything else wrong with it.
    Invalid(String),
    /// A lookup failed (the database is down): neither accepted nor refused.
    Unavailable(String),
}

impl Refusal {
    /// The message for the client.
    pub fn message(&self) -> String {
        match self {
            Refusal::Expired => "the guardian token has expired".into(),
            Refusal::Revoked(why) | Refusal::Invalid(why) | Refusal::Unavailable(why) => {
                why.clone()
            }
        }
    }

    /// The HTTP answer.
    pub fn into_error(self) -> ApiError {
        let code = match self {
            Refusal::Unavailable(_) => ErrorCode::ServiceUnavailable,
            _ => ErrorCode::Unauthorized,
        };
        ApiError::new(code, self.message())
    }
}

/// Vaults, guardian tokens and sessions, the socket hub and the connection slots (app
/// data).
pub struct GuardianContext {
    /// Vaults, guardians and requests, audited.
    pub vaults: Arc<VaultService>,
    /// Guardian token issuing and verification (the guardian audience).
    pub jwt: Jwt,
    /// Sessions, shared with users' (a guardian id is the session's subject).
    pub sessions: Arc<dyn SessionStore>,
    /// Session limits.
    pub policy: SessionPolicy,
    /// The settings.
    pub config: GuardianConfig,
    /// The vaults' connected sockets, for pushes.
    pub hub: Arc<hub::Hub>,
    /// FROST rounds relayed between the guardians' devices.
    pub threshold: Arc<threshold::Relay>,
    /// What released (or closed) requests do to the operations they decide.
    pub releases: release::Releases,
    /// Connection slots per guardian, across replicas.
    pub slots: slots::Slots,
    /// The audit log (session revocations, socket refusals).
    pub audit: haven_db::PgAuditLog,
}

impl std::fmt::Debug for GuardianContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardianContext")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl GuardianContext {
    /// Builds the context over Postgres and Redis.
    pub fn build(
        auth: &AuthConfig,
        config: &GuardianConfig,
        db: haven_db::PgPool,
        redis: deadpool_redis::Pool,
        redis_url: &str,
    ) -> anyhow::Result<Self> {
        let audit = haven_db::PgAuditLog::new(db.clone());
        let vaults = VaultService::new(
            Arc::new(haven_db::PgVaultStore::new(db.clone())),
            Arc::new(audit.clone()),
            haven_vault::VaultConfig {
                invitation_ttl: chrono::Duration::from_std(config.invitation_ttl)?,
                request_ttl: chrono::Duration::from_std(config.request_ttl)?,
            },
        );
        let mut jwt_config = JwtConfig::new(
            auth.jwt_issuer.clone(),
            format!("{}:guardian", auth.jwt_audience),
        );
        jwt_config.access_ttl = config.access_ttl;
        let hub = Arc::new(hub::Hub::default());
        hub.attach(bridge::Bridge::start(
            redis.clone(),
            redis_url,
            format!("{}guardian:events", auth.redis_prefix),
            &hub,
        )?);
        let threshold = threshold::Relay::start(
            haven_db::PgVaultStore::new(db.clone()),
            hub.clone(),
            audit.clone(),
            config.round_timeout,
            config.signing_attempts,
        )?;
        Ok(Self {
            vaults: Arc::new(vaults),
            jwt: Jwt::new(jwt_config, Keyring::new(auth.signing_key()?)),
            sessions: Arc::new(haven_db::PgSessionStore::new(db.clone())),
            policy: SessionPolicy::default(),
            config: config.clone(),
            hub,
            threshold,
            releases: release::Releases::new(haven_db::PgTreasury::new(db.clone())),
            slots: slots::Slots::new(
                redis,
                format!("{}guardian:conns:", auth.redis_prefix),
                config.max_connections,
                config.idle_timeout,
            ),
            audit,
        })
    }

    /// An access token of `guardian` bound to `session`.
    pub fn issue_access(
        &self,
        guardian: GuardianId,
        session: Uuid,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, JwtError> {
        self.jwt
            .issue_session_access(guardian.0, Role::Guardian, session, now)
    }

    /// Checks a guardian access token completely (see the module docs).
    pub async fn authenticate(&self, token: &str) -> Result<GuardianPrincipal, Refusal> {
        let claims = self
            .jwt
            .verify(token, TokenType::Access)
            .map_err(|e| match e {
                JwtError::Expired => Refusal::Expired,
                other => Refusal::Invalid(format!("not a guardian token: {other}")),
            })?;
        let session = match (claims.role, claims.fam) {
            (Role::Guardian, Some(session)) => session,
            _ => return Err(Refusal::Invalid("not a guardian token".into())),
        };
        let now = Utc::now();
        let unavailable = |e: &dyn std::fmt::Display| Refusal::Unavailable(e.to_string());
        let (checked, sessions, guardian) = tokio::join!(
            self.sessions
                .check_access_token(claims.sub, claims.jti, claims.iat, now),
            self.sessions.list(claims.sub, &self.policy, now),
            self.vaults.guardian(GuardianId(claims.sub)),
        );
        match checked {
            Ok(()) => {}
            Err(haven_auth::SessionError::Store { source }) => return Err(unavailable(&source)),
            Err(e) => return Err(Refusal::Revoked(e.to_string())),
        }
        let sessions = sessions.map_err(|e| unavailable(&e))?;
        if !sessions.iter().any(|s| s.family_id == session) {
            return Err(Refusal::Revoked("the guardian session was revoked".into()));
        }
        let guardian = match guardian {
            Ok(g) => g,
            Err(haven_vault::Error::GuardianNotFound { .. }) => {
                return Err(Refusal::Revoked("no such guardian".into()));
            }
            Err(e) => return Err(unavailable(&e)),
        };
        if !guardian.is_active() {
            return Err(Refusal::Revoked(
                "the guardian was removed from its vault".into(),
            ));
        }
        Ok(GuardianPrincipal {
            guardian_id: guardian.id,
            vault_id: guardian.vault_id,
            session,
            jti: claims.jti,
            expires_at: DateTime::from_timestamp(claims.exp, 0).unwrap_or(now),
        })
    }
}

/// The guardian of a request, put there by the guard of an [`crate::access::Access::Guardian`]
/// route. A handler that takes it cannot run without one (401).
#[derive(Debug, Clone, Copy)]
pub struct CurrentGuardian(pub GuardianPrincipal);

impl FromRequest for CurrentGuardian {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<GuardianPrincipal>()
                .copied()
                .map(Self)
                .ok_or_else(|| {
                    ApiError::new(ErrorCode::Unauthorized, "a guardian token is required")
                }),
        )
    }
}
