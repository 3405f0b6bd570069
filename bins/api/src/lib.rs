//! The haven HTTP API server.
//!
//! [`Application::build`] binds the routes to a listener (port 0 in tests) and exposes the
//! port; [`run`] serves until a shutdown future resolves, then drains in-flight requests.
//!
//! Every error response carries the JSON body of [`haven_core::ErrorBody`] and the request
//! id; server errors are stored in `error_logs` under the `error_id` the client saw.

pub mod access;
pub mod auth;
pub mod chain;
pub mod config;
pub mod error;
pub mod extract;
pub mod guardian;
pub mod hardening;
pub mod idempotency;
pub mod lockout;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod passwords;
mod pubsub;
pub mod ratelimit;
pub mod revocations;
mod routes;
pub mod state;
#[cfg(feature = "test-utils")]
pub mod testing;
pub mod tls;
pub mod treasury;

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

/// Every handler of the api (what [`Application::build`] serves), to extend or replace in
/// [`Application::build_with_routes`].
pub fn routes() -> access::RouteSet {
    routes::standard()
}

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
    redirect: Option<(u16, Server)>,
    breakers: Arc<haven_resilience::BreakerRegistry>,
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
        Self::build_with_routes(config, listener, routes::standard())
    }

    /// [`Application::build`] with another set of handlers. Refuses to build when a handler
    /// has no row in [`access::ROUTE_ACCESS`], a row has no handler, or a route is
    /// registered twice.
    pub fn build_with_routes(
        config: ApiConfig,
        listener: TcpListener,
        routes: access::RouteSet,
    ) -> anyhow::Result<Self> {
        // the binary chooses the TLS crypto provider; the libraries only use it
        install_crypto_provider();
        let routes = routes.check().map_err(|errors| {
            let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("the route table is inconsistent: {}", listed.join("; "))
        })?;
        let db = haven_db::connect_lazy(
            config.common.database_url.expose_secret(),
            config.common.db_pool_size,
        )
        .context("DATABASE_URL")?;
        let redis = haven_service::probe::redis_pool(config.common.redis_url.expose_secret(), 16)
            .map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
        let port = listener.local_addr()?.port();
        // Shared through Redis under the app's prefix, so every replica sees one state per
        // breaker; each falls back to local state while Redis is unreachable.
        let breakers = Arc::new(haven_resilience::BreakerRegistry::shared(
            haven_resilience::BreakerConfig::default(),
            haven_resilience::SharedBreakerConfig {
                key_prefix: format!("{}breaker:", config.auth.redis_prefix),
                ..haven_resilience::SharedBreakerConfig::default()
            },
            redis.clone(),
        )?);
        let rate_limits = web::Data::new(ratelimit::RateLimits::new(
            &config.rate_limits,
            redis.clone(),
        )?);
        let policy = web::Data::new(hardening::HardeningPolicy {
            hsts: config.tls.is_some(),
            cors_origins: config.cors_origins.clone(),
        });
        let metrics_access = web::Data::new(metrics::MetricsAccess(config.metrics_allow.clone()));
        metrics::install();
        let tls = config.tls.as_ref().map(tls::server_config).transpose()?;
        let redirect_listener = config
            .http_redirect_addr
            .map(|addr| {
                TcpListener::bind(addr)
                    .with_context(|| format!("cannot listen on HAVEN_HTTP_REDIRECT_ADDR={addr}"))
            })
            .transpose()?;
        let auth = web::Data::new(
            auth::AuthContext::build(&config.auth, db.clone(), redis.clone())
                .context("authentication")?,
        );
        revocations::RedisRevocationFeed::start(
            redis.clone(),
            config.common.redis_url.expose_secret(),
            format!("{}auth:revocations", config.auth.redis_prefix),
            &auth.revocations,
        )
        .context("the revocation channel")?;
        let domain = Domain::build(&config, &db, &redis, &breakers)?;
        let guardians = web::Data::new(
            guardian::GuardianContext::build(
                &config.auth,
                &config.guardian,
                db.clone(),
                redis.clone(),
                config.common.redis_url.expose_secret(),
            )
            .context("guardian vaults")?,
        );
        // the node's breaker, shared with the worker: `/ready` and token reads go through it
        breakers.get_or_create(chain::NODE_BREAKER)?;
        haven_resilience::metrics::count_transitions(&breakers);
        let public_host = config.public_host.clone();
        let node = chain::provider(&config.common.eth_rpc_url)
            .inspect_err(
                |error| tracing::warn!(%error, "ETH_RPC_URL: /ready will not report the node"),
            )
            .ok();
        let state = AppState {
            node,
            config: Arc::new(config),
            error_logs: haven_db::ErrorLogRepo::new(db.clone()),
            inbox: haven_db::PgInbox::new(db.clone()),
            db,
            redis,
            breakers: breakers.clone(),
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
                .app_data(rate_limits.clone())
                .app_data(policy.clone())
                .app_data(auth.clone())
                .app_data(domain.idempotency.clone())
                .app_data(metrics_access.clone())
                .app_data(domain.fraud.clone())
                .app_data(domain.rewards.clone())
                .app_data(domain.treasury.clone())
                .app_data(guardians.clone())
                // The last wrap runs first. Authentication, authorization and rate limits are
                // not here: each route's own guard applies them once the router has matched
                // it (`access::RouteSet`).
                .wrap(from_fn(hardening::cors))
                .wrap(from_fn(middleware::observe))
                .wrap(from_fn(metrics::track))
                .wrap(from_fn(hardening::secure_headers))
                .configure(|cfg| routes.configure(cfg))
                .default_service(web::to(middleware::not_found))
        });
        let server = match tls {
            Some(tls) => server.listen_rustls_0_23(listener, tls)?,
            None => server.listen(listener)?,
        }
        .disable_signals()
        .shutdown_timeout(30)
        .run();
        let redirect = match (redirect_listener, public_host) {
            (Some(listener), Some(public_host)) => {
                let redirect_port = listener.local_addr()?.port();
                tracing::info!(port = redirect_port, %public_host, "redirecting plain HTTP to HTTPS");
                Some((
                    redirect_port,
                    tls::redirect_server(listener, &public_host, port)?,
                ))
            }
            (Some(_), None) => anyhow::bail!("HAVEN_HTTP_REDIRECT_ADDR needs HAVEN_PUBLIC_HOST"),
            (None, _) => None,
        };
        tracing::info!(
            port,
            webhook_hmac = haven_webhooks::HmacBackend::detect().name(),
            "api listening"
        );
        Ok(Self {
            port,
            server,
            redirect,
            breakers,
        })
    }

    /// The circuit breakers the app reports on `/health` and `/metrics`; components built
    /// alongside it register theirs here.
    pub fn breakers(&self) -> Arc<haven_resilience::BreakerRegistry> {
        self.breakers.clone()
    }

    /// The port of the HTTP→HTTPS redirect listener, when there is one.
    pub fn redirect_port(&self) -> Option<u16> {
        self.redirect.as_ref().map(|(port, _)| *port)
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
        let redirect_handle = self.redirect.as_ref().map(|(_, server)| server.handle());
        tokio::spawn(async move {
            shutdown.await;
            if let Some(redirect) = redirect_handle {
                redirect.stop(true).await;
            }
            handle.stop(true).await;
        });
        match self.redirect {
            Some((_, redirect)) => {
                let (served, redirected) = tokio::join!(self.server, redirect);
                served?;
                redirected?;
            }
            None => self.server.await?,
        }
        tracing::info!("api stopped");
        Ok(())
    }
}

