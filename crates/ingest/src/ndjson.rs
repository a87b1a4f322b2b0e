//! NDJSON log ingest (`POST /api/v1/logs/ingest`): one JSON object per line, the
//! conventions of VictoriaLogs' JSON lines API.
//!
//! - The message is `_msg`, else `message`, else `msg`; a line without one is an error.
//! - The time is `_time`, else `@timestamp`, `timestamp`, `time` or `ts`: an RFC 3339
//!   string (any fraction, down to nanoseconds) or a number of seconds, milliseconds,
//!   microseconds or nanoseconds since the epoch, told apart by magnitude; absent: the time
//!   of the request.
//! - The stream is `_stream`, an object of labels (`{"service": "shop", "level": "error"}`);
//!   without it, the fields named by [`NdjsonOptions::stream_fields`] (the request's
//!   `_stream_fields=service,host`; by default `service`, `host`, `level`, `data_class`)
//!   form the stream.
//!   Stream labels are few-valued by design: user ids, order numbers and the like belong in
//!   fields.
//! - Every other member is a field; nested objects flatten to dotted names (`user.id`),
//!   arrays and other values keep their JSON text, strings their value. Of members with
//!   the same name (a repeated key, or `a.b` beside `{"a":{"b":…}}`) the last one wins.
//!
//! Each line is read in one pass (`read_line`): no `serde_json::Value` tree is built, and
//! the records of one request share their stream's label set.
//!
//! A body decodes whole or not at all: an error names the line (`line 12: …`).

use std::borrow::Cow;

use dozor_model::packed::put_bytes;
use dozor_model::{Labels, LogRecord};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::IngestError;

/// Most lines in one request.
pub const MAX_LINES: usize = 100_000;
/// Longest line, bytes.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// How lines become records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NdjsonOptions {
    /// Fields that form the stream when a line has no `_stream`.
    pub stream_fields: Vec<String>,
    /// The time of records without one, ns since the epoch.
    pub default_time_ns: i64,
}

impl NdjsonOptions {
    /// The default stream fields (`service`, `host`, `level`, and `data_class`, which
    /// decides which roles see the stream) and `now_ns` for records without a time.
    pub fn new(now_ns: i64) -> NdjsonOptions {
        NdjsonOptions {
            stream_fields: ["service", "host", "level", "data_class"]
                .map(str::to_owned)
                .to_vec(),
            default_time_ns: now_ns,
        }
    }
}

/// The members with a convention of their own, in the order they are looked for: the
/// message's spellings, the time's, the stream. Their places here are their slots in
/// [`Reserved`].
const CONVENTION_KEYS: [&str; 9] = [
    "_msg",
    "message",
    "msg",
    "_time",
    "@timestamp",
    "timestamp",
    "time",
    "ts",
    "_stream",
];
const MESSAGE_SLOTS: std::ops::Range<usize> = 0..3;
const TIME_SLOTS: std::ops::Range<usize> = 3..8;
const STREAM_SLOT: usize = 8;
/// The slot of the first stream field (`NdjsonOptions::stream_fields`); the others follow.
const STREAM_FIELD_SLOTS: usize = 9;

/// Decodes an NDJSON body (empty lines are skipped).
pub fn parse(body: &[u8], opts: &NdjsonOptions) -> Result<Vec<LogRecord>, IngestError> {
    parse_with(body, opts, Some)
}

/// [`parse`], passing each record through `each` as soon as it is read: what it returns
/// is kept (`None`: left out). Masking there works on the line's strings while they are
/// still in the cache, instead of in a second walk over the request's records, which finds
/// them cold. The line limit counts lines read, kept or not.
pub fn parse_with(
    body: &[u8],
    opts: &NdjsonOptions,
    mut each: impl FnMut(LogRecord) -> Option<LogRecord>,
) -> Result<Vec<LogRecord>, IngestError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| IngestError::new("body", format!("not UTF-8 ({e})")))?;
    // Lines are found with `memchr`'s vector search (`str::lines` went a word at a time:
    // 1.5 % of ingest CPU), and counted first so the records are not moved as they grow.
    let lines = memchr::memchr_iter(b'\n', body).count() + 1;
    let mut out = Vec::with_capacity(lines.min(MAX_LINES));
    let mut reader = LineReader::new(opts);
    let (mut start, mut read) = (0, 0);
    let ends = memchr::memchr_iter(b'\n', body).chain([body.len()]);
    for (i, end) in ends.enumerate() {
        let at = |m: String| IngestError::new(format!("line {}", i + 1), m);
        // `\n` is one byte of its own in UTF-8: both ends are character boundaries.
        let line = text[start..end].trim();
        start = end + 1;
        if line.is_empty() {
            continue;
        }
        if read == MAX_LINES {
            return Err(at(format!("more than {MAX_LINES} lines in one request")));
        }
        read += 1;
        out.extend(each(reader.line(line).map_err(at)?));
    }
    Ok(out)
}

