//! LogQL tokens. One pass over the text; every token keeps its byte offset so errors can
//! point at it.

use std::time::Duration;

use super::ParseError;

/// A token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A name: label, function, keyword (`by`, `or`, `json`…).
    Ident(String),
    /// A quoted string, unescaped.
    Str(String),
    /// A number.
    Num(f64),
    /// A duration (`5m`, `1h30m`, `250ms`).
    Dur(Duration),
    /// A byte size (`10KB`, `1MiB`), in bytes.
    Bytes(f64),
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `,`
    Comma,
    /// `|`
    Pipe,
    /// `|=`
    PipeExact,
    /// `|~`
    PipeMatch,
    /// `!=`
    Neq,
    /// `!~`
    Nre,
    /// `=`
    Eq,
    /// `==`
    EqEq,
    /// `=~`
    Re,
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
}

/// Splits `src` into tokens with their byte offsets.
pub fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let at = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            // A comment to the end of the line.
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let two = |t: Tok, i: &mut usize| {
            *i += 2;
            t
        };
        let next = b.get(i + 1).copied();
        let tok = match (c, next) {
            (b'{', _) => one(Tok::LBrace, &mut i),
            (b'}', _) => one(Tok::RBrace, &mut i),
            (b'(', _) => one(Tok::LParen, &mut i),
            (b')', _) => one(Tok::RParen, &mut i),
            (b'[', _) => one(Tok::LBracket, &mut i),
            (b']', _) => one(Tok::RBracket, &mut i),
            (b',', _) => one(Tok::Comma, &mut i),
            (b'|', Some(b'=')) => two(Tok::PipeExact, &mut i),
            (b'|', Some(b'~')) => two(Tok::PipeMatch, &mut i),
            (b'|', _) => one(Tok::Pipe, &mut i),
            (b'!', Some(b'=')) => two(Tok::Neq, &mut i),
            (b'!', Some(b'~')) => two(Tok::Nre, &mut i),
            (b'=', Some(b'=')) => two(Tok::EqEq, &mut i),
            (b'=', Some(b'~')) => two(Tok::Re, &mut i),
            (b'=', _) => one(Tok::Eq, &mut i),
            (b'>', Some(b'=')) => two(Tok::Gte, &mut i),
            (b'>', _) => one(Tok::Gt, &mut i),
            (b'<', Some(b'=')) => two(Tok::Lte, &mut i),
            (b'<', _) => one(Tok::Lt, &mut i),
            (b'+', _) => one(Tok::Add, &mut i),
            (b'-', _) => one(Tok::Sub, &mut i),
            (b'*', _) => one(Tok::Mul, &mut i),
            (b'/', _) => one(Tok::Div, &mut i),
            (b'%', _) => one(Tok::Mod, &mut i),
            (b'^', _) => one(Tok::Pow, &mut i),
            (b'"', _) => {
                let (s, end) = quoted(src, i)?;
                i = end;
                Tok::Str(s)
            }
            (b'`', _) => {
                let end = src[i + 1..]
                    .find('`')
                    .ok_or_else(|| ParseError::at(at, "unterminated raw string"))?;
                let s = src[i + 1..i + 1 + end].to_owned();
                i += end + 2;
                Tok::Str(s)
            }
            (c, _)
                if c.is_ascii_digit()
                    || (c == b'.' && next.is_some_and(|n| n.is_ascii_digit())) =>
            {
                let (t, end) = number(src, i)?;
                i = end;
                t
            }
            (c, _) if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.')
                {
                    i += 1;
                }
                Tok::Ident(src[start..i].to_owned())
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(ParseError::at(at, format!("unexpected character {ch:?}")));
            }
        };
        out.push((tok, at));
    }
    Ok(out)
}

fn one(t: Tok, i: &mut usize) -> Tok {
    *i += 1;
    t
}

