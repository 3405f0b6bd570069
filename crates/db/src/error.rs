use haven_core::ErrorCode;

/// A failure of the database layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database URL is malformed or the pool could not be built.
    #[error("invalid database configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// No connection could be obtained from the pool.
    #[error("database unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// A query failed.
    #[error("database query failed")]
    Query(#[from] diesel::result::Error),
    /// Applying or reverting migrations failed.
    #[error("migration failed")]
    Migration(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// A unique constraint was violated.
    #[error("conflict on {constraint}")]
    Conflict {
        /// The violated constraint.
        constraint: String,
    },
    /// The request cannot be carried out as asked (a week not over, a zero amount, …).
    #[error("invalid request: {reason}")]
    Invalid {
        /// What is wrong.
        reason: String,
    },
    /// A stored value could not be decoded (corrupt row).
    #[error("corrupt {table} row: {reason}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    /// The wire code this error is answered with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Unavailable(_) => ErrorCode::ServiceUnavailable,
            Error::Conflict { .. } => ErrorCode::Conflict,
            Error::Invalid { .. } => ErrorCode::ValidationError,
            Error::Config { .. }
            | Error::Query(_)
            | Error::Migration(_)
            | Error::Corrupt { .. } => ErrorCode::DatabaseError,
        }
    }

    /// Maps unique violations to [`Error::Conflict`], everything else to [`Error::Query`].
    pub(crate) fn from_write(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error as D};
        match err {
            D::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => Error::Conflict {
                constraint: info.constraint_name().unwrap_or("unique").to_owned(),
            },
            other => Error::Query(other),
        }
    }
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
