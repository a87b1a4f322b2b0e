//! Service-level objectives as rules: each SLO (an objective over the ratio of error
//! events to all events, from two counters) becomes a group of recording rules — its
//! error ratio over the windows the alerts need — and the multi-window, multi-burn-rate
//! alerts of the Google SRE workbook (chapter 5, "Alerting on SLOs"):
//!
//! | alert | long window | short window | burn rate | budget spent when it fires |
//! |---|---|---|---|---|
//! | `SLOErrorBudgetBurn` (critical) | 1h | 5m | 14.4 | 2 % |
//! | `SLOErrorBudgetBurn` (critical) | 6h | 30m | 6 | 5 % |
//! | `SLOErrorBudgetBurn` (warning) | 1d | 2h | 3 | 10 % |
//! | `SLOErrorBudgetBurn` (warning) | 3d | 6h | 1 | 10 % |
//!
//! A window pair fires when both windows burn faster than the rate: the long one says the
//! budget really goes, the short one that it still goes now (so the alert resolves soon
//! after the problem does). The budget is `1 - objective` of the events of the SLO's window
//! (30 days by default).

use std::fmt::Write as _;

/// One SLO.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// Its name (a label value: `slo="…"`).
    pub name: String,
    /// The target share of good events, e.g. 0.999.
    pub objective: f64,
    /// A PromQL counter (series selector) of bad events, e.g. `http_requests_total{code=~"5.."}`.
    pub errors: String,
    /// A PromQL counter (selector) of all events.
    pub total: String,
    /// The SLO's window in days (the error budget's period).
    pub window_days: u32,
}

/// The windows whose error ratio is recorded.
pub const WINDOWS: [&str; 8] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"];

/// The alerting window pairs: long, short, burn rate, severity.
pub const BURNS: [(&str, &str, f64, &str); 4] = [
    ("1h", "5m", 14.4, "critical"),
    ("6h", "30m", 6.0, "critical"),
    ("1d", "2h", 3.0, "warning"),
    ("3d", "6h", 1.0, "warning"),
];

/// The name of the recorded error ratio over `window`.
pub fn ratio_metric(window: &str) -> String {
    format!("slo:error_ratio:rate{window}")
}

impl Slo {
    /// The error budget: the share of events that may fail.
    pub fn budget(&self) -> f64 {
        1.0 - self.objective
    }

    /// Checks the fields; the message names the field.
    pub fn check(&self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 100
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        if !name_ok {
            return Err("name: 1 to 100 letters, digits, '_', '-' or '.'".into());
        }
        if !(self.objective > 0.0 && self.objective < 1.0) {
            return Err("objective: a share between 0 and 1 (99.9 % is 0.999)".into());
        }
        if !(1..=90).contains(&self.window_days) {
            return Err("window: from 1 to 90 days".into());
        }
        for (field, expr) in [("errors", &self.errors), ("total", &self.total)] {
            dozor_promql::parse(&format!("rate({expr}[5m])"))
                .map_err(|e| format!("{field}: a counter's series selector: {e}"))?;
        }
        Ok(())
    }
}

/// A Prometheus rule file of one group per SLO.
pub fn rule_file(slos: &[Slo]) -> String {
    let mut out = String::from("groups:\n");
    for slo in slos {
        let label = format!("slo: {:?}", slo.name);
        let _ = writeln!(out, "  - name: {:?}", format!("slo:{}", slo.name));
        let _ = writeln!(out, "    rules:");
        for w in WINDOWS {
            // The 30-day window follows the SLO's own period.
            let range = if w == "30d" {
                format!("{}d", slo.window_days)
            } else {
                w.to_owned()
            };
            let expr = format!(
                "sum(rate({}[{range}])) / sum(rate({}[{range}]))",
                slo.errors, slo.total
            );
            let _ = writeln!(out, "      - record: {}", ratio_metric(w));
            let _ = writeln!(out, "        expr: {expr:?}");
            let _ = writeln!(out, "        labels: {{{label}}}");
        }
        for (long, short, rate, severity) in BURNS {
            // Rounded, so the rule reads 0.0144 rather than 0.014400000000000013.
            let limit = (rate * slo.budget() * 1e9).round() / 1e9;
            let sel = format!("{{slo={:?}}}", slo.name);
            let expr = format!(
                "{}{sel} > {limit} and {}{sel} > {limit}",
                ratio_metric(long),
                ratio_metric(short)
            );
            let _ = writeln!(out, "      - alert: SLOErrorBudgetBurn");
            let _ = writeln!(out, "        expr: {expr:?}");
            let _ = writeln!(out, "        for: 2m");
            let _ = writeln!(
                out,
                "        labels: {{{label}, severity: {severity}, window: {:?}}}",
                format!("{long}/{short}")
            );
            let summary = format!(
                "SLO {} burns its error budget {rate}× too fast ({long} and {short} windows)",
                slo.name
            );
            let _ = writeln!(out, "        annotations: {{summary: {summary:?}}}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slo() -> Slo {
        Slo {
            name: "checkout".into(),
            objective: 0.999,
            errors: r#"http_requests_total{code=~"5.."}"#.into(),
            total: "http_requests_total".into(),
            window_days: 30,
        }
    }

    #[test]
    fn an_slo_becomes_recordings_and_four_burn_rate_alerts() {
        let text = rule_file(&[slo()]);
        let groups = crate::file::parse(&text, "slo").unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        assert_eq!(groups.len(), 1);
        let rules = &groups[0].rules;
        assert_eq!(rules.len(), WINDOWS.len() + BURNS.len());
        assert_eq!(rules[2].name, "slo:error_ratio:rate1h");
        assert_eq!(
            rules[2].expr,
            r#"sum(rate(http_requests_total{code=~"5.."}[1h])) / sum(rate(http_requests_total[1h]))"#
        );
        let fast = &rules[WINDOWS.len()];
        assert_eq!(fast.name, "SLOErrorBudgetBurn");
        // 14.4 × 0.001 of the budget, on both windows.
        assert!(
            fast.expr
                .contains("slo:error_ratio:rate1h{slo=\"checkout\"} > 0.0144"),
            "{}",
            fast.expr
        );
        assert!(
            fast.expr
                .contains("slo:error_ratio:rate5m{slo=\"checkout\"} > 0.0144"),
            "{}",
            fast.expr
        );
        assert_eq!(fast.labels["severity"], "critical");
        assert_eq!(rules.last().unwrap().labels["severity"], "warning");
    }

    #[test]
    fn fields_are_checked() {
        let bad = |f: fn(&mut Slo)| {
            let mut s = slo();
            f(&mut s);
            s.check().unwrap_err()
        };
        assert!(bad(|s| s.objective = 99.9).starts_with("objective"));
        assert!(bad(|s| s.name = "a b".into()).starts_with("name"));
        assert!(bad(|s| s.errors = "sum(".into()).starts_with("errors"));
        assert!(bad(|s| s.total = "sum(x)".into()).starts_with("total"));
        assert!(bad(|s| s.window_days = 0).starts_with("window"));
        assert!(slo().check().is_ok());
    }
}
