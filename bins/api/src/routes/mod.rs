//! Route registration.

use actix_web::middleware::from_fn;
use actix_web::web;

pub(crate) mod addresses;
pub(crate) mod admin;
pub(crate) mod alerts;
pub(crate) mod api_keys;
pub(crate) mod auth;
pub(crate) mod health;
pub(crate) mod inbound;
pub(crate) mod transactions;
pub(crate) mod users;
pub(crate) mod wallets;

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // Resources (not bare routes) so that a wrong method answers 405, not 404.
    cfg.service(web::resource("/health").get(health::health))
        .service(web::resource("/ready").get(health::ready))
        .service(web::resource("/metrics").get(crate::metrics::render))
        .service(web::resource("/openapi.json").get(crate::openapi::spec))
        .service(
            web::scope("/api/v1")
                .service(web::resource("/addresses/validate").post(addresses::validate))
                // Every route here is declared in `crate::auth::ROUTE_ACCESS`.
                .service(
                    web::resource("/auth/login")
                        .wrap(from_fn(crate::ratelimit::sensitive))
                        .post(auth::login),
                )
                .service(web::resource("/auth/refresh").post(auth::refresh))
                .service(web::resource("/auth/whoami").get(auth::whoami))
                .service(web::resource("/auth/logout").post(auth::logout))
                .service(web::resource("/auth/logout-all").post(auth::logout_all))
                .service(web::resource("/auth/sessions").get(auth::sessions))
                .service(web::resource("/auth/sessions/{id}").delete(auth::revoke_session))
                .service(
                    web::resource("/api-keys")
                        .wrap(from_fn(crate::ratelimit::sensitive))
                        .post(api_keys::create)
                        .get(api_keys::list),
                )
                .service(web::resource("/api-keys/{id}").delete(api_keys::revoke))
                .service(web::resource("/users").post(users::create).get(users::list))
                .service(web::resource("/users/{id}/role").put(users::set_role))
                .service(web::resource("/users/{id}/disable").post(users::disable))
                // Before `/admin/transactions/{tx_id}`, which would match `status` too.
                .service(web::resource("/admin/transactions/status").get(transactions::status))
                .service(web::resource("/admin/transactions/{tx_id}").get(transactions::get))
                .service(
                    web::resource("/admin/transactions/{tx_id}/retry")
                        .wrap(from_fn(crate::idempotency::required))
                        .post(transactions::retry),
                )
                .service(web::resource("/admin/alerts").get(alerts::list))
                .service(web::resource("/admin/alerts/{id}/transition").post(alerts::transition))
                .service(web::resource("/admin/wallets").get(wallets::list))
                // Authenticated by its signature; limited per source (`ratelimit::per_source`).
                .service(
                    web::resource("/webhooks/{source}")
                        .wrap(from_fn(crate::ratelimit::per_source))
                        .post(inbound::receive),
                ),
        );
}
