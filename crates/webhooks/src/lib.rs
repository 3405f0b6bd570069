//! Webhooks for haven, framework-free: it works on `http` types and byte slices.
//!
//! - **Inbound verification** ([`Verifier`], [`verify()`]): Standard Webhooks v1 (HMAC-SHA256)
//!   and v1a (ed25519), Stripe-style `Stripe-Signature`, and the Aurora/Tribe partner
//!   headers; constant-time comparison, strict decoding, overflow-free timestamp checks,
//!   several secrets with expiry, and replay protection through a [`ReplayStore`].
//!   HMAC-SHA256 runs on RustCrypto's `hmac` + `sha2` when the CPU has SHA extensions
//!   (detected at run time; it costs less per message than ring's HMAC there) and on ring
//!   otherwise ([`HmacBackend`]); ed25519 and the body fingerprints are ring's.
//! - **Idempotency keys** ([`Idempotency`]): grammar, header-or-body extraction, scoping,
//!   body fingerprint, an expiring in-flight lock and byte-identical replays over an
//!   [`IdempotencyStore`].
//! - **Outbound delivery**: [`signed_headers`], the attempt schedule ([`RetryPolicy`]),
//!   dead letters and endpoint disabling ([`EndpointHealth`]) as pure functions, the
//!   destination check ([`DestinationPolicy`]) and an HTTP sender.
//!
//! ```
//! use haven_webhooks::{Scheme, Secret, Verifier, sign_header};
//! use http::HeaderMap;
//!
//! let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
//! let body = br#"{"test": 2432232314}"#;
//! let signature = sign_header(
//!     Scheme::Standard,
//!     &Secret::standard(secret)?,
//!     Some("msg_p5jXN8AQM9LWM0D4loKWxJek"),
//!     1614265330,
//!     body,
//! )?;
//! assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek".parse()?);
//! headers.insert("webhook-timestamp", "1614265330".parse()?);
//! headers.insert("webhook-signature", signature.parse()?);
//! let verifier = Verifier::new("partner", Scheme::Standard, vec![Secret::standard(secret)?]);
//! let verified = verifier.verify(&headers, body, 1614265330 + 10)?;
//! assert_eq!(verified.replay_id, "msg_p5jXN8AQM9LWM0D4loKWxJek");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Features
//! - `sender` (default): [`HttpSender`], a reqwest + rustls (ring) client that checks every
//!   resolved address against the [`DestinationPolicy`].
//! - `redis`: [`RedisReplayStore`] (`SET NX` with a TTL) and [`RedisIdempotencyStore`] (one
//!   Lua script per claim) on a `deadpool-redis` pool.
//! - `test-utils`: the [`conformance`] suites every store implementation must pass, and a
//!   verifying test [`receiver`] for senders.
//!
//! The crate depends on no web, database or job framework. Postgres stores live in
//! `haven-db`, the actix middleware in the api binary and the delivery loop in the worker.

mod clock;
mod completed_cache;
pub mod delivery;
pub mod destination;
mod encoding;
mod error;
mod fallback;
mod fingerprint;
pub mod idempotency;
mod mac;
pub mod replay;
mod secret;
pub mod verify;

#[cfg(feature = "test-utils")]
pub mod conformance;
#[cfg(feature = "test-utils")]
pub mod receiver;
#[cfg(feature = "redis")]
mod redis_store;
#[cfg(feature = "sender")]
mod sender;

pub use clock::{Clock, ManualClock, SystemClock};
pub use completed_cache::CompletedCache;
pub use delivery::{
    DEFAULT_SCHEDULE, DISABLE_AFTER, Decision, EndpointHealth, HealthVerdict, RetryPolicy,
    parse_retry_after, signed_headers,
};
pub use destination::{DestinationPolicy, IpNet, is_public};
pub use error::{
    Error, IdempotencyError, KeyRejection, Malformed, Refusal, Result, SecretError, StoreError,
    VerifyError,
};
pub use fallback::FallbackStore;
pub use fingerprint::Fingerprint;
pub use idempotency::{
    Begin, Claim, Disposition, Idempotency, IdempotencyConfig, IdempotencyKey, IdempotencyStore,
    LockToken, MemoryIdempotencyStore, Requirement, Scope, ScopedKey, StoredResponse, Ticket,
    extract_key,
};
pub use mac::HmacBackend;
#[cfg(feature = "redis")]
pub use redis_store::{RedisIdempotencyStore, RedisReplayStore};
pub use replay::{MemoryReplayStore, ReplayOutcome, ReplayStore};
pub use secret::{MIN_HMAC_KEY_LEN, Secret};
#[cfg(feature = "sender")]
pub use sender::{AttemptResult, HttpSender, SenderConfig};
pub use verify::{
    ReplayId, Scheme, SignedParts, Tolerance, Verified, Verifier, sign_header,
    sign_header_rotating, verify,
};
