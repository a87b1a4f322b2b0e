//! Alertmanager's matcher syntax, as `route.matchers`, inhibition rules, silences and
//! `amtool` write it: `name="value"`, `name!="value"`, `name=~"regex"`, `name!~"regex"`;
//! values may be double-quoted (with `\"`, `\\` and `\n` escapes) or bare; one string may hold
//! several comma-separated matchers, optionally in braces (`{a="b", c=~"d.*"}`).
//!
//! Hand-written: the grammar is a dozen lines, and the PromQL parser we carry rejects bare
//! values and label names Alertmanager allows (any UTF-8 in quotes).

use dozor_model::{MatchOp, Matcher};

/// Parses one matcher string into its matchers.
pub fn parse_matchers(text: &str) -> Result<Vec<Matcher>, String> {
    let mut s = text.trim();
    if let Some(inner) = s.strip_prefix('{') {
        s = inner
            .strip_suffix('}')
            .ok_or_else(|| format!("{text:?}: a '{{' without its '}}'"))?
            .trim();
    }
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (m, after) = one(rest).map_err(|e| format!("{text:?}: {e}"))?;
        out.push(m);
        rest = after.trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
        } else if !rest.is_empty() {
            return Err(format!("{text:?}: expected ',' before {rest:?}"));
        }
    }
    if out.is_empty() {
        return Err(format!("{text:?}: no matcher"));
    }
    Ok(out)
}

fn one(s: &str) -> Result<(Matcher, &str), String> {
    let name_end = s
        .find(|c: char| matches!(c, '=' | '!' | '~') || c.is_whitespace())
        .ok_or("a matcher needs an operator (=, !=, =~, !~)")?;
    let name = s[..name_end].trim_matches('"');
    if name.is_empty() {
        return Err("a matcher needs a label name".into());
    }
    let after = s[name_end..].trim_start();
    let (op, after) = if let Some(a) = after.strip_prefix("=~") {
        (MatchOp::Regex, a)
    } else if let Some(a) = after.strip_prefix("!~") {
        (MatchOp::NotRegex, a)
    } else if let Some(a) = after.strip_prefix("!=") {
        (MatchOp::NotEqual, a)
    } else if let Some(a) = after.strip_prefix('=') {
        (MatchOp::Equal, a)
    } else {
        return Err(format!("unknown operator in {s:?}"));
    };
    let after = after.trim_start();
    let (value, rest) = match after.strip_prefix('"') {
        Some(quoted) => {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, e)) => value.push(e),
                        None => return Err("a value ends in '\\'".into()),
                    },
                    c => value.push(c),
                }
            }
            let end = end.ok_or("an unterminated quoted value")?;
            (value, &quoted[end..])
        }
        None => {
            let end = after.find([',', '}']).unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        }
    };
    let m = Matcher::new(op, name, value).map_err(|e| e.to_string())?;
    Ok((m, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(text: &str) -> Vec<String> {
        parse_matchers(text)
            .unwrap()
            .iter()
            .map(|m| format!("{} {:?} {}", m.name, m.op, m.value))
            .collect()
    }

    #[test]
    fn alertmanager_forms_parse() {
        assert_eq!(show(r#"severity="critical""#), ["severity Equal critical"]);
        assert_eq!(show("severity = critical"), ["severity Equal critical"]);
        assert_eq!(
            show(r#"{service=~"shop|crm", env!="dev", team!~ "ops.*"}"#),
            [
                "service Regex shop|crm",
                "env NotEqual dev",
                "team NotRegex ops.*"
            ]
        );
        assert_eq!(show(r#"msg="say \"hi\"\n""#), ["msg Equal say \"hi\"\n"]);
        assert_eq!(show("a=,b=c"), ["a Equal ", "b Equal c"]);
    }

    #[test]
    fn bad_matchers_say_why() {
        for (text, want) in [
            ("severity", "operator"),
            ("=x", "label name"),
            (r#"a="b"#, "unterminated"),
            (r#"a=~"(""#, "regex"),
            (r#"{a="b""#, "'}'"),
            (r#"a="b" c="d""#, "expected ','"),
            ("", "no matcher"),
            ("a>b", "operator"),
        ] {
            let e = parse_matchers(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
