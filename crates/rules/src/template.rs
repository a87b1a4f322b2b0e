//! Alert label and annotation templates in the Go `text/template` language, as Prometheus
//! expands them: `{{ $labels.instance }}`, `{{ $value | humanize }}`,
//! `{{ printf "%.2f" $value }}`, `{{ if gt $value 80.0 }}…{{ else }}…{{ end }}`,
//! `{{ range $k, $v := $labels }}…{{ end }}`, `{{ with … }}`, variables, pipelines,
//! parentheses, comments and the `{{-`/`-}}` trim markers.
//!
//! Written here because no Rust crate implements Go's template language with Prometheus'
//! functions: `humanize`, `humanize1024`, `humanizeDuration`, `humanizePercentage`,
//! `humanizeTimestamp`, `printf`, `toUpper`, `toLower`, `title`, `match`, `reReplaceAll`,
//! `stripPort`, `stripDomain`, `parseDuration`, `safeHtml`, `args`, `first`, `label`,
//! `value`, `sortByLabel`, `strvalue`, `query` (through [`Context::query`]) and Go's
//! built-ins `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `and`, `or`, `not`, `len`, `index`,
//! `print`, `println`. A missing map key is the empty string (Prometheus'
//! `missingkey=zero`). `define`/`template`/`block` are refused when the template is
//! parsed, so `dozor check rules` reports them.
//!
//! Parsing ([`Template::parse`]) never panics and names the offending action; execution
//! is bounded (a step budget stops runaway `range` loops).

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

/// The samples of an instant query, as templates see them: labels and value.
pub type QueryRows = Vec<(BTreeMap<String, String>, f64)>;

/// A query function for `{{ query "…" }}`.
pub type QueryFn<'a> = dyn Fn(&str) -> Result<QueryRows, String> + 'a;

/// What a template sees: `.Labels`/`$labels`, `.Value`/`$value`,
/// `.ExternalLabels`/`$externalLabels`, `.ExternalURL`/`$externalURL`.
pub struct Context<'a> {
    /// The alert's (or sample's) labels.
    pub labels: &'a BTreeMap<String, String>,
    /// The sample value.
    pub value: f64,
    /// The server's external labels.
    pub external_labels: &'a BTreeMap<String, String>,
    /// The server's external URL.
    pub external_url: &'a str,
    /// Runs `query`; without one, `query` is an execution error.
    pub query: Option<&'a QueryFn<'a>>,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("labels", &self.labels)
            .field("value", &self.value)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Vec<(Pipe, Vec<Node>)>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
    Range {
        key: Option<String>,
        elem: Option<String>,
        pipe: Pipe,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

#[derive(Debug, Clone)]
struct Pipe {
    decl: Option<(String, bool)>,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
enum Arg {
    Dot(Vec<String>),
    Var(String, Vec<String>),
    Func(String),
    Str(String),
    Num(f64),
    Bool(bool),
    Nil,
    Sub(Pipe, Vec<String>),
}

/// A value inside a template.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Str(String),
    Num(f64),
    Int(i64),
    Bool(bool),
    Map(BTreeMap<String, String>),
    List(Vec<Val>),
    Sample(BTreeMap<String, String>, f64),
    Root,
    Nil,
}

const MAX_STEPS: usize = 100_000;

impl Template {
    /// Parses a template; the error names the action that does not parse.
    pub fn parse(text: &str) -> Result<Template, String> {
        let segs = lex(text)?;
        let mut pos = 0;
        let (nodes, end) = parse_list(&segs, &mut pos)?;
        if let Some(end) = end {
            return Err(format!("unexpected {{{{{end}}}}}"));
        }
        Ok(Template { nodes })
    }

    /// Whether the template is plain text (expanding it returns it unchanged).
    pub fn is_plain(&self) -> bool {
        self.nodes.iter().all(|n| matches!(n, Node::Text(_)))
    }

    /// Expands the template.
    pub fn render(&self, cx: &Context<'_>) -> Result<String, String> {
        let mut ex = Exec {
            cx,
            vars: vec![
                ("$".to_owned(), Val::Root),
                ("$labels".to_owned(), Val::Map(cx.labels.clone())),
                ("$value".to_owned(), Val::Num(cx.value)),
                (
                    "$externalLabels".to_owned(),
                    Val::Map(cx.external_labels.clone()),
                ),
                (
                    "$externalURL".to_owned(),
                    Val::Str(cx.external_url.to_owned()),
                ),
            ],
            steps: 0,
        };
        let mut out = String::new();
        ex.run(&self.nodes, &Val::Root, &mut out)?;
        Ok(out)
    }
}

/// Expands `text` as Prometheus does for alert labels and annotations: an error becomes
/// the text `<error expanding template: …>`.
pub fn expand(text: &str, cx: &Context<'_>) -> String {
    match Template::parse(text).and_then(|t| t.render(cx)) {
        Ok(s) => s,
        Err(e) => format!("<error expanding template: {e}>"),
    }
}

// ---- lexing -------------------------------------------------------------------------

enum Seg {
    Text(String),
    Action(String),
}

fn lex(text: &str) -> Result<Vec<Seg>, String> {
    let mut segs = Vec::new();
    let mut rest = text;
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        let mut before = &rest[..open];
        if trim_next {
            before = before.trim_start();
        }
        let after = &rest[open + 2..];
        let trim_before =
            after.starts_with("- ") || after.starts_with("-\t") || after.starts_with("-\n");
        if trim_before {
            before = before.trim_end();
        }
        if !before.is_empty() {
            segs.push(Seg::Text(before.to_owned()));
        }
        let body_start = if trim_before { 2 } else { 0 };
        let close = find_close(&after[body_start..])
            .ok_or_else(|| format!("unclosed action near {:?}", head(&rest[open..])))?;
        let mut body = &after[body_start..body_start + close];
        trim_next = body.ends_with(" -") || body.ends_with("\t-") || body.ends_with("\n-");
        if trim_next {
            body = &body[..body.len() - 1];
        }
        let body = body.trim();
        if !(body.starts_with("/*") && body.ends_with("*/")) {
            segs.push(Seg::Action(body.to_owned()));
        }
        rest = &after[body_start + close + 2..];
    }
    let tail = if trim_next { rest.trim_start() } else { rest };
    if !tail.is_empty() {
        segs.push(Seg::Text(tail.to_owned()));
    }
    Ok(segs)
}

