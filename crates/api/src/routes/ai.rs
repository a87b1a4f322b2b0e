//! `GET /api/v1/ai/error-clusters` (seed 000's error clustering): the tenant's error lines
//! of a recent window, grouped by `dozor_detect`'s template miner — each cluster with its
//! template, how many lines, first and last seen, a few sample lines, and the services and
//! registers it touched, as the caller's role sees the logs.
//!
//! Parameters: `query`, a LogQL log query choosing the lines (default
//! `{level=~"error|critical|fatal"}`); `since`, how far back (default `24h`, at most `7d`);
//! `min_cluster_size` (seed 000's, default 5); `limit`, clusters returned (default 50, at
//! most 500). At most 100,000 lines are read, newest first; the answer says how many
//! were. A cluster's `id` is a hash of its template, so the same kind of error keeps its id
//! from one call to the next. `summarize=true` adds `summary`: Dozor's own sentence, or —
//! with `ai.llm` configured — the model's, given only templates and counts
//! (`summaryBy`: `dozor` or `model`; `summaryError` when the model failed and Dozor's
//! sentence stands in). Audited as a log read.

use std::collections::{BTreeSet, HashMap};

use axum::extract::State;
use axum::http::Method;
use axum::response::IntoResponse;
use dozor_detect::logtemplate::{Config, TemplateMiner};
use dozor_logs::Direction;
use dozor_logs::logql;
use dozor_model::Scope;
use dozor_model::time::now_ms;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::success;
use crate::params::Params;
use crate::policy::{Policy, Registry};
use crate::routes::loki_query::audit_log_read;
use crate::routes::rules::time;
use crate::{ApiError, AppState, ClientAddr, Principal};

/// Lines read at most.
const MAX_LINES: usize = 100_000;
/// Sample lines kept per cluster.
const SAMPLES: usize = 3;
/// Stream labels that name a cash register (or another device) in the answer.
const DEVICE_LABELS: [&str; 3] = ["register", "kkt_id", "device"];

pub(crate) fn register(r: Registry) -> Registry {
    r.route(
        Method::GET,
        "/api/v1/ai/error-clusters",
        Policy::Scope(Scope::Read),
        error_clusters,
    )
    .route(
        Method::GET,
        "/api/v1/ai/alert-recommendations",
        Policy::Scope(Scope::Read),
        alert_recommendations,
    )
}

/// What is gathered per shape of line.
#[derive(Default)]
struct Seen {
    count: u64,
    first_ns: i64,
    last_ns: i64,
    samples: Vec<(i64, String)>,
    services: BTreeSet<String>,
    devices: BTreeSet<String>,
}

