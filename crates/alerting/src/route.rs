//! The routing tree: Alertmanager's `route:` section, compiled.
//!
//! As in Alertmanager, an alert enters at the root (which matches everything) and descends:
//! each child whose matchers all hold is visited in order; a matching child without
//! `continue: true` ends the search among its siblings; a node none of whose children
//! matched is the alert's route. One alert can so reach several routes (via `continue`),
//! each notifying its receiver. Children inherit every option they do not set.

use std::time::Duration;

use dozor_model::{Labels, MatchOp, Matcher};
use serde::Deserialize;

use crate::matchers::parse_matchers;

/// One node of `route:` as written (Alertmanager's keys).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The receiver's name (inherited when absent; the root must name one).
    #[serde(default)]
    pub receiver: Option<String>,
    /// Labels alerts are grouped by; `['...']` groups by all labels.
    #[serde(default)]
    pub group_by: Option<Vec<String>>,
    /// Whether siblings after this route are still tried when it matched.
    #[serde(default, rename = "continue")]
    pub continue_: bool,
    /// Matchers (`severity="critical"`, `service=~"shop|crm"`).
    #[serde(default)]
    pub matchers: Vec<String>,
    /// Deprecated equality matchers (`match: {severity: critical}`).
    #[serde(default, rename = "match")]
    pub match_eq: std::collections::BTreeMap<String, String>,
    /// Deprecated regex matchers.
    #[serde(default)]
    pub match_re: std::collections::BTreeMap<String, String>,
    /// How long a new group waits for more alerts before its first notification.
    #[serde(default, with = "opt_duration")]
    pub group_wait: Option<Duration>,
    /// How long after a notification a group with new alerts notifies again.
    #[serde(default, with = "opt_duration")]
    pub group_interval: Option<Duration>,
    /// How long after a notification an unchanged group notifies again.
    #[serde(default, with = "opt_duration")]
    pub repeat_interval: Option<Duration>,
    /// Names of time intervals muting this route (accepted; not applied yet).
    #[serde(default)]
    pub mute_time_intervals: Vec<String>,
    /// Names of time intervals outside which this route is muted (accepted; not applied
    /// yet).
    #[serde(default)]
    pub active_time_intervals: Vec<String>,
    /// Child routes.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

pub(crate) mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| dozor_model::duration::parse(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// How alerts of a route are grouped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// By these labels (none: one group for the route).
    Labels(Vec<String>),
    /// By every label (`...`): each alert its own group.
    All,
}

/// A compiled route.
#[derive(Debug, Clone)]
pub struct Route {
    /// A stable identifier: the path of matchers from the root, with the index among
    /// siblings (Alertmanager's route key, `{}/{severity="critical"}/0`).
    pub id: String,
    /// The receiver.
    pub receiver: String,
    /// Grouping.
    pub group_by: GroupBy,
    /// Continue to siblings after a match.
    pub continue_: bool,
    /// Matchers, all of which must hold.
    pub matchers: Vec<Matcher>,
    /// Wait before the first notification of a group.
    pub group_wait: Duration,
    /// Wait between notifications of a changed group.
    pub group_interval: Duration,
    /// Wait between notifications of an unchanged group.
    pub repeat_interval: Duration,
    /// Named time intervals when this route sends nothing (not inherited).
    pub mute_time_intervals: Vec<String>,
    /// Named time intervals outside which this route sends nothing (not inherited).
    pub active_time_intervals: Vec<String>,
    /// Children.
    pub routes: Vec<Route>,
}

/// Alertmanager's defaults.
const GROUP_WAIT: Duration = Duration::from_secs(30);
const GROUP_INTERVAL: Duration = Duration::from_secs(300);
const REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

impl Route {
    /// Compiles the root route; `receivers` are the names a route may send to.
    pub fn compile(root: &RouteConfig, receivers: &[&str]) -> Result<Route, String> {
        if root.receiver.is_none() {
            return Err("route: the root route needs a receiver".into());
        }
        if !root.matchers.is_empty() || !root.match_eq.is_empty() || !root.match_re.is_empty() {
            return Err("route: the root route must not have matchers".into());
        }
        if root.continue_ {
            return Err("route: the root route cannot have continue".into());
        }
        if !root.mute_time_intervals.is_empty() || !root.active_time_intervals.is_empty() {
            return Err("route: the root route cannot have time intervals".into());
        }
        let defaults = Route {
            id: String::new(),
            receiver: String::new(),
            group_by: GroupBy::Labels(Vec::new()),
            continue_: false,
            matchers: Vec::new(),
            group_wait: GROUP_WAIT,
            group_interval: GROUP_INTERVAL,
            repeat_interval: REPEAT_INTERVAL,
            mute_time_intervals: Vec::new(),
            active_time_intervals: Vec::new(),
            routes: Vec::new(),
        };
        compile(root, &defaults, "route", None, receivers)
    }

