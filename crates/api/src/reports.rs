//! Reports (seed 004's report builder): a definition — sections, each a PromQL or LogQL
//! metric query shown as a stat, a table or a chart, over a time range ending when it is
//! generated — a schedule (daily or weekly at a local time, or every interval), recipients
//! and the Alertmanager receiver whose SMTP settings deliver it. [`render`] runs the
//! queries with the visibility of the report's owner and writes an HTML document (inline
//! SVG charts, no scripts, no external resources: it is read in mail clients) and a CSV of
//! every number in it. The routes are `routes/reports.rs`; the binary's scheduler generates
//! due reports and sends pending deliveries.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use dozor_model::{Labels, Role, ScopeSet, TenantId};
use serde::{Deserialize, Serialize};

use crate::{ApiError, AppState, Principal};

/// Most sections in one report.
const MAX_SECTIONS: usize = 20;
/// Most series a section shows (the rest are counted).
const MAX_SERIES: usize = 50;
/// Most series drawn in one chart.
const MAX_CHART_SERIES: usize = 10;
/// Most points a chart's query returns per series.
const MAX_POINTS: i64 = 1000;
/// Most recipients.
const MAX_RECIPIENTS: usize = 50;

/// A report's definition, as the API takes and stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    /// Its name (the e-mail's subject).
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// The time range it covers, ending when it is generated (`24h`, `7d`; default 24h).
    #[serde(default = "default_range")]
    pub range: String,
    /// The resolution of charts (default: the range / 48).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// What it shows.
    pub sections: Vec<Section>,
    /// When the scheduler generates it; none: on demand only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// Who receives it (e-mail addresses).
    #[serde(default)]
    pub recipients: Vec<String>,
    /// The receiver of the tenant's Alertmanager configuration whose `email_configs` give
    /// the SMTP server and sender; required with recipients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    /// `html`, `csv` or both (default both): the CSV is attached to the e-mail.
    #[serde(default = "default_formats")]
    pub formats: Vec<Format>,
    /// Whether the scheduler runs it (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_range() -> String {
    "24h".to_owned()
}

fn default_formats() -> Vec<Format> {
    vec![Format::Html, Format::Csv]
}

fn default_true() -> bool {
    true
}

/// A document format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The HTML document (the e-mail's body).
    Html,
    /// The CSV of every number (attached).
    Csv,
}

/// One part of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// Its heading.
    pub title: String,
    /// How it shows its query.
    pub kind: SectionKind,
    /// A PromQL expression, or a LogQL metric query.
    pub query: String,
    /// `promql` (default) or `logql`.
    #[serde(default)]
    pub language: Language,
    /// A unit written after values (`₽`, `%`, `req/s`).
    #[serde(default)]
    pub unit: String,
}

/// How a section shows its query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SectionKind {
    /// Values at the end of the range, large.
    Stat,
    /// Values at the end of the range, one row per series.
    Table,
    /// The series over the range, drawn, with min, average, max and last.
    Chart,
}

/// A query language.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// PromQL over the metric store.
    #[default]
    Promql,
    /// A LogQL metric query over the log store.
    Logql,
}

/// When a report is generated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// `daily`, `weekly`, or an interval (`1h`, at least 10s).
    pub every: String,
    /// Local time `HH:MM` for daily and weekly (default 00:00).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// The day of a weekly report (`monday`…; default monday).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekday: Option<String>,
    /// IANA time zone of `at` (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// A definition that does not check: the field and why.
fn bad(field: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::bad_data(format!(
        "invalid report: {}: {}",
        field.into(),
        message.into()
    ))
}

