//! Prometheus relabeling: rewrite a label set by a list of rules, before a target is scraped
//! (`relabel_configs`) and on every scraped series (`metric_relabel_configs`).
//!
//! Supported actions: `replace`, `keep`, `drop`, `labelmap`, `labeldrop`, `labelkeep`,
//! `hashmod`, `lowercase`, `uppercase`, with Prometheus' defaults (`separator: ";"`,
//! `regex: "(.*)"`, `replacement: "$1"`) and anchored regexes. Works on a sorted map of
//! names to values, since rules may create labels that are not valid yet (`__address__`).

use std::collections::BTreeMap;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// A label set under relabeling.
pub type LabelMap = BTreeMap<String, String>;

/// What a rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Set `target_label` to `replacement` expanded with the regex's groups.
    #[default]
    Replace,
    /// Drop the set unless the joined source labels match.
    Keep,
    /// Drop the set if the joined source labels match.
    Drop,
    /// Copy labels whose name matches to the name `replacement` gives.
    Labelmap,
    /// Remove labels whose name matches.
    Labeldrop,
    /// Remove labels whose name does not match.
    Labelkeep,
    /// Set `target_label` to a hash of the joined source labels modulo `modulus`.
    Hashmod,
    /// Set `target_label` to the joined source labels in lower case.
    Lowercase,
    /// Set `target_label` to the joined source labels in upper case.
    Uppercase,
}

/// One rule as written in YAML.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Labels whose values are joined with `separator` and matched.
    #[serde(default)]
    pub source_labels: Vec<String>,
    /// Joins source values.
    #[serde(default)]
    pub separator: Option<String>,
    /// Anchored regex (default `(.*)`).
    #[serde(default)]
    pub regex: Option<String>,
    /// Modulus for `hashmod`.
    #[serde(default)]
    pub modulus: Option<u64>,
    /// Label written by `replace`, `hashmod`, `lowercase`, `uppercase`.
    #[serde(default)]
    pub target_label: Option<String>,
    /// Replacement with `$1`, `${name}` references (default `$1`).
    #[serde(default)]
    pub replacement: Option<String>,
    /// The action (default `replace`).
    #[serde(default)]
    pub action: Action,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    source_labels: Vec<String>,
    separator: String,
    regex: Regex,
    modulus: u64,
    target_label: String,
    replacement: String,
    action: Action,
}

impl Rule {
    /// Compiles a rule; errors name the problem.
    pub fn compile(c: &RuleConfig) -> Result<Rule, String> {
        let pattern = c.regex.clone().unwrap_or_else(|| "(.*)".to_owned());
        let regex = Regex::new(&format!("^(?s:{pattern})$"))
            .map_err(|e| format!("regex {pattern:?}: {e}"))?;
        let needs_target = matches!(
            c.action,
            Action::Replace | Action::Hashmod | Action::Lowercase | Action::Uppercase
        );
        if needs_target && c.target_label.is_none() {
            return Err(format!("action {:?} needs target_label", c.action));
        }
        if c.action == Action::Hashmod && c.modulus.unwrap_or(0) == 0 {
            return Err("action hashmod needs a positive modulus".into());
        }
        if matches!(c.action, Action::Keep | Action::Drop | Action::Hashmod)
            && c.source_labels.is_empty()
        {
            return Err(format!("action {:?} needs source_labels", c.action));
        }
        Ok(Rule {
            source_labels: c.source_labels.clone(),
            separator: c.separator.clone().unwrap_or_else(|| ";".to_owned()),
            regex,
            modulus: c.modulus.unwrap_or(0),
            target_label: c.target_label.clone().unwrap_or_default(),
            replacement: c.replacement.clone().unwrap_or_else(|| "$1".to_owned()),
            action: c.action,
        })
    }
}

/// Compiles a list of rules; the error names the rule's index.
pub fn compile_all(configs: &[RuleConfig]) -> Result<Vec<Rule>, String> {
    configs
        .iter()
        .enumerate()
        .map(|(i, c)| Rule::compile(c).map_err(|e| format!("[{i}]: {e}")))
        .collect()
}

