//! File tail: log files matched by globs, read as they grow, into [`LogRecord`]s — what
//! Filebeat or Promtail do for the KKT drivers' logs of seed 000, without a second program.
//!
//! - **Lines**: plain text (the message is the line) or JSON (NDJSON conventions; a line
//!   that is not JSON is kept as text with an `error` field, never dropped). `\r\n` endings
//!   lose their `\r`; a line longer than `max_line_bytes` is cut there and the rest of it
//!   skipped; invalid UTF-8 is replaced.
//! - **Multiline** (Filebeat's `pattern`, `negate`, `match: after|before`, `max_lines`,
//!   `timeout`): a line is a *continuation* when it matches the pattern (or, with `negate`,
//!   when it does not). `after`: continuations join the line before them (stack traces
//!   under a timestamped line). `before`: continuations join the line after them (lines
//!   ending in `\`). An event is complete when the next one starts, or after `timeout`
//!   without a new line.
//! - **Offsets**: a file's checkpoint is the offset after the last line of the last event
//!   delivered; a partial last line or an unfinished event stays unread as far as the
//!   checkpoint goes. Checkpoints are saved (through [`Checkpoints`]) only after the sink
//!   made the records durable, so a crash re-reads at most the batch in flight:
//!   at-least-once, never a loss.
//! - **Identity**: a file is its device and inode, checked against a fingerprint (a hash of
//!   its first [`FINGERPRINT_BYTES`] bytes) so a reused inode reads as a new file.
//! - **Rotation by rename**: the renamed file keeps its inode and its open descriptor: it is
//!   read to its end under whatever name, then closed after `close_inactive`; the new file
//!   under the old name starts at 0.
//! - **Rotation by copytruncate** (and plain truncation): a file shorter than what was read
//!   was truncated. Lines written after the last read and before the truncation live only
//!   in the copy, so the copy — a file of the same directory with the same fingerprint — is
//!   read from the old offset to its end first; then the file starts again at 0. A copy
//!   the globs match is recognised by its fingerprint and not read twice.
//! - **Back-pressure**: the tail reads the next batch only after the last one was stored;
//!   when storing fails it goes back to the saved checkpoints and tries again with back-off.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dozor_model::{Labels, LogRecord, TenantId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ndjson::{LineReader, NdjsonOptions};
use crate::source::{SourceStats, next_backoff, sleep_or_stop};
use crate::syslog::LogSink;

/// How many leading bytes identify a file's content.
pub const FINGERPRINT_BYTES: u64 = 1024;
/// Bytes read from a file at a time.
const READ_CHUNK: usize = 64 << 10;

/// One `sources.files` entry of `dozor.yml`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// Unique name: the key of its checkpoints and the `source` label of its metrics.
    pub name: String,
    /// Glob patterns (`/var/log/kkt/*.log`); a rotated name worth reading after a restart
    /// (`*.log.1`) may be included: copies are recognised.
    pub paths: Vec<String>,
    /// `plain` (default) or `json`.
    #[serde(default)]
    pub format: LineFormat,
    /// Stream labels of every record (besides `filename`, the file's path).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The tenant the records belong to.
    #[serde(default = "TenantId::default_tenant")]
    pub tenant: TenantId,
    /// Joining lines into events.
    #[serde(default)]
    pub multiline: Option<MultilineConfig>,
    /// How often to look for new data and new files.
    #[serde(default = "default_poll", with = "dozor_model::duration")]
    pub poll_interval: Duration,
    /// Longest line kept; the rest of a longer one is skipped.
    #[serde(default = "default_max_line")]
    pub max_line_bytes: usize,
    /// A file no glob matches any more (renamed away, deleted) is closed once it has not
    /// grown for this long.
    #[serde(default = "default_close_inactive", with = "dozor_model::duration")]
    pub close_inactive: Duration,
}

impl FileSourceConfig {
    /// A source of `paths` with every other option at its default.
    pub fn new(name: &str, paths: Vec<String>) -> FileSourceConfig {
        FileSourceConfig {
            name: name.to_owned(),
            paths,
            format: LineFormat::default(),
            labels: BTreeMap::new(),
            tenant: TenantId::default_tenant(),
            multiline: None,
            poll_interval: default_poll(),
            max_line_bytes: default_max_line(),
            close_inactive: default_close_inactive(),
        }
    }
}

fn default_poll() -> Duration {
    Duration::from_millis(250)
}

fn default_max_line() -> usize {
    crate::ndjson::MAX_LINE_BYTES
}

fn default_close_inactive() -> Duration {
    Duration::from_secs(60)
}

/// How a line becomes a record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LineFormat {
    /// The line is the message.
    #[default]
    Plain,
    /// The line is a JSON object (NDJSON conventions: `_msg`, `_time`, `_stream`).
    Json,
}

/// Filebeat's multiline options.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MultilineConfig {
    /// Regex a line is matched against.
    pub pattern: String,
    /// Continuations are the lines that do *not* match.
    #[serde(default)]
    pub negate: bool,
    /// `after` (default): continuations join the line before; `before`: the line after.
    #[serde(default, rename = "match")]
    pub join: Join,
    /// Most lines in one event; further continuations are dropped (and counted).
    #[serde(default = "default_max_lines")]
    pub max_lines: usize,
    /// An unfinished event is delivered after this long without a new line.
    #[serde(default = "default_multiline_timeout", with = "dozor_model::duration")]
    pub timeout: Duration,
}

fn default_max_lines() -> usize {
    500
}

fn default_multiline_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Which neighbour continuations join.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Join {
    /// The line before.
    #[default]
    After,
    /// The line after.
    Before,
}

/// A checked [`FileSourceConfig`].
#[derive(Debug, Clone)]
pub struct FileSource {
    config: FileSourceConfig,
    multiline: Option<(regex::Regex, MultilineConfig)>,
}

/// The stream of a file's records: the configured labels and `filename`.
fn stream_labels(
    labels: &BTreeMap<String, String>,
    path: &str,
) -> Result<Labels, dozor_model::LabelsError> {
    Labels::from_pairs(
        labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain([("filename", path)]),
    )
}