/// The offset of the `}}` closing an action, skipping quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn head(s: &str) -> &str {
    let end = s.char_indices().nth(30).map_or(s.len(), |(i, _)| i);
    &s[..end]
}

// ---- parsing ------------------------------------------------------------------------

/// Parses nodes until `end`/`else`; returns them and the keyword that stopped the list.
fn parse_list(segs: &[Seg], pos: &mut usize) -> Result<(Vec<Node>, Option<String>), String> {
    let mut nodes = Vec::new();
    while *pos < segs.len() {
        let seg = &segs[*pos];
        *pos += 1;
        let body = match seg {
            Seg::Text(t) => {
                nodes.push(Node::Text(t.clone()));
                continue;
            }
            Seg::Action(a) => a.as_str(),
        };
        let (word, rest) = split_word(body);
        match word {
            "end" if rest.is_empty() => return Ok((nodes, Some("end".into()))),
            "else" => return Ok((nodes, Some(body.to_owned()))),
            "if" => {
                let mut branches = vec![(parse_pipe(rest)?, Vec::new())];
                let otherwise = loop {
                    let (body, end) = parse_list(segs, pos)?;
                    if let Some(last) = branches.last_mut() {
                        last.1 = body;
                    }
                    match end.as_deref() {
                        Some("end") => break Vec::new(),
                        Some(e) => {
                            let (_, cond) = split_word(e);
                            if let Some(cond) = cond.strip_prefix("if ") {
                                branches.push((parse_pipe(cond)?, Vec::new()));
                                continue;
                            }
                            if !cond.is_empty() {
                                return Err(format!("unexpected {{{{{e}}}}}"));
                            }
                            let (body, end) = parse_list(segs, pos)?;
                            expect_end(end, "if")?;
                            break body;
                        }
                        None => return Err("{{if}} without {{end}}".into()),
                    }
                };
                nodes.push(Node::If(branches, otherwise));
            }
            "with" | "range" => {
                let (key, elem, pipe_text) = if word == "range" {
                    range_decl(rest)
                } else {
                    (None, None, rest)
                };
                let pipe = parse_pipe(pipe_text)?;
                let (body, end) = parse_list(segs, pos)?;
                let otherwise = match end.as_deref() {
                    Some("end") => Vec::new(),
                    Some("else") => {
                        let (body, end) = parse_list(segs, pos)?;
                        expect_end(end, word)?;
                        body
                    }
                    Some(e) => return Err(format!("unexpected {{{{{e}}}}} in {{{{{word}}}}}")),
                    None => return Err(format!("{{{{{word}}}}} without {{{{end}}}}")),
                };
                nodes.push(if word == "with" {
                    Node::With(pipe, body, otherwise)
                } else {
                    Node::Range {
                        key,
                        elem,
                        pipe,
                        body,
                        otherwise,
                    }
                });
            }
            "define" | "template" | "block" | "break" | "continue" => {
                return Err(format!(
                    "{{{{{word}}}}} is not supported in alert templates"
                ));
            }
            _ => nodes.push(Node::Action(parse_pipe(body)?)),
        }
    }
    Ok((nodes, None))
}

fn expect_end(end: Option<String>, what: &str) -> Result<(), String> {
    match end.as_deref() {
        Some("end") => Ok(()),
        Some(e) => Err(format!("unexpected {{{{{e}}}}} in {{{{{what}}}}}")),
        None => Err(format!("{{{{{what}}}}} without {{{{end}}}}")),
    }
}

fn split_word(s: &str) -> (&str, &str) {
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

/// `$k, $v := pipe` or `$v := pipe` after `range`.
fn range_decl(s: &str) -> (Option<String>, Option<String>, &str) {
    if let Some((vars, pipe)) = s.split_once(":=") {
        let names: Vec<&str> = vars.split(',').map(str::trim).collect();
        if names.iter().all(|n| n.starts_with('$')) {
            return match names.as_slice() {
                [v] => (None, Some((*v).to_owned()), pipe.trim()),
                [k, v] => (Some((*k).to_owned()), Some((*v).to_owned()), pipe.trim()),
                _ => (None, None, s),
            };
        }
    }
    (None, None, s)
}

fn parse_pipe(s: &str) -> Result<Pipe, String> {
    let toks = tokenize(s)?;
    let mut i = 0;
    let pipe = pipe_tokens(&toks, &mut i, s)?;
    if i < toks.len() {
        return Err(format!("unexpected {:?} in {s:?}", toks[i]));
    }
    Ok(pipe)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Open,
    Close,
    Bar,
    Declare,
    Assign,
    Fields(Vec<String>),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Tok::Open);
            }
            ')' => {
                chars.next();
                out.push(Tok::Close);
                // `(…).Field`
                if s[i + 1..].starts_with('.') {
                    let (fields, len) = field_chain(&s[i + 1..]);
                    out.push(Tok::Fields(fields));
                    for _ in 0..len {
                        chars.next();
                    }
                }
            }
            '|' => {
                chars.next();
                out.push(Tok::Bar);
            }
            ':' if s[i..].starts_with(":=") => {
                chars.next();
                chars.next();
                out.push(Tok::Declare);
            }
            '=' => {
                chars.next();
                out.push(Tok::Assign);
            }
            '"' | '`' => {
                let (lit, len) = string_literal(&s[i..])?;
                out.push(Tok::Str(lit));
                for _ in 0..len {
                    chars.next();
                }
            }
            _ => {
                let len = s[i..]
                    .find(|c: char| c.is_whitespace() || "()|\"`".contains(c))
                    .unwrap_or(s.len() - i);
                let word = &s[i..i + len];
                if let Some(w) = word.strip_suffix(":=").filter(|w| !w.is_empty()) {
                    out.push(Tok::Word(w.to_owned()));
                    out.push(Tok::Declare);
                } else {
                    out.push(Tok::Word(word.to_owned()));
                }
                for _ in word.chars() {
                    chars.next();
                }
            }
        }
    }
    Ok(out)
}

