//! Silences, as Alertmanager keeps them: a set of matchers, a start and an end, who made it
//! and why. An alert whose labels every matcher of an active silence fits is muted: it stays
//! in its group but is left out of notifications (and shown as `suppressed`).
//!
//! Changing a silence follows Alertmanager's rules, so `amtool silence update` behaves the
//! same: a pending silence may change in every way; an active one in place only when its
//! matchers and start stay the same and it still ends in the future; otherwise the old one
//! is expired and the change becomes a new silence with a new id. An expired silence never
//! changes. Expired silences are forgotten [`RETENTION_MS`] after their end.

use std::collections::BTreeMap;

use dozor_model::{Labels, MatchOp, Matcher};

/// How long an expired silence is kept (Alertmanager's `--data.retention`, 120 h).
pub const RETENTION_MS: i64 = 120 * 3600 * 1000;

/// A silence.
#[derive(Debug, Clone)]
pub struct Silence {
    /// Its id.
    pub id: String,
    /// Every one must match an alert's labels.
    pub matchers: Vec<Matcher>,
    /// From when, ms.
    pub starts_at_ms: i64,
    /// Until when, ms.
    pub ends_at_ms: i64,
    /// Last change, ms.
    pub updated_at_ms: i64,
    /// Who made it.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

/// Where a silence is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SilenceState {
    /// Starts in the future.
    Pending,
    /// Mutes alerts now.
    Active,
    /// Over.
    Expired,
}

impl SilenceState {
    /// Alertmanager's name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

impl Silence {
    /// Its state at `now_ms`.
    pub fn state(&self, now_ms: i64) -> SilenceState {
        if self.ends_at_ms <= now_ms {
            SilenceState::Expired
        } else if self.starts_at_ms > now_ms {
            SilenceState::Pending
        } else {
            SilenceState::Active
        }
    }

    /// Whether it mutes an alert with `labels` (whatever its state).
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matchers
            .iter()
            .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
    }

    /// Alertmanager's checks: at least one matcher, one that does not match the empty
    /// string (a silence of everything is refused), an end after the start, a creator and a
    /// comment.
    pub fn validate(&self) -> Result<(), String> {
        if self.matchers.is_empty() {
            return Err("matchers: at least one is needed".into());
        }
        if self.matchers.iter().all(|m| m.matches("")) {
            return Err("matchers: at least one must not match the empty string".into());
        }
        if let Some(m) = self.matchers.iter().find(|m| m.name.is_empty()) {
            return Err(format!(
                "matchers: a label name is empty (value {:?})",
                m.value
            ));
        }
        if self.ends_at_ms <= self.starts_at_ms {
            return Err("endsAt: must be after startsAt".into());
        }
        if self.created_by.trim().is_empty() {
            return Err("createdBy: must not be empty".into());
        }
        if self.comment.trim().is_empty() {
            return Err("comment: must not be empty".into());
        }
        Ok(())
    }
}

fn same_matchers(a: &[Matcher], b: &[Matcher]) -> bool {
    let key = |m: &Matcher| (m.name.clone(), op_name(m.op), m.value.clone());
    let mut ka: Vec<_> = a.iter().map(key).collect();
    let mut kb: Vec<_> = b.iter().map(key).collect();
    ka.sort();
    kb.sort();
    ka == kb
}

fn op_name(op: MatchOp) -> &'static str {
    match op {
        MatchOp::Equal => "=",
        MatchOp::NotEqual => "!=",
        MatchOp::Regex => "=~",
        MatchOp::NotRegex => "!~",
    }
}

/// What [`Silences::upsert`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upserted {
    /// A new silence under this id (a change that could not be made in place expired the
    /// old one, named second).
    Created(String, Option<String>),
    /// The silence with this id was changed in place.
    Updated(String),
}

impl Upserted {
    /// The id of the silence now in force.
    pub fn id(&self) -> &str {
        match self {
            Upserted::Created(id, _) | Upserted::Updated(id) => id,
        }
    }
}

/// One tenant's silences.
#[derive(Debug, Default)]
pub struct Silences {
    by_id: BTreeMap<String, Silence>,
}

impl Silences {
    /// Every silence, by id.
    pub fn all(&self) -> impl Iterator<Item = &Silence> {
        self.by_id.values()
    }