impl FileSource {
    /// Checks globs, labels and the multiline pattern.
    pub fn new(config: FileSourceConfig) -> Result<FileSource, String> {
        if config.name.is_empty() {
            return Err("a file source needs a name".into());
        }
        if config.paths.is_empty() {
            return Err(format!("file source {}: no paths", config.name));
        }
        for p in &config.paths {
            glob::Pattern::new(p)
                .map_err(|e| format!("file source {}: path {p:?}: {e}", config.name))?;
        }
        if config.max_line_bytes == 0 {
            return Err(format!("file source {}: max_line_bytes is 0", config.name));
        }
        if config.labels.contains_key("filename") {
            return Err(format!(
                "file source {}: `filename` is set by the tail itself",
                config.name
            ));
        }
        stream_labels(&config.labels, "/a/file")
            .map_err(|e| format!("file source {}: labels: {e}", config.name))?;
        let multiline = match &config.multiline {
            Some(m) => {
                let re = regex::Regex::new(&m.pattern)
                    .map_err(|e| format!("file source {}: multiline pattern: {e}", config.name))?;
                if m.max_lines == 0 {
                    return Err(format!(
                        "file source {}: multiline max_lines is 0",
                        config.name
                    ));
                }
                Some((re, m.clone()))
            }
            None => None,
        };
        Ok(FileSource { config, multiline })
    }

    /// The configuration.
    pub fn config(&self) -> &FileSourceConfig {
        &self.config
    }
}

/// Where a file was read up to, as saved between runs (one per file, keyed by
/// [`Checkpoint::key`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Checkpoint {
    /// The path it was last seen under.
    pub path: String,
    /// Device and inode.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Bytes delivered.
    pub offset: u64,
    /// How many leading bytes the fingerprint covers.
    pub fp_len: u64,
    /// Hex SHA-256 (first 16 bytes) of those bytes.
    pub fp: String,
}

impl Checkpoint {
    /// The key it is saved under: `dev:ino`.
    pub fn key(&self) -> String {
        key_string((self.dev, self.ino))
    }
}

fn key_string((dev, ino): FileKey) -> String {
    format!("{dev}:{ino}")
}

type FileKey = (u64, u64);

/// What one poll read: records, and the checkpoints to save once they are stored (`None`:
/// forget the file).
#[derive(Debug, Default)]
pub struct TailBatch {
    /// Records, in file order per file.
    pub records: Vec<LogRecord>,
    /// Checkpoints by key.
    pub checkpoints: Vec<(String, Option<Checkpoint>)>,
    /// Bytes of the lines read.
    pub bytes: u64,
    /// A file had more to read than the poll's budget: poll again at once.
    pub more: bool,
}

impl TailBatch {
    /// Whether there is nothing to store or save.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.checkpoints.is_empty()
    }
}

/// The event being joined.
#[derive(Debug)]
struct Pending {
    /// File offset of its first line.
    start: u64,
    text: Vec<u8>,
    lines: usize,
    since: Instant,
}

/// One open file.
#[derive(Debug)]
struct Tracked {
    key: FileKey,
    path: PathBuf,
    file: File,
    /// Bytes read (the next read starts here).
    read_at: u64,
    /// Bytes after the last newline read.
    partial: Vec<u8>,
    /// Skipping the rest of an over-long line.
    skipping: bool,
    pending: Option<Pending>,
    fp_len: u64,
    fp: String,
    /// The checkpoint last saved (`None`: none yet for this content: a rewind goes back
    /// to `base`).
    saved: Option<Checkpoint>,
    /// Where this content started being read in this run.
    base: u64,
    /// When it last grew (or was opened).
    grew: Instant,
    /// Whether the last scan's globs matched it.
    matched: bool,
    /// The stream of its records (set with the path).
    stream: Labels,
}

impl Tracked {
    /// Where a restart must resume: before the unfinished event or partial line.
    fn resume_offset(&self) -> u64 {
        match &self.pending {
            Some(p) => p.start,
            None => self.read_at - self.partial.len() as u64,
        }
    }

    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            path: self.path.display().to_string(),
            dev: self.key.0,
            ino: self.key.1,
            offset: self.resume_offset(),
            fp_len: self.fp_len,
            fp: self.fp.clone(),
        }
    }
}

/// The reading side of a file source: no threads, no store; [`run`] drives it.
#[derive(Debug)]
pub struct Tailer {
    source: FileSource,
    stats: Arc<SourceStats>,
    files: Vec<Tracked>,
    /// Saved checkpoints not yet matched to a file (the first scan uses them).
    stored: HashMap<FileKey, Checkpoint>,
    /// Whether the first scan ran.
    scanned: bool,
}

impl Tailer {
    /// A tailer resuming from `saved` (key, checkpoint JSON) pairs; damaged entries are
    /// skipped with a warning (those files are read from the start).
    pub fn new(
        source: FileSource,
        saved: Vec<(String, String)>,
        stats: Arc<SourceStats>,
    ) -> Tailer {
        let mut stored = HashMap::new();
        for (key, json) in saved {
            match serde_json::from_str::<Checkpoint>(&json) {
                Ok(c) if c.key() == key => {
                    stored.insert((c.dev, c.ino), c);
                }
                Ok(_) | Err(_) => tracing::warn!(
                    source = %source.config.name,
                    %key,
                    "ignoring a damaged file checkpoint"
                ),
            }
        }
        Tailer {
            source,
            stats,
            files: Vec::new(),
            stored,
            scanned: false,
        }
    }

    /// The source.
    pub fn source(&self) -> &FileSource {
        &self.source
    }

