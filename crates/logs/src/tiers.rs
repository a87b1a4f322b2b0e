//! Retention tiers and the disk watermark (seed 002's hot/warm/cold policy).
//!
//! - **hot**: a day younger than `hot` keeps every record.
//! - **warm**: from `hot` to `warm.until`, a day keeps only the records its `keep`
//!   selectors choose (by default `{level=~"critical|error|warn"}`), plus, when
//!   `aggregates` is on, one record per stream and minute of what was dropped and kept:
//!   stream labels plus `__aggregate__="1m"`, fields `count` and `bytes`, empty message.
//!   Selectors that do not name `__aggregate__` never see these records, so queries and
//!   rules over the original streams are unchanged; `sum(sum_over_time({service="shop",
//!   __aggregate__="1m"} | unwrap count [1h]))` reads them.
//! - **cold**: from `warm.until` to `cold.until`, only what the cold `keep` selectors
//!   choose (by default `{level="critical"}` and `{audit="true"}`), plus the aggregates.
//! - Past the last tier, whole days are deleted (as `retention`).
//!
//! A part is moved down a tier by rewriting it through the ordinary part writer and
//! swapping it in, under the maintenance lock; readers see the old or the new part, never
//! both. The tier a part reached is noted in a `tier` file beside its columns. Rewriting is
//! idempotent (filters keep what they kept; a part that already holds aggregates gets no
//! new ones), so a crash halfway only means the work is redone.
//!
//! The watermark: when the volume holding the store is fuller than `watermark` (default
//! 80 %), the oldest hot day of any tenant is moved to warm early; when no hot day is left
//! but today, the oldest day of any tier is deleted — today's data and the audit chain
//! (kept outside the log store) never are.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use dozor_model::{Label, Labels, LogRecord, Matcher};

use super::LogDb;
use crate::LogsError;
use crate::files::{PARTS_DIR, day_name, day_of, day_start_ns};
use crate::part::Part;

/// The label that marks aggregate records.
pub const AGGREGATE_LABEL: &str = "__aggregate__";
/// The file beside a part's columns naming the tier it reached.
pub const TIER_FILE: &str = "tier";

/// A tier's window and what it keeps.
#[derive(Debug, Clone)]
pub struct Tier {
    /// Records of days older than this leave the tier.
    pub until: Duration,
    /// Selectors (each a list of matchers; any of them keeps a record).
    pub keep: Vec<Vec<Matcher>>,
}

/// The retention policy of the log store.
#[derive(Debug, Clone)]
pub struct Tiers {
    /// Days younger than this keep everything.
    pub hot: Duration,
    /// The warm tier, if any.
    pub warm: Option<Tier>,
    /// The cold tier, if any.
    pub cold: Option<Tier>,
    /// Whether warm (and cold) days keep per-minute counts of every stream.
    pub aggregates: bool,
}

/// Where a part stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Everything.
    Hot,
    /// Warm-filtered.
    Warm,
    /// Cold-filtered.
    Cold,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Hot => "hot",
            Level::Warm => "warm",
            Level::Cold => "cold",
        }
    }
}

/// The tier a part reached (hot when never moved).
pub fn level_of(part: &Part) -> Level {
    match std::fs::read_to_string(part.dir().join(TIER_FILE))
        .as_deref()
        .map(str::trim)
    {
        Ok("warm") => Level::Warm,
        Ok("cold") => Level::Cold,
        _ => Level::Hot,
    }
}

