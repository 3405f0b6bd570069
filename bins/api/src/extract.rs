//! Extractors whose failures are JSON error bodies, never actix's plain-text defaults.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{FromRequest, HttpRequest, web};
use haven_core::{ErrorCode, Problem};
use serde::de::DeserializeOwned;
use validator::Validate;

use crate::error::ApiError;

/// JSON extractor settings: body limit and error mapping.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(move |err, _req| ApiError::from(json_problem(err, limit)).into())
}

/// Path extractor settings.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err: PathError, _req| {
        ApiError::new(ErrorCode::InvalidPath, err.to_string()).into()
    })
}

/// Query extractor settings.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req| {
        ApiError::new(ErrorCode::InvalidQuery, err.to_string()).into()
    })
}

fn json_problem(err: JsonPayloadError, limit: usize) -> Problem {
    match err {
        JsonPayloadError::OverflowKnownLength { length, limit } => Problem::new(
            ErrorCode::PayloadTooLarge,
            format!("the body has {length} bytes; the limit is {limit}"),
        )
        .with_detail("limit", limit),
        JsonPayloadError::Overflow { limit } => Problem::new(
            ErrorCode::PayloadTooLarge,
            format!("the body exceeds the limit of {limit} bytes"),
        )
        .with_detail("limit", limit),
        JsonPayloadError::ContentType => Problem::new(
            ErrorCode::UnsupportedMediaType,
            "expected Content-Type: application/json",
        ),
        JsonPayloadError::Deserialize(e) | JsonPayloadError::Serialize(e) => {
            use serde_json::error::Category;
            let code = match e.classify() {
                Category::Data => ErrorCode::ValidationError,
                Category::Syntax | Category::Eof | Category::Io => ErrorCode::InvalidJson,
            };
            Problem::new(code, format!("invalid request body: {e}"))
                .with_detail("line", e.line())
                .with_detail("column", e.column())
        }
        JsonPayloadError::Payload(e) => Problem::new(
            ErrorCode::InvalidJson,
            format!("could not read the body: {e}"),
        ),
        other => Problem::new(
            ErrorCode::InvalidJson,
            format!("invalid JSON body ({other}); limit {limit}"),
        ),
    }
}

/// `validator` rule for text that is stored: Postgres `TEXT` cannot hold a NUL character, so
/// one is refused as a field error (400) before it can reach the database (a 500).
/// Use as `#[validate(custom(function = "crate::extract::no_nul"))]`.
pub fn no_nul(value: &str) -> Result<(), validator::ValidationError> {
    if value.contains('\0') {
        let mut error = validator::ValidationError::new("nul_character");
        error.message = Some("must not contain a NUL character".into());
        return Err(error);
    }
    Ok(())
}

/// A JSON body that is also checked with its `validator` rules; failures answer 400
/// `VALIDATION_ERROR` listing every field error under `details.fields`.
#[derive(Debug)]
pub struct ValidatedJson<T>(pub T);

impl<T: DeserializeOwned + Validate + 'static> FromRequest for ValidatedJson<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = web::Json::<T>::from_request(req, payload);
        Box::pin(async move {
            let value = json.await?.into_inner();
            value
                .validate()
                .map_err(|errors| ApiError::from(validation_problem(&errors)))?;
            Ok(ValidatedJson(value))
        })
    }
}

/// Turns `validator` errors into a problem with one entry per field.
pub fn validation_problem(errors: &validator::ValidationErrors) -> Problem {
    let mut fields = serde_json::Map::new();
    for (field, errs) in errors.field_errors() {
        let messages: Vec<serde_json::Value> = errs
            .iter()
            .map(|e| {
                serde_json::Value::String(
                    e.message
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_else(|| e.code.to_string()),
                )
            })
            .collect();
        fields.insert(field.to_string(), serde_json::Value::Array(messages));
    }
    let names: Vec<&String> = fields.keys().collect();
    let message = format!(
        "invalid fields: {}",
        names
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Problem::new(ErrorCode::ValidationError, message).with_detail("fields", fields)
}
