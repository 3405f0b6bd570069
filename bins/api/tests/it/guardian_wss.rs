//! The guardian WebSocket is WSS when the api serves TLS: a guardian joins over HTTPS and
//! talks to its socket over TLS.

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use futures::{SinkExt as _, StreamExt as _};
use haven_auth::Role;
use haven_vault::protocol::{ClientFrame, ClientMessage, ServerFrame, ServerMessage};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::support::{create_passwordless_user, dev_jwt};
use crate::tls::self_signed;

#[tokio::test(flavor = "multi_thread")]
async fn the_guardian_socket_is_wss_when_the_api_serves_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (files, tls) = self_signed();
    let api = haven_api::testing::spawn_api_with(|c| c.tls = Some(tls)).await;
    let base = format!("https://localhost:{}", api.port);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(files.cert_der.clone()).unwrap();
    let client_tls = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let https = reqwest::Client::builder()
        .tls_backend_preconfigured((*client_tls).clone())
        .build()
        .unwrap();

    // an admin creates a vault and an invitation; the guardian joins over HTTPS
    let admin = create_passwordless_user(&api, haven_db::Role::Admin).await;
    let token = dev_jwt("k1")
        .issue_access(admin, Role::Admin, chrono::Utc::now())
        .unwrap()
        .as_str()
        .to_owned();
    let vault: serde_json::Value = https
        .post(format!("{base}/api/v1/admin/vaults"))
        .bearer_auth(&token)
        .json(&json!({"name": "tls", "threshold": 1, "covers": {"master_key_rotation": "0"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let vault_id = vault["id"].as_str().unwrap().to_owned();
    let invitation: serde_json::Value = https
        .post(format!("{base}/api/v1/admin/vaults/{vault_id}/invitations"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let device = SigningKey::from_bytes(&[91; 32]);
    let joined: serde_json::Value = https
        .post(format!("{base}/api/v1/guardian/join"))
        .json(&json!({
            "vault_id": vault_id,
            "code": invitation["code"],
            "device_public_key": hex::encode(device.verifying_key().as_bytes()),
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = joined["access_token"].as_str().unwrap().to_owned();

    let mut request = format!("wss://localhost:{}/api/v1/ws/guardian", api.port)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {access}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async_tls_with_config(
        request,
        None,
        false,
        Some(tokio_tungstenite::Connector::Rustls(client_tls)),
    )
    .await
    .expect("a TLS WebSocket handshake");
    let next = |text: Option<Result<Message, _>>| -> ServerMessage {
        match text {
            Some(Ok(Message::Text(text))) => ServerFrame::parse(text.as_str()).unwrap().message,
            other => panic!("{other:?}"),
        }
    };
    assert!(matches!(
        next(socket.next().await),
        ServerMessage::Welcome { .. }
    ));
    let ping = ClientFrame::new(&access, Some("1".into()), ClientMessage::Ping);
    socket.send(Message::text(ping.to_text())).await.unwrap();
    assert_eq!(next(socket.next().await), ServerMessage::Pong);
    // plain ws:// to the TLS port does not get a socket
    let plain = format!("ws://127.0.0.1:{}/api/v1/ws/guardian", api.port);
    assert!(tokio_tungstenite::connect_async(plain).await.is_err());
    api.shutdown().await.unwrap();
}
