#![no_main]

use haven_fraud::Event;
use libfuzzer_sys::fuzz_target;

// Untrusted event JSON never panics; an accepted event is valid and survives a round trip.
fuzz_target!(|raw: &[u8]| {
    if let Ok(event) = Event::from_json(raw) {
        assert!(event.validate().is_ok());
        let json = serde_json::to_vec(&event).expect("events serialize");
        assert_eq!(Event::from_json(&json).expect("round trip"), event);
    }
});
