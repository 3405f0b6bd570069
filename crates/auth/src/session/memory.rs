use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    Created, NewSession, RevokeReason, Rotated, Session, SessionError, SessionPolicy, SessionStore,
};

#[derive(Debug)]
struct Family {
    session: Session,
    current_jti: Uuid,
    spent: HashSet<Uuid>,
}

#[derive(Debug, Default)]
struct State {
    families: HashMap<Uuid, Family>,
    not_before: HashMap<Uuid, DateTime<Utc>>,
    denied: HashMap<Uuid, DateTime<Utc>>,
}

/// A [`SessionStore`] in process memory, for tests and single-instance use. Every operation
/// runs under one lock, which gives the trait's atomicity.
#[derive(Debug, Default)]
pub struct MemorySessionStore {
    state: Mutex<State>,
}

impl MemorySessionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn create(
        &self,
        new: NewSession,
        policy: &SessionPolicy,
        now: DateTime<Utc>,
    ) -> Result<Created, SessionError> {
        let mut state = self.lock();
        let mut active: Vec<(DateTime<Utc>, Uuid)> = state
            .families
            .values()
            .filter(|f| f.session.user_id == new.user_id && f.session.is_active(policy, now))
            .map(|f| (f.session.created_at, f.session.family_id))
            .collect();
        active.sort();
        let keep = policy.max_active.saturating_sub(1);
        let excess = active.len().saturating_sub(keep);
        let evicted: Vec<Uuid> = active.into_iter().take(excess).map(|(_, id)| id).collect();
        for id in &evicted {
            if let Some(family) = state.families.get_mut(id) {
                family.session.revoked = Some((now, RevokeReason::Evicted));
            }
        }
        let session = Session {
            family_id: Uuid::new_v4(),
            user_id: new.user_id,
            device: new.device,
            ip: new.ip,
            user_agent: new.user_agent,
            created_at: now,
            last_active_at: now,
            revoked: None,
        };
        let refresh_jti = Uuid::new_v4();
        state.families.insert(
            session.family_id,
            Family {
                session: session.clone(),
                current_jti: refresh_jti,
                spent: HashSet::new(),
            },
        );
        Ok(Created {
            session,
            refresh_jti,
            evicted,
        })
    }

    async fn rotate(
        &self,
        family_id: Uuid,
        presented_jti: Uuid,
        policy: &SessionPolicy,
        now: DateTime<Utc>,
    ) -> Result<Rotated, SessionError> {
        let mut state = self.lock();
        let Some(family) = state.families.get_mut(&family_id) else {
            return Err(SessionError::UnknownRefreshToken);
        };
        if family.current_jti != presented_jti && !family.spent.contains(&presented_jti) {
            return Err(SessionError::UnknownRefreshToken);
        }
        if let Some((_, reason)) = family.session.revoked {
            return Err(SessionError::FamilyRevoked { family_id, reason });
        }
        let user_id = family.session.user_id;
        if family.current_jti != presented_jti {
            family.session.revoked = Some((now, RevokeReason::ReuseDetected));
            return Err(SessionError::ReuseDetected { family_id, user_id });
        }
        if family.session.is_expired(policy, now) {
            family.session.revoked = Some((now, RevokeReason::Expired));
            return Err(SessionError::Expired { family_id });
        }
        let refresh_jti = Uuid::new_v4();
        family.spent.insert(presented_jti);
        family.current_jti = refresh_jti;
        family.session.last_active_at = now;
        Ok(Rotated {
            family_id,
            user_id,
            refresh_jti,
        })
    }

    async fn list(
        &self,
        user_id: Uuid,
        policy: &SessionPolicy,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, SessionError> {
        let state = self.lock();
        let mut sessions: Vec<Session> = state
            .families
            .values()
            .filter(|f| f.session.user_id == user_id && f.session.is_active(policy, now))
            .map(|f| f.session.clone())
            .collect();
        sessions.sort_by_key(|s| std::cmp::Reverse(s.last_active_at));
        Ok(sessions)
    }

    async fn revoke(
        &self,
        user_id: Uuid,
        family_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), SessionError> {
        let mut state = self.lock();
        match state.families.get_mut(&family_id) {
            Some(family) if family.session.user_id == user_id => {
                if family.session.revoked.is_none() {
                    family.session.revoked = Some((now, RevokeReason::Logout));
                }
                Ok(())
            }
            _ => Err(SessionError::NotFound { family_id }),
        }
    }

    async fn revoke_all(&self, user_id: Uuid, now: DateTime<Utc>) -> Result<(), SessionError> {
        let mut state = self.lock();
        for family in state.families.values_mut() {
            if family.session.user_id == user_id && family.session.revoked.is_none() {
                family.session.revoked = Some((now, RevokeReason::LogoutEverywhere));
            }
        }
        let not_before = state.not_before.entry(user_id).or_insert(now);
        *not_before = (*not_before).max(now);
        Ok(())
    }

    async fn not_before(&self, user_id: Uuid) -> Result<Option<DateTime<Utc>>, SessionError> {
        Ok(self.lock().not_before.get(&user_id).copied())
    }

    async fn deny_access_token(
        &self,
        jti: Uuid,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), SessionError> {
        let mut state = self.lock();
        state.denied.retain(|_, until| *until > now);
        if expires_at > now {
            state.denied.insert(jti, expires_at);
        }
        Ok(())
    }

    async fn check_access_token(
        &self,
        user_id: Uuid,
        jti: Uuid,
        issued_at: i64,
        now: DateTime<Utc>,
    ) -> Result<(), SessionError> {
        let state = self.lock();
        if state.denied.get(&jti).is_some_and(|until| *until > now) {
            return Err(SessionError::AccessTokenRevoked);
        }
        if let Some(not_before) = state.not_before.get(&user_id)
            && issued_at <= not_before.timestamp()
        {
            return Err(SessionError::AccessTokenRevoked);
        }
        Ok(())
    }
}
