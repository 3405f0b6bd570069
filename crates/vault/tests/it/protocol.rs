//! The guardian frame parser on arbitrary input: it answers every text with a frame or a
//! typed error, never a panic, and what it accepts stays within its limits.

use haven_vault::protocol::{
    ClientFrame, ClientMessage, FrameError, MAX_FRAME_BYTES, MAX_ID_CHARS,
};
use proptest::prelude::*;

/// Near-valid frames: real shapes with random field values, kinds and extra keys.
fn near_frame() -> impl Strategy<Value = String> {
    let kind = prop_oneof![
        Just("approve".to_owned()),
        Just("reject".to_owned()),
        Just("list_requests".to_owned()),
        Just("ping".to_owned()),
        Just("threshold".to_owned()),
        "[a-z_]{0,12}",
    ];
    let value = prop_oneof![
        Just(serde_json::json!(null)),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        "[0-9a-f-]{0,40}".prop_map(|s| serde_json::json!(s)),
        "\\PC{0,80}".prop_map(|s| serde_json::json!(s)),
    ];
    (kind, value.clone(), value.clone(), value, any::<bool>()).prop_map(
        |(kind, a, b, c, with_token)| {
            let mut frame = serde_json::json!({
                "type": kind, "request_id": a, "signature": b, "id": c, "step": "commit",
            });
            if with_token {
                frame["token"] = serde_json::json!("t");
            }
            frame.to_string()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_text_is_a_frame_or_a_typed_error(text in "\\PC{0,400}") {
        let _ = ClientFrame::parse(&text, MAX_FRAME_BYTES);
    }

    #[test]
    fn near_valid_frames_are_checked_field_by_field(text in near_frame()) {
        match ClientFrame::parse(&text, MAX_FRAME_BYTES) {
            Ok(frame) => {
                prop_assert!(frame.id.as_ref().is_none_or(|id| id.chars().count() <= MAX_ID_CHARS));
                if let ClientMessage::Approve { signature, .. } | ClientMessage::Reject { signature, .. } = &frame.message {
                    prop_assert_eq!(signature.len(), 128);
                }
            }
            Err(FrameError::TooLarge { .. }) => prop_assert!(false, "small frames are never too large"),
            Err(_) => {}
        }
    }

    #[test]
    fn frames_over_the_limit_are_refused_before_parsing(extra in 1usize..4096) {
        let text = format!(r#"{{"token":"t","type":"ping","id":"{}"}}"#, "x".repeat(MAX_FRAME_BYTES + extra));
        let refused = matches!(
            ClientFrame::parse(&text, MAX_FRAME_BYTES),
            Err(FrameError::TooLarge { .. })
        );
        prop_assert!(refused);
    }
}
