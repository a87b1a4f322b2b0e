//! The cold archive (`logs.archive`): each day of logs that reached the cold tier is copied
//! to S3 as one Parquet file (`dozor_logs::archive`), `<prefix>/<tenant>/<YYYY-MM-DD>.parquet`.
//!
//! A day is exported when every part of it is cold, and again whenever its parts change (a
//! merge, late records moved down): the object is the day's cold content, overwritten whole,
//! so S3 never holds a day twice. Which parts an object holds is remembered in the state
//! store (`source_checkpoints`, source `archive:cold`, key `<tenant>/<day>`), written only
//! after S3 took the object: a crash or an S3 outage means the day is exported again on the
//! next round, never that it is skipped. Days keep living in the log store until the cold
//! tier's `until`; the archive outlives them, for as long as the bucket's own lifecycle
//! rules say.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dozor_ingest::backup::S3Target;
use dozor_ingest::source::{SourceStats, next_backoff, sleep_or_stop};
use dozor_logs::Logs;
use dozor_logs::files::{day_name, day_start_ns};
use dozor_logs::tiers::{Level, level_of};
use dozor_state::Store;
use tokio::sync::watch;

/// The checkpoints' source name.
const SOURCE: &str = "archive:cold";

/// Exports every cold day not yet archived in its present form; returns how many days and
/// bytes it wrote.
pub async fn archive_once(
    target: &S3Target,
    logs: &Logs,
    store: &Store,
) -> Result<(u64, u64), String> {
    let done: HashMap<String, String> = store
        .checkpoints(SOURCE)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .collect();
    let mut s3 = None;
    let (mut days, mut total) = (0, 0);
    for (tenant, db) in logs.all() {
        for (day, parts) in db.parts_by_day() {
            if parts.is_empty() || parts.iter().any(|p| level_of(p) != Level::Cold) {
                continue;
            }
            let mut names: Vec<String> = parts
                .iter()
                .filter_map(|p| p.dir().file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .collect();
            names.sort();
            let signature = names.join(",");
            let date = day_name(day_start_ns(day));
            let key = format!("{tenant}/{date}");
            if done.get(&key) == Some(&signature) {
                continue;
            }
            let bytes = tokio::task::spawn_blocking(move || {
                let mut records = Vec::new();
                for p in &parts {
                    records.extend(p.all().map_err(|e| e.to_string())?);
                }
                records.sort_by_key(|r| r.time_ns);
                dozor_logs::archive::to_parquet(&records)
            })
            .await
            .map_err(|e| e.to_string())??;
            let client = match &s3 {
                Some(c) => Arc::clone(c),
                None => {
                    let c = target.store()?;
                    s3 = Some(Arc::clone(&c));
                    c
                }
            };
            let object = target.key(&format!("{key}.parquet"));
            let size = bytes.len();
            dozor_ingest::backup::put(client.as_ref(), &object, bytes).await?;
            store
                .save_checkpoints(SOURCE, &[(key, Some(signature))])
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(%object, bytes = size, "cold log day archived");
            days += 1;
            total += size as u64;
        }
    }
    Ok((days, total))
}

/// Archives every `interval` until `stop`, backing off while S3 fails.
pub async fn run(
    target: S3Target,
    interval: Duration,
    logs: Arc<Logs>,
    store: Store,
    stats: Arc<SourceStats>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::ZERO;
    loop {
        let wait = match archive_once(&target, &logs, &store).await {
            Ok((days, bytes)) => {
                backoff = Duration::ZERO;
                stats.set_connected(true);
                if days > 0 {
                    stats.delivered(days, bytes);
                }
                interval
            }
            Err(e) => {
                stats.error(&e);
                stats.set_connected(false);
                backoff = next_backoff(backoff);
                tracing::warn!(bucket = %target.bucket, error = %e, retry_in = ?backoff, "cold archive failed; retrying");
                backoff.min(interval)
            }
        };
        if sleep_or_stop(wait, &mut stop).await {
            return;
        }
    }
}
