//! What the api tests share: seeded users, the development signer, the audit log, and a
//! [`Client`] that sends JSON requests with one credential and reads the answer.

use chrono::Utc;
use haven_api::config::auth::DEV_JWT_SECRET;
use haven_api::testing::TestApi;
use haven_auth::{Jwt, JwtConfig, Keyring, Passwords, Role, SigningKey};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

/// The password of every user the tests create.
pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// The api's development signer (tests run with the development secret).
pub(crate) fn dev_jwt(kid: &str) -> Jwt {
    Jwt::new(
        JwtConfig::new("haven", "haven-api"),
        Keyring::new(SigningKey::hs256(kid, DEV_JWT_SECRET.as_bytes()).unwrap()),
    )
}

/// A small pool on the test's own database.
pub(crate) async fn pool(api: &TestApi) -> haven_db::PgPool {
    haven_db::connect(api.db.url(), 2).await.unwrap()
}

/// Creates a user with [`PASSWORD`] and `role`; its id.
pub(crate) async fn create_user(api: &TestApi, email: &str, role: haven_db::Role) -> Uuid {
    let hash = Passwords::owasp()
        .unwrap()
        .hash(&SecretString::from(PASSWORD))
        .unwrap();
    haven_db::UserRepo::new(pool(api).await)
        .create(haven_db::NewUser {
            email: email.into(),
            password_hash: Some(hash.as_str().to_owned()),
            role,
        })
        .await
        .unwrap()
        .id
}

/// Creates a user who cannot log in (no password; cheap: no argon2) with `role`; its id.
/// The audit records with `action`, oldest first.
pub(crate) async fn audit_rows(api: &TestApi, action: &str) -> Vec<haven_core::audit::AuditRecord> {
    haven_db::PgAuditLog::new(pool(api).await)
        .page(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event.action == action)
        .collect()
}

/// A client logged in as a new passwordless user of `role`.
pub(crate) async fn client_as(api: &TestApi, role: Role) -> Client<'_> {
    let id = create_passwordless_user(api, db_role(role)).await;
    Client::for_user(api, id, role)
}

pub(crate) async fn create_passwordless_user(api: &TestApi, role: haven_db::Role) -> Uuid {
    haven_db::UserRepo::new(pool(api).await)
        .create(haven_db::NewUser {
            email: format!("{}@example.com", Uuid::new_v4().simple()),
            password_hash: None,
            role,
        })
        .await
        .unwrap()
        .id
}

/// The stored role of an api role.
pub(crate) fn db_role(role: Role) -> haven_db::Role {
    match role {
        Role::Admin => haven_db::Role::Admin,
        Role::Operator => haven_db::Role::Operator,
        Role::Viewer => haven_db::Role::Viewer,
        Role::Guardian => panic!("guardian is not a user role"),
    }
}

/// The action and severity of every audit row.
pub(crate) async fn audit_actions(api: &TestApi) -> Vec<(String, String)> {
    haven_db::PgAuditLog::new(pool(api).await)
        .page(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.event.action, r.event.severity.as_str().to_owned()))
        .collect()
}

/// Logs in with [`PASSWORD`] from the device "test"; the status and body, whatever they are.
pub(crate) async fn try_login(api: &TestApi, email: &str) -> (StatusCode, Value) {
    Client::anonymous(api)
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": PASSWORD, "device": "test"}),
        )
        .await
}

/// Logs in as [`try_login`] does and asserts 200; a client with the access token, and the tokens.
pub(crate) async fn login<'a>(api: &'a TestApi, email: &str) -> (Client<'a>, Value) {
    let (status, tokens) = try_login(api, email).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let client = Client::bearer(api, tokens["access_token"].as_str().unwrap());
    (client, tokens)
}

/// Trades a refresh token (any JSON value) at `/auth/refresh`; the status and body.
pub(crate) async fn refresh(api: &TestApi, token: impl serde::Serialize) -> (StatusCode, Value) {
    Client::anonymous(api)
        .post("/api/v1/auth/refresh", json!({"refresh_token": token}))
        .await
}

/// The whole answer to a request.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    /// The body as JSON, `Null` when it is empty or not JSON.
    pub(crate) body: Value,
    pub(crate) bytes: Vec<u8>,
    /// Whether the answer carries `Idempotent-Replayed`.
    pub(crate) replayed: bool,
    /// The response headers.
    pub(crate) headers: reqwest::header::HeaderMap,
}

