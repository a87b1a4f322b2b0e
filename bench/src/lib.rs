//! Shared parts of the benchmark binaries (`tsdb-compare`, `query-compare`): starting and
//! stopping the systems under test on free loopback ports ([`systems`]) and generating
//! node_exporter-like data as remote_write requests ([`data`]). See `bench/README.md`.

pub mod data;
pub mod systems;
