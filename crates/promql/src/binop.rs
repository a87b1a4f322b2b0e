//! Binary operators: arithmetic, comparisons (filtering or `bool`), `atan2`, and the set
//! operators `and`, `or`, `unless`, with `on`/`ignoring` matching, `group_left`/
//! `group_right`, and the fill modifiers (`fill`, `fill_left`, `fill_right`). Vector/vector
//! operations match series by signature once, then pair them step by step, caching each
//! pair's result labels and output series.

use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MOD,
    T_MUL, T_NEQ, T_POW, T_SUB, TokenId,
};
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use crate::PromqlError;
use crate::eval::Evaluator;
use crate::lset::Lset;
use crate::value::{Collector, Elem, FastMap, Grid, Series, StepReader, Val, merge_same_labels};

type Result<T> = std::result::Result<T, PromqlError>;

fn is_comparison(op: TokenId) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE)
}

/// Whether the operator changes what the metric means (so `__name__` goes).
fn changes_schema(op: TokenId) -> bool {
    matches!(op, T_ADD | T_SUB | T_MUL | T_DIV | T_POW | T_MOD | T_ATAN2)
}

/// Arithmetic as Go does it: `%` is `math.Mod` (the sign of the dividend, as Rust's `%`),
/// `^` is `math.Pow`.
fn arith(op: TokenId, l: f64, r: f64) -> f64 {
    match op {
        T_ADD => l + r,
        T_SUB => l - r,
        T_MUL => l * r,
        T_DIV => l / r,
        T_POW => l.powf(r),
        T_MOD => l % r,
        T_ATAN2 => l.atan2(r),
        _ => f64::NAN,
    }
}

fn compare(op: TokenId, l: f64, r: f64) -> bool {
    match op {
        T_EQLC => l == r,
        T_NEQ => l != r,
        T_GTR => l > r,
        T_LSS => l < r,
        T_GTE => l >= r,
        T_LTE => l <= r,
        _ => false,
    }
}

/// The value of `l op r` for two samples and whether it is kept (comparisons filter).
fn elem(op: TokenId, l: f64, r: f64) -> (f64, bool) {
    if is_comparison(op) {
        (l, compare(op, l, r))
    } else {
        (arith(op, l, r), true)
    }
}

pub(crate) fn eval(ev: &mut Evaluator<'_>, b: &BinaryExpr, g: Grid) -> Result<Val> {
    let op = b.op.id();
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let lhs = ev.eval(&b.lhs, g)?;
    let rhs = ev.eval(&b.rhs, g)?;
    let held = lhs.samples() + rhs.samples();
    let out = match (lhs, rhs) {
        (Val::Scalar(l), Val::Scalar(r)) => Val::Scalar(
            l.iter()
                .zip(&r)
                .map(|(&l, &r)| {
                    if is_comparison(op) {
                        if compare(op, l, r) { 1.0 } else { 0.0 }
                    } else {
                        arith(op, l, r)
                    }
                })
                .collect(),
        ),
        (Val::Vector(l), Val::Scalar(r)) => {
            Val::Vector(vector_scalar(op, l, &r, false, return_bool, g))
        }
        (Val::Scalar(l), Val::Vector(r)) => {
            Val::Vector(vector_scalar(op, r, &l, true, return_bool, g))
        }
        (Val::Vector(l), Val::Vector(r)) => {
            let (on, names) = matching(b);
            match op {
                T_LAND | T_LOR | T_LUNLESS => Val::Vector(set_op(op, l, r, on, &names)?),
                _ => Val::Vector(vector_vector(ev, b, op, l, r, return_bool, g)?),
            }
        }
        _ => {
            return Err(PromqlError::BadData(format!(
                "binary expression must contain only scalar and instant vector types: {b}"
            )));
        }
    };
    ev.release(held);
    ev.charge(out.samples())?;
    Ok(out)
}

/// `(on, labels)`: `on(labels)` or `ignoring(labels)` (the default, with no labels).
fn matching(b: &BinaryExpr) -> (bool, Vec<String>) {
    match b.modifier.as_ref().and_then(|m| m.matching.as_ref()) {
        Some(LabelModifier::Include(l)) => (true, l.labels.clone()),
        Some(LabelModifier::Exclude(l)) => (false, l.labels.clone()),
        None => (false, Vec::new()),
    }
}

fn vector_scalar(
    op: TokenId,
    vec: Vec<Series>,
    scalar: &[f64],
    swap: bool,
    return_bool: bool,
    g: Grid,
) -> Vec<Series> {
    let mut out = Vec::with_capacity(vec.len());
    for mut s in vec {
        s.points.retain_mut(|p| {
            let sv = scalar[g.index(p.t)];
            let (l, r) = if swap { (sv, p.v) } else { (p.v, sv) };
            let (mut v, keep) = elem(op, l, r);
            if is_comparison(op) {
                v = p.v;
            }
            if return_bool {
                p.v = if keep { 1.0 } else { 0.0 };
                true
            } else if keep {
                p.v = v;
                true
            } else {
                false
            }
        });
        if changes_schema(op) || return_bool {
            s.drop_name = true;
        }
        if !s.points.is_empty() {
            out.push(s);
        }
    }
    out
}

