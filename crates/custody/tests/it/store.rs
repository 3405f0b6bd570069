//! The in-memory store passes the conformance suite crates/db runs against Postgres.

#[tokio::test]
async fn memory_store_passes_the_conformance_suite() {
    haven_custody::conformance::run_all(&haven_custody::MemoryWalletStore::new()).await;
}
