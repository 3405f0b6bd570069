//! Refresh-token families (sessions), logout and the access-token deny-list.
//!
//! A login creates a **family**: one session of one user on one device. Each refresh
//! presents the family's current refresh `jti` and gets a new one ([`SessionStore::rotate`]);
//! presenting a `jti` that was already rotated means the token was copied, so the whole
//! family is revoked and [`SessionError::ReuseDetected`] tells the caller to record a
//! security event. A user has at most [`SessionPolicy::max_active`] active families (a new
//! login revokes the oldest), and a family idle for [`SessionPolicy::idle_timeout`] ends.
//!
//! Access tokens are short-lived and not stored; logout puts one on a deny-list by `jti`
//! until it expires, and "log out everywhere" sets a per-user not-before.
//! [`CachedSessionStore`] answers the per-request check from memory and carries
//! revocations between replicas through a [`RevocationFeed`].

mod cached;
mod memory;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use haven_core::ErrorCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use cached::{CachedSessionStore, Revocation, RevocationFeed, RevocationListener};
pub use memory::MemorySessionStore;

/// Why a session operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// No family has this id, or the `jti` never belonged to it.
    #[error("unknown refresh token")]
    UnknownRefreshToken,
    /// The family was revoked earlier (logout, eviction, reuse, log out everywhere).
    #[error("session {family_id} was revoked ({reason})")]
    FamilyRevoked {
        /// The family.
        family_id: Uuid,
        /// Why it was revoked.
        reason: RevokeReason,
    },
    /// An already-rotated refresh token was presented: the family has now been revoked.
    /// Record a security event for `user_id`.
    #[error("refresh token reuse detected: session {family_id} of user {user_id} has been revoked")]
    ReuseDetected {
        /// The revoked family.
        family_id: Uuid,
        /// Its user.
        user_id: Uuid,
    },
    /// The family was idle too long or outlived its lifetime; it is now revoked.
    #[error("session {family_id} has expired")]
    Expired {
        /// The family.
        family_id: Uuid,
    },
    /// No such session of this user (another user's sessions are reported the same way).
    #[error("session {family_id} not found")]
    NotFound {
        /// The family asked for.
        family_id: Uuid,
    },
    /// The access token was logged out (deny-list) or predates "log out everywhere".
    #[error("the access token has been revoked")]
    AccessTokenRevoked,
    /// The storage backend failed.
    #[error("the session store failed")]
    Store {
        /// The backend's error.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
}

impl SessionError {
    /// The stable wire code of this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            SessionError::UnknownRefreshToken
            | SessionError::FamilyRevoked { .. }
            | SessionError::ReuseDetected { .. }
            | SessionError::AccessTokenRevoked => ErrorCode::Unauthorized,
            SessionError::Expired { .. } => ErrorCode::TokenExpired,
            SessionError::NotFound { .. } => ErrorCode::NotFound,
            SessionError::Store { .. } => ErrorCode::InternalError,
        }
    }

    /// Wraps a backend error.
    pub fn store(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        SessionError::Store {
            source: Arc::new(source),
        }
    }
}

/// Limits on sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Active families per user; creating one more revokes the oldest (3).
    pub max_active: usize,
    /// A family not refreshed for this long ends (30 minutes).
    pub idle_timeout: Duration,
    /// A family ends this long after login whatever its activity (7 days, the refresh TTL).
    pub lifetime: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            max_active: 3,
            idle_timeout: Duration::from_secs(30 * 60),
            lifetime: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Why a family was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    /// The user logged out of this session or revoked it from the session list.
    Logout,
    /// A newer login pushed it over the per-user limit.
    Evicted,
    /// An already-rotated refresh token of it was presented.
    ReuseDetected,
    /// The user logged out everywhere.
    LogoutEverywhere,
    /// It was idle too long or outlived its lifetime.
    Expired,
}

impl RevokeReason {
    /// The snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            RevokeReason::Logout => "logout",
            RevokeReason::Evicted => "evicted",
            RevokeReason::ReuseDetected => "reuse_detected",
            RevokeReason::LogoutEverywhere => "logout_everywhere",
            RevokeReason::Expired => "expired",
        }
    }
}

impl fmt::Display for RevokeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a login knows about the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The user logging in.
    pub user_id: Uuid,
    /// A device label (from the client or derived from the user agent).
    pub device: String,
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// The `User-Agent` header.
    pub user_agent: String,
}

