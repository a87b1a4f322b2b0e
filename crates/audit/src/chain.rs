//! [`AuditLog`]: the writer that appends records and checkpoints.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ed25519_dalek::SigningKey;

use crate::checkpoint::{Checkpoint, load_or_create_key};
use crate::record::GENESIS;
use crate::{AuditError, Entry, Record, files};

/// What [`AuditLog::prune_before`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Pruned {
    /// Records removed.
    pub records: u64,
    /// The last record removed: the signed checkpoint at it anchors what remains.
    pub through_seq: u64,
    /// Its time, ms since the Unix epoch.
    pub through_ts_ms: i64,
}

struct Head {
    chain: File,
    seq: u64,
    hash: String,
    /// Sequence number of the last checkpoint written.
    checkpointed: u64,
}

/// The open audit chain of one data directory. Appends are serialized by a mutex and each
/// is `fsync`ed before it returns; the chain is written by one process at a time.
pub struct AuditLog {
    dir: PathBuf,
    key: SigningKey,
    head: Mutex<Head>,
    clock: fn() -> i64,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// A checkpoint is signed after this many records (and on [`AuditLog::close`]).
    pub const CHECKPOINT_EVERY: u64 = 100;

    /// Opens (or creates) the chain under `data_dir/audit/`, generating the signing key on
    /// first start and cutting a torn last line left by a crash.
    pub fn open(data_dir: &Path) -> Result<AuditLog, AuditError> {
        let dir = files::audit_dir(data_dir);
        fs::create_dir_all(&dir).map_err(AuditError::io("create", &dir))?;
        let key = load_or_create_key(&dir)?;
        let chain_path = dir.join(files::CHAIN);
        let mut chain = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&chain_path)
            .map_err(AuditError::io("open", &chain_path))?;
        cut_torn_tail(&mut chain, &chain_path)?;
        let (seq, hash) = match last_line(&chain_path)? {
            None => (0, GENESIS.to_owned()),
            Some(line) => {
                let r: Record =
                    serde_json::from_str(&line).map_err(|e| AuditError::BadTail(e.to_string()))?;
                (r.seq, r.hash)
            }
        };
        let checkpointed = last_line(&dir.join(files::CHECKPOINTS))?
            .and_then(|l| serde_json::from_str::<Checkpoint>(&l).ok())
            .map_or(0, |c| c.seq);
        Ok(AuditLog {
            dir,
            key,
            head: Mutex::new(Head {
                chain,
                seq,
                hash,
                checkpointed,
            }),
            clock: dozor_model::time::now_ms,
        })
    }

    /// Appends one record and syncs it to disk; returns the sealed record.
    pub fn append(&self, entry: Entry) -> Result<Record, AuditError> {
        let mut head = self.lock();
        let record = Record::seal(entry, head.seq + 1, (self.clock)(), &head.hash);
        let mut line = serde_json::to_string(&record)
            .unwrap_or_else(|e| unreachable!("BUG: audit record does not serialize: {e}"));
        line.push('\n');
        let path = self.dir.join(files::CHAIN);
        head.chain
            .write_all(line.as_bytes())
            .and_then(|()| head.chain.sync_data())
            .map_err(AuditError::io("append to", &path))?;
        head.seq = record.seq;
        head.hash.clone_from(&record.hash);
        if head.seq - head.checkpointed >= Self::CHECKPOINT_EVERY {
            self.checkpoint_locked(&mut head)?;
        }
        Ok(record)
    }

    /// Sequence number of the last record (0 when empty).
    pub fn len(&self) -> u64 {
        self.lock().seq
    }

    /// Whether the chain has no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Signs a checkpoint of the current head now, if it moved since the last one.
    pub fn checkpoint(&self) -> Result<(), AuditError> {
        let mut head = self.lock();
        self.checkpoint_locked(&mut head)
    }

    /// Removes the records older than `cutoff_ms`, but only up to a signed checkpoint: the
    /// chain then starts right after that checkpoint's record, and [`crate::verify`]
    /// checks the first remaining record against it — what remains still proves itself,
    /// and removing records any other way is still detected. The newest record always
    /// stays (the next append links to it). The files are rewritten beside the old ones
    /// and renamed over them (checkpoints first), so a crash leaves either the old or the
    /// new state. `None`: nothing old enough behind a checkpoint.
    pub fn prune_before(&self, cutoff_ms: i64) -> Result<Option<Pruned>, AuditError> {
        let mut head = self.lock();
        // Sign the head, so the cut can reach the newest old record.
        self.checkpoint_locked(&mut head)?;
        let chain_path = self.dir.join(files::CHAIN);
        let cp_path = self.dir.join(files::CHECKPOINTS);
        let records = read_lines(&chain_path)?;
        let mut first = None;
        // Times of the leading records older than the cutoff (the chain's order is its
        // sequence, so they are `first`, `first + 1`, …).
        let mut old_ts = Vec::new();
        for line in &records {
            let r: Record =
                serde_json::from_str(line).map_err(|e| AuditError::BadTail(e.to_string()))?;
            first.get_or_insert(r.seq);
            if r.ts_ms >= cutoff_ms {
                break;
            }
            old_ts.push(r.ts_ms);
        }
        let Some(first) = first else {
            return Ok(None);
        };
        let last_old = first + old_ts.len() as u64;
        let checkpoints: Vec<(Checkpoint, String)> = read_lines(&cp_path)?
            .into_iter()
            .filter_map(|l| serde_json::from_str::<Checkpoint>(&l).ok().map(|c| (c, l)))
            .collect();
        let cut = checkpoints
            .iter()
            .map(|(c, _)| c.seq)
            .filter(|&s| s >= first && s < last_old && s < head.seq)
            .max();
        let Some(cut) = cut else {
            return Ok(None);
        };
        let through_ts_ms = usize::try_from(cut - first)
            .ok()
            .and_then(|i| old_ts.get(i).copied())
            .unwrap_or(0);
        let kept_cps = checkpoints
            .iter()
            .filter(|(c, _)| c.seq >= cut)
            .map(|(_, l)| l.as_str());
        replace_file(&cp_path, kept_cps)?;
        let skip = usize::try_from(cut - first + 1).unwrap_or(usize::MAX);
        replace_file(&chain_path, records.iter().skip(skip).map(String::as_str))?;
        head.chain = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&chain_path)
            .map_err(AuditError::io("open", &chain_path))?;
        Ok(Some(Pruned {
            records: cut - first + 1,
            through_seq: cut,
            through_ts_ms,
        }))
    }

    /// Writes a final checkpoint. Call at shutdown.
    pub fn close(&self) -> Result<(), AuditError> {
        self.checkpoint()
    }

    /// The directory holding the chain.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Head> {
        // A panic while holding the lock cannot leave a half-written head: the fields are
        // updated only after the write succeeded. So a poisoned lock is still consistent.
        self.head.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn checkpoint_locked(&self, head: &mut Head) -> Result<(), AuditError> {
        if head.seq == head.checkpointed {
            return Ok(());
        }
        let cp = Checkpoint::sign(&self.key, head.seq, &head.hash, (self.clock)());
        let mut line = serde_json::to_string(&cp)
            .unwrap_or_else(|e| unreachable!("BUG: checkpoint does not serialize: {e}"));
        line.push('\n');
        let path = self.dir.join(files::CHECKPOINTS);
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .map_err(AuditError::io("open", &path))?;
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(AuditError::io("append to", &path))?;
        head.checkpointed = head.seq;
        Ok(())
    }
}

