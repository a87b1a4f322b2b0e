//! `dozor.yml`: the configuration, its defaults, `DOZOR_*` environment overrides and secrets
//! read from files.
//!
//! Configuration flows raw → validated → wiring: [`Config::load`] parses YAML (unknown keys
//! are errors, every error names file, line and key), applies environment overrides, and
//! returns a [`Config`] whose every field has a value. `main.rs` then applies command-line
//! flags and wires the engines.
//!
//! Environment overrides: `DOZOR_` + the key path in capitals, levels joined by `__`:
//! `DOZOR_SERVER__LISTEN=0.0.0.0:9470`, `DOZOR_STATE__URL=postgres://…`,
//! `DOZOR_DATA_DIR=/var/lib/dozor`. Precedence: flags > environment > file > defaults.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dozor_ingest::probe::{Hidden, Probe, ProbeKind, ProbeSpec, TlsSettings};
use dozor_model::TenantId;
use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where Dozor keeps its data: state.db, audit chain, later TSDB blocks and log segments.
    pub data_dir: PathBuf,
    /// The HTTP server.
    #[serde(deserialize_with = "null_is_default")]
    pub server: ServerConfig,
    /// The state store.
    #[serde(deserialize_with = "null_is_default")]
    pub state: StateConfig,
    /// Authentication.
    #[serde(deserialize_with = "null_is_default")]
    pub auth: AuthConfig,
    /// Dozor's own logging.
    #[serde(deserialize_with = "null_is_default")]
    pub log: LogConfig,
    /// The metric store.
    #[serde(deserialize_with = "null_is_default")]
    pub tsdb: TsdbConfig,
    /// The log store.
    #[serde(deserialize_with = "null_is_default")]
    pub logs: LogsConfig,
    /// Ingest limits.
    #[serde(deserialize_with = "null_is_default")]
    pub ingest: IngestConfig,
    /// PromQL query limits.
    #[serde(deserialize_with = "null_is_default")]
    pub query: QueryConfig,
    /// Prometheus-style scrape jobs.
    #[serde(deserialize_with = "null_is_default")]
    pub scrape_configs: Vec<dozor_ingest::scrape::ScrapeConfig>,
    /// Dozor's own collectors.
    #[serde(deserialize_with = "null_is_default")]
    pub collectors: CollectorsConfig,
    /// Checks that services answer (HTTP, TLS, TCP, PostgreSQL, Redis, JSON-RPC), stored as
    /// blackbox_exporter-style metrics and read by the health routes.
    #[serde(deserialize_with = "null_is_default")]
    pub probes: Vec<ProbeConfig>,
    /// Connectors that pull logs and events in (file tail; later queues and topics).
    #[serde(deserialize_with = "null_is_default")]
    pub sources: SourcesConfig,
    /// Raw backups of what the bus sources receive.
    #[serde(deserialize_with = "null_is_default")]
    pub backup: BackupConfig,
    /// Prometheus rule files: recording and alerting rules.
    #[serde(deserialize_with = "null_is_default")]
    pub rules: RulesConfig,
    /// What Dozor publishes to other systems (Kafka topics).
    #[serde(deserialize_with = "null_is_default")]
    pub publish: PublishConfig,
    /// Notifications: Alertmanager's configuration applied to Dozor's alerts.
    #[serde(deserialize_with = "null_is_default")]
    pub alerting: AlertingConfig,
    /// What applications' audit events are kept and masked.
    #[serde(deserialize_with = "null_is_default")]
    pub audit: AuditConfig,
    /// Service ownership: which services each developer sees.
    #[serde(deserialize_with = "null_is_default")]
    pub access: AccessConfig,
    /// The AI subsystem's optional language model.
    #[serde(deserialize_with = "null_is_default")]
    pub ai: AiConfig,
    /// Service-level objectives: recorded error ratios, burn-rate alerts, `/api/v1/slos`.
    pub slos: Vec<SloConfig>,
    /// The cash-register pack (54-FZ): driver logs, the fleet's metrics, OFD polls, rules.
    #[serde(deserialize_with = "null_is_default")]
    pub kkt: KktConfig,
}

/// `alerting:`: where notifications go.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertingConfig {
    /// An `alertmanager.yml` (relative to this file): its routes and receivers notify about
    /// the default tenant's alerts. None: the default tenant's alerts and silences work
    /// through the API, and nothing is sent.
    pub config_file: Option<PathBuf>,
    /// Other tenants' `alertmanager.yml` files, by tenant id.
    pub tenants: std::collections::BTreeMap<String, PathBuf>,
    /// Incidents opened from alert groups.
    #[serde(deserialize_with = "null_is_default")]
    pub incidents: IncidentsConfig,
    /// Automatic actions (seed 002): HTTP calls or local commands run for matching alerts.
    pub actions: Vec<dozor_alerting::action::ActionConfig>,
    /// Escalation policies (seed 003): stages of receivers a group climbs until acknowledged.
    pub escalations: Vec<dozor_alerting::escalation::EscalationConfig>,
    /// On-call rotations, which escalation stages name as `oncall:<name>`.
    pub oncall: Vec<dozor_alerting::oncall::RotationConfig>,
    /// Slack's interactive buttons.
    #[serde(deserialize_with = "null_is_default")]
    pub slack: SlackInteractions,
    /// Telegram's inline buttons.
    #[serde(deserialize_with = "null_is_default")]
    pub telegram: TelegramInteractions,
}

/// `alerting.slack`: with a signing secret, Slack messages carry Acknowledge and Resolve
/// buttons, and `/api/v1/integrations/slack/interactions` takes the presses.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackInteractions {
    /// A file holding the Slack app's signing secret.
    pub signing_secret_file: Option<PathBuf>,
}

/// `alerting.telegram`: with a webhook secret, Telegram messages carry an Acknowledge
/// button, and `/api/v1/integrations/telegram` takes the bot's updates.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelegramInteractions {
    /// A file holding the `secret_token` given to Telegram's `setWebhook`.
    pub webhook_secret_file: Option<PathBuf>,
}

/// `alerting.incidents`: which alert groups open incidents.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct IncidentsConfig {
    /// Whether alert groups open incidents at all.
    pub enabled: bool,
    /// The alerts that open one (Alertmanager's matcher syntax).
    #[serde(rename = "match")]
    pub selector: String,
    /// When a new incident's context is collected again, so it holds the logs and
    /// metrics of the minutes after the alert too (`0s`: only once, at opening).
    #[serde(with = "dozor_model::duration")]
    pub recollect_after: Duration,
}

impl Default for IncidentsConfig {
    fn default() -> IncidentsConfig {
        IncidentsConfig {
            enabled: true,
            selector: r#"severity="critical""#.into(),
            recollect_after: Duration::from_secs(600),
        }
    }
}

impl AlertingConfig {
    /// Every configured file with its tenant (the default tenant's first).
    pub fn files(&self) -> Vec<(String, PathBuf)> {
        self.config_file
            .iter()
            .map(|f| (TenantId::default_tenant().as_str().to_owned(), f.clone()))
            .chain(self.tenants.iter().map(|(t, f)| (t.clone(), f.clone())))
            .collect()
    }
}

/// `publish:`: producers by kind.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PublishConfig {
    /// Kafka producers (`dozor_ingest::kafka_out`): forwarding, alerts, metric updates.
    pub kafka: Vec<dozor_ingest::kafka_out::KafkaPublishConfig>,
}

impl PublishConfig {
    /// Each producer's own checks, unique names, and its selectors and queries parsed.
    pub fn check(&self) -> Result<(), ConfigError> {
        let err = |message: String| ConfigError {
            key: Some("publish.kafka".into()),
            ..ConfigError::plain(message)
        };
        let mut names = std::collections::HashSet::new();
        for c in &self.kafka {
            if !names.insert(c.name.as_str()) {
                return Err(err(format!("name {:?} appears twice", c.name)));
            }
            c.check().map_err(err)?;
            for (i, a) in c.alerts.iter().enumerate() {
                if let Some(s) = &a.selector {
                    stream_selector(s)
                        .map_err(|e| err(format!("{}: alerts[{i}].match: {e}", c.name)))?;
                }
            }
            for (name, q) in c.metrics.iter().flat_map(|m| &m.queries) {
                dozor_model::Labels::from_pairs([("__name__", name.as_str())])
                    .map_err(|e| err(format!("{}: metrics.queries.{name}: {e}", c.name)))?;
                dozor_promql::parse(q)
                    .map_err(|e| err(format!("{}: metrics.queries.{name}: {e}", c.name)))?;
            }
        }
        Ok(())
    }
}

/// `rules:`: Prometheus rule files and how they are evaluated.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Interval of the groups that set none (Prometheus' `evaluation_interval`).
    #[serde(with = "dozor_model::duration")]
    pub evaluation_interval: Duration,
    /// Rule files (globs) of the default tenant; relative paths are taken from the
    /// configuration file's directory; `pack:<name>` is a pack shipped with Dozor
    /// (`pack:pipeline`: seed 001's rules).
    pub files: Vec<String>,
    /// Rule files of other tenants, by tenant.
    pub tenants: BTreeMap<String, Vec<String>>,
    /// Labels templates see as `$externalLabels`.
    pub external_labels: BTreeMap<String, String>,
    /// The URL templates see as `$externalURL`.
    pub external_url: String,
}

impl Default for RulesConfig {
    fn default() -> RulesConfig {
        RulesConfig {
            evaluation_interval: Duration::from_secs(60),
            files: Vec::new(),
            tenants: BTreeMap::new(),
            external_labels: BTreeMap::new(),
            external_url: String::new(),
        }
    }
}

impl RulesConfig {
    /// Every group of every rule file, with its tenant; an error names the file, line,
    /// group and rule of the first problem (`dozor check rules FILE` lists them all).
    pub fn groups(&self) -> Result<Vec<(TenantId, dozor_rules::RuleGroup)>, ConfigError> {
        let err = |message: String| ConfigError {
            key: Some("rules".into()),
            ..ConfigError::plain(message)
        };
        let mut out = Vec::new();
        let default = TenantId::default_tenant();
        let lists = std::iter::once((default, &self.files)).chain(
            self.tenants
                .iter()
                .map(|(t, files)| {
                    Ok((
                        t.parse().map_err(|e| err(format!("tenant {t:?}: {e}")))?,
                        files,
                    ))
                })
                .collect::<Result<Vec<_>, ConfigError>>()?,
        );
        for (tenant, patterns) in lists {
            for pattern in patterns {
                if let Some(name) = pattern.strip_prefix(dozor_rules::packs::PREFIX) {
                    let groups = dozor_rules::packs::parse(name)
                        .ok_or_else(|| {
                            err(format!(
                                "no rule pack {name:?}; shipped packs: {}",
                                dozor_rules::packs::PACKS.map(|(n, _)| n).join(", ")
                            ))
                        })?
                        .map_err(|errors| err(errors[0].to_string()))?;
                    out.extend(groups.into_iter().map(|g| (tenant.clone(), g)));
                    continue;
                }
                let paths = glob::glob(pattern)
                    .map_err(|e| err(format!("bad rule file pattern {pattern:?}: {e}")))?;
                let mut paths: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
                if paths.is_empty() {
                    return Err(err(format!("no rule file matches {pattern:?}")));
                }
                paths.sort();
                for p in paths {
                    let groups = dozor_rules::file::load_file(&p).map_err(|errors| {
                        let more = match errors.len() {
                            1 => String::new(),
                            n => format!(" (and {} more; see `dozor check rules`)", n - 1),
                        };
                        err(format!("{}{more}", errors[0]))
                    })?;
                    out.extend(groups.into_iter().map(|g| (tenant.clone(), g)));
                }
            }
        }
        Ok(out)
    }

    /// Makes relative rule-file patterns relative to `dir` (the configuration file's).
    fn resolve_paths(&mut self, dir: &Path) {
        for p in self
            .files
            .iter_mut()
            .chain(self.tenants.values_mut().flatten())
        {
            if Path::new(p.as_str()).is_relative() && !p.starts_with(dozor_rules::packs::PREFIX) {
                *p = dir.join(&*p).display().to_string();
            }
        }
    }
}

/// `backup:`: where raw bus messages are copied.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupConfig {
    /// Every message the bus sources receive, as NDJSON objects in S3
    /// (`dozor_ingest::backup`).
    pub s3: Option<dozor_ingest::backup::S3BackupConfig>,
}

/// `sources:`: connectors by kind.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourcesConfig {
    /// Tailed log files (`dozor_ingest::tail`).
    pub files: Vec<dozor_ingest::tail::FileSourceConfig>,
    /// Kafka consumer groups (`dozor_ingest::kafka`).
    pub kafka: Vec<dozor_ingest::kafka::KafkaConfig>,
    /// RabbitMQ queues consumed and watched (`dozor_ingest::rabbitmq`).
    pub rabbitmq: Vec<dozor_ingest::rabbitmq::RabbitConfig>,
    /// MQTT topic filters (`dozor_ingest::mqtt`).
    pub mqtt: Vec<dozor_ingest::mqtt::MqttConfig>,
    /// NATS JetStream subjects (`dozor_ingest::nats`).
    pub nats: Vec<dozor_ingest::nats::NatsConfig>,
}

