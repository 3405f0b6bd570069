//! The behaviour every [`SessionStore`] must show, as async checks that panic on the first
//! violation. Run [`run_all`] against your backend:
//!
//! ```
//! let store = haven_auth::MemorySessionStore::new();
//! futures::executor::block_on(haven_auth::conformance::run_all(&store));
//! ```
//!
//! Every check works on its own random users and passes explicit times, so checks may share
//! a store, run in any order and need no sleeping.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use futures::future::join_all;
use uuid::Uuid;

use crate::session::{NewSession, RevokeReason, SessionError, SessionPolicy, SessionStore};

/// A fixed start time, so checks do not depend on the wall clock.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap()
}

/// `t0() + secs`.
pub fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(secs)
}

/// A login of `user` from a test device.
pub fn login(user: Uuid, device: &str) -> NewSession {
    NewSession {
        user_id: user,
        device: device.to_owned(),
        ip: Some(std::net::IpAddr::from([192, 0, 2, 7])),
        user_agent: format!("conformance/{device}"),
    }
}

fn policy() -> SessionPolicy {
    SessionPolicy::default()
}

/// Runs every check.
pub async fn run_all(store: &dyn SessionStore) {
    create_returns_a_session_and_a_first_jti(store).await;
    rotation_hands_out_a_new_jti_each_time(store).await;
    reusing_a_rotated_jti_revokes_the_family(store).await;
    unknown_tokens_are_refused(store).await;
    a_fourth_login_revokes_the_oldest(store).await;
    idle_sessions_expire(store).await;
    sessions_end_after_their_lifetime(store).await;
    users_list_and_revoke_only_their_own_sessions(store).await;
    logout_everywhere_revokes_families_and_older_access_tokens(store).await;
    deny_list_holds_until_expiry(store).await;
    concurrent_rotations_of_one_token_let_exactly_one_win(store).await;
}

/// A login yields an active session with the client's details and a first refresh `jti`.
pub async fn create_returns_a_session_and_a_first_jti(store: &dyn SessionStore) {
    let user = Uuid::new_v4();
    let created = store
        .create(login(user, "laptop"), &policy(), t0())
        .await
        .unwrap();
    let s = &created.session;
    assert_eq!(s.user_id, user);
    assert_eq!(s.device, "laptop");
    assert_eq!(s.user_agent, "conformance/laptop");
    assert_eq!(s.ip, Some(std::net::IpAddr::from([192, 0, 2, 7])));
    assert_eq!((s.created_at, s.last_active_at), (t0(), t0()));
    assert_eq!(s.revoked, None);
    assert!(created.evicted.is_empty());
    let listed = store.list(user, &policy(), at(1)).await.unwrap();
    assert_eq!(listed, vec![created.session.clone()]);
}

/// Each rotation spends the presented `jti`, returns a fresh one and records activity.
pub async fn rotation_hands_out_a_new_jti_each_time(store: &dyn SessionStore) {
    let user = Uuid::new_v4();
    let created = store
        .create(login(user, "phone"), &policy(), t0())
        .await
        .unwrap();
    let family = created.session.family_id;
    let mut seen = BTreeSet::from([created.refresh_jti]);
    let mut jti = created.refresh_jti;
    for i in 1..=5 {
        let rotated = store
            .rotate(family, jti, &policy(), at(i * 60))
            .await
            .unwrap();
        assert_eq!(rotated.family_id, family);
        assert_eq!(rotated.user_id, user);
        assert!(seen.insert(rotated.refresh_jti), "jti handed out twice");
        jti = rotated.refresh_jti;
    }
    let listed = store.list(user, &policy(), at(301)).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_active_at, at(300));
}

