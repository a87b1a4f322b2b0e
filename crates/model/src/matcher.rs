//! [`Matcher`]: one condition of a series selector, `name op "value"`.

use regex::Regex;

/// The four label-matching operators of PromQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~` (anchored regex)
    Regex,
    /// `!~` (anchored regex)
    NotRegex,
}

/// One condition on a label. A missing label has the value `""`, so `foo=""` matches series
/// without `foo`, as in Prometheus.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Operator.
    pub op: MatchOp,
    /// Value or regex source.
    pub value: String,
    re: Option<Regex>,
}

/// A regex that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid regex {pattern:?}: {message}")]
pub struct BadRegex {
    /// The pattern.
    pub pattern: String,
    /// Why.
    pub message: String,
}

impl Matcher {
    /// Builds a matcher; regexes are anchored at both ends, as PromQL's are.
    pub fn new(
        op: MatchOp,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Matcher, BadRegex> {
        let value = value.into();
        let re = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                regex::RegexBuilder::new(&format!("^(?s:{value})$"))
                    .size_limit(1 << 20)
                    // The default (250) lets `a****…` nest deep enough to overflow a
                    // thread's stack in regex-syntax's recursion.
                    .nest_limit(32)
                    .build()
                    .map_err(|e| BadRegex {
                        pattern: value.clone(),
                        message: e.to_string(),
                    })?,
            ),
            _ => None,
        };
        Ok(Matcher {
            name: name.into(),
            op,
            value,
            re,
        })
    }

    /// `name="value"`.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Matcher {
        Matcher {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
            re: None,
        }
    }

    /// Whether a label value (`""` when the label is missing) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        match (self.op, &self.re) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            (MatchOp::Regex | MatchOp::NotRegex, None) => {
                unreachable!("BUG: regex matcher without a compiled regex")
            }
        }
    }

    /// Whether the matcher matches the empty value (so it also selects series lacking the
    /// label, and cannot narrow a search through the postings index by itself).
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regexes_are_anchored() {
        let m = Matcher::new(MatchOp::Regex, "job", "api|web").unwrap();
        assert!(m.matches("api") && m.matches("web"));
        assert!(!m.matches("api2") && !m.matches("xweb"));
        let n = Matcher::new(MatchOp::NotRegex, "job", "a.*").unwrap();
        assert!(!n.matches("abc") && n.matches("b"));
    }

    #[test]
    fn empty_value_semantics() {
        assert!(Matcher::equal("foo", "").matches_empty());
        assert!(!Matcher::equal("foo", "x").matches_empty());
        assert!(
            Matcher::new(MatchOp::Regex, "foo", ".*")
                .unwrap()
                .matches_empty()
        );
        assert!(
            Matcher::new(MatchOp::NotEqual, "foo", "x")
                .unwrap()
                .matches_empty()
        );
    }

    #[test]
    fn bad_regexes_are_errors() {
        assert!(Matcher::new(MatchOp::Regex, "a", "(").is_err());
    }
}
