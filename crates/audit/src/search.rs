//! [`search`] and [`export`]: the records of a chain that match a [`Filter`].
//!
//! Both read `chain.jsonl` from the start, in one pass, keeping only what they return:
//! `search` the newest `limit` matches before a cursor (memory O(limit)), `export` every
//! match in order, written as it is found. A line that is not a record is skipped here
//! (verification reports it). Cost: the whole file is read and each line parsed — about
//! what [`crate::verify`] costs without the hashing.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use crate::{AuditError, Outcome, Record, files};

/// Which records match: every set condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// The tenant (always set by the API: a tenant sees only its records).
    pub tenant: Option<String>,
    /// Exactly this actor.
    pub actor: Option<String>,
    /// This action, or every action under it when it ends in `.*` (`auth.*`).
    pub action: Option<String>,
    /// Targets starting with this.
    pub target: Option<String>,
    /// This outcome.
    pub outcome: Option<Outcome>,
    /// This category (applications' events).
    pub category: Option<String>,
    /// This request id.
    pub request_id: Option<String>,
    /// From this time on, ms.
    pub from_ms: Option<i64>,
    /// Before this time, ms.
    pub to_ms: Option<i64>,
}

impl Filter {
    /// Whether `r` matches.
    pub fn matches(&self, r: &Record) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        let opt_eq = |want: &Option<String>, have: &Option<String>| {
            want.as_deref().is_none_or(|w| have.as_deref() == Some(w))
        };
        eq(&self.tenant, &r.tenant)
            && eq(&self.actor, &r.actor)
            && self
                .action
                .as_deref()
                .is_none_or(|a| match a.strip_suffix(".*") {
                    Some(area) => r
                        .action
                        .strip_prefix(area)
                        .is_some_and(|rest| rest.starts_with('.')),
                    None => a == r.action,
                })
            && self
                .target
                .as_deref()
                .is_none_or(|t| r.target.starts_with(t))
            && self.outcome.is_none_or(|o| o == r.outcome)
            && opt_eq(&self.category, &r.category)
            && opt_eq(&self.request_id, &r.request_id)
            && self.from_ms.is_none_or(|f| r.ts_ms >= f)
            && self.to_ms.is_none_or(|t| r.ts_ms < t)
    }
}

/// Calls `each` with every record of the chain under `data_dir` in order, until it
/// returns `false`. Lines that are not records are skipped.
fn scan(data_dir: &Path, mut each: impl FnMut(Record) -> bool) -> Result<(), AuditError> {
    let path = files::audit_dir(data_dir).join(files::CHAIN);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(AuditError::io("open", &path)(e)),
    };
    for line in BufReader::new(file).lines() {
        let line = line.map_err(AuditError::io("read", &path))?;
        if let Ok(record) = serde_json::from_str::<Record>(&line)
            && !each(record)
        {
            break;
        }
    }
    Ok(())
}

/// The newest `limit` records matching `filter` whose `seq` is below `before` (all, when
/// `None`), newest first.
pub fn search(
    data_dir: &Path,
    filter: &Filter,
    before: Option<u64>,
    limit: usize,
) -> Result<Vec<Record>, AuditError> {
    let mut kept = VecDeque::with_capacity(limit.min(10_000));
    scan(data_dir, |r| {
        if before.is_some_and(|b| r.seq >= b) {
            return false;
        }
        if limit > 0 && filter.matches(&r) {
            if kept.len() == limit {
                kept.pop_front();
            }
            kept.push_back(r);
        }
        true
    })?;
    Ok(kept.into_iter().rev().collect())
}

/// Writes every record matching `filter` to `out` as JSON lines, oldest first, exactly as
/// stored (so an exported record still verifies against its hash). Returns how many.
pub fn export(data_dir: &Path, filter: &Filter, out: &mut impl Write) -> Result<u64, AuditError> {
    let mut n = 0;
    let mut failed = None;
    scan(data_dir, |r| {
        if !filter.matches(&r) {
            return true;
        }
        let line = serde_json::to_string(&r)
            .unwrap_or_else(|e| unreachable!("BUG: audit record does not serialize: {e}"));
        match out
            .write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
        {
            Ok(()) => {
                n += 1;
                true
            }
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    })?;
    match failed {
        Some(e) => Err(AuditError::io(
            "write the export of",
            Path::new(files::CHAIN),
        )(e)),
        None => Ok(n),
    }
}
