//! Dozor's protocol decoders: untrusted bytes in, validated series out.
//!
//! Each decoder turns a request body into a [`Batch`] — `(Labels, samples)` pairs ready for
//! the tsdb — or an [`IngestError`] that names the offending field or line, so the API can
//! answer 400 with a message a client can act on. Nothing is stored when a body fails to
//! decode: a batch is all or nothing.
//!
//! - [`remote_write`]: Prometheus remote_write 1.0 (protobuf, snappy block format).
//! - [`exposition`]: Prometheus text exposition format 0.0.4 and OpenMetrics text.
//! - [`json`]: the JSON push of seed 004: `{name, value, labels, timestamp}`, one or many.
//!
//! - [`es_bulk`]: Elasticsearch's `_bulk` (judged item by item, as Elasticsearch does).
//! - [`loki`]: Loki push, protobuf (snappy) and JSON.
//! - [`ndjson`]: NDJSON log lines (`_msg`, `_time`, `_stream`) into `LogRecord`s.
//! - [`syslog`]: syslog messages (RFC 5424, RFC 3164) and TCP framing (RFC 6587).
//! - [`pii`]: PII masking of text before it is stored (e-mail, phones, cards, IBAN,
//!   Russian passport/INN/SNILS, IPs, JWTs, secrets).
//! - [`relabel`]: Prometheus relabeling rules.
//! - [`scrape`]: the scrape engine: it pulls exposition text from targets and hands batches
//!   to an [`scrape::Appender`].
//! - [`probe`]: the probe collector (blackbox_exporter's checks: HTTP(S), TLS expiry, TCP,
//!   PostgreSQL, Redis, JSON-RPC), delivering through the same `Appender` and keeping the
//!   latest outcome of each probe in a [`probe::ProbeRegistry`] for the health routes.
//! - [`host`]: this machine's `/proc` under node_exporter's names.
//! - [`tail`]: the file tail (globs, rotation, multiline, checkpoints), delivering through
//!   the same [`syslog::LogSink`] as the syslog listeners.
//! - [`source`]: what connectors share — counters, routes and formats of bus messages, dead
//!   letters, and the store-then-acknowledge delivery of the bus sources [`kafka`],
//!   [`rabbitmq`], [`mqtt`] and [`nats`] through a [`source::BusSink`].
//! - [`backup`]: the raw backup of bus messages to S3, through a local spool.
//!
//! Only `scrape`, `probe`, `host`, `tail`, the bus sources and the `syslog` listeners do
//! I/O.
//!
//! Architecture invariants: decoders do no I/O, never panic on any input (each has a fuzz
//! target in `fuzz/`), and bound the memory they allocate by [`Limits`]. The crate knows no
//! store: connectors deliver through the `Appender` trait.

pub mod backup;
pub mod es_bulk;
pub mod events;
pub mod exposition;
pub mod host;
pub mod json;
pub mod kafka;
pub mod kafka_out;
pub mod loki;
pub mod mqtt;
pub mod nats;
pub mod ndjson;
pub mod pii;
pub mod pipeline;
pub mod probe;
mod protowire;
pub mod rabbitmq;
pub mod relabel;
pub mod remote_write;
pub mod scrape;
pub mod source;
pub mod syslog;
pub mod tail;

use dozor_model::{Labels, Sample};

/// Decoded series with their samples.
pub type Batch = Vec<(Labels, Vec<Sample>)>;

/// Per-request limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest decompressed body, bytes.
    pub max_decoded_bytes: usize,
    /// Most series in one request.
    pub max_series: usize,
    /// Most samples in one request.
    pub max_samples: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_decoded_bytes: 64 << 20,
            max_series: 200_000,
            max_samples: 2_000_000,
        }
    }
}

/// A body that does not decode, with the place of the fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct IngestError {
    /// Where: `timeseries[3].labels[1].name`, `line 12`, `metrics[0].value`, `body`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl IngestError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> IngestError {
        IngestError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Decompresses a snappy block-format body, refusing one that would exceed
/// `limits.max_decoded_bytes` before allocating for it.
pub(crate) fn snappy_decompress(body: &[u8], limits: &Limits) -> Result<Vec<u8>, IngestError> {
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
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| IngestError::new("body", format!("corrupt snappy data: {e}")))
}

/// Counts the samples of a batch.
pub fn sample_count(batch: &Batch) -> usize {
    batch.iter().map(|(_, s)| s.len()).sum()
}

/// `s` as one URL path segment or query value: every byte but RFC 3986's unreserved
/// characters percent-encoded (queue names, INNs, tokens in the URLs we build).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
