//! Idempotency keys: grammar, extraction, scoping, the in-flight lock and stored results.
//!
//! The flow a web layer runs around a handler:
//! 1. [`extract_key`] from the `Idempotency-Key` header or the body's `idempotency_key`;
//! 2. [`Idempotency::begin`] claims the key: either the handler may run
//!    ([`Begin::Proceed`]), or a stored result is replayed ([`Begin::Replay`]), or the
//!    request is refused (409 in flight, 422 different body);
//! 3. [`Idempotency::finish`] stores the result (2xx and business 4xx) or releases the key
//!    (5xx, 429, 401/403 and request-validation failures) so the client can retry.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use http::{HeaderMap, HeaderName, HeaderValue};
use rand::RngCore as _;
use ring::digest;
use serde::{Deserialize, Serialize};

use crate::clock::{Clock, SystemClock};
use crate::encoding::{base64_any, base64_encode};
use crate::error::{IdempotencyError, KeyRejection, StoreError};
use crate::fingerprint::Fingerprint;

/// `Idempotency-Key`.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// `Idempotent-Replayed`, set to `true` on replayed responses.
pub const IDEMPOTENT_REPLAYED_HEADER: &str = "idempotent-replayed";
/// The body field read when the header is absent.
pub const BODY_FIELD: &str = "idempotency_key";
/// Shortest accepted key.
pub const MIN_KEY_LEN: usize = 8;
/// Longest accepted key.
pub const MAX_KEY_LEN: usize = 64;

/// A validated idempotency key: 8–64 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Validates a bare key.
    pub fn parse(raw: &str) -> Result<Self, KeyRejection> {
        if raw.len() < MIN_KEY_LEN {
            return Err(KeyRejection::TooShort);
        }
        if raw.len() > MAX_KEY_LEN {
            return Err(KeyRejection::TooLong);
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(KeyRejection::Character);
        }
        Ok(Self(raw.to_owned()))
    }

    /// Validates a header value: a bare token or a quoted string (`"key"`, no escapes:
    /// the grammar admits no character that would need one).
    pub fn from_header_value(value: &str) -> Result<Self, KeyRejection> {
        match value.strip_prefix('"') {
            Some(rest) => {
                let inner = rest.strip_suffix('"').ok_or(KeyRejection::Syntax)?;
                Self::parse(inner)
            }
            None if value.ends_with('"') => Err(KeyRejection::Syntax),
            None => Self::parse(value),
        }
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Deserialize)]
struct BodyKey {
    idempotency_key: Option<serde_json::Value>,
}

/// Reads the key from the `Idempotency-Key` header, else from the JSON body's
/// `idempotency_key` string field. The header wins when both are present. A body that is
/// not a JSON object yields no key (the handler reports its own parse error).
pub fn extract_key(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<IdempotencyKey>, IdempotencyError> {
    let invalid = |reason| IdempotencyError::InvalidKey { reason };
    let mut values = headers.get_all(IDEMPOTENCY_KEY_HEADER).iter();
    if let Some(value) = values.next() {
        if values.next().is_some() {
            return Err(invalid(KeyRejection::Repeated));
        }
        let text = value.to_str().map_err(|_| invalid(KeyRejection::Syntax))?;
        return IdempotencyKey::from_header_value(text)
            .map(Some)
            .map_err(invalid);
    }
    let Ok(parsed) = serde_json::from_slice::<BodyKey>(body) else {
        return Ok(None);
    };
    match parsed.idempotency_key {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => IdempotencyKey::parse(&s).map(Some).map_err(invalid),
        Some(_) => Err(invalid(KeyRejection::NotAString)),
    }
}

/// Who asked for what: a key is only meaningful within its scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    /// The authenticated principal (user id, API key id, …).
    pub principal: String,
    /// The HTTP method, upper case.
    pub method: String,
    /// The route path.
    pub path: String,
}

impl Scope {
    /// A scope.
    pub fn new(
        principal: impl Into<String>,
        method: impl Into<String>,
        path: impl Into<String>,
    ) -> Self {
        Self {
            principal: principal.into(),
            method: method.into(),
            path: path.into(),
        }
    }
}

/// A key within its scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScopedKey {
    /// The scope.
    pub scope: Scope,
    /// The key.
    pub key: IdempotencyKey,
}

