//! Go's template functions, the text functions Prometheus and Alertmanager share, members
//! of the language's own values, and Go's printing and number formatting.

use std::fmt::Write as _;

use crate::Value;

/// The functions every dialect has.
const BUILTIN: &[&str] = &[
    "and",
    "or",
    "not",
    "len",
    "index",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "html",
    "js",
    "urlquery",
    "toUpper",
    "toLower",
    "title",
    "match",
    "reReplaceAll",
    "safeHtml",
];

/// Whether `name` is one of the functions every dialect has.
pub(crate) fn builtin(name: &str) -> bool {
    BUILTIN.contains(&name)
}

fn want<const N: usize>(args: Vec<Value>) -> Result<[Value; N], String> {
    let n = args.len();
    args.try_into()
        .map_err(|_| format!("wrong number of args: want {N} got {n}"))
}

fn regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| e.to_string())
}

fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Str(x) | Value::Html(x), Value::Str(y) | Value::Html(y)) => Ok(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Ok(x.cmp(y)),
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            let (x, y) = (a.float()?, b.float()?);
            x.partial_cmp(&y)
                .ok_or_else(|| "NaN cannot be compared".to_owned())
        }
        _ => Err(format!(
            "incompatible types for comparison: {} and {}",
            a.kind(),
            b.kind()
        )),
    }
}

fn equal(a: &Value, b: &Value) -> Result<bool, String> {
    match (a, b) {
        (Value::Nil, Value::Nil) => Ok(true),
        (Value::Nil, _) | (_, Value::Nil) => Ok(false),
        _ => compare(a, b).map(std::cmp::Ordering::is_eq),
    }
}

