//! Raw backup of what the bus sources receive (seed 001: every Kafka message kept as is in
//! S3 under `PREFIX/YYYYMMDD/<timestamp>.json`), through a local spool so that nothing is
//! lost while S3 is down.
//!
//! The path of a message: [`encode`] turns a batch into NDJSON lines — `received_ms`,
//! `source`, `topic`, `position` and the `payload` (embedded as JSON when it is JSON, else
//! as a string; `payload_base64` when it is not UTF-8) — which [`Spool::append`] writes and
//! fsyncs *before* the batch is acknowledged to its broker. The spool seals its current
//! file into `ready/<ms>.json` when it reaches `object_bytes` or is `interval` old, and
//! [`run`] uploads each sealed file to `PREFIX/YYYYMMDD/<ms>.json` (the UTC day and the
//! time of its first line) and deletes it once S3 took it, retrying with back-off while S3
//! fails. A spool above `max_spool_bytes` refuses more, which holds the bus sources back
//! (their brokers keep the messages) rather than filling the disk.
//!
//! At-least-once: a batch retried after a failed store is spooled again, and a file whose
//! upload succeeded just before a crash is uploaded again (to the same key).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::source::{Message, SourceStats, next_backoff, sleep_or_stop};

/// `backup.s3` in `dozor.yml`. Its `Debug` shows no secret.
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3BackupConfig {
    /// The bucket.
    pub bucket: String,
    /// Key prefix (seed 001's `PREFIX`).
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Endpoint of an S3-compatible service (MinIO, Ceph, Yandex Object Storage); AWS when
    /// absent.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Region.
    #[serde(default = "default_region")]
    pub region: String,
    /// Access key id (else the AWS environment and instance credentials).
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// A file holding the secret access key.
    #[serde(default)]
    pub secret_access_key_file: Option<PathBuf>,
    /// Allow `http://` endpoints (a local MinIO).
    #[serde(default)]
    pub allow_http: bool,
    /// Size at which a spool file is sealed and uploaded.
    #[serde(default = "default_object_bytes")]
    pub object_bytes: u64,
    /// Age at which a spool file is sealed and uploaded, whatever its size.
    #[serde(default = "default_interval", with = "dozor_model::duration")]
    pub interval: Duration,
    /// Most bytes waiting in the spool; above it the bus sources wait.
    #[serde(default = "default_max_spool")]
    pub max_spool_bytes: u64,
}

fn default_prefix() -> String {
    "raw".to_owned()
}
fn default_region() -> String {
    "us-east-1".to_owned()
}
fn default_object_bytes() -> u64 {
    8 << 20
}
fn default_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_max_spool() -> u64 {
    1 << 30
}

impl std::fmt::Debug for S3BackupConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3BackupConfig")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl S3BackupConfig {
    /// Checks what can be checked without S3.
    pub fn check(&self) -> Result<(), String> {
        self.target().check()?;
        if self.object_bytes < 1024 || self.max_spool_bytes < self.object_bytes {
            return Err("object_bytes must be at least 1024 and at most max_spool_bytes".into());
        }
        if self.interval < Duration::from_secs(1) {
            return Err("interval must be at least 1s".into());
        }
        Ok(())
    }

    fn store(&self) -> Result<Arc<dyn ObjectStore>, String> {
        self.target().store()
    }

    /// The bucket and how to reach it.
    fn target(&self) -> S3Target {
        S3Target {
            bucket: self.bucket.clone(),
            prefix: self.prefix.clone(),
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            access_key_id: self.access_key_id.clone(),
            secret_access_key_file: self.secret_access_key_file.clone(),
            allow_http: self.allow_http,
        }
    }

    /// The key of a spool file sealed with first line at `ms`.
    pub fn key(&self, ms: i64) -> String {
        let (y, m, d) = dozor_model::time::civil_from_days(ms.div_euclid(86_400_000));
        self.target().key(&format!("{y:04}{m:02}{d:02}/{ms}.json"))
    }
}

/// An S3 bucket and prefix to write to, and how to reach it (`logs.archive.s3`; the
/// raw backup's `backup.s3` holds the same fields beside its spool settings). Its `Debug`
/// shows no secret.
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3Target {
    /// The bucket.
    pub bucket: String,
    /// Key prefix.
    #[serde(default)]
    pub prefix: String,
    /// Endpoint of an S3-compatible service; AWS when absent.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Region.
    #[serde(default = "default_region")]
    pub region: String,
    /// Access key id (else the AWS environment and instance credentials).
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// A file holding the secret access key.
    #[serde(default)]
    pub secret_access_key_file: Option<PathBuf>,
    /// Allow `http://` endpoints (a local MinIO).
    #[serde(default)]
    pub allow_http: bool,
}

