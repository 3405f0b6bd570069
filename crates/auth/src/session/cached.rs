//! Access-token checks answered from memory, with revocations pushed between replicas.
//!
//! Every authenticated request asks whether its access token was logged out (the deny-list)
//! or predates the user's "log out everywhere" (the not-before). [`CachedSessionStore`] sits
//! in front of the real store and answers from memory:
//!
//! - a token the store allowed is allowed again, without a round trip, for `ttl`;
//! - a revocation made through this process ([`SessionStore::deny_access_token`],
//!   [`SessionStore::revoke_all`]) is applied here at once and handed to the
//!   [`RevocationFeed`], which carries it to the other replicas; they [`apply`] it at once;
//! - a revocation the feed lost (a replica disconnected from it, a change made by another
//!   tool straight in the store) takes effect when the cached answer expires, at most `ttl`
//!   later.
//!
//! The store stays the truth: a token denied here is denied there too. Memory is bounded:
//! allowed tokens are kept at most `ttl` and at most `capacity` of them; revocations only
//! while a token they concern can still be valid (`access_ttl`).
//!
//! [`apply`]: CachedSessionStore::apply

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    Created, NewSession, Rotated, Session, SessionError, SessionPolicy, SessionStore, add,
};

/// A revocation of access tokens, as replicas tell each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Revocation {
    /// One access token was logged out, until it expires.
    Token {
        /// Its `jti`.
        jti: Uuid,
        /// Its `exp`.
        expires_at: DateTime<Utc>,
    },
    /// Every access token of the user issued in or before `not_before`'s second is refused
    /// ("log out everywhere", a role change, a disabled account).
    User {
        /// The user.
        user_id: Uuid,
        /// The not-before.
        not_before: DateTime<Utc>,
    },
}

/// Carries this process's revocations to the other replicas (Redis pub/sub in the api).
/// Delivery is best effort: what it loses, the cache's `ttl` catches up on.
#[async_trait]
pub trait RevocationFeed: Send + Sync {
    /// Tells the other replicas.
    async fn publish(&self, revocation: &Revocation);
}

/// A callback told of every revocation applied (this process's and the others'): the api
/// drops its cached copy of the user there.
pub type RevocationListener = Box<dyn Fn(&Revocation) + Send + Sync>;

#[derive(Default)]
struct State {
    /// jti → (user, allowed until).
    allowed: HashMap<Uuid, (Uuid, Instant)>,
    /// jti → its expiry.
    denied: HashMap<Uuid, DateTime<Utc>>,
    /// user → (not-before in seconds, remembered until).
    not_before: HashMap<Uuid, (i64, DateTime<Utc>)>,
    /// Bumped by every revocation: an answer of the store that started before a revocation
    /// is not cached after it.
    generation: u64,
}

/// A [`SessionStore`] that answers [`SessionStore::check_access_token`] from memory (see the
/// module documentation); every other call goes to the inner store.
pub struct CachedSessionStore {
    inner: Arc<dyn SessionStore>,
    ttl: Duration,
    access_ttl: Duration,
    capacity: usize,
    feed: Mutex<Option<Arc<dyn RevocationFeed>>>,
    listeners: Mutex<Vec<RevocationListener>>,
    state: Mutex<State>,
}