impl SourcesConfig {
    /// Checks the bus sources: each one's own checks, and names unique within a kind.
    pub fn check_bus(&self) -> Result<(), ConfigError> {
        fn each<T>(
            key: &str,
            items: &[T],
            name: impl Fn(&T) -> &str,
            check: impl Fn(&T) -> Result<(), String>,
        ) -> Result<(), ConfigError> {
            let err = |message: String| ConfigError {
                key: Some(format!("sources.{key}")),
                ..ConfigError::plain(message)
            };
            let mut names = std::collections::HashSet::new();
            for item in items {
                if !names.insert(name(item)) {
                    return Err(err(format!("name {:?} appears twice", name(item))));
                }
                check(item).map_err(err)?;
            }
            Ok(())
        }
        each("kafka", &self.kafka, |c| &c.name, |c| c.check())?;
        each("rabbitmq", &self.rabbitmq, |c| &c.name, |c| c.check())?;
        each("mqtt", &self.mqtt, |c| &c.name, |c| c.check())?;
        each("nats", &self.nats, |c| &c.name, |c| c.check())
    }
}

/// One `probes:` entry. Fields beyond the common ones belong to one kind each; a field
/// given for another kind is an error. Its `Debug` hides the password of a target URL.
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Unique name (the `probe` label).
    pub name: String,
    /// `http`, `tcp`, `tls`, `postgres`, `redis` or `jsonrpc`.
    pub kind: ProbeKind,
    /// `http(s)://…` for http and jsonrpc, `postgres://user@host:port/db` for postgres,
    /// `host:port` for tcp, tls and redis.
    pub target: String,
    /// The logical service (the `service` label; the health routes group by it); default:
    /// the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// How often to check.
    #[serde(default = "default_probe_interval", with = "dozor_model::duration")]
    pub interval: Duration,
    /// Give up on a check after this long.
    #[serde(default = "default_probe_timeout", with = "dozor_model::duration")]
    pub timeout: Duration,
    /// Listed by `GET /api/v1/health/dependencies`; default: true for postgres and redis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependency: Option<bool>,
    /// The tenant the samples and statuses belong to.
    #[serde(default = "TenantId::default_tenant")]
    pub tenant: TenantId,
    /// postgres, redis: the password (inline or `{file: PATH}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// http, jsonrpc: sent as `Authorization: Bearer …`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<Secret>,
    /// http: status codes that count as success (default: any 2xx).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected_status: Vec<u16>,
    /// http: a regex the body must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_regex: Option<String>,
    /// http, jsonrpc (https URLs) and tls: `ca_file`, `insecure_skip_verify`,
    /// `server_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSettings>,
    /// jsonrpc: the method to call (`getHealth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// jsonrpc: its params (default `[]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<serde_json::Value>,
    /// jsonrpc: the result that counts as success (default: any result without `error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_result: Option<serde_json::Value>,
}

impl fmt::Debug for ProbeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("target", &dozor_ingest::probe::display_target(&self.target))
            .field("service", &self.service)
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("dependency", &self.dependency)
            .field("tenant", &self.tenant)
            .field("password", &self.password)
            .field("bearer_token", &self.bearer_token)
            .field("expected_status", &self.expected_status)
            .field("body_regex", &self.body_regex)
            .field("tls", &self.tls)
            .field("method", &self.method)
            .field("params", &self.params)
            .field("expected_result", &self.expected_result)
            .finish()
    }
}

fn default_probe_interval() -> Duration {
    dozor_ingest::probe::DEFAULT_INTERVAL
}

fn default_probe_timeout() -> Duration {
    dozor_ingest::probe::DEFAULT_TIMEOUT
}

impl ProbeConfig {
    /// The probe's spec; secrets are read only when `reveal` (otherwise a placeholder keeps
    /// their presence for checking).
    fn spec(&self, reveal: bool) -> Result<ProbeSpec, ConfigError> {
        let secret = |s: &Option<Secret>| -> Result<Option<Hidden>, ConfigError> {
            match s {
                None => Ok(None),
                Some(_) if !reveal => Ok(Some(Hidden::new(""))),
                Some(s) => s.reveal().map(|v| Some(Hidden::new(v))),
            }
        };
        Ok(ProbeSpec {
            name: self.name.clone(),
            service: self.service.clone().unwrap_or_else(|| self.name.clone()),
            kind: self.kind,
            target: self.target.clone(),
            interval: self.interval,
            timeout: self.timeout,
            dependency: self
                .dependency
                .unwrap_or_else(|| self.kind.is_dependency_by_default()),
            tenant: self.tenant.clone(),
            password: secret(&self.password)?,
            bearer_token: secret(&self.bearer_token)?,
            expected_status: self.expected_status.clone(),
            body_regex: self.body_regex.clone(),
            tls: self.tls.clone(),
            method: self.method.clone(),
            params: self.params.clone(),
            expected_result: self.expected_result.clone(),
        })
    }
}

/// `collectors:`: metrics Dozor gathers itself.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorsConfig {
    /// Store Dozor's own metrics (`job="dozor"`) in the default tenant.
    pub self_metrics: bool,
    /// Store this host's CPU, memory, load, disk and network metrics under node_exporter's
    /// names (`job="node"`) in the default tenant.
    pub host: bool,
    /// How often both collect.
    #[serde(with = "dozor_model::duration")]
    pub interval: Duration,
}

impl Default for CollectorsConfig {
    fn default() -> CollectorsConfig {
        CollectorsConfig {
            self_metrics: true,
            host: true,
            interval: Duration::from_secs(15),
        }
    }
}

/// `tsdb:`: where and how long metrics are kept.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TsdbConfig {
    /// Delete data older than this (`0s`: keep forever).
    #[serde(with = "dozor_model::duration")]
    pub retention: Duration,
    /// Delete the oldest blocks while all blocks together exceed this many bytes (0: no limit).
    pub retention_bytes: u64,
    /// Time range of one block cut from memory.
    #[serde(with = "dozor_model::duration")]
    pub block_duration: Duration,
    /// How far behind a series' newest sample an older one is still accepted.
    #[serde(with = "dozor_model::duration")]
    pub out_of_order_window: Duration,
    /// When the WAL is synced to disk: `always` (before every acknowledgement), `interval`
    /// (every `fsync_interval`) or `never` (left to the OS). Every policy survives a crash of
    /// the process; they differ for a crash of the machine.
    pub fsync: FsyncMode,
    /// The interval of `fsync: interval`.
    #[serde(with = "dozor_model::duration")]
    pub fsync_interval: Duration,
    /// Keep 1-minute, 5-minute, 1-hour and 1-day aggregates (min, max, sum, count, last)
    /// of data whose compaction is final; long-range queries read them instead of raw
    /// samples.
    pub downsample: bool,
    /// Delete 1-minute aggregates older than this (`0s`: keep forever).
    #[serde(with = "dozor_model::duration")]
    pub retention_1m: Duration,
    /// Delete 5-minute aggregates older than this (`0s`: keep forever).
    #[serde(with = "dozor_model::duration")]
    pub retention_5m: Duration,
    /// Delete 1-hour aggregates older than this (`0s`: keep forever).
    #[serde(with = "dozor_model::duration")]
    pub retention_1h: Duration,
    /// Delete 1-day aggregates older than this (`0s`, the default: keep forever).
    #[serde(with = "dozor_model::duration")]
    pub retention_1d: Duration,
}

/// `logs:`: how long logs are kept and how they are masked.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// Delete days of logs older than this (`0s`: keep forever).
    #[serde(with = "dozor_model::duration")]
    pub retention: Duration,
    /// Write the in-memory head into parts at least this often.
    #[serde(with = "dozor_model::duration")]
    pub flush_interval: Duration,
    /// PII masking before storage, per kind: `mask` (the default), `hash`, `drop` or
    /// `keep`, e.g. `pii: {actions: {ipv4: keep, email: hash}}`.
    pub pii: dozor_ingest::pii::PiiConfig,
    /// Syslog listeners (RFC 5424 and 3164).
    pub syslog: SyslogConfig,
    /// Parsing rules by stream (`match`, `parse: json|logfmt|regex`, `regex`, `message`,
    /// `time`, `level`); levels are normalised for every record whatever the rules.
    pub pipeline: Vec<dozor_ingest::pipeline::RuleConfig>,
    /// Hot/warm/cold retention tiers (none: `retention` alone decides).
    pub tiers: Option<TiersConfig>,
    /// When the volume holding the data directory is fuller than this fraction, the oldest
    /// hot logs are moved to warm early, then the oldest days deleted (never today's, never
    /// the audit chain). `1` turns it off.
    pub watermark: f64,
    /// A file holding the AES-256-GCM key log parts are encrypted with (32 raw bytes, 64
    /// hex characters or base64); none: parts are not encrypted. The WAL stays plaintext.
    pub encryption_key_file: Option<PathBuf>,
    /// Where days that reached the cold tier are archived as Parquet (needs `tiers.cold`).
    pub archive: Option<ArchiveConfig>,
}

pub(crate) use dozor_logs::logql::stream_selector;

/// `logs.tiers`: seed 002's hot/warm/cold policy.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TiersConfig {
    /// Days younger than this keep every record.
    #[serde(with = "dozor_model::duration")]
    pub hot: Duration,
    /// Until when, and which records, days stay warm.
    #[serde(default)]
    pub warm: Option<TierConfig>,
    /// Until when, and which records, days stay cold.
    #[serde(default)]
    pub cold: Option<TierConfig>,
    /// Whether warm and cold days keep per-minute line counts of every stream.
    #[serde(default = "yes")]
    pub aggregates: bool,
}

fn yes() -> bool {
    true
}

/// `logs.archive`: the cold tier's copy in S3.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    /// The bucket and prefix (`<prefix>/<tenant>/<YYYY-MM-DD>.parquet`).
    pub s3: dozor_ingest::backup::S3Target,
    /// How often cold days are looked for.
    #[serde(default = "default_archive_interval", with = "dozor_model::duration")]
    pub interval: Duration,
}

fn default_archive_interval() -> Duration {
    Duration::from_secs(600)
}

/// One tier below hot.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TierConfig {
    /// Days older than this leave the tier.
    #[serde(with = "dozor_model::duration")]
    pub until: Duration,
    /// Stream selectors of what the tier keeps (any of them).
    pub keep: Vec<String>,
}

/// `logs.syslog`: where syslog is received, and for which tenant.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyslogConfig {
    /// UDP address, e.g. `0.0.0.0:514` (none: no UDP listener).
    pub udp: Option<SocketAddr>,
    /// TCP address (octet counting or newline framing; none: no TCP listener).
    pub tcp: Option<SocketAddr>,
    /// The tenant received messages belong to.
    pub tenant: TenantId,
}

impl Default for SyslogConfig {
    fn default() -> SyslogConfig {
        SyslogConfig {
            udp: None,
            tcp: None,
            tenant: TenantId::default_tenant(),
        }
    }
}

impl Default for LogsConfig {
    fn default() -> LogsConfig {
        LogsConfig {
            retention: Duration::from_secs(30 * 24 * 3600),
            flush_interval: Duration::from_secs(60),
            pii: dozor_ingest::pii::PiiConfig::default(),
            syslog: SyslogConfig::default(),
            pipeline: Vec::new(),
            tiers: None,
            watermark: 0.8,
            encryption_key_file: None,
            archive: None,
        }
    }
}

impl LogsConfig {
    /// The retention tiers, selectors parsed; an error names the bad one.
    pub fn tiers(&self) -> Result<Option<dozor_logs::tiers::Tiers>, String> {
        let Some(t) = &self.tiers else {
            return Ok(None);
        };
        let tier = |name: &str,
                    c: &Option<TierConfig>,
                    after: Duration|
         -> Result<Option<dozor_logs::tiers::Tier>, String> {
            let Some(c) = c else { return Ok(None) };
            if c.until <= after {
                return Err(format!(
                    "logs.tiers.{name}.until must be longer than the tier before it"
                ));
            }
            let keep = c
                .keep
                .iter()
                .map(|sel| stream_selector(sel).map_err(|e| format!("logs.tiers.{name}.keep: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(dozor_logs::tiers::Tier {
                until: c.until,
                keep,
            }))
        };
        let warm = tier("warm", &t.warm, t.hot)?;
        let cold = tier("cold", &t.cold, warm.as_ref().map_or(t.hot, |w| w.until))?;
        Ok(Some(dozor_logs::tiers::Tiers {
            hot: t.hot,
            warm,
            cold,
            aggregates: t.aggregates,
        }))
    }

    /// The engine's options; the WAL is synced as `tsdb.fsync` says.
    pub fn options(&self, tsdb: &TsdbConfig) -> dozor_logs::Options {
        dozor_logs::Options {
            fsync: tsdb.options().fsync,
            flush_interval: self.flush_interval.max(Duration::from_secs(1)),
            retention: (!self.retention.is_zero()).then_some(self.retention),
            ..dozor_logs::Options::default()
        }
    }
}

