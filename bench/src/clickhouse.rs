//! ClickHouse (Debian's `clickhouse-server` 18.16) as the log store `logs-compare` measures
//! Dozor against: its own instance on free loopback ports with a fresh data directory and a
//! minimal generated `config.xml` / `users.xml` (the Debian service is not used), a
//! `MergeTree` table for the corpus of [`crate::log_corpus`], inserts over the HTTP
//! interface, and the sizes of the table's active parts.
//!
//! 18.16 specifics: `LowCardinality` is still experimental (the `default` profile sets
//! `allow_experimental_low_cardinality_type`); there is no `DateTime64`, so the time is a
//! `DateTime` (seconds) plus a `UInt16` of milliseconds; column codecs (`CODEC(ZSTD)`) do not
//! exist yet, so zstd — its best general-purpose method — is chosen server-wide by
//! `<compression><case><method>zstd</method><level>N</level></case></compression>` (18.16
//! honours `<level>`; without it zstd runs at level 1).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::log_corpus::{FIELDS, STREAM_FIELDS, parse_rfc3339_ms};
use crate::systems::free_port;

/// The table the corpus goes into.
pub const TABLE: &str = "logs";

/// A ClickHouse server and its process, if running.
pub struct ClickHouse {
    /// The HTTP interface's loopback port.
    pub http_port: u16,
    tcp_port: u16,
    zstd_level: i32,
    /// Its directory: `config.xml`, `users.xml`, `server.log` and `data/`.
    pub dir: PathBuf,
    child: Option<Child>,
}

impl ClickHouse {
    /// A stopped server with its directory at `work/clickhouse`, compressing with zstd at
    /// `zstd_level`.
    pub fn new(work: &Path, zstd_level: i32) -> anyhow::Result<ClickHouse> {
        Ok(ClickHouse {
            http_port: free_port()?,
            tcp_port: free_port()?,
            zstd_level,
            dir: work.join("clickhouse"),
            child: None,
        })
    }

