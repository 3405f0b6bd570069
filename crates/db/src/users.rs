use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven_core::audit::AuditEvent;
use serde_json::json;
use uuid::Uuid;

use crate::pool::get;
use crate::schema::users;
use crate::{Error, PgAuditLog, PgPool, PgSessionStore, Result};

/// The three roles of the permission model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including user and key management.
    Admin,
    /// Day-to-day operations: retries, reviews, wallets.
    Operator,
    /// Read-only.
    Viewer,
}

impl Role {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }

    /// Parses a stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// A user row.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Id.
    pub id: Uuid,
    /// Login e-mail, unique case-insensitively.
    pub email: String,
    /// argon2id PHC string, when the user can log in with a password.
    pub password_hash: Option<String>,
    /// Role.
    pub role: Role,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Set when the account is disabled.
    pub disabled_at: Option<DateTime<Utc>>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
struct UserRow {
    id: Uuid,
    email: String,
    password_hash: Option<String>,
    role: String,
    created_at: DateTime<Utc>,
    disabled_at: Option<DateTime<Utc>>,
}

impl TryFrom<UserRow> for User {
    type Error = Error;
    fn try_from(row: UserRow) -> Result<Self> {
        let role = Role::parse(&row.role).ok_or_else(|| Error::Corrupt {
            table: "users",
            reason: format!("unknown role {:?}", row.role),
        })?;
        Ok(User {
            id: row.id,
            email: row.email,
            password_hash: row.password_hash,
            role,
            created_at: row.created_at,
            disabled_at: row.disabled_at,
        })
    }
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login e-mail.
    pub email: String,
    /// argon2id PHC string, if any.
    pub password_hash: Option<String>,
    /// Role.
    pub role: Role,
}

/// Users in Postgres.
#[derive(Debug, Clone)]
pub struct UserRepo {
    pool: PgPool,
}

impl UserRepo {
    /// A repository on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Inserts a user; a taken e-mail gives [`Error::Conflict`].
    pub async fn create(&self, new: NewUser) -> Result<User> {
        let mut conn = get(&self.pool).await?;
        insert_in(&mut conn, &new).await
    }

    /// The user with this id.
    pub async fn get(&self, id: Uuid) -> Result<Option<User>> {
        let mut conn = get(&self.pool).await?;
        let row = users::table
            .find(id)
            .select(UserRow::as_select())
            .first(&mut conn)
            .await
            .optional()?;
        row.map(User::try_from).transpose()
    }

    /// The user with this e-mail, compared case-insensitively.
    pub async fn find_by_email(&self, email: &str) -> Result<Option<User>> {
        let mut conn = get(&self.pool).await?;
        let row = users::table
            .filter(
                diesel::dsl::sql::<diesel::sql_types::Bool>("lower(email) = lower(")
                    .bind::<diesel::sql_types::Text, _>(email)
                    .sql(")"),
            )
            .select(UserRow::as_select())
            .first(&mut conn)
            .await
            .optional()?;
        row.map(User::try_from).transpose()
    }

    /// Changes a user's role; returns whether the user exists.
    pub async fn set_role(&self, id: Uuid, role: Role) -> Result<bool> {
        let mut conn = get(&self.pool).await?;
        let n = diesel::update(users::table.find(id))
            .set((
                users::role.eq(role.as_str()),
                users::updated_at.eq(diesel::dsl::now),
            ))
            .execute(&mut conn)
            .await?;
        Ok(n == 1)
    }
}

/// Transaction-scoped advisory lock that serializes role changes and disabling, so two
/// administrators demoting each other cannot both succeed ("havenADM").
const ADMIN_CHANGE_LOCK: i64 = 0x6861_7665_6e41_444d;

/// What [`UserRepo::change_role_audited`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum RoleChange {
    /// Changed and audited; the user's sessions and access tokens were revoked.
    Changed {
        /// The user after the change.
        user: User,
        /// The role before.
        from: Role,
        /// API keys of the user revoked because the new role cannot grant their scopes.
        revoked_keys: Vec<RevokedKey>,
    },
    /// The user already had the role: nothing was written.
    Unchanged(User),
    /// No such user.
    NotFound,
    /// The user is the last active admin: nothing was written.
    LastAdmin,
}

