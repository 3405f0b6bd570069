//! The network's totals from the ledger (`GET /api/v1/network/stats`).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use haven_rewards::Hnv;

use super::PgTreasury;
use crate::pool::get;
use crate::rewards::hnv_of;

/// What the ledger says of the whole program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct NetworkTotals {
    /// Members.
    pub members: i64,
    /// Confirmed mints: rewards, operator mints and staking accruals.
    pub minted: Hnv,
    /// Confirmed burns: reward reversals and paid redemptions' escrows.
    pub burned: Hnv,
    /// Paid redemptions.
    pub redeemed: Hnv,
    /// Active stakes.
    pub staked: Hnv,
    /// Redemptions waiting for a decision.
    pub redemptions_requested: i64,
}

impl PgTreasury {
    /// The program's totals, in one round trip.
    pub async fn network_totals(&self) -> crate::Result<NetworkTotals> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = BigInt)]
            members: i64,
            #[diesel(sql_type = Text)]
            minted: String,
            #[diesel(sql_type = Text)]
            reversed: String,
            #[diesel(sql_type = Text)]
            burned_escrow: String,
            #[diesel(sql_type = Text)]
            redeemed: String,
            #[diesel(sql_type = Text)]
            staked: String,
            #[diesel(sql_type = BigInt)]
            requested: i64,
        }
        let mut conn = get(&self.pool).await?;
        let row: Row = diesel::sql_query(
            "SELECT (SELECT count(*) FROM members) AS members, \
               (SELECT COALESCE(sum(amount), 0)::text FROM rewards \
                 WHERE state IN ('confirmed', 'reversed')) AS minted, \
               (SELECT COALESCE(sum(reversed_amount), 0)::text FROM rewards \
                 WHERE state = 'reversed') AS reversed, \
               (SELECT COALESCE(sum(amount), 0)::text FROM token_movements \
                 WHERE action = 'burn' AND state = 'confirmed') AS burned_escrow, \
               (SELECT COALESCE(sum(amount), 0)::text FROM redemption_requests \
                 WHERE status = 'paid') AS redeemed, \
               (SELECT COALESCE(sum(amount), 0)::text FROM stakes \
                 WHERE started_at <= now() AND (ends_at IS NULL OR ends_at > now())) AS staked, \
               (SELECT count(*) FROM redemption_requests WHERE status = 'requested') AS requested",
        )
        .get_result(&mut conn)
        .await?;
        let burned = hnv_of("rewards", &row.reversed)?
            .checked_add(hnv_of("token_movements", &row.burned_escrow)?)
            .unwrap_or(Hnv::MAX);
        Ok(NetworkTotals {
            members: row.members,
            minted: hnv_of("rewards", &row.minted)?,
            burned,
            redeemed: hnv_of("redemption_requests", &row.redeemed)?,
            staked: hnv_of("stakes", &row.staked)?,
            redemptions_requested: row.requested,
        })
    }
}
