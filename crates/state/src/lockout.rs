//! The `login_failures` table: failed logins per user name, for lock-out.
//!
//! Failures are counted per *name*, whether or not a user has it, so a lock-out tells an
//! attacker nothing about which names exist. Within a window of `window_ms` from the first
//! failure, `max_failures` failures lock the name for `lock_ms`; a successful login clears
//! the count. Kept in the state store so every node sharing it applies the same lock.

use dozor_model::time::Millis;

use crate::rls::RowScope;
use crate::{StateError, Store};

/// How failed logins lock a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures that lock the name (0: never lock).
    pub max_failures: u32,
    /// The window they are counted in, ms from the first.
    pub window_ms: Millis,
    /// How long the lock lasts, ms.
    pub lock_ms: Millis,
}

type FailureRow = (i64, i64, Option<i64>);

impl Store {
    /// Until when `name` is locked, if it is at `now`.
    pub async fn login_locked_until(
        &self,
        name: &str,
        now: Millis,
    ) -> Result<Option<Millis>, StateError> {
        let row: Option<(Option<i64>,)> =
            sqlx::query_as("SELECT locked_until_ms FROM login_failures WHERE user_name = $1")
                .bind(name)
                .fetch_optional(self.pool())
                .await
                .map_err(StateError::query("read login failures"))?;
        Ok(row.and_then(|(l,)| l).filter(|&l| l > now))
    }

    /// Counts a failed login of `name` at `now`; returns until when the name is locked if
    /// this failure locked it.
    pub async fn record_login_failure(
        &self,
        name: &str,
        now: Millis,
        policy: LockoutPolicy,
    ) -> Result<Option<Millis>, StateError> {
        self.scoped(RowScope::Shared, "record login failure", async |conn| {
            let row: Option<FailureRow> = sqlx::query_as(
                "SELECT failures, window_start_ms, locked_until_ms FROM login_failures \
                 WHERE user_name = $1",
            )
            .bind(name)
            .fetch_optional(&mut *conn)
            .await
            .map_err(StateError::query("read login failures"))?;
            let (failures, start) = match row {
                // A new window once the last one (or the lock it ended in) is over.
                Some((n, start, locked))
                    if now - start < policy.window_ms || locked.is_some_and(|l| l > now) =>
                {
                    (n + 1, start)
                }
                _ => (1, now),
            };
            let locked = (policy.max_failures > 0 && failures >= i64::from(policy.max_failures))
                .then_some(now + policy.lock_ms);
            // Counting restarts after a lock: the next window begins when it ends.
            let (failures, start) = if locked.is_some() {
                (0, now + policy.lock_ms)
            } else {
                (failures, start)
            };
            sqlx::query(
                "INSERT INTO login_failures (user_name, failures, window_start_ms, locked_until_ms) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (user_name) DO UPDATE SET \
                 failures = excluded.failures, window_start_ms = excluded.window_start_ms, \
                 locked_until_ms = COALESCE(excluded.locked_until_ms, login_failures.locked_until_ms)",
            )
            .bind(name)
            .bind(failures)
            .bind(start)
            .bind(locked)
            .execute(conn)
            .await
            .map_err(StateError::query("record login failure"))?;
            Ok(locked)
        })
        .await
    }

    /// Forgets the failures of `name` (after a successful login).
    pub async fn clear_login_failures(&self, name: &str) -> Result<(), StateError> {
        sqlx::query("DELETE FROM login_failures WHERE user_name = $1")
            .bind(name)
            .execute(self.pool())
            .await
            .map_err(StateError::query("clear login failures"))?;
        Ok(())
    }
}