impl std::fmt::Debug for S3Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Target")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl S3Target {
    /// Checks what can be checked without S3.
    pub fn check(&self) -> Result<(), String> {
        if self.bucket.is_empty() {
            return Err("bucket is empty".into());
        }
        if self.prefix.starts_with('/') || self.prefix.contains("..") {
            return Err(format!("bad prefix {:?}", self.prefix));
        }
        Ok(())
    }

    /// The client (object_store over our hyper + rustls HTTP client).
    pub fn store(&self) -> Result<Arc<dyn ObjectStore>, String> {
        let tls = crate::probe::tls::client_config(&crate::probe::TlsSettings::default(), true)?;
        let mut b = AmazonS3Builder::from_env()
            .with_http_connector(http::Connector(tls))
            .with_bucket_name(&self.bucket)
            .with_region(&self.region)
            .with_allow_http(self.allow_http);
        if let Some(e) = &self.endpoint {
            b = b.with_endpoint(e);
        }
        if let Some(id) = &self.access_key_id {
            b = b.with_access_key_id(id);
        }
        if let Some(f) = &self.secret_access_key_file {
            b = b.with_secret_access_key(crate::source::read_secret(f)?);
        }
        Ok(Arc::new(b.build().map_err(|e| format!("S3: {e}"))?))
    }

    /// `name` under the prefix.
    pub fn key(&self, name: &str) -> String {
        match self.prefix.trim_end_matches('/') {
            "" => name.to_owned(),
            p => format!("{p}/{name}"),
        }
    }
}

/// How a raw payload's text is masked before it is kept: the masked text, or `None` when
/// it holds personal data whose action is `drop` (then only the message's metadata is kept).
pub type MaskFn<'m> = dyn Fn(&str) -> Option<std::borrow::Cow<'_, str>> + 'm;

/// NDJSON lines of a batch, one per message, payloads masked by `mask` (binary payloads,
/// kept as `payload_base64`, cannot be scanned).
pub fn encode(source: &str, msgs: &[Message<'_>], received_ms: i64, mask: &MaskFn<'_>) -> Vec<u8> {
    use std::borrow::Cow;
    let mut out = Vec::with_capacity(msgs.iter().map(|m| m.payload.len() + 96).sum());
    for m in msgs {
        let head = serde_json::json!({
            "received_ms": received_ms,
            "source": source,
            "topic": m.topic,
            "position": m.position.to_string(),
        })
        .to_string();
        out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
        let payload = m.payload.trim_ascii();
        match std::str::from_utf8(payload) {
            Ok(text) => match mask(text) {
                None => out.extend_from_slice(b",\"payload_dropped\":\"personal data\""),
                Some(masked) => {
                    let one_line = !masked.contains(['\n', '\r']);
                    let is_json =
                        one_line && serde_json::from_str::<serde::de::IgnoredAny>(&masked).is_ok();
                    out.extend_from_slice(b",\"payload\":");
                    if is_json {
                        out.extend_from_slice(masked.as_bytes());
                    } else {
                        let quoted = serde_json::Value::from(Cow::into_owned(masked)).to_string();
                        out.extend_from_slice(quoted.as_bytes());
                    }
                }
            },
            Err(_) => {
                out.extend_from_slice(b",\"payload_base64\":\"");
                out.extend_from_slice(
                    base64::engine::general_purpose::STANDARD
                        .encode(m.payload)
                        .as_bytes(),
                );
                out.push(b'"');
            }
        }
        out.extend_from_slice(b"}\n");
    }
    out
}

/// The local spool: a current file being appended to, and sealed files waiting for S3.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    object_bytes: u64,
    max_bytes: u64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    file: Option<File>,
    bytes: u64,
    opened_ms: i64,
    last_name_ms: i64,
    ready_bytes: u64,
}

const CURRENT: &str = "current.ndjson";

