//! Dozor's HTTP API: the axum router, the route-policy registry, authentication, the tenant
//! context, Dozor's own metrics and the embedded UI.
//!
//! Overview:
//! - [`AppState`] is what every handler shares: the state [`Store`], the [`AuditLog`], the JWT
//!   keys, settings, [`SelfMetrics`] and the [`ProbeRegistry`] behind the health routes.
//! - [`routes::registry`] lists every route with its [`Policy`]; [`app`] turns it into a
//!   router whose [`auth::authorize`] middleware enforces the policies (deny by default) and
//!   hands handlers a [`Principal`] carrying the request's [`TenantId`].
//! - The metric read routes include Prometheus' query API, answered by `dozor_promql` with
//!   the limits of [`ApiSettings::query`]: [`params`] reads Prometheus' parameters (query
//!   string or form body), and the private `promjson` writes Prometheus' JSON byte for byte.
//! - [`serve`] runs the router until a shutdown signal, then finishes in-flight requests.
//!
//! Requests enter through [`serve`]; data leaves only through the stores passed in
//! [`AppState`]. Architecture invariants:
//! - The HTTP layer never touches files of the engines directly; it calls their APIs.
//! - Every route is in the registry; a route without a policy answers 403.
//! - A handler gets its tenant from the [`Principal`], never from the request body.
//! - Every state change and every read of security data appends to the audit chain before
//!   the response is sent.
//!
//! ```no_run
//! # async fn demo(state: dozor_api::AppState) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9470").await?;
//! dozor_api::serve(listener, dozor_api::app(state), std::future::pending()).await
//! # }
//! ```

pub mod auth;
mod error;
pub mod history;
mod json;
pub mod llm;
pub mod oidc;
pub mod params;
pub mod policy;
mod promjson;
pub mod reports;
pub mod request_id;
pub mod routes;
pub mod self_metrics;
pub mod tls;
pub mod transport;
mod ui;
pub mod visibility;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use dozor_audit::{AuditLog, Entry};
pub use dozor_ingest::Limits as IngestLimits;
pub use dozor_ingest::probe::ProbeRegistry;
use dozor_model::time::{Millis, now_ms};
use dozor_state::Store;
use dozor_tsdb::Tsdb;
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;

pub use auth::{AuthPolicy, ClientAddr, JwtKeys, Principal};
pub use dozor_model::TenantId;
pub use dozor_promql::EngineOptions as QueryLimits;
pub use error::ApiError;
pub use json::JsonBody;
pub use policy::{Policy, Registry, RouteSpec};
pub use self_metrics::SelfMetrics;

