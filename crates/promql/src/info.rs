//! `info(v, [selector])` (experimental in Prometheus 3): adds the data labels of info
//! metrics (`target_info` by default, or those the selector names) to the series of `v`
//! that share their identifying labels (`instance`, `job`).

use std::collections::{BTreeMap, HashSet};

use dozor_model::labels::METRIC_NAME;
use dozor_model::{MatchOp, Matcher};
use promql_parser::parser::Expr;

use crate::PromqlError;
use crate::eval::{Evaluator, offset_ms, selector_matchers};
use crate::lset::Lset;
use crate::value::{Collector, Elem, FastMap, Grid, StepReader, Val};

type Result<T> = std::result::Result<T, PromqlError>;

const TARGET_INFO: &str = "target_info";
const IDENTIFYING: [&str; 2] = ["instance", "job"];

/// The `@` and offset of the first selector of `e` (depth first), adding the offsets of
/// the subqueries around it and taking their `@` where it has none.
fn first_selector_time(ev: &Evaluator<'_>, e: &Expr) -> Option<(Option<i64>, i64)> {
    fn walk<'e>(e: &'e Expr, path: &mut Vec<&'e Expr>) -> Option<(&'e Expr, Vec<&'e Expr>)> {
        let children: Vec<&Expr> = match e {
            Expr::VectorSelector(_) => return Some((e, path.clone())),
            Expr::MatrixSelector(_) => return Some((e, path.clone())),
            Expr::Aggregate(a) => a
                .param
                .iter()
                .map(|p| p.as_ref())
                .chain([a.expr.as_ref()])
                .collect(),
            Expr::Unary(u) => vec![u.expr.as_ref()],
            Expr::Binary(b) => vec![b.lhs.as_ref(), b.rhs.as_ref()],
            Expr::Paren(p) => vec![p.expr.as_ref()],
            Expr::Subquery(s) => vec![s.expr.as_ref()],
            Expr::Call(c) => c.args.args.iter().map(|a| a.as_ref()).collect(),
            _ => Vec::new(),
        };
        path.push(e);
        for c in children {
            if let Some(found) = walk(c, path) {
                return Some(found);
            }
        }
        path.pop();
        None
    }
    let (sel, path) = walk(e, &mut Vec::new())?;
    let vs = match sel {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return None,
    };
    let mut at = ev.at_ms(&vs.at);
    let mut off = offset_ms(&vs.offset);
    for p in path.iter().rev() {
        if at.is_some() {
            break;
        }
        if let Expr::Subquery(sq) = p {
            off += offset_ms(&sq.offset);
            at = ev.at_ms(&sq.at);
        }
    }
    Some((at, off))
}

/// The name matchers that pick info metrics: as given when one is `=` or `=~`, else those
/// narrowed to `.+_info`, and `target_info` without any.
fn effective_name_matchers(ms: &[Matcher]) -> Result<Vec<Matcher>> {
    if ms
        .iter()
        .any(|m| matches!(m.op, MatchOp::Equal | MatchOp::Regex))
    {
        return Ok(ms.to_vec());
    }
    if !ms.is_empty() {
        let mut out = vec![
            Matcher::new(MatchOp::Regex, METRIC_NAME, ".+_info")
                .map_err(|e| PromqlError::exec(e.to_string()))?,
        ];
        out.extend(ms.iter().cloned());
        return Ok(out);
    }
    Ok(vec![Matcher::equal(METRIC_NAME, TARGET_INFO)])
}

fn regex_quote(s: &str) -> String {
    regex::escape(s)
}

