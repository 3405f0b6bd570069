//! Request id, request logging, timeouts and the guarantee that every error response is a
//! JSON error body (5xx ones stored in `error_logs`).

use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use haven_core::{ErrorCode, Problem};
use tracing::Instrument;

use crate::error::{ApiError, ErrorReport, REQUEST_ID, code_for_status};
use crate::state::AppState;

/// The request id header, kept when well formed and echoed on every response.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Whether an incoming request id can be trusted as is: 1–128 characters of
/// `[A-Za-z0-9._:-]` (anything else could forge log lines).
pub fn is_well_formed_request_id(raw: &str) -> bool {
    (1..=128).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// The outermost middleware: assigns the request id, logs the request, enforces the request
/// timeout and normalizes every error response.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let request_id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_well_formed_request_id(v))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let timeout = state.as_ref().map_or(Duration::from_secs(30), |s| {
        Duration::from_secs(s.config.request_timeout_secs)
    });
    let method = req.method().to_string();
    let path = req.path().to_owned();
    let span =
        tracing::info_span!("request", request_id = %request_id, method = %method, path = %path);
    let started = Instant::now();

    let outcome = REQUEST_ID
        .scope(request_id.clone(), async move {
            match tokio::time::timeout(timeout, next.call(req)).await {
                Ok(Ok(res)) => Ok(normalize_error(res.map_into_boxed_body())),
                // Errors that escaped the handlers (rare): answered by the server from the
                // body built here, while the request id is still known.
                Ok(Err(err)) => {
                    let status = err.as_response_error().status_code();
                    Err(Problem::new(code_for_status(status), err.to_string()))
                }
                Err(_) => Err(Problem::new(
                    ErrorCode::Timeout,
                    format!("no response within {} s", timeout.as_secs()),
                )),
            }
        })
        .instrument(span.clone())
        .await;

    let (status, report, response) = match outcome {
        Ok(response) => {
            let report = response
                .response()
                .extensions()
                .get::<ErrorReport>()
                .cloned();
            (response.status(), report, Some(response))
        }
        Err(problem) => {
            let body = haven_core::ErrorBody::from_problem(&problem, Some(request_id.clone()));
            let report = ErrorReport {
                body,
                cause: problem.cause_chain(),
            };
            let status = actix_web::http::StatusCode::from_u16(report.body.status())
                .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
            (status, Some(report), None)
        }
    };
    async {
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        match &report {
            Some(report) if status.is_server_error() => {
                tracing::error!(
                    status = status.as_u16(),
                    latency_ms,
                    error = %report.body.error,
                    error_id = %report.body.error_id,
                    cause = %haven_core::redact(&report.cause),
                    "request failed"
                );
                if let Some(state) = &state {
                    store_server_error(state, report, &request_id, &method, &path).await;
                }
            }
            Some(report) => tracing::info!(
                status = status.as_u16(),
                latency_ms,
                error = %report.body.error,
                "request refused"
            ),
            None => tracing::info!(status = status.as_u16(), latency_ms, "request completed"),
        }
    }
    .instrument(span)
    .await;

    match response {
        Some(mut response) => {
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                response.headers_mut().insert(REQUEST_ID_HEADER, value);
            }
            Ok(response)
        }
        None => Err(PreparedError {
            report: report.unwrap_or_else(|| unreachable_report(&request_id)),
            request_id,
        }
        .into()),
    }
}

fn unreachable_report(request_id: &str) -> ErrorReport {
    let problem = Problem::new(ErrorCode::InternalError, "no error report");
    ErrorReport {
        body: haven_core::ErrorBody::from_problem(&problem, Some(request_id.to_owned())),
        cause: problem.message,
    }
}

/// An error body built inside the middleware, answered by the server as is.
#[derive(Debug)]
struct PreparedError {
    report: ErrorReport,
    request_id: String,
}

impl std::fmt::Display for PreparedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.report.body.error)
    }
}

impl ResponseError for PreparedError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::from_u16(self.report.body.status())
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> actix_web::HttpResponse {
        let mut response =
            actix_web::HttpResponse::build(self.status_code()).json(&self.report.body);
        if let Ok(value) = HeaderValue::from_str(&self.request_id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        response
    }
}

/// Replaces the framework's bare error responses (router 404, resource 405, …) with the JSON
/// error body; leaves responses that already carry one alone.
fn normalize_error(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error())
        || is_json
        || response
            .response()
            .extensions()
            .get::<ErrorReport>()
            .is_some()
    {
        return response;
    }
    let code = code_for_status(status);
    let message = match code {
        ErrorCode::NotFound => format!("no route for {}", response.request().path()),
        ErrorCode::MethodNotAllowed => format!(
            "{} is not allowed on {}",
            response.request().method(),
            response.request().path()
        ),
        other => other.default_user_message().to_owned(),
    };
    let mut problem = Problem::new(code, message);
    if let Some(err) = response.response().error() {
        problem.message = format!("{}: {err}", problem.message);
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let (req, _) = response.into_parts();
    let mut replacement = ApiError(problem).error_response();
    if let Some(allow) = allow {
        replacement.headers_mut().insert(header::ALLOW, allow);
    }
    ServiceResponse::new(req, replacement)
}

async fn store_server_error(
    state: &AppState,
    report: &ErrorReport,
    request_id: &str,
    method: &str,
    path: &str,
) {
    let log = haven_db::NewErrorLog {
        error_id: report.body.error_id,
        request_id: Some(request_id.to_owned()),
        code: report.body.error.as_str().to_owned(),
        status: report.body.status(),
        method: Some(method.to_owned()),
        path: Some(path.to_owned()),
        message: report.cause.clone(),
    };
    match tokio::time::timeout(Duration::from_secs(2), state.error_logs.insert(log)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, error_id = %report.body.error_id, "could not store the error in error_logs")
        }
        Err(_) => {
            tracing::warn!(error_id = %report.body.error_id, "storing the error in error_logs timed out")
        }
    }
}

/// The answer to a request no route matches: 404 with the error body, charged to the
/// client network's public bucket (so probing for routes costs like any public request).
/// No guard and no handler ran.
pub async fn not_found(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    if let Some(limits) = req.app_data::<web::Data<crate::ratelimit::RateLimits>>() {
        let key = crate::ratelimit::net_key(crate::ratelimit::client_net(&req));
        let class = crate::ratelimit::RateClass::Public;
        let decision = limits.check(class, &key).await;
        if !decision.allowed {
            return crate::ratelimit::refusal(class, &decision);
        }
    }
    ApiError::new(ErrorCode::NotFound, format!("no route for {}", req.path())).error_response()
}
