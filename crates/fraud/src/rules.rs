//! Rules as data: a TOML document parsed and validated into a [`RuleSet`], held by a
//! [`Rules`] handle that can be reloaded at run time.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::alert::Severity;
use crate::amount::Amount;
use crate::event::PaymentKind;

/// The rules shipped as a starting point (the thresholds of the original deployment:
/// 3 purchases in 5 minutes, NGN 100 / 1,000,000 / 5,000,000, 10 authentication failures a
/// minute, gas at 2× the median, pending over 5 minutes, 5xx over 1 % in 5 minutes).
pub const DEFAULT_RULES: &str = include_str!("../rules/default.toml");

/// Why a rules document was refused. The current rules stay in force.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    /// The TOML is malformed or has the wrong shape.
    #[error("rules are not valid TOML of the expected shape")]
    Toml(#[source] toml::de::Error),
    /// Two rules share an id.
    #[error("rule id `{id}` is used twice")]
    DuplicateId {
        /// The id.
        id: String,
    },
    /// A parameter is out of range.
    #[error("rule `{id}`: {problem}")]
    InvalidParameter {
        /// The rule id (or `engine` for the engine settings).
        id: String,
        /// What is wrong.
        problem: &'static str,
    },
}

/// Engine-wide settings, in the `[engine]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSettings {
    /// How far behind the newest event of a window an event may arrive and still alert.
    #[serde(default = "default_lateness")]
    pub allowed_lateness_secs: u64,
    /// How long an event id is remembered for de-duplication.
    #[serde(default = "default_dedup")]
    pub dedup_retention_secs: u64,
    /// How far ahead of the engine's clock an event's `ts` may be; a later one is refused
    /// (`EventError::InFuture`), so it cannot become the newest event of its windows and
    /// make every later event "late".
    #[serde(default = "default_future_skew")]
    pub max_future_skew_secs: u64,
}

fn default_lateness() -> u64 {
    60
}

fn default_future_skew() -> u64 {
    300
}

fn default_remember() -> u64 {
    90 * 86_400
}

fn default_dedup() -> u64 {
    86_400
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            allowed_lateness_secs: default_lateness(),
            dedup_retention_secs: default_dedup(),
            max_future_skew_secs: default_future_skew(),
        }
    }
}

impl EngineSettings {
    /// The allowed lateness.
    pub fn allowed_lateness(&self) -> Duration {
        Duration::from_secs(self.allowed_lateness_secs)
    }

    /// The de-duplication retention.
    pub fn dedup_retention(&self) -> Duration {
        Duration::from_secs(self.dedup_retention_secs)
    }
}

/// One rule: common fields plus the kind-specific parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Unique id (`[a-z0-9_.-]`), recorded on every alert as its event type.
    pub id: String,
    /// Disabled rules are kept but not evaluated.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// After an alert for a subject, further alerts of this rule for the same subject are
    /// suppressed for this long (event time).
    #[serde(default)]
    pub cooldown_secs: u64,
    /// Free text for operators.
    #[serde(default)]
    pub description: Option<String>,
    /// What the rule looks for.
    #[serde(flatten)]
    pub kind: RuleKind,
}

fn yes() -> bool {
    true
}

/// What a rule without `events` checks: the payments a user makes or receives. Reversals
/// are only checked by rules that name them.
fn all_payments() -> Vec<PaymentKind> {
    vec![
        PaymentKind::Purchase,
        PaymentKind::Transfer,
        PaymentKind::Mint,
        PaymentKind::Redeem,
    ]
}

fn transfers() -> Vec<PaymentKind> {
    vec![PaymentKind::Transfer]
}

