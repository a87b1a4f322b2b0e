//! What part of its tenant's data a principal sees inside query results: the scoped roles
//! (support, developer, business) read metrics, logs and events through readers that AND
//! their restriction to every selector, so PromQL, LogQL, search, exports, label lists and
//! the live tail hold only what the role may see — not only what the route allows.
//!
//! Restrictions are label matchers, so the stores' indexes do the filtering:
//! - data class: the `data_class` label (absent: `technical`); support sees all but
//!   `security`, business only `business`, developers neither `security` nor `personal`;
//! - service: developers see the series and streams whose service label (`service` by
//!   default) names a service they own in `access.services` — none owned, nothing seen.

use std::collections::HashMap;
use std::sync::Arc;

use dozor_logs::logql::Source;
use dozor_logs::{LogDb, LogQuery, RecordRef};
use dozor_model::{DataClass, Labels, MatchOp, Matcher, Sight};
use dozor_tsdb::{Db, Queryable, SelectHints, Selection, Series, TsdbError};

use crate::{ApiError, Principal};

/// Service ownership (`access:` in `dozor.yml`).
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    /// The label that names a series' or stream's service.
    pub service_label: String,
    /// The services each user owns, by user name.
    pub owners: HashMap<String, Vec<String>>,
}

impl Default for AccessPolicy {
    fn default() -> AccessPolicy {
        AccessPolicy {
            service_label: "service".to_owned(),
            owners: HashMap::new(),
        }
    }
}

/// A principal's view of its tenant's data.
#[derive(Debug, Clone)]
pub enum Visibility {
    /// Everything.
    All,
    /// Nothing (a developer who owns no service).
    Nothing,
    /// What every one of these matchers selects.
    Only(Arc<[Matcher]>),
}

impl Visibility {
    /// The view of `principal` under `access`. API tokens and the metrics scrape account
    /// carry no role: their creators chose their scopes, and they see the whole tenant.
    pub fn of(principal: &Principal, access: &AccessPolicy) -> Result<Visibility, ApiError> {
        let Some(role) = principal.role else {
            return Ok(Visibility::All);
        };
        let class = DataClass::LABEL;
        let not_in = |classes: &[DataClass]| {
            let names: Vec<&str> = classes.iter().map(|c| c.as_str()).collect();
            Matcher::new(MatchOp::NotRegex, class, names.join("|")).map_err(ApiError::internal)
        };
        let matchers = match role.sees() {
            Sight::All => return Ok(Visibility::All),
            Sight::NotSecurity => vec![not_in(&[DataClass::Security])?],
            Sight::Business => vec![Matcher::equal(class, DataClass::Business.as_str())],
            Sight::OwnServices => {
                let owned = access
                    .owners
                    .get(&principal.actor)
                    .filter(|s| !s.is_empty());
                let Some(owned) = owned else {
                    return Ok(Visibility::Nothing);
                };
                let alternatives: Vec<String> = owned.iter().map(|s| regex::escape(s)).collect();
                vec![
                    Matcher::new(
                        MatchOp::Regex,
                        access.service_label.as_str(),
                        alternatives.join("|"),
                    )
                    .map_err(ApiError::internal)?,
                    not_in(&[DataClass::Security, DataClass::Personal])?,
                ]
            }
        };
        Ok(Visibility::Only(matchers.into()))
    }

    /// `matchers` with the restriction added; `None` when nothing is visible.
    pub fn restrict(&self, matchers: &[Matcher]) -> Option<Vec<Matcher>> {
        match self {
            Visibility::All => Some(matchers.to_vec()),
            Visibility::Nothing => None,
            Visibility::Only(only) => Some(matchers.iter().chain(only.iter()).cloned().collect()),
        }
    }

    /// Whether part of the tenant is hidden.
    pub fn is_restricted(&self) -> bool {
        !matches!(self, Visibility::All)
    }

    /// The restriction as a selector (`{service=~"shop",data_class!~"security"}`), `{}`
    /// for nothing visible at all; `None` for everything.
    pub fn describe(&self) -> Option<String> {
        match self {
            Visibility::All => None,
            Visibility::Nothing => Some("{}".to_owned()),
            Visibility::Only(only) => {
                let parts: Vec<String> = only
                    .iter()
                    .map(|m| {
                        let op = match m.op {
                            MatchOp::Equal => "=",
                            MatchOp::NotEqual => "!=",
                            MatchOp::Regex => "=~",
                            MatchOp::NotRegex => "!~",
                        };
                        format!("{}{op}{:?}", m.name, m.value)
                    })
                    .collect();
                Some(format!("{{{}}}", parts.join(",")))
            }
        }
    }
}

/// One tenant's metrics as a principal sees them.
#[derive(Debug, Clone)]
pub struct MetricReader {
    db: Arc<Db>,
    sight: Visibility,
}

impl MetricReader {
    /// `db` seen with `sight`.
    pub fn new(db: Arc<Db>, sight: Visibility) -> MetricReader {
        MetricReader { db, sight }
    }
}

