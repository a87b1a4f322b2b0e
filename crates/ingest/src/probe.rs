//! The probe collector: checks that services answer, like Prometheus' blackbox_exporter,
//! and stores the outcome as metrics through the same [`Appender`] the scrape engine uses.
//!
//! A [`ProbeSpec`] names a check of one [`ProbeKind`]: an HTTP(S) request (status code,
//! optional body regex), a TLS handshake (certificate expiry), a TCP connect, a PostgreSQL
//! `SELECT 1`, a Redis `PING`, or a JSON-RPC call (e.g. Solana's `getHealth`). [`Probe::new`]
//! checks the spec and prepares what it needs (the compiled regex, the rustls client
//! configuration); [`run`] runs every probe on its own interval until shutdown.
//!
//! Each check yields blackbox_exporter's series — `probe_success`, `probe_duration_seconds`,
//! `probe_http_status_code`, `probe_ssl_earliest_cert_expiry` (Unix seconds, the earliest
//! `notAfter` of the chain the server sent), `probe_dns_lookup_time_seconds` — plus
//! `probe_jsonrpc_result` for a numeric JSON-RPC result, all labelled `job="probe"`,
//! `instance` (the target, without credentials), `probe` (the name), `service` and `kind`.
//! A series a check no longer produces, and every series of a probe at shutdown, gets a
//! staleness marker. The latest outcome of every probe is also kept in a [`ProbeRegistry`],
//! which the API's health routes read.
//!
//! TLS is rustls on the `ring` provider, passed to each client configuration explicitly (no
//! process-wide provider is installed). HTTP goes over hyper's HTTP/1.1 connection directly
//! rather than through reqwest: the probe needs the TLS session itself (for the certificate
//! chain) and its own DNS timing, and it must not follow redirects. The scrape engine sends
//! its requests through the same client (`checks::http`).
//!
//! Architecture invariant: no secret (a password, a bearer token, the password inside a
//! PostgreSQL URL) reaches a label, a log line or [`ProbeStatus::error`]; the `Debug` of a
//! [`ProbeSpec`] hides them too.

pub(crate) mod checks;
pub(crate) mod tls;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use dozor_model::labels::{METRIC_NAME, stale_nan};
use dozor_model::time::now_ms;
use dozor_model::{Labels, Sample, TenantId};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::Batch;
use crate::scrape::Appender;
use crate::source::stopped;

pub use tls::not_after;

/// What a probe checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    /// An HTTP(S) request: status code, latency, optional body regex, certificate expiry.
    Http,
    /// A TCP connect.
    Tcp,
    /// A TLS handshake over TCP: certificate expiry.
    Tls,
    /// A PostgreSQL connection and `SELECT 1`.
    Postgres,
    /// A Redis `PING`.
    Redis,
    /// A JSON-RPC 2.0 call over HTTP(S).
    Jsonrpc,
}

impl ProbeKind {
    /// The `kind` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Http => "http",
            ProbeKind::Tcp => "tcp",
            ProbeKind::Tls => "tls",
            ProbeKind::Postgres => "postgres",
            ProbeKind::Redis => "redis",
            ProbeKind::Jsonrpc => "jsonrpc",
        }
    }

    /// Whether probes of this kind are dependencies (databases, caches) unless told.
    pub fn is_dependency_by_default(self) -> bool {
        matches!(self, ProbeKind::Postgres | ProbeKind::Redis)
    }
}

impl fmt::Display for ProbeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How TLS connections of a probe verify the server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// PEM file of the CA certificates to trust instead of the system's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (the expiry is still reported).
    pub insecure_skip_verify: bool,
    /// The name to verify and send as SNI instead of the target's host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

/// A secret string: its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Hidden(String);