/// `.A.B` at the start of `s`: the names and the length in chars.
fn field_chain(s: &str) -> (Vec<String>, usize) {
    let len = s
        .find(|c: char| c.is_whitespace() || "()|".contains(c))
        .unwrap_or(s.len());
    let fields = s[..len]
        .split('.')
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    (fields, s[..len].chars().count())
}

/// A Go string literal at the start of `s`: its value and its length in chars.
fn string_literal(s: &str) -> Result<(String, usize), String> {
    let mut chars = s.chars();
    let quote = chars.next().ok_or("expected a string")?;
    let mut out = String::new();
    let mut len = 1;
    while let Some(c) = chars.next() {
        len += 1;
        if c == quote {
            return Ok((out, len));
        }
        if c == '\\' && quote == '"' {
            let e = chars.next().ok_or("unterminated string")?;
            len += 1;
            out.push(match e {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                '\\' => '\\',
                '"' => '"',
                '\'' => '\'',
                other => return Err(format!("unknown escape \\{other} in a string")),
            });
        } else {
            out.push(c);
        }
    }
    Err("unterminated string".into())
}

fn pipe_tokens(toks: &[Tok], i: &mut usize, src: &str) -> Result<Pipe, String> {
    let mut decl = None;
    if let (Some(Tok::Word(v)), Some(op @ (Tok::Declare | Tok::Assign))) =
        (toks.get(*i), toks.get(*i + 1))
        && v.starts_with('$')
        && !v.contains('.')
    {
        decl = Some((v.clone(), *op == Tok::Declare));
        *i += 2;
    }
    let mut cmds = Vec::new();
    let mut cmd = Vec::new();
    while let Some(t) = toks.get(*i) {
        match t {
            Tok::Close => break,
            Tok::Bar => {
                if cmd.is_empty() {
                    return Err(format!("missing command before | in {src:?}"));
                }
                cmds.push(std::mem::take(&mut cmd));
                *i += 1;
            }
            Tok::Open => {
                *i += 1;
                let sub = pipe_tokens(toks, i, src)?;
                if toks.get(*i) != Some(&Tok::Close) {
                    return Err(format!("unclosed ( in {src:?}"));
                }
                *i += 1;
                let fields = if let Some(Tok::Fields(f)) = toks.get(*i) {
                    *i += 1;
                    f.clone()
                } else {
                    Vec::new()
                };
                cmd.push(Arg::Sub(sub, fields));
            }
            Tok::Str(s) => {
                cmd.push(Arg::Str(s.clone()));
                *i += 1;
            }
            Tok::Word(w) => {
                cmd.push(word_arg(w)?);
                *i += 1;
            }
            other => return Err(format!("unexpected {other:?} in {src:?}")),
        }
    }
    if cmd.is_empty() {
        return Err(format!("missing value in {{{{{src}}}}}"));
    }
    cmds.push(cmd);
    Ok(Pipe { decl, cmds })
}

fn word_arg(w: &str) -> Result<Arg, String> {
    Ok(if w == "." {
        Arg::Dot(Vec::new())
    } else if let Some(f) = w.strip_prefix('.') {
        Arg::Dot(f.split('.').map(str::to_owned).collect())
    } else if w.starts_with('$') {
        let mut parts = w.split('.');
        let name = parts.next().unwrap_or("$").to_owned();
        Arg::Var(name, parts.map(str::to_owned).collect())
    } else if w == "true" || w == "false" {
        Arg::Bool(w == "true")
    } else if w == "nil" {
        Arg::Nil
    } else if w.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+' || c == '.') {
        Arg::Num(w.parse::<f64>().map_err(|_| format!("bad number {w:?}"))?)
    } else if FUNCS.contains(&w) {
        Arg::Func(w.to_owned())
    } else {
        return Err(format!("function {w:?} not defined"));
    })
}

const FUNCS: &[&str] = &[
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "printf",
    "print",
    "println",
    "toUpper",
    "toLower",
    "title",
    "match",
    "reReplaceAll",
    "stripPort",
    "stripDomain",
    "parseDuration",
    "safeHtml",
    "args",
    "first",
    "label",
    "value",
    "sortByLabel",
    "strvalue",
    "query",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "and",
    "or",
    "not",
    "len",
    "index",
    "html",
    "urlquery",
    "js",
];

// ---- execution ----------------------------------------------------------------------

struct Exec<'a, 'c> {
    cx: &'a Context<'c>,
    vars: Vec<(String, Val)>,
    steps: usize,
}