impl ScopedKey {
    /// A stable, fixed-length id for key-value stores: hex SHA-256 over the length-prefixed
    /// principal, method, path and key (length prefixes keep `("a:b","c")` and
    /// `("a","b:c")` apart).
    pub fn storage_id(&self) -> String {
        let mut ctx = digest::Context::new(&digest::SHA256);
        for part in [
            self.scope.principal.as_str(),
            self.scope.method.as_str(),
            self.scope.path.as_str(),
            self.key.as_str(),
        ] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part.as_bytes());
        }
        hex::encode(ctx.finish())
    }
}

/// A stored response, replayed byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// The HTTP status.
    pub status: u16,
    /// The chosen headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct StoredWire {
    s: u16,
    h: Vec<(String, String)>,
    b: String,
}

impl StoredResponse {
    /// Serialises for a key-value store (JSON; header values and body as base64).
    pub fn encode(&self) -> Vec<u8> {
        let wire = StoredWire {
            s: self.status,
            h: self
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), base64_encode(v)))
                .collect(),
            b: base64_encode(&self.body),
        };
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// The inverse of [`StoredResponse::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let corrupt = StoreError::Corrupt {
            what: "idempotent response",
        };
        let wire: StoredWire = serde_json::from_slice(bytes).map_err(|_| StoreError::Corrupt {
            what: "idempotent response",
        })?;
        let mut headers = Vec::with_capacity(wire.h.len());
        for (name, value) in wire.h {
            let Some(value) = base64_any(&value) else {
                return Err(corrupt);
            };
            headers.push((name, value));
        }
        let body = base64_any(&wire.b).ok_or(corrupt)?;
        Ok(Self {
            status: wire.s,
            headers,
            body,
        })
    }

    /// The replay as an `http` response, with `Idempotent-Replayed: true`. Headers that
    /// no longer parse are dropped (they were valid when stored).
    pub fn to_http(&self) -> http::Response<Vec<u8>> {
        let mut response = http::Response::new(self.body.clone());
        *response.status_mut() =
            http::StatusCode::from_u16(self.status).unwrap_or(http::StatusCode::OK);
        let headers = response.headers_mut();
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(value),
            ) {
                headers.append(name, value);
            }
        }
        headers.insert(IDEMPOTENT_REPLAYED_HEADER, HeaderValue::from_static("true"));
        response
    }
}

/// Proves ownership of an in-flight claim; only its holder can complete or release it.
#[derive(Clone, PartialEq, Eq)]
pub struct LockToken(String);

impl LockToken {
    /// A fresh random token (128 bits).
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        Self(hex::encode(bytes))
    }

    /// The token text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A token from stored text (for store implementations).
    pub fn from_stored(text: impl Into<String>) -> Self {
        Self(text.into())
    }
}

impl fmt::Debug for LockToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LockToken(…)")
    }
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key was free (or its lock had expired): the caller holds it now.
    Acquired,
    /// Another request holds the key.
    InFlight,
    /// The key is known with a different body fingerprint.
    Mismatch,
    /// The key completed with the same body: replay this.
    Completed(StoredResponse),
}

/// Storage for idempotency keys.
///
/// **Invariant:** `claim` is atomic per key: of concurrent claims for a free key exactly
/// one gets [`Claim::Acquired`]. A fingerprint mismatch is reported whatever the state. An
/// in-flight lock lapses after `lock_ttl`, after which the key is free again (a crashed
/// request can be retried). `complete` and `release` act only for the current token holder,
/// so a request whose lock lapsed cannot overwrite its successor. A completed key replays
/// until `retention` has passed.
#[async_trait]
pub trait IdempotencyStore: Send + Sync + fmt::Debug {
    /// Claims `key` for the holder of `token`.
    async fn claim(
        &self,
        key: &ScopedKey,
        fingerprint: &Fingerprint,
        token: &LockToken,
        lock_ttl: Duration,
    ) -> Result<Claim, StoreError>;

    /// Stores the result and ends the lock; `false` if `token` no longer holds the key.
    async fn complete(
        &self,
        key: &ScopedKey,
        token: &LockToken,
        response: &StoredResponse,
        retention: Duration,
    ) -> Result<bool, StoreError>;

    /// Forgets the key so it can be claimed again; `false` if `token` no longer holds it.
    async fn release(&self, key: &ScopedKey, token: &LockToken) -> Result<bool, StoreError>;
}

