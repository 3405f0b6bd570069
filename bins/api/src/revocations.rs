//! Carries access-token revocations (logout, "log out everywhere", role changes, disabled
//! accounts) between api replicas over Redis pub/sub, so that each replica's
//! [`CachedSessionStore`] refuses a revoked token at once, not only when its cached answer
//! expires (`HAVEN_AUTH_CACHE_MS`, at most 1 s).
//!
//! Each replica publishes its revocations on `<prefix>auth:revocations` and applies the
//! others'. Pub/sub delivers at most once to those listening: a replica disconnected from
//! Redis misses messages, and its cache's short lifetime bounds how long it can be wrong. The
//! subscriber reconnects with a back-off of up to 5 s, and drops every cached answer when it
//! (re)subscribes, as it may have missed revocations meanwhile.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use haven_auth::session::{CachedSessionStore, Revocation, RevocationFeed};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How long a publish may take before it is given up (the store is the truth; the other
/// replicas' caches expire soon anyway).
const PUBLISH_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    origin: Uuid,
    revocation: Revocation,
}

/// This replica's side of the channel.
pub struct RedisRevocationFeed {
    redis: deadpool_redis::Pool,
    channel: String,
    origin: Uuid,
}

impl std::fmt::Debug for RedisRevocationFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRevocationFeed")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl RedisRevocationFeed {
    /// Publishes through `redis` on `channel`, sets itself as `cache`'s feed, and spawns the
    /// subscriber that applies the other replicas' revocations to `cache` (it ends when the
    /// cache is dropped). Call on a Tokio runtime.
    pub fn start(
        redis: deadpool_redis::Pool,
        redis_url: &str,
        channel: String,
        cache: &Arc<CachedSessionStore>,
    ) -> anyhow::Result<()> {
        let client = deadpool_redis::redis::Client::open(redis_url)?;
        let origin = Uuid::new_v4();
        tokio::spawn(crate::pubsub::subscribe(
            client,
            channel.clone(),
            "access-token revocations",
            Arc::downgrade(cache),
            // what was missed while unsubscribed is unknown: ask the store again
            CachedSessionStore::forget_allowed,
            move |cache, payload| match serde_json::from_slice::<Wire>(payload) {
                Ok(wire) if wire.origin != origin => cache.apply(&wire.revocation),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "an unreadable revocation message was ignored")
                }
            },
        ));
        cache.set_feed(Arc::new(Self {
            redis,
            channel,
            origin,
        }));
        Ok(())
    }
}

#[async_trait]
impl RevocationFeed for RedisRevocationFeed {
    async fn publish(&self, revocation: &Revocation) {
        let wire = Wire {
            origin: self.origin,
            revocation: revocation.clone(),
        };
        let Ok(payload) = serde_json::to_string(&wire) else {
            return;
        };
        let publish = crate::pubsub::publish(&self.redis, &self.channel, payload);
        match tokio::time::timeout(PUBLISH_TIMEOUT, publish).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!(
                %error,
                "a revocation was not published: other replicas refuse the token when their cached answer expires"
            ),
            Err(_) => tracing::warn!(
                "publishing a revocation timed out: other replicas refuse the token when their cached answer expires"
            ),
        }
    }
}

/// What a request needs to know of the user behind an access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserFacts {
    /// The user's current role.
    pub role: haven_db::Role,
    /// Whether the account is disabled.
    pub disabled: bool,
}

/// The users' role and disabled flag, remembered for the same short time as the access-token
/// answers and forgotten at once when a revocation concerns the user (a role change or a
/// disabled account revokes the user's tokens, here or on another replica).
pub struct CachedUsers {
    repo: haven_db::UserRepo,
    ttl: Duration,
    capacity: usize,
    entries: std::sync::Mutex<Entries>,
}

/// (generation, user → (facts, fresh until)); the generation is bumped by every forget, so
/// that an answer read before a revocation is not remembered after it.
type Entries = (
    u64,
    std::collections::HashMap<Uuid, (UserFacts, std::time::Instant)>,
);

impl std::fmt::Debug for CachedUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedUsers")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl CachedUsers {
    /// Over `repo`, remembering at most `capacity` users for `ttl` each.
    pub fn new(repo: haven_db::UserRepo, ttl: Duration, capacity: usize) -> Self {
        Self {
            repo,
            ttl,
            capacity: capacity.max(1),
            entries: std::sync::Mutex::new((0, std::collections::HashMap::new())),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The user's facts, from memory when fresh; `None` for an unknown user.
    pub async fn get(&self, id: Uuid) -> haven_db::Result<Option<UserFacts>> {
        let generation = {
            let entries = self.entries();
            if let Some((facts, until)) = entries.1.get(&id)
                && *until > std::time::Instant::now()
            {
                return Ok(Some(*facts));
            }
            entries.0
        };
        let Some(user) = self.repo.get(id).await? else {
            return Ok(None);
        };
        let facts = UserFacts {
            role: user.role,
            disabled: user.disabled_at.is_some(),
        };
        let mut entries = self.entries();
        if entries.0 == generation {
            let now = std::time::Instant::now();
            if entries.1.len() >= self.capacity {
                entries.1.retain(|_, (_, until)| *until > now);
                if entries.1.len() >= self.capacity {
                    entries.1.clear();
                }
            }
            entries.1.insert(id, (facts, now + self.ttl));
        }
        Ok(Some(facts))
    }

    /// Forgets `id` (asked of the database on its next request).
    pub fn forget(&self, id: Uuid) {
        let mut entries = self.entries();
        entries.0 += 1;
        entries.1.remove(&id);
    }

    /// Forgets `id` whenever `revocations` applies a revocation of that user.
    pub fn follow(self: &Arc<Self>, revocations: &CachedSessionStore) {
        let users = Arc::downgrade(self);
        revocations.on_revocation(Box::new(move |revocation| {
            if let (Revocation::User { user_id, .. }, Some(users)) = (revocation, users.upgrade()) {
                users.forget(*user_id);
            }
        }));
    }
}
