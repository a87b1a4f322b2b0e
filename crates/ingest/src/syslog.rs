//! Syslog messages, RFC 5424 and RFC 3164 (BSD), and the TCP framings of RFC 6587.
//!
//! ```text
//! <165>1 2026-12-01T10:00:00.003Z till-07 kkt-driver 4242 ID47 [fn@1 serial="99990789"] FN memory 95 %
//! <34>Dec  1 10:00:00 till-07 kkt-driver[4242]: FN memory 95 %
//! ```
//!
//! A message becomes a record with the stream `{service=<app-name or tag>, host=<hostname>,
//! level=<severity>}` (severity by its syslog name: `emerg` … `debug`) and the fields
//! `facility`, `procid`, `msgid` and every structured-data parameter as `<sd-id>.<name>`.
//! RFC 3164 times carry no year or zone: they are read as UTC in the year of `now_ns`, the
//! previous year if that would put them more than a day in the future.
//!
//! Over TCP, [`Framer`] splits a byte stream into messages, by octet counting (`57 <34>…`)
//! when a frame starts with a digit, else by newlines. [`serve_udp`] and [`serve_tcp`] are
//! the listeners: they hand what they receive, a batch at a time, to a [`LogSink`].

use std::sync::Arc;

use dozor_model::time::{civil_from_days, days_from_civil};
use dozor_model::{Label, Labels, LogRecord, TenantId};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

/// Longest message accepted, bytes (RFC 5425 asks for at least 8 KiB; we take more).
pub const MAX_MESSAGE_BYTES: usize = 64 << 10;

const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug",
];
const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// Parses one message; `now_ns` is the time of reception (for RFC 3164's year, and for
/// messages without a time).
pub fn parse(msg: &[u8], now_ns: i64) -> Result<LogRecord, String> {
    if msg.len() > MAX_MESSAGE_BYTES {
        return Err(format!("longer than {MAX_MESSAGE_BYTES} bytes"));
    }
    let text = String::from_utf8_lossy(msg);
    let text = text.trim_end_matches(['\n', '\r', '\0']);
    let rest = text.strip_prefix('<').ok_or("no <PRI> at the start")?;
    let close = rest
        .find('>')
        .filter(|i| (1..=3).contains(i))
        .ok_or("a bad <PRI>")?;
    let pri: u32 = rest[..close].parse().map_err(|_| "a bad <PRI>")?;
    if pri > 191 {
        return Err(format!("<PRI> {pri} out of range"));
    }
    let (facility, severity) = ((pri / 8) as usize, (pri % 8) as usize);
    let rest = &rest[close + 1..];
    let mut parsed = match rest.strip_prefix("1 ") {
        Some(r) => rfc5424(r, now_ns)?,
        None => rfc3164(rest, now_ns),
    };
    parsed
        .fields
        .push(("facility".into(), FACILITIES[facility].into()));
    let mut stream = vec![Label {
        name: "level".into(),
        value: SEVERITIES[severity].into(),
    }];
    for (name, v) in [("service", parsed.app), ("host", parsed.host)] {
        if let Some(v) = v.filter(|v| *v != "-" && !v.is_empty()) {
            stream.push(Label {
                name: name.into(),
                value: v.to_owned(),
            });
        }
    }
    let mut fields = parsed.fields;
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    fields.dedup_by(|b, a| a.0 == b.0);
    Ok(LogRecord {
        time_ns: parsed.time_ns,
        stream: Labels::new(stream).map_err(|e| e.to_string())?,
        message: parsed.message.to_owned(),
        fields,
    })
}

struct Parsed<'a> {
    time_ns: i64,
    host: Option<&'a str>,
    app: Option<&'a str>,
    message: &'a str,
    fields: Vec<(String, String)>,
}

fn rfc5424(s: &str, now_ns: i64) -> Result<Parsed<'_>, String> {
    let mut parts = s.splitn(6, ' ');
    let mut next = |what: &str| parts.next().ok_or_else(|| format!("no {what}"));
    let ts = next("TIMESTAMP")?;
    let host = next("HOSTNAME")?;
    let app = next("APP-NAME")?;
    let procid = next("PROCID")?;
    let msgid = next("MSGID")?;
    let rest = parts.next().unwrap_or("-");
    let time_ns = if ts == "-" {
        now_ns
    } else {
        crate::ndjson::parse_rfc3339_ns(ts)?
    };
    let mut fields = Vec::new();
    for (name, v) in [("procid", procid), ("msgid", msgid)] {
        if v != "-" {
            fields.push((name.to_owned(), v.to_owned()));
        }
    }
    let message = structured_data(rest, &mut fields)?;
    // A UTF-8 byte order mark may open the message (RFC 5424 §6.4).
    let message = message.strip_prefix('\u{feff}').unwrap_or(message);
    Ok(Parsed {
        time_ns,
        host: Some(host),
        app: Some(app),
        message,
        fields,
    })
}

