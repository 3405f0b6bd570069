//! A1: for every rule kind, just inside the boundary alerts and just outside does not.

use haven_fraud::Severity;

use crate::helpers::*;

const VELOCITY: &str = include_str!("../fixtures/velocity.toml");

#[tokio::test]
async fn velocity_counts_within_the_window_only() {
    for b in backends().await {
        let engine = b.engine(VELOCITY);
        // Third purchase 1 ms inside five minutes of the first: alert.
        let alerts = run(
            &engine,
            &[
                purchase("a1", "inside", "500", at(0)),
                purchase("a2", "inside", "500", at(MIN)),
                purchase("a3", "inside", "500", at(5 * MIN - 1)),
            ],
        )
        .await;
        assert_eq!(alerts.len(), 1, "{}", b.name);
        assert_eq!(alerts[0].rule_id, "rapid_purchase");
        assert_eq!(alerts[0].severity, Severity::High);
        assert_eq!(alerts[0].event_id, "a3");
        assert_eq!(alerts[0].user.as_deref(), Some("inside"));
        // Third purchase exactly five minutes after the first: the first is outside.
        let alerts = run(
            &engine,
            &[
                purchase("b1", "outside", "500", at(0)),
                purchase("b2", "outside", "500", at(MIN)),
                purchase("b3", "outside", "500", at(5 * MIN)),
            ],
        )
        .await;
        assert!(alerts.is_empty(), "{}: {alerts:?}", b.name);
        // Other payment kinds and other users do not count.
        let alerts = run(
            &engine,
            &[
                purchase("c1", "mixed", "500", at(0)),
                transfer("c2", "mixed", "500", "0xabc", at(SEC)),
                purchase("c3", "someone-else", "500", at(2 * SEC)),
                purchase("c4", "mixed", "500", at(3 * SEC)),
            ],
        )
        .await;
        assert!(alerts.is_empty(), "{}: {alerts:?}", b.name);
    }
}

const TIERS: &str = include_str!("../fixtures/amount_tiers.toml");

#[tokio::test]
async fn amount_tiers_put_a_limit_in_the_upper_tier() {
    for b in backends().await {
        let engine = b.engine(TIERS);
        let cases = [
            (
                "99.999999999999999999",
                Some(("below_minimum", Severity::Low)),
            ),
            ("100", None),
            ("999999.999999999999999999", None),
            ("1000000", Some(("high", Severity::Medium))),
            (
                "4999999.999999999999999999",
                Some(("high", Severity::Medium)),
            ),
            ("5000000", Some(("very_high", Severity::High))),
            ("900000000000", Some(("very_high", Severity::High))),
        ];
        for (i, (amount, want)) in cases.into_iter().enumerate() {
            let alerts = eval(
                &engine,
                purchase(&format!("t{i}"), "u", amount, at(i as i64)),
            )
            .await;
            let got = alerts
                .first()
                .map(|a| (a.metadata["tier"].as_str().unwrap().to_owned(), a.severity));
            assert_eq!(
                got,
                want.map(|(t, s)| (t.to_owned(), s)),
                "{}: {amount}",
                b.name
            );
        }
        // Another currency is not judged by NGN limits.
        let mut usd = payment("usd", "u", "9000000", "USD", at(0));
        usd.destination = None;
        assert!(
            eval(&engine, haven_fraud::Event::Purchase(usd))
                .await
                .is_empty()
        );
    }
}

const CUMULATIVE: &str = include_str!("../fixtures/cumulative_amount.toml");

#[tokio::test]
async fn cumulative_amount_reaches_the_threshold_inside_the_window() {
    for b in backends().await {
        let engine = b.engine(CUMULATIVE);
        let below = run(
            &engine,
            &[
                purchase("a1", "u1", "600", at(0)),
                purchase("a2", "u1", "399.999999999999999999", at(MIN)),
            ],
        )
        .await;
        assert!(below.is_empty(), "{}", b.name);
        let equal = eval(
            &engine,
            purchase("a3", "u1", "0.000000000000000001", at(60 * MIN - 1)),
        )
        .await;
        assert_eq!(
            equal.len(),
            1,
            "{}: reaching the threshold exactly alerts",
            b.name
        );
        assert_eq!(equal[0].metadata["total"], "1000");

        let outside = run(
            &engine,
            &[
                purchase("b1", "u2", "600", at(0)),
                purchase("b2", "u2", "400", at(60 * MIN)),
            ],
        )
        .await;
        assert!(
            outside.is_empty(),
            "{}: the first is exactly one window old",
            b.name
        );
    }
}

