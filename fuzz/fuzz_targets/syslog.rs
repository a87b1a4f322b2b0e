//! Fuzzes the syslog parser (RFC 5424, RFC 3164) and the TCP framer: a record, an error,
//! or more bytes wanted, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = dozor_ingest::syslog::parse(data, 1_796_119_200_000_000_000);
    let mut framer = dozor_ingest::syslog::Framer::default();
    let (a, b) = data.split_at(data.len() / 2);
    if let Ok(frames) = framer.push(a) {
        for f in frames {
            let _ = dozor_ingest::syslog::parse(&f, 0);
        }
        let _ = framer.push(b);
    }
});
