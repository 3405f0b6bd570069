//! Security headers on every response and the CORS allow-list.
//!
//! [`secure_headers`] is the outermost middleware: it also sees the errors that escaped every
//! other layer (the ones `observe` prepares, or a failure before routing) and wraps them so
//! that their responses get the headers, so a 404, 405, 413, 429 or 500 carries the same
//! headers as a 200:
//!
//! | header | value |
//! |---|---|
//! | `Content-Security-Policy` | `default-src 'none'` (the console's files: [`CONSOLE_CSP`]) |
//! | `X-Content-Type-Options` | `nosniff` |
//! | `X-Frame-Options` | `DENY` |
//! | `Referrer-Policy` | `no-referrer` |
//! | `Strict-Transport-Security` | `max-age=31536000; includeSubDomains`, only when the server itself serves TLS |
//!
//! [`cors`] answers preflights and decorates cross-origin responses for the origins of
//! `HAVEN_CORS_ORIGINS` only (exact match; `*` is refused in production by the config). A
//! preflight from any other origin is refused with 403 `FORBIDDEN` and no
//! `Access-Control-Allow-Origin`; a simple request from another origin is served without CORS
//! headers, so the browser withholds the response from the page.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, web};
use haven_core::ErrorCode;

use crate::error::ApiError;
pub use crate::routes::console::CONSOLE_CSP;

/// `Strict-Transport-Security` sent when the api terminates TLS itself.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// The headers every response carries.
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("content-security-policy", "default-src 'none'"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
];

/// Methods a cross-origin page may use.
const CORS_METHODS: &str = "GET, POST, PUT, PATCH, DELETE";
/// Request headers a cross-origin page may send.
const CORS_ALLOW_HEADERS: &str = "authorization, content-type, idempotency-key, x-request-id";
/// Response headers a cross-origin page may read.
const CORS_EXPOSE_HEADERS: &str = "x-request-id, ratelimit-limit, ratelimit-remaining, ratelimit-reset, retry-after, idempotent-replayed";

/// What the hardening middleware needs to know (put it in the app data).
#[derive(Debug, Clone, Default)]
pub struct HardeningPolicy {
    /// Send HSTS: the server itself serves TLS.
    pub hsts: bool,
    /// Origins allowed to make cross-origin requests; `*` allows any (not in production).
    pub cors_origins: Vec<String>,
}

impl HardeningPolicy {
    fn allows_origin(&self, origin: &str) -> bool {
        self.cors_origins.iter().any(|o| o == "*" || o == origin)
    }
}

/// Adds the security headers to every response; an error that escaped the inner layers is
/// wrapped so that the response the server builds from it carries them too.
pub async fn secure_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let hsts = req
        .app_data::<web::Data<HardeningPolicy>>()
        .is_some_and(|p| p.hsts);
    match next.call(req).await {
        Ok(mut response) => {
            add_security_headers(response.headers_mut(), hsts);
            Ok(response.map_into_boxed_body())
        }
        Err(inner) => Err(SecuredError { inner, hsts }.into()),
    }
}

/// An error that escaped every layer: answered as the inner error would be, plus the
/// security headers (the request is gone by then, so the response is built by the server).
#[derive(Debug)]
struct SecuredError {
    inner: actix_web::Error,
    hsts: bool,
}

impl std::fmt::Display for SecuredError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl ResponseError for SecuredError {
    fn status_code(&self) -> StatusCode {
        self.inner.as_response_error().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = self.inner.error_response();
        add_security_headers(response.headers_mut(), self.hsts);
        response
    }
}

fn add_security_headers(headers: &mut header::HeaderMap, hsts: bool) {
    for (name, value) in SECURITY_HEADERS {
        // The console's pages set their own, stricter-than-nothing policy (they must run
        // their script); every other answer gets `default-src 'none'`.
        if name == "content-security-policy" && headers.contains_key(name) {
            continue;
        }
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
}

/// The CORS allow-list: answers preflights from listed origins, refuses the others, and adds
/// `Access-Control-Allow-Origin` to responses for listed origins.
pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let allowed = req
        .app_data::<web::Data<HardeningPolicy>>()
        .is_some_and(|p| p.allows_origin(&origin));
    let is_preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);

    if is_preflight {
        if !allowed {
            let refusal = ApiError::new(
                ErrorCode::Forbidden,
                format!("the origin {origin:?} is not allowed to make cross-origin requests"),
            )
            .error_response();
            return Ok(req.into_response(refusal));
        }
        let mut response = HttpResponse::build(StatusCode::NO_CONTENT).finish();
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&origin) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        }
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(CORS_METHODS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(CORS_ALLOW_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        return Ok(req.into_response(response));
    }

    let mut response = next.call(req).await?.map_into_boxed_body();
    let headers = response.headers_mut();
    // The answer depends on the origin whether or not it is listed: caches must key on it.
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if allowed {
        if let Ok(value) = HeaderValue::from_str(&origin) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        }
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(CORS_EXPOSE_HEADERS),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_or_by_wildcard() {
        let policy = HardeningPolicy {
            hsts: false,
            cors_origins: vec!["https://app.example".into()],
        };
        assert!(policy.allows_origin("https://app.example"));
        assert!(!policy.allows_origin("https://app.example.evil"));
        assert!(!policy.allows_origin("http://app.example"));
        let any = HardeningPolicy {
            hsts: false,
            cors_origins: vec!["*".into()],
        };
        assert!(any.allows_origin("https://anything.example"));
    }
}