    /// The routes an alert with `labels` goes to, in order.
    pub fn routes_for<'a>(&'a self, labels: &Labels) -> Vec<&'a Route> {
        if !self.matches(labels) {
            return Vec::new();
        }
        let mut found = Vec::new();
        for child in &self.routes {
            let below = child.routes_for(labels);
            let matched = !below.is_empty();
            found.extend(below);
            if matched && !child.continue_ {
                break;
            }
        }
        if found.is_empty() {
            found.push(self);
        }
        found
    }

    fn matches(&self, labels: &Labels) -> bool {
        self.matchers
            .iter()
            .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
    }

    /// This route and every route below it.
    pub fn walk(&self) -> Vec<&Route> {
        let mut out = vec![self];
        for child in &self.routes {
            out.extend(child.walk());
        }
        out
    }

    /// The labels of `labels` this route groups by, as `(name, value)` pairs; labels the
    /// alert lacks are left out (as in Alertmanager).
    pub fn group_labels(&self, labels: &Labels) -> Vec<(String, String)> {
        match &self.group_by {
            GroupBy::All => labels
                .iter()
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect(),
            GroupBy::Labels(names) => {
                let mut out: Vec<(String, String)> = names
                    .iter()
                    .filter_map(|n| Some((n.clone(), labels.get(n)?.to_owned())))
                    .collect();
                out.sort();
                out
            }
        }
    }
}

fn compile(
    c: &RouteConfig,
    parent: &Route,
    at: &str,
    index: Option<usize>,
    receivers: &[&str],
) -> Result<Route, String> {
    let mut matchers = Vec::new();
    for (i, text) in c.matchers.iter().enumerate() {
        matchers.extend(parse_matchers(text).map_err(|e| format!("{at}.matchers[{i}]: {e}"))?);
    }
    for (name, value) in &c.match_eq {
        matchers.push(Matcher::equal(name.clone(), value.clone()));
    }
    for (name, value) in &c.match_re {
        matchers.push(
            Matcher::new(MatchOp::Regex, name.clone(), value.clone())
                .map_err(|e| format!("{at}.match_re.{name}: {e}"))?,
        );
    }
    let receiver = c
        .receiver
        .clone()
        .unwrap_or_else(|| parent.receiver.clone());
    if !receivers.contains(&receiver.as_str()) {
        return Err(format!("{at}.receiver: no receiver named {receiver:?}"));
    }
    let group_by = match &c.group_by {
        None => parent.group_by.clone(),
        Some(names) if names.iter().any(|n| n == "...") => {
            if names.len() > 1 {
                return Err(format!("{at}.group_by: '...' stands alone"));
            }
            GroupBy::All
        }
        Some(names) => GroupBy::Labels(names.clone()),
    };
    let key = matchers
        .iter()
        .map(|m| format!("{}{}{:?}", m.name, op_text(m.op), m.value))
        .collect::<Vec<_>>()
        .join(",");
    let id = match index {
        None => format!("{{{key}}}"),
        Some(i) => format!("{}/{{{key}}}/{i}", parent.id),
    };
    let mut route = Route {
        id,
        receiver,
        group_by,
        continue_: c.continue_,
        matchers,
        group_wait: c.group_wait.unwrap_or(parent.group_wait),
        group_interval: c.group_interval.unwrap_or(parent.group_interval),
        repeat_interval: c.repeat_interval.unwrap_or(parent.repeat_interval),
        mute_time_intervals: c.mute_time_intervals.clone(),
        active_time_intervals: c.active_time_intervals.clone(),
        routes: Vec::new(),
    };
    if route.group_interval.is_zero() {
        return Err(format!("{at}.group_interval: must be above 0"));
    }
    if route.repeat_interval.is_zero() {
        return Err(format!("{at}.repeat_interval: must be above 0"));
    }
    for (i, child) in c.routes.iter().enumerate() {
        let compiled = compile(
            child,
            &route,
            &format!("{at}.routes[{i}]"),
            Some(i),
            receivers,
        )?;
        route.routes.push(compiled);
    }
    Ok(route)
}

