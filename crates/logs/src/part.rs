//! A part: an immutable, sorted set of blocks of one UTC day, on disk.
//!
//! A part directory holds `data` (blocks back to back, [`crate::block`]), `index` and
//! `meta.json`. The index lists the part's streams once and every block's header — its
//! stream, time range, row count, length and [`Bloom`] filter — and is read into memory at
//! open; blocks are read from `data` only when a query needs them. Byte layout:
//! `docs/format/logs.md`. A part is written under a `.tmp` name, synced and renamed, so a
//! directory without the suffix is complete.
//!
//! With a [`Key`] the part is sealed ([`crate::crypt`]) under a key derived for it from its
//! random id: each block of `data` on its own, bound to its place (ordinal and offset), and
//! the whole `index`, bound to `meta.json`'s fields — so a moved block, a swapped file or
//! an edited `meta.json` fails to authenticate instead of being read. `meta.json` stays
//! plaintext and names the key's id, so a part opened with another key (or none) is refused
//! by name. Plaintext parts still open when a key is configured.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use dozor_model::packed::{Reader, pack_labels, put_uvarint, put_varint};
use dozor_model::{Labels, LogRecord, Matcher};
use serde::{Deserialize, Serialize};

use crate::block::{self, MAX_BLOCK_RAW, MAX_BLOCK_ROWS};
use crate::bloom::Bloom;
use crate::crypt::{self, Cipher, Key};
use crate::files::{DATA, INDEX, META};
use crate::{LogsError, Needles, RecordRef};

const INDEX_MAGIC: &[u8; 4] = b"DZLI";
const INDEX_VERSION: u8 = 1;
/// Starts the associated data of everything a part seals, so it can never authenticate as
/// something else's sealed bytes.
const AAD_DOMAIN: &[u8] = b"dozor-logs part v1\0";
/// Bytes of a sealed part's random id.
const PART_ID_LEN: usize = 16;
/// With the part's id, the HKDF `info` of a part's key.
const PART_KEY_INFO: &[u8] = b"dozor-logs part key v1\0";

/// `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMeta {
    /// Format version.
    pub version: u32,
    /// Earliest row time, ns.
    pub min_ns: i64,
    /// Latest row time, ns.
    pub max_ns: i64,
    /// Rows.
    pub rows: u64,
    /// Streams.
    pub streams: u64,
    /// Blocks.
    pub blocks: u64,
    /// Bytes of `data`.
    pub data_bytes: u64,
    /// Bytes of `index`.
    pub index_bytes: u64,
    /// Every record of WAL segments numbered below this is in this part or an older one.
    pub wal_until: u64,
    /// Uncompressed bytes of messages and fields.
    pub raw_bytes: u64,
    /// How `data` and `index` are sealed (`None`, and absent from the file: plaintext).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<PartEncryption>,
}

/// `meta.json`'s `encryption`: how a part is sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartEncryption {
    /// `AES-256-GCM` ([`crypt::ALGORITHM`]), the only one known.
    pub algorithm: String,
    /// The id of the key that sealed the part ([`Key::id`]).
    pub key_id: String,
    /// 16 random bytes, hex: the part's key is derived from them, so blocks and indexes of
    /// different parts cannot be swapped.
    pub part_id: String,
}

/// What seals a part: its cipher, the id of the key it is derived from, the part's id.
#[derive(Debug)]
struct Sealed {
    cipher: Cipher,
    key_id: String,
    part_id: [u8; PART_ID_LEN],
}

impl Sealed {
    fn new(key: &Key, part_id: [u8; PART_ID_LEN]) -> Sealed {
        Sealed {
            cipher: key.derive(&[PART_KEY_INFO, &part_id].concat()),
            key_id: key.id().to_owned(),
            part_id,
        }
    }
}

/// A block's header, from the index.
#[derive(Debug)]
struct BlockHeader {
    stream: u32,
    min_ns: i64,
    max_ns: i64,
    rows: u32,
    offset: u64,
    len: u64,
    bloom: Bloom,
}

