//! Alert label and annotation templates as Prometheus expands them: Go's template
//! language ([`dozor_gotmpl`]) with Prometheus' data and functions —
//! `{{ $labels.instance }}`, `{{ $value | humanize }}`, `{{ printf "%.2f" $value }}`,
//! `{{ if gt $value 80.0 }}…{{ else }}…{{ end }}`, `{{ range $k, $v := $labels }}…{{ end }}`,
//! `{{ with query "…" }}…{{ end }}`.
//!
//! The data: `.Labels`/`$labels`, `.Value`/`$value`, `.ExternalLabels`/`$externalLabels`,
//! `.ExternalURL`/`$externalURL`. Prometheus' functions: `humanize`, `humanize1024`,
//! `humanizeDuration`, `humanizePercentage`, `humanizeTimestamp`, `stripPort`,
//! `stripDomain`, `parseDuration`, `args`, `first`, `label`, `value`, `sortByLabel`,
//! `strvalue` and `query` (through [`Context::query`]), beside the language's. A missing
//! label is the empty string (Prometheus' `missingkey=zero`). `define`/`template`/`block`
//! are refused when the template is parsed, so `dozor check rules` reports them.

use std::collections::BTreeMap;

use dozor_gotmpl::{Dialect, Render, Value, go_g};

pub use dozor_gotmpl::go_v;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    inner: dozor_gotmpl::Template,
}

/// The samples of an instant query, as templates see them: labels and value.
pub type QueryRows = Vec<(BTreeMap<String, String>, f64)>;

/// A query function for `{{ query "…" }}`.
pub type QueryFn<'a> = dyn Fn(&str) -> Result<QueryRows, String> + 'a;

/// What a template sees: `.Labels`/`$labels`, `.Value`/`$value`,
/// `.ExternalLabels`/`$externalLabels`, `.ExternalURL`/`$externalURL`.
pub struct Context<'a> {
    /// The alert's (or sample's) labels.
    pub labels: &'a BTreeMap<String, String>,
    /// The sample value.
    pub value: f64,
    /// The server's external labels.
    pub external_labels: &'a BTreeMap<String, String>,
    /// The server's external URL.
    pub external_url: &'a str,
    /// Runs `query`; without one, `query` is an execution error.
    pub query: Option<&'a QueryFn<'a>>,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("labels", &self.labels)
            .field("value", &self.value)
            .finish_non_exhaustive()
    }
}

/// Prometheus' template functions.
struct Prometheus<'a> {
    query: Option<&'a QueryFn<'a>>,
}

const FUNCS: &[&str] = &[
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "stripPort",
    "stripDomain",
    "parseDuration",
    "args",
    "first",
    "label",
    "value",
    "sortByLabel",
    "strvalue",
    "query",
];

/// A query result's sample: its labels and value.
fn sample(labels: BTreeMap<String, String>, value: f64) -> Value {
    Value::record([
        ("Labels", Value::Map(labels)),
        ("Value", Value::Float(value)),
    ])
}

/// The labels of a sample.
fn labels_of(v: &Value) -> Option<&BTreeMap<String, String>> {
    match v {
        Value::Struct(m) => match m.get("Labels") {
            Some(Value::Map(l)) => Some(l),
            _ => None,
        },
        _ => None,
    }
}

