//! A block: up to [`MAX_BLOCK_ROWS`] rows of one stream, sorted by time, stored by column.
//!
//! ```text
//! block    := nrows:uvarint times messages nfields:uvarint { name:bytes column }
//! times    := len:uvarint pco<i64>[len]                   nanoseconds, ascending
//! messages := raw:uvarint zlen:uvarint zstd[zlen]          of { len:uvarint bytes } × nrows
//! column   := raw:uvarint zlen:uvarint zstd[zlen]          of { len+1:uvarint bytes } × nrows
//!                                                           (0: the row lacks the field)
//! ```
//! Columns compress far better than rows: timestamps are nearly regular numbers (pco), and
//! messages of one stream repeat their templates (zstd sees them back to back, without the
//! numbers and names between them). The stream's labels are not in the block at all: the
//! part's index holds them once. `raw` bounds decompression, so a damaged block cannot make
//! the reader allocate more than [`MAX_BLOCK_RAW`].

use std::collections::BTreeSet;

use dozor_model::LogRecord;
use dozor_model::packed::{Reader, put_bytes, put_uvarint};

use crate::LogsError;
use crate::bloom::{Bloom, padded};

/// Most rows in one block.
pub const MAX_BLOCK_ROWS: usize = 8192;
/// Most uncompressed bytes of one block's messages (a block is cut before it would exceed
/// this) and of any one column read back.
pub const MAX_BLOCK_RAW: usize = 4 << 20;
/// zstd level of the columns. 1 rather than zstd's default 3: on the log corpus of
/// `bench/` level 1 wrote parts a fifth faster and they came out *smaller* (0.630–0.635 of
/// `zstd -3` of the raw lines against 0.651–0.655): a block's columns are small and
/// repetitive, where level 3's larger match tables buy nothing.
const ZSTD_LEVEL: i32 = 1;

/// pco level of the times (0–12, pco's default 8). Log times are irregular deltas of
/// one stream: level 8's 256-bin histograms cost a block far more (their optimisation was
/// about 7 % of a flush's CPU) than they save over level 4's 16 bins.
const TIMES_LEVEL: usize = 4;

/// One row of a block: time, message, fields (sorted by name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Nanoseconds since the epoch.
    pub time_ns: i64,
    /// The message.
    pub message: String,
    /// Fields, sorted by name.
    pub fields: Vec<(String, String)>,
}

/// What a block stores of a row, so records are encoded where they lie: a part writer
/// borrows the head's [`LogRecord`]s (their stream is the part index's business), a test
/// or a re-encode passes decoded [`Row`]s.
pub trait BlockRow {
    /// Nanoseconds since the epoch.
    fn time_ns(&self) -> i64;
    /// The message.
    fn message(&self) -> &str;
    /// Fields, sorted by name.
    fn fields(&self) -> &[(String, String)];
}

/// Both hold a row's parts under the same names.
macro_rules! block_row {
    ($($t:ty),*) => {$(
        impl BlockRow for $t {
            fn time_ns(&self) -> i64 {
                self.time_ns
            }
            fn message(&self) -> &str {
                &self.message
            }
            fn fields(&self) -> &[(String, String)] {
                &self.fields
            }
        }
    )*};
}

block_row!(Row, LogRecord);

impl<T: BlockRow> BlockRow for &T {
    fn time_ns(&self) -> i64 {
        (**self).time_ns()
    }
    fn message(&self) -> &str {
        (**self).message()
    }
    fn fields(&self) -> &[(String, String)] {
        (**self).fields()
    }
}

