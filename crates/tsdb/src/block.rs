//! Immutable blocks: a time range of a tenant's series, compressed, on disk.
//!
//! A block directory holds `chunks` (each series' [`crate::chunk`] back to back), `times`
//! (time columns several chunks share, [`SharedTimes`]; absent when none do), `index` (the
//! series table: a symbol table of label strings, then each series' labels, time range,
//! sample count and chunk length) and `meta.json`. A downsampled block ([`crate::downsample`]) has the same files; its chunks
//! are aggregate chunks and its meta names the resolution and the raw range it summarises. Byte layout: `docs/format/tsdb.md`. A block is written under a `.tmp` name,
//! synced and renamed, so a directory without the suffix is always complete.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use dozor_model::{Labels, Matcher, Sample};
use serde::{Deserialize, Serialize};

use std::collections::HashMap;

use crate::chunk::SharedTimes;
use crate::encoding::{Reader, put_bytes, put_uvarint, put_varint};
use crate::files::{CHUNKS, INDEX, META, TIMES};
use crate::postings::Postings;
use crate::{TsdbError, chunk};

const INDEX_MAGIC: &[u8; 4] = b"DZTI";
/// Version 3 keeps every label string once, in a symbol table, and codes series against
/// their predecessor (shared labels, time deltas, implicit offsets). Versions 1 and 2 (full
/// label strings per series; 2 added the sample count) are still read.
const INDEX_VERSION: u8 = 3;

/// `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMeta {
    /// Format version.
    pub version: u32,
    /// Earliest sample time.
    pub mint: i64,
    /// Latest sample time.
    pub maxt: i64,
    /// Series count.
    pub series: u64,
    /// Sample count.
    pub samples: u64,
    /// Bytes of `chunks`.
    pub chunk_bytes: u64,
    /// Bytes of `index`.
    pub index_bytes: u64,
    /// 0 for blocks cut from the head; n+1 for a compaction of level-n blocks.
    pub level: u32,
    /// 0 for raw samples; the bucket width in ms for a downsampled block.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resolution_ms: i64,
    /// For a downsampled block: the time range of the raw block it summarises.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<[i64; 2]>,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl BlockMeta {
    /// The raw time range the block answers for: its own for a raw block, its source's for
    /// a downsampled one.
    pub fn covers(&self) -> (i64, i64) {
        self.source.map_or((self.mint, self.maxt), |[a, b]| (a, b))
    }
}

#[derive(Debug)]
struct BlockSeries {
    labels: Labels,
    mint: i64,
    maxt: i64,
    samples: u64,
    offset: u64,
    len: u64,
}

/// An open block.
#[derive(Debug)]
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    series: Vec<BlockSeries>,
    postings: Postings,
    chunks: File,
    times: SharedTimes,
}

/// Writes `series` (each sorted by time, none empty) as the raw block `dir` and returns its
/// meta.
pub fn write(
    dir: &Path,
    mut series: Vec<(Labels, Vec<Sample>)>,
    level: u32,
) -> Result<BlockMeta, TsdbError> {
    series.retain(|(_, s)| !s.is_empty());
    series.sort_by(|a, b| a.0.cmp(&b.0));
    let sections = series
        .iter()
        .map(|(_, s)| {
            let mut b = Vec::new();
            chunk::encode_times_of(s, &mut b).map(|()| b)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (times, refs) = SharedTimes::build(&sections);
    let mut w = Writer {
        times,
        ..Writer::default()
    };
    for (((labels, s), section), shared) in series.iter().zip(&sections).zip(refs) {
        let offset = w.chunks.len();
        chunk::encode_with_times(section, shared, s, &mut w.chunks)?;
        w.add(labels, s[0].t, s[s.len() - 1].t, s.len(), offset);
    }
    w.finish(dir, level, 0, None)
}

/// Writes the aggregates of `series` (sorted by labels; empty ones are skipped) at
/// `resolution_ms` as the downsampled block `dir`, summarising the raw range `source`.
pub fn write_downsampled(
    dir: &Path,
    series: &[(Labels, chunk::Aggregates)],
    resolution_ms: i64,
    source: [i64; 2],
) -> Result<BlockMeta, TsdbError> {
    let mut w = Writer::default();
    for (labels, a) in series.iter().filter(|(_, a)| !a.times.is_empty()) {
        let offset = w.chunks.len();
        chunk::encode_aggregates(a, &mut w.chunks)?;
        let (first, last) = (a.times[0], a.times[a.times.len() - 1]);
        w.add(labels, first, last, a.times.len(), offset);
    }
    w.finish(dir, 0, resolution_ms, Some(source))
}

/// Builds a block's `chunks` in memory and collects its series table, then writes the
/// directory.
struct Writer<'a> {
    chunks: Vec<u8>,
    times: SharedTimes,
    entries: Vec<Entry<'a>>,
    samples: u64,
    mint: i64,
    maxt: i64,
}

/// One series of the table being built.
struct Entry<'a> {
    labels: &'a Labels,
    mint: i64,
    maxt: i64,
    samples: u64,
    len: u64,
}

