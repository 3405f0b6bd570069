//! Event time, lateness, reloads and the default rule set.

use haven_fraud::{DEFAULT_RULES, RulesError};

use crate::helpers::*;

const VELOCITY: &str = include_str!("../fixtures/velocity_with_lateness.toml");

#[tokio::test]
async fn windows_follow_event_time_not_arrival_order() {
    for b in backends().await {
        let engine = b.engine(VELOCITY);
        // Arrive out of order but within the allowed lateness: still counted and alerting.
        let alerts = run(
            &engine,
            &[
                purchase("a", "u", "1", at(20 * SEC)),
                purchase("b", "u", "1", at(0)),
                purchase("c", "u", "1", at(10 * SEC)),
            ],
        )
        .await;
        assert_eq!(alerts.len(), 1, "{}", b.name);
        assert_eq!(alerts[0].event_id, "c");
    }
}

#[tokio::test]
async fn events_later_than_the_allowed_lateness_do_not_trigger() {
    for b in backends().await {
        let engine = b.engine(VELOCITY);
        run(
            &engine,
            &[
                purchase("a", "late", "1", at(60 * SEC)),
                purchase("b", "late", "1", at(100 * SEC)),
            ],
        )
        .await;
        // 70 s behind the newest event: beyond 30 s of lateness, recorded but silent.
        assert!(
            eval(&engine, purchase("c", "late", "1", at(30 * SEC)))
                .await
                .is_empty()
        );
        // Exactly at the lateness limit it still counts, and completes the window ending at b:
        // a, b, c (recorded though silent) and d.
        let alerts = eval(&engine, purchase("d", "late", "1", at(70 * SEC))).await;
        assert_eq!(alerts.len(), 1, "{}", b.name);
        assert_eq!(alerts[0].metadata["count"], 4);
    }
}

#[tokio::test]
async fn reload_changes_thresholds_without_a_restart_and_keeps_state() {
    for b in backends().await {
        let engine = b.engine(VELOCITY);
        run(
            &engine,
            &[
                purchase("a", "u", "1", at(0)),
                purchase("b", "u", "1", at(SEC)),
            ],
        )
        .await;
        let before = engine.rules().current();
        // An invalid document is refused and the rules in force stay.
        let err = engine
            .rules()
            .reload(&VELOCITY.replace("threshold = 3", "threshold = 0"));
        assert!(
            matches!(err, Err(RulesError::InvalidParameter { .. })),
            "{err:?}"
        );
        assert!(std::sync::Arc::ptr_eq(&before, &engine.rules().current()));
        engine
            .rules()
            .reload(&VELOCITY.replace("threshold = 3", "threshold = 2"))
            .unwrap();
        // The existing window carries over: the third purchase now counts 3 ≥ 2.
        let alerts = eval(&engine, purchase("c", "u", "1", at(2 * SEC))).await;
        assert_eq!(alerts.len(), 1, "{}", b.name);
        assert_eq!(alerts[0].metadata["threshold"], 2);
        // Disabling a rule silences it.
        engine
            .rules()
            .reload(&VELOCITY.replace(
                "kind = \"velocity\"",
                "kind = \"velocity\"\nenabled = false",
            ))
            .unwrap();
        assert!(
            eval(&engine, purchase("d", "u", "1", at(3 * SEC)))
                .await
                .is_empty()
        );
    }
}

#[tokio::test]
async fn the_default_rules_reproduce_the_seed_thresholds() {
    for b in backends().await {
        let engine = b.engine(DEFAULT_RULES);
        let alerts = run(
            &engine,
            &[
                purchase("1", "u", "5000", at(0)),
                purchase("2", "u", "5000", at(MIN)),
                purchase("3", "u", "5000", at(4 * MIN)),
            ],
        )
        .await;
        let ids: Vec<_> = alerts.iter().map(|a| a.rule_id.as_str()).collect();
        assert_eq!(ids, vec!["rapid_purchase"], "{}", b.name);
        let alerts = eval(&engine, purchase("4", "v", "50", at(0))).await;
        assert_eq!(alerts[0].rule_id, "unusual_amount", "{}", b.name);
        assert_eq!(alerts[0].severity, haven_fraud::Severity::Low);
    }
}

/// `haven_fraud_alerts_total{rule}` moves by exactly one per alert returned: not for a
/// replayed event id, not while a cooldown holds, and under the rule that raised it.
#[tokio::test]
async fn each_alert_is_counted_once_under_its_rule() {
    const RULES: &str = include_str!("../fixtures/velocity_and_tiny_amounts.toml");
    for b in backends().await {
        let capture = haven_testkit::MetricsCapture::new();
        let _local = capture.set_local();
        let engine = b.engine(RULES);
        let count = |rule: &str| capture.counter(haven_fraud::metrics::ALERTS, &[("rule", rule)]);

        assert!(
            eval(&engine, purchase("1", "u", "500", at(0)))
                .await
                .is_empty()
        );
        assert_eq!(count("rapid_purchase"), 0, "{}", b.name);

        let alerts = eval(&engine, purchase("2", "u", "500", at(SEC))).await;
        assert_eq!(alerts.len(), 1, "{}", b.name);
        assert_eq!(count("rapid_purchase"), 1, "{}", b.name);

        // The same event again is not evaluated again; the cooldown holds the third.
        assert!(
            eval(&engine, purchase("2", "u", "500", at(SEC)))
                .await
                .is_empty()
        );
        assert!(
            eval(&engine, purchase("3", "u", "500", at(2 * SEC)))
                .await
                .is_empty()
        );
        assert_eq!(count("rapid_purchase"), 1, "{}", b.name);

        // One event, two rules: one count each.
        let alerts = eval(&engine, purchase("4", "u", "5", at(3 * SEC))).await;
        assert_eq!(
            alerts.len(),
            1,
            "the velocity cooldown still holds ({})",
            b.name
        );
        let alerts = eval(&engine, purchase("5", "w", "5", at(3 * SEC))).await;
        let alerts = [
            alerts,
            eval(&engine, purchase("6", "w", "5", at(4 * SEC))).await,
        ]
        .concat();
        assert_eq!(alerts.len(), 3, "{alerts:?} ({})", b.name);
        assert_eq!(count("rapid_purchase"), 2, "{}", b.name);
        assert_eq!(count("tiny_purchase"), 3, "{}", b.name);
        assert_eq!(
            capture.counters(haven_fraud::metrics::ALERTS).len(),
            2,
            "no other series ({})",
            b.name
        );
    }
}