const NEW_DESTINATION: &str = include_str!("../fixtures/new_destination.toml");

#[tokio::test]
async fn new_destination_alerts_on_first_use_at_or_above_the_amount() {
    for b in backends().await {
        let engine = b.engine(NEW_DESTINATION);
        let a = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
        let c = "0x00000000000000000000000000000000000000cc";
        // First use below the amount: nothing, and the address is now known.
        assert!(
            eval(&engine, transfer("1", "u1", "999.99", a, at(0)))
                .await
                .is_empty()
        );
        assert!(
            eval(&engine, transfer("2", "u1", "5000", a, at(1)))
                .await
                .is_empty()
        );
        // Same address in another case is the same destination.
        let lower = a.to_ascii_lowercase();
        assert!(
            eval(&engine, transfer("3", "u1", "5000", &lower, at(2)))
                .await
                .is_empty()
        );
        // First use at exactly the amount alerts, once.
        let alerts = eval(&engine, transfer("4", "u1", "1000", c, at(3))).await;
        assert_eq!(alerts.len(), 1, "{}", b.name);
        assert_eq!(alerts[0].event_type, "new_destination");
        assert!(
            eval(&engine, transfer("5", "u1", "1000", c, at(4)))
                .await
                .is_empty()
        );
        // Another user using the same address is a first use for them.
        assert_eq!(
            eval(&engine, transfer("6", "u2", "1000", c, at(5)))
                .await
                .len(),
            1
        );
    }
}

const AUTH: &str = include_str!("../fixtures/auth_failures.toml");

#[tokio::test]
async fn nine_authentication_failures_do_not_alert_ten_do() {
    for b in backends().await {
        let engine = b.engine(AUTH);
        let mut events: Vec<_> = (0..9)
            .map(|i| {
                auth_failure(
                    &format!("p{i}"),
                    "alice",
                    &format!("192.0.2.{i}"),
                    at(i * SEC),
                )
            })
            .collect();
        assert!(run(&engine, &events).await.is_empty(), "{}: nine", b.name);
        events.clear();
        events.push(auth_failure("p9", "alice", "192.0.2.99", at(59 * SEC)));
        let alerts = run(&engine, &events).await;
        assert_eq!(alerts.len(), 1, "{}: ten within 60 s", b.name);
        assert_eq!(alerts[0].rule_id, "auth_principal");
        assert_eq!(alerts[0].subject, "principal:alice");

        // Ten, but the first exactly 60 s before the tenth: outside.
        let events: Vec<_> = (0..10)
            .map(|i| {
                let ts = if i == 9 { 60 * SEC } else { i * SEC };
                auth_failure(&format!("q{i}"), "bob", &format!("198.51.100.{i}"), at(ts))
            })
            .collect();
        assert!(
            run(&engine, &events).await.is_empty(),
            "{}: 60 s is outside",
            b.name
        );
    }
}

#[tokio::test]
async fn ipv6_failures_are_aggregated_by_64() {
    for b in backends().await {
        let engine = b.engine(AUTH);
        // Nine from one /64 and one from the neighbouring /64: no alert.
        let mut events: Vec<_> = (0..9)
            .map(|i| {
                auth_failure(
                    &format!("a{i}"),
                    &format!("user{i}"),
                    &format!("2001:db8:0:1::{:x}", i + 1),
                    at(i),
                )
            })
            .collect();
        events.push(auth_failure("a9", "user9", "2001:db8:0:2::1", at(9)));
        assert!(run(&engine, &events).await.is_empty(), "{}", b.name);
        // The tenth from the same /64, different interface id: alert.
        let alerts = eval(
            &engine,
            auth_failure("a10", "user10", "2001:db8:0:1:ffff::1", at(10)),
        )
        .await;
        assert_eq!(alerts.len(), 1, "{}", b.name);
        assert_eq!(alerts[0].subject, "ip:2001:db8:0:1::/64");
    }
}