/// Reads `-` or `[id k="v" …]…` into fields; returns the message after it.
fn structured_data<'a>(s: &'a str, fields: &mut Vec<(String, String)>) -> Result<&'a str, String> {
    if let Some(rest) = s.strip_prefix('-') {
        return Ok(rest.strip_prefix(' ').unwrap_or(rest));
    }
    let mut rest = s;
    while let Some(r) = rest.strip_prefix('[') {
        let id_end = r.find([' ', ']']).ok_or("an unterminated SD-ELEMENT")?;
        let id = &r[..id_end];
        let mut r = &r[id_end..];
        loop {
            r = r.trim_start_matches(' ');
            if let Some(after) = r.strip_prefix(']') {
                r = after;
                break;
            }
            let eq = r.find('=').ok_or("an SD-PARAM without =")?;
            let name = &r[..eq];
            let v = r[eq + 1..]
                .strip_prefix('"')
                .ok_or("an SD-PARAM value must be quoted")?;
            let mut value = String::new();
            let mut chars = v.char_indices();
            let end = loop {
                match chars.next() {
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c)) => value.push(c),
                        None => return Err("an unfinished escape".into()),
                    },
                    Some((_, c)) => value.push(c),
                    None => return Err("an unterminated SD-PARAM value".into()),
                }
            };
            fields.push((format!("{id}.{name}"), value));
            r = &v[end + 1..];
        }
        rest = r;
    }
    Ok(rest.strip_prefix(' ').unwrap_or(rest))
}

fn rfc3164(s: &str, now_ns: i64) -> Parsed<'_> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // "Mmm dd hh:mm:ss " is 16 bytes; without it the whole line is the message.
    let stamp = s.get(..15).and_then(|ts| {
        let month = MONTHS.iter().position(|m| ts.starts_with(m))? as u32 + 1;
        let day: u32 = ts.get(4..6)?.trim().parse().ok()?;
        let (h, m, sec) = (
            ts.get(7..9)?.parse::<i64>().ok()?,
            ts.get(10..12)?.parse::<i64>().ok()?,
            ts.get(13..15)?.parse::<i64>().ok()?,
        );
        (s.as_bytes().get(15) == Some(&b' ')).then_some((month, day, h * 3600 + m * 60 + sec))
    });
    let Some((month, day, secs)) = stamp else {
        return Parsed {
            time_ns: now_ns,
            host: None,
            app: None,
            message: s,
            fields: Vec::new(),
        };
    };
    let year = civil_year(now_ns);
    let at = |y: i64| {
        days_from_civil(y, month, day)
            .saturating_mul(86_400)
            .saturating_add(secs)
            .saturating_mul(1_000_000_000)
    };
    let mut time_ns = at(year);
    if time_ns > now_ns.saturating_add(86_400 * 1_000_000_000) {
        time_ns = at(year - 1);
    }
    let rest = &s[16..];
    let (host, rest) = rest.split_once(' ').unwrap_or(("", rest));
    // TAG[pid]: message — the tag is up to the first ':' or '[' of the first word.
    let word_end = rest.find(' ').unwrap_or(rest.len());
    let word = &rest[..word_end];
    let (app, procid, message) = match word.find([':', '[']) {
        Some(i) => {
            let tag = &word[..i];
            let procid = word[i..]
                .strip_prefix('[')
                .and_then(|p| p.split_once(']'))
                .map(|(p, _)| p);
            let msg = rest[word_end..].trim_start();
            (Some(tag), procid, msg)
        }
        None => (None, None, rest),
    };
    let mut fields = Vec::new();
    if let Some(p) = procid {
        fields.push(("procid".to_owned(), p.to_owned()));
    }
    Parsed {
        time_ns,
        host: Some(host),
        app,
        message,
        fields,
    }
}

fn civil_year(ns: i64) -> i64 {
    civil_from_days(ns.div_euclid(86_400 * 1_000_000_000)).0
}