/// Encodes `rows` (sorted by time, at least one) into `buf`; returns the [`Bloom`] filter
/// of their messages.
pub fn encode<R: BlockRow>(rows: &[R], buf: &mut Vec<u8>) -> Result<Bloom, LogsError> {
    put_uvarint(buf, rows.len() as u64);
    let times: Vec<i64> = rows.iter().map(BlockRow::time_ns).collect();
    let config = pco::ChunkConfig::default().with_compression_level(TIMES_LEVEL);
    let packed = pco::standalone::simple_compress(&times, &config)
        .map_err(|e| LogsError::Corrupt(format!("cannot compress times: {e}")))?;
    put_bytes(buf, &packed);
    // The column buffer is kept per thread: grown fresh for every block, its pages were
    // faulted in and zeroed again and again.
    let mut raw = RAW_COLUMN.take();
    raw.clear();
    for r in rows {
        put_bytes(&mut raw, r.message().as_bytes());
    }
    put_zstd(buf, &raw)?;
    // The filter reads the messages from the column just written, in cache and back to
    // back, rather than from each record again (scattered over the heap, a cache miss per
    // message: a quarter of the filter's time went to the first byte of each).
    let bloom = Bloom::build(messages(&raw));
    // Rows of a stream mostly carry the same field names: look at a row's names only when
    // they differ from the row before's, and remember which rows did.
    let mut names: BTreeSet<&str> = BTreeSet::new();
    let mut seen: &[(String, String)] = &[];
    let mut new_layout = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let fields = r.fields();
        let same = i > 0
            && fields.len() == seen.len()
            && fields
                .iter()
                .zip(seen)
                .all(|((a, _), (b, _))| same_name(a, b));
        if !same {
            names.extend(fields.iter().map(|(n, _)| n.as_str()));
            seen = fields;
        }
        new_layout.push(!same);
    }
    // All columns are filled in one walk over the rows. A row whose names differ from the
    // row before's is merged against the sorted names (a string comparison per field) into
    // `slots`, each field's column or none; the rows after it with the same names reuse
    // `slots` without comparing a string.
    let names: Vec<&str> = names.into_iter().collect();
    let mut columns = FIELD_COLUMNS.take();
    columns.truncate(names.len());
    columns.iter_mut().for_each(Vec::clear);
    columns.resize_with(names.len(), Vec::new);
    let mut slots: Vec<Option<usize>> = Vec::new();
    let mut absent: Vec<usize> = Vec::new();
    for (r, &new) in rows.iter().zip(&new_layout) {
        let fields = r.fields();
        if new {
            slots.clear();
            let mut taken = vec![false; names.len()];
            let mut next = 0;
            for (n, _) in fields {
                // Names are unique in a record; should one repeat, the first is stored.
                while next < names.len() && names[next] < n.as_str() {
                    next += 1;
                }
                if next < names.len() && names[next] == n {
                    taken[next] = true;
                    slots.push(Some(next));
                    next += 1;
                } else {
                    slots.push(None);
                }
            }
            absent.clear();
            absent.extend((0..names.len()).filter(|c| !taken[*c]));
        }
        for ((_, v), slot) in fields.iter().zip(&slots) {
            if let Some(c) = slot {
                let column = &mut columns[*c];
                put_uvarint(column, v.len() as u64 + 1);
                column.extend_from_slice(v.as_bytes());
            }
        }
        for c in &absent {
            put_uvarint(&mut columns[*c], 0);
        }
    }
    put_uvarint(buf, names.len() as u64);
    for (name, column) in names.iter().zip(&columns) {
        put_bytes(buf, name.as_bytes());
        put_zstd(buf, column)?;
    }
    columns.retain(|c| c.capacity() <= MAX_BLOCK_RAW);
    FIELD_COLUMNS.set(columns);
    if raw.capacity() <= MAX_BLOCK_RAW {
        RAW_COLUMN.set(raw);
    }
    Ok(bloom)
}

/// Whether two field names are equal, compared as two integers each when short (as names
/// are): comparing every row's names with the row before's made a `bcmp` call per name,
/// about 8 % of writing a block.
fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && if a.len() <= 16 {
            padded(a.as_bytes()) == padded(b.as_bytes())
        } else {
            a == b
        }
}

/// The messages of a message column [`encode`] has just written.
fn messages(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut r = Reader::new(raw);
    std::iter::from_fn(move || r.bytes().ok())
}

