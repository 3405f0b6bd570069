//! The haven HTTP API server.
//!
//! [`Application::build`] binds the routes to a listener (port 0 in tests) and exposes the
//! port; [`run`] serves until a shutdown future resolves, then drains in-flight requests.
//!
//! Every error response carries the JSON body of [`haven_core::ErrorBody`] and the request
//! id; server errors are stored in `error_logs` under the `error_id` the client saw.

pub mod config;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod middleware;
mod routes;
pub mod state;

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, middleware::from_fn, web};
use anyhow::Context;
use secrecy::ExposeSecret;

use crate::config::ApiConfig;
use crate::state::AppState;

/// Applies pending migrations to `DATABASE_URL`.
pub async fn migrate(config: &ApiConfig) -> anyhow::Result<()> {
    let applied = haven_db::run_migrations(config.common.database_url.expose_secret())
        .await
        .context("applying migrations to DATABASE_URL")?;
    tracing::info!(applied = applied.len(), versions = ?applied, "migrations applied");
    Ok(())
}

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish()
    }
}

impl Application {
    /// Connects the pools (lazily: the server starts while a dependency is down and reports
    /// it in `/ready`) and binds the routes to `listener`.
    pub fn build(config: ApiConfig, listener: TcpListener) -> anyhow::Result<Self> {
        let db = haven_db::connect_lazy(
            config.common.database_url.expose_secret(),
            config.common.db_pool_size,
        )
        .context("DATABASE_URL")?;
        let redis = haven_service::probe::redis_pool(config.common.redis_url.expose_secret(), 16)
            .map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
        let port = listener.local_addr()?.port();
        let state = AppState {
            config: Arc::new(config),
            error_logs: haven_db::ErrorLogRepo::new(db.clone()),
            db,
            redis,
        };
        let body_limit = state.config.body_limit;
        let state = web::Data::new(state);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(extract::json_config(body_limit))
                .app_data(web::PayloadConfig::new(body_limit))
                .app_data(extract::path_config())
                .app_data(extract::query_config())
                .wrap(from_fn(middleware::observe))
                .configure(routes::configure)
        })
        .listen(listener)?
        .disable_signals()
        .shutdown_timeout(30)
        .run();
        tracing::info!(port, "api listening");
        Ok(Self { port, server })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` resolves, then stops accepting and drains in-flight requests.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let handle = self.server.handle();
        tokio::spawn(async move {
            shutdown.await;
            handle.stop(true).await;
        });
        self.server.await?;
        tracing::info!("api stopped");
        Ok(())
    }
}

/// Builds and serves the api on `listener` until `shutdown` resolves.
pub async fn run(
    config: ApiConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    Application::build(config, listener)?
        .run_until(shutdown)
        .await
}