impl Default for Writer<'_> {
    fn default() -> Self {
        Writer {
            chunks: Vec::new(),
            times: SharedTimes::default(),
            entries: Vec::new(),
            samples: 0,
            mint: i64::MAX,
            maxt: i64::MIN,
        }
    }
}

impl<'a> Writer<'a> {
    /// Records the series whose chunk was just appended at `offset` (series come in label
    /// order, their chunks back to back).
    fn add(&mut self, labels: &'a Labels, mint: i64, maxt: i64, samples: usize, offset: usize) {
        self.mint = self.mint.min(mint);
        self.maxt = self.maxt.max(maxt);
        self.samples += samples as u64;
        self.entries.push(Entry {
            labels,
            mint,
            maxt,
            samples: samples as u64,
            len: (self.chunks.len() - offset) as u64,
        });
    }

    /// The index file: magic, version, symbol table, series table, CRC.
    fn index(&self) -> Vec<u8> {
        let mut symbols: Vec<&str> = self
            .entries
            .iter()
            .flat_map(|e| e.labels.iter())
            .flat_map(|l| [l.name.as_str(), l.value.as_str()])
            .collect();
        symbols.sort_unstable();
        symbols.dedup();
        let ids: HashMap<&str, u64> = symbols.iter().zip(0u64..).map(|(s, i)| (*s, i)).collect();
        let mut index = Vec::with_capacity(64 + self.entries.len() * 32);
        index.extend_from_slice(INDEX_MAGIC);
        index.push(INDEX_VERSION);
        put_uvarint(&mut index, symbols.len() as u64);
        for s in &symbols {
            put_bytes(&mut index, s.as_bytes());
        }
        put_uvarint(&mut index, self.entries.len() as u64);
        let mut prev: Option<&Entry> = None;
        for e in &self.entries {
            let shared = prev.map_or(0, |p| {
                p.labels
                    .iter()
                    .zip(e.labels.iter())
                    .take_while(|(a, b)| a == b)
                    .count()
            });
            put_uvarint(&mut index, shared as u64);
            put_uvarint(&mut index, (e.labels.len() - shared) as u64);
            for l in e.labels.iter().skip(shared) {
                put_uvarint(&mut index, ids[l.name.as_str()]);
                put_uvarint(&mut index, ids[l.value.as_str()]);
            }
            put_varint(&mut index, e.mint.wrapping_sub(prev.map_or(0, |p| p.mint)));
            put_uvarint(&mut index, e.maxt.wrapping_sub(e.mint) as u64);
            put_uvarint(&mut index, e.samples);
            put_uvarint(&mut index, e.len);
            prev = Some(e);
        }
        let crc = crc32c::crc32c(&index);
        index.extend_from_slice(&crc.to_le_bytes());
        index
    }

    fn finish(
        self,
        dir: &Path,
        level: u32,
        resolution_ms: i64,
        source: Option<[i64; 2]>,
    ) -> Result<BlockMeta, TsdbError> {
        let index = self.index();
        let meta = BlockMeta {
            version: 1,
            mint: self.mint,
            maxt: self.maxt,
            series: self.entries.len() as u64,
            samples: self.samples,
            chunk_bytes: self.chunks.len() as u64,
            index_bytes: index.len() as u64,
            level,
            resolution_ms,
            source,
        };
        let meta_json =
            serde_json::to_vec_pretty(&meta).map_err(|e| TsdbError::Corrupt(e.to_string()))?;
        let times = self.times.encode();
        let mut files: Vec<(&str, &[u8])> = vec![(CHUNKS, &self.chunks)];
        if !self.times.is_empty() {
            files.push((TIMES, &times));
        }
        files.extend([(INDEX, index.as_slice()), (META, meta_json.as_slice())]);
        dozor_wal::dir::write_atomically(dir, &files)?;
        Ok(meta)
    }
}

