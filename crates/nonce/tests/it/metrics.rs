//! `haven_nonce_leases_outstanding`: the manager's gauge rises on reserve and falls exactly
//! once per lease, whichever way the lease ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use haven_nonce::metrics::LEASES_OUTSTANDING;
use haven_nonce::{
    ChainNonceSource, MemoryNonceStore, NonceError, NonceErrorAction, NonceKey, NonceManager,
    NonceStore,
};
use haven_testkit::MetricsCapture;

/// A chain whose pending nonce the test sets.
#[derive(Debug, Default)]
struct FixedChain(AtomicU64);

#[async_trait]
impl ChainNonceSource for FixedChain {
    async fn pending_nonce(&self, _: u64, _: [u8; 20]) -> haven_nonce::Result<u64> {
        Ok(self.0.load(Ordering::SeqCst))
    }
}

fn key() -> NonceKey {
    NonceKey::parse(31337, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266").unwrap()
}

fn manager(chain: Arc<FixedChain>, ttl: Duration) -> NonceManager {
    NonceManager::new(Arc::new(MemoryNonceStore::new()), chain, ttl)
}

#[tokio::test]
async fn the_gauge_goes_up_on_reserve_and_down_on_commit_and_release() {
    let capture = MetricsCapture::new();
    let _local = capture.set_local();
    let gauge = || capture.gauge(LEASES_OUTSTANDING, &[]);
    let nonces = manager(Arc::default(), Duration::from_secs(60));

    // The first reserve syncs with the chain through a throwaway lease: counted once.
    let first = nonces.reserve(&key()).await.unwrap();
    assert_eq!(gauge(), 1.0);
    let second = nonces.reserve(&key()).await.unwrap();
    assert_eq!((gauge(), nonces.leases_outstanding()), (2.0, 2));

    nonces.commit(&first).await.unwrap();
    assert_eq!(gauge(), 1.0);
    nonces.commit(&first).await.unwrap();
    assert_eq!(gauge(), 1.0, "a repeated commit is not counted again");

    nonces.release(&second).await.unwrap();
    assert_eq!(gauge(), 0.0);
    nonces.release(&second).await.unwrap();
    assert!(nonces.release(&first).await.is_err(), "committed");
    assert_eq!((gauge(), nonces.leases_outstanding()), (0.0, 0));
}

#[tokio::test]
async fn nonce_errors_expiry_and_drop_end_leases_once() {
    let capture = MetricsCapture::new();
    let _local = capture.set_local();
    let gauge = || capture.gauge(LEASES_OUTSTANDING, &[]);
    let chain = Arc::new(FixedChain::default());
    let nonces = manager(chain.clone(), Duration::from_secs(60));

    // Nonce too low: the old lease ends, the fresh one is outstanding.
    let stale = nonces.reserve(&key()).await.unwrap();
    chain.0.store(5, Ordering::SeqCst);
    let NonceErrorAction::Retry(fresh) = nonces
        .handle_nonce_error(&stale, NonceError::NonceTooLow)
        .await
        .unwrap()
    else {
        panic!("nonce too low retries");
    };
    assert_eq!(fresh.nonce, 5);
    assert_eq!(gauge(), 1.0);
    // Already known: committed, ended.
    let action = nonces
        .handle_nonce_error(&fresh, NonceError::AlreadyKnown)
        .await
        .unwrap();
    assert_eq!(action, NonceErrorAction::Committed);
    assert_eq!(gauge(), 0.0);

    // A lease past its TTL leaves the gauge at the manager's next call; committing it later
    // (the store still allows it) does not take it off twice.
    let short = manager(chain.clone(), Duration::from_millis(50));
    let expiring = short.reserve(&key()).await.unwrap();
    assert_eq!(gauge(), 1.0);
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(short.leases_outstanding(), 0);
    assert_eq!(gauge(), 0.0);
    short.commit(&expiring).await.unwrap();
    assert_eq!(gauge(), 0.0);

    // A lease the store gave to someone else (its clock ran past the TTL, this process's
    // did not) fails to commit and is no longer counted.
    let clock = Arc::new(haven_nonce::ManualClock::new(chrono::Utc::now()));
    let store = Arc::new(MemoryNonceStore::with_clock(clock.clone()));
    let elsewhere = NonceManager::new(store.clone(), chain.clone(), Duration::from_secs(60));
    let lost = elsewhere.reserve(&key()).await.unwrap();
    clock.advance(Duration::from_secs(61));
    store
        .reserve(&key(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(gauge(), 1.0);
    assert!(matches!(
        elsewhere.commit(&lost).await,
        Err(haven_nonce::Error::LeaseLost { .. })
    ));
    assert_eq!(gauge(), 0.0);

    // Dropping the last clone of a manager takes its leases off.
    let held = nonces.clone();
    held.reserve(&key()).await.unwrap();
    held.reserve(&key()).await.unwrap();
    assert_eq!(gauge(), 2.0);
    drop(held);
    assert_eq!(gauge(), 2.0, "a clone shares the count");
    drop(nonces);
    assert_eq!(gauge(), 0.0);
}