    /// Looks for new, rotated and truncated files, then reads what is new, up to about
    /// `max_bytes` of lines.
    pub fn poll(&mut self, now: Instant, max_bytes: u64) -> TailBatch {
        let mut batch = TailBatch::default();
        self.scan(now, &mut batch);
        let ctx = Ctx::new(&self.source, &self.stats);
        let mut i = 0;
        while i < self.files.len() {
            let f = &mut self.files[i];
            if batch.bytes >= max_bytes {
                batch.more = true;
            } else if let Err(e) = ctx.read(f, now, max_bytes - batch.bytes, &mut batch) {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    source = %self.source.config.name,
                    path = %f.path.display(),
                    error = %e,
                    "cannot read a tailed file"
                );
            }
            ctx.flush_if_due(f, now, &mut batch);
            let idle =
                !f.matched && now.duration_since(f.grew) >= self.source.config.close_inactive;
            if idle && at_end(f) {
                let mut f = self.files.swap_remove(i);
                ctx.finish(&mut f, now, &mut batch);
                batch.checkpoints.push((key_string(f.key), None));
                continue;
            }
            let cp = f.checkpoint();
            if f.saved.as_ref() != Some(&cp) {
                batch.checkpoints.push((cp.key(), Some(cp)));
            }
            i += 1;
        }
        self.stats
            .files
            .store(self.files.len() as u64, Ordering::Relaxed);
        self.stats.lag.store(self.lag(), Ordering::Relaxed);
        batch
    }

    /// Notes that `batch`'s records are stored and its checkpoints saved.
    pub fn commit(&mut self, batch: &TailBatch) {
        for (key, cp) in &batch.checkpoints {
            if let Some(f) = self.files.iter_mut().find(|f| key_string(f.key) == *key) {
                f.saved.clone_from(cp);
            }
        }
        self.stats.lag.store(self.lag(), Ordering::Relaxed);
    }

    /// Forgets everything read since the last commit: the next poll reads it again.
    pub fn rewind(&mut self) {
        for f in &mut self.files {
            f.read_at = f.saved.as_ref().map_or(f.base, |c| c.offset);
            f.partial.clear();
            f.skipping = false;
            f.pending = None;
        }
    }

    /// Bytes in open files beyond what was delivered.
    pub fn lag(&self) -> u64 {
        self.files
            .iter()
            .map(|f| {
                let len = f.file.metadata().map_or(0, |m| m.len());
                len.saturating_sub(f.saved.as_ref().map_or(0, |c| c.offset))
            })
            .sum()
    }

    /// Matches the globs: new files are opened, renamed and truncated known ones noticed.
    fn scan(&mut self, now: Instant, batch: &mut TailBatch) {
        let mut found: Vec<(PathBuf, std::fs::Metadata)> = Vec::new();
        for pattern in &self.source.config.paths {
            let Ok(paths) = glob::glob(pattern) else {
                continue;
            };
            for path in paths.flatten() {
                if let Ok(m) = std::fs::metadata(&path)
                    && m.is_file()
                {
                    found.push((path, m));
                }
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found.sort_by_key(|(_, m)| (m.dev(), m.ino()));
        found.dedup_by_key(|(_, m)| (m.dev(), m.ino()));
        for f in &mut self.files {
            f.matched = false;
        }
        let ctx = Ctx::new(&self.source, &self.stats);
        // Known inodes first, so a copy is compared with its original's latest state.
        let mut new = Vec::new();
        for (path, meta) in found {
            let key = (meta.dev(), meta.ino());
            let Some(i) = self.files.iter().position(|f| f.key == key) else {
                new.push((path, meta));
                continue;
            };
            let mut f = self.files.swap_remove(i);
            f.matched = true;
            f.rename(path, &self.source.config.labels);
            if meta.len() < f.read_at {
                ctx.truncated(&mut f, &mut self.files, now, batch);
            }
            self.files.push(f);
        }
        // After a restart every file is new: those with a checkpoint of their own resume
        // first, so a copy made while Dozor was down is compared with a live original
        // instead of taking its checkpoint.
        new.sort_by_key(|(_, m)| !self.stored.contains_key(&(m.dev(), m.ino())));
        for (path, meta) in new {
            if let Err(e) = self.open(path.clone(), &meta, now, batch) {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    source = %self.source.config.name,
                    path = %path.display(),
                    error = %e,
                    "cannot open a tailed file"
                );
            }
        }
        if !self.scanned {
            self.scanned = true;
            // Saved files that are gone: nothing more can be read of them.
            for (key, _) in self.stored.drain() {
                batch.checkpoints.push((key_string(key), None));
            }
        }
    }

    /// Starts tracking a file the globs matched for the first time.
    fn open(
        &mut self,
        path: PathBuf,
        meta: &std::fs::Metadata,
        now: Instant,
        batch: &mut TailBatch,
    ) -> std::io::Result<()> {
        let key = (meta.dev(), meta.ino());
        let file = File::open(&path)?;
        let len = meta.len();
        let (fp_len, fp) = fingerprint(&file, len)?;
        let ctx = Ctx::new(&self.source, &self.stats);
        let labels = &self.source.config.labels;
        let mut saved = None;
        let read_at = if let Some(cp) = self.stored.remove(&key) {
            if cp.offset <= len && fingerprint_of(&file, cp.fp_len)? == cp.fp {
                // The same file: resume.
                let offset = cp.offset;
                saved = Some(cp);
                offset
            } else {
                // Truncated or replaced while Dozor was down: recover the lost tail from a
                // copy, then read the file from the start.
                self.stats.rotations.fetch_add(1, Ordering::Relaxed);
                let id = (key, path.clone(), file.try_clone()?);
                let mut old = Tracked::new(id, (cp.fp_len, cp.fp), cp.offset, labels, now);
                ctx.recover_from_copy(&mut old, &mut self.files, now, batch);
                ctx.finish(&mut old, now, batch);
                0
            }
        } else if let Some(cp) = self
            .stored
            .values()
            .find(|c| c.fp_len == FINGERPRINT_BYTES && c.fp == fp && c.offset <= len)
            .cloned()
        {
            // Renamed while Dozor was down, to a name the globs match.
            self.stored.remove(&(cp.dev, cp.ino));
            batch.checkpoints.push((cp.key(), None));
            cp.offset
        } else if fp_len == FINGERPRINT_BYTES
            && self.files.iter().any(|t| {
                t.fp_len == FINGERPRINT_BYTES && t.fp == fp && t.path.parent() == path.parent()
            })
        {
            // A copy of a file being read (copytruncate's copy before the truncation):
            // the original delivers these lines; the copy serves only to recover its
            // tail after the truncation.
            len
        } else {
            0
        };
        let mut f = Tracked::new((key, path, file), (fp_len, fp), read_at, labels, now);
        f.saved = saved;
        self.files.push(f);
        Ok(())
    }
}

impl Tracked {
    /// A file read from `read_at`; `labels`: the source's configured stream labels.
    fn new(
        (key, path, file): (FileKey, PathBuf, File),
        (fp_len, fp): (u64, String),
        read_at: u64,
        labels: &BTreeMap<String, String>,
        now: Instant,
    ) -> Tracked {
        let stream = file_stream(labels, &path);
        Tracked {
            key,
            path,
            file,
            read_at,
            partial: Vec::new(),
            skipping: false,
            pending: None,
            fp_len,
            fp,
            saved: None,
            base: read_at,
            grew: now,
            matched: true,
            stream,
        }
    }

    /// Notes the name the file is seen under now.
    fn rename(&mut self, path: PathBuf, labels: &BTreeMap<String, String>) {
        if path != self.path {
            self.stream = file_stream(labels, &path);
            self.path = path;
        }
    }
}

/// The stream of a file's records ([`FileSource::new`] checked the labels, with any path).
fn file_stream(labels: &BTreeMap<String, String>, path: &std::path::Path) -> Labels {
    stream_labels(labels, &path.display().to_string()).unwrap_or_default()
}

