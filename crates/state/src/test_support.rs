//! Test helpers (feature `test-support`): a throw-away PostgreSQL database per test.
//!
//! The server is the machine's real PostgreSQL; its admin URL comes from
//! `DOZOR_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`, trust auth).

use sqlx::Connection;
use sqlx::Executor;
use sqlx::postgres::PgConnection;

use crate::StateError;

/// The admin URL of the test PostgreSQL server.
pub fn pg_admin_url() -> String {
    std::env::var("DOZOR_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A database created for one test; [`TempDatabase::drop_now`] removes it.
#[derive(Debug)]
pub struct TempDatabase {
    name: String,
    url: String,
}

impl TempDatabase {
    /// Creates an empty database with a random name.
    pub async fn create() -> Result<TempDatabase, StateError> {
        let admin = pg_admin_url();
        let name = format!("dozor_test_{}", hex::encode(crate::random_bytes::<6>()?));
        let mut conn = PgConnection::connect(&admin)
            .await
            .map_err(StateError::query("connect to the test PostgreSQL"))?;
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .map_err(StateError::query("create test database"))?;
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        Ok(TempDatabase {
            url: format!("{base}/{name}"),
            name,
        })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops the database, disconnecting whoever still uses it.
    pub async fn drop_now(&self) -> Result<(), StateError> {
        let mut conn = PgConnection::connect(&pg_admin_url())
            .await
            .map_err(StateError::query("connect to the test PostgreSQL"))?;
        conn.execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
            .await
            .map_err(StateError::query("drop test database"))?;
        Ok(())
    }
}