impl Exec<'_, '_> {
    fn run(&mut self, nodes: &[Node], dot: &Val, out: &mut String) -> Result<(), String> {
        for n in nodes {
            self.steps += 1;
            if self.steps > MAX_STEPS {
                return Err("template runs too long".into());
            }
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipe(p, dot)?;
                    if p.decl.is_none() {
                        print_val(&v, out);
                    }
                }
                Node::If(branches, otherwise) => {
                    let mut done = false;
                    for (cond, body) in branches {
                        let mark = self.vars.len();
                        let v = self.pipe(cond, dot)?;
                        if truthy(&v) {
                            self.run(body, dot, out)?;
                            self.vars.truncate(mark);
                            done = true;
                            break;
                        }
                        self.vars.truncate(mark);
                    }
                    if !done {
                        self.run(otherwise, dot, out)?;
                    }
                }
                Node::With(p, body, otherwise) => {
                    let mark = self.vars.len();
                    let v = self.pipe(p, dot)?;
                    if truthy(&v) {
                        self.run(body, &v, out)?;
                    } else {
                        self.run(otherwise, dot, out)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::Range {
                    key,
                    elem,
                    pipe,
                    body,
                    otherwise,
                } => {
                    let v = self.pipe(pipe, dot)?;
                    let items: Vec<(Val, Val)> = match v {
                        Val::Map(m) => m
                            .into_iter()
                            .map(|(k, v)| (Val::Str(k), Val::Str(v)))
                            .collect(),
                        Val::List(l) => l
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| (Val::Int(i as i64), v))
                            .collect(),
                        Val::Nil => Vec::new(),
                        other => return Err(format!("range can't iterate over {}", show(&other))),
                    };
                    if items.is_empty() {
                        self.run(otherwise, dot, out)?;
                    }
                    for (k, v) in items {
                        let mark = self.vars.len();
                        if let Some(k_name) = key {
                            self.vars.push((k_name.clone(), k));
                        }
                        if let Some(e_name) = elem {
                            self.vars.push((e_name.clone(), v.clone()));
                        }
                        self.run(body, &v, out)?;
                        self.vars.truncate(mark);
                    }
                }
            }
        }
        Ok(())
    }

    fn var(&self, name: &str) -> Result<Val, String> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("undefined variable {name:?}"))
    }

    fn pipe(&mut self, p: &Pipe, dot: &Val) -> Result<Val, String> {
        let mut prev: Option<Val> = None;
        for cmd in &p.cmds {
            prev = Some(self.command(cmd, dot, prev)?);
        }
        let v = prev.unwrap_or(Val::Nil);
        if let Some((name, declare)) = &p.decl {
            if *declare {
                self.vars.push((name.clone(), v.clone()));
            } else if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                slot.1 = v.clone();
            } else {
                return Err(format!("undefined variable {name:?}"));
            }
        }
        Ok(v)
    }

    fn command(&mut self, cmd: &[Arg], dot: &Val, prev: Option<Val>) -> Result<Val, String> {
        let Some(first) = cmd.first() else {
            return Err("empty command".into());
        };
        if let Arg::Func(name) = first {
            let mut args = Vec::with_capacity(cmd.len());
            for a in &cmd[1..] {
                args.push(self.arg(a, dot)?);
            }
            args.extend(prev);
            return self.call(name, args);
        }
        if cmd.len() > 1 || prev.is_some() {
            return Err(format!("can't give arguments to {}", describe(first)));
        }
        self.arg(first, dot)
    }

    fn arg(&mut self, a: &Arg, dot: &Val) -> Result<Val, String> {
        match a {
            Arg::Dot(fields) => self.fields(dot.clone(), fields),
            Arg::Var(name, fields) => {
                let v = self.var(name)?;
                self.fields(v, fields)
            }
            Arg::Func(name) => self.call(name, Vec::new()),
            Arg::Str(s) => Ok(Val::Str(s.clone())),
            Arg::Num(n) => Ok(Val::Num(*n)),
            Arg::Bool(b) => Ok(Val::Bool(*b)),
            Arg::Nil => Ok(Val::Nil),
            Arg::Sub(p, fields) => {
                let mark = self.vars.len();
                let v = self.pipe(p, dot)?;
                self.vars.truncate(mark);
                self.fields(v, fields)
            }
        }
    }

    fn fields(&self, mut v: Val, fields: &[String]) -> Result<Val, String> {
        for f in fields {
            v = match (&v, f.as_str()) {
                (Val::Root, "Labels") => Val::Map(self.cx.labels.clone()),
                (Val::Root, "Value") => Val::Num(self.cx.value),
                (Val::Root, "ExternalLabels") => Val::Map(self.cx.external_labels.clone()),
                (Val::Root, "ExternalURL") => Val::Str(self.cx.external_url.to_owned()),
                (Val::Sample(l, _), "Labels") => Val::Map(l.clone()),
                (Val::Sample(_, x), "Value") => Val::Num(*x),
                (Val::Map(m), key) => Val::Str(m.get(key).cloned().unwrap_or_default()),
                (other, _) => {
                    return Err(format!("can't evaluate field {f} in {}", show(other)));
                }
            };
        }
        Ok(v)
    }

    fn call(&mut self, name: &str, args: Vec<Val>) -> Result<Val, String> {
        let n = args.len();
        let want = |k: usize| {
            if n == k {
                Ok(())
            } else {
                Err(format!("wrong number of args for {name}: want {k} got {n}"))
            }
        };
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Val::Nil);
        Ok(match name {
            "humanize" | "humanize1024" | "humanizeDuration" | "humanizePercentage"
            | "humanizeTimestamp" => {
                want(1)?;
                let v = to_float(&arg(0))?;
                Val::Str(match name {
                    "humanize" => humanize(v),
                    "humanize1024" => humanize_1024(v),
                    "humanizeDuration" => humanize_duration(v),
                    "humanizePercentage" => format!("{}%", go_g(v * 100.0, 4)),
                    _ => humanize_timestamp(v),
                })
            }
            "printf" => {
                let Some(Val::Str(fmt)) = args.first() else {
                    return Err("printf needs a format string".into());
                };
                Val::Str(sprintf(fmt, &args[1..]))
            }
            "print" | "println" => {
                let mut s = String::new();
                for (i, a) in args.iter().enumerate() {
                    let both_plain = |v: &Val| !matches!(v, Val::Str(_));
                    if i > 0 && (name == "println" || (both_plain(a) && both_plain(&args[i - 1]))) {
                        s.push(' ');
                    }
                    print_val(a, &mut s);
                }
                if name == "println" {
                    s.push('\n');
                }
                Val::Str(s)
            }
            "toUpper" | "toLower" | "title" | "stripPort" | "stripDomain" | "safeHtml" | "html"
            | "urlquery" | "js" => {
                want(1)?;
                let s = to_str(&arg(0));
                Val::Str(match name {
                    "toUpper" => s.to_uppercase(),
                    "toLower" => s.to_lowercase(),
                    "title" => title(&s),
                    "stripPort" => strip_port(&s),
                    "stripDomain" => strip_domain(&s),
                    "html" => html_escape(&s),
                    "urlquery" => url_escape(&s),
                    "js" => s
                        .replace('\\', "\\\\")
                        .replace('\'', "\\'")
                        .replace('"', "\\\""),
                    _ => s,
                })
            }
            "match" => {
                want(2)?;
                let re = regex::Regex::new(&to_str(&arg(0))).map_err(|e| e.to_string())?;
                Val::Bool(re.is_match(&to_str(&arg(1))))
            }
            "reReplaceAll" => {
                want(3)?;
                let re = regex::Regex::new(&to_str(&arg(0))).map_err(|e| e.to_string())?;
                let repl = to_str(&arg(1));
                Val::Str(re.replace_all(&to_str(&arg(2)), repl.as_str()).into_owned())
            }
            "parseDuration" => {
                want(1)?;
                let d = promql_parser::util::parse_duration(&to_str(&arg(0)))?;
                Val::Num(d.as_secs_f64())
            }
            "args" => Val::List(args),
            "first" => {
                want(1)?;
                match arg(0) {
                    Val::List(l) => l
                        .into_iter()
                        .next()
                        .ok_or("first() called on vector with no elements")?,
                    other => return Err(format!("first of {}", show(&other))),
                }
            }
            "label" => {
                want(2)?;
                match arg(1) {
                    Val::Sample(l, _) => {
                        Val::Str(l.get(&to_str(&arg(0))).cloned().unwrap_or_default())
                    }
                    other => return Err(format!("label of {}", show(&other))),
                }
            }
            "value" => {
                want(1)?;
                match arg(0) {
                    Val::Sample(_, v) => Val::Num(v),
                    other => return Err(format!("value of {}", show(&other))),
                }
            }
            "strvalue" => {
                want(1)?;
                match arg(0) {
                    Val::Sample(l, _) => Val::Str(l.get("__value__").cloned().unwrap_or_default()),
                    other => return Err(format!("strvalue of {}", show(&other))),
                }
            }
            "sortByLabel" => {
                want(2)?;
                let key = to_str(&arg(0));
                match arg(1) {
                    Val::List(mut l) => {
                        let label = |v: &Val| match v {
                            Val::Sample(m, _) => m.get(&key).cloned().unwrap_or_default(),
                            _ => String::new(),
                        };
                        l.sort_by_key(|v| label(v));
                        Val::List(l)
                    }
                    other => return Err(format!("sortByLabel of {}", show(&other))),
                }
            }
            "query" => {
                want(1)?;
                let q = self.cx.query.ok_or("query is not available here")?;
                let rows = q(&to_str(&arg(0)))?;
                Val::List(rows.into_iter().map(|(l, v)| Val::Sample(l, v)).collect())
            }
            "eq" => {
                if n < 2 {
                    return Err("missing argument for comparison".into());
                }
                let a = arg(0);
                let mut any = false;
                for b in &args[1..] {
                    any |= compare(&a, b)? == std::cmp::Ordering::Equal;
                }
                Val::Bool(any)
            }
            "ne" | "lt" | "le" | "gt" | "ge" => {
                want(2)?;
                let o = compare(&arg(0), &arg(1))?;
                Val::Bool(match name {
                    "ne" => o.is_ne(),
                    "lt" => o.is_lt(),
                    "le" => o.is_le(),
                    "gt" => o.is_gt(),
                    _ => o.is_ge(),
                })
            }
            "and" => {
                if n == 0 {
                    return Err("and needs arguments".into());
                }
                args.iter()
                    .find(|a| !truthy(a))
                    .or(args.last())
                    .cloned()
                    .unwrap_or(Val::Nil)
            }
            "or" => {
                if n == 0 {
                    return Err("or needs arguments".into());
                }
                args.iter()
                    .find(|a| truthy(a))
                    .or(args.last())
                    .cloned()
                    .unwrap_or(Val::Nil)
            }
            "not" => {
                want(1)?;
                Val::Bool(!truthy(&arg(0)))
            }
            "len" => {
                want(1)?;
                Val::Int(match arg(0) {
                    Val::Str(s) => s.len(),
                    Val::Map(m) => m.len(),
                    Val::List(l) => l.len(),
                    other => return Err(format!("len of {}", show(&other))),
                } as i64)
            }
            "index" => {
                let mut v = arg(0);
                for k in args.iter().skip(1) {
                    v = match (&v, k) {
                        (Val::Map(m), k) => {
                            Val::Str(m.get(&to_str(k)).cloned().unwrap_or_default())
                        }
                        (Val::List(l), Val::Int(i)) => l
                            .get(usize::try_from(*i).map_err(|_| "index out of range")?)
                            .cloned()
                            .ok_or("index out of range")?,
                        (Val::List(l), Val::Num(i)) if i.fract() == 0.0 && *i >= 0.0 => {
                            l.get(*i as usize).cloned().ok_or("index out of range")?
                        }
                        (other, _) => return Err(format!("can't index {}", show(other))),
                    };
                }
                v
            }
            other => return Err(format!("function {other:?} not defined")),
        })
    }
}