impl Hidden {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Hidden {
        Hidden(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Hidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<hidden>")
    }
}

/// One probe as configured: what to check, how often, and how to label it. Its `Debug`
/// shows the target without credentials and hides the secrets.
#[derive(Clone, PartialEq)]
pub struct ProbeSpec {
    /// Unique name (the `probe` label).
    pub name: String,
    /// The logical service it checks (the `service` label; the health routes group by it).
    pub service: String,
    /// What to check.
    pub kind: ProbeKind,
    /// `http(s)://…` for http and jsonrpc, `postgres://user@host:port/db` for postgres,
    /// `host:port` for the others.
    pub target: String,
    /// How often to check.
    pub interval: Duration,
    /// Give up on a check after this long.
    pub timeout: Duration,
    /// Listed by the dependencies health route.
    pub dependency: bool,
    /// The tenant the samples belong to.
    pub tenant: TenantId,
    /// PostgreSQL or Redis password.
    pub password: Option<Hidden>,
    /// HTTP and JSON-RPC: sent as `Authorization: Bearer …`.
    pub bearer_token: Option<Hidden>,
    /// HTTP: status codes that count as success (empty: any 2xx).
    pub expected_status: Vec<u16>,
    /// HTTP: a regex the body must match.
    pub body_regex: Option<String>,
    /// HTTPS, JSON-RPC over HTTPS and tls: how to verify the server.
    pub tls: Option<TlsSettings>,
    /// JSON-RPC: the method to call.
    pub method: Option<String>,
    /// JSON-RPC: its params (default `[]`).
    pub params: Option<serde_json::Value>,
    /// JSON-RPC: the result that counts as success (default: any result without `error`).
    pub expected_result: Option<serde_json::Value>,
}

impl fmt::Debug for ProbeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeSpec")
            .field("name", &self.name)
            .field("service", &self.service)
            .field("kind", &self.kind)
            .field("target", &display_target(&self.target))
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

/// A target as shown in labels, statuses and logs: without the password of its URL and,
/// for PostgreSQL URLs, without the query (which may hold `password=`).
pub fn display_target(target: &str) -> String {
    redact_target(target).0
}

/// Default interval of a probe.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Default timeout of a probe.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

impl ProbeSpec {
    /// A spec with defaults: service = name, 30 s interval, 5 s timeout, default tenant,
    /// dependency by kind.
    pub fn new(name: impl Into<String>, kind: ProbeKind, target: impl Into<String>) -> ProbeSpec {
        let name = name.into();
        ProbeSpec {
            service: name.clone(),
            name,
            kind,
            target: target.into(),
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            dependency: kind.is_dependency_by_default(),
            tenant: TenantId::default_tenant(),
            password: None,
            bearer_token: None,
            expected_status: Vec::new(),
            body_regex: None,
            tls: None,
            method: None,
            params: None,
            expected_result: None,
        }
    }