/// The rule kinds and their parameters (`kind = "…"` in TOML).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RuleKind {
    /// At least `threshold` payment events of the listed kinds by one user within
    /// `window_secs`.
    Velocity {
        /// Payment kinds counted together.
        events: Vec<PaymentKind>,
        /// Events needed to alert (the alert fires on the `threshold`-th).
        threshold: u32,
        /// Window length.
        window_secs: u64,
        /// Alert severity.
        severity: Severity,
    },
    /// Amount tiers of one currency: below `minimum` → `low_severity`, at or above `high` →
    /// `medium_severity`, at or above `very_high` → `high_severity`. A limit belongs to the
    /// tier above it.
    AmountTiers {
        /// The currency the limits are in.
        currency: String,
        /// Payment kinds checked.
        #[serde(default = "all_payments")]
        events: Vec<PaymentKind>,
        /// Amounts strictly below are suspiciously small.
        minimum: Amount,
        /// Start of the medium tier.
        high: Amount,
        /// Start of the high tier.
        very_high: Amount,
        /// Severity below the minimum.
        #[serde(default = "low")]
        low_severity: Severity,
        /// Severity from `high`.
        #[serde(default = "medium")]
        medium_severity: Severity,
        /// Severity from `very_high`.
        #[serde(default = "high")]
        high_severity: Severity,
    },
    /// The sum of a user's amounts in one currency within `window_secs` reaches `threshold`.
    CumulativeAmount {
        /// The currency.
        currency: String,
        /// Payment kinds summed.
        #[serde(default = "all_payments")]
        events: Vec<PaymentKind>,
        /// The sum that alerts.
        threshold: Amount,
        /// Window length.
        window_secs: u64,
        /// Alert severity.
        severity: Severity,
    },
    /// A user sends to a destination for the first time an amount at or above `min_amount`.
    NewDestination {
        /// Payment kinds with a destination.
        #[serde(default = "transfers")]
        events: Vec<PaymentKind>,
        /// Only this currency, when set.
        #[serde(default)]
        currency: Option<String>,
        /// The smallest amount that alerts.
        min_amount: Amount,
        /// How long a (user, destination) pair stays known; after this quiet time a payment
        /// to it counts as new again (default 90 days). Marks never pile up forever.
        #[serde(default = "default_remember")]
        remember_secs: u64,
        /// Alert severity.
        severity: Severity,
    },
    /// At least `threshold` authentication failures within `window_secs`, per principal or
    /// per client address (IPv6 aggregated by `ipv6_prefix`).
    AuthFailures {
        /// What failures are grouped by.
        by: AuthSubject,
        /// Failures needed to alert.
        #[serde(default = "ten")]
        threshold: u32,
        /// Window length.
        #[serde(default = "sixty")]
        window_secs: u64,
        /// IPv6 prefix length addresses are aggregated to.
        #[serde(default = "sixty_four")]
        ipv6_prefix: u8,
        /// Alert severity.
        severity: Severity,
    },
    /// A gas price sample at or above `multiplier` × the median of the previous samples of
    /// the chain within `window_secs` (at most `max_samples`, at least `min_samples`).
    /// Samples ≤ 0 or above `max_wei` are not used and raise a `gas_data_quality` alert.
    GasSpike {
        /// Spike factor over the rolling median.
        #[serde(default = "two")]
        multiplier: f64,
        /// How far back samples count.
        window_secs: u64,
        /// How many recent samples the median uses.
        #[serde(default = "twenty")]
        max_samples: u32,
        /// Fewer previous samples than this never alert.
        #[serde(default = "five")]
        min_samples: u32,
        /// Larger samples are nonsense.
        max_wei: u64,
        /// Spike severity.
        severity: Severity,
        /// Severity of data-quality alerts.
        #[serde(default = "low")]
        data_quality_severity: Severity,
    },
    /// A transaction observed pending for more than `threshold_secs`.
    TxPending {
        /// Pending longer than this alerts.
        #[serde(default = "three_hundred")]
        threshold_secs: u64,
        /// Alert severity.
        severity: Severity,
    },
    /// A failed transaction.
    TxFailed {
        /// Alert severity.
        severity: Severity,
    },
    /// The share of 5xx responses of a service over `window_secs` is above
    /// `max_error_percent`, once at least `min_requests` were counted.
    ErrorRate {
        /// Percentage that must be exceeded.
        max_error_percent: f64,
        /// Window length.
        #[serde(default = "three_hundred")]
        window_secs: u64,
        /// Fewer requests in the window never alert.
        #[serde(default = "hundred")]
        min_requests: u64,
        /// Alert severity.
        severity: Severity,
    },
}