impl Spool {
    /// Opens the spool in `dir`: a current file left by a crash is cut after its last
    /// complete line and sealed.
    pub fn open(dir: &Path, object_bytes: u64, max_bytes: u64) -> Result<Spool, String> {
        let ready = dir.join("ready");
        std::fs::create_dir_all(&ready)
            .map_err(|e| format!("cannot create {}: {e}", ready.display()))?;
        let spool = Spool {
            dir: dir.to_owned(),
            object_bytes,
            max_bytes,
            state: Mutex::new(State::default()),
        };
        let mut st = spool.lock();
        for (path, name_ms) in spool.ready_files() {
            st.ready_bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            // Names run ahead of the clock when files are sealed faster than one a
            // millisecond: a file sealed now must not take (and overwrite) one of theirs.
            st.last_name_ms = st.last_name_ms.max(name_ms);
        }
        let current = dir.join(CURRENT);
        if current.exists() {
            let mut f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&current)
                .map_err(|e| format!("cannot open {}: {e}", current.display()))?;
            let keep = complete_lines(&mut f).map_err(|e| e.to_string())?;
            f.set_len(keep).map_err(|e| e.to_string())?;
            st.bytes = keep;
            st.opened_ms = dozor_model::time::now_ms();
            st.file = Some(f);
            spool.seal(&mut st)?;
        }
        drop(st);
        Ok(spool)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends lines and makes them durable; refuses when the spool is full.
    pub fn append(&self, lines: &[u8]) -> Result<(), String> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut st = self.lock();
        let waiting = st.ready_bytes + st.bytes;
        if waiting + lines.len() as u64 > self.max_bytes {
            return Err(format!("spool full: {waiting} bytes wait to be sent"));
        }
        if st.file.is_none() {
            let path = self.dir.join(CURRENT);
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            st.file = Some(f);
            st.bytes = 0;
            st.opened_ms = dozor_model::time::now_ms();
        }
        if let Some(f) = st.file.as_mut() {
            f.write_all(lines)
                .and_then(|()| f.sync_data())
                .map_err(|e| format!("cannot write the backup spool: {e}"))?;
        }
        st.bytes += lines.len() as u64;
        if st.bytes >= self.object_bytes {
            self.seal(&mut st)?;
        }
        Ok(())
    }

    /// Seals the current file if it is at least `age_ms` old.
    pub fn seal_older(&self, age_ms: i64) -> Result<(), String> {
        let mut st = self.lock();
        if st.file.is_some() && dozor_model::time::now_ms() - st.opened_ms >= age_ms {
            self.seal(&mut st)?;
        }
        Ok(())
    }

    fn seal(&self, st: &mut State) -> Result<(), String> {
        let Some(f) = st.file.take() else {
            return Ok(());
        };
        drop(f);
        let current = self.dir.join(CURRENT);
        if st.bytes == 0 {
            let _ = std::fs::remove_file(&current);
            return Ok(());
        }
        let name_ms = st.opened_ms.max(st.last_name_ms + 1);
        let target = self.dir.join("ready").join(format!("{name_ms}.json"));
        std::fs::rename(&current, &target)
            .map_err(|e| format!("cannot seal the backup spool: {e}"))?;
        if let Ok(d) = File::open(self.dir.join("ready")) {
            let _ = d.sync_all();
        }
        st.last_name_ms = name_ms;
        st.ready_bytes += st.bytes;
        st.bytes = 0;
        Ok(())
    }

    /// Sealed files, oldest first, with the time their name carries.
    pub fn ready_files(&self) -> Vec<(PathBuf, i64)> {
        let mut out: Vec<(PathBuf, i64)> = std::fs::read_dir(self.dir.join("ready"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let path = e.path();
                let ms = path.file_stem()?.to_str()?.parse().ok()?;
                Some((path, ms))
            })
            .collect();
        out.sort_by_key(|(_, ms)| *ms);
        out
    }

    /// Forgets a sealed file S3 took.
    pub fn uploaded(&self, path: &Path) {
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if std::fs::remove_file(path).is_ok() {
            let mut st = self.lock();
            st.ready_bytes = st.ready_bytes.saturating_sub(len);
        }
    }

    /// Bytes waiting (sealed and current).
    pub fn waiting_bytes(&self) -> u64 {
        let st = self.lock();
        st.ready_bytes + st.bytes
    }
}

/// The length of the complete lines at the start of `f`.
fn complete_lines(f: &mut File) -> std::io::Result<u64> {
    let mut buf = Vec::new();
    f.seek(SeekFrom::Start(0))?;
    f.read_to_end(&mut buf)?;
    Ok(buf
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i as u64 + 1))
}