/// Parses and checks a definition; errors name the field (`sections[1].query: …`).
pub fn check(body: &[u8]) -> Result<ReportSpec, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let spec: ReportSpec = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m)
            .to_owned();
        if path == "." {
            ApiError::bad_data(format!("invalid report: {message}"))
        } else {
            bad(path, message)
        }
    })?;
    let name = spec.name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(bad(
            "name",
            "1 to 200 characters without control characters",
        ));
    }
    if spec.description.chars().count() > 2000 {
        return Err(bad("description", "at most 2000 characters"));
    }
    let range = range_ms(&spec)?;
    step_ms(&spec, range)?;
    if spec.sections.is_empty() || spec.sections.len() > MAX_SECTIONS {
        return Err(bad("sections", format!("1 to {MAX_SECTIONS} sections")));
    }
    for (i, s) in spec.sections.iter().enumerate() {
        if s.title.trim().is_empty() || s.title.chars().count() > 200 {
            return Err(bad(format!("sections[{i}].title"), "1 to 200 characters"));
        }
        if s.unit.chars().count() > 20 {
            return Err(bad(format!("sections[{i}].unit"), "at most 20 characters"));
        }
        let field = format!("sections[{i}].query");
        match s.language {
            Language::Promql => {
                dozor_promql::parse(&s.query).map_err(|e| bad(&field, e.to_string()))?;
            }
            Language::Logql => match dozor_logs::logql::parse(&s.query) {
                Ok(dozor_logs::logql::Expr::Metric(_)) => {}
                Ok(dozor_logs::logql::Expr::Log(_)) => {
                    return Err(bad(
                        field,
                        "a LogQL metric query (count_over_time, rate, …), not a log query",
                    ));
                }
                Err(e) => return Err(bad(field, e.to_string())),
            },
        }
    }
    if let Some(s) = &spec.schedule {
        check_schedule(s)?;
    }
    if spec.recipients.len() > MAX_RECIPIENTS {
        return Err(bad("recipients", format!("at most {MAX_RECIPIENTS}")));
    }
    for (i, r) in spec.recipients.iter().enumerate() {
        let ok = r.len() <= 254
            && r.split_once('@')
                .is_some_and(|(u, d)| !u.is_empty() && d.contains('.'))
            && !r
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c));
        if !ok {
            return Err(bad(format!("recipients[{i}]"), "not an e-mail address"));
        }
    }
    if !spec.recipients.is_empty() && spec.receiver.as_deref().is_none_or(str::is_empty) {
        return Err(bad(
            "receiver",
            "required with recipients: the Alertmanager receiver whose email_configs send it",
        ));
    }
    if spec.formats.is_empty() {
        return Err(bad("formats", "html, csv or both"));
    }
    Ok(spec)
}

fn duration_ms(text: &str, field: &str) -> Result<i64, ApiError> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|_| bad(field, format!("{text:?} is not a duration like 24h or 7d")))?;
    i64::try_from(d.as_millis()).map_err(|_| bad(field, "too long"))
}

/// The range in ms (1 minute to 90 days).
pub fn range_ms(spec: &ReportSpec) -> Result<i64, ApiError> {
    let ms = duration_ms(&spec.range, "range")?;
    if !(60_000..=90 * 86_400_000).contains(&ms) {
        return Err(bad("range", "from 1m to 90d"));
    }
    Ok(ms)
}

/// The chart step in ms: given, or the range / 48; at most 1000 points.
fn step_ms(spec: &ReportSpec, range: i64) -> Result<i64, ApiError> {
    let step = match &spec.step {
        Some(s) => duration_ms(s, "step")?,
        None => (range / 48).max(1000),
    };
    if step < 1000 || range / step > MAX_POINTS {
        return Err(bad(
            "step",
            format!("at least 1s, and at most {MAX_POINTS} points over the range"),
        ));
    }
    Ok(step)
}

const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

fn check_schedule(s: &Schedule) -> Result<(), ApiError> {
    match s.every.as_str() {
        "daily" | "weekly" => {}
        other => {
            let ms = duration_ms(other, "schedule.every")
                .map_err(|_| bad("schedule.every", "daily, weekly or an interval like 1h"))?;
            if !(10_000..=31 * 86_400_000).contains(&ms) {
                return Err(bad("schedule.every", "an interval from 10s to 31d"));
            }
        }
    }
    if let Some(at) = &s.at {
        parse_at(at).ok_or_else(|| bad("schedule.at", "a local time HH:MM"))?;
    }
    if let Some(d) = &s.weekday
        && !WEEKDAYS.contains(&d.to_lowercase().as_str())
    {
        return Err(bad("schedule.weekday", "monday to sunday"));
    }
    if let Some(tz) = &s.timezone {
        jiff::tz::TimeZone::get(tz)
            .map_err(|_| bad("schedule.timezone", format!("unknown time zone {tz:?}")))?;
    }
    Ok(())
}