/// What turning bytes into records needs, borrowed from the [`Tailer`] beside its files,
/// for one poll.
struct Ctx<'a> {
    source: &'a FileSource,
    stats: &'a SourceStats,
    /// The time of the poll's records (ingest time: the pipeline may find theirs).
    now_ns: i64,
    /// NDJSON conventions, for `json` sources.
    json: Option<NdjsonOptions>,
}

impl<'a> Ctx<'a> {
    fn new(source: &'a FileSource, stats: &'a SourceStats) -> Ctx<'a> {
        let now_ns = dozor_model::time::now_ms().saturating_mul(1_000_000);
        Ctx {
            source,
            stats,
            now_ns,
            json: (source.config.format == LineFormat::Json).then(|| NdjsonOptions::new(now_ns)),
        }
    }

    /// `f` was truncated (or rotated by copytruncate): read the lines it lost from its
    /// copy, deliver what was pending, and start it again from 0.
    fn truncated(
        &self,
        f: &mut Tracked,
        others: &mut Vec<Tracked>,
        now: Instant,
        batch: &mut TailBatch,
    ) {
        self.stats.rotations.fetch_add(1, Ordering::Relaxed);
        self.recover_from_copy(f, others, now, batch);
        self.finish(f, now, batch);
        // Nothing of the new content is delivered yet: a rewind starts it again at 0. (It
        // does not read the copy again: should storing this batch fail, the lines
        // recovered from the copy are lost.)
        (f.read_at, f.base, f.saved) = (0, 0, None);
        f.grew = now;
        let len = f.file.metadata().map_or(0, |m| m.len());
        (f.fp_len, f.fp) = fingerprint(&f.file, len).unwrap_or((0, String::new()));
    }

    /// Reads, from a file of `f`'s directory with `f`'s fingerprint and at least
    /// `f.read_at` bytes, the bytes after `f.read_at`, as if `f` had them; the copy is
    /// then tracked at its end so the globs do not read it again.
    fn recover_from_copy(
        &self,
        f: &mut Tracked,
        others: &mut Vec<Tracked>,
        now: Instant,
        batch: &mut TailBatch,
    ) {
        if f.fp_len == 0 {
            return;
        }
        let Some(entries) = f.path.parent().and_then(|d| std::fs::read_dir(d).ok()) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            let key = (meta.dev(), meta.ino());
            if !meta.is_file() || key == f.key || meta.len() < f.read_at {
                continue;
            }
            let Ok(copy) = File::open(entry.path()) else {
                continue;
            };
            if fingerprint_of(&copy, f.fp_len).ok().as_deref() != Some(f.fp.as_str()) {
                continue;
            }
            let end = meta.len();
            let mut buf = vec![0u8; READ_CHUNK];
            while f.read_at < end {
                let want = (end - f.read_at).min(READ_CHUNK as u64) as usize;
                match copy.read_at(&mut buf[..want], f.read_at) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        f.read_at += n as u64;
                        self.take(f, &buf[..n], now, batch);
                    }
                }
            }
            tracing::info!(
                source = %self.source.config.name,
                path = %f.path.display(),
                copy = %entry.path().display(),
                "read the tail of a truncated file from its copy"
            );
            match others.iter_mut().find(|t| t.key == key) {
                Some(t) => t.read_at = t.read_at.max(end),
                None => {
                    if let Ok(fp) = fingerprint(&copy, end) {
                        let id = (key, entry.path(), copy);
                        let mut t = Tracked::new(id, fp, end, &self.source.config.labels, now);
                        t.matched = false;
                        others.push(t);
                    }
                }
            }
            return;
        }
    }

    /// Reads what `f` has beyond `read_at`, up to about `budget` bytes.
    fn read(
        &self,
        f: &mut Tracked,
        now: Instant,
        budget: u64,
        batch: &mut TailBatch,
    ) -> std::io::Result<()> {
        let mut buf = vec![0u8; READ_CHUNK];
        let mut read = 0u64;
        while read < budget {
            let n = f.file.read_at(&mut buf, f.read_at)?;
            if n == 0 {
                break;
            }
            f.read_at += n as u64;
            read += n as u64;
            f.grew = now;
            self.take(f, &buf[..n], now, batch);
        }
        batch.more |= read >= budget;
        if read > 0 && f.fp_len < FINGERPRINT_BYTES {
            (f.fp_len, f.fp) = fingerprint(&f.file, f.read_at)?;
        }
        Ok(())
    }

    /// Splits `bytes` (read just before `f.read_at`) into lines.
    fn take(&self, f: &mut Tracked, bytes: &[u8], now: Instant, batch: &mut TailBatch) {
        let max = self.source.config.max_line_bytes;
        let base = f.read_at - bytes.len() as u64;
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', bytes) {
            let end = base + nl as u64 + 1;
            if f.skipping {
                f.skipping = false;
            } else {
                let mut text = std::mem::take(&mut f.partial);
                let room = max.saturating_sub(text.len());
                let piece = &bytes[start..nl];
                if piece.len() > room {
                    self.stats.truncated.fetch_add(1, Ordering::Relaxed);
                }
                text.extend_from_slice(&piece[..piece.len().min(room)]);
                if text.last() == Some(&b'\r') {
                    text.pop();
                }
                self.line(f, text, end, now, batch);
            }
            start = nl + 1;
        }
        if !f.skipping {
            let rest = &bytes[start..];
            let room = max.saturating_sub(f.partial.len());
            if rest.len() > room {
                // Over-long: deliver its first `max` bytes now, skip to the newline.
                f.partial.extend_from_slice(&rest[..room]);
                self.stats.truncated.fetch_add(1, Ordering::Relaxed);
                let text = std::mem::take(&mut f.partial);
                f.skipping = true;
                let end = f.read_at;
                self.line(f, text, end, now, batch);
            } else {
                f.partial.extend_from_slice(rest);
            }
        }
    }

    /// One complete line, `end` the file offset after it: joined into the pending event
    /// or delivered.
    fn line(&self, f: &mut Tracked, text: Vec<u8>, end: u64, now: Instant, batch: &mut TailBatch) {
        let Some((re, m)) = &self.source.multiline else {
            batch.bytes += text.len() as u64;
            let r = self.record(f, &text);
            batch.records.push(r);
            return;
        };
        // Where the line began, for a checkpoint taken while its event is unfinished (a cut
        // over-long line began further back, but it is delivered at once).
        let start = end.saturating_sub(text.len() as u64 + 1);
        let continuation = re.is_match(&String::from_utf8_lossy(&text)) != m.negate;
        match m.join {
            Join::After => {
                if continuation && let Some(p) = &mut f.pending {
                    append_line(p, &text, m.max_lines, self.stats, now);
                    return;
                }
                self.deliver_pending(f, batch);
                f.pending = Some(Pending {
                    start,
                    text,
                    lines: 1,
                    since: now,
                });
            }
            Join::Before => {
                match &mut f.pending {
                    Some(p) => append_line(p, &text, m.max_lines, self.stats, now),
                    None => {
                        f.pending = Some(Pending {
                            start,
                            text,
                            lines: 1,
                            since: now,
                        });
                    }
                }
                if !continuation {
                    self.deliver_pending(f, batch);
                }
            }
        }
    }

    fn deliver_pending(&self, f: &mut Tracked, batch: &mut TailBatch) {
        if let Some(p) = f.pending.take() {
            batch.bytes += p.text.len() as u64;
            let r = self.record(f, &p.text);
            batch.records.push(r);
        }
    }

    /// Delivers the pending event of `f` if it waited `timeout`.
    fn flush_if_due(&self, f: &mut Tracked, now: Instant, batch: &mut TailBatch) {
        if let Some((_, m)) = &self.source.multiline
            && f.pending
                .as_ref()
                .is_some_and(|p| now.duration_since(p.since) >= m.timeout)
        {
            self.deliver_pending(f, batch);
        }
    }

    /// Delivers everything `f` holds (its end is final: truncated or closed), a partial
    /// last line included.
    fn finish(&self, f: &mut Tracked, now: Instant, batch: &mut TailBatch) {
        if !f.partial.is_empty() && !f.skipping {
            let text = std::mem::take(&mut f.partial);
            let end = f.read_at;
            self.line(f, text, end, now, batch);
        }
        f.partial.clear();
        f.skipping = false;
        self.deliver_pending(f, batch);
    }

    /// The record of one line or event.
    fn record(&self, f: &Tracked, text: &[u8]) -> LogRecord {
        let text = String::from_utf8_lossy(text);
        let Some(opts) = &self.json else {
            return LogRecord::new(self.now_ns, f.stream.clone(), text);
        };
        match LineReader::new(opts).line(text.trim()) {
            Ok(mut r) => {
                // The line's own stream labels win over the configured ones.
                for l in f.stream.iter() {
                    if r.stream.get(&l.name).is_none()
                        && let Ok(s) = r.stream.with(&l.name, &l.value)
                    {
                        r.stream = s;
                    }
                }
                r
            }
            Err(e) => {
                let mut r = LogRecord::new(self.now_ns, f.stream.clone(), text);
                r.fields.push(("error".into(), e));
                r
            }
        }
    }
}