/// An open part.
#[derive(Debug)]
pub struct Part {
    dir: PathBuf,
    meta: PartMeta,
    streams: Vec<Labels>,
    blocks: Vec<BlockHeader>,
    data: File,
    /// `Some` for an encrypted part.
    sealed: Option<Sealed>,
}

/// What to read from a part.
#[derive(Debug, Clone, Copy)]
pub struct Want<'a> {
    /// Stream selector.
    pub matchers: &'a [Matcher],
    /// First nanosecond, inclusive.
    pub start_ns: i64,
    /// Last nanosecond, inclusive.
    pub end_ns: i64,
    /// Substrings every message must contain.
    pub needles: &'a Needles,
}

impl Want<'_> {
    /// Whether `r` is wanted (the stream is checked by the caller).
    pub fn row(&self, time_ns: i64, message: &str) -> bool {
        time_ns >= self.start_ns && time_ns <= self.end_ns && self.needles.all_in(message)
    }

    /// Whether a stream with `labels` is selected.
    ///
    /// A query (any matcher) never selects the per-minute aggregate streams of warm and
    /// cold days unless a matcher names their label ([`crate::tiers::AGGREGATE_LABEL`]);
    /// a whole-part read (no matchers: merges, tier moves) sees everything.
    pub fn stream(&self, labels: &Labels) -> bool {
        if !self.matchers.is_empty()
            && labels.get(crate::tiers::AGGREGATE_LABEL).is_some()
            && !self
                .matchers
                .iter()
                .any(|m| m.name == crate::tiers::AGGREGATE_LABEL)
        {
            return false;
        }
        self.matchers
            .iter()
            .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
    }
}

/// Writes `records` (any order; all of one day) as the plaintext part `dir`, noting that
/// WAL segments below `wal_until` are covered; returns its meta.
pub fn write<'a>(
    dir: &Path,
    records: impl IntoIterator<Item = &'a LogRecord>,
    wal_until: u64,
) -> Result<PartMeta, LogsError> {
    write_with_key(dir, records, wal_until, None)
}

/// [`write()`], sealing the part with `key` when there is one. Records are borrowed: a
/// flush writes the head that readers still see, a merge the rows it just read.
pub fn write_with_key<'a>(
    dir: &Path,
    records: impl IntoIterator<Item = &'a LogRecord>,
    wal_until: u64,
    key: Option<&Key>,
) -> Result<PartMeta, LogsError> {
    let (ranks, records) = by_stream_and_time(records.into_iter().collect());
    let mut w = Writer::default();
    if let Some(key) = key {
        let mut part_id = [0u8; PART_ID_LEN];
        getrandom::fill(&mut part_id)
            .map_err(|e| LogsError::Encryption(format!("no random part id: {e}")))?;
        w.sealed = Some(Sealed::new(key, part_id));
    }
    let mut raw = 0usize;
    let mut last_rank = None;
    for (rank, rec) in ranks.into_iter().zip(records) {
        if last_rank != Some(rank) {
            last_rank = Some(rank);
            w.cut_block()?;
            raw = 0;
            w.streams.push(rec.stream.clone());
        }
        let size = rec.byte_size();
        if w.rows.len() == MAX_BLOCK_ROWS || (!w.rows.is_empty() && raw + size > MAX_BLOCK_RAW / 2)
        {
            w.cut_block()?;
            raw = 0;
        }
        raw += size;
        w.raw_bytes += size as u64;
        w.rows.push(rec);
    }
    w.cut_block()?;
    w.finish(dir, wal_until)
}