    /// Checks the spec without I/O; errors read `probes[NAME].FIELD: problem`.
    pub fn check(&self) -> Result<(), String> {
        let at = |field: &str, e: &str| format!("probes[{}].{field}: {e}", self.name);
        if self.name.is_empty() {
            return Err("probes[]: name must not be empty".into());
        }
        if self.service.is_empty() {
            return Err(at("service", "must not be empty"));
        }
        if self.interval < Duration::from_millis(100) {
            return Err(at("interval", "must be at least 100ms"));
        }
        if self.timeout.is_zero() || self.timeout > self.interval {
            return Err(at("timeout", "must be above zero and not exceed interval"));
        }
        let kind = self.kind;
        let only = |field: &str, present: bool, kinds: &[ProbeKind]| {
            if present && !kinds.contains(&kind) {
                let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
                Err(at(
                    field,
                    &format!("only for kind {}, not {kind}", names.join(" or ")),
                ))
            } else {
                Ok(())
            }
        };
        use ProbeKind::{Http, Jsonrpc, Postgres, Redis, Tls};
        only("password", self.password.is_some(), &[Postgres, Redis])?;
        only(
            "bearer_token",
            self.bearer_token.is_some(),
            &[Http, Jsonrpc],
        )?;
        only("expected_status", !self.expected_status.is_empty(), &[Http])?;
        only("body_regex", self.body_regex.is_some(), &[Http])?;
        only("tls", self.tls.is_some(), &[Http, Jsonrpc, Tls])?;
        only("method", self.method.is_some(), &[Jsonrpc])?;
        only("params", self.params.is_some(), &[Jsonrpc])?;
        only(
            "expected_result",
            self.expected_result.is_some(),
            &[Jsonrpc],
        )?;
        if let Some(bad) = self
            .expected_status
            .iter()
            .find(|c| !(100..=599).contains(*c))
        {
            return Err(at(
                "expected_status",
                &format!("{bad} is not an HTTP status"),
            ));
        }
        if let Some(r) = &self.body_regex {
            regex::Regex::new(r).map_err(|e| at("body_regex", &e.to_string()))?;
        }
        if let Some(t) = &self.tls
            && t.insecure_skip_verify
            && t.ca_file.is_some()
        {
            return Err(at(
                "tls",
                "ca_file and insecure_skip_verify exclude each other",
            ));
        }
        match kind {
            Http | Jsonrpc => {
                checks::parse_http_url(&self.target).map_err(|e| at("target", &e))?;
            }
            Postgres => {
                if !(self.target.starts_with("postgres://")
                    || self.target.starts_with("postgresql://"))
                {
                    return Err(at("target", "must be a postgres:// URL"));
                }
            }
            ProbeKind::Tcp | Tls | Redis => {
                checks::split_host_port(&self.target).map_err(|e| at("target", &e))?;
            }
        }
        if kind == Jsonrpc {
            match self.method.as_deref() {
                None | Some("") => return Err(at("method", "a JSON-RPC probe needs a method")),
                Some(_) => {}
            }
            if let Some(p) = &self.params
                && !(p.is_array() || p.is_object())
            {
                return Err(at("params", "must be a list or a map"));
            }
        }
        Ok(())
    }
}

/// The latest outcome of one probe, as the health routes show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeStatus {
    /// The probe's name.
    pub name: String,
    /// The service it checks.
    pub service: String,
    /// What it checks.
    pub kind: ProbeKind,
    /// The target, without credentials.
    pub target: String,
    /// Whether the health routes list it as a dependency.
    pub dependency: bool,
    /// The tenant it belongs to.
    #[serde(skip)]
    pub tenant: TenantId,
    /// The outcome of the latest check; `None` before the first.
    pub success: Option<bool>,
    /// How long the latest check took, seconds.
    pub duration_seconds: Option<f64>,
    /// Why the latest check failed (never holds a secret).
    pub error: Option<String>,
    /// When the latest check ran, ms since the epoch.
    pub checked_at: Option<i64>,
    /// HTTP status code of the latest answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status_code: Option<u16>,
    /// Earliest certificate expiry seen, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_expiry: Option<i64>,
    /// JSON-RPC result of the latest call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
}

/// The latest [`ProbeStatus`] of every probe, shared between the probe loops and the API.
/// Cheap to clone; no lock is held across an await.
#[derive(Debug, Clone, Default)]
pub struct ProbeRegistry(Arc<RwLock<BTreeMap<String, ProbeStatus>>>);

impl ProbeRegistry {
    /// An empty registry.
    pub fn new() -> ProbeRegistry {
        ProbeRegistry::default()
    }

    /// Records the latest status of a probe (keyed by its name).
    pub fn set(&self, status: ProbeStatus) {
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(status.name.clone(), status);
    }

    /// Every probe of `tenant`, by name.
    pub fn for_tenant(&self, tenant: &TenantId) -> Vec<ProbeStatus> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|s| &s.tenant == tenant)
            .cloned()
            .collect()
    }

    /// Every probe, by name.
    pub fn all(&self) -> Vec<ProbeStatus> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}

/// A probe ready to run: spec checked, regex compiled, TLS configured.
pub struct Probe {
    spec: ProbeSpec,
    /// `job`, `instance`, `probe`, `service`, `kind`.
    labels: Labels,
    /// The target as shown: credentials removed.
    display_target: String,
    /// Strings scrubbed from error texts.
    secrets: Vec<String>,
    body_regex: Option<regex::Regex>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Probe")
            .field("name", &self.spec.name)
            .field("kind", &self.spec.kind)
            .field("target", &self.display_target)
            .finish_non_exhaustive()
    }
}

