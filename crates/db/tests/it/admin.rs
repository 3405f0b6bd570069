//! Administrative writes audited in the same transaction: role changes and disabling (with
//! the last admin kept, sessions and keys revoked) and the retry of a failed transaction.

use std::sync::Arc;

use alloy::primitives::{Address, B256, Bytes, U256};
use chrono::Utc;
use haven_auth::{NewSession, SessionError, SessionPolicy, SessionStore};
use haven_chain::{TxKind, TxRecord, TxStatus, TxStore};
use haven_core::audit::{AuditEvent, Severity};
use haven_db::{
    ApiKeyRepo, Disable, NewApiKey, NewUser, PgAuditLog, PgSessionStore, PgTxStore, Requeue, Role,
    RoleChange, UserRepo,
};
use haven_testkit::TestDb;
use uuid::Uuid;

async fn user(users: &UserRepo, email: &str, role: Role) -> Uuid {
    users
        .create(NewUser {
            email: email.into(),
            password_hash: None,
            role,
        })
        .await
        .unwrap()
        .id
}

fn event(action: &str) -> AuditEvent {
    AuditEvent::new("user:test", action, Severity::High)
}

async fn actions(audit: &PgAuditLog) -> Vec<String> {
    audit
        .page(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event.action)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_change_revokes_sessions_and_keys_beyond_the_new_role_with_its_audit_row() {
    let db = TestDb::new().await;
    let pool = haven_db::connect(db.url(), 8).await.unwrap();
    let users = UserRepo::new(pool.clone());
    let keys = ApiKeyRepo::new(pool.clone());
    let sessions = PgSessionStore::new(pool.clone());
    let audit = PgAuditLog::new(pool.clone());
    let _root = user(&users, "root@example.com", Role::Admin).await;
    let bob = user(&users, "bob@example.com", Role::Admin).await;
    let mut key_ids = Vec::new();
    for (i, scopes) in [
        vec!["transactions:read"],
        vec!["users:manage", "alerts:read"],
    ]
    .into_iter()
    .enumerate()
    {
        let key = keys
            .insert(NewApiKey {
                name: format!("k{i}"),
                owner_id: bob,
                key_hash: [i as u8; 32],
                display_prefix: format!("hvn_test_{i}"),
                scopes: scopes.into_iter().map(String::from).collect(),
                expires_at: None,
                member_id: None,
            })
            .await
            .unwrap();
        key_ids.push(key.id);
    }
    let before = Utc::now() - chrono::Duration::seconds(5);
    let session = sessions
        .create(
            NewSession {
                user_id: bob,
                device: "laptop".into(),
                ip: None,
                user_agent: String::new(),
            },
            &SessionPolicy::default(),
            before,
        )
        .await
        .unwrap();

    let now = Utc::now();
    let outcome = users
        .change_role_audited(bob, Role::Operator, event("user.role_change"), now)
        .await
        .unwrap();
    let RoleChange::Changed {
        user: changed,
        from,
        revoked_keys,
    } = outcome
    else {
        panic!("{outcome:?}");
    };
    assert_eq!((from, changed.role), (Role::Admin, Role::Operator));
    assert_eq!(
        revoked_keys.iter().map(|k| k.id).collect::<Vec<_>>(),
        [key_ids[1]],
        "only the key beyond an operator"
    );
    assert_eq!(revoked_keys[0].key_hash, vec![1u8; 32]);
    let listed = keys.list_by_owner(bob).await.unwrap();
    for key in &listed {
        assert_eq!(key.revoked_at.is_some(), key.id == key_ids[1], "{key:?}");
    }
    // Access tokens issued up to the change are refused; the session is gone.
    let refused = sessions
        .check_access_token(bob, Uuid::new_v4(), before.timestamp(), now)
        .await;
    assert!(
        matches!(refused, Err(SessionError::AccessTokenRevoked)),
        "{refused:?}"
    );
    assert!(
        sessions
            .list(bob, &SessionPolicy::default(), now)
            .await
            .unwrap()
            .is_empty(),
        "{:?}",
        session.session.family_id
    );
    let rows = audit.page(0, 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].event.target.as_deref(),
        Some(&*format!("user:{bob}"))
    );
    assert_eq!(rows[0].event.details["from"], "admin");
    assert_eq!(rows[0].event.details["to"], "operator");

    let same = users
        .change_role_audited(bob, Role::Operator, event("user.role_change"), Utc::now())
        .await
        .unwrap();
    assert!(matches!(same, RoleChange::Unchanged(_)), "{same:?}");
    let missing = users
        .change_role_audited(
            Uuid::new_v4(),
            Role::Viewer,
            event("user.role_change"),
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(missing, RoleChange::NotFound);
    assert_eq!(actions(&audit).await.len(), 1, "no-ops write nothing");

    let disabled = users
        .disable_audited(bob, event("user.disable"), Utc::now())
        .await
        .unwrap();
    let Disable::Disabled { revoked_keys, .. } = disabled else {
        panic!("{disabled:?}");
    };
    assert_eq!(
        revoked_keys.iter().map(|k| k.id).collect::<Vec<_>>(),
        [key_ids[0]],
        "disabling revokes the remaining keys"
    );
    assert_eq!(actions(&audit).await, ["user.role_change", "user.disable"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admins_demoting_each_other_at_once_leave_one_admin() {
    for round in 0..5 {
        let db = TestDb::new().await;
        let pool = haven_db::connect(db.url(), 8).await.unwrap();
        let users = Arc::new(UserRepo::new(pool));
        let a = user(&users, "a@example.com", Role::Admin).await;
        let b = user(&users, "b@example.com", Role::Admin).await;
        let demote = |target: Uuid| {
            let users = users.clone();
            tokio::spawn(async move {
                users
                    .change_role_audited(
                        target,
                        Role::Viewer,
                        event("user.role_change"),
                        Utc::now(),
                    )
                    .await
                    .unwrap()
            })
        };
        let (x, y) = (demote(a), demote(b));
        let outcomes = [x.await.unwrap(), y.await.unwrap()];
        let changed = outcomes
            .iter()
            .filter(|o| matches!(o, RoleChange::Changed { .. }))
            .count();
        let last = outcomes
            .iter()
            .filter(|o| matches!(o, RoleChange::LastAdmin))
            .count();
        assert_eq!((changed, last), (1, 1), "round {round}: {outcomes:?}");
        let admin = if users.get(a).await.unwrap().unwrap().role == Role::Admin {
            a
        } else {
            b
        };
        let outcome = users
            .disable_audited(admin, event("user.disable"), Utc::now())
            .await
            .unwrap();
        assert_eq!(outcome, Disable::LastAdmin, "round {round}");
    }
}

fn failed_record(tx_id: &str) -> TxRecord {
    let mut r = TxRecord::queued(
        tx_id,
        TxKind::Mint,
        31337,
        Address::repeat_byte(1),
        Address::repeat_byte(2),
        Some(Address::repeat_byte(3)),
        U256::from(5u64),
        120_000,
        Utc::now(),
    );
    r.status = TxStatus::Failed;
    r.nonce = Some(4);
    r.hash = Some(B256::repeat_byte(9));
    r.previous_hashes = vec![B256::repeat_byte(8)];
    r.raw = Some(Bytes::from_static(b"\x02raw"));
    r.max_fee_per_gas = Some(10);
    r.max_priority_fee_per_gas = Some(1);
    r.replacements = 1;
    r.block_number = Some(3);
    r.block_hash = Some(B256::repeat_byte(7));
    r.broadcast_at = Some(Utc::now());
    r.error = Some("reverted".into());
    r.version = 2;
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_retries_of_a_failed_transaction_exactly_one_requeues_it() {
    let db = TestDb::new().await;
    let pool = haven_db::connect(db.url(), 16).await.unwrap();
    let store = Arc::new(PgTxStore::new(pool.clone()));
    let audit = PgAuditLog::new(pool);
    let record = failed_record("booking:1:mint");
    let mut queued = record.clone();
    queued.status = TxStatus::Queued;
    queued.version = 1;
    store.insert(queued).await.unwrap();
    assert!(store.update(&record).await.unwrap());

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .requeue_failed_audited(
                        "booking:1:mint",
                        2,
                        event("transaction.retry"),
                        Utc::now(),
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut applied = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Requeue::Queued(r) => applied.push(r),
            Requeue::Refused(current) => {
                assert_eq!(current.unwrap().status, TxStatus::Queued);
            }
        }
    }
    assert_eq!(applied.len(), 1);
    let r = &applied[0];
    assert_eq!((r.status, r.version), (TxStatus::Queued, 3));
    assert_eq!((r.nonce, r.hash, r.raw.clone()), (None, None, None));
    assert!(r.previous_hashes.is_empty());
    assert_eq!((r.max_fee_per_gas, r.replacements), (None, 0));
    assert_eq!(
        (r.block_number, r.block_hash, r.broadcast_at),
        (None, None, None)
    );
    assert_eq!(r.error.as_deref(), Some("reverted"), "kept for operators");
    assert!(r.same_request(&record));
    assert_eq!(store.get("booking:1:mint").await.unwrap().as_ref(), Some(r));
    assert_eq!(actions(&audit).await, ["transaction.retry"]);

    // Not failed (any more), or not there: refused, nothing written.
    let again = store
        .requeue_failed_audited("booking:1:mint", 3, event("transaction.retry"), Utc::now())
        .await
        .unwrap();
    assert!(matches!(again, Requeue::Refused(Some(_))), "{again:?}");
    let missing = store
        .requeue_failed_audited("nope", 1, event("transaction.retry"), Utc::now())
        .await
        .unwrap();
    assert_eq!(missing, Requeue::Refused(None));
    assert_eq!(actions(&audit).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn stuck_transactions_are_broadcast_ones_older_than_the_cut() {
    let db = TestDb::new().await;
    let store = PgTxStore::new(haven_db::connect(db.url(), 4).await.unwrap());
    let now = Utc::now();
    for (tx_id, at) in [("old", now - chrono::Duration::hours(1)), ("new", now)] {
        let mut r = failed_record(tx_id);
        let mut queued = r.clone();
        queued.status = TxStatus::Queued;
        queued.version = 1;
        store.insert(queued).await.unwrap();
        r.status = TxStatus::Broadcast;
        r.broadcast_at = Some(at);
        assert!(store.update(&r).await.unwrap());
    }
    let cut = now - chrono::Duration::minutes(5);
    let stuck = store.list_stuck(cut, 10).await.unwrap();
    assert_eq!(
        stuck.iter().map(|r| r.tx_id.as_str()).collect::<Vec<_>>(),
        ["old"]
    );
    assert_eq!(store.count_stuck(cut).await.unwrap(), 1);
    assert!(store.list_stuck(cut, 0).await.unwrap().is_empty());
}
