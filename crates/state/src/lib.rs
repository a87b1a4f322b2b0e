//! Dozor's state store: the small, relational, transactional part of Dozor's data.
//!
//! [`Store`] holds tenants, users, API tokens, refresh tokens and settings (later issues add
//! rules, dashboards, incidents…) in SQLite by default (`<data-dir>/state.db`, WAL mode) or in
//! PostgreSQL when the configured URL is `postgres://…`, so several Dozor nodes can share it.
//! Both engines run the same embedded migrations (`migrations/`, written in the SQL both
//! understand) when the store opens.
//!
//! Data enters through typed methods grouped by table ([`users`], [`tokens`], [`sessions`],
//! [`tenants`], [`settings`], [`lockout`], [`checkpoints`], [`alerts`], [`anomalies`], [`notifications`], [`incidents`], [`dashboards`], [`reports`], [`fraud`]) and leaves as plain structs; no SQL escapes this crate.
//!
//! Architecture invariants:
//! - Every method that touches tenant-owned rows takes a [`TenantId`]; there is no way to list
//!   or change another tenant's rows by accident.
//! - On PostgreSQL, row-level security enforces that too. Every tenant table (`tenants`,
//!   `users`, `api_tokens`, `alert_history`, `anomaly_events`, `alert_rules`, `silences`,
//!   `notification_log`, `notification_deliveries`, `incidents`, `incident_events`) has
//!   forced RLS and a policy `dozor_tenant` (applied by [`Store::open`] after the migrations)
//!   that shows and accepts only rows of the tenant named by the transaction-local setting
//!   `dozor.tenant`, or of every tenant when it is `*`. Each method runs in a transaction
//!   that sets it: its own tenant, or `*` for the few documented cross-tenant paths (login by
//!   name, token by hash, start-up restores, pruning); a session that sets nothing sees no
//!   tenant rows. Superusers and `BYPASSRLS` roles are not bound: [`Store::row_security`]
//!   says whether the connected role is. SQLite has no RLS; there the queries alone decide.
//! - Secrets are never stored: API and refresh tokens are kept as SHA-256 hashes, passwords as
//!   argon2id PHC strings computed by the caller.
//! - Times are `i64` milliseconds since the Unix epoch.
//!
//! ```no_run
//! # async fn demo() -> Result<(), dozor_state::StateError> {
//! let store = dozor_state::Store::open("sqlite:///var/lib/dozor/state.db").await?;
//! store.ping().await?;
//! # Ok(()) }
//! ```

pub mod alert_rules;
pub mod alerts;
pub mod anomalies;
pub mod checkpoints;
pub mod dashboards;
mod error;
pub mod fraud;
pub mod incidents;
pub mod lockout;
pub mod notifications;
pub mod reports;
pub mod retention;
mod rls;
pub mod sessions;
pub mod settings;
pub mod tenants;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod tokens;
pub mod users;

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use dozor_model::TenantId;
pub use error::StateError;
pub use rls::RowSecurity;
/// The database error type, for callers that classify failures (unavailable vs. bug).
pub use sqlx::Error as SqlxError;

/// Which database engine a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// The migrations embedded in the binary; applied by [`Store::open`].
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A connection pool to the state database, migrated and ready.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the URL: it may hold a password.
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Store {
    /// Connects to `url` (`sqlite://PATH` or `postgres://…`), creating a SQLite file if
    /// needed, and applies pending migrations.
    pub async fn open(url: &str) -> Result<Store, StateError> {
        let store = Store::connect(url)?;
        store.migrate().await?;
        Ok(store)
    }

    /// Builds a pool for `url` that connects on first use, without migrating; for callers
    /// that must start even while the database is down (readiness reports it).
    pub fn open_lazy(url: &str) -> Result<Store, StateError> {
        Store::connect(url)
    }

    /// Builds the pool; connections open on first use (and [`Store::open`] uses one at once).
    fn connect(url: &str) -> Result<Store, StateError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StateError::BadUrl);
        };
        let url = match backend {
            // Create the file on first start.
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_owned(),
        };
        let options: AnyConnectOptions = url.parse().map_err(|_| StateError::BadUrl)?;
        let pool_options = AnyPoolOptions::new()
            .max_connections(match backend {
                // One writer at a time in SQLite anyway; a few readers in WAL mode.
                Backend::Sqlite => 4,
                Backend::Postgres => 10,
            })
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; FULL sync makes every
                        // committed change survive power loss, not only a process crash.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            });
        Ok(Store {
            pool: pool_options.connect_lazy_with(options),
            backend,
        })
    }

    async fn migrate(&self) -> Result<(), StateError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StateError::Migrate(e.to_string()))?;
        // PostgreSQL-only DDL, so not in the shared migrations.
        self.secure_rows().await
    }

    /// Which engine this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The versions of the migrations applied so far, ascending.
    pub async fn applied_migrations(&self) -> Result<Vec<i64>, StateError> {
        let rows: Vec<(i64,)> =
            sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
                .fetch_all(&self.pool)
                .await
                .map_err(StateError::query("list migrations"))?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// The versions of the migrations embedded in this binary, ascending.
    pub fn known_migrations() -> Vec<i64> {
        MIGRATOR.iter().map(|m| m.version).collect()
    }

    /// Round-trips a trivial query: the readiness check.
    pub async fn ping(&self) -> Result<(), StateError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(StateError::query("ping the state store"))?;
        Ok(())
    }

    /// Waits for in-flight queries and closes every connection (SQLite checkpoints its WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// A fresh random identifier: 16 bytes as 32 lowercase hex digits.
pub(crate) fn new_id() -> Result<String, StateError> {
    Ok(hex::encode(random_bytes::<16>()?))
}

/// A random (version 4) UUID in its usual text form: the ids Alertmanager's clients expect
/// for silences.
pub fn new_uuid() -> Result<String, StateError> {
    let mut b = random_bytes::<16>()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

/// `N` bytes from the operating system's random source.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], StateError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| StateError::Random(e.to_string()))?;
    Ok(buf)
}
