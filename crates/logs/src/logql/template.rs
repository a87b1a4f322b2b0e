//! The Go `text/template` subset of `line_format` and `label_format`: `{{.label}}`,
//! `{{ __line__ }}`, `{{ __timestamp__ }}`, string and number literals, function calls and
//! pipes (`{{ .a | ToUpper }}`, `{{ default "-" .user }}`) with Loki's common functions.
//! Control actions (`if`, `range`, `with`) are refused at parse time with a clear error.
//!
//! Written by hand: no Rust crate implements Go templates, and Loki's subset is small.

use std::fmt::Write as _;

use super::ParseError;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Action(Vec<Cmd>),
}

/// One command of a pipeline: a value, or a function applied to arguments (and, after a
/// pipe, to the previous command's result as its last argument).
#[derive(Debug, Clone)]
enum Cmd {
    Value(Term),
    Call(Func, Vec<Term>),
}

#[derive(Debug, Clone)]
enum Term {
    Field(String),
    Str(String),
    Num(String),
    Line,
    Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Upper,
    Lower,
    Title,
    Trim,
    TrimPrefix,
    TrimSuffix,
    Replace,
    Default,
    Trunc,
    Substr,
    Printf,
    AlignLeft,
    AlignRight,
}

impl Func {
    fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "ToUpper" | "upper" => Func::Upper,
            "ToLower" | "lower" => Func::Lower,
            "Title" | "title" => Func::Title,
            "TrimSpace" | "trim" => Func::Trim,
            "TrimPrefix" | "trimPrefix" => Func::TrimPrefix,
            "TrimSuffix" | "trimSuffix" => Func::TrimSuffix,
            "Replace" | "replace" => Func::Replace,
            "default" => Func::Default,
            "trunc" => Func::Trunc,
            "substr" => Func::Substr,
            "printf" => Func::Printf,
            "alignLeft" => Func::AlignLeft,
            "alignRight" => Func::AlignRight,
            _ => return None,
        })
    }
}

/// What a template reads: labels, the line and its time.
pub trait Context {
    /// The value of a label (`""` when absent).
    fn label(&self, name: &str) -> &str;
    /// The current line.
    fn line(&self) -> &str;
    /// The line's time, ns since the epoch.
    fn time_ns(&self) -> i64;
}

impl Template {
    /// Parses `src`.
    pub fn parse(src: &str) -> Result<Template, ParseError> {
        let mut pieces = Vec::new();
        let mut rest = src;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let body_start = open + 2;
            let close = rest[body_start..].find("}}").ok_or_else(|| {
                ParseError::at(offset + open, "template: unclosed action (missing }})")
            })?;
            let body = rest[body_start..body_start + close]
                .trim_start_matches('-')
                .trim_end_matches('-');
            pieces.push(Piece::Action(parse_action(body, offset + body_start)?));
            let consumed = body_start + close + 2;
            offset += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Template { pieces })
    }

    /// Renders the template into `out`.
    pub fn render(&self, ctx: &dyn Context, out: &mut String) {
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Action(cmds) => {
                    let mut value: Option<String> = None;
                    for cmd in cmds {
                        value = Some(run(cmd, value.take(), ctx));
                    }
                    out.push_str(value.as_deref().unwrap_or(""));
                }
            }
        }
    }

    /// The labels the template reads (for query planning).
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().flat_map(|p| match p {
            Piece::Text(_) => Vec::new(),
            Piece::Action(cmds) => cmds
                .iter()
                .flat_map(|c| match c {
                    Cmd::Value(t) => std::slice::from_ref(t),
                    Cmd::Call(_, args) => args.as_slice(),
                })
                .filter_map(|t| match t {
                    Term::Field(f) => Some(f.as_str()),
                    _ => None,
                })
                .collect(),
        })
    }
}

