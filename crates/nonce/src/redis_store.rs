use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_redis::Pool;
use redis::Script;
use redis::aio::MultiplexedConnection;

use crate::coalesce::Coalescer;
use crate::{
    Error, Lease, LeaseId, LeaseInfo, NonceKey, NonceStatus, NonceStore, ResetOutcome, Result,
    STATUS_LIST_LIMIT, SyncOutcome,
};

const BACKEND: &str = "redis";

/// Lua numbers are doubles: nonces and times must stay exactly representable.
const MAX_EXACT: u64 = 1 << 53;

/// Leases longer than this are clamped (ten years; Redis scores are doubles).
const MAX_TTL_MS: u64 = 10 * 365 * 24 * 3600 * 1000;

/// A [`NonceStore`] in Redis, shared by every process that points at the same server and
/// prefix. Each operation is one Lua script, so one round trip and one atomic step: no
/// lock/GET/SET/unlock sequence.
///
/// Group commit: while a `reserve` (or `commit`) script call for an account is in flight, the
/// calls for the same account that arrive in this process wait and then go together in the
/// next script call, each getting its own lease (or outcome). An uncontended call goes out at
/// once; under load, one script run serves many callers, which is what lets 64 concurrent
/// clients reserve and commit about as fast as Redis answers bare `INCR`s
/// (docs/BENCHMARKS.md).
///
/// The keys of one account are `<prefix>nonce:{<chain_id>:0x<address>}:<part>`; the braces
/// are a cluster hash tag, so a script only ever touches one slot. Lease expiry uses the
/// server's `TIME`, so clients with skewed clocks agree.
///
/// A call that fails with [`Error::StoreUnavailable`] after the request was sent (e.g. the
/// client's response timeout) may still have been applied: a lost `reserve` reply leaves a
/// lease nobody holds, which expires and is reclaimed; `commit` and `release` are idempotent
/// and can simply be retried.
///
/// Durability is Redis's: run it with AOF (`appendfsync everysec` or `always`) if a lost
/// write must not hand out a nonce twice. A wiped server reports every account as never
/// synced ([`Lease::chain_synced`] is `false`), which [`NonceManager`](crate::NonceManager)
/// answers by syncing with the chain first.
#[derive(Clone)]
pub struct RedisNonceStore {
    pool: Pool,
    prefix: String,
    scripts: std::sync::Arc<Scripts>,
    shared: std::sync::Arc<std::sync::Mutex<Option<MultiplexedConnection>>>,
    reserves: std::sync::Arc<Coalescer<NonceKey, (u64, LeaseId), Result<Reserved>>>,
    commits: std::sync::Arc<Coalescer<NonceKey, Lease, Result<()>>>,
}

/// One nonce a batched reserve handed out.
struct Reserved {
    nonce: u64,
    expires_ms: i64,
    leased_ms: i64,
    synced: bool,
}

/// The cause given to every caller of a batch that failed as a whole.
#[derive(Debug)]
struct BatchFailed(String);

impl std::fmt::Display for BatchFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BatchFailed {}

/// The same failure for another caller of the batch.
fn replicate(err: &Error) -> Error {
    match err {
        Error::CorruptState {
            backend,
            key,
            detail,
        } => Error::CorruptState {
            backend,
            key: *key,
            detail,
        },
        other => unavailable(BatchFailed(other.to_string())),
    }
}

fn batch_lost<T>() -> Result<T> {
    Err(unavailable(BatchFailed(
        "the call carrying this request was cancelled before Redis answered".into(),
    )))
}

struct Scripts {
    reserve: Script,
    commit: Script,
    release: Script,
    sync: Script,
    reset: Script,
    status: Script,
}

impl std::fmt::Debug for RedisNonceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisNonceStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

struct Keys {
    state: String,
    free: String,
    leases: String,
    committed: String,
}