impl Queryable for MetricReader {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>, TsdbError> {
        match self.sight.restrict(matchers) {
            Some(ms) => self.db.select(&ms, mint, maxt),
            None => Ok(Vec::new()),
        }
    }

    fn select_downsampled(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        hints: &SelectHints,
    ) -> Result<Selection, TsdbError> {
        match self.sight.restrict(matchers) {
            Some(ms) => self.db.select_downsampled(&ms, mint, maxt, hints),
            None => Ok(Selection::default()),
        }
    }

    fn label_names(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, TsdbError> {
        match self.sight.restrict(matchers) {
            Some(ms) => self.db.label_names(&ms, mint, maxt),
            None => Ok(Vec::new()),
        }
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, TsdbError> {
        match self.sight.restrict(matchers) {
            Some(ms) => self.db.label_values(name, &ms, mint, maxt),
            None => Ok(Vec::new()),
        }
    }
}

/// One tenant's logs and events as a principal sees them.
#[derive(Debug, Clone)]
pub struct LogReader {
    db: Arc<LogDb>,
    sight: Visibility,
}

impl LogReader {
    /// `db` seen with `sight`.
    pub fn new(db: Arc<LogDb>, sight: Visibility) -> LogReader {
        LogReader { db, sight }
    }

    /// The visible streams matching `matchers` with records in the range.
    pub fn streams(&self, matchers: &[Matcher], start_ns: i64, end_ns: i64) -> Vec<Labels> {
        match self.sight.restrict(matchers) {
            Some(ms) => self.db.streams(&ms, start_ns, end_ns),
            None => Vec::new(),
        }
    }

    /// Records and bytes the visible streams hold in the range, from block headers.
    pub fn estimate(&self, matchers: &[Matcher], start_ns: i64, end_ns: i64) -> (u64, u64) {
        match self.sight.restrict(matchers) {
            Some(ms) => self.db.estimate(&ms, start_ns, end_ns),
            None => (0, 0),
        }
    }
}

impl Source for LogReader {
    fn scan(
        &self,
        q: &LogQuery,
        f: &mut dyn FnMut(RecordRef<'_>),
    ) -> Result<(), dozor_logs::LogsError> {
        match self.sight.restrict(&q.matchers) {
            Some(matchers) => {
                let q = LogQuery {
                    matchers,
                    ..q.clone()
                };
                self.db.scan(&q, f)
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dozor_model::{Role, ScopeSet, TenantId};

    fn principal(role: Option<Role>, name: &str) -> Principal {
        Principal {
            tenant: TenantId::default_tenant(),
            actor: name.to_owned(),
            user_id: None,
            role,
            scopes: ScopeSet::default(),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    fn sees(v: &Visibility, l: &Labels) -> bool {
        v.restrict(&[])
            .is_some_and(|ms| ms.iter().all(|m| m.matches(l.get(&m.name).unwrap_or(""))))
    }

    #[test]
    fn each_role_sees_its_classes_and_services() {
        let access = AccessPolicy {
            owners: HashMap::from([("dev".to_owned(), vec!["shop".to_owned(), "a.b".to_owned()])]),
            ..AccessPolicy::default()
        };
        let shop = labels(&[("service", "shop")]);
        let shop_sec = labels(&[("service", "shop"), ("data_class", "security")]);
        let shop_pii = labels(&[("service", "shop"), ("data_class", "personal")]);
        let crm = labels(&[("service", "crm")]);
        let axb = labels(&[("service", "axb")]);
        let orders = labels(&[("service", "crm"), ("data_class", "business")]);
        let v = |role, name| Visibility::of(&principal(role, name), &access).unwrap();

        let dev = v(Some(Role::Developer), "dev");
        assert!(sees(&dev, &shop) && !sees(&dev, &crm) && !sees(&dev, &orders));
        assert!(!sees(&dev, &shop_sec) && !sees(&dev, &shop_pii));
        assert!(!sees(&dev, &axb), "service names are literal, not regexes");
        assert!(matches!(
            v(Some(Role::Developer), "nobody"),
            Visibility::Nothing
        ));

        let support = v(Some(Role::Support), "s");
        assert!(sees(&support, &shop) && sees(&support, &shop_pii) && sees(&support, &crm));
        assert!(!sees(&support, &shop_sec));

        let business = v(Some(Role::Business), "b");
        assert!(sees(&business, &orders) && !sees(&business, &shop) && !sees(&business, &crm));

        for all in [
            v(Some(Role::Viewer), "x"),
            v(Some(Role::Admin), "x"),
            v(None, "token:1"),
        ] {
            assert!(!all.is_restricted());
            assert!(sees(&all, &shop_sec));
        }
        assert_eq!(
            dev.describe().unwrap(),
            r#"{service=~"shop|a\\.b",data_class!~"security|personal"}"#
        );
    }
}