/// `tsdb.fsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncMode {
    /// Before every acknowledgement.
    Always,
    /// Every `fsync_interval`.
    Interval,
    /// Left to the OS.
    Never,
}

impl Default for TsdbConfig {
    fn default() -> TsdbConfig {
        TsdbConfig {
            retention: Duration::from_secs(15 * 24 * 3600),
            retention_bytes: 0,
            block_duration: Duration::from_secs(2 * 3600),
            out_of_order_window: Duration::from_secs(10 * 60),
            fsync: FsyncMode::Interval,
            fsync_interval: Duration::from_secs(1),
            downsample: true,
            retention_1m: Duration::from_secs(30 * 24 * 3600),
            retention_5m: Duration::from_secs(60 * 24 * 3600),
            retention_1h: Duration::from_secs(365 * 24 * 3600),
            retention_1d: Duration::ZERO,
        }
    }
}

impl TsdbConfig {
    /// The engine's options.
    pub fn options(&self) -> dozor_tsdb::Options {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        dozor_tsdb::Options {
            block_duration_ms: ms(self.block_duration).max(60_000),
            out_of_order_window_ms: ms(self.out_of_order_window),
            retention_ms: (!self.retention.is_zero()).then(|| ms(self.retention)),
            retention_bytes: (self.retention_bytes > 0).then_some(self.retention_bytes),
            fsync: match self.fsync {
                FsyncMode::Always => dozor_tsdb::FsyncPolicy::Always,
                FsyncMode::Interval => dozor_tsdb::FsyncPolicy::Interval(self.fsync_interval),
                FsyncMode::Never => dozor_tsdb::FsyncPolicy::Never,
            },
            downsample: self.downsample,
            retention_1m_ms: (!self.retention_1m.is_zero()).then(|| ms(self.retention_1m)),
            retention_5m_ms: (!self.retention_5m.is_zero()).then(|| ms(self.retention_5m)),
            retention_1h_ms: (!self.retention_1h.is_zero()).then(|| ms(self.retention_1h)),
            retention_1d_ms: (!self.retention_1d.is_zero()).then(|| ms(self.retention_1d)),
        }
    }
}

/// `ingest:`: per-request limits and concurrency of the ingest endpoints.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Ingest requests served at once; more are answered 429 with `Retry-After`.
    pub max_concurrent_requests: usize,
    /// Most series in one request.
    pub max_series_per_request: usize,
    /// Most samples in one request.
    pub max_samples_per_request: usize,
    /// Largest decompressed remote_write body, bytes.
    pub max_decoded_bytes: usize,
}

impl Default for IngestConfig {
    fn default() -> IngestConfig {
        let d = dozor_ingest::Limits::default();
        IngestConfig {
            max_concurrent_requests: 16,
            max_series_per_request: d.max_series,
            max_samples_per_request: d.max_samples,
            max_decoded_bytes: d.max_decoded_bytes,
        }
    }
}

impl IngestConfig {
    /// The decoders' limits.
    pub fn limits(&self) -> dozor_ingest::Limits {
        dozor_ingest::Limits {
            max_decoded_bytes: self.max_decoded_bytes,
            max_series: self.max_series_per_request,
            max_samples: self.max_samples_per_request,
        }
    }
}

/// `query:`: limits and defaults of PromQL queries (`/api/v1/query`, `/api/v1/query_range`,
/// the Grafana routes), as Prometheus' `--query.*` flags.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// Most samples one query may hold in memory at once; more is an `execution` error.
    pub max_samples: usize,
    /// Longest a query may run; a request's `timeout` parameter can only lower it.
    #[serde(with = "dozor_model::duration")]
    pub timeout: Duration,
    /// How far back an instant selector looks for a sample; a request's `lookback_delta`
    /// parameter overrides it.
    #[serde(with = "dozor_model::duration")]
    pub lookback_delta: Duration,
}

impl Default for QueryConfig {
    fn default() -> QueryConfig {
        let d = dozor_api::QueryLimits::default();
        QueryConfig {
            max_samples: d.max_samples,
            timeout: d.timeout,
            lookback_delta: Duration::from_millis(d.lookback_ms.unsigned_abs()),
        }
    }
}

impl QueryConfig {
    /// The engine's limits.
    pub fn limits(&self) -> dozor_api::QueryLimits {
        dozor_api::QueryLimits {
            max_samples: self.max_samples.max(1),
            timeout: self.timeout,
            lookback_ms: i64::try_from(self.lookback_delta.as_millis())
                .unwrap_or(i64::MAX)
                .max(1),
            ..dozor_api::QueryLimits::default()
        }
    }
}

/// `server:`: the HTTP listener.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// How long to wait for in-flight requests at shutdown before giving up.
    #[serde(with = "dozor_model::duration")]
    pub shutdown_grace: Duration,
    /// Who may read `/metrics` and `/api/v1/metrics/export` besides token holders.
    pub metrics_access: MetricsAccessConfig,
    /// HTTPS: the certificate and key files (reloaded when they change). Absent: HTTP.
    pub tls: Option<TlsConfig>,
    /// Requests a second per user or API token; more get 429 with `Retry-After`.
    pub rate_limit: RateLimitConfig,
    /// Peers (CIDR ranges) whose `X-Scope-OrgID` header sets a request's tenant; from
    /// anyone else the header may only name the caller's own tenant.
    pub trusted_proxies: Vec<String>,
}

/// `server.tls:`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first (relative to the configuration file).
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// How often the files are checked for a renewal (default 1m).
    #[serde(with = "dozor_model::duration", default = "TlsConfig::default_check")]
    pub check_every: Duration,
}

impl TlsConfig {
    fn default_check() -> Duration {
        Duration::from_secs(60)
    }

    /// The API's form.
    pub fn files(&self) -> dozor_api::tls::TlsFiles {
        dozor_api::tls::TlsFiles {
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
            check_every: self.check_every,
        }
    }
}

/// `server.rate_limit:`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Sustained requests a second per principal; 0: no limit.
    pub requests_per_second: u32,
    /// Requests at once after a quiet spell (default and minimum: `requests_per_second`).
    pub burst: u32,
}

/// Parses a list of CIDR ranges (a bare address is one host); errors name `key[i]`.
fn parse_ranges(list: &[String], key: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, a)| {
            let a = a.trim();
            a.parse::<ipnet::IpNet>()
                .or_else(|_| a.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| ConfigError {
                    key: Some(format!("{key}[{i}]")),
                    ..ConfigError::plain(format!("{a:?} is not an address or a CIDR range"))
                })
        })
        .collect()
}

impl ServerConfig {
    /// The API's transport settings.
    pub fn transport(&self) -> Result<dozor_api::transport::Transport, ConfigError> {
        Ok(dozor_api::transport::Transport {
            https: self.tls.is_some(),
            rate_limit: dozor_api::transport::RateLimit {
                per_second: self.rate_limit.requests_per_second,
                burst: self.rate_limit.burst,
            },
            trusted_proxies: parse_ranges(&self.trusted_proxies, "server.trusted_proxies")?,
        })
    }
}

/// `slos[]:` one service-level objective over two counters.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SloConfig {
    /// Its name.
    pub name: String,
    /// The target, in percent of good events (`99.9`).
    pub objective: f64,
    /// The counter of bad events (a series selector).
    pub errors: String,
    /// The counter of all events (a series selector).
    pub total: String,
    /// The budget's period (default 30 days).
    #[serde(with = "dozor_model::duration", default = "SloConfig::default_window")]
    pub window: Duration,
    /// The tenant whose data it reads (default `default`).
    #[serde(default)]
    pub tenant: Option<String>,
}

impl SloConfig {
    fn default_window() -> Duration {
        Duration::from_secs(30 * 86_400)
    }

    /// The checked SLO and its tenant; errors name `slos[i].<field>`.
    pub fn slo(&self, i: usize) -> Result<(TenantId, dozor_rules::slo::Slo), ConfigError> {
        let err = |message: String| ConfigError {
            key: Some(format!("slos[{i}]")),
            ..ConfigError::plain(message)
        };
        let days = self.window.as_secs() / 86_400;
        if !self.window.as_secs().is_multiple_of(86_400) {
            return Err(err("window: whole days".into()));
        }
        let slo = dozor_rules::slo::Slo {
            name: self.name.clone(),
            objective: self.objective / 100.0,
            errors: self.errors.clone(),
            total: self.total.clone(),
            window_days: u32::try_from(days).unwrap_or(0),
        };
        slo.check().map_err(err)?;
        let tenant = match &self.tenant {
            None => TenantId::default_tenant(),
            Some(t) => t.parse().map_err(|e| err(format!("tenant: {e}")))?,
        };
        Ok((tenant, slo))
    }
}

/// Every SLO, checked, with its tenant.
pub fn slos(list: &[SloConfig]) -> Result<Vec<(TenantId, dozor_rules::slo::Slo)>, ConfigError> {
    list.iter().enumerate().map(|(i, s)| s.slo(i)).collect()
}

/// The rule groups of the SLOs, per tenant.
pub fn slo_groups(
    list: &[(TenantId, dozor_rules::slo::Slo)],
) -> Result<Vec<(TenantId, dozor_rules::RuleGroup)>, ConfigError> {
    let mut out = Vec::new();
    for (tenant, slo) in list {
        let text = dozor_rules::slo::rule_file(std::slice::from_ref(slo));
        let groups =
            dozor_rules::file::parse(&text, &format!("slo:{}", slo.name)).map_err(|errors| {
                ConfigError {
                    key: Some("slos".into()),
                    ..ConfigError::plain(errors[0].to_string())
                }
            })?;
        out.extend(groups.into_iter().map(|g| (tenant.clone(), g)));
    }
    Ok(out)
}

/// `kkt:`: the cash-register pack (`dozor_kkt`). Driver log lines are records of the log
/// stream `stream` (from any source: the files of `logs`, a Kafka topic, syslog…); they are
/// stored like any log line and, once stored, update the fleet, whose metrics are written
/// every `interval`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KktConfig {
    /// Whether the pack runs.
    pub enabled: bool,
    /// The tenant whose records are read and whose metrics, rules and API it serves.
    pub tenant: TenantId,
    /// Stream labels of the driver log: records with all of them are driver events.
    pub stream: BTreeMap<String, String>,
    /// Driver log files tailed into `stream` (a file source named `kkt`).
    pub logs: Vec<String>,
    /// The registers' clock offset from UTC (tag 1012 is local time), unless a line says.
    pub utc_offset: String,
    /// A register not heard from for this long is down.
    #[serde(with = "dozor_model::duration")]
    pub down_after: Duration,
    /// How often the fleet's metrics are stored.
    #[serde(with = "dozor_model::duration")]
    pub interval: Duration,
    /// At start, the fleet is rebuilt from this much of the stored driver log (a shift
    /// lasts at most 24 h; FN, queue and register state come with every status report), so
    /// a restart forgets no open shift (`0s`: start empty).
    #[serde(with = "dozor_model::duration")]
    pub restore: Duration,
    /// Whether to evaluate the shipped rules (`crates/kkt/rules/kkt-54fz.yml`).
    pub rules: bool,
    /// Labels on every series of the fleet and on the driver log's stream, and what scoped
    /// roles are judged by (`service`, `data_class`).
    pub labels: BTreeMap<String, String>,
    /// OFD APIs to poll.
    pub ofd: Vec<OfdConfig>,
}

impl Default for KktConfig {
    fn default() -> KktConfig {
        KktConfig {
            enabled: false,
            tenant: TenantId::default_tenant(),
            stream: BTreeMap::from([("job".to_owned(), "kkt".to_owned())]),
            logs: Vec::new(),
            utc_offset: "+03:00".to_owned(),
            down_after: Duration::from_secs(300),
            interval: Duration::from_secs(15),
            restore: Duration::from_secs(26 * 3600),
            rules: true,
            labels: BTreeMap::from([
                ("service".to_owned(), "kkt".to_owned()),
                ("data_class".to_owned(), "business".to_owned()),
            ]),
            ofd: Vec::new(),
        }
    }
}

/// `kkt.ofd[]`: one OFD API.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OfdConfig {
    /// Its name: the `ofd` label.
    pub name: String,
    /// `ofdru`, `taxcom` or `neutral`.
    pub dialect: dozor_kkt::ofd::Dialect,
    /// Base URL.
    pub url: String,
    /// The organisation's INN (ofdru).
    #[serde(default)]
    pub inn: Option<String>,
    /// Taxcom's `Integrator-ID`.
    #[serde(default)]
    pub integrator_id: Option<Secret>,
    /// Login (ofdru, taxcom) or basic-auth user (neutral).
    #[serde(default)]
    pub login: Option<String>,
    /// Its password.
    #[serde(default)]
    pub password: Option<Secret>,
    /// A bearer token (neutral).
    #[serde(default)]
    pub bearer_token: Option<Secret>,
    /// How often to poll (default 5m).
    #[serde(with = "dozor_model::duration", default = "OfdConfig::default_poll")]
    pub poll_interval: Duration,
    /// Deadline of each call (default 10s).
    #[serde(with = "dozor_model::duration", default = "OfdConfig::default_timeout")]
    pub timeout: Duration,
}