impl RedisNonceStore {
    /// A store on `pool` whose keys all start with `prefix` (e.g. `"haven:"`, or a test's
    /// random prefix).
    ///
    /// The store takes one connection from the pool and multiplexes every call over it (Redis
    /// pipelines concurrent requests on one socket, and the pool's per-checkout health check
    /// would double each round trip); after a failure it takes a fresh one.
    pub fn new(pool: Pool, prefix: impl Into<String>) -> Self {
        Self {
            pool,
            shared: std::sync::Arc::default(),
            reserves: std::sync::Arc::default(),
            commits: std::sync::Arc::default(),
            prefix: prefix.into(),
            scripts: std::sync::Arc::new(Scripts {
                reserve: Script::new(include_str!("lua/reserve.lua")),
                commit: Script::new(include_str!("lua/commit.lua")),
                release: Script::new(include_str!("lua/release.lua")),
                sync: Script::new(include_str!("lua/sync.lua")),
                reset: Script::new(include_str!("lua/reset.lua")),
                status: Script::new(include_str!("lua/status.lua")),
            }),
        }
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The Redis key holding `part` of `key`'s state, for operators and tests: `state` (hash:
    /// `next`, `floor`, `synced_ms`), `free` (sorted set of free nonces), `leases` (sorted set
    /// of `nonce:lease_id:leased_ms` members scored by expiry in ms) and `committed` (hash
    /// nonce → lease id, for commits the chain floor has not passed yet).
    pub fn redis_key(&self, key: &NonceKey, part: &str) -> String {
        format!("{}nonce:{{{key}}}:{part}", self.prefix)
    }

    fn keys(&self, key: &NonceKey) -> Keys {
        // One formatting of the account (its address is hex-encoded) for all four names.
        let base = self.redis_key(key, "");
        let part = |name: &str| {
            let mut full = String::with_capacity(base.len() + name.len());
            full.push_str(&base);
            full.push_str(name);
            full
        };
        Keys {
            state: part("state"),
            free: part("free"),
            leases: part("leases"),
            committed: part("committed"),
        }
    }

    async fn connection(&self) -> Result<MultiplexedConnection> {
        if let Some(conn) = self.shared.lock().ok().and_then(|shared| shared.clone()) {
            return Ok(conn);
        }
        let conn = deadpool_redis::Connection::take(self.pool.get().await.map_err(unavailable)?);
        if let Ok(mut shared) = self.shared.lock() {
            *shared = Some(conn.clone());
        }
        Ok(conn)
    }

    /// One reserve script call for every queued caller of `key`, in order.
    async fn reserve_batch(
        &self,
        key: &NonceKey,
        batch: Vec<(u64, LeaseId)>,
    ) -> Vec<Result<Reserved>> {
        let count = batch.len();
        let outcome = async {
            let keys = self.keys(key);
            let mut conn = self.connection().await?;
            let mut call = self.scripts.reserve.prepare_invoke();
            call.key(&keys.state)
                .key(&keys.free)
                .key(&keys.leases)
                .arg(count);
            for (ttl_ms, lease_id) in &batch {
                call.arg(*ttl_ms).arg(lease_id.to_string());
            }
            let reply: Vec<String> = call
                .invoke_async(&mut conn)
                .await
                .map_err(|e| self.failed(e))?;
            if reply.len() != 2 + 2 * count {
                return Err(corrupt(key, "reserve reply has the wrong length"));
            }
            let leased_ms: i64 = reply[0]
                .parse()
                .map_err(|_| corrupt(key, "lease time is not a number"))?;
            let synced = reply[1] == "1";
            reply[2..]
                .chunks(2)
                .map(|pair| {
                    Ok(Reserved {
                        nonce: parse_u64(key, &pair[0], "nonce is not a number")?,
                        expires_ms: pair[1]
                            .parse()
                            .map_err(|_| corrupt(key, "lease expiry is not a number"))?,
                        leased_ms,
                        synced,
                    })
                })
                .collect::<Result<Vec<_>>>()
        }
        .await;
        match outcome {
            Ok(reserved) => reserved.into_iter().map(Ok).collect(),
            Err(err) => (0..count).map(|_| Err(replicate(&err))).collect(),
        }
    }

    /// One commit script call for every queued lease of one account, in order.
    async fn commit_batch(&self, batch: Vec<Lease>) -> Vec<Result<()>> {
        let Some(first) = batch.first() else {
            return Vec::new();
        };
        let key = first.key;
        let outcome = async {
            let keys = self.keys(&key);
            let mut conn = self.connection().await?;
            let mut call = self.scripts.commit.prepare_invoke();
            call.key(&keys.leases).key(&keys.committed).arg(batch.len());
            for lease in &batch {
                call.arg(member(lease))
                    .arg(lease.nonce)
                    .arg(lease.lease_id.to_string());
            }
            let reply: Vec<i64> = call
                .invoke_async(&mut conn)
                .await
                .map_err(|e| self.failed(e))?;
            if reply.len() != batch.len() {
                return Err(corrupt(&key, "commit reply has the wrong length"));
            }
            Ok(reply)
        }
        .await;
        match outcome {
            Ok(reply) => batch
                .iter()
                .zip(reply)
                .map(|(lease, committed)| {
                    if committed == 1 {
                        Ok(())
                    } else {
                        Err(Error::LeaseLost {
                            key: lease.key,
                            nonce: lease.nonce,
                            lease_id: lease.lease_id,
                        })
                    }
                })
                .collect(),
            Err(err) => batch.iter().map(|_| Err(replicate(&err))).collect(),
        }
    }

    /// Maps a failed call to [`Error::StoreUnavailable`] and drops the shared connection, so
    /// the next call reconnects.
    fn failed(&self, source: redis::RedisError) -> Error {
        if let Ok(mut shared) = self.shared.lock() {
            *shared = None;
        }
        unavailable(source)
    }
}

fn unavailable(source: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::StoreUnavailable {
        backend: BACKEND,
        source: Box::new(source),
    }
}

/// The leases-set member a lease owns: `nonce:lease_id:leased_ms`.
fn member(lease: &Lease) -> String {
    format!(
        "{}:{}:{}",
        lease.nonce,
        lease.lease_id,
        lease.leased_at.timestamp_millis()
    )
}

fn corrupt(key: &NonceKey, detail: &'static str) -> Error {
    Error::CorruptState {
        backend: BACKEND,
        key: *key,
        detail,
    }
}

fn exact(key: &NonceKey, nonce: u64) -> Result<u64> {
    if nonce < MAX_EXACT {
        Ok(nonce)
    } else {
        Err(Error::NonceOutOfRange {
            key: *key,
            nonce,
            max: MAX_EXACT - 1,
        })
    }
}

fn from_millis(key: &NonceKey, ms: i64) -> Result<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_millis(ms).ok_or_else(|| corrupt(key, "time out of range"))
}

