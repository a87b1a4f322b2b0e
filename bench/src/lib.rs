//! Shared parts of the benchmark binaries (`tsdb-compare`, `query-compare`, `logs-compare`):
//! starting and stopping the systems under test on free loopback ports ([`systems`],
//! [`clickhouse`]), node_exporter-like data as remote_write requests ([`data`]) and the NDJSON
//! log corpus ([`log_corpus`]). See `bench/README.md`.

pub mod clickhouse;
pub mod data;
pub mod log_corpus;
mod log_services;
pub mod systems;