fn parse_at(at: &str) -> Option<(i8, i8)> {
    let (h, m) = at.trim().split_once(':')?;
    let (h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some((h, m))
}

/// The first run of `schedule` strictly after `after_ms`; `None` for a definition that no
/// longer checks.
pub fn next_run(schedule: &Schedule, after_ms: i64) -> Option<i64> {
    if let Ok(ms) = duration_ms(&schedule.every, "every") {
        return (ms > 0).then(|| after_ms + ms);
    }
    let tz = match &schedule.timezone {
        Some(t) => jiff::tz::TimeZone::get(t).ok()?,
        None => jiff::tz::TimeZone::UTC,
    };
    let (h, m) = schedule.at.as_deref().map_or(Some((0, 0)), parse_at)?;
    let now = jiff::Timestamp::from_millisecond(after_ms).ok()?;
    let weekday = match schedule.every.as_str() {
        "weekly" => {
            let name = schedule
                .weekday
                .as_deref()
                .unwrap_or("monday")
                .to_lowercase();
            Some(WEEKDAYS.iter().position(|d| *d == name)? as i8 + 1)
        }
        _ => None,
    };
    let mut day = tz.to_datetime(now).date();
    for _ in 0..16 {
        let candidate = tz.to_timestamp(day.at(h, m, 0, 0)).ok()?.as_millisecond();
        let right_day = weekday.is_none_or(|w| day.weekday().to_monday_one_offset() == w);
        if right_day && candidate > after_ms {
            return Some(candidate);
        }
        day = day.tomorrow().ok()?;
    }
    None
}

/// The principal a report runs as: its owner with the owner's role today (a token owner
/// sees the whole tenant, as tokens do); an owner who no longer exists runs nothing.
pub async fn run_as(
    state: &AppState,
    tenant: &TenantId,
    owner: &str,
) -> Result<Principal, ApiError> {
    if owner.starts_with("token:") {
        return Ok(Principal {
            tenant: tenant.clone(),
            actor: owner.to_owned(),
            user_id: None,
            role: None,
            scopes: ScopeSet::from_iter([dozor_model::Scope::Read]),
        });
    }
    let user = state
        .store()
        .user_by_name(owner)
        .await?
        .filter(|u| u.tenant == *tenant && u.disabled_ms.is_none())
        .ok_or_else(|| {
            ApiError::bad_data(format!("the report's owner {owner:?} no longer exists"))
        })?;
    let role: Role = user.role;
    Ok(Principal {
        tenant: tenant.clone(),
        actor: owner.to_owned(),
        user_id: Some(user.id),
        role: Some(role),
        scopes: role.scopes(),
    })
}

/// A generated report.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The HTML document.
    pub html: String,
    /// The CSV document.
    pub csv: String,
    /// The range covered, ms.
    pub range: (i64, i64),
}

/// One series of a section's result: its labels and points (ms, value).
type Points = Vec<(Vec<(String, String)>, Vec<(i64, f64)>)>;

