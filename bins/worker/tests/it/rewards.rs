//! The HAVEN rewards program end to end: signed partner webhooks into the real api, the
//! worker (a separate process) minting on anvil, cancellations burning, fraud holds, and
//! the ledger agreeing with the chain.

use std::str::FromStr;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use serde_json::{Value, json};

use crate::stack::{Stack, hnv};

const SETTLE: Duration = Duration::from_secs(60);

fn booking(id: &str, guest: &str, price: &str, nights: u32) -> String {
    format!(
        r#"{{"booking_id":"{id}","guest_id":"{guest}","total_price":{price},"nights":{nights}}}"#
    )
}

async fn wallet_of(stack: &Stack, member: &str) -> Option<Address> {
    stack.member(member).await["wallet"]["address"]
        .as_str()
        .map(|a| Address::from_str(a).unwrap())
}

async fn confirmed_hnv(stack: &Stack, member: &str) -> String {
    stack.member(member).await["ledger"]["confirmed_hnv"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A1: a signed booking (CAD 200, 2 nights) → 202 → 480 HNV minted to the member's new
/// custodial wallet, shown on chain and in the ledger; the same webhook three times at once
/// and again later mints nothing more; its cancellation burns it and `totalSupply` drops
/// by 480.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_booking_is_minted_once_and_its_cancellation_burns_it() {
    let stack = Stack::start().await;
    let booking_id = Stack::id("b");
    let guest = Stack::id("g");
    let body = booking(&booking_id, &guest, "200", 2);
    let ts = chrono::Utc::now().timestamp();
    let (status, accepted) = stack.send_at("aurora/booking-created", &body, ts).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["decision"]["amount_hnv"], "480");
    assert_eq!(accepted["reward"]["state"], "pending");
    let member = accepted["member_id"].as_str().unwrap().to_owned();

    // The same message three times at once: duplicates.
    let again = futures::future::join_all(
        (0..3).map(|_| stack.send_at("aurora/booking-created", &body, ts)),
    )
    .await;
    for (status, body) in &again {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["status"], "duplicate");
    }

    stack
        .eventually("the reward is minted and confirmed", SETTLE, || async {
            confirmed_hnv(&stack, &member).await == "480"
        })
        .await;
    let view = stack.member(&member).await;
    assert_eq!(view["on_chain"]["balance_hnv"], "480", "{view}");
    let wallet = wallet_of(&stack, &member).await.unwrap();
    assert_eq!(stack.balance(wallet).await, hnv(480));
    assert_eq!(stack.total_supply().await, hnv(480));

    // Delivered again later (a new message of the same booking): rewarded already.
    let (status, later) = stack.send_at("aurora/booking-created", &body, ts + 5).await;
    assert_eq!(status, 202, "{later}");
    assert!(later["reward"].is_null(), "{later}");
    assert_eq!(later["already_rewarded"]["state"], "confirmed");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stack.total_supply().await, hnv(480), "minted once");

    let cancel = format!(r#"{{"booking_id":"{booking_id}","guest_id":"{guest}"}}"#);
    let (status, cancelled) = stack.send("aurora/booking-cancelled", &cancel).await;
    assert_eq!(status, 202, "{cancelled}");
    stack
        .eventually("the reward is burned", SETTLE, || async {
            stack.total_supply().await == U256::ZERO
        })
        .await;
    assert_eq!(stack.balance(wallet).await, U256::ZERO);
    stack
        .eventually("the ledger says reversed", SETTLE, || async {
            stack.rewards().await.iter().any(|r| {
                r.business_key.ends_with(&booking_id)
                    && r.state == haven_rewards::RewardState::Reversed
            })
        })
        .await;
    assert_eq!(confirmed_hnv(&stack, &member).await, "0");
}

