//! `haven-admin staking accrue`: a stake of 1,000 HNV for one full week accrues exactly
//! 1000 × 0.10 × 7 / 365 HNV truncated to base units; a second run for that week pays
//! nothing more; a stake active for part of the week earns its whole days; a week not over
//! is refused.

use diesel::sql_types::{Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven_rewards::{IsoWeek, RewardKind, RewardState};
use haven_testkit::TestDb;
use serde_json::Value;
use uuid::Uuid;

use crate::admin;

async fn stake(
    conn: &mut AsyncPgConnection,
    stake_id: &str,
    amount_units: &str,
    started_at: chrono::DateTime<chrono::Utc>,
    ends_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Uuid {
    let member = Uuid::now_v7();
    diesel::sql_query("INSERT INTO members (id) VALUES ($1)")
        .bind::<SqlUuid, _>(member)
        .execute(conn)
        .await
        .unwrap();
    diesel::sql_query(
        "INSERT INTO stakes (id, source, stake_id, member_id, amount, started_at, ends_at) \
         VALUES ($1, 'tribe', $2, $3, $4::numeric, $5, $6)",
    )
    .bind::<SqlUuid, _>(Uuid::now_v7())
    .bind::<Text, _>(stake_id)
    .bind::<SqlUuid, _>(member)
    .bind::<Text, _>(amount_units)
    .bind::<Timestamptz, _>(started_at)
    .bind::<Nullable<Timestamptz>, _>(ends_at)
    .execute(conn)
    .await
    .unwrap();
    member
}

fn accrue(db: &TestDb, week: &str) -> (i32, Value) {
    let (code, out, err) = admin(
        &["staking", "accrue", "--week", week],
        &[("DATABASE_URL", db.url())],
        None,
    );
    let line = out
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no output: {err}"));
    (
        code,
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {out} {err}")),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_week_of_staking_accrues_the_documented_amount_once() {
    let db = TestDb::new().await;
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    let week = IsoWeek::containing(chrono::Utc::now())
        .previous()
        .previous();
    let thousand = "1000000000000000000000";
    let full = stake(
        &mut conn,
        "s-full",
        thousand,
        week.start() - chrono::Duration::days(3),
        None,
    )
    .await;
    // Started Thursday 00:00: Thursday to Sunday, 4 days.
    let part = stake(
        &mut conn,
        "s-part",
        thousand,
        week.start() + chrono::Duration::days(3),
        None,
    )
    .await;
    // Ended before the week: nothing.
    stake(
        &mut conn,
        "s-old",
        thousand,
        week.start() - chrono::Duration::days(30),
        Some(week.start()),
    )
    .await;

    let (code, first) = accrue(&db, &week.to_string());
    assert_eq!(code, 0, "{first}");
    assert_eq!(first["week"], week.to_string());
    assert_eq!(
        first["stakes"], 2,
        "the ended stake is not active in the week: {first}"
    );
    assert_eq!(first["paid"], 2);
    // 1000 × 0.1 × 7 / 365 = 1.917808219178082191|78… and × 4 / 365 = 1.095890410958904109|58…
    assert_eq!(first["total_hnv"], "3.0136986301369863");

    let rewards = haven_db::PgRewards::new(haven_db::connect(db.url(), 2).await.unwrap());
    let of = |member: Uuid| {
        let rewards = rewards.clone();
        async move { rewards.rewards_of(member, None, 10).await.unwrap() }
    };
    let full_rewards = of(full).await;
    assert_eq!(full_rewards.len(), 1);
    let r = &full_rewards[0];
    assert_eq!(r.amount.base_units(), 1_917_808_219_178_082_191);
    assert_eq!(r.kind, RewardKind::Staking);
    assert_eq!(r.state, RewardState::Pending, "the worker mints it");
    assert_eq!(r.business_key, format!("tribe:staking:s-full/{week}"));
    assert!(r.reason.contains("7 of the 7 days"), "{}", r.reason);
    assert_eq!(
        of(part).await[0].amount.base_units(),
        1_095_890_410_958_904_109
    );

    let (code, again) = accrue(&db, &week.to_string());
    assert_eq!(code, 0, "{again}");
    assert_eq!(again["paid"], 0);
    assert_eq!(again["already_paid"], 2);
    assert_eq!(again["total_hnv"], "0");
    assert_eq!(of(full).await.len(), 1, "one reward per stake and week");

    // The current week is not over: refused, nothing recorded.
    let current = IsoWeek::containing(chrono::Utc::now());
    let (code, refused) = accrue(&db, &current.to_string());
    assert_eq!(code, 2, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("not over"),
        "{refused}"
    );
    let (code, bad) = accrue(&db, "2026-W99");
    assert_eq!(code, 2, "{bad}");
}