impl OfdConfig {
    fn default_poll() -> Duration {
        Duration::from_secs(300)
    }

    fn default_timeout() -> Duration {
        Duration::from_secs(10)
    }
}

impl KktConfig {
    /// The LogQL selector of the driver log's stream (`{job="kkt"}`), `None` without one.
    pub fn selector(&self) -> Option<String> {
        if self.stream.is_empty() {
            return None;
        }
        let pairs: Vec<String> = self
            .stream
            .iter()
            .map(|(k, v)| format!("{k}={}", serde_json::Value::from(v.as_str())))
            .collect();
        Some(format!("{{{}}}", pairs.join(", ")))
    }

    /// The UTC offset in minutes; errors name the key.
    pub fn utc_offset_min(&self) -> Result<i32, ConfigError> {
        let s = self.utc_offset.trim();
        dozor_kkt::event::parse_offset(s).ok_or_else(|| ConfigError {
            key: Some("kkt.utc_offset".into()),
            ..ConfigError::plain(format!("{s:?} is not an offset like +03:00"))
        })
    }

    /// The shipped rule group for the pack's tenant, when enabled.
    pub fn rule_groups(&self) -> Result<Vec<(TenantId, dozor_rules::RuleGroup)>, ConfigError> {
        if !self.enabled || !self.rules {
            return Ok(Vec::new());
        }
        let groups =
            dozor_rules::file::parse(dozor_kkt::RULES, "kkt-54fz.yml").map_err(|errors| {
                ConfigError {
                    key: Some("kkt.rules".into()),
                    ..ConfigError::plain(format!(
                        "BUG: the shipped rules do not load: {}",
                        errors[0]
                    ))
                }
            })?;
        Ok(groups
            .into_iter()
            .map(|g| (self.tenant.clone(), g))
            .collect())
    }

    /// The OFD providers, secrets read; errors name the key.
    pub fn providers(&self) -> Result<Vec<(dozor_kkt::ofd::Provider, Duration)>, ConfigError> {
        use dozor_kkt::ofd::{Auth, Dialect, Hidden};
        let mut names = std::collections::HashSet::new();
        self.ofd
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let err = |key: &str, message: String| ConfigError {
                    key: Some(format!("kkt.ofd[{i}].{key}")),
                    ..ConfigError::plain(message)
                };
                if o.name.is_empty() || !names.insert(o.name.clone()) {
                    return Err(err(
                        "name",
                        format!("{:?} is empty or appears twice", o.name),
                    ));
                }
                if !(o.url.starts_with("https://") || o.url.starts_with("http://")) {
                    return Err(err("url", format!("{:?} is not an http(s) URL", o.url)));
                }
                let reveal = |s: &Option<Secret>| s.as_ref().map(Secret::reveal).transpose();
                let password = reveal(&o.password)?;
                let auth = match (reveal(&o.bearer_token)?, &o.login, password) {
                    (Some(t), _, _) => Auth::Bearer(Hidden(t)),
                    (None, Some(login), Some(p)) if o.dialect == Dialect::Neutral => Auth::Basic {
                        username: login.clone(),
                        password: Hidden(p),
                    },
                    (None, Some(login), Some(p)) => Auth::Login {
                        login: login.clone(),
                        password: Hidden(p),
                    },
                    (None, None, None) if o.dialect == Dialect::Neutral => Auth::None,
                    _ => {
                        return Err(err(
                            "login",
                            "give `login` and `password` (or, for neutral, `bearer_token`)".into(),
                        ));
                    }
                };
                if o.dialect == Dialect::Ofdru && o.inn.is_none() {
                    return Err(err(
                        "inn",
                        "the ofdru dialect lists registers by INN".into(),
                    ));
                }
                let integrator_id = reveal(&o.integrator_id)?.map(Hidden);
                if o.dialect == Dialect::Taxcom && integrator_id.is_none() {
                    return Err(err("integrator_id", "the taxcom dialect needs it".into()));
                }
                Ok((
                    dozor_kkt::ofd::Provider {
                        name: o.name.clone(),
                        dialect: o.dialect,
                        url: o.url.clone(),
                        auth,
                        inn: o.inn.clone(),
                        integrator_id,
                        timeout: o.timeout,
                    },
                    o.poll_interval,
                ))
            })
            .collect()
    }
}

/// `ai:`: seed 000's AI subsystem.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AiConfig {
    /// A language model that words the summaries; absent: Dozor's own sentences.
    pub llm: Option<LlmConfig>,
}

/// `ai.llm:`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    /// `openai` (any OpenAI-compatible chat-completions API) or `anthropic`.
    pub provider: String,
    /// Base URL (`https://api.openai.com/v1`, `https://api.anthropic.com`, a local server).
    pub base_url: String,
    /// The model.
    pub model: String,
    /// The key (inline or `{ file: … }`).
    pub api_key: Secret,
    /// How long a call may take (default 20s).
    #[serde(with = "dozor_model::duration", default = "LlmConfig::default_timeout")]
    pub timeout: Duration,
}

impl LlmConfig {
    fn default_timeout() -> Duration {
        Duration::from_secs(20)
    }

    /// The API's settings; errors name the key.
    pub fn settings(&self) -> Result<dozor_api::llm::LlmSettings, ConfigError> {
        let err = |key: &str, message: String| ConfigError {
            key: Some(format!("ai.llm.{key}")),
            ..ConfigError::plain(message)
        };
        let provider = match self.provider.as_str() {
            "openai" => dozor_api::llm::Provider::OpenAi,
            "anthropic" => dozor_api::llm::Provider::Anthropic,
            p => return Err(err("provider", format!("{p:?} is not openai or anthropic"))),
        };
        if !(self.base_url.starts_with("https://") || self.base_url.starts_with("http://")) {
            return Err(err(
                "base_url",
                format!("{:?} is not an http(s) URL", self.base_url),
            ));
        }
        if self.model.trim().is_empty() {
            return Err(err("model", "must be set".into()));
        }
        Ok(dozor_api::llm::LlmSettings {
            provider,
            base_url: self.base_url.clone(),
            model: self.model.clone(),
            api_key: dozor_api::Secret(self.api_key.reveal()?.into_bytes()),
            timeout: self.timeout,
        })
    }
}

/// `access:`: the service catalogue's owners, which the developer role is scoped by
/// (a developer sees the series, streams and events of the services they own).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// The label that names a series' or stream's service.
    pub service_label: String,
    /// Services and their owners (user names).
    pub services: BTreeMap<String, ServiceConfig>,
}

/// `access.services.<name>:`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// User names that own the service.
    pub owners: Vec<String>,
}

impl Default for AccessConfig {
    fn default() -> AccessConfig {
        AccessConfig {
            service_label: "service".to_owned(),
            services: BTreeMap::new(),
        }
    }
}

impl AccessConfig {
    /// The API's form: services by owner. Errors name the entry.
    pub fn policy(&self) -> Result<dozor_api::visibility::AccessPolicy, ConfigError> {
        if dozor_model::Labels::from_pairs([(self.service_label.as_str(), "x")]).is_err() {
            return Err(ConfigError {
                key: Some("access.service_label".into()),
                ..ConfigError::plain(format!("{:?} is not a label name", self.service_label))
            });
        }
        let mut owners: std::collections::HashMap<String, Vec<String>> =
            std::collections::HashMap::new();
        for (service, s) in &self.services {
            for owner in &s.owners {
                owners
                    .entry(owner.clone())
                    .or_default()
                    .push(service.clone());
            }
        }
        Ok(dozor_api::visibility::AccessPolicy {
            service_label: self.service_label.clone(),
            owners,
        })
    }
}

/// `audit:`: applications' audit events (`POST /api/v1/audit/events`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Compliance presets: `gdpr`, `hipaa`, `sox`, `pci_dss` (`docs/compliance.md`).
    pub compliance: Vec<String>,
    /// Filters by category (seed 003's `audit_filters.yaml`); replace a preset's.
    pub filters: std::collections::BTreeMap<String, AuditFilterConfig>,
    /// Keys of events' `details` whose values are masked, besides the presets'.
    pub masked_fields: Vec<String>,
    /// How long the chain keeps records (`400d`, `7y`); older ones are pruned, only up to a
    /// signed checkpoint. Absent: kept forever. Never shorter than a preset asks.
    pub retention: Option<String>,
}

/// `audit.filters.<category>:`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFilterConfig {
    /// Events below this severity are dropped (`debug` … `critical`; default `info`).
    #[serde(default)]
    pub min_severity: Option<String>,
    /// Actions kept (empty: all).
    #[serde(default)]
    pub actions: Vec<String>,
    /// Resources kept (empty: all).
    #[serde(default)]
    pub resources: Vec<String>,
}

impl AuditConfig {
    /// The retention, checked against the presets' minimums; errors name `audit.retention`.
    pub fn retention(&self) -> Result<Option<Duration>, ConfigError> {
        let Some(text) = &self.retention else {
            return Ok(None);
        };
        let err = |message: String| ConfigError {
            key: Some("audit.retention".into()),
            ..ConfigError::plain(message)
        };
        let d = dozor_model::duration::parse(text).map_err(err)?;
        if d < Duration::from_secs(86_400) {
            return Err(err(format!("{text:?} is shorter than a day")));
        }
        for p in &self.compliance {
            let Some(preset) = dozor_api::routes::audit::Preset::parse(p) else {
                continue;
            };
            if let Some(days) = preset.min_retention_days()
                && d < Duration::from_secs(days * 86_400)
            {
                return Err(err(format!(
                    "{text:?} is shorter than the {days} days {} asks for",
                    preset.name()
                )));
            }
        }
        Ok(Some(d))
    }

    /// The API's policy; errors name the preset or filter.
    pub fn policy(&self) -> Result<dozor_api::routes::audit::AuditPolicy, ConfigError> {
        use dozor_api::routes::audit::{AuditPolicy, CategoryFilter, Preset, Severity};
        let err = |key: String, message: String| ConfigError {
            key: Some(key),
            ..ConfigError::plain(message)
        };
        let presets = self
            .compliance
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Preset::parse(p).ok_or_else(|| {
                    err(
                        format!("audit.compliance[{i}]"),
                        format!("{p:?} is not one of gdpr, hipaa, sox, pci_dss"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut filters = std::collections::HashMap::new();
        for (category, f) in &self.filters {
            let min_severity = match &f.min_severity {
                None => Severity::Info,
                Some(s) => Severity::parse(s).ok_or_else(|| {
                    err(
                        format!("audit.filters.{category}.min_severity"),
                        format!(
                            "{s:?} is not one of debug, info, notice, warning, error, critical"
                        ),
                    )
                })?,
            };
            filters.insert(
                category.clone(),
                CategoryFilter {
                    min_severity,
                    actions: f.actions.clone(),
                    resources: f.resources.clone(),
                },
            );
        }
        Ok(AuditPolicy::build(&presets, filters, &self.masked_fields))
    }
}

/// `server.metrics_access:`: an address allow-list (CIDR ranges, v4 and v6) for the
/// metrics exports, and a basic-auth account for scrapers that cannot send tokens.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsAccessConfig {
    /// Ranges allowed (`10.0.0.0/8`, `::1/128`; a bare address is one host). Empty: any.
    pub allow: Vec<String>,
    /// A read-only account accepted as basic auth on these routes.
    pub basic_auth: Option<BasicAuthConfig>,
}

/// `server.metrics_access.basic_auth:`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    /// The user name.
    pub username: String,
    /// The password (inline or `{ file: … }`).
    pub password: Secret,
    /// The tenant the account reads (default `default`).
    #[serde(default)]
    pub tenant: Option<String>,
}

impl MetricsAccessConfig {
    /// The API's form: ranges parsed, the password read. Errors name the entry.
    pub fn to_api(&self) -> Result<dozor_api::auth::MetricsAccess, ConfigError> {
        let err = |key: String, message: String| ConfigError {
            key: Some(key),
            ..ConfigError::plain(message)
        };
        let allow = parse_ranges(&self.allow, "server.metrics_access.allow")?;
        let basic = match &self.basic_auth {
            None => None,
            Some(b) => {
                if b.username.is_empty() || b.username.contains(':') {
                    return Err(err(
                        "server.metrics_access.basic_auth.username".into(),
                        "must be non-empty, without ':'".into(),
                    ));
                }
                let tenant = match &b.tenant {
                    None => TenantId::default_tenant(),
                    Some(t) => t.parse().map_err(|e| {
                        err(
                            "server.metrics_access.basic_auth.tenant".into(),
                            format!("{e}"),
                        )
                    })?,
                };
                let password = b.password.reveal()?;
                if password.is_empty() {
                    return Err(err(
                        "server.metrics_access.basic_auth.password".into(),
                        "must not be empty".into(),
                    ));
                }
                Some(dozor_api::auth::BasicAccount {
                    username: b.username.clone(),
                    password: dozor_api::Secret(password.into_bytes()),
                    tenant,
                })
            }
        };
        Ok(dozor_api::auth::MetricsAccess { allow, basic })
    }
}

/// `state:`: the relational store for users, tokens, rules, dashboards…
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// `sqlite://PATH` or `postgres://USER@HOST/DB`; empty means `<data_dir>/state.db`.
    pub url: Option<Secret>,
    /// How long settled rows are kept (seed 004's clean-up workers).
    pub retention: StateRetention,
}

/// `state.retention`: how long each table keeps its settled rows — resolved alerts and
/// incidents, anomaly events, report runs, investigated fraud findings (`0s`: forever).
/// Pruned hourly, in every tenant; open alerts and incidents and findings not investigated
/// yet are kept whatever their age.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateRetention {
    /// Alert episodes, counted from their resolution.
    #[serde(with = "dozor_model::duration")]
    pub alert_history: Duration,
    /// Seed 001's anomaly events.
    #[serde(with = "dozor_model::duration")]
    pub anomaly_events: Duration,
    /// Resolved incidents and their timelines, counted from the resolution.
    #[serde(with = "dozor_model::duration")]
    pub incidents: Duration,
    /// Report runs and their documents.
    #[serde(with = "dozor_model::duration")]
    pub report_history: Duration,
    /// Investigated fraud findings, counted from the finding.
    #[serde(with = "dozor_model::duration")]
    pub fraud_events: Duration,
}