/// `records` ordered by stream (label order), then time, with each one's stream rank.
///
/// Sorting by label sets directly compares strings at every step (memcmp was the largest
/// cost of a flush); instead the distinct streams are ranked once and records sorted by
/// `(rank, time)`, integers only.
fn by_stream_and_time(records: Vec<&LogRecord>) -> (Vec<u32>, Vec<&LogRecord>) {
    let mut ids: std::collections::HashMap<&Labels, u32, _> =
        std::collections::HashMap::with_hasher(foldhash::fast::FixedState::default());
    let mut distinct: Vec<&Labels> = Vec::new();
    // Records of one stream tend to come in runs: compare with the previous record's
    // stream before hashing the labels.
    let mut last: Option<(&Labels, u32)> = None;
    let per_record: Vec<u32> = records
        .iter()
        .map(|r| {
            if let Some((l, id)) = last
                && *l == r.stream
            {
                return id;
            }
            let id = *ids.entry(&r.stream).or_insert_with(|| {
                distinct.push(&r.stream);
                (distinct.len() - 1) as u32
            });
            last = Some((&r.stream, id));
            id
        })
        .collect();
    let mut by_labels: Vec<u32> = (0..distinct.len() as u32).collect();
    by_labels.sort_unstable_by(|a, b| distinct[*a as usize].cmp(distinct[*b as usize]));
    let mut rank = vec![0u32; distinct.len()];
    for (r, id) in by_labels.into_iter().enumerate() {
        rank[id as usize] = r as u32;
    }
    // Records go to their stream's run in arrival order (a counting sort by rank); a run
    // is then sorted by time only if it is not already, as it mostly is (a stream's lines
    // arrive in order). Sorting all of them by `(rank, time)` was a sixth of this.
    let mut starts = vec![0usize; distinct.len() + 1];
    for id in &per_record {
        starts[rank[*id as usize] as usize + 1] += 1;
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let mut next = starts.clone();
    let mut order = vec![(0i64, 0u32); records.len()];
    for (i, (id, r)) in per_record.iter().zip(&records).enumerate() {
        let slot = &mut next[rank[*id as usize] as usize];
        order[*slot] = (r.time_ns, i as u32);
        *slot += 1;
    }
    let mut ranks = Vec::with_capacity(records.len());
    for (k, run) in starts.windows(2).enumerate() {
        let run = &mut order[run[0]..run[1]];
        // The index keeps records of equal stream and time in arrival order.
        if !run.is_sorted() {
            run.sort_unstable();
        }
        ranks.extend(std::iter::repeat_n(k as u32, run.len()));
    }
    let sorted = order.iter().map(|(_, i)| records[*i as usize]).collect();
    (ranks, sorted)
}

/// Builds a part's `data` and index in memory, a block at a time.
#[derive(Default)]
struct Writer<'a> {
    /// Set when sealing.
    sealed: Option<Sealed>,
    streams: Vec<Labels>,
    /// Rows of the block being built (all of the last stream).
    rows: Vec<&'a LogRecord>,
    /// The block being sealed (reused: blocks are encoded here, sealed into `data`).
    plain: Vec<u8>,
    data: Vec<u8>,
    headers: Vec<u8>,
    blocks: u64,
    rows_total: u64,
    raw_bytes: u64,
    min_ns: Option<i64>,
    max_ns: Option<i64>,
}

