//! Every on-disk name of the tsdb, in one place. Layout: `docs/format/tsdb.md`.
//!
//! ```text
//! <root>/<tenant>/wal/00000042          WAL segments
//! <root>/<tenant>/blocks/<id>/meta.json block metadata (written last: its presence = complete)
//! <root>/<tenant>/blocks/<id>/index     series, labels and chunk offsets
//! <root>/<tenant>/blocks/<id>/chunks    compressed samples
//! <root>/<tenant>/blocks/<id>/times     time columns shared by several chunks
//! <root>/<tenant>/blocks/<id>.tmp/      a block being written (removed at open)
//! ```

/// Directory of WAL segments.
pub const WAL_DIR: &str = "wal";
/// Directory of blocks.
pub const BLOCKS_DIR: &str = "blocks";
/// Block metadata file.
pub const META: &str = "meta.json";
/// Block index file.
pub const INDEX: &str = "index";
/// Block chunks file.
pub const CHUNKS: &str = "chunks";
/// Block file of time columns shared by several chunks (absent when none are).
pub const TIMES: &str = "times";
/// Suffix of a block directory being deleted.
pub use dozor_wal::dir::DELETE_SUFFIX;
/// Suffix of a block directory still being written.
pub use dozor_wal::dir::TMP_SUFFIX;

pub use dozor_wal::segment_name;

/// The directory name of a block: its time range and a sequence number, sortable.
pub fn block_name(mint: i64, maxt: i64, seq: u64) -> String {
    format!("{mint:016x}-{maxt:016x}-{seq:04}")
}

/// Bytes of every file under `path`, recursively (0 for what cannot be read).
pub use dozor_wal::dir::size as dir_size;