#[async_trait]
impl<T: IdempotencyStore + ?Sized> IdempotencyStore for Arc<T> {
    async fn claim(
        &self,
        key: &ScopedKey,
        fingerprint: &Fingerprint,
        token: &LockToken,
        lock_ttl: Duration,
    ) -> Result<Claim, StoreError> {
        (**self).claim(key, fingerprint, token, lock_ttl).await
    }

    async fn complete(
        &self,
        key: &ScopedKey,
        token: &LockToken,
        response: &StoredResponse,
        retention: Duration,
    ) -> Result<bool, StoreError> {
        (**self).complete(key, token, response, retention).await
    }

    async fn release(&self, key: &ScopedKey, token: &LockToken) -> Result<bool, StoreError> {
        (**self).release(key, token).await
    }
}

/// Whether a finished request's result is kept for replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Stored and replayed to later requests with the key.
    Store,
    /// Not stored; the key is released so the client may retry.
    Release,
}

impl Disposition {
    /// The rule: 2xx, 3xx and business 4xx (404, 409, 422, …) are stored; 5xx, 429,
    /// 401/403 and request-validation failures (400, 413, 415) release the key.
    pub fn for_status(status: u16) -> Self {
        match status {
            200..=399 => Disposition::Store,
            400 | 401 | 403 | 413 | 415 | 429 => Disposition::Release,
            402..=499 => Disposition::Store,
            _ => Disposition::Release,
        }
    }
}

/// Whether an endpoint insists on a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Requests without a key run normally.
    Optional,
    /// Requests without a key get 400 `IDEMPOTENCY_KEY_REQUIRED`.
    Required,
}

/// Timings and stored headers.
#[derive(Debug, Clone)]
pub struct IdempotencyConfig {
    /// How long an in-flight claim holds the key (default 90 s).
    pub lock_ttl: Duration,
    /// How long a result is replayed (default 24 h).
    pub retention: Duration,
    /// Response headers kept with the result (default `content-type`, `location`).
    pub stored_headers: Vec<HeaderName>,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        Self {
            lock_ttl: Duration::from_secs(90),
            retention: Duration::from_secs(24 * 3600),
            stored_headers: vec![http::header::CONTENT_TYPE, http::header::LOCATION],
        }
    }
}

/// The outcome of [`Idempotency::begin`].
#[derive(Debug)]
pub enum Begin {
    /// No key and none required: run the handler without protection.
    NoKey,
    /// Run the handler, then call [`Idempotency::finish`] (or `abandon`) with the ticket.
    Proceed(Ticket),
    /// Answer with this stored response ([`StoredResponse::to_http`]).
    Replay(StoredResponse),
}

/// A held claim.
#[derive(Debug)]
#[must_use = "finish or abandon the ticket, or the key stays locked until the lock lapses"]
pub struct Ticket {
    key: ScopedKey,
    token: LockToken,
}

impl Ticket {
    /// The scoped key held.
    pub fn key(&self) -> &ScopedKey {
        &self.key
    }
}

/// The framework-free idempotency core over a store.
#[derive(Debug, Clone)]
pub struct Idempotency<S> {
    store: S,
    config: IdempotencyConfig,
}