impl Writer<'_> {
    /// Encodes the pending rows as a block of the last stream.
    fn cut_block(&mut self) -> Result<(), LogsError> {
        let (Some(first), Some(last)) = (self.rows.first(), self.rows.last()) else {
            return Ok(());
        };
        let (first, last) = (first.time_ns, last.time_ns);
        let stream = self.streams.len().saturating_sub(1) as u64;
        let offset = self.data.len();
        let bloom = match &self.sealed {
            None => block::encode(&self.rows, &mut self.data)?,
            Some(s) => {
                self.plain.clear();
                let bloom = block::encode(&self.rows, &mut self.plain)?;
                let aad = block_aad(&s.part_id, self.blocks, offset as u64);
                s.cipher.seal(&aad, &self.plain, &mut self.data)?;
                bloom
            }
        };
        put_uvarint(&mut self.headers, stream);
        put_varint(&mut self.headers, first);
        put_uvarint(&mut self.headers, last.wrapping_sub(first) as u64);
        put_uvarint(&mut self.headers, self.rows.len() as u64);
        put_uvarint(&mut self.headers, (self.data.len() - offset) as u64);
        bloom.encode(&mut self.headers);
        self.blocks += 1;
        self.rows_total += self.rows.len() as u64;
        self.min_ns = Some(self.min_ns.map_or(first, |m| m.min(first)));
        self.max_ns = Some(self.max_ns.map_or(last, |m| m.max(last)));
        self.rows.clear();
        Ok(())
    }

    fn finish(self, dir: &Path, wal_until: u64) -> Result<PartMeta, LogsError> {
        let mut index = INDEX_MAGIC.to_vec();
        index.push(INDEX_VERSION);
        put_uvarint(&mut index, self.streams.len() as u64);
        for s in &self.streams {
            pack_labels(&mut index, s);
        }
        put_uvarint(&mut index, self.blocks);
        index.extend_from_slice(&self.headers);
        let crc = crc32c::crc32c(&index);
        index.extend_from_slice(&crc.to_le_bytes());
        let encryption = self.sealed.as_ref().map(|s| PartEncryption {
            algorithm: crypt::ALGORITHM.to_owned(),
            key_id: s.key_id.clone(),
            part_id: hex::encode(s.part_id),
        });
        let sealed_bytes = if encryption.is_some() {
            crypt::OVERHEAD
        } else {
            0
        };
        let meta = PartMeta {
            version: 1,
            min_ns: self.min_ns.unwrap_or(0),
            max_ns: self.max_ns.unwrap_or(0),
            rows: self.rows_total,
            streams: self.streams.len() as u64,
            blocks: self.blocks,
            data_bytes: self.data.len() as u64,
            index_bytes: (index.len() + sealed_bytes) as u64,
            wal_until,
            raw_bytes: self.raw_bytes,
            encryption,
        };
        let index = match &self.sealed {
            None => index,
            Some(s) => {
                let mut sealed = Vec::with_capacity(index.len() + crypt::OVERHEAD);
                s.cipher
                    .seal(&index_aad(&meta, &s.part_id), &index, &mut sealed)?;
                sealed
            }
        };
        let json =
            serde_json::to_vec_pretty(&meta).map_err(|e| LogsError::Corrupt(e.to_string()))?;
        dozor_wal::dir::write_atomically(
            dir,
            &[(DATA, &self.data), (INDEX, &index), (META, &json)],
        )?;
        Ok(meta)
    }
}

impl Part {
    /// Opens a complete plaintext part directory, reading its index into memory (an
    /// encrypted part is an error: it needs [`Part::open_with_key`]).
    pub fn open(dir: &Path) -> Result<Part, LogsError> {
        Part::open_with_key(dir, None)
    }

