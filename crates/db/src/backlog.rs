//! How far behind the outboxes are: what operators alert on and `/api/v1/admin/status`
//! reports. Every outbox lives in the one Postgres, so any process reads the same numbers.

use diesel_async::RunQueryDsl;

use crate::{PgPool, Result};

/// The outboxes [`outbox_backlogs`] reports, by the name used in metrics and the status
/// report, and what "not yet done" means for each.
pub const OUTBOXES: [(&str, &str); 4] = [
    (
        "webhook_deliveries",
        "SELECT count(*) AS pending, min(m.created_at) AS oldest FROM webhook_deliveries d \
         JOIN webhook_messages m ON m.id = d.message_id WHERE d.status = 'pending'",
    ),
    (
        "alert_deliveries",
        "SELECT count(*) AS pending, min(created_at) AS oldest FROM transaction_monitoring \
         WHERE delivered_at IS NULL",
    ),
    (
        "reward_jobs",
        "SELECT count(*) AS pending, min(created_at) AS oldest FROM reward_jobs \
         WHERE done_at IS NULL",
    ),
    (
        "token_movements",
        "SELECT count(*) AS pending, min(created_at) AS oldest FROM token_movements \
         WHERE state IN ('pending', 'submitted')",
    ),
];

/// One outbox's backlog.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Backlog {
    /// The outbox, one of [`OUTBOXES`].
    pub outbox: &'static str,
    /// Items not yet done.
    pub pending: i64,
    /// How long the oldest of them has waited, in seconds; `None` when there are none.
    pub oldest_age_seconds: Option<f64>,
}

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pending: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
    age: Option<f64>,
}

/// The backlog of every outbox of [`OUTBOXES`], in that order.
pub async fn outbox_backlogs(pool: &PgPool) -> Result<Vec<Backlog>> {
    let mut conn = pool.get().await?;
    let mut backlogs = Vec::with_capacity(OUTBOXES.len());
    for (outbox, query) in OUTBOXES {
        let row: Row = diesel::sql_query(format!(
            "SELECT pending, extract(epoch FROM now() - oldest)::float8 AS age FROM ({query}) b"
        ))
        .get_result(&mut conn)
        .await?;
        backlogs.push(Backlog {
            outbox,
            pending: row.pending,
            oldest_age_seconds: row.age.map(|age| age.max(0.0)),
        });
    }
    Ok(backlogs)
}

/// How many connections a pool holds and may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PoolUse {
    /// Connections checked out now.
    pub in_use: usize,
    /// Connections open (in use or idle).
    pub open: usize,
    /// The most the pool opens.
    pub max: usize,
}

impl PgPool {
    /// The pool's connections now.
    pub fn usage(&self) -> PoolUse {
        let status = self.inner().status();
        PoolUse {
            in_use: status.size.saturating_sub(status.available),
            open: status.size,
            max: status.max_size,
        }
    }
}
