//! A3: a burst of matching events raises one alert per (rule, subject) per cooldown.

use std::collections::HashMap;
use std::sync::Arc;

use haven_fraud::Alert;

use crate::helpers::*;

const RULES: &str = include_str!("../fixtures/velocity_and_tiers.toml");

/// Events per burst; `FRAUD_BURST` scales it up for soak runs.
fn burst_size() -> i64 {
    std::env::var("FRAUD_BURST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

fn per_rule_and_subject(alerts: &[Alert]) -> HashMap<(String, String), usize> {
    let mut counts = HashMap::new();
    for a in alerts {
        *counts
            .entry((a.rule_id.clone(), a.subject.clone()))
            .or_insert(0) += 1;
    }
    counts
}

#[tokio::test]
async fn a_concurrent_burst_raises_one_alert_per_rule_and_subject() {
    let n = burst_size();
    for b in backends().await {
        let engine = Arc::new(b.engine(RULES));
        let mut tasks = Vec::new();
        for i in 0..n {
            let engine = engine.clone();
            // Two users, every purchase very large, all within 100 s of event time.
            let user = if i % 2 == 0 { "even" } else { "odd" };
            let event = purchase(&format!("b{i}"), user, "6000000", at(i * 100 * SEC / n));
            tasks.push(tokio::spawn(async move {
                engine.evaluate(&event).await.unwrap()
            }));
        }
        let mut alerts = Vec::new();
        for t in tasks {
            alerts.extend(t.await.unwrap());
        }
        let counts = per_rule_and_subject(&alerts);
        let want: HashMap<(String, String), usize> = [
            (("rapid_purchase".into(), "even".into()), 1),
            (("rapid_purchase".into(), "odd".into()), 1),
            (("unusual_amount".into(), "even".into()), 1),
            (("unusual_amount".into(), "odd".into()), 1),
        ]
        .into_iter()
        .collect();
        assert_eq!(counts, want, "{}: {} events", b.name, n);
    }
}

#[tokio::test]
async fn a_long_burst_alerts_once_per_cooldown_period() {
    let n = burst_size();
    for b in backends().await {
        let engine = b.engine(RULES);
        // n purchases evenly over 14 minutes 59 s: cooldowns start at 0, 300 and 600 s.
        let span = 15 * MIN - SEC;
        let events: Vec<_> = (0..n)
            .map(|i| purchase(&format!("l{i}"), "u", "6000000", at(i * span / n)))
            .collect();
        let alerts = run(&engine, &events).await;
        let counts = per_rule_and_subject(&alerts);
        assert_eq!(
            counts.get(&("unusual_amount".into(), "u".into())),
            Some(&3),
            "{}",
            b.name
        );
        assert_eq!(
            counts.get(&("rapid_purchase".into(), "u".into())),
            Some(&3),
            "{}",
            b.name
        );
    }
}

#[tokio::test]
async fn a_thousand_redeliveries_of_one_event_are_evaluated_once() {
    for b in backends().await {
        let engine = Arc::new(b.engine(RULES));
        let event = purchase("same", "u", "6000000", at(0));
        let mut tasks = Vec::new();
        for _ in 0..burst_size() {
            let engine = engine.clone();
            let event = event.clone();
            tasks.push(tokio::spawn(async move {
                engine.evaluate(&event).await.unwrap()
            }));
        }
        let mut alerts = Vec::new();
        for t in tasks {
            alerts.extend(t.await.unwrap());
        }
        assert_eq!(alerts.len(), 1, "{}: only the tier alert, once", b.name);
        // The velocity window holds the event once: two more purchases are needed.
        let more = run(
            &engine,
            &[
                purchase("x1", "u", "500", at(SEC)),
                purchase("x2", "u", "500", at(2 * SEC)),
            ],
        )
        .await;
        assert_eq!(more.len(), 1, "{}", b.name);
        assert_eq!(more[0].rule_id, "rapid_purchase");
    }
}
