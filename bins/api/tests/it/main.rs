#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod addresses;
mod admin;
mod admin_alerts;
mod alerts;
mod auth;
mod cli;
mod errors;
mod guardian_threshold;
mod guardian_wss;
mod guardians;
mod health;
mod idempotency;
mod inbound_webhooks;
mod lockout;
mod metrics;
mod openapi;
mod operators;
mod rate_limits;
mod replicas;
mod routing;
mod security;
mod security_headers;
mod support;
mod tls;
mod wallets;
mod webhook_endpoints;