fn describe(a: &Arg) -> String {
    match a {
        Arg::Dot(f) if f.is_empty() => ".".into(),
        Arg::Dot(f) => format!(".{}", f.join(".")),
        Arg::Var(v, _) => v.clone(),
        Arg::Str(s) => format!("{s:?}"),
        Arg::Num(n) => go_v(*n),
        _ => "a value".into(),
    }
}

fn show(v: &Val) -> &'static str {
    match v {
        Val::Str(_) => "a string",
        Val::Num(_) | Val::Int(_) => "a number",
        Val::Bool(_) => "a bool",
        Val::Map(_) => "a map",
        Val::List(_) => "a list",
        Val::Sample(..) => "a sample",
        Val::Root => "the template data",
        Val::Nil => "nil",
    }
}

fn truthy(v: &Val) -> bool {
    match v {
        Val::Str(s) => !s.is_empty(),
        Val::Num(n) => *n != 0.0,
        Val::Int(n) => *n != 0,
        Val::Bool(b) => *b,
        Val::Map(m) => !m.is_empty(),
        Val::List(l) => !l.is_empty(),
        Val::Sample(..) | Val::Root => true,
        Val::Nil => false,
    }
}

fn compare(a: &Val, b: &Val) -> Result<std::cmp::Ordering, String> {
    let num = |v: &Val| match v {
        Val::Num(n) => Some(*n),
        Val::Int(i) => Some(*i as f64),
        _ => None,
    };
    match (a, b) {
        (Val::Str(x), Val::Str(y)) => Ok(x.cmp(y)),
        (Val::Bool(x), Val::Bool(y)) => Ok(x.cmp(y)),
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => x
                .partial_cmp(&y)
                .ok_or_else(|| "NaN cannot be compared".to_owned()),
            _ => Err(format!(
                "incompatible types for comparison: {} and {}",
                show(a),
                show(b)
            )),
        },
    }
}

