//! Varints, zigzag and a bounds-checked reader: the primitives of every tsdb file format.
//! Decoding never panics on bad input; it returns [`Corrupt`].

/// Input ended early or held an impossible value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt data: {0}")]
pub struct Corrupt(pub &'static str);

pub use dozor_model::packed::put_uvarint;

/// Appends `v` zigzag-encoded as a varint.
pub fn put_varint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

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

/// A cursor over bytes that refuses to read past the end.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, Corrupt> {
        let (&b, rest) = self.buf.split_first().ok_or(Corrupt("unexpected end"))?;
        self.buf = rest;
        Ok(b)
    }

    /// Reads a LEB128 varint (at most 10 bytes).
    pub fn uvarint(&mut self) -> Result<u64, Corrupt> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(Corrupt("varint too long"))
    }

    /// Reads a zigzag varint.
    pub fn varint(&mut self) -> Result<i64, Corrupt> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// Reads a varint that must fit in `usize` and be at most `max`.
    pub fn len(&mut self, max: usize) -> Result<usize, Corrupt> {
        let n = usize::try_from(self.uvarint()?).map_err(|_| Corrupt("length overflows"))?;
        if n > max {
            return Err(Corrupt("length over limit"));
        }
        Ok(n)
    }

    /// Reads `n` raw bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Corrupt> {
        if n > self.buf.len() {
            return Err(Corrupt("unexpected end"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// Reads a length-prefixed byte string.
    pub fn bytes(&mut self) -> Result<&'a [u8], Corrupt> {
        let n = self.len(self.buf.len())?;
        self.take(n)
    }

    /// Reads a length-prefixed UTF-8 string.
    pub fn str(&mut self) -> Result<&'a str, Corrupt> {
        std::str::from_utf8(self.bytes()?).map_err(|_| Corrupt("invalid UTF-8"))
    }

    /// Reads a label set written by [`put_labels`], validating it.
    pub fn labels(&mut self) -> Result<dozor_model::Labels, Corrupt> {
        let n = self.len(dozor_model::Labels::MAX_LABELS)?;
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.str()?.to_owned();
            let value = self.str()?.to_owned();
            labels.push(dozor_model::Label { name, value });
        }
        dozor_model::Labels::new(labels).map_err(|_| Corrupt("invalid labels"))
    }

    /// Reads a little-endian `u64`.
    pub fn u64_le(&mut self) -> Result<u64, Corrupt> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
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