fn op_text(op: MatchOp) -> &'static str {
    match op {
        MatchOp::Equal => "=",
        MatchOp::NotEqual => "!=",
        MatchOp::Regex => "=~",
        MatchOp::NotRegex => "!~",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(yaml: &str) -> Route {
        let c: RouteConfig = serde_saphyr::from_str(yaml).unwrap();
        Route::compile(&c, &["default", "ops", "db", "pager", "shop"]).unwrap()
    }

    fn receivers(r: &Route, pairs: &[(&str, &str)]) -> Vec<String> {
        let labels = Labels::from_pairs(pairs.iter().copied()).unwrap();
        r.routes_for(&labels)
            .iter()
            .map(|r| r.receiver.clone())
            .collect()
    }

    const TREE: &str = r#"
receiver: default
group_by: [alertname]
group_wait: 10s
routes:
  - matchers: ['severity="critical"']
    receiver: pager
    continue: true
  - matchers: ['service=~"db|pg"']
    receiver: db
    group_by: [alertname, instance]
    routes:
      - match: {team: ops}
        receiver: ops
        group_wait: 1s
  - match_re: {service: 'shop.*'}
    receiver: shop
"#;

    #[test]
    fn alerts_descend_like_alertmanager() {
        let r = tree(TREE);
        // continue: the critical route matched and the search went on to the next.
        assert_eq!(
            receivers(&r, &[("severity", "critical"), ("service", "db")]),
            ["pager", "db"]
        );
        // The deepest matching route wins; no child matching leaves the parent.
        assert_eq!(
            receivers(&r, &[("service", "pg"), ("team", "ops")]),
            ["ops"]
        );
        assert_eq!(receivers(&r, &[("service", "pg")]), ["db"]);
        // A match without continue stops at the first sibling.
        assert_eq!(receivers(&r, &[("service", "shop-api")]), ["shop"]);
        // Nothing matched: the root.
        assert_eq!(receivers(&r, &[("service", "crm")]), ["default"]);
        // A continuing route that matched still counts as a match: the root is not added.
        assert_eq!(receivers(&r, &[("severity", "critical")]), ["pager"]);
    }

    #[test]
    fn children_inherit_what_they_do_not_set() {
        let r = tree(TREE);
        let ops = &r.routes[1].routes[0];
        assert_eq!(ops.group_wait, Duration::from_secs(1));
        assert_eq!(ops.group_interval, GROUP_INTERVAL);
        assert_eq!(
            ops.group_by,
            GroupBy::Labels(vec!["alertname".into(), "instance".into()])
        );
        assert_eq!(r.routes[0].group_wait, Duration::from_secs(10));
        assert_eq!(
            r.routes[2].group_by,
            GroupBy::Labels(vec!["alertname".into()])
        );
        assert_eq!(ops.id, r#"{}/{service=~"db|pg"}/1/{team="ops"}/0"#);
    }

    #[test]
    fn group_labels_leave_out_missing_ones_and_dots_take_all() {
        let r = tree(TREE);
        let labels =
            Labels::from_pairs([("alertname", "Down"), ("service", "db"), ("x", "1")]).unwrap();
        assert_eq!(
            r.routes[1].group_labels(&labels),
            [("alertname".to_owned(), "Down".to_owned())]
        );
        let all = tree("receiver: default\ngroup_by: ['...']\n");
        assert_eq!(all.group_labels(&labels).len(), 3);
    }

    #[test]
    fn mistakes_name_the_route() {
        for (yaml, want) in [
            ("receiver: nobody\n", "no receiver named"),
            ("group_by: [a]\n", "needs a receiver"),
            (
                "receiver: default\nmatchers: ['a=\"b\"']\n",
                "must not have matchers",
            ),
            (
                "receiver: default\nroutes: [{matchers: ['a=~\"(\"']}]\n",
                "route.routes[0].matchers[0]",
            ),
            (
                "receiver: default\nroutes: [{group_by: ['...', a]}]\n",
                "stands alone",
            ),
        ] {
            let c: RouteConfig = serde_saphyr::from_str(yaml).unwrap();
            let e = Route::compile(&c, &["default"]).unwrap_err();
            assert!(e.contains(want), "{yaml}: {e}");
        }
    }
}
