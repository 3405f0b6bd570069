//! A verifying webhook receiver for tests of senders (feature `test-utils`): a minimal
//! HTTP/1.1 server that answers from a script, verifies every request with [`Verifier`] and,
//! like a careful receiver, processes (records) a message only on its first verified 2xx
//! answer. [`standardwebhooks_accepts`] checks the received signatures with the independent
//! PyPI `standardwebhooks` package.
//!
//! ```no_run
//! # async fn demo() {
//! use haven_webhooks::receiver::{Receiver, Turn};
//! use haven_webhooks::Secret;
//!
//! let secret = Secret::standard("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
//! // Fails twice, then answers 204 for ever.
//! let receiver = Receiver::start(vec![secret], vec![Turn::status(503), Turn::status(500)]).await;
//! // … point a sender at receiver.url() …
//! assert_eq!(receiver.accepted().len(), 1);
//! # }
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::{MemoryReplayStore, Scheme, Secret, Verifier, VerifyError};

/// How the receiver answers one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    status: Option<u16>,
    retry_after: Option<String>,
}

impl Turn {
    /// Answer `status` (a 2xx processes the message).
    pub fn status(status: u16) -> Self {
        Self {
            status: Some(status),
            retry_after: None,
        }
    }

    /// Answer `status` with a `Retry-After` header.
    pub fn retry_after(status: u16, value: &str) -> Self {
        Self {
            status: Some(status),
            retry_after: Some(value.to_owned()),
        }
    }

    /// Read the request and never answer (the sender is killed meanwhile).
    pub fn stall() -> Self {
        Self {
            status: None,
            retry_after: None,
        }
    }
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    /// The raw body.
    pub body: Vec<u8>,
    /// The status answered; `None` when the turn stalled.
    pub answered: Option<u16>,
}

/// The running receiver; it stops with the test's runtime.
#[derive(Debug)]
pub struct Receiver {
    /// The port on 127.0.0.1.
    pub port: u16,
    log: Arc<Mutex<Vec<Received>>>,
    accepted: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    /// Listens on a free port; verifies with `secrets` (Standard Webhooks) and answers from
    /// `script`, then 204 for ever. A request that does not verify gets 401, a verified
    /// redelivery of a processed message 200, a conflicting one 409.
    pub async fn start(secrets: Vec<Secret>, script: Vec<Turn>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let verifier = Arc::new(Verifier::new("test-receiver", Scheme::Standard, secrets));
        let replay = Arc::new(MemoryReplayStore::new());
        let script = Arc::new(Mutex::new(script.into_iter()));
        let (log2, accepted2) = (log.clone(), accepted.clone());
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
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
                    let now = chrono::Utc::now().timestamp();
                    let turn = script.lock().unwrap().next();
                    let (status, retry_after) = match (verifier.verify(&map, &body, now), turn) {
                        (Err(_), _) => (Some(401), None),
                        (Ok(_), Some(turn))
                            if !turn.status.is_some_and(|s| (200..300).contains(&s)) =>
                        {
                            (turn.status, turn.retry_after)
                        }
                        (Ok(_), _) => {
                            match verifier.verify_and_record(&map, &body, now, &*replay).await {
                                Ok(v) => {
                                    accepted.lock().unwrap().push(v.replay_id.to_string());
                                    (Some(204), None)
                                }
                                Err(VerifyError::Duplicate { .. }) => (Some(200), None),
                                Err(_) => (Some(409), None),
                            }
                        }
                    };
                    log.lock().unwrap().push(Received {
                        headers,
                        body,
                        answered: status,
                    });
                    let Some(status) = status else {
                        // Hold the connection open until the test ends.
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return;
                    };
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

    /// `http://127.0.0.1:<port>/hooks`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks", self.port)
    }

    /// Every request so far, in arrival order.
    pub fn log(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    /// The ids of the messages processed (once each).
    pub fn accepted(&self) -> Vec<String> {
        self.accepted.lock().unwrap().clone()
    }
}

async fn read_request(sock: &mut TcpStream) -> (HashMap<String, String>, Vec<u8>) {
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

/// Asserts that the PyPI `standardwebhooks` package accepts every delivery under `secret`
/// (through `tests/scripts/standardwebhooks_verify.py`; `scripts/test-tools.sh` puts a Python
/// with the package first on `PATH`).
///
/// # Panics
/// When python3 is missing or the package rejects a delivery.
pub fn standardwebhooks_accepts(deliveries: &[Received], secret: &str) {
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
        "standardwebhooks rejected a delivery (exit {:?}; run `eval \"$(scripts/test-tools.sh --env)\"` if it is missing): {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
