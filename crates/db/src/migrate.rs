use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::{Error, Result};

/// Every migration under the workspace's `migrations/` folder, compiled in.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

type SyncConn = AsyncConnectionWrapper<AsyncPgConnection>;

async fn with_connection<T: Send + 'static>(
    url: &str,
    work: impl FnOnce(&mut SyncConn) -> Result<T> + Send + 'static,
) -> Result<T> {
    use diesel::Connection;
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = SyncConn::establish(&url).map_err(|e| Error::Unavailable(Box::new(e)))?;
        work(&mut conn)
    })
    .await
    .map_err(|e| Error::Migration(Box::new(e)))?
}

/// Applies pending migrations; returns the versions applied now (empty when up to date).
pub async fn run_migrations(url: &str) -> Result<Vec<String>> {
    with_connection(url, |conn| {
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(Error::Migration)?;
        Ok(applied.iter().map(ToString::to_string).collect())
    })
    .await
}

/// Reverts every applied migration, newest first; returns the versions reverted.
pub async fn revert_all_migrations(url: &str) -> Result<Vec<String>> {
    with_connection(url, |conn| {
        let reverted = conn
            .revert_all_migrations(MIGRATIONS)
            .map_err(Error::Migration)?;
        Ok(reverted.iter().map(ToString::to_string).collect())
    })
    .await
}

/// The versions applied to the database, oldest first.
pub async fn applied_migrations(url: &str) -> Result<Vec<String>> {
    with_connection(url, |conn| {
        let mut applied = conn.applied_migrations().map_err(Error::Migration)?;
        applied.sort();
        Ok(applied.iter().map(ToString::to_string).collect())
    })
    .await
}