impl Block {
    /// Opens a complete block directory, reading its index into memory.
    pub fn open(dir: &Path) -> Result<Block, TsdbError> {
        let meta_path = dir.join(META);
        let meta: BlockMeta = serde_json::from_slice(
            &fs::read(&meta_path).map_err(TsdbError::io("read", &meta_path))?,
        )
        .map_err(|e| TsdbError::Corrupt(format!("{}: {e}", meta_path.display())))?;
        let index_path = dir.join(INDEX);
        let index = fs::read(&index_path).map_err(TsdbError::io("read", &index_path))?;
        let series = decode_index(&index)
            .map_err(|e| TsdbError::Corrupt(format!("{}: {e}", index_path.display())))?;
        let mut postings = Postings::default();
        for (i, s) in series.iter().enumerate() {
            postings.add(
                u32::try_from(i).map_err(|_| TsdbError::Corrupt("too many series".into()))?,
                &s.labels,
            );
        }
        let chunks_path = dir.join(CHUNKS);
        let chunks = File::open(&chunks_path).map_err(TsdbError::io("open", &chunks_path))?;
        let size = chunks
            .metadata()
            .map_err(TsdbError::io("stat", &chunks_path))?
            .len();
        if series
            .iter()
            .any(|s| s.offset.checked_add(s.len).is_none_or(|end| end > size))
        {
            return Err(TsdbError::Corrupt(format!(
                "{}: a series points past the end of its chunks",
                index_path.display()
            )));
        }
        let times_path = dir.join(TIMES);
        let times = match fs::read(&times_path) {
            Ok(bytes) => SharedTimes::decode(&bytes)
                .map_err(|e| TsdbError::Corrupt(format!("{}: {e}", times_path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => SharedTimes::default(),
            Err(e) => return Err(TsdbError::io("read", &times_path)(e)),
        };
        Ok(Block {
            dir: dir.to_owned(),
            meta,
            series,
            postings,
            chunks,
            times,
        })
    }

    /// The block's metadata.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// The block's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Series matching `matchers` with their samples in `[mint, maxt]` (a raw block).
    pub fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<(Labels, Vec<Sample>)>, TsdbError> {
        self.read(matchers, mint, maxt, |bytes, n, out| {
            chunk::decode_in(bytes, n, Some(&self.times), out)
        })
    }

    /// One aggregate column of the matching series in `[mint, maxt]` (a downsampled block).
    pub fn select_aggregate(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        which: crate::Aggregate,
    ) -> Result<Vec<(Labels, Vec<Sample>)>, TsdbError> {
        self.read(matchers, mint, maxt, |bytes, n, out| {
            chunk::decode_aggregate(bytes, which, n, out)
        })
    }

    /// Reads the chunks of the matching series with `decode(bytes, max_samples, out)`.
    fn read(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        decode: impl Fn(&[u8], usize, &mut Vec<Sample>) -> Result<(), TsdbError>,
    ) -> Result<Vec<(Labels, Vec<Sample>)>, TsdbError> {
        if maxt < self.meta.mint || mint > self.meta.maxt {
            return Ok(Vec::new());
        }
        let ids = self.postings.select(matchers, |id, name| {
            self.series.get(id as usize)?.labels.get(name)
        });
        let mut out = Vec::new();
        let mut buf = Vec::new();
        for id in ids {
            let s = &self.series[id as usize];
            if s.maxt < mint || s.mint > maxt {
                continue;
            }
            buf.resize(
                usize::try_from(s.len).map_err(|_| TsdbError::Corrupt("chunk too large".into()))?,
                0,
            );
            self.chunks
                .read_exact_at(&mut buf, s.offset)
                .map_err(TsdbError::io("read", &self.dir.join(CHUNKS)))?;
            let mut samples = Vec::new();
            decode(
                &buf,
                usize::try_from(s.samples).unwrap_or(usize::MAX),
                &mut samples,
            )?;
            samples.retain(|x| x.t >= mint && x.t <= maxt);
            if !samples.is_empty() {
                out.push((s.labels.clone(), samples));
            }
        }
        Ok(out)
    }

    /// Every series with all its samples (for compaction).
    pub fn all(&self) -> Result<Vec<(Labels, Vec<Sample>)>, TsdbError> {
        self.select(&[], i64::MIN, i64::MAX)
    }

    /// Label names in the block.
    pub fn label_names(&self) -> Vec<String> {
        self.postings.label_names()
    }

    /// Values of `name` in the block.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        self.postings.label_values(name)
    }
}

/// Decodes an index file's bytes and returns how many series it lists (validation; used by
/// the fuzz targets and by tools that check a block).
pub fn check_index(index: &[u8]) -> Result<usize, TsdbError> {
    decode_index(index).map(|s| s.len())
}

fn decode_index(index: &[u8]) -> Result<Vec<BlockSeries>, TsdbError> {
    if index.len() < 9 || &index[..4] != INDEX_MAGIC {
        return Err(TsdbError::Corrupt("bad index magic".into()));
    }
    let (body, crc) = index.split_at(index.len() - 4);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32c::crc32c(body) != stored {
        return Err(TsdbError::Corrupt("index checksum mismatch".into()));
    }
    let mut r = Reader::new(&body[4..]);
    match r.u8()? {
        3 => decode_series_v3(&mut r, body.len()),
        v @ (1 | 2) => decode_series_v2(&mut r, body.len(), v),
        _ => Err(TsdbError::Corrupt("unknown index version".into())),
    }
}

/// Versions 1 and 2: every series spells out its labels and its chunk's offset.
fn decode_series_v2(
    r: &mut Reader<'_>,
    max: usize,
    version: u8,
) -> Result<Vec<BlockSeries>, TsdbError> {
    let n = r.len(max)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let labels = r.labels()?;
        let mint = r.varint()?;
        let maxt = r.varint()?;
        let samples = if version == 1 {
            chunk::MAX_CHUNK_SAMPLES as u64
        } else {
            r.uvarint()?
        };
        let offset = r.uvarint()?;
        let len = r.uvarint()?;
        out.push(BlockSeries {
            labels,
            mint,
            maxt,
            samples,
            offset,
            len,
        });
    }
    Ok(out)
}

/// Version 3: a symbol table, then series coded against their predecessor.
fn decode_series_v3(r: &mut Reader<'_>, max: usize) -> Result<Vec<BlockSeries>, TsdbError> {
    let nsym = r.len(max)?;
    let mut symbols = Vec::with_capacity(nsym);
    for _ in 0..nsym {
        symbols.push(r.str()?);
    }
    let sym = |r: &mut Reader<'_>| -> Result<String, TsdbError> {
        let i = r.len(symbols.len())?;
        symbols
            .get(i)
            .map(|s| (*s).to_owned())
            .ok_or_else(|| TsdbError::Corrupt("symbol out of range".into()))
    };
    let n = r.len(max)?;
    let mut out: Vec<BlockSeries> = Vec::with_capacity(n);
    let (mut prev_mint, mut offset) = (0i64, 0u64);
    for _ in 0..n {
        let prev = out.last().map(|p| p.labels.as_slice());
        let shared = r.len(prev.map_or(0, <[_]>::len))?;
        let rest = r.len(dozor_model::Labels::MAX_LABELS)?;
        let mut labels = Vec::with_capacity(shared + rest);
        labels.extend(prev.unwrap_or_default()[..shared].iter().cloned());
        for _ in 0..rest {
            let (name, value) = (sym(r)?, sym(r)?);
            labels.push(dozor_model::Label { name, value });
        }
        let labels = Labels::new(labels).map_err(|e| TsdbError::Corrupt(e.to_string()))?;
        let mint = prev_mint.wrapping_add(r.varint()?);
        let span = i64::try_from(r.uvarint()?)
            .map_err(|_| TsdbError::Corrupt("series time span overflows".into()))?;
        let maxt = mint
            .checked_add(span)
            .ok_or_else(|| TsdbError::Corrupt("series time span overflows".into()))?;
        let samples = r.uvarint()?;
        let len = r.uvarint()?;
        out.push(BlockSeries {
            labels,
            mint,
            maxt,
            samples,
            offset,
            len,
        });
        prev_mint = mint;
        offset = offset
            .checked_add(len)
            .ok_or_else(|| TsdbError::Corrupt("chunk offsets overflow".into()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(job: &str, n: i64) -> (Labels, Vec<Sample>) {
        let labels = Labels::from_pairs([("__name__", "up"), ("job", job)]).unwrap();
        (
            labels,
            (0..n)
                .map(|i| Sample {
                    t: i * 1000,
                    v: i as f64,
                })
                .collect(),
        )
    }

    #[test]
    fn written_blocks_read_back_by_matchers_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b1");
        let meta = write(&path, vec![series("web", 10), series("api", 5)], 0).unwrap();
        assert_eq!(
            (meta.series, meta.samples, meta.mint, meta.maxt),
            (2, 15, 0, 9000)
        );
        assert!(!dir.path().join("b1.tmp").exists());
        let block = Block::open(&path).unwrap();
        let got = block
            .select(&[Matcher::equal("job", "web")], 2000, 4000)
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].1.iter().map(|s| s.t).collect::<Vec<_>>(),
            [2000, 3000, 4000]
        );
        assert_eq!(block.all().unwrap().len(), 2);
        assert_eq!(block.label_values("job"), ["api", "web"]);
    }

