//! Property test: random sequences of create / rotate / revoke / sign against a model.
//! A key signs iff the model says it is the active key of an active wallet; signatures
//! recover to that key's address; the audit log has one valid row per operation.

use std::collections::HashMap;

use alloy::primitives::B256;
use haven_core::audit::verify_chain;
use haven_custody::{Chain, Error, KeyRef, KeyStatus};
use proptest::prelude::*;

use crate::support::{Fixture, wid};

#[derive(Debug, Clone)]
enum Op {
    Create(u8, bool),
    Rotate(u8),
    Revoke(u8),
    SignCurrent(u8),
    SignPinned(u8, u32),
}

fn op() -> impl Strategy<Value = Op> {
    let w = 0u8..4;
    prop_oneof![
        (w.clone(), any::<bool>()).prop_map(|(w, sol)| Op::Create(w, sol)),
        w.clone().prop_map(Op::Rotate),
        w.clone().prop_map(Op::Revoke),
        w.clone().prop_map(Op::SignCurrent),
        (w, 1u32..4).prop_map(|(w, v)| Op::SignPinned(w, v)),
    ]
}

#[derive(Debug)]
struct ModelWallet {
    chain: Chain,
    current: u32,
    revoked: bool,
    addresses: HashMap<u32, String>,
}

fn verifies(chain: Chain, address: &str, hash: &B256, sig: &haven_custody::ChainSignature) -> bool {
    match chain {
        Chain::Evm => {
            sig.as_evm()
                .unwrap()
                .recover_address_from_prehash(hash)
                .unwrap()
                .to_checksum(None)
                == address
        }
        _ => {
            let bytes: [u8; 32] = bs58::decode(address)
                .into_vec()
                .unwrap()
                .try_into()
                .unwrap();
            ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .unwrap()
                .verify_strict(hash.as_slice(), sig.as_ed25519().unwrap())
                .is_ok()
        }
    }
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let fx = Fixture::local();
    let mut model: HashMap<u8, ModelWallet> = HashMap::new();
    let hash = B256::repeat_byte(0x77);
    for op in &ops {
        match *op {
            Op::Create(w, sol) => {
                let chain = if sol { Chain::Solana } else { Chain::Evm };
                let result = fx
                    .custody
                    .create_wallet(
                        wid(&format!("m{w}")),
                        chain,
                        serde_json::Value::Null,
                        &fx.caller,
                    )
                    .await;
                match (model.contains_key(&w), result) {
                    (true, Err(Error::WalletExists { .. })) => {}
                    (false, Ok(wallet)) => {
                        model.insert(
                            w,
                            ModelWallet {
                                chain,
                                current: 1,
                                revoked: false,
                                addresses: HashMap::from([(1, wallet.address().to_owned())]),
                            },
                        );
                    }
                    (exists, other) => {
                        prop_assert!(false, "create {w} (exists {exists}): {other:?}")
                    }
                }
            }
            Op::Rotate(w) => {
                let result = fx
                    .custody
                    .rotate_wallet(&wid(&format!("m{w}")), &fx.caller)
                    .await;
                match (model.get_mut(&w), result) {
                    (None, Err(Error::WalletNotFound { .. })) => {}
                    (
                        Some(m),
                        Err(Error::NotActive {
                            status: KeyStatus::Revoked,
                            ..
                        }),
                    ) if m.revoked => {}
                    (Some(m), Ok(wallet)) if !m.revoked => {
                        m.current += 1;
                        prop_assert_eq!(wallet.record.current_version, m.current);
                        prop_assert_eq!(wallet.keys.len() as u32, m.current);
                        m.addresses.insert(m.current, wallet.address().to_owned());
                    }
                    (m, other) => prop_assert!(false, "rotate {w} ({m:?}): {other:?}"),
                }
            }
            Op::Revoke(w) => {
                let result = fx
                    .custody
                    .revoke_wallet(&wid(&format!("m{w}")), &fx.caller)
                    .await;
                match (model.get_mut(&w), result) {
                    (None, Err(Error::WalletNotFound { .. })) => {}
                    (Some(m), Ok(_)) => m.revoked = true,
                    (m, other) => prop_assert!(false, "revoke {w} ({m:?}): {other:?}"),
                }
            }
            Op::SignCurrent(w) | Op::SignPinned(w, _) => {
                let id = wid(&format!("m{w}"));
                let pinned = match *op {
                    Op::SignPinned(_, v) => Some(v),
                    _ => None,
                };
                let key = KeyRef {
                    wallet_id: id,
                    version: pinned,
                };
                let result = fx.custody.sign_hash(key, &hash, &fx.caller).await;
                let Some(m) = model.get(&w) else {
                    prop_assert!(result.is_err());
                    continue;
                };
                let version = pinned.unwrap_or(m.current);
                let expected_ok = !m.revoked && version == m.current;
                match result {
                    Ok(sig) => {
                        prop_assert!(expected_ok, "{op:?} signed but model says no: {m:?}");
                        prop_assert!(verifies(m.chain, &m.addresses[&version], &hash, &sig));
                    }
                    Err(Error::NotActive { status, .. }) => {
                        prop_assert!(!expected_ok);
                        let expected = if m.revoked {
                            KeyStatus::Revoked
                        } else {
                            KeyStatus::Rotated
                        };
                        prop_assert_eq!(status, expected);
                    }
                    Err(Error::KeyNotFound { .. }) => prop_assert!(version > m.current),
                    Err(other) => prop_assert!(false, "{op:?}: {other:?}"),
                }
            }
        }
    }
    let records = fx.records();
    prop_assert_eq!(records.len(), ops.len(), "one audit row per operation");
    prop_assert!(verify_chain(&records).is_ok());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn operations_follow_the_model(ops in prop::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(run(ops))?;
    }
}
