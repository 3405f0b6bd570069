//! Postgres stores of haven-webhooks: idempotency keys and replay records (what the API
//! falls back to when Redis is unreachable), and the outbound webhook outbox the worker
//! drains.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Bytea, Double, Integer, Nullable, SmallInt, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven_webhooks::{
    Claim, Decision, EndpointHealth, Fingerprint, HealthVerdict, IdempotencyStore, LockToken,
    ReplayOutcome, ReplayStore, RetryPolicy, ScopedKey, Secret, StoreError, StoredResponse,
};
use uuid::Uuid;

use crate::pool::get;
use crate::schema::{
    webhook_deliveries as wd, webhook_endpoint_secrets as ws, webhook_endpoints as we,
    webhook_messages as wm,
};
use crate::{Error, PgPool, Result};

mod deliveries;
mod endpoints;
mod idempotency;
mod outbox;
mod replay;

pub use deliveries::{Delivery, DeliveryPage};
pub use endpoints::{
    DeadLetterPage, EndpointChange, EndpointDeletion, EndpointDetails, MAX_SECRET_OVERLAP,
    OverlapRefusal, RotatedSecret, SecretValidity, check_overlap,
};
pub use idempotency::PgIdempotencyStore;
pub use outbox::{
    AttemptOutcome, ClaimedWebhook, CreatedEndpoint, DeadLetter, PgWebhookOutbox, RecordedAttempt,
    WebhookAttempt, WebhookEndpoint,
};
pub use replay::PgReplayStore;

/// Longest interval handed to Postgres (100 years): larger `Duration`s would overflow
/// `make_interval` and mean "for ever" anyway.
const MAX_INTERVAL_SECS: f64 = 100.0 * 365.0 * 24.0 * 3600.0;

/// How often a claim or record retries when the row it collided with vanished between the
/// insert and the read (released or expired in between). Each retry is likely to insert.
const RACE_RETRIES: usize = 16;

/// The cursor of the page after `rows` (a full page of `limit`): its last row's id; `None`
/// on the last page.
fn next_cursor<R>(rows: &[R], limit: i64, id: impl Fn(&R) -> i64) -> Option<i64> {
    (i64::try_from(rows.len()).unwrap_or(i64::MAX) >= limit)
        .then(|| rows.last().map(id))
        .flatten()
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64().min(MAX_INTERVAL_SECS)
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable(Box::new(e))
}

/// The row a claim collided with kept changing under it.
#[derive(Debug, thiserror::Error)]
#[error("{table}: the row kept changing during {RACE_RETRIES} attempts")]
struct Contention {
    table: &'static str,
}

fn scope_text(key: &ScopedKey) -> String {
    // A JSON array is unambiguous ("a:b" + "c" differs from "a" + "b:c") and readable.
    serde_json::json!([key.scope.principal, key.scope.method, key.scope.path]).to_string()
}
