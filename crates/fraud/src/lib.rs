//! Real-time fraud and operations monitoring for token programs.
//!
//! Events ([`Event`]: purchases, transfers, mints, redeems, authentication failures,
//! pending and failed transactions, gas price samples, HTTP error counts) are evaluated by an
//! [`Engine`] against rules written as data ([`RuleSet`], TOML, reloadable at run time through
//! [`Rules::reload`]). Windows are kept by event time in a [`WindowStore`]; repeated event ids
//! count once, events later than the allowed lateness never alert, and each (rule, subject)
//! alerts at most once per cooldown. Alerts are stored in an [`AlertStore`] and reviewed
//! through the [`ReviewService`] (open → acknowledged → resolved | false_positive, audited),
//! and delivered by [`AlertSink`]s (SMTP, signed webhook, log) on a [`Dispatcher`] task, with
//! every outward text passed through [`haven_core::redact`].
//!
//! ```
//! use std::sync::Arc;
//! use haven_fraud::{Engine, Event, MemoryWindowStore, Rules, DEFAULT_RULES};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let rules = Arc::new(Rules::from_toml(DEFAULT_RULES).unwrap());
//! let engine = Engine::new(rules, Arc::new(MemoryWindowStore::new()));
//!
//! let mut alerts = Vec::new();
//! for (i, minute) in [0, 2, 4].into_iter().enumerate() {
//!     let json = format!(
//!         r#"{{"type":"purchase","event_id":"e{i}","user":"u1","amount":"5000",
//!              "currency":"NGN","ts":"2026-01-02T10:0{minute}:00Z"}}"#
//!     );
//!     let event = Event::from_json(json.as_bytes()).unwrap();
//!     alerts.extend(engine.evaluate(&event).await.unwrap());
//! }
//! // The third purchase within five minutes raises the rapid-purchase alert.
//! assert_eq!(alerts.len(), 1);
//! assert_eq!(alerts[0].rule_id, "rapid_purchase");
//! # });
//! ```
//!
//! ## Features
//! - `smtp`: `SmtpSink`, alerts by email (lettre over rustls).
//! - `http`: `WebhookSink`, alerts as signed JSON POSTs (reqwest).
//!
//! Both need a process-wide rustls crypto provider, which this crate never installs: the
//! binary (or the test) chooses it before building a sink.
//! - `redis`: `RedisWindowStore`, windows in Redis sorted sets, one Lua script per
//!   operation.
//! - `test-utils`: the `conformance` suites every `WindowStore` and `AlertStore` backend
//!   must pass (crates/db runs the alert store suite against Postgres).
//!
//! ## Metrics
//! Every alert an [`Engine`] raises increments the counter [`metrics::ALERTS`]
//! (`haven_fraud_alerts_total{rule}`) through the `metrics` facade; the binary chooses the
//! recorder.
//!
//! This crate depends on no web, database or job framework.

mod alert;
mod amount;
#[cfg(feature = "test-utils")]
pub mod conformance;
mod engine;
mod error;
mod event;
pub mod metrics;
#[cfg(feature = "redis")]
mod redis_store;
mod review;
mod rules;
mod sink;
mod window;

pub use alert::{Alert, Severity};
pub use amount::{Amount, AmountError, DECIMALS, MAX_INPUT_LEN};
pub use engine::{Engine, MAX_ENTRIES_READ};
pub use error::{Error, Result};
pub use event::{
    AuthFailureEvent, Event, EventError, GasSampleEvent, HttpErrorsEvent, MAX_ID_LEN, PaymentEvent,
    PaymentKind, TxFailedEvent, TxPendingEvent,
};
#[cfg(feature = "redis")]
pub use redis_store::RedisWindowStore;
pub use review::{
    AlertFilter, AlertRecord, AlertStore, ChangeOutcome, MAX_NOTE_CHARS, MAX_SEARCH_CHARS,
    MemoryAlertStore, Note, ReviewService, ReviewState, Reviewer, ReviewerRole, StateChange,
};
pub use rules::{
    AuthSubject, DEFAULT_RULES, EngineSettings, Rule, RuleKind, RuleSet, Rules, RulesError,
};
#[cfg(feature = "smtp")]
pub use sink::SmtpSink;
#[cfg(feature = "http")]
pub use sink::WebhookSink;
pub use sink::{
    AlertMessage, AlertSink, BoxError, DeliveryError, Dispatcher, LogSink, SmtpConfig,
    SmtpSecurity, StandardWebhookSigner, WebhookSigner, is_loopback_host, single_line,
};
pub use window::{
    MemoryWindowStore, StoreError, WindowEntry, WindowRead, WindowSnapshot, WindowStore, window_end,
};