/// Settings of the API layer, from the `server` and `auth` sections of `dozor.yml`.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Where Dozor keeps its data (for storage statistics and audit verification).
    pub data_dir: PathBuf,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// How long a refresh token lives.
    pub refresh_ttl: Duration,
    /// Login guards and the password policy.
    pub auth: auth::AuthPolicy,
    /// Who may read `/metrics` and `/api/v1/metrics/export` (`server.metrics_access`).
    pub metrics_access: auth::MetricsAccess,
    /// TLS (for HSTS), requests per principal, trusted proxies (`server:`).
    pub transport: transport::Transport,
    /// Service ownership, for the developer role's view (`access:`).
    pub access: visibility::AccessPolicy,
    /// Login through an OpenID Connect provider (`auth.oidc`); `None`: off.
    pub oidc: Option<Arc<oidc::Oidc>>,
    /// A language model for summaries (`ai.llm`); `None`: Dozor's own sentences.
    pub llm: Option<llm::LlmSettings>,
    /// Service-level objectives, with their tenants (`slos`).
    pub slos: Vec<(TenantId, dozor_rules::slo::Slo)>,
    /// What applications' audit events are kept, and which of their fields are masked
    /// (`audit:`).
    pub audit: routes::audit::AuditPolicy,
    /// Per-request limits of the ingest decoders.
    pub ingest_limits: IngestLimits,
    /// Ingest requests served at once; more get 429.
    pub max_concurrent_ingest: usize,
    /// Limits and defaults of PromQL queries (`query:` in `dozor.yml`): max samples,
    /// timeout, lookback.
    pub query: QueryLimits,
    /// What PII masking does with each kind before logs are stored (`logs.pii`).
    pub pii: dozor_ingest::pii::PiiConfig,
    /// The secret the PII hashes are keyed with (with the tenant).
    pub pii_salt: Secret,
    /// The parsing rules and level normalisation every log record passes (`logs.pipeline`).
    pub pipeline: Arc<dozor_ingest::pipeline::Pipeline>,
    /// The connectors and their counters (the binary registers them; `/readyz` and
    /// `/api/v1/health` report them).
    pub sources: dozor_ingest::source::SourceRegistry,
    /// The rule groups the binary evaluates (`/api/v1/rules` and `/api/v1/alerts` read
    /// them).
    pub rules: dozor_rules::RuleSet,
    /// Forwarding of ingest to Kafka (`publish.kafka[].forward`); empty: none.
    pub forward: Arc<dozor_ingest::kafka_out::Forwarder>,
    /// Every tenant's alerts, silences and notification groups (`alerting:`), which the
    /// Alertmanager API v2 serves.
    pub notifications: Arc<dozor_alerting::shared::Notifications>,
    /// The secrets that authenticate chat buttons coming back.
    pub chat: ChatSecrets,
    /// Incidents' status changes, for the binary to pass on (PagerDuty's `acknowledge`);
    /// sent whether anyone listens or not.
    pub incident_changes: tokio::sync::broadcast::Sender<dozor_alerting::incident::Change>,
    /// The cash-register pack, when it runs.
    pub kkt: Option<routes::kkt::KktSettings>,
}

/// Secrets of the chat integrations' inbound requests (`alerting.slack`,
/// `alerting.telegram`); `None`: that endpoint answers 404.
#[derive(Debug, Clone, Default)]
pub struct ChatSecrets {
    /// Slack's signing secret.
    pub slack_signing_secret: Option<Secret>,
    /// The Telegram webhook's secret token.
    pub telegram_webhook_secret: Option<Secret>,
}

/// Secret bytes whose `Debug` never shows them.
#[derive(Clone, Default)]
pub struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// The stores the API serves.
#[derive(Debug, Clone)]
pub struct Engines {
    /// Users, tokens, settings.
    pub store: Store,
    /// The audit chain.
    pub audit: Arc<AuditLog>,
    /// Metrics.
    pub tsdb: Arc<Tsdb>,
    /// Logs and events.
    pub logs: Arc<dozor_logs::Logs>,
}