/// Cuts a last line without its newline: a write interrupted by a crash, never acknowledged.
fn cut_torn_tail(file: &mut File, path: &Path) -> Result<(), AuditError> {
    let len = file.metadata().map_err(AuditError::io("stat", path))?.len();
    if len == 0 {
        return Ok(());
    }
    let mut contents = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut contents))
        .map_err(AuditError::io("read", path))?;
    if contents.last() == Some(&b'\n') {
        return Ok(());
    }
    let keep = contents
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    tracing_free_warn(path, len - keep as u64);
    file.set_len(keep as u64)
        .and_then(|()| file.sync_all())
        .map_err(AuditError::io("truncate", path))
}

/// The crate has no logging dependency; a torn tail is rare enough for stderr.
fn tracing_free_warn(path: &Path, bytes: u64) {
    eprintln!(
        "warning: cut {bytes} bytes of an unfinished record from the end of {}",
        path.display()
    );
}

/// The non-empty lines of a file (none if it is missing).
fn read_lines(path: &Path) -> Result<Vec<String>, AuditError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(AuditError::io("open", path)(e)),
    };
    let mut out = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(AuditError::io("read", path))?;
        if !line.trim().is_empty() {
            out.push(line);
        }
    }
    Ok(out)
}

/// Replaces `path` with `lines`: written to a new file, synced, renamed over the old one,
/// and the directory synced, so a crash leaves one or the other whole.
fn replace_file<'a>(path: &Path, lines: impl Iterator<Item = &'a str>) -> Result<(), AuditError> {
    let tmp = path.with_extension("jsonl.new");
    let mut out =
        std::io::BufWriter::new(File::create(&tmp).map_err(AuditError::io("create", &tmp))?);
    for line in lines {
        out.write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .map_err(AuditError::io("write", &tmp))?;
    }
    let file = out
        .into_inner()
        .map_err(|e| AuditError::io("write", &tmp)(e.into_error()))?;
    file.sync_all().map_err(AuditError::io("sync", &tmp))?;
    fs::rename(&tmp, path).map_err(AuditError::io("rename", path))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(AuditError::io("sync", dir))?;
    }
    Ok(())
}

