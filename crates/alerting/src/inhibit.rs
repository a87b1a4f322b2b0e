//! Inhibition, as Alertmanager does it: while an alert matching a rule's source matchers
//! fires, alerts matching its target matchers that carry the same values of the `equal`
//! labels (absent counts as equal) are muted. An alert that matches both sides of a rule is
//! not muted by another alert that matches both sides too, so two such alerts cannot silence
//! each other.

use std::collections::BTreeMap;

use dozor_model::{Labels, MatchOp, Matcher};
use serde::Deserialize;

use crate::matchers::parse_matchers;

/// One `inhibit_rules` entry as written, with the deprecated `*_match` / `*_match_re` maps.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRuleConfig {
    /// Matchers of the inhibiting alerts.
    #[serde(default)]
    pub source_matchers: Vec<String>,
    /// Matchers of the inhibited alerts.
    #[serde(default)]
    pub target_matchers: Vec<String>,
    /// Labels whose values must be equal in both.
    #[serde(default)]
    pub equal: Vec<String>,
    /// Deprecated: equality matchers of the source.
    #[serde(default)]
    pub source_match: BTreeMap<String, String>,
    /// Deprecated: regex matchers of the source.
    #[serde(default)]
    pub source_match_re: BTreeMap<String, String>,
    /// Deprecated: equality matchers of the target.
    #[serde(default)]
    pub target_match: BTreeMap<String, String>,
    /// Deprecated: regex matchers of the target.
    #[serde(default)]
    pub target_match_re: BTreeMap<String, String>,
}

/// A compiled inhibition rule.
#[derive(Debug, Clone)]
pub struct InhibitRule {
    source: Vec<Matcher>,
    target: Vec<Matcher>,
    equal: Vec<String>,
}

fn side(
    matchers: &[String],
    eq: &BTreeMap<String, String>,
    re: &BTreeMap<String, String>,
) -> Result<Vec<Matcher>, String> {
    let mut out = Vec::new();
    for m in matchers {
        out.extend(parse_matchers(m)?);
    }
    for (k, v) in eq {
        out.push(Matcher::new(MatchOp::Equal, k, v).map_err(|e| e.to_string())?);
    }
    for (k, v) in re {
        out.push(Matcher::new(MatchOp::Regex, k, v).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

fn all_match(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}

impl InhibitRule {
    /// Compiles a rule.
    pub fn compile(c: &InhibitRuleConfig) -> Result<InhibitRule, String> {
        Ok(InhibitRule {
            source: side(&c.source_matchers, &c.source_match, &c.source_match_re)
                .map_err(|e| format!("source_matchers: {e}"))?,
            target: side(&c.target_matchers, &c.target_match, &c.target_match_re)
                .map_err(|e| format!("target_matchers: {e}"))?,
            equal: c.equal.clone(),
        })
    }

    fn equal(&self, a: &Labels, b: &Labels) -> bool {
        self.equal
            .iter()
            .all(|n| a.get(n).unwrap_or("") == b.get(n).unwrap_or(""))
    }
}

/// The inhibition rules of one configuration.
#[derive(Debug, Clone, Default)]
pub struct Inhibitor {
    rules: Vec<InhibitRule>,
}

impl Inhibitor {
    /// Compiles the rules; errors name the rule.
    pub fn compile(configs: &[InhibitRuleConfig]) -> Result<Inhibitor, String> {
        let rules = configs
            .iter()
            .enumerate()
            .map(|(i, c)| InhibitRule::compile(c).map_err(|e| format!("inhibit_rules[{i}]: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Inhibitor { rules })
    }

    /// Whether there are rules at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The fingerprints of the firing alerts (`firing`: fingerprint and labels) that inhibit
    /// an alert with `labels` and fingerprint `own`.
    pub fn inhibited_by<'a>(
        &self,
        own: &str,
        labels: &Labels,
        firing: impl Iterator<Item = (&'a str, &'a Labels)> + Clone,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for r in self.rules.iter().filter(|r| all_match(&r.target, labels)) {
            let target_is_source = all_match(&r.source, labels);
            for (fp, source) in firing.clone() {
                if fp == own || out.iter().any(|o: &String| o == fp) {
                    continue;
                }
                if all_match(&r.source, source)
                    && r.equal(source, labels)
                    && !(target_is_source && all_match(&r.target, source))
                {
                    out.push(fp.to_owned());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    fn inhibitor(yaml: &str) -> Inhibitor {
        let c: Vec<InhibitRuleConfig> = serde_saphyr::from_str(yaml).unwrap();
        Inhibitor::compile(&c).unwrap()
    }

    #[test]
    fn a_critical_alert_mutes_warnings_of_the_same_cluster() {
        let i = inhibitor(
            "- source_matchers: ['severity=\"critical\"']\n  target_matchers: ['severity=\"warning\"']\n  equal: [cluster]\n",
        );
        let crit = labels(&[
            ("alertname", "Down"),
            ("severity", "critical"),
            ("cluster", "a"),
        ]);
        let warn_a = labels(&[
            ("alertname", "Slow"),
            ("severity", "warning"),
            ("cluster", "a"),
        ]);
        let warn_b = labels(&[
            ("alertname", "Slow"),
            ("severity", "warning"),
            ("cluster", "b"),
        ]);
        let firing = [("c", &crit)];
        let it = || firing.iter().map(|(f, l)| (*f, *l));
        assert_eq!(i.inhibited_by("w", &warn_a, it()), ["c"]);
        assert!(
            i.inhibited_by("w", &warn_b, it()).is_empty(),
            "other cluster"
        );
        assert!(i.inhibited_by("c", &crit, it()).is_empty(), "not a target");
    }

    #[test]
    fn deprecated_maps_and_missing_equal_labels_count() {
        let i = inhibitor(
            "- source_match: {alertname: NodeDown}\n  target_match_re: {alertname: 'Disk.*'}\n  equal: [zone]\n",
        );
        let down = labels(&[("alertname", "NodeDown")]);
        let disk = labels(&[("alertname", "DiskFull")]);
        let firing = [("d", &down)];
        assert_eq!(
            i.inhibited_by("x", &disk, firing.iter().map(|(f, l)| (*f, *l))),
            ["d"],
            "zone absent in both is equal"
        );
    }

    #[test]
    fn alerts_matching_both_sides_do_not_mute_each_other() {
        let i =
            inhibitor("- source_matchers: ['team=\"ops\"']\n  target_matchers: ['team=\"ops\"']\n");
        let a = labels(&[("alertname", "A"), ("team", "ops")]);
        let b = labels(&[("alertname", "B"), ("team", "ops")]);
        let firing = [("a", &a), ("b", &b)];
        let it = || firing.iter().map(|(f, l)| (*f, *l));
        assert!(i.inhibited_by("a", &a, it()).is_empty());
        assert!(i.inhibited_by("b", &b, it()).is_empty());
    }

    #[test]
    fn bad_rules_name_their_place() {
        let c: Vec<InhibitRuleConfig> =
            serde_saphyr::from_str("- source_matchers: ['a=~\"(\"']\n").unwrap();
        let e = Inhibitor::compile(&c).unwrap_err();
        assert!(e.starts_with("inhibit_rules[0]: source_matchers"), "{e}");
    }
}
