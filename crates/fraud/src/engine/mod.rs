//! Evaluation: one event in, the alerts it raises out.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::alert::{Alert, Severity};
use crate::error::Result;
use crate::event::Event;
use crate::rules::{EngineSettings, Rule, RuleKind, Rules};
use crate::window::{StoreError, WindowEntry, WindowRead, WindowSnapshot, WindowStore};

/// The most window entries read back for sums and medians; a subject with more entries in
/// one window is summed over its newest ones (a lower bound, which still alerts).
pub const MAX_ENTRIES_READ: usize = 10_000;

/// Evaluates events against the rules in force.
///
/// Evaluation is by event time: a window is `(end - window, end]`, ending at the event's own
/// timestamp, or at the newest event of the window when the event arrived out of order less
/// than one window behind it (so a slightly late event completes the current window); an
/// event id is evaluated once however often it is delivered, an event that is
/// more than the allowed lateness behind the newest event of its window is recorded but
/// raises nothing, and each (rule, subject) alerts at most once per cooldown.
///
/// **Invariant:** `evaluate` only reads and writes rule state; it never waits on alert
/// delivery (hand the alerts to a [`Dispatcher`](crate::Dispatcher) or a job queue).
pub struct Engine {
    rules: Arc<Rules>,
    store: Arc<dyn WindowStore>,
    prefix: String,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

mod kinds;

/// One rule applied to one event: what each rule kind's check reads.
struct Check<'a> {
    rule: &'a Rule,
    settings: &'a EngineSettings,
    event: &'a Event,
    /// The event's time in unix milliseconds.
    ts_ms: i64,
}

/// What a rule found, before the cooldown decides whether it becomes an alert.
struct Finding {
    event_type: &'static str,
    severity: Severity,
    subject: String,
    user: Option<String>,
    description: String,
    metadata: serde_json::Value,
}

impl Engine {
    /// An engine over `rules` keeping its state in `store`, with keys prefixed `fraud:`.
    pub fn new(rules: Arc<Rules>, store: Arc<dyn WindowStore>) -> Self {
        Self {
            rules,
            store,
            prefix: "fraud:".to_owned(),
        }
    }

    /// Uses `prefix` in front of every state key (tests use a random one).
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The rules handle, for reloading.
    pub fn rules(&self) -> &Arc<Rules> {
        &self.rules
    }

    /// Validates `event` and returns the alerts it raises (often none). An event more than
    /// `max_future_skew_secs` ahead of this machine's clock is refused
    /// ([`EventError::InFuture`](crate::EventError::InFuture)) and leaves no state behind.
    pub async fn evaluate(&self, event: &Event) -> Result<Vec<Alert>> {
        self.evaluate_at(event, Utc::now()).await
    }

    /// [`Engine::evaluate`] with the engine's clock reading `now`.
    pub async fn evaluate_at(&self, event: &Event, now: DateTime<Utc>) -> Result<Vec<Alert>> {
        event.validate()?;
        let rules = self.rules.current();
        let settings = &rules.engine;
        let ahead_ms = event
            .ts()
            .timestamp_millis()
            .saturating_sub(now.timestamp_millis());
        if ahead_ms > secs_to_ms(settings.max_future_skew_secs) {
            return Err(crate::EventError::InFuture {
                ahead_secs: ahead_ms / 1000,
                max_secs: settings.max_future_skew_secs,
            }
            .into());
        }
        let dedup_key = format!("{}d:{}", self.prefix, event.event_id());
        if !self
            .store
            .mark_seen(&dedup_key, Some(settings.dedup_retention()))
            .await?
        {
            return Ok(Vec::new());
        }
        let ts_ms = event.ts().timestamp_millis();
        // Rules are independent: their store round trips run concurrently, so the latency
        // of an evaluation is that of the slowest rule, not the sum.
        let outcomes = futures::future::try_join_all(
            rules
                .rules
                .iter()
                .filter(|r| r.enabled)
                .map(|rule| self.evaluate_rule(rule, settings, event, ts_ms)),
        )
        .await?;
        let alerts: Vec<Alert> = outcomes.into_iter().flatten().collect();
        for alert in &alerts {
            metrics::counter!(crate::metrics::ALERTS, "rule" => alert.rule_id.clone()).increment(1);
        }
        Ok(alerts)
    }