/// A refresh-token family as users see it in their session list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The family id (the `fam` claim of its refresh tokens).
    pub family_id: Uuid,
    /// The user.
    pub user_id: Uuid,
    /// Device label.
    pub device: String,
    /// Client address at login.
    pub ip: Option<IpAddr>,
    /// `User-Agent` at login.
    pub user_agent: String,
    /// Login time.
    pub created_at: DateTime<Utc>,
    /// Last login or refresh.
    pub last_active_at: DateTime<Utc>,
    /// When it was revoked and why.
    pub revoked: Option<(DateTime<Utc>, RevokeReason)>,
}

impl Session {
    /// Whether the family can still be refreshed at `now`.
    pub fn is_active(&self, policy: &SessionPolicy, now: DateTime<Utc>) -> bool {
        self.revoked.is_none() && !self.is_expired(policy, now)
    }

    /// Whether the family is idle for too long or past its lifetime at `now`.
    pub fn is_expired(&self, policy: &SessionPolicy, now: DateTime<Utc>) -> bool {
        now >= add(self.last_active_at, policy.idle_timeout)
            || now >= add(self.created_at, policy.lifetime)
    }
}

/// `at + d`, saturating at the far future.
pub(crate) fn add(at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A new family and its first refresh `jti`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The new session.
    pub session: Session,
    /// The `jti` of its first refresh token.
    pub refresh_jti: Uuid,
    /// Families of the same user revoked to stay within [`SessionPolicy::max_active`].
    pub evicted: Vec<Uuid>,
}

/// The outcome of a successful rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The family.
    pub family_id: Uuid,
    /// Its user.
    pub user_id: Uuid,
    /// The `jti` of the new refresh token; the presented one is now spent.
    pub refresh_jti: Uuid,
}

/// Storage of refresh-token families, per-user not-before timestamps and the access-token
/// deny-list.
///
/// **Concurrency invariants** every implementation guarantees:
/// - `rotate` is atomic per family: of concurrent rotations presenting the same `jti`
///   exactly one succeeds; every other one — and any later presentation of a spent `jti` —
///   revokes the family and returns [`SessionError::ReuseDetected`].
/// - `create` is atomic per user: once it returns, the user has at most
///   `policy.max_active` active families, the new one included.
/// - A revoked family never becomes active again.
///
/// `now` is passed in so that time is the caller's (and tests') to control.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Creates a family for a login and revokes the user's oldest active families beyond
    /// `policy.max_active - 1`.
    async fn create(
        &self,
        new: NewSession,
        policy: &SessionPolicy,
        now: DateTime<Utc>,
    ) -> Result<Created, SessionError>;

    /// Spends `presented_jti` of `family_id` and returns the next `jti`.
    async fn rotate(
        &self,
        family_id: Uuid,
        presented_jti: Uuid,
        policy: &SessionPolicy,
        now: DateTime<Utc>,
    ) -> Result<Rotated, SessionError>;

    /// The user's active sessions, most recently active first.
    async fn list(
        &self,
        user_id: Uuid,
        policy: &SessionPolicy,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, SessionError>;

    /// Revokes one of the user's own sessions (logout). Idempotent; another user's session
    /// answers [`SessionError::NotFound`].
    async fn revoke(
        &self,
        user_id: Uuid,
        family_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), SessionError>;

    /// Logs the user out everywhere: revokes every family and sets the user's not-before to
    /// `now`, so every access token issued up to and including `now`'s second is refused.
    async fn revoke_all(&self, user_id: Uuid, now: DateTime<Utc>) -> Result<(), SessionError>;

    /// The user's not-before, if "log out everywhere" was used.
    async fn not_before(&self, user_id: Uuid) -> Result<Option<DateTime<Utc>>, SessionError>;

    /// Puts an access token on the deny-list until `expires_at` (its `exp`).
    async fn deny_access_token(
        &self,
        jti: Uuid,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), SessionError>;

    /// Refuses an access token of `user_id` with this `jti` and `iat` (seconds) if it is on
    /// the deny-list or was issued in or before the second of the user's not-before.
    async fn check_access_token(
        &self,
        user_id: Uuid,
        jti: Uuid,
        issued_at: i64,
        now: DateTime<Utc>,
    ) -> Result<(), SessionError>;
}
