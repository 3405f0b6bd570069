//! Group commit for concurrent calls on one account: while one script call for an account is
//! in flight, the calls that arrive for the same account queue up and go together in the next
//! script call, each still getting its own result.
//!
//! No background task: the caller that finds the account idle leads, runs one batch (the
//! queued requests, its own among them), hands every waiter its result, and passes the lead to
//! the oldest caller still waiting, if any. A leader whose future is dropped passes the lead
//! on from its drop guard; the requests of its lost batch get an error, as a lost reply would.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;

use futures::channel::oneshot;

enum Message<R> {
    Done(R),
    Lead,
}

enum Reply<R> {
    /// The current leader's own request: it takes its result from the batch.
    Own,
    /// A waiting caller.
    Remote(oneshot::Sender<Message<R>>),
    /// A caller that went away; its request still runs, nobody reads the result.
    Abandoned,
}

struct Waiter<Q, R> {
    request: Q,
    reply: Reply<R>,
}

struct Queue<Q, R> {
    waiting: Vec<Waiter<Q, R>>,
}

/// Batches concurrent requests per key; `R` is each request's own result.
pub(crate) struct Coalescer<K, Q, R> {
    queues: Mutex<HashMap<K, Queue<Q, R>>>,
}

impl<K, Q, R> Default for Coalescer<K, Q, R> {
    fn default() -> Self {
        Self {
            queues: Mutex::new(HashMap::new()),
        }
    }
}

/// Passes the lead on when the leader leaves, normally or not.
struct Lead<'a, K: Eq + Hash + Clone, Q, R> {
    coalescer: &'a Coalescer<K, Q, R>,
    key: K,
}

impl<K: Eq + Hash + Clone, Q, R> Drop for Lead<'_, K, Q, R> {
    fn drop(&mut self) {
        self.coalescer.hand_off(&self.key);
    }
}

impl<K: Eq + Hash + Clone, Q, R> Coalescer<K, Q, R> {
    /// Runs `request` for `key` in the next batch and returns its result. `run` executes one
    /// batch and returns one result per request, in order; `lost` makes the result of a request
    /// whose batch never answered (the leader was dropped, or `run` returned too few results).
    pub(crate) async fn submit<F, Fut>(&self, key: K, request: Q, run: F, lost: fn() -> R) -> R
    where
        F: Fn(Vec<Q>) -> Fut,
        Fut: Future<Output = Vec<R>>,
    {
        let (tx, rx) = oneshot::channel();
        let leading = {
            let mut queues = self.lock();
            match queues.get_mut(&key) {
                Some(queue) => {
                    queue.waiting.push(Waiter {
                        request,
                        reply: Reply::Remote(tx),
                    });
                    false
                }
                None => {
                    queues.insert(
                        key.clone(),
                        Queue {
                            waiting: vec![Waiter {
                                request,
                                reply: Reply::Own,
                            }],
                        },
                    );
                    true
                }
            }
        };
        if !leading {
            match rx.await {
                Ok(Message::Done(result)) => return result,
                Ok(Message::Lead) => {}
                Err(_) => return lost(),
            }
        }
        let guard = Lead {
            coalescer: self,
            key: key.clone(),
        };
        let batch = {
            let mut queues = self.lock();
            queues
                .get_mut(&key)
                .map(|queue| std::mem::take(&mut queue.waiting))
                .unwrap_or_default()
        };
        let (requests, replies): (Vec<Q>, Vec<_>) =
            batch.into_iter().map(|w| (w.request, w.reply)).unzip();
        let mut results = run(requests).await.into_iter();
        let mut own = None;
        for reply in replies {
            let result = results.next().unwrap_or_else(lost);
            match reply {
                Reply::Remote(tx) => {
                    let _ = tx.send(Message::Done(result));
                }
                Reply::Own => own = Some(result),
                Reply::Abandoned => {}
            }
        }
        drop(guard);
        own.unwrap_or_else(lost)
    }

    /// Gives the lead to the oldest live waiter, or marks the key idle.
    fn hand_off(&self, key: &K) {
        let mut queues = self.lock();
        let Some(queue) = queues.get_mut(key) else {
            return;
        };
        for waiter in &mut queue.waiting {
            if let Reply::Remote(tx) = std::mem::replace(&mut waiter.reply, Reply::Own)
                && tx.send(Message::Lead).is_ok()
            {
                return;
            }
            // That caller is gone (or the entry was already abandoned).
            waiter.reply = Reply::Abandoned;
        }
        // Only abandoned requests are left: nobody would read their results. Go idle.
        queue.waiting.clear();
        if queue.waiting.is_empty() {
            queues.remove(key);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Queue<Q, R>>> {
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Pending once (waking itself), then ready: lets the other callers queue up.
    async fn yield_once() {
        let mut yielded = false;
        std::future::poll_fn(|cx| {
            if yielded {
                std::task::Poll::Ready(())
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        })
        .await;
    }

    #[test]
    fn concurrent_requests_share_batches_and_each_gets_its_own_result() {
        let coalescer: Arc<Coalescer<u8, u32, u32>> = Arc::default();
        let batches = Arc::new(AtomicUsize::new(0));
        let futures = (0..50u32).map(|i| {
            let (coalescer, batches) = (coalescer.clone(), batches.clone());
            async move {
                coalescer
                    .submit(
                        1,
                        i,
                        |requests: Vec<u32>| {
                            batches.fetch_add(1, Ordering::SeqCst);
                            async move {
                                // In flight for a moment, as a Redis call would be.
                                yield_once().await;
                                requests.into_iter().map(|r| r * 10).collect()
                            }
                        },
                        || u32::MAX,
                    )
                    .await
            }
        });
        let results = futures::executor::block_on(futures::future::join_all(futures));
        assert_eq!(results, (0..50).map(|i| i * 10).collect::<Vec<_>>());
        assert!(batches.load(Ordering::SeqCst) < 50, "requests were batched");
        assert!(coalescer.lock().is_empty(), "the key went idle");
    }

    #[test]
    fn a_short_batch_answers_the_rest_as_lost() {
        let coalescer: Coalescer<u8, u32, u32> = Coalescer::default();
        let got =
            futures::executor::block_on(coalescer.submit(1, 7, |_| async { Vec::new() }, || 0));
        assert_eq!(got, 0);
        assert!(coalescer.lock().is_empty());
    }

    #[test]
    fn a_dropped_leader_passes_the_lead_on() {
        let coalescer: Arc<Coalescer<u8, u32, u32>> = Arc::default();
        futures::executor::block_on(async {
            // A leader that never finishes its batch, polled once and dropped.
            let stuck = coalescer.submit(1, 1, |_| futures::future::pending(), || 0);
            let mut stuck = Box::pin(stuck);
            assert!(futures::poll!(stuck.as_mut()).is_pending());
            // A second caller queues behind it…
            let second = coalescer.submit(1, 2, |r: Vec<u32>| async move { r }, || 0);
            let mut second = Box::pin(second);
            assert!(futures::poll!(second.as_mut()).is_pending());
            // …and leads once the first is dropped.
            drop(stuck);
            assert_eq!(second.await, 2);
        });
        assert!(coalescer.lock().is_empty());
    }
}
