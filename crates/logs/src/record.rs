//! WAL records of the log store: batches of [`LogRecord`]s.
//!
//! ```text
//! batch := 0x01 count:uvarint { time_ns:varint stream:labels message:bytes
//!                               nfields:uvarint { name:bytes value:bytes } }
//! ```
//! `labels` is the packed label set of `dozor_model::packed`. A batch is one append: it is
//! in the WAL whole or not at all (the WAL's frames are checksummed).

use dozor_model::LogRecord;
use dozor_model::packed::{Corrupt, Reader, pack_labels, put_bytes, put_uvarint, put_varint};

const BATCH: u8 = 1;
/// Most fields of one record.
pub const MAX_FIELDS: usize = 1024;

/// Appends the encoded batch to `buf`.
pub fn encode(records: &[LogRecord], buf: &mut Vec<u8>) {
    buf.push(BATCH);
    put_uvarint(buf, records.len() as u64);
    for r in records {
        put_varint(buf, r.time_ns);
        pack_labels(buf, &r.stream);
        put_bytes(buf, r.message.as_bytes());
        put_uvarint(buf, r.fields.len() as u64);
        for (name, value) in &r.fields {
            put_bytes(buf, name.as_bytes());
            put_bytes(buf, value.as_bytes());
        }
    }
}

/// Decodes a batch.
pub fn decode(buf: &[u8]) -> Result<Vec<LogRecord>, Corrupt> {
    let mut r = Reader::new(buf);
    if r.u8()? != BATCH {
        return Err(Corrupt("unknown log record type"));
    }
    // Each record takes at least 5 bytes: bound the allocation by the input.
    let n = r.len(buf.len() / 5)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let time_ns = r.varint()?;
        let stream = r.labels()?;
        let message = r.str()?.to_owned();
        let nfields = r.len(MAX_FIELDS.min(r.remaining() / 2))?;
        let mut fields = Vec::with_capacity(nfields);
        for _ in 0..nfields {
            fields.push((r.str()?.to_owned(), r.str()?.to_owned()));
        }
        out.push(LogRecord {
            time_ns,
            stream,
            message,
            fields,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use dozor_model::Labels;

    use super::*;

    #[test]
    fn batches_round_trip_and_truncations_are_corrupt() {
        let stream = Labels::from_pairs([("service", "shop"), ("level", "error")]).unwrap();
        let mut with_fields = LogRecord::new(-5, stream.clone(), "пароль скрыт");
        with_fields.fields = vec![
            ("amount".into(), "10500".into()),
            ("user".into(), "u1".into()),
        ];
        let batch = vec![
            LogRecord::new(1_764_547_200_123_456_789, stream, ""),
            with_fields,
        ];
        let mut buf = Vec::new();
        encode(&batch, &mut buf);
        assert_eq!(decode(&buf).unwrap(), batch);
        for cut in 0..buf.len() {
            assert!(decode(&buf[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode(&[9, 0]).is_err());
    }
}
