//! The token API end to end on anvil: redemptions with escrow and approval, withdrawals,
//! staking accrual and the network statistics, through the real api and a worker process.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use alloy::primitives::{Address, U256};
use haven_db::Role;
use haven_testkit::{StubResponse, StubServer};
use reqwest::Method;
use serde_json::{Value, json};

use crate::stack::{Stack, hnv};

const SETTLE: Duration = Duration::from_secs(60);

/// A CoinGecko-compatible price source: HNV at 0.25 in every currency, or 503 when `down`.
async fn price_source(down: Arc<AtomicBool>) -> StubServer {
    StubServer::start(move |req| {
        if down.load(Ordering::SeqCst) {
            return StubResponse::status(503);
        }
        let id = req.query("ids").unwrap_or_default();
        let vs = req.query("vs_currencies").unwrap_or_default();
        StubResponse::json(format!(r#"{{"{id}":{{"{vs}":0.25}}}}"#))
    })
    .await
}

/// A stack whose api prices HNV from `prices` (fresh 1 s, usable 2 s when it is down).
async fn stack_with_prices(prices: &StubServer) -> Stack {
    let url = prices.url().to_owned();
    Stack::start_with(move |c| {
        c.treasury.price_primary_url = Some(url);
        c.treasury.price_fresh_secs = 1;
        c.treasury.price_stale_secs = 2;
        c.treasury.dual_approval_at = haven_rewards::Hnv::from_whole(300);
    })
    .await
}

/// A member holding 480 HNV (a CAD 200 booking of two nights, minted): its id and wallet.
pub(crate) async fn funded_member(stack: &Stack) -> (String, Address) {
    let guest = Stack::id("g");
    let body = format!(
        r#"{{"booking_id":"{}","guest_id":"{guest}","total_price":200,"nights":2}}"#,
        Stack::id("b")
    );
    let (status, accepted) = stack.send("aurora/booking-created", &body).await;
    assert_eq!(status, 202, "{accepted}");
    let member = accepted["member_id"].as_str().unwrap().to_owned();
    stack
        .eventually("480 HNV minted", SETTLE, || async {
            stack.member(&member).await["ledger"]["confirmed_hnv"] == "480"
        })
        .await;
    let wallet = stack.member(&member).await["wallet"]["address"]
        .as_str()
        .map(|a| Address::from_str(a).unwrap())
        .unwrap();
    assert_eq!(stack.balance(wallet).await, hnv(480));
    (member, wallet)
}

async fn count(stack: &Stack, sql: &str) -> i64 {
    use diesel_async::RunQueryDsl as _;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = stack.pool.get().await.unwrap();
    diesel::sql_query(sql)
        .get_result::<N>(&mut conn)
        .await
        .unwrap()
        .n
}

async fn redemption(stack: &Stack, token: &str, id: &str) -> Value {
    let (status, _, body) = stack
        .call(
            Method::GET,
            &format!("/api/v1/admin/redemptions/{id}"),
            token,
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The operator wallet's address (the escrow).
async fn escrow_wallet(stack: &Stack) -> Address {
    let custody = haven_custody::Custody::new(
        Arc::new(haven_db::PgWalletStore::new(stack.pool.clone())),
        Arc::new(haven_custody::NoKeyProvider),
        Arc::new(haven_db::PgAuditLog::new(stack.pool.clone())),
        haven_custody::CustodyConfig::default(),
    );
    let wallet = custody
        .get_wallet(
            &haven_custody::WalletId::new("minter").unwrap(),
            &haven_custody::Caller::new("test"),
        )
        .await
        .unwrap();
    Address::from_str(wallet.address()).unwrap()
}

/// A1: without a key → 400; one key sent 50 times at once → one redemption, one escrow
/// movement, the tokens escrowed once on chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redemption_is_recorded_and_escrowed_once_per_key() {
    let prices = price_source(Arc::new(AtomicBool::new(false))).await;
    let stack = stack_with_prices(&prices).await;
    let (member, wallet) = funded_member(&stack).await;
    let escrow = escrow_wallet(&stack).await;
    let operator = stack.user_token("op-a@example.com", Role::Operator).await;
    let body = json!({"member_id": member, "amount_hnv": "100", "currency": "CAD",
                      "payout_reference": "iban-alias-1"});

    let (status, _, refused) = stack
        .call(
            Method::POST,
            "/api/v1/token/redeem",
            &operator,
            None,
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"], "IDEMPOTENCY_KEY_REQUIRED");

    let answers = futures::future::join_all((0..50).map(|_| {
        stack.call(
            Method::POST,
            "/api/v1/token/redeem",
            &operator,
            Some("redeem-once"),
            Some(body.clone()),
        )
    }))
    .await;
    // The first answer, and replays of it (`Idempotent-Replayed`) or 409 while it ran.
    let created: Vec<&Value> = answers
        .iter()
        .filter(|a| a.0 == 202)
        .map(|a| &a.2)
        .collect();
    assert!(!created.is_empty());
    for (status, _, answer) in &answers {
        assert!(matches!(status, 202 | 409), "{status} {answer}");
    }
    assert!(
        created.iter().all(|c| c["id"] == created[0]["id"]),
        "one redemption: {created:?}"
    );
    let id = created[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(created[0]["fiat_amount"], "25", "100 HNV at 0.25 CAD");
    assert_eq!(created[0]["rate"], "0.25");
    assert_eq!(
        count(&stack, "SELECT count(*) AS n FROM redemption_requests").await,
        1
    );
    assert_eq!(
        count(
            &stack,
            "SELECT count(*) AS n FROM token_movements WHERE action = 'escrow'"
        )
        .await,
        1
    );
    // Another principal with the same key passes the idempotency layer (keys are scoped
    // per principal) and meets the ledger's own guard: the same redemption, 200.
    let other = stack.user_token("op-b@example.com", Role::Operator).await;
    let (status, _, same) = stack
        .call(
            Method::POST,
            "/api/v1/token/redeem",
            &other,
            Some("redeem-once"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, 200, "{same}");
    assert_eq!(same["id"], id.as_str());
    // Later retries replay the first answer.
    let (status, _, replay) = stack
        .call(
            Method::POST,
            "/api/v1/token/redeem",
            &operator,
            Some("redeem-once"),
            Some(body),
        )
        .await;
    assert_eq!(status, 202, "a replay of the stored answer: {replay}");
    assert_eq!(replay["id"], id.as_str());

    stack
        .eventually("the escrow is confirmed", SETTLE, || async {
            redemption(&stack, &operator, &id).await["escrow"] == "confirmed"
        })
        .await;
    assert_eq!(stack.balance(wallet).await, hnv(380));
    assert_eq!(stack.balance(escrow).await, hnv(100));
    assert_eq!(
        stack.total_supply().await,
        hnv(480),
        "escrow moves, it does not burn"
    );
}

/// A2: approval by a second operator → paid → the escrow burned; a rejection returns the
/// tokens once; the requester may not approve; above the threshold two operators must.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_redemption_lifecycle_on_chain() {
    let prices = price_source(Arc::new(AtomicBool::new(false))).await;
    let stack = stack_with_prices(&prices).await;
    let (member, wallet) = funded_member(&stack).await;
    let escrow = escrow_wallet(&stack).await;
    let a = stack.user_token("op-a@example.com", Role::Operator).await;
    let b = stack.user_token("op-b@example.com", Role::Operator).await;
    let c = stack.user_token("op-c@example.com", Role::Operator).await;
    let redeem = |amount: &str, key: &str| {
        let body = json!({"member_id": member, "amount_hnv": amount, "currency": "USD",
                          "payout_reference": "acct-7"});
        let key = key.to_owned();
        let a = a.clone();
        let stack = &stack;
        async move {
            let (status, _, body) = stack
                .call(
                    Method::POST,
                    "/api/v1/token/redeem",
                    &a,
                    Some(&key),
                    Some(body),
                )
                .await;
            assert_eq!(status, 202, "{body}");
            body["id"].as_str().unwrap().to_owned()
        }
    };
    let act = |token: &str, id: &str, step: &str, body: Option<Value>| {
        let token = token.to_owned();
        let path = format!("/api/v1/admin/redemptions/{id}/{step}");
        let stack = &stack;
        async move { stack.call(Method::POST, &path, &token, None, body).await }
    };

    // Paid: requested by A, approved by B, marked paid once escrowed.
    let paid = redeem("50", "redeem-paid").await;
    let (status, _, refused) = act(&a, &paid, "approve", None).await;
    assert_eq!(status, 403, "the requester approving: {refused}");
    assert_eq!(refused["error"], "FORBIDDEN");
    let (status, _, approved) = act(&b, &paid, "approve", None).await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["status"], "approved");
    stack
        .eventually("the escrow is confirmed", SETTLE, || async {
            redemption(&stack, &b, &paid).await["escrow"] == "confirmed"
        })
        .await;
    let (status, _, done) = act(&b, &paid, "mark-paid", None).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "paid");
    stack
        .eventually("the escrow is burned", SETTLE, || async {
            stack.total_supply().await == hnv(430)
        })
        .await;
    assert_eq!(stack.balance(escrow).await, U256::ZERO);
    assert_eq!(stack.balance(wallet).await, hnv(430));
    let (status, _, again) = act(&b, &paid, "mark-paid", None).await;
    assert_eq!(status, 422, "{again}");

    // Rejected: the tokens come back once.
    let rejected = redeem("30", "redeem-reject").await;
    stack
        .eventually("the escrow is confirmed", SETTLE, || async {
            redemption(&stack, &b, &rejected).await["escrow"] == "confirmed"
        })
        .await;
    assert_eq!(stack.balance(wallet).await, hnv(400));
    let (status, _, r) = act(
        &b,
        &rejected,
        "reject",
        Some(json!({"reason": "bank details wrong"})),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["status"], "rejected");
    let (status, _, twice) = act(&c, &rejected, "reject", Some(json!({"reason": "again"}))).await;
    assert_eq!(status, 422, "{twice}");
    stack
        .eventually("the tokens are back", SETTLE, || async {
            stack.balance(wallet).await == hnv(430)
        })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stack.balance(wallet).await, hnv(430), "returned once");
    assert_eq!(stack.balance(escrow).await, U256::ZERO);
    assert_eq!(
        count(&stack, "SELECT count(*) AS n FROM token_movements WHERE action = 'return' AND state = 'confirmed'").await,
        1
    );

    // Above the threshold (300 HNV): two distinct approvers.
    let big = redeem("350", "redeem-big").await;
    let (_, _, first) = act(&b, &big, "approve", None).await;
    assert_eq!(first["status"], "requested", "{first}");
    assert_eq!(first["approvals"].as_array().unwrap().len(), 1);
    let (status, _, same) = act(&b, &big, "approve", None).await;
    assert_eq!(status, 403, "the same operator twice: {same}");
    let (_, _, second) = act(&c, &big, "approve", None).await;
    assert_eq!(second["status"], "approved", "{second}");
}

/// A3: with the source down and the cached price past its bound, a redemption is refused
/// with PRICE_UNAVAILABLE and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_price_refuses_the_redemption_and_writes_nothing() {
    let down = Arc::new(AtomicBool::new(false));
    let prices = price_source(down.clone()).await;
    let stack = stack_with_prices(&prices).await;
    let (member, _) = funded_member(&stack).await;
    let operator = stack.user_token("op-a@example.com", Role::Operator).await;
    let body = json!({"member_id": member, "amount_hnv": "10", "currency": "EUR",
                      "payout_reference": "p"});
    // A first redemption caches the price.
    let (status, _, first) = stack
        .call(
            Method::POST,
            "/api/v1/token/redeem",
            &operator,
            Some("redeem-key-1"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, 202, "{first}");
    down.store(true, Ordering::SeqCst);
    // Within the bound the cached price still serves, marked as such.
    let (status, _, cached) = stack
        .call(
            Method::POST,
            "/api/v1/token/redeem",
            &operator,
            Some("redeem-key-2"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, 202, "{cached}");
    assert!(
        cached["rate_source"].as_str().unwrap().ends_with("+cache"),
        "{cached}"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before = haven_db::row_counts(&stack.pool).await.unwrap();
    let (status, _, refused) = stack
        .call(
            Method::POST,
            "/api/v1/token/redeem",
            &operator,
            Some("redeem-key-3"),
            Some(body),
        )
        .await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["error"], "PRICE_UNAVAILABLE");
    let after = haven_db::row_counts(&stack.pool).await.unwrap();
    for table in ["redemption_requests", "token_movements", "audit_log"] {
        assert_eq!(before[table], after[table], "{table}");
    }
}

/// A4: an invalid or non-EVM address → 422 naming the reason; an unregistered one is
/// refused; a registered one is transferred once on anvil, however often it is retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn withdrawals_go_to_registered_evm_addresses_once() {
    let prices = price_source(Arc::new(AtomicBool::new(false))).await;
    let stack = stack_with_prices(&prices).await;
    let (member, wallet) = funded_member(&stack).await;
    let operator = stack.user_token("op-a@example.com", Role::Operator).await;
    let path = format!("/api/v1/members/{member}/withdrawals");
    let send = |chain: &str, address: &str, amount: &str, key: &str| {
        let body = json!({"chain": chain, "address": address, "amount_hnv": amount});
        let (path, operator, key) = (path.clone(), operator.clone(), key.to_owned());
        let stack = &stack;
        async move {
            stack
                .call(Method::POST, &path, &operator, Some(&key), Some(body))
                .await
        }
    };

    let (status, _, bad) = send("eth", "0x12345", "10", "withdraw-bad").await;
    assert_eq!(status, 422, "{bad}");
    assert_eq!(bad["error"], "INVALID_PAYLOAD");
    assert_eq!(bad["details"]["field"], "address");
    assert!(!bad["details"]["reason"].is_null(), "{bad}");
    let (status, _, btc) = send(
        "btc",
        "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
        "10",
        "withdraw-btc",
    )
    .await;
    assert_eq!(status, 422, "{btc}");
    assert_eq!(btc["details"]["reason"], "not_evm");

    let destination = "0x1111111111111111111111111111111111111111";
    let (status, _, unregistered) = send("eth", destination, "10", "withdraw-unreg").await;
    assert_eq!(status, 422, "{unregistered}");
    assert_eq!(unregistered["details"]["reason"], "not_registered");

    let (status, _, added) = stack
        .call(
            Method::POST,
            &format!("/api/v1/members/{member}/payout-addresses"),
            &operator,
            None,
            Some(json!({"chain": "eth", "address": destination})),
        )
        .await;
    assert_eq!(status, 201, "{added}");

    let answers = futures::future::join_all(
        (0..10).map(|_| send("eth", destination, "120", "withdraw-once")),
    )
    .await;
    let created: Vec<&Value> = answers
        .iter()
        .filter(|a| a.0 == 202)
        .map(|a| &a.2)
        .collect();
    assert!(!created.is_empty(), "{answers:?}");
    assert!(
        answers.iter().all(|a| matches!(a.0, 202 | 409)),
        "{answers:?}"
    );
    assert!(
        created.iter().all(|c| c["id"] == created[0]["id"]),
        "one withdrawal"
    );
    let id = created[0]["id"].as_str().unwrap().to_owned();
    let to = Address::from_str(destination).unwrap();
    stack
        .eventually("the withdrawal is confirmed", SETTLE, || async {
            let (_, _, w) = stack
                .call(Method::GET, &format!("{path}/{id}"), &operator, None, None)
                .await;
            w["status"] == "confirmed"
        })
        .await;
    assert_eq!(stack.balance(to).await, hnv(120));
    assert_eq!(stack.balance(wallet).await, hnv(360));
    // More than the member can spend: refused, nothing moves.
    let (status, _, too_much) = send("eth", destination, "1000", "withdraw-big").await;
    assert_eq!(status, 422, "{too_much}");
    assert_eq!(too_much["error"], "INSUFFICIENT_BALANCE");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stack.balance(to).await, hnv(120), "transferred once");
    assert_eq!(
        count(&stack, "SELECT count(*) AS n FROM withdrawals").await,
        1
    );
}

/// A5: a stake of 1,000 HNV for a whole week accrues exactly 1.917808219178082191 HNV;
/// accruing the week again pays nothing more; the ledger and the chain agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_week_of_staking_is_minted_once() {
    let prices = price_source(Arc::new(AtomicBool::new(false))).await;
    let stack = stack_with_prices(&prices).await;
    let week = haven_rewards::IsoWeek::containing(chrono::Utc::now()).previous();
    let staker = Stack::id("m");
    let body = json!({"stake_id": Stack::id("s"), "member_id": staker, "amount": "1000",
                      "occurred_at": week.start().to_rfc3339()})
    .to_string();
    let (status, accepted) = stack.send("tribe/staking-started", &body).await;
    assert_eq!(status, 202, "{accepted}");
    let member = accepted["member_id"].as_str().unwrap().to_owned();
    let rules = haven_rewards::Rules::shipped();
    let ledger = haven_db::PgRewards::new(stack.pool.clone());
    let first = ledger
        .accrue_staking(rules.staking(), rules.version(), week, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(
        (first.paid, first.total.to_string().as_str()),
        (1, "1.917808219178082191")
    );
    let again = ledger
        .accrue_staking(rules.staking(), rules.version(), week, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!((again.paid, again.already_paid), (0, 1));
    stack
        .eventually("the accrual is minted", SETTLE, || async {
            stack.member(&member).await["ledger"]["confirmed_hnv"] == "1.917808219178082191"
        })
        .await;
    let view = stack.member(&member).await;
    assert_eq!(
        view["on_chain"]["balance_hnv"], "1.917808219178082191",
        "{view}"
    );
    assert_eq!(
        stack.total_supply().await,
        U256::from(1_917_808_219_178_082_191u128)
    );
}

/// A6: the second call is served from the cache; a mint in between invalidates it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn network_stats_are_cached_and_a_mint_invalidates_them() {
    let prices = price_source(Arc::new(AtomicBool::new(false))).await;
    let stack = stack_with_prices(&prices).await;
    let (member, _) = funded_member(&stack).await;
    let anyone = "";
    let stats = || stack.call(Method::GET, "/api/v1/network/stats", anyone, None, None);
    let (status, cache, first) = stats().await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(cache.as_deref(), Some("miss"));
    assert_eq!(first["minted"]["hnv"], "480");
    assert_eq!(first["circulating_supply"]["hnv"], "480");
    assert_eq!(first["members"], 1);
    let (_, cache, second) = stats().await;
    assert_eq!(cache.as_deref(), Some("hit"));
    assert_eq!(second, first);

    let operator = stack.user_token("op-a@example.com", Role::Operator).await;
    let (status, _, minted) = stack
        .call(
            Method::POST,
            "/api/v1/token/mint",
            &operator,
            Some("mint-key-1"),
            Some(
                json!({"member_id": member, "amount_hnv": "20", "reason": "goodwill",
                        "reference": "ticket-42"}),
            ),
        )
        .await;
    assert_eq!(status, 202, "{minted}");
    stack
        .eventually(
            "the mint is confirmed and the stats show it",
            SETTLE,
            || async {
                let (_, _, now) = stats().await;
                now["minted"]["hnv"] == "500" && now["circulating_supply"]["hnv"] == "500"
            },
        )
        .await;
    let (_, cache, _) = stats().await;
    assert_eq!(cache.as_deref(), Some("hit"), "cached again afterwards");
    // The same mint again (same reference and key) mints nothing more.
    let (status, _, again) = stack
        .call(
            Method::POST,
            "/api/v1/token/mint",
            &operator,
            Some("mint-key-1"),
            Some(
                json!({"member_id": member, "amount_hnv": "20", "reason": "goodwill",
                        "reference": "ticket-42"}),
            ),
        )
        .await;
    assert!(matches!(status, 200 | 202), "{again}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stack.total_supply().await, hnv(500));
}
