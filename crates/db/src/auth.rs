//! The Postgres [`SessionStore`] of haven-auth: refresh-token families, refresh tokens by
//! `jti`, the access-token deny-list and the per-user not-before.

use std::net::IpAddr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven_auth::{
    Created, NewSession, RevokeReason, Rotated, Session, SessionError, SessionPolicy, SessionStore,
};
use uuid::Uuid;

use crate::schema::{auth_denied_tokens, auth_refresh_tokens, auth_sessions, auth_user_not_before};
use crate::{Error, PgPool};

const CURRENT: &str = "current";
const ROTATED: &str = "rotated";

/// A [`SessionStore`] on the `auth_sessions`, `auth_refresh_tokens`, `auth_denied_tokens`
/// and `auth_user_not_before` tables.
///
/// **Invariants:** `rotate` runs in one transaction that first locks the family row
/// (`SELECT … FOR UPDATE`), then spends the presented token with a compare-and-set
/// (`UPDATE … SET state = 'rotated' WHERE jti = $1 AND state = 'current'`) and inserts the
/// next one; of concurrent rotations of one token exactly one wins, and every other one
/// finds the token rotated, revokes the family and commits that revocation. `create` takes a
/// transaction-scoped advisory lock on the user, so the per-user limit holds under
/// concurrent logins.
#[derive(Debug, Clone)]
pub struct PgSessionStore {
    pool: PgPool,
}