    /// One silence.
    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.by_id.get(id)
    }

    /// Drops a silence from memory (undoing a change the store refused).
    pub fn forget(&mut self, id: &str) {
        self.by_id.remove(id);
    }

    /// Puts a silence loaded from storage back, as it was.
    pub fn restore(&mut self, s: Silence) {
        self.by_id.insert(s.id.clone(), s);
    }

    /// Creates a silence (`s.id` empty) or changes one, per the rules of the module's
    /// documentation; `new_id` names a silence that has to be created. A start in the past
    /// becomes `now_ms`.
    pub fn upsert(
        &mut self,
        mut s: Silence,
        now_ms: i64,
        new_id: impl FnOnce() -> String,
    ) -> Result<Upserted, String> {
        s.validate()?;
        if s.ends_at_ms <= now_ms {
            return Err("endsAt: must be in the future".into());
        }
        s.updated_at_ms = now_ms;
        if !s.id.is_empty() {
            let Some(old) = self.by_id.get_mut(&s.id) else {
                return Err(format!("silence {} not found", s.id));
            };
            let in_place = match old.state(now_ms) {
                SilenceState::Expired => false,
                SilenceState::Pending => true,
                SilenceState::Active => {
                    s.starts_at_ms == old.starts_at_ms && same_matchers(&s.matchers, &old.matchers)
                }
            };
            if in_place {
                if s.starts_at_ms < now_ms && old.state(now_ms) == SilenceState::Pending {
                    s.starts_at_ms = now_ms;
                }
                let id = s.id.clone();
                *old = s;
                return Ok(Upserted::Updated(id));
            }
            let expired = (old.state(now_ms) != SilenceState::Expired).then(|| {
                old.ends_at_ms = now_ms;
                old.updated_at_ms = now_ms;
                old.id.clone()
            });
            s.id = new_id();
            s.starts_at_ms = s.starts_at_ms.max(now_ms);
            let id = s.id.clone();
            self.by_id.insert(id.clone(), s);
            return Ok(Upserted::Created(id, expired));
        }
        s.id = new_id();
        s.starts_at_ms = s.starts_at_ms.max(now_ms);
        let id = s.id.clone();
        self.by_id.insert(id.clone(), s);
        Ok(Upserted::Created(id, None))
    }

    /// Ends a silence now. Errors when there is none or it is already over (as
    /// Alertmanager's `DELETE` does).
    pub fn expire(&mut self, id: &str, now_ms: i64) -> Result<&Silence, String> {
        let s = self
            .by_id
            .get_mut(id)
            .ok_or_else(|| format!("silence {id} not found"))?;
        match s.state(now_ms) {
            SilenceState::Expired => return Err(format!("silence {id} already expired")),
            // A pending silence never started: it ends where it would have begun.
            SilenceState::Pending => s.starts_at_ms = now_ms,
            SilenceState::Active => {}
        }
        s.ends_at_ms = now_ms;
        s.updated_at_ms = now_ms;
        Ok(s)
    }

    /// The ids of the active silences that mute `labels`.
    pub fn muting(&self, labels: &Labels, now_ms: i64) -> Vec<String> {
        self.by_id
            .values()
            .filter(|s| s.state(now_ms) == SilenceState::Active && s.matches(labels))
            .map(|s| s.id.clone())
            .collect()
    }

    /// Forgets silences expired longer than [`RETENTION_MS`] ago; returns their ids.
    pub fn gc(&mut self, now_ms: i64) -> Vec<String> {
        let old: Vec<String> = self
            .by_id
            .values()
            .filter(|s| s.ends_at_ms.saturating_add(RETENTION_MS) <= now_ms)
            .map(|s| s.id.clone())
            .collect();
        for id in &old {
            self.by_id.remove(id);
        }
        old
    }
}

/// Matchers in the API's shape: `[{name, value, isRegex, isEqual}]`.
pub fn matchers_json(matchers: &[Matcher]) -> serde_json::Value {
    matchers
        .iter()
        .map(|m| {
            serde_json::json!({
                "name": m.name,
                "value": m.value,
                "isRegex": matches!(m.op, MatchOp::Regex | MatchOp::NotRegex),
                "isEqual": matches!(m.op, MatchOp::Equal | MatchOp::Regex),
            })
        })
        .collect()
}