/// Runs every section of `spec` as `principal` over the range ending at `end_ms`, and
/// writes the documents. A section whose query fails shows the error; the rest go on.
pub async fn render(
    state: &AppState,
    principal: &Principal,
    spec: &ReportSpec,
    end_ms: i64,
) -> Result<Rendered, ApiError> {
    let range = range_ms(spec)?;
    let step = step_ms(spec, range)?;
    let start = end_ms - range;
    let mut html = String::new();
    let mut csv = String::from("section,series,time,value\n");
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n\
         <body style=\"font-family:sans-serif;color:#1b1f24;max-width:760px\">\n<h1 style=\"font-size:22px\">{}</h1>\n",
        esc(&spec.name),
        esc(&spec.name)
    );
    if !spec.description.is_empty() {
        let _ = writeln!(html, "<p>{}</p>", esc(&spec.description));
    }
    let _ = writeln!(
        html,
        "<p style=\"color:#57606a\">{} — {} (UTC)</p>",
        esc(&time_text(start)),
        esc(&time_text(end_ms))
    );
    for s in &spec.sections {
        let _ = writeln!(
            html,
            "<h2 style=\"font-size:17px;margin-top:24px\">{}</h2>",
            esc(&s.title)
        );
        let result = match s.kind {
            SectionKind::Chart => query(state, principal, s, start, end_ms, step).await,
            SectionKind::Stat | SectionKind::Table => {
                query(state, principal, s, end_ms, end_ms, 0).await
            }
        };
        let mut series = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = writeln!(
                    html,
                    "<p style=\"color:#cf222e\">The query failed: {}</p>",
                    esc(e.message())
                );
                continue;
            }
        };
        series.sort_by(|a, b| a.0.cmp(&b.0));
        let more = series.len().saturating_sub(MAX_SERIES);
        series.truncate(MAX_SERIES);
        if series.is_empty() {
            let _ = writeln!(html, "<p style=\"color:#57606a\">No data.</p>");
        }
        for (labels, points) in &series {
            for (t, v) in points {
                let _ = writeln!(
                    csv,
                    "{},{},{},{}",
                    csv_field(&s.title),
                    csv_field(&series_name(labels)),
                    csv_time(*t),
                    number(*v)
                );
            }
        }
        match s.kind {
            SectionKind::Stat => stat_html(&mut html, &series, &s.unit),
            SectionKind::Table => table_html(&mut html, &series, &s.unit),
            SectionKind::Chart => chart_html(&mut html, &series, &s.unit, (start, end_ms)),
        }
        if more > 0 {
            let _ = writeln!(
                html,
                "<p style=\"color:#57606a\">And {more} more series.</p>"
            );
        }
    }
    html.push_str("<p style=\"color:#57606a;font-size:12px;margin-top:32px\">Generated by Dozor.</p>\n</body></html>\n");
    Ok(Rendered {
        html,
        csv,
        range: (start, end_ms),
    })
}

/// A section's query over [start, end] (an instant query when `step` is 0).
async fn query(
    state: &AppState,
    principal: &Principal,
    s: &Section,
    start: i64,
    end: i64,
    step: i64,
) -> Result<Points, ApiError> {
    match s.language {
        Language::Promql => {
            let spec = crate::routes::query::QuerySpec {
                expr: crate::routes::query::parse_query(&s.query)?,
                start,
                end,
                step,
                instant: step == 0,
            };
            let res =
                crate::routes::query::run(state, principal, state.settings().query, spec).await?;
            Ok(match res.value {
                dozor_promql::Value::Scalar { t, v } => vec![(Vec::new(), vec![(t, v)])],
                dozor_promql::Value::Vector(v) => v
                    .into_iter()
                    .map(|x| (pairs(&x.labels), vec![(x.t, x.v)]))
                    .collect(),
                dozor_promql::Value::Matrix(m) => m
                    .into_iter()
                    .map(|x| {
                        (
                            pairs(&x.labels),
                            x.samples.iter().map(|p| (p.t, p.v)).collect(),
                        )
                    })
                    .collect(),
                dozor_promql::Value::String { .. } => Vec::new(),
            })
        }
        Language::Logql => {
            use dozor_logs::logql::{QueryResult, Range, parse};
            let expr = parse(&s.query).map_err(|e| ApiError::bad_data(e.to_string()))?;
            let range = Range {
                start_ns: start.saturating_mul(1_000_000),
                end_ns: end.saturating_mul(1_000_000),
                step_ns: step.saturating_mul(1_000_000),
                limit: 0,
                direction: dozor_logs::Direction::Backward,
            };
            let (result, _) = crate::routes::loki_query::run(state, principal, expr, range).await?;
            Ok(match result {
                QueryResult::Vector(series) | QueryResult::Matrix(series) => series
                    .into_iter()
                    .map(|s| {
                        let points = s
                            .points
                            .into_iter()
                            .map(|(t, v)| (t / 1_000_000, v))
                            .collect();
                        (s.labels, points)
                    })
                    .collect(),
                _ => Vec::new(),
            })
        }
    }
}