    /// Opens a complete part directory, reading its index into memory. A part sealed with
    /// a key other than `key`, or sealed while `key` is `None`, is an
    /// [`LogsError::Encryption`] error naming the part's key id; a plaintext part opens
    /// whatever `key` is.
    pub fn open_with_key(dir: &Path, key: Option<&Key>) -> Result<Part, LogsError> {
        let meta_path = dir.join(META);
        let meta: PartMeta = serde_json::from_slice(
            &fs::read(&meta_path).map_err(LogsError::io("read", &meta_path))?,
        )
        .map_err(|e| LogsError::Corrupt(format!("{}: {e}", meta_path.display())))?;
        let sealed = match (&meta.encryption, key) {
            (None, _) => None,
            (Some(e), _) if e.algorithm != crypt::ALGORITHM => {
                return Err(LogsError::Encryption(format!(
                    "part {} is sealed with {:?}; only {} is known",
                    dir.display(),
                    e.algorithm,
                    crypt::ALGORITHM
                )));
            }
            (Some(e), None) => {
                return Err(LogsError::Encryption(format!(
                    "part {} is encrypted with key {}, and no key is configured",
                    dir.display(),
                    e.key_id
                )));
            }
            (Some(e), Some(k)) if e.key_id != k.id() => {
                return Err(LogsError::Encryption(format!(
                    "part {} is encrypted with key {}, not with the configured key {}",
                    dir.display(),
                    e.key_id,
                    k.id()
                )));
            }
            (Some(e), Some(k)) => {
                let mut part_id = [0u8; PART_ID_LEN];
                hex::decode_to_slice(&e.part_id, &mut part_id).map_err(|_| {
                    LogsError::Corrupt(format!("{}: bad part_id", meta_path.display()))
                })?;
                Some(Sealed::new(k, part_id))
            }
        };
        let index_path = dir.join(INDEX);
        let mut index = fs::read(&index_path).map_err(LogsError::io("read", &index_path))?;
        let plain: &[u8] = match &sealed {
            None => &index,
            Some(s) => s
                .cipher
                .open(&index_aad(&meta, &s.part_id), &mut index)
                .map_err(|_| {
                    LogsError::Corrupt(format!(
                        "{}: does not authenticate under key {} (damaged, or meta.json \
                         altered)",
                        index_path.display(),
                        s.key_id
                    ))
                })?,
        };
        let (streams, blocks) = decode_index(plain)
            .map_err(|e| LogsError::Corrupt(format!("{}: {e}", index_path.display())))?;
        let data_path = dir.join(DATA);
        let data = File::open(&data_path).map_err(LogsError::io("open", &data_path))?;
        let size = data
            .metadata()
            .map_err(LogsError::io("stat", &data_path))?
            .len();
        if blocks.last().is_some_and(|b| b.offset + b.len > size) {
            return Err(LogsError::Corrupt(format!(
                "{}: blocks run past the end of data",
                index_path.display()
            )));
        }
        Ok(Part {
            dir: dir.to_owned(),
            meta,
            streams,
            blocks,
            data,
            sealed,
        })
    }

    /// The part's metadata.
    pub fn meta(&self) -> &PartMeta {
        &self.meta
    }

    /// The part's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The streams of the part.
    pub fn streams(&self) -> &[Labels] {
        &self.streams
    }

    /// Rows and stored bytes of the blocks `want` may select (its needles aside): an
    /// estimate of what a query reads.
    pub fn estimate(&self, want: &Want<'_>) -> (u64, u64) {
        let chosen: Vec<bool> = self.streams.iter().map(|s| want.stream(s)).collect();
        self.blocks
            .iter()
            .filter(|b| {
                chosen[b.stream as usize] && b.max_ns >= want.start_ns && b.min_ns <= want.end_ns
            })
            .fold((0, 0), |(r, l), b| (r + u64::from(b.rows), l + b.len))
    }

    /// The streams with a block overlapping `[start_ns, end_ns]`.
    pub fn streams_in(&self, start_ns: i64, end_ns: i64) -> impl Iterator<Item = &Labels> {
        let mut seen = vec![false; self.streams.len()];
        for b in &self.blocks {
            if b.max_ns >= start_ns && b.min_ns <= end_ns {
                seen[b.stream as usize] = true;
            }
        }
        self.streams
            .iter()
            .zip(seen)
            .filter_map(|(s, seen)| seen.then_some(s))
    }

    /// Appends the rows `want` selects to `out`; returns how many blocks were read (the
    /// rest were skipped by stream, time or bloom filter).
    pub fn select(&self, want: &Want<'_>, out: &mut Vec<LogRecord>) -> Result<usize, LogsError> {
        self.scan(want, &mut |r| out.push(r.to_record()))
    }

