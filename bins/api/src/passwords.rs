//! The process-wide cap on password hashing.
//!
//! An argon2id hash with the OWASP parameters takes about 19 MiB and tens of milliseconds
//! of one core. Without a cap, a burst of logins (or a flood of wrong ones from many
//! addresses) runs them all at once: memory grows with the burst and every request slows
//! down. [`HashGate`] runs at most `concurrency` hashes at once (by default one per core) on
//! threads of its own, queues as many again, and refuses the rest at once with 503
//! `SERVICE_UNAVAILABLE` and `Retry-After`, before any work is done.
//!
//! `haven_password_hashes_in_flight` (gauge) shows the hashes running,
//! `haven_password_hashes_in_flight_peak` the most that ever ran at once in this process,
//! and `haven_password_hashes_refused_total` counts the refusals.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::ResponseError;
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use haven_auth::{HashMemory, PasswordError, Passwords, StoredHash};
use haven_core::{ErrorCode, Problem};
use secrecy::SecretString;

use crate::error::ApiError;

/// The `Retry-After` of a refusal, in seconds.
const RETRY_AFTER_SECS: u32 = 1;

/// Why a hash did not run or failed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every slot is taken and the queue is full or the wait ran out.
    #[error("too many password checks at once; retry shortly")]
    Busy,
    /// argon2 failed.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// The hashing thread dropped the job (it panicked).
    #[error("the password check was lost")]
    Lost,
}

impl From<HashError> for ApiError {
    fn from(err: HashError) -> Self {
        match err {
            HashError::Busy => ApiError::new(ErrorCode::ServiceUnavailable, err.to_string()),
            other => ApiError(Problem::internal(other)),
        }
    }
}

/// The answer to a [`HashError::Busy`]: 503 with `Retry-After`.
pub fn busy_response() -> actix_web::HttpResponse {
    let mut response = ApiError::from(HashError::Busy).error_response();
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    response
}

type Job = Box<dyn FnOnce(&mut HashMemory) + Send>;

/// argon2id behind a cap on concurrent hashes (see the module docs).
///
/// The hashes run on `concurrency` threads of the gate's own, each verifying in one reused
/// [`HashMemory`]: an argon2 check needs 19 MiB, and allocating and freeing that per check
/// leaves the allocator holding freed, fragmented blocks long after a burst (hundreds of MiB
/// for a few dozen checks). With its own threads and memory, the gate holds about
/// `concurrency` × 19 MiB, whatever the load.
#[derive(Debug, Clone)]
pub struct HashGate {
    passwords: Arc<Passwords>,
    jobs: std::sync::mpsc::SyncSender<Job>,
    in_flight: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    concurrency: usize,
}

impl HashGate {
    /// At most `concurrency` hashes at once (0: one per core), and as many again queued.
    pub fn new(passwords: Arc<Passwords>, concurrency: usize) -> Self {
        let concurrency = match concurrency {
            0 => std::thread::available_parallelism().map_or(2, usize::from),
            n => n,
        };
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(concurrency);
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for i in 0..concurrency {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || {
                    let mut memory = HashMemory::new();
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(poisoned) => poisoned.into_inner().recv(),
                        };
                        match job {
                            Ok(job) => job(&mut memory),
                            Err(_) => break, // every gate is gone
                        }
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "could not start a password hashing thread");
            }
        }
        Self {
            passwords,
            jobs,
            in_flight: Arc::new(AtomicUsize::new(0)),
            peak: Arc::new(AtomicUsize::new(0)),
            concurrency,
        }
    }

    /// How many hashes may run at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The most hashes that ran at once so far.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Acquire)
    }

    /// Checks `password` against `stored` (or does the same work against a dummy hash when
    /// there is no stored one, so unknown accounts cost what known ones do).
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        let passwords = self.passwords.clone();
        self.run(move |memory| match stored {
            Some(phc) => passwords.verify_in(&password, &StoredHash::from_phc(phc), memory),
            None => passwords.verify_dummy_in(&password, memory),
        })
        .await
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: SecretString) -> Result<StoredHash, HashError> {
        let passwords = self.passwords.clone();
        self.run(move |_| passwords.hash(&password)).await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut HashMemory) -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, HashError> {
        let (done, outcome) = tokio::sync::oneshot::channel();
        let in_flight = self.in_flight.clone();
        let peak = self.peak.clone();
        let job: Job = Box::new(move |memory| {
            let running = in_flight.fetch_add(1, Ordering::AcqRel) + 1;
            let most = peak.fetch_max(running, Ordering::AcqRel).max(running);
            metrics::gauge!(crate::metrics::PASSWORD_HASHES_IN_FLIGHT).set(running as f64);
            metrics::gauge!(crate::metrics::PASSWORD_HASHES_PEAK).set(most as f64);
            let result = work(memory);
            let left = in_flight.fetch_sub(1, Ordering::AcqRel) - 1;
            metrics::gauge!(crate::metrics::PASSWORD_HASHES_IN_FLIGHT).set(left as f64);
            // The requester may have gone (client disconnected): the hash still counted.
            let _ = done.send(result);
        });
        if self.jobs.try_send(job).is_err() {
            return Err(refused());
        }
        match outcome.await {
            Ok(result) => Ok(result?),
            Err(_) => Err(HashError::Lost),
        }
    }
}

fn refused() -> HashError {
    metrics::counter!(crate::metrics::PASSWORD_HASHES_REFUSED).increment(1);
    HashError::Busy
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Beyond the running and waiting slots, a hash is refused at once; the refusals and the
    /// completions add up to every request.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hashing_is_capped_and_the_excess_refused() {
        let passwords = Arc::new(Passwords::with_params(8 * 1024, 1, 1).unwrap());
        let gate = HashGate::new(passwords, 2);
        let stored = gate
            .hash(SecretString::from("a long enough password"))
            .await
            .unwrap()
            .as_str()
            .to_owned();
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let gate = gate.clone();
                let stored = stored.clone();
                tokio::spawn(async move {
                    gate.verify(SecretString::from("a long enough password"), Some(stored))
                        .await
                })
            })
            .collect();
        let (mut ok, mut busy) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                Ok(true) => ok += 1,
                Err(HashError::Busy) => busy += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(ok + busy, 40);
        assert!(ok >= 2, "{ok} ran");
        assert!(busy > 0, "nothing was refused");
        assert_eq!(
            gate.in_flight.load(Ordering::Acquire),
            0,
            "every hash finished"
        );
        assert!(gate.peak() <= 2, "{} ran at once", gate.peak());
    }
}