fn append_line(p: &mut Pending, text: &[u8], max_lines: usize, stats: &SourceStats, now: Instant) {
    p.since = now;
    if p.lines >= max_lines {
        stats.truncated.fetch_add(1, Ordering::Relaxed);
        return;
    }
    p.text.push(b'\n');
    p.text.extend_from_slice(text);
    p.lines += 1;
}

/// Whether everything of `f` was read.
fn at_end(f: &Tracked) -> bool {
    f.file.metadata().is_ok_and(|m| m.len() <= f.read_at)
}

/// The fingerprint of a file of `len` bytes: (bytes covered, hash).
fn fingerprint(file: &File, len: u64) -> std::io::Result<(u64, String)> {
    let n = len.min(FINGERPRINT_BYTES);
    Ok((n, fingerprint_of(file, n)?))
}

/// The hash of the first `n` bytes of `file` (a shorter file gives a hash no full
/// fingerprint equals).
fn fingerprint_of(file: &File, n: u64) -> std::io::Result<String> {
    let mut buf = vec![0u8; n as usize];
    let mut got = 0;
    while got < buf.len() {
        let k = file.read_at(&mut buf[got..], got as u64)?;
        if k == 0 {
            break;
        }
        got += k;
    }
    buf.truncate(got);
    let digest = Sha256::digest(&buf);
    Ok(format!("{n}:{}", hex_prefix(&digest[..16])))
}

fn hex_prefix(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Where checkpoints are kept between runs (the state store, in the binary).
pub trait Checkpoints: Send + Sync + 'static {
    /// Every saved `(key, checkpoint JSON)` of `source`.
    fn load(
        &self,
        source: &str,
    ) -> impl std::future::Future<Output = Result<Vec<(String, String)>, String>> + Send;
    /// Saves (`Some`) or forgets (`None`) checkpoints of `source`, all or none.
    fn save(
        &self,
        source: &str,
        entries: &[(String, Option<String>)],
    ) -> impl std::future::Future<Output = Result<(), String>> + Send;
}

/// Most bytes of lines in one delivery.
const BATCH_BYTES: u64 = 4 << 20;

/// Tails `source` until `stop` turns true: polls, stores each batch through `sink` (made
/// durable before anything else), then saves its checkpoints.
pub async fn run<C: Checkpoints>(
    source: FileSource,
    sink: Arc<dyn LogSink>,
    checkpoints: Arc<C>,
    stats: Arc<SourceStats>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let name = source.config.name.clone();
    let tenant = source.config.tenant.clone();
    let interval = source.config.poll_interval;
    let mut backoff = Duration::ZERO;
    let saved = loop {
        match checkpoints.load(&name).await {
            Ok(saved) => break saved,
            Err(e) => {
                stats.error(&e);
                backoff = next_backoff(backoff);
                tracing::warn!(source = %name, error = %e, retry_in = ?backoff, "cannot load file checkpoints");
                if sleep_or_stop(backoff, &mut stop).await {
                    return;
                }
            }
        }
    };
    let mut tailer = Some(Tailer::new(source, saved, Arc::clone(&stats)));
    backoff = Duration::ZERO;
    loop {
        if *stop.borrow() {
            return;
        }
        let Some(mut t) = tailer.take() else {
            return;
        };
        let polled = tokio::task::spawn_blocking(move || {
            let batch = t.poll(Instant::now(), BATCH_BYTES);
            (t, batch)
        })
        .await;
        let Ok((mut t, mut batch)) = polled else {
            tracing::error!(source = %name, "file tail poll panicked; the source stops");
            return;
        };
        if batch.is_empty() {
            tailer = Some(t);
            if sleep_or_stop(interval, &mut stop).await {
                return;
            }
            continue;
        }
        let full = batch.more;
        let delivered = deliver(&sink, &tenant, &mut batch, checkpoints.as_ref(), &name).await;
        match delivered {
            Ok(count) => {
                t.commit(&batch);
                stats.delivered(count as u64, batch.bytes);
                backoff = Duration::ZERO;
                tailer = Some(t);
                // A full batch means more is waiting: read on at once.
                if !full && sleep_or_stop(interval, &mut stop).await {
                    return;
                }
            }
            Err(e) => {
                stats.error(&e);
                t.rewind();
                tailer = Some(t);
                backoff = next_backoff(backoff);
                tracing::warn!(source = %name, error = %e, retry_in = ?backoff, "cannot store tailed lines; reading them again");
                if sleep_or_stop(backoff, &mut stop).await {
                    return;
                }
            }
        }
    }
}

