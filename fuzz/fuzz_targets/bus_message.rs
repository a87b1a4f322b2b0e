//! Fuzzes a bus message through every format a connector route can name: records, samples
//! or a dead letter carrying the reason, never a panic.
#![no_main]

use dozor_ingest::source::{Format, Message, Position, Route};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let routes: Vec<Route> = Format::ALL.into_iter().map(|f| Route::new("t", f)).collect();
    let msgs: Vec<Message<'_>> = (0..routes.len())
        .map(|route| Message { route, topic: "t", position: Position::Unknown, payload: data })
        .collect();
    let d = dozor_ingest::source::decode("fuzz", &routes, &msgs, 1_796_119_200_000_000_000);
    assert!(d.dead as usize <= msgs.len());
});