/// Ordinals of the matching signatures of both sides' series.
fn signatures(l: &[Series], r: &[Series], on: bool, names: &[String]) -> (Vec<usize>, Vec<usize>) {
    let mut map: FastMap<Vec<u8>, usize> = FastMap::default();
    let mut ord = |s: &Series| {
        let n = map.len();
        *map.entry(s.metric.signature(on, names)).or_insert(n)
    };
    let ls = l.iter().map(&mut ord).collect();
    let rs = r.iter().map(&mut ord).collect();
    (ls, rs)
}

/// Timestamps at which some series of each signature has a point.
fn presence(series: &[Series], sigs: &[usize]) -> FastMap<usize, Vec<i64>> {
    let mut m: FastMap<usize, Vec<i64>> = FastMap::default();
    for (s, &sig) in series.iter().zip(sigs) {
        m.entry(sig)
            .or_default()
            .extend(s.points.iter().map(|p| p.t));
    }
    for v in m.values_mut() {
        v.sort_unstable();
        v.dedup();
    }
    m
}

fn present(m: &FastMap<usize, Vec<i64>>, sig: usize, t: i64) -> bool {
    m.get(&sig).is_some_and(|v| v.binary_search(&t).is_ok())
}

fn set_op(
    op: TokenId,
    l: Vec<Series>,
    r: Vec<Series>,
    on: bool,
    names: &[String],
) -> Result<Vec<Series>> {
    let (lsig, rsig) = signatures(&l, &r, on, names);
    let out = match op {
        T_LAND | T_LUNLESS => {
            let rp = presence(&r, &rsig);
            let want = op == T_LAND;
            let mut out = Vec::with_capacity(l.len());
            for (mut s, sig) in l.into_iter().zip(lsig) {
                s.points.retain(|p| present(&rp, sig, p.t) == want);
                if !s.points.is_empty() {
                    out.push(s);
                }
            }
            out
        }
        _ => {
            let lp = presence(&l, &lsig);
            let mut out = l;
            for (mut s, sig) in r.into_iter().zip(rsig) {
                s.points.retain(|p| !present(&lp, sig, p.t));
                if !s.points.is_empty() {
                    out.push(s);
                }
            }
            out
        }
    };
    merge_same_labels(out)
}

/// How the two sides of a vector/vector operation match.
struct Matching<'a> {
    op: TokenId,
    return_bool: bool,
    on: bool,
    names: &'a [String],
    include: &'a [String],
    one_to_one: bool,
    /// group_right: the "many" side is the right-hand one.
    one_to_many: bool,
}

/// A matched pair's result labels and output series (once known), kept across steps.
type PairCache = Option<(Lset, Option<usize>)>;

/// Per-step bookkeeping of which match groups already produced results.
struct Matched {
    one_to_one: Vec<bool>,
    many: FastMap<usize, Vec<Lset>>,
}

impl Matching<'_> {
    /// Applies the operator to one pair (`many` and `one` side values and labels) at
    /// `ts`, checking the cardinality rules. `cache` keeps the pair's result labels and
    /// output series across steps.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        ts: i64,
        sig: usize,
        (mv, many_metric): (f64, &Lset),
        (ov, one_metric): (f64, &Lset),
        cache: &mut PairCache,
        matched: &mut Matched,
        out: &mut Collector,
    ) -> Result<()> {
        let (lv, rv) = if self.one_to_many { (ov, mv) } else { (mv, ov) };
        let (v, keep) = elem(self.op, lv, rv);
        let v = if self.return_bool {
            if keep { 1.0 } else { 0.0 }
        } else {
            v
        };
        let (metric, slot) = cache.get_or_insert_with(|| {
            (
                result_metric(
                    many_metric,
                    one_metric,
                    self.op,
                    self.one_to_one,
                    self.on,
                    self.names,
                    self.include,
                ),
                None,
            )
        });
        if self.one_to_one {
            if matched.one_to_one[sig] {
                return Err(PromqlError::exec(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                ));
            }
            matched.one_to_one[sig] = true;
        } else {
            let seen = matched.many.entry(sig).or_default();
            if seen.contains(metric) {
                return Err(PromqlError::exec(
                    "multiple matches for labels: grouping labels must ensure unique matches",
                ));
            }
            seen.push(metric.clone());
        }
        if keep || self.return_bool {
            match slot {
                Some(i) if out.reuses_series() => out.push_to(*i, ts, v, self.return_bool)?,
                _ => {
                    *slot = Some(out.push(
                        ts,
                        Elem {
                            metric: metric.clone(),
                            v,
                            drop_name: self.return_bool,
                        },
                    )?);
                }
            }
        }
        Ok(())
    }
}