impl Dialect for Prometheus<'_> {
    fn has(&self, name: &str) -> bool {
        FUNCS.contains(&name)
    }

    fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, String> {
        let n = args.len();
        let want = |k: usize| {
            if n == k {
                Ok(())
            } else {
                Err(format!("wrong number of args: want {k} got {n}"))
            }
        };
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Nil);
        Ok(match name {
            "humanize" | "humanize1024" | "humanizeDuration" | "humanizePercentage"
            | "humanizeTimestamp" => {
                want(1)?;
                let v = arg(0).float()?;
                Value::Str(match name {
                    "humanize" => humanize(v),
                    "humanize1024" => humanize_1024(v),
                    "humanizeDuration" => humanize_duration(v),
                    "humanizePercentage" => format!("{}%", go_g(v * 100.0, 4)),
                    _ => humanize_timestamp(v),
                })
            }
            "stripPort" | "stripDomain" => {
                want(1)?;
                let s = arg(0).text();
                Value::Str(if name == "stripPort" {
                    strip_port(&s)
                } else {
                    strip_domain(&s)
                })
            }
            "parseDuration" => {
                want(1)?;
                let d = promql_parser::util::parse_duration(&arg(0).text())?;
                Value::Float(d.as_secs_f64())
            }
            "args" => Value::List(args),
            "first" => {
                want(1)?;
                match arg(0) {
                    Value::List(l) => l
                        .into_iter()
                        .next()
                        .ok_or("first() called on vector with no elements")?,
                    other => return Err(format!("first of {}", other.kind())),
                }
            }
            "label" => {
                want(2)?;
                let s = arg(1);
                let l = labels_of(&s).ok_or_else(|| format!("label of {}", s.kind()))?;
                Value::Str(l.get(&arg(0).text()).cloned().unwrap_or_default())
            }
            "value" => {
                want(1)?;
                match arg(0) {
                    Value::Struct(m) if m.contains_key("Value") => {
                        m.get("Value").cloned().unwrap_or(Value::Nil)
                    }
                    other => return Err(format!("value of {}", other.kind())),
                }
            }
            "strvalue" => {
                want(1)?;
                let s = arg(0);
                let l = labels_of(&s).ok_or_else(|| format!("strvalue of {}", s.kind()))?;
                Value::Str(l.get("__value__").cloned().unwrap_or_default())
            }
            "sortByLabel" => {
                want(2)?;
                let key = arg(0).text();
                match arg(1) {
                    Value::List(mut l) => {
                        l.sort_by_key(|v| {
                            labels_of(v)
                                .and_then(|m| m.get(&key))
                                .cloned()
                                .unwrap_or_default()
                        });
                        Value::List(l)
                    }
                    other => return Err(format!("sortByLabel of {}", other.kind())),
                }
            }
            "query" => {
                want(1)?;
                let q = self.query.ok_or("query is not available here")?;
                let rows = q(&arg(0).text())?;
                Value::List(rows.into_iter().map(|(l, v)| sample(l, v)).collect())
            }
            other => return Err(format!("function {other:?} not defined")),
        })
    }

    fn definitions(&self) -> bool {
        false
    }
}

impl Template {
    /// Parses a template; the error names the action that does not parse.
    pub fn parse(text: &str) -> Result<Template, String> {
        let inner = dozor_gotmpl::Template::parse(text, &Prometheus { query: None })?;
        Ok(Template { inner })
    }

    /// Whether the template is plain text (expanding it returns it unchanged).
    pub fn is_plain(&self) -> bool {
        self.inner.is_plain()
    }

    /// Expands the template.
    pub fn render(&self, cx: &Context<'_>) -> Result<String, String> {
        let root = Value::record([
            ("Labels", Value::Map(cx.labels.clone())),
            ("Value", Value::Float(cx.value)),
            ("ExternalLabels", Value::Map(cx.external_labels.clone())),
            ("ExternalURL", Value::Str(cx.external_url.to_owned())),
        ]);
        let dialect = Prometheus { query: cx.query };
        let how = Render {
            dialect: &dialect,
            library: None,
            html: false,
            vars: vec![
                ("$labels".into(), Value::Map(cx.labels.clone())),
                ("$value".into(), Value::Float(cx.value)),
                (
                    "$externalLabels".into(),
                    Value::Map(cx.external_labels.clone()),
                ),
                (
                    "$externalURL".into(),
                    Value::Str(cx.external_url.to_owned()),
                ),
            ],
        };
        self.inner.render(&root, &how)
    }
}

/// Expands `text` as Prometheus does for alert labels and annotations: an error becomes
/// the text `<error expanding template: …>`.
pub fn expand(text: &str, cx: &Context<'_>) -> String {
    match Template::parse(text).and_then(|t| t.render(cx)) {
        Ok(s) => s,
        Err(e) => format!("<error expanding template: {e}>"),
    }
}

fn humanize(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return go_g(v, 4);
    }
    let mut v = v;
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", go_g(v, 4))
}

fn humanize_1024(v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return go_g(v, 4);
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", go_g(v, 4))
}

