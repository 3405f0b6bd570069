#![no_main]

use haven_rewards::{EventName, Rules, decide, parse_event, try_decide};
use libfuzzer_sys::fuzz_target;

// Untrusted payloads never panic, for any event; a decision rewards exactly when it pays
// more than zero, and then carries its kind and once-only key.
fuzz_target!(|raw: &[u8]| {
    let rules = Rules::shipped();
    for name in EventName::ALL {
        let Ok(event) = parse_event(name, raw) else {
            continue;
        };
        let decision = decide(&rules, &event);
        assert_eq!(decision.reward, !decision.amount.is_zero());
        assert_eq!(decision.reward, decision.business_key.is_some());
        assert_eq!(decision.reward, decision.kind.is_some());
        if let Ok(checked) = try_decide(&rules, &event) {
            assert_eq!(checked, decision);
        }
    }
});
