use actix_web::HttpResponse;
use haven_core::{ErrorCode, Problem};
use serde::Deserialize;
use validator::Validate;

use crate::error::ApiError;
use crate::extract::ValidatedJson;

/// `POST /api/v1/addresses/validate` body.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateAddress {
    /// Chain name or alias (`evm`, `eth`, `base`, `solana`, `cosmos:remes`, …).
    #[validate(length(min = 1, max = 64, message = "chain must be 1 to 64 characters"))]
    pub chain: String,
    /// The address to check, exactly as received (nothing is trimmed).
    #[validate(length(max = 4096, message = "address must be at most 4096 bytes"))]
    pub address: String,
}

/// Validates an address: 200 for valid and invalid addresses alike (the body says which);
/// 400 `UNSUPPORTED_CHAIN` for an unknown chain.
#[utoipa::path(
    post,
    path = "/api/v1/addresses/validate",
    tag = "addresses",
    request_body = ValidateAddress,
    responses(
        (status = 200, description = "Valid or invalid: the body says which", body = crate::openapi::AddressReportSchema),
    ),
)]
pub async fn validate(body: ValidatedJson<ValidateAddress>) -> Result<HttpResponse, ApiError> {
    let ValidateAddress { chain, address } = body.0;
    let report = haven_address::report(&chain, &address).map_err(|e| {
        ApiError(
            Problem::new(ErrorCode::UnsupportedChain, e.to_string()).with_detail("field", "chain"),
        )
    })?;
    Ok(HttpResponse::Ok().json(report))
}
