//! Conformance suites every backend must pass. The in-memory and Redis stores run them in
//! this crate's tests; a Postgres `AlertStore` runs [`alert_store_suite`] the same way.
//!
//! The suites panic on the first violation, with a message naming it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use haven_core::audit::AuditRecord;
use serde_json::json;
use uuid::Uuid;

use crate::alert::{Alert, Severity};
use crate::review::{AlertFilter, AlertStore, ChangeOutcome, Note, ReviewState, StateChange};
use crate::window::{WindowEntry, WindowRead, WindowStore};

/// Who did what to which target, one triple per audit record (actor, action, target): what
/// review tests compare after a sequence of state changes.
pub fn audit_summary(rows: &[AuditRecord]) -> Vec<(&str, &str, Option<&str>)> {
    rows.iter()
        .map(|r| {
            (
                r.event.actor.as_str(),
                r.event.action.as_str(),
                r.event.target.as_deref(),
            )
        })
        .collect()
}

/// An open alert for `user` of `event_type`, created `minute` minutes after a fixed epoch.
pub fn sample_alert(user: &str, event_type: &str, severity: Severity, minute: i64) -> Alert {
    let at =
        Utc.with_ymd_and_hms(2026, 1, 2, 10, 0, 0).unwrap() + chrono::Duration::minutes(minute);
    Alert {
        id: Uuid::now_v7(),
        rule_id: event_type.to_owned(),
        event_type: event_type.to_owned(),
        severity,
        subject: user.to_owned(),
        user: Some(user.to_owned()),
        description: format!("{event_type} for {user}"),
        metadata: json!({ "minute": minute }),
        event_id: format!("ev-{}", Uuid::new_v4()),
        event_ts: at,
        created_at: at,
    }
}

fn entry(ts_ms: i64, id: &str, value: u128) -> WindowEntry {
    WindowEntry {
        ts_ms,
        id: id.to_owned(),
        value,
    }
}

/// Checks window semantics, marks and cooldowns. Every key used starts with `prefix`.
pub async fn window_store_suite(store: Arc<dyn WindowStore>, prefix: &str) {
    let t0: i64 = 1_767_348_000_000;
    let key = format!("{prefix}w:suite");
    let w = 60_000;
    let record = |e: WindowEntry, read| {
        let store = store.clone();
        let key = key.clone();
        async move { store.record(&key, e, w, 2 * w, read).await.unwrap() }
    };

    let s = record(entry(t0, "a", 5), WindowRead::Count).await;
    assert_eq!((s.previous_max_ts_ms, s.count), (None, 1), "first insert");
    let s = record(entry(t0 + w, "b", 7), WindowRead::Count).await;
    assert_eq!(s.previous_max_ts_ms, Some(t0), "watermark before insert");
    assert_eq!(
        s.count, 1,
        "an entry exactly one window old is outside the window"
    );
    let s = record(
        entry(t0 + w - 1, "c", 11),
        WindowRead::Entries { limit: 10 },
    )
    .await;
    assert_eq!(
        s.previous_max_ts_ms,
        Some(t0 + w),
        "watermark is the newest, not the last"
    );
    assert_eq!(
        s.count, 2,
        "a late entry is read in the window ending at the newest: b and c"
    );
    let got: Vec<(i64, &str, u128)> = s
        .entries
        .iter()
        .map(|e| (e.ts_ms, e.id.as_str(), e.value))
        .collect();
    assert_eq!(
        got,
        vec![(t0 + w, "b", 7), (t0 + w - 1, "c", 11)],
        "newest first, values kept"
    );
    let s = record(entry(t0 + w, "d", 1), WindowRead::Entries { limit: 2 }).await;
    assert_eq!(s.count, 3, "count ignores the limit");
    assert_eq!(s.entries.len(), 2, "entries respect the limit");

    // Everything at or before newest - retain is dropped.
    let s = record(entry(t0 + 2 * w, "e", 1), WindowRead::Count).await;
    assert_eq!(s.count, 1, "only e: b and d are exactly one window old");
    let s = record(entry(t0 + 1, "late", 1), WindowRead::Count).await;
    assert_eq!(
        s.count, 1,
        "an entry older than the retention finds an empty past"
    );

    // Amounts close to u128::MAX survive the round trip.
    let big = u128::MAX - 1;
    let s = record(
        entry(t0 + 2 * w + 1, "big", big),
        WindowRead::Entries { limit: 1 },
    )
    .await;
    assert_eq!(s.entries[0].value, big, "u128 values round-trip");

    // Marks: exactly one of many concurrent callers sees a key first.
    let mark = format!("{prefix}d:suite");
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let store = store.clone();
        let mark = mark.clone();
        tasks.push(tokio::spawn(async move {
            store
                .mark_seen(&mark, Some(Duration::from_secs(60)))
                .await
                .unwrap()
        }));
    }
    let mut firsts = 0;
    for t in tasks {
        firsts += usize::from(t.await.unwrap());
    }
    assert_eq!(firsts, 1, "mark_seen is true exactly once");
    let forever = format!("{prefix}n:suite");
    assert!(store.mark_seen(&forever, None).await.unwrap());
    assert!(!store.mark_seen(&forever, None).await.unwrap());

    // Cooldowns by event time, in both directions.
    let cd = format!("{prefix}c:suite");
    assert!(store.try_cooldown(&cd, t0, 1000).await.unwrap());
    assert!(!store.try_cooldown(&cd, t0 + 999, 1000).await.unwrap());
    assert!(!store.try_cooldown(&cd, t0 - 999, 1000).await.unwrap());
    assert!(store.try_cooldown(&cd, t0 + 1000, 1000).await.unwrap());
    let mut tasks = Vec::new();
    let racing = format!("{prefix}c:race");
    for i in 0..32 {
        let store = store.clone();
        let racing = racing.clone();
        tasks.push(tokio::spawn(async move {
            store.try_cooldown(&racing, t0 + i, 60_000).await.unwrap()
        }));
    }
    let mut taken = 0;
    for t in tasks {
        taken += usize::from(t.await.unwrap());
    }
    assert_eq!(taken, 1, "one of many concurrent alerts takes the cooldown");
}