fn to_float(v: &Val) -> Result<f64, String> {
    match v {
        Val::Num(n) => Ok(*n),
        Val::Int(i) => Ok(*i as f64),
        Val::Str(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")),
        other => Err(format!("can't convert {} to a number", show(other))),
    }
}

fn to_str(v: &Val) -> String {
    let mut s = String::new();
    print_val(v, &mut s);
    s
}

fn print_val(v: &Val, out: &mut String) {
    match v {
        Val::Str(s) => out.push_str(s),
        Val::Num(n) => out.push_str(&go_v(*n)),
        Val::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Val::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Val::Map(m) => {
            out.push_str("map[");
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                let _ = write!(out, "{k}:{v}");
            }
            out.push(']');
        }
        Val::List(l) => {
            out.push('[');
            for (i, v) in l.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                print_val(v, out);
            }
            out.push(']');
        }
        Val::Sample(l, v) => {
            out.push('{');
            print_val(&Val::Map(l.clone()), out);
            let _ = write!(out, " {}}}", go_v(*v));
        }
        Val::Root => out.push_str("{}"),
        Val::Nil => out.push_str("<no value>"),
    }
}

// ---- Go formatting ------------------------------------------------------------------

/// Go's `%v` of a float64: the shortest digits that read back as `v`, with an exponent
/// when it is below -4 or at least 6 (`123456`, `1.234567e+06`, `1e-05`).
pub fn go_v(v: f64) -> String {
    if !v.is_finite() {
        return go_g(v, 4);
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let e_form = format!("{v:e}");
    let (mantissa, exp) = e_form.split_once('e').unwrap_or((&e_form, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        format!("{v}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// Go's `%.{prec}g`: `prec` significant digits, trailing zeros dropped, an exponent when
/// it is below -4 or at least `prec`.
pub fn go_g(v: f64, prec: usize) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let prec = prec.max(1);
    let e_form = format!("{:.*e}", prec - 1, v);
    let (mantissa, exp) = e_form.split_once('e').unwrap_or((&e_form, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let m = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = usize::try_from(prec as i32 - 1 - exp).unwrap_or(0);
        trim_zeros(&format!("{v:.decimals$}")).to_owned()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%s %v %d %f %e %g %q %x %%`, with
/// flags, width and precision.
fn sprintf(fmt: &str, args: &[Val]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = chars.peek() {
            if "+-# 0".contains(f) {
                flags.push(f);
                chars.next();
            } else {
                break;
            }
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            prec = Some(p.parse().unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        let num = to_float(arg).ok();
        let body = match (verb, num) {
            ('d', Some(n)) => format!("{}", n.trunc() as i64),
            ('f' | 'F', Some(n)) => format!("{n:.*}", prec.unwrap_or(6)),
            ('e', Some(n)) => {
                let s = format!("{n:.*e}", prec.unwrap_or(6));
                match s.split_once('e') {
                    Some((m, e)) => {
                        let x: i32 = e.parse().unwrap_or(0);
                        format!("{m}e{}{:02}", if x < 0 { '-' } else { '+' }, x.abs())
                    }
                    None => s,
                }
            }
            ('g', Some(n)) => match prec {
                Some(p) => go_g(n, p),
                None => go_v(n),
            },
            ('x', Some(n)) if n.fract() == 0.0 => format!("{:x}", n as i64),
            ('q', _) => format!("{:?}", to_str(arg)),
            ('s' | 'v', _) => {
                let s = to_str(arg);
                match prec {
                    Some(p) if verb == 's' => s.chars().take(p).collect(),
                    _ => s,
                }
            }
            (v, _) => format!("%!{v}({})", to_str(arg)),
        };
        let body = if flags.contains('+') && num.is_some_and(|n| n >= 0.0) && "dfeg".contains(verb)
        {
            format!("+{body}")
        } else {
            body
        };
        let w: usize = width.parse().unwrap_or(0);
        let len = body.chars().count();
        if len < w {
            let pad = w - len;
            if flags.contains('-') {
                out.push_str(&body);
                out.extend(std::iter::repeat_n(' ', pad));
            } else if flags.contains('0') && num.is_some() {
                let (sign, digits) = match body.strip_prefix(['-', '+']) {
                    Some(d) => (&body[..1], d),
                    None => ("", body.as_str()),
                };
                out.push_str(sign);
                out.extend(std::iter::repeat_n('0', pad));
                out.push_str(digits);
            } else {
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(&body);
            }
        } else {
            out.push_str(&body);
        }
    }
    if args.next().is_some() {
        out.push_str("%!(EXTRA)");
    }
    out
}

fn humanize(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return go_g(v, 4);
    }
    let mut v = v;
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", go_g(v, 4))
}

fn humanize_1024(v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return go_g(v, 4);
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", go_g(v, 4))
}

fn humanize_duration(v: f64) -> String {
    if !v.is_finite() {
        return go_g(v, 4);
    }
    if v == 0.0 {
        return format!("{}s", go_g(v, 4));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        let v = v.abs();
        let d = v as i64;
        let (s, m, h, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86_400);
        return if days != 0 {
            format!("{sign}{days}d {h}h {m}m {s}s")
        } else if h != 0 {
            format!("{sign}{h}h {m}m {s}s")
        } else if m != 0 {
            format!("{sign}{m}m {s}s")
        } else {
            format!("{sign}{}s", go_g(v, 4))
        };
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", go_g(v, 4))
}

/// Go's `time.Time.String()` in UTC of a Unix time in seconds, at Prometheus' millisecond
/// precision: `2006-01-02 15:04:05.999 +0000 UTC`.
fn humanize_timestamp(v: f64) -> String {
    if !v.is_finite() {
        return go_g(v, 4);
    }
    let ms = ((v * 1e9) as i64).div_euclid(1_000_000);
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let rem = secs.rem_euclid(86_400);
    let (y, mo, d) = dozor_model::time::civil_from_days(secs.div_euclid(86_400));
    let mut s = format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    );
    if frac > 0 {
        s.push('.');
        s.push_str(format!("{frac:03}").trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut at_start = true;
    for c in s.chars() {
        if at_start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        at_start = !(c.is_alphanumeric() || c == '_' || c == '\'');
    }
    out
}

fn strip_port(s: &str) -> String {
    if let Some(rest) = s.strip_prefix('[')
        && let Some((host, _)) = rest.split_once(']')
    {
        return host.to_owned();
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host.to_owned()
        }
        _ => s.to_owned(),
    }
}

fn strip_domain(s: &str) -> String {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (s, None),
    };
    if host.parse::<std::net::IpAddr>().is_ok() {
        return s.to_owned();
    }
    let short = host.split('.').next().unwrap_or(host);
    match port {
        Some(p) => format!("{short}:{p}"),
        None => short.to_owned(),
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn url_escape(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &str, labels: &[(&str, &str)], value: f64) -> String {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let ext = BTreeMap::from([("cluster".to_owned(), "eu1".to_owned())]);
        let cx = Context {
            labels: &labels,
            value,
            external_labels: &ext,
            external_url: "http://dozor:9470",
            query: None,
        };
        Template::parse(t)
            .unwrap_or_else(|e| panic!("{t}: {e}"))
            .render(&cx)
            .unwrap_or_else(|e| panic!("{t}: {e}"))
    }

    #[test]
    fn labels_values_and_variables() {
        let l = [("instance", "db1:9100"), ("job", "node")];
        assert_eq!(
            render("{{ $labels.instance }} is down", &l, 1.0),
            "db1:9100 is down"
        );
        assert_eq!(
            render("{{ .Labels.job }}/{{ .Value }}", &l, 0.5),
            "node/0.5"
        );
        assert_eq!(render("{{ $labels.missing }}|", &l, 0.0), "|");
        assert_eq!(render("{{ $value }}", &l, 1e6), "1e+06");
        assert_eq!(render("{{ $value }}", &l, 123456.0), "123456");
        assert_eq!(render("{{ $value }}", &l, 1234567.0), "1.234567e+06");
        assert_eq!(render("{{ $value }}", &l, 0.00001), "1e-05");
        assert_eq!(
            render("{{ $externalLabels.cluster }} {{ $externalURL }}", &l, 0.0),
            "eu1 http://dozor:9470"
        );
        assert_eq!(render("{{ $x := 5.0 }}{{ $x }}", &l, 0.0), "5");
        assert_eq!(
            render("{{ $labels }}", &l, 0.0),
            "map[instance:db1:9100 job:node]"
        );
    }

    #[test]
    fn humanize_functions_match_prometheus() {
        let h = |t: &str, v: f64| render(t, &[], v);
        assert_eq!(h("{{ humanize $value }}", 1234567.0), "1.235M");
        assert_eq!(h("{{ $value | humanize }}", 0.00123), "1.23m");
        assert_eq!(h("{{ humanize $value }}", 0.0), "0");
        assert_eq!(h("{{ humanize $value }}", 12.0), "12");
        assert_eq!(h("{{ humanize1024 $value }}", 1048576.0), "1Mi");
        assert_eq!(h("{{ humanize1024 $value }}", 1536.0), "1.5ki");
        assert_eq!(h("{{ humanizeDuration $value }}", 90061.0), "1d 1h 1m 1s");
        assert_eq!(h("{{ humanizeDuration $value }}", 3.5), "3.5s");
        assert_eq!(h("{{ humanizeDuration $value }}", 0.25), "250ms");
        assert_eq!(h("{{ humanizePercentage $value }}", 0.1234), "12.34%");
        assert_eq!(
            h("{{ humanizeTimestamp $value }}", 1_435_065_584.128),
            "2015-06-23 13:19:44.128 +0000 UTC"
        );
        assert_eq!(h("{{ humanize \"2048\" }}", 0.0), "2.048k");
    }

    #[test]
    fn printf_and_string_functions() {
        let l = [("instance", "web-1.example.com:8080")];
        assert_eq!(render("{{ printf \"%.2f\" $value }}", &l, 1.23456), "1.23");
        assert_eq!(render("{{ printf \"%d%%\" $value }}", &l, 42.9), "42%");
        assert_eq!(render("{{ printf \"%s=%v\" \"a\" 1.5 }}", &l, 0.0), "a=1.5");
        assert_eq!(
            render("{{ printf \"%5.1f|%-4s|\" 2.25 \"x\" }}", &l, 0.0),
            "  2.2|x   |"
        );
        assert_eq!(
            render("{{ $labels.instance | stripPort }}", &l, 0.0),
            "web-1.example.com"
        );
        assert_eq!(
            render("{{ $labels.instance | stripDomain }}", &l, 0.0),
            "web-1:8080"
        );
        assert_eq!(
            render("{{ toUpper \"ok\" }} {{ title \"hello world\" }}", &l, 0.0),
            "OK Hello World"
        );
        assert_eq!(
            render(
                "{{ reReplaceAll \"-([0-9])\" \"_$1\" $labels.instance }}",
                &l,
                0.0
            ),
            "web_1.example.com:8080"
        );
        assert_eq!(
            render(
                "{{ if match \"^web\" $labels.instance }}web{{ end }}",
                &l,
                0.0
            ),
            "web"
        );
        assert_eq!(render("{{ parseDuration \"1m30s\" }}", &l, 0.0), "90");
    }

    #[test]
    fn control_flow_and_trimming() {
        let l = [("severity", "critical"), ("a", "1")];
        let t = "{{ if gt $value 80.0 }}high{{ else if gt $value 50.0 }}mid{{ else }}low{{ end }}";
        assert_eq!(render(t, &l, 90.0), "high");
        assert_eq!(render(t, &l, 60.0), "mid");
        assert_eq!(render(t, &l, 10.0), "low");
        assert_eq!(
            render(
                "{{ if eq $labels.severity \"warning\" \"critical\" }}page{{ end }}",
                &l,
                0.0
            ),
            "page"
        );
        assert_eq!(
            render(
                "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
                &l,
                0.0
            ),
            "a=1;severity=critical;"
        );
        assert_eq!(
            render("{{ with $labels.severity }}[{{ . }}]{{ end }}", &l, 0.0),
            "[critical]"
        );
        assert_eq!(
            render("{{ with $labels.none }}x{{ else }}none{{ end }}", &l, 0.0),
            "none"
        );
        assert_eq!(render("a  {{- /* note */ -}}  b", &l, 0.0), "ab");
        assert_eq!(render("x {{- $value -}} y", &l, 2.0), "x2y");
        assert_eq!(
            render(
                "{{ and 1.0 \"\" }}|{{ or \"\" \"z\" }}|{{ not false }}|{{ len $labels }}",
                &l,
                0.0
            ),
            "|z|true|2"
        );
        assert_eq!(render("{{ index $labels \"a\" }}", &l, 0.0), "1");
        assert_eq!(
            render("{{ (printf \"%s\" \"q\") | toUpper }}", &l, 0.0),
            "Q"
        );
    }

    #[test]
    fn bad_templates_are_parse_errors_naming_the_problem() {
        for (t, want) in [
            ("{{ $labels.x", "unclosed action"),
            ("{{ if true }}x", "without {{end}}"),
            ("{{ end }}", "unexpected"),
            ("{{ nosuch 1 }}", "not defined"),
            ("{{ define \"x\" }}{{ end }}", "not supported"),
            ("{{ \"abc }}", "unclosed action"),
            ("{{ ( 1 }}", "unclosed ("),
            ("{{ | x }}", "missing command"),
        ] {
            let e = Template::parse(t).expect_err(t);
            assert!(e.contains(want), "{t}: {e}");
        }
    }

    #[test]
    fn execution_errors_are_reported_in_the_text() {
        let cx = Context {
            labels: &BTreeMap::new(),
            value: 1.0,
            external_labels: &BTreeMap::new(),
            external_url: "",
            query: None,
        };
        assert!(
            expand("{{ $nope }}", &cx).starts_with("<error expanding template: undefined variable")
        );
        assert!(expand("{{ query \"up\" }}", &cx).contains("not available"));
        assert!(expand("{{ humanize \"abc\" }}", &cx).contains("invalid syntax"));
        assert!(expand("{{ range $i := 5.0 }}{{ end }}", &cx).contains("can't iterate"));
    }

    #[test]
    fn query_results_are_samples() {
        let rows = |q: &str| -> Result<QueryRows, String> {
            assert_eq!(q, "up");
            Ok(vec![
                (BTreeMap::from([("job".to_owned(), "b".to_owned())]), 0.0),
                (BTreeMap::from([("job".to_owned(), "a".to_owned())]), 1.0),
            ])
        };
        let cx = Context {
            labels: &BTreeMap::new(),
            value: 1.0,
            external_labels: &BTreeMap::new(),
            external_url: "",
            query: Some(&rows),
        };
        let t = Template::parse("{{ with query \"up\" }}{{ . | first | value | humanize }}{{ end }}|{{ range query \"up\" | sortByLabel \"job\" }}{{ .Labels.job }}{{ end }}").unwrap();
        assert_eq!(t.render(&cx).unwrap(), "0|ab");
    }
}
