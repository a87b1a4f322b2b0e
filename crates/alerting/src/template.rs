//! Alertmanager's notification templates: Go's template language ([`dozor_gotmpl`]) with
//! Alertmanager's data (`.Status`, `.Alerts`, `.GroupLabels`, `.CommonLabels`,
//! `.CommonAnnotations`, `.ExternalURL`, `.Receiver`, `.GroupKey`), its value methods
//! (`.Alerts.Firing`, `.Alerts.Resolved`, `KV.SortedPairs`, `.Names`, `.Values`,
//! `.Remove`, `Pairs.Names`, `.Values`) and functions (`trimSpace`, `join`, `stringSlice`,
//! with the language's `toUpper`, `toLower`, `title`, `match`, `reReplaceAll`,
//! `safeHtml`). Template files (`templates:` in `alertmanager.yml`) define named templates
//! that receivers' fields call; Alertmanager's default names are defined too
//! (`default.tmpl`), so `{{ template "slack.default.title" . }}` works unchanged.

use std::collections::BTreeMap;

use dozor_gotmpl::{Dialect, Library, Render, Template};

pub use dozor_gotmpl::Value;

use crate::dispatch::Notification;

/// Templates every configuration has: Alertmanager's default names.
const DEFAULTS: &str = include_str!("default.tmpl");

/// Alertmanager's functions and value methods.
#[derive(Debug, Clone, Copy, Default)]
pub struct Alertmanager;

/// A `Name`/`Value` pair, what `SortedPairs` lists.
fn pair(name: &str, value: &str) -> Value {
    Value::record([
        ("Name", Value::Str(name.to_owned())),
        ("Value", Value::Str(value.to_owned())),
    ])
}

/// `KV.SortedPairs`: by name, `alertname` first, as Alertmanager sorts them.
fn sorted_pairs(m: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
    let mut p: Vec<(&str, &str)> = m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    p.sort_by_key(|(k, _)| *k != "alertname");
    p
}

fn strings<'a>(i: impl Iterator<Item = &'a str>) -> Value {
    Value::List(i.map(|s| Value::Str(s.to_owned())).collect())
}

impl Dialect for Alertmanager {
    fn has(&self, name: &str) -> bool {
        matches!(name, "trimSpace" | "join" | "stringSlice")
    }

    fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, String> {
        match (name, args.as_slice()) {
            ("trimSpace", [a]) => Ok(Value::Str(a.text().trim().to_owned())),
            ("join", [sep, Value::List(l)]) => Ok(Value::Str(
                l.iter()
                    .map(Value::text)
                    .collect::<Vec<_>>()
                    .join(&sep.text()),
            )),
            ("join", [_, other]) => Err(format!("want a list of strings, got {}", other.kind())),
            ("stringSlice", _) => Ok(Value::List(
                args.iter().map(|a| Value::Str(a.text())).collect(),
            )),
            _ => Err(format!("wrong number of args: {} given", args.len())),
        }
    }

    fn member(&self, v: &Value, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        Some(Ok(match (v, name, args) {
            // `Alerts`: the firing or the resolved ones.
            (Value::List(l), "Firing" | "Resolved", []) => {
                let want = Value::Str(name.to_lowercase());
                Value::List(
                    l.iter()
                        .filter(|a| matches!(a, Value::Struct(m) if m.get("Status") == Some(&want)))
                        .cloned()
                        .collect(),
                )
            }
            // `Pairs`: the names or the values.
            (Value::List(l), "Names" | "Values", []) => {
                let key = if name == "Names" { "Name" } else { "Value" };
                let mut out = Vec::with_capacity(l.len());
                for p in l {
                    match p {
                        Value::Struct(m) if m.contains_key(key) => {
                            out.push(m.get(key).cloned().unwrap_or(Value::Nil));
                        }
                        _ => return None,
                    }
                }
                Value::List(out)
            }
            // `KV`.
            (Value::Map(m), "SortedPairs", []) => Value::List(
                sorted_pairs(m)
                    .into_iter()
                    .map(|(k, v)| pair(k, v))
                    .collect(),
            ),
            (Value::Map(m), "Names", []) => strings(sorted_pairs(m).into_iter().map(|p| p.0)),
            (Value::Map(m), "Values", []) => strings(sorted_pairs(m).into_iter().map(|p| p.1)),
            (Value::Map(m), "Remove", [Value::List(keys)]) => {
                let mut m = m.clone();
                for k in keys {
                    m.remove(&k.text());
                }
                Value::Map(m)
            }
            _ => return None,
        }))
    }
}

/// Named templates: Alertmanager's default names and those of the configured files.
#[derive(Debug, Clone)]
pub struct Templates {
    library: Library,
}

impl Default for Templates {
    fn default() -> Templates {
        let mut library = Library::default();
        // The shipped file parses (a unit test checks); were it not to, it adds nothing.
        let _ = library.add(DEFAULTS, &Alertmanager);
        Templates { library }
    }
}

