//! Simple on-call rotations: people (each a receiver of the tenant's Alertmanager
//! configuration) take turns in fixed shifts from a start time. An escalation stage whose
//! receiver is `oncall:<name>` goes to whoever is on call when it is due.
//!
//! ```yaml
//! alerting:
//!   oncall:
//!     - name: ops
//!       start: 2026-12-07T09:00:00+03:00   # the first person's shift begins
//!       shift: 7d
//!       people: [alice-pager, bob-pager]
//! ```

use std::time::Duration;

use dozor_model::TenantId;
use serde::Deserialize;

/// The prefix that makes a stage's receiver a rotation.
pub const PREFIX: &str = "oncall:";

/// One rotation as written.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RotationConfig {
    /// Its name (`oncall:<name>`).
    pub name: String,
    /// The tenant (default: the default tenant).
    #[serde(default)]
    pub tenant: Option<String>,
    /// When the first shift begins (RFC 3339).
    pub start: String,
    /// How long a shift lasts (`12h`, `7d`).
    pub shift: String,
    /// Receivers, in turn.
    pub people: Vec<String>,
}

/// A checked rotation.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// Its name.
    pub name: String,
    /// Its tenant.
    pub tenant: TenantId,
    start_ms: i64,
    shift_ms: i64,
    people: Vec<String>,
}

impl Rotation {
    /// Checks a rotation; `receivers` lists its tenant's receiver names.
    pub fn compile(c: &RotationConfig, receivers: &[&str]) -> Result<Rotation, String> {
        let at = |f: &str| format!("alerting.oncall {:?}: {f}", c.name);
        let tenant = crate::config::entry_tenant("oncall", &c.name, c.tenant.as_ref())?;
        let start_ms = c
            .start
            .parse::<jiff::Timestamp>()
            .map_err(|e| at(&format!("start: {e}")))?
            .as_millisecond();
        let shift: Duration =
            dozor_model::duration::parse(&c.shift).map_err(|e| at(&format!("shift: {e}")))?;
        let shift_ms = i64::try_from(shift.as_millis()).unwrap_or(i64::MAX);
        if shift_ms < 60_000 {
            return Err(at("shift: at least a minute"));
        }
        if c.people.is_empty() {
            return Err(at("people: at least one"));
        }
        if let Some(p) = c.people.iter().find(|p| !receivers.contains(&p.as_str())) {
            return Err(at(&format!("people: no receiver named {p:?}")));
        }
        Ok(Rotation {
            name: c.name.clone(),
            tenant,
            start_ms,
            shift_ms,
            people: c.people.clone(),
        })
    }

    /// Who is on call at `ms` (before the start: the first person).
    pub fn on_call(&self, ms: i64) -> &str {
        let shifts = (ms - self.start_ms).max(0) / self.shift_ms;
        let n = i64::try_from(self.people.len()).unwrap_or(1).max(1);
        let i = usize::try_from(shifts % n).unwrap_or(0);
        &self.people[i]
    }
}

/// Every tenant's rotations.
#[derive(Debug, Clone, Default)]
pub struct Rotations(Vec<Rotation>);

impl Rotations {
    /// Checks every rotation against its tenant's receivers (`receivers_of`).
    pub fn compile(
        configs: &[RotationConfig],
        receivers_of: &dyn Fn(&TenantId) -> Vec<String>,
    ) -> Result<Rotations, String> {
        let mut names = std::collections::BTreeSet::new();
        configs
            .iter()
            .map(|c| {
                crate::config::unique_name(&mut names, "oncall", &c.name)?;
                let tenant = crate::config::entry_tenant("oncall", &c.name, c.tenant.as_ref())?;
                let receivers = receivers_of(&tenant);
                let refs: Vec<&str> = receivers.iter().map(String::as_str).collect();
                Rotation::compile(c, &refs)
            })
            .collect::<Result<_, _>>()
            .map(Rotations)
    }

    /// The names a stage may use for `tenant`: `oncall:<name>` of its rotations.
    pub fn receiver_names(&self, tenant: &TenantId) -> Vec<String> {
        self.0
            .iter()
            .filter(|r| r.tenant == *tenant)
            .map(|r| format!("{PREFIX}{}", r.name))
            .collect()
    }

    /// The receiver `name` stands for at `ms`: itself, or whoever is on call for an
    /// `oncall:<rotation>` of `tenant` (`None` for an unknown rotation).
    pub fn resolve<'a>(&'a self, tenant: &TenantId, name: &'a str, ms: i64) -> Option<&'a str> {
        match name.strip_prefix(PREFIX) {
            None => Some(name),
            Some(rotation) => self
                .0
                .iter()
                .find(|r| r.tenant == *tenant && r.name == rotation)
                .map(|r| r.on_call(ms)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rotation(yaml: &str) -> Result<Rotation, String> {
        let c: RotationConfig = serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?;
        Rotation::compile(&c, &["alice", "bob", "carol"])
    }

    #[test]
    fn shifts_hand_over_in_turn() {
        let r = rotation("name: ops\nstart: '2026-12-07T09:00:00+03:00'\nshift: 12h\npeople: [alice, bob, carol]\n").unwrap();
        let start = 1_796_623_200_000; // 2026-12-07T06:00:00Z
        let h = 3_600_000;
        assert_eq!(r.on_call(start - h), "alice", "before the start");
        assert_eq!(r.on_call(start), "alice");
        assert_eq!(r.on_call(start + 12 * h - 1), "alice");
        assert_eq!(r.on_call(start + 12 * h), "bob");
        assert_eq!(r.on_call(start + 24 * h), "carol");
        assert_eq!(r.on_call(start + 36 * h), "alice", "round again");
        let all = Rotations(vec![r]);
        let t = TenantId::default_tenant();
        assert_eq!(all.resolve(&t, "oncall:ops", start + 13 * h), Some("bob"));
        assert_eq!(all.resolve(&t, "mail", 0), Some("mail"));
        assert_eq!(all.resolve(&t, "oncall:nobody", 0), None);
        assert_eq!(all.receiver_names(&t), ["oncall:ops"]);
    }

    #[test]
    fn mistakes_are_named() {
        for (yaml, want) in [
            (
                "name: o\nstart: soon\nshift: 1d\npeople: [alice]\n",
                "start",
            ),
            (
                "name: o\nstart: '2026-01-01T00:00:00Z'\nshift: 10s\npeople: [alice]\n",
                "at least a minute",
            ),
            (
                "name: o\nstart: '2026-01-01T00:00:00Z'\nshift: 1d\npeople: []\n",
                "people",
            ),
            (
                "name: o\nstart: '2026-01-01T00:00:00Z'\nshift: 1d\npeople: [dave]\n",
                "no receiver named \"dave\"",
            ),
        ] {
            let e = rotation(yaml).unwrap_err();
            assert!(e.contains(want), "{yaml}: {e}");
        }
    }
}
