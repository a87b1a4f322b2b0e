//! The cold tier's archive format: a day's records as one Parquet file, readable by every
//! tool of the field (DuckDB, ClickHouse's `s3()` table function, Spark, pandas/pyarrow).
//!
//! Schema (`message log`), one row per record in time order, zstd-compressed, row groups of
//! [`ROW_GROUP`] records:
//!
//! | column | type | what |
//! |---|---|---|
//! | `time` | INT64 `TIMESTAMP(NANOS, UTC)` | the record's time |
//! | `stream` | BYTE_ARRAY `JSON` | the stream labels as an object, `{"service":"shop",…}` |
//! | `message` | BYTE_ARRAY `STRING` | the message |
//! | `fields` | BYTE_ARRAY `JSON` | the fields as an object of strings |
//!
//! Labels and fields vary by stream, so they are JSON objects rather than columns: a file
//! has one schema whatever the day held, and `json_extract_string(stream, '$.service')`
//! (DuckDB) or `JSONExtractString(stream, 'service')` (ClickHouse) reads them. Written with
//! the `parquet` crate's low-level column writers (no Arrow: four columns do not need it).

use std::sync::Arc;

use dozor_model::LogRecord;
use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

/// Records per row group.
pub const ROW_GROUP: usize = 64 * 1024;

const SCHEMA: &str = "message log {
  REQUIRED INT64 time (TIMESTAMP(NANOS,true));
  REQUIRED BYTE_ARRAY stream (JSON);
  REQUIRED BYTE_ARRAY message (STRING);
  REQUIRED BYTE_ARRAY fields (JSON);
}";

/// `records` as a Parquet file.
pub fn to_parquet(records: &[LogRecord]) -> Result<Vec<u8>, String> {
    let err = |e: parquet::errors::ParquetError| format!("parquet: {e}");
    let schema = Arc::new(parse_message_type(SCHEMA).map_err(err)?);
    let level = ZstdLevel::try_new(3).map_err(err)?;
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_created_by(concat!("dozor ", env!("CARGO_PKG_VERSION")).to_owned())
            .build(),
    );
    let mut out = Vec::new();
    let mut writer = SerializedFileWriter::new(&mut out, schema, props).map_err(err)?;
    for chunk in records.chunks(ROW_GROUP) {
        let mut group = writer.next_row_group().map_err(err)?;
        let times: Vec<i64> = chunk.iter().map(|r| r.time_ns).collect();
        let text = |f: &dyn Fn(&LogRecord) -> String| -> Vec<ByteArray> {
            chunk
                .iter()
                .map(|r| ByteArray::from(f(r).into_bytes()))
                .collect()
        };
        let streams = text(&|r| {
            let m: serde_json::Map<String, serde_json::Value> = r
                .stream
                .iter()
                .map(|l| (l.name.to_string(), l.value.to_string().into()))
                .collect();
            serde_json::Value::Object(m).to_string()
        });
        let messages = text(&|r| r.message.clone());
        let fields = text(&|r| {
            let m: serde_json::Map<String, serde_json::Value> = r
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().into()))
                .collect();
            serde_json::Value::Object(m).to_string()
        });
        let mut column = 0;
        while let Some(mut c) = group.next_column().map_err(err)? {
            match column {
                0 => c.typed::<Int64Type>().write_batch(&times, None, None),
                1 => c.typed::<ByteArrayType>().write_batch(&streams, None, None),
                2 => c
                    .typed::<ByteArrayType>()
                    .write_batch(&messages, None, None),
                _ => c.typed::<ByteArrayType>().write_batch(&fields, None, None),
            }
            .map_err(err)?;
            c.close().map_err(err)?;
            column += 1;
        }
        group.close().map_err(err)?;
    }
    writer.close().map_err(err)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dozor_model::Labels;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::RowAccessor;

    #[test]
    fn records_read_back_from_the_parquet_file() {
        let mut records: Vec<LogRecord> = (0..70_000_i64)
            .map(|i| {
                LogRecord::new(
                    1_796_500_000_000_000_000 + i,
                    Labels::from_pairs([("service", "shop"), ("level", "critical")]).unwrap(),
                    format!("disk \"{i}\" failed"),
                )
            })
            .collect();
        records[5].fields = vec![("order_id".into(), "ORD-1".into())];
        let bytes = to_parquet(&records).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("day.parquet");
        std::fs::write(&path, &bytes).unwrap();
        let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        let meta = reader.metadata();
        assert_eq!(meta.file_metadata().num_rows(), 70_000);
        assert_eq!(meta.num_row_groups(), 2, "64 Ki rows per group");
        let rows: Vec<_> = reader
            .get_row_iter(None)
            .unwrap()
            .take(6)
            .map(|r| r.unwrap())
            .collect();
        let text = |row: usize, column: usize| rows[row].get_string(column).unwrap().clone();
        assert_eq!(text(5, 2), "disk \"5\" failed");
        assert_eq!(text(5, 3), r#"{"order_id":"ORD-1"}"#);
        assert_eq!(text(0, 1), r#"{"level":"critical","service":"shop"}"#);
        assert_eq!(text(0, 3), "{}");
        assert!(to_parquet(&[]).is_ok(), "an empty day is a valid file");
    }
}