/// A2: each of the nine endpoints, with its reward (or none) per the rules, the once-only
/// rules and field-name variants.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_partner_event_earns_what_the_rules_say() {
    let stack = Stack::start().await;
    let guest = Stack::id("g");
    let member_b = Stack::id("m");
    let booking_id = Stack::id("b");
    // (event, body, expected amount, whether a reward row is created)
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "aurora/booking-created",
            format!(r#"{{"id":"{booking_id}","guestId":"{guest}","totalPrice":99.99,"nights":3}}"#),
            "239.976",
        ),
        (
            "aurora/booking-completed",
            format!(r#"{{"booking_id":"{booking_id}","guest_id":"{guest}"}}"#),
            "0",
        ),
        (
            "aurora/review-submitted",
            format!(r#"{{"booking_id":"{booking_id}","guest_id":"{guest}","rating":5}}"#),
            "50",
        ),
        (
            "aurora/review-submitted",
            format!(r#"{{"bookingId":"{booking_id}","guestId":"{guest}","rating":4}}"#),
            "50",
        ),
        (
            "tribe/event-attendance",
            format!(
                r#"{{"event_id":"ev-1","attendee_id":"{member_b}","type":"wisdom_circle","attended":true}}"#
            ),
            "100",
        ),
        (
            "tribe/event-attendance",
            format!(
                r#"{{"eventId":"ev-2","attendeeId":"{member_b}","type":"networking","attended":false}}"#
            ),
            "0",
        ),
        (
            "tribe/contribution",
            format!(r#"{{"contribution_id":"c-1","member_id":"{member_b}","quality":2.5}}"#),
            "100",
        ),
        (
            "tribe/staking-started",
            format!(r#"{{"stake_id":"s-1","member_id":"{member_b}","amount":"1000"}}"#),
            "0",
        ),
        (
            "tribe/coaching-milestone",
            format!(r#"{{"member_id":"{member_b}","milestone":"certification"}}"#),
            "250",
        ),
        (
            "tribe/referral-success",
            format!(r#"{{"referral_id":"r-1","referrer_id":"{member_b}","tier":"gold"}}"#),
            "500",
        ),
    ];
    let mut expected_total = hnv(0);
    for (event, body, amount) in &cases {
        let (status, answer) = stack.send(event, body).await;
        assert_eq!(status, 202, "{event}: {answer}");
        assert_eq!(
            answer["decision"]["amount_hnv"], *amount,
            "{event}: {answer}"
        );
        let rewarded = !answer["reward"].is_null();
        if rewarded {
            expected_total +=
                U256::from_str(answer["reward"]["amount_base_units"].as_str().unwrap()).unwrap();
        }
    }
    // The second review of the same booking earns nothing more (once per booking).
    let rows = stack.rewards().await;
    let reviews = rows
        .iter()
        .filter(|r| r.kind == haven_rewards::RewardKind::Review)
        .count();
    let described = rows
        .iter()
        .map(|r| (r.kind, r.source.clone(), r.business_key.clone(), r.state))
        .collect::<Vec<_>>();
    assert_eq!(reviews, 1, "one review per booking; got {described:?}");
    assert_eq!(
        rows.len(),
        6,
        "booking, review, attendance, contribution, coaching, referral; got {described:?}"
    );
    stack
        .eventually("every reward is minted", SETTLE, || async {
            stack.total_supply().await == expected_total
        })
        .await;
    // The stake is recorded, not rewarded.
    let later = chrono::Utc::now().timestamp() + 1;
    let (status, again) = stack.send_at(cases[7].0, &cases[7].1, later).await;
    assert_eq!(status, 202, "{again}");
    assert!(again["reward"].is_null());
}

/// A3: unsigned, badly signed, stale and malformed webhooks are refused with nothing
/// written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_webhooks_write_nothing() {
    let stack = Stack::start().await;
    let before = haven_db::row_counts(&stack.pool).await.unwrap();
    let body = booking("b-x", "g-x", "200", 2);
    let url = stack.api.url("/api/v1/webhooks/aurora/booking-created");
    let post = |headers: Vec<(&'static str, String)>, body: String| {
        let mut req = stack.client.post(url.clone()).body(body);
        for (name, value) in headers {
            req = req.header(name, value);
        }
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, _) = post(vec![], body.clone()).await;
    assert_eq!(status, 400, "unsigned");
    let now = chrono::Utc::now().timestamp();
    let (status, _) = post(
        vec![
            ("x-aurora-timestamp", now.to_string()),
            ("x-aurora-signature", "00".repeat(32)),
        ],
        body.clone(),
    )
    .await;
    assert_eq!(status, 401, "badly signed");
    let (status, _) = stack
        .send_at("aurora/booking-created", &body, now - 3600)
        .await;
    assert_eq!(status, 401, "stale");
    for (bad, field) in [
        (
            r#"{"booking_id":"b-1","guest_id":"g-1","total_price":-5,"nights":2}"#,
            "total_price",
        ),
        (
            r#"{"booking_id":"b-1","total_price":100,"nights":2}"#,
            "guest_id",
        ),
        (
            r#"{"booking_id":"b-1","guest_id":"g-1","total_price":100,"nights":0}"#,
            "nights",
        ),
        ("not json", ""),
    ] {
        let (status, error) = stack.send("aurora/booking-created", bad).await;
        assert_eq!(status, 422, "{bad}: {error}");
        assert_eq!(error["error"], "INVALID_PAYLOAD", "{error}");
        if !field.is_empty() {
            assert_eq!(error["details"]["field"], field, "{error}");
        }
    }
    let (status, _) = stack.send("aurora/no-such-event", &body).await;
    assert_eq!(status, 404);
    let after = haven_db::row_counts(&stack.pool).await.unwrap();
    assert_eq!(before, after, "no row written");
}

/// A4: a cancellation after the member moved part of the reward away burns what is left,
/// records the shortfall and raises one HIGH alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancellation_after_spending_burns_the_rest_and_alerts() {
    let stack = Stack::start().await;
    let booking_id = Stack::id("b");
    let guest = Stack::id("g");
    let (status, accepted) = stack
        .send(
            "aurora/booking-created",
            &booking(&booking_id, &guest, "200", 2),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let member = accepted["member_id"].as_str().unwrap().to_owned();
    stack
        .eventually("minted", SETTLE, || async {
            confirmed_hnv(&stack, &member).await == "480"
        })
        .await;
    let wallet = wallet_of(&stack, &member).await.unwrap();
    // The member spends 300 HNV (an outside transfer from their wallet).
    let elsewhere = Address::repeat_byte(0x77);
    spend(&stack, wallet, elsewhere, hnv(300)).await;
    assert_eq!(stack.balance(wallet).await, hnv(180));

    let cancel = format!(r#"{{"booking_id":"{booking_id}","guest_id":"{guest}"}}"#);
    let (status, _) = stack.send("aurora/booking-cancelled", &cancel).await;
    assert_eq!(status, 202);
    stack
        .eventually("the rest is burned", SETTLE, || async {
            stack.balance(wallet).await == U256::ZERO
                && stack.rewards().await.iter().any(|r| {
                    r.state == haven_rewards::RewardState::Reversed
                        && r.business_key.ends_with(&booking_id)
                })
        })
        .await;
    let reward = stack
        .rewards()
        .await
        .into_iter()
        .find(|r| r.business_key.ends_with(&booking_id))
        .unwrap();
    assert_eq!(reward.reversed_amount.unwrap().to_string(), "180");
    assert_eq!(reward.shortfall.unwrap().to_string(), "300");
    assert_eq!(
        stack.total_supply().await,
        hnv(300),
        "the spent part stays in supply"
    );
    let alerts = shortfall_alerts(&stack).await;
    assert_eq!(alerts, 1, "one HIGH alert");
}

async fn shortfall_alerts(stack: &Stack) -> usize {
    use haven_fraud::AlertStore;
    haven_db::PgAlertStore::new(stack.pool.clone())
        .list(&haven_fraud::AlertFilter::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|a| {
            a.alert.rule_id == "reward_reversal_shortfall"
                && a.alert.severity == haven_fraud::Severity::High
        })
        .count()
}

/// Moves `amount` out of a custodial `wallet` as its owner would (anvil impersonation).
async fn spend(stack: &Stack, wallet: Address, to: Address, amount: U256) {
    use alloy::sol_types::SolCall;
    stack.anvil.rpc(
        "anvil_setBalance",
        json!([wallet.to_string(), "0xDE0B6B3A7640000"]),
    );
    stack
        .anvil
        .rpc("anvil_impersonateAccount", json!([wallet.to_string()]));
    let data = haven_chain::HavenToken::transferCall { to, amount }.abi_encode();
    let hash = stack.anvil.rpc(
        "eth_sendTransaction",
        json!([{"from": wallet.to_string(), "to": stack.token.to_string(),
                "data": format!("0x{}", hex::encode(data))}]),
    );
    assert!(hash.is_string(), "{hash}");
    stack.anvil.rpc(
        "anvil_stopImpersonatingAccount",
        json!([wallet.to_string()]),
    );
}

/// A5: a reward that trips a HIGH fraud rule is held, not minted; approving its alert mints
/// it once, rejecting another's never mints.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_held_reward_is_minted_only_once_approved() {
    let stack = Stack::start().await;
    let token = stack.admin_token().await;
    let mut held = Vec::new();
    for _ in 0..2 {
        // CAD 10,000 for 2 nights: 24,000 HNV, above the rules' very high tier.
        let (status, accepted) = stack
            .send(
                "aurora/booking-created",
                &booking(&Stack::id("b"), &Stack::id("g"), "10000", 2),
            )
            .await;
        assert_eq!(status, 202, "{accepted}");
        assert_eq!(accepted["reward"]["state"], "held", "{accepted}");
        held.push((
            accepted["reward"]["alert_id"].as_str().unwrap().to_owned(),
            accepted["member_id"].as_str().unwrap().to_owned(),
        ));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        stack.total_supply().await,
        U256::ZERO,
        "held rewards are not minted"
    );

    let review = |alert: String, to: &'static str| {
        let req = stack
            .client
            .post(
                stack
                    .api
                    .url(&format!("/api/v1/admin/alerts/{alert}/transition")),
            )
            .bearer_auth(&token)
            .json(&json!({"to": to, "note": "reviewed"}));
        async move {
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 200, "{:?}", res.text().await);
        }
    };
    review(held[0].0.clone(), "acknowledged").await;
    review(held[0].0.clone(), "false_positive").await;
    review(held[1].0.clone(), "acknowledged").await;
    review(held[1].0.clone(), "resolved").await;
    stack
        .eventually("the approved reward is minted", SETTLE, || async {
            confirmed_hnv(&stack, &held[0].1).await == "24000"
        })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        stack.total_supply().await,
        hnv(24_000),
        "once, and only the approved one"
    );
    let states: Vec<_> = stack.rewards().await.into_iter().map(|r| r.state).collect();
    assert!(
        states.contains(&haven_rewards::RewardState::Cancelled),
        "{states:?}"
    );
    let actions = haven_db::PgAuditLog::new(stack.pool.clone())
        .page(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event.action)
        .collect::<Vec<_>>();
    assert!(
        actions.contains(&"reward.approved".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"reward.rejected".to_owned()),
        "{actions:?}"
    );
}

/// Every reversal is a fraud event: a member who books and cancels again and again raises
/// one MEDIUM `rapid_reversals` alert on the third cancellation, and the cancellations
/// still take the rewards back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeated_cancellations_raise_a_reversal_alert() {
    let stack = Stack::start().await;
    let guest = Stack::id("g");
    let bookings: Vec<String> = (0..4).map(|_| Stack::id("b")).collect();
    for id in &bookings {
        let (status, accepted) = stack
            .send("aurora/booking-created", &booking(id, &guest, "50", 1))
            .await;
        assert_eq!(status, 202, "{accepted}");
    }
    let mut raised = Vec::new();
    for id in &bookings {
        let cancel = format!(r#"{{"booking_id":"{id}","guest_id":"{guest}"}}"#);
        let (status, cancelled) = stack.send("aurora/booking-cancelled", &cancel).await;
        assert_eq!(status, 202, "{cancelled}");
        assert_eq!(
            cancelled["reversals"].as_array().unwrap().len(),
            1,
            "{cancelled}"
        );
        raised.push(
            cancelled["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["rule_id"] == "rapid_reversals")
                .count(),
        );
    }
    assert_eq!(
        raised,
        [0, 0, 1, 0],
        "the third alerts, the cooldown quiets the fourth"
    );
    use haven_fraud::AlertStore;
    let stored: Vec<_> = haven_db::PgAlertStore::new(stack.pool.clone())
        .list(&haven_fraud::AlertFilter::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.alert.rule_id == "rapid_reversals")
        .collect();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].alert.severity, haven_fraud::Severity::Medium);
    assert!(
        stored[0].alert.event_id.starts_with("reversal:"),
        "{:?}",
        stored[0].alert
    );
    stack
        .eventually("every reward is taken back", SETTLE, || async {
            let rewards = stack.rewards().await;
            rewards.len() == 4
                && rewards.iter().all(|r| {
                    matches!(
                        r.state,
                        haven_rewards::RewardState::Reversed
                            | haven_rewards::RewardState::Cancelled
                    )
                })
        })
        .await;
    assert_eq!(stack.total_supply().await, U256::ZERO);
}