const GAS: &str = include_str!("../fixtures/gas_spike.toml");

const GWEI: i128 = 1_000_000_000;

#[tokio::test]
async fn gas_spike_at_twice_the_median_and_nonsense_is_data_quality() {
    for b in backends().await {
        let engine = b.engine(GAS);
        let base: Vec<_> = [90, 100, 100, 110, 120]
            .iter()
            .enumerate()
            .map(|(i, g)| gas(&format!("g{i}"), "base", g * GWEI, at(i as i64 * SEC)))
            .collect();
        assert!(run(&engine, &base).await.is_empty(), "{}", b.name);
        // Median 100 gwei: 199.999… does not alert, 200 does.
        assert!(
            eval(&engine, gas("g5", "base", 200 * GWEI - 1, at(5 * SEC)))
                .await
                .is_empty()
        );
        let spike = eval(&engine, gas("g6", "base", 200 * GWEI, at(6 * SEC))).await;
        // The previous sample (just under 200) moved the median of six to 105 gwei.
        assert!(spike.is_empty(), "{}: median of six is 105 gwei", b.name);
        let spike = eval(&engine, gas("g7", "base", 220 * GWEI, at(7 * SEC))).await;
        assert_eq!(spike.len(), 1, "{}: 220 ≥ 2 × 110", b.name);
        assert_eq!(spike[0].event_type, "gas_spike");

        for (i, wei) in [0i128, -5, 100_000 * GWEI + 1].into_iter().enumerate() {
            let alerts = eval(
                &engine,
                gas(&format!("bad{i}"), &format!("chain{i}"), wei, at(8 * SEC)),
            )
            .await;
            assert_eq!(alerts.len(), 1, "{}: {wei}", b.name);
            assert_eq!(alerts[0].event_type, "gas_data_quality");
            assert_eq!(alerts[0].severity, Severity::Low);
        }
        // Too few samples: even a tenfold jump is no spike.
        let few: Vec<_> = (0..4)
            .map(|i| gas(&format!("f{i}"), "thin", 100 * GWEI, at(i * SEC)))
            .collect();
        assert!(run(&engine, &few).await.is_empty());
        assert!(
            eval(&engine, gas("f4", "thin", 1000 * GWEI, at(5 * SEC)))
                .await
                .is_empty()
        );
    }
}

#[tokio::test]
async fn gas_spike_boundary_is_inclusive() {
    for b in backends().await {
        let engine = b.engine(GAS);
        let base: Vec<_> = (0..5)
            .map(|i| gas(&format!("g{i}"), "eth", 100 * GWEI, at(i * SEC)))
            .collect();
        run(&engine, &base).await;
        let alerts = eval(&engine, gas("at-limit", "eth", 200 * GWEI, at(10 * SEC))).await;
        assert_eq!(alerts.len(), 1, "{}: exactly 2× alerts", b.name);
        let engine = b.engine(GAS);
        let base: Vec<_> = (0..5)
            .map(|i| gas(&format!("h{i}"), "arb", 100 * GWEI, at(i * SEC)))
            .collect();
        run(&engine, &base).await;
        assert!(
            eval(&engine, gas("under", "arb", 200 * GWEI - 1, at(10 * SEC)))
                .await
                .is_empty()
        );
    }
}

const TX: &str = include_str!("../fixtures/transactions.toml");

#[tokio::test]
async fn pending_more_than_five_minutes_and_failures_alert() {
    for b in backends().await {
        let engine = b.engine(TX);
        assert!(
            eval(&engine, pending("p1", "0x01", at(0), at(5 * MIN)))
                .await
                .is_empty(),
            "{}",
            b.name
        );
        let alerts = eval(&engine, pending("p2", "0x01", at(0), at(5 * MIN + 1))).await;
        assert_eq!(alerts.len(), 1, "{}", b.name);
        assert_eq!(alerts[0].event_type, "tx_pending");
        assert_eq!(alerts[0].user.as_deref(), Some("u1"));
        let alerts = eval(&engine, failed("f1", "0x02", "execution reverted", at(0))).await;
        assert_eq!(alerts.len(), 1, "{}", b.name);
        assert_eq!(alerts[0].severity, Severity::High);
    }
}

