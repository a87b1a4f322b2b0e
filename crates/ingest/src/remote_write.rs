//! Prometheus remote_write 1.0: `POST /api/v1/write` with a snappy-compressed (block format)
//! protobuf `WriteRequest`.
//!
//! The messages are declared by hand with `prost` derives (no `protoc` at build time), with
//! the field numbers of Prometheus' `prompb/types.proto` and `remote.proto`. Exemplars,
//! native histograms and metadata are decoded and ignored (native histograms are counted so
//! the caller can report them).

use dozor_model::{Label, Labels, Sample};

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
pub fn decode(body: &[u8], limits: &Limits) -> Result<(Batch, Extras), IngestError> {
    let len = snap::raw::decompress_len(body).map_err(|e| {
        IngestError::new("body", format!("not snappy-compressed (block format): {e}"))
    })?;
    if len > limits.max_decoded_bytes {
        return Err(IngestError::new(
            "body",
            format!(
                "decompresses to {len} bytes, more than the limit of {}",
                limits.max_decoded_bytes
            ),
        ));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| IngestError::new("body", format!("corrupt snappy data: {e}")))?;
    decode_protobuf(&raw, limits)
}

/// Decodes an uncompressed `WriteRequest`.
pub fn decode_protobuf(raw: &[u8], limits: &Limits) -> Result<(Batch, Extras), IngestError> {
    let req = <WriteRequest as prost::Message>::decode(raw)
        .map_err(|e| IngestError::new("body", format!("not a remote_write WriteRequest: {e}")))?;
    if req.timeseries.len() > limits.max_series {
        return Err(IngestError::new(
            "timeseries",
            format!(
                "{} series, more than the limit of {}",
                req.timeseries.len(),
                limits.max_series
            ),
        ));
    }
    let mut total = 0usize;
    let mut extras = Extras::default();
    let mut batch = Vec::with_capacity(req.timeseries.len());
    for (i, ts) in req.timeseries.into_iter().enumerate() {
        extras.histograms_ignored += ts.histograms.len();
        if ts.samples.is_empty() {
            continue;
        }
        total += ts.samples.len();
        if total > limits.max_samples {
            return Err(IngestError::new(
                "timeseries",
                format!("more than the limit of {} samples", limits.max_samples),
            ));
        }
        let labels = Labels::new(
            ts.labels
                .into_iter()
                .map(|l| Label {
                    name: l.name,
                    value: l.value,
                })
                .collect(),
        )
        .map_err(|e| IngestError::new(format!("timeseries[{i}].labels"), e.to_string()))?;
        let samples = ts
            .samples
            .into_iter()
            .map(|s| Sample {
                t: s.timestamp,
                v: s.value,
            })
            .collect();
        batch.push((labels, samples));
    }
    Ok((batch, extras))
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
        assert_eq!(back, batch());
        assert_eq!(extras, Extras::default());
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