fn humanize_duration(v: f64) -> String {
    if !v.is_finite() {
        return go_g(v, 4);
    }
    if v == 0.0 {
        return format!("{}s", go_g(v, 4));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        let v = v.abs();
        let d = v as i64;
        let (s, m, h, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86_400);
        return if days != 0 {
            format!("{sign}{days}d {h}h {m}m {s}s")
        } else if h != 0 {
            format!("{sign}{h}h {m}m {s}s")
        } else if m != 0 {
            format!("{sign}{m}m {s}s")
        } else {
            format!("{sign}{}s", go_g(v, 4))
        };
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", go_g(v, 4))
}

/// Go's `time.Time.String()` in UTC of a Unix time in seconds, at Prometheus' millisecond
/// precision: `2006-01-02 15:04:05.999 +0000 UTC`.
fn humanize_timestamp(v: f64) -> String {
    if !v.is_finite() {
        return go_g(v, 4);
    }
    let ms = ((v * 1e9) as i64).div_euclid(1_000_000);
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let rem = secs.rem_euclid(86_400);
    let (y, mo, d) = dozor_model::time::civil_from_days(secs.div_euclid(86_400));
    let mut s = format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    );
    if frac > 0 {
        s.push('.');
        s.push_str(format!("{frac:03}").trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

fn strip_port(s: &str) -> String {
    if let Some(rest) = s.strip_prefix('[')
        && let Some((host, _)) = rest.split_once(']')
    {
        return host.to_owned();
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host.to_owned()
        }
        _ => s.to_owned(),
    }
}

fn strip_domain(s: &str) -> String {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (s, None),
    };
    if host.parse::<std::net::IpAddr>().is_ok() {
        return s.to_owned();
    }
    let short = host.split('.').next().unwrap_or(host);
    match port {
        Some(p) => format!("{short}:{p}"),
        None => short.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &str, labels: &[(&str, &str)], value: f64) -> String {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let ext = BTreeMap::from([("cluster".to_owned(), "eu1".to_owned())]);
        let cx = Context {
            labels: &labels,
            value,
            external_labels: &ext,
            external_url: "http://dozor:9470",
            query: None,
        };
        Template::parse(t)
            .unwrap_or_else(|e| panic!("{t}: {e}"))
            .render(&cx)
            .unwrap_or_else(|e| panic!("{t}: {e}"))
    }

    #[test]
    fn labels_values_and_variables() {
        let l = [("instance", "db1:9100"), ("job", "node")];
        assert_eq!(
            render("{{ $labels.instance }} is down", &l, 1.0),
            "db1:9100 is down"
        );
        assert_eq!(
            render("{{ .Labels.job }}/{{ .Value }}", &l, 0.5),
            "node/0.5"
        );
        assert_eq!(render("{{ $labels.missing }}|", &l, 0.0), "|");
        assert_eq!(render("{{ $value }}", &l, 1e6), "1e+06");
        assert_eq!(render("{{ $value }}", &l, 123456.0), "123456");
        assert_eq!(render("{{ $value }}", &l, 1234567.0), "1.234567e+06");
        assert_eq!(render("{{ $value }}", &l, 0.00001), "1e-05");
        assert_eq!(
            render("{{ $externalLabels.cluster }} {{ $externalURL }}", &l, 0.0),
            "eu1 http://dozor:9470"
        );
        assert_eq!(render("{{ $x := 5.0 }}{{ $x }}", &l, 0.0), "5");
        assert_eq!(
            render("{{ $labels }}", &l, 0.0),
            "map[instance:db1:9100 job:node]"
        );
    }

    #[test]
    fn humanize_functions_match_prometheus() {
        let h = |t: &str, v: f64| render(t, &[], v);
        assert_eq!(h("{{ humanize $value }}", 1234567.0), "1.235M");
        assert_eq!(h("{{ $value | humanize }}", 0.00123), "1.23m");
        assert_eq!(h("{{ humanize $value }}", 0.0), "0");
        assert_eq!(h("{{ humanize $value }}", 12.0), "12");
        assert_eq!(h("{{ humanize1024 $value }}", 1048576.0), "1Mi");
        assert_eq!(h("{{ humanize1024 $value }}", 1536.0), "1.5ki");
        assert_eq!(h("{{ humanizeDuration $value }}", 90061.0), "1d 1h 1m 1s");
        assert_eq!(h("{{ humanizeDuration $value }}", 3.5), "3.5s");
        assert_eq!(h("{{ humanizeDuration $value }}", 0.25), "250ms");
        assert_eq!(h("{{ humanizePercentage $value }}", 0.1234), "12.34%");
        assert_eq!(
            h("{{ humanizeTimestamp $value }}", 1_435_065_584.128),
            "2015-06-23 13:19:44.128 +0000 UTC"
        );
        assert_eq!(h("{{ humanize \"2048\" }}", 0.0), "2.048k");
    }

    #[test]
    fn printf_and_string_functions() {
        let l = [("instance", "web-1.example.com:8080")];
        assert_eq!(render("{{ printf \"%.2f\" $value }}", &l, 1.23456), "1.23");
        assert_eq!(render("{{ printf \"%d%%\" $value }}", &l, 42.9), "42%");
        assert_eq!(render("{{ printf \"%s=%v\" \"a\" 1.5 }}", &l, 0.0), "a=1.5");
        assert_eq!(
            render("{{ printf \"%5.1f|%-4s|\" 2.25 \"x\" }}", &l, 0.0),
            "  2.2|x   |"
        );
        assert_eq!(
            render("{{ $labels.instance | stripPort }}", &l, 0.0),
            "web-1.example.com"
        );
        assert_eq!(
            render("{{ $labels.instance | stripDomain }}", &l, 0.0),
            "web-1:8080"
        );
        assert_eq!(
            render("{{ toUpper \"ok\" }} {{ title \"hello world\" }}", &l, 0.0),
            "OK Hello World"
        );
        assert_eq!(
            render(
                "{{ reReplaceAll \"-([0-9])\" \"_$1\" $labels.instance }}",
                &l,
                0.0
            ),
            "web_1.example.com:8080"
        );
        assert_eq!(
            render(
                "{{ if match \"^web\" $labels.instance }}web{{ end }}",
                &l,
                0.0
            ),
            "web"
        );
        assert_eq!(render("{{ parseDuration \"1m30s\" }}", &l, 0.0), "90");
    }

    #[test]
    fn control_flow_and_trimming() {
        let l = [("severity", "critical"), ("a", "1")];
        let t = "{{ if gt $value 80.0 }}high{{ else if gt $value 50.0 }}mid{{ else }}low{{ end }}";
        assert_eq!(render(t, &l, 90.0), "high");
        assert_eq!(render(t, &l, 60.0), "mid");
        assert_eq!(render(t, &l, 10.0), "low");
        assert_eq!(
            render(
                "{{ if eq $labels.severity \"warning\" \"critical\" }}page{{ end }}",
                &l,
                0.0
            ),
            "page"
        );
        assert_eq!(
            render(
                "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
                &l,
                0.0
            ),
            "a=1;severity=critical;"
        );
        assert_eq!(
            render("{{ with $labels.severity }}[{{ . }}]{{ end }}", &l, 0.0),
            "[critical]"
        );
        assert_eq!(
            render("{{ with $labels.none }}x{{ else }}none{{ end }}", &l, 0.0),
            "none"
        );
        assert_eq!(render("a  {{- /* note */ -}}  b", &l, 0.0), "ab");
        assert_eq!(render("x {{- $value -}} y", &l, 2.0), "x2y");
        assert_eq!(
            render(
                "{{ and 1.0 \"\" }}|{{ or \"\" \"z\" }}|{{ not false }}|{{ len $labels }}",
                &l,
                0.0
            ),
            "|z|true|2"
        );
        assert_eq!(render("{{ index $labels \"a\" }}", &l, 0.0), "1");
        assert_eq!(
            render("{{ (printf \"%s\" \"q\") | toUpper }}", &l, 0.0),
            "Q"
        );
    }

    #[test]
    fn bad_templates_are_parse_errors_naming_the_problem() {
        for (t, want) in [
            ("{{ $labels.x", "unclosed action"),
            ("{{ if true }}x", "without {{end}}"),
            ("{{ end }}", "unexpected"),
            ("{{ nosuch 1 }}", "not defined"),
            ("{{ define \"x\" }}{{ end }}", "not supported"),
            ("{{ \"abc }}", "unterminated quoted string"),
            ("{{ ( 1 }}", "unclosed ("),
            ("{{ | x }}", "missing command"),
        ] {
            let e = Template::parse(t).expect_err(t);
            assert!(e.contains(want), "{t}: {e}");
        }
    }

    #[test]
    fn execution_errors_are_reported_in_the_text() {
        let cx = Context {
            labels: &BTreeMap::new(),
            value: 1.0,
            external_labels: &BTreeMap::new(),
            external_url: "",
            query: None,
        };
        assert!(
            expand("{{ $nope }}", &cx).starts_with("<error expanding template: undefined variable")
        );
        assert!(expand("{{ query \"up\" }}", &cx).contains("not available"));
        assert!(expand("{{ humanize \"abc\" }}", &cx).contains("invalid syntax"));
        assert!(expand("{{ range $i := 5.0 }}{{ end }}", &cx).contains("can't iterate"));
    }

    #[test]
    fn query_results_are_samples() {
        let rows = |q: &str| -> Result<QueryRows, String> {
            assert_eq!(q, "up");
            Ok(vec![
                (BTreeMap::from([("job".to_owned(), "b".to_owned())]), 0.0),
                (BTreeMap::from([("job".to_owned(), "a".to_owned())]), 1.0),
            ])
        };
        let cx = Context {
            labels: &BTreeMap::new(),
            value: 1.0,
            external_labels: &BTreeMap::new(),
            external_url: "",
            query: Some(&rows),
        };
        let t = Template::parse("{{ with query \"up\" }}{{ . | first | value | humanize }}{{ end }}|{{ range query \"up\" | sortByLabel \"job\" }}{{ .Labels.job }}{{ end }}").unwrap();
        assert_eq!(t.render(&cx).unwrap(), "0|ab");
    }
}
