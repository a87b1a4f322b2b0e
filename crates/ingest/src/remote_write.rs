//! Prometheus remote_write 1.0: `POST /api/v1/write` with a snappy-compressed (block format)
//! protobuf `WriteRequest`.
//!
//! Decoding reads the protobuf wire format by hand ([`decode_protobuf`]), borrowing label
//! strings from the request and writing them, validated, straight into a [`SeriesBatch`]:
//! no `String` or `Vec` per series. `prost` would build a `TimeSeries` with two `String`s per
//! label and two `Vec`s per series, only to throw them away once the store has looked the
//! series up; that was the largest cost of ingest (VictoriaMetrics hand-writes its
//! remote_write unmarshaller for the same reason). The `prost` messages below, with the field
//! numbers of Prometheus' `prompb/types.proto` and `remote.proto`, remain for [`encode`].
//! Exemplars, metadata and unknown fields are skipped; native histograms are counted so the
//! caller can report them.

use dozor_model::{Labels, Sample, SeriesBatch};

use crate::protowire::{Value, Wire};
use crate::{Batch, IngestError, Limits};

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// Series with their samples.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Labels, `__name__` included.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<LabelPair>,
    /// Float samples.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<SamplePair>,
    /// Native histograms (not stored yet; only counted).
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Skipped>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPair {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SamplePair {
    /// Value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// A message whose content we skip.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Skipped {}

/// What a request held besides the batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extras {
    /// Native histogram samples ignored.
    pub histograms_ignored: usize,
}

/// Decodes a snappy-compressed `WriteRequest`.
pub fn decode(body: &[u8], limits: &Limits) -> Result<(SeriesBatch, Extras), IngestError> {
    let raw = crate::snappy_decompress(body, limits)?;
    decode_protobuf(&raw, limits)
}

/// Decodes an uncompressed `WriteRequest`. Series without float samples are left out.
pub fn decode_protobuf(raw: &[u8], limits: &Limits) -> Result<(SeriesBatch, Extras), IngestError> {
    let not_request =
        |what: String| IngestError::new("body", format!("not a remote_write WriteRequest: {what}"));
    let mut batch = SeriesBatch::new();
    let mut extras = Extras::default();
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    let mut samples: Vec<Sample> = Vec::new();
    let mut series = 0usize;
    let mut wire = Wire(raw);
    while let Some((tag, value)) = wire.field().map_err(not_request)? {
        if tag != 1 {
            continue; // metadata (3) and fields of later versions
        }
        let Value::Len(ts) = value else {
            return Err(not_request("timeseries is not a message".into()));
        };
        let i = series;
        series += 1;
        if series > limits.max_series {
            return Err(IngestError::new(
                "timeseries",
                format!("more than the limit of {} series", limits.max_series),
            ));
        }
        pairs.clear();
        samples.clear();
        let field = |what: &str| format!("timeseries[{i}].{what}");
        let mut wire = Wire(ts);
        while let Some((tag, value)) = wire
            .field()
            .map_err(|e| IngestError::new(format!("timeseries[{i}]"), e))?
        {
            match (tag, value) {
                (1, Value::Len(label)) => {
                    let pair =
                        decode_label(label).map_err(|e| IngestError::new(field("labels"), e))?;
                    if pairs.len() == Labels::MAX_LABELS {
                        return Err(IngestError::new(
                            field("labels"),
                            format!("more than {} labels", Labels::MAX_LABELS),
                        ));
                    }
                    pairs.push(pair);
                }
                (2, Value::Len(sample)) => {
                    if batch.samples_len() + samples.len() >= limits.max_samples {
                        return Err(IngestError::new(
                            "timeseries",
                            format!("more than the limit of {} samples", limits.max_samples),
                        ));
                    }
                    samples.push(
                        decode_sample(sample).map_err(|e| IngestError::new(field("samples"), e))?,
                    );
                }
                (4, Value::Len(_)) => extras.histograms_ignored += 1,
                (1 | 2 | 4, _) => {
                    return Err(IngestError::new(
                        format!("timeseries[{i}]"),
                        format!("field {tag} is not a message"),
                    ));
                }
                _ => {} // exemplars (3) and unknown fields
            }
        }
        if samples.is_empty() {
            continue;
        }
        batch
            .push_pairs(&pairs, samples.drain(..))
            .map_err(|e| IngestError::new(field("labels"), e.to_string()))?;
    }
    Ok((batch, extras))
}

/// `prometheus.Label`: name (1) and value (2), UTF-8; absent fields are empty.
fn decode_label(msg: &[u8]) -> Result<(&str, &str), String> {
    let (mut name, mut value) = (&b""[..], &b""[..]);
    let mut wire = Wire(msg);
    while let Some((tag, v)) = wire.field()? {
        match (tag, v) {
            (1, Value::Len(b)) => name = b,
            (2, Value::Len(b)) => value = b,
            (1 | 2, _) => return Err(format!("label field {tag} is not a string")),
            _ => {}
        }
    }
    fn utf8(b: &[u8]) -> Result<&str, String> {
        std::str::from_utf8(b).map_err(|_| "a label name or value is not UTF-8".to_owned())
    }
    Ok((utf8(name)?, utf8(value)?))
}

/// `prometheus.Sample`: value (1, double) and timestamp (2, int64).
fn decode_sample(msg: &[u8]) -> Result<Sample, String> {
    let mut s = Sample { t: 0, v: 0.0 };
    let mut wire = Wire(msg);
    while let Some((tag, v)) = wire.field()? {
        match (tag, v) {
            (1, Value::Fixed64(bits)) => s.v = f64::from_bits(bits),
            // int64 is the two's complement of the varint, as Go and prost read it.
            (2, Value::Varint(t)) => s.t = t as i64,
            (1 | 2, _) => return Err(format!("sample field {tag} has the wrong wire type")),
            _ => {}
        }
    }
    Ok(s)
}

/// Encodes a batch as a snappy-compressed `WriteRequest` (for tests, benchmarks and
/// forwarding to another Prometheus-compatible store).
pub fn encode(batch: &Batch) -> Vec<u8> {
    let req = WriteRequest {
        timeseries: batch
            .iter()
            .map(|(labels, samples)| TimeSeries {
                labels: labels
                    .iter()
                    .map(|l| LabelPair {
                        name: l.name.clone(),
                        value: l.value.clone(),
                    })
                    .collect(),
                samples: samples
                    .iter()
                    .map(|s| SamplePair {
                        value: s.v,
                        timestamp: s.t,
                    })
                    .collect(),
                histograms: Vec::new(),
            })
            .collect(),
    };
    let raw = prost::Message::encode_to_vec(&req);
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> Batch {
        vec![(
            Labels::from_pairs([("__name__", "up"), ("job", "api")]).unwrap(),
            vec![Sample { t: 1000, v: 1.0 }, Sample { t: 2000, v: 0.0 }],
        )]
    }

    #[test]
    fn round_trips() {
        let (back, extras) = decode(&encode(&batch()), &Limits::default()).unwrap();
        assert_eq!(back.to_series(), batch());
        assert_eq!(extras, Extras::default());
    }

    /// A field as protobuf writes it: key, then payload.
    fn field(buf: &mut Vec<u8>, tag: u64, wire: u64, payload: &[u8]) {
        dozor_model::packed::put_uvarint(buf, tag << 3 | wire);
        if wire == 2 {
            dozor_model::packed::put_uvarint(buf, payload.len() as u64);
        }
        buf.extend_from_slice(payload);
    }

    #[test]
    fn reads_what_prost_writes_and_skips_what_it_does_not_store() {
        let req = WriteRequest {
            timeseries: vec![
                TimeSeries {
                    // Out of order and with an empty value: canonicalised.
                    labels: vec![
                        LabelPair {
                            name: "job".into(),
                            value: "api".into(),
                        },
                        LabelPair {
                            name: "zone".into(),
                            value: String::new(),
                        },
                        LabelPair {
                            name: "__name__".into(),
                            value: "up".into(),
                        },
                    ],
                    samples: vec![
                        SamplePair {
                            value: 1.5,
                            timestamp: -5_000,
                        },
                        SamplePair {
                            value: f64::NAN,
                            timestamp: 0,
                        },
                    ],
                    histograms: vec![Skipped {}, Skipped {}],
                },
                TimeSeries {
                    labels: vec![LabelPair {
                        name: "__name__".into(),
                        value: "only_histograms".into(),
                    }],
                    samples: vec![],
                    histograms: vec![Skipped {}],
                },
            ],
        };
        let mut raw = prost::Message::encode_to_vec(&req);
        field(&mut raw, 3, 2, b"\x08\x01"); // metadata
        field(&mut raw, 15, 0, &[0x2a]); // a field of a later version
        field(&mut raw, 16, 5, &[1, 2, 3, 4]);
        let (batch, extras) = decode_protobuf(&raw, &Limits::default()).unwrap();
        assert_eq!(extras.histograms_ignored, 3);
        let series = batch.to_series();
        assert_eq!(
            series.len(),
            1,
            "the series without float samples is left out"
        );
        assert_eq!(
            series[0].0,
            Labels::from_pairs([("__name__", "up"), ("job", "api")]).unwrap()
        );
        assert_eq!(series[0].1[0], Sample { t: -5_000, v: 1.5 });
        assert!(series[0].1[1].v.is_nan() && series[0].1[1].t == 0);
    }

    #[test]
    fn wrong_wire_types_and_bad_utf8_name_the_series() {
        let mut ts = Vec::new();
        field(&mut ts, 1, 0, &[7]); // labels as a varint
        let mut raw = Vec::new();
        field(&mut raw, 1, 2, &ts);
        let err = decode_protobuf(&raw, &Limits::default()).unwrap_err();
        assert_eq!(err.field, "timeseries[0]");

        let mut label = Vec::new();
        field(&mut label, 1, 2, b"job");
        field(&mut label, 2, 2, b"\xff\xfe");
        let mut ts = Vec::new();
        field(&mut ts, 1, 2, &label);
        let mut raw = Vec::new();
        field(&mut raw, 1, 2, &ts);
        let err = decode_protobuf(&raw, &Limits::default()).unwrap_err();
        assert_eq!(err.field, "timeseries[0].labels");
        assert!(err.message.contains("UTF-8"), "{err}");

        for bad in [
            &[0x0a, 0x05, 0x01][..],
            &[0x0b],
            &[0x00, 0x01],
            &[0x0a, 0xff],
        ] {
            let err = decode_protobuf(bad, &Limits::default()).unwrap_err();
            assert!(err.message.contains("WriteRequest"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn truncated_snappy_and_wrong_protobuf_are_named_errors() {
        let body = encode(&batch());
        let err = decode(&body[..body.len() / 2], &Limits::default()).unwrap_err();
        assert_eq!(err.field, "body");
        let not_proto = snap::raw::Encoder::new()
            .compress_vec(b"\xff\xff\xff\xff garbage")
            .unwrap();
        let err = decode(&not_proto, &Limits::default()).unwrap_err();
        assert!(err.message.contains("WriteRequest"), "{err}");
        assert!(decode(b"plain text", &Limits::default()).is_err());
    }

    #[test]
    fn bad_labels_name_the_series() {
        let bad: Batch = vec![(
            Labels::from_pairs([("ok", "1")]).unwrap(),
            vec![Sample { t: 1, v: 1.0 }],
        )];
        let mut req = <WriteRequest as prost::Message>::decode(
            snap::raw::Decoder::new()
                .decompress_vec(&encode(&bad))
                .unwrap()
                .as_slice(),
        )
        .unwrap();
        req.timeseries[0].labels.push(LabelPair {
            name: "1bad".into(),
            value: "x".into(),
        });
        let err =
            decode_protobuf(&prost::Message::encode_to_vec(&req), &Limits::default()).unwrap_err();
        assert_eq!(err.field, "timeseries[0].labels");
        assert!(err.message.contains("1bad"));
    }

    #[test]
    fn limits_are_enforced_before_storing_anything() {
        let limits = Limits {
            max_samples: 1,
            ..Limits::default()
        };
        assert!(decode(&encode(&batch()), &limits).is_err());
        let limits = Limits {
            max_decoded_bytes: 4,
            ..Limits::default()
        };
        assert!(
            decode(&encode(&batch()), &limits)
                .unwrap_err()
                .message
                .contains("limit")
        );
    }
}