impl Answer {
    /// A response header as text, empty when absent.
    pub(crate) fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

/// A client of the api under test: every request it sends carries the same credential, if any.
pub(crate) struct Client<'a> {
    api: &'a TestApi,
    credential: Option<(&'static str, String)>,
    /// One connection pool for all of this client's requests.
    http: reqwest::Client,
}

impl<'a> Client<'a> {
    fn with(api: &'a TestApi, credential: Option<(&'static str, String)>) -> Self {
        Self {
            api,
            credential,
            http: reqwest::Client::new(),
        }
    }

    /// A client that sends no credential.
    pub(crate) fn anonymous(api: &'a TestApi) -> Self {
        Self::with(api, None)
    }

    /// A client that sends `Authorization: Bearer <token>`.
    pub(crate) fn bearer(api: &'a TestApi, token: &str) -> Self {
        Self::with(api, Some(("authorization", format!("Bearer {token}"))))
    }

    /// A client that sends `X-Api-Key: <key>`.
    pub(crate) fn api_key(api: &'a TestApi, key: &str) -> Self {
        Self::with(api, Some(("x-api-key", key.to_owned())))
    }

    /// A client with an access token that [`dev_jwt`] ("k1") issues to `user` as `role`.
    pub(crate) fn for_user(api: &'a TestApi, user: Uuid, role: Role) -> Self {
        let token = dev_jwt("k1").issue_access(user, role, Utc::now()).unwrap();
        Self::bearer(api, token.as_str())
    }

    /// Sends a request with an optional JSON body and `Idempotency-Key`; the whole answer.
    pub(crate) async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> Answer {
        let mut req = self.http.request(method, self.api.url(path));
        if let Some((header, value)) = &self.credential {
            req = req.header(*header, value);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        if let Some(key) = idempotency_key {
            req = req.header("idempotency-key", key);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let replayed = res.headers().contains_key("idempotent-replayed");
        let headers = res.headers().clone();
        let bytes = res.bytes().await.unwrap().to_vec();
        Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            bytes,
            replayed,
            headers,
        }
    }

    /// Sends a request with an optional JSON body; the status and the body as JSON.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let answer = self.request(method, path, body, None).await;
        (answer.status, answer.body)
    }

    /// `GET path`; the status and the body as JSON.
    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body; the status and the body as JSON.
    pub(crate) async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, Some(body)).await
    }

    /// `POST path` without a body; the status and the body as JSON.
    pub(crate) async fn post_empty(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::POST, path, None).await
    }

    /// `PUT path` with a JSON body; the status and the body as JSON.
    pub(crate) async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::PUT, path, Some(body)).await
    }

    /// `DELETE path`; the status and the body as JSON.
    pub(crate) async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::DELETE, path, None).await
    }

    /// `GET /api/v1/auth/whoami`: who the api takes this client for.
    pub(crate) async fn whoami(&self) -> (StatusCode, Value) {
        self.get("/api/v1/auth/whoami").await
    }
}

/// The real `haven-api` binary running as its own process; killed when dropped.
pub(crate) struct ApiProcess {
    child: std::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub(crate) address: String,
}

impl ApiProcess {
    /// Starts the binary with the test services and `env` on top, waiting (up to 60 s) for
    /// `/health` to answer.
    pub(crate) async fn start(db: &haven_testkit::TestDb, env: &[(&str, String)]) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = free_port();
        let mut child = Self::command(db, port, env)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let address = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..600 {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("haven-api exited early: {status}");
            }
            if client
                .get(format!("{address}/health"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Self { child, address };
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        panic!("haven-api did not answer /health within 60 s");
    }

    /// The command that runs the binary on `port` against `db` and the test Redis, with
    /// `env` on top (`HAVEN_ENV=test` unless `env` says otherwise).
    pub(crate) fn command(
        db: &haven_testkit::TestDb,
        port: u16,
        env: &[(&str, String)],
    ) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_haven-api"));
        cmd.env_remove("HAVEN_CONFIG")
            .env("HAVEN_ENV", "test")
            .env("DATABASE_URL", db.url())
            .env("REDIS_URL", haven_testkit::TestRedis::server_url())
            .env("HAVEN_API_ADDR", format!("127.0.0.1:{port}"))
            .env("HAVEN_LOG_FORMAT", "json")
            .env("RUST_LOG", "warn");
        for (name, value) in env {
            cmd.env(name, value);
        }
        cmd
    }

    /// `address + path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
    pub(crate) fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }

    /// The value of an unlabelled series on this process's `/metrics`.
    pub(crate) async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::get(self.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for ApiProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on right now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
