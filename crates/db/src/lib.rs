//! The one Postgres schema of haven and everything that talks to it: the diesel
//! [`schema`], embedded [`migrations`](run_migrations), an async connection [`PgPool`], and
//! repositories for users, API keys, the hash-chained audit log and the error log.
//!
//! Domain crates define storage traits; this crate implements them for Postgres so that the
//! binaries can compose them ([`PgNonceStore`], [`PgWalletStore`], [`PgTxStore`] for the
//! chain crate's `transactions`, …). Nothing here depends on a web framework.
//!
//! ```no_run
//! # async fn demo() -> Result<(), haven_db::Error> {
//! let url = "postgres://haven:haven@127.0.0.1:5432/haven";
//! haven_db::run_migrations(url).await?;
//! let pool = haven_db::connect(url, 8).await?;
//! let users = haven_db::UserRepo::new(pool.clone());
//! let _admin = users.find_by_email("ops@example.com").await?;
//! # Ok(()) }
//! ```
//!
//! ## Features
//! No optional features.

mod api_keys;
mod audit;
mod auth;
mod backlog;
mod chain;
mod custody;
mod error;
mod error_logs;
mod fraud;
mod inbound;
mod inbound_group;
mod jobs;
mod migrate;
mod nonce;
mod pool;
mod retention;
pub mod rewards;
pub mod schema;
pub mod treasury;
mod users;
mod vault;
mod webhooks;

pub use api_keys::{ApiKeyRecord, ApiKeyRepo, NewApiKey};
pub use audit::{AuditFilter, ChainReport, PgAuditLog};
pub use auth::PgSessionStore;
pub use backlog::{Backlog, OUTBOXES, PoolUse, outbox_backlogs};
pub use chain::{PgTxStore, Requeue};
pub use custody::PgWalletStore;
pub use error::{Error, Result};
pub use error_logs::{ErrorLogRepo, NewErrorLog};
pub use fraud::{ClaimedDelivery, DeliveryOutcome, DeliveryState, PgAlertStore};
pub use inbound::{InboxOutcome, PgInbox, RelayReport, RelayRoutes};
pub use jobs::{JobRun, JobRunFilter, JobRunState, PgJobRuns};
pub use migrate::{MIGRATIONS, applied_migrations, revert_all_migrations, run_migrations};
pub use nonce::{NonceAccount, PgNonceStore};
pub use pool::{PgPool, connect, connect_lazy, ping, row_counts};
pub use retention::{RetentionPolicy, RetentionReport, apply_retention};
pub use rewards::{PgRewards, RewardRecord};
pub use treasury::PgTreasury;
pub use users::{Disable, NewUser, RevokedKey, Role, RoleChange, User, UserRepo};
pub use vault::PgVaultStore;
pub use webhooks::{
    AttemptOutcome, ClaimedWebhook, CreatedEndpoint, DeadLetter, DeadLetterPage, Delivery,
    DeliveryPage, EndpointChange, EndpointDeletion, EndpointDetails, MAX_SECRET_OVERLAP,
    OverlapRefusal, PgIdempotencyStore, PgReplayStore, PgWebhookOutbox, RecordedAttempt,
    RotatedSecret, SecretValidity, WebhookAttempt, WebhookEndpoint, check_overlap,
};