/// Reads NDJSON lines one at a time, for callers that judge each line on its own (a file
/// tail keeps a line that is not JSON as plain text); records of one stream share their
/// label set, as in [`parse`].
pub struct LineReader<'o> {
    opts: &'o NdjsonOptions,
    streams: Streams,
}

impl<'o> LineReader<'o> {
    /// A reader by the conventions of `opts`.
    pub fn new(opts: &'o NdjsonOptions) -> LineReader<'o> {
        LineReader {
            opts,
            streams: Streams::default(),
        }
    }

    /// One line (without its newline) as a record, or what is wrong with it.
    pub fn line(&mut self, line: &str) -> Result<LogRecord, String> {
        if line.len() > MAX_LINE_BYTES {
            return Err(format!("longer than {MAX_LINE_BYTES} bytes"));
        }
        if !line.starts_with('{') {
            return Err("not a JSON object".into());
        }
        let (reserved, fields) =
            read_line(line, self.opts).map_err(|e| format!("invalid JSON: {e}"))?;
        record_with(reserved, fields, self.opts, &mut self.streams)
    }
}

/// One JSON object as a record, by the conventions above (also what `_bulk` sources become).
pub fn record(obj: Map<String, Value>, opts: &NdjsonOptions) -> Result<LogRecord, String> {
    let mut reserved = Reserved::new(opts);
    let mut rest = Vec::new();
    for (k, v) in obj {
        match slot(&k, opts) {
            Some(slot) => reserved.put(slot, Member::from(v)),
            None => rest.push((k, v)),
        }
    }
    let mut fields = Vec::new();
    flatten("", rest, &mut fields);
    record_with(reserved, fields, opts, &mut Streams::default())
}

/// A member that carries a convention: a string borrowed from the line where it can be
/// (the message, a time, a stream field), anything else as its JSON value.
#[derive(Debug)]
enum Member<'a> {
    Str(Cow<'a, str>),
    Json(Value),
}

impl From<Value> for Member<'_> {
    fn from(v: Value) -> Self {
        match v {
            Value::String(s) => Member::Str(Cow::Owned(s)),
            v => Member::Json(v),
        }
    }
}

impl<'a> Member<'a> {
    /// The value as a label or message: strings as they are, `null` empty, anything else
    /// its JSON text.
    fn into_text(self) -> Cow<'a, str> {
        match self {
            Member::Str(s) => s,
            Member::Json(Value::Null) => Cow::Borrowed(""),
            Member::Json(v) => Cow::Owned(v.to_string()),
        }
    }
}

/// The members of a line that carry a convention, each in its slot: the slots of
/// [`CONVENTION_KEYS`], then one per stream field. Of members with the same name the last
/// one read is kept (as in a JSON object); each remembers when it was read, so what is
/// left after the conventions took theirs becomes fields in the line's order.
struct Reserved<'l> {
    slots: Vec<Option<(u32, Member<'l>)>>,
    read: u32,
}