/// What [`UserRepo::disable_audited`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Disable {
    /// Disabled and audited; sessions, access tokens and API keys were revoked.
    Disabled {
        /// The user after the change.
        user: User,
        /// The user's API keys revoked with it.
        revoked_keys: Vec<RevokedKey>,
    },
    /// The user was disabled already: nothing was written.
    AlreadyDisabled(User),
    /// No such user.
    NotFound,
    /// The user is the last active admin: nothing was written.
    LastAdmin,
}

/// An API key revoked by a user change, for the callers' validation caches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedKey {
    /// The key's id.
    pub id: Uuid,
    /// Its stored hash (the cache key).
    pub key_hash: Vec<u8>,
}

/// The API-key scopes `role` may hold (see `haven_auth::allows`).
fn grantable_scopes(role: Role) -> Vec<&'static str> {
    let role = match role {
        Role::Admin => haven_auth::Role::Admin,
        Role::Operator => haven_auth::Role::Operator,
        Role::Viewer => haven_auth::Role::Viewer,
    };
    haven_auth::Permission::ALL
        .iter()
        .filter(|p| role.allows(**p))
        .map(|p| p.as_scope())
        .collect()
}

#[derive(QueryableByName)]
struct RevokedRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Bytea)]
    key_hash: Vec<u8>,
}

/// Revokes the unrevoked keys of `owner` whose scopes are not all within `allowed`
/// (`None`: every key).
async fn revoke_keys_in(
    conn: &mut AsyncPgConnection,
    owner: Uuid,
    allowed: Option<Vec<&'static str>>,
    now: DateTime<Utc>,
) -> QueryResult<Vec<RevokedKey>> {
    use diesel::sql_types::{Array, Nullable, Text, Timestamptz};
    let rows: Vec<RevokedRow> = diesel::sql_query(
        "UPDATE api_keys SET revoked_at = $2 WHERE owner_id = $1 AND revoked_at IS NULL \
         AND ($3::text[] IS NULL OR NOT (scopes <@ $3::text[])) RETURNING id, key_hash",
    )
    .bind::<diesel::sql_types::Uuid, _>(owner)
    .bind::<Timestamptz, _>(now)
    .bind::<Nullable<Array<Text>>, _>(allowed)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| RevokedKey {
            id: r.id,
            key_hash: r.key_hash,
        })
        .collect())
}

/// Whether `user` is an active admin and no other active admin exists. Call under
/// [`ADMIN_CHANGE_LOCK`].
async fn is_last_admin(conn: &mut AsyncPgConnection, user: &User) -> QueryResult<bool> {
    if user.role != Role::Admin || user.disabled_at.is_some() {
        return Ok(false);
    }
    let others: i64 = users::table
        .filter(users::role.eq(Role::Admin.as_str()))
        .filter(users::disabled_at.is_null())
        .filter(users::id.ne(user.id))
        .count()
        .get_result(conn)
        .await?;
    Ok(others == 0)
}

/// `event` with the entries of `extra` added to its details (the caller's entries, such as
/// an outcome, are kept).
fn with_details(mut event: AuditEvent, extra: serde_json::Value) -> AuditEvent {
    match (&mut event.details, extra) {
        (serde_json::Value::Object(details), serde_json::Value::Object(extra)) => {
            details.extend(extra);
        }
        (details, extra) => *details = extra,
    }
    event
}

/// Inserts a user on `conn`; a taken e-mail gives [`Error::Conflict`].
async fn insert_in(conn: &mut AsyncPgConnection, new: &NewUser) -> Result<User> {
    let row: UserRow = diesel::insert_into(users::table)
        .values((
            users::id.eq(Uuid::now_v7()),
            users::email.eq(&new.email),
            users::password_hash.eq(&new.password_hash),
            users::role.eq(new.role.as_str()),
        ))
        .returning(UserRow::as_returning())
        .get_result(conn)
        .await
        .map_err(Error::from_write)?;
    row.try_into()
}

