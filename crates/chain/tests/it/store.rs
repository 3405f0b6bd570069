use std::sync::Arc;

use haven_chain::{MemoryTxStore, TxStatus, conformance};

#[tokio::test]
async fn memory_store_passes_the_conformance_suite() {
    conformance::run_all(&Arc::new(MemoryTxStore::new())).await;
}

#[test]
fn lifecycle_allows_only_the_documented_transitions() {
    use TxStatus::*;
    assert!(Queued.can_become(Signed));
    assert!(Signed.can_become(Broadcast));
    assert!(Broadcast.can_become(Confirmed));
    assert!(Confirmed.can_become(Broadcast), "reorg");
    assert!(Failed.can_become(Queued), "operator retry");
    assert!(!Queued.can_become(Broadcast), "never broadcast unsigned");
    assert!(!Confirmed.can_become(Failed));
    assert!(!Replaced.can_become(Queued));
}