    /// Calls `f` with each row `want` selects, in stream then time order; returns how many
    /// blocks were read.
    pub fn scan(
        &self,
        want: &Want<'_>,
        f: &mut dyn FnMut(RecordRef<'_>),
    ) -> Result<usize, LogsError> {
        if want.end_ns < self.meta.min_ns || want.start_ns > self.meta.max_ns {
            return Ok(0);
        }
        let chosen: Vec<bool> = self.streams.iter().map(|s| want.stream(s)).collect();
        let mut read = 0;
        let mut buf = Vec::new();
        for (ordinal, b) in self.blocks.iter().enumerate() {
            if !chosen[b.stream as usize]
                || b.max_ns < want.start_ns
                || b.min_ns > want.end_ns
                || !want.needles.may_be_in(&b.bloom)
            {
                continue;
            }
            read += 1;
            buf.resize(
                usize::try_from(b.len).map_err(|_| LogsError::Corrupt("block too large".into()))?,
                0,
            );
            self.data
                .read_exact_at(&mut buf, b.offset)
                .map_err(LogsError::io("read", &self.dir.join(DATA)))?;
            let plain: &[u8] = match &self.sealed {
                None => &buf,
                Some(s) => s
                    .cipher
                    .open(&block_aad(&s.part_id, ordinal as u64, b.offset), &mut buf)
                    .map_err(|_| {
                        LogsError::Corrupt(format!(
                            "{}: block {ordinal} at offset {} does not authenticate under \
                             key {}",
                            self.dir.join(DATA).display(),
                            b.offset,
                            s.key_id
                        ))
                    })?,
            };
            let stream = &self.streams[b.stream as usize];
            for row in block::decode(plain, b.rows as usize)? {
                if want.row(row.time_ns, &row.message) {
                    f(RecordRef {
                        time_ns: row.time_ns,
                        stream,
                        message: &row.message,
                        fields: &row.fields,
                    });
                }
            }
        }
        Ok(read)
    }

    /// Every row of the part (for merges).
    pub fn all(&self) -> Result<Vec<LogRecord>, LogsError> {
        // `rows` comes from meta.json: a hint, capped, never trusted for an allocation.
        let mut out = Vec::with_capacity(usize::try_from(self.meta.rows).unwrap_or(0).min(1 << 16));
        let needles = Needles::default();
        let want = Want {
            matchers: &[],
            start_ns: i64::MIN,
            end_ns: i64::MAX,
            needles: &needles,
        };
        self.select(&want, &mut out)?;
        Ok(out)
    }
}

/// The associated data of a sealed part's block `ordinal`, at `offset` in `data`.
fn block_aad(part_id: &[u8; PART_ID_LEN], ordinal: u64, offset: u64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_DOMAIN.len() + 5 + PART_ID_LEN + 16);
    aad.extend_from_slice(AAD_DOMAIN);
    aad.extend_from_slice(b"data\0");
    aad.extend_from_slice(part_id);
    aad.extend_from_slice(&ordinal.to_le_bytes());
    aad.extend_from_slice(&offset.to_le_bytes());
    aad
}

/// The associated data of a sealed part's index: the part's id and every field of
/// `meta.json`, so an edited `meta.json` (a later `wal_until` would skip WAL records at
/// open; a narrower time range would hide the part from queries) fails to authenticate.
fn index_aad(meta: &PartMeta, part_id: &[u8; PART_ID_LEN]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_DOMAIN.len() + 6 + PART_ID_LEN + 100);
    aad.extend_from_slice(AAD_DOMAIN);
    aad.extend_from_slice(b"index\0");
    aad.extend_from_slice(part_id);
    aad.extend_from_slice(&meta.version.to_le_bytes());
    aad.extend_from_slice(&meta.min_ns.to_le_bytes());
    aad.extend_from_slice(&meta.max_ns.to_le_bytes());
    for n in [
        meta.rows,
        meta.streams,
        meta.blocks,
        meta.data_bytes,
        meta.index_bytes,
        meta.wal_until,
        meta.raw_bytes,
    ] {
        aad.extend_from_slice(&n.to_le_bytes());
    }
    if let Some(e) = &meta.encryption {
        for s in [&e.algorithm, &e.key_id] {
            aad.extend_from_slice(&(s.len() as u64).to_le_bytes());
            aad.extend_from_slice(s.as_bytes());
        }
    }
    aad
}