/// Calls a function [`builtin`] names.
pub(crate) fn call(name: &str, args: Vec<Value>) -> Result<Value, String> {
    Ok(match name {
        "and" | "or" => {
            if args.is_empty() {
                return Err("wrong number of args: want at least 1 got 0".into());
            }
            // The first that decides, else the last.
            let and = name == "and";
            let n = args.len();
            args.into_iter()
                .enumerate()
                .find(|(i, a)| a.truth() != and || *i == n - 1)
                .map_or(Value::Nil, |(_, a)| a)
        }
        "not" => {
            let [a] = want(args)?;
            Value::Bool(!a.truth())
        }
        "len" => {
            let [a] = want(args)?;
            let n = match &a {
                Value::Str(s) | Value::Html(s) => s.len(),
                Value::List(l) => l.len(),
                Value::Map(m) => m.len(),
                other => return Err(format!("len of {}", other.kind())),
            };
            Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
        }
        "index" => {
            let mut args = args.into_iter();
            let mut v = args
                .next()
                .ok_or("wrong number of args: want at least 1 got 0")?;
            for k in args {
                v = match (&v, &k) {
                    (Value::List(l), Value::Int(_) | Value::Float(_)) => {
                        let i = k.float()?;
                        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                        // checked: a whole, non-negative number
                        let at = (i.fract() == 0.0 && i >= 0.0).then_some(i as usize);
                        at.and_then(|i| l.get(i))
                            .cloned()
                            .ok_or_else(|| format!("index out of range: {}", k.text()))?
                    }
                    (Value::Map(m), key) => {
                        Value::Str(m.get(&key.text()).cloned().unwrap_or_default())
                    }
                    (Value::Struct(m), key) => m.get(&key.text()).cloned().unwrap_or(Value::Nil),
                    _ => return Err(format!("can't index item of type {}", v.kind())),
                };
            }
            v
        }
        "print" | "println" => {
            let mut s = String::new();
            for (i, a) in args.iter().enumerate() {
                // Sprint spaces operands when neither is a string; Sprintln always.
                let plain = |v: &Value| !matches!(v, Value::Str(_) | Value::Html(_));
                if i > 0 && (name == "println" || (plain(a) && plain(&args[i - 1]))) {
                    s.push(' ');
                }
                a.print(&mut s);
            }
            if name == "println" {
                s.push('\n');
            }
            Value::Str(s)
        }
        "printf" => {
            let mut args = args.into_iter();
            let format = args
                .next()
                .ok_or("wrong number of args: want at least 1 got 0")?;
            Value::Str(sprintf(&format.text(), &args.collect::<Vec<_>>()))
        }
        "eq" => {
            let mut args = args.into_iter();
            let first = args.next().ok_or("missing argument for comparison")?;
            let mut any = false;
            let mut n = 0;
            for b in args {
                n += 1;
                any |= equal(&first, &b)?;
            }
            if n == 0 {
                return Err("missing argument for comparison".into());
            }
            Value::Bool(any)
        }
        "ne" => {
            let [a, b] = want(args)?;
            Value::Bool(!equal(&a, &b)?)
        }
        "lt" | "le" | "gt" | "ge" => {
            let [a, b] = want(args)?;
            let o = compare(&a, &b)?;
            Value::Bool(match name {
                "lt" => o.is_lt(),
                "le" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        "html" => Value::Str(escape_html(&joined(&args))),
        "js" => Value::Str(escape_js(&joined(&args))),
        "urlquery" => {
            Value::Str(url::form_urlencoded::byte_serialize(joined(&args).as_bytes()).collect())
        }
        "toUpper" | "toLower" | "title" | "safeHtml" => {
            let [a] = want(args)?;
            let s = a.text();
            match name {
                "toUpper" => Value::Str(s.to_uppercase()),
                "toLower" => Value::Str(s.to_lowercase()),
                "title" => Value::Str(title(&s)),
                _ => Value::Html(s),
            }
        }
        "match" => {
            let [pattern, text] = want(args)?;
            Value::Bool(regex(&pattern.text())?.is_match(&text.text()))
        }
        "reReplaceAll" => {
            let [pattern, replacement, text] = want(args)?;
            Value::Str(
                regex(&pattern.text())?
                    .replace_all(&text.text(), replacement.text().as_str())
                    .into_owned(),
            )
        }
        _ => return Err(format!("function {name:?} not defined")),
    })
}

fn joined(args: &[Value]) -> String {
    args.iter().map(Value::text).collect()
}

/// Members of the language's own values: struct fields, map keys (a missing one is ""),
/// and a time's `Format`, `Unix`, `UTC`, `Local`, `IsZero` and `String`.
pub(crate) fn member(v: &Value, name: &str, args: &[Value]) -> Result<Value, String> {
    let value = match (v, name, args) {
        (Value::Struct(m), _, []) => m.get(name).cloned(),
        (Value::Map(m), key, []) => Some(Value::Str(m.get(key).cloned().unwrap_or_default())),
        (Value::Time(t), "Format", [layout]) => Some(Value::Str(format_time(*t, &layout.text()))),
        (Value::Time(t), "Unix", []) => Some(Value::Int(
            t.map_or(-62_135_596_800, |ms| ms.div_euclid(1000)),
        )),
        (Value::Time(_), "UTC" | "Local", []) => Some(v.clone()),
        (Value::Time(t), "IsZero", []) => Some(Value::Bool(t.is_none())),
        (Value::Time(_), "String", []) => Some(Value::Str(v.text())),
        (Value::Nil, _, _) => return Err(format!("nil pointer evaluating .{name}")),
        _ => None,
    };
    value.ok_or_else(|| match args {
        [] => format!("can't evaluate field {name} in type {}", v.kind()),
        _ => format!(
            "can't call {name} with {} argument(s) on {}",
            args.len(),
            v.kind()
        ),
    })
}

/// `s` safe in HTML text and attribute values (Go's `html`).
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `js`: safe inside a JavaScript string.
fn escape_js(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// Go's `strings.Title`: each word's first letter upper-case.
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

/// Go's `fmt.Sprint` of `v`.
pub(crate) fn print(v: &Value, out: &mut String) {
    match v {
        Value::Nil => out.push_str("<no value>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&go_v(*f)),
        Value::Str(s) | Value::Html(s) => out.push_str(s),
        Value::List(l) => {
            out.push('[');
            for (i, v) in l.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                print(v, out);
            }
            out.push(']');
        }
        Value::Struct(m) => {
            out.push('{');
            for (i, v) in m.values().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                print(v, out);
            }
            out.push('}');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                let _ = write!(out, "{k}:{v}");
            }
            out.push(']');
        }
        Value::Time(t) => out.push_str(&format_time(*t, "2006-01-02 15:04:05.999999999 -0700 MST")),
    }
}

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
    let prec = prec.clamp(1, 100);
    let e_form = format!("{:.*e}", prec - 1, v);
    let (mantissa, exp) = e_form.split_once('e').unwrap_or((&e_form, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let p = i32::try_from(prec).unwrap_or(100);
    if exp < -4 || exp >= p {
        let m = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = usize::try_from(p - 1 - exp).unwrap_or(0);
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

/// Go's `fmt.Sprintf` for the verbs templates use: `%s %v %d %f %e %g %q %x %X %t %%`,
/// with flags, width and precision. A float given to `%d` is truncated, as Prometheus'
/// templates have always been read.
pub fn sprintf(fmt: &str, args: &[Value]) -> String {
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
        let mut width = 0usize;
        while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
            width = (width * 10 + d as usize).min(1000);
            chars.next();
        }
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = 0usize;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                p = (p * 10 + d as usize).min(100);
                chars.next();
            }
            prec = Some(p);
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
        let num = match arg {
            Value::Int(_) | Value::Float(_) => arg.float().ok(),
            _ => None,
        };
        #[allow(clippy::cast_possible_truncation)] // Go's %d of a whole float
        let body = match (verb, arg, num) {
            ('d', Value::Int(i), _) => i.to_string(),
            ('d', _, Some(n)) => format!("{}", n.trunc() as i64),
            ('f' | 'F', _, Some(n)) => format!("{n:.*}", prec.unwrap_or(6)),
            ('e', _, Some(n)) => {
                let s = format!("{n:.*e}", prec.unwrap_or(6));
                match s.split_once('e') {
                    Some((m, e)) => {
                        let x: i32 = e.parse().unwrap_or(0);
                        format!("{m}e{}{:02}", if x < 0 { '-' } else { '+' }, x.abs())
                    }
                    None => s,
                }
            }
            ('g', _, Some(n)) => match prec {
                Some(p) => go_g(n, p),
                None => go_v(n),
            },
            ('x', Value::Int(i), _) => format!("{i:x}"),
            ('X', Value::Int(i), _) => format!("{i:X}"),
            ('x', Value::Str(s), _) => s.bytes().map(|b| format!("{b:02x}")).collect(),
            ('X', Value::Str(s), _) => s.bytes().map(|b| format!("{b:02X}")).collect(),
            ('t', Value::Bool(b), _) => b.to_string(),
            ('q', _, _) => format!("{:?}", arg.text()),
            ('s' | 'v', _, _) => {
                let s = arg.text();
                match prec {
                    Some(p) if verb == 's' => s.chars().take(p).collect(),
                    _ => s,
                }
            }
            (v, _, _) => format!("%!{v}({}={})", arg.kind(), arg.text()),
        };
        let body = if flags.contains('+') && num.is_some_and(|n| n >= 0.0) && "dfeg".contains(verb)
        {
            format!("+{body}")
        } else {
            body
        };
        let len = body.chars().count();
        if len < width {
            let pad = width - len;
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
    let extra: Vec<String> = args.map(|a| format!("{}={}", a.kind(), a.text())).collect();
    if !extra.is_empty() {
        let _ = write!(out, "%!(EXTRA {})", extra.join(", "));
    }
    out
}

/// A time (ms since the epoch, UTC; `None`: Go's zero time) in a Go layout: `2006`, `06`,
/// `01`, `1`, `Jan`, `January`, `02`, `2`, `_2`, `15`, `03`, `3`, `04`, `4`, `05`, `5`,
/// `PM`, `pm`, `Mon`, `Monday`, `MST`, `-0700`, `-07:00`, `-07`, `Z07:00`, `Z0700`, and
/// fractions `.000`/`.999` (trailing zeros dropped).
pub fn format_time(ms: Option<i64>, layout: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let ts = ms
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .or_else(|| jiff::Timestamp::from_second(-62_135_596_800).ok())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let z = ts.to_zoned_datetime(jiff::tz::TimeZone::UTC);
    let nanos = i64::from(z.subsec_nanosecond());
    let month = MONTHS[usize::try_from(z.month() - 1).unwrap_or(0)];
    let day = DAYS[usize::try_from(z.weekday().to_monday_zero_offset()).unwrap_or(0)];
    let hour12 = match z.hour() % 12 {
        0 => 12,
        h => h,
    };
    let pm = z.hour() >= 12;
    // Longest tokens first, as Go's layout scanner reads them.
    let tokens: [(&str, String); 26] = [
        ("January", month.to_owned()),
        ("Monday", day.to_owned()),
        ("Z07:00", "Z".into()),
        ("-07:00", "+00:00".into()),
        ("Z0700", "Z".into()),
        ("-0700", "+0000".into()),
        ("2006", format!("{:04}", z.year())),
        ("Jan", month[..3].to_owned()),
        ("Mon", day[..3].to_owned()),
        ("MST", "UTC".into()),
        ("-07", "+00".into()),
        ("_2", format!("{:>2}", z.day())),
        ("01", format!("{:02}", z.month())),
        ("02", format!("{:02}", z.day())),
        ("03", format!("{hour12:02}")),
        ("04", format!("{:02}", z.minute())),
        ("05", format!("{:02}", z.second())),
        ("06", format!("{:02}", z.year() % 100)),
        ("15", format!("{:02}", z.hour())),
        ("PM", if pm { "PM" } else { "AM" }.into()),
        ("pm", if pm { "pm" } else { "am" }.into()),
        ("1", z.month().to_string()),
        ("2", z.day().to_string()),
        ("3", hour12.to_string()),
        ("4", z.minute().to_string()),
        ("5", z.second().to_string()),
    ];
    let mut out = String::new();
    let mut rest = layout;
    while !rest.is_empty() {
        let fraction = [".000", ".999"]
            .iter()
            .find(|f| rest.starts_with(**f))
            .map(|f| {
                let digit = f.as_bytes()[1];
                let n = rest[1..].bytes().take_while(|b| *b == digit).count().min(9);
                (digit, n)
            });
        if let Some((digit, n)) = fraction {
            let scaled = nanos / 10_i64.pow(9 - u32::try_from(n).unwrap_or(9));
            let digits = format!("{scaled:0n$}");
            let digits = if digit == b'9' {
                digits.trim_end_matches('0')
            } else {
                &digits
            };
            if !digits.is_empty() {
                out.push('.');
                out.push_str(digits);
            }
            rest = &rest[1 + n..];
            continue;
        }
        if let Some((t, v)) = tokens.iter().find(|(t, _)| rest.starts_with(t)) {
            out.push_str(v);
            rest = &rest[t.len()..];
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}