impl<'l> Reserved<'l> {
    fn new(opts: &NdjsonOptions) -> Reserved<'l> {
        Reserved {
            slots: std::iter::repeat_with(|| None)
                .take(STREAM_FIELD_SLOTS + opts.stream_fields.len())
                .collect(),
            read: 0,
        }
    }

    fn put(&mut self, slot: usize, member: Member<'l>) {
        if let Some(s) = self.slots.get_mut(slot) {
            *s = Some((self.read, member));
            self.read += 1;
        }
    }

    /// The member in `slot`, taken out.
    fn take(&mut self, slot: usize) -> Option<Member<'l>> {
        self.slots.get_mut(slot)?.take().map(|(_, m)| m)
    }

    /// The stream field `name` (the `k`-th of the options), taken out: from its slot, or
    /// from a convention's when it is named like one and that one left it.
    fn take_stream_field(&mut self, k: usize, name: &str) -> Option<Member<'l>> {
        let slot = CONVENTION_KEYS
            .iter()
            .position(|c| *c == name)
            .unwrap_or(STREAM_FIELD_SLOTS + k);
        self.take(slot)
    }

    /// What no convention took, named, in the order read.
    fn rest(self, opts: &NdjsonOptions) -> Vec<(String, Value)> {
        let mut rest: Vec<(u32, String, Value)> = self
            .slots
            .into_iter()
            .enumerate()
            .filter_map(|(slot, m)| {
                let (read, m) = m?;
                let name = CONVENTION_KEYS.get(slot).copied().or_else(|| {
                    let k = slot.checked_sub(STREAM_FIELD_SLOTS)?;
                    opts.stream_fields.get(k).map(String::as_str)
                })?;
                let v = match m {
                    Member::Str(s) => Value::String(s.into_owned()),
                    Member::Json(v) => v,
                };
                Some((read, name.to_owned(), v))
            })
            .collect();
        rest.sort_unstable_by_key(|(read, _, _)| *read);
        rest.into_iter().map(|(_, n, v)| (n, v)).collect()
    }
}

/// The slot in [`Reserved`] of member `key`, if it carries a convention.
fn slot(key: &str, opts: &NdjsonOptions) -> Option<usize> {
    CONVENTION_KEYS.iter().position(|c| *c == key).or_else(|| {
        opts.stream_fields
            .iter()
            .position(|f| f == key)
            .map(|k| STREAM_FIELD_SLOTS + k)
    })
}

/// The stream label sets of one request, so its records share them (a clone of [`Labels`]
/// is a reference count) instead of each building its own strings.
#[derive(Default)]
struct Streams {
    /// By the pairs as given (empty values left out), each name and value after its
    /// length: one hash and one comparison of bytes find a line's labels.
    by_pairs: std::collections::HashMap<Box<[u8]>, Labels, foldhash::fast::FixedState>,
    /// The key being looked up (kept: a line's key is built in it, not allocated).
    key: Vec<u8>,
}

impl Streams {
    /// The label set of `pairs` (names unique; empty values are left out, as
    /// [`Labels::new`] does).
    fn get(&mut self, pairs: &[(impl AsRef<str>, impl AsRef<str>)]) -> Result<Labels, String> {
        self.key.clear();
        for (n, v) in pairs.iter().map(|(n, v)| (n.as_ref(), v.as_ref())) {
            if !v.is_empty() {
                put_bytes(&mut self.key, n.as_bytes());
                put_bytes(&mut self.key, v.as_bytes());
            }
        }
        if let Some(l) = self.by_pairs.get(self.key.as_slice()) {
            return Ok(l.clone());
        }
        let labels = Labels::from_pairs(pairs.iter().map(|(n, v)| (n.as_ref(), v.as_ref())))
            .map_err(|e| format!("stream: {e}"))?;
        self.by_pairs
            .insert(self.key.as_slice().into(), labels.clone());
        Ok(labels)
    }
}