struct Inner {
    store: Store,
    tsdb: Arc<Tsdb>,
    logs: Arc<dozor_logs::Logs>,
    masker: dozor_ingest::pii::Masker,
    probes: ProbeRegistry,
    ingest_permits: tokio::sync::Semaphore,
    audit: Arc<AuditLog>,
    jwt: JwtKeys,
    settings: ApiSettings,
    metrics: Arc<SelfMetrics>,
    started: Instant,
    started_ms: Millis,
    tokens: auth::TokenCache,
    sessions: auth::SessionCache,
    login_limiter: transport::RateBuckets,
    rate_buckets: transport::RateBuckets,
    fraud: routes::analytics::FraudState,
}

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    /// Assembles the state.
    pub fn new(
        engines: Engines,
        jwt: JwtKeys,
        settings: ApiSettings,
        metrics: Arc<SelfMetrics>,
    ) -> AppState {
        let Engines {
            store,
            audit,
            tsdb,
            logs,
        } = engines;
        // The binary checked the selectors when it loaded its configuration.
        let masker = dozor_ingest::pii::Masker::with_streams(
            &settings.pii,
            &dozor_logs::logql::stream_selector,
        )
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "logs.pii.streams: masking every stream alike");
            dozor_ingest::pii::Masker::new(&settings.pii)
        });
        AppState(Arc::new(Inner {
            store,
            tsdb,
            logs,
            masker,
            probes: ProbeRegistry::new(),
            ingest_permits: tokio::sync::Semaphore::new(settings.max_concurrent_ingest.max(1)),
            audit,
            jwt,
            settings,
            metrics,
            started: Instant::now(),
            started_ms: now_ms(),
            tokens: auth::TokenCache::default(),
            sessions: auth::SessionCache::default(),
            login_limiter: transport::RateBuckets::default(),
            rate_buckets: transport::RateBuckets::default(),
            fraud: routes::analytics::FraudState::default(),
        }))
    }

    /// The state store.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// The metric store.
    pub fn tsdb(&self) -> &Arc<Tsdb> {
        &self.0.tsdb
    }

    /// The log store.
    pub fn logs(&self) -> &Arc<dozor_logs::Logs> {
        &self.0.logs
    }

    /// What part of its tenant's data `principal` sees (its role's data classes and
    /// services).
    pub fn visibility(&self, principal: &Principal) -> Result<visibility::Visibility, ApiError> {
        visibility::Visibility::of(principal, &self.0.settings.access)
    }

    /// The caller's tenant's metrics as the caller may see them; `None`: no data yet. Every
    /// read route goes through it, so query results hold only what the role sees.
    pub fn metric_reader(
        &self,
        principal: &Principal,
    ) -> Result<Option<visibility::MetricReader>, ApiError> {
        let sight = self.visibility(principal)?;
        Ok(self
            .0
            .tsdb
            .existing(&principal.tenant)
            .map(|db| visibility::MetricReader::new(db, sight)))
    }

    /// The caller's tenant's logs and events as the caller may see them; `None`: no data
    /// yet.
    pub fn log_reader(
        &self,
        principal: &Principal,
    ) -> Result<Option<visibility::LogReader>, ApiError> {
        let sight = self.visibility(principal)?;
        Ok(self
            .0
            .logs
            .existing(&principal.tenant)
            .map(|db| visibility::LogReader::new(db, sight)))
    }

    /// PII masking of log records before they are stored.
    pub fn masker(&self) -> &dozor_ingest::pii::Masker {
        &self.0.masker
    }

    /// Every tenant's fraud detectors (`routes::analytics`).
    pub(crate) fn fraud(&self) -> &routes::analytics::FraudState {
        &self.0.fraud
    }

    /// The latest outcome of every probe, filled by the probe collector and read by the
    /// health routes. Starts empty; the binary hands a clone to `dozor_ingest::probe::run`.
    pub fn probes(&self) -> &ProbeRegistry {
        &self.0.probes
    }

    /// The connectors (file tails, Kafka, RabbitMQ, MQTT, NATS) and their counters.
    pub fn sources(&self) -> &dozor_ingest::source::SourceRegistry {
        &self.0.settings.sources
    }

    /// The rule groups and their alerts.
    pub fn rules(&self) -> &dozor_rules::RuleSet {
        &self.0.settings.rules
    }

    /// Every tenant's alerts, silences and notification groups.
    pub fn notifications(&self) -> &dozor_alerting::shared::Notifications {
        &self.0.settings.notifications
    }

    /// A permit for one ingest request, or 429 with `Retry-After` when
    /// `ingest.max_concurrent_requests` are already being served.
    pub fn ingest_permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        self.0
            .ingest_permits
            .try_acquire()
            .map_err(|_| ApiError::too_many_requests("too many concurrent ingest requests", 1))
    }

    /// The decoders' per-request limits.
    pub fn ingest_limits(&self) -> IngestLimits {
        self.0.settings.ingest_limits
    }

    /// The audit chain.
    pub fn audit(&self) -> &Arc<AuditLog> {
        &self.0.audit
    }

    /// API tokens seen recently (a revocation in this process clears it).
    pub fn token_cache(&self) -> &auth::TokenCache {
        &self.0.tokens
    }

    /// Sessions recently found revoked or live (a revocation in this process marks it).
    pub fn session_cache(&self) -> &auth::SessionCache {
        &self.0.sessions
    }

    /// Login attempts per client address.
    pub fn login_limiter(&self) -> &transport::RateBuckets {
        &self.0.login_limiter
    }

    /// Requests per principal (`server.rate_limit`).
    pub fn rate_buckets(&self) -> &transport::RateBuckets {
        &self.0.rate_buckets
    }

    /// The OpenID Connect client, when `auth.oidc` is configured.
    pub fn oidc(&self) -> Option<&Arc<oidc::Oidc>> {
        self.0.settings.oidc.as_ref()
    }

    /// The access-token keys.
    pub fn jwt(&self) -> &JwtKeys {
        &self.0.jwt
    }

    /// The API settings.
    pub fn settings(&self) -> &ApiSettings {
        &self.0.settings
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.0.settings.data_dir
    }

    /// Dozor's own metrics.
    pub fn metrics(&self) -> &Arc<SelfMetrics> {
        &self.0.metrics
    }

    /// How long the server has run.
    pub fn uptime(&self) -> Duration {
        self.0.started.elapsed()
    }

    /// When the server started, ms since the epoch.
    pub fn started_ms(&self) -> Millis {
        self.0.started_ms
    }

    /// Appends to the audit chain (off the async workers: it `fsync`s). The action it
    /// records must not be acknowledged if this fails.
    pub async fn audit_entry(&self, mut entry: Entry) -> Result<(), ApiError> {
        if entry.request_id.is_none() {
            entry.request_id = request_id::current();
        }
        let audit = Arc::clone(&self.0.audit);
        tokio::task::spawn_blocking(move || audit.append(entry))
            .await
            .map_err(ApiError::internal)??;
        Ok(())
    }

    /// Records that `principal` listed `target` (`action`, e.g. `user.list`) and how many
    /// items it was shown.
    pub async fn audit_listing(
        &self,
        principal: &Principal,
        source: String,
        action: &str,
        target: &str,
        items: usize,
    ) -> Result<(), ApiError> {
        let entry = Entry::new(
            principal.tenant.as_str(),
            principal.actor.as_str(),
            action,
            target,
            dozor_audit::Outcome::Success,
        )
        .source(source)
        .detail("items", items);
        self.audit_entry(entry).await
    }

    /// Appends a record of a refused or failed action; a failure to record it is logged,
    /// since the request is refused anyway.
    pub async fn audit_best_effort(&self, entry: Entry) {
        if let Err(e) = self.audit_entry(entry).await {
            tracing::error!(error = ?e, "cannot record a failed action in the audit chain");
        }
    }
}

