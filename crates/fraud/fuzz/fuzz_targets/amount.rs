#![no_main]

use haven_fraud::Amount;
use libfuzzer_sys::fuzz_target;

// Any string either fails with a typed error or parses to a value whose canonical form
// parses back to the same value and is never longer than the input.
fuzz_target!(|raw: &str| {
    if let Ok(amount) = Amount::parse(raw) {
        let canonical = amount.to_string();
        assert_eq!(Amount::parse(&canonical), Ok(amount));
        // The canonical form only ever drops trailing fractional zeros.
        assert!(canonical.len() <= raw.len());
    }
});
