//! logfmt (`level=info msg="order placed" user=42`): the key/value line format of Go's
//! `go-logfmt`, Heroku and most Go services, read by the ingest pipeline and by LogQL's
//! `| logfmt`.
//!
//! Written here rather than taken from a crate: the crates.io parsers are unmaintained or
//! allocate a map per line, and the grammar is twenty lines. Rules (as `go-logfmt`): pairs
//! are separated by spaces; a key runs to `=` or a space; a value is bare (to the next space)
//! or double-quoted with `\"`, `\\`, `\n`, `\t`, `\r` and `\uXXXX` escapes; a key without
//! `=` has the empty value. Parsing never fails: an unterminated quote takes the rest of the
//! line, as `go-logfmt` does in its lenient mode.

/// The key/value pairs of `line`, in order (keys may repeat; callers keep the last).
///
/// ```
/// let pairs = dozor_model::logfmt::parse(r#"level=error msg="card \"declined\"" retry"#);
/// assert_eq!(pairs, vec![
///     ("level".to_owned(), "error".to_owned()),
///     ("msg".to_owned(), "card \"declined\"".to_owned()),
///     ("retry".to_owned(), String::new()),
/// ]);
/// ```
pub fn parse(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let key_start = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() && b[i] != b'"' {
            i += 1;
        }
        let key = &line[key_start..i];
        if i < b.len() && b[i] == b'"' {
            // A quote where a key should be: not logfmt; skip the quoted run and what sticks
            // to it.
            i = skip_quoted(b, i + 1);
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            continue;
        }
        if key.is_empty() {
            i += 1; // a stray '='
            continue;
        }
        if i >= b.len() || b[i] != b'=' {
            out.push((key.to_owned(), String::new()));
            continue;
        }
        i += 1;
        if i < b.len() && b[i] == b'"' {
            let (value, next) = unquote(line, i + 1);
            out.push((key.to_owned(), value));
            i = next;
        } else {
            let start = i;
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            out.push((key.to_owned(), line[start..i].to_owned()));
        }
    }
    out
}

/// Index past the closing quote of a quoted run starting at `i`.
fn skip_quoted(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// The unescaped value of the quoted run starting at `start` (after the quote) and the index
/// past its closing quote.
fn unquote(line: &str, start: usize) -> (String, usize) {
    let b = line.as_bytes();
    let mut out = String::new();
    let mut i = start;
    let mut plain = start; // start of the run not yet copied
    while i < b.len() {
        match b[i] {
            b'"' => {
                out.push_str(&line[plain..i]);
                return (out, i + 1);
            }
            b'\\' => {
                out.push_str(&line[plain..i]);
                let esc = b.get(i + 1).copied();
                i += 2;
                match esc {
                    Some(b'n') => out.push('\n'),
                    Some(b't') => out.push('\t'),
                    Some(b'r') => out.push('\r'),
                    Some(b'u') => {
                        let code = line
                            .get(i..i + 4)
                            .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                            .and_then(|h| u32::from_str_radix(h, 16).ok())
                            .and_then(char::from_u32);
                        match code {
                            Some(c) => {
                                out.push(c);
                                i += 4;
                            }
                            None => out.push_str("\\u"),
                        }
                    }
                    // Any other escaped character stands for itself (`\"`, `\\`); a
                    // multi-byte one is copied with the plain run.
                    Some(c) if c.is_ascii() => out.push(c as char),
                    Some(_) => i -= 1,
                    None => {
                        out.push('\\');
                        i = b.len();
                    }
                }
                plain = i.min(b.len());
            }
            _ => i += 1,
        }
    }
    out.push_str(&line[plain.min(b.len())..]);
    (out, b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(line: &str) -> Vec<(&'static str, String)> {
        parse(line)
            .into_iter()
            .map(|(k, v)| (&*Box::leak(k.into_boxed_str()), v))
            .collect()
    }

    #[test]
    fn bare_quoted_and_flags() {
        assert_eq!(
            pairs(r#"ts=2026-12-01T10:00:00Z level=warn msg="slow \"db\"\tquery" took=1.5s debug"#),
            vec![
                ("ts", "2026-12-01T10:00:00Z".to_owned()),
                ("level", "warn".to_owned()),
                ("msg", "slow \"db\"\tquery".to_owned()),
                ("took", "1.5s".to_owned()),
                ("debug", String::new()),
            ]
        );
    }

    #[test]
    fn odd_input_never_fails() {
        assert_eq!(pairs(""), vec![]);
        assert_eq!(pairs("  =  = "), vec![]);
        assert_eq!(
            pairs(r#"a="unterminated"#),
            vec![("a", "unterminated".to_owned())]
        );
        assert_eq!(pairs(r#""quoted key"=1 b=2"#), vec![("b", "2".to_owned())]);
        assert_eq!(
            pairs("k=\"\\u0436\\uzz\" x=\\"),
            vec![("k", "ж\\uzz".to_owned()), ("x", "\\".to_owned())]
        );
        assert_eq!(pairs("k=\"a\\жb\""), vec![("k", "aжb".to_owned())]);
        assert_eq!(pairs("k=\"tail\\"), vec![("k", "tail\\".to_owned())]);
        assert_eq!(
            pairs("a= b=1"),
            vec![("a", String::new()), ("b", "1".to_owned())]
        );
        assert_eq!(
            pairs("ключ=значение"),
            vec![("ключ", "значение".to_owned())]
        );
    }
}