fn parse_action(body: &str, offset: usize) -> Result<Vec<Cmd>, ParseError> {
    let words = split_words(body).map_err(|m| ParseError::at(offset, format!("template: {m}")))?;
    let mut cmds = Vec::new();
    for cmd in words.split(|w| w == "|") {
        let Some((first, args)) = cmd.split_first() else {
            return Err(ParseError::at(offset, "template: empty command"));
        };
        if let Some(f) = Func::from_name(first) {
            let args = args
                .iter()
                .map(|a| term(a, offset))
                .collect::<Result<Vec<_>, _>>()?;
            cmds.push(Cmd::Call(f, args));
        } else if matches!(
            first.as_str(),
            "if" | "else" | "end" | "range" | "with" | "define" | "template" | "block"
        ) {
            return Err(ParseError::at(
                offset,
                format!(
                    "template: the {first:?} action is not supported; use values, pipes and functions"
                ),
            ));
        } else if args.is_empty() {
            cmds.push(Cmd::Value(term(first, offset)?));
        } else {
            return Err(ParseError::at(
                offset,
                format!("template: unknown function {first:?}"),
            ));
        }
    }
    Ok(cmds)
}

/// Splits an action into words: quoted strings keep their spaces; `|` stands alone.
fn split_words(body: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = body.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '|' {
            chars.next();
            out.push("|".to_owned());
        } else if c == '"' || c == '`' {
            chars.next();
            let mut s = String::from('"');
            loop {
                match chars.next() {
                    Some(q) if q == c => break,
                    Some('\\') if c == '"' => match chars.next() {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some(e) => s.push(e),
                        None => return Err("unterminated string".into()),
                    },
                    Some(ch) => s.push(ch),
                    None => return Err("unterminated string".into()),
                }
            }
            out.push(s);
        } else {
            let mut w = String::new();
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() || ch == '|' {
                    break;
                }
                w.push(ch);
                chars.next();
            }
            out.push(w);
        }
    }
    Ok(out)
}

fn term(word: &str, offset: usize) -> Result<Term, ParseError> {
    if let Some(s) = word.strip_prefix('"') {
        return Ok(Term::Str(s.to_owned()));
    }
    if let Some(f) = word.strip_prefix('.') {
        return Ok(Term::Field(f.to_owned()));
    }
    match word {
        "__line__" => return Ok(Term::Line),
        "__timestamp__" => return Ok(Term::Timestamp),
        _ => {}
    }
    if word.parse::<f64>().is_ok() {
        return Ok(Term::Num(word.to_owned()));
    }
    Err(ParseError::at(
        offset,
        format!("template: {word:?} is neither .label, a string, a number nor a function"),
    ))
}

fn value(t: &Term, ctx: &dyn Context) -> String {
    match t {
        Term::Field(f) => ctx.label(f).to_owned(),
        Term::Str(s) | Term::Num(s) => s.clone(),
        Term::Line => ctx.line().to_owned(),
        Term::Timestamp => crate::logql::rfc3339_ns(ctx.time_ns()),
    }
}