impl Templates {
    /// Adds the `define`s of a template file; a name defined again replaces the earlier
    /// definition (the defaults' too).
    pub fn add(&mut self, text: &str) -> Result<(), String> {
        self.library
            .add(text, &Alertmanager)
            .map_err(|e| format!("template: {e}"))
    }

    /// Checks that `text` parses (the loader reports a field that does not).
    pub fn check(text: &str) -> Result<(), String> {
        Template::parse(text, &Alertmanager)
            .map(|_| ())
            .map_err(|e| format!("template: {e}"))
    }

    /// Renders `text` with `data`; `html` escapes printed values.
    pub fn render(&self, text: &str, data: &Value, html: bool) -> Result<String, String> {
        if !text.contains("{{") {
            return Ok(text.to_owned());
        }
        Template::parse(text, &Alertmanager)
            .and_then(|t| {
                t.render(
                    data,
                    &Render {
                        dialect: &Alertmanager,
                        library: Some(&self.library),
                        html,
                        vars: Vec::new(),
                    },
                )
            })
            .map_err(|e| format!("template: {e}"))
    }
}

// ---------------------------------------------------------------------------------------
// Alertmanager's data

fn kv<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> BTreeMap<String, String> {
    pairs.map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

/// Alertmanager's template data for a notification.
pub fn data(n: &Notification, external_url: &str) -> Value {
    let alerts: Vec<Value> = n
        .alerts
        .iter()
        .map(|a| {
            let status = if a.resolved(n.at_ms) {
                "resolved"
            } else {
                "firing"
            };
            Value::record([
                ("Status", Value::Str(status.into())),
                (
                    "Labels",
                    Value::Map(kv(a
                        .labels
                        .iter()
                        .map(|l| (l.name.as_ref(), l.value.as_ref())))),
                ),
                (
                    "Annotations",
                    Value::Map(kv(a
                        .annotations
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str())))),
                ),
                ("StartsAt", Value::Time(Some(a.starts_at_ms))),
                ("EndsAt", Value::Time(a.ends_at_ms)),
                ("GeneratorURL", Value::Str(a.generator_url.clone())),
                ("Fingerprint", Value::Str(a.fingerprint())),
            ])
        })
        .collect();
    let common = |key: &str| {
        let mut maps = alerts.iter().filter_map(|a| match a {
            Value::Struct(m) => match m.get(key) {
                Some(Value::Map(kv)) => Some(kv),
                _ => None,
            },
            _ => None,
        });
        let mut out = maps.next().cloned().unwrap_or_default();
        for m in maps {
            out.retain(|k, v| m.get(k) == Some(v));
        }
        Value::Map(out)
    };
    Value::record([
        ("Receiver", Value::Str(n.receiver.clone())),
        ("Status", Value::Str(n.status().into())),
        (
            "GroupLabels",
            Value::Map(kv(n
                .group_labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())))),
        ),
        ("CommonLabels", common("Labels")),
        ("CommonAnnotations", common("Annotations")),
        ("ExternalURL", Value::Str(external_url.to_owned())),
        ("GroupKey", Value::Str(n.group_key.clone())),
        ("Alerts", Value::List(alerts)),
    ])
}

/// Renders a receiver's templated fields for one notification. The template data is built
/// on the first field that is a template, so integrations without templated fields (most)
/// cost nothing on the delivery path.
pub struct Renderer<'a> {
    set: &'a Templates,
    n: &'a Notification,
    external_url: &'a str,
    data: std::cell::OnceCell<Value>,
}