/// Splits a TCP byte stream into syslog messages (RFC 6587): octet counting (`LEN SP MSG`)
/// when a frame starts with a digit, else newline-terminated.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    /// Adds received bytes; returns the complete messages, or an error when the stream
    /// can no longer be framed (the connection should be closed).
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(&first) = self.buf.first() {
            if first.is_ascii_digit() {
                let Some(sp) = self.buf.iter().position(|b| *b == b' ') else {
                    if self.buf.len() > 10 {
                        return Err("an octet count longer than 10 digits".into());
                    }
                    break;
                };
                let len: usize = std::str::from_utf8(&self.buf[..sp])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .filter(|n| *n <= MAX_MESSAGE_BYTES)
                    .ok_or("a bad octet count")?;
                if self.buf.len() < sp + 1 + len {
                    break;
                }
                out.push(self.buf[sp + 1..sp + 1 + len].to_vec());
                self.buf.drain(..sp + 1 + len);
            } else if let Some(nl) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                let line = &line[..line.len() - 1];
                if !line.iter().all(u8::is_ascii_whitespace) {
                    out.push(line.to_vec());
                }
            } else {
                if self.buf.len() > MAX_MESSAGE_BYTES {
                    return Err(format!("a line longer than {MAX_MESSAGE_BYTES} bytes"));
                }
                break;
            }
        }
        Ok(out)
    }
}

/// Where received log records go (the log store, masked first, in the binary).
pub trait LogSink: Send + Sync + 'static {
    /// Stores records for `tenant` (blocking: called off the async workers).
    fn append(&self, tenant: &TenantId, records: Vec<LogRecord>) -> Result<(), String>;
    /// Makes what was appended for `tenant` survive power loss (`fsync`), for sources that
    /// record how far they read (a file tail's checkpoints) only once records are durable.
    fn sync(&self, tenant: &TenantId) -> Result<(), String>;
}

/// Most messages stored in one append.
const BATCH: usize = 1000;

async fn deliver(sink: &Arc<dyn LogSink>, tenant: &TenantId, batch: Vec<LogRecord>) {
    if batch.is_empty() {
        return;
    }
    let (sink, tenant) = (Arc::clone(sink), tenant.clone());
    match tokio::task::spawn_blocking(move || sink.append(&tenant, batch)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "cannot store syslog messages"),
        Err(e) => tracing::error!(error = %e, "syslog delivery panicked"),
    }
}

fn now_ns() -> i64 {
    dozor_model::time::now_ms().saturating_mul(1_000_000)
}

/// Receives syslog datagrams on `socket` for `tenant` until `shutdown` turns true.
/// Messages that do not parse are dropped and logged (syslog has no way to answer).
pub async fn serve_udp(
    socket: UdpSocket,
    tenant: TenantId,
    sink: Arc<dyn LogSink>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; MAX_MESSAGE_BYTES];
    loop {
        let first = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let mut batch = Vec::new();
        let mut take = |n: usize, buf: &[u8]| match parse(&buf[..n], now_ns()) {
            Ok(r) => batch.push(r),
            Err(e) => tracing::debug!(error = %e, "unparsable syslog datagram dropped"),
        };
        match first {
            Ok((n, _)) => take(n, &buf),
            Err(e) => {
                tracing::warn!(error = %e, "syslog UDP receive failed");
                continue;
            }
        }
        // Whatever else has arrived goes into the same append.
        for _ in 1..BATCH {
            match socket.try_recv_from(&mut buf) {
                Ok((n, _)) => take(n, &buf),
                Err(_) => break,
            }
        }
        deliver(&sink, &tenant, batch).await;
    }
}

/// Accepts syslog TCP connections on `listener` for `tenant` until `shutdown` turns true.
pub async fn serve_tcp(
    listener: TcpListener,
    tenant: TenantId,
    sink: Arc<dyn LogSink>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let conn = tokio::select! {
            c = listener.accept() => c,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let Ok((stream, peer)) = conn else { continue };
        let (tenant, sink, shutdown) = (tenant.clone(), Arc::clone(&sink), shutdown.clone());
        tokio::spawn(async move {
            if let Err(e) = read_connection(stream, &tenant, &sink, shutdown).await {
                tracing::debug!(%peer, error = %e, "syslog TCP connection closed");
            }
        });
    }
}

