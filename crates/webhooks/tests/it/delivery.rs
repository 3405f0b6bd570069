//! A4 (library part): a receiver that fails twice then succeeds gets exactly one accepted
//! delivery when driven by the delivery rules and the HTTP sender; the signatures verify
//! with our verifier and with the PyPI `standardwebhooks` package.

use std::time::Duration;

use chrono::{DateTime, Utc};
use haven_webhooks::receiver::{Receiver, Turn, standardwebhooks_accepts};
use haven_webhooks::{
    Decision, DestinationPolicy, Error, HttpSender, Refusal, RetryPolicy, Secret, SenderConfig,
    signed_headers,
};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OLD_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// What the test receiver verifies with.
fn secrets() -> Vec<Secret> {
    vec![Secret::standard(SECRET).unwrap()]
}

fn sender() -> HttpSender {
    // the test process chooses the TLS crypto provider; the library never does
    haven_testkit::install_crypto_provider();
    HttpSender::new(
        DestinationPolicy::allow_loopback_http(),
        SenderConfig {
            timeout: Duration::from_secs(10),
            ..SenderConfig::default()
        },
    )
    .unwrap()
}

/// What the worker does for one message, with scheduled times simulated (no waiting).
async fn drive(
    sender: &HttpSender,
    url: &str,
    secrets: &[Secret],
    id: &str,
    payload: &[u8],
) -> Vec<(u32, Decision)> {
    let policy = RetryPolicy::default();
    let mut scheduled_now: DateTime<Utc> = Utc::now();
    let mut attempt = 1;
    let mut decisions = Vec::new();
    loop {
        let signing_now = Utc::now().timestamp();
        let headers = signed_headers(secrets, id, signing_now, payload, signing_now).unwrap();
        let result = sender.send(url, headers, payload.to_vec()).await.unwrap();
        let decision =
            policy.next_attempt(attempt, result.status, result.retry_after, scheduled_now);
        decisions.push((attempt, decision));
        match decision {
            Decision::Delivered | Decision::DeadLetter => return decisions,
            Decision::RetryAt { at, attempt_no } => {
                scheduled_now = at;
                attempt = attempt_no;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_failing_twice_then_succeeding_gets_exactly_one_accepted_delivery() {
    let receiver = Receiver::start(
        secrets(),
        vec![Turn::retry_after(503, "120"), Turn::status(500)],
    )
    .await;
    let payload = br#"{"type":"token.redeemed","data":{"amount":"10"}}"#;
    // The endpoint is mid-rotation: signed with the new and the old secret.
    let secrets = [
        Secret::standard(SECRET).unwrap(),
        Secret::standard(OLD_SECRET)
            .unwrap()
            .expires_at(Utc::now().timestamp() + 3600),
    ];
    let decisions = drive(
        &sender(),
        &receiver.url(),
        &secrets,
        "msg_delivery_1",
        payload,
    )
    .await;

    assert_eq!(decisions.len(), 3, "{decisions:?}");
    match decisions[0].1 {
        // 503 with Retry-After: 120 is honoured instead of the 5 s step.
        Decision::RetryAt { attempt_no: 2, .. } => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        decisions[1].1,
        Decision::RetryAt { attempt_no: 3, .. }
    ));
    assert_eq!(decisions[2].1, Decision::Delivered);

    let log = receiver.log();
    assert_eq!(
        log.iter().map(|r| r.answered).collect::<Vec<_>>(),
        vec![Some(503), Some(500), Some(204)]
    );
    assert_eq!(
        receiver.accepted(),
        vec!["msg_delivery_1".to_owned()],
        "exactly one accepted delivery"
    );
    for r in &log {
        assert_eq!(r.body, payload, "the raw body is sent unchanged");
        assert_eq!(r.headers["webhook-id"], "msg_delivery_1");
        assert_eq!(r.headers["content-type"], "application/json");
    }
    standardwebhooks_accepts(&log, SECRET);
    standardwebhooks_accepts(&log, OLD_SECRET);
}

#[tokio::test]
async fn retry_after_delay_is_reflected_in_the_schedule() {
    let receiver = Receiver::start(secrets(), vec![Turn::retry_after(429, "120")]).await;
    let sender = sender();
    let now = Utc::now().timestamp();
    let headers = signed_headers(
        &[Secret::standard(SECRET).unwrap()],
        "msg_ra",
        now,
        b"{}",
        now,
    )
    .unwrap();
    let result = sender
        .send(&receiver.url(), headers, b"{}".to_vec())
        .await
        .unwrap();
    assert_eq!(result.status, Some(429));
    assert_eq!(result.retry_after, Some(Duration::from_secs(120)));
    let t0 = Utc::now();
    assert_eq!(
        RetryPolicy::default().next_attempt(1, result.status, result.retry_after, t0),
        Decision::RetryAt {
            at: t0 + chrono::Duration::seconds(120),
            attempt_no: 2
        }
    );
}

#[tokio::test]
async fn internal_destinations_are_refused_unless_allow_listed() {
    let receiver = Receiver::start(secrets(), vec![]).await;
    haven_testkit::install_crypto_provider();
    let strict = HttpSender::new(DestinationPolicy::strict(), SenderConfig::default()).unwrap();
    let mut relaxed = DestinationPolicy::strict();
    relaxed.require_https = false;
    let no_loopback = HttpSender::new(relaxed, SenderConfig::default()).unwrap();
    let url = receiver.url();
    let refused = |r: Result<_, Error>| match r {
        Err(Error::DestinationRefused { reason, .. }) => reason,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        refused(strict.send(&url, http::HeaderMap::new(), vec![]).await),
        Refusal::InsecureScheme
    );
    assert_eq!(
        refused(no_loopback.send(&url, http::HeaderMap::new(), vec![]).await),
        Refusal::NonPublicAddress
    );
    // A name (not a literal) that resolves to loopback is refused by the resolver.
    let by_name = format!("http://localhost:{}/hooks", receiver.port);
    assert_eq!(
        refused(
            no_loopback
                .send(&by_name, http::HeaderMap::new(), vec![])
                .await
        ),
        Refusal::NonPublicAddress
    );
    assert!(receiver.log().is_empty(), "nothing was sent");
    // Allow-listed: delivered.
    let ok = sender()
        .send(&by_name, http::HeaderMap::new(), vec![])
        .await
        .unwrap();
    assert_eq!(
        ok.status,
        Some(401),
        "reached the receiver, which wants a signature"
    );
}

#[tokio::test]
async fn an_unreachable_receiver_is_a_retryable_transport_failure() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let result = sender()
        .send(
            &format!("http://127.0.0.1:{closed}/"),
            http::HeaderMap::new(),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(result.status, None);
    assert!(result.transport_error.is_some());
    assert!(!result.is_success());
    assert!(matches!(
        RetryPolicy::default().next_attempt(1, result.status, None, Utc::now()),
        Decision::RetryAt { attempt_no: 2, .. }
    ));
}
