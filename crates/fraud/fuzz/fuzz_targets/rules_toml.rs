#![no_main]

use haven_fraud::{RuleSet, Rules};
use libfuzzer_sys::fuzz_target;

// A rules document never panics the parser; a refused reload leaves the rules unchanged.
fuzz_target!(|raw: &str| {
    let rules = Rules::from_toml(haven_fraud::DEFAULT_RULES).expect("defaults are valid");
    let before = rules.current();
    match rules.reload(raw) {
        Ok(set) => assert!(set.validate().is_ok()),
        Err(_) => assert!(std::sync::Arc::ptr_eq(&before, &rules.current())),
    }
    let _ = RuleSet::from_toml(raw);
});
