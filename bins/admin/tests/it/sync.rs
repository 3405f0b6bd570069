//! A7: `haven-admin rewards sync` against a stub partner, over a window that overlaps
//! webhooks already delivered through the real api: run twice, it rewards nothing twice.

use haven_api::config::webhooks::WebhookSources;
use haven_api::testing::spawn_api_on;
use haven_testkit::{StubResponse, StubServer, TestDb, TestRedis};
use haven_webhooks::{Scheme, Secret, Verifier, sign_header};
use serde_json::Value;

use crate::admin;

const AURORA_SECRET: &str = "aurora-sync-secret-of-32-bytes!!";

fn booking(id: &str, guest: &str, price: &str) -> String {
    format!(
        r#"{{"booking_id":"{id}","guest_id":"{guest}","total_price":{price},"nights":2,"status":"confirmed"}}"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_overlapping_webhooks_rewards_nothing_twice() {
    let db = TestDb::new().await;
    let db_url = db.url().to_owned();
    let api = spawn_api_on(db, |c| {
        c.webhook_sources = WebhookSources::from_verifiers([Verifier::new(
            "aurora",
            Scheme::Aurora,
            vec![Secret::raw(AURORA_SECRET).unwrap()],
        )]);
    })
    .await;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let (b1, b2, b3) = (
        format!("b1-{tag}"),
        format!("b2-{tag}"),
        format!("b3-{tag}"),
    );
    // Two bookings arrive as webhooks.
    let client = reqwest::Client::new();
    for body in [booking(&b1, "g-1", "200"), booking(&b2, "g-2", "99.99")] {
        let ts = chrono::Utc::now().timestamp();
        let sig = sign_header(
            Scheme::Aurora,
            &Secret::raw(AURORA_SECRET).unwrap(),
            None,
            ts,
            body.as_bytes(),
        )
        .unwrap();
        let res = client
            .post(api.url("/api/v1/webhooks/aurora/booking-created"))
            .header("x-aurora-timestamp", ts.to_string())
            .header("x-aurora-signature", sig)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
    }
    // The partner lists those two and one the webhooks missed.
    let listed = format!(
        r#"{{"bookings":[{},{},{}],"next_cursor":null}}"#,
        booking(&b1, "g-1", "200"),
        booking(&b2, "g-2", "99.99"),
        booking(&b3, "g-3", "150")
    );
    let partner = StubServer::start(move |req| {
        assert_eq!(req.header("authorization"), Some("Bearer aurora-key"));
        StubResponse::json(listed.clone())
    })
    .await;
    let redis = TestRedis::new().await;
    let env = [
        ("DATABASE_URL", db_url.as_str()),
        ("REDIS_URL", redis.url()),
        ("HAVEN_REDIS_PREFIX", redis.prefix()),
        ("HAVEN_AURORA_URL", partner.url()),
        ("HAVEN_AURORA_API_KEY", "aurora-key"),
    ];
    let (code, out, err) = admin(&["rewards", "sync", "aurora", "--since", "24h"], &env, None);
    assert_eq!(code, 0, "{err}");
    let first: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(first["items"], 3, "{first}");
    assert_eq!(first["rewarded"], 1, "only the missed booking: {first}");
    assert_eq!(first["already_rewarded"], 2, "{first}");

    let (code, out, err) = admin(&["rewards", "sync", "aurora"], &env, None);
    assert_eq!(code, 0, "{err}");
    let second: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(second["rewarded"], 0, "{second}");
    assert_eq!(second["duplicates"], 3, "{second}");

    let rewards = haven_db::PgRewards::new(haven_db::connect(&db_url, 2).await.unwrap());
    for id in [&b1, &b2, &b3] {
        let reward = rewards
            .reward_by_key(&format!("aurora:booking:{id}"))
            .await
            .unwrap();
        assert!(reward.is_some(), "{id} rewarded once");
    }
    let totals = rewards.totals(None).await.unwrap();
    assert_eq!(
        totals.pending.to_string(),
        "1079.976",
        "480 + 239.976 + 360, once each"
    );

    let (code, _, err) = admin(
        &["rewards", "sync", "aurora", "--since", "soon"],
        &env,
        None,
    );
    assert_eq!(code, 2, "{err}");
}