/// The router of every registered route with its middleware:
/// request id → tracing → secure headers → self-metrics → compression → body limit →
/// [policy check (authentication, scope, tenant, rate) → handler], and the UI as fallback.
pub fn app(state: AppState) -> Router {
    let (policies, router) = routes::registry().into_parts();
    app_from_parts(state, policies, router)
}

/// [`app`] over the parts of a registry: its policy table and its router. Tests use this to
/// prove that a route slipped into the router without a policy is refused.
pub fn app_from_parts(
    state: AppState,
    policies: policy::PolicyTable,
    router: Router<AppState>,
) -> Router {
    let auth = auth::AuthLayer {
        app: state.clone(),
        policies,
    };
    let max_body = state.settings().max_body_bytes;
    let https = state.settings().transport.https;
    let metrics = Arc::clone(state.metrics());
    router
        .route_layer(from_fn_with_state(auth, auth::authorize))
        .fallback(ui::fallback)
        .with_state(state)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(CompressionLayer::new())
        .layer(from_fn_with_state(metrics, self_metrics::track_http))
        .layer(from_fn_with_state(https, transport::secure_headers))
        .layer(TraceLayer::new_for_http())
        .layer(axum::middleware::from_fn(request_id::assign))
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting connections
/// and waits for in-flight requests to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