/// Uploads sealed spool files until `stop` turns true; at stop, seals the current file and
/// makes one more pass.
pub async fn run(
    config: S3BackupConfig,
    spool: Arc<Spool>,
    stats: Arc<SourceStats>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::ZERO;
    let mut store: Option<Arc<dyn ObjectStore>> = None;
    let age_ms = i64::try_from(config.interval.as_millis()).unwrap_or(i64::MAX);
    loop {
        let stopping = *stop.borrow();
        let s = Arc::clone(&spool);
        let sealed =
            tokio::task::spawn_blocking(move || s.seal_older(if stopping { 0 } else { age_ms }))
                .await;
        if let Ok(Err(e)) = sealed {
            stats.error(&e);
        }
        match upload_ready(&config, &spool, &mut store, &stats).await {
            Ok(()) => backoff = Duration::ZERO,
            Err(e) => {
                store = None;
                stats.error(&e);
                stats.set_connected(false);
                backoff = next_backoff(backoff);
                tracing::warn!(bucket = %config.bucket, error = %e, retry_in = ?backoff, "raw backup upload failed; the spool keeps the files");
            }
        }
        let report_lag = || {
            stats
                .lag
                .store(spool.waiting_bytes(), std::sync::atomic::Ordering::Relaxed);
        };
        report_lag();
        if stopping {
            return;
        }
        // The back-off while S3 is down grows to half a minute; the spool keeps filling
        // meanwhile, so its size is reported every second, not once per attempt.
        let until = tokio::time::Instant::now()
            + if backoff.is_zero() {
                Duration::from_secs(1)
            } else {
                backoff
            };
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            // A stop ends the wait early; the next pass is the last.
            if left.is_zero() || sleep_or_stop(left.min(Duration::from_secs(1)), &mut stop).await {
                break;
            }
            report_lag();
        }
    }
}

async fn upload_ready(
    config: &S3BackupConfig,
    spool: &Spool,
    store: &mut Option<Arc<dyn ObjectStore>>,
    stats: &SourceStats,
) -> Result<(), String> {
    let ready = spool.ready_files();
    if ready.is_empty() && stats.connected.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        // Nothing to send, and S3 not known to work yet (start, or after a failure): list
        // the prefix, which checks the endpoint, the bucket and the credentials.
        let s = client(config, store)?;
        let prefix = object_store::path::Path::from(config.prefix.trim_end_matches('/'));
        tokio::time::timeout(
            Duration::from_secs(30),
            s.list_with_delimiter(Some(&prefix)),
        )
        .await
        .map_err(|_| "S3 did not answer within 30s".to_owned())?
        .map_err(|e| format!("S3: {e}"))?;
        stats.set_connected(true);
    }
    for (path, ms) in ready {
        let s = client(config, store)?;
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let len = bytes.len() as u64;
        let lines = bytes.iter().filter(|b| **b == b'\n').count() as u64;
        let key = config.key(ms);
        put(s.as_ref(), &key, bytes).await?;
        spool.uploaded(&path);
        stats.set_connected(true);
        stats.delivered(lines, len);
        tracing::debug!(%key, bytes = len, "raw backup uploaded");
    }
    Ok(())
}

/// Writes one object (timing out after a minute).
pub async fn put(store: &dyn ObjectStore, key: &str, bytes: Vec<u8>) -> Result<(), String> {
    let path = object_store::path::Path::from(key);
    tokio::time::timeout(
        Duration::from_secs(60),
        store.put(&path, PutPayload::from(bytes)),
    )
    .await
    .map_err(|_| format!("upload of {key} timed out"))?
    .map_err(|e| format!("upload of {key}: {e}"))?;
    Ok(())
}

