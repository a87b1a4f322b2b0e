//! The `users` table: people who log in with a name and password.
//!
//! Passwords arrive here already hashed (argon2id PHC strings, made by the API layer); this
//! module never sees a plain password.

use dozor_model::time::{Millis, now_ms};
use dozor_model::{Role, TenantId};

use crate::rls::RowScope;
use crate::tenants::insert_tenant;
use crate::{StateError, Store, new_id};

/// A user as stored.
#[derive(Debug, Clone)]
pub struct User {
    /// Random identifier.
    pub id: String,
    /// The tenant the user belongs to.
    pub tenant: TenantId,
    /// Login name, unique across the installation.
    pub name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// What the user may do.
    pub role: Role,
    /// When the user was created.
    pub created_ms: Millis,
    /// When the user was disabled, if it was.
    pub disabled_ms: Option<Millis>,
}

type UserRow = (String, String, String, String, String, i64, Option<i64>);

const USER_COLUMNS: &str = "id, tenant_id, name, password_hash, role, created_ms, disabled_ms";

fn user_from_row(row: UserRow) -> Result<User, StateError> {
    let (id, tenant, name, password_hash, role, created_ms, disabled_ms) = row;
    Ok(User {
        id,
        tenant: tenant
            .parse()
            .map_err(|e| StateError::Corrupt(format!("user tenant: {e}")))?,
        name,
        password_hash,
        role: role
            .parse()
            .map_err(|e| StateError::Corrupt(format!("user role: {e}")))?,
        created_ms,
        disabled_ms,
    })
}

impl Store {
    /// Creates a user in `tenant` (creating the tenant if needed). Fails with
    /// [`StateError::Conflict`] if the name is taken.
    pub async fn create_user(
        &self,
        tenant: &TenantId,
        name: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<User, StateError> {
        let user = User {
            id: new_id()?,
            tenant: tenant.clone(),
            name: name.to_owned(),
            password_hash: password_hash.to_owned(),
            role,
            created_ms: now_ms(),
            disabled_ms: None,
        };
        self.scoped(RowScope::Tenant(tenant), "create user", async |conn| {
            insert_tenant(conn, tenant).await?;
            sqlx::query(
                "INSERT INTO users (id, tenant_id, name, password_hash, role, created_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&user.id)
            .bind(user.tenant.as_str())
            .bind(&user.name)
            .bind(&user.password_hash)
            .bind(user.role.as_str())
            .bind(user.created_ms)
            .execute(conn)
            .await
            .map_err(|e| {
                if StateError::is_unique_violation(&e) {
                    StateError::Conflict(format!("user {name:?}"))
                } else {
                    StateError::Query {
                        what: "create user",
                        source: e,
                    }
                }
            })
        })
        .await?;
        Ok(user)
    }

    /// The user with this login name, in any tenant (names are unique installation-wide,
    /// so a login needs no tenant).
    pub async fn user_by_name(&self, name: &str) -> Result<Option<User>, StateError> {
        self.user_where("name = $1", name).await
    }

    /// The user with this id.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>, StateError> {
        self.user_where("id = $1", id).await
    }

    /// The one user where `condition` (on `$1`, bound to `key`) holds, in any tenant.
    async fn user_where(&self, condition: &str, key: &str) -> Result<Option<User>, StateError> {
        let what = "find user";
        let row: Option<UserRow> = self
            .scoped(RowScope::System, what, async |conn| {
                sqlx::query_as(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE {condition}"
                ))
                .bind(key)
                .fetch_optional(conn)
                .await
                .map_err(StateError::query(what))
            })
            .await?;
        row.map(user_from_row).transpose()
    }

    /// The users of `tenant`, by name.
    pub async fn list_users(&self, tenant: &TenantId) -> Result<Vec<User>, StateError> {
        let what = "list users";
        let rows: Vec<UserRow> = self
            .scoped(RowScope::Tenant(tenant), what, async |conn| {
                sqlx::query_as(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 ORDER BY name"
                ))
                .bind(tenant.as_str())
                .fetch_all(conn)
                .await
                .map_err(StateError::query(what))
            })
            .await?;
        rows.into_iter().map(user_from_row).collect()
    }

    /// Replaces a user's password hash. Returns whether the user exists.
    pub async fn set_password(
        &self,
        user_id: &str,
        password_hash: &str,
    ) -> Result<bool, StateError> {
        let what = "set password";
        let done = self
            .scoped(RowScope::System, what, async |conn| {
                sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                    .bind(password_hash)
                    .bind(user_id)
                    .execute(conn)
                    .await
                    .map_err(StateError::query(what))
            })
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How many users exist across all tenants.
    pub async fn count_users(&self) -> Result<i64, StateError> {
        let what = "count users";
        let (n,): (i64,) = self
            .scoped(RowScope::System, what, async |conn| {
                sqlx::query_as("SELECT COUNT(*) FROM users")
                    .fetch_one(conn)
                    .await
                    .map_err(StateError::query(what))
            })
            .await?;
        Ok(n)
    }
}
