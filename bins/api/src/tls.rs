//! TLS with rustls (ring provider) and the optional plain-HTTP listener that redirects to
//! HTTPS.
//!
//! With `HAVEN_TLS_CERT` (a PEM chain, leaf first) and `HAVEN_TLS_KEY` (a PEM private key)
//! set, the api serves HTTPS only (HTTP/1.1 and HTTP/2 by ALPN) and sends HSTS. With
//! `HAVEN_HTTP_REDIRECT_ADDR` set as well, a second listener answers every plain-HTTP request
//! with 308 to the same host, path and query on the HTTPS port.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, ResponseError, web};
use anyhow::Context;
use haven_core::ErrorCode;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::ApiError;
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

#[derive(Debug, Clone, Copy)]
struct RedirectTarget {
    https_port: u16,
}

/// A server on `listener` answering every request with 308 to `https://<host>:<https_port>`
/// and the same path and query (the port is left out when it is 443).
pub fn redirect_server(listener: TcpListener, https_port: u16) -> anyhow::Result<Server> {
    let target = web::Data::new(RedirectTarget { https_port });
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
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().host())
        .and_then(host_without_port);
    let Some(host) = host else {
        return ApiError::new(
            ErrorCode::ValidationError,
            "a valid Host header is required",
        )
        .error_response();
    };
    let port = match target.https_port {
        443 => String::new(),
        port => format!(":{port}"),
    };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    HttpResponse::build(StatusCode::PERMANENT_REDIRECT)
        .insert_header((header::LOCATION, format!("https://{host}{port}{path}")))
        .finish()
}

/// The host part of a `Host` header, refusing anything that is not a plain name or address.
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
}