/// A double-quoted string starting at `start` (Go escapes) and the index past it.
fn quoted(src: &str, start: usize) -> Result<(String, usize), ParseError> {
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((off, c)) = chars.next() {
        match c {
            '"' => return Ok((out, start + 1 + off + 1)),
            '\\' => match chars.next().map(|(_, c)| c) {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('\'') => out.push('\''),
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).map(|(_, c)| c).collect();
                    let ch = u32::from_str_radix(&hex, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or_else(|| ParseError::at(start + off, "bad \\u escape"))?;
                    out.push(ch);
                }
                // Regex escapes (`\d`, `\.`…) stay as written, as Go's strconv would refuse
                // them but users write them anyway in `|~ "\d+"`.
                Some(c) => {
                    out.push('\\');
                    out.push(c);
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err(ParseError::at(start, "unterminated string"))
}

/// A number, duration or byte size starting at `start`.
fn number(src: &str, start: usize) -> Result<(Tok, usize), ParseError> {
    let b = src.as_bytes();
    let mut i = start;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
        // An exponent sign belongs to the number: 1e-3.
        i += 1;
        if i < b.len()
            && (b[i] == b'-' || b[i] == b'+')
            && matches!(b[i - 1], b'e' | b'E')
            && src[start..i - 1]
                .bytes()
                .all(|c| c.is_ascii_digit() || c == b'.')
        {
            i += 1;
        }
    }
    let text = &src[start..i];
    if let Ok(n) = text.parse::<f64>() {
        return Ok((Tok::Num(n), i));
    }
    if let Some(bytes) = parse_bytes(text) {
        return Ok((Tok::Bytes(bytes), i));
    }
    if let Some(d) = parse_duration(text) {
        return Ok((Tok::Dur(d), i));
    }
    Err(ParseError::at(
        start,
        format!("{text:?} is not a number, duration or byte size"),
    ))
}

/// A Prometheus/Go duration: `1h30m`, `250ms`, `1.5s`, `7d`, `1w`, `2y`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n == 0 {
            return None;
        }
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "w" => 604_800.0,
            "y" => 31_536_000.0,
            _ => return None,
        };
        rest = &rest[u..];
        total += value * unit;
    }
    (total.is_finite() && total < 1e12).then(|| Duration::from_secs_f64(total))
}

/// A byte size: `10B`, `1.5KB`, `20MiB` (decimal and binary units, as Go's humanize).
pub fn parse_bytes(text: &str) -> Option<f64> {
    let n = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    if n == 0 || n == text.len() {
        return None;
    }
    let value: f64 = text[..n].parse().ok()?;
    let mult = match text[n..].to_ascii_lowercase().as_str() {
        "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "pb" => 1e15,
        "kib" | "ki" => 1024.0,
        "mib" | "mi" => 1_048_576.0,
        "gib" | "gi" => 1_073_741_824.0,
        "tib" | "ti" => 1_099_511_627_776.0,
        _ => return None,
    };
    Some(value * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        lex(src).unwrap().into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn operators_strings_and_units() {
        assert_eq!(
            toks(r#"{a=~"x\d"} |= `raw\n` != "q\"" | x >= 1.5s and size < 10KB"#),
            vec![
                Tok::LBrace,
                Tok::Ident("a".into()),
                Tok::Re,
                Tok::Str("x\\d".into()),
                Tok::RBrace,
                Tok::PipeExact,
                Tok::Str("raw\\n".into()),
                Tok::Neq,
                Tok::Str("q\"".into()),
                Tok::Pipe,
                Tok::Ident("x".into()),
                Tok::Gte,
                Tok::Dur(Duration::from_millis(1500)),
                Tok::Ident("and".into()),
                Tok::Ident("size".into()),
                Tok::Lt,
                Tok::Bytes(10_000.0),
            ]
        );
        assert_eq!(
            toks("1e-3 5m 1h30m"),
            vec![
                Tok::Num(0.001),
                Tok::Dur(Duration::from_secs(300)),
                Tok::Dur(Duration::from_secs(5400)),
            ]
        );
    }

    #[test]
    fn errors_point_at_the_offset() {
        assert_eq!(lex(r#"{a="x"#).unwrap_err().offset, 3);
        assert_eq!(lex("{a=1zz}").unwrap_err().offset, 3);
        assert_eq!(lex("{a=\"x\"} ¤").unwrap_err().offset, 8);
    }
}
