//! [`AuditLog`]: the writer that appends records and checkpoints.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ed25519_dalek::SigningKey;

use crate::checkpoint::{Checkpoint, load_or_create_key};
use crate::record::GENESIS;
use crate::{AuditError, Entry, Record, files};

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