/// Reads matchers in the API's shape (`isEqual` defaults to true); errors name the item.
pub fn matchers_from_json(v: &serde_json::Value) -> Result<Vec<Matcher>, String> {
    let items = v.as_array().ok_or("matchers: must be an array")?;
    items
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let field = |k: &str| m.get(k).and_then(serde_json::Value::as_str);
            let name =
                field("name").ok_or_else(|| format!("matchers[{i}].name: a string is needed"))?;
            let value =
                field("value").ok_or_else(|| format!("matchers[{i}].value: a string is needed"))?;
            let flag = |k: &str, default: bool| match m.get(k) {
                None | Some(serde_json::Value::Null) => Ok(default),
                Some(serde_json::Value::Bool(b)) => Ok(*b),
                Some(_) => Err(format!("matchers[{i}].{k}: true or false")),
            };
            let op = match (flag("isRegex", false)?, flag("isEqual", true)?) {
                (false, true) => MatchOp::Equal,
                (false, false) => MatchOp::NotEqual,
                (true, true) => MatchOp::Regex,
                (true, false) => MatchOp::NotRegex,
            };
            Matcher::new(op, name, value).map_err(|e| format!("matchers[{i}].value: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matchers::parse_matchers;

    const M: i64 = 60_000;

    fn silence(matchers: &str, start: i64, end: i64) -> Silence {
        Silence {
            id: String::new(),
            matchers: parse_matchers(matchers).unwrap(),
            starts_at_ms: start,
            ends_at_ms: end,
            updated_at_ms: 0,
            created_by: "ops".into(),
            comment: "maintenance".into(),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    fn ids() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("s{n}")
        }
    }

    #[test]
    fn matchers_round_trip_through_the_api_shape() {
        let ms = parse_matchers(r#"{a="1", b!="2", c=~"3.*", d!~"4"}"#).unwrap();
        let json = matchers_json(&ms);
        assert_eq!(
            json[2],
            serde_json::json!({"name": "c", "value": "3.*", "isRegex": true, "isEqual": true})
        );
        let back = matchers_from_json(&json).unwrap();
        assert!(same_matchers(&ms, &back));
        for (bad, want) in [
            (serde_json::json!({}), "array"),
            (serde_json::json!([{"value": "x"}]), "matchers[0].name"),
            (
                serde_json::json!([{"name": "a", "value": "(", "isRegex": true}]),
                "matchers[0].value",
            ),
            (
                serde_json::json!([{"name": "a", "value": "x", "isEqual": "yes"}]),
                "isEqual",
            ),
        ] {
            let e = matchers_from_json(&bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn a_silence_mutes_matching_alerts_only_while_active() {
        let mut s = Silences::default();
        let mut next = ids();
        let t0 = 1_000 * M;
        let id = s
            .upsert(
                silence(r#"service="shop""#, t0 + 10 * M, t0 + 70 * M),
                t0,
                &mut next,
            )
            .unwrap();
        assert_eq!(id, Upserted::Created("s1".into(), None));
        let shop = labels(&[("alertname", "Down"), ("service", "shop")]);
        let crm = labels(&[("alertname", "Down"), ("service", "crm")]);
        assert!(s.muting(&shop, t0).is_empty(), "pending");
        assert_eq!(s.muting(&shop, t0 + 10 * M), ["s1"]);
        assert!(s.muting(&crm, t0 + 10 * M).is_empty());
        assert!(
            s.muting(&shop, t0 + 70 * M).is_empty(),
            "expired at its end"
        );
        assert_eq!(
            s.get("s1").unwrap().state(t0 + 70 * M),
            SilenceState::Expired
        );
    }

    #[test]
    fn invalid_silences_are_refused_with_the_field() {
        let mut s = Silences::default();
        let t0 = 1_000 * M;
        for (m, start, end, want) in [
            (r#"a=~".*""#, t0, t0 + M, "empty string"),
            (r#"a="x""#, t0 + M, t0, "endsAt"),
            (r#"a="x""#, t0 - 2 * M, t0 - M, "future"),
        ] {
            let e = s.upsert(silence(m, start, end), t0, ids()).unwrap_err();
            assert!(e.contains(want), "{m}: {e}");
        }
        let mut no_comment = silence(r#"a="x""#, t0, t0 + M);
        no_comment.comment = " ".into();
        assert!(
            s.upsert(no_comment, t0, ids())
                .unwrap_err()
                .starts_with("comment")
        );
        let mut unknown = silence(r#"a="x""#, t0, t0 + M);
        unknown.id = "nope".into();
        assert!(
            s.upsert(unknown, t0, ids())
                .unwrap_err()
                .contains("not found")
        );
    }

    #[test]
    fn changes_follow_alertmanagers_rules() {
        let mut s = Silences::default();
        let mut next = ids();
        let t0 = 1_000 * M;
        s.upsert(silence(r#"a="x""#, t0, t0 + 60 * M), t0, &mut next)
            .unwrap();
        // Active, same matchers and start: extended in place.
        let mut longer = silence(r#"a="x""#, t0, t0 + 120 * M);
        longer.id = "s1".into();
        assert_eq!(
            s.upsert(longer, t0 + M, &mut next).unwrap(),
            Upserted::Updated("s1".into())
        );
        assert_eq!(s.get("s1").unwrap().ends_at_ms, t0 + 120 * M);
        // Active, other matchers: the old one expires, a new one takes over.
        let mut other = silence(r#"a="y""#, t0, t0 + 120 * M);
        other.id = "s1".into();
        let got = s.upsert(other, t0 + 2 * M, &mut next).unwrap();
        assert_eq!(got, Upserted::Created("s2".into(), Some("s1".into())));
        assert_eq!(
            s.get("s1").unwrap().state(t0 + 2 * M),
            SilenceState::Expired
        );
        assert_eq!(
            s.get("s2").unwrap().starts_at_ms,
            t0 + 2 * M,
            "no start in the past"
        );
        // Expire, then expire again.
        assert!(s.expire("s2", t0 + 3 * M).is_ok());
        assert!(
            s.expire("s2", t0 + 4 * M)
                .unwrap_err()
                .contains("already expired")
        );
        // A pending one changes in place in every way.
        s.upsert(
            silence(r#"b="1""#, t0 + 50 * M, t0 + 60 * M),
            t0 + 5 * M,
            &mut next,
        )
        .unwrap();
        let mut moved = silence(r#"b="2""#, t0 + 40 * M, t0 + 90 * M);
        moved.id = "s3".into();
        assert_eq!(
            s.upsert(moved, t0 + 6 * M, &mut next).unwrap(),
            Upserted::Updated("s3".into())
        );
        // Garbage collection after the retention.
        assert!(s.gc(t0 + 4 * M + RETENTION_MS).contains(&"s1".to_owned()));
        assert!(s.get("s3").is_some());
    }
}
