//! Lexing and parsing: text and actions into nodes, each action's pipeline into commands.

use std::collections::BTreeMap;

use crate::{Dialect, Value};

/// Most nested blocks.
const MAX_NESTING: usize = 64;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Dot,
    Field(String),
    Var(String),
    Ident(String),
    Lit(Value),
    Pipe,
    Open,
    Close,
    Declare,
    Assign,
    Comma,
}

/// A token and whether a space came before it (a field right after a term extends it).
type Spanned = (Tok, bool);

#[derive(Debug, Clone)]
pub(crate) enum Term {
    Dot,
    Var(String),
    Func(String),
    Lit(Value),
    Sub(Box<Pipe>),
}

#[derive(Debug, Clone)]
pub(crate) struct Operand {
    pub(crate) term: Term,
    pub(crate) fields: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub(crate) vars: Vec<String>,
    pub(crate) declare: bool,
    pub(crate) cmds: Vec<Vec<Operand>>,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Out(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
    Call(String, Option<Pipe>),
    Break,
    Continue,
}

enum Item {
    Text(String),
    Action(Vec<Spanned>),
}

/// Splits a template into text and tokenised actions, trimming where `{{-`/`-}}` say.
fn lex(src: &str) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while !rest.is_empty() {
        let Some(open) = rest.find("{{") else {
            let text = if trim_next { rest.trim_start() } else { rest };
            items.push(Item::Text(text.to_owned()));
            break;
        };
        let mut text = &rest[..open];
        if trim_next {
            text = text.trim_start();
        }
        let mut body = &rest[open + 2..];
        if body.starts_with("- ")
            || body.starts_with("-\t")
            || body.starts_with("-\n")
            || body.starts_with("-\r")
        {
            text = text.trim_end();
            body = &body[1..];
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_owned()));
        }
        let (toks, after, trim) = lex_action(body)?;
        if let Some(toks) = toks {
            items.push(Item::Action(toks));
        }
        trim_next = trim;
        rest = after;
    }
    Ok(items)
}

/// Tokens of one action (`None` for a comment), what follows its `}}`, and whether it
/// ended with `-}}`.
#[allow(clippy::type_complexity)]
fn lex_action(body: &str) -> Result<(Option<Vec<Spanned>>, &str, bool), String> {
    let trimmed = body.trim_start();
    if let Some(comment) = trimmed.strip_prefix("/*") {
        let end = comment.find("*/").ok_or("unclosed comment")?;
        let after = comment[end + 2..].trim_start();
        if let Some(a) = after.strip_prefix("-}}") {
            return Ok((None, a, true));
        }
        let a = after
            .strip_prefix("}}")
            .ok_or("comment ends before closing delimiter")?;
        return Ok((None, a, false));
    }
    let mut toks = Vec::new();
    let b = body.as_bytes();
    let mut i = 0;
    let mut space = true;
    loop {
        let Some(&c) = b.get(i) else {
            return Err("unclosed action".into());
        };
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                if b[i..].starts_with(b" -}}")
                    || b[i..].starts_with(b"\t-}}")
                    || b[i..].starts_with(b"\n-}}")
                    || b[i..].starts_with(b"\r-}}")
                {
                    return Ok((Some(toks), &body[i + 4..], true));
                }
                space = true;
                i += 1;
                continue;
            }
            b'}' if b[i..].starts_with(b"}}") => return Ok((Some(toks), &body[i + 2..], false)),
            b'|' => {
                toks.push((Tok::Pipe, space));
                i += 1;
            }
            b'(' => {
                toks.push((Tok::Open, space));
                i += 1;
            }
            b')' => {
                toks.push((Tok::Close, space));
                i += 1;
            }
            b',' => {
                toks.push((Tok::Comma, space));
                i += 1;
            }
            b':' if b.get(i + 1) == Some(&b'=') => {
                toks.push((Tok::Declare, space));
                i += 2;
            }
            b'=' => {
                toks.push((Tok::Assign, space));
                i += 1;
            }
            b'"' => {
                let (s, len) = lex_string(&body[i..])?;
                toks.push((Tok::Lit(Value::Str(s)), space));
                i += len;
            }
            b'`' => {
                let end = body[i + 1..].find('`').ok_or("unterminated raw string")?;
                toks.push((
                    Tok::Lit(Value::Str(body[i + 1..i + 1 + end].to_owned())),
                    space,
                ));
                i += end + 2;
            }
            b'.' if !b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let n = word(&b[i + 1..]);
                if n == 0 {
                    toks.push((Tok::Dot, space));
                } else {
                    toks.push((Tok::Field(body[i + 1..i + 1 + n].to_owned()), space));
                }
                i += 1 + n;
            }
            b'$' => {
                let n = word(&b[i + 1..]);
                toks.push((Tok::Var(body[i..=i + n].to_owned()), space));
                i += 1 + n;
            }
            b'-' | b'+' | b'.' | b'0'..=b'9' => {
                let n = b[i..]
                    .iter()
                    .enumerate()
                    .take_while(|(j, c)| {
                        c.is_ascii_alphanumeric()
                            || **c == b'.'
                            || **c == b'_'
                            || (*j == 0 && (**c == b'-' || **c == b'+'))
                            || ((**c == b'-' || **c == b'+')
                                && matches!(b[i + j - 1], b'e' | b'E')
                                && !body[i..i + j].starts_with("0x"))
                    })
                    .count();
                let text = &body[i..i + n];
                toks.push((Tok::Lit(number(text)?), space));
                i += n;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let n = word(&b[i..]);
                let w = &body[i..i + n];
                let tok = match w {
                    "true" => Tok::Lit(Value::Bool(true)),
                    "false" => Tok::Lit(Value::Bool(false)),
                    "nil" => Tok::Lit(Value::Nil),
                    _ => Tok::Ident(w.to_owned()),
                };
                toks.push((tok, space));
                i += n;
            }
            _ => {
                let ch = body[i..].chars().next().unwrap_or('?');
                return Err(format!("unexpected {ch:?} in action"));
            }
        }
        space = false;
    }
}