fn vector_vector(
    ev: &mut Evaluator<'_>,
    b: &BinaryExpr,
    op: TokenId,
    l: Vec<Series>,
    r: Vec<Series>,
    return_bool: bool,
    g: Grid,
) -> Result<Vec<Series>> {
    let (on, names) = matching(b);
    let card = b
        .modifier
        .as_ref()
        .map(|m| m.card.clone())
        .unwrap_or(VectorMatchCardinality::OneToOne);
    let (include, one_to_one, one_to_many) = match &card {
        VectorMatchCardinality::ManyToOne(ls) => (ls.labels.clone(), false, false),
        VectorMatchCardinality::OneToMany(ls) => (ls.labels.clone(), false, true),
        _ => (Vec::new(), true, false),
    };
    let fills = b
        .modifier
        .as_ref()
        .map(|m| (m.fill_values.lhs, m.fill_values.rhs))
        .unwrap_or((None, None));
    // Values for a missing "one" and a missing "many" side element. As in Prometheus,
    // with group_right `fill_right` fills the left ("one") side and `fill_left` the right.
    let (fill_one, fill_many) = (fills.1, fills.0);
    let m = Matching {
        op,
        return_bool,
        on,
        names: &names,
        include: &include,
        one_to_one,
        one_to_many,
    };
    // The "many" side is `many`; with group_right the sides swap.
    let (many, one) = if one_to_many { (&r, &l) } else { (&l, &r) };
    let (msig, osig) = signatures(many, one, on, &names);
    let mut nsigs = 0;
    for &s in msig.iter().chain(&osig) {
        nsigs = nsigs.max(s + 1);
    }
    let mut many_reader = StepReader::new(many);
    let mut one_reader = StepReader::new(one);
    let mut pairs: FastMap<(usize, usize), PairCache> = FastMap::default();
    let mut out = Collector::new(g);
    let mut one_at: Vec<Option<(usize, f64)>> = vec![None; nsigs];
    let mut matched = Matched {
        one_to_one: vec![false; nsigs],
        many: FastMap::default(),
    };
    for i in 0..g.len() {
        ev.check()?;
        let ts = g.ts(i);
        let os = one_reader.vector(ts);
        let ms = many_reader.vector(ts);
        if (os.is_empty() && ms.is_empty())
            || ((os.is_empty() || ms.is_empty()) && fill_one.is_none() && fill_many.is_none())
        {
            continue;
        }
        one_at.iter_mut().for_each(|x| *x = None);
        for &(si, v) in &os {
            let sig = osig[si];
            if let Some((prev, _)) = one_at[sig] {
                let side = if one_to_many { "left" } else { "right" };
                let matched = one[si].metric.match_labels(on, &names);
                let mut d = [one[si].metric.to_string(), one[prev].metric.to_string()];
                d.sort();
                return Err(PromqlError::exec(format!(
                    "found duplicate series for the match group {matched} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    d[0], d[1]
                )));
            }
            one_at[sig] = Some((si, v));
        }
        matched.one_to_one.iter_mut().for_each(|x| *x = false);
        if !matched.many.is_empty() {
            matched.many.clear();
        }
        for (mi, mv) in ms {
            let sig = msig[mi];
            let many_metric = &many[mi].metric;
            match one_at[sig] {
                Some((oi, ov)) => {
                    m.apply(
                        ts,
                        sig,
                        (mv, many_metric),
                        (ov, &one[oi].metric),
                        pairs.entry((mi, oi)).or_default(),
                        &mut matched,
                        &mut out,
                    )?;
                }
                None => {
                    if let Some(fill) = fill_one {
                        let filled = many_metric.match_labels(on, &names);
                        m.apply(
                            ts,
                            sig,
                            (mv, many_metric),
                            (fill, &filled),
                            pairs.entry((mi, usize::MAX)).or_default(),
                            &mut matched,
                            &mut out,
                        )?;
                    }
                }
            }
        }
        if let Some(fill) = fill_many {
            for &(oi, ov) in &os {
                let sig = osig[oi];
                let done = if one_to_one {
                    matched.one_to_one[sig]
                } else {
                    matched.many.get(&sig).is_some_and(|v| !v.is_empty())
                };
                if done {
                    continue;
                }
                let filled = one[oi].metric.match_labels(on, &names);
                m.apply(
                    ts,
                    sig,
                    (fill, &filled),
                    (ov, &one[oi].metric),
                    pairs.entry((usize::MAX, oi)).or_default(),
                    &mut matched,
                    &mut out,
                )?;
            }
        }
    }
    Ok(out.finish())
}

fn result_metric(
    many: &Lset,
    one: &Lset,
    op: TokenId,
    one_to_one: bool,
    on: bool,
    names: &[String],
    include: &[String],
) -> Lset {
    let mut m = if changes_schema(op) {
        many.without_name()
    } else {
        many.clone()
    };
    if one_to_one {
        m = if on {
            m.retain(|n| names.iter().any(|x| x == n))
        } else {
            m.retain(|n| !names.iter().any(|x| x == n))
        };
    }
    for ln in include {
        m = m.with(ln, one.get(ln));
    }
    m
}
