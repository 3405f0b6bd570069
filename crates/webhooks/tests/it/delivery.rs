//! A4 (library part): a receiver that fails twice then succeeds gets exactly one accepted
//! delivery when driven by the delivery rules and the HTTP sender; the signatures verify
//! with our verifier and with the PyPI `standardwebhooks` package.

use std::collections::HashMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use haven_webhooks::{
    Decision, DestinationPolicy, Error, HttpSender, MemoryReplayStore, Refusal, RetryPolicy,
    Scheme, Secret, SenderConfig, Verifier, VerifyError, signed_headers,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OLD_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

#[derive(Debug, Clone)]
struct Received {
    headers: HashMap<String, String>,
    body: Vec<u8>,
    answered: u16,
}

/// A minimal HTTP/1.1 receiver answering from a script, then 204 for ever; it verifies
/// each request and processes (counts) only verified, first-seen messages on a 2xx turn.
struct Receiver {
    port: u16,
    log: Arc<Mutex<Vec<Received>>>,
    accepted: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start(script: Vec<(u16, Option<&'static str>)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let verifier = Arc::new(Verifier::new(
            "outbound-test",
            Scheme::Standard,
            vec![Secret::standard(SECRET).unwrap()],
        ));
        let replay = Arc::new(MemoryReplayStore::new());
        let script = Arc::new(Mutex::new(script.into_iter()));
        let (log2, accepted2) = (log.clone(), accepted.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (log, accepted, verifier, replay, script) = (
                    log2.clone(),
                    accepted2.clone(),
                    verifier.clone(),
                    replay.clone(),
                    script.clone(),
                );
                tokio::spawn(async move {
                    let (headers, body) = read_request(&mut sock).await;
                    let mut map = http::HeaderMap::new();
                    for (k, v) in &headers {
                        map.insert(
                            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                            v.parse().unwrap(),
                        );
                    }
                    let now = Utc::now().timestamp();
                    let turn = script.lock().unwrap().next();
                    let (status, retry_after) = match verifier.verify(&map, &body, now) {
                        Err(_) => (401, None),
                        Ok(_) => match turn {
                            Some((s, ra)) if !(200..300).contains(&s) => (s, ra),
                            _ => match verifier.verify_and_record(&map, &body, now, &*replay).await
                            {
                                Ok(v) => {
                                    accepted.lock().unwrap().push(v.replay_id);
                                    (204, None)
                                }
                                Err(VerifyError::Duplicate { .. }) => (200, None),
                                Err(_) => (409, None),
                            },
                        },
                    };
                    log.lock().unwrap().push(Received {
                        headers,
                        body,
                        answered: status,
                    });
                    let extra = retry_after
                        .map(|r| format!("Retry-After: {r}\r\n"))
                        .unwrap_or_default();
                    let response = format!(
                        "HTTP/1.1 {status} X\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let _ = sock.write_all(response.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Self {
            port,
            log,
            accepted,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks", self.port)
    }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> (HashMap<String, String>, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before the headers ended");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut headers = HashMap::new();
    for line in head.split("\r\n").skip(1).filter(|l| !l.is_empty()) {
        let (k, v) = line.split_once(':').unwrap();
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let len: usize = headers
        .get("content-length")
        .map_or(0, |v| v.parse().unwrap());
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed inside the body");
        body.extend_from_slice(&chunk[..n]);
    }
    (headers, body)
}

fn sender() -> HttpSender {
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

fn python_verifies(deliveries: &[Received], secret: &str) {
    let list: Vec<serde_json::Value> = deliveries
        .iter()
        .map(|d| {
            serde_json::json!({
                "secret": secret,
                "headers": d.headers,
                "body": String::from_utf8(d.body.clone()).unwrap(),
            })
        })
        .collect();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/scripts/standardwebhooks_verify.py"
    );
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the independent signature check");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&list).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "standardwebhooks rejected a delivery (exit {:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_failing_twice_then_succeeding_gets_exactly_one_accepted_delivery() {
    let receiver = Receiver::start(vec![(503, Some("120")), (500, None)]).await;
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

    let log = receiver.log.lock().unwrap().clone();
    assert_eq!(
        log.iter().map(|r| r.answered).collect::<Vec<_>>(),
        vec![503, 500, 204]
    );
    assert_eq!(
        *receiver.accepted.lock().unwrap(),
        vec!["msg_delivery_1".to_owned()],
        "exactly one accepted delivery"
    );
    for r in &log {
        assert_eq!(r.body, payload, "the raw body is sent unchanged");
        assert_eq!(r.headers["webhook-id"], "msg_delivery_1");
        assert_eq!(r.headers["content-type"], "application/json");
    }
    python_verifies(&log, SECRET);
    python_verifies(&log, OLD_SECRET);
}

#[tokio::test]
async fn retry_after_delay_is_reflected_in_the_schedule() {
    let receiver = Receiver::start(vec![(429, Some("120"))]).await;
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
    let receiver = Receiver::start(vec![]).await;
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
    assert!(receiver.log.lock().unwrap().is_empty(), "nothing was sent");
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