async fn error_clusters(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let query = params
        .get("query")
        .filter(|q| !q.trim().is_empty())
        .unwrap_or(r#"{level=~"error|critical|fatal"}"#)
        .to_owned();
    let log = match logql::parse(&query) {
        Ok(logql::Expr::Log(log)) => log,
        Ok(logql::Expr::Metric(_)) => {
            return Err(ApiError::bad_data(
                "invalid parameter \"query\": a log query, not a metric query",
            ));
        }
        Err(e) => {
            return Err(ApiError::bad_data(format!(
                "invalid parameter \"query\": {e}"
            )));
        }
    };
    let since = params.duration("since")?.unwrap_or(24 * 3_600_000);
    if !(60_000..=7 * 24 * 3_600_000).contains(&since) {
        return Err(ApiError::bad_data(
            "invalid parameter \"since\": from 1m to 7d",
        ));
    }
    let number = |name: &str, default: u64, max: u64| -> Result<u64, ApiError> {
        match params.get(name).filter(|v| !v.is_empty()) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_data(format!(
                        "invalid parameter \"{name}\": a whole number from 1 to {max}"
                    ))
                }),
        }
    };
    let summarize = match params.get("summarize") {
        None | Some("" | "false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::bad_data(
                "invalid parameter \"summarize\": true or false",
            ));
        }
    };
    let min_size = number("min_cluster_size", 5, 1_000_000)?;
    let limit = usize::try_from(number("limit", 50, 500)?).unwrap_or(50);
    let end = now_ms();
    let range = logql::Range {
        start_ns: (end - since).saturating_mul(1_000_000),
        end_ns: end.saturating_mul(1_000_000),
        step_ns: 0,
        limit: MAX_LINES,
        direction: Direction::Backward,
    };
    let reader = state.log_reader(&principal)?;
    let (lines, mut clusters) = tokio::task::spawn_blocking(move || {
        let mut stats = logql::Stats::default();
        let lines = match &reader {
            Some(r) => logql::select_lines(r, &log, range, &mut stats)?,
            None => Vec::new(),
        };
        let mut miner = TemplateMiner::new(Config::default());
        let mut shapes: HashMap<_, Seen> = HashMap::new();
        for l in &lines {
            let seen = shapes.entry(miner.push(&l.line)).or_default();
            seen.count += 1;
            if seen.count == 1 || l.time_ns < seen.first_ns {
                seen.first_ns = l.time_ns;
            }
            seen.last_ns = seen.last_ns.max(l.time_ns);
            if seen.samples.len() < SAMPLES {
                seen.samples.push((l.time_ns, l.line.clone()));
            }
            let service = l.labels.get("service");
            if !service.is_empty() {
                seen.services.insert(service.to_owned());
            }
            for name in DEVICE_LABELS {
                let d = l.labels.get(name);
                if !d.is_empty() {
                    seen.devices.insert(d.to_owned());
                }
            }
        }
        // Shapes into the miner's clusters.
        let found = miner.clusters();
        let mut by_cluster: HashMap<usize, Seen> = HashMap::new();
        for (shape, seen) in shapes {
            let Some(c) = found.cluster_of(shape) else {
                continue;
            };
            let into = by_cluster.entry(c).or_default();
            if into.count == 0 || seen.first_ns < into.first_ns {
                into.first_ns = seen.first_ns;
            }
            into.count += seen.count;
            into.last_ns = into.last_ns.max(seen.last_ns);
            into.samples.extend(seen.samples);
            into.services.extend(seen.services);
            into.devices.extend(seen.devices);
        }
        let templates = found.templates().to_vec();
        let clusters: Vec<(String, Seen)> = by_cluster
            .into_iter()
            .filter_map(|(c, s)| templates.get(c).map(|(t, _)| (t.clone(), s)))
            .collect();
        Ok::<_, logql::EvalError>((lines.len(), clusters))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| match e {
        logql::EvalError::Bad(m) => ApiError::bad_data(format!("invalid parameter \"query\": {m}")),
        logql::EvalError::Store(e) => ApiError::internal(e),
    })?;
    audit_log_read(
        &state,
        &principal,
        source,
        "logs.error_clusters",
        &query,
        "lines",
        u64::try_from(lines).unwrap_or(u64::MAX),
    )
    .await?;
    clusters.retain(|(_, s)| s.count >= min_size);
    clusters.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(&b.0)));
    let total = clusters.len();
    let out: Vec<_> = clusters
        .into_iter()
        .take(limit)
        .map(|(template, mut s)| {
            s.samples.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
            s.samples.truncate(SAMPLES);
            let ms = |ns: i64| ns / 1_000_000;
            json!({
                "id": hex::encode(&Sha256::digest(template.as_bytes())[..8]),
                "template": template,
                "count": s.count,
                "firstSeen": time(Some(ms(s.first_ns))),
                "lastSeen": time(Some(ms(s.last_ns))),
                "samples": s.samples.into_iter().map(|(_, l)| l).collect::<Vec<_>>(),
                "services": s.services,
                "registers": s.devices,
            })
        })
        .collect();
    let mut body = json!({
        "clusters": out,
        "total": total,
        "linesScanned": lines,
        "truncated": lines >= MAX_LINES,
        "since": time(Some(end - since)),
        "query": query,
        "minClusterSize": min_size,
    });
    if summarize {
        let own = plain_summary(&out, total, since, min_size);
        let (summary, by, error) = match &state.settings().llm {
            None => (own, "dozor", None),
            Some(llm) => match crate::llm::summarise(llm, &summary_data(&out, since)).await {
                Ok(text) => (text, "model", None),
                Err(e) => {
                    tracing::warn!(error = %e, "no summary from the language model");
                    (own, "dozor", Some(e))
                }
            },
        };
        body["summary"] = json!(summary);
        body["summaryBy"] = json!(by);
        if let Some(e) = error {
            body["summaryError"] = json!(e);
        }
    }
    Ok(success(body))
}

