//! [`LogDb`]: one tenant's logs — a WAL, the in-memory head and the day-partitioned parts —
//! and the maintenance that moves records between them (flush, merge, retention).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use dozor_model::{Labels, LogRecord, Matcher};
use dozor_wal::Wal;

use crate::files::{PARTS_DIR, WAL_DIR, day_name, day_of, day_start_ns, parse_day, part_name};

// Tier moves and the watermark rewrite parts under the maintenance lock: a child module so
// they reach the store's state the way flushes and merges do.
#[path = "tiers.rs"]
pub mod tiers;
use crate::part::{self, Part, Want};
use crate::record::{self, MAX_FIELDS};
use crate::{Direction, LogQuery, LogsError, Options, RecordRef};

/// Longest message accepted, bytes.
pub const MAX_MESSAGE_BYTES: usize = 256 << 10;
/// Longest field name or value, bytes.
pub const MAX_FIELD_BYTES: usize = 64 << 10;

thread_local! {
    /// The WAL payload an append encodes into, kept per thread: a request's batch is
    /// megabytes, and a fresh buffer each time came as fresh pages from the kernel, faulted
    /// in and zeroed on every append.
    static PAYLOAD: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Largest payload buffer kept for the next append (a rare huge batch gives its memory back).
const MAX_KEPT_PAYLOAD: usize = 64 << 20;

/// What an append did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendStats {
    /// Records stored.
    pub accepted: u64,
    /// Bytes of messages and fields stored.
    pub bytes: u64,
}

/// The writer's side: the WAL and the head, under one lock, so a flush's WAL cut separates
/// exactly the records it takes from those it leaves.
#[derive(Debug)]
struct Writer {
    wal: Wal,
    head: Vec<LogRecord>,
    /// The emptied head of the last flush for size, to be the next head (see
    /// [`LogDb::flush_locked`]); empty otherwise.
    spare: Vec<LogRecord>,
    head_bytes: usize,
    head_since: Option<Instant>,
}

/// What readers snapshot besides the head.
#[derive(Debug, Default)]
struct State {
    /// Open parts by day.
    parts: BTreeMap<i64, Vec<Arc<Part>>>,
    /// Heads being written into parts.
    flushing: Vec<Arc<Vec<LogRecord>>>,
}

/// One tenant's log store.
#[derive(Debug)]
pub struct LogDb {
    dir: PathBuf,
    opts: Options,
    writer: Mutex<Writer>,
    state: RwLock<State>,
    /// Serializes flushes, merges and retention.
    maintenance: Mutex<()>,
    next_part: AtomicU64,
}

fn check(r: &LogRecord) -> Result<(), LogsError> {
    if r.message.len() > MAX_MESSAGE_BYTES {
        return Err(LogsError::Limit(format!(
            "message of {} bytes, at most {MAX_MESSAGE_BYTES}",
            r.message.len()
        )));
    }
    if r.fields.len() > MAX_FIELDS {
        return Err(LogsError::Limit(format!(
            "{} fields, at most {MAX_FIELDS}",
            r.fields.len()
        )));
    }
    if let Some((n, v)) = r
        .fields
        .iter()
        .find(|(n, v)| n.len() > MAX_FIELD_BYTES || v.len() > MAX_FIELD_BYTES)
    {
        return Err(LogsError::Limit(format!(
            "field {:?} of {} bytes, at most {MAX_FIELD_BYTES}",
            n.chars().take(64).collect::<String>(),
            v.len().max(n.len())
        )));
    }
    if let Some(w) = r.fields.windows(2).find(|w| w[0].0 >= w[1].0) {
        return Err(LogsError::Limit(format!(
            "fields must be sorted by name and unique ({:?} then {:?})",
            w[0].0, w[1].0
        )));
    }
    Ok(())
}