fn low() -> Severity {
    Severity::Low
}
fn medium() -> Severity {
    Severity::Medium
}
fn high() -> Severity {
    Severity::High
}
fn ten() -> u32 {
    10
}
fn five() -> u32 {
    5
}
fn twenty() -> u32 {
    20
}
fn sixty() -> u64 {
    60
}
fn sixty_four() -> u8 {
    64
}
fn hundred() -> u64 {
    100
}
fn three_hundred() -> u64 {
    300
}
fn two() -> f64 {
    2.0
}

/// What authentication failures are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthSubject {
    /// The principal that tried.
    Principal,
    /// The client address (IPv6 by prefix).
    Ip,
}

impl RuleKind {
    /// The kind name as written in TOML.
    pub const fn name(&self) -> &'static str {
        match self {
            RuleKind::Velocity { .. } => "velocity",
            RuleKind::AmountTiers { .. } => "amount_tiers",
            RuleKind::CumulativeAmount { .. } => "cumulative_amount",
            RuleKind::NewDestination { .. } => "new_destination",
            RuleKind::AuthFailures { .. } => "auth_failures",
            RuleKind::GasSpike { .. } => "gas_spike",
            RuleKind::TxPending { .. } => "tx_pending",
            RuleKind::TxFailed { .. } => "tx_failed",
            RuleKind::ErrorRate { .. } => "error_rate",
        }
    }
}

/// A validated set of rules with the engine settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSet {
    /// Engine-wide settings.
    #[serde(default)]
    pub engine: EngineSettings,
    /// The rules, evaluated in order.
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
}

impl RuleSet {
    /// Parses and validates a TOML document:
    ///
    /// ```toml
    /// [engine]
    /// allowed_lateness_secs = 60
    ///
    /// [[rule]]
    /// id = "rapid_purchase"
    /// kind = "velocity"
    /// events = ["purchase"]
    /// threshold = 3
    /// window_secs = 300
    /// severity = "high"
    /// cooldown_secs = 300
    /// ```
    pub fn from_toml(raw: &str) -> Result<Self, RulesError> {
        let set: RuleSet = toml::from_str(raw).map_err(RulesError::Toml)?;
        set.validate()?;
        Ok(set)
    }

    /// The shipped [`DEFAULT_RULES`].
    pub fn defaults() -> Result<Self, RulesError> {
        Self::from_toml(DEFAULT_RULES)
    }

