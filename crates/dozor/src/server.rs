//! Wiring: configuration → stores → API → serve, with bootstrap of the first administrator
//! and graceful shutdown. Scrape jobs, probes and the collectors run beside the server and
//! store through one tsdb appender; the probes also fill the API's probe registry; rule
//! groups evaluate against, and record into, their tenant's metric store.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use dozor_api::{ApiSettings, AppState, Engines, JwtKeys, SelfMetrics};
use dozor_audit::{AuditLog, Entry, Outcome};
use dozor_ingest::scrape::Appender;
use dozor_model::{Role, Scope, ScopeSet, TenantId};
use dozor_state::Store;
use dozor_state::tokens::NewApiToken;
use dozor_tsdb::Tsdb;
use sha2::{Digest, Sha256};

use crate::config::{Config, LogFormat, read_secret_file};

/// Command-line flags that win over the file and the environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// The configuration file, if any.
    pub config: Option<std::path::PathBuf>,
    /// `--data-dir`.
    pub data_dir: Option<std::path::PathBuf>,
    /// `--listen`.
    pub listen: Option<std::net::SocketAddr>,
}

/// The demo's login, printed at start.
const DEMO_USER: &str = "admin";
const DEMO_PASSWORD: &str = "dozor-demo";

/// Loads the configuration with flags applied on top.
fn load_config(args: &Overrides, demo: bool) -> anyhow::Result<Config> {
    let (mut config, warnings) = Config::load(args.config.as_deref(), std::env::vars())?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    if demo && args.config.is_none() && std::env::var_os("DOZOR_DATA_DIR").is_none() {
        config.data_dir = "dozor-demo-data".into();
    }
    if demo && args.config.is_none() {
        // The packs the demo's shop and marketplace feed.
        for pack in ["pack:shop", "pack:ticketing"] {
            if !config.rules.files.iter().any(|f| f == pack) {
                config.rules.files.push(pack.to_owned());
            }
        }
        // Client addresses pseudonymised rather than masked, so `pack:shop`'s per-address
        // searches can tell the demo's partners apart (a user's own choice wins).
        config
            .logs
            .pii
            .actions
            .entry(dozor_ingest::pii::PiiKind::Ipv4)
            .or_insert(dozor_ingest::pii::Action::Hash);
    }
    if let Some(d) = &args.data_dir {
        config.data_dir.clone_from(d);
    }
    if let Some(l) = args.listen {
        config.server.listen = l;
    }
    Ok(config)
}