/// What one check learned, whether or not it succeeded.
#[derive(Debug, Clone, Default)]
pub(crate) struct Findings {
    status_code: Option<u16>,
    cert_expiry: Option<i64>,
    dns_seconds: Option<f64>,
    result: Option<serde_json::Value>,
}

impl Probe {
    /// Checks `spec` and prepares the probe: compiles the regex and builds the TLS
    /// configuration (reading `tls.ca_file`, or the system's roots once per process).
    pub fn new(spec: ProbeSpec) -> Result<Probe, String> {
        spec.check()?;
        let (display_target, url_password) = redact_target(&spec.target);
        let mut secrets: Vec<String> = [
            url_password,
            spec.password.as_ref().map(|p| p.expose().to_owned()),
            spec.bearer_token.as_ref().map(|p| p.expose().to_owned()),
        ]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let labels = Labels::from_pairs([
            ("job", "probe"),
            ("instance", display_target.as_str()),
            ("probe", spec.name.as_str()),
            ("service", spec.service.as_str()),
            ("kind", spec.kind.as_str()),
        ])
        .map_err(|e| format!("probes[{}]: {e}", spec.name))?;
        let body_regex = spec
            .body_regex
            .as_deref()
            .map(regex::Regex::new)
            .transpose()
            .map_err(|e| format!("probes[{}].body_regex: {e}", spec.name))?;
        let wants_tls = match spec.kind {
            ProbeKind::Tls => true,
            ProbeKind::Http | ProbeKind::Jsonrpc => spec.target.starts_with("https://"),
            _ => false,
        };
        let tls = if wants_tls {
            let settings = spec.tls.clone().unwrap_or_default();
            let alpn = spec.kind != ProbeKind::Tls;
            Some(
                tls::client_config(&settings, alpn)
                    .map_err(|e| format!("probes[{}].tls: {e}", spec.name))?,
            )
        } else {
            None
        };
        Ok(Probe {
            spec,
            labels,
            display_target,
            secrets,
            body_regex,
            tls,
        })
    }

    /// The probe's spec.
    pub fn spec(&self) -> &ProbeSpec {
        &self.spec
    }

    /// The labels of its series, without `__name__`.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// The status before the first check.
    pub fn pending_status(&self) -> ProbeStatus {
        ProbeStatus {
            name: self.spec.name.clone(),
            service: self.spec.service.clone(),
            kind: self.spec.kind,
            target: self.display_target.clone(),
            dependency: self.spec.dependency,
            tenant: self.spec.tenant.clone(),
            success: None,
            duration_seconds: None,
            error: None,
            checked_at: None,
            http_status_code: None,
            cert_expiry: None,
            result: None,
        }
    }

    /// Runs one check now (bounded by the timeout) and returns its status and samples.
    pub async fn check_once(&self) -> (ProbeStatus, Batch) {
        let t = now_ms();
        let started = Instant::now();
        let mut found = Findings::default();
        let outcome = match tokio::time::timeout(self.spec.timeout, self.check(&mut found)).await {
            Ok(r) => r,
            Err(_) => Err(format!("timed out after {}", humanize(self.spec.timeout))),
        };
        let elapsed = started.elapsed().as_secs_f64();
        let error = outcome.err().map(|e| self.scrub(&e));
        if let Some(e) = &error {
            tracing::debug!(probe = %self.spec.name, error = %e, "probe failed");
        }
        let numeric = found.result.as_ref().and_then(serde_json::Value::as_f64);
        let mut batch: Batch = Vec::new();
        let mut push = |name: &str, v: Option<f64>| {
            if let Some(v) = v
                && let Ok(l) = self.labels.with(METRIC_NAME, name)
            {
                batch.push((l, vec![Sample { t, v }]));
            }
        };
        push(
            "probe_success",
            Some(if error.is_none() { 1.0 } else { 0.0 }),
        );
        push("probe_duration_seconds", Some(elapsed));
        push("probe_http_status_code", found.status_code.map(f64::from));
        push(
            "probe_ssl_earliest_cert_expiry",
            found.cert_expiry.map(|s| s as f64),
        );
        push("probe_dns_lookup_time_seconds", found.dns_seconds);
        push("probe_jsonrpc_result", numeric);
        let status = ProbeStatus {
            success: Some(error.is_none()),
            duration_seconds: Some(elapsed),
            error,
            checked_at: Some(t),
            http_status_code: found.status_code,
            cert_expiry: found.cert_expiry,
            result: found.result,
            ..self.pending_status()
        };
        (status, batch)
    }