/// The S3 client, made on first use and after a failure.
fn client(
    config: &S3BackupConfig,
    store: &mut Option<Arc<dyn ObjectStore>>,
) -> Result<Arc<dyn ObjectStore>, String> {
    if let Some(s) = store {
        return Ok(Arc::clone(s));
    }
    let s = config.store()?;
    *store = Some(Arc::clone(&s));
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg<'a>(topic: &'a str, payload: &'a [u8]) -> Message<'a> {
        Message {
            route: 0,
            topic,
            position: crate::source::Position::Delivery(3),
            payload,
        }
    }

    #[test]
    fn each_message_is_one_json_line_keeping_its_payload() {
        let keep: &MaskFn<'_> = &|t| Some(std::borrow::Cow::Borrowed(t));
        let lines = encode(
            "pipeline",
            &[
                msg("logs", br#" {"level":"error","message":"failed"} "#),
                msg("raw", b"plain text\nsecond line"),
                msg("bin", &[0xff, 0x00, 0x01]),
                msg("logs", b"{\"a\":\n1}"),
            ],
            1_796_500_000_000,
            keep,
        );
        let text = std::str::from_utf8(&lines).unwrap();
        let rows: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0]["payload"]["message"], "failed");
        assert_eq!(rows[0]["source"], "pipeline");
        assert_eq!(rows[0]["position"], "delivery 3");
        assert_eq!(rows[0]["received_ms"], 1_796_500_000_000_i64);
        assert_eq!(rows[1]["payload"], "plain text\nsecond line");
        assert_eq!(rows[2]["payload_base64"], "/wAB");
        assert_eq!(
            rows[3]["payload"], "{\"a\":\n1}",
            "JSON across lines is kept as text"
        );
    }

    #[test]
    fn payloads_are_masked_and_stay_valid_json() {
        let masker = crate::pii::Masker::new(&crate::pii::PiiConfig::default());
        let mask: &MaskFn<'_> = &|t| {
            let m = masker.mask(t, b"salt");
            (!m.drop).then_some(m.text)
        };
        let lines = encode(
            "s",
            &[
                msg("t", br#"{"message":"paid","email":"ivan.petrov@example.ru","card":"4111 1111 1111 1111"}"#),
                msg("t", b"login ivan.petrov@example.ru from 10.0.0.7"),
            ],
            0,
            mask,
        );
        let text = std::str::from_utf8(&lines).unwrap();
        assert!(!text.contains("ivan.petrov@example.ru"), "{text}");
        assert!(!text.contains("4111 1111 1111 1111"), "{text}");
        let rows: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            rows[0]["payload"]["message"], "paid",
            "still an object: {text}"
        );
        assert!(rows[1]["payload"].as_str().unwrap().starts_with("login "));
        let dropped = encode("s", &[msg("t", b"secret stuff")], 0, &|_| None);
        let row: serde_json::Value = serde_json::from_slice(&dropped).unwrap();
        assert_eq!(row["payload_dropped"], "personal data");
        assert!(row.get("payload").is_none());
    }

    #[test]
    fn keys_follow_seed_001() {
        let mut c: S3BackupConfig =
            serde_saphyr::from_str("bucket: b\nprefix: backups/raw/\n").unwrap();
        let ms = dozor_model::time::days_from_civil(2026, 12, 6) * 86_400_000 + 123;
        assert_eq!(c.key(ms), format!("backups/raw/20261206/{ms}.json"));
        c.prefix = String::new();
        assert_eq!(c.key(0), "19700101/0.json");
        assert!(c.check().is_ok());
        c.prefix = "../x".into();
        assert!(c.check().is_err());
    }

    #[test]
    fn the_spool_seals_by_size_refuses_when_full_and_recovers_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1024, 4096).unwrap();
        let line = [b'x'; 299]
            .iter()
            .copied()
            .chain([b'\n'])
            .collect::<Vec<u8>>();
        for _ in 0..4 {
            spool.append(&line).unwrap();
        }
        assert_eq!(spool.ready_files().len(), 1, "sealed at 1024 bytes");
        for _ in 0..8 {
            spool.append(&line).unwrap();
        }
        assert_eq!(spool.ready_files().len(), 3);
        let names: Vec<i64> = spool.ready_files().iter().map(|(_, ms)| *ms).collect();
        assert!(
            names.windows(2).all(|w| w[0] < w[1]),
            "unique, ordered names: {names:?}"
        );
        spool.append(&line).unwrap();
        assert_eq!(spool.waiting_bytes(), 3900);
        let err = spool.append(&line).unwrap_err();
        assert!(err.contains("full"), "{err}");
        let (first, _) = spool.ready_files()[0].clone();
        spool.uploaded(&first);
        spool.append(&line).unwrap();
        assert_eq!(spool.waiting_bytes(), 3000);
        // A crash mid-line: the next open keeps the complete lines and seals them.
        drop(spool);
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(CURRENT))
            .unwrap();
        f.write_all(b"{\"half").unwrap();
        drop(f);
        let spool = Spool::open(dir.path(), 1024, 4096).unwrap();
        let files = spool.ready_files();
        assert_eq!(files.len(), 3);
        let last = std::fs::read(&files[2].0).unwrap();
        assert_eq!(
            last,
            [line.clone(), line].concat(),
            "the partial line is cut"
        );
        assert_eq!(spool.waiting_bytes(), 3000);
    }

    /// Names run ahead of the clock when files are sealed faster than one a millisecond;
    /// the file a reopened spool seals must not take one of their names (a rename onto it
    /// would lose the file waiting there).
    #[test]
    fn a_reopened_spool_never_names_a_file_like_one_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 20, 1 << 30).unwrap();
        spool.append(b"{\"new\":1}\n").unwrap();
        drop(spool);
        // Waiting files named for every millisecond around now, as a burst of seals
        // before a crash leaves them.
        let now = dozor_model::time::now_ms();
        let names = (now - 5)..(now + 200);
        for ms in names.clone() {
            std::fs::write(
                dir.path().join("ready").join(format!("{ms}.json")),
                b"old\n",
            )
            .unwrap();
        }
        let spool = Spool::open(dir.path(), 1 << 20, 1 << 30).unwrap();
        let files = spool.ready_files();
        assert_eq!(
            files.len(),
            names.clone().count() + 1,
            "nothing overwritten"
        );
        let (last, ms) = files.last().unwrap();
        assert!(*ms >= names.end, "sealed after the waiting ones: {ms}");
        assert_eq!(std::fs::read(last).unwrap(), b"{\"new\":1}\n");
    }
}

