use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::pool::get;
use crate::schema::users;
use crate::{Error, PgPool, Result};

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
        let row: UserRow = diesel::insert_into(users::table)
            .values((
                users::id.eq(Uuid::now_v7()),
                users::email.eq(&new.email),
                users::password_hash.eq(&new.password_hash),
                users::role.eq(new.role.as_str()),
            ))
            .returning(UserRow::as_returning())
            .get_result(&mut conn)
            .await
            .map_err(Error::from_write)?;
        row.try_into()
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