fn ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl Tiers {
    /// The tier a day belongs in at `now_ns`, or `None` when it is past every tier.
    pub fn level_for(&self, day: i64, now_ns: i64) -> Option<Level> {
        let age_from = |d: Duration| day_of(now_ns.saturating_sub(ns(d)));
        if day >= age_from(self.hot) {
            return Some(Level::Hot);
        }
        if let Some(w) = &self.warm
            && day >= age_from(w.until)
        {
            return Some(Level::Warm);
        }
        if let Some(c) = &self.cold
            && day >= age_from(c.until)
        {
            return Some(Level::Cold);
        }
        None
    }

    /// The first day kept at `now_ns` (older days are deleted).
    pub fn first_kept_day(&self, now_ns: i64) -> i64 {
        let longest = [
            Some(self.hot),
            self.warm.as_ref().map(|t| t.until),
            self.cold.as_ref().map(|t| t.until),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(self.hot);
        day_of(now_ns.saturating_sub(ns(longest)))
    }

    fn keep(&self, level: Level) -> &[Vec<Matcher>] {
        match level {
            Level::Hot => &[],
            Level::Warm => self.warm.as_ref().map(|t| t.keep.as_slice()).unwrap_or(&[]),
            Level::Cold => self.cold.as_ref().map(|t| t.keep.as_slice()).unwrap_or(&[]),
        }
    }
}

fn selected(stream: &Labels, keep: &[Vec<Matcher>]) -> bool {
    stream.get(AGGREGATE_LABEL).is_some()
        || keep.iter().any(|sel| {
            sel.iter()
                .all(|m| m.matches(stream.get(&m.name).unwrap_or("")))
        })
}

/// Per-minute counts of `records` by stream, as aggregate records.
fn aggregates(records: &[LogRecord]) -> Vec<LogRecord> {
    let mut counts: BTreeMap<(&Labels, i64), (u64, u64)> = BTreeMap::new();
    for r in records {
        let minute = r.time_ns.div_euclid(60_000_000_000) * 60_000_000_000;
        let c = counts.entry((&r.stream, minute)).or_default();
        c.0 += 1;
        c.1 += r.message.len() as u64;
    }
    counts
        .into_iter()
        .filter_map(|((stream, minute), (count, bytes))| {
            let mut labels: Vec<Label> = stream.iter().cloned().collect();
            labels.push(Label {
                name: AGGREGATE_LABEL.into(),
                value: "1m".into(),
            });
            Some(LogRecord {
                time_ns: minute,
                stream: Labels::new(labels).ok()?,
                message: String::new(),
                fields: vec![
                    ("bytes".into(), bytes.to_string()),
                    ("count".into(), count.to_string()),
                ],
            })
        })
        .collect()
}

impl LogDb {
    /// Moves parts down to the tier their day belongs in and deletes days past every tier.
    pub fn apply_tiers(&self, tiers: &Tiers, now_ns: i64) -> Result<(), LogsError> {
        self.delete_days_before(tiers.first_kept_day(now_ns))?;
        for (day, parts) in self.parts_by_day() {
            let Some(target) = tiers.level_for(day, now_ns) else {
                continue;
            };
            if target == Level::Hot {
                continue;
            }
            for p in parts {
                if level_of(&p) < target {
                    self.move_down(day, &p, tiers, target)?;
                }
            }
        }
        Ok(())
    }

    /// Rewrites one part keeping what `target` keeps, under the maintenance lock; returns
    /// the bytes freed.
    fn move_down(
        &self,
        day: i64,
        part: &Arc<Part>,
        tiers: &Tiers,
        target: Level,
    ) -> Result<u64, LogsError> {
        let _m = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        let still_there = {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            state
                .parts
                .get(&day)
                .is_some_and(|ps| ps.iter().any(|p| Arc::ptr_eq(p, part)))
        };
        if !still_there {
            return Ok(0); // merged or deleted meanwhile
        }
        let records = part.all()?;
        let had_aggregates = part
            .streams()
            .iter()
            .any(|s| s.get(AGGREGATE_LABEL).is_some());
        let keep = tiers.keep(target);
        let aggregated = (tiers.aggregates && !had_aggregates).then(|| aggregates(&records));
        let mut kept: Vec<LogRecord> = records
            .into_iter()
            .filter(|r| selected(&r.stream, keep))
            .collect();
        kept.extend(aggregated.into_iter().flatten());
        let before = part.meta().data_bytes + part.meta().index_bytes;
        let new = if kept.is_empty() {
            None
        } else {
            let new = self.write_part(day, &kept, part.meta().wal_until)?;
            write_tier(new.dir(), target)?;
            Some(new)
        };
        let after = new
            .as_ref()
            .map_or(0, |p| p.meta().data_bytes + p.meta().index_bytes);
        {
            let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
            let day_parts = state.parts.entry(day).or_default();
            day_parts.retain(|p| !Arc::ptr_eq(p, part));
            day_parts.extend(new);
        }
        dozor_wal::dir::remove(part.dir())?;
        tracing::info!(day = %day_name(day_start_ns(day)), tier = target.name(), before, after, "log part moved down a tier");
        Ok(before.saturating_sub(after))
    }

    /// The open parts by day, oldest first.
    pub fn parts_by_day(&self) -> Vec<(i64, Vec<Arc<Part>>)> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        state.parts.iter().map(|(d, p)| (*d, p.clone())).collect()
    }

    /// Deletes one whole day.
    pub fn delete_day(&self, day: i64) -> Result<(), LogsError> {
        let _m = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        let gone = self
            .state
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .parts
            .remove(&day);
        if gone.is_some() {
            dozor_wal::dir::remove(&self.dir.join(PARTS_DIR).join(day_name(day_start_ns(day))))?;
        }
        Ok(())
    }
}

