//! `GET /api/v1/network/stats`: the program's totals — members, the circulating supply read
//! on chain, and what the ledger minted, burned, redeemed and holds staked.
//!
//! Cached in Redis for `HAVEN_STATS_CACHE_SECS` (an in-process copy when Redis is down) and
//! invalidated by every mint, burn and redemption state change (the api and the worker both
//! invalidate). `X-Cache: hit` or `miss` says which the answer was.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::error::ApiError;
use crate::routes::rewards::RewardsService;
use crate::treasury::TreasuryService;

fn hnv(amount: haven_rewards::Hnv) -> serde_json::Value {
    json!({"hnv": amount.to_string(), "base_units": amount.base_units().to_string()})
}

/// The network's statistics.
#[utoipa::path(
    get,
    path = "/api/v1/network/stats",
    tag = "token",
    responses(
        (status = 200, description = "The totals; `X-Cache` says whether they came from the cache", body = Object),
    ),
)]
pub async fn network(
    rewards: web::Data<RewardsService>,
    treasury: web::Data<TreasuryService>,
) -> Result<HttpResponse, ApiError> {
    if let Some((doc, source)) = treasury.stats.get().await {
        let source = match source {
            haven_service::cache::CacheSource::Redis => "redis",
            haven_service::cache::CacheSource::Local => "local",
        };
        return Ok(HttpResponse::Ok()
            .insert_header(("x-cache", "hit"))
            .insert_header(("x-cache-source", source))
            .content_type("application/json")
            .body(doc));
    }
    let generation = treasury.stats.begin().await;
    let totals = treasury.treasury.network_totals().await?;
    let circulating = match &rewards.chain {
        Some(chain) => match chain.total_supply().await {
            Ok(supply) => {
                let supply = haven_rewards::Hnv::from_base_units(
                    u128::try_from(supply).unwrap_or(u128::MAX),
                );
                hnv(supply)
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "total supply unavailable");
                serde_json::Value::Null
            }
        },
        None => serde_json::Value::Null,
    };
    let doc = json!({
        "members": totals.members,
        "circulating_supply": circulating,
        "minted": hnv(totals.minted),
        "burned": hnv(totals.burned),
        "redeemed": hnv(totals.redeemed),
        "staked": hnv(totals.staked),
        "redemptions_requested": totals.redemptions_requested,
        "computed_at": chrono::Utc::now(),
    })
    .to_string();
    // A supply the node could not give is not cached: the next call asks again.
    if !circulating.is_null() || rewards.chain.is_none() {
        treasury.stats.put(generation, &doc).await;
    }
    Ok(HttpResponse::Ok()
        .insert_header(("x-cache", "miss"))
        .content_type("application/json")
        .body(doc))
}