    #[test]
    fn index_codes_labels_once_and_series_against_their_predecessor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b1");
        let mk = |cpu: &str, mode: &str, t0: i64| {
            let labels = Labels::from_pairs([
                ("__name__", "node_cpu_seconds_total"),
                ("cpu", cpu),
                ("instance", "host-1:9100"),
                ("mode", mode),
            ])
            .unwrap();
            let samples = (0..5)
                .map(|i| Sample {
                    t: t0 + i * 15_000,
                    v: i as f64,
                })
                .collect();
            (labels, samples)
        };
        let input = vec![
            mk("0", "idle", 1_000),
            mk("0", "user", 2_000),
            mk("1", "idle", 500),
            mk("1", "user", 3_000),
        ];
        let meta = write(&path, input.clone(), 0).unwrap();
        let index = fs::read(path.join(INDEX)).unwrap();
        // Each distinct string once: the long metric name and instance appear one time.
        let text = String::from_utf8_lossy(&index);
        assert_eq!(text.matches("node_cpu_seconds_total").count(), 1);
        assert_eq!(text.matches("host-1:9100").count(), 1);
        assert!(
            meta.index_bytes < 150,
            "index of {} bytes",
            meta.index_bytes
        );
        let block = Block::open(&path).unwrap();
        assert_eq!(block.all().unwrap(), input);
        let got = block
            .select(&[Matcher::equal("mode", "user")], 0, i64::MAX)
            .unwrap();
        assert_eq!(got, vec![input[1].clone(), input[3].clone()]);
    }

    #[test]
    fn version_2_indexes_are_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b1");
        let (labels, samples) = series("web", 4);
        write(&path, vec![(labels.clone(), samples.clone())], 0).unwrap();
        let chunk_len = fs::metadata(path.join(CHUNKS)).unwrap().len();
        let mut v2 = INDEX_MAGIC.to_vec();
        v2.push(2);
        put_uvarint(&mut v2, 1);
        crate::encoding::put_labels(&mut v2, &labels);
        put_varint(&mut v2, 0);
        put_varint(&mut v2, 3000);
        put_uvarint(&mut v2, 4);
        put_uvarint(&mut v2, 0);
        put_uvarint(&mut v2, chunk_len);
        let crc = crc32c::crc32c(&v2);
        v2.extend_from_slice(&crc.to_le_bytes());
        fs::write(path.join(INDEX), v2).unwrap();
        let block = Block::open(&path).unwrap();
        assert_eq!(block.all().unwrap(), vec![(labels, samples)]);
    }

    #[test]
    fn symbols_out_of_range_and_impossible_prefixes_are_corrupt() {
        let mut idx = INDEX_MAGIC.to_vec();
        idx.push(3);
        put_uvarint(&mut idx, 1); // one symbol
        put_bytes(&mut idx, b"up");
        put_uvarint(&mut idx, 1); // one series
        put_uvarint(&mut idx, 0); // shares nothing
        put_uvarint(&mut idx, 1); // one label
        put_uvarint(&mut idx, 0);
        put_uvarint(&mut idx, 7); // no symbol 7
        for tail in [0u64, 0, 1, 10] {
            put_uvarint(&mut idx, tail);
        }
        let crc = crc32c::crc32c(&idx);
        idx.extend_from_slice(&crc.to_le_bytes());
        assert!(check_index(&idx).is_err());
        // A first series cannot share labels with a predecessor it does not have.
        let mut idx = INDEX_MAGIC.to_vec();
        idx.push(3);
        put_uvarint(&mut idx, 0);
        put_uvarint(&mut idx, 1);
        put_uvarint(&mut idx, 2);
        let crc = crc32c::crc32c(&idx);
        idx.extend_from_slice(&crc.to_le_bytes());
        assert!(check_index(&idx).is_err());
    }

    #[test]
    fn a_damaged_index_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b1");
        write(&path, vec![series("web", 10)], 0).unwrap();
        let index = path.join(INDEX);
        let mut bytes = fs::read(&index).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        fs::write(&index, bytes).unwrap();
        assert!(matches!(Block::open(&path), Err(TsdbError::Corrupt(_))));
    }
}