async fn read_connection(
    mut stream: tokio::net::TcpStream,
    tenant: &TenantId,
    sink: &Arc<dyn LogSink>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    use tokio::io::AsyncReadExt;
    let mut framer = Framer::default();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = tokio::select! {
            r = stream.read(&mut buf) => r.map_err(|e| e.to_string())?,
            _ = shutdown.wait_for(|s| *s) => return Ok(()),
        };
        if n == 0 {
            return Ok(());
        }
        let now = now_ns();
        let batch = framer
            .push(&buf[..n])?
            .iter()
            .filter_map(|m| {
                parse(m, now)
                    .map_err(|e| tracing::debug!(error = %e, "unparsable syslog message dropped"))
                    .ok()
            })
            .collect();
        deliver(sink, tenant, batch).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_119_200_000_000_000; // 2026-12-01T10:00:00Z

    #[test]
    fn rfc5424_with_structured_data() {
        let r = parse(
            br#"<165>1 2026-12-01T10:00:00.003Z till-07 kkt-driver 4242 ID47 [fn@1 serial="9999\"0789" left="5"][x@2 a="b"] FN memory 95 %"#,
            NOW,
        )
        .unwrap();
        assert_eq!(r.time_ns, NOW + 3_000_000);
        assert_eq!(
            r.stream,
            Labels::from_pairs([
                ("host", "till-07"),
                ("level", "notice"),
                ("service", "kkt-driver")
            ])
            .unwrap()
        );
        assert_eq!(r.message, "FN memory 95 %");
        assert_eq!(r.field("fn@1.serial"), Some("9999\"0789"));
        assert_eq!(r.field("x@2.a"), Some("b"));
        assert_eq!(
            (r.field("procid"), r.field("msgid"), r.field("facility")),
            (Some("4242"), Some("ID47"), Some("local4"))
        );
        let nil = parse(b"<14>1 - - - - - -", NOW).unwrap();
        assert_eq!((nil.time_ns, nil.message.as_str()), (NOW, ""));
        assert_eq!(nil.stream, Labels::from_pairs([("level", "info")]).unwrap());
    }

    #[test]
    fn rfc3164_reads_tag_pid_and_a_year_less_time() {
        let r = parse(
            b"<34>Dec  1 09:59:58 till-07 kkt-driver[4242]: FN memory 95 %\n",
            NOW,
        )
        .unwrap();
        assert_eq!(r.time_ns, NOW - 2_000_000_000);
        assert_eq!(r.stream.get("service"), Some("kkt-driver"));
        assert_eq!(r.stream.get("host"), Some("till-07"));
        assert_eq!(r.stream.get("level"), Some("crit"));
        assert_eq!(
            (r.message.as_str(), r.field("procid"), r.field("facility")),
            ("FN memory 95 %", Some("4242"), Some("auth"))
        );
        // December read on 1 January belongs to the year before.
        let new_year = 1_798_761_600_000_000_000; // 2027-01-01T00:00:00Z
        let r = parse(b"<13>Dec 31 23:59:59 h app: bye", new_year).unwrap();
        assert_eq!(r.time_ns, new_year - 1_000_000_000);
        let plain = parse(b"<13>no header at all", NOW).unwrap();
        assert_eq!(
            (plain.message.as_str(), plain.time_ns),
            ("no header at all", NOW)
        );
    }

    #[test]
    fn bad_messages_are_errors() {
        for bad in [
            &b"no pri"[..],
            b"<>1 x",
            b"<999>1 x",
            b"<12345>x",
            b"<13>1 2026-13-01T00:00:00Z h a p m -",
        ] {
            assert!(
                parse(bad, NOW).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(parse(br#"<13>1 - h a p m [id k="v] msg"#, NOW).is_err());
    }

    #[test]
    fn tcp_frames_by_octet_count_or_newline_across_reads() {
        let mut f = Framer::default();
        let msg = b"<13>1 - h a p m - hello";
        let framed = format!("{} {}", msg.len(), String::from_utf8_lossy(msg));
        let (a, b) = framed.as_bytes().split_at(7);
        assert!(f.push(a).unwrap().is_empty());
        assert_eq!(f.push(b).unwrap(), vec![msg.to_vec()]);
        assert_eq!(
            f.push(b"<13>one\n\n<13>two\n<13>thr").unwrap(),
            vec![b"<13>one".to_vec(), b"<13>two".to_vec()]
        );
        assert_eq!(f.push(b"ee\n").unwrap(), vec![b"<13>three".to_vec()]);
        assert!(Framer::default().push(b"99999999 x").is_err());
        assert!(Framer::default().push(b"12345678901").is_err());
    }
}
