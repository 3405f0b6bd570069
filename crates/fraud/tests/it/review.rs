//! A4: the review workflow, its permissions and its audit rows.

use std::sync::Arc;

use async_trait::async_trait;
use haven_core::ErrorCode;
use haven_core::audit::{
    AuditError, AuditEvent, AuditRecord, AuditSink, MemoryAuditLog, verify_chain,
};
use haven_fraud::conformance::{audit_summary, sample_alert};
use haven_fraud::{
    AlertFilter, AlertStore, Error, MemoryAlertStore, ReviewService, ReviewState, Reviewer,
    ReviewerRole, Severity,
};
use uuid::Uuid;

use crate::helpers::*;

struct Setup {
    service: ReviewService,
    audit: Arc<MemoryAuditLog>,
    id: Uuid,
}

async fn setup() -> Setup {
    let store = Arc::new(MemoryAlertStore::new());
    let audit = Arc::new(MemoryAuditLog::new());
    let alert = sample_alert("alice", "velocity", Severity::High, 0);
    store.insert(&alert).await.unwrap();
    Setup {
        service: ReviewService::new(store, audit.clone()),
        audit,
        id: alert.id,
    }
}

fn analyst(id: &str) -> Reviewer {
    Reviewer::new(id, ReviewerRole::Analyst)
}

#[tokio::test]
async fn acknowledge_then_resolve_records_reviewer_notes_and_audit_rows() {
    let s = setup().await;
    let acked = s
        .service
        .acknowledge(&analyst("carol"), s.id, Some("looking at it"))
        .await
        .unwrap();
    assert_eq!(acked.state, ReviewState::Acknowledged);
    assert_eq!(acked.reviewed_by.as_deref(), Some("carol"));
    assert!(!acked.reviewed());

    let admin = Reviewer::new("dave", ReviewerRole::Admin);
    let resolved = s
        .service
        .resolve(&admin, s.id, Some("refund issued"))
        .await
        .unwrap();
    assert_eq!(resolved.state, ReviewState::Resolved);
    assert!(resolved.reviewed());
    assert_eq!(
        resolved.reviewed_by.as_deref(),
        Some("dave"),
        "reviewer recorded automatically"
    );
    assert!(resolved.reviewed_at.unwrap() >= acked.reviewed_at.unwrap());
    let notes: Vec<(&str, &str)> = resolved
        .notes
        .iter()
        .map(|n| (n.author.as_str(), n.text.as_str()))
        .collect();
    assert_eq!(
        notes,
        vec![("carol", "looking at it"), ("dave", "refund issued")]
    );

    let rows = s.audit.records();
    let summary = audit_summary(&rows);
    let target = s.id.to_string();
    assert_eq!(
        summary,
        vec![
            ("carol", "fraud.alert.acknowledged", Some(target.as_str())),
            ("dave", "fraud.alert.resolved", Some(target.as_str())),
        ]
    );
    assert_eq!(rows[1].event.details["from"], "acknowledged");
    assert_eq!(rows[1].event.details["to"], "resolved");
    assert_eq!(rows[1].event.details["with_note"], true);
    verify_chain(&rows).unwrap();
}

#[tokio::test]
async fn false_positive_path_and_notes_are_audited() {
    let s = setup().await;
    let who = analyst("erin");
    s.service.acknowledge(&who, s.id, None).await.unwrap();
    let noted = s
        .service
        .add_note(&who, s.id, "same card as last week")
        .await
        .unwrap();
    assert_eq!(noted.notes.len(), 1);
    let done = s
        .service
        .mark_false_positive(&who, s.id, Some("known customer"))
        .await
        .unwrap();
    assert_eq!(done.state, ReviewState::FalsePositive);
    assert!(done.reviewed());
    let actions: Vec<String> = s
        .audit
        .records()
        .into_iter()
        .map(|r| r.event.action)
        .collect();
    assert_eq!(
        actions,
        vec![
            "fraud.alert.acknowledged",
            "fraud.alert.note_added",
            "fraud.alert.false_positive"
        ]
    );
}