/// Presenting a spent `jti` revokes the family and says so; the family's current token then
/// fails too.
pub async fn reusing_a_rotated_jti_revokes_the_family(store: &dyn SessionStore) {
    let user = Uuid::new_v4();
    let created = store
        .create(login(user, "laptop"), &policy(), t0())
        .await
        .unwrap();
    let family = created.session.family_id;
    let first = created.refresh_jti;
    let second = store
        .rotate(family, first, &policy(), at(10))
        .await
        .unwrap()
        .refresh_jti;

    match store.rotate(family, first, &policy(), at(20)).await {
        Err(SessionError::ReuseDetected { family_id, user_id }) => {
            assert_eq!((family_id, user_id), (family, user));
        }
        other => panic!("expected ReuseDetected, got {other:?}"),
    }
    match store.rotate(family, second, &policy(), at(30)).await {
        Err(SessionError::FamilyRevoked { family_id, reason }) => {
            assert_eq!(family_id, family);
            assert_eq!(reason, RevokeReason::ReuseDetected);
        }
        other => panic!("expected FamilyRevoked, got {other:?}"),
    }
    assert!(
        store
            .list(user, &policy(), at(31))
            .await
            .unwrap()
            .is_empty()
    );
}

/// A random `jti`, or a real `jti` under another family, is unknown and revokes nothing.
pub async fn unknown_tokens_are_refused(store: &dyn SessionStore) {
    let user = Uuid::new_v4();
    let a = store
        .create(login(user, "a"), &policy(), t0())
        .await
        .unwrap();
    let b = store
        .create(login(user, "b"), &policy(), t0())
        .await
        .unwrap();
    let cases = [
        (a.session.family_id, Uuid::new_v4()),
        (a.session.family_id, b.refresh_jti),
        (Uuid::new_v4(), a.refresh_jti),
    ];
    for (family, jti) in cases {
        assert!(
            matches!(
                store.rotate(family, jti, &policy(), at(1)).await,
                Err(SessionError::UnknownRefreshToken)
            ),
            "{family} / {jti}"
        );
    }
    assert_eq!(store.list(user, &policy(), at(2)).await.unwrap().len(), 2);
    assert!(
        store
            .rotate(a.session.family_id, a.refresh_jti, &policy(), at(3))
            .await
            .is_ok()
    );
}

/// At most `max_active` (3) families per user: the fourth login revokes the oldest.
pub async fn a_fourth_login_revokes_the_oldest(store: &dyn SessionStore) {
    let user = Uuid::new_v4();
    let other = Uuid::new_v4();
    store
        .create(login(other, "x"), &policy(), t0())
        .await
        .unwrap();
    let mut created = Vec::new();
    for i in 0..3 {
        let c = store
            .create(login(user, &format!("d{i}")), &policy(), at(i))
            .await
            .unwrap();
        assert!(c.evicted.is_empty());
        created.push(c);
    }
    let fourth = store
        .create(login(user, "d3"), &policy(), at(10))
        .await
        .unwrap();
    assert_eq!(fourth.evicted, vec![created[0].session.family_id]);
    let listed: BTreeSet<Uuid> = store
        .list(user, &policy(), at(11))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.family_id)
        .collect();
    let expected: BTreeSet<Uuid> = [&created[1], &created[2], &fourth]
        .iter()
        .map(|c| c.session.family_id)
        .collect();
    assert_eq!(listed, expected);
    match store
        .rotate(
            created[0].session.family_id,
            created[0].refresh_jti,
            &policy(),
            at(12),
        )
        .await
    {
        Err(SessionError::FamilyRevoked { reason, .. }) => {
            assert_eq!(reason, RevokeReason::Evicted);
        }
        other => panic!("expected FamilyRevoked(Evicted), got {other:?}"),
    }
    assert_eq!(
        store.list(other, &policy(), at(13)).await.unwrap().len(),
        1,
        "other users are untouched"
    );
}