    /// The data directory (`<path>` of the config).
    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Writes the configuration and starts `clickhouse-server` (without waiting for it).
    pub fn start(&mut self) -> anyhow::Result<()> {
        let data = self.data();
        std::fs::create_dir_all(&data)
            .with_context(|| format!("cannot create {}", data.display()))?;
        let d = data.display();
        let config = format!(
            r#"<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <console>1</console>
    </logger>
    <http_port>{http}</http_port>
    <tcp_port>{tcp}</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <path>{d}/</path>
    <tmp_path>{d}/tmp/</tmp_path>
    <user_files_path>{d}/user_files/</user_files_path>
    <format_schema_path>{d}/format_schemas/</format_schema_path>
    <users_config>{users}</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>5368709120</mark_cache_size>
    <merge_tree>
        <old_parts_lifetime>30</old_parts_lifetime>
    </merge_tree>
    <compression>
        <case>
            <method>zstd</method>
            <level>{level}</level>
        </case>
    </compression>
</yandex>
"#,
            http = self.http_port,
            tcp = self.tcp_port,
            level = self.zstd_level,
            users = self.dir.join("users.xml").display(),
        );
        let users = r#"<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default></default></quotas>
</yandex>
"#;
        std::fs::write(self.dir.join("config.xml"), config)?;
        std::fs::write(self.dir.join("users.xml"), users)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))?;
        self.child = Some(
            Command::new("clickhouse-server")
                .arg(format!(
                    "--config-file={}",
                    self.dir.join("config.xml").display()
                ))
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("cannot start clickhouse-server (bench/setup installs it)")?,
        );
        Ok(())
    }

    /// The process id, 0 when stopped.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// `http://127.0.0.1:<port>/<path_and_query>`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://127.0.0.1:{}/{path_and_query}", self.http_port)
    }

    /// Waits until `/ping` answers; returns how long that took.
    pub async fn wait_ready(&mut self, client: &reqwest::Client) -> anyhow::Result<Duration> {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(300) {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                bail!(
                    "clickhouse-server exited ({status}); see {}",
                    self.dir.join("server.log").display()
                );
            }
            if let Ok(r) = client.get(self.url("ping")).send().await
                && r.status().is_success()
            {
                return Ok(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("clickhouse-server did not become ready")
    }

    /// Sends `signal` (`TERM`, `KILL`) and waits for the process to end.
    pub fn stop(&mut self, signal: &str) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-s", signal, &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    /// Runs one statement; returns the answer's body.
    pub async fn query(&self, client: &reqwest::Client, sql: &str) -> anyhow::Result<String> {
        let r = client
            .post(self.url(""))
            .body(sql.to_owned())
            .send()
            .await?;
        let status = r.status();
        let text = r.text().await?;
        if !status.is_success() {
            bail!("clickhouse: {status} for {sql:?}: {}", text.trim());
        }
        Ok(text)
    }

    /// Creates the corpus' table: the stream fields as `LowCardinality(String)`, the message
    /// and every field of [`FIELDS`] as `String`, a day partition, sorted like Dozor's
    /// streams (service, host, level, time).
    pub async fn create_table(&self, client: &reqwest::Client) -> anyhow::Result<()> {
        let mut cols = vec!["time DateTime".to_owned(), "ms UInt16".to_owned()];
        cols.extend(
            STREAM_FIELDS
                .iter()
                .map(|f| format!("{f} LowCardinality(String)")),
        );
        cols.push("msg String".into());
        cols.extend(FIELDS.iter().map(|f| format!("{f} String")));
        let sql = format!(
            "CREATE TABLE {TABLE} ({}) ENGINE = MergeTree PARTITION BY toDate(time) ORDER BY ({}, time)",
            cols.join(", "),
            STREAM_FIELDS.join(", ")
        );
        self.query(client, &sql).await.map(drop)
    }

    /// Inserts a `JSONEachRow` body (made by [`to_json_each_row`]).
    pub async fn insert(&self, client: &reqwest::Client, body: Vec<u8>) -> anyhow::Result<()> {
        let r = client
            .post(self.url(&format!(
                "?query=INSERT%20INTO%20{TABLE}%20FORMAT%20JSONEachRow"
            )))
            .body(body)
            .send()
            .await?;
        let status = r.status();
        if !status.is_success() {
            bail!(
                "clickhouse insert: {status}: {}",
                r.text().await.unwrap_or_default().trim()
            );
        }
        Ok(())
    }

    /// `OPTIMIZE TABLE … FINAL` until each partition is one part (a merge already running
    /// makes OPTIMIZE a silent no-op in 18.16, hence the loop).
    pub async fn optimize(&self, client: &reqwest::Client) -> anyhow::Result<()> {
        for _ in 0..60 {
            self.query(client, &format!("OPTIMIZE TABLE {TABLE} FINAL"))
                .await?;
            let worst = self
                .query(
                    client,
                    &format!(
                        "SELECT max(c) FROM (SELECT count() AS c FROM system.parts WHERE table = '{TABLE}' AND active GROUP BY partition)"
                    ),
                )
                .await?;
            if worst.trim() == "1" {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        bail!("OPTIMIZE TABLE {TABLE} FINAL left more than one part per partition")
    }

    /// Bytes of the table's active parts on disk (their directories, as `du -b` counts
    /// them; parts a merge replaced wait `old_parts_lifetime` to be deleted and are left
    /// out) and how many there are.
    pub async fn active_bytes(&self, client: &reqwest::Client) -> anyhow::Result<(u64, usize)> {
        let paths = self
            .query(
                client,
                &format!("SELECT path FROM system.parts WHERE table = '{TABLE}' AND active"),
            )
            .await?;
        let dirs: Vec<&str> = paths.lines().filter(|l| !l.is_empty()).collect();
        let bytes = dirs
            .iter()
            .map(|p| dozor_tsdb::files::dir_size(Path::new(p)))
            .sum();
        Ok((bytes, dirs.len()))
    }

    /// The lines whose message contains `needle` in `[start_s, end_s]`, at most `limit`:
    /// how many came back.
    pub async fn search(
        &self,
        client: &reqwest::Client,
        needle: &str,
        start_s: i64,
        end_s: i64,
        limit: usize,
    ) -> anyhow::Result<usize> {
        let needle = needle.replace('\\', "\\\\").replace('\'', "\\'");
        let sql = format!(
            "SELECT time, ms, service, host, level, msg FROM {TABLE} WHERE time >= {start_s} AND time <= {end_s} AND position(msg, '{needle}') > 0 LIMIT {limit} FORMAT JSONEachRow"
        );
        Ok(self.query(client, &sql).await?.lines().count())
    }
}

/// Rewrites Dozor NDJSON lines (`_time`, `_msg`, stream fields, [`FIELDS`]) as `JSONEachRow`
/// rows of [`TABLE`]: `time` in seconds and `ms`, `msg`, every field as a string.
pub fn to_json_each_row(ndjson: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(ndjson.len() + ndjson.len() / 8);
    for (i, line) in ndjson.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let mut obj: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(line)
            .with_context(|| format!("corpus line {}: not a JSON object", i + 1))?;
        let time = obj
            .remove("_time")
            .and_then(|t| t.as_str().and_then(parse_rfc3339_ms))
            .with_context(|| format!("corpus line {}: no _time", i + 1))?;
        let msg = obj
            .remove("_msg")
            .with_context(|| format!("corpus line {}: no _msg", i + 1))?;
        let mut row = serde_json::Map::new();
        row.insert("time".into(), time.div_euclid(1000).into());
        row.insert("ms".into(), time.rem_euclid(1000).into());
        row.insert("msg".into(), msg);
        for (k, v) in obj {
            if !STREAM_FIELDS.contains(&k.as_str()) && !FIELDS.contains(&k.as_str()) {
                bail!("corpus line {}: field {k:?} has no column", i + 1);
            }
            let v = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            row.insert(k, v.into());
        }
        serde_json::to_writer(&mut out, &row)?;
        out.push(b'\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_carry_seconds_milliseconds_and_string_fields() {
        let line = br#"{"_time":"2026-11-30T06:00:01.250Z","_msg":"a \"b\"","service":"shop","host":"h","level":"info","latency_ms":12}"#;
        let row: serde_json::Value =
            serde_json::from_slice(&to_json_each_row(line).unwrap()).unwrap();
        assert_eq!(row["time"], 1_796_018_401);
        assert_eq!(row["ms"], 250);
        assert_eq!(row["msg"], "a \"b\"");
        assert_eq!(row["latency_ms"], "12");
        assert!(
            to_json_each_row(br#"{"_time":"2026-11-30T06:00:01.250Z","_msg":"x","pid":1}"#)
                .is_err()
        );
    }
}