    /// Checks ids and parameter ranges.
    pub fn validate(&self) -> Result<(), RulesError> {
        let mut ids = HashSet::new();
        for rule in &self.rules {
            let bad = |problem: &'static str| RulesError::InvalidParameter {
                id: rule.id.clone(),
                problem,
            };
            let id_ok = !rule.id.is_empty()
                && rule.id.len() <= 64
                && rule.id.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')
                });
            if !id_ok {
                return Err(bad("id must be 1..=64 characters of [a-z0-9_.-]"));
            }
            if !ids.insert(rule.id.as_str()) {
                return Err(RulesError::DuplicateId {
                    id: rule.id.clone(),
                });
            }
            match &rule.kind {
                RuleKind::Velocity {
                    events,
                    threshold,
                    window_secs,
                    ..
                } => {
                    non_empty(events).ok_or_else(|| bad("events must not be empty"))?;
                    positive(u64::from(*threshold)).ok_or_else(|| bad("threshold must be ≥ 1"))?;
                    positive(*window_secs).ok_or_else(|| bad("window_secs must be ≥ 1"))?;
                }
                RuleKind::AmountTiers {
                    currency,
                    events,
                    minimum,
                    high,
                    very_high,
                    ..
                } => {
                    currency_ok(currency).ok_or_else(|| bad("currency is not a currency code"))?;
                    non_empty(events).ok_or_else(|| bad("events must not be empty"))?;
                    if !(minimum <= high && high < very_high) {
                        return Err(bad("limits must satisfy minimum ≤ high < very_high"));
                    }
                }
                RuleKind::CumulativeAmount {
                    currency,
                    events,
                    threshold,
                    window_secs,
                    ..
                } => {
                    currency_ok(currency).ok_or_else(|| bad("currency is not a currency code"))?;
                    non_empty(events).ok_or_else(|| bad("events must not be empty"))?;
                    positive(*window_secs).ok_or_else(|| bad("window_secs must be ≥ 1"))?;
                    if threshold.is_zero() {
                        return Err(bad("threshold must be positive"));
                    }
                }
                RuleKind::NewDestination {
                    events, currency, ..
                } => {
                    non_empty(events).ok_or_else(|| bad("events must not be empty"))?;
                    if let Some(c) = currency {
                        currency_ok(c).ok_or_else(|| bad("currency is not a currency code"))?;
                    }
                }
                RuleKind::AuthFailures {
                    threshold,
                    window_secs,
                    ipv6_prefix,
                    ..
                } => {
                    positive(u64::from(*threshold)).ok_or_else(|| bad("threshold must be ≥ 1"))?;
                    positive(*window_secs).ok_or_else(|| bad("window_secs must be ≥ 1"))?;
                    if *ipv6_prefix > 128 {
                        return Err(bad("ipv6_prefix must be ≤ 128"));
                    }
                }
                RuleKind::GasSpike {
                    multiplier,
                    window_secs,
                    max_samples,
                    min_samples,
                    max_wei,
                    ..
                } => {
                    if !(multiplier.is_finite() && *multiplier > 1.0) {
                        return Err(bad("multiplier must be a finite number > 1"));
                    }
                    positive(*window_secs).ok_or_else(|| bad("window_secs must be ≥ 1"))?;
                    if *min_samples == 0 || min_samples > max_samples || *max_samples > 10_000 {
                        return Err(bad("need 1 ≤ min_samples ≤ max_samples ≤ 10000"));
                    }
                    positive(*max_wei).ok_or_else(|| bad("max_wei must be ≥ 1"))?;
                }
                RuleKind::TxPending { threshold_secs, .. } => {
                    positive(*threshold_secs).ok_or_else(|| bad("threshold_secs must be ≥ 1"))?;
                }
                RuleKind::TxFailed { .. } => {}
                RuleKind::ErrorRate {
                    max_error_percent,
                    window_secs,
                    min_requests,
                    ..
                } => {
                    if !(max_error_percent.is_finite() && (0.0..100.0).contains(max_error_percent))
                    {
                        return Err(bad("max_error_percent must be in [0, 100)"));
                    }
                    positive(*window_secs).ok_or_else(|| bad("window_secs must be ≥ 1"))?;
                    positive(*min_requests).ok_or_else(|| bad("min_requests must be ≥ 1"))?;
                }
            }
        }
        Ok(())
    }

    /// The rule with this id.
    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

fn non_empty<T>(items: &[T]) -> Option<()> {
    (!items.is_empty()).then_some(())
}

fn positive(n: u64) -> Option<()> {
    (n > 0).then_some(())
}

fn currency_ok(c: &str) -> Option<()> {
    ((1..=16).contains(&c.len())
        && c.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()))
    .then_some(())
}