/// A record from the members that carry a convention (`reserved`: message, time, stream
/// and stream fields) and `fields` already flattened from the others.
fn record_with(
    mut reserved: Reserved<'_>,
    mut fields: Vec<(String, String)>,
    opts: &NdjsonOptions,
    streams: &mut Streams,
) -> Result<LogRecord, String> {
    let message = MESSAGE_SLOTS
        .into_iter()
        .find_map(|s| reserved.take(s))
        .ok_or("no message (_msg, message or msg)")?;
    let message = match message {
        Member::Str(s) => s.into_owned(),
        Member::Json(v) => v.to_string(),
    };
    let time_ns = match TIME_SLOTS.into_iter().find_map(|s| reserved.take(s)) {
        Some(Member::Str(s)) => parse_rfc3339_ns(&s)?,
        Some(Member::Json(v)) => parse_time(&v)?,
        None => opts.default_time_ns,
    };
    let stream = match reserved.take(STREAM_SLOT) {
        Some(Member::Json(Value::Object(stream))) => {
            let pairs: Vec<(String, String)> =
                stream.into_iter().map(|(n, v)| (n, scalar(v))).collect();
            stream_labels(&pairs, streams)?
        }
        Some(_) => return Err("_stream must be an object of labels".into()),
        None => {
            let mut pairs: Vec<(&str, Cow<'_, str>)> = Vec::with_capacity(opts.stream_fields.len());
            for (k, name) in opts.stream_fields.iter().enumerate() {
                if let Some(v) = reserved.take_stream_field(k, name) {
                    pairs.push((name, v.into_text()));
                }
            }
            stream_labels(&pairs, streams)?
        }
    };
    // What is left (another spelling of the message or time, stream fields beside a
    // `_stream`) is a field like any member.
    flatten("", reserved.rest(opts), &mut fields);
    Ok(finish(time_ns, stream, message, fields))
}

/// The stream of `pairs`, or `service="unknown"` when every value is empty.
fn stream_labels(
    pairs: &[(impl AsRef<str>, impl AsRef<str>)],
    streams: &mut Streams,
) -> Result<Labels, String> {
    if pairs.iter().all(|(_, v)| v.as_ref().is_empty()) {
        return streams.get(&[("service", "unknown")]);
    }
    streams.get(pairs)
}

/// A record whose fields are the members left in `obj`, flattened, sorted and unique.
pub(crate) fn with_fields(
    time_ns: i64,
    stream: Labels,
    message: String,
    obj: Map<String, Value>,
) -> LogRecord {
    let mut fields = Vec::new();
    flatten("", obj, &mut fields);
    finish(time_ns, stream, message, fields)
}

/// A record of `fields` sorted by name; of equal names the last one read wins, as of a
/// JSON object's duplicate keys.
fn finish(
    time_ns: i64,
    stream: Labels,
    message: String,
    mut fields: Vec<(String, String)>,
) -> LogRecord {
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    fields.dedup_by(|later, earlier| {
        let same = later.0 == earlier.0;
        if same {
            std::mem::swap(&mut later.1, &mut earlier.1);
        }
        same
    });
    LogRecord {
        time_ns,
        stream,
        message,
        fields,
    }
}

/// Reads one NDJSON line (an object) in a single pass, without building a
/// `serde_json::Value` of it: the members that carry a convention (message, time, stream,
/// stream fields) come back as values for [`record_with`]; every other member is flattened
/// straight into `(name, value)` fields, borrowing from the line until the strings are
/// made. Same results as reading a `Value` and [`flatten`]ing it; decoding a whole `Value`
/// tree (a `BTreeMap` per object, a `String` per key) was a fifth of log ingest.
fn read_line<'l>(line: &'l str, opts: &NdjsonOptions) -> Result<Line<'l>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(line);
    let mut out = (Reserved::new(opts), Vec::new());
    serde::de::Deserializer::deserialize_map(
        &mut de,
        LineVisitor {
            opts,
            out: &mut out,
        },
    )?;
    de.end()?;
    Ok(out)
}

/// A line read: its members that carry a convention, and the others as fields.
type Line<'l> = (Reserved<'l>, Vec<(String, String)>);

struct LineVisitor<'o, 'de> {
    opts: &'o NdjsonOptions,
    out: &'o mut Line<'de>,
}

impl<'de> Visitor<'de> for LineVisitor<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if let Some(slot) = slot(&key, self.opts) {
                let v = map.next_value_seed(ReservedSeed)?;
                self.out.0.put(slot, v);
            } else {
                map.next_value_seed(Flatten {
                    name: &key,
                    out: &mut self.out.1,
                })?;
            }
        }
        Ok(())
    }
}

/// Reads a [`Member`]: strings borrowed from the line where they have no escapes.
struct ReservedSeed;