impl PgSessionStore {
    /// The store on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Revokes every session of `user_id` and refuses every access token issued up to
    /// `now`, inside the caller's open transaction (a role change or a disabled account
    /// commits together with it).
    pub async fn revoke_all_in(
        conn: &mut AsyncPgConnection,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), diesel::result::Error> {
        diesel::update(
            auth_sessions::table
                .filter(auth_sessions::user_id.eq(user_id))
                .filter(auth_sessions::revoked_at.is_null()),
        )
        .set((
            auth_sessions::revoked_at.eq(now),
            auth_sessions::revoke_reason.eq(RevokeReason::LogoutEverywhere.as_str()),
        ))
        .execute(conn)
        .await?;
        diesel::insert_into(auth_user_not_before::table)
            .values((
                auth_user_not_before::user_id.eq(user_id),
                auth_user_not_before::not_before.eq(now),
            ))
            .on_conflict(auth_user_not_before::user_id)
            .do_update()
            .set(auth_user_not_before::not_before.eq(diesel::dsl::sql::<
                diesel::sql_types::Timestamptz,
            >(
                "GREATEST(auth_user_not_before.not_before, excluded.not_before)",
            )))
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn conn(
        &self,
    ) -> Result<diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>, SessionError>
    {
        self.pool.get().await.map_err(SessionError::store)
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = auth_sessions)]
struct SessionRow {
    family_id: Uuid,
    user_id: Uuid,
    device: String,
    ip: Option<String>,
    user_agent: String,
    created_at: DateTime<Utc>,
    last_active_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    revoke_reason: Option<String>,
}

fn parse_reason(raw: &str) -> Result<RevokeReason, Error> {
    [
        RevokeReason::Logout,
        RevokeReason::Evicted,
        RevokeReason::ReuseDetected,
        RevokeReason::LogoutEverywhere,
        RevokeReason::Expired,
    ]
    .into_iter()
    .find(|r| r.as_str() == raw)
    .ok_or_else(|| Error::Corrupt {
        table: "auth_sessions",
        reason: format!("unknown revoke_reason {raw:?}"),
    })
}

impl TryFrom<SessionRow> for Session {
    type Error = Error;
    fn try_from(row: SessionRow) -> Result<Self, Error> {
        let ip = row
            .ip
            .map(|raw| {
                raw.parse::<IpAddr>().map_err(|_| Error::Corrupt {
                    table: "auth_sessions",
                    reason: format!("ip {raw:?} of {} is not an address", row.family_id),
                })
            })
            .transpose()?;
        let revoked = match (row.revoked_at, row.revoke_reason) {
            (Some(at), Some(reason)) => Some((at, parse_reason(&reason)?)),
            (None, None) => None,
            _ => {
                return Err(Error::Corrupt {
                    table: "auth_sessions",
                    reason: format!("{} has revoked_at without revoke_reason", row.family_id),
                });
            }
        };
        Ok(Session {
            family_id: row.family_id,
            user_id: row.user_id,
            device: row.device,
            ip,
            user_agent: row.user_agent,
            created_at: row.created_at,
            last_active_at: row.last_active_at,
            revoked,
        })
    }
}

/// What a rotation transaction decided; revocations commit before they are reported.
enum RotateOutcome {
    Rotated(Rotated),
    Refused(SessionError),
}

/// The error type of the transactions here: diesel's rollback needs `From<diesel::Error>`.
struct TxFailure(SessionError);

impl From<diesel::result::Error> for TxFailure {
    fn from(e: diesel::result::Error) -> Self {
        TxFailure(query(e))
    }
}

impl From<SessionError> for TxFailure {
    fn from(e: SessionError) -> Self {
        TxFailure(e)
    }
}

fn query(e: diesel::result::Error) -> SessionError {
    SessionError::store(Error::Query(e))
}

async fn revoke_family(
    conn: &mut AsyncPgConnection,
    family_id: Uuid,
    reason: RevokeReason,
    now: DateTime<Utc>,
) -> Result<(), diesel::result::Error> {
    diesel::update(
        auth_sessions::table
            .find(family_id)
            .filter(auth_sessions::revoked_at.is_null()),
    )
    .set((
        auth_sessions::revoked_at.eq(now),
        auth_sessions::revoke_reason.eq(reason.as_str()),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

async fn unrevoked_of_user(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> Result<Vec<Session>, SessionError> {
    let rows: Vec<SessionRow> = auth_sessions::table
        .filter(auth_sessions::user_id.eq(user_id))
        .filter(auth_sessions::revoked_at.is_null())
        .select(SessionRow::as_select())
        .load(conn)
        .await
        .map_err(query)?;
    rows.into_iter()
        .map(|r| Session::try_from(r).map_err(SessionError::store))
        .collect()
}

#[async_trait]
impl SessionStore for PgSessionStore {
    async fn create(
        &self,
        new: NewSession,
        policy: &SessionPolicy,
        now: DateTime<Utc>,
    ) -> Result<Created, SessionError> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, TxFailure, _>(async |c| {
            diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind::<diesel::sql_types::Text, _>(new.user_id.to_string())
                .execute(c)
                .await
                .map_err(query)?;
            let mut active: Vec<(DateTime<Utc>, Uuid)> = unrevoked_of_user(c, new.user_id)
                .await?
                .into_iter()
                .filter(|s| s.is_active(policy, now))
                .map(|s| (s.created_at, s.family_id))
                .collect();
            active.sort();
            let keep = policy.max_active.saturating_sub(1);
            let excess = active.len().saturating_sub(keep);
            let evicted: Vec<Uuid> = active.into_iter().take(excess).map(|(_, id)| id).collect();
            for id in &evicted {
                revoke_family(c, *id, RevokeReason::Evicted, now)
                    .await
                    .map_err(query)?;
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
            diesel::insert_into(auth_sessions::table)
                .values((
                    auth_sessions::family_id.eq(session.family_id),
                    auth_sessions::user_id.eq(session.user_id),
                    auth_sessions::device.eq(&session.device),
                    auth_sessions::ip.eq(session.ip.map(|ip| ip.to_string())),
                    auth_sessions::user_agent.eq(&session.user_agent),
                    auth_sessions::created_at.eq(now),
                    auth_sessions::last_active_at.eq(now),
                ))
                .execute(c)
                .await
                .map_err(query)?;
            diesel::insert_into(auth_refresh_tokens::table)
                .values((
                    auth_refresh_tokens::jti.eq(refresh_jti),
                    auth_refresh_tokens::family_id.eq(session.family_id),
                    auth_refresh_tokens::state.eq(CURRENT),
                    auth_refresh_tokens::issued_at.eq(now),
                ))
                .execute(c)
                .await
                .map_err(query)?;
            Ok(Created {
                session,
                refresh_jti,
                evicted,
            })
        })
        .await
        .map_err(|f| f.0)
    }

    async fn rotate(
        &self,
        family_id: Uuid,
        presented_jti: Uuid,
        policy: &SessionPolicy,
        now: DateTime<Utc>,
    ) -> Result<Rotated, SessionError> {
        let mut conn = self.conn().await?;
        let outcome = conn
            .transaction::<_, TxFailure, _>(async |c| {
                let row: Option<SessionRow> = auth_sessions::table
                    .find(family_id)
                    .for_update()
                    .select(SessionRow::as_select())
                    .first(c)
                    .await
                    .optional()
                    .map_err(query)?;
                let Some(row) = row else {
                    return Ok(RotateOutcome::Refused(SessionError::UnknownRefreshToken));
                };
                let session = Session::try_from(row).map_err(SessionError::store)?;
                // Read after the lock: a concurrent rotation that won has committed by now.
                let state: Option<String> = auth_refresh_tokens::table
                    .find(presented_jti)
                    .filter(auth_refresh_tokens::family_id.eq(family_id))
                    .select(auth_refresh_tokens::state)
                    .first(c)
                    .await
                    .optional()
                    .map_err(query)?;
                let Some(state) = state else {
                    return Ok(RotateOutcome::Refused(SessionError::UnknownRefreshToken));
                };
                if let Some((_, reason)) = session.revoked {
                    return Ok(RotateOutcome::Refused(SessionError::FamilyRevoked {
                        family_id,
                        reason,
                    }));
                }
                let user_id = session.user_id;
                if state != CURRENT {
                    revoke_family(c, family_id, RevokeReason::ReuseDetected, now)
                        .await
                        .map_err(query)?;
                    return Ok(RotateOutcome::Refused(SessionError::ReuseDetected {
                        family_id,
                        user_id,
                    }));
                }
                if session.is_expired(policy, now) {
                    revoke_family(c, family_id, RevokeReason::Expired, now)
                        .await
                        .map_err(query)?;
                    return Ok(RotateOutcome::Refused(SessionError::Expired { family_id }));
                }
                let refresh_jti = Uuid::new_v4();
                let spent = diesel::update(
                    auth_refresh_tokens::table
                        .find(presented_jti)
                        .filter(auth_refresh_tokens::state.eq(CURRENT)),
                )
                .set((
                    auth_refresh_tokens::state.eq(ROTATED),
                    auth_refresh_tokens::rotated_at.eq(now),
                    auth_refresh_tokens::replaced_by.eq(refresh_jti),
                ))
                .execute(c)
                .await
                .map_err(query)?;
                if spent != 1 {
                    revoke_family(c, family_id, RevokeReason::ReuseDetected, now)
                        .await
                        .map_err(query)?;
                    return Ok(RotateOutcome::Refused(SessionError::ReuseDetected {
                        family_id,
                        user_id,
                    }));
                }
                diesel::insert_into(auth_refresh_tokens::table)
                    .values((
                        auth_refresh_tokens::jti.eq(refresh_jti),
                        auth_refresh_tokens::family_id.eq(family_id),
                        auth_refresh_tokens::state.eq(CURRENT),
                        auth_refresh_tokens::issued_at.eq(now),
                    ))
                    .execute(c)
                    .await
                    .map_err(query)?;
                diesel::update(auth_sessions::table.find(family_id))
                    .set(auth_sessions::last_active_at.eq(now))
                    .execute(c)
                    .await
                    .map_err(query)?;
                Ok(RotateOutcome::Rotated(Rotated {
                    family_id,
                    user_id,
                    refresh_jti,
                }))
            })
            .await
            .map_err(|f| f.0)?;
        match outcome {
            RotateOutcome::Rotated(rotated) => Ok(rotated),
            RotateOutcome::Refused(err) => Err(err),
        }
    }

    async fn list(
        &self,
        user_id: Uuid,
        policy: &SessionPolicy,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, SessionError> {
        let mut conn = self.conn().await?;
        let mut sessions: Vec<Session> = unrevoked_of_user(&mut conn, user_id)
            .await?
            .into_iter()
            .filter(|s| s.is_active(policy, now))
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
        let mut conn = self.conn().await?;
        let owner: Option<Uuid> = auth_sessions::table
            .find(family_id)
            .select(auth_sessions::user_id)
            .first(&mut conn)
            .await
            .optional()
            .map_err(query)?;
        if owner != Some(user_id) {
            return Err(SessionError::NotFound { family_id });
        }
        revoke_family(&mut conn, family_id, RevokeReason::Logout, now)
            .await
            .map_err(query)
    }

    async fn revoke_all(&self, user_id: Uuid, now: DateTime<Utc>) -> Result<(), SessionError> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, TxFailure, _>(async |c| {
            Self::revoke_all_in(c, user_id, now).await.map_err(query)?;
            Ok(())
        })
        .await
        .map_err(|f| f.0)
    }

    async fn not_before(&self, user_id: Uuid) -> Result<Option<DateTime<Utc>>, SessionError> {
        let mut conn = self.conn().await?;
        auth_user_not_before::table
            .find(user_id)
            .select(auth_user_not_before::not_before)
            .first(&mut conn)
            .await
            .optional()
            .map_err(query)
    }

    async fn deny_access_token(
        &self,
        jti: Uuid,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), SessionError> {
        let mut conn = self.conn().await?;
        diesel::delete(auth_denied_tokens::table.filter(auth_denied_tokens::expires_at.le(now)))
            .execute(&mut conn)
            .await
            .map_err(query)?;
        if expires_at > now {
            diesel::insert_into(auth_denied_tokens::table)
                .values((
                    auth_denied_tokens::jti.eq(jti),
                    auth_denied_tokens::expires_at.eq(expires_at),
                ))
                .on_conflict(auth_denied_tokens::jti)
                .do_update()
                .set(auth_denied_tokens::expires_at.eq(excluded(auth_denied_tokens::expires_at)))
                .execute(&mut conn)
                .await
                .map_err(query)?;
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
        let mut conn = self.conn().await?;
        let denied: Option<DateTime<Utc>> = auth_denied_tokens::table
            .find(jti)
            .filter(auth_denied_tokens::expires_at.gt(now))
            .select(auth_denied_tokens::expires_at)
            .first(&mut conn)
            .await
            .optional()
            .map_err(query)?;
        if denied.is_some() {
            return Err(SessionError::AccessTokenRevoked);
        }
        let not_before: Option<DateTime<Utc>> = auth_user_not_before::table
            .find(user_id)
            .select(auth_user_not_before::not_before)
            .first(&mut conn)
            .await
            .optional()
            .map_err(query)?;
        if let Some(not_before) = not_before
            && issued_at <= not_before.timestamp()
        {
            return Err(SessionError::AccessTokenRevoked);
        }
        Ok(())
    }
}
