//! Any bytes, as text, against every chain and `detect`: no panic, and every accepted input
//! normalizes to a fixed point that `detect` agrees with.
#![no_main]

use haven_address::{Chain, Family, bech32};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let detected = haven_address::detect(&input);
    let mut chains: Vec<Chain> = Family::ALL.into_iter().map(Chain::new).collect();
    chains.push("cosmos:cosmos".parse().unwrap());
    for chain in &chains {
        match chain.validate(&input) {
            Ok(address) => {
                if chain.required_hrp().is_none() {
                    assert!(detected.contains(&chain.family()));
                }
                let again = chain.validate(address.normalized()).unwrap();
                assert_eq!(again.normalized(), address.normalized());
            }
            Err(err) => {
                assert!(!err.code().is_empty());
                let _ = err.to_string();
                if chain.required_hrp().is_none() {
                    assert!(!detected.contains(&chain.family()));
                }
            }
        }
    }
    let _ = bech32::decode(&input, bech32::COSMOS_MAX_LENGTH).map(|d| bech32::to_bytes(d.data()));
    if let Some((chain, address)) = input.split_once('\t') {
        let _ = haven_address::report(chain, address);
    }
});