fn init_logging(config: &Config) {
    let filter = std::env::var("DOZOR_LOG").unwrap_or_else(|_| config.log.level.clone());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|e| {
        eprintln!("warning: bad log filter {filter:?} ({e}); using info");
        tracing_subscriber::EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Audit retention (`audit.retention`): at start and every hour, removes the records older
/// than `retention` up to the newest signed checkpoint among them, and records that it did.
async fn prune_audit(
    audit: Arc<AuditLog>,
    retention: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    loop {
        let log = Arc::clone(&audit);
        let cutoff = dozor_model::time::now_ms().saturating_sub(retention_ms);
        match tokio::task::spawn_blocking(move || log.prune_before(cutoff)).await {
            Ok(Ok(Some(p))) => {
                tracing::info!(
                    records = p.records,
                    through = p.through_seq,
                    "audit chain pruned"
                );
                let entry = dozor_audit::Entry::new(
                    TenantId::DEFAULT,
                    "dozor",
                    "audit.prune",
                    "audit",
                    dozor_audit::Outcome::Success,
                )
                .detail("records", p.records)
                .detail("through_seq", p.through_seq)
                .detail("through_ts_ms", p.through_ts_ms)
                .detail("retention_days", retention.as_secs() / 86_400);
                let log = Arc::clone(&audit);
                match tokio::task::spawn_blocking(move || log.append(entry)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "cannot record the audit pruning"),
                    Err(e) => tracing::error!(error = %e, "cannot record the audit pruning"),
                }
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot prune the audit chain"),
            Err(e) => tracing::error!(error = %e, "audit pruning failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(3600)) => {}
            () = &mut stop => return,
        }
    }
}

/// Opens the data directory's stores.
async fn open_stores(config: &Config) -> anyhow::Result<(Store, Arc<AuditLog>)> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let audit = AuditLog::open(&config.data_dir).context("cannot open the audit chain")?;
    let store = Store::open(&config.state_url()?)
        .await
        .context("cannot open the state store")?;
    Ok((store, Arc::new(audit)))
}

/// `dozor serve` and `dozor demo`.
pub fn run(args: &Overrides, demo: bool) -> anyhow::Result<ExitCode> {
    let config = load_config(args, demo)?;
    init_logging(&config);
    no_transparent_huge_pages();
    runtime()?.block_on(serve(config, demo, args.config.as_deref()))?;
    Ok(ExitCode::SUCCESS)
}

/// Opts the process out of transparent huge pages, before any thread starts (the flag is
/// inherited). mimalloc asks for huge pages on its arenas, and ingest frees and reuses memory
/// constantly: every page it gave back came back as a 2 MiB page the kernel zeroed whole,
/// which took a quarter of log ingest's CPU (`clear_page_erms`). Redis and MongoDB advise
/// the same for their servers: the TLB gain is small, the zeroing and compaction stalls are
/// not. Failure only costs speed.
fn no_transparent_huge_pages() {
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::debug!(error = %e, "cannot opt out of transparent huge pages");
    }
}

async fn serve(config: Config, demo: bool, config_file: Option<&Path>) -> anyhow::Result<()> {
    let (store, audit) = open_stores(&config).await?;
    match store.row_security().await {
        Ok(dozor_state::RowSecurity::Bypassed) => tracing::warn!(
            "the state store's PostgreSQL role is a superuser or has BYPASSRLS: the tenant \
             row-level security policies do not bind it; connect as an ordinary role"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot tell whether row-level security applies"),
    }
    let audit_retention = config.audit.retention()?;
    let config_digest = match config_file {
        Some(f) => hex::encode(Sha256::digest(std::fs::read(f).unwrap_or_default())),
        None => "defaults".to_owned(),
    };
    let entry = Entry::new(
        TenantId::DEFAULT,
        "system",
        "config.load",
        config_file.map_or("defaults".into(), |f| f.display().to_string()),
        Outcome::Success,
    )
    .detail("sha256", config_digest)
    .detail("version", env!("CARGO_PKG_VERSION"));
    audit.append(entry)?;

    let pipeline = Arc::new(config.log_pipeline()?);
    let jwt_secret = match &config.auth.jwt_secret {
        Some(s) => s.reveal()?,
        None => {
            store
                .setting_or_init("auth.jwt_secret", || {
                    Ok(hex::encode(dozor_state::random_bytes::<32>()?))
                })
                .await?
        }
    };
    bootstrap(&store, &audit, demo).await?;

    let mut metrics = SelfMetrics::builder();
    let generators = if demo {
        Some(crate::demo::Generators::register(
            &mut metrics,
            &config.data_dir,
        ))
    } else {
        None
    };
    let mut file_sources = config.file_sources()?;
    if demo {
        // The demo's shop log reaches the store as any log file would: tailed.
        let mut c = dozor_ingest::tail::FileSourceConfig::new(
            "demo-shop",
            vec![
                config
                    .data_dir
                    .join("demo")
                    .join("shop.log")
                    .display()
                    .to_string(),
            ],
        );
        c.format = dozor_ingest::tail::LineFormat::Json;
        file_sources.push(dozor_ingest::tail::FileSource::new(c).map_err(anyhow::Error::msg)?);
    }
    // The cash-register pack; the demo runs it on a simulated fleet of 50 registers whose
    // driver log is tailed and whose OFD is polled over HTTP, as real ones would be.
    let mut kkt_config = config.kkt.clone();
    let demo_kkt = if demo && !kkt_config.enabled {
        let end = dozor_model::time::now_ms();
        let sim = dozor_kkt::sim::SimOptions::demo(50, 54, end, 2 * 3_600_000);
        let ofd = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let token = hex::encode(dozor_state::random_bytes::<16>()?);
        kkt_config.enabled = true;
        let log = config.data_dir.join("demo").join("kkt.log");
        // A new run writes its history again; the old file would only repeat it.
        let _ = std::fs::remove_file(&log);
        kkt_config.logs = vec![log.display().to_string()];
        kkt_config.ofd = vec![crate::config::OfdConfig {
            name: "demo-ofd".into(),
            dialect: dozor_kkt::ofd::Dialect::Neutral,
            url: format!("http://{}", ofd.local_addr()?),
            inn: None,
            integrator_id: None,
            login: None,
            password: None,
            bearer_token: Some(crate::config::Secret::Inline(token.clone())),
            poll_interval: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
        }];
        let ofd_config = dozor_kkt::sim_ofd::OfdSimConfig {
            sim: sim.clone(),
            login: "demo".into(),
            password: token.clone(),
            token,
            integrator_id: "demo".into(),
            inn: "7700000000".into(),
        };
        Some((log, sim, ofd, ofd_config))
    } else {
        None
    };
    let kkt = crate::kkt::Pack::new(&kkt_config)?.map(Arc::new);
    let kkt_providers = kkt_config.providers()?;
    if let Some(c) = kkt.as_ref().and_then(|k| k.file_source(&kkt_config)) {
        file_sources.push(dozor_ingest::tail::FileSource::new(c).map_err(anyhow::Error::msg)?);
    }
    let sources = dozor_ingest::source::SourceRegistry::new();
    metrics
        .registry_mut()
        .register_collector(Box::new(crate::sources::SourceMetrics(sources.clone())));
    let rule_interval_ms =
        i64::try_from(config.rules.evaluation_interval.as_millis()).unwrap_or(i64::MAX);
    let slos = crate::config::slos(&config.slos)?;
    let mut groups = config.rules.groups()?;
    groups.extend(crate::config::slo_groups(&slos)?);
    groups.extend(kkt_config.rule_groups()?);
    let rule_set = dozor_rules::RuleSet::new(
        groups,
        rule_interval_ms,
        config.rules.external_labels.clone(),
        config.rules.external_url.clone(),
    );
    metrics
        .registry_mut()
        .register_collector(Box::new(crate::rules::RuleMetrics(rule_set.clone())));
    let notify_metrics = crate::notify::NotifyMetrics::register(metrics.registry_mut());
    let metrics = metrics.build();
    let (notifications, notify_wake, escalations, oncall) = crate::notify::build(&config.alerting)?;
    let secret = |f: &Option<std::path::PathBuf>| -> anyhow::Result<Option<dozor_api::Secret>> {
        f.as_ref()
            .map(|p| {
                dozor_ingest::source::read_secret(p)
                    .map(|s| dozor_api::Secret(s.into_bytes()))
                    .map_err(anyhow::Error::msg)
            })
            .transpose()
    };
    let chat = dozor_api::ChatSecrets {
        slack_signing_secret: secret(&config.alerting.slack.signing_secret_file)?,
        telegram_webhook_secret: secret(&config.alerting.telegram.webhook_secret_file)?,
    };
    dozor_api::routes::alertmanager::restore(&store, &notifications)
        .await
        .context("cannot read the stored silences and notification log")?;

    let tsdb_dir = config.data_dir.join("tsdb");
    let tsdb_opts = config.tsdb.options();
    let tsdb = tokio::task::spawn_blocking(move || Tsdb::open(&tsdb_dir, tsdb_opts))
        .await?
        .context("cannot open the metric store")?;
    let tsdb = Arc::new(tsdb);
    let logs_dir = config.data_dir.join("logs");
    let mut logs_opts = config.logs.options(&config.tsdb);
    logs_opts.tiers = config
        .logs
        .tiers()
        .map_err(anyhow::Error::msg)?
        .map(Arc::new);
    if let Some(path) = &config.logs.encryption_key_file {
        let key = dozor_logs::Key::from_file(path)?;
        tracing::info!(key_id = key.id(), "log parts are encrypted (AES-256-GCM)");
        logs_opts.encryption = Some(Arc::new(key));
    }
    let logs = tokio::task::spawn_blocking(move || dozor_logs::Logs::open(&logs_dir, logs_opts))
        .await?
        .context("cannot open the log store")?;
    let logs = Arc::new(logs);
    if let Some(pack) = &kkt
        && !kkt_config.restore.is_zero()
    {
        let (pack, store) = (Arc::clone(pack), Arc::clone(&logs));
        let window = i64::try_from(kkt_config.restore.as_millis()).unwrap_or(i64::MAX);
        let now = dozor_model::time::now_ms();
        match tokio::task::spawn_blocking(move || pack.restore(&store, window, now)).await? {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "KKT fleet restored from the stored driver log"),
            Err(e) => tracing::warn!(error = %e, "cannot restore the KKT fleet"),
        }
    }
    let publishing = crate::publish::Publishing::open(&config.publish.kafka, &config.data_dir)?;
    let forward = Arc::clone(&publishing.forward);
    let alert_publisher = Arc::clone(&publishing.alerts);
    let (incident_changes, incident_changes_rx) = tokio::sync::broadcast::channel(256);
    let state = AppState::new(
        Engines {
            store: store.clone(),
            audit: Arc::clone(&audit),
            tsdb: Arc::clone(&tsdb),
            logs: Arc::clone(&logs),
        },
        JwtKeys::new(jwt_secret.as_bytes(), config.auth.access_token_ttl),
        ApiSettings {
            data_dir: config.data_dir.clone(),
            max_body_bytes: config.server.max_body_bytes,
            refresh_ttl: config.auth.refresh_token_ttl,
            auth: config.auth.policy(),
            metrics_access: config.server.metrics_access.to_api()?,
            transport: config.server.transport()?,
            access: config.access.policy()?,
            llm: config.ai.llm.as_ref().map(|l| l.settings()).transpose()?,
            slos: slos.clone(),
            oidc: match &config.auth.oidc {
                Some(o) => Some(Arc::new(dozor_api::oidc::Oidc::new(o.settings()?))),
                None => None,
            },
            audit: config.audit.policy()?,
            ingest_limits: config.ingest.limits(),
            max_concurrent_ingest: config.ingest.max_concurrent_requests,
            query: config.query.limits(),
            pii: config.pii(),
            pii_salt: dozor_api::Secret(jwt_secret.as_bytes().to_vec()),
            pipeline: Arc::clone(&pipeline),
            sources: sources.clone(),
            rules: rule_set.clone(),
            forward: Arc::clone(&forward),
            notifications: Arc::clone(&notifications),
            chat: chat.clone(),
            incident_changes,
            kkt: kkt.as_ref().map(|k| k.api_settings()),
        },
        Arc::clone(&metrics),
    );
    // Probes are checked before listening, so a bad CA file or secret stops start-up.
    let probes = config.probes()?;
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    // Syslog listeners are bound before Dozor says it is listening, like the HTTP one.
    let syslog_udp = match config.logs.syslog.udp {
        Some(a) => {
            let socket = tokio::net::UdpSocket::bind(a)
                .await
                .with_context(|| format!("cannot listen for syslog on udp {a}"))?;
            tracing::info!(addr = %socket.local_addr()?, "syslog over UDP");
            Some(socket)
        }
        None => None,
    };
    let syslog_tcp = match config.logs.syslog.tcp {
        Some(a) => {
            let l = tokio::net::TcpListener::bind(a)
                .await
                .with_context(|| format!("cannot listen for syslog on tcp {a}"))?;
            tracing::info!(addr = %l.local_addr()?, "syslog over TCP");
            Some(l)
        }
        None => None,
    };
    tracing::info!(%addr, data_dir = %config.data_dir.display(), "dozor listening");
    // The certificate is read before anything is announced: a bad pair stops the start.
    let tls = match &config.server.tls {
        Some(t) => {
            let cert = dozor_api::tls::ReloadingCert::new(t.files()).map_err(anyhow::Error::msg)?;
            let server_config =
                dozor_api::tls::server_config(Arc::clone(&cert)).map_err(anyhow::Error::msg)?;
            Some((cert.watch(), server_config))
        }
        None => None,
    };
    println!(
        "Dozor {} is listening on {}://{addr}",
        env!("CARGO_PKG_VERSION"),
        if tls.is_some() { "https" } else { "http" }
    );
    if demo {
        println!("Demo login: user {DEMO_USER}, password {DEMO_PASSWORD}");
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    tokio::spawn(
        Arc::clone(&metrics).run_sampler(Duration::from_secs(2), stopped(stop_rx.clone())),
    );
    if let Some(g) = generators {
        tokio::spawn(g.run(stopped(stop_rx.clone())));
    }
    let maintenance = tokio::spawn(run_maintenance(
        config.logs.watermark,
        Arc::clone(&tsdb),
        Arc::clone(&logs),
        stopped(stop_rx.clone()),
    ));
    for tenant in store
        .tenants_with_alert_rules()
        .await
        .context("cannot read the stored alert rules")?
    {
        dozor_api::routes::alert_rules::reload(&store, &rule_set, &tenant)
            .await
            .context("cannot read the stored alert rules")?;
    }
    let rule_tasks = crate::rules::start(
        &rule_set,
        &tsdb,
        &logs,
        &store,
        &alert_publisher,
        config.query.limits(),
        &stop_rx,
    );
    let producers = publishing.start(&sources, &tsdb, config.query.limits(), &stop_rx);
    alert_publisher.notify(
        Arc::clone(&notifications),
        config.rules.external_url.clone(),
    );
    let actions = Arc::new(crate::actions::Actions::new(
        &config.alerting.actions,
        Arc::clone(&audit),
        store.clone(),
    )?);
    let (incident_queue, incident_task) = if config.alerting.incidents.enabled {
        let (q, task) = crate::incidents::start(crate::incidents::Incidents {
            store: store.clone(),
            audit: Arc::clone(&audit),
            tsdb: Arc::clone(&tsdb),
            logs: Arc::clone(&logs),
            engine: dozor_promql::Engine::new(config.query.limits()),
            notifications: Arc::clone(&notifications),
            policy: dozor_alerting::incident::IncidentPolicy::parse(
                &config.alerting.incidents.selector,
            )
            .map_err(|e| anyhow::anyhow!("alerting.incidents.match: {e}"))?,
            actions: Arc::clone(&actions),
            open_groups: Default::default(),
            recollect_after: config.alerting.incidents.recollect_after,
        });
        (Some(q), Some(task))
    } else {
        (None, None)
    };
    let report_notifications = Arc::clone(&notifications);
    let notifier = crate::notify::start(
        notifications,
        notify_wake,
        store.clone(),
        notify_metrics,
        config.rules.external_url.clone(),
        crate::notify::Hooks {
            incidents: incident_queue,
            actions,
            escalations: std::sync::Mutex::new(escalations),
            chat: (
                chat.slack_signing_secret.is_some(),
                chat.telegram_webhook_secret.is_some(),
            ),
            oncall,
            incident_changes: Some(incident_changes_rx),
        },
        stop_rx.clone(),
    );
    let groups = rule_set.all().len();
    if groups > 0 {
        tracing::info!(groups, "evaluating rule groups");
    }
    let appender: Arc<dyn Appender> = Arc::new(TsdbAppender(Arc::clone(&tsdb)));
    let sink: Arc<dyn dozor_ingest::syslog::LogSink> = Arc::new(LogStoreSink {
        logs: Arc::clone(&logs),
        masker: config.masker()?,
        pipeline: Arc::clone(&pipeline),
        secret: jwt_secret.as_bytes().to_vec(),
        forward: Arc::clone(&forward),
        kkt: kkt.clone(),
    });
    let tails = crate::sources::start(file_sources, &sources, &sink, &store, &stop_rx);
    if let Some(pack) = &kkt {
        tokio::spawn(crate::kkt::run_exporter(
            Arc::clone(pack),
            Arc::clone(&appender),
            kkt_config.interval,
            stop_rx.clone(),
        ));
        for (provider, every) in kkt_providers {
            tokio::spawn(crate::kkt::run_ofd(
                provider,
                every,
                Arc::clone(&pack.fleet),
                stop_rx.clone(),
            ));
        }
    }
    tokio::spawn(crate::reports::run(
        state.clone(),
        Arc::clone(&report_notifications),
        Arc::clone(&audit),
        stop_rx.clone(),
    ));
    tokio::spawn(crate::cleanup::run(
        store.clone(),
        config.state.retention.clone(),
        Arc::clone(&audit),
        stop_rx.clone(),
    ));
    if demo {
        // The demo's ticket marketplace: a simulated week sent to the analytics routes over
        // HTTP with an ingest token of its own, as a real marketplace would.
        let token = demo_ingest_token(&store).await?;
        let url = format!("http://{addr}");
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let now = dozor_model::time::now_ms();
            let (events, _) = crate::marketplace::simulated(7, 200, now);
            let chain = crate::marketplace::chain_events(7, &events, now);
            match crate::marketplace::feed(&url, &token, &events, &chain).await {
                Ok(fed) => tracing::info!(
                    sales = fed.sales,
                    requests = fed.requests,
                    chain_events = fed.chain,
                    findings = ?fed.findings,
                    "the demo marketplace's week was sent"
                ),
                Err(e) => tracing::warn!(error = %e, "the demo marketplace stopped"),
            }
        });
    }
    if let Some((log, sim, ofd, ofd_config)) = demo_kkt {
        tokio::spawn(crate::kkt::run_sim_writer(log, sim, stop_rx.clone()));
        tokio::spawn(async move {
            if let Err(e) = dozor_kkt::sim_ofd::serve(ofd, ofd_config).await {
                tracing::warn!(error = %e, "the demo's OFD stopped");
            }
        });
    }
    let (spool, backup) = match &config.backup.s3 {
        Some(s3) => {
            let dir = config.data_dir.join("backup-spool");
            let spool =
                dozor_ingest::backup::Spool::open(&dir, s3.object_bytes, s3.max_spool_bytes)
                    .map_err(anyhow::Error::msg)?;
            let spool = Arc::new(spool);
            let stats = sources.register("s3-backup", "s3", &TenantId::default_tenant());
            tracing::info!(bucket = %s3.bucket, prefix = %s3.prefix, "raw backup of bus messages to S3");
            let task = tokio::spawn(dozor_ingest::backup::run(
                s3.clone(),
                Arc::clone(&spool),
                stats,
                stop_rx.clone(),
            ));
            (Some(spool), Some(task))
        }
        None => (None, None),
    };
    let archive = config.logs.archive.as_ref().map(|a| {
        let stats = sources.register("cold-archive", "s3", &TenantId::default_tenant());
        tracing::info!(bucket = %a.s3.bucket, prefix = %a.s3.prefix, "cold log days archived to S3 as Parquet");
        tokio::spawn(crate::archive::run(
            a.s3.clone(),
            a.interval,
            Arc::clone(&logs),
            store.clone(),
            stats,
            stop_rx.clone(),
        ))
    });
    let bus_sink: Arc<dyn dozor_ingest::source::BusSink> = Arc::new(BusStore {
        logs: Arc::clone(&sink),
        tsdb: Arc::clone(&tsdb),
        backup: spool,
        forward: Arc::clone(&forward),
        masker: config.masker()?,
        secret: jwt_secret.as_bytes().to_vec(),
    });
    let buses = crate::sources::start_bus(&config.sources, &sources, &bus_sink, &stop_rx);
    let syslog = &config.logs.syslog;
    if let Some(socket) = syslog_udp {
        tokio::spawn(dozor_ingest::syslog::serve_udp(
            socket,
            syslog.tenant.clone(),
            Arc::clone(&sink),
            stop_rx.clone(),
        ));
    }
    if let Some(listener) = syslog_tcp {
        tokio::spawn(dozor_ingest::syslog::serve_tcp(
            listener,
            syslog.tenant.clone(),
            Arc::clone(&sink),
            stop_rx.clone(),
        ));
    }
    let scrape_jobs = config
        .scrape_jobs()
        .map_err(|e| anyhow::anyhow!("scrape_configs: {e}"))?;
    let scraping = tokio::spawn(dozor_ingest::scrape::run(
        scrape_jobs,
        Arc::clone(&appender),
        stop_rx.clone(),
    ));
    let probing = tokio::spawn(dozor_ingest::probe::run(
        probes,
        Arc::clone(&appender),
        state.probes().clone(),
        stop_rx.clone(),
    ));
    if let Some(retention) = audit_retention {
        tokio::spawn(prune_audit(
            Arc::clone(&audit),
            retention,
            stopped(stop_rx.clone()),
        ));
    }
    tokio::spawn(run_collectors(
        config.collectors.clone(),
        Arc::clone(&metrics),
        Arc::clone(&appender),
        stopped(stop_rx.clone()),
    ));

    let shutdown_signal = {
        let stop_tx = stop_tx.clone();
        async move {
            wait_for_signal().await;
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = stop_tx.send(true);
        }
    };
    let router = dozor_api::app(state);
    let server = async move {
        match tls {
            Some((_watcher, server_config)) => {
                dozor_api::tls::serve_tls(listener, server_config, router, shutdown_signal).await
            }
            None => dozor_api::serve(listener, router, shutdown_signal).await,
        }
    };
    tokio::pin!(server);
    // Once the signal came, give in-flight requests `shutdown_grace` to finish.
    let grace = config.server.shutdown_grace;
    let mut stop_rx2 = stop_rx.clone();
    tokio::select! {
        result = &mut server => result.context("HTTP server failed")?,
        () = async move {
            let _ = stop_rx2.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        } => tracing::warn!("requests still in flight after {grace:?}; exiting anyway"),
    }

    // File tails stop after their batch in flight is stored and checkpointed, bus sources
    // after theirs is stored and acknowledged.
    for t in tails.into_iter().chain(buses) {
        if let Err(e) = t.await {
            tracing::error!(error = %e, "source failed");
        }
    }
    // The raw backup seals its spool and makes one last upload pass once the bus sources
    // stopped adding to it; what S3 does not take stays spooled for the next start.
    if let Some(task) = backup
        && let Err(e) = task.await
    {
        tracing::error!(error = %e, "raw backup failed");
    }
    if let Some(task) = archive
        && let Err(e) = task.await
    {
        tracing::error!(error = %e, "cold archive failed");
    }
    // Scrape and probe loops write staleness markers for their series as they stop.
    if let Err(e) = scraping.await {
        tracing::error!(error = %e, "scrape engine failed");
    }
    if let Err(e) = probing.await {
        tracing::error!(error = %e, "probe collector failed");
    }
    // Rule groups finish the evaluation in progress.
    if let Err(e) = rule_tasks.await {
        tracing::error!(error = %e, "rule evaluation failed");
    }
    if let Err(e) = notifier.await {
        tracing::error!(error = %e, "the notifier failed");
    }
    // The loop owned the last sender of the incident queue: the worker ends with it.
    if let Some(task) = incident_task
        && tokio::time::timeout(std::time::Duration::from_secs(5), task)
            .await
            .is_err()
    {
        tracing::warn!("the incident worker did not finish within 5 s");
    }
    // Kafka producers make a last pass over their outboxes once nothing adds to them; what
    // Kafka does not take stays there for the next start.
    for p in producers {
        if tokio::time::timeout(crate::publish::STOP_GRACE, p)
            .await
            .is_err()
        {
            tracing::warn!(
                "a Kafka producer's last pass did not finish; its outbox keeps the rest"
            );
        }
    }
    // The maintenance task stops with the shutdown signal; wait for it so no cut is
    // half-done, then make the metric WAL durable whatever the fsync policy.
    if let Err(e) = maintenance.await {
        tracing::error!(error = %e, "tsdb maintenance task failed");
    }
    let flushed = Arc::clone(&tsdb);
    let flushed_logs = Arc::clone(&logs);
    tokio::task::spawn_blocking(move || {
        for (tenant, db) in flushed.all() {
            if let Err(e) = db.sync() {
                tracing::error!(%tenant, error = %e, "cannot sync the metric WAL at shutdown");
            }
        }
        // The log head is small (flush_bytes at most): writing it into parts now makes
        // the next start replay nothing.
        for (tenant, db) in flushed_logs.all() {
            if let Err(e) = db.flush() {
                tracing::warn!(%tenant, error = %e, "cannot flush the log head at shutdown; syncing its WAL");
                if let Err(e) = db.sync() {
                    tracing::error!(%tenant, error = %e, "cannot sync the log WAL at shutdown");
                }
            }
        }
    })
    .await?;
    audit.append(Entry::new(
        TenantId::DEFAULT,
        "system",
        "server.stop",
        "server",
        Outcome::Success,
    ))?;
    audit.close()?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Delivers received log records (syslog) to the log store, PII masked first as the HTTP
/// ingest routes do.
struct LogStoreSink {
    logs: Arc<dozor_logs::Logs>,
    masker: dozor_ingest::pii::Masker,
    pipeline: Arc<dozor_ingest::pipeline::Pipeline>,
    secret: Vec<u8>,
    forward: Arc<dozor_ingest::kafka_out::Forwarder>,
    /// The cash-register pack, which reads its driver log's records once they are stored.
    kkt: Option<Arc<crate::kkt::Pack>>,
}

impl dozor_ingest::syslog::LogSink for LogStoreSink {
    fn append(
        &self,
        tenant: &TenantId,
        records: Vec<dozor_model::LogRecord>,
    ) -> Result<(), String> {
        // Parsed before masking (the fleet reads ids and numbers), applied after storing.
        let kkt_events = self
            .kkt
            .as_ref()
            .map(|k| k.events(tenant, &records))
            .unwrap_or_default();
        let salt = dozor_ingest::pii::tenant_salt(&self.secret, tenant);
        let mut counts = std::collections::BTreeMap::new();
        let kept: Vec<_> = records
            .into_iter()
            .filter_map(|mut r| {
                self.pipeline.apply(&mut r);
                (!self.masker.mask_record(&mut r, &salt, &mut counts)).then_some(r)
            })
            .collect();
        // Forwarded records are in the Kafka outbox before they are stored and acknowledged.
        self.forward.logs(tenant, &kept)?;
        let db = self.logs.tenant(tenant).map_err(|e| e.to_string())?;
        db.append(kept).map_err(|e| e.to_string())?;
        if let Some(k) = &self.kkt {
            k.apply(kkt_events);
        }
        if let Err(e) = db.flush_if_full() {
            tracing::warn!(error = %e, "log head flush failed; maintenance retries it");
        }
        Ok(())
    }

    fn sync(&self, tenant: &TenantId) -> Result<(), String> {
        let db = self.logs.tenant(tenant).map_err(|e| e.to_string())?;
        db.sync().map_err(|e| e.to_string())
    }
}

/// Where bus sources store: log records through the masking log sink, samples in the tsdb,
/// both made durable before the source acknowledges to its broker.
struct BusStore {
    logs: Arc<dyn dozor_ingest::syslog::LogSink>,
    tsdb: Arc<Tsdb>,
    backup: Option<Arc<dozor_ingest::backup::Spool>>,
    forward: Arc<dozor_ingest::kafka_out::Forwarder>,
    masker: dozor_ingest::pii::Masker,
    secret: Vec<u8>,
}

impl dozor_ingest::source::BusSink for BusStore {
    fn store(
        &self,
        tenant: &TenantId,
        logs: Vec<dozor_model::LogRecord>,
        metrics: dozor_ingest::Batch,
    ) -> Result<(), String> {
        if !logs.is_empty() {
            self.logs.append(tenant, logs)?;
            self.logs.sync(tenant)?;
        }
        if !metrics.is_empty() {
            self.forward.series(tenant, || {
                metrics.iter().map(|(l, s)| {
                    let pairs = l
                        .iter()
                        .map(|x| (x.name.as_ref(), x.value.as_ref()))
                        .collect();
                    (pairs, s.as_slice())
                })
            })?;
            let db = self.tsdb.tenant(tenant).map_err(|e| e.to_string())?;
            db.append(&metrics).map_err(|e| e.to_string())?;
            db.sync().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn backs_up(&self) -> bool {
        self.backup.is_some()
    }

    fn backup(
        &self,
        tenant: &TenantId,
        source: &str,
        msgs: &[dozor_ingest::source::Message<'_>],
        received_ms: i64,
    ) -> Result<(), String> {
        let Some(spool) = &self.backup else {
            return Ok(());
        };
        // Raw messages leave for S3 masked like everything Dozor stores.
        let salt = dozor_ingest::pii::tenant_salt(&self.secret, tenant);
        let mask: &dozor_ingest::backup::MaskFn<'_> = &|text| {
            let m = self.masker.mask(text, &salt);
            (!m.drop).then_some(m.text)
        };
        spool.append(&dozor_ingest::backup::encode(
            source,
            msgs,
            received_ms,
            mask,
        ))
    }
}

/// Delivers scraped and collected samples to the tsdb.
struct TsdbAppender(Arc<Tsdb>);

impl Appender for TsdbAppender {
    fn append(&self, tenant: &TenantId, batch: dozor_ingest::Batch) -> Result<(), String> {
        let db = self.0.tenant(tenant).map_err(|e| e.to_string())?;
        db.append(&batch).map(|_| ()).map_err(|e| e.to_string())
    }
}

/// Stores Dozor's own metrics (`job="dozor"`) and this host's (`job="node"`) in the default
/// tenant every `interval`.
async fn run_collectors(
    config: crate::config::CollectorsConfig,
    metrics: Arc<SelfMetrics>,
    appender: Arc<dyn Appender>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    if !config.self_metrics && !config.host {
        return;
    }
    let instance = dozor_ingest::host::hostname();
    let tenant = TenantId::default_tenant();
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = tick.tick() => {}
        }
        let t = dozor_model::time::now_ms();
        let mut batch = Vec::new();
        if config.host {
            let files = tokio::task::spawn_blocking(dozor_ingest::host::ProcFiles::read)
                .await
                .unwrap_or_default();
            batch.extend(dozor_ingest::host::collect(&files, &instance, t));
        }
        if config.self_metrics {
            let text = metrics.encode();
            let parsed = dozor_ingest::exposition::parse(
                &text,
                dozor_ingest::exposition::Format::OpenMetrics,
                t,
                &dozor_ingest::Limits::default(),
            );
            match parsed {
                Ok(series) => batch.extend(series.into_iter().filter_map(|(l, s)| {
                    let l = l
                        .with("job", "dozor")
                        .and_then(|l| l.with("instance", &instance))
                        .ok()?;
                    // Self metrics carry no timestamps: stamp them with this collection.
                    Some((
                        l,
                        s.into_iter()
                            .map(|x| dozor_model::Sample { t, v: x.v })
                            .collect(),
                    ))
                })),
                Err(e) => tracing::error!(error = %e, "BUG: cannot parse our own metrics"),
            }
        }
        let appender = Arc::clone(&appender);
        let tenant = tenant.clone();
        match tokio::task::spawn_blocking(move || appender.append(&tenant, batch)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot store collected metrics"),
            Err(e) => tracing::error!(error = %e, "collector task failed"),
        }
    }
}

/// Syncs WALs on their interval and runs the stores' maintenance every 30 s (metrics: head
/// cuts, compaction, retention; logs: flushes, merges, retention), off the async workers.
async fn run_maintenance(
    watermark: f64,
    tsdb: Arc<Tsdb>,
    logs: Arc<dozor_logs::Logs>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    let mut last_maintenance = std::time::Instant::now();
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = tick.tick() => {}
        }
        let maintain = last_maintenance.elapsed() >= Duration::from_secs(30);
        if maintain {
            last_maintenance = std::time::Instant::now();
        }
        let tsdb = Arc::clone(&tsdb);
        let logs = Arc::clone(&logs);
        let done = tokio::task::spawn_blocking(move || {
            for (tenant, db) in tsdb.all() {
                if let Err(e) = db.sync_if_due() {
                    tracing::error!(%tenant, error = %e, "cannot sync the metric WAL");
                }
                if maintain && let Err(e) = db.maintain(dozor_model::time::now_ms()) {
                    tracing::error!(%tenant, error = %e, "tsdb maintenance failed");
                }
            }
            for (tenant, db) in logs.all() {
                if let Err(e) = db.sync_if_due() {
                    tracing::error!(%tenant, error = %e, "cannot sync the log WAL");
                }
                let now_ns = dozor_model::time::now_ms().saturating_mul(1_000_000);
                if maintain && let Err(e) = db.maintain(now_ns) {
                    tracing::error!(%tenant, error = %e, "log store maintenance failed");
                }
            }
            if maintain && watermark < 1.0 {
                let now_ns = dozor_model::time::now_ms().saturating_mul(1_000_000);
                match logs.relieve_watermark(watermark, now_ns) {
                    Ok(0) => {}
                    Ok(steps) => tracing::warn!(
                        steps,
                        watermark,
                        "disk over the watermark: old logs moved down or deleted"
                    ),
                    Err(e) => tracing::error!(error = %e, "log watermark check failed"),
                }
            }
        })
        .await;
        if let Err(e) = done {
            tracing::error!(error = %e, "maintenance task panicked");
        }
    }
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Reads `NAME` or the file named by `NAME_FILE`.
fn env_secret(name: &str) -> anyhow::Result<Option<String>> {
    if let Ok(v) = std::env::var(name) {
        return Ok(Some(v));
    }
    match std::env::var_os(format!("{name}_FILE")) {
        Some(path) => Ok(Some(read_secret_file(Path::new(&path))?)),
        None => Ok(None),
    }
}