impl Default for StateRetention {
    fn default() -> StateRetention {
        const DAY: u64 = 86_400;
        StateRetention {
            alert_history: Duration::from_secs(90 * DAY),
            anomaly_events: Duration::from_secs(90 * DAY),
            incidents: Duration::from_secs(365 * DAY),
            report_history: Duration::from_secs(90 * DAY),
            fraud_events: Duration::from_secs(365 * DAY),
        }
    }
}

impl StateRetention {
    /// How long `table` keeps its rows (`None`: forever).
    pub fn keep(&self, table: dozor_state::retention::Expiring) -> Option<Duration> {
        use dozor_state::retention::Expiring;
        let d = match table {
            Expiring::AlertHistory => self.alert_history,
            Expiring::AnomalyEvents => self.anomaly_events,
            Expiring::Incidents => self.incidents,
            Expiring::ReportHistory => self.report_history,
            Expiring::FraudEvents => self.fraud_events,
        };
        (!d.is_zero()).then_some(d)
    }
}

/// `auth:`: tokens and the first administrator.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Lifetime of access tokens (JWT).
    #[serde(with = "dozor_model::duration")]
    pub access_token_ttl: Duration,
    /// Lifetime of refresh tokens.
    #[serde(with = "dozor_model::duration")]
    pub refresh_token_ttl: Duration,
    /// HS256 secret for access tokens; by default generated once and kept in the state
    /// store, so every node sharing it accepts the same tokens.
    pub jwt_secret: Option<Secret>,
    /// Failed logins that lock a user name.
    pub lockout: LockoutConfig,
    /// Login attempts per minute from one client address; more get 429 (0: no limit).
    pub logins_per_minute: u32,
    /// Shortest password accepted for new users.
    pub password_min_length: usize,
    /// Login through an OpenID Connect provider (authorization code with PKCE).
    pub oidc: Option<OidcConfig>,
}

/// `auth.oidc:`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer's URL, exactly as its tokens' `iss`.
    pub issuer: String,
    /// Dozor's client id there.
    pub client_id: String,
    /// Its secret (inline or `{ file: … }`).
    pub client_secret: Secret,
    /// Dozor's callback as the provider reaches it back through the browser:
    /// `https://<dozor>/api/v1/auth/oidc/callback`.
    pub redirect_url: String,
    /// Scopes asked for (`openid` is added when missing).
    #[serde(default = "OidcConfig::default_scopes")]
    pub scopes: Vec<String>,
    /// The claim naming the user.
    #[serde(default = "OidcConfig::default_username_claim")]
    pub username_claim: String,
    /// The claim listing the user's groups.
    #[serde(default = "OidcConfig::default_roles_claim")]
    pub roles_claim: String,
    /// Group → role, first match wins.
    #[serde(default)]
    pub role_map: Vec<OidcRoleConfig>,
    /// The role of users in none of the groups; absent: they may not log in.
    #[serde(default)]
    pub default_role: Option<String>,
    /// The tenant users are made in (default `default`).
    #[serde(default)]
    pub tenant: Option<String>,
}

/// `auth.oidc.role_map[]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OidcRoleConfig {
    /// A value of the groups claim.
    pub group: String,
    /// The role it gives.
    pub role: String,
}

impl OidcConfig {
    fn default_scopes() -> Vec<String> {
        ["openid", "profile", "email"].map(str::to_owned).to_vec()
    }

    fn default_username_claim() -> String {
        "preferred_username".to_owned()
    }

    fn default_roles_claim() -> String {
        "groups".to_owned()
    }

    /// The API's settings; errors name the key.
    pub fn settings(&self) -> Result<dozor_api::oidc::OidcSettings, ConfigError> {
        let err = |key: &str, message: String| ConfigError {
            key: Some(format!("auth.oidc.{key}")),
            ..ConfigError::plain(message)
        };
        for (key, url) in [
            ("issuer", &self.issuer),
            ("redirect_url", &self.redirect_url),
        ] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(err(key, format!("{url:?} is not an http(s) URL")));
            }
        }
        let role = |key: String, r: &str| {
            r.parse::<dozor_model::Role>().map_err(|e| ConfigError {
                key: Some(key),
                ..ConfigError::plain(e.to_string())
            })
        };
        let role_map = self
            .role_map
            .iter()
            .enumerate()
            .map(|(i, m)| {
                Ok((
                    m.group.clone(),
                    role(format!("auth.oidc.role_map[{i}].role"), &m.role)?,
                ))
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let default_role = match &self.default_role {
            None => None,
            Some(r) => Some(role("auth.oidc.default_role".into(), r)?),
        };
        let tenant = match &self.tenant {
            None => TenantId::default_tenant(),
            Some(t) => t.parse().map_err(|e| err("tenant", format!("{e}")))?,
        };
        let secret = self.client_secret.reveal()?;
        if secret.is_empty() || self.client_id.is_empty() {
            return Err(err(
                "client_secret",
                "client_id and client_secret must be set".into(),
            ));
        }
        Ok(dozor_api::oidc::OidcSettings {
            issuer: self.issuer.trim_end_matches('/').to_owned(),
            client_id: self.client_id.clone(),
            client_secret: dozor_api::Secret(secret.into_bytes()),
            redirect_url: self.redirect_url.clone(),
            scopes: self.scopes.clone(),
            username_claim: self.username_claim.clone(),
            roles_claim: self.roles_claim.clone(),
            role_map,
            default_role,
            tenant,
        })
    }
}

/// `auth.lockout:`: `failures` failed logins of one user name within `window` lock it for
/// `duration` (counted whether or not the name exists; shared by every node).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutConfig {
    /// Failures that lock (0: never lock).
    pub failures: u32,
    /// The window they are counted in.
    #[serde(with = "dozor_model::duration")]
    pub window: Duration,
    /// How long the lock lasts.
    #[serde(with = "dozor_model::duration")]
    pub duration: Duration,
}

impl Default for LockoutConfig {
    fn default() -> LockoutConfig {
        let policy = dozor_api::AuthPolicy::default().lockout;
        let ms = |v: i64| Duration::from_millis(u64::try_from(v).unwrap_or(0));
        LockoutConfig {
            failures: policy.max_failures,
            window: ms(policy.window_ms),
            duration: ms(policy.lock_ms),
        }
    }
}

impl AuthConfig {
    /// The API's login guards and password policy.
    pub fn policy(&self) -> dozor_api::AuthPolicy {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4);
        dozor_api::AuthPolicy {
            lockout: dozor_state::lockout::LockoutPolicy {
                max_failures: self.lockout.failures,
                window_ms: ms(self.lockout.window),
                lock_ms: ms(self.lockout.duration),
            },
            logins_per_minute: self.logins_per_minute,
            password_min_length: self.password_min_length,
        }
    }
}

/// `log:`: Dozor's own log output.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter: `info`, `debug`, `dozor_api=debug,info`…
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A secret: written inline, or as `{file: PATH}` to read it from a file (trailing newline
/// removed). Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Secret {
    /// The value itself.
    Inline(String),
    /// A file holding the value.
    File {
        /// Path of the file.
        file: PathBuf,
    },
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Inline(_) => f.write_str("Secret(<inline>)"),
            Secret::File { file } => write!(f, "Secret(file {})", file.display()),
        }
    }
}

impl Secret {
    /// The secret's value.
    pub fn reveal(&self) -> Result<String, ConfigError> {
        match self {
            Secret::Inline(v) => Ok(v.clone()),
            Secret::File { file } => read_secret_file(file),
        }
    }
}

/// Reads a secret file, dropping one trailing newline.
pub fn read_secret_file(path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::plain(format!("cannot read secret file {}: {e}", path.display()))
    })?;
    Ok(text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text)
        .to_owned())
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data_dir: PathBuf::from("dozor-data"),
            server: ServerConfig::default(),
            state: StateConfig::default(),
            auth: AuthConfig::default(),
            log: LogConfig::default(),
            tsdb: TsdbConfig::default(),
            logs: LogsConfig::default(),
            ingest: IngestConfig::default(),
            query: QueryConfig::default(),
            scrape_configs: Vec::new(),
            collectors: CollectorsConfig::default(),
            probes: Vec::new(),
            sources: SourcesConfig::default(),
            backup: BackupConfig::default(),
            rules: RulesConfig::default(),
            publish: PublishConfig::default(),
            alerting: AlertingConfig::default(),
            audit: AuditConfig::default(),
            access: AccessConfig::default(),
            ai: AiConfig::default(),
            slos: Vec::new(),
            kkt: KktConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9470)),
            max_body_bytes: 16 << 20,
            shutdown_grace: Duration::from_secs(30),
            metrics_access: MetricsAccessConfig::default(),
            tls: None,
            rate_limit: RateLimitConfig::default(),
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig {
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(7 * 24 * 3600),
            jwt_secret: None,
            lockout: LockoutConfig::default(),
            logins_per_minute: dozor_api::AuthPolicy::default().logins_per_minute,
            password_min_length: dozor_api::AuthPolicy::default().password_min_length,
            oidc: None,
        }
    }
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