pub(crate) fn info(ev: &mut Evaluator<'_>, args: &[&Expr], g: Grid) -> Result<Val> {
    let base_expr = args
        .first()
        .ok_or_else(|| PromqlError::BadData("info() needs an argument".into()))?;
    let (at, off) = first_selector_time(ev, base_expr).unwrap_or((None, 0));
    let base = ev.eval_vector(base_expr, g)?;

    // Data-label matchers by label name, and the matchers on the info metric's name.
    let mut data: BTreeMap<String, Vec<Matcher>> = BTreeMap::new();
    let mut name_matchers: Vec<Matcher> = Vec::new();
    match args.get(1) {
        Some(Expr::VectorSelector(vs)) => {
            let groups = selector_matchers(vs).map_err(PromqlError::BadData)?;
            for m in groups.into_iter().next().unwrap_or_default() {
                if m.name == METRIC_NAME {
                    name_matchers.push(m.clone());
                }
                data.entry(m.name.clone()).or_default().push(m);
            }
        }
        Some(e) => {
            return Err(PromqlError::BadData(format!(
                "expected a label selector as info()'s second argument, got {e}"
            )));
        }
        None => name_matchers.push(Matcher::equal(METRIC_NAME, TARGET_INFO)),
    }
    let effective = effective_name_matchers(&name_matchers)?;
    let ignored: Vec<bool> = base
        .iter()
        .map(|s| {
            let name = s.metric.get(METRIC_NAME);
            effective.iter().all(|m| m.matches(name))
        })
        .collect();

    // Identifying label values of the series to enrich.
    let mut id_values: BTreeMap<&str, HashSet<String>> = BTreeMap::new();
    for (s, &ign) in base.iter().zip(&ignored) {
        if ign {
            continue;
        }
        for l in IDENTIFYING {
            let v = s.metric.get(l);
            if !v.is_empty() {
                id_values.entry(l).or_default().insert(v.to_owned());
            }
        }
    }
    let data_names: Vec<Matcher> = data
        .values()
        .flatten()
        .filter(|m| m.name == METRIC_NAME)
        .cloned()
        .collect();
    data.remove(METRIC_NAME);
    let info_series = if id_values.is_empty() {
        Vec::new()
    } else {
        let mut ms = Vec::new();
        for (name, vals) in &id_values {
            let mut vals: Vec<&String> = vals.iter().collect();
            vals.sort();
            let re: Vec<String> = vals.iter().map(|v| regex_quote(v)).collect();
            ms.push(
                Matcher::new(MatchOp::Regex, *name, re.join("|"))
                    .map_err(|e| PromqlError::exec(e.to_string()))?,
            );
        }
        ms.extend(data.values().flatten().cloned());
        ms.extend(effective_name_matchers(&data_names)?);
        ev.instant_selector(&[ms], at, off, g, true)?
    };

    // Join signatures: the info metric's name with the identifying labels.
    let sig = |name: &str, m: &Lset| -> String {
        let mut s = String::from(name);
        for l in IDENTIFYING {
            let v = m.get(l);
            if !v.is_empty() {
                s.push('\u{ff}');
                s.push_str(l);
                s.push('=');
                s.push_str(v);
            }
        }
        s
    };
    let mut info_names: Vec<String> = info_series
        .iter()
        .map(|s| s.metric.get(METRIC_NAME).to_owned())
        .collect();
    info_names.sort();
    info_names.dedup();
    let info_sigs: Vec<String> = info_series
        .iter()
        .map(|s| sig(s.metric.get(METRIC_NAME), &s.metric))
        .collect();
    let base_sigs: Vec<Vec<(usize, String)>> = base
        .iter()
        .map(|s| {
            info_names
                .iter()
                .enumerate()
                .map(|(i, n)| (i, sig(n, &s.metric)))
                .collect()
        })
        .collect();
    let all_match_empty = data.values().flatten().all(|m| m.matches(""));

    let mut base_reader = StepReader::new(&base);
    let mut info_reader = StepReader::new(&info_series);
    let mut out = Collector::new(g);
    for i in 0..g.len() {
        ev.check()?;
        let ts = g.ts(i);
        let infos = info_reader.vector(ts);
        let bases = base_reader.vector(ts);
        let mut by_sig: FastMap<&str, (usize, i64)> = FastMap::default();
        for (ii, v) in infos {
            let orig_t = (v * 1000.0).round() as i64;
            match by_sig.get(info_sigs[ii].as_str()) {
                Some(&(_, t)) if t > orig_t => {}
                Some(&(prev, t)) if t == orig_t => {
                    return Err(PromqlError::exec(format!(
                        "found duplicate series for info metric: existing {} @ {t}, new {} @ {orig_t}",
                        info_series[prev].metric, info_series[ii].metric
                    )));
                }
                _ => {
                    by_sig.insert(&info_sigs[ii], (ii, orig_t));
                }
            }
        }
        for (bi, v) in bases {
            let s = &base[bi];
            if ignored[bi] {
                out.push(
                    ts,
                    Elem {
                        metric: s.metric.clone(),
                        v,
                        drop_name: s.drop_name,
                    },
                )?;
                continue;
            }
            let mut added: BTreeMap<&str, &str> = BTreeMap::new();
            let mut seen = vec![false; info_names.len()];
            for (ni, sg) in &base_sigs[bi] {
                let Some(&(ii, _)) = by_sig.get(sg.as_str()) else {
                    continue;
                };
                if seen[*ni] {
                    continue;
                }
                for l in info_series[ii].metric.iter() {
                    if l.name == METRIC_NAME || (!data.is_empty() && !data.contains_key(&l.name)) {
                        continue;
                    }
                    if let Some(v) = added.get(l.name.as_str())
                        && *v != l.value
                    {
                        return Err(PromqlError::exec(format!("conflicting label: {}", l.name)));
                    }
                    if !s.metric.get(&l.name).is_empty() {
                        continue;
                    }
                    added.insert(&l.name, &l.value);
                }
                seen[*ni] = true;
            }
            if !seen.iter().any(|x| *x) && !all_match_empty {
                continue;
            }
            let mut metric = s.metric.clone();
            for (n, v) in added {
                metric = metric.with(n, v);
            }
            out.push(
                ts,
                Elem {
                    metric,
                    v,
                    drop_name: s.drop_name,
                },
            )?;
        }
    }
    Ok(Val::Vector(out.finish()))
}