/// The last non-empty line of a file, or `None` if it is missing or empty.
fn last_line(path: &Path) -> Result<Option<String>, AuditError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AuditError::io("open", path)(e)),
    };
    let mut last = None;
    for line in BufReader::new(file).lines() {
        let line = line.map_err(AuditError::io("read", path))?;
        if !line.trim().is_empty() {
            last = Some(line);
        }
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Outcome;

    fn entry(n: u32) -> Entry {
        Entry::new(
            "default",
            "alice",
            "test.act",
            format!("thing/{n}"),
            Outcome::Success,
        )
    }

    #[test]
    fn records_link_to_their_predecessor_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        let a = log.append(entry(1)).unwrap();
        let b = log.append(entry(2)).unwrap();
        assert_eq!((a.seq, a.prev.as_str()), (1, GENESIS));
        assert_eq!((b.seq, &b.prev), (2, &a.hash));
        drop(log);
        let log = AuditLog::open(dir.path()).unwrap();
        let c = log.append(entry(3)).unwrap();
        assert_eq!((c.seq, &c.prev), (3, &b.hash));
    }

    #[test]
    fn a_torn_last_line_is_cut_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        let a = log.append(entry(1)).unwrap();
        drop(log);
        let chain = dir.path().join("audit").join(files::CHAIN);
        let mut f = OpenOptions::new().append(true).open(&chain).unwrap();
        f.write_all(b"{\"seq\":2,\"ts_").unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        let b = log.append(entry(2)).unwrap();
        assert_eq!((b.seq, &b.prev), (2, &a.hash));
        assert!(crate::verify(dir.path()).unwrap().problem.is_none());
    }

    static NOW: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

    fn fake_now() -> i64 {
        NOW.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A log whose records are stamped `old` ms for the first `n_old`, then `new`.
    fn aged_log(dir: &Path, n_old: u32, n_new: u32) -> AuditLog {
        let mut log = AuditLog::open(dir).unwrap();
        log.clock = fake_now;
        NOW.store(1_000, std::sync::atomic::Ordering::Relaxed);
        for n in 0..n_old {
            log.append(entry(n)).unwrap();
        }
        NOW.store(100_000, std::sync::atomic::Ordering::Relaxed);
        for n in 0..n_new {
            log.append(entry(n_old + n)).unwrap();
        }
        log
    }

    #[test]
    fn pruning_cuts_at_a_signed_checkpoint_and_what_remains_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let log = aged_log(dir.path(), 150, 150);
        let pruned = log.prune_before(50_000).unwrap().unwrap();
        assert_eq!(
            pruned,
            Pruned {
                records: 100,
                through_seq: 100,
                through_ts_ms: 1_000
            },
            "only up to the last checkpoint among the old records"
        );
        let report = crate::verify(dir.path()).unwrap();
        assert_eq!(report.problem, None);
        assert_eq!((report.first, report.records), (101, 300));
        // Appends continue the chain, across a reopen too.
        let r = log.append(entry(900)).unwrap();
        assert_eq!(r.seq, 301);
        drop(log);
        let log = AuditLog::open(dir.path()).unwrap();
        assert_eq!(log.append(entry(901)).unwrap().seq, 302);
        log.close().unwrap();
        let report = crate::verify(dir.path()).unwrap();
        assert_eq!(report.problem, None);
        assert_eq!((report.first, report.records), (101, 302));
        // Pruning again finds nothing more behind a checkpoint that is old enough.
        assert_eq!(log.prune_before(50_000).unwrap(), None);
    }

    #[test]
    fn the_newest_record_and_unanchored_records_stay() {
        let dir = tempfile::tempdir().unwrap();
        let log = aged_log(dir.path(), 60, 0);
        // Every record is old, but the only checkpoint is at the head, which stays.
        assert_eq!(log.prune_before(50_000).unwrap(), None);
        let report = crate::verify(dir.path()).unwrap();
        assert_eq!(
            (report.first, report.records, report.problem),
            (1, 60, None)
        );
    }

    #[test]
    fn records_removed_at_the_start_without_a_signed_anchor_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let log = aged_log(dir.path(), 150, 150);
        log.prune_before(50_000).unwrap().unwrap();
        log.close().unwrap();
        let cps = dir.path().join("audit").join(files::CHECKPOINTS);
        let text = fs::read_to_string(&cps).unwrap();
        // A forged anchor: the right hash, a wrong signature.
        let forged = text.replacen("\"sig\":\"", "\"sig\":\"00", 1);
        fs::write(&cps, forged).unwrap();
        let problem = crate::verify(dir.path()).unwrap().problem.unwrap();
        assert_eq!(problem.kind, crate::ProblemKind::Missing, "{problem:?}");
        assert_eq!(problem.line, 1);
        // And with the anchor gone altogether.
        let without: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
        fs::write(&cps, without).unwrap();
        let problem = crate::verify(dir.path()).unwrap().problem.unwrap();
        assert_eq!(problem.kind, crate::ProblemKind::Missing, "{problem:?}");
        assert!(
            problem.message.contains("records 1 to 100"),
            "{}",
            problem.message
        );
    }

    #[test]
    fn checkpoints_are_signed_every_n_records_and_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        for n in 0..AuditLog::CHECKPOINT_EVERY + 3 {
            log.append(entry(u32::try_from(n).unwrap())).unwrap();
        }
        log.close().unwrap();
        let text = fs::read_to_string(dir.path().join("audit").join(files::CHECKPOINTS)).unwrap();
        let seqs: Vec<u64> = text
            .lines()
            .map(|l| serde_json::from_str::<Checkpoint>(l).unwrap().seq)
            .collect();
        assert_eq!(
            seqs,
            [AuditLog::CHECKPOINT_EVERY, AuditLog::CHECKPOINT_EVERY + 3]
        );
    }
}
