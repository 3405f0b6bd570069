//! The lease cycle on the in-memory store: sync, reserve, release, commit, crash, status.
//!
//! `cargo run -p haven-nonce --example lease_cycle`

use std::time::Duration;

use haven_nonce::{MemoryNonceStore, NonceKey, NonceStore};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), haven_nonce::Error> {
    let store = MemoryNonceStore::new();
    let key = NonceKey::parse(1, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")?;
    let ttl = Duration::from_secs(30);

    // The chain says 7 transactions are mined or pending.
    store.sync(&key, 7).await?;

    let a = store.reserve(&key, ttl).await?;
    let b = store.reserve(&key, ttl).await?;
    println!("leased {} and {}", a.nonce, b.nonce);

    // `a` failed to sign: its nonce goes back and is handed out first.
    store.release(&a).await?;
    store.commit(&b).await?;
    let c = store.reserve(&key, ttl).await?;
    println!("reused {} after the release", c.nonce);

    // A worker crashes holding a lease that has run out: the next reserve takes it back.
    let crashed = store.reserve(&key, Duration::ZERO).await?;
    let d = store.reserve(&key, ttl).await?;
    println!("nonce {} reclaimed from a crashed worker", d.nonce);
    assert_eq!(crashed.nonce, d.nonce);
    match store.commit(&crashed).await {
        Err(haven_nonce::Error::LeaseLost { nonce, .. }) => {
            println!("the crashed worker's late commit of {nonce} is refused")
        }
        other => println!("unexpected: {other:?}"),
    }
    store.commit(&c).await?;
    store.commit(&d).await?;

    let status = store.status(&key).await?;
    println!(
        "next {}, floor {:?}, free {:?}, open leases {}, unconfirmed commits {:?}",
        status.next,
        status.chain_floor,
        status.free,
        status.leases.len(),
        status.committed
    );
    Ok(())
}