fn word(b: &[u8]) -> usize {
    b.iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count()
}

fn number(text: &str) -> Result<Value, String> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let int = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i64::from_str_radix(&h.replace('_', ""), 16).ok()
    } else {
        digits.replace('_', "").parse::<i64>().ok()
    };
    if let Some(i) = int {
        return Ok(Value::Int(if neg { -i } else { i }));
    }
    text.replace('_', "")
        .parse::<f64>()
        .map(Value::Float)
        .map_err(|_| format!("bad number syntax: {text:?}"))
}

/// A Go interpreted string literal at the start of `s`: its value and length.
fn lex_string(s: &str) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\n' => break,
            '\\' => {
                let (_, e) = chars.next().ok_or("unterminated quoted string")?;
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    'u' | 'x' => {
                        let n = if e == 'u' { 4 } else { 2 };
                        let hex: String =
                            (0..n).filter_map(|_| chars.next().map(|c| c.1)).collect();
                        let c = u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(|| format!("bad escape \\{e}{hex}"))?;
                        out.push(c);
                    }
                    _ => return Err(format!("unknown escape \\{e}")),
                }
            }
            c => out.push(c),
        }
    }
    Err("unterminated quoted string".into())
}

/// How a block ended.
enum End {
    /// `{{end}}`.
    Closed,
    /// `{{else …}}`, with what follows `else`.
    Else(Vec<Spanned>),
    /// The end of the text.
    Eof,
}

struct Parser<'a> {
    items: std::vec::IntoIter<Item>,
    defs: BTreeMap<String, Vec<Node>>,
    dialect: &'a dyn Dialect,
    depth: usize,
}