/// object_store's HTTP client on the stack the probes use — hyper's HTTP/1.1 over
/// tokio-rustls with the ring provider and the system's roots — rather than reqwest:
/// reqwest's rustls needs either aws-lc-rs (a second crypto library to build) or a process-
/// wide default provider, which every other reqwest client in the process (and in our test
/// binaries, through feature unification) would then depend on. One connection per request:
/// the backup sends one object every few seconds.
mod http {
    use std::sync::Arc;

    use http_body_util::BodyExt;
    use hyper_util::rt::TokioIo;
    use object_store::client::{
        ClientOptions, HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest,
        HttpResponse, HttpResponseBody, HttpService,
    };

    use crate::probe::checks::{connect, tls_handshake};

    /// Connects object_store to S3 through [`Hyper`].
    #[derive(Debug, Clone)]
    pub(super) struct Connector(pub(super) Arc<rustls::ClientConfig>);

    impl HttpConnector for Connector {
        fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
            Ok(HttpClient::new(Hyper(Arc::clone(&self.0))))
        }
    }

    #[derive(Debug)]
    struct Hyper(Arc<rustls::ClientConfig>);

    fn err(kind: HttpErrorKind, message: String) -> HttpError {
        HttpError::new(kind, std::io::Error::other(message))
    }

    #[async_trait::async_trait]
    impl HttpService for Hyper {
        async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
            let (mut parts, body) = req.into_parts();
            let uri = parts.uri.clone();
            let host = uri
                .host()
                .ok_or_else(|| err(HttpErrorKind::Request, format!("no host in {uri}")))?
                .to_owned();
            let https = uri.scheme_str() == Some("https");
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            // HTTP/1.1 to an origin server: the path in the request line, the host in Host.
            let authority = uri
                .authority()
                .map(|a| a.as_str().to_owned())
                .unwrap_or_default();
            parts.uri = uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .parse()
                .map_err(|e| err(HttpErrorKind::Request, format!("{e}")))?;
            if let Ok(v) = authority.parse() {
                parts.headers.entry(hyper::header::HOST).or_insert(v);
            }
            let request = hyper::Request::from_parts(parts, body);
            let mut found = crate::probe::Findings::default();
            let tcp = connect(&host, port, &mut found)
                .await
                .map_err(|e| err(HttpErrorKind::Connect, e))?;
            let response = if https {
                let tls = tls_handshake(tcp, host.trim_matches(['[', ']']), &self.0, &mut found)
                    .await
                    .map_err(|e| err(HttpErrorKind::Connect, e))?;
                send(TokioIo::new(tls), request).await?
            } else {
                send(TokioIo::new(tcp), request).await?
            };
            let (parts, incoming) = response.into_parts();
            let body = incoming.map_err(|e| HttpError::new(HttpErrorKind::Interrupted, e));
            Ok(HttpResponse::from_parts(parts, HttpResponseBody::new(body)))
        }
    }

    async fn send<I>(
        io: I,
        request: HttpRequest,
    ) -> Result<hyper::Response<hyper::body::Incoming>, HttpError>
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| HttpError::new(HttpErrorKind::Connect, e))?;
        // The connection lives until the response body is read (or dropped).
        tokio::spawn(conn);
        sender
            .send_request(request)
            .await
            .map_err(|e| HttpError::new(HttpErrorKind::Request, e))
    }
}