/// Dozor's own summary of the clusters: the same data, the same sentence.
fn plain_summary(clusters: &[serde_json::Value], total: usize, since_ms: i64, min: u64) -> String {
    let hours = since_ms / 3_600_000;
    if clusters.is_empty() {
        return format!("No error repeated {min} times or more in the last {hours} h.");
    }
    let top: Vec<String> = clusters
        .iter()
        .take(3)
        .map(|c| {
            let services = c["services"]
                .as_array()
                .map(|s| {
                    s.iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            format!(
                "\"{}\" {} times{}",
                c["template"].as_str().unwrap_or(""),
                c["count"],
                if services.is_empty() {
                    String::new()
                } else {
                    format!(" ({services})")
                }
            )
        })
        .collect();
    format!(
        "{total} kind{} of error in the last {hours} h; the most frequent: {}.",
        if total == 1 { "" } else { "s" },
        top.join("; ")
    )
}

/// What the model is given: templates, counts, services and times — never raw lines.
fn summary_data(clusters: &[serde_json::Value], since_ms: i64) -> String {
    let mut out = format!("Error clusters of the last {} h:\n", since_ms / 3_600_000);
    for c in clusters.iter().take(20) {
        out.push_str(&format!(
            "- {} × \"{}\"; services {}; first {}, last {}\n",
            c["count"],
            c["template"].as_str().unwrap_or(""),
            c["services"],
            c["firstSeen"],
            c["lastSeen"]
        ));
    }
    out
}

/// The window recommendations look back over.
const ADVICE_WINDOW_MS: i64 = 7 * 24 * 3_600_000;
/// An episode shorter than this counts as a flap.
const FLAP_MS: i64 = 5 * 60_000;
/// More firings a day than this make a rule noisy.
const NOISY_PER_DAY: f64 = 10.0;
/// Metric names that look like failures, which some rule should watch.
const FAILURE_WORDS: [&str; 6] = ["error", "fail", "dead_letter", "reject", "timeout", "down"];

/// `GET /api/v1/ai/alert-recommendations` (seed 000's alert advisor), from the last 7
/// days, deterministic:
/// - `noisy`: rules that fired more than 10 times a day;
/// - `flapping`: rules whose episodes mostly ended within 5 minutes;
/// - `threshold`: structured threshold rules whose threshold the metric's own history
///   crosses more than 5 % of the time, with the 99th (or 1st) percentile suggested;
/// - `uncovered`: metrics named like failures that no rule mentions.
async fn alert_recommendations(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
) -> Result<impl IntoResponse, ApiError> {
    crate::routes::series::audit_read_of(
        &state,
        &principal,
        source,
        "alerts",
        "recommendations",
        "",
    )
    .await?;
    let now = now_ms();
    let mut out = Vec::new();

    // Noisy and flapping rules, from the alert history.
    let filter = dozor_state::alerts::HistoryFilter {
        from_ms: Some(now - ADVICE_WINDOW_MS),
        limit: 10_000,
        ..Default::default()
    };
    let episodes = state
        .store()
        .alert_history(&principal.tenant, &filter)
        .await?;
    let mut by_rule: std::collections::BTreeMap<&str, (u64, u64)> = Default::default();
    for e in &episodes {
        let (n, short) = by_rule.entry(e.rule.as_str()).or_default();
        *n += 1;
        if e.resolved_ms.is_some_and(|r| r - e.fired_ms < FLAP_MS) {
            *short += 1;
        }
    }
    let days = ADVICE_WINDOW_MS as f64 / 86_400_000.0;
    for (rule, (n, short)) in &by_rule {
        let per_day = *n as f64 / days;
        if per_day > NOISY_PER_DAY {
            out.push(json!({"kind": "noisy", "rule": rule, "firings": n, "perDay": (per_day * 10.0).round() / 10.0,
                "advice": "raise the threshold, add `for`, or group its alerts"}));
        }
        if *short >= 3 && *short * 2 >= *n {
            out.push(
                json!({"kind": "flapping", "rule": rule, "firings": n, "shorterThan5m": short,
                "advice": "add `for: 5m` or `keep_firing_for`, or enable flapping detection"}),
            );
        }
    }

    // Thresholds against the metric's own history.
    let stored = state.store().alert_rules(&principal.tenant).await?;
    let mut watched: Vec<String> = Vec::new();
    for row in &stored {
        let Ok(spec) = dozor_rules::structured::from_json(row.spec.as_bytes()) else {
            continue;
        };
        if let Ok(r) = spec.compile(&row.id) {
            watched.push(r.expr);
        }
        let dozor_rules::structured::Condition::Threshold(t) = &spec.condition else {
            continue;
        };
        let dozor_rules::structured::Value::Number(limit) = t.value else {
            continue;
        };
        use dozor_rules::structured::Operator;
        let (q_alarm, q_suggest, above) = match t.operator {
            Operator::Gt | Operator::Ge => (0.95, 0.99, true),
            Operator::Lt | Operator::Le => (0.05, 0.01, false),
            Operator::Eq | Operator::Ne => continue,
        };
        let quantile = |q: f64| {
            let agg = if above { "max" } else { "min" };
            format!("{agg}(quantile_over_time({q}, ({})[7d:5m]))", t.metric)
        };
        let (Some(alarm), Some(suggest)) = (
            instant_number(&state, &principal, &quantile(q_alarm), now).await,
            instant_number(&state, &principal, &quantile(q_suggest), now).await,
        ) else {
            continue;
        };
        let too_often = if above { limit < alarm } else { limit > alarm };
        if too_often {
            out.push(json!({"kind": "threshold", "rule": row.name, "metric": t.metric, "threshold": limit,
                "percentile": if above { 95 } else { 5 }, "value": alarm,
                "suggested": suggest,
                "advice": format!("the metric is past {limit} more than 5 % of the time; {} {suggest} would fire on the rarest 1 %",
                    if above { "above" } else { "below" })}));
        }
    }

    // Failure metrics no rule mentions.
    for g in state.rules().of_tenant(&principal.tenant) {
        let g = g.lock();
        watched.extend(g.rules.iter().map(|r| r.rule.expr.clone()));
    }
    if let Some(reader) = state.metric_reader(&principal)? {
        use dozor_tsdb::Queryable as _;
        let names = tokio::task::spawn_blocking(move || {
            reader.label_values("__name__", &[], now - ADVICE_WINDOW_MS, now)
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
        let uncovered = names
            .iter()
            .filter(|n| FAILURE_WORDS.iter().any(|w| n.contains(w)))
            .filter(|n| !watched.iter().any(|e| e.contains(n.as_str())))
            .take(20);
        for n in uncovered {
            out.push(json!({"kind": "uncovered", "metric": n,
                "advice": "no rule watches this failure metric"}));
        }
    }
    Ok(success(json!({
        "recommendations": out,
        "since": time(Some(now - ADVICE_WINDOW_MS)),
    })))
}

/// The single number an instant query gives, if it gives one.
pub(crate) async fn instant_number(
    state: &AppState,
    principal: &Principal,
    query: &str,
    t: i64,
) -> Option<f64> {
    let expr = crate::routes::query::parse_query(query).ok()?;
    let spec = crate::routes::query::QuerySpec {
        expr,
        start: t,
        end: t,
        step: 0,
        instant: true,
    };
    let res = crate::routes::query::run(state, principal, state.settings().query, spec)
        .await
        .ok()?;
    match res.value {
        dozor_promql::Value::Vector(v) => v.first().map(|s| s.v).filter(|v| v.is_finite()),
        dozor_promql::Value::Scalar { v, .. } => Some(v).filter(|v| v.is_finite()),
        _ => None,
    }
}