/// A configuration error, naming where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file or environment variable at fault, if any.
    pub source: Option<String>,
    /// 1-based line, for file errors.
    pub line: Option<u64>,
    /// The offending key, when known.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    fn plain(message: String) -> ConfigError {
        ConfigError {
            source: None,
            line: None,
            key: None,
            message,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = &self.source {
            write!(f, "{s}")?;
            if let Some(l) = self.line {
                write!(f, ":{l}")?;
            }
            f.write_str(": ")?;
        }
        if let Some(k) = &self.key {
            write!(f, "key `{k}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Environment variables that are not configuration paths.
const RESERVED_ENV: &[&str] = &[
    "DOZOR_ADMIN_USER",
    "DOZOR_ADMIN_PASSWORD",
    "DOZOR_ADMIN_PASSWORD_FILE",
    "DOZOR_ADMIN_TOKEN",
    "DOZOR_ADMIN_TOKEN_FILE",
    "DOZOR_SKIP_UI",
    "DOZOR_LOG",
];

impl Config {
    /// Loads `file` (or only defaults when `None`) and applies `env` overrides
    /// (`DOZOR_*` pairs; pass `std::env::vars()`). Returns warnings (unknown `DOZOR_`
    /// variables) beside the config.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                    source: Some(path.display().to_string()),
                    ..ConfigError::plain(format!("cannot read: {e}"))
                })?;
                let mut config = Config::parse(&text, &path.display().to_string())?;
                let dir = path.parent().unwrap_or(Path::new("."));
                config.rules.resolve_paths(dir);
                let files = config
                    .alerting
                    .config_file
                    .iter_mut()
                    .map(|f| ("alerting.config_file".to_owned(), f))
                    .chain(
                        config
                            .alerting
                            .tenants
                            .iter_mut()
                            .map(|(t, f)| (format!("alerting.tenants.{t}"), f)),
                    );
                let tls = config.server.tls.as_mut();
                for f in [
                    config.alerting.slack.signing_secret_file.as_mut(),
                    config.alerting.telegram.webhook_secret_file.as_mut(),
                ]
                .into_iter()
                .flatten()
                .chain(
                    tls.into_iter()
                        .flat_map(|t| [&mut t.cert_file, &mut t.key_file]),
                ) {
                    if f.is_relative() {
                        *f = dir.join(&*f);
                    }
                }
                let mut receivers: BTreeMap<TenantId, Vec<String>> = BTreeMap::new();
                for (key, f) in files {
                    if f.is_relative() {
                        *f = dir.join(&*f);
                    }
                    // Checked with the rest, so `dozor check config` reports its mistakes.
                    let checked = key
                        .strip_prefix("alerting.tenants.")
                        .map_or(Ok(()), |t| {
                            t.parse::<TenantId>().map(|_| ()).map_err(|e| e.to_string())
                        })
                        .and_then(|()| {
                            std::fs::read_to_string(&*f)
                                .map_err(|e| format!("cannot read {}: {e}", f.display()))
                        })
                        .and_then(|text| crate::notify::load_text(f, &text));
                    let tenant = key
                        .strip_prefix("alerting.tenants.")
                        .and_then(|t| t.parse::<TenantId>().ok())
                        .unwrap_or_else(TenantId::default_tenant);
                    let loaded = checked.map_err(|e| ConfigError {
                        source: Some(path.display().to_string()),
                        key: Some(key),
                        ..ConfigError::plain(e)
                    })?;
                    receivers.insert(
                        tenant,
                        loaded.receivers.iter().map(|r| r.name.clone()).collect(),
                    );
                }
                if let Some(tls) = &config.server.tls {
                    // Checked here too, so `dozor check config` reports unreadable files.
                    dozor_api::tls::load(&tls.files()).map_err(|e| ConfigError {
                        source: Some(path.display().to_string()),
                        key: Some("server.tls".into()),
                        ..ConfigError::plain(e)
                    })?;
                }
                let receivers_of = |t: &TenantId| {
                    receivers
                        .get(t)
                        .cloned()
                        .unwrap_or_else(|| vec!["null".to_owned()])
                };
                let rotations = dozor_alerting::oncall::Rotations::compile(
                    &config.alerting.oncall,
                    &receivers_of,
                )
                .map_err(|e| ConfigError {
                    source: Some(path.display().to_string()),
                    key: Some("alerting.oncall".into()),
                    ..ConfigError::plain(e)
                })?;
                let receivers_of = |t: &TenantId| {
                    let mut names = receivers_of(t);
                    names.extend(rotations.receiver_names(t));
                    names
                };
                let alerting_checks = [
                    (
                        "alerting.incidents.match",
                        dozor_alerting::incident::IncidentPolicy::parse(
                            &config.alerting.incidents.selector,
                        )
                        .map(|_| ()),
                    ),
                    (
                        "alerting.actions",
                        crate::actions::compile(&config.alerting.actions).map(|_| ()),
                    ),
                    (
                        "alerting.escalations",
                        dozor_alerting::escalation::compile_all(
                            &config.alerting.escalations,
                            &receivers_of,
                        )
                        .map(|_| ()),
                    ),
                ];
                for (key, checked) in alerting_checks {
                    checked.map_err(|e| ConfigError {
                        source: Some(path.display().to_string()),
                        key: Some(key.into()),
                        ..ConfigError::plain(e)
                    })?;
                }
                config.rules.groups().map_err(|e| ConfigError {
                    source: Some(path.display().to_string()),
                    ..e
                })?;
                config
            }
            None => Config::default(),
        };
        config.with_env(env)
    }

    /// Parses YAML text; `name` names the source in errors.
    pub fn parse(text: &str, name: &str) -> Result<Config, ConfigError> {
        let config = serde_saphyr::from_str::<Option<Config>>(text)
            .map(Option::unwrap_or_default)
            .map_err(|e| yaml_error(&e, text, name))?;
        config.scrape_jobs().map_err(|e| ConfigError {
            source: Some(name.to_owned()),
            line: None,
            key: Some("scrape_configs".into()),
            message: e,
        })?;
        config.check_probes().map_err(|e| ConfigError {
            source: Some(name.to_owned()),
            line: None,
            key: Some("probes".into()),
            message: e,
        })?;
        config.log_pipeline().map_err(|e| ConfigError {
            source: Some(name.to_owned()),
            ..e
        })?;
        config.masker().map_err(|e| ConfigError {
            source: Some(name.to_owned()),
            ..e
        })?;
        config.file_sources().map_err(|e| ConfigError {
            source: Some(name.to_owned()),
            ..e
        })?;
        config.sources.check_bus().map_err(|e| ConfigError {
            source: Some(name.to_owned()),
            ..e
        })?;
        config.publish.check().map_err(|e| ConfigError {
            source: Some(name.to_owned()),
            ..e
        })?;
        config
            .server
            .metrics_access
            .to_api()
            .map_err(|e| ConfigError {
                source: Some(name.to_owned()),
                ..e
            })?;
        config.server.transport().map_err(|e| ConfigError {
            source: Some(name.to_owned()),
            ..e
        })?;
        config.access.policy().map_err(|e| ConfigError {
            source: Some(name.to_owned()),
            ..e
        })?;
        slo_groups(&slos(&config.slos).map_err(|e| ConfigError {
            source: Some(name.to_owned()),
            ..e
        })?)
        .map_err(|e| ConfigError {
            source: Some(name.to_owned()),
            ..e
        })?;
        if let Some(llm) = &config.ai.llm {
            llm.settings().map_err(|e| ConfigError {
                source: Some(name.to_owned()),
                ..e
            })?;
        }
        if let Some(oidc) = &config.auth.oidc {
            oidc.settings().map_err(|e| ConfigError {
                source: Some(name.to_owned()),
                ..e
            })?;
        }
        config.audit.policy().map_err(|e| ConfigError {
            source: Some(name.to_owned()),
            ..e
        })?;
        config.audit.retention().map_err(|e| ConfigError {
            source: Some(name.to_owned()),
            ..e
        })?;
        if let Some(s3) = &config.backup.s3 {
            s3.check().map_err(|e| ConfigError {
                source: Some(name.to_owned()),
                key: Some("backup.s3".into()),
                ..ConfigError::plain(e)
            })?;
        }
        config.logs.tiers().map_err(|e| ConfigError {
            source: Some(name.to_owned()),
            key: Some("logs.tiers".into()),
            ..ConfigError::plain(e)
        })?;
        if let Some(a) = &config.logs.archive {
            let cold = config.logs.tiers.as_ref().is_some_and(|t| t.cold.is_some());
            a.s3.check()
                .and_then(|()| {
                    if cold {
                        Ok(())
                    } else {
                        Err("the archive copies cold days: set logs.tiers.cold".to_owned())
                    }
                })
                .map_err(|e| ConfigError {
                    source: Some(name.to_owned()),
                    key: Some("logs.archive".into()),
                    ..ConfigError::plain(e)
                })?;
        }
        if !(0.0..=1.0).contains(&config.logs.watermark) || config.logs.watermark == 0.0 {
            return Err(ConfigError {
                source: Some(name.to_owned()),
                key: Some("logs.watermark".into()),
                ..ConfigError::plain(
                    "a fraction of the volume above 0 and at most 1, e.g. 0.8".into(),
                )
            });
        }
        Ok(config)
    }

    /// The compiled log pipeline (`logs.pipeline`).
    pub fn log_pipeline(&self) -> Result<dozor_ingest::pipeline::Pipeline, ConfigError> {
        dozor_ingest::pipeline::Pipeline::compile(&self.logs.pipeline, &stream_selector).map_err(
            |e| ConfigError {
                key: Some("logs.pipeline".into()),
                ..ConfigError::plain(e)
            },
        )
    }

    /// `logs.pii` as masking applies it: when the cash-register pack runs, its driver log
    /// keeps `card` unless `logs.pii.streams` names that stream already — registration and
    /// FN numbers are 16 digits, and one in ten with a card's first digit passes the Luhn
    /// check, which would mask the register in the stored log the fleet is restored from.
    pub fn pii(&self) -> dozor_ingest::pii::PiiConfig {
        let mut pii = self.logs.pii.clone();
        let own = self
            .kkt
            .selector()
            .filter(|s| self.kkt.enabled && !pii.streams.iter().any(|entry| entry.selector == *s));
        if let Some(selector) = own {
            pii.streams.push(dozor_ingest::pii::StreamActions {
                selector,
                actions: BTreeMap::from([(
                    dozor_ingest::pii::PiiKind::Card,
                    dozor_ingest::pii::Action::Keep,
                )]),
            });
        }
        pii
    }

    /// The PII masker of [`Config::pii`].
    pub fn masker(&self) -> Result<dozor_ingest::pii::Masker, ConfigError> {
        dozor_ingest::pii::Masker::with_streams(&self.pii(), &stream_selector).map_err(|e| {
            ConfigError {
                key: Some(format!("logs.pii.{}", e.split(':').next().unwrap_or(""))),
                ..ConfigError::plain(e)
            }
        })
    }

    /// Checks the probes without reading secrets or CA files: unique names, fields that fit
    /// each kind, targets, regexes.
    fn check_probes(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for p in &self.probes {
            if !names.insert(p.name.as_str()) {
                return Err(format!("probe name {:?} appears twice", p.name));
            }
            p.spec(false).map_err(|e| e.message)?.check()?;
        }
        Ok(())
    }

    /// The probes, ready to run: checked, secrets read, TLS configured (CA files read).
    pub fn probes(&self) -> Result<Vec<Probe>, ConfigError> {
        self.check_probes().map_err(|e| ConfigError {
            key: Some("probes".into()),
            ..ConfigError::plain(e)
        })?;
        self.probes
            .iter()
            .map(|p| {
                Probe::new(p.spec(true)?).map_err(|e| ConfigError {
                    key: Some("probes".into()),
                    ..ConfigError::plain(e)
                })
            })
            .collect()
    }

    /// The file sources, checked (names unique across them).
    pub fn file_sources(&self) -> Result<Vec<dozor_ingest::tail::FileSource>, ConfigError> {
        let err = |message: String| ConfigError {
            key: Some("sources.files".into()),
            ..ConfigError::plain(message)
        };
        let mut names = std::collections::HashSet::new();
        self.sources
            .files
            .iter()
            .map(|c| {
                if !names.insert(c.name.clone()) {
                    return Err(err(format!("name {:?} appears twice", c.name)));
                }
                dozor_ingest::tail::FileSource::new(c.clone()).map_err(err)
            })
            .collect()
    }

    /// The scrape jobs, checked and compiled.
    pub fn scrape_jobs(&self) -> Result<Vec<dozor_ingest::scrape::Job>, String> {
        let mut names = std::collections::HashSet::new();
        self.scrape_configs
            .iter()
            .map(|c| {
                if !names.insert(c.job_name.clone()) {
                    return Err(format!("job_name {:?} appears twice", c.job_name));
                }
                dozor_ingest::scrape::Job::new(c.clone())
            })
            .collect()
    }

    fn with_env(
        self,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let mut overrides: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("DOZOR_") && !RESERVED_ENV.contains(&k.as_str()))
            .collect();
        if overrides.is_empty() {
            return Ok((self, Vec::new()));
        }
        overrides.sort();
        let mut tree = serde_json::to_value(&self)
            .map_err(|e| ConfigError::plain(format!("BUG: config does not serialize: {e}")))?;
        let mut warnings = Vec::new();
        for (name, value) in &overrides {
            let path: Vec<String> = name["DOZOR_".len()..]
                .split("__")
                .map(str::to_lowercase)
                .collect();
            let Some(slot) = lookup_mut(&mut tree, &path) else {
                warnings.push(format!(
                    "ignoring {name}: no configuration key {}",
                    path.join(".")
                ));
                continue;
            };
            *slot = env_value(value);
            // Validate after each variable so an error names the one at fault.
            serde_json::from_value::<Config>(tree.clone()).map_err(|e| ConfigError {
                source: Some(format!("environment variable {name}")),
                line: None,
                key: Some(path.join(".")),
                message: e.to_string(),
            })?;
        }
        let config = serde_json::from_value(tree)
            .map_err(|e| ConfigError::plain(format!("environment overrides: {e}")))?;
        Ok((config, warnings))
    }

    /// The state store URL: configured, or the SQLite file in the data directory.
    pub fn state_url(&self) -> Result<String, ConfigError> {
        match &self.state.url {
            Some(s) => s.reveal(),
            None => Ok(format!(
                "sqlite://{}",
                self.data_dir.join("state.db").display()
            )),
        }
    }
}

/// The JSON value for an environment string: numbers and booleans as such, `{file: …}`
/// never (secrets from files use `*_FILE`-style YAML), anything else as a string.
fn env_value(raw: &str) -> serde_json::Value {
    match raw {
        "true" => serde_json::Value::Bool(true),
        "false" => serde_json::Value::Bool(false),
        _ => raw
            .parse::<u64>()
            .map(serde_json::Value::from)
            .unwrap_or_else(|_| serde_json::Value::String(raw.to_owned())),
    }
}

fn lookup_mut<'a>(
    tree: &'a mut serde_json::Value,
    path: &[String],
) -> Option<&'a mut serde_json::Value> {
    path.iter()
        .try_fold(tree, |node, key| node.as_object_mut()?.get_mut(key))
}

