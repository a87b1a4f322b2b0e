//! Immutable blocks: a time range of a tenant's series, compressed, on disk.
//!
//! A block directory holds `chunks` (each series' [`crate::chunk`] back to back), `index`
//! (the series table: labels, time range, sample count and the chunk's place) and
//! `meta.json`. A downsampled block ([`crate::downsample`]) has the same files; its chunks
//! are aggregate chunks and its meta names the resolution and the raw range it summarises. Byte layout: `docs/format/tsdb.md`. A block is written under a `.tmp` name,
//! synced and renamed, so a directory without the suffix is always complete.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use dozor_model::{Labels, Matcher, Sample};
use serde::{Deserialize, Serialize};

use crate::encoding::{Reader, put_labels, put_uvarint, put_varint};
use crate::files::{CHUNKS, INDEX, META, TMP_SUFFIX};
use crate::postings::Postings;
use crate::wal::sync_dir;
use crate::{TsdbError, chunk};

const INDEX_MAGIC: &[u8; 4] = b"DZTI";
/// Version 2 added each series' sample count (version 1 is still read).
const INDEX_VERSION: u8 = 2;

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
    let mut w = Writer::default();
    for (labels, s) in &series {
        let offset = w.chunks.len();
        chunk::encode(s, &mut w.chunks)?;
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

/// Builds a block's `chunks` and `index` in memory, then writes the directory.
struct Writer {
    chunks: Vec<u8>,
    index: Vec<u8>,
    series: u64,
    samples: u64,
    mint: i64,
    maxt: i64,
}

impl Default for Writer {
    fn default() -> Writer {
        Writer {
            chunks: Vec::new(),
            index: Vec::new(),
            series: 0,
            samples: 0,
            mint: i64::MAX,
            maxt: i64::MIN,
        }
    }
}

impl Writer {
    /// Records the series whose chunk was just appended at `offset`.
    fn add(&mut self, labels: &Labels, mint: i64, maxt: i64, samples: usize, offset: usize) {
        self.mint = self.mint.min(mint);
        self.maxt = self.maxt.max(maxt);
        self.series += 1;
        self.samples += samples as u64;
        put_labels(&mut self.index, labels);
        put_varint(&mut self.index, mint);
        put_varint(&mut self.index, maxt);
        put_uvarint(&mut self.index, samples as u64);
        put_uvarint(&mut self.index, offset as u64);
        put_uvarint(&mut self.index, (self.chunks.len() - offset) as u64);
    }

    fn finish(
        self,
        dir: &Path,
        level: u32,
        resolution_ms: i64,
        source: Option<[i64; 2]>,
    ) -> Result<BlockMeta, TsdbError> {
        let tmp = dir.with_file_name(format!(
            "{}{TMP_SUFFIX}",
            dir.file_name().and_then(|n| n.to_str()).unwrap_or("block")
        ));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).map_err(TsdbError::io("create", &tmp))?;
        let mut index = Vec::with_capacity(self.index.len() + 16);
        index.extend_from_slice(INDEX_MAGIC);
        index.push(INDEX_VERSION);
        put_uvarint(&mut index, self.series);
        index.extend_from_slice(&self.index);
        let crc = crc32c::crc32c(&index);
        index.extend_from_slice(&crc.to_le_bytes());
        let meta = BlockMeta {
            version: 1,
            mint: self.mint,
            maxt: self.maxt,
            series: self.series,
            samples: self.samples,
            chunk_bytes: self.chunks.len() as u64,
            index_bytes: index.len() as u64,
            level,
            resolution_ms,
            source,
        };
        write_synced(&tmp.join(CHUNKS), &self.chunks)?;
        write_synced(&tmp.join(INDEX), &index)?;
        let meta_json =
            serde_json::to_vec_pretty(&meta).map_err(|e| TsdbError::Corrupt(e.to_string()))?;
        write_synced(&tmp.join(META), &meta_json)?;
        sync_dir(&tmp)?;
        fs::rename(&tmp, dir).map_err(TsdbError::io("rename", &tmp))?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
        Ok(meta)
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), TsdbError> {
    let mut f = File::create(path).map_err(TsdbError::io("create", path))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(TsdbError::io("write", path))
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
        Ok(Block {
            dir: dir.to_owned(),
            meta,
            series,
            postings,
            chunks,
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
            chunk::decode(bytes, n, out)
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
    let version = r.u8()?;
    if version != 1 && version != INDEX_VERSION {
        return Err(TsdbError::Corrupt("unknown index version".into()));
    }
    let n = r.len(body.len())?;
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
