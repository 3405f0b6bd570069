use diesel_async::AsyncPgConnection;
use diesel_async::RunQueryDsl;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};

use crate::{Error, Result};

/// An async pool of Postgres connections (cheap to clone).
#[derive(Clone)]
pub struct PgPool {
    inner: Pool<AsyncPgConnection>,
}

impl std::fmt::Debug for PgPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.inner.status();
        f.debug_struct("PgPool")
            .field("size", &status.size)
            .field("available", &status.available)
            .field("max_size", &status.max_size)
            .finish()
    }
}

impl PgPool {
    /// A connection from the pool; [`Error::Unavailable`] when none can be had within 5 s.
    pub async fn get(&self) -> Result<Object<AsyncPgConnection>> {
        self.inner
            .get()
            .await
            .map_err(|e| Error::Unavailable(Box::new(e)))
    }

    /// The underlying deadpool pool.
    pub fn inner(&self) -> &Pool<AsyncPgConnection> {
        &self.inner
    }
}

/// Builds a pool of at most `max_size` connections and checks that one can be opened.
pub async fn connect(url: &str, max_size: usize) -> Result<PgPool> {
    let pool = connect_lazy(url, max_size)?;
    ping(&pool).await?;
    Ok(pool)
}

/// Builds a pool without opening a connection (for services that must start while the
/// database is down and report it in `/ready`).
pub fn connect_lazy(url: &str, max_size: usize) -> Result<PgPool> {
    // A pooled connection is checked without a round trip: one whose socket the server
    // closed (a restart, an idle timeout) reports itself closed and is replaced; the
    // `SELECT 1` of the default check cost a round trip per checkout — a third of the
    // statements of a reward's journey.
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    let inner = Pool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(std::time::Duration::from_secs(5)))
        .create_timeout(Some(std::time::Duration::from_secs(5)))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| Error::Config {
            reason: e.to_string(),
        })?;
    Ok(PgPool { inner })
}

/// Runs `SELECT 1` on a pooled connection.
pub async fn ping(pool: &PgPool) -> Result<()> {
    let mut conn = pool.get().await?;
    diesel::sql_query("SELECT 1").execute(&mut conn).await?;
    Ok(())
}

/// The readiness probe of the pool: [`ping`].
#[async_trait::async_trait]
impl haven_core::Probe for PgPool {
    async fn probe(&self) -> Result<(), haven_core::ProbeError> {
        ping(self).await.map_err(Into::into)
    }
}

pub(crate) async fn get(pool: &PgPool) -> Result<Object<AsyncPgConnection>> {
    pool.get().await
}

#[derive(diesel::QueryableByName)]
struct TableName {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
}

#[derive(diesel::QueryableByName)]
struct RowCount {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    rows: i64,
}

/// The exact number of rows of every table of the schema (migration bookkeeping aside), by
/// table name: a before-and-after view of what a request or a job wrote.
pub async fn row_counts(pool: &PgPool) -> Result<std::collections::BTreeMap<String, i64>> {
    let mut conn = pool.get().await?;
    let tables: Vec<TableName> = diesel::sql_query(
        "SELECT table_name::text AS table_name FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' \
         AND table_name <> '__diesel_schema_migrations' ORDER BY table_name",
    )
    .load(&mut conn)
    .await?;
    let mut counts = std::collections::BTreeMap::new();
    for TableName { table_name } in tables {
        // The names come from the catalogue, quoted as identifiers.
        let quoted = format!("\"{}\"", table_name.replace('"', "\"\""));
        let count: RowCount = diesel::sql_query(format!("SELECT count(*) AS rows FROM {quoted}"))
            .get_result(&mut conn)
            .await?;
        counts.insert(table_name, count.rows);
    }
    Ok(counts)
}
