//! The primitives of every tsdb file format — varints, zigzag, length-prefixed bytes and
//! the bounds-checked [`Reader`], shared with the log store through
//! [`dozor_model::packed`] — and [`PackedLabels`], the head's label sets. Decoding never
//! panics on bad input; it returns [`Corrupt`].

pub use dozor_model::packed::{Corrupt, Reader, put_varint};

pub use dozor_model::packed::put_uvarint;

pub use dozor_model::packed::put_bytes;

/// Appends a label set: `nlabels:uvarint { name:bytes value:bytes }` (the packed form of
/// [`dozor_model::packed`]).
pub fn put_labels(buf: &mut Vec<u8>, labels: &dozor_model::Labels) {
    dozor_model::packed::pack_labels(buf, labels);
}

/// A label set packed into one allocation with [`put_labels`]' encoding: how the head keeps
/// labels (a `Labels` costs two heap strings per label; this, one buffer per series).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PackedLabels(Box<[u8]>);

impl PackedLabels {
    /// Packs `labels`.
    pub fn new(labels: &dozor_model::Labels) -> PackedLabels {
        let mut buf = Vec::with_capacity(labels.byte_size() + 2 * labels.len() + 1);
        put_labels(&mut buf, labels);
        PackedLabels(buf.into_boxed_slice())
    }

    /// Keeps already packed, valid bytes (from a [`dozor_model::SeriesBatch`]).
    pub fn from_packed(packed: &[u8]) -> PackedLabels {
        PackedLabels(packed.into())
    }

    /// The packed bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The label set (empty if the bytes were damaged, which only a bug could cause: they
    /// are ours, in memory).
    pub fn unpack(&self) -> dozor_model::Labels {
        dozor_model::packed::unpack_labels(&self.0).unwrap_or_default()
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        let mut r = Reader::new(&self.0);
        let n = r.uvarint().ok()?;
        for _ in 0..n {
            let (k, v) = (r.str().ok()?, r.str().ok()?);
            if k == name {
                return Some(v);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        let mut buf = Vec::new();
        let values = [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            i64::MAX,
            i64::MIN,
            1_795_391_301_457,
        ];
        for v in values {
            put_varint(&mut buf, v);
        }
        put_uvarint(&mut buf, u64::MAX);
        let mut r = Reader::new(&buf);
        for v in values {
            assert_eq!(r.varint().unwrap(), v);
        }
        assert_eq!(r.uvarint().unwrap(), u64::MAX);
        assert_eq!(r.remaining(), 0);
        assert_eq!(r.u8(), Err(Corrupt("unexpected end")));
    }

    #[test]
    fn overlong_varints_and_lengths_are_corrupt() {
        assert!(Reader::new(&[0xff; 11]).uvarint().is_err());
        let mut buf = Vec::new();
        put_uvarint(&mut buf, 1000);
        assert!(Reader::new(&buf).bytes().is_err());
    }
}