fn pairs(l: &Labels) -> Vec<(String, String)> {
    l.iter()
        .map(|x| (x.name.to_string(), x.value.to_string()))
        .collect()
}

/// `name{a="b"}`, or `{a="b"}`, or `value` for a label-less result.
fn series_name(labels: &[(String, String)]) -> String {
    let name = labels
        .iter()
        .find(|(k, _)| k == "__name__")
        .map_or("", |(_, v)| v.as_str());
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k != "__name__")
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    match (name.is_empty(), rest.is_empty()) {
        (true, true) => "value".to_owned(),
        (false, true) => name.to_owned(),
        _ => format!("{name}{{{}}}", rest.join(", ")),
    }
}

/// A number as a report shows it: integers whole, others to four significant digits.
fn number(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{v:.0}");
    }
    let digits = (4 - 1 - v.abs().log10().floor() as i32).clamp(0, 10) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

fn with_unit(v: f64, unit: &str) -> String {
    if unit.is_empty() {
        number(v)
    } else {
        format!("{} {unit}", number(v))
    }
}

fn time_text(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// RFC 3339 to the second, UTC: what spreadsheets and scripts read.
fn csv_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// HTML text escaping.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A CSV field (RFC 4180), with formula characters neutralised so that a spreadsheet never
/// runs a label value as a formula.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) && s.parse::<f64>().is_err() {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn stat_html(html: &mut String, series: &Points, unit: &str) {
    html.push_str("<div>\n");
    for (labels, points) in series {
        if let Some((_, v)) = points.last() {
            let _ = writeln!(
                html,
                "<div style=\"display:inline-block;margin:0 24px 12px 0\"><div style=\"font-size:28px;font-weight:bold\">{}</div><div style=\"color:#57606a\">{}</div></div>",
                esc(&with_unit(*v, unit)),
                esc(&series_name(labels))
            );
        }
    }
    html.push_str("</div>\n");
}

fn table_html(html: &mut String, series: &Points, unit: &str) {
    let columns: BTreeSet<&str> = series
        .iter()
        .flat_map(|(l, _)| l.iter().map(|(k, _)| k.as_str()))
        .collect();
    html.push_str("<table style=\"border-collapse:collapse\">\n<tr>");
    for c in &columns {
        let _ = write!(
            html,
            "<th style=\"text-align:left;padding:4px 12px 4px 0;border-bottom:1px solid #d0d7de\">{}</th>",
            esc(c)
        );
    }
    html.push_str("<th style=\"text-align:right;padding:4px 0;border-bottom:1px solid #d0d7de\">value</th></tr>\n");
    for (labels, points) in series {
        html.push_str("<tr>");
        for c in &columns {
            let v = labels
                .iter()
                .find(|(k, _)| k == c)
                .map_or("", |(_, v)| v.as_str());
            let _ = write!(html, "<td style=\"padding:4px 12px 4px 0\">{}</td>", esc(v));
        }
        let v = points
            .last()
            .map_or(String::new(), |(_, v)| with_unit(*v, unit));
        let _ = writeln!(
            html,
            "<td style=\"text-align:right;padding:4px 0\">{}</td></tr>",
            esc(&v)
        );
    }
    html.push_str("</table>\n");
}

const PALETTE: [&str; MAX_CHART_SERIES] = [
    "#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#1b7c83", "#bc4c00", "#6e7781",
    "#a40e26", "#0550ae",
];