/// Stores the records durably, then saves the checkpoints; returns how many records.
async fn deliver<C: Checkpoints>(
    sink: &Arc<dyn LogSink>,
    tenant: &TenantId,
    batch: &mut TailBatch,
    checkpoints: &C,
    name: &str,
) -> Result<usize, String> {
    let records = std::mem::take(&mut batch.records);
    let count = records.len();
    if count > 0 {
        let (sink, tenant) = (Arc::clone(sink), tenant.clone());
        tokio::task::spawn_blocking(move || {
            sink.append(&tenant, records)?;
            sink.sync(&tenant)
        })
        .await
        .map_err(|e| format!("the store panicked: {e}"))??;
    }
    let entries: Vec<(String, Option<String>)> = batch
        .checkpoints
        .iter()
        .map(|(k, c)| {
            let json = c
                .as_ref()
                .map(|c| serde_json::to_string(c).unwrap_or_default());
            (k.clone(), json)
        })
        .collect();
    checkpoints.save(name, &entries).await?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Mutex;

    use super::*;

    fn source(dir: &std::path::Path, glob: &str, yaml_extra: &str) -> FileSource {
        let yaml = format!(
            "name: t\npaths: [{:?}]\nlabels: {{service: kkt}}\n{yaml_extra}",
            dir.join(glob).display().to_string()
        );
        FileSource::new(serde_saphyr::from_str(&yaml).unwrap()).unwrap()
    }

    fn tailer(src: FileSource, saved: Vec<(String, String)>) -> Tailer {
        Tailer::new(src, saved, Arc::default())
    }

    /// Polls until nothing is new, committing each batch; the messages, and the saved
    /// checkpoints as a store would hold them.
    fn drain(t: &mut Tailer, saved: &mut BTreeMap<String, String>) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let batch = t.poll(Instant::now(), 1 << 16);
            if batch.is_empty() {
                return out;
            }
            for (k, c) in &batch.checkpoints {
                match c {
                    Some(c) => saved.insert(k.clone(), serde_json::to_string(c).unwrap()),
                    None => saved.remove(k),
                };
            }
            out.extend(batch.records.iter().map(|r| r.message.clone()));
            t.commit(&batch);
        }
    }

    fn append(path: &std::path::Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn lines(from: usize, to: usize) -> String {
        (from..to)
            .map(|i| format!("line {i:06} of the register log\n"))
            .collect()
    }

    fn expect(from: usize, to: usize) -> Vec<String> {
        (from..to)
            .map(|i| format!("line {i:06} of the register log"))
            .collect()
    }

    #[test]
    fn lines_arrive_once_and_a_partial_line_waits_for_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        append(&log, "first\r\nsecond\nthi");
        let mut saved = BTreeMap::new();
        let mut t = tailer(source(dir.path(), "*.log", ""), vec![]);
        assert_eq!(drain(&mut t, &mut saved), ["first", "second"]);
        let cp: Checkpoint = serde_json::from_str(saved.values().next().unwrap()).unwrap();
        assert_eq!(cp.offset, 14, "after `second\\n`, before the partial line");
        append(&log, "rd\n");
        assert_eq!(drain(&mut t, &mut saved), ["third"]);
        let batch = t.poll(Instant::now(), 1 << 16);
        assert!(batch.is_empty());
        let r = {
            append(&log, "x\n");
            t.poll(Instant::now(), 1 << 16).records.remove(0)
        };
        assert_eq!(r.stream.get("service"), Some("kkt"));
        assert_eq!(
            r.stream.get("filename"),
            Some(log.display().to_string().as_str())
        );
    }

    #[test]
    fn a_restart_resumes_at_the_checkpoint_and_a_reused_inode_reads_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        append(&log, &lines(0, 100));
        let mut saved = BTreeMap::new();
        let mut t = tailer(source(dir.path(), "*.log", ""), vec![]);
        assert_eq!(drain(&mut t, &mut saved), expect(0, 100));
        drop(t);
        append(&log, &lines(100, 150));
        let mut t = tailer(
            source(dir.path(), "*.log", ""),
            saved.clone().into_iter().collect(),
        );
        assert_eq!(drain(&mut t, &mut saved), expect(100, 150));
        drop(t);
        // The same inode with other content (the file replaced in place while down).
        std::fs::write(&log, lines(500, 510)).unwrap();
        let mut t = tailer(
            source(dir.path(), "*.log", ""),
            saved.clone().into_iter().collect(),
        );
        assert_eq!(drain(&mut t, &mut saved), expect(500, 510));
    }

    #[test]
    fn rotation_by_rename_reads_the_old_file_to_its_end_and_the_new_one_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("kkt.log");
        append(&log, &lines(0, 10));
        let mut saved = BTreeMap::new();
        let mut t = tailer(
            source(dir.path(), "kkt.log", "close_inactive: 0s\n"),
            vec![],
        );
        let mut got = drain(&mut t, &mut saved);
        // The writer still has the old file open: lines land there after the rename.
        let mut old = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        std::fs::rename(&log, dir.path().join("kkt.log.1")).unwrap();
        old.write_all(lines(10, 20).as_bytes()).unwrap();
        append(&log, &lines(20, 30));
        got.extend(drain(&mut t, &mut saved));
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(sorted, expect(0, 30), "each line once: {got:?}");
        assert_eq!(saved.len(), 1, "the renamed file was closed and forgotten");
    }

    #[test]
    fn copytruncate_loses_nothing_and_reads_nothing_twice() {
        for (glob, copy_seen_before_truncate) in
            [("kkt.log", false), ("kkt.log*", false), ("kkt.log*", true)]
        {
            let dir = tempfile::tempdir().unwrap();
            let log = dir.path().join("kkt.log");
            append(&log, &lines(0, 50));
            let mut saved = BTreeMap::new();
            let mut t = tailer(source(dir.path(), glob, ""), vec![]);
            let mut got = drain(&mut t, &mut saved);
            // Written after the last read: only the copy will hold these.
            append(&log, &lines(50, 80));
            std::fs::copy(&log, dir.path().join("kkt.log.1")).unwrap();
            if copy_seen_before_truncate {
                append(&log, &lines(80, 90));
                got.extend(drain(&mut t, &mut saved));
                std::fs::copy(&log, dir.path().join("kkt.log.1")).unwrap();
                std::fs::File::create(&log).unwrap();
                append(&log, &lines(90, 120));
            } else {
                std::fs::File::create(&log).unwrap();
                append(&log, &lines(80, 120));
            }
            got.extend(drain(&mut t, &mut saved));
            assert_eq!(
                got,
                expect(0, 120),
                "glob {glob}, copy seen first: {copy_seen_before_truncate}"
            );
            assert_eq!(t.stats.rotations.load(Ordering::Relaxed), 1);
        }
    }

    #[test]
    fn a_truncation_while_down_is_recovered_from_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("kkt.log");
        append(&log, &lines(0, 40));
        let mut saved = BTreeMap::new();
        let mut t = tailer(source(dir.path(), "kkt.log", ""), vec![]);
        assert_eq!(drain(&mut t, &mut saved), expect(0, 40));
        drop(t);
        append(&log, &lines(40, 60));
        std::fs::copy(&log, dir.path().join("kkt.log-20261206")).unwrap();
        std::fs::File::create(&log).unwrap();
        append(&log, &lines(60, 70));
        let mut t = tailer(
            source(dir.path(), "kkt.log", ""),
            saved.clone().into_iter().collect(),
        );
        assert_eq!(drain(&mut t, &mut saved), expect(40, 70));
    }

    #[test]
    fn a_copy_made_while_down_beside_its_live_original_is_not_read_twice() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("kkt.log");
        append(&log, &lines(0, 50));
        let mut saved = BTreeMap::new();
        let mut t = tailer(source(dir.path(), "kkt.log*", ""), vec![]);
        assert_eq!(drain(&mut t, &mut saved), expect(0, 50));
        drop(t);
        append(&log, &lines(50, 60));
        // copytruncate stopped between its copy and its truncation.
        std::fs::copy(&log, dir.path().join("kkt.log.1")).unwrap();
        append(&log, &lines(60, 70));
        let src = source(dir.path(), "kkt.log*", "");
        let mut t = tailer(src, saved.clone().into_iter().collect());
        assert_eq!(drain(&mut t, &mut saved), expect(50, 70));
    }

    #[test]
    fn a_rewind_reads_again_exactly_what_was_not_committed() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("kkt.log");
        append(&log, &lines(0, 40));
        let mut saved = BTreeMap::new();
        let mut t = tailer(source(dir.path(), "kkt.log*", ""), vec![]);
        assert_eq!(drain(&mut t, &mut saved), expect(0, 40));
        append(&log, &lines(40, 50));
        // A copy beside it, started at its end: a rewind must not send it back to 0.
        std::fs::copy(&log, dir.path().join("kkt.log.1")).unwrap();
        let messages = |b: &TailBatch| {
            b.records
                .iter()
                .map(|r| r.message.clone())
                .collect::<Vec<_>>()
        };
        let first = t.poll(Instant::now(), 1 << 16);
        assert_eq!(messages(&first), expect(40, 50));
        t.rewind();
        let again = t.poll(Instant::now(), 1 << 16);
        assert_eq!(messages(&again), expect(40, 50));
        t.commit(&again);
        t.rewind();
        assert!(t.poll(Instant::now(), 1 << 16).records.is_empty());
    }

    #[test]
    fn a_plain_truncation_starts_the_file_again() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        append(&log, &lines(0, 20));
        let mut saved = BTreeMap::new();
        let mut t = tailer(source(dir.path(), "*.log", ""), vec![]);
        assert_eq!(drain(&mut t, &mut saved).len(), 20);
        std::fs::write(&log, "after truncation\n").unwrap();
        assert_eq!(drain(&mut t, &mut saved), ["after truncation"]);
    }

    #[test]
    fn multiline_joins_stack_traces_and_flushes_on_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        append(
            &log,
            "2026-12-06 10:00:00 ERROR payment failed\n\
             java.lang.IllegalStateException: FN expired\n\
             \tat ru.kkt.Driver.send(Driver.java:42)\n\
             2026-12-06 10:00:01 INFO ok\n\
             2026-12-06 10:00:02 WARN last\n\
             \tat still.pending(X.java:1)\n",
        );
        let src = source(
            dir.path(),
            "*.log",
            "multiline: {pattern: '^\\d{4}-\\d{2}-\\d{2}', negate: true, match: after, timeout: 1h}\n",
        );
        let mut saved = BTreeMap::new();
        let mut t = tailer(src, vec![]);
        assert_eq!(
            drain(&mut t, &mut saved),
            [
                "2026-12-06 10:00:00 ERROR payment failed\njava.lang.IllegalStateException: FN expired\n\tat ru.kkt.Driver.send(Driver.java:42)",
                "2026-12-06 10:00:01 INFO ok",
            ]
        );
        // The unfinished event is not behind the checkpoint: a restart reads it again.
        let cp: Checkpoint = serde_json::from_str(saved.values().next().unwrap()).unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            cp.offset as usize,
            text.find("2026-12-06 10:00:02").unwrap()
        );
        let later = Instant::now() + Duration::from_secs(3601);
        let batch = t.poll(later, 1 << 16);
        assert_eq!(
            batch
                .records
                .iter()
                .map(|r| r.message.as_str())
                .collect::<Vec<_>>(),
            ["2026-12-06 10:00:02 WARN last\n\tat still.pending(X.java:1)"]
        );
    }

    #[test]
    fn multiline_before_joins_continued_lines_and_max_lines_caps_an_event() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        append(&log, "a \\\nb \\\nc\nd\n");
        let src = source(
            dir.path(),
            "*.log",
            "multiline: {pattern: '\\\\$', match: before}\n",
        );
        let mut saved = BTreeMap::new();
        assert_eq!(
            drain(&mut tailer(src, vec![]), &mut saved),
            ["a \\\nb \\\nc", "d"]
        );

        let log = dir.path().join("b.txt");
        append(&log, "start\n x\n x\n x\n x\nnext\n");
        let src = source(
            dir.path(),
            "*.txt",
            "multiline: {pattern: '^ ', match: after, max_lines: 3}\n",
        );
        let mut t = tailer(src, vec![]);
        assert_eq!(drain(&mut t, &mut saved), ["start\n x\n x"]);
        assert_eq!(t.stats.truncated.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn json_lines_become_records_and_a_bad_line_is_kept_with_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.json");
        append(
            &log,
            "{\"_msg\":\"shift opened\",\"level\":\"info\",\"kkt\":\"0001\"}\nnot json\n",
        );
        let mut t = tailer(source(dir.path(), "*.json", "format: json\n"), vec![]);
        let batch = t.poll(Instant::now(), 1 << 16);
        assert_eq!(batch.records.len(), 2);
        let (good, bad) = (&batch.records[0], &batch.records[1]);
        assert_eq!(good.message, "shift opened");
        assert_eq!(good.field("kkt"), Some("0001"));
        assert_eq!(good.stream.get("level"), Some("info"));
        assert_eq!(good.stream.get("service"), Some("kkt"));
        assert_eq!(bad.message, "not json");
        assert_eq!(bad.field("error"), Some("not a JSON object"));
    }

    #[test]
    fn an_over_long_line_is_cut_and_its_rest_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        append(&log, &format!("{}\nshort\n", "x".repeat(100)));
        let mut saved = BTreeMap::new();
        let mut t = tailer(source(dir.path(), "*.log", "max_line_bytes: 10\n"), vec![]);
        assert_eq!(drain(&mut t, &mut saved), ["xxxxxxxxxx", "short"]);
        assert_eq!(t.stats.truncated.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn every_line_of_a_large_file_arrives_exactly_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("big.log");
        let n = 200_000;
        std::fs::write(&log, lines(0, n)).unwrap();
        let mut saved = BTreeMap::new();
        let mut t = tailer(source(dir.path(), "*.log", ""), vec![]);
        let got = drain(&mut t, &mut saved);
        assert_eq!(got.len(), n);
        assert!(got.iter().zip(expect(0, n)).all(|(a, b)| *a == b));
    }

    #[test]
    fn bad_configurations_are_refused() {
        let parse = |y: &str| -> Result<FileSource, String> {
            let c: FileSourceConfig = serde_saphyr::from_str(y).map_err(|e| e.to_string())?;
            FileSource::new(c)
        };
        assert!(
            parse("name: a\npaths: []\n")
                .unwrap_err()
                .contains("no paths")
        );
        assert!(
            parse("name: a\npaths: ['[']\n")
                .unwrap_err()
                .contains("path")
        );
        let e = parse("name: a\npaths: [x]\nmultiline: {pattern: '('}\n").unwrap_err();
        assert!(e.contains("multiline pattern"), "{e}");
        assert!(
            parse("name: a\npaths: [x]\nlabels: {filename: x}\n")
                .unwrap_err()
                .contains("filename")
        );
        assert!(parse("name: a\npaths: [x]\nformat: xml\n").is_err());
        assert!(parse("name: a\npaths: [x]\nbogus: 1\n").is_err());
    }

    /// A sink that refuses its first `fail` appends, then keeps what it gets.
    struct Flaky {
        fail: Mutex<usize>,
        got: Mutex<Vec<String>>,
    }

    impl LogSink for Flaky {
        fn append(&self, _: &TenantId, records: Vec<LogRecord>) -> Result<(), String> {
            let mut fail = self.fail.lock().unwrap();
            if *fail > 0 {
                *fail -= 1;
                return Err("disk full".into());
            }
            self.got
                .lock()
                .unwrap()
                .extend(records.into_iter().map(|r| r.message));
            Ok(())
        }
        fn sync(&self, _: &TenantId) -> Result<(), String> {
            Ok(())
        }
    }

    /// Checkpoints in memory; the first `fail_saves` saves fail.
    #[derive(Default)]
    struct Memory {
        saved: Mutex<BTreeMap<String, String>>,
        fail_saves: Mutex<usize>,
    }

    impl Checkpoints for Memory {
        async fn load(&self, _: &str) -> Result<Vec<(String, String)>, String> {
            Ok(self.saved.lock().unwrap().clone().into_iter().collect())
        }
        async fn save(&self, _: &str, entries: &[(String, Option<String>)]) -> Result<(), String> {
            let mut fail = self.fail_saves.lock().unwrap();
            if *fail > 0 {
                *fail -= 1;
                return Err("database is locked".into());
            }
            let mut m = self.saved.lock().unwrap();
            for (k, v) in entries {
                match v {
                    Some(v) => m.insert(k.clone(), v.clone()),
                    None => m.remove(k),
                };
            }
            Ok(())
        }
    }

    /// Runs a file of 1000 lines through [`run`] until all are checkpointed; what the
    /// sink kept, and the statistics.
    async fn run_until_done(
        sink_fails: usize,
        save_fails: usize,
    ) -> (Vec<String>, Arc<SourceStats>) {
        let dir = tempfile::tempdir().unwrap();
        append(&dir.path().join("a.log"), &lines(0, 1000));
        let sink = Arc::new(Flaky {
            fail: Mutex::new(sink_fails),
            got: Mutex::default(),
        });
        let checkpoints = Arc::new(Memory {
            fail_saves: Mutex::new(save_fails),
            ..Memory::default()
        });
        let stats = Arc::new(SourceStats::default());
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(run(
            source(dir.path(), "*.log", "poll_interval: 10ms\n"),
            Arc::clone(&sink) as Arc<dyn LogSink>,
            Arc::clone(&checkpoints),
            Arc::clone(&stats),
            stop_rx,
        ));
        let deadline = Instant::now() + Duration::from_secs(20);
        let done = |stats: &SourceStats| {
            stats.records.load(Ordering::Relaxed) >= 1000 && stats.lag.load(Ordering::Relaxed) == 0
        };
        while !done(&stats) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop_tx.send(true).unwrap();
        task.await.unwrap();
        let saved = checkpoints.saved.lock().unwrap().clone();
        let cp: Checkpoint = serde_json::from_str(saved.values().next().unwrap()).unwrap();
        assert_eq!(
            cp.offset,
            lines(0, 1000).len() as u64,
            "checkpointed to the end"
        );
        let got = sink.got.lock().unwrap().clone();
        (got, stats)
    }

    #[tokio::test]
    async fn a_failing_store_gets_the_same_lines_again_until_it_takes_them() {
        let (got, stats) = run_until_done(2, 0).await;
        assert_eq!(got, expect(0, 1000));
        assert_eq!(stats.errors.load(Ordering::Relaxed), 2);
        assert_eq!(stats.lag.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_failing_checkpoint_save_repeats_only_its_batch() {
        let (got, stats) = run_until_done(0, 1).await;
        assert_eq!(stats.errors.load(Ordering::Relaxed), 1);
        // The batch whose checkpoint was not saved is stored again: the whole file (it
        // fits one batch) twice, in order each time, and nothing else.
        assert_eq!(got, [expect(0, 1000), expect(0, 1000)].concat());
    }
}
