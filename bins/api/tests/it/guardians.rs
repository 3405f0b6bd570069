//! Guardian vaults over real WebSockets (issue points A1, A2, A3, A5): the api in process,
//! guardians as `haven-guardian` clients over TCP.

use std::time::Duration;

use ed25519_dalek::SigningKey;
use haven_api::testing::TestApi;
use haven_auth::Role;
use haven_guardian::{Connection, Error, Guardian, Message, connect};
use haven_rewards::Hnv;
use haven_vault::DecisionKind;
use haven_vault::protocol::{DecisionResult, RequestView, ServerMessage};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{Client, audit_rows, client_as, pool};

const WAIT: Duration = Duration::from_secs(10);

fn device(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// A vault of `m` among `n` guardians covering redemptions from 1000 HNV, the guardians
/// joined and connected.
pub(crate) async fn setup_vault(
    api: &TestApi,
    admin: &Client<'_>,
    m: u32,
    seeds: &[u8],
) -> (Uuid, Vec<(Guardian, SigningKey, Connection)>) {
    let min = Hnv::from_whole(1000).base_units().to_string();
    let (status, body) = admin
        .post(
            "/api/v1/admin/vaults",
            json!({"name": "treasury", "threshold": m, "covers": {
                "redemption": min, "minter_role_change": "0", "master_key_rotation": "0",
            }}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let vault: Uuid = body["id"].as_str().unwrap().parse().unwrap();
    let mut guardians = Vec::new();
    for seed in seeds {
        let (status, invitation) = admin
            .post_empty(&format!("/api/v1/admin/vaults/{vault}/invitations"))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{invitation}");
        let key = device(*seed);
        let code = invitation["code"].as_str().unwrap();
        let guardian = Guardian::join(&api.address, vault, code, &key, "test")
            .await
            .unwrap();
        let socket = connect(&api.address, &guardian.tokens.access_token)
            .await
            .unwrap();
        guardians.push((guardian, key, socket));
    }
    (vault, guardians)
}

/// A requested redemption of `whole` HNV for a new member.
async fn redemption(api: &TestApi, whole: u64) -> Uuid {
    let db = pool(api).await;
    let member = Uuid::now_v7();
    {
        use diesel_async::RunQueryDsl as _;
        let mut conn = db.get().await.unwrap();
        diesel::sql_query("INSERT INTO members (id) VALUES ($1)")
            .bind::<diesel::sql_types::Uuid, _>(member)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let treasury = haven_db::PgTreasury::new(db);
    let created = treasury
        .request_redemption(haven_db::treasury::NewRedemption {
            member_id: member,
            amount: Hnv::from_whole(whole),
            fiat_currency: "CAD".into(),
            rate: "0.10".into(),
            fiat_amount: format!("{}.00", whole / 10),
            rate_source: "primary".into(),
            rate_at: chrono::Utc::now(),
            payout_reference: "iban:test".into(),
            requested_by: "user:requester".into(),
            idempotency_key: Uuid::new_v4().to_string(),
            required_approvals: 1,
            balance: (Hnv::from_whole(1_000_000), chrono::Utc::now()),
            audit: haven_core::audit::AuditEvent::new(
                "user:requester",
                "redemption.request",
                haven_core::audit::Severity::High,
            ),
        })
        .await
        .unwrap();
    created.get().id
}

async fn status_of(admin: &Client<'_>, id: Uuid) -> Value {
    let (status, body) = admin.get(&format!("/api/v1/admin/redemptions/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The next pushed `request_created` on a socket.
async fn pushed_request(socket: &mut Connection) -> RequestView {
    loop {
        match socket.next_frame(WAIT).await.unwrap().message {
            ServerMessage::RequestCreated { request } => return request,
            _ => continue,
        }
    }
}

fn decision(message: &ServerMessage) -> DecisionResult {
    match message {
        ServerMessage::Decision { result, .. } => *result,
        other => panic!("expected a decision, got {other:?}"),
    }
}

fn error_code(message: &ServerMessage) -> String {
    match message {
        ServerMessage::Error { code, .. } => code.clone(),
        other => panic!("expected an error frame, got {other:?}"),
    }
}

/// A1: 2-of-3 over real sockets: a redemption above the threshold waits; one approval does
/// not release it; a replayed approval changes nothing; the second approval releases it
/// exactly once; one below the threshold is approved the ordinary way.
#[tokio::test(flavor = "multi_thread")]
async fn a_covered_redemption_waits_for_two_of_three_guardians_and_is_approved_once() {
    let api = haven_api::testing::spawn_api().await;
    let admin = client_as(&api, Role::Admin).await;
    let (_vault, mut g) = setup_vault(&api, &admin, 2, &[1, 2, 3]).await;

    let small = redemption(&api, 100).await;
    let (status, body) = admin
        .post_empty(&format!("/api/v1/admin/redemptions/{small}/approve"))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("approved")),
        "{body}"
    );

    let big = redemption(&api, 5000).await;
    let path = format!("/api/v1/admin/redemptions/{big}/approve");
    let (status, body) = admin.post_empty(&path).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["waiting_for"], "guardians");
    let vault_request = body["vault_request_id"].as_str().unwrap().to_owned();
    // asking again submits nothing new
    let (status, again) = admin.post_empty(&path).await;
    assert_eq!(
        (status, &again["vault_request_id"]),
        (StatusCode::ACCEPTED, &body["vault_request_id"])
    );

    let request = pushed_request(&mut g[0].2).await;
    assert_eq!(request.id.to_string(), vault_request);
    for (_, _, socket) in g.iter_mut().skip(1) {
        assert_eq!(pushed_request(socket).await.id, request.id);
    }

    let (guardian, key, socket) = &mut g[0];
    let token = guardian.tokens.access_token.clone();
    let first = socket
        .decide(&token, key, DecisionKind::Approve, &request)
        .await
        .unwrap();
    assert_eq!(decision(&first), DecisionResult::Counted);
    assert_eq!(status_of(&admin, big).await["status"], "requested");
    let replay = socket
        .decide(&token, key, DecisionKind::Approve, &request)
        .await
        .unwrap();
    assert_eq!(decision(&replay), DecisionResult::Duplicate);
    assert_eq!(status_of(&admin, big).await["status"], "requested");

    let (guardian, key, socket) = &mut g[1];
    let second = socket
        .decide(
            &guardian.tokens.access_token.clone(),
            key,
            DecisionKind::Approve,
            &request,
        )
        .await
        .unwrap();
    assert_eq!(decision(&second), DecisionResult::Released);
    let approved = status_of(&admin, big).await;
    assert_eq!(approved["status"], "approved", "{approved}");
    assert_eq!(
        approved["approvals"],
        json!([format!("vault:{vault_request}")])
    );

    let (guardian, key, socket) = &mut g[2];
    let late = socket
        .decide(
            &guardian.tokens.access_token.clone(),
            key,
            DecisionKind::Approve,
            &request,
        )
        .await
        .unwrap();
    assert_eq!(error_code(&late), "CONFLICT");
    let releases: Vec<_> = audit_rows(&api, "redemption.approve")
        .await
        .into_iter()
        .filter(|r| r.event.target.as_deref() == Some(&format!("redemption:{big}")))
        .collect();
    assert_eq!(releases.len(), 1, "approved exactly once");
    assert_eq!(
        status_of(&admin, big).await["approvals"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    api.shutdown().await.unwrap();
}

/// A2: another device's signature, another vault's request and a removed guardian are
/// refused (the removed guardian's socket closes), each refusal audited.
#[tokio::test(flavor = "multi_thread")]
async fn foreign_signatures_foreign_vaults_and_removed_guardians_are_refused_and_audited() {
    let api = haven_api::testing::spawn_api().await;
    let admin = client_as(&api, Role::Admin).await;
    let (vault, mut g) = setup_vault(&api, &admin, 2, &[11, 12, 13]).await;
    let (_other, mut h) = setup_vault(&api, &admin, 1, &[21]).await;
    let (status, request) = admin
        .post(
            &format!("/api/v1/admin/vaults/{vault}/requests"),
            json!({"kind": "minter_role_change", "params": {"grant": "0xabc"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{request}");
    let request: RequestView = serde_json::from_value(request).unwrap();

    // signed by guardian 2's device, sent by guardian 1
    let (guardian, _, socket) = &mut g[0];
    let wrong = socket
        .decide(
            &guardian.tokens.access_token.clone(),
            &device(12),
            DecisionKind::Approve,
            &request,
        )
        .await
        .unwrap();
    assert_eq!(error_code(&wrong), "INVALID_SIGNATURE");

    // a guardian of another vault, signing correctly with its own key
    let (guardian, key, socket) = &mut h[0];
    let foreign = socket
        .decide(
            &guardian.tokens.access_token.clone(),
            key,
            DecisionKind::Approve,
            &request,
        )
        .await
        .unwrap();
    assert_eq!(error_code(&foreign), "FORBIDDEN");

    // a removed guardian: its socket closes with a policy violation
    let removed = g[2].0.guardian_id;
    let (status, body) = admin
        .delete(&format!("/api/v1/admin/vaults/{vault}/guardians/{removed}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (code, reason) = g[2].2.closed(WAIT).await.unwrap();
    assert_eq!(code, Some(1008), "{reason}");
    let closes = audit_rows(&api, "guardian.ws.closed").await;
    assert_eq!(closes.len(), 1, "the removed guardian's close is audited");
    assert_eq!(closes[0].event.actor, format!("guardian:{removed}"));
    assert!(
        connect(&api.address, &g[2].0.tokens.access_token)
            .await
            .is_err(),
        "a removed guardian cannot reconnect"
    );

    let refused: Vec<_> = audit_rows(&api, "vault.request.approve")
        .await
        .into_iter()
        .filter(|r| r.event.details["outcome"] == "refused")
        .collect();
    assert_eq!(refused.len(), 2, "both refusals audited: {refused:?}");
    let (_, decisions) = {
        let (s, b) = admin.get(&format!("/api/v1/admin/vaults/{vault}")).await;
        (s, b)
    };
    assert_eq!(
        decisions["open_requests"].as_array().unwrap().len(),
        1,
        "still open"
    );
    api.shutdown().await.unwrap();
}

/// A2: an approval after the request expired is refused and audited.
#[tokio::test(flavor = "multi_thread")]
async fn an_approval_after_expiry_is_refused() {
    let api = haven_api::testing::spawn_api_with(|c| {
        c.guardian.request_ttl = Duration::from_secs(2);
    })
    .await;
    let admin = client_as(&api, Role::Admin).await;
    let (vault, mut g) = setup_vault(&api, &admin, 1, &[31]).await;
    let (_, request) = admin
        .post(
            &format!("/api/v1/admin/vaults/{vault}/requests"),
            json!({"kind": "master_key_rotation"}),
        )
        .await;
    let request: RequestView = serde_json::from_value(request).unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (guardian, key, socket) = &mut g[0];
    let late = socket
        .decide(
            &guardian.tokens.access_token.clone(),
            key,
            DecisionKind::Approve,
            &request,
        )
        .await
        .unwrap();
    assert_eq!(error_code(&late), "CONFLICT", "{late:?}");
    let refused = audit_rows(&api, "vault.request.approve").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].event.details["error"], "request_expired");
    api.shutdown().await.unwrap();
}

/// A3: the fourth socket of a guardian is refused; a revoked session and an expired token
/// close their sockets with 1008.
#[tokio::test(flavor = "multi_thread")]
async fn a_fourth_socket_is_refused_and_revoked_or_expired_tokens_close_theirs() {
    let api = haven_api::testing::spawn_api_with(|c| {
        c.guardian.access_ttl = Duration::from_secs(3);
        c.guardian.heartbeat = Duration::from_secs(1);
    })
    .await;
    let admin = client_as(&api, Role::Admin).await;
    let (_vault, g) = setup_vault(&api, &admin, 1, &[41]).await;
    let (mut guardian, _key, first) = g.into_iter().next().unwrap();
    let token = guardian.tokens.access_token.clone();
    let (status, _) = Client::bearer(&api, &token).whoami().await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a guardian token opens no user route"
    );
    let second = connect(&api.address, &token).await.unwrap();
    let third = connect(&api.address, &token).await.unwrap();
    match connect(&api.address, &token).await {
        Err(Error::Socket(e)) => assert!(e.to_string().contains("429"), "{e}"),
        other => panic!("the fourth socket must be refused: {other:?}"),
    }
    assert_eq!(audit_rows(&api, "guardian.ws.refused").await.len(), 1);
    drop((second, third));
    tokio::time::sleep(Duration::from_millis(300)).await;

    // revoked: a second session revokes the first; the first's socket closes
    let mut first = first;
    guardian.refresh(&api.address).await.unwrap();
    let sessions = guardian.sessions(&api.address).await.unwrap();
    assert_eq!(sessions.len(), 1);
    guardian
        .revoke_session(&api.address, guardian.tokens.session_id)
        .await
        .unwrap();
    let (code, reason) = first.closed(WAIT).await.unwrap();
    assert_eq!(code, Some(1008), "{reason}");

    // expired: a fresh guardian whose 3 s token runs out while connected
    let (_vault, g) = setup_vault(&api, &admin, 1, &[42]).await;
    let (_, _, mut socket) = g.into_iter().next().unwrap();
    let started = std::time::Instant::now();
    let (code, reason) = socket.closed(WAIT).await.unwrap();
    assert_eq!(code, Some(1008), "{reason}");
    assert!(reason.contains("expired"), "{reason}");
    assert!(started.elapsed() < Duration::from_secs(6));
    api.shutdown().await.unwrap();
}

/// A tiny deterministic generator (xorshift64*), enough to vary frames.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_frame(rng: &mut Gen, token: &str) -> Message {
    let shapes = [
        json!({"type": "ping"}),
        json!({"token": token, "type": "approve", "request_id": "not-a-uuid", "signature": "zz"}),
        json!({"token": token, "type": "approve", "request_id": Uuid::nil(), "signature": "ab".repeat(64)}),
        json!({"token": token, "type": "list_requests", "id": "x".repeat(100)}),
        json!({"token": "garbage", "type": "ping"}),
        json!({"token": token, "type": "teleport"}),
        json!([1, 2, 3]),
        json!({"token": token}),
    ];
    match rng.below(5) {
        0 => {
            let len = rng.below(200) as usize;
            let text: String = (0..len)
                .map(|_| char::from_u32(rng.below(0x3000) as u32).unwrap_or('?'))
                .collect();
            Message::text(text)
        }
        1 => Message::binary(
            (0..rng.below(64))
                .map(|_| rng.next() as u8)
                .collect::<Vec<u8>>(),
        ),
        2 => Message::text("{".repeat(1 + rng.below(40) as usize)),
        3 => Message::text("x".repeat(20_000)),
        _ => Message::text(shapes[rng.below(shapes.len() as u64) as usize].to_string()),
    }
}

/// A5: random and malformed frames never crash the handler: each gets an error frame or a
/// close with a code, and the server keeps serving.
#[tokio::test(flavor = "multi_thread")]
async fn random_frames_get_error_frames_or_a_close_code() {
    let api = haven_api::testing::spawn_api_with(|c| {
        c.guardian.messages_per_sec = 1000;
    })
    .await;
    let admin = client_as(&api, Role::Admin).await;
    let (_vault, g) = setup_vault(&api, &admin, 1, &[51]).await;
    let (guardian, _key, socket) = g.into_iter().next().unwrap();
    let token = guardian.tokens.access_token.clone();
    let mut socket = Some(socket);
    let mut rng = Gen(0x9E37_79B9_7F4A_7C15);
    let (mut errors, mut closes) = (0, 0);
    for round in 0..300 {
        let mut current = match socket.take() {
            Some(s) => s,
            None => connect(&api.address, &token).await.unwrap(),
        };
        let frame = random_frame(&mut rng, &token);
        current.send_raw(frame.clone()).await.unwrap();
        match current.next_frame(WAIT).await {
            Ok(answer) => {
                match answer.message {
                    ServerMessage::Error { .. } => errors += 1,
                    ServerMessage::Pong => {}
                    other => panic!("round {round}: {frame:?} answered {other:?}"),
                }
                socket = Some(current);
            }
            Err(Error::Closed {
                code: Some(code), ..
            }) => {
                assert!(
                    [1008, 1009, 1002].contains(&code),
                    "round {round}: close {code}"
                );
                closes += 1;
                // the slot is given back once the server finishes the socket
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("round {round}: {frame:?} got {e}"),
        }
    }
    assert!(
        errors > 50 && closes > 10,
        "errors {errors}, closes {closes}"
    );
    let (status, _) = admin.get("/health").await;
    assert_eq!(status, StatusCode::OK);
    let mut fresh = match socket {
        Some(s) => s,
        None => connect(&api.address, &token).await.unwrap(),
    };
    assert!(fresh.list_requests(&token).await.unwrap().is_empty());
    api.shutdown().await.unwrap();
}

/// A second api on the same database and Redis prefix as `api`; stops when the sender drops.
async fn replica_of(
    api: &TestApi,
    adjust: impl FnOnce(&mut haven_api::config::ApiConfig),
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let mut config = haven_api::config::ApiConfig::for_tests(api.db.url(), api.redis.url());
    config.auth.redis_prefix = api.redis.prefix().to_owned();
    config.rate_limits.key_prefix = format!("{}ratelimit:", api.redis.prefix());
    adjust(&mut config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let app = haven_api::Application::build(config, listener).unwrap();
    let port = app.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    (format!("http://127.0.0.1:{port}"), stop)
}

/// Pushes and revocations cross replicas at once (Redis pub/sub), not at the next heartbeat.
#[tokio::test(flavor = "multi_thread")]
async fn pushes_and_revocations_reach_a_socket_on_another_replica() {
    let slow = |c: &mut haven_api::config::ApiConfig| {
        c.guardian.heartbeat = Duration::from_secs(30);
        c.guardian.idle_timeout = Duration::from_secs(90);
    };
    let api = haven_api::testing::spawn_api_with(slow).await;
    let (b, _stop_b) = replica_of(&api, slow).await;
    // both replicas listen before anything is published
    let channel = format!("{}guardian:events", api.redis.prefix());
    let redis = deadpool_redis::redis::Client::open(api.redis.url()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, listeners): (String, i64) = deadpool_redis::redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channel)
            .query_async(&mut conn)
            .await
            .unwrap();
        if listeners >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{listeners} listeners"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let admin = client_as(&api, Role::Admin).await;
    let (status, vault) = admin
        .post(
            "/api/v1/admin/vaults",
            json!({"name": "replicas", "threshold": 1, "covers": {"master_key_rotation": "0"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{vault}");
    let vault: Uuid = vault["id"].as_str().unwrap().parse().unwrap();
    let (_, invitation) = admin
        .post_empty(&format!("/api/v1/admin/vaults/{vault}/invitations"))
        .await;
    let key = device(71);
    let guardian = Guardian::join(
        &api.address,
        vault,
        invitation["code"].as_str().unwrap(),
        &key,
        "b",
    )
    .await
    .unwrap();
    let mut on_b = connect(&b, &guardian.tokens.access_token).await.unwrap();

    let (status, request) = admin
        .post(
            &format!("/api/v1/admin/vaults/{vault}/requests"),
            json!({"kind": "master_key_rotation"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{request}");
    let pushed = pushed_request(&mut on_b).await;
    assert_eq!(pushed.id.to_string(), request["id"].as_str().unwrap());

    guardian
        .revoke_session(&api.address, guardian.tokens.session_id)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let (code, reason) = on_b.closed(WAIT).await.unwrap();
    assert_eq!(code, Some(1008), "{reason}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed by the revocation, not by the 30 s heartbeat"
    );
    api.shutdown().await.unwrap();
}