/// An inline SVG line chart (mail clients show it without scripts or fetches) and a table
/// of min, average, max and last per series.
fn chart_html(html: &mut String, series: &Points, unit: &str, (start, end): (i64, i64)) {
    let (w, h, pad) = (640.0, 200.0, 4.0);
    let values = series
        .iter()
        .take(MAX_CHART_SERIES)
        .flat_map(|(_, p)| p.iter().map(|(_, v)| *v))
        .filter(|v| v.is_finite());
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if lo.is_finite() && hi.is_finite() {
        let span = if hi > lo { hi - lo } else { 1.0 };
        let x = |t: i64| pad + (t - start) as f64 / (end - start).max(1) as f64 * (w - 2.0 * pad);
        let y = |v: f64| h - pad - (v - lo) / span * (h - 2.0 * pad);
        let _ = writeln!(
            html,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"chart\" style=\"border:1px solid #d0d7de\">"
        );
        for (i, (_, points)) in series.iter().take(MAX_CHART_SERIES).enumerate() {
            let coords: Vec<String> = points
                .iter()
                .filter(|(_, v)| v.is_finite())
                .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
                .collect();
            let _ = writeln!(
                html,
                "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>",
                PALETTE[i],
                coords.join(" ")
            );
        }
        let _ = writeln!(
            html,
            "<text x=\"6\" y=\"14\" font-size=\"11\" fill=\"#57606a\">{}</text><text x=\"6\" y=\"{}\" font-size=\"11\" fill=\"#57606a\">{}</text></svg>",
            esc(&with_unit(hi, unit)),
            h - 8.0,
            esc(&with_unit(lo, unit))
        );
    }
    html.push_str("<table style=\"border-collapse:collapse;margin-top:6px\">\n<tr><th style=\"text-align:left;padding:2px 12px 2px 0\">series</th><th style=\"text-align:right;padding:2px 8px\">min</th><th style=\"text-align:right;padding:2px 8px\">avg</th><th style=\"text-align:right;padding:2px 8px\">max</th><th style=\"text-align:right;padding:2px 0\">last</th></tr>\n");
    for (i, (labels, points)) in series.iter().enumerate() {
        let vs: Vec<f64> = points
            .iter()
            .map(|(_, v)| *v)
            .filter(|v| v.is_finite())
            .collect();
        if vs.is_empty() {
            continue;
        }
        let min = vs.iter().copied().fold(f64::INFINITY, f64::min);
        let max = vs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let avg = vs.iter().sum::<f64>() / vs.len() as f64;
        let colour = PALETTE.get(i).copied().unwrap_or("#57606a");
        let _ = writeln!(
            html,
            "<tr><td style=\"padding:2px 12px 2px 0\"><span style=\"color:{colour}\">■</span> {}</td><td style=\"text-align:right;padding:2px 8px\">{}</td><td style=\"text-align:right;padding:2px 8px\">{}</td><td style=\"text-align:right;padding:2px 8px\">{}</td><td style=\"text-align:right;padding:2px 0\">{}</td></tr>",
            esc(&series_name(labels)),
            esc(&with_unit(min, unit)),
            esc(&with_unit(avg, unit)),
            esc(&with_unit(max, unit)),
            esc(&with_unit(vs[vs.len() - 1], unit)),
        );
    }
    html.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<ReportSpec, String> {
        check(json.as_bytes()).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn definitions_are_checked_field_by_field() {
        let ok = r#"{"name": "Daily", "sections": [{"title": "Orders", "kind": "chart", "query": "sum(rate(orders_total[5m]))"}]}"#;
        let s = spec(ok).unwrap();
        assert_eq!(s.formats, [Format::Html, Format::Csv]);
        for (json, field) in [
            (r#"{"name": "", "sections": []}"#, "name"),
            (r#"{"name": "x", "sections": []}"#, "sections"),
            (
                r#"{"name": "x", "range": "soon", "sections": [{"title": "t", "kind": "stat", "query": "1"}]}"#,
                "range",
            ),
            (
                r#"{"name": "x", "range": "1h", "step": "1s", "sections": [{"title": "t", "kind": "stat", "query": "1"}]}"#,
                "step",
            ),
            (
                r#"{"name": "x", "sections": [{"title": "t", "kind": "pie", "query": "1"}]}"#,
                "sections[0].kind",
            ),
            (
                r#"{"name": "x", "sections": [{"title": "t", "kind": "stat", "query": "sum("}]}"#,
                "sections[0].query",
            ),
            (
                r#"{"name": "x", "sections": [{"title": "t", "kind": "stat", "query": "{a=\"b\"}", "language": "logql"}]}"#,
                "sections[0].query",
            ),
            (
                r#"{"name": "x", "sections": [{"title": "t", "kind": "stat", "query": "1"}], "schedule": {"every": "hourly"}}"#,
                "schedule.every",
            ),
            (
                r#"{"name": "x", "sections": [{"title": "t", "kind": "stat", "query": "1"}], "schedule": {"every": "daily", "at": "25:00"}}"#,
                "schedule.at",
            ),
            (
                r#"{"name": "x", "sections": [{"title": "t", "kind": "stat", "query": "1"}], "schedule": {"every": "weekly", "weekday": "funday"}}"#,
                "schedule.weekday",
            ),
            (
                r#"{"name": "x", "sections": [{"title": "t", "kind": "stat", "query": "1"}], "schedule": {"every": "daily", "timezone": "Mars/Olympus"}}"#,
                "schedule.timezone",
            ),
            (
                r#"{"name": "x", "sections": [{"title": "t", "kind": "stat", "query": "1"}], "recipients": ["not an address"], "receiver": "mail"}"#,
                "recipients[0]",
            ),
            (
                r#"{"name": "x", "sections": [{"title": "t", "kind": "stat", "query": "1"}], "recipients": ["ops@shop.example"]}"#,
                "receiver",
            ),
            (
                r#"{"name": "x", "sections": [{"title": "t", "kind": "stat", "query": "1"}], "colour": "red"}"#,
                "colour",
            ),
        ] {
            let e = spec(json).unwrap_err();
            assert!(
                e.contains(&format!("invalid report: {field}"))
                    || (field == "colour" && e.contains("unknown field `colour`")),
                "{json}: {e}"
            );
        }
    }

    #[test]
    fn schedules_find_their_next_run() {
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap().as_millisecond();
        // Monday 2026-12-07 10:00 UTC.
        let now = at("2026-12-07T10:00:00Z");
        let daily = |t: &str, tz: Option<&str>| Schedule {
            every: "daily".into(),
            at: Some(t.into()),
            weekday: None,
            timezone: tz.map(str::to_owned),
        };
        assert_eq!(
            next_run(&daily("07:00", None), now),
            Some(at("2026-12-08T07:00:00Z"))
        );
        assert_eq!(
            next_run(&daily("11:30", None), now),
            Some(at("2026-12-07T11:30:00Z"))
        );
        // 12:00 in Moscow is 09:00 UTC: already past today.
        assert_eq!(
            next_run(&daily("12:00", Some("Europe/Moscow")), now),
            Some(at("2026-12-08T09:00:00Z"))
        );
        let weekly = Schedule {
            every: "weekly".into(),
            at: Some("08:00".into()),
            weekday: Some("Friday".into()),
            timezone: None,
        };
        assert_eq!(next_run(&weekly, now), Some(at("2026-12-11T08:00:00Z")));
        let every = Schedule {
            every: "15m".into(),
            at: None,
            weekday: None,
            timezone: None,
        };
        assert_eq!(next_run(&every, now), Some(now + 900_000));
    }

    #[test]
    fn numbers_csv_and_html_are_safe_to_show() {
        assert_eq!(number(1250.0), "1250");
        assert_eq!(number(0.123456), "0.1235");
        assert_eq!(number(3.5), "3.5");
        assert_eq!(number(12345.678), "12346");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-3.5"), "-3.5");
        assert_eq!(esc("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
        assert_eq!(
            series_name(&[("__name__".into(), "up".into()), ("job".into(), "a".into())]),
            "up{job=\"a\"}"
        );
    }
}
