//! A reader of the protobuf wire format that borrows from its input and never reads past
//! it: what the remote_write and Loki push decoders walk their messages with. `prost`
//! would allocate a `String` or `Vec` for every field only for the decoder to copy it
//! again; this hands out slices (VictoriaMetrics hand-writes its unmarshallers for the same
//! reason).

/// A field's payload in the protobuf wire format.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2: a string, bytes or an embedded message.
    Len(&'a [u8]),
    /// Wire type 5 (skipped).
    Fixed32,
}

/// A cursor over protobuf wire-format bytes that never reads past the end.
pub(crate) struct Wire<'a>(pub(crate) &'a [u8]);

impl<'a> Wire<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.0.split_first().ok_or("truncated varint")?;
            self.0 = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.0.len() {
            return Err(format!("field of {n} bytes runs past the end"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    /// The next field's number and payload; `None` at the end.
    pub(crate) fn field(&mut self) -> Result<Option<(u64, Value<'a>)>, String> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let tag = key >> 3;
        if tag == 0 {
            return Err("field number 0".into());
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                let b = self.take(8)?;
                Value::Fixed64(u64::from_le_bytes(
                    b.try_into().map_err(|_| "short fixed64")?,
                ))
            }
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|_| "length overflows")?;
                Value::Len(self.take(n)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed32
            }
            w => return Err(format!("unsupported wire type {w}")),
        };
        Ok(Some((tag, value)))
    }
}
