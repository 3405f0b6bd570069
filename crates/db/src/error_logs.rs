use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::pool::get;
use crate::schema::error_logs;
use crate::{PgPool, Result};

/// One server error as answered to a client.
#[derive(Debug, Clone)]
pub struct NewErrorLog {
    /// The `error_id` in the body the client saw.
    pub error_id: Uuid,
    /// The request id.
    pub request_id: Option<String>,
    /// The wire code.
    pub code: String,
    /// The HTTP status.
    pub status: u16,
    /// Request method.
    pub method: Option<String>,
    /// Request path (without the query string).
    pub path: Option<String>,
    /// The internal cause chain; redacted here before it is stored.
    pub message: String,
}

/// The `error_logs` table.
#[derive(Debug, Clone)]
pub struct ErrorLogRepo {
    pool: PgPool,
}

impl ErrorLogRepo {
    /// A repository on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Stores one error (its message redacted).
    pub async fn insert(&self, log: NewErrorLog) -> Result<()> {
        let mut conn = get(&self.pool).await?;
        diesel::insert_into(error_logs::table)
            .values((
                error_logs::error_id.eq(log.error_id),
                error_logs::request_id.eq(log.request_id),
                error_logs::code.eq(log.code),
                error_logs::status.eq(i16::try_from(log.status).unwrap_or(500)),
                error_logs::method.eq(log.method),
                error_logs::path.eq(log.path),
                error_logs::message.eq(haven_core::redact(&log.message)),
            ))
            .execute(&mut conn)
            .await?;
        Ok(())
    }

    /// The stored message and code for an error id.
    pub async fn find(&self, error_id: Uuid) -> Result<Option<(String, String)>> {
        let mut conn = get(&self.pool).await?;
        Ok(error_logs::table
            .filter(error_logs::error_id.eq(error_id))
            .select((error_logs::code, error_logs::message))
            .first(&mut conn)
            .await
            .optional()?)
    }
}
