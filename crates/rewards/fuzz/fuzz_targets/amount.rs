#![no_main]

use haven_rewards::{Decimal, Hnv};
use libfuzzer_sys::fuzz_target;

// Any text either fails with a typed error or parses to a value whose minimal form parses
// back to the same value.
fuzz_target!(|raw: &str| {
    if let Ok(amount) = Hnv::parse(raw) {
        assert_eq!(Hnv::parse(&amount.to_string()), Ok(amount));
        assert_eq!(amount.to_decimal().and_then(Decimal::to_hnv).unwrap_or(amount), amount);
    }
    if let Ok(value) = Decimal::parse(raw) {
        assert_eq!(Decimal::parse(&value.to_string()), Ok(value));
    }
});