thread_local! {
    /// [`encode`]'s column buffer.
    static RAW_COLUMN: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
    /// [`encode`]'s field columns.
    static FIELD_COLUMNS: std::cell::Cell<Vec<Vec<u8>>> = const { std::cell::Cell::new(Vec::new()) };
    /// [`put_zstd`]'s output buffer.
    static COMPRESSED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    /// One zstd context per thread, reused: `zstd::bulk::compress` allocates (and the kernel
    /// zeroes) a fresh megabyte-sized context per column, which was a tenth of ingest CPU.
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
    /// The same for decompression (every block read).
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

fn put_zstd(buf: &mut Vec<u8>, raw: &[u8]) -> Result<(), LogsError> {
    COMPRESSED
        .with_borrow_mut(|z| {
            COMPRESSOR.with_borrow_mut(|c| {
                if c.is_none() {
                    *c = Some(zstd::bulk::Compressor::new(ZSTD_LEVEL)?);
                }
                let Some(c) = c.as_mut() else {
                    return Err(std::io::Error::other("no zstd context"));
                };
                z.clear();
                z.reserve(zstd::zstd_safe::compress_bound(raw.len()));
                c.compress_to_buffer(raw, z)?;
                put_uvarint(buf, raw.len() as u64);
                put_bytes(buf, z);
                if z.capacity() > 2 * MAX_BLOCK_RAW {
                    *z = Vec::new();
                }
                Ok(())
            })
        })
        .map_err(|e| LogsError::Corrupt(format!("cannot compress a column: {e}")))
}

fn take_zstd(r: &mut Reader<'_>) -> Result<Vec<u8>, LogsError> {
    let raw = r.len(MAX_BLOCK_RAW)?;
    let z = r.bytes()?;
    let out = DECOMPRESSOR
        .with(|d| {
            let mut d = d.borrow_mut();
            if d.is_none() {
                *d = Some(zstd::bulk::Decompressor::new()?);
            }
            match d.as_mut() {
                Some(d) => d.decompress(z, raw),
                None => Err(std::io::Error::other("no zstd context")),
            }
        })
        .map_err(|e| LogsError::Corrupt(format!("a column does not decompress: {e}")))?;
    if out.len() != raw {
        return Err(LogsError::Corrupt(
            "a column's length does not match".into(),
        ));
    }
    Ok(out)
}

/// Decodes a block of at most `max_rows` rows.
pub fn decode(bytes: &[u8], max_rows: usize) -> Result<Vec<Row>, LogsError> {
    let mut r = Reader::new(bytes);
    let n = r.len(max_rows.min(MAX_BLOCK_ROWS))?;
    let times: Vec<i64> = pco::standalone::simple_decompress(r.bytes()?)
        .map_err(|e| LogsError::Corrupt(format!("times do not decompress: {e}")))?;
    if times.len() != n {
        return Err(LogsError::Corrupt("block time count mismatch".into()));
    }
    let messages = take_zstd(&mut r)?;
    let mut m = Reader::new(&messages);
    let mut rows = Vec::with_capacity(n);
    for &time_ns in &times {
        rows.push(Row {
            time_ns,
            message: m.str()?.to_owned(),
            fields: Vec::new(),
        });
    }
    let nfields = r.len(r.remaining())?;
    let mut prev: Option<String> = None;
    for _ in 0..nfields {
        let name = r.str()?.to_owned();
        if prev.as_ref().is_some_and(|p| *p >= name) {
            return Err(LogsError::Corrupt("block field names out of order".into()));
        }
        let column = take_zstd(&mut r)?;
        let mut c = Reader::new(&column);
        for row in &mut rows {
            let len = c.uvarint()?;
            if len > 0 {
                let len = usize::try_from(len - 1)
                    .map_err(|_| LogsError::Corrupt("field too long".into()))?;
                let value = std::str::from_utf8(c.take(len)?)
                    .map_err(|_| LogsError::Corrupt("field value is not UTF-8".into()))?;
                row.fields.push((name.clone(), value.to_owned()));
            }
        }
        prev = Some(name);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize) -> Vec<Row> {
        (0..n)
            .map(|i| Row {
                time_ns: 1_764_547_200_000_000_000 + i as i64 * 1_000_003,
                message: format!("order {i} paid by card ****{:04}", i * 37 % 10_000),
                fields: if i % 3 == 0 {
                    vec![
                        ("amount".into(), format!("{}", i * 100)),
                        ("user".into(), format!("u{}", i % 7)),
                    ]
                } else {
                    vec![("user".into(), format!("u{}", i % 7))]
                },
            })
            .collect()
    }

    #[test]
    fn blocks_round_trip_with_sparse_fields_and_compress() {
        let input = rows(2000);
        let mut buf = Vec::new();
        encode(&input, &mut buf).unwrap();
        assert_eq!(decode(&buf, MAX_BLOCK_ROWS).unwrap(), input);
        let raw: usize = input.iter().map(|r| 8 + r.message.len() + 12).sum();
        assert!(buf.len() * 4 < raw, "{} bytes for {raw} raw", buf.len());
        assert!(
            decode(&buf, 1999).is_err(),
            "more rows than the index allows"
        );
    }

    #[test]
    fn columns_come_back_whichever_fields_each_row_lacks() {
        // Every subset of four names, rows of all of them in turn; then a block with fewer
        // columns on the same thread (its column buffers are reused).
        let names = ["amount", "b", "trace", "user"];
        let wide: Vec<Row> = (0..64)
            .map(|i| Row {
                time_ns: i,
                message: format!("m{i}"),
                fields: names
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| i >> k & 1 == 1)
                    .map(|(k, n)| (n.to_string(), format!("{n}{i}{}", "x".repeat(k))))
                    .collect(),
            })
            .collect();
        let narrow = rows(10);
        for input in [&wide, &narrow, &wide] {
            let mut buf = Vec::new();
            encode(input, &mut buf).unwrap();
            assert_eq!(&decode(&buf, MAX_BLOCK_ROWS).unwrap(), input);
        }
    }

    #[test]
    fn runs_of_rows_with_the_same_names_reuse_their_columns_and_the_filter_is_the_messages() {
        // Runs of 1–6 rows with the same names (what `encode` maps once per run), names
        // changing between runs to a subset, a superset or a disjoint set.
        let sets: [&[&str]; 5] = [
            &["amount", "user"],
            &["user"],
            &["amount", "sku", "user"],
            &[],
            &["a", "zz"],
        ];
        let mut input = Vec::new();
        for run in 0..40usize {
            let names = sets[run * 7 % sets.len()];
            for k in 0..=(run % 6) {
                let i = input.len();
                input.push(Row {
                    time_ns: i as i64,
                    message: format!("run {run} row {k} order-{}", i * 31),
                    fields: names
                        .iter()
                        .map(|n| (n.to_string(), format!("{n}={i}")))
                        .collect(),
                });
            }
        }
        let mut buf = Vec::new();
        let bloom = encode(&input, &mut buf).unwrap();
        assert_eq!(decode(&buf, MAX_BLOCK_ROWS).unwrap(), input);
        assert_eq!(
            bloom,
            Bloom::build(input.iter().map(|r| r.message.as_bytes()))
        );
    }

    #[test]
    fn damaged_blocks_are_errors_not_panics() {
        let mut buf = Vec::new();
        encode(&rows(50), &mut buf).unwrap();
        for cut in 0..buf.len() {
            assert!(decode(&buf[..cut], MAX_BLOCK_ROWS).is_err(), "cut at {cut}");
        }
        for i in 0..buf.len() {
            let mut b = buf.clone();
            b[i] ^= 0x41;
            let _ = decode(&b, MAX_BLOCK_ROWS);
        }
    }
}
