//! The handlers of every route, registered through [`crate::access::RouteSet`]: what each
//! route requires lives in [`crate::access::ROUTE_ACCESS`], not here.

use actix_web::http::Method;

use crate::access::RouteSet;

pub(crate) mod addresses;
pub(crate) mod admin;
pub(crate) mod alerts;
pub(crate) mod api_keys;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod breakers;
pub(crate) mod console;
pub(crate) mod fraud;
pub(crate) mod health;
pub(crate) mod inbound;
pub(crate) mod members;
pub(crate) mod nonces;
pub(crate) mod rewards;
pub(crate) mod stats;
pub(crate) mod status;
pub(crate) mod token;
pub(crate) mod transactions;
pub(crate) mod users;
pub(crate) mod wallets;
pub(crate) mod webhook_deliveries;
pub(crate) mod webhook_endpoints;
pub(crate) mod withdrawals;

/// Every handler of the api, by method and full path pattern.
pub fn standard() -> RouteSet {
    let (get, post, put, delete) = (Method::GET, Method::POST, Method::PUT, Method::DELETE);
    let mut r = RouteSet::new();
    r.add(get.clone(), "/health", health::health)
        .add(get.clone(), "/ready", health::ready)
        .add(get.clone(), "/metrics", crate::metrics::render)
        .add(get.clone(), "/openapi.json", crate::openapi::spec)
        .add(get.clone(), "/console", console::index)
        .add(get.clone(), "/console/console.js", console::script)
        .add(get.clone(), "/console/console.css", console::style)
        .add(
            post.clone(),
            "/api/v1/addresses/validate",
            addresses::validate,
        )
        .add(post.clone(), "/api/v1/webhooks/{source}", inbound::receive)
        .add(
            post.clone(),
            "/api/v1/webhooks/aurora/{event}",
            rewards::aurora,
        )
        .add(
            post.clone(),
            "/api/v1/webhooks/tribe/{event}",
            rewards::tribe,
        )
        .add(post.clone(), "/api/v1/auth/login", auth::login)
        .add(post.clone(), "/api/v1/auth/refresh", auth::refresh)
        .add(get.clone(), "/api/v1/auth/whoami", auth::whoami)
        .add(post.clone(), "/api/v1/auth/logout", auth::logout)
        .add(post.clone(), "/api/v1/auth/logout-all", auth::logout_all)
        .add(get.clone(), "/api/v1/auth/sessions", auth::sessions)
        .add(
            delete.clone(),
            "/api/v1/auth/sessions/{id}",
            auth::revoke_session,
        )
        .add(post.clone(), "/api/v1/api-keys", api_keys::create)
        .add(get.clone(), "/api/v1/api-keys", api_keys::list)
        .add(delete, "/api/v1/api-keys/{id}", api_keys::revoke)
        .add(post.clone(), "/api/v1/users", users::create)
        .add(get.clone(), "/api/v1/users", users::list)
        .add(put, "/api/v1/users/{id}/role", users::set_role)
        .add(post.clone(), "/api/v1/users/{id}/disable", users::disable)
        .add(
            get.clone(),
            "/api/v1/admin/transactions",
            transactions::list,
        )
        .add(
            get.clone(),
            "/api/v1/admin/transactions/status",
            transactions::status,
        )
        .add(
            get.clone(),
            "/api/v1/admin/transactions/{tx_id}",
            transactions::get,
        )
        .add(
            post.clone(),
            "/api/v1/admin/transactions/{tx_id}/retry",
            transactions::retry,
        )
        .add(get.clone(), "/api/v1/admin/alerts", alerts::list)
        .add(
            post.clone(),
            "/api/v1/admin/alerts/{id}/transition",
            alerts::transition,
        )
        .add(get.clone(), "/api/v1/admin/wallets", wallets::list)
        .add(post.clone(), "/api/v1/fraud/events", fraud::report)
        .add(get.clone(), "/api/v1/members/{id}", members::get)
        .add(
            get.clone(),
            "/api/v1/members/{id}/rewards",
            members::rewards_of,
        )
        .add(
            get.clone(),
            "/api/v1/admin/rewards",
            members::rewards_in_state,
        )
        .add(
            post.clone(),
            "/api/v1/members/{id}/identities",
            members::link,
        )
        .add(
            get.clone(),
            "/api/v1/members/{id}/payout-addresses",
            members::payout_addresses,
        )
        .add(
            post.clone(),
            "/api/v1/members/{id}/payout-addresses",
            members::add_payout_address,
        )
        .add(
            post.clone(),
            "/api/v1/members/{id}/withdrawals",
            withdrawals::create,
        )
        .add(
            get.clone(),
            "/api/v1/members/{id}/withdrawals/{withdrawal_id}",
            withdrawals::get,
        )
        .add(post.clone(), "/api/v1/token/mint", token::mint)
        .add(post.clone(), "/api/v1/token/redeem", token::redeem)
        .add(
            get.clone(),
            "/api/v1/admin/redemptions",
            token::list_redemptions,
        )
        .add(
            get.clone(),
            "/api/v1/admin/redemptions/{id}",
            token::get_redemption,
        )
        .add(
            post.clone(),
            "/api/v1/admin/redemptions/{id}/approve",
            token::approve,
        )
        .add(
            post.clone(),
            "/api/v1/admin/redemptions/{id}/reject",
            token::reject,
        )
        .add(
            post,
            "/api/v1/admin/redemptions/{id}/mark-paid",
            token::mark_paid,
        )
        .add(get, "/api/v1/network/stats", stats::network);
    operators(&mut r);
    webhooks(&mut r);
    vaults(&mut r);
    r
}