fn run(cmd: &Cmd, piped: Option<String>, ctx: &dyn Context) -> String {
    let (f, args) = match cmd {
        Cmd::Value(t) => return value(t, ctx),
        Cmd::Call(f, args) => (*f, args),
    };
    let mut a: Vec<String> = args.iter().map(|t| value(t, ctx)).collect();
    a.extend(piped);
    let arg = |i: usize| a.get(i).map(String::as_str).unwrap_or("");
    let last = a.last().map(String::as_str).unwrap_or("");
    let int = |i: usize| arg(i).parse::<i64>().unwrap_or(0);
    match f {
        Func::Upper => last.to_uppercase(),
        Func::Lower => last.to_lowercase(),
        Func::Title => {
            let mut out = String::with_capacity(last.len());
            let mut start = true;
            for c in last.chars() {
                if start {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                start = c.is_whitespace();
            }
            out
        }
        Func::Trim => last.trim().to_owned(),
        Func::TrimPrefix => last.strip_prefix(arg(0)).unwrap_or(last).to_owned(),
        Func::TrimSuffix => last.strip_suffix(arg(0)).unwrap_or(last).to_owned(),
        Func::Replace => last.replace(arg(0), arg(1)),
        Func::Default => {
            if last.is_empty() || a.len() < 2 {
                arg(0).to_owned()
            } else {
                last.to_owned()
            }
        }
        Func::Trunc => {
            let n = int(0);
            let chars: Vec<char> = last.chars().collect();
            let n = usize::try_from(n.unsigned_abs())
                .unwrap_or(usize::MAX)
                .min(chars.len());
            if int(0) >= 0 {
                chars[..n].iter().collect()
            } else {
                chars[chars.len() - n..].iter().collect()
            }
        }
        Func::Substr => {
            let chars: Vec<char> = last.chars().collect();
            let clamp = |v: i64| usize::try_from(v.max(0)).unwrap_or(0).min(chars.len());
            let (s, e) = (clamp(int(0)), clamp(int(1)));
            if s < e {
                chars[s..e].iter().collect()
            } else {
                String::new()
            }
        }
        Func::AlignLeft | Func::AlignRight => {
            let n = usize::try_from(int(0).max(0)).unwrap_or(0).min(4096);
            let len = last.chars().count();
            if len >= n {
                last.chars().take(n).collect()
            } else if f == Func::AlignLeft {
                format!("{last}{}", " ".repeat(n - len))
            } else {
                format!("{}{last}", " ".repeat(n - len))
            }
        }
        Func::Printf => printf(arg(0), &a[1.min(a.len())..]),
    }
}

/// `printf` with `%s`, `%v`, `%d`, `%f`, `%.Nf`, `%q` and `%%`.
fn printf(fmt: &str, args: &[String]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut prec = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut digits = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
            prec = digits.parse::<usize>().ok().map(|p| p.min(20));
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('s' | 'v') => out.push_str(args.next().map(String::as_str).unwrap_or("")),
            Some('q') => {
                let _ = write!(out, "{:?}", args.next().map(String::as_str).unwrap_or(""));
            }
            Some('d') => {
                let v = args
                    .next()
                    .and_then(|a| a.parse::<f64>().ok())
                    .unwrap_or(0.0);
                let _ = write!(out, "{}", v.trunc() as i64);
            }
            Some('f') => {
                let v = args
                    .next()
                    .and_then(|a| a.parse::<f64>().ok())
                    .unwrap_or(0.0);
                let _ = write!(out, "{:.*}", prec.unwrap_or(6), v);
            }
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ctx;
    impl Context for Ctx {
        fn label(&self, name: &str) -> &str {
            match name {
                "user" => "alice",
                "amount" => "12.5",
                _ => "",
            }
        }
        fn line(&self) -> &str {
            "raw line"
        }
        fn time_ns(&self) -> i64 {
            1_700_000_000_123_000_000
        }
    }

    fn render(src: &str) -> String {
        let mut out = String::new();
        Template::parse(src).unwrap().render(&Ctx, &mut out);
        out
    }

    #[test]
    fn values_pipes_and_functions() {
        assert_eq!(render("{{.user}} paid {{ .amount }}"), "alice paid 12.5");
        assert_eq!(
            render("{{ .user | ToUpper }}|{{ upper .user }}"),
            "ALICE|ALICE"
        );
        assert_eq!(
            render(r#"{{ default "-" .missing }} {{ .user | default "-" }}"#),
            "- alice"
        );
        assert_eq!(
            render(r#"{{ printf "%s=%.1f %d%%" .user .amount .amount }}"#),
            "alice=12.5 12%"
        );
        assert_eq!(
            render("{{ __line__ | trunc 3 }} {{ __timestamp__ }}"),
            "raw 2023-11-14T22:13:20.123Z"
        );
        assert_eq!(render(r#"{{ .user | replace "a" "A" | title }}"#), "Alice");
        assert_eq!(
            render("{{ .user | substr 1 3 }}[{{ alignRight 7 .user }}]"),
            "li[  alice]"
        );
        assert_eq!(render("no actions"), "no actions");
    }

    #[test]
    fn refuses_what_it_does_not_do() {
        assert!(
            Template::parse("{{ if .a }}x{{ end }}")
                .unwrap_err()
                .message
                .contains("not supported")
        );
        assert!(Template::parse("{{ .a").is_err());
        assert!(
            Template::parse("{{ nope .a }}")
                .unwrap_err()
                .message
                .contains("unknown function")
        );
        assert!(Template::parse("{{ }}").is_err());
        assert!(Template::parse(r#"{{ "open }}"#).is_err());
    }
}
