//! Configuration text (master keys, wallet ids) must parse or be refused, never panic, and
//! a refusal never echoes the key material.
#![no_main]

use haven_custody::{Error, LocalKeyProvider, WalletId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match LocalKeyProvider::parse(text) {
        Ok(provider) => {
            assert!(!provider.versions().is_empty());
            let newest = *provider.versions().last().unwrap();
            let _ = provider.with_min_decryption_version(newest);
        }
        Err(Error::MasterKeys(problem)) => {
            let message = problem.to_string();
            for entry in text.split(',') {
                if let Some((_, key)) = entry.split_once(':') {
                    let key = key.trim();
                    // only text that looks like key material: the messages have no run of
                    // 16 base64-alphabet characters, so a match would be an echo
                    let looks_like_key = key.len() >= 16
                        && key
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
                    if looks_like_key {
                        assert!(!message.contains(key), "{message}");
                    }
                }
            }
        }
        Err(other) => panic!("unexpected error kind {other:?}"),
    }
    let _ = WalletId::new(text);
});