impl LogDb {
    /// Opens (or creates) the store in `dir`: opens the parts, replays the WAL records they
    /// do not hold into the head.
    pub fn open(dir: &Path, opts: Options) -> Result<LogDb, LogsError> {
        let parts_dir = dir.join(PARTS_DIR);
        fs::create_dir_all(&parts_dir).map_err(LogsError::io("create", &parts_dir))?;
        let mut parts: BTreeMap<i64, Vec<Arc<Part>>> = BTreeMap::new();
        let (mut wal_until, mut next_part) = (0u64, 0u64);
        for (day, day_dir) in list_days(&parts_dir)? {
            for (name, path) in dozor_wal::dir::complete_subdirs(&day_dir)? {
                let Ok(id) = u64::from_str_radix(&name, 16) else {
                    continue;
                };
                let part = Part::open_with_key(&path, opts.encryption.as_deref())?;
                wal_until = wal_until.max(part.meta().wal_until);
                next_part = next_part.max(id + 1);
                parts.entry(day).or_default().push(Arc::new(part));
            }
        }
        let wal_dir = dir.join(WAL_DIR);
        let mut head = Vec::new();
        dozor_wal::replay_from(&wal_dir, wal_until, |payload| -> Result<(), LogsError> {
            head.extend(record::decode(payload)?);
            Ok(())
        })?;
        let wal = Wal::open(&wal_dir, opts.fsync)?;
        let head_bytes = head.iter().map(LogRecord::byte_size).sum();
        let head_since = (!head.is_empty()).then(Instant::now);
        Ok(LogDb {
            dir: dir.to_owned(),
            opts,
            writer: Mutex::new(Writer {
                wal,
                head,
                spare: Vec::new(),
                head_bytes,
                head_since,
            }),
            state: RwLock::new(State {
                parts,
                flushing: Vec::new(),
            }),
            maintenance: Mutex::new(()),
            next_part: AtomicU64::new(next_part),
        })
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends records (all or none); returns once they are in the WAL (durable under the
    /// fsync policy). The records move into the head as they are.
    pub fn append(&self, records: Vec<LogRecord>) -> Result<AppendStats, LogsError> {
        for r in &records {
            check(r)?;
        }
        let bytes: usize = records.iter().map(LogRecord::byte_size).sum();
        let accepted = records.len() as u64;
        PAYLOAD.with_borrow_mut(|payload| {
            payload.clear();
            record::encode(&records, payload);
            let mut w = self.writer();
            let written = w.wal.append(payload);
            if payload.capacity() > MAX_KEPT_PAYLOAD {
                *payload = Vec::new();
            }
            written?;
            w.head.extend(records);
            w.head_bytes += bytes;
            w.head_since.get_or_insert_with(Instant::now);
            Ok::<_, LogsError>(())
        })?;
        Ok(AppendStats {
            accepted,
            bytes: bytes as u64,
        })
    }

    /// `fsync`s the WAL if the interval policy says so (call periodically).
    pub fn sync_if_due(&self) -> Result<(), LogsError> {
        Ok(self.writer().wal.sync_if_due()?)
    }

    /// `fsync`s the WAL now (shutdown).
    pub fn sync(&self) -> Result<(), LogsError> {
        Ok(self.writer().wal.sync()?)
    }

    /// The records `q` selects, ordered and limited as it says.
    pub fn select(&self, q: &LogQuery) -> Result<Vec<LogRecord>, LogsError> {
        let mut out = Vec::new();
        self.scan(q, &mut |r| out.push(r.to_record()))?;
        match q.direction {
            Direction::Backward => out.sort_by(|a, b| {
                b.time_ns
                    .cmp(&a.time_ns)
                    .then_with(|| a.stream.cmp(&b.stream))
            }),
            Direction::Forward => out.sort_by(|a, b| {
                a.time_ns
                    .cmp(&b.time_ns)
                    .then_with(|| a.stream.cmp(&b.stream))
            }),
        }
        out.truncate(q.limit);
        Ok(out)
    }

    /// Calls `f` with every record `q` selects (its limit and direction aside), in no
    /// particular order; each record once, even while a flush or merge moves it.
    pub fn scan(&self, q: &LogQuery, f: &mut dyn FnMut(RecordRef<'_>)) -> Result<(), LogsError> {
        let want = Want {
            matchers: &q.matchers,
            start_ns: q.start_ns,
            end_ns: q.end_ns,
            needles: &q.needles,
        };
        let take = |records: &[LogRecord], out: &mut Vec<LogRecord>| {
            out.extend(
                records
                    .iter()
                    .filter(|r| want.row(r.time_ns, &r.message) && want.stream(&r.stream))
                    .cloned(),
            );
        };
        // The head and the state in one moment (writer, then state: the flush's order), so
        // a record moving from the head to a part is seen once. What the head holds is
        // copied out, so `f` runs without the writer's lock.
        let mut copied = Vec::new();
        let (flushing, parts) = {
            let w = self.writer();
            take(&w.head, &mut copied);
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            let first = day_of(q.start_ns);
            let last = day_of(q.end_ns);
            let parts: Vec<Arc<Part>> = state
                .parts
                .range(first..=last)
                .flat_map(|(_, p)| p.iter().cloned())
                .collect();
            (state.flushing.clone(), parts)
        };
        for fl in &flushing {
            take(fl, &mut copied);
        }
        for r in &copied {
            f(RecordRef::of(r));
        }
        drop(copied);
        for p in &parts {
            p.scan(&want, f)?;
        }
        Ok(())
    }

    /// Records and bytes (stored bytes for parts, message bytes for the head) a query of
    /// `matchers` over `[start_ns, end_ns]` would read, from block headers alone.
    pub fn estimate(&self, matchers: &[Matcher], start_ns: i64, end_ns: i64) -> (u64, u64) {
        let needles = crate::Needles::default();
        let want = Want {
            matchers,
            start_ns,
            end_ns,
            needles: &needles,
        };
        let (mut rows, mut bytes) = (0u64, 0u64);
        let parts = {
            let w = self.writer();
            for r in w
                .head
                .iter()
                .filter(|r| want.row(r.time_ns, "") && want.stream(&r.stream))
            {
                rows += 1;
                bytes += r.message.len() as u64;
            }
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            state
                .parts
                .range(day_of(start_ns)..=day_of(end_ns))
                .flat_map(|(_, p)| p.iter().cloned())
                .collect::<Vec<Arc<Part>>>()
        };
        for p in &parts {
            let (r, b) = p.estimate(&want);
            rows += r;
            bytes += b;
        }
        (rows, bytes)
    }

    /// The distinct streams with records in `[start_ns, end_ns]` that `matchers` select.
    pub fn streams(&self, matchers: &[Matcher], start_ns: i64, end_ns: i64) -> Vec<Labels> {
        let mut out = std::collections::BTreeSet::new();
        let want = Want {
            matchers,
            start_ns,
            end_ns,
            needles: &crate::Needles::default(),
        };
        // Aggregate streams stay hidden unless asked for, also with no matcher at all.
        let wanted = |l: &Labels| {
            want.stream(l)
                && (l.get(tiers::AGGREGATE_LABEL).is_none()
                    || matchers.iter().any(|m| m.name == tiers::AGGREGATE_LABEL))
        };
        let in_range = |r: &LogRecord| r.time_ns >= start_ns && r.time_ns <= end_ns;
        let parts = {
            let w = self.writer();
            out.extend(
                w.head
                    .iter()
                    .filter(|r| in_range(r) && wanted(&r.stream))
                    .map(|r| r.stream.clone()),
            );
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            for fl in &state.flushing {
                out.extend(
                    fl.iter()
                        .filter(|r| in_range(r) && wanted(&r.stream))
                        .map(|r| r.stream.clone()),
                );
            }
            state
                .parts
                .range(day_of(start_ns)..=day_of(end_ns))
                .flat_map(|(_, p)| p.iter().cloned())
                .collect::<Vec<Arc<Part>>>()
        };
        for p in &parts {
            out.extend(
                p.streams_in(start_ns, end_ns)
                    .filter(|s| wanted(s))
                    .cloned(),
            );
        }
        out.into_iter().collect()
    }

    /// Runs what is due: a flush of a large or old head, merges of days with many parts,
    /// and retention (`now_ns` decides what is too old).
    pub fn maintain(&self, now_ns: i64) -> Result<(), LogsError> {
        let (full, old) = {
            let w = self.writer();
            (
                w.head_bytes >= self.opts.flush_bytes,
                w.head_since
                    .is_some_and(|t| t.elapsed() >= self.opts.flush_interval),
            )
        };
        if full || old {
            let m = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
            self.flush_locked(m, full)?;
        }
        self.merge()?;
        if let Some(keep) = self.opts.retention {
            let keep_ns = i64::try_from(keep.as_nanos()).unwrap_or(i64::MAX);
            self.delete_days_before(day_of(now_ns.saturating_sub(keep_ns)))?;
        }
        if let Some(tiers) = &self.opts.tiers {
            self.apply_tiers(tiers, now_ns)?;
        }
        Ok(())
    }

    /// Writes the head into parts (one per day it spans) and drops the WAL segments they
    /// cover.
    pub fn flush(&self) -> Result<(), LogsError> {
        let m = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        self.flush_locked(m, false)
    }

    /// Flushes when the head holds `flush_bytes` or more, so memory stays bounded however
    /// fast records arrive (the interval check of [`LogDb::maintain`] alone lets a fast
    /// ingest fill the head for a whole round). Called after appends: when another flush is
    /// already running it returns at once, unless the head has grown to twice the limit —
    /// then it waits its turn, which slows the appender down (back-pressure).
    pub fn flush_if_full(&self) -> Result<(), LogsError> {
        let bytes = self.writer().head_bytes;
        if bytes < self.opts.flush_bytes {
            return Ok(());
        }
        let m = match self.maintenance.try_lock() {
            Ok(m) => m,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) if bytes < 2 * self.opts.flush_bytes => {
                return Ok(());
            }
            Err(std::sync::TryLockError::WouldBlock) => {
                self.maintenance.lock().unwrap_or_else(|p| p.into_inner())
            }
        };
        self.flush_locked(m, true)
    }

    /// Writes the head into parts. `full`: the head was flushed for its size, so records
    /// are arriving fast and the next head will fill as well: the emptied vector of this
    /// one is kept for it (a head grown afresh came as fresh pages from the kernel, faulted
    /// in and zeroed as it doubled, on every flush: about 1 % of ingest CPU). Otherwise the
    /// spare is let go: a quiet store keeps no memory it does not use.
    fn flush_locked(
        &self,
        _maintenance: std::sync::MutexGuard<'_, ()>,
        full: bool,
    ) -> Result<(), LogsError> {
        let (taken, wal_until) = {
            let mut w = self.writer();
            if w.head.is_empty() {
                return Ok(());
            }
            let wal_until = w.wal.cut()?;
            let spare = std::mem::take(&mut w.spare);
            let next = if full { spare } else { Vec::new() };
            let taken = Arc::new(std::mem::replace(&mut w.head, next));
            w.head_bytes = 0;
            w.head_since = None;
            self.state
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .flushing
                .push(Arc::clone(&taken));
            (taken, wal_until)
        };
        let written = self.write_parts(&taken, wal_until);
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        match written {
            Ok(parts) => {
                for (day, part) in parts {
                    state.parts.entry(day).or_default().push(part);
                }
                state.flushing.retain(|f| !Arc::ptr_eq(f, &taken));
                drop(state);
                self.writer().wal.truncate_before(wal_until)?;
                // The records are freed here, outside the writer's lock. Their vector is
                // the next spare unless a reader still holds it, or it is larger than the
                // head's own limit (many tiny records).
                if let (true, Ok(mut emptied)) = (full, Arc::try_unwrap(taken)) {
                    emptied.clear();
                    let bytes = emptied.capacity() * std::mem::size_of::<LogRecord>();
                    if bytes <= self.opts.flush_bytes {
                        self.writer().spare = emptied;
                    }
                }
                Ok(())
            }
            Err(e) => {
                // Keep the records readable (and in the WAL); the next flush tries again.
                state.flushing.retain(|f| !Arc::ptr_eq(f, &taken));
                drop(state);
                let mut w = self.writer();
                let newer = std::mem::take(&mut w.head);
                w.head = Arc::unwrap_or_clone(taken);
                w.head_bytes = w.head.iter().chain(&newer).map(LogRecord::byte_size).sum();
                w.head.extend(newer);
                w.head_since.get_or_insert_with(Instant::now);
                Err(e)
            }
        }
    }

    fn write_parts(
        &self,
        records: &[LogRecord],
        wal_until: u64,
    ) -> Result<Vec<(i64, Arc<Part>)>, LogsError> {
        let mut by_day: BTreeMap<i64, Vec<&LogRecord>> = BTreeMap::new();
        for r in records {
            by_day.entry(day_of(r.time_ns)).or_default().push(r);
        }
        let mut out = Vec::new();
        for (day, recs) in by_day {
            out.push((day, self.write_part(day, recs, wal_until)?));
        }
        Ok(out)
    }

    fn write_part<'a>(
        &self,
        day: i64,
        records: impl IntoIterator<Item = &'a LogRecord>,
        wal_until: u64,
    ) -> Result<Arc<Part>, LogsError> {
        let day_dir = self.dir.join(PARTS_DIR).join(day_name(day_start_ns(day)));
        fs::create_dir_all(&day_dir).map_err(LogsError::io("create", &day_dir))?;
        let path = day_dir.join(part_name(self.next_part.fetch_add(1, Ordering::Relaxed)));
        let key = self.opts.encryption.as_deref();
        part::write_with_key(&path, records, wal_until, key)?;
        Ok(Arc::new(Part::open_with_key(&path, key)?))
    }

    /// Merges the smallest parts of each day with more than `max_parts_per_day`, up to
    /// `max_merge_bytes` of records at once.
    pub fn merge(&self) -> Result<(), LogsError> {
        let _m = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        let candidates: Vec<(i64, Vec<Arc<Part>>)> = {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            state
                .parts
                .iter()
                .filter(|(_, p)| p.len() > self.opts.max_parts_per_day)
                .map(|(d, p)| {
                    let mut p = p.clone();
                    p.sort_by_key(|x| x.meta().raw_bytes);
                    let mut total = 0;
                    p.retain(|x| {
                        total += x.meta().raw_bytes;
                        total <= self.opts.max_merge_bytes
                    });
                    (*d, p)
                })
                .filter(|(_, p)| p.len() >= 2)
                .collect()
        };
        for (day, inputs) in candidates {
            let mut records = Vec::new();
            for p in &inputs {
                records.extend(p.all()?);
            }
            let wal_until = inputs.iter().map(|p| p.meta().wal_until).max().unwrap_or(0);
            let merged = self.write_part(day, &records, wal_until)?;
            {
                let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
                let day_parts = state.parts.entry(day).or_default();
                day_parts.retain(|p| !inputs.iter().any(|i| Arc::ptr_eq(i, p)));
                day_parts.push(merged);
            }
            for p in inputs {
                dozor_wal::dir::remove(p.dir())?;
            }
        }
        Ok(())
    }

    /// Deletes every day before `first_kept` (days since the epoch).
    pub fn delete_days_before(&self, first_kept: i64) -> Result<(), LogsError> {
        let _m = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<(i64, Vec<Arc<Part>>)> = {
            let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
            let kept = state.parts.split_off(&first_kept);
            std::mem::replace(&mut state.parts, kept)
                .into_iter()
                .collect()
        };
        let parts_dir = self.dir.join(PARTS_DIR);
        for (day, _) in gone {
            dozor_wal::dir::remove(&parts_dir.join(day_name(day_start_ns(day))))?;
        }
        Ok(())
    }

    /// The open parts, oldest day first.
    pub fn parts(&self) -> Vec<Arc<Part>> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        state.parts.values().flatten().cloned().collect()
    }

    /// Records in the head (not yet in a part).
    pub fn head_len(&self) -> usize {
        self.writer().head.len()
    }

    /// Bytes the store takes on disk (parts and WAL).
    pub fn disk_bytes(&self) -> u64 {
        dozor_wal::dir::size(&self.dir)
    }
}

/// The day directories under `parts_dir`, with their day numbers.
fn list_days(parts_dir: &Path) -> Result<Vec<(i64, PathBuf)>, LogsError> {
    let mut out: Vec<(i64, PathBuf)> = dozor_wal::dir::complete_subdirs(parts_dir)?
        .into_iter()
        .filter_map(|(name, path)| Some((parse_day(&name)?, path)))
        .collect();
    out.sort();
    Ok(out)
}