impl<'de> DeserializeSeed<'de> for ReservedSeed {
    type Value = Member<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Member<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ReservedSeed {
    type Value = Member<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Member<'de>, E> {
        Ok(Member::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Member<'de>, E> {
        Ok(Member::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Member<'de>, E> {
        Ok(Member::Str(Cow::Owned(v)))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Member<'de>, E> {
        Ok(Member::Json(Value::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Member<'de>, E> {
        Ok(Member::Json(Value::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Member<'de>, E> {
        Ok(Member::Json(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Member<'de>, E> {
        Ok(Member::Json(Value::from(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Member<'de>, E> {
        Ok(Member::Json(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Member<'de>, A::Error> {
        Ok(Member::Json(array(seq)?))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Member<'de>, A::Error> {
        let mut obj = Map::new();
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            obj.insert(k, v);
        }
        Ok(Member::Json(Value::Object(obj)))
    }
}

/// The rest of an array, as a JSON value (arrays are kept whole, as their JSON text).
fn array<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Value, A::Error> {
    let mut items = Vec::new();
    while let Some(v) = seq.next_element::<Value>()? {
        items.push(v);
    }
    Ok(Value::Array(items))
}

/// An object key, borrowed from the line unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The value of member `name`, flattened into `out` as [`flatten`] does: strings as they
/// are, numbers and booleans as their JSON text, arrays as compact JSON, nested objects as
/// `name.key` members, nulls left out.
struct Flatten<'n, 'o> {
    name: &'n str,
    out: &'o mut Vec<(String, String)>,
}

impl Flatten<'_, '_> {
    fn push(self, value: String) {
        self.out.push((self.name.to_owned(), value));
    }
}

impl<'de> DeserializeSeed<'de> for Flatten<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Flatten<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.push(v.to_string());
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.push(v.to_string());
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.push(v.to_string());
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        // serde_json's own formatting of the number, as `Value::to_string` gives it.
        self.push(Value::from(v).to_string());
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.push(v.to_owned());
        Ok(())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<(), E> {
        self.push(v);
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.push(array(seq)?.to_string());
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut name = String::with_capacity(self.name.len() + 16);
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            name.clear();
            name.push_str(self.name);
            name.push('.');
            name.push_str(&key);
            map.next_value_seed(Flatten {
                name: &name,
                out: self.out,
            })?;
        }
        Ok(())
    }
}

fn scalar(v: Value) -> String {
    match v {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub(crate) fn flatten(
    prefix: &str,
    obj: impl IntoIterator<Item = (String, Value)>,
    out: &mut Vec<(String, String)>,
) {
    for (k, v) in obj {
        let name = if prefix.is_empty() {
            k
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Object(inner) => flatten(&name, inner, out),
            Value::Null => {}
            other => out.push((name, scalar(other))),
        }
    }
}

/// An RFC 3339 string or a number of s/ms/µs/ns since the epoch, as ns.
pub(crate) fn parse_time(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => {
            // Seconds until 5138 (1e11), then ms (1e14), µs (1e17), ns.
            let scale = |a: f64| match a {
                a if a < 1e11 => 1_000_000_000,
                a if a < 1e14 => 1_000_000,
                a if a < 1e17 => 1_000,
                _ => 1,
            };
            let out_of_range = || format!("time {n} is out of range");
            if let Some(i) = n.as_i64() {
                // Integers exactly: an f64 would round nanoseconds.
                return i
                    .checked_mul(scale(i.unsigned_abs() as f64))
                    .ok_or_else(out_of_range);
            }
            let x = n.as_f64().ok_or("the time is not a number")?;
            let ns = x * scale(x.abs()) as f64;
            if !ns.is_finite() || ns.abs() >= 9.2e18 {
                return Err(out_of_range());
            }
            Ok(ns.round() as i64)
        }
        Value::String(s) => parse_rfc3339_ns(s),
        _ => Err("the time must be a string or a number".into()),
    }
}

/// RFC 3339 with `Z` or a `±HH:MM` offset, to ns. humantime reads the date, time and
/// fraction; the offset is applied here (humantime knows only UTC).
pub(crate) fn parse_rfc3339_ns(s: &str) -> Result<i64, String> {
    let bad = |e: String| format!("time {s:?} is not RFC 3339 ({e})");
    let (local, offset_s) = match s
        .len()
        .checked_sub(6)
        .and_then(|i| s.get(i..).map(|z| (i, z)))
    {
        Some((i, z))
            if z.is_ascii()
                && matches!(z.as_bytes()[0], b'+' | b'-')
                && z.as_bytes()[3] == b':' =>
        {
            let h: i64 = z[1..3]
                .parse()
                .map_err(|_| bad("bad offset hours".into()))?;
            let m: i64 = z[4..6]
                .parse()
                .map_err(|_| bad("bad offset minutes".into()))?;
            if h > 23 || m > 59 {
                return Err(bad("offset out of range".into()));
            }
            let sign = if z.starts_with('-') { -1 } else { 1 };
            (&s[..i], sign * (h * 3600 + m * 60))
        }
        _ => (s, 0),
    };
    let t = humantime::parse_rfc3339_weak(local).map_err(|e| bad(e.to_string()))?;
    let ns = match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()),
        Err(e) => i64::try_from(e.duration().as_nanos()).map(|n| -n),
    };
    ns.ok()
        .and_then(|ns| ns.checked_sub(offset_s.checked_mul(1_000_000_000)?))
        .ok_or_else(|| bad("out of range".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_records_by_the_conventions() {
        let body = br#"{"_msg":"payment failed","_time":"2026-12-01T10:00:00.123456789Z","service":"shop","level":"error","user":{"id":"u1","tier":3},"amount":10500}

{"message":"ok","timestamp":1796119200123,"_stream":{"service":"crm"},"tags":["a","b"]}
{"msg":"no time","host":"h1"}"#;
        let got = parse(body, &NdjsonOptions::new(42)).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].message, "payment failed");
        assert_eq!(got[0].time_ns, 1_796_119_200_123_456_789);
        assert_eq!(
            got[0].stream,
            Labels::from_pairs([("level", "error"), ("service", "shop")]).unwrap()
        );
        assert_eq!(
            got[0].fields,
            [("amount", "10500"), ("user.id", "u1"), ("user.tier", "3")]
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        assert_eq!(got[1].time_ns, 1_796_119_200_123_000_000, "milliseconds");
        assert_eq!(got[1].stream.get("service"), Some("crm"));
        assert_eq!(got[1].field("tags"), Some(r#"["a","b"]"#));
        assert_eq!(
            (got[2].time_ns, got[2].stream.get("host")),
            (42, Some("h1"))
        );
    }

    /// The conventions applied to a whole `Value`, as ingest first did: the reference the
    /// single-pass reader and the interned streams must equal.
    fn reference(mut obj: Map<String, Value>, opts: &NdjsonOptions) -> LogRecord {
        let message = match CONVENTION_KEYS[MESSAGE_SLOTS]
            .iter()
            .find_map(|k| obj.remove(*k))
            .unwrap()
        {
            Value::String(s) => s,
            other => other.to_string(),
        };
        let time_ns = CONVENTION_KEYS[TIME_SLOTS]
            .iter()
            .find_map(|k| obj.remove(*k))
            .map_or(opts.default_time_ns, |v| parse_time(&v).unwrap());
        let mut labels = Vec::new();
        match obj.remove("_stream") {
            Some(Value::Object(stream)) => {
                labels.extend(stream.into_iter().map(|(n, v)| (n, scalar(v))));
            }
            Some(_) => panic!("_stream must be an object"),
            None => {
                for name in &opts.stream_fields {
                    if let Some(v) = obj.remove(name) {
                        labels.push((name.clone(), scalar(v)));
                    }
                }
            }
        }
        if labels.iter().all(|(_, v)| v.is_empty()) {
            labels = vec![("service".into(), "unknown".into())];
        }
        let mut fields = Vec::new();
        flatten("", obj, &mut fields);
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        LogRecord {
            time_ns,
            stream: Labels::from_pairs(labels).unwrap(),
            message,
            fields,
        }
    }

    /// The single-pass reader gives what reading a `Value` and applying the conventions
    /// to it gives, for every kind of member.
    #[test]
    fn the_single_pass_reader_equals_the_value_path() {
        let lines = [
            r#"{"_msg":"a","service":"shop","n":1,"f":1.50,"e":1e3,"neg":-0.0,"big":18446744073709551615,"min":-9223372036854775808}"#,
            r#"{"message":{"nested":true},"_msg":"wins","msg":"field too","time":1796119200,"level":"warn"}"#,
            r#"{"_msg":"x","a":{"b":{"c":"deep","d":null},"e":[1,{"f":2}]},"t":true,"u":false,"z":null}"#,
            r#"{"_msg":"esc \"q\" \u00e9 \ud83d\ude00","k\"ey":"v\\al","\u006bey2":"\n\t","_stream":{"service":"crm","x":{"y":1}},"host":"h"}"#,
            r#"{"_msg":"dup","service":"a","service":"b","f":"1","f":"2"}"#,
            r#"{ "_msg" : "spaces" , "ts" : "2026-12-01T10:00:00+03:00" , "arr" : [ ] , "obj" : { } }"#,
            r#"{"_msg":"","host":"","level":null,"service":["s"]}"#,
            r#"{"msg":42,"@timestamp":"2026-12-01T10:00:00.5Z","user":{"id":7,"name":"Оля"}}"#,
        ];
        let opts = NdjsonOptions::new(42);
        // Stream fields named like a convention: a spelling of the message or time that is
        // not the one used is a stream label then; repeats and `_stream` among them.
        let mut odd = NdjsonOptions::new(42);
        odd.stream_fields = ["msg", "service", "ts", "_stream", "service", "f"]
            .map(str::to_owned)
            .to_vec();
        for opts in [&opts, &odd] {
            for line in lines {
                let Value::Object(obj) = serde_json::from_str::<Value>(line).unwrap() else {
                    panic!("{line}");
                };
                let want = reference(obj.clone(), opts);
                assert_eq!(
                    parse(line.as_bytes(), opts).unwrap(),
                    vec![want.clone()],
                    "{line}"
                );
                assert_eq!(record(obj, opts).unwrap(), want, "{line}");
            }
        }
        // Errors agree too: not an object, broken JSON, trailing bytes, bad values.
        for bad in [
            r#"[1]"#,
            r#"{"_msg":"a""#,
            r#"{"_msg":"a"} x"#,
            r#"{"_msg":"a","v":01}"#,
            "{\"_msg\":\"a\u{1}\"}",
        ] {
            assert!(parse(bad.as_bytes(), &opts).is_err(), "{bad}");
            assert!(
                !matches!(serde_json::from_str::<Value>(bad), Ok(Value::Object(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn each_record_passes_the_callback_and_the_limit_counts_lines_read() {
        let opts = NdjsonOptions::new(0);
        let body = "{\"_msg\":\"a\"}\n\n{\"_msg\":\"b\"}\r\n{\"_msg\":\"c\"}";
        let mut seen = Vec::new();
        let kept = parse_with(body.as_bytes(), &opts, |r| {
            seen.push(r.message.clone());
            (r.message != "b").then_some(r)
        })
        .unwrap();
        assert_eq!(seen, ["a", "b", "c"]);
        let kept: Vec<&str> = kept.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(kept, ["a", "c"]);
        let line = "{\"_msg\":\"x\"}\n";
        let many = line.repeat(MAX_LINES + 1);
        let err = parse_with(many.as_bytes(), &opts, |_| None).unwrap_err();
        assert!(err.to_string().contains("more than"), "{err}");
        let limit = &many[..many.len() - line.len()];
        assert!(parse_with(limit.as_bytes(), &opts, |_| None).is_ok());
    }

    #[test]
    fn times_in_every_unit_agree() {
        let t = |v: &str| parse_time(&serde_json::from_str(v).unwrap()).unwrap();
        let ns = 1_796_119_200_000_000_000;
        for v in [
            "1796119200",
            "1796119200000",
            "1796119200000000",
            "1796119200000000000",
            "\"2026-12-01T10:00:00Z\"",
            "\"2026-12-01T13:00:00+03:00\"",
        ] {
            assert_eq!(t(v), ns, "{v}");
        }
    }

    #[test]
    fn bad_lines_are_named() {
        let opts = NdjsonOptions::new(0);
        let err = |b: &[u8]| parse(b, &opts).unwrap_err().to_string();
        assert!(err(b"{\"_msg\":\"a\"}\n[1]\n").starts_with("line 2: not a JSON object"));
        assert!(err(b"{\"_msg\":\"a\"}\n{\"_msg\":\n").starts_with("line 2: invalid JSON"));
        assert!(err(b"{\"x\":1}").contains("no message"));
        assert!(err(br#"{"_msg":"a","_time":"yesterday"}"#).contains("RFC 3339"));
        assert!(err(br#"{"_msg":"a","_stream":{"1bad":"x"}}"#).contains("stream"));
        assert!(err(br#"{"_msg":"a","_stream":"shop"}"#).contains("_stream"));
        assert!(err(b"\xff").starts_with("body"));
    }
}
