//! A whole rewards stack for end-to-end tests: anvil with the HAVEN token, the api (in this
//! process, over real HTTP) and the worker as a separate `haven-worker` process, sharing
//! one Postgres database and Redis.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use haven_api::config::webhooks::WebhookSources;
use haven_api::testing::{TestApi, spawn_api_on};
use haven_chain::HavenToken;
use haven_chain::conformance::fixtures;
use haven_custody::{Custody, CustodyConfig, LocalKeyProvider};
use haven_db::{PgAuditLog, PgPool, PgWalletStore};
use haven_testkit::{Anvil, TestDb, TestRedis};
use haven_webhooks::{Scheme, Secret, Verifier, sign_header};
use serde_json::Value;
use uuid::Uuid;

/// The partners' webhook secrets in the tests.
pub const AURORA_SECRET: &str = "aurora-test-secret-of-32-bytes!!";
pub const TRIBE_SECRET: &str = "tribe-test-secret-of-32-bytes!!!";

/// anvil, the token, the api and a worker process.
pub struct Stack {
    pub anvil: Anvil,
    pub api: TestApi,
    pub pool: PgPool,
    pub token: Address,
    pub reader: DynProvider,
    pub client: reqwest::Client,
    worker: Option<Child>,
    worker_env: Vec<(String, String)>,
}