/// A family not refreshed for 30 minutes ends, and no longer counts against the limit.
pub async fn idle_sessions_expire(store: &dyn SessionStore) {
    let user = Uuid::new_v4();
    let idle = policy().idle_timeout.as_secs() as i64;
    let a = store
        .create(login(user, "a"), &policy(), t0())
        .await
        .unwrap();
    let jti = store
        .rotate(a.session.family_id, a.refresh_jti, &policy(), at(idle - 1))
        .await
        .unwrap()
        .refresh_jti;
    // Activity at idle-1 keeps it alive until 2·idle-1.
    assert_eq!(
        store
            .list(user, &policy(), at(2 * idle - 2))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .list(user, &policy(), at(2 * idle - 1))
            .await
            .unwrap()
            .is_empty()
    );
    match store
        .rotate(a.session.family_id, jti, &policy(), at(2 * idle))
        .await
    {
        Err(SessionError::Expired { family_id }) => assert_eq!(family_id, a.session.family_id),
        other => panic!("expected Expired, got {other:?}"),
    }

    let later = at(10 * idle);
    let mut fresh = Vec::new();
    for i in 0..3 {
        let c = store
            .create(login(user, &format!("n{i}")), &policy(), later)
            .await
            .unwrap();
        assert!(c.evicted.is_empty(), "idle families do not count");
        fresh.push(c);
    }
    assert_eq!(store.list(user, &policy(), later).await.unwrap().len(), 3);
}

/// Even an active family ends after `lifetime` (the refresh TTL).
pub async fn sessions_end_after_their_lifetime(store: &dyn SessionStore) {
    let user = Uuid::new_v4();
    let short = SessionPolicy {
        lifetime: Duration::from_secs(3600),
        ..policy()
    };
    let c = store.create(login(user, "a"), &short, t0()).await.unwrap();
    let mut jti = c.refresh_jti;
    for minute in [20, 40] {
        jti = store
            .rotate(c.session.family_id, jti, &short, at(minute * 60))
            .await
            .unwrap()
            .refresh_jti;
    }
    assert!(matches!(
        store
            .rotate(c.session.family_id, jti, &short, at(3600))
            .await,
        Err(SessionError::Expired { .. })
    ));
}

/// Users see and revoke their own sessions; another user's session is "not found".
pub async fn users_list_and_revoke_only_their_own_sessions(store: &dyn SessionStore) {
    let alice = Uuid::new_v4();
    let mallory = Uuid::new_v4();
    let a1 = store
        .create(login(alice, "a1"), &policy(), t0())
        .await
        .unwrap();
    let a2 = store
        .create(login(alice, "a2"), &policy(), at(5))
        .await
        .unwrap();
    store
        .create(login(mallory, "m"), &policy(), t0())
        .await
        .unwrap();

    let listed = store.list(alice, &policy(), at(6)).await.unwrap();
    assert_eq!(
        listed.iter().map(|s| s.device.as_str()).collect::<Vec<_>>(),
        ["a2", "a1"],
        "most recently active first"
    );
    assert!(listed.iter().all(|s| s.user_id == alice));

    let family = a1.session.family_id;
    assert!(matches!(
        store.revoke(mallory, family, at(7)).await,
        Err(SessionError::NotFound { family_id }) if family_id == family
    ));
    assert!(matches!(
        store.revoke(alice, Uuid::new_v4(), at(7)).await,
        Err(SessionError::NotFound { .. })
    ));
    assert_eq!(store.list(alice, &policy(), at(8)).await.unwrap().len(), 2);

    store.revoke(alice, family, at(9)).await.unwrap();
    store.revoke(alice, family, at(10)).await.unwrap();
    let listed = store.list(alice, &policy(), at(11)).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].family_id, a2.session.family_id);
    match store
        .rotate(family, a1.refresh_jti, &policy(), at(12))
        .await
    {
        Err(SessionError::FamilyRevoked { reason, .. }) => {
            assert_eq!(reason, RevokeReason::Logout);
        }
        other => panic!("expected FamilyRevoked(Logout), got {other:?}"),
    }
}

