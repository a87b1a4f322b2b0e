//! Immutable blocks: a time range of a tenant's series, compressed, on disk.
//!
//! A block directory holds `chunks` (each series' [`crate::chunk`] back to back), `index`
//! (the series table: labels, time range, sample count and the chunk's place) and
//! `meta.json`. Byte layout: `docs/format/tsdb.md`. A block is written under a `.tmp` name,
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
const INDEX_VERSION: u8 = 1;

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
}

#[derive(Debug)]
struct BlockSeries {
    labels: Labels,
    mint: i64,
    maxt: i64,
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

/// Writes `series` (each sorted by time, none empty) as the block `dir` and returns its meta.
pub fn write(
    dir: &Path,
    mut series: Vec<(Labels, Vec<Sample>)>,
    level: u32,
) -> Result<BlockMeta, TsdbError> {
    series.retain(|(_, s)| !s.is_empty());
    series.sort_by(|a, b| a.0.cmp(&b.0));
    let tmp = dir.with_file_name(format!(
        "{}{TMP_SUFFIX}",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("block")
    ));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(TsdbError::io("create", &tmp))?;

    let mut chunks = Vec::new();
    let mut index = Vec::with_capacity(series.len() * 64);
    index.extend_from_slice(INDEX_MAGIC);
    index.push(INDEX_VERSION);
    put_uvarint(&mut index, series.len() as u64);
    let (mut mint, mut maxt, mut samples) = (i64::MAX, i64::MIN, 0u64);
    for (labels, s) in &series {
        let offset = chunks.len() as u64;
        chunk::encode(s, &mut chunks)?;
        let (first, last) = (s[0].t, s[s.len() - 1].t);
        mint = mint.min(first);
        maxt = maxt.max(last);
        samples += s.len() as u64;
        put_labels(&mut index, labels);
        put_varint(&mut index, first);
        put_varint(&mut index, last);
        put_uvarint(&mut index, offset);
        put_uvarint(&mut index, chunks.len() as u64 - offset);
    }
    let crc = crc32c::crc32c(&index);
    index.extend_from_slice(&crc.to_le_bytes());
    let meta = BlockMeta {
        version: 1,
        mint,
        maxt,
        series: series.len() as u64,
        samples,
        chunk_bytes: chunks.len() as u64,
        index_bytes: index.len() as u64,
        level,
    };
    write_synced(&tmp.join(CHUNKS), &chunks)?;
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

    /// Series matching `matchers` with their samples in `[mint, maxt]`.
    pub fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<(Labels, Vec<Sample>)>, TsdbError> {
        if maxt < self.meta.mint || mint > self.meta.maxt {
            return Ok(Vec::new());
        }
        let ids = self.postings.select(matchers, |id| {
            self.series.get(id as usize).map(|s| &s.labels)
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
            chunk::decode(&buf, &mut samples)?;
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
    if r.u8()? != INDEX_VERSION {
        return Err(TsdbError::Corrupt("unknown index version".into()));
    }
    let n = r.len(body.len())?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let labels = r.labels()?;
        let mint = r.varint()?;
        let maxt = r.varint()?;
        let offset = r.uvarint()?;
        let len = r.uvarint()?;
        out.push(BlockSeries {
            labels,
            mint,
            maxt,
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
