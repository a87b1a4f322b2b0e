//! The write-ahead log of Dozor's stores (metrics, logs): numbered segment files of
//! CRC-framed records.
//!
//! Layout (`docs/format/tsdb.md`, "WAL segment"): a WAL directory holds segments named by an
//! 8-digit decimal number ([`segment_name`]).
//! Each record is framed as `len:u32le crc32c:u32le payload[len]`, where the CRC covers the
//! payload. A segment is cut at [`SEGMENT_BYTES`]. Replay reads segments in order and stops
//! at the first torn or corrupt frame of the *last* segment (a crash mid-write), truncating
//! it there; corruption in an earlier segment is an error.
//!
//! Durability: [`FsyncPolicy`]. Every append is written with `write(2)` before it returns, so
//! an acknowledged append survives a crash of the process (`kill -9`) under every policy; the
//! policy decides when data reaches the disk for a crash of the machine.
//!
//! What a record holds is the caller's business: the crate frames, checks and replays
//! opaque payloads. [`dir`] holds the other durability primitive the stores share: a
//! directory written whole or not at all.
//!
//! ```
//! use dozor_wal::{FsyncPolicy, Wal, replay};
//! let dir = tempfile::tempdir().unwrap();
//! let mut wal = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
//! wal.append(b"first").unwrap();
//! drop(wal);
//! let mut seen = Vec::new();
//! replay(dir.path(), |payload| -> Result<(), dozor_wal::WalError> {
//!     seen.push(payload.to_vec());
//!     Ok(())
//! })
//! .unwrap();
//! assert_eq!(seen, [b"first".to_vec()]);
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub mod dir;

/// An error of the WAL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalError {
    /// A file operation failed.
    #[error("cannot {what} {path}: {source}")]
    Io {
        /// What we tried.
        what: &'static str,
        /// Which file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A segment before the last is damaged.
    #[error("corrupt WAL: {0}")]
    Corrupt(String),
    /// A record is larger than [`MAX_RECORD_BYTES`].
    #[error("limit exceeded: {0}")]
    Limit(String),
}

impl WalError {
    pub(crate) fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> WalError {
        let path = path.to_owned();
        move |source| WalError::Io { what, path, source }
    }
}

/// The file name of segment `n`.
pub fn segment_name(n: u64) -> String {
    format!("{n:08}")
}

/// A segment is cut when it grows past this size.
pub const SEGMENT_BYTES: u64 = 128 << 20;
/// Largest record accepted, to bound memory when reading a damaged log.
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// When the WAL is `fsync`ed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// Before every append returns: acknowledged data survives power loss.
    Always,
    /// At most this often, by the next append after the interval (plus at shutdown and at
    /// segment cuts): power loss can lose the last interval; a process crash loses nothing.
    Interval(#[serde(with = "millis")] Duration),
    /// Never explicitly (the OS writes back): a process crash loses nothing.
    Never,
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// The writer of one WAL directory.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    file: File,
    segment: u64,
    size: u64,
    policy: FsyncPolicy,
    last_sync: Instant,
    dirty: bool,
    frame: Vec<u8>,
    /// A failed write could not be undone: appends are refused until the WAL is reopened
    /// (replay then cuts the torn frame), so nothing is ever written after garbage.
    broken: bool,
}