/// Notes the tier beside a part's columns (a file renamed into place; a crash before it
/// only means the part is rewritten again, which changes nothing).
fn write_tier(dir: &std::path::Path, level: Level) -> Result<(), LogsError> {
    let tmp = dir.join(format!("{TIER_FILE}.tmp"));
    let path = dir.join(TIER_FILE);
    std::fs::write(&tmp, level.name()).map_err(LogsError::io("write", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(LogsError::io("rename", &tmp))?;
    Ok(())
}

/// The fraction of the volume holding `path` in use, from `statvfs`.
pub fn volume_usage(path: &std::path::Path) -> Result<f64, LogsError> {
    let st = rustix::fs::statvfs(path)
        .map_err(|e| LogsError::io("statvfs", path)(std::io::Error::from(e)))?;
    let total = st.f_blocks as f64;
    if total <= 0.0 {
        return Ok(0.0);
    }
    Ok(1.0 - st.f_bavail as f64 / total)
}

/// One step of the watermark over every tenant's store: moves the oldest hot day (not
/// today) to warm, or, when none is left, deletes the oldest day of any tier (not today).
/// Returns whether it did anything.
pub fn relieve_one(dbs: &[Arc<LogDb>], tiers: &Tiers, now_ns: i64) -> Result<bool, LogsError> {
    let today = day_of(now_ns);
    // (day, db index, whether it has hot parts)
    let mut oldest_hot: Option<(i64, usize)> = None;
    let mut oldest_any: Option<(i64, usize)> = None;
    for (i, db) in dbs.iter().enumerate() {
        for (day, parts) in db.parts_by_day() {
            if day >= today {
                continue;
            }
            if oldest_any.is_none_or(|(d, _)| day < d) {
                oldest_any = Some((day, i));
            }
            let hot = parts.iter().any(|p| level_of(p) == Level::Hot);
            if hot && tiers.warm.is_some() && oldest_hot.is_none_or(|(d, _)| day < d) {
                oldest_hot = Some((day, i));
            }
        }
    }
    if let Some((day, i)) = oldest_hot {
        let db = &dbs[i];
        for p in db
            .parts_by_day()
            .into_iter()
            .filter(|(d, _)| *d == day)
            .flat_map(|(_, p)| p)
        {
            if level_of(&p) == Level::Hot {
                db.move_down(day, &p, tiers, Level::Warm)?;
            }
        }
        return Ok(true);
    }
    if let Some((day, i)) = oldest_any {
        tracing::warn!(day = %day_name(day_start_ns(day)), "disk over the watermark: deleting the oldest day of logs");
        dbs[i].delete_day(day)?;
        return Ok(true);
    }
    Ok(false)
}
