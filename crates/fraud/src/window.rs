//! Event-time windows, de-duplication marks and cooldowns: the state rules keep between
//! events.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;

/// A failure of a state store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend could not be reached or refused the operation.
    #[error("state store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The backend answered something this crate did not write.
    #[error("state store returned unexpected data for key {key}")]
    Corrupt {
        /// The key concerned.
        key: String,
    },
}

/// One entry of a window: event time in milliseconds, the event id and a value (an amount in
/// `10^-18` units, a gas price in wei, packed counts, or 0 when only counting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowEntry {
    /// Event time, milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// The event id (unique within the window).
    pub id: String,
    /// The value carried.
    pub value: u128,
}

/// What [`WindowStore::record`] should read back after inserting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowRead {
    /// Only the number of entries in the window.
    Count,
    /// The number, and up to `limit` entries of the window, newest first.
    Entries {
        /// The most entries returned.
        limit: usize,
    },
}

/// The state of a window right after an insert.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WindowSnapshot {
    /// The newest event time in the window *before* the insert: the window's watermark,
    /// against which lateness is judged.
    pub previous_max_ts_ms: Option<i64>,
    /// Entries in the window read (see [`WindowStore::record`]), the new one included.
    pub count: u64,
    /// With [`WindowRead::Entries`]: the newest `limit` of those, newest first.
    pub entries: Vec<WindowEntry>,
}

/// Where rules keep their state.
///
/// **Invariants:** every operation is atomic on its key (one Lua script in Redis, one lock in
/// memory), so concurrent evaluators on several processes see consistent counts;
/// [`mark_seen`](WindowStore::mark_seen) and [`try_cooldown`](WindowStore::try_cooldown)
/// return `true` to exactly one of any number of concurrent callers for the same key.
#[async_trait]
pub trait WindowStore: Send + Sync {
    /// Inserts `entry` into the window at `key`, drops entries at or before the newest event
    /// time minus `retain_ms`, and reads the window `(end - window_ms, end]`, where `end` is
    /// [`window_end`]`(entry.ts_ms, newest, window_ms)`: the newest event time when the entry
    /// is less than one window behind it, else the entry's own time.
    async fn record(
        &self,
        key: &str,
        entry: WindowEntry,
        window_ms: i64,
        retain_ms: i64,
        read: WindowRead,
    ) -> Result<WindowSnapshot, StoreError>;

    /// Marks `key` as seen; `true` if it was not seen before (or its mark expired after
    /// `ttl`, wall clock; `None` keeps it forever).
    async fn mark_seen(&self, key: &str, ttl: Option<Duration>) -> Result<bool, StoreError>;

    /// Takes the cooldown at `key` for an alert at event time `ts_ms`: `true` (and the
    /// cooldown now starts at `ts_ms`) unless an alert was taken within `cooldown_ms` of
    /// `ts_ms`, before or after it.
    async fn try_cooldown(
        &self,
        key: &str,
        ts_ms: i64,
        cooldown_ms: i64,
    ) -> Result<bool, StoreError>;
}

const SHARDS: usize = 32;

/// One window: (event time, event id) → value, ordered by time.
type Window = BTreeMap<(i64, String), u128>;

/// The in-memory [`WindowStore`]: sharded maps behind short, non-async locks.
#[derive(Debug)]
pub struct MemoryWindowStore {
    windows: Vec<Mutex<HashMap<String, Window>>>,
    seen: Vec<Mutex<SeenShard>>,
    cooldowns: Vec<Mutex<HashMap<String, i64>>>,
}

#[derive(Debug, Default)]
struct SeenShard {
    marks: HashMap<String, Option<Instant>>,
    sweep_at: usize,
}

impl Default for MemoryWindowStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryWindowStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            windows: (0..SHARDS).map(|_| Mutex::default()).collect(),
            seen: (0..SHARDS).map(|_| Mutex::default()).collect(),
            cooldowns: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    /// Number of entries held across all windows (for tests and metrics).
    pub fn entry_count(&self) -> usize {
        self.windows
            .iter()
            .map(|s| lock(s).values().map(BTreeMap::len).sum::<usize>())
            .sum()
    }
}