    async fn check(&self, found: &mut Findings) -> Result<(), String> {
        let spec = &self.spec;
        let bearer = spec.bearer_token.as_ref().map(Hidden::expose);
        match spec.kind {
            ProbeKind::Http => {
                let read_body = self.body_regex.is_some();
                let request = checks::HttpRequest {
                    method: None,
                    headers: &[],
                    basic: None,
                    url: &spec.target,
                    body: None,
                    bearer,
                    accept: "*/*",
                    tls: self.tls.as_ref(),
                    server_name: self.server_name(),
                    max_body: if read_body { checks::MAX_BODY } else { 0 },
                };
                let checks::HttpResponse { status, body, .. } =
                    checks::http(request, found).await?;
                let ok = if spec.expected_status.is_empty() {
                    (200..300).contains(&status)
                } else {
                    spec.expected_status.contains(&status)
                };
                if !ok {
                    return Err(format!("unexpected HTTP status {status}"));
                }
                if let Some(re) = &self.body_regex
                    && !re.is_match(&String::from_utf8_lossy(&body))
                {
                    return Err(format!("body does not match /{}/", re.as_str()));
                }
                Ok(())
            }
            ProbeKind::Jsonrpc => {
                let call = checks::JsonRpcCall {
                    url: &spec.target,
                    method: spec.method.as_deref().unwrap_or_default(),
                    params: spec
                        .params
                        .clone()
                        .unwrap_or_else(|| serde_json::Value::Array(Vec::new())),
                    expected: spec.expected_result.as_ref(),
                    bearer,
                    tls: self.tls.as_ref(),
                    server_name: self.server_name(),
                };
                checks::jsonrpc(call, found).await
            }
            ProbeKind::Tcp => {
                let (host, port) = checks::split_host_port(&spec.target)?;
                checks::connect(&host, port, found).await.map(drop)
            }
            ProbeKind::Tls => {
                let (host, port) = checks::split_host_port(&spec.target)?;
                let tcp = checks::connect(&host, port, found).await?;
                let config = self
                    .tls
                    .as_ref()
                    .ok_or("BUG: tls probe without TLS configuration")?;
                let name = self.server_name().unwrap_or(&host);
                checks::tls_handshake(tcp, name, config, found)
                    .await
                    .map(drop)
            }
            ProbeKind::Postgres => {
                checks::postgres(&spec.target, spec.password.as_ref().map(Hidden::expose)).await
            }
            ProbeKind::Redis => {
                let (host, port) = checks::split_host_port(&spec.target)?;
                let tcp = checks::connect(&host, port, found).await?;
                checks::redis(tcp, spec.password.as_ref().map(Hidden::expose)).await
            }
        }
    }

    fn server_name(&self) -> Option<&str> {
        self.spec.tls.as_ref()?.server_name.as_deref()
    }

    /// Removes every secret of this probe from `text`.
    fn scrub(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_owned(), |t, s| t.replace(s.as_str(), "<redacted>"))
    }

    /// Staleness markers for every series this probe may have written.
    fn retired(&self, previous: &HashSet<Labels>) -> Batch {
        let t = now_ms();
        previous
            .iter()
            .map(|l| (l.clone(), vec![Sample { t, v: stale_nan() }]))
            .collect()
    }
}