impl Stack {
    /// Everything up, the worker polling every 100 ms and the chain monitor every second.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Like [`Stack::start`], adjusting the api's configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut haven_api::config::ApiConfig)) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let anvil = Anvil::spawn();
        let db = TestDb::new().await;
        let pool = haven_db::connect(db.url(), 8).await.unwrap();
        let master_keys = LocalKeyProvider::generate_entry(1).unwrap().to_string();
        let custody = Arc::new(Custody::new(
            Arc::new(PgWalletStore::new(pool.clone())),
            Arc::new(LocalKeyProvider::parse(&master_keys).unwrap()),
            Arc::new(PgAuditLog::new(pool.clone())),
            CustodyConfig::default(),
        ));
        fixtures::create_wallets(&custody, &["minter"]).await;
        let minter = fixtures::wallet_address(&custody, "minter").await;
        let token = fixtures::deploy_and_fund(
            &anvil.endpoint(),
            Anvil::DEV_PRIVATE_KEYS[0],
            minter,
            &[minter],
        )
        .await;
        let rpc = anvil.endpoint();
        // The api's and the worker's shared Redis keys (the statistics cache).
        let redis_prefix = format!("haven:e2e:{}:", Uuid::new_v4().simple());
        let api_prefix = redis_prefix.clone();
        let api = spawn_api_on(db, |c| {
            c.auth.redis_prefix = api_prefix;
            c.common.eth_rpc_url = rpc.clone();
            c.token_address = Some(token);
            c.webhook_sources = WebhookSources::from_verifiers([
                Verifier::new(
                    "aurora",
                    Scheme::Aurora,
                    vec![Secret::raw(AURORA_SECRET).unwrap()],
                ),
                Verifier::new(
                    "tribe",
                    Scheme::Tribe,
                    vec![Secret::raw(TRIBE_SECRET).unwrap()],
                ),
            ]);
            adjust(c);
        })
        .await;
        let reader = ProviderBuilder::new()
            .connect_http(anvil.endpoint().parse().unwrap())
            .erased();
        let worker_env = vec![
            ("HAVEN_ENV".to_owned(), "test".to_owned()),
            ("DATABASE_URL".to_owned(), api.db.url().to_owned()),
            ("REDIS_URL".to_owned(), TestRedis::server_url()),
            ("ETH_RPC_URL".to_owned(), anvil.endpoint()),
            ("HAVEN_TOKEN_ADDRESS".to_owned(), token.to_string()),
            ("HAVEN_CHAIN_WALLET".to_owned(), "minter".to_owned()),
            ("HAVEN_MASTER_KEYS".to_owned(), master_keys),
            (
                "HAVEN_SCHEDULE_CHAIN_MONITOR".to_owned(),
                "* * * * * *".to_owned(),
            ),
            ("HAVEN_REWARDS_POLL_MS".to_owned(), "100".to_owned()),
            ("HAVEN_LOG_FORMAT".to_owned(), "json".to_owned()),
            ("HAVEN_REDIS_PREFIX".to_owned(), redis_prefix),
            ("RUST_LOG".to_owned(), "warn".to_owned()),
        ];
        let mut stack = Self {
            anvil,
            api,
            pool,
            token,
            reader,
            client: reqwest::Client::new(),
            worker: None,
            worker_env,
        };
        let audited = haven_db::row_counts(&stack.pool).await.unwrap()["audit_log"];
        stack.start_worker();
        // The worker's start is over once it has unlocked its signing wallet (an audited
        // `wallet.signer`): tests that compare row counts start after it.
        let deadline = Instant::now() + Duration::from_secs(60);
        while haven_db::row_counts(&stack.pool).await.unwrap()["audit_log"] == audited {
            assert!(
                Instant::now() < deadline,
                "the worker did not start in time"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stack
    }

    /// Starts (or restarts) the worker process.
    pub fn start_worker(&mut self) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_haven-worker"));
        command
            .env_remove("HAVEN_CONFIG")
            .env("HAVEN_WORKER_ADDR", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // `HAVEN_TEST_WORKER_LOG=<file>`: keep the worker's log there (debugging).
        if let Some(path) = std::env::var_os("HAVEN_TEST_WORKER_LOG") {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("HAVEN_TEST_WORKER_LOG names a writable file");
            command.stdout(file);
        }
        for (name, value) in &self.worker_env {
            command.env(name, value);
        }
        self.worker = Some(command.spawn().expect("the worker starts"));
    }

    /// Sets one of the worker's environment variables for its next start.
    pub fn set_worker_env(&mut self, name: &str, value: &str) {
        self.worker_env.retain(|(n, _)| n != name);
        self.worker_env.push((name.to_owned(), value.to_owned()));
    }

    /// Kills the worker at once (SIGKILL: no clean shutdown).
    pub fn kill_worker(&mut self) {
        if let Some(mut child) = self.worker.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends a signed partner event; the status and body.
    pub async fn send(&self, event: &str, body: &str) -> (u16, Value) {
        self.send_at(event, body, chrono::Utc::now().timestamp())
            .await
    }

    /// Sends a partner event signed for timestamp `ts` (a new `ts` is a new message).
    pub async fn send_at(&self, event: &str, body: &str, ts: i64) -> (u16, Value) {
        self.sender().send_at(event, body, ts).await
    }

    /// A handle that sends signed partner events, independent of the stack's borrow.
    pub fn sender(&self) -> Sender {
        Sender {
            client: self.client.clone(),
            base: self.api.url(""),
        }
    }

    /// The member as the api shows it (operator view, a dev token of a real admin).
    pub async fn member(&self, id: &str) -> Value {
        let res = self
            .client
            .get(self.api.url(&format!("/api/v1/members/{id}")))
            .bearer_auth(self.admin_token().await)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    /// An access token of an admin (created on first use).
    pub async fn admin_token(&self) -> String {
        self.user_token("e2e-admin@example.com", haven_db::Role::Admin)
            .await
    }

    /// An access token of the user `email` with `role` (created on first use).
    pub async fn user_token(&self, email: &str, role: haven_db::Role) -> String {
        let users = haven_db::UserRepo::new(self.pool.clone());
        let user = match users.find_by_email(email).await.unwrap() {
            Some(user) => user.id,
            None => {
                users
                    .create(haven_db::NewUser {
                        email: email.into(),
                        password_hash: None,
                        role,
                    })
                    .await
                    .unwrap()
                    .id
            }
        };
        let role = match role {
            haven_db::Role::Admin => haven_auth::Role::Admin,
            haven_db::Role::Operator => haven_auth::Role::Operator,
            haven_db::Role::Viewer => haven_auth::Role::Viewer,
        };
        haven_auth::Jwt::new(
            haven_auth::JwtConfig::new("haven", "haven-api"),
            haven_auth::Keyring::new(
                haven_auth::SigningKey::hs256(
                    "k1",
                    haven_api::config::auth::DEV_JWT_SECRET.as_bytes(),
                )
                .unwrap(),
            ),
        )
        .issue_access(user, role, chrono::Utc::now())
        .unwrap()
        .as_str()
        .to_owned()
    }

    /// Sends `method path` with `body` as the bearer of `token` (and `Idempotency-Key`
    /// when `key` is given): the status, the `X-Cache` header and the JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Option<String>, Value) {
        let mut req = self.client.request(method, self.api.url(path));
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        if let Some(key) = key {
            req = req.header("idempotency-key", key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let cache = res
            .headers()
            .get("x-cache")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (status, cache, res.json().await.unwrap_or(Value::Null))
    }

    /// The token's balance of `holder`.
    pub async fn balance(&self, holder: Address) -> U256 {
        HavenToken::new(self.token, &self.reader)
            .balanceOf(holder)
            .call()
            .await
            .unwrap()
    }

    /// The token's total supply.
    pub async fn total_supply(&self) -> U256 {
        HavenToken::new(self.token, &self.reader)
            .totalSupply()
            .call()
            .await
            .unwrap()
    }

    /// Waits (up to `limit`) for `check` to hold, polling; panics naming `what` otherwise.
    pub async fn eventually<F, Fut>(&self, what: &str, limit: Duration, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        while started.elapsed() < limit {
            if check().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("{what} did not happen within {limit:?}");
    }

    /// The reward rows of the ledger (business key, state, amount in base units).
    pub async fn rewards(&self) -> Vec<haven_db::RewardRecord> {
        haven_db::PgRewards::new(self.pool.clone())
            .all_rewards(100_000)
            .await
            .unwrap()
    }

    /// A random partner id.
    pub fn id(prefix: &str) -> String {
        format!("{prefix}-{}", Uuid::new_v4().simple())
    }
}

/// Sends signed partner events to the api.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    base: String,
}

impl Sender {
    /// Sends a signed partner event now; the status and body.
    pub async fn send(&self, event: &str, body: &str) -> (u16, Value) {
        self.send_at(event, body, chrono::Utc::now().timestamp())
            .await
    }

    /// Sends a partner event signed for timestamp `ts`; the status and body (status 0 when
    /// the api could not be reached).
    pub async fn send_at(&self, event: &str, body: &str, ts: i64) -> (u16, Value) {
        let (source, _) = event.split_once('/').unwrap();
        let (scheme, secret, ts_header, sig_header) = match source {
            "aurora" => (
                Scheme::Aurora,
                AURORA_SECRET,
                "x-aurora-timestamp",
                "x-aurora-signature",
            ),
            _ => (
                Scheme::Tribe,
                TRIBE_SECRET,
                "x-tribe-timestamp",
                "x-tribe-signature",
            ),
        };
        let sig = sign_header(
            scheme,
            &Secret::raw(secret).unwrap(),
            None,
            ts,
            body.as_bytes(),
        )
        .unwrap();
        let Ok(res) = self
            .client
            .post(format!(
                "{}/api/v1/webhooks/{event}",
                self.base.trim_end_matches('/')
            ))
            .header("content-type", "application/json")
            .header(ts_header, ts.to_string())
            .header(sig_header, sig)
            .body(body.to_owned())
            .send()
            .await
        else {
            return (0, Value::Null);
        };
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.kill_worker();
    }
}

/// 10^18: base units per HNV.
pub fn hnv(whole: u64) -> U256 {
    U256::from(whole) * U256::from(10u64).pow(U256::from(18u64))
}