/// Where the window read by [`WindowStore::record`] ends: at the newest event time when the
/// new entry lies less than one window behind it (a slightly late event completes the
/// current window), otherwise at the entry's own time.
pub fn window_end(ts_ms: i64, newest_ms: i64, window_ms: i64) -> i64 {
    if newest_ms > ts_ms && newest_ms - ts_ms < window_ms {
        newest_ms
    } else {
        ts_ms
    }
}

fn shard(key: &str) -> usize {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    (h.finish() as usize) % SHARDS
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps are left consistent by every critical section, so a poisoned lock is usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[async_trait]
impl WindowStore for MemoryWindowStore {
    async fn record(
        &self,
        key: &str,
        entry: WindowEntry,
        window_ms: i64,
        retain_ms: i64,
        read: WindowRead,
    ) -> Result<WindowSnapshot, StoreError> {
        let mut shard = lock(&self.windows[shard(key)]);
        let window = shard.entry(key.to_owned()).or_default();
        let previous_max_ts_ms = window.keys().next_back().map(|(ts, _)| *ts);
        let ts = entry.ts_ms;
        window.insert((ts, entry.id), entry.value);
        let newest = previous_max_ts_ms.map_or(ts, |p| p.max(ts));
        let keep_from = newest.saturating_sub(retain_ms).saturating_add(1);
        if window
            .keys()
            .next()
            .is_some_and(|(first, _)| *first < keep_from)
        {
            *window = window.split_off(&(keep_from, String::new()));
        }
        let end = window_end(ts, newest, window_ms);
        let lower = (
            end.saturating_sub(window_ms).saturating_add(1),
            String::new(),
        );
        let in_window = window.range(lower..).take_while(|((t, _), _)| *t <= end);
        let mut snapshot = WindowSnapshot {
            previous_max_ts_ms,
            ..WindowSnapshot::default()
        };
        match read {
            WindowRead::Count => snapshot.count = in_window.count() as u64,
            WindowRead::Entries { limit } => {
                let all: Vec<_> = in_window.collect();
                snapshot.count = all.len() as u64;
                snapshot.entries = all
                    .into_iter()
                    .rev()
                    .take(limit)
                    .map(|((t, id), v)| WindowEntry {
                        ts_ms: *t,
                        id: id.clone(),
                        value: *v,
                    })
                    .collect();
            }
        }
        Ok(snapshot)
    }

    async fn mark_seen(&self, key: &str, ttl: Option<Duration>) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut shard = lock(&self.seen[shard(key)]);
        if shard.marks.len() >= shard.sweep_at {
            shard
                .marks
                .retain(|_, expiry| expiry.is_none_or(|e| e > now));
            shard.sweep_at = (shard.marks.len() * 2).max(1024);
        }
        let expiry = ttl.map(|t| now + t);
        match shard.marks.get_mut(key) {
            Some(existing) if existing.is_none_or(|e| e > now) => Ok(false),
            Some(existing) => {
                *existing = expiry;
                Ok(true)
            }
            None => {
                shard.marks.insert(key.to_owned(), expiry);
                Ok(true)
            }
        }
    }

    async fn try_cooldown(
        &self,
        key: &str,
        ts_ms: i64,
        cooldown_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut shard = lock(&self.cooldowns[shard(key)]);
        match shard.get(key) {
            Some(last) if ts_ms.abs_diff(*last) < cooldown_ms.unsigned_abs() => Ok(false),
            _ => {
                shard.insert(key.to_owned(), ts_ms);
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ts_ms: i64, id: &str, value: u128) -> WindowEntry {
        WindowEntry {
            ts_ms,
            id: id.into(),
            value,
        }
    }

    #[tokio::test]
    async fn window_is_half_open_and_trims_old_entries() {
        let store = MemoryWindowStore::new();
        let r = |e| store.record("k", e, 100, 150, WindowRead::Count);
        assert_eq!(r(entry(1000, "a", 0)).await.unwrap().count, 1);
        let s = r(entry(1100, "b", 0)).await.unwrap();
        assert_eq!(s.count, 1, "an entry exactly one window old is outside");
        assert_eq!(s.previous_max_ts_ms, Some(1000));
        assert_eq!(r(entry(1099, "c", 0)).await.unwrap().count, 2);
        r(entry(1300, "d", 0)).await.unwrap();
        assert_eq!(
            store.entry_count(),
            1,
            "entries older than retain_ms are dropped"
        );
    }
}
