use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use haven_fraud::{
    Alert, Amount, AuthFailureEvent, Engine, Event, GasSampleEvent, HttpErrorsEvent,
    MemoryWindowStore, PaymentEvent, RedisWindowStore, Rules, TxFailedEvent, TxPendingEvent,
    WindowStore,
};
use haven_testkit::TestRedis;

/// A fixed instant all tests count from.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 10, 0, 0).unwrap()
}

/// `t0 + ms`.
pub fn at(ms: i64) -> DateTime<Utc> {
    t0() + Duration::milliseconds(ms)
}

pub const SEC: i64 = 1000;
pub const MIN: i64 = 60 * SEC;

/// One engine per backend: in memory, and Redis under a random prefix.
pub struct Backend {
    pub name: &'static str,
    pub store: Arc<dyn WindowStore>,
    pub prefix: String,
    _redis: Option<TestRedis>,
}

impl Backend {
    pub fn engine(&self, rules_toml: &str) -> Engine {
        let rules = Arc::new(Rules::from_toml(rules_toml).unwrap());
        Engine::new(rules, self.store.clone()).with_key_prefix(self.prefix.clone())
    }
}

pub async fn backends() -> Vec<Backend> {
    let redis = TestRedis::new().await;
    vec![
        Backend {
            name: "memory",
            store: Arc::new(MemoryWindowStore::new()),
            prefix: "fraud:".into(),
            _redis: None,
        },
        Backend {
            name: "redis",
            store: Arc::new(RedisWindowStore::new(redis.pool())),
            prefix: redis.key("fraud:"),
            _redis: Some(redis),
        },
    ]
}

pub fn payment(
    id: &str,
    user: &str,
    amount: &str,
    currency: &str,
    ts: DateTime<Utc>,
) -> PaymentEvent {
    PaymentEvent {
        event_id: id.into(),
        user: user.into(),
        amount: Amount::parse(amount).unwrap(),
        currency: currency.into(),
        destination: None,
        ts,
    }
}

pub fn purchase(id: &str, user: &str, amount: &str, ts: DateTime<Utc>) -> Event {
    Event::Purchase(payment(id, user, amount, "NGN", ts))
}

pub fn transfer(id: &str, user: &str, amount: &str, to: &str, ts: DateTime<Utc>) -> Event {
    let mut p = payment(id, user, amount, "NGN", ts);
    p.destination = Some(to.into());
    Event::Transfer(p)
}

pub fn auth_failure(id: &str, principal: &str, ip: &str, ts: DateTime<Utc>) -> Event {
    Event::AuthFailure(AuthFailureEvent {
        event_id: id.into(),
        principal: principal.into(),
        ip: ip.parse().unwrap(),
        ts,
    })
}

pub fn gas(id: &str, chain: &str, wei: i128, ts: DateTime<Utc>) -> Event {
    Event::GasSample(GasSampleEvent {
        event_id: id.into(),
        chain: chain.into(),
        wei,
        ts,
    })
}

pub fn pending(id: &str, tx: &str, submitted: DateTime<Utc>, seen: DateTime<Utc>) -> Event {
    Event::TxPending(TxPendingEvent {
        event_id: id.into(),
        chain: "base".into(),
        tx_hash: tx.into(),
        user: Some("u1".into()),
        submitted_at: submitted,
        ts: seen,
    })
}

pub fn failed(id: &str, tx: &str, reason: &str, ts: DateTime<Utc>) -> Event {
    Event::TxFailed(TxFailedEvent {
        event_id: id.into(),
        chain: "base".into(),
        tx_hash: tx.into(),
        user: None,
        reason: reason.into(),
        ts,
    })
}

pub fn http(id: &str, service: &str, requests: u64, errors: u64, ts: DateTime<Utc>) -> Event {
    Event::HttpErrors(HttpErrorsEvent {
        event_id: id.into(),
        service: service.into(),
        requests,
        server_errors: errors,
        ts,
    })
}

/// Evaluates events in order and returns every alert.
pub async fn run(engine: &Engine, events: &[Event]) -> Vec<Alert> {
    let mut out = Vec::new();
    for e in events {
        out.extend(engine.evaluate(e).await.unwrap());
    }
    out
}

/// Evaluates one event and returns the alerts it raised.
pub async fn eval(engine: &Engine, event: Event) -> Vec<Alert> {
    engine.evaluate(&event).await.unwrap()
}