/// Installs rustls' `ring` provider as the process's TLS crypto provider unless one is
/// installed already. The libraries never choose it; `main` and [`Application::build`] call
/// this before any client or TLS listener exists.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // a concurrent install that won the race is just as good
        let _ = rustls::crypto::ring::default_provider().install_default();
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

/// The domain services the handlers reach through `web::Data`.
struct Domain {
    fraud: web::Data<routes::fraud::FraudService>,
    rewards: web::Data<routes::rewards::RewardsService>,
    treasury: web::Data<treasury::TreasuryService>,
    idempotency: web::Data<idempotency::IdempotencyGate>,
}

impl Domain {
    fn build(
        config: &ApiConfig,
        db: &haven_db::PgPool,
        redis: &deadpool_redis::Pool,
        breakers: &haven_resilience::BreakerRegistry,
    ) -> anyhow::Result<Self> {
        let engine = Arc::new(
            haven_fraud::Engine::new(
                Arc::new(haven_fraud::Rules::from_toml(haven_fraud::DEFAULT_RULES)?),
                Arc::new(haven_fraud::RedisWindowStore::new(redis.clone())),
            )
            .with_key_prefix(format!("{}fraud:", config.auth.redis_prefix)),
        );
        let fraud = web::Data::new(routes::fraud::FraudService {
            engine: engine.clone(),
            alerts: Arc::new(haven_db::PgAlertStore::new(db.clone())),
        });
        let rules = match &config.rewards_rules {
            Some(path) => haven_rewards::Rules::from_path(path)
                .with_context(|| format!("HAVEN_REWARDS_RULES={}", path.display()))?,
            None => haven_rewards::Rules::shipped(),
        };
        let rewards = web::Data::new(routes::rewards::RewardsService {
            intake: haven_db::rewards::Intake::new(
                haven_db::PgRewards::new(db.clone()),
                engine,
                Arc::new(rules),
            ),
            chain: config
                .token_address
                .map(|token| {
                    chain::TokenReader::new(
                        &config.common.eth_rpc_url,
                        token,
                        breakers.get_or_create(chain::NODE_BREAKER)?,
                    )
                })
                .transpose()?,
        });
        let treasury = web::Data::new(treasury::TreasuryService {
            treasury: haven_db::PgTreasury::new(db.clone()),
            prices: treasury::TreasuryService::prices(&config.treasury, breakers)
                .context("price sources (HAVEN_PRICE_*)")?,
            config: config.treasury.clone(),
            stats: Arc::new(haven_service::cache::SharedCache::new(
                Some(redis.clone()),
                format!("{}network:stats", config.auth.redis_prefix),
                std::time::Duration::from_secs(config.treasury.stats_cache_secs),
            )),
        });
        // Idempotency keys in Redis; when Redis is down, in Postgres (slower, never unprotected).
        // Keys found completed are replayed from this replica's memory for a minute.
        let idempotency = web::Data::new(idempotency::IdempotencyGate::new(
            Arc::new(haven_webhooks::CompletedCache::new(
                haven_webhooks::FallbackStore::new(
                    haven_webhooks::RedisIdempotencyStore::new(
                        redis.clone(),
                        config.auth.redis_prefix.clone(),
                    ),
                    haven_db::PgIdempotencyStore::new(db.clone()),
                ),
            )),
            haven_webhooks::IdempotencyConfig::default(),
        ));
        Ok(Self {
            fraud,
            rewards,
            treasury,
            idempotency,
        })
    }
}
