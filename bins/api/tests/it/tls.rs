//! HTTPS with rustls from `HAVEN_TLS_CERT` / `HAVEN_TLS_KEY`, and the redirect listener.

use std::sync::Arc;

use haven_api::Application;
use haven_api::config::ApiConfig;
use haven_api::tls::TlsConfig;
use haven_testkit::{TestDb, TestRedis};

pub(crate) struct SelfSigned {
    dir: std::path::PathBuf,
    pub(crate) cert_der: rustls::pki_types::CertificateDer<'static>,
}

impl Drop for SelfSigned {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn self_signed() -> (SelfSigned, TlsConfig) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!("haven-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let tls = TlsConfig {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&tls.cert, certified.cert.pem()).unwrap();
    std::fs::write(&tls.key, certified.signing_key.serialize_pem()).unwrap();
    let cert_der = certified.cert.der().clone();
    (SelfSigned { dir, cert_der }, tls)
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_https_with_hsts_and_redirects_plain_http_with_308() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (files, tls) = self_signed();
    let db = TestDb::new().await;
    let mut config = ApiConfig::for_tests(db.url(), &TestRedis::server_url());
    config.tls = Some(tls);
    config.http_redirect_addr = Some("127.0.0.1:0".parse().unwrap());
    config.public_host = Some("localhost".into());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let app = Application::build(config, listener).unwrap();
    let port = app.port();
    let redirect_port = app.redirect_port().expect("a redirect listener");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(files.cert_der.clone()).unwrap();
    let client_tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let https = reqwest::Client::builder()
        .tls_backend_preconfigured(client_tls)
        .build()
        .unwrap();
    let res = https
        .get(format!("https://localhost:{port}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["strict-transport-security"],
        haven_api::hardening::HSTS
    );
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");

    // Plain HTTP on the TLS port is not served.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    assert!(
        plain
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            .map(|r| r.status() != 200)
            .unwrap_or(true),
        "the TLS port must not answer plain HTTP with a page"
    );

    let res = plain
        .post(format!(
            "http://localhost:{redirect_port}/api/v1/addresses/validate?x=1"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 308);
    assert_eq!(
        res.headers()["location"],
        format!("https://localhost:{port}/api/v1/addresses/validate?x=1").as_str()
    );
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    assert!(res.headers().get("strict-transport-security").is_none());

    // The client's Host header does not choose where the redirect points.
    let res = plain
        .get(format!("http://127.0.0.1:{redirect_port}/login"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 308);
    assert_eq!(
        res.headers()["location"],
        format!("https://localhost:{port}/login").as_str()
    );

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[test]
fn a_key_that_is_not_pem_names_the_variable() {
    let (files, mut tls) = self_signed();
    tls.key = files.dir.join("missing.pem");
    let err = haven_api::tls::server_config(&tls).unwrap_err();
    assert!(format!("{err:#}").contains("HAVEN_TLS_KEY"), "{err:#}");
}