/// `5s`, `1.5s`, `250ms`: enough for error texts without another dependency.
fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

/// The target as shown (labels, status, logs) and the password it held, if any:
/// `postgres://user:pw@host/db?sslmode=require` → `postgres://user@host/db`.
fn redact_target(target: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = target.split_once("://") else {
        return (target.to_owned(), None);
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (authority, password) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, pw)) => (format!("{user}@{host}"), Some(pw.to_owned())),
            None => (authority.to_owned(), None),
        },
        None => (authority.to_owned(), None),
    };
    // PostgreSQL URLs may carry `password=` in the query: show no query at all.
    let path = if scheme.starts_with("postgres") {
        path.split(['?', '#']).next().unwrap_or_default()
    } else {
        path
    };
    (format!("{scheme}://{authority}{path}"), password)
}

/// Runs every probe on its interval until `shutdown` turns true, storing samples through
/// `appender` and each latest status in `registry`. Probes are listed in the registry
/// (unchecked) from the start. At shutdown every series written gets a staleness marker.
pub async fn run(
    probes: Vec<Probe>,
    appender: Arc<dyn Appender>,
    registry: ProbeRegistry,
    shutdown: watch::Receiver<bool>,
) {
    let mut tasks = Vec::new();
    for probe in probes {
        registry.set(probe.pending_status());
        tasks.push(tokio::spawn(run_probe(
            probe,
            Arc::clone(&appender),
            registry.clone(),
            shutdown.clone(),
        )));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn run_probe(
    probe: Probe,
    appender: Arc<dyn Appender>,
    registry: ProbeRegistry,
    mut stop: watch::Receiver<bool>,
) {
    let mut previous: HashSet<Labels> = HashSet::new();
    let mut tick = tokio::time::interval(probe.spec.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stopped(&mut stop) => break,
        }
        let (status, mut batch) = tokio::select! {
            r = probe.check_once() => r,
            () = stopped(&mut stop) => break,
        };
        let current: HashSet<Labels> = batch.iter().map(|(l, _)| l.clone()).collect();
        let t = status.checked_at.unwrap_or_else(now_ms);
        for gone in previous.difference(&current) {
            batch.push((gone.clone(), vec![Sample { t, v: stale_nan() }]));
        }
        previous = current;
        registry.set(status);
        store(&probe, &appender, batch).await;
    }
    let batch = probe.retired(&previous);
    store(&probe, &appender, batch).await;
}

async fn store(probe: &Probe, appender: &Arc<dyn Appender>, batch: Batch) {
    if batch.is_empty() {
        return;
    }
    let appender = Arc::clone(appender);
    let tenant = probe.spec.tenant.clone();
    match tokio::task::spawn_blocking(move || appender.append(&tenant, batch)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(probe = %probe.spec.name, error = %e, "cannot store probe samples")
        }
        Err(e) => tracing::error!(error = %e, "probe store task failed"),
    }
}

/// POSTs a JSON body to an `http://` or `https://` URL (verified against the system's
/// roots) and returns the status code; for the notification receivers. The body of the
/// answer is read up to 64 KiB and dropped.
pub async fn post_json(
    url: &str,
    body: Vec<u8>,
    timeout: std::time::Duration,
) -> Result<u16, String> {
    send_http(url, "POST", &[], Some(body), timeout).await
}

/// Sends `method` with `headers` (values marked sensitive: never logged) and an optional
/// body (JSON unless a `Content-Type` header says otherwise) to an `http://` or `https://`
/// URL, verified against the system's roots; the status code. For the notification
/// receivers and the automatic actions.
pub async fn send_http(
    url: &str,
    method: &str,
    headers: &[(String, String)],
    body: Option<Vec<u8>>,
    timeout: std::time::Duration,
) -> Result<u16, String> {
    send_http_body(url, method, headers, body, timeout)
        .await
        .map(|(status, _)| status)
}