/// Lists the segment numbers in `dir`, ascending.
pub fn segments(dir: &Path) -> Result<Vec<u64>, WalError> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(WalError::io("list", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(WalError::io("list", dir))?;
        if let Some(n) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u64>().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

impl Wal {
    /// Opens `dir` for appending to a new segment after the existing ones (replay them
    /// first with [`replay`]).
    pub fn open(dir: &Path, policy: FsyncPolicy) -> Result<Wal, WalError> {
        fs::create_dir_all(dir).map_err(WalError::io("create", dir))?;
        let next = segments(dir)?.last().map_or(0, |n| n + 1);
        let file = Self::create_segment(dir, next)?;
        sync_dir(dir)?;
        Ok(Wal {
            dir: dir.to_owned(),
            file,
            segment: next,
            size: 0,
            policy,
            last_sync: Instant::now(),
            dirty: false,
            frame: Vec::new(),
            broken: false,
        })
    }

    fn create_segment(dir: &Path, n: u64) -> Result<File, WalError> {
        let path = dir.join(segment_name(n));
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(WalError::io("create", &path))
    }

    /// The current segment's number.
    pub fn segment(&self) -> u64 {
        self.segment
    }

    /// Appends one encoded record and applies the fsync policy.
    pub fn append(&mut self, payload: &[u8]) -> Result<(), WalError> {
        if payload.len() > MAX_RECORD_BYTES {
            return Err(WalError::Limit(format!(
                "WAL record of {} bytes",
                payload.len()
            )));
        }
        if self.broken {
            return Err(WalError::Io {
                what: "append to",
                path: self.dir.join(segment_name(self.segment)),
                source: std::io::Error::other("an earlier failed write could not be undone"),
            });
        }
        if self.size > 0 && self.size + payload.len() as u64 + 8 > SEGMENT_BYTES {
            self.cut()?;
        }
        self.frame.clear();
        self.frame
            .extend_from_slice(&(payload.len() as u32).to_le_bytes());
        self.frame
            .extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
        self.frame.extend_from_slice(payload);
        let path = self.dir.join(segment_name(self.segment));
        if let Err(e) = self.file.write_all(&self.frame) {
            // A partial frame (disk full mid-write) must not precede later records: cut it
            // off, or refuse every later append.
            if self.file.set_len(self.size).is_err() {
                self.broken = true;
            }
            return Err(WalError::io("append to", &path)(e));
        }
        self.size += self.frame.len() as u64;
        self.dirty = true;
        match self.policy {
            FsyncPolicy::Always => self.sync()?,
            FsyncPolicy::Interval(every) if self.last_sync.elapsed() >= every => self.sync()?,
            _ => {}
        }
        Ok(())
    }

    /// `fsync`s the current segment if it has unsynced data.
    pub fn sync(&mut self) -> Result<(), WalError> {
        if self.dirty {
            let path = self.dir.join(segment_name(self.segment));
            self.file.sync_data().map_err(WalError::io("sync", &path))?;
            self.dirty = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Syncs if the interval policy's time has come (called by a background ticker).
    pub fn sync_if_due(&mut self) -> Result<(), WalError> {
        match self.policy {
            FsyncPolicy::Interval(every) if self.dirty && self.last_sync.elapsed() >= every => {
                self.sync()
            }
            _ => Ok(()),
        }
    }

    /// Closes the current segment (synced) and starts the next one.
    pub fn cut(&mut self) -> Result<u64, WalError> {
        self.sync()?;
        let next = self.segment + 1;
        let file = Self::create_segment(&self.dir, next)?;
        sync_dir(&self.dir)?;
        self.file = file;
        self.segment = next;
        self.size = 0;
        Ok(next)
    }

    /// Deletes every segment numbered below `keep_from`.
    pub fn truncate_before(&mut self, keep_from: u64) -> Result<(), WalError> {
        for n in segments(&self.dir)? {
            if n < keep_from {
                let path = self.dir.join(segment_name(n));
                fs::remove_file(&path).map_err(WalError::io("remove", &path))?;
            }
        }
        sync_dir(&self.dir)
    }
}

/// `fsync`s a directory so that created and removed files persist.
pub fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(WalError::io("sync directory", dir))
}

/// Reads every record of the WAL in `dir`, in order, calling `f` with each payload. A torn
/// or corrupt tail of the last segment is cut off (it was never acknowledged); returns how
/// many bytes were cut.
pub fn replay<E: From<WalError>>(
    dir: &Path,
    f: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<u64, E> {
    replay_from(dir, 0, f)
}

/// [`replay`], skipping the segments numbered below `first` (what a store already holds
/// elsewhere).
pub fn replay_from<E: From<WalError>>(
    dir: &Path,
    first: u64,
    mut f: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<u64, E> {
    let mut segs = segments(dir)?;
    segs.retain(|n| *n >= first);
    let mut cut = 0;
    for (i, &n) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        let path = dir.join(segment_name(n));
        let mut data = Vec::new();
        File::open(&path)
            .and_then(|mut file| {
                // Sized up front: growing a 128 MiB buffer by doubling copies it twice over.
                let len = file.metadata()?.len();
                data.reserve_exact(usize::try_from(len).unwrap_or(0));
                file.read_to_end(&mut data)
            })
            .map_err(WalError::io("read", &path))?;
        let mut pos = 0usize;
        while pos < data.len() {
            match frame_at(&data, pos) {
                Some((payload, next)) => {
                    f(payload)?;
                    pos = next;
                }
                None if last => {
                    cut = (data.len() - pos) as u64;
                    tracing::warn!(segment = %path.display(), bytes = cut, "cutting a torn WAL tail");
                    OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .and_then(|file| {
                            file.set_len(pos as u64)?;
                            file.sync_all()
                        })
                        .map_err(WalError::io("truncate", &path))?;
                    break;
                }
                None => {
                    return Err(WalError::Corrupt(format!(
                        "WAL segment {} is corrupt at byte {pos}",
                        path.display()
                    ))
                    .into());
                }
            }
        }
    }
    Ok(cut)
}

/// The payload of the frame at `pos` and the position after it, if the frame is whole and
/// its CRC matches.
fn frame_at(data: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let header = data.get(pos..pos + 8)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().ok()?);
    if len > MAX_RECORD_BYTES {
        return None;
    }
    let payload = data.get(pos + 8..pos + 8 + len)?;
    (crc32c::crc32c(payload) == crc).then_some((payload, pos + 8 + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(dir: &Path) -> (Vec<Vec<u8>>, u64) {
        let mut out = Vec::new();
        let cut = replay(dir, |p| -> Result<(), WalError> {
            out.push(p.to_vec());
            Ok(())
        })
        .unwrap();
        (out, cut)
    }

    #[test]
    fn records_survive_reopen_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
        wal.append(b"one").unwrap();
        wal.cut().unwrap();
        wal.append(b"two").unwrap();
        drop(wal);
        let (records, cut) = collect(dir.path());
        assert_eq!((records, cut), (vec![b"one".to_vec(), b"two".to_vec()], 0));
        let mut wal = Wal::open(dir.path(), FsyncPolicy::Always).unwrap();
        wal.append(b"three").unwrap();
        assert_eq!(collect(dir.path()).0.len(), 3);
    }

    #[test]
    fn a_torn_tail_is_cut_and_later_appends_replay() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
        wal.append(b"kept").unwrap();
        wal.append(b"torn record").unwrap();
        let seg = dir.path().join(segment_name(wal.segment()));
        drop(wal);
        let len = fs::metadata(&seg).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let (records, cut) = collect(dir.path());
        assert_eq!(records, vec![b"kept".to_vec()]);
        assert_eq!(cut, 8 + 11 - 3);
        // The cut is permanent: a second replay sees a clean log.
        assert_eq!(collect(dir.path()).1, 0);
    }

    #[test]
    fn a_flipped_bit_in_an_old_segment_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
        wal.append(b"payload").unwrap();
        let seg = dir.path().join(segment_name(wal.segment()));
        wal.cut().unwrap();
        wal.append(b"later").unwrap();
        drop(wal);
        let mut bytes = fs::read(&seg).unwrap();
        bytes[10] ^= 1;
        fs::write(&seg, bytes).unwrap();
        assert!(matches!(
            replay(dir.path(), |_| Ok(())),
            Err(WalError::Corrupt(_))
        ));
    }

    #[test]
    fn truncate_removes_old_segments_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
        wal.append(b"a").unwrap();
        let keep = wal.cut().unwrap();
        wal.append(b"b").unwrap();
        wal.truncate_before(keep).unwrap();
        assert_eq!(segments(dir.path()).unwrap(), vec![keep]);
        assert_eq!(collect(dir.path()).0, vec![b"b".to_vec()]);
    }
}