impl<'a> Renderer<'a> {
    /// The renderer of `n` with `set`.
    pub fn new(set: &'a Templates, n: &'a Notification, external_url: &'a str) -> Renderer<'a> {
        Renderer {
            set,
            n,
            external_url,
            data: std::cell::OnceCell::new(),
        }
    }

    fn render(&self, src: &str, html: bool) -> Result<String, String> {
        if !src.contains("{{") {
            return Ok(src.to_owned());
        }
        let data = self.data.get_or_init(|| data(self.n, self.external_url));
        self.set.render(src, data, html)
    }

    /// A text field.
    pub fn text(&self, src: &str) -> Result<String, String> {
        self.render(src, false)
    }

    /// An HTML field (printed values escaped).
    pub fn html(&self, src: &str) -> Result<String, String> {
        self.render(src, true)
    }

    /// Field `key` of an integration's configuration, rendered, when it is set.
    pub fn field(
        &self,
        other: &BTreeMap<String, serde_json::Value>,
        key: &str,
    ) -> Result<Option<String>, String> {
        match other.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => {
                self.text(s).map(Some).map_err(|e| format!("{key}: {e}"))
            }
            Some(v) => Ok(Some(v.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::Alert;
    use dozor_model::Labels;

    fn notification() -> Notification {
        let alert = |instance: &str, ends: Option<i64>| Alert {
            labels: Labels::from_pairs([
                ("alertname", "Down"),
                ("instance", instance),
                ("job", "shop"),
                ("severity", "critical"),
            ])
            .unwrap(),
            annotations: [(
                "summary".to_owned(),
                format!("{instance} <does not> answer"),
            )]
            .into(),
            starts_at_ms: 1_796_500_000_123,
            ends_at_ms: ends,
            generator_url: "http://dozor/graph".into(),
        };
        Notification {
            receiver: "ops".into(),
            group_key: "{}:{alertname=\"Down\"}".into(),
            group_labels: vec![("alertname".into(), "Down".into())],
            alerts: vec![
                alert("a:9100", None),
                alert("b:9100", Some(1_796_500_060_000)),
            ],
            at_ms: 1_796_500_100_000,
        }
    }

    fn render(src: &str) -> Result<String, String> {
        Templates::default().render(src, &data(&notification(), "http://dozor:9470"), false)
    }

    #[test]
    fn alertmanagers_default_subject_reads_the_same() {
        assert_eq!(
            render(r#"{{ template "__subject" . }}"#).unwrap(),
            "[FIRING:1] Down (shop critical)"
        );
        assert_eq!(
            render(r#"{{ template "slack.default.title" . }}"#).unwrap(),
            "[FIRING:1] Down (shop critical)"
        );
    }

    #[test]
    fn alertmanagers_data_methods_and_functions() {
        assert_eq!(
            render("{{ .Status }} {{ .Receiver }} {{ .ExternalURL }}").unwrap(),
            "firing ops http://dozor:9470"
        );
        assert_eq!(
            render("{{ len .Alerts }}/{{ .Alerts.Firing | len }}/{{ len .Alerts.Resolved }}")
                .unwrap(),
            "2/1/1"
        );
        assert_eq!(
            render("{{ range .Alerts }}{{ .Labels.instance }}={{ .Status }};{{ end }}").unwrap(),
            "a:9100=firing;b:9100=resolved;"
        );
        assert_eq!(
            render(
                "{{ range $i, $a := .Alerts.Firing }}{{ $i }}:{{ $a.Annotations.summary }}{{ end }}"
            )
            .unwrap(),
            "0:a:9100 <does not> answer"
        );
        assert_eq!(
            render("{{ range .CommonLabels.SortedPairs }}{{ .Name }}={{ .Value }} {{ end }}")
                .unwrap(),
            "alertname=Down job=shop severity=critical "
        );
        assert_eq!(
            render("{{ .CommonLabels.SortedPairs.Values | join \",\" }}|{{ .CommonLabels.Names }}")
                .unwrap(),
            "Down,shop,critical|[alertname job severity]"
        );
        assert_eq!(
            render("{{ .CommonLabels.Remove .GroupLabels.Names }}").unwrap(),
            "map[job:shop severity:critical]"
        );
        assert_eq!(
            render("{{ (index .Alerts 0).StartsAt }}|{{ (index .Alerts 0).EndsAt }}").unwrap(),
            "2026-12-05 19:46:40.123 +0000 UTC|0001-01-01 00:00:00 +0000 UTC"
        );
        assert_eq!(
            render(r#"{{ join ", " (stringSlice "a" "b") }}|{{ trimSpace "  x " }}"#).unwrap(),
            "a, b|x"
        );
        assert!(render("{{ .Alerts.Nope }}").unwrap_err().contains("Nope"));
        assert!(render("{{ join \",\" 3 }}").unwrap_err().contains("list"));
        assert!(
            Templates::check("{{ humanize 1 }}")
                .unwrap_err()
                .contains("not defined")
        );
    }

    #[test]
    fn a_file_replaces_a_default_name() {
        let mut t = Templates::default();
        t.add(r#"{{ define "__subject" }}{{ .Status }}!{{ end }}"#)
            .unwrap();
        let d = data(&notification(), "");
        assert_eq!(
            t.render(r#"{{ template "slack.default.title" . }}"#, &d, false)
                .unwrap(),
            "firing!"
        );
        assert!(
            t.add("{{ define \"x\" }}")
                .unwrap_err()
                .starts_with("template: ")
        );
    }

    #[test]
    fn the_default_templates_parse_and_render() {
        let t = Templates::default();
        let names: Vec<String> = t.library.names().map(str::to_owned).collect();
        assert!(names.len() >= 20, "{} templates", names.len());
        let d = data(&notification(), "http://dozor:9470");
        for name in &names {
            // The alert lists take alerts; the others the whole notification.
            let arg = if name.contains("list") || name.ends_with("instances") {
                ".Alerts"
            } else {
                "."
            };
            let call = format!("{{{{ template {name:?} {arg} }}}}");
            let out = t.render(&call, &d, name.contains("html"));
            assert!(out.is_ok(), "{name}: {out:?}");
        }
        let html = t
            .render(r#"{{ template "email.default.html" . }}"#, &d, true)
            .unwrap();
        assert!(html.contains("a:9100 &lt;does not&gt; answer"), "{html}");
    }
}