/// Decodes an index file (validation; used by the fuzz targets too): the streams and the
/// block headers.
fn decode_index(index: &[u8]) -> Result<(Vec<Labels>, Vec<BlockHeader>), LogsError> {
    if index.len() < 9 || &index[..4] != INDEX_MAGIC {
        return Err(LogsError::Corrupt("bad index magic".into()));
    }
    let (body, crc) = index.split_at(index.len() - 4);
    if crc32c::crc32c(body).to_le_bytes() != crc {
        return Err(LogsError::Corrupt("index checksum mismatch".into()));
    }
    let mut r = Reader::new(&body[4..]);
    if r.u8()? != INDEX_VERSION {
        return Err(LogsError::Corrupt("unknown index version".into()));
    }
    let nstreams = r.len(body.len())?;
    let mut streams = Vec::with_capacity(nstreams);
    for _ in 0..nstreams {
        streams.push(r.labels()?);
    }
    let nblocks = r.len(body.len())?;
    let mut blocks = Vec::with_capacity(nblocks);
    let mut offset = 0u64;
    for _ in 0..nblocks {
        let stream = u32::try_from(r.len(nstreams.saturating_sub(1))?)
            .map_err(|_| LogsError::Corrupt("stream number overflows".into()))?;
        if nstreams == 0 {
            return Err(LogsError::Corrupt("a block without streams".into()));
        }
        let min_ns = r.varint()?;
        let span = i64::try_from(r.uvarint()?)
            .map_err(|_| LogsError::Corrupt("block span overflows".into()))?;
        let max_ns = min_ns
            .checked_add(span)
            .ok_or_else(|| LogsError::Corrupt("block span overflows".into()))?;
        let rows = u32::try_from(r.len(MAX_BLOCK_ROWS)?).unwrap_or(u32::MAX);
        let len = r.uvarint()?;
        let bloom = Bloom::decode(&mut r)?;
        blocks.push(BlockHeader {
            stream,
            min_ns,
            max_ns,
            rows,
            offset,
            len,
            bloom,
        });
        offset = offset
            .checked_add(len)
            .ok_or_else(|| LogsError::Corrupt("block offsets overflow".into()))?;
    }
    Ok((streams, blocks))
}

/// Checks an index file's bytes; returns how many blocks it lists (for the fuzz targets).
pub fn check_index(index: &[u8]) -> Result<usize, LogsError> {
    decode_index(index).map(|(_, b)| b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The counting sort by stream and the per-run time sort give the order of one sort
    /// by `(labels, time, arrival)`, with ranks that follow the label order.
    #[test]
    fn records_are_ordered_by_stream_then_time_then_arrival() {
        let streams: Vec<Labels> = ["shop", "mes", "crm", "a", "shop-2"]
            .iter()
            .map(|s| Labels::from_pairs([("service", *s)]).unwrap())
            .collect();
        // Streams interleaved; one stream in order, the others with times out of order
        // and repeated (equal times must keep their arrival order).
        let mut x = 7u64;
        let records: Vec<LogRecord> = (0..2000)
            .map(|i| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let s = (x >> 33) as usize % streams.len();
                let time = if s == 0 { i } else { ((x >> 40) % 50) as i64 };
                LogRecord::new(time, streams[s].clone(), format!("line {i}"))
            })
            .collect();
        let (ranks, sorted) = by_stream_and_time(records.iter().collect());
        let mut expected: Vec<(usize, &LogRecord)> = records.iter().enumerate().collect();
        expected
            .sort_by(|(i, a), (j, b)| (&a.stream, a.time_ns, i).cmp(&(&b.stream, b.time_ns, j)));
        let expected: Vec<&LogRecord> = expected.into_iter().map(|(_, r)| r).collect();
        assert_eq!(sorted, expected);
        assert_eq!(ranks.len(), sorted.len());
        for (w, r) in ranks.windows(2).zip(sorted.windows(2)) {
            assert_eq!(w[0] == w[1], r[0].stream == r[1].stream);
            assert!(w[0] <= w[1]);
        }
        assert_eq!(ranks.first(), Some(&0));
        assert_eq!(ranks.last(), Some(&(streams.len() as u32 - 1)));
    }
}