impl Parser<'_> {
    /// Nodes up to `{{end}}`, `{{else …}}` or the end of the text.
    fn block(&mut self) -> Result<(Vec<Node>, End), String> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err("blocks nested too deep".into());
        }
        let mut nodes = Vec::new();
        let end = loop {
            let Some(item) = self.items.next() else {
                break End::Eof;
            };
            let toks = match item {
                Item::Text(t) => {
                    nodes.push(Node::Text(t));
                    continue;
                }
                Item::Action(t) => t,
            };
            let keyword = match toks.first() {
                Some((Tok::Ident(k), _)) => k.as_str(),
                None => return Err("missing value for command".into()),
                _ => "",
            };
            match keyword {
                "end" => {
                    if toks.len() > 1 {
                        return Err("unexpected tokens after end".into());
                    }
                    break End::Closed;
                }
                "else" => break End::Else(toks[1..].to_vec()),
                "if" | "range" | "with" => {
                    let node = self.control(keyword, &toks[1..])?;
                    nodes.push(node);
                }
                "define" | "block" | "template" if !self.dialect.definitions() => {
                    return Err(format!("{{{{{keyword}}}}} is not supported here"));
                }
                "define" => {
                    if self.depth > 1 {
                        return Err("define inside a block".into());
                    }
                    let name = name_of(&toks[1..], "define")?;
                    let (body, end) = self.block()?;
                    if !matches!(end, End::Closed) {
                        return Err(format!("{{{{define {name:?}}}}} without {{{{end}}}}"));
                    }
                    self.defs.insert(name, body);
                }
                "block" => {
                    let name = name_of(&toks[1..], "block")?;
                    let pipe = self.pipe(toks.get(2..).unwrap_or_default())?;
                    let (body, end) = self.block()?;
                    if !matches!(end, End::Closed) {
                        return Err(format!("{{{{block {name:?}}}}} without {{{{end}}}}"));
                    }
                    self.defs.entry(name.clone()).or_insert(body);
                    nodes.push(Node::Call(name, Some(pipe)));
                }
                "template" => {
                    let name = name_of(&toks[1..], "template")?;
                    let pipe = (toks.len() > 2)
                        .then(|| parse_pipe(&toks[2..]))
                        .transpose()?;
                    nodes.push(Node::Call(name, pipe));
                }
                "break" => nodes.push(Node::Break),
                "continue" => nodes.push(Node::Continue),
                _ => nodes.push(Node::Out(self.pipe(&toks)?)),
            }
        };
        self.depth -= 1;
        Ok((nodes, end))
    }

    /// `if`, `range` or `with` after its keyword, through its `end`.
    fn control(&mut self, keyword: &str, toks: &[Spanned]) -> Result<Node, String> {
        let pipe = self.pipe(toks)?;
        if pipe.cmds.is_empty() {
            return Err(format!("missing value for {keyword}"));
        }
        let (body, end) = self.block()?;
        let els = match end {
            End::Closed => Vec::new(),
            End::Eof => return Err(format!("{{{{{keyword}}}}} without {{{{end}}}}")),
            End::Else(rest) => match rest.first() {
                None => match self.block()? {
                    (els, End::Closed) => els,
                    _ => return Err(format!("{{{{{keyword}}}}} without {{{{end}}}}")),
                },
                Some((Tok::Ident(k), _)) if (k == "if" || k == "with") && keyword != "range" => {
                    vec![self.control(&k.clone(), &rest[1..])?]
                }
                _ => return Err("unexpected tokens after else".into()),
            },
        };
        Ok(match keyword {
            "if" => Node::If(pipe, body, els),
            "range" => Node::Range(pipe, body, els),
            _ => Node::With(pipe, body, els),
        })
    }
}

impl Parser<'_> {
    /// A pipeline whose functions all exist (Go's, or the dialect's).
    fn pipe(&self, toks: &[Spanned]) -> Result<Pipe, String> {
        let pipe = parse_pipe(toks)?;
        check_functions(&pipe, self.dialect)?;
        Ok(pipe)
    }
}

fn check_functions(pipe: &Pipe, dialect: &dyn Dialect) -> Result<(), String> {
    for op in pipe.cmds.iter().flatten() {
        match &op.term {
            Term::Func(name) if !crate::funcs::builtin(name) && !dialect.has(name) => {
                return Err(format!("function {name:?} not defined"));
            }
            Term::Sub(p) => check_functions(p, dialect)?,
            _ => {}
        }
    }
    Ok(())
}

fn name_of(toks: &[Spanned], what: &str) -> Result<String, String> {
    match toks.first() {
        Some((Tok::Lit(Value::Str(s)), _)) => Ok(s.clone()),
        _ => Err(format!("{what}: a quoted template name")),
    }
}

