#![no_main]

use haven_rewards::Rules;
use libfuzzer_sys::fuzz_target;

// A rules document never panics the parser; accepted rules have a version.
fuzz_target!(|raw: &str| {
    if let Ok(rules) = Rules::from_toml(raw) {
        assert!(!rules.version().is_empty());
    }
});