const ERRORS: &str = include_str!("../fixtures/error_rate.toml");

#[tokio::test]
async fn error_rate_must_exceed_one_percent_over_five_minutes() {
    for b in backends().await {
        let engine = b.engine(ERRORS);
        // Exactly 1 % is not above 1 %.
        let events = [
            http("h1", "api", 500, 5, at(0)),
            http("h2", "api", 500, 5, at(4 * MIN)),
        ];
        assert!(run(&engine, &events).await.is_empty(), "{}", b.name);
        let alerts = eval(&engine, http("h3", "api", 1, 1, at(5 * MIN - 1))).await;
        assert_eq!(alerts.len(), 1, "{}: 11 of 1001", b.name);
        // Exactly five minutes later the bad report is outside the window: 5 of 500 is 1 %.
        let events = [
            http("k1", "admin", 1000, 100, at(0)),
            http("k2", "admin", 500, 5, at(5 * MIN)),
        ];
        let alerts = run(&engine, &events).await;
        assert_eq!(alerts.len(), 1, "{}: only the first report alerts", b.name);
        assert_eq!(alerts[0].event_id, "k1");
        // Too few requests never alert.
        assert!(
            eval(&engine, http("m1", "worker", 50, 50, at(0)))
                .await
                .is_empty()
        );
    }
}

const NEW_DESTINATION_SHORT_MEMORY: &str =
    include_str!("../fixtures/new_destination_short_memory.toml");

/// A known destination is forgotten after `remember_secs` of quiet: marks expire instead of
/// piling up forever, and a pair unused that long counts as new again.
#[tokio::test]
async fn new_destination_marks_expire() {
    for b in backends().await {
        let engine = b.engine(NEW_DESTINATION_SHORT_MEMORY);
        let a = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
        assert_eq!(
            eval(&engine, transfer("1", "u1", "5000", a, at(0)))
                .await
                .len(),
            1
        );
        assert!(
            eval(&engine, transfer("2", "u1", "5000", a, at(1)))
                .await
                .is_empty()
        );
        tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
        let again = eval(&engine, transfer("3", "u1", "5000", a, at(2))).await;
        assert_eq!(again.len(), 1, "{}: the mark expired", b.name);
    }
    let defaults = haven_fraud::Rules::from_toml(haven_fraud::DEFAULT_RULES).unwrap();
    let remember = defaults.current().rules.iter().find_map(|r| match &r.kind {
        haven_fraud::RuleKind::NewDestination { remember_secs, .. } => Some(*remember_secs),
        _ => None,
    });
    assert_eq!(
        remember,
        Some(90 * 86_400),
        "the shipped rules remember 90 days"
    );
}

/// An event further ahead of the engine's clock than `max_future_skew_secs` is refused
/// (400 over HTTP) and leaves nothing behind; before this, it became the newest event of
/// its window and every later event was "late" and muted.
#[tokio::test]
async fn events_from_the_future_are_refused_and_cannot_mute_later_ones() {
    for b in backends().await {
        let engine = b.engine(VELOCITY);
        let now = at(0);
        let err = engine
            .evaluate_at(&purchase("f1", "victim", "500", at(60 * MIN)), now)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                haven_fraud::Error::Event(haven_fraud::EventError::InFuture {
                    ahead_secs: 3600,
                    max_secs: 300
                })
            ),
            "{err:?}"
        );
        assert_eq!(err.code(), haven_core::ErrorCode::ValidationError);
        // Within the skew an event is taken.
        assert!(
            engine
                .evaluate_at(&purchase("f2", "other", "500", at(4 * MIN)), now)
                .await
                .is_ok()
        );
        // The refused event muted nothing: three purchases within the window alert.
        let mut alerts = Vec::new();
        for (i, ms) in [0, SEC, 2 * SEC].into_iter().enumerate() {
            alerts.extend(
                engine
                    .evaluate_at(&purchase(&format!("v{i}"), "victim", "500", at(ms)), at(ms))
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(alerts.len(), 1, "{}: {alerts:?}", b.name);
    }
}