/// "Log out everywhere" revokes every family of the user and refuses access tokens issued
/// up to that second; later logins work.
pub async fn logout_everywhere_revokes_families_and_older_access_tokens(store: &dyn SessionStore) {
    let user = Uuid::new_v4();
    let bystander = Uuid::new_v4();
    let a = store
        .create(login(user, "a"), &policy(), t0())
        .await
        .unwrap();
    let b = store
        .create(login(user, "b"), &policy(), t0())
        .await
        .unwrap();
    let c = store
        .create(login(bystander, "c"), &policy(), t0())
        .await
        .unwrap();
    assert_eq!(store.not_before(user).await.unwrap(), None);

    let logout = at(100);
    store.revoke_all(user, logout).await.unwrap();
    assert_eq!(store.not_before(user).await.unwrap(), Some(logout));
    assert!(
        store
            .list(user, &policy(), at(101))
            .await
            .unwrap()
            .is_empty()
    );
    for created in [&a, &b] {
        match store
            .rotate(
                created.session.family_id,
                created.refresh_jti,
                &policy(),
                at(102),
            )
            .await
        {
            Err(SessionError::FamilyRevoked { reason, .. }) => {
                assert_eq!(reason, RevokeReason::LogoutEverywhere);
            }
            other => panic!("expected FamilyRevoked(LogoutEverywhere), got {other:?}"),
        }
    }
    for iat in [at(50).timestamp(), logout.timestamp()] {
        assert!(matches!(
            store
                .check_access_token(user, Uuid::new_v4(), iat, at(103))
                .await,
            Err(SessionError::AccessTokenRevoked)
        ));
    }
    store
        .check_access_token(user, Uuid::new_v4(), at(101).timestamp(), at(103))
        .await
        .unwrap();
    store
        .check_access_token(bystander, Uuid::new_v4(), at(50).timestamp(), at(103))
        .await
        .unwrap();
    assert!(
        store
            .rotate(c.session.family_id, c.refresh_jti, &policy(), at(104))
            .await
            .is_ok()
    );
    let again = store
        .create(login(user, "a"), &policy(), at(105))
        .await
        .unwrap();
    assert!(again.evicted.is_empty());
    assert_eq!(store.list(user, &policy(), at(106)).await.unwrap().len(), 1);
}

/// A logged-out access token is refused until its expiry; others are not.
pub async fn deny_list_holds_until_expiry(store: &dyn SessionStore) {
    let user = Uuid::new_v4();
    let jti = Uuid::new_v4();
    let exp = at(900);
    store.deny_access_token(jti, exp, at(10)).await.unwrap();
    let iat = t0().timestamp();
    assert!(matches!(
        store.check_access_token(user, jti, iat, at(11)).await,
        Err(SessionError::AccessTokenRevoked)
    ));
    assert!(matches!(
        store
            .check_access_token(Uuid::new_v4(), jti, iat, at(899))
            .await,
        Err(SessionError::AccessTokenRevoked)
    ));
    store
        .check_access_token(user, Uuid::new_v4(), iat, at(11))
        .await
        .unwrap();
    // After `exp` the token fails its own expiry check; the entry may go.
    store
        .check_access_token(user, jti, iat, at(900))
        .await
        .unwrap();
    store
        .deny_access_token(Uuid::new_v4(), at(1000), at(901))
        .await
        .unwrap();
}

/// Of many concurrent rotations presenting the same `jti`, exactly one succeeds; the others
/// report reuse and the family ends revoked (the winner's new token included).
pub async fn concurrent_rotations_of_one_token_let_exactly_one_win(store: &dyn SessionStore) {
    let user = Uuid::new_v4();
    let c = store
        .create(login(user, "a"), &policy(), t0())
        .await
        .unwrap();
    let family = c.session.family_id;
    let policy = policy();
    let results =
        join_all((0..8).map(|_| store.rotate(family, c.refresh_jti, &policy, at(1)))).await;
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let losers = results.iter().filter(|r| r.is_err()).count();
    assert_eq!(losers, 7);
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(SessionError::ReuseDetected { .. }))),
        "{results:?}"
    );
    assert!(
        results.iter().all(|r| matches!(
            r,
            Ok(_) | Err(SessionError::ReuseDetected { .. } | SessionError::FamilyRevoked { .. })
        )),
        "{results:?}"
    );
    assert!(matches!(
        store
            .rotate(family, winners[0].refresh_jti, &policy, at(2))
            .await,
        Err(SessionError::FamilyRevoked {
            reason: RevokeReason::ReuseDetected,
            ..
        })
    ));
}
