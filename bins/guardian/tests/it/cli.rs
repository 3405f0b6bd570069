//! The `haven-guardian` binary as a guardian uses it: keygen, join with the code on stdin,
//! list and approve requests against a real api.

use std::io::Write as _;
use std::process::{Command, Stdio};

use chrono::Utc;
use haven_api::config::auth::DEV_JWT_SECRET;
use haven_auth::{Jwt, JwtConfig, Keyring, Role, SigningKey};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_haven-guardian");

#[test]
fn answers_help_and_version() {
    haven_testkit::assert_answers_help_and_version(BIN, "haven-guardian");
}

fn run(
    dir: &std::path::Path,
    api: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String, String) {
    let mut child = Command::new(BIN)
        .args(["--api", api, "--key-file"])
        .arg(dir.join("device.key"))
        .arg("--state-file")
        .arg(dir.join("state.json"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn admin(api: &haven_api::testing::TestApi) -> (reqwest::Client, String) {
    let pool = haven_db::connect(api.db.url(), 2).await.unwrap();
    let user = haven_db::UserRepo::new(pool)
        .create(haven_db::NewUser {
            email: format!("{}@example.com", uuid::Uuid::new_v4().simple()),
            password_hash: None,
            role: haven_db::Role::Admin,
        })
        .await
        .unwrap()
        .id;
    let jwt = Jwt::new(
        JwtConfig::new("haven", "haven-api"),
        Keyring::new(SigningKey::hs256("k1", DEV_JWT_SECRET.as_bytes()).unwrap()),
    );
    let token = jwt.issue_access(user, Role::Admin, Utc::now()).unwrap();
    (reqwest::Client::new(), token.as_str().to_owned())
}

async fn post(client: &reqwest::Client, token: &str, url: String, body: Value) -> Value {
    let response = client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guardian_joins_lists_and_approves_from_the_command_line() {
    let api = haven_api::testing::spawn_api().await;
    let (client, token) = admin(&api).await;
    let vault = post(
        &client,
        &token,
        api.url("/api/v1/admin/vaults"),
        json!({"name": "cli", "threshold": 1, "covers": {"master_key_rotation": "0"}}),
    )
    .await;
    let vault_id = vault["id"].as_str().unwrap().to_owned();
    let invitation = post(
        &client,
        &token,
        api.url(&format!("/api/v1/admin/vaults/{vault_id}/invitations")),
        json!({}),
    )
    .await;
    let code = invitation["code"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let address = api.address.clone();
    let dir_path = dir.path().to_owned();

    let (ok, public, err) = run(&dir_path, &address, &["keygen"], None);
    assert!(ok, "{err}");
    assert_eq!(public.trim().len(), 64);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir_path.join("device.key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let (ok, _, err) = run(&dir_path, &address, &["keygen"], None);
    assert!(!ok && err.contains("refusing"), "{err}");

    let (ok, out, err) = run(
        &dir_path,
        &address,
        &["join", "--vault", &vault_id],
        Some(&code),
    );
    assert!(ok, "{err}");
    assert!(!out.contains(&code) && !err.contains(&code));
    let request = post(
        &client,
        &token,
        api.url(&format!("/api/v1/admin/vaults/{vault_id}/requests")),
        json!({"kind": "master_key_rotation"}),
    )
    .await;
    let request_id = request["id"].as_str().unwrap().to_owned();

    let (ok, out, err) = run(&dir_path, &address, &["requests"], None);
    assert!(ok, "{err}");
    assert!(out.contains(&request_id), "{out}");
    let (ok, out, err) = run(&dir_path, &address, &["approve", &request_id], None);
    assert!(ok, "{err}");
    assert!(out.contains("released"), "{out}");
    let (ok, out, _) = run(&dir_path, &address, &["requests"], None);
    assert!(ok && !out.contains(&request_id), "closed: {out}");
    let (ok, _, err) = run(&dir_path, &address, &["approve", &request_id], None);
    assert!(!ok && err.contains("not open"), "{err}");
    api.shutdown().await.unwrap();
}
