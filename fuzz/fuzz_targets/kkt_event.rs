//! Fuzzes the KKT driver-log parser and the fleet behind it: a line either parses into an
//! event or fails naming a field, never a panic; whatever parses can be applied to a fleet,
//! whose samples and views are then built (derived ages, counters, health) without a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let fleet = dozor_kkt::Fleet::new(dozor_kkt::FleetOptions::default());
    for line in data.split(|b| *b == b'\n') {
        match dozor_kkt::parse_line(line, 180) {
            Ok(event) => fleet.apply(event, 1_790_000_000_000),
            Err(e) => assert!(!e.field.is_empty()),
        }
    }
    let _ = fleet.tick(1_790_000_000_000);
    let _ = fleet.list(1_790_000_000_000);
});