/// Applies `rules` in order; `None` when a rule drops the set.
pub fn apply(rules: &[Rule], mut labels: LabelMap) -> Option<LabelMap> {
    for r in rules {
        let joined = r
            .source_labels
            .iter()
            .map(|n| labels.get(n).map_or("", String::as_str))
            .collect::<Vec<_>>()
            .join(&r.separator);
        match r.action {
            Action::Replace => {
                if let Some(caps) = r.regex.captures(&joined) {
                    let mut target = String::new();
                    caps.expand(&r.target_label, &mut target);
                    let mut value = String::new();
                    caps.expand(&r.replacement, &mut value);
                    if value.is_empty() {
                        labels.remove(&target);
                    } else if !target.is_empty() {
                        labels.insert(target, value);
                    }
                }
            }
            Action::Keep if !r.regex.is_match(&joined) => return None,
            Action::Drop if r.regex.is_match(&joined) => return None,
            Action::Keep | Action::Drop => {}
            Action::Labelmap => {
                let additions: Vec<(String, String)> = labels
                    .iter()
                    .filter_map(|(name, value)| {
                        let caps = r.regex.captures(name)?;
                        let mut new_name = String::new();
                        caps.expand(&r.replacement, &mut new_name);
                        Some((new_name, value.clone()))
                    })
                    .collect();
                labels.extend(additions);
            }
            Action::Labeldrop => labels.retain(|name, _| !r.regex.is_match(name)),
            Action::Labelkeep => labels.retain(|name, _| r.regex.is_match(name)),
            Action::Hashmod => {
                // Prometheus takes the MD5 of the joined value; any stable hash shards equally
                // well, and FNV-1a needs no dependency.
                let hash = joined.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                });
                labels.insert(r.target_label.clone(), (hash % r.modulus).to_string());
            }
            Action::Lowercase => {
                labels.insert(r.target_label.clone(), joined.to_lowercase());
            }
            Action::Uppercase => {
                labels.insert(r.target_label.clone(), joined.to_uppercase());
            }
        }
    }
    Some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(yaml: &str) -> Vec<Rule> {
        let configs: Vec<RuleConfig> = serde_json::from_str(yaml).unwrap();
        compile_all(&configs).unwrap()
    }

    fn map(pairs: &[(&str, &str)]) -> LabelMap {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn replace_with_groups_and_defaults() {
        let r = rules(
            r#"[{"source_labels":["__address__"],"regex":"([^:]+):\\d+","target_label":"host"},
                         {"source_labels":["host"],"target_label":"copy"}]"#,
        );
        let out = apply(&r, map(&[("__address__", "db1:9100")])).unwrap();
        assert_eq!(out.get("host").map(String::as_str), Some("db1"));
        assert_eq!(out.get("copy").map(String::as_str), Some("db1"));
        // A non-matching regex leaves the set alone.
        let out = apply(&r, map(&[("__address__", "nohostport")])).unwrap();
        assert!(!out.contains_key("host"));
    }

    #[test]
    fn keep_and_drop_filter_whole_sets() {
        let keep = rules(r#"[{"source_labels":["job"],"regex":"api|web","action":"keep"}]"#);
        assert!(apply(&keep, map(&[("job", "api")])).is_some());
        assert!(apply(&keep, map(&[("job", "db")])).is_none());
        assert!(
            apply(&keep, map(&[])).is_none(),
            "a missing label joins as empty"
        );
        let drop = rules(r#"[{"source_labels":["__name__"],"regex":"go_.*","action":"drop"}]"#);
        assert!(apply(&drop, map(&[("__name__", "go_goroutines")])).is_none());
        assert!(apply(&drop, map(&[("__name__", "up")])).is_some());
    }

    #[test]
    fn labelmap_labeldrop_labelkeep() {
        let r = rules(
            r#"[{"regex":"__meta_(.+)","action":"labelmap"},{"regex":"__meta_.*","action":"labeldrop"}]"#,
        );
        let out = apply(&r, map(&[("__meta_zone", "eu"), ("job", "x")])).unwrap();
        assert_eq!(out, map(&[("job", "x"), ("zone", "eu")]));
        let keep = rules(r#"[{"regex":"job|__name__","action":"labelkeep"}]"#);
        assert_eq!(
            apply(&keep, map(&[("job", "x"), ("extra", "y")])).unwrap(),
            map(&[("job", "x")])
        );
    }

    #[test]
    fn hashmod_is_stable_and_in_range() {
        let r = rules(
            r#"[{"source_labels":["instance"],"modulus":4,"target_label":"shard","action":"hashmod"}]"#,
        );
        let a = apply(&r, map(&[("instance", "a:1")])).unwrap()["shard"].clone();
        let b = apply(&r, map(&[("instance", "a:1")])).unwrap()["shard"].clone();
        assert_eq!(a, b);
        assert!(a.parse::<u64>().unwrap() < 4);
    }

    #[test]
    fn bad_rules_are_refused_with_their_index() {
        let configs: Vec<RuleConfig> =
            serde_json::from_str(r#"[{"target_label":"x"},{"action":"keep"}]"#).unwrap();
        assert!(compile_all(&configs).unwrap_err().starts_with("[1]"));
        let configs: Vec<RuleConfig> =
            serde_json::from_str(r#"[{"regex":"(","target_label":"x"}]"#).unwrap();
        assert!(compile_all(&configs).is_err());
    }
}
