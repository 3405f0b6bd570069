//! Property tests: the window stores behave like a brute-force model, and cooldowns bound
//! the number of alerts of any event sequence.

use std::collections::BTreeSet;
use std::sync::Arc;

use haven_fraud::{
    MemoryWindowStore, RedisWindowStore, WindowEntry, WindowRead, WindowStore, window_end,
};
use haven_testkit::TestRedis;
use proptest::prelude::*;

use crate::helpers::*;

const W: i64 = 1_000;
const RETAIN: i64 = 1_500;

/// The reference: a plain list, filtered on every read.
#[derive(Default)]
struct Model {
    entries: Vec<(i64, String, u128)>,
}

impl Model {
    fn record(
        &mut self,
        ts: i64,
        id: &str,
        value: u128,
    ) -> (Option<i64>, u64, Vec<(i64, String, u128)>) {
        let previous = self.entries.iter().map(|e| e.0).max();
        let newest = previous.map_or(ts, |p| p.max(ts));
        self.entries.push((ts, id.to_owned(), value));
        self.entries.retain(|e| e.0 > newest - RETAIN);
        let end = window_end(ts, newest, W);
        let mut inside: Vec<_> = self
            .entries
            .iter()
            .filter(|e| e.0 > end - W && e.0 <= end)
            .cloned()
            .collect();
        inside.sort_by_key(|e| std::cmp::Reverse(e.0));
        (previous, inside.len() as u64, inside)
    }
}

fn unique_times(raw: Vec<i64>) -> Vec<i64> {
    let mut seen = BTreeSet::new();
    raw.into_iter().filter(|t| seen.insert(*t)).collect()
}

async fn check(store: &dyn WindowStore, key: &str, times: &[i64]) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    for (i, ts) in times.iter().enumerate() {
        let id = format!("e{i}");
        let value = (*ts as u128) * 1_000_000_007;
        let want = model.record(*ts, &id, value);
        let got = store
            .record(
                key,
                WindowEntry {
                    ts_ms: *ts,
                    id,
                    value,
                },
                W,
                RETAIN,
                WindowRead::Entries { limit: 1_000 },
            )
            .await
            .unwrap();
        let got_entries: Vec<_> = got
            .entries
            .iter()
            .map(|e| (e.ts_ms, e.id.clone(), e.value))
            .collect();
        prop_assert_eq!(
            (got.previous_max_ts_ms, got.count, got_entries),
            want,
            "after ts {}",
            ts
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn memory_store_matches_the_model(raw in proptest::collection::vec(0i64..5_000, 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let store = MemoryWindowStore::new();
        rt.block_on(check(&store, "k", &unique_times(raw)))?;
    }
}

proptest! {
    // Each case is a few dozen round trips to Redis: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn redis_store_matches_the_model(raw in proptest::collection::vec(0i64..5_000, 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let redis = TestRedis::new().await;
            let store = RedisWindowStore::new(redis.pool());
            check(&store, &redis.key("w"), &unique_times(raw)).await
        })?;
    }
}

const COOLDOWN_RULES: &str = include_str!("../fixtures/amount_tiers_with_cooldown.toml");

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// However events are spread, alerts for one subject are at least a cooldown apart in
    /// event time, and every cooldown period with an event has an alert.
    #[test]
    fn cooldown_spaces_alerts(offsets in proptest::collection::vec(0i64..600_000, 1..80)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut sorted = offsets.clone();
        sorted.sort_unstable();
        let alerts = rt.block_on(async {
            let engine = haven_fraud::Engine::new(
                Arc::new(haven_fraud::Rules::from_toml(COOLDOWN_RULES).unwrap()),
                Arc::new(MemoryWindowStore::new()),
            );
            let events: Vec<_> = sorted
                .iter()
                .enumerate()
                .map(|(i, ms)| purchase(&format!("e{i}"), "u", "500", at(*ms)))
                .collect();
            run(&engine, &events).await
        });
        let times: Vec<i64> = alerts.iter().map(|a| (a.event_ts - t0()).num_milliseconds()).collect();
        prop_assert_eq!(times.first().copied(), sorted.first().copied(), "the first event alerts");
        for pair in times.windows(2) {
            prop_assert!(pair[1] - pair[0] >= 60_000, "alerts {:?} closer than the cooldown", pair);
        }
        // Greedy: after each alert, the first event at least a cooldown later alerts.
        let mut expected = Vec::new();
        for ms in &sorted {
            if expected.last().is_none_or(|last: &i64| ms - last >= 60_000) {
                expected.push(*ms);
            }
        }
        prop_assert_eq!(times, expected);
    }
}