/// Turns a YAML error into one naming file, line and key.
fn yaml_error(e: &serde_saphyr::Error, text: &str, name: &str) -> ConfigError {
    let line = e.location().map(|l| l.line());
    // The first line of the message, without the "error: line N column M: " prefix.
    let first = e.to_string();
    let first = first.lines().next().unwrap_or("invalid YAML");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let message = match first.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") => rest,
        _ => first,
    };
    let key = line
        .and_then(|l| text.lines().nth(usize::try_from(l).ok()?.checked_sub(1)?))
        .and_then(|src| src.trim_start().trim_start_matches("- ").split_once(':'))
        .map(|(k, _)| k.trim().to_owned())
        .filter(|k| !k.is_empty() && !k.contains(' '));
    ConfigError {
        source: Some(name.to_owned()),
        line,
        key,
        message: message.to_owned(),
    }
}

/// A section written as `state:` with every key commented out is YAML null: take defaults.
fn null_is_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

#[cfg(test)]
mod tests {

    #[test]
    fn pii_streams_are_checked_and_the_kkt_pack_keeps_its_register_numbers() {
        let bad =
            "logs:\n  pii:\n    streams:\n      - {match: 'job=kkt', actions: {card: keep}}\n";
        let e = Config::parse(bad, "f").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("logs.pii.streams[0].match"), "{e}");
        let plain = Config::parse("logs: {pii: {actions: {ipv4: hash}}}", "f").unwrap();
        assert!(plain.pii().streams.is_empty());
        let kkt = Config::parse("kkt: {enabled: true}", "f").unwrap();
        assert_eq!(kkt.pii().streams.len(), 1);
        assert_eq!(kkt.pii().streams[0].selector, "{job=\"kkt\"}");
        // A Luhn-valid register number with a Visa prefix: kept in the driver log only.
        let m = kkt.masker().unwrap();
        let mut counts = BTreeMap::new();
        let record = |job: &str| dozor_model::LogRecord {
            time_ns: 0,
            stream: dozor_model::Labels::from_pairs([("job", job)]).unwrap(),
            message: r#"{"kkt":{"reg_number":"4111111111111111"}}"#.into(),
            fields: Vec::new(),
        };
        let mut driver = record("kkt");
        m.mask_record(&mut driver, b"salt", &mut counts);
        assert!(
            driver.message.contains("4111111111111111"),
            "{}",
            driver.message
        );
        let mut other = record("shop");
        m.mask_record(&mut other, b"salt", &mut counts);
        assert!(other.message.contains("[CARD]"), "{}", other.message);
        // The user's own entry for that stream wins.
        let own = "kkt: {enabled: true}\nlogs:\n  pii:\n    streams:\n      - {match: '{job=\"kkt\"}', actions: {card: mask}}\n";
        let own = Config::parse(own, "f").unwrap();
        assert_eq!(own.pii().streams.len(), 1);
        assert_eq!(
            own.pii().streams[0].actions[&dozor_ingest::pii::PiiKind::Card],
            dozor_ingest::pii::Action::Mask
        );
    }

    #[test]
    fn the_kkt_pack_checks_its_offset_and_ofd_providers_naming_the_key() {
        let kkt = |yaml: &str| Config::parse(yaml, "f").unwrap().kkt;
        let c = kkt("kkt: {enabled: true, utc_offset: '+05:00'}");
        assert_eq!(c.utc_offset_min().unwrap(), 300);
        assert_eq!(c.rule_groups().unwrap().len(), 1);
        let e = kkt("kkt: {utc_offset: 'Moscow'}")
            .utc_offset_min()
            .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("kkt.utc_offset"));
        let bad = |ofd: &str| {
            kkt(&format!("kkt:\n  ofd:\n    - {ofd}\n"))
                .providers()
                .unwrap_err()
                .key
                .unwrap_or_default()
        };
        assert_eq!(
            bad("{name: a, dialect: ofdru, url: 'https://ofd.ru', login: x, password: pw}"),
            "kkt.ofd[0].inn"
        );
        assert_eq!(
            bad("{name: a, dialect: taxcom, url: 'https://t', login: x, password: pw}"),
            "kkt.ofd[0].integrator_id"
        );
        assert_eq!(
            bad("{name: a, dialect: ofdru, url: 'ftp://x', inn: '1', login: x, password: pw}"),
            "kkt.ofd[0].url"
        );
        assert_eq!(
            bad("{name: a, dialect: ofdru, url: 'https://ofd.ru', inn: '1'}"),
            "kkt.ofd[0].login"
        );
        assert_eq!(
            bad("{name: '', dialect: neutral, url: 'http://g'}"),
            "kkt.ofd[0].name"
        );
        let ok = kkt("kkt:\n  ofd:\n    - {name: a, dialect: ofdru, url: 'https://ofd.ru', inn: '77', login: x, password: pw}\n    - {name: b, dialect: neutral, url: 'http://g', bearer_token: t}\n")
            .providers()
            .unwrap();
        assert!(matches!(ok[0].0.auth, dozor_kkt::ofd::Auth::Login { .. }));
        assert!(matches!(ok[1].0.auth, dozor_kkt::ofd::Auth::Bearer(_)));
        assert_eq!(ok[0].1, std::time::Duration::from_secs(300));
    }

    use super::*;

    fn no_env() -> Vec<(String, String)> {
        Vec::new()
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_listen_on_loopback_9470_with_sqlite_in_the_data_dir() {
        let (c, warnings) = Config::load(None, no_env()).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:9470");
        assert_eq!(c.state_url().unwrap(), "sqlite://dozor-data/state.db");
        assert_eq!(c.auth.access_token_ttl, Duration::from_secs(900));
        assert_eq!(c.log.format, LogFormat::Text);
    }

    #[test]
    fn log_tiers_pipeline_and_watermark_are_checked() {
        let c = Config::parse(
            r#"
logs:
  tiers:
    hot: 7d
    warm: {until: 30d, keep: ['{level=~"critical|error|warn"}']}
    cold: {until: 365d, keep: ['{level="critical"}', '{audit="true"}']}
  watermark: 0.9
  pipeline:
    - {match: '{service="api"}', parse: logfmt}
"#,
            "f",
        )
        .unwrap();
        let t = c.logs.tiers().unwrap().unwrap();
        assert_eq!(t.hot, Duration::from_secs(7 * 86_400));
        assert_eq!(t.cold.as_ref().unwrap().keep.len(), 2);
        assert!(t.aggregates, "on by default");
        for (yaml, key, needle) in [
            (
                "logs: {tiers: {hot: 7d, warm: {until: 1d, keep: []}}}",
                "logs.tiers",
                "longer than",
            ),
            (
                "logs: {tiers: {hot: 1d, warm: {until: 2d, keep: ['{a=\"b\"} |= \"x\"']}}}",
                "logs.tiers",
                "plain stream selector",
            ),
            (
                "logs: {tiers: {hot: 1d, cold: {until: 2d, keep: ['nope']}}}",
                "logs.tiers",
                "parse error",
            ),
            (
                "logs: {archive: {s3: {bucket: b}}}",
                "logs.archive",
                "logs.tiers.cold",
            ),
            (
                "logs: {tiers: {hot: 1d, cold: {until: 9d, keep: []}}, archive: {s3: {bucket: ''}}}",
                "logs.archive",
                "bucket is empty",
            ),
            (
                "publish: {kafka: [{name: k, brokers: b, alerts: [{topic: a, match: 'x'}]}]}",
                "publish.kafka",
                "alerts[0].match",
            ),
            (
                "publish: {kafka: [{name: k, brokers: b, metrics: {topic: m, queries: {q: 'rate('}}}]}",
                "publish.kafka",
                "metrics.queries.q",
            ),
            (
                "publish: {kafka: [{name: k, brokers: b, alerts: [{topic: a}]}, {name: k, brokers: b, alerts: [{topic: a}]}]}",
                "publish.kafka",
                "twice",
            ),
            ("logs: {watermark: 1.5}", "logs.watermark", "fraction"),
            ("logs: {watermark: 0}", "logs.watermark", "fraction"),
            (
                "logs: {pipeline: [{match: '{a=\"b\"}', parse: xml}]}",
                "logs.pipeline",
                "not json",
            ),
        ] {
            let e = Config::parse(yaml, "f").unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{yaml}: {e}");
            assert!(e.to_string().contains(needle), "{yaml}: {e}");
        }
    }

    #[test]
    fn service_owners_become_each_users_services() {
        let c = Config::parse(
            "access:\n  services:\n    shop: {owners: [alice]}\n    crm: {owners: [alice, bob]}\n",
            "f",
        )
        .unwrap();
        let p = c.access.policy().unwrap();
        assert_eq!(p.service_label, "service");
        assert_eq!(p.owners["alice"], vec!["crm".to_owned(), "shop".to_owned()]);
        assert_eq!(p.owners["bob"], vec!["crm".to_owned()]);
        let e = Config::parse("access:\n  service_label: 'not a label'\n", "f").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("access.service_label"));
    }

    #[test]
    fn audit_retention_is_never_shorter_than_a_preset_asks() {
        let c = Config::parse("audit:\n  retention: 400d\n", "f").unwrap();
        assert_eq!(
            c.audit.retention().unwrap(),
            Some(Duration::from_secs(400 * 86_400))
        );
        assert_eq!(
            Config::parse("audit: {}\n", "f")
                .unwrap()
                .audit
                .retention()
                .unwrap(),
            None
        );
        let e =
            Config::parse("audit:\n  compliance: [pci_dss]\n  retention: 90d\n", "f").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("audit.retention"));
        assert!(e.message.contains("365 days pci_dss"), "{}", e.message);
        let e = Config::parse("audit:\n  compliance: [sox]\n  retention: 6y\n", "f").unwrap_err();
        assert!(e.message.contains("sox"), "{}", e.message);
        assert!(Config::parse("audit:\n  compliance: [sox]\n  retention: 8y\n", "f").is_ok());
        let e = Config::parse("audit:\n  retention: soon\n", "f").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("audit.retention"));
    }

    #[test]
    fn oidc_login_is_read_and_checked() {
        let c = Config::parse(
            "auth:\n  oidc:\n    issuer: https://sso.example.com/realms/shop/\n    client_id: dozor\n    client_secret: s3cret\n    redirect_url: https://dozor.example.com/api/v1/auth/oidc/callback\n    role_map: [{group: admins, role: admin}]\n    default_role: viewer\n",
            "f",
        )
        .unwrap();
        let s = c.auth.oidc.as_ref().unwrap().settings().unwrap();
        assert_eq!(s.issuer, "https://sso.example.com/realms/shop");
        assert_eq!(s.scopes, ["openid", "profile", "email"]);
        assert_eq!(s.username_claim, "preferred_username");
        assert_eq!(
            s.role_map,
            [("admins".to_owned(), dozor_model::Role::Admin)]
        );
        assert_eq!(s.default_role, Some(dozor_model::Role::Viewer));
        let e = Config::parse(
            "auth:\n  oidc:\n    issuer: https://sso.example.com\n    client_id: dozor\n    client_secret: s\n    redirect_url: https://d/cb\n    role_map: [{group: admins, role: root}]\n",
            "f",
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("auth.oidc.role_map[0].role"));
        let e = Config::parse(
            "auth:\n  oidc:\n    issuer: sso.example.com\n    client_id: dozor\n    client_secret: s\n    redirect_url: https://d/cb\n",
            "f",
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("auth.oidc.issuer"));
    }

    #[test]
    fn a_language_model_is_read_and_checked() {
        let c = Config::parse(
            "ai:\n  llm: {provider: anthropic, base_url: 'https://api.anthropic.com', model: claude, api_key: k}\n",
            "f",
        )
        .unwrap();
        let s = c.ai.llm.as_ref().unwrap().settings().unwrap();
        assert_eq!(s.provider, dozor_api::llm::Provider::Anthropic);
        assert_eq!(s.timeout, Duration::from_secs(20));
        let e = Config::parse(
            "ai:\n  llm: {provider: bard, base_url: 'https://x', model: m, api_key: k}\n",
            "f",
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("ai.llm.provider"));
    }

    #[test]
    fn slos_become_burn_rate_rules() {
        let c = Config::parse(
            "slos:\n  - {name: checkout, objective: 99.9, errors: 'http_requests_total{code=~\"5..\"}', total: http_requests_total}\n",
            "f",
        )
        .unwrap();
        let list = slos(&c.slos).unwrap();
        assert!((list[0].1.objective - 0.999).abs() < 1e-12);
        assert_eq!(list[0].1.window_days, 30);
        let groups = slo_groups(&list).unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].1.name, "slo:checkout");
        assert_eq!(groups[0].1.rules.len(), 12);
        let e = Config::parse(
            "slos:\n  - {name: x, objective: 120, errors: a, total: b}\n",
            "f",
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("slos[0]"));
        assert!(e.message.contains("objective"), "{}", e.message);
    }

    #[test]
    fn transport_settings_are_read_and_checked() {
        let c = Config::parse(
            "server:\n  tls: {cert_file: /etc/dozor/tls.crt, key_file: /etc/dozor/tls.key}\n  rate_limit: {requests_per_second: 50, burst: 200}\n  trusted_proxies: [10.0.0.0/8, 'fd00::1']\n",
            "f",
        )
        .unwrap();
        let tls = c.server.tls.as_ref().unwrap();
        assert_eq!(tls.check_every, Duration::from_secs(60));
        assert_eq!(tls.files().key_file, PathBuf::from("/etc/dozor/tls.key"));
        let t = c.server.transport().unwrap();
        assert!(t.https);
        assert_eq!((t.rate_limit.per_second, t.rate_limit.burst), (50, 200));
        assert_eq!(t.trusted_proxies.len(), 2);
        let plain = Config::parse("server: {}\n", "f").unwrap();
        let t = plain.server.transport().unwrap();
        assert!(!t.https && t.rate_limit.per_second == 0 && t.trusted_proxies.is_empty());
        let e = Config::parse("server:\n  trusted_proxies: [10.0.0.0/33]\n", "f").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("server.trusted_proxies[0]"));
        let e = Config::parse("server:\n  tls: {cert_file: a.crt}\n", "f").unwrap_err();
        assert!(e.message.contains("key_file"), "{}", e.message);
    }

    #[test]
    fn metrics_access_ranges_and_account_are_checked() {
        let c = Config::parse(
            "server:\n  metrics_access:\n    allow: [10.0.0.0/8, '::1', '2001:db8::/32']\n    basic_auth: {username: prom, password: s3cret-value}\n",
            "f",
        )
        .unwrap();
        let access = c.server.metrics_access.to_api().unwrap();
        assert_eq!(access.allow.len(), 3);
        assert!(access.admits(Some("10.2.3.4".parse().unwrap())));
        assert!(access.admits(Some("::1".parse().unwrap())));
        assert!(!access.admits(Some("::2".parse().unwrap())));
        assert!(!access.admits(None));
        let e = Config::parse(
            "server:\n  metrics_access:\n    allow: [10.0.0.0/8, 300.1.1.1/8]\n",
            "f",
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("server.metrics_access.allow[1]"));
        assert!(e.message.contains("300.1.1.1/8"), "{}", e.message);
        let e = Config::parse(
            "server:\n  metrics_access:\n    basic_auth: {username: 'a:b', password: x}\n",
            "f",
        )
        .unwrap_err();
        assert_eq!(
            e.key.as_deref(),
            Some("server.metrics_access.basic_auth.username")
        );
    }

    #[test]
    fn an_empty_or_comment_only_file_is_all_defaults() {
        assert_eq!(Config::parse("", "f").unwrap(), Config::default());
        assert_eq!(
            Config::parse("# nothing\n", "f").unwrap(),
            Config::default()
        );
    }

    #[test]
    fn scrape_configs_are_checked() {
        let ok = "scrape_configs:\n  - job_name: node\n    static_configs: [{targets: ['127.0.0.1:9100']}]\n";
        assert_eq!(
            Config::parse(ok, "f").unwrap().scrape_jobs().unwrap().len(),
            1
        );
        let dup = "scrape_configs:\n  - job_name: a\n  - job_name: a\n";
        let err = Config::parse(dup, "f").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("scrape_configs"));
        let typo = "scrape_configs:\n  - job_name: a\n    scrape_intervall: 5s\n";
        let err = Config::parse(typo, "f").unwrap_err();
        assert_eq!(
            (err.line, err.key.as_deref()),
            (Some(3), Some("scrape_intervall"))
        );
    }

    #[test]
    fn probes_are_checked_and_get_their_secrets_at_wiring() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pg-password");
        std::fs::write(&pw, "pr0be-s3cret\n").unwrap();
        let yaml = format!(
            "probes:\n\
             \x20 - name: shop-api\n\
             \x20   kind: http\n\
             \x20   target: https://shop.example/healthz\n\
             \x20   service: shop\n\
             \x20   interval: 10s\n\
             \x20   expected_status: [200, 204]\n\
             \x20   body_regex: '\"status\":\"ok\"'\n\
             \x20   tls: {{insecure_skip_verify: true}}\n\
             \x20 - name: shop-db\n\
             \x20   kind: postgres\n\
             \x20   target: postgres://shop:url-s3cret@db:5432/shop\n\
             \x20   password: {{file: {}}}\n\
             \x20 - name: solana\n\
             \x20   kind: jsonrpc\n\
             \x20   target: http://127.0.0.1:8899\n\
             \x20   method: getSlot\n\
             \x20   params: [{{commitment: finalized}}]\n\
             \x20   expected_result: ok\n",
            pw.display()
        );
        let c = Config::parse(&yaml, "f").unwrap();
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("pr0be-s3cret") && !debug.contains("url-s3cret"),
            "{debug}"
        );
        let probes = c.probes().unwrap();
        let specs: Vec<&ProbeSpec> = probes.iter().map(Probe::spec).collect();
        assert_eq!(specs[0].service, "shop");
        assert_eq!(specs[0].interval, Duration::from_secs(10));
        assert_eq!(specs[0].timeout, dozor_ingest::probe::DEFAULT_TIMEOUT);
        assert_eq!(specs[0].expected_status, [200, 204]);
        assert!(!specs[0].dependency);
        assert_eq!(specs[1].service, "shop-db");
        assert!(specs[1].dependency, "postgres is a dependency by default");
        assert_eq!(specs[1].password.as_ref().unwrap().expose(), "pr0be-s3cret");
        assert_eq!(
            specs[2].params,
            Some(serde_json::json!([{"commitment": "finalized"}]))
        );
        assert_eq!(specs[2].expected_result, Some(serde_json::json!("ok")));
        // Environment overrides round-trip the whole configuration, probes included.
        let (again, _) = c
            .clone()
            .with_env(env(&[("DOZOR_SERVER__LISTEN", "127.0.0.1:2")]))
            .unwrap();
        assert_eq!(again.probes, c.probes);

        let wrong = "probes:\n  - name: db\n    kind: postgres\n    target: postgres://u@h/d\n    method: getHealth\n";
        let err = Config::parse(wrong, "f").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("probes"));
        assert_eq!(
            err.message,
            "probes[db].method: only for kind jsonrpc, not postgres"
        );
        let dup = "probes:\n  - {name: a, kind: tcp, target: 'h:1'}\n  - {name: a, kind: tcp, target: 'h:2'}\n";
        assert!(
            Config::parse(dup, "f")
                .unwrap_err()
                .message
                .contains("twice")
        );
        let typo = "probes:\n  - name: a\n    kind: tcp\n    target: h:1\n    intervall: 5s\n";
        let err = Config::parse(typo, "f").unwrap_err();
        assert_eq!((err.line, err.key.as_deref()), (Some(5), Some("intervall")));
        let kind = "probes:\n  - name: a\n    kind: smtp\n    target: h:1\n";
        let err = Config::parse(kind, "f").unwrap_err();
        assert_eq!((err.line, err.key.as_deref()), (Some(3), Some("kind")));
        let missing_ca = "probes:\n  - name: a\n    kind: tls\n    target: h:443\n    tls: {ca_file: /nonexistent/ca.pem}\n";
        let c = Config::parse(missing_ca, "f").unwrap();
        assert!(
            c.probes()
                .unwrap_err()
                .message
                .contains("cannot read CA file")
        );
    }

    #[test]
    fn tsdb_settings_map_to_engine_options() {
        let c = Config::parse(
            "tsdb:\n  retention: 0s\n  fsync: always\n  out_of_order_window: 1m\n",
            "f",
        )
        .unwrap();
        let o = c.tsdb.options();
        assert_eq!(o.retention_ms, None);
        assert_eq!(o.fsync, dozor_tsdb::FsyncPolicy::Always);
        assert_eq!(o.out_of_order_window_ms, 60_000);
        let err = Config::parse("tsdb:\n  fsync: sometimes\n", "dozor.yml").unwrap_err();
        assert_eq!((err.line, err.key.as_deref()), (Some(2), Some("fsync")));
    }

    #[test]
    fn a_section_with_every_key_commented_out_is_defaults() {
        let c = Config::parse("state:\n  # url: postgres://x\nauth:\n", "f").unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn a_partial_file_keeps_defaults_for_the_rest() {
        let c = Config::parse(
            "server:\n  listen: 0.0.0.0:9000\nauth:\n  access_token_ttl: 5m\n",
            "f",
        )
        .unwrap();
        assert_eq!(c.server.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(
            c.server.max_body_bytes,
            ServerConfig::default().max_body_bytes
        );
        assert_eq!(c.auth.access_token_ttl, Duration::from_secs(300));
        assert_eq!(
            c.auth.refresh_token_ttl,
            AuthConfig::default().refresh_token_ttl
        );
    }

    #[test]
    fn unknown_keys_are_errors_naming_file_line_and_key() {
        let err = Config::parse(
            "data_dir: /x\nserver:\n  listen: 127.0.0.1:1\n  listn: 2\n",
            "dozor.yml",
        )
        .unwrap_err();
        assert_eq!(err.line, Some(4));
        assert_eq!(err.key.as_deref(), Some("listn"));
        let text = err.to_string();
        assert!(
            text.starts_with("dozor.yml:4: key `listn`: unknown field `listn`"),
            "{text}"
        );
    }

    #[test]
    fn bad_types_are_errors_naming_line_and_key() {
        let err = Config::parse("server:\n  max_body_bytes: lots\n", "dozor.yml").unwrap_err();
        assert_eq!(
            (err.line, err.key.as_deref()),
            (Some(2), Some("max_body_bytes"))
        );
        let err = Config::parse("auth:\n  refresh_token_ttl: forever\n", "dozor.yml").unwrap_err();
        assert_eq!(
            (err.line, err.key.as_deref()),
            (Some(2), Some("refresh_token_ttl"))
        );
        assert!(err.message.contains("invalid duration"), "{err}");
        let err = Config::parse("server:\n  listen: not-an-address\n", "dozor.yml").unwrap_err();
        assert_eq!((err.line, err.key.as_deref()), (Some(2), Some("listen")));
    }

    #[test]
    fn broken_yaml_is_an_error_with_a_line() {
        let err = Config::parse("server: [\n", "dozor.yml").unwrap_err();
        assert_eq!(err.line, Some(1));
    }

    #[test]
    fn environment_overrides_file_values() {
        let c = Config::parse("server:\n  listen: 127.0.0.1:1\n", "f").unwrap();
        let (c, warnings) = c
            .with_env(env(&[
                ("DOZOR_SERVER__LISTEN", "127.0.0.1:2"),
                ("DOZOR_SERVER__MAX_BODY_BYTES", "1024"),
                ("DOZOR_DATA_DIR", "/var/lib/dozor"),
                ("DOZOR_AUTH__ACCESS_TOKEN_TTL", "1m"),
                ("DOZOR_ADMIN_PASSWORD", "not a config key"),
                ("PATH", "/bin"),
            ]))
            .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:2");
        assert_eq!(c.server.max_body_bytes, 1024);
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/dozor"));
        assert_eq!(c.auth.access_token_ttl, Duration::from_secs(60));
    }

    #[test]
    fn environment_errors_name_the_variable_and_unknown_ones_warn() {
        let err = Config::default()
            .with_env(env(&[("DOZOR_SERVER__MAX_BODY_BYTES", "lots")]))
            .unwrap_err();
        assert_eq!(
            err.source.as_deref(),
            Some("environment variable DOZOR_SERVER__MAX_BODY_BYTES")
        );
        assert_eq!(err.key.as_deref(), Some("server.max_body_bytes"));
        let (_, warnings) = Config::default()
            .with_env(env(&[("DOZOR_SERVR__LISTEN", "x")]))
            .unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("servr.listen"), "{warnings:?}");
    }

    #[test]
    fn secrets_come_inline_or_from_files_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pg-url");
        std::fs::write(&file, "postgres://dozor:s3cret@db/dozor\n").unwrap();
        let yaml = format!(
            "state:\n  url:\n    file: {}\nauth:\n  jwt_secret: inline-s3cret\n",
            file.display()
        );
        let c = Config::parse(&yaml, "f").unwrap();
        assert_eq!(c.state_url().unwrap(), "postgres://dozor:s3cret@db/dozor");
        assert_eq!(
            c.auth.jwt_secret.as_ref().unwrap().reveal().unwrap(),
            "inline-s3cret"
        );
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn the_documented_example_parses() {
        let example = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/dozor.example.yml"
        );
        let text = std::fs::read_to_string(example).unwrap();
        let c = Config::parse(&text, example).unwrap();
        assert_eq!(c.query, QueryConfig::default());
    }

    #[test]
    fn query_limits_come_from_the_query_section() {
        let c = Config::parse(
            "query:\n  max_samples: 1000\n  timeout: 30s\n  lookback_delta: 1m\n",
            "f",
        )
        .unwrap();
        let l = c.query.limits();
        assert_eq!(l.max_samples, 1000);
        assert_eq!(l.timeout, Duration::from_secs(30));
        assert_eq!(l.lookback_ms, 60_000);
        assert_eq!(
            Config::default().query.limits(),
            dozor_api::QueryLimits::default()
        );
        let err = Config::parse("query:\n  max_sample: 1\n", "f").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("max_sample"));
    }
}
