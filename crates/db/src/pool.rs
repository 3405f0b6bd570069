use diesel_async::AsyncPgConnection;
use diesel_async::RunQueryDsl;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::deadpool::{Object, Pool};

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
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url);
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

pub(crate) async fn get(pool: &PgPool) -> Result<Object<AsyncPgConnection>> {
    pool.get().await
}
