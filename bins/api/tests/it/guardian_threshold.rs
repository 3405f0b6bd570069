//! A4: FROST 2-of-3 through the api's relay, over real sockets: three guardian devices run a
//! key generation and sign; one device stays silent in the first signing attempt, which times
//! out, and the retry signs; the database never holds a signing share.

use std::time::Duration;

use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use haven_auth::Role;
use haven_guardian::threshold::ThresholdGuardian;
use haven_vault::protocol::{ClientFrame, ClientMessage, ServerMessage};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::guardians::setup_vault;
use crate::support::{Client, client_as, pool};

async fn wait_for(admin: &Client<'_>, path: &str, status: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (code, body) = admin.get(path).await;
        assert_eq!(code, StatusCode::OK, "{body}");
        if body["status"] == status {
            return body;
        }
        assert!(body["status"] != "failed", "{body}");
        assert!(std::time::Instant::now() < deadline, "still {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every row of every table of the database, as JSON text.
async fn dump(api: &haven_api::testing::TestApi) -> String {
    use diesel_async::RunQueryDsl as _;
    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        table_name: String,
    }
    #[derive(diesel::QueryableByName)]
    struct Rows {
        #[diesel(sql_type = diesel::sql_types::Text)]
        rows: String,
    }
    let db = pool(api).await;
    let mut conn = db.get().await.unwrap();
    let tables: Vec<Name> = diesel::sql_query(
        "SELECT table_name::text AS table_name FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let mut all = String::new();
    for t in tables {
        let rows: Rows = diesel::sql_query(format!(
            "SELECT coalesce(string_agg(row_to_json(x)::text, ' '), '') AS rows FROM \"{}\" x",
            t.table_name
        ))
        .get_result(&mut conn)
        .await
        .unwrap();
        all.push_str(&rows.rows);
    }
    all
}

fn signing_share(device: &ThresholdGuardian) -> Vec<u8> {
    let stored = serde_json::to_value(device.share().expect("a share")).unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(stored["key_package"].as_str().unwrap())
        .unwrap();
    let package = frost_ed25519::keys::KeyPackage::deserialize(&bytes).unwrap();
    package.signing_share().serialize()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_devices_generate_a_frost_key_and_sign_after_a_timed_out_attempt() {
    let api = haven_api::testing::spawn_api_with(|c| {
        c.guardian.round_timeout = Duration::from_secs(2);
    })
    .await;
    let admin = client_as(&api, Role::Admin).await;
    let (vault, guardians) = setup_vault(&api, &admin, 2, &[61, 62, 63]).await;
    let (stop, stopped) = watch::channel(false);
    let mut devices = Vec::new();
    for (i, (guardian, key, mut socket)) in guardians.into_iter().enumerate() {
        let mut device = ThresholdGuardian::new(guardian.guardian_id, key);
        if i == 2 {
            device.silent_in.insert(1);
        }
        let token = guardian.tokens.access_token.clone();
        let mut stopped = stopped.clone();
        devices.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stopped.changed() => return device,
                    frame = socket.next_frame(Duration::from_secs(120)) => {
                        let frame = frame.unwrap();
                        if let ServerMessage::Error { code, message } = &frame.message {
                            panic!("device {i}: {code} {message}");
                        }
                        let ServerMessage::Threshold(relay) = &frame.message else {
                            continue;
                        };
                        if let Some(contribution) = device.handle(relay).unwrap() {
                            let message = ClientMessage::Threshold(contribution);
                            let frame = ClientFrame::new(&token, None, message);
                            socket.send_text(frame.to_text()).await.unwrap();
                        }
                    }
                }
            }
        }));
    }

    let base = format!("/api/v1/admin/vaults/{vault}/threshold");
    let (status, body) = admin.post_empty(&format!("{base}/dkg")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let dkg = wait_for(
        &admin,
        &format!("{base}/{}", body["session"].as_str().unwrap()),
        "key_ready",
    )
    .await;
    let group_hex = dkg["key"]["group"]["verifying_key"]
        .as_str()
        .unwrap()
        .to_owned();

    let message = b"haven: release vault request 42";
    let (status, body) = admin
        .post(
            &format!("{base}/sign"),
            json!({"message": hex::encode(message)}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let signed = wait_for(
        &admin,
        &format!("{base}/{}", body["session"].as_str().unwrap()),
        "signed",
    )
    .await;
    assert_eq!(
        signed["attempt"], 2,
        "the silent device's attempt timed out: {signed}"
    );

    let mut group = [0u8; 32];
    hex::decode_to_slice(&group_hex, &mut group).unwrap();
    let mut signature = [0u8; 64];
    hex::decode_to_slice(signed["signature"].as_str().unwrap(), &mut signature).unwrap();
    VerifyingKey::from_bytes(&group)
        .unwrap()
        .verify_strict(message, &Signature::from_bytes(&signature))
        .expect("the aggregate is a plain ed25519 signature of the group key");

    stop.send(true).unwrap();
    let mut shares = Vec::new();
    for device in devices {
        shares.push(signing_share(&device.await.unwrap()));
    }
    let everything = dump(&api).await;
    assert!(
        everything.contains(&group_hex),
        "the dump sees the stored group key"
    );
    for share in shares {
        for form in [
            hex::encode(&share),
            base64::engine::general_purpose::STANDARD.encode(&share),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&share),
        ] {
            assert!(
                !everything.contains(&form),
                "a signing share is in the database"
            );
        }
    }
    let signed = crate::support::audit_rows(&api, "vault.threshold.signed").await;
    assert_eq!(signed.len(), 1);
    let scrape = reqwest::get(api.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        "haven_vault_round_duration_seconds_count{kind=\"signing\"}",
        "haven_vault_round_timeouts_total",
        "haven_vault_requests_open",
    ] {
        let line = scrape
            .lines()
            .find(|l| l.starts_with(series))
            .unwrap_or_else(|| panic!("{series} is not served"));
        let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        if series != "haven_vault_requests_open" {
            assert!(value >= 1.0, "{line}");
        }
    }
    api.shutdown().await.unwrap();
}