/// Checks insertion, listing, compare-and-set transitions and notes. Expects an empty store.
pub async fn alert_store_suite(store: Arc<dyn AlertStore>) {
    let a = sample_alert("alice", "velocity", Severity::High, 0);
    let b = sample_alert("alice", "unusual_amount", Severity::Low, 1);
    let c = sample_alert("bob", "velocity", Severity::High, 2);
    for alert in [&a, &b, &c] {
        assert!(store.insert(alert).await.unwrap(), "insert");
    }
    assert!(
        !store.insert(&a).await.unwrap(),
        "insert is idempotent on id"
    );

    let got = store.get(a.id).await.unwrap().expect("stored");
    assert_eq!(got.alert, a, "alert round-trips");
    assert_eq!(got.state, ReviewState::Open);
    assert!(!got.reviewed());
    assert!(store.get(Uuid::now_v7()).await.unwrap().is_none());

    let ids = |records: Vec<crate::review::AlertRecord>| {
        records.into_iter().map(|r| r.alert.id).collect::<Vec<_>>()
    };
    let all = store.list(&AlertFilter::default()).await.unwrap();
    assert_eq!(ids(all), vec![c.id, b.id, a.id], "newest first");
    let alice = AlertFilter {
        user: Some("alice".into()),
        ..AlertFilter::default()
    };
    assert_eq!(ids(store.list(&alice).await.unwrap()), vec![b.id, a.id]);
    let high_velocity = AlertFilter {
        event_type: Some("velocity".into()),
        severity: Some(Severity::High),
        ..AlertFilter::default()
    };
    assert_eq!(
        ids(store.list(&high_velocity).await.unwrap()),
        vec![c.id, a.id]
    );
    let paged = AlertFilter {
        before: Some(c.created_at),
        limit: 1,
        ..AlertFilter::default()
    };
    assert_eq!(ids(store.list(&paged).await.unwrap()), vec![b.id]);
    time_and_text_filters(store.as_ref(), [&a, &b, &c]).await;

    // Compare-and-set: of many racing reviewers exactly one wins.
    let at = Utc::now();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        let change = StateChange {
            alert_id: a.id,
            from: ReviewState::Open,
            to: ReviewState::Acknowledged,
            reviewer: format!("reviewer-{i}"),
            at,
            note: None,
        };
        tasks.push(tokio::spawn(async move {
            store.change_state(&change).await.unwrap()
        }));
    }
    let mut applied = 0;
    for t in tasks {
        match t.await.unwrap() {
            ChangeOutcome::Applied(r) => {
                applied += 1;
                assert_eq!(r.state, ReviewState::Acknowledged);
                assert!(r.reviewed_by.as_deref().unwrap().starts_with("reviewer-"));
            }
            ChangeOutcome::StateIs(s) => assert_eq!(s, ReviewState::Acknowledged),
            ChangeOutcome::NotFound => panic!("alert vanished"),
        }
    }
    assert_eq!(applied, 1, "change_state is a compare-and-set");

    let note = Note {
        author: "carol".into(),
        text: "checked the purchase history".into(),
        at,
    };
    let resolved = store
        .change_state(&StateChange {
            alert_id: a.id,
            from: ReviewState::Acknowledged,
            to: ReviewState::Resolved,
            reviewer: "carol".into(),
            at,
            note: Some(note.clone()),
        })
        .await
        .unwrap();
    let ChangeOutcome::Applied(resolved) = resolved else {
        panic!("resolve was not applied: {resolved:?}");
    };
    assert!(resolved.reviewed());
    assert_eq!(resolved.reviewed_by.as_deref(), Some("carol"));
    assert_eq!(
        resolved.reviewed_at.map(|t| t.timestamp_micros()),
        Some(at.timestamp_micros())
    );
    assert_eq!(resolved.notes, vec![note.clone()]);

    let unreviewed = AlertFilter {
        reviewed: Some(false),
        ..AlertFilter::default()
    };
    assert_eq!(
        ids(store.list(&unreviewed).await.unwrap()),
        vec![c.id, b.id]
    );

    let second = Note {
        author: "dave".into(),
        text: "user confirmed".into(),
        at,
    };
    let noted = store.add_note(a.id, &second).await.unwrap().unwrap();
    assert_eq!(
        noted.notes,
        vec![note, second],
        "notes are appended in order"
    );
    assert!(
        store
            .add_note(Uuid::now_v7(), &noted.notes[0])
            .await
            .unwrap()
            .is_none()
    );
    let missing = StateChange {
        alert_id: Uuid::now_v7(),
        from: ReviewState::Open,
        to: ReviewState::Acknowledged,
        reviewer: "x".into(),
        at,
        note: None,
    };
    assert_eq!(
        store.change_state(&missing).await.unwrap(),
        ChangeOutcome::NotFound
    );
    search_is_literal(store.as_ref()).await;
}