async fn lock_user(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<User>> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
        .bind::<diesel::sql_types::BigInt, _>(ADMIN_CHANGE_LOCK)
        .execute(conn)
        .await?;
    let row = users::table
        .find(id)
        .select(UserRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?;
    row.map(User::try_from).transpose()
}

impl UserRepo {
    /// Up to `limit` users with ids after `after` (ids are UUIDv7: creation order).
    pub async fn list(&self, after: Option<Uuid>, limit: i64) -> Result<Vec<User>> {
        let mut conn = get(&self.pool).await?;
        let mut query = users::table.select(UserRow::as_select()).into_boxed();
        if let Some(after) = after {
            query = query.filter(users::id.gt(after));
        }
        let rows: Vec<UserRow> = query
            .order(users::id.asc())
            .limit(limit)
            .load(&mut conn)
            .await?;
        rows.into_iter().map(User::try_from).collect()
    }

    /// Inserts a user and appends `audit` (targeted at the new user, its e-mail and role added
    /// to the details) in one transaction; a
    /// taken e-mail gives [`Error::Conflict`] and writes nothing.
    pub async fn create_audited(&self, new: NewUser, audit: AuditEvent) -> Result<User> {
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, Error, _>(async |c| {
            let user = insert_in(c, &new).await?;
            let audit = with_details(
                audit.target(format!("user:{}", user.id)),
                json!({"email": user.email, "role": user.role.as_str()}),
            );
            PgAuditLog::append_in(c, audit).await?;
            Ok(user)
        })
        .await
    }

    /// Gives user `id` the role `to`, in one transaction with everything that follows from
    /// it: the user's sessions are revoked and every access token issued so far refused (the
    /// old role's tokens stop working), API keys whose scopes the new role cannot grant are
    /// revoked, and `audit` is appended (targeted at the user, with the old and new role).
    ///
    /// **Invariant:** there is always an active admin. Role changes and disabling are
    /// serialized by a transaction-scoped advisory lock, and demoting the last active admin
    /// answers [`RoleChange::LastAdmin`] without writing anything.
    pub async fn change_role_audited(
        &self,
        id: Uuid,
        to: Role,
        audit: AuditEvent,
        now: DateTime<Utc>,
    ) -> Result<RoleChange> {
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, Error, _>(async |c| {
            let Some(user) = lock_user(c, id).await? else {
                return Ok(RoleChange::NotFound);
            };
            if user.role == to {
                return Ok(RoleChange::Unchanged(user));
            }
            if to != Role::Admin && is_last_admin(c, &user).await? {
                return Ok(RoleChange::LastAdmin);
            }
            let from = user.role;
            let row: UserRow = diesel::update(users::table.find(id))
                .set((users::role.eq(to.as_str()), users::updated_at.eq(now)))
                .returning(UserRow::as_returning())
                .get_result(c)
                .await?;
            let user = User::try_from(row)?;
            PgSessionStore::revoke_all_in(c, id, now).await?;
            let revoked_keys = revoke_keys_in(c, id, Some(grantable_scopes(to)), now).await?;
            let audit = with_details(
                audit.target(format!("user:{id}")),
                json!({
                    "from": from.as_str(),
                    "to": to.as_str(),
                    "revoked_api_keys": revoked_keys.iter().map(|k| k.id).collect::<Vec<_>>(),
                }),
            );
            PgAuditLog::append_in(c, audit).await?;
            Ok(RoleChange::Changed {
                user,
                from,
                revoked_keys,
            })
        })
        .await
    }

    /// Disables user `id` in one transaction with its sessions, access tokens and API keys,
    /// appending `audit` (targeted at the user). The last active admin cannot be disabled
    /// (see [`change_role_audited`](Self::change_role_audited)).
    pub async fn disable_audited(
        &self,
        id: Uuid,
        audit: AuditEvent,
        now: DateTime<Utc>,
    ) -> Result<Disable> {
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, Error, _>(async |c| {
            let Some(user) = lock_user(c, id).await? else {
                return Ok(Disable::NotFound);
            };
            if user.disabled_at.is_some() {
                return Ok(Disable::AlreadyDisabled(user));
            }
            if is_last_admin(c, &user).await? {
                return Ok(Disable::LastAdmin);
            }
            let row: UserRow = diesel::update(users::table.find(id))
                .set((users::disabled_at.eq(now), users::updated_at.eq(now)))
                .returning(UserRow::as_returning())
                .get_result(c)
                .await?;
            let user = User::try_from(row)?;
            PgSessionStore::revoke_all_in(c, id, now).await?;
            let revoked_keys = revoke_keys_in(c, id, None, now).await?;
            let audit = with_details(
                audit.target(format!("user:{id}")),
                json!({
                    "role": user.role.as_str(),
                    "revoked_api_keys": revoked_keys.iter().map(|k| k.id).collect::<Vec<_>>(),
                }),
            );
            PgAuditLog::append_in(c, audit).await?;
            Ok(Disable::Disabled { user, revoked_keys })
        })
        .await
    }
}