impl<S: IdempotencyStore> Idempotency<S> {
    /// The core over `store`.
    pub fn new(store: S, config: IdempotencyConfig) -> Self {
        Self { store, config }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &IdempotencyConfig {
        &self.config
    }

    /// Claims the key for this request.
    pub async fn begin(
        &self,
        scope: Scope,
        key: Option<IdempotencyKey>,
        body: &[u8],
        requirement: Requirement,
    ) -> Result<Begin, IdempotencyError> {
        let Some(key) = key else {
            return match requirement {
                Requirement::Optional => Ok(Begin::NoKey),
                Requirement::Required => Err(IdempotencyError::Required),
            };
        };
        let key = ScopedKey { scope, key };
        let token = LockToken::random();
        let claim = self
            .store
            .claim(&key, &Fingerprint::of(body), &token, self.config.lock_ttl)
            .await
            .map_err(IdempotencyError::Store)?;
        match claim {
            Claim::Acquired => Ok(Begin::Proceed(Ticket { key, token })),
            Claim::InFlight => Err(IdempotencyError::InUse),
            Claim::Mismatch => Err(IdempotencyError::Reused),
            Claim::Completed(response) => Ok(Begin::Replay(response)),
        }
    }

    /// Stores or releases according to [`Disposition::for_status`].
    pub async fn finish(
        &self,
        ticket: Ticket,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Disposition, IdempotencyError> {
        let disposition = Disposition::for_status(status);
        match disposition {
            Disposition::Store => {
                let response = StoredResponse {
                    status,
                    headers: self.chosen_headers(headers),
                    body: body.to_vec(),
                };
                let stored = self
                    .store
                    .complete(&ticket.key, &ticket.token, &response, self.config.retention)
                    .await
                    .map_err(IdempotencyError::Store)?;
                if !stored {
                    tracing::warn!(
                        key = %ticket.key.key,
                        "idempotent request outlived its lock; result not stored"
                    );
                }
            }
            Disposition::Release => {
                self.store
                    .release(&ticket.key, &ticket.token)
                    .await
                    .map_err(IdempotencyError::Store)?;
            }
        }
        Ok(disposition)
    }

    /// Releases the key without a result (the handler failed unexpectedly).
    pub async fn abandon(&self, ticket: Ticket) -> Result<(), IdempotencyError> {
        self.store
            .release(&ticket.key, &ticket.token)
            .await
            .map_err(IdempotencyError::Store)?;
        Ok(())
    }

    fn chosen_headers(&self, headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for name in &self.config.stored_headers {
            for value in headers.get_all(name) {
                out.push((name.as_str().to_owned(), value.as_bytes().to_vec()));
            }
        }
        out
    }
}

#[derive(Debug)]
enum Slot {
    InFlight { token: LockToken },
    Done { response: StoredResponse },
}

#[derive(Debug)]
struct Entry {
    fingerprint: Fingerprint,
    slot: Slot,
    expires: Duration,
}

/// An in-process idempotency store (tests, single-instance deployments).
#[derive(Debug)]
pub struct MemoryIdempotencyStore {
    clock: Arc<dyn Clock>,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Default for MemoryIdempotencyStore {
    fn default() -> Self {
        Self::with_clock(Arc::new(SystemClock::default()))
    }
}

impl MemoryIdempotencyStore {
    /// An empty store on the system clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store on `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Entry>>, StoreError> {
        self.entries
            .lock()
            .map_err(|_| StoreError::Unavailable("idempotency store lock poisoned".into()))
    }
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotencyStore {
    async fn claim(
        &self,
        key: &ScopedKey,
        fingerprint: &Fingerprint,
        token: &LockToken,
        lock_ttl: Duration,
    ) -> Result<Claim, StoreError> {
        let now = self.clock.elapsed();
        let mut entries = self.lock()?;
        if entries.len() % 1024 == 1023 {
            entries.retain(|_, e| e.expires > now);
        }
        let id = key.storage_id();
        if let Some(entry) = entries.get(&id)
            && entry.expires > now
        {
            if entry.fingerprint != *fingerprint {
                return Ok(Claim::Mismatch);
            }
            return Ok(match &entry.slot {
                Slot::InFlight { .. } => Claim::InFlight,
                Slot::Done { response } => Claim::Completed(response.clone()),
            });
        }
        entries.insert(
            id,
            Entry {
                fingerprint: *fingerprint,
                slot: Slot::InFlight {
                    token: token.clone(),
                },
                expires: now.saturating_add(lock_ttl),
            },
        );
        Ok(Claim::Acquired)
    }

    async fn complete(
        &self,
        key: &ScopedKey,
        token: &LockToken,
        response: &StoredResponse,
        retention: Duration,
    ) -> Result<bool, StoreError> {
        let now = self.clock.elapsed();
        let mut entries = self.lock()?;
        match entries.get_mut(&key.storage_id()) {
            Some(entry)
                if entry.expires > now
                    && matches!(&entry.slot, Slot::InFlight { token: t } if t == token) =>
            {
                entry.slot = Slot::Done {
                    response: response.clone(),
                };
                entry.expires = now.saturating_add(retention);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, key: &ScopedKey, token: &LockToken) -> Result<bool, StoreError> {
        let now = self.clock.elapsed();
        let mut entries = self.lock()?;
        let id = key.storage_id();
        let held = entries.get(&id).is_some_and(|entry| {
            entry.expires > now && matches!(&entry.slot, Slot::InFlight { token: t } if t == token)
        });
        if held {
            entries.remove(&id);
        }
        Ok(held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_grammar() {
        assert!(IdempotencyKey::parse("abcdefgh").is_ok());
        assert!(IdempotencyKey::parse(&"a".repeat(64)).is_ok());
        assert!(IdempotencyKey::parse("A-b_9-xyZ").is_ok());
        assert_eq!(
            IdempotencyKey::parse("abcdefg"),
            Err(KeyRejection::TooShort)
        );
        assert_eq!(
            IdempotencyKey::parse(&"a".repeat(65)),
            Err(KeyRejection::TooLong)
        );
        assert_eq!(
            IdempotencyKey::parse("abcd efgh"),
            Err(KeyRejection::Character)
        );
        assert_eq!(
            IdempotencyKey::parse("abcdéfgh"),
            Err(KeyRejection::Character)
        );
        assert_eq!(
            IdempotencyKey::from_header_value("\"abcdefgh\"")
                .unwrap()
                .as_str(),
            "abcdefgh"
        );
        assert_eq!(
            IdempotencyKey::from_header_value("\"abcdefgh"),
            Err(KeyRejection::Syntax)
        );
        assert_eq!(
            IdempotencyKey::from_header_value("abcdefgh\""),
            Err(KeyRejection::Syntax)
        );
        assert_eq!(
            IdempotencyKey::from_header_value("\"abc\"defgh\""),
            Err(KeyRejection::Character)
        );
    }

    #[test]
    fn header_wins_over_body_and_body_is_a_fallback() {
        let body = br#"{"idempotency_key":"from-body-123","amount":1}"#;
        let mut headers = HeaderMap::new();
        assert_eq!(
            extract_key(&headers, body).unwrap().unwrap().as_str(),
            "from-body-123"
        );
        headers.insert(
            IDEMPOTENCY_KEY_HEADER,
            HeaderValue::from_static("from-header"),
        );
        assert_eq!(
            extract_key(&headers, body).unwrap().unwrap().as_str(),
            "from-header"
        );
        headers.append(
            IDEMPOTENCY_KEY_HEADER,
            HeaderValue::from_static("another-1"),
        );
        assert!(matches!(
            extract_key(&headers, body),
            Err(IdempotencyError::InvalidKey {
                reason: KeyRejection::Repeated
            })
        ));
        let empty = HeaderMap::new();
        assert_eq!(extract_key(&empty, b"not json").unwrap(), None);
        assert_eq!(extract_key(&empty, br#"{"a":1}"#).unwrap(), None);
        assert_eq!(
            extract_key(&empty, br#"{"idempotency_key":null}"#).unwrap(),
            None
        );
        assert!(matches!(
            extract_key(&empty, br#"{"idempotency_key":12345678}"#),
            Err(IdempotencyError::InvalidKey {
                reason: KeyRejection::NotAString
            })
        ));
        assert!(matches!(
            extract_key(&empty, br#"{"idempotency_key":"short"}"#),
            Err(IdempotencyError::InvalidKey {
                reason: KeyRejection::TooShort
            })
        ));
    }

    #[test]
    fn scopes_separate_keys() {
        let key = IdempotencyKey::parse("abcdefgh").unwrap();
        let a = ScopedKey {
            scope: Scope::new("a:b", "POST", "/x"),
            key: key.clone(),
        };
        let b = ScopedKey {
            scope: Scope::new("a", "b:POST", "/x"),
            key: key.clone(),
        };
        let c = ScopedKey {
            scope: Scope::new("a:b", "PUT", "/x"),
            key,
        };
        assert_ne!(a.storage_id(), b.storage_id());
        assert_ne!(a.storage_id(), c.storage_id());
        assert_eq!(a.storage_id(), a.clone().storage_id());
    }

    #[test]
    fn dispositions() {
        for s in [200, 201, 204, 302, 404, 409, 422] {
            assert_eq!(Disposition::for_status(s), Disposition::Store, "{s}");
        }
        for s in [100, 400, 401, 403, 413, 415, 429, 500, 502, 503, 504] {
            assert_eq!(Disposition::for_status(s), Disposition::Release, "{s}");
        }
    }

    #[test]
    fn stored_response_round_trips_bytes() {
        let r = StoredResponse {
            status: 201,
            headers: vec![("content-type".into(), b"application/json".to_vec())],
            body: vec![0, 255, 10, 13, b'{'],
        };
        assert_eq!(StoredResponse::decode(&r.encode()).unwrap(), r);
        let http = r.to_http();
        assert_eq!(http.status(), 201);
        assert_eq!(http.body(), &r.body);
        assert_eq!(http.headers()[IDEMPOTENT_REPLAYED_HEADER], "true");
        assert_eq!(http.headers()["content-type"], "application/json");
        assert!(StoredResponse::decode(b"{}").is_err());
    }
}