async fn listed(store: &dyn AlertStore, filter: AlertFilter) -> Vec<Uuid> {
    store
        .list(&filter)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.alert.id)
        .collect()
}

fn searching(text: &str) -> AlertFilter {
    AlertFilter {
        text: Some(text.to_owned()),
        ..AlertFilter::default()
    }
}

/// `since` is inclusive, `before` exclusive; text ignores case and combines with the rest.
/// `a`, `b`, `c`: alice/velocity, alice/unusual_amount, bob/velocity at minutes 0, 1, 2.
async fn time_and_text_filters(store: &dyn AlertStore, [a, b, c]: [&Alert; 3]) {
    let since_b = AlertFilter {
        since: Some(b.created_at),
        ..AlertFilter::default()
    };
    assert_eq!(
        listed(store, since_b.clone()).await,
        vec![c.id, b.id],
        "since is inclusive"
    );
    let window = AlertFilter {
        before: Some(c.created_at),
        ..since_b
    };
    assert_eq!(listed(store, window).await, vec![b.id], "since and before");
    let empty = AlertFilter {
        since: Some(c.created_at),
        before: Some(c.created_at),
        ..AlertFilter::default()
    };
    assert!(listed(store, empty).await.is_empty(), "an empty range");

    assert_eq!(
        listed(store, searching("ALICE")).await,
        vec![b.id, a.id],
        "text ignores case (subject and description)"
    );
    assert_eq!(
        listed(store, searching("Unusual_A")).await,
        vec![b.id],
        "text in the rule id"
    );
    assert_eq!(
        listed(store, searching("for bob")).await,
        vec![c.id],
        "text in the description"
    );
    assert_eq!(
        listed(store, searching("2")).await,
        vec![c.id],
        "text in a metadata number"
    );
    let alice_velocity = AlertFilter {
        event_type: Some("velocity".into()),
        ..searching("alice")
    };
    assert_eq!(
        listed(store, alice_velocity).await,
        vec![a.id],
        "text combines with the other filters"
    );
    assert_eq!(
        listed(store, searching("nobody")).await,
        Vec::<Uuid>::new(),
        "no match"
    );
    assert_eq!(
        listed(store, searching("")).await.len(),
        3,
        "empty text matches everything"
    );
}

/// `%`, `_` and `\` in the search text are literal characters, never a pattern; nested
/// metadata strings are searched. Adds one alert at minute 3.
async fn search_is_literal(store: &dyn AlertStore) {
    let mut d = sample_alert("carol", "amount_tier", Severity::Critical, 3);
    d.description = r"100% of limit_x \ reached".into();
    d.metadata = json!({"card": {"note": "Card ending 4242"}, "flags": [true], "n": null});
    assert!(store.insert(&d).await.unwrap());
    for text in [
        "100%",
        "%",
        r"\",
        "t_x",
        "_X",
        "CARD ENDING 4242",
        "true",
        "amount_TIER",
    ] {
        assert_eq!(
            listed(store, searching(text)).await,
            vec![d.id],
            "{text:?} matches literally"
        );
    }
    for text in ["l_m", "1%0", "10_%", r"\x", "null", "note", "%%"] {
        assert!(
            listed(store, searching(text)).await.is_empty(),
            "{text:?} is not a pattern (nor a key, nor null)"
        );
    }
}