/// [`send_http`], with the answer's body (at most 64 KiB read).
pub async fn send_http_body(
    url: &str,
    method: &str,
    headers: &[(String, String)],
    body: Option<Vec<u8>>,
    timeout: std::time::Duration,
) -> Result<(u16, Vec<u8>), String> {
    // The default client configuration (system roots) is built once.
    static DEFAULT_TLS: std::sync::OnceLock<Result<Arc<rustls::ClientConfig>, String>> =
        std::sync::OnceLock::new();
    let tls = if url.starts_with("https://") {
        Some(
            DEFAULT_TLS
                .get_or_init(|| tls::client_config(&TlsSettings::default(), true))
                .as_ref()
                .map_err(Clone::clone)?,
        )
    } else {
        None
    };
    let request = checks::HttpRequest {
        url,
        body,
        method: Some(method),
        headers,
        bearer: None,
        basic: None,
        accept: "application/json",
        tls,
        server_name: None,
        max_body: 64 << 10,
    };
    let mut found = Findings::default();
    tokio::time::timeout(timeout, checks::http(request, &mut found))
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
        .map(|r| (r.status, r.body.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_lose_their_passwords_and_postgres_queries() {
        assert_eq!(
            redact_target("postgres://app:s3cret@db:5432/shop?sslmode=require&password=x"),
            (
                "postgres://app@db:5432/shop".to_owned(),
                Some("s3cret".to_owned())
            )
        );
        assert_eq!(
            redact_target("https://user:pw@rpc.example/path?x=1"),
            (
                "https://user@rpc.example/path?x=1".to_owned(),
                Some("pw".to_owned())
            )
        );
        assert_eq!(
            redact_target("127.0.0.1:6379"),
            ("127.0.0.1:6379".to_owned(), None)
        );
        assert_eq!(
            redact_target("postgres://postgres@127.0.0.1/test"),
            ("postgres://postgres@127.0.0.1/test".to_owned(), None)
        );
    }

    #[test]
    fn specs_reject_fields_of_other_kinds_and_bad_targets() {
        let mut s = ProbeSpec::new("db", ProbeKind::Postgres, "postgres://u@h/d");
        assert!(s.check().is_ok());
        s.method = Some("getHealth".into());
        assert_eq!(
            s.check().unwrap_err(),
            "probes[db].method: only for kind jsonrpc, not postgres"
        );
        let s = ProbeSpec::new("db", ProbeKind::Postgres, "mysql://h");
        assert!(s.check().unwrap_err().starts_with("probes[db].target"));
        let s = ProbeSpec::new("c", ProbeKind::Tcp, "no-port");
        assert!(s.check().unwrap_err().starts_with("probes[c].target"));
        let s = ProbeSpec::new("rpc", ProbeKind::Jsonrpc, "http://127.0.0.1:1/");
        assert_eq!(
            s.check().unwrap_err(),
            "probes[rpc].method: a JSON-RPC probe needs a method"
        );
        let mut s = ProbeSpec::new("web", ProbeKind::Http, "ftp://x/");
        assert!(s.check().unwrap_err().starts_with("probes[web].target"));
        s.target = "http://x/".into();
        s.body_regex = Some("(".into());
        assert!(s.check().unwrap_err().starts_with("probes[web].body_regex"));
        s.body_regex = None;
        s.timeout = Duration::from_secs(60);
        assert!(s.check().unwrap_err().starts_with("probes[web].timeout"));
    }

    #[test]
    fn secrets_never_show_in_debug_or_errors() {
        let mut s = ProbeSpec::new("db", ProbeKind::Postgres, "postgres://u:pw-in-url@h/d");
        s.password = Some(Hidden::new("other-secret"));
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("other-secret") && !debug.contains("pw-in-url"),
            "{debug}"
        );
        let p = Probe::new(s).unwrap();
        assert_eq!(
            p.scrub("failed for u:pw-in-url and other-secret"),
            "failed for u:<redacted> and <redacted>"
        );
        assert!(!format!("{p:?}").contains("pw-in-url"));
        assert_eq!(p.pending_status().target, "postgres://u@h/d");
    }
}