/// The rules in force, shared by every evaluation and replaceable at run time.
///
/// **Invariant:** a reload either swaps in a completely validated [`RuleSet`] or changes
/// nothing; an evaluation sees one rule set from start to end (it holds an `Arc` to it).
#[derive(Debug)]
pub struct Rules {
    current: RwLock<Arc<RuleSet>>,
}

impl Rules {
    /// Starts with `set`.
    pub fn new(set: RuleSet) -> Self {
        Self {
            current: RwLock::new(Arc::new(set)),
        }
    }

    /// Parses and validates `raw` at start-up.
    pub fn from_toml(raw: &str) -> Result<Self, RulesError> {
        Ok(Self::new(RuleSet::from_toml(raw)?))
    }

    /// The rule set in force.
    pub fn current(&self) -> Arc<RuleSet> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            // A panic while holding the lock cannot leave a half-written Arc behind.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Validates `raw` and, only if it is valid, makes it the rule set in force.
    pub fn reload(&self, raw: &str) -> Result<Arc<RuleSet>, RulesError> {
        let next = Arc::new(RuleSet::from_toml(raw)?);
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = next.clone();
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_cover_every_kind() {
        let set = RuleSet::defaults().unwrap();
        let kinds: HashSet<&str> = set.rules.iter().map(|r| r.kind.name()).collect();
        for kind in [
            "velocity",
            "amount_tiers",
            "cumulative_amount",
            "new_destination",
            "auth_failures",
            "gas_spike",
            "tx_pending",
            "tx_failed",
            "error_rate",
        ] {
            assert!(kinds.contains(kind), "{kind} missing from the defaults");
        }
    }

    #[test]
    fn bad_documents_are_refused_and_keep_the_current_rules() {
        let rules = Rules::from_toml(DEFAULT_RULES).unwrap();
        let before = rules.current();
        let bad = [
            "[[rule]]\nid = \"x\"\nkind = \"velocity\"\nevents = []\nthreshold = 3\nwindow_secs = 1\nseverity = \"high\"",
            "[[rule]]\nid = \"x\"\nkind = \"velocity\"\nevents = [\"purchase\"]\nthreshold = 0\nwindow_secs = 1\nseverity = \"high\"",
            "[[rule]]\nid = \"X Y\"\nkind = \"tx_failed\"\nseverity = \"high\"",
            "[[rule]]\nid = \"a\"\nkind = \"tx_failed\"\nseverity = \"high\"\n[[rule]]\nid = \"a\"\nkind = \"tx_failed\"\nseverity = \"low\"",
            "[[rule]]\nid = \"t\"\nkind = \"amount_tiers\"\ncurrency = \"NGN\"\nminimum = \"100\"\nhigh = \"5\"\nvery_high = \"6\"",
            "[[rule]]\nid = \"t\"\nkind = \"amount_tiers\"\ncurrency = \"NGN\"\nminimum = \"1e2\"\nhigh = \"5\"\nvery_high = \"6\"",
            "[[rule]]\nid = \"g\"\nkind = \"gas_spike\"\nmultiplier = 0.5\nwindow_secs = 60\nmax_wei = 1\nseverity = \"high\"",
            "[[rule]]\nid = \"e\"\nkind = \"error_rate\"\nmax_error_percent = 120.0\nseverity = \"high\"",
            "[[rule]]\nid = \"u\"\nkind = \"no_such_kind\"\nseverity = \"high\"",
            "not toml at all [",
        ];
        for raw in bad {
            assert!(rules.reload(raw).is_err(), "accepted: {raw}");
            assert!(Arc::ptr_eq(&before, &rules.current()));
        }
        let next = rules
            .reload("[[rule]]\nid = \"only\"\nkind = \"tx_failed\"\nseverity = \"HIGH\"")
            .unwrap();
        assert_eq!(rules.current().rules.len(), 1);
        assert_eq!(
            next.rules[0].kind,
            RuleKind::TxFailed {
                severity: Severity::High
            }
        );
    }
}