impl std::fmt::Debug for CachedSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedSessionStore")
            .field("ttl", &self.ttl)
            .field("access_ttl", &self.access_ttl)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl CachedSessionStore {
    /// In front of `inner`: allowed tokens are remembered for `ttl` (at most `capacity` of
    /// them); revocations for `access_ttl`, the longest an access token lives.
    pub fn new(
        inner: Arc<dyn SessionStore>,
        ttl: Duration,
        access_ttl: Duration,
        capacity: usize,
    ) -> Self {
        Self {
            inner,
            ttl,
            access_ttl,
            capacity: capacity.max(1),
            feed: Mutex::new(None),
            listeners: Mutex::new(Vec::new()),
            state: Mutex::new(State::default()),
        }
    }

    /// Sets the feed this process's revocations are published to.
    pub fn set_feed(&self, feed: Arc<dyn RevocationFeed>) {
        *lock(&self.feed) = Some(feed);
    }

    /// Adds a callback told of every revocation applied.
    pub fn on_revocation(&self, listener: RevocationListener) {
        lock(&self.listeners).push(listener);
    }

    /// Forgets every allowed token (each is asked of the store again): after a gap in the
    /// feed, when revocations may have been missed.
    pub fn forget_allowed(&self) {
        let mut state = lock(&self.state);
        state.generation += 1;
        state.allowed.clear();
    }

    /// How many allowed tokens are remembered (for tests and metrics).
    pub fn remembered(&self) -> usize {
        lock(&self.state).allowed.len()
    }

    /// Applies a revocation (this process's, or one another replica published): the
    /// tokens it concerns are refused from now on.
    pub fn apply(&self, revocation: &Revocation) {
        let now = Utc::now();
        {
            let mut state = lock(&self.state);
            state.generation += 1;
            match revocation {
                Revocation::Token { jti, expires_at } => {
                    state.allowed.remove(jti);
                    if *expires_at > now {
                        state.denied.insert(*jti, *expires_at);
                    }
                }
                Revocation::User {
                    user_id,
                    not_before,
                } => {
                    state.allowed.retain(|_, (user, _)| user != user_id);
                    let keep_until = add(*not_before, self.access_ttl);
                    let entry = state
                        .not_before
                        .entry(*user_id)
                        .or_insert((i64::MIN, keep_until));
                    if not_before.timestamp() >= entry.0 {
                        *entry = (not_before.timestamp(), keep_until);
                    }
                }
            }
            state.denied.retain(|_, expires| *expires > now);
            state.not_before.retain(|_, (_, until)| *until > now);
        }
        for listener in lock(&self.listeners).iter() {
            listener(revocation);
        }
    }

    /// Applies `revocation` here and publishes it to the other replicas: for a revocation
    /// written to the store by other means (a role change or a disabled account, written in
    /// the same transaction as the change).
    pub async fn announce(&self, revocation: Revocation) {
        self.apply(&revocation);
        let feed = lock(&self.feed).clone();
        if let Some(feed) = feed {
            feed.publish(&revocation).await;
        }
    }

    /// What memory says of this token.
    fn recall(&self, user_id: Uuid, jti: Uuid, issued_at: i64, now: DateTime<Utc>) -> Memory {
        let state = lock(&self.state);
        let revoked = state.denied.get(&jti).is_some_and(|e| *e > now)
            || state
                .not_before
                .get(&user_id)
                .is_some_and(|(nb, _)| issued_at <= *nb);
        if revoked {
            return Memory::Revoked;
        }
        match state.allowed.get(&jti) {
            Some((user, until)) if *user == user_id && *until > Instant::now() => Memory::Allowed,
            _ => Memory::Unknown {
                generation: state.generation,
            },
        }
    }
}

/// What [`CachedSessionStore`] remembers of a token.
enum Memory {
    /// Allowed by the store less than `ttl` ago.
    Allowed,
    /// Revoked (a revocation applied here).
    Revoked,
    /// Not known: ask the store, and remember its answer only if no revocation came in
    /// meanwhile (the generation is unchanged).
    Unknown { generation: u64 },
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[async_trait]
impl SessionStore for CachedSessionStore {
    async fn create(
        &self,
        new: NewSession,
        policy: &SessionPolicy,
        now: DateTime<Utc>,
    ) -> Result<Created, SessionError> {
        self.inner.create(new, policy, now).await
    }

    async fn rotate(
        &self,
        family_id: Uuid,
        presented_jti: Uuid,
        policy: &SessionPolicy,
        now: DateTime<Utc>,
    ) -> Result<Rotated, SessionError> {
        self.inner
            .rotate(family_id, presented_jti, policy, now)
            .await
    }

    async fn list(
        &self,
        user_id: Uuid,
        policy: &SessionPolicy,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, SessionError> {
        self.inner.list(user_id, policy, now).await
    }

    async fn revoke(
        &self,
        user_id: Uuid,
        family_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), SessionError> {
        self.inner.revoke(user_id, family_id, now).await
    }

    async fn revoke_all(&self, user_id: Uuid, now: DateTime<Utc>) -> Result<(), SessionError> {
        self.inner.revoke_all(user_id, now).await?;
        self.announce(Revocation::User {
            user_id,
            not_before: now,
        })
        .await;
        Ok(())
    }

    async fn not_before(&self, user_id: Uuid) -> Result<Option<DateTime<Utc>>, SessionError> {
        self.inner.not_before(user_id).await
    }

    async fn deny_access_token(
        &self,
        jti: Uuid,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), SessionError> {
        self.inner.deny_access_token(jti, expires_at, now).await?;
        self.announce(Revocation::Token { jti, expires_at }).await;
        Ok(())
    }

    async fn check_access_token(
        &self,
        user_id: Uuid,
        jti: Uuid,
        issued_at: i64,
        now: DateTime<Utc>,
    ) -> Result<(), SessionError> {
        let generation = match self.recall(user_id, jti, issued_at, now) {
            Memory::Allowed => return Ok(()),
            Memory::Revoked => return Err(SessionError::AccessTokenRevoked),
            Memory::Unknown { generation } => generation,
        };
        self.inner
            .check_access_token(user_id, jti, issued_at, now)
            .await?;
        let mut state = lock(&self.state);
        if state.generation == generation {
            if state.allowed.len() >= self.capacity {
                let at = Instant::now();
                state.allowed.retain(|_, (_, until)| *until > at);
                if state.allowed.len() >= self.capacity {
                    state.allowed.clear();
                }
            }
            state
                .allowed
                .insert(jti, (user_id, Instant::now() + self.ttl));
        }
        Ok(())
    }
}