/// Guardian vaults: administration, the guardians' routes and their WebSocket.
fn vaults(r: &mut RouteSet) {
    use crate::guardian::{routes as v, threshold, ws};
    let (get, post, delete) = (Method::GET, Method::POST, Method::DELETE);
    r.add(post.clone(), "/api/v1/admin/vaults", v::create_vault)
        .add(get.clone(), "/api/v1/admin/vaults/{id}", v::get_vault)
        .add(
            post.clone(),
            "/api/v1/admin/vaults/{id}/invitations",
            v::invite,
        )
        .add(
            delete.clone(),
            "/api/v1/admin/vaults/{id}/guardians/{guardian_id}",
            v::remove_guardian,
        )
        .add(
            post.clone(),
            "/api/v1/admin/vaults/{id}/requests",
            v::submit,
        )
        .add(
            post.clone(),
            "/api/v1/admin/vaults/{id}/threshold/dkg",
            threshold::start_dkg,
        )
        .add(
            post.clone(),
            "/api/v1/admin/vaults/{id}/threshold/sign",
            threshold::start_signing,
        )
        .add(
            get.clone(),
            "/api/v1/admin/vaults/{id}/threshold/{session}",
            threshold::status,
        )
        .add(post.clone(), "/api/v1/guardian/join", v::join)
        .add(post, "/api/v1/guardian/refresh", v::refresh)
        .add(get.clone(), "/api/v1/guardian/sessions", v::sessions)
        .add(delete, "/api/v1/guardian/sessions/{id}", v::revoke_session)
        .add(get, "/api/v1/ws/guardian", ws::connect);
}

/// Outbound webhook endpoints and their dead letters.
fn webhooks(r: &mut RouteSet) {
    use webhook_endpoints as w;
    let (get, post) = (Method::GET, Method::POST);
    let endpoints = "/api/v1/admin/webhooks/endpoints";
    let endpoint = "/api/v1/admin/webhooks/endpoints/{id}";
    r.add(get.clone(), endpoints, w::list)
        .add(post.clone(), endpoints, w::create)
        .add(get.clone(), endpoint, w::get)
        .add(Method::PATCH, endpoint, w::update)
        .add(Method::DELETE, endpoint, w::delete)
        .add(
            post.clone(),
            "/api/v1/admin/webhooks/endpoints/{id}/rotate-secret",
            w::rotate_secret,
        )
        .add(
            get.clone(),
            "/api/v1/admin/webhooks/deliveries",
            webhook_deliveries::list,
        )
        .add(get, "/api/v1/admin/webhooks/dead-letters", w::dead_letters)
        .add(
            post,
            "/api/v1/admin/webhooks/dead-letters/{id}/replay",
            w::replay,
        );
}

/// Operating the running system: wallets, nonce accounts, circuit breakers, the audit log.
fn operators(r: &mut RouteSet) {
    let (get, post) = (Method::GET, Method::POST);
    r.add(get.clone(), "/api/v1/admin/status", status::status)
        .add(get.clone(), "/api/v1/admin/wallets/{id}", wallets::get)
        .add(post.clone(), "/api/v1/admin/wallets", wallets::create)
        .add(
            post.clone(),
            "/api/v1/admin/wallets/{id}/rotate",
            wallets::rotate,
        )
        .add(
            post.clone(),
            "/api/v1/admin/wallets/{id}/revoke",
            wallets::revoke,
        )
        .add(get.clone(), "/api/v1/admin/nonces", nonces::list)
        .add(
            get.clone(),
            "/api/v1/admin/nonces/{chain}/{address}",
            nonces::get,
        )
        .add(
            post.clone(),
            "/api/v1/admin/nonces/{chain}/{address}/reset",
            nonces::reset,
        )
        .add(
            get.clone(),
            "/api/v1/admin/health/circuit-breakers",
            breakers::list,
        )
        .add(
            post.clone(),
            "/api/v1/admin/health/circuit-breakers/{name}/reset",
            breakers::reset,
        )
        .add(
            post.clone(),
            "/api/v1/admin/health/circuit-breakers/{name}/force-open",
            breakers::force_open,
        )
        .add(
            post.clone(),
            "/api/v1/admin/health/circuit-breakers/{name}/disable",
            breakers::disable,
        )
        .add(get.clone(), "/api/v1/admin/audit/verify", audit::verify)
        .add(
            get.clone(),
            "/api/v1/admin/audit/wallet-logs",
            audit::wallet_logs,
        )
        .add(get.clone(), "/api/v1/admin/audit/records", audit::records);
}