    /// One rule: its finding, if any, turned into an alert unless the cooldown holds.
    async fn evaluate_rule(
        &self,
        rule: &Rule,
        settings: &EngineSettings,
        event: &Event,
        ts_ms: i64,
    ) -> Result<Option<Alert>, StoreError> {
        let Some(finding) = self
            .apply(&Check {
                rule,
                settings,
                event,
                ts_ms,
            })
            .await?
        else {
            return Ok(None);
        };
        if rule.cooldown_secs > 0 {
            let key = format!(
                "{}c:{}:{}:{}",
                self.prefix, rule.id, finding.event_type, finding.subject
            );
            let cooldown_ms = secs_to_ms(rule.cooldown_secs);
            if !self.store.try_cooldown(&key, ts_ms, cooldown_ms).await? {
                return Ok(None);
            }
        }
        Ok(Some(Alert {
            id: Uuid::now_v7(),
            rule_id: rule.id.clone(),
            event_type: finding.event_type.to_owned(),
            severity: finding.severity,
            subject: finding.subject,
            user: finding.user,
            description: finding.description,
            metadata: finding.metadata,
            event_id: event.event_id().to_owned(),
            event_ts: event.ts(),
            created_at: Utc::now(),
        }))
    }

    async fn record(
        &self,
        key: String,
        event: &Event,
        value: u128,
        window_secs: u64,
        settings: &EngineSettings,
        read: WindowRead,
    ) -> Result<Option<WindowSnapshot>, StoreError> {
        let ts_ms = event.ts().timestamp_millis();
        let window_ms = secs_to_ms(window_secs);
        let lateness_ms = secs_to_ms(settings.allowed_lateness_secs);
        let entry = WindowEntry {
            ts_ms,
            id: event.event_id().to_owned(),
            value,
        };
        let snapshot = self
            .store
            .record(
                &key,
                entry,
                window_ms,
                window_ms.saturating_add(lateness_ms),
                read,
            )
            .await?;
        let late = snapshot
            .previous_max_ts_ms
            .is_some_and(|newest| ts_ms < newest.saturating_sub(lateness_ms));
        Ok((!late).then_some(snapshot))
    }

    /// Counts `event` in `subject`'s window of `rule`; the count once it has reached
    /// `threshold`, `None` below it or when the event came too late to count.
    async fn count_reaching(
        &self,
        rule: &Rule,
        subject: &str,
        event: &Event,
        window_secs: u64,
        threshold: u32,
        settings: &EngineSettings,
    ) -> Result<Option<u64>, StoreError> {
        let key = self.window_key(rule, subject);
        let snapshot = self
            .record(key, event, 0, window_secs, settings, WindowRead::Count)
            .await?;
        Ok(snapshot
            .map(|snapshot| snapshot.count)
            .filter(|&count| count >= u64::from(threshold)))
    }

    fn window_key(&self, rule: &Rule, subject: &str) -> String {
        format!("{}w:{}:{}", self.prefix, rule.id, subject)
    }

    async fn apply(&self, check: &Check<'_>) -> Result<Option<Finding>, StoreError> {
        match &check.rule.kind {
            RuleKind::Velocity { .. } => self.velocity(check).await,
            RuleKind::AmountTiers { .. } => self.amount_tiers(check).await,
            RuleKind::CumulativeAmount { .. } => self.cumulative_amount(check).await,
            RuleKind::NewDestination { .. } => self.new_destination(check).await,
            RuleKind::AuthFailures { .. } => self.auth_failures(check).await,
            RuleKind::GasSpike { .. } => self.gas_spike(check).await,
            RuleKind::TxPending { .. } => self.tx_pending(check).await,
            RuleKind::TxFailed { .. } => self.tx_failed(check).await,
            RuleKind::ErrorRate { .. } => self.error_rate(check).await,
        }
    }
}

fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// EVM addresses are case-insensitive; compare them in lower case.
fn normalize_destination(raw: &str) -> String {
    let is_evm =
        raw.len() == 42 && raw.starts_with("0x") && raw[2..].bytes().all(|b| b.is_ascii_hexdigit());
    if is_evm {
        raw.to_ascii_lowercase()
    } else {
        raw.to_owned()
    }
}

/// `ip:<v4>` or `ip:<v6 network>/<prefix>`; IPv4-mapped IPv6 counts as IPv4.
pub(crate) fn ip_subject(ip: IpAddr, ipv6_prefix: u8) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = match ipv6_prefix {
                0 => 0,
                p => u128::MAX << (128 - u32::from(p.min(128))),
            };
            format!("ip:{}/{ipv6_prefix}", Ipv6Addr::from(bits & mask))
        }
    }
}

fn median(values: &mut [u128]) -> f64 {
    values.sort_unstable();
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid] as f64
    } else {
        (values[mid - 1] as f64 + values[mid] as f64) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_is_aggregated_by_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_subject(a, 64), ip_subject(b, 64));
        assert_ne!(ip_subject(a, 64), ip_subject(c, 64));
        assert_eq!(ip_subject(a, 64), "ip:2001:db8:1:2::/64");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(ip_subject(mapped, 64), "ip:192.0.2.7");
        assert_eq!(ip_subject(a, 0), "ip:::/0");
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&mut [3, 1, 2]), 2.0);
        assert_eq!(median(&mut [4, 1, 3, 2]), 2.5);
    }
}
