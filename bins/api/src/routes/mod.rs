//! Route registration.

use actix_web::web;

mod addresses;
mod health;

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // Resources (not bare routes) so that a wrong method answers 405, not 404.
    cfg.service(web::resource("/health").get(health::health))
        .service(web::resource("/ready").get(health::ready))
        .service(
            web::scope("/api/v1")
                .service(web::resource("/addresses/validate").post(addresses::validate)),
        );
}
