//! How failures become HTTP responses: every error body is a [`haven_core::ErrorBody`].

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use haven_core::{ErrorBody, ErrorCode, Problem};

tokio::task_local! {
    /// The id of the request being served, set by the request-id middleware.
    pub(crate) static REQUEST_ID: String;
}

/// The request id of the current request, if called while serving one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// An error answered with the JSON error body.
#[derive(Debug)]
pub struct ApiError(pub Problem);

impl ApiError {
    /// An error with a code and a developer-facing message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(Problem::new(code, message))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        Self(problem)
    }
}

impl From<haven_db::Error> for ApiError {
    fn from(err: haven_db::Error) -> Self {
        let code = err.code();
        Self(Problem::new(code, err.to_string()).with_source(err))
    }
}

impl From<haven_vault::Error> for ApiError {
    fn from(err: haven_vault::Error) -> Self {
        let code = err.code();
        Self(Problem::new(code, err.to_string()).with_source(err))
    }
}

/// Attached to every error response so the middleware can log it and, for 5xx, store it
/// under the `error_id` the client saw.
#[derive(Debug, Clone)]
pub(crate) struct ErrorReport {
    pub body: ErrorBody,
    pub cause: String,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let body = ErrorBody::from_problem(&self.0, current_request_id());
        let mut response = HttpResponse::build(self.status_code()).json(&body);
        response.extensions_mut().insert(ErrorReport {
            body,
            cause: self.0.cause_chain(),
        });
        response
    }
}

/// The code for a bare status produced by the framework (router 404, resource 405, …).
pub(crate) fn code_for_status(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        401 => ErrorCode::Unauthorized,
        403 => ErrorCode::Forbidden,
        404 => ErrorCode::NotFound,
        405 => ErrorCode::MethodNotAllowed,
        408 | 504 => ErrorCode::Timeout,
        409 => ErrorCode::Conflict,
        413 => ErrorCode::PayloadTooLarge,
        415 => ErrorCode::UnsupportedMediaType,
        429 => ErrorCode::RateLimited,
        503 => ErrorCode::ServiceUnavailable,
        400..=499 => ErrorCode::ValidationError,
        _ => ErrorCode::InternalError,
    }
}