/// Creates the first administrator and an admin API token from the environment (or the
/// demo login), when they do not exist yet. Never changes existing ones.
/// The demo marketplace's API token (ingest scope), made once and kept in the settings.
async fn demo_ingest_token(store: &Store) -> anyhow::Result<String> {
    let token = store
        .setting_or_init("demo.marketplace_token", || {
            Ok(format!(
                "{}{}",
                dozor_api::auth::API_TOKEN_PREFIX,
                hex::encode(dozor_state::random_bytes::<16>()?)
            ))
        })
        .await?;
    let hash = dozor_api::auth::token_hash(&token);
    if store.api_token_by_hash(&hash).await?.is_none() {
        store
            .create_api_token(NewApiToken {
                tenant: &TenantId::default_tenant(),
                name: "demo marketplace",
                scopes: ScopeSet::from_iter([Scope::Ingest]),
                created_by: "demo",
                expires_ms: None,
                token_hash: &hash,
            })
            .await?;
    }
    Ok(token)
}

async fn bootstrap(store: &Store, audit: &AuditLog, demo: bool) -> anyhow::Result<()> {
    let tenant = TenantId::default_tenant();
    let name = std::env::var("DOZOR_ADMIN_USER").unwrap_or_else(|_| DEMO_USER.to_owned());
    let password = match env_secret("DOZOR_ADMIN_PASSWORD")? {
        Some(p) => Some(p),
        None if demo => Some(DEMO_PASSWORD.to_owned()),
        None => None,
    };
    if let Some(password) = password
        && store.user_by_name(&name).await?.is_none()
    {
        if !demo
            && let Err(why) =
                dozor_api::auth::check_password(&dozor_api::AuthPolicy::default(), &name, &password)
        {
            tracing::warn!(user = %name, "DOZOR_ADMIN_PASSWORD does not follow the password policy ({why}); change it after the first login");
        }
        {
            let hash =
                tokio::task::spawn_blocking(move || dozor_api::auth::hash_password(&password))
                    .await?
                    .map_err(|e| anyhow::anyhow!("cannot hash the admin password: {e:?}"))?;
            store
                .create_user(&tenant, &name, &hash, Role::Admin)
                .await?;
            audit.append(
                Entry::new(
                    tenant.as_str(),
                    "system",
                    "user.create",
                    format!("user/{name}"),
                    Outcome::Success,
                )
                .detail("role", "admin")
                .detail("bootstrap", true),
            )?;
            tracing::info!(user = %name, "created the first administrator");
        }
    }
    if let Some(token) = env_secret("DOZOR_ADMIN_TOKEN")? {
        if !token.starts_with(dozor_api::auth::API_TOKEN_PREFIX) {
            bail!(
                "DOZOR_ADMIN_TOKEN must start with {}",
                dozor_api::auth::API_TOKEN_PREFIX
            );
        }
        let hash = dozor_api::auth::token_hash(&token);
        if store.api_token_by_hash(&hash).await?.is_none() {
            let t = store
                .create_api_token(NewApiToken {
                    tenant: &tenant,
                    name: "bootstrap admin token",
                    scopes: ScopeSet::from_iter(Scope::ALL),
                    created_by: "bootstrap",
                    expires_ms: None,
                    token_hash: &hash,
                })
                .await?;
            audit.append(
                Entry::new(
                    tenant.as_str(),
                    "system",
                    "token.create",
                    format!("token/{}", t.id),
                    Outcome::Success,
                )
                .detail("bootstrap", true),
            )?;
        }
    }
    Ok(())
}

/// `dozor user add`.
pub fn add_user(
    args: &Overrides,
    name: &str,
    role: Role,
    tenant: &TenantId,
    password: &str,
) -> anyhow::Result<()> {
    dozor_api::routes::check_user_name(name).map_err(|_| {
        anyhow::anyhow!("user name must be 1 to 64 visible ASCII characters without ':'")
    })?;
    let config = load_config(args, false)?;
    if let Err(why) = dozor_api::auth::check_password(&config.auth.policy(), name, password) {
        bail!("the password does not follow the password policy: {why}");
    }
    runtime()?.block_on(async {
        let (store, audit) = open_stores(&config).await?;
        let hash = dozor_api::auth::hash_password(password)
            .map_err(|e| anyhow::anyhow!("cannot hash the password: {e:?}"))?;
        store.create_user(tenant, name, &hash, role).await?;
        audit.append(
            Entry::new(
                tenant.as_str(),
                "cli",
                "user.create",
                format!("user/{name}"),
                Outcome::Success,
            )
            .detail("role", role.as_str()),
        )?;
        audit.close()?;
        store.close().await;
        Ok(())
    })
}
