use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::pool::get;
use crate::schema::api_keys;
use crate::{Error, PgPool, Result};

/// A stored API key: its keyed hash and display prefix, never the key.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRecord {
    /// Id.
    pub id: Uuid,
    /// Human name.
    pub name: String,
    /// Owning user.
    pub owner_id: Uuid,
    /// HMAC-SHA256 of the key under the server pepper (32 bytes).
    pub key_hash: Vec<u8>,
    /// A short prefix to recognise the key in lists.
    pub display_prefix: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Expiry, if any.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last successful use.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Set once revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The member a member-scoped key acts for (it can reach that member only).
    pub member_id: Option<Uuid>,
}

/// A key to store.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// Human name.
    pub name: String,
    /// Owning user.
    pub owner_id: Uuid,
    /// HMAC-SHA256 of the key (32 bytes).
    pub key_hash: [u8; 32],
    /// Display prefix.
    pub display_prefix: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// The member a member-scoped key acts for.
    pub member_id: Option<Uuid>,
}

/// API keys in Postgres.
#[derive(Debug, Clone)]
pub struct ApiKeyRepo {
    pool: PgPool,
}

impl ApiKeyRepo {
    /// A repository on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool it works on.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Stores a key.
    pub async fn insert(&self, new: NewApiKey) -> Result<ApiKeyRecord> {
        let mut conn = get(&self.pool).await?;
        diesel::insert_into(api_keys::table)
            .values((
                api_keys::id.eq(Uuid::now_v7()),
                api_keys::name.eq(&new.name),
                api_keys::owner_id.eq(new.owner_id),
                api_keys::key_hash.eq(new.key_hash.as_slice()),
                api_keys::display_prefix.eq(&new.display_prefix),
                api_keys::scopes.eq(&new.scopes),
                api_keys::expires_at.eq(new.expires_at),
                api_keys::member_id.eq(new.member_id),
            ))
            .returning(ApiKeyRecord::as_returning())
            .get_result(&mut conn)
            .await
            .map_err(Error::from_write)
    }

    /// The key with this hash, revoked or not.
    pub async fn find_by_hash(&self, key_hash: &[u8; 32]) -> Result<Option<ApiKeyRecord>> {
        let mut conn = get(&self.pool).await?;
        Ok(api_keys::table
            .filter(api_keys::key_hash.eq(key_hash.as_slice()))
            .select(ApiKeyRecord::as_select())
            .first(&mut conn)
            .await
            .optional()?)
    }

    /// Keys of one owner, newest first.
    pub async fn list_by_owner(&self, owner_id: Uuid) -> Result<Vec<ApiKeyRecord>> {
        let mut conn = get(&self.pool).await?;
        Ok(api_keys::table
            .filter(api_keys::owner_id.eq(owner_id))
            .order(api_keys::created_at.desc())
            .select(ApiKeyRecord::as_select())
            .load(&mut conn)
            .await?)
    }

    /// Revokes a key; returns false when it does not exist or was already revoked.
    pub async fn revoke(&self, id: Uuid) -> Result<bool> {
        let mut conn = get(&self.pool).await?;
        let n = diesel::update(
            api_keys::table
                .find(id)
                .filter(api_keys::revoked_at.is_null()),
        )
        .set(api_keys::revoked_at.eq(diesel::dsl::now))
        .execute(&mut conn)
        .await?;
        Ok(n == 1)
    }

    /// Records a successful use.
    pub async fn touch(&self, id: Uuid) -> Result<()> {
        let mut conn = get(&self.pool).await?;
        diesel::update(api_keys::table.find(id))
            .set(api_keys::last_used_at.eq(diesel::dsl::now))
            .execute(&mut conn)
            .await?;
        Ok(())
    }
}
