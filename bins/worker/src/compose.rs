//! The standard jobs and their schedules, composed from the configuration.

use std::sync::Arc;

use anyhow::Context;
use secrecy::ExposeSecret;

use crate::config::WorkerConfig;
use crate::runtime::{Registration, Schedule};

/// Every job the configuration turns on, with its schedule.
pub fn standard(
    config: &WorkerConfig,
    breakers: &Arc<haven_resilience::BreakerRegistry>,
) -> anyhow::Result<Vec<Registration>> {
    let url = config.common.database_url.expose_secret();
    let pool = |size: usize| haven_db::connect_lazy(url, size).context("DATABASE_URL");
    let cron = |expr: &crate::config::jobs::CronExpr| Schedule::Cron {
        expr: Box::new(expr.clone()),
        timezone: config.jobs.timezone,
    };
    let every = |interval| Schedule::Every(interval);
    let mut jobs = vec![
        Registration {
            job: Arc::new(
                crate::jobs::fraud_delivery::FraudDelivery::from_config(
                    &config.fraud,
                    pool(4)?,
                    breakers,
                )
                .context("fraud alert delivery settings")?,
            ),
            schedule: every(config.fraud.interval),
        },
        Registration {
            job: Arc::new(
                crate::jobs::webhook_delivery::WebhookDelivery::from_config(
                    &config.webhooks,
                    pool(4)?,
                )
                .context("webhook delivery settings")?
                .with_breakers(breakers.clone()),
            ),
            schedule: every(config.webhooks.interval),
        },
        Registration {
            job: Arc::new(crate::jobs::scheduled::RetentionJob::new(
                pool(2)?,
                config.jobs.retention_policy,
            )),
            schedule: cron(&config.jobs.retention),
        },
    ];
    jobs.push(Registration {
        job: Arc::new(crate::jobs::scheduled::VaultExpiryJob::new(pool(2)?)),
        schedule: every(crate::jobs::scheduled::VAULT_EXPIRY_EVERY),
    });
    if config.inbound_relay.routes.is_empty() {
        tracing::info!("inbound_relay job is off: HAVEN_INBOUND_RELAY is unset");
    } else {
        jobs.push(Registration {
            job: Arc::new(crate::jobs::inbound_relay::InboundRelay::new(
                &config.inbound_relay,
                pool(2)?,
            )),
            schedule: every(config.inbound_relay.interval),
        });
    }
    let rules = Arc::new(match &config.rewards_rules {
        Some(path) => haven_rewards::Rules::from_path(path)
            .with_context(|| format!("HAVEN_REWARDS_RULES={}", path.display()))?,
        None => haven_rewards::Rules::shipped(),
    });
    jobs.push(Registration {
        job: Arc::new(crate::jobs::scheduled::StakingJob::new(
            haven_db::PgRewards::new(pool(2)?),
            rules.clone(),
        )),
        schedule: cron(&config.jobs.staking),
    });
    jobs.extend(partner_syncs(config, rules, pool(2)?)?);
    match config.chain.settings() {
        Ok(settings) => {
            // The rewards job works on many rewards at once, each step a few queries: the
            // chain pipeline and the ledger get the configured pool size.
            let pool = pool(config.common.db_pool_size)?;
            let chain = Arc::new(
                crate::jobs::chain_monitor::Chain::new(
                    settings,
                    config.common.eth_rpc_url.clone(),
                    pool.clone(),
                    Arc::new(crate::jobs::chain_alerts::StoredChainAlerts::new(
                        pool.clone(),
                    )),
                )
                .with_breaker(breakers.get_or_create("eth_rpc")?),
            );
            jobs.push(Registration {
                job: Arc::new(crate::jobs::chain_monitor::ChainMonitorJob::over(
                    chain.clone(),
                )),
                schedule: cron(&config.jobs.chain_monitor),
            });
            // The api's network statistics, invalidated here after a mint or burn.
            let stats =
                haven_service::probe::redis_pool(config.common.redis_url.expose_secret(), 2)
                    .map(|redis| {
                        Arc::new(haven_service::cache::SharedCache::new(
                            Some(redis),
                            format!("{}network:stats", config.redis_prefix),
                            std::time::Duration::from_secs(300),
                        ))
                    })
                    .map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
            jobs.push(Registration {
                job: Arc::new(
                    crate::jobs::rewards::RewardsJob::new(
                        chain.clone(),
                        haven_db::PgRewards::new(pool.clone()),
                        config.rewards,
                    )
                    .with_stats(stats.clone()),
                ),
                schedule: every(config.rewards.interval),
            });
            jobs.push(Registration {
                job: Arc::new(crate::jobs::movements::MovementsJob::new(
                    chain,
                    haven_db::PgTreasury::new(pool),
                    Some(stats),
                    config.rewards.interval,
                )),
                schedule: every(config.rewards.interval),
            });
        }
        Err(unset) => tracing::info!(
            unset = %unset.join(", "),
            "chain_monitor, rewards and token_movements jobs are off: their chain settings are unset"
        ),
    }
    Ok(jobs)
}

/// The partner syncs whose API is configured, each on its schedule.
fn partner_syncs(
    config: &WorkerConfig,
    rules: Arc<haven_rewards::Rules>,
    pool: haven_db::PgPool,
) -> anyhow::Result<Vec<Registration>> {
    use crate::jobs::sync::{Partner, PartnerSyncJob};
    let mut partners = Vec::new();
    if let Some(aurora) = &config.aurora {
        let client = haven_partners::HttpAurora::new(aurora.clone()).context("HAVEN_AURORA_URL")?;
        partners.push((Partner::Aurora(Arc::new(client)), &config.jobs.aurora_sync));
    }
    if let Some(tribe) = &config.tribe {
        let client = haven_partners::HttpTribe::new(tribe.clone()).context("HAVEN_TRIBE_URL")?;
        partners.push((Partner::Tribe(Arc::new(client)), &config.jobs.tribe_sync));
    }
    if partners.is_empty() {
        tracing::info!(
            "aurora_sync and tribe_sync jobs are off: HAVEN_AURORA_URL and HAVEN_TRIBE_URL are unset"
        );
        return Ok(Vec::new());
    }
    // the fraud windows the api's intake uses, shared through Redis
    let redis = haven_service::probe::redis_pool(config.common.redis_url.expose_secret(), 2)
        .map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
    let engine = Arc::new(
        haven_fraud::Engine::new(
            Arc::new(haven_fraud::Rules::from_toml(haven_fraud::DEFAULT_RULES)?),
            Arc::new(haven_fraud::RedisWindowStore::new(redis)),
        )
        .with_key_prefix(format!("{}fraud:", config.redis_prefix)),
    );
    Ok(partners
        .into_iter()
        .map(|(partner, expr)| Registration {
            job: Arc::new(PartnerSyncJob::new(
                partner,
                haven_db::rewards::Intake::new(
                    haven_db::PgRewards::new(pool.clone()),
                    engine.clone(),
                    rules.clone(),
                ),
                // a day and a few hours: a late or missed run still covers the day before
                std::time::Duration::from_secs(30 * 3600),
            )),
            schedule: Schedule::Cron {
                expr: Box::new(expr.clone()),
                timezone: config.jobs.timezone,
            },
        })
        .collect())
}