fn parse_pipe(toks: &[Spanned]) -> Result<Pipe, String> {
    let mut vars = Vec::new();
    let mut declare = false;
    let mut rest = toks;
    // `$x :=`, `$x =`, `$i, $e :=`
    let decl_at = toks
        .iter()
        .position(|(t, _)| matches!(t, Tok::Declare | Tok::Assign));
    if let Some(at) = decl_at {
        let names = &toks[..at];
        let ok = !names.is_empty()
            && names.iter().enumerate().all(|(i, (t, _))| {
                if i % 2 == 0 {
                    matches!(t, Tok::Var(_))
                } else {
                    *t == Tok::Comma
                }
            })
            && names.len() % 2 == 1
            && names.len() <= 3;
        if ok {
            vars = names
                .iter()
                .filter_map(|(t, _)| match t {
                    Tok::Var(v) => Some(v.clone()),
                    _ => None,
                })
                .collect();
            declare = toks[at].0 == Tok::Declare;
            rest = &toks[at + 1..];
        }
    }
    let mut cmds = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, (t, _)) in rest.iter().enumerate() {
        match t {
            Tok::Open => depth += 1,
            Tok::Close => depth = depth.checked_sub(1).ok_or("unexpected )")?,
            Tok::Pipe if depth == 0 => {
                cmds.push(parse_cmd(&rest[start..i])?);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unclosed (".into());
    }
    if start < rest.len() || !cmds.is_empty() {
        cmds.push(parse_cmd(&rest[start..])?);
    }
    Ok(Pipe {
        vars,
        declare,
        cmds,
    })
}

fn parse_cmd(toks: &[Spanned]) -> Result<Vec<Operand>, String> {
    if toks.is_empty() {
        return Err("missing command in pipeline".into());
    }
    let mut ops = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let (term, mut j) = match &toks[i].0 {
            Tok::Dot => (Term::Dot, i + 1),
            Tok::Field(_) => (Term::Dot, i),
            Tok::Var(v) => (Term::Var(v.clone()), i + 1),
            Tok::Ident(f) => (Term::Func(f.clone()), i + 1),
            Tok::Lit(v) => (Term::Lit(v.clone()), i + 1),
            Tok::Open => {
                let mut depth = 0;
                let close = toks[i..]
                    .iter()
                    .position(|(t, _)| {
                        match t {
                            Tok::Open => depth += 1,
                            Tok::Close => depth -= 1,
                            _ => {}
                        }
                        depth == 0
                    })
                    .ok_or("unclosed (")?;
                let inner = parse_pipe(&toks[i + 1..i + close])?;
                if inner.cmds.is_empty() {
                    return Err("empty parentheses".into());
                }
                (Term::Sub(Box::new(inner)), i + close + 1)
            }
            other => return Err(format!("unexpected {other:?} in command")),
        };
        let mut fields = Vec::new();
        // A field directly after a term, or a chain `.A.B` starting one.
        while let Some((Tok::Field(f), space)) = toks.get(j) {
            if j == i || !space {
                fields.push(f.clone());
                j += 1;
            } else {
                break;
            }
        }
        if matches!(term, Term::Lit(_) | Term::Func(_)) && !fields.is_empty() {
            return Err(format!("unexpected .{} after a value", fields[0]));
        }
        ops.push(Operand { term, fields });
        i = j;
    }
    Ok(ops)
}

/// Named templates.
pub(crate) type Defs = BTreeMap<String, Vec<Node>>;

/// Parses `text`: its nodes, and the templates it defines.
pub(crate) fn parse(text: &str, dialect: &dyn Dialect) -> Result<(Vec<Node>, Defs), String> {
    let items = lex(text)?;
    let mut p = Parser {
        items: items.into_iter(),
        defs: BTreeMap::new(),
        dialect,
        depth: 0,
    };
    match p.block()? {
        (nodes, End::Eof) => Ok((nodes, p.defs)),
        (_, End::Closed) => Err("unexpected {{end}}".into()),
        (_, End::Else(_)) => Err("unexpected {{else}}".into()),
    }
}
