//! Business keys (escaping, no collisions), transaction ids, reward kinds and states.

use std::collections::HashSet;

use haven_rewards::{BusinessKey, RewardKind, RewardState};

fn key(source: &str, kind: RewardKind, id: &str, member: Option<&str>) -> BusinessKey {
    BusinessKey::new(source, kind, id, member)
}

#[test]
fn keys_join_their_components() {
    assert_eq!(
        key("aurora", RewardKind::Booking, "b-1", None).as_string(),
        "aurora:booking:b-1"
    );
    assert_eq!(
        key("tribe", RewardKind::Attendance, "ev-1", Some("m-1")).as_string(),
        "tribe:attendance:ev-1:m-1"
    );
    assert_eq!(
        key("tribe", RewardKind::Attendance, "ev:1%", Some("m:1")).as_string(),
        "tribe:attendance:ev%3A1%25:m%3A1"
    );
    assert_eq!(
        key("aurora", RewardKind::Booking, "b-1", None).to_string(),
        "aurora:booking:b-1"
    );
}

#[test]
fn different_keys_never_share_a_string_or_a_tx_id() {
    let keys = [
        key("tribe", RewardKind::Attendance, "a:b", Some("c")),
        key("tribe", RewardKind::Attendance, "a", Some("b:c")),
        key("tribe", RewardKind::Attendance, "a:b:c", None),
        key("tribe", RewardKind::Attendance, "a", Some("b")),
        key("tribe", RewardKind::Attendance, "a", Some("")),
        key("tribe", RewardKind::Attendance, "a", None),
        key("tribe", RewardKind::Attendance, "a%3Ab", Some("c")),
        key("tribe", RewardKind::Attendance, "a%253Ab", Some("c")),
        key("tribe", RewardKind::Attendance, "a%", Some("c")),
        key("tribe:attendance", RewardKind::Attendance, "a", None),
        key("tribe", RewardKind::Contribution, "a", None),
        key("aurora", RewardKind::Contribution, "a", None),
        key("aurora", RewardKind::Booking, "b-1", None),
        key("aurora", RewardKind::Review, "b-1", None),
    ];
    let strings: HashSet<_> = keys.iter().map(BusinessKey::as_string).collect();
    let tx_ids: HashSet<_> = keys.iter().map(BusinessKey::tx_id).collect();
    assert_eq!(strings.len(), keys.len(), "{strings:?}");
    assert_eq!(tx_ids.len(), keys.len());
}

#[test]
fn tx_ids_are_deterministic() {
    let a = key("aurora", RewardKind::Booking, "b-1", None);
    let b = key("aurora", RewardKind::Booking, "b-1", None);
    assert_eq!(a.tx_id(), b.tx_id());
    // rw- and the first 32 hex digits of SHA-256("aurora:booking:b-1").
    assert_eq!(a.tx_id(), "rw-c2da0a2f88406ae4124382c0349354ce");
    let id = key("tribe", RewardKind::Coaching, "mid_program", Some("m-1")).tx_id();
    assert_eq!(id.len(), 35);
    assert!(
        id[3..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
}

#[test]
fn kinds_and_states_have_stable_names() {
    let kinds = [
        (RewardKind::Booking, "booking"),
        (RewardKind::Review, "review"),
        (RewardKind::Attendance, "attendance"),
        (RewardKind::Contribution, "contribution"),
        (RewardKind::Coaching, "coaching"),
        (RewardKind::Referral, "referral"),
        (RewardKind::Staking, "staking"),
        (RewardKind::Manual, "manual"),
    ];
    for (kind, name) in kinds {
        assert_eq!(kind.as_str(), name);
        assert_eq!(name.parse::<RewardKind>().unwrap(), kind);
        assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{name}\""));
    }
    assert_eq!(RewardKind::ALL.len(), kinds.len());
    let states = [
        (RewardState::Pending, "pending"),
        (RewardState::Held, "held"),
        (RewardState::Submitted, "submitted"),
        (RewardState::Confirmed, "confirmed"),
        (RewardState::Reversed, "reversed"),
        (RewardState::Cancelled, "cancelled"),
        (RewardState::FailedNeedsReview, "failed_needs_review"),
    ];
    for (state, name) in states {
        assert_eq!(state.as_str(), name);
        assert_eq!(name.parse::<RewardState>().unwrap(), state);
        assert_eq!(
            serde_json::to_string(&state).unwrap(),
            format!("\"{name}\"")
        );
    }
    assert_eq!(RewardState::ALL.len(), states.len());
    assert!("Pending".parse::<RewardState>().is_err());
    assert!("bonus".parse::<RewardKind>().is_err());
}

#[test]
fn the_state_table_allows_exactly_the_listed_moves() {
    use RewardState::*;
    let legal = [
        (Pending, Held),
        (Pending, Submitted),
        (Pending, Cancelled),
        (Held, Pending),
        (Held, Cancelled),
        (Submitted, Confirmed),
        (Submitted, FailedNeedsReview),
        (FailedNeedsReview, Submitted),
        (FailedNeedsReview, Cancelled),
        (Confirmed, Reversed),
    ];
    for from in RewardState::ALL {
        for to in RewardState::ALL {
            assert_eq!(
                from.can_move_to(to),
                legal.contains(&(from, to)),
                "{from} -> {to}"
            );
        }
        assert_eq!(
            from.is_final(),
            RewardState::ALL.iter().all(|to| !from.can_move_to(*to)),
            "{from}"
        );
    }
    assert!(Reversed.is_final() && Cancelled.is_final());
}
