//! TLS with rustls (ring provider) and the optional plain-HTTP listener that redirects to
//! HTTPS.
//!
//! With `HAVEN_TLS_CERT` (a PEM chain, leaf first) and `HAVEN_TLS_KEY` (a PEM private key)
//! set, the api serves HTTPS only (HTTP/1.1 and HTTP/2 by ALPN) and sends HSTS. With
//! `HAVEN_HTTP_REDIRECT_ADDR` set as well, a second listener answers every plain-HTTP request
//! with 308 to the same path and query on `HAVEN_PUBLIC_HOST` (the configured host, never the
//! request's `Host` header, which the client chooses).

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::hardening;

/// Where the certificate chain and key are (`HAVEN_TLS_CERT`, `HAVEN_TLS_KEY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Reads the certificate and key and builds a rustls server configuration on the ring
/// provider, offering HTTP/2 and HTTP/1.1.
pub fn server_config(tls: &TlsConfig) -> anyhow::Result<rustls::ServerConfig> {
    let chain = CertificateDer::pem_file_iter(&tls.cert)
        .with_context(|| format!("HAVEN_TLS_CERT: cannot read {}", tls.cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("HAVEN_TLS_CERT: {} is not a PEM chain", tls.cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!(
            "HAVEN_TLS_CERT: {} holds no certificate",
            tls.cert.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key).with_context(|| {
        format!(
            "HAVEN_TLS_KEY: cannot read a PEM private key from {}",
            tls.key.display()
        )
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("rustls protocol versions")?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context("HAVEN_TLS_CERT / HAVEN_TLS_KEY: the key does not fit the certificate")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[derive(Debug, Clone)]
struct RedirectTarget {
    /// `https://<public host>[:port]`, fixed at start-up.
    origin: String,
}

/// Checks `HAVEN_PUBLIC_HOST`: a DNS name or address, optionally with `:port`, nothing
/// else (no scheme, path or credentials).
pub fn check_public_host(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    let (host, port) = match raw.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') || host.ends_with(']') => (host, Some(port)),
        _ => (raw, None),
    };
    if host_without_port(host) != Some(host) {
        return Err(format!(
            "{raw:?} is not a host name or address (optionally with :port)"
        ));
    }
    if let Some(port) = port
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(format!("{raw:?} has an invalid port"));
    }
    Ok(raw.to_owned())
}

/// A server on `listener` answering every request with 308 to the same path and query on
/// `https://<public_host>`, adding `:<https_port>` unless the host names a port or the port
/// is 443. The request's `Host` header is never used: a redirect cannot be pointed
/// elsewhere by the client.
pub fn redirect_server(
    listener: TcpListener,
    public_host: &str,
    https_port: u16,
) -> anyhow::Result<Server> {
    let has_port = public_host
        .rsplit_once(':')
        .is_some_and(|(host, _)| !host.contains(':') || host.ends_with(']'));
    let origin = match (has_port, https_port) {
        (true, _) | (false, 443) => format!("https://{public_host}"),
        (false, port) => format!("https://{public_host}:{port}"),
    };
    let target = web::Data::new(RedirectTarget { origin });
    let policy = web::Data::new(hardening::HardeningPolicy::default());
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(target.clone())
            .app_data(policy.clone())
            .wrap(from_fn(hardening::secure_headers))
            .default_service(web::to(redirect))
    })
    .listen(listener)?
    .disable_signals()
    .shutdown_timeout(5)
    .run())
}

async fn redirect(req: HttpRequest, target: web::Data<RedirectTarget>) -> HttpResponse {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    HttpResponse::build(StatusCode::PERMANENT_REDIRECT)
        .insert_header((header::LOCATION, format!("{}{path}", target.origin)))
        .finish()
}

/// The host part of a `Host`-style value, refusing anything that is not a plain name or
/// address.
fn host_without_port(raw: &str) -> Option<&str> {
    let host = if raw.starts_with('[') {
        &raw[..=raw.find(']')?]
    } else {
        raw.split(':').next()?
    };
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'));
    valid.then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lose_their_port_and_junk_is_refused() {
        assert_eq!(host_without_port("api.example:80"), Some("api.example"));
        assert_eq!(host_without_port("api.example"), Some("api.example"));
        assert_eq!(host_without_port("[::1]:8080"), Some("[::1]"));
        assert_eq!(host_without_port("evil.example/x"), None);
        assert_eq!(host_without_port("a@b"), None);
        assert_eq!(host_without_port(""), None);
    }

    #[test]
    fn the_public_host_is_a_plain_host_with_an_optional_port() {
        for good in [
            "api.example.com",
            "api.example.com:8443",
            "[2001:db8::1]:443",
            "10.0.0.1",
        ] {
            assert_eq!(check_public_host(good).as_deref(), Ok(good), "{good}");
        }
        for bad in [
            "https://api.example.com",
            "api.example.com/x",
            "a@b",
            "",
            "h:0",
            "h:x",
        ] {
            assert!(check_public_host(bad).is_err(), "{bad}");
        }
    }
}