fn parse_u64(key: &NonceKey, raw: &str, what: &'static str) -> Result<u64> {
    raw.parse().map_err(|_| corrupt(key, what))
}

#[async_trait]
impl NonceStore for RedisNonceStore {
    async fn reserve(&self, key: &NonceKey, lease_ttl: Duration) -> Result<Lease> {
        let ttl_ms = u64::try_from(lease_ttl.as_millis())
            .unwrap_or(MAX_TTL_MS)
            .min(MAX_TTL_MS);
        let lease_id = LeaseId::new();
        let reserved = self
            .reserves
            .submit(
                *key,
                (ttl_ms, lease_id),
                |batch| self.reserve_batch(key, batch),
                batch_lost,
            )
            .await?;
        Ok(Lease {
            key: *key,
            nonce: reserved.nonce,
            lease_id,
            leased_at: from_millis(key, reserved.leased_ms)?,
            expires_at: from_millis(key, reserved.expires_ms)?,
            chain_synced: reserved.synced,
        })
    }

    async fn commit(&self, lease: &Lease) -> Result<()> {
        self.commits
            .submit(
                lease.key,
                lease.clone(),
                |batch| self.commit_batch(batch),
                batch_lost,
            )
            .await
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let keys = self.keys(&lease.key);
        let mut conn = self.connection().await?;
        let outcome: i64 = self
            .scripts
            .release
            .key(&keys.state)
            .key(&keys.free)
            .key(&keys.leases)
            .key(&keys.committed)
            .arg(member(lease))
            .arg(lease.nonce)
            .arg(lease.lease_id.to_string())
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.failed(e))?;
        match outcome {
            2 => Err(Error::AlreadyCommitted {
                key: lease.key,
                nonce: lease.nonce,
            }),
            _ => Ok(()),
        }
    }

    async fn sync(&self, key: &NonceKey, chain_pending: u64) -> Result<SyncOutcome> {
        let chain_pending = exact(key, chain_pending)?;
        let keys = self.keys(key);
        let mut conn = self.connection().await?;
        let (previous_next, next, dropped_free): (u64, u64, u64) = self
            .scripts
            .sync
            .key(&keys.state)
            .key(&keys.free)
            .key(&keys.committed)
            .arg(chain_pending)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(SyncOutcome {
            previous_next,
            next,
            dropped_free: usize::try_from(dropped_free).unwrap_or(usize::MAX),
        })
    }

    async fn reset(&self, key: &NonceKey, chain_pending: u64, force: bool) -> Result<ResetOutcome> {
        let chain_pending = exact(key, chain_pending)?;
        let keys = self.keys(key);
        let mut conn = self.connection().await?;
        let (done, outstanding, previous_next, dropped): (i64, u64, u64, u64) = self
            .scripts
            .reset
            .key(&keys.state)
            .key(&keys.free)
            .key(&keys.leases)
            .key(&keys.committed)
            .arg(chain_pending)
            .arg(if force { "1" } else { "0" })
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.failed(e))?;
        if done != 1 {
            return Err(Error::LeasesOutstanding {
                key: *key,
                count: usize::try_from(outstanding).unwrap_or(usize::MAX),
            });
        }
        Ok(ResetOutcome {
            previous_next,
            next: chain_pending,
            dropped_leases: usize::try_from(dropped).unwrap_or(usize::MAX),
        })
    }

    async fn status(&self, key: &NonceKey) -> Result<NonceStatus> {
        let keys = self.keys(key);
        let mut conn = self.connection().await?;
        let (now_ms, state, free, leases, committed, free_count): (
            i64,
            Vec<String>,
            Vec<String>,
            Vec<String>,
            Vec<String>,
            u64,
        ) = self
            .scripts
            .status
            .key(&keys.state)
            .key(&keys.free)
            .key(&keys.leases)
            .key(&keys.committed)
            .arg(STATUS_LIST_LIMIT)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.failed(e))?;
        drop(conn);

        let now = from_millis(key, now_ms)?;
        let mut next = 0;
        let mut chain_floor = None;
        let mut last_sync = None;
        for pair in state.chunks(2) {
            let [field, value] = pair else {
                return Err(corrupt(key, "odd state hash reply"));
            };
            match field.as_str() {
                "next" => next = parse_u64(key, value, "next is not a number")?,
                "floor" => chain_floor = Some(parse_u64(key, value, "floor is not a number")?),
                "synced_ms" => {
                    let ms = value
                        .parse()
                        .map_err(|_| corrupt(key, "sync time is not a number"))?;
                    last_sync = Some(from_millis(key, ms)?);
                }
                _ => {}
            }
        }
        let free = free
            .iter()
            .map(|n| parse_u64(key, n, "free nonce is not a number"))
            .collect::<Result<Vec<_>>>()?;
        let mut lease_infos = Vec::with_capacity(leases.len() / 2);
        for pair in leases.chunks(2) {
            let [member, expires] = pair else {
                return Err(corrupt(key, "odd lease set reply"));
            };
            let mut parts = member.split(':');
            let (Some(nonce), Some(id), Some(leased), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(corrupt(key, "lease member is not nonce:id:leased"));
            };
            let leased_at = from_millis(
                key,
                leased
                    .parse()
                    .map_err(|_| corrupt(key, "lease time is not a number"))?,
            )?;
            let expires_at = from_millis(
                key,
                expires
                    .parse()
                    .map_err(|_| corrupt(key, "lease expiry is not a number"))?,
            )?;
            lease_infos.push(LeaseInfo {
                nonce: parse_u64(key, nonce, "leased nonce is not a number")?,
                lease_id: id
                    .parse()
                    .map_err(|_| corrupt(key, "lease id is not a uuid"))?,
                leased_at,
                expires_at,
                age: (now - leased_at).to_std().unwrap_or_default(),
                expired: expires_at <= now,
            });
        }
        lease_infos.sort_by_key(|l| l.nonce);
        let mut committed = committed
            .iter()
            .map(|n| parse_u64(key, n, "committed nonce is not a number"))
            .collect::<Result<Vec<_>>>()?;
        committed.sort_unstable();
        let committed_count = committed.len() as u64;
        committed.truncate(STATUS_LIST_LIMIT);
        Ok(NonceStatus {
            key: *key,
            next,
            chain_floor,
            last_sync,
            free,
            free_count,
            leases: lease_infos,
            committed,
            committed_count,
            observed_at: now,
        })
    }
}