#[tokio::test]
async fn viewers_cannot_change_anything() {
    let s = setup().await;
    let viewer = Reviewer::new("victor", ReviewerRole::Viewer);
    for to in [
        ReviewState::Acknowledged,
        ReviewState::Resolved,
        ReviewState::FalsePositive,
    ] {
        let err = s
            .service
            .transition(&viewer, s.id, to, None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
        assert_eq!(err.code(), ErrorCode::Forbidden);
    }
    let err = s.service.add_note(&viewer, s.id, "hi").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Forbidden);
    let record = s.service.store().get(s.id).await.unwrap().unwrap();
    assert_eq!(record.state, ReviewState::Open);
    assert!(record.notes.is_empty());
    assert!(
        s.audit.records().is_empty(),
        "refused actions write no audit rows"
    );
}

#[tokio::test]
async fn illegal_transitions_are_refused_without_side_effects() {
    let s = setup().await;
    let who = analyst("carol");
    use ReviewState::*;
    for to in [Open, Resolved, FalsePositive] {
        let err = s
            .service
            .transition(&who, s.id, to, None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidTransition { from: Open, to: t } if t == to),
            "{err:?}"
        );
        assert_eq!(err.code(), ErrorCode::InvalidTransition);
    }
    s.service.acknowledge(&who, s.id, None).await.unwrap();
    for to in [Open, Acknowledged] {
        let err = s
            .service
            .transition(&who, s.id, to, None)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidTransition {
                    from: Acknowledged,
                    ..
                }
            ),
            "{err:?}"
        );
    }
    s.service.resolve(&who, s.id, None).await.unwrap();
    for to in [Open, Acknowledged, Resolved, FalsePositive] {
        let err = s
            .service
            .transition(&who, s.id, to, None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidTransition { from: Resolved, .. }),
            "{err:?}"
        );
    }
    assert_eq!(
        s.audit.records().len(),
        2,
        "only the two legal steps are audited"
    );

    let err = s
        .service
        .acknowledge(&who, Uuid::now_v7(), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    let err = s.service.add_note(&who, s.id, "  ").await.unwrap_err();
    assert!(matches!(err, Error::InvalidNote { .. }));
    let long = "x".repeat(haven_fraud::MAX_NOTE_CHARS + 1);
    assert!(s.service.add_note(&who, s.id, &long).await.is_err());
}

#[tokio::test]
async fn racing_reviewers_produce_one_transition_and_one_audit_row() {
    let s = setup().await;
    let service = Arc::new(s.service);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let service = service.clone();
        let id = s.id;
        tasks.push(tokio::spawn(async move {
            service
                .acknowledge(&analyst(&format!("a{i}")), id, None)
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.code(), ErrorCode::InvalidTransition, "{e:?}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(s.audit.records().len(), 1);
}

struct BrokenAudit;

#[async_trait]
impl AuditSink for BrokenAudit {
    async fn append(&self, _: AuditEvent) -> Result<AuditRecord, AuditError> {
        Err(AuditError::Unavailable("disk full".into()))
    }
}

#[tokio::test]
async fn an_unavailable_audit_log_is_an_internal_error() {
    let store = Arc::new(MemoryAlertStore::new());
    let alert = sample_alert("alice", "velocity", Severity::High, 0);
    store.insert(&alert).await.unwrap();
    let service = ReviewService::new(store, Arc::new(BrokenAudit));
    let err = service
        .acknowledge(&analyst("c"), alert.id, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Audit(_)));
    assert_eq!(err.code(), ErrorCode::InternalError);
}

#[tokio::test]
async fn engine_alerts_land_in_the_store_for_review() {
    let b = backends().await.remove(0);
    let engine = b.engine(haven_fraud::DEFAULT_RULES);
    let store = Arc::new(MemoryAlertStore::new());
    let alerts = run(
        &engine,
        &[
            purchase("1", "u", "6000000", at(0)),
            purchase("2", "u", "50", at(MIN)),
            purchase("3", "u", "500", at(2 * MIN)),
        ],
    )
    .await;
    for a in &alerts {
        store.insert(a).await.unwrap();
    }
    let open = store
        .list(&AlertFilter {
            user: Some("u".into()),
            reviewed: Some(false),
            ..AlertFilter::default()
        })
        .await
        .unwrap();
    let mut kinds: Vec<_> = open.iter().map(|r| r.alert.event_type.as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, vec!["unusual_amount", "unusual_amount", "velocity"]);
}
