//! A5: delivery through a real local SMTP server (aiosmtpd) and a local webhook receiver,
//! and the dispatcher that keeps delivery off the detection path.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use haven_fraud::conformance::sample_alert;
use haven_fraud::{
    Alert, AlertSink, DeliveryError, Dispatcher, LogSink, Severity, SmtpConfig, SmtpSecurity,
    SmtpSink, StandardWebhookSigner, WebhookSink,
};
use haven_testkit::{StubRequest, StubResponse, StubServer};
use secrecy::SecretString;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

const ADDRESS: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

fn hostile_alert() -> Alert {
    let mut alert = sample_alert("alice", "velocity", Severity::High, 0);
    alert.description =
        format!("paid {ADDRESS}\r\nBcc: evil@example.com\r\nX-Injected: yes\r\n\r\nfake body");
    alert.subject = "alice\nX-Subject-Injected: 1".into();
    alert.metadata = serde_json::json!({ "destination": ADDRESS, "note": "token=abc123" });
    alert
}

struct SmtpServer {
    _child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

async fn start_smtp() -> SmtpServer {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .status()
        .expect("python3 is needed for the SMTP test");
    assert!(
        probe.success(),
        "the SMTP test needs aiosmtpd: `pip install aiosmtpd`"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("aiosmtpd did not start within 30 s")
        .unwrap();
    assert_eq!(ready.as_deref(), Some("ready"));
    SmtpServer {
        _child: child,
        dir,
        port,
    }
}

/// Waits (up to 20 s) until `n` messages were written, and returns them in order.
async fn messages(dir: &Path, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        if files.len() >= n {
            files.sort();
            return files
                .iter()
                .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
                .collect();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {n} messages arrived",
            files.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn smtp_config(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        security: SmtpSecurity::None,
        credentials: None,
        from: "Haven Alerts <alerts@example.com>".into(),
        to: vec!["ops@example.com".into(), "sec@example.com".into()],
        timeout: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn smtp_delivers_redacted_alerts_and_crlf_cannot_inject_headers() {
    let server = start_smtp().await;
    let sink = SmtpSink::new(&smtp_config(server.port)).unwrap();
    sink.deliver(&hostile_alert()).await.unwrap();

    let got = messages(server.dir.path(), 1).await;
    let msg = &got[0];
    assert_eq!(msg["mail_from"], "alerts@example.com");
    assert_eq!(
        msg["rcpt_tos"],
        serde_json::json!(["ops@example.com", "sec@example.com"])
    );
    let data = msg["data"].as_str().unwrap();
    let (headers, body) = data.split_once("\r\n\r\n").expect("headers and body");
    let names: Vec<&str> = headers
        .split("\r\n")
        .filter(|l| !l.starts_with(' ') && !l.starts_with('\t'))
        .filter_map(|l| l.split_once(':').map(|(n, _)| n))
        .collect();
    for injected in ["Bcc", "X-Injected", "X-Subject-Injected"] {
        assert!(
            !names.iter().any(|n| n.eq_ignore_ascii_case(injected)),
            "{injected} in {names:?}"
        );
    }
    assert_eq!(
        names
            .iter()
            .filter(|n| n.eq_ignore_ascii_case("Subject"))
            .count(),
        1
    );
    assert!(headers.contains("[HIGH] velocity"), "{headers}");
    assert!(!data.contains(ADDRESS), "the address must be redacted");
    assert!(body.contains("[REDACTED_ADDRESS]"), "{body}");
}

#[tokio::test]
async fn smtp_addresses_with_crlf_are_refused_and_a_dead_server_is_an_error() {
    let mut config = smtp_config(1);
    config.to = vec!["ops@example.com\r\nBcc: evil@example.com".into()];
    assert!(matches!(
        SmtpSink::new(&config),
        Err(DeliveryError::InvalidConfig { field: "to" })
    ));
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sink = SmtpSink::new(&smtp_config(port)).unwrap();
    assert!(matches!(
        sink.deliver(&hostile_alert()).await,
        Err(DeliveryError::Smtp(_))
    ));
}

/// A receiver answering every request with `status` and `headers`, recording what it got.
async fn receiver(status: u16, headers: &[(&str, &str)]) -> StubServer {
    let mut answer = StubResponse::status(status);
    for (name, value) in headers {
        answer = answer.with_header(name, value);
    }
    StubServer::start(move |_| answer.clone()).await
}

/// The one request `stub` received, a `POST /alerts`.
fn the_alert_post(stub: &StubServer) -> StubRequest {
    let requests = stub.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = requests.into_iter().next().unwrap();
    assert_eq!(
        (request.method.as_str(), request.path()),
        ("POST", "/alerts")
    );
    request
}

/// The sink's signer; every webhook test builds one before its sink, so this is also where
/// the test process chooses its TLS crypto provider (the library never does).
fn signer() -> StandardWebhookSigner {
    haven_testkit::install_crypto_provider();
    let secret = SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned());
    StandardWebhookSigner::from_secret(&secret).unwrap()
}

#[tokio::test]
async fn webhook_posts_a_signed_redacted_payload() {
    let stub = receiver(204, &[]).await;
    let url = format!("{}/alerts", stub.url());
    let sink = WebhookSink::new(&url, Arc::new(signer())).unwrap();
    let alert = hostile_alert();
    sink.deliver(&alert).await.unwrap();
    let got = the_alert_post(&stub);
    let header = |name: &str| {
        got.header(name)
            .unwrap_or_else(|| panic!("no {name} header"))
    };

    let id = header("webhook-id");
    assert_eq!(id, format!("msg_{}", alert.id.simple()));
    let ts: i64 = header("webhook-timestamp").parse().unwrap();
    let expected = signer().signature(id, ts, &got.body);
    assert_eq!(header("webhook-signature"), expected, "signature verifies");
    assert_eq!(header("content-type"), "application/json");

    let body = String::from_utf8(got.body.clone()).unwrap();
    assert!(!body.contains(ADDRESS), "{body}");
    assert!(!body.contains("abc123"), "{body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["type"], "fraud.alert");
    assert_eq!(json["data"]["id"], alert.id.to_string());
    assert_eq!(
        json["data"]["metadata"]["destination"],
        "[REDACTED_ADDRESS]"
    );
}

#[tokio::test]
async fn webhook_non_2xx_is_an_error() {
    let stub = receiver(500, &[]).await;
    let url = format!("{}/alerts", stub.url());
    let sink = WebhookSink::new(&url, Arc::new(signer())).unwrap();
    let err = sink.deliver(&hostile_alert()).await.unwrap_err();
    assert!(
        matches!(err, DeliveryError::Status { status: 500 }),
        "{err:?}"
    );
    the_alert_post(&stub);
    assert!(matches!(
        WebhookSink::new("ftp://x", Arc::new(signer())),
        Err(DeliveryError::InvalidConfig { field: "url" })
    ));
}

/// A redirect is a failed delivery: the alert never goes to an address the configuration
/// does not name.
#[tokio::test]
async fn webhook_redirects_are_not_followed() {
    let elsewhere = receiver(204, &[]).await;
    let target = format!("{}/alerts", elsewhere.url());
    let stub = receiver(307, &[("location", &target)]).await;
    let url = format!("{}/alerts", stub.url());
    let sink = WebhookSink::new(&url, Arc::new(signer())).unwrap();
    let err = sink.deliver(&hostile_alert()).await.unwrap_err();
    assert!(
        matches!(err, DeliveryError::Status { status: 307 }),
        "{err:?}"
    );
    the_alert_post(&stub);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(elsewhere.count(), 0, "the redirect target was called");
}

/// Plain-text SMTP is for a relay on this machine only.
#[tokio::test]
async fn plain_smtp_is_refused_for_other_hosts() {
    for host in ["smtp.example.com", "10.0.0.5", "203.0.113.9"] {
        let mut config = smtp_config(25);
        config.host = host.into();
        assert!(
            matches!(
                SmtpSink::new(&config),
                Err(DeliveryError::InvalidConfig { field: "security" })
            ),
            "{host}"
        );
    }
    for host in ["localhost", "127.0.0.1", "::1", "[::1]", "mail.localhost"] {
        let mut config = smtp_config(25);
        config.host = host.into();
        assert!(SmtpSink::new(&config).is_ok(), "{host}");
    }
}

/// A sink that blocks until released, counting deliveries.
struct Stuck {
    release: Arc<Notify>,
    delivered: Arc<AtomicUsize>,
}

#[async_trait]
impl AlertSink for Stuck {
    fn name(&self) -> &'static str {
        "stuck"
    }

    async fn deliver(&self, _: &Alert) -> Result<(), DeliveryError> {
        self.release.notified().await;
        self.delivered.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn a_stuck_sink_never_delays_detection() {
    let release = Arc::new(Notify::new());
    let delivered = Arc::new(AtomicUsize::new(0));
    let stuck = Arc::new(Stuck {
        release: release.clone(),
        delivered: delivered.clone(),
    });
    let (dispatcher, task) = Dispatcher::spawn(vec![Arc::new(LogSink), stuck], 2);

    let b = crate::helpers::backends().await.remove(0);
    let engine = b.engine(haven_fraud::DEFAULT_RULES);
    let mut raised = 0;
    for i in 0..10 {
        let event = crate::helpers::purchase(
            &format!("e{i}"),
            &format!("u{i}"),
            "50",
            crate::helpers::at(0),
        );
        for alert in engine.evaluate(&event).await.unwrap() {
            raised += 1;
            // Returns at once whether or not there is room; the sink is blocked throughout.
            dispatcher.enqueue(alert);
        }
    }
    assert_eq!(raised, 10);
    assert_eq!(
        delivered.load(Ordering::SeqCst),
        0,
        "the sink is still blocked"
    );
    let dropped = dispatcher.dropped();
    assert!(
        dropped >= 7,
        "a queue of 2 plus one in flight: {dropped} dropped"
    );

    drop(dispatcher);
    // Release deliveries one by one until the task drains the queue and ends.
    let mut task = task;
    loop {
        release.notify_one();
        tokio::select! {
            done = &mut task => { done.unwrap(); break; }
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
    }
    assert_eq!(delivered.load(Ordering::SeqCst) as u64 + dropped, 10);
}
