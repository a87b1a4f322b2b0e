//! [`LogRecord`]: one log line or business event, as every log protocol decodes to and the
//! log store keeps.
//!
//! Times are nanoseconds since the Unix epoch, unlike metrics (milliseconds): Loki's push and
//! query APIs and syslog's RFC 5424 carry sub-millisecond times, and lines of one stream
//! within a millisecond must keep their order.

use crate::labels::Labels;

/// One log line or event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Nanoseconds since the Unix epoch.
    pub time_ns: i64,
    /// The stream's labels (service, host, level…): what a stream selector matches; few
    /// distinct values, so a stream holds many lines.
    pub stream: Labels,
    /// The message.
    pub message: String,
    /// Structured or extracted fields (`user_id`, `amount`, `trace_id`…), sorted by name,
    /// names unique: high-cardinality values belong here, not in the stream.
    pub fields: Vec<(String, String)>,
}

impl LogRecord {
    /// A record without fields.
    pub fn new(time_ns: i64, stream: Labels, message: impl Into<String>) -> LogRecord {
        LogRecord {
            time_ns,
            stream,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// The value of field `name`, if present.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.fields[i].1.as_str())
    }

    /// Bytes of message and fields, for size accounting.
    pub fn byte_size(&self) -> usize {
        self.message.len()
            + self
                .fields
                .iter()
                .map(|(n, v)| n.len() + v.len())
                .sum::<usize>()
    }
}
