//! Go's `text/template` language, which Prometheus' alert templates and Alertmanager's
//! notification templates are written in; one parser and executor for both, each a
//! [`Dialect`] adding its functions and the methods of its values.
//!
//! The language: text and `{{ actions }}` with `{{-`/`-}}` trimming and `{{/* comments
//! */}}`; pipelines with `|`, parentheses and variables (`$x := …`, `$x = …`, `$`); field
//! chains (`.A.B`, `$x.A`, `(…).A`) and method calls with arguments
//! (`.CommonLabels.Remove .GroupLabels.Names`); `if`/`else if`/`else`, `range` (with `$i, $e
//! :=`, `else`, `break`, `continue`, and over an integer), `with`/`else with`, and — where
//! the dialect allows them — `define`, `template` and `block`. Go's functions are always
//! there (`and`, `or`, `not`, `len`, `index`, `print`, `printf`, `println`, `eq`, `ne`,
//! `lt`, `le`, `gt`, `ge`, `html`, `js`, `urlquery`), with the text functions Prometheus
//! and Alertmanager both define (`toUpper`, `toLower`, `title`, `match`, `reReplaceAll`,
//! `safeHtml`). A missing map key reads as the empty string (Prometheus'
//! `missingkey=zero`, and Go's zero value of Alertmanager's `map[string]string`); a missing
//! struct field is an error.
//!
//! Numbers print as Go prints them (`1e+06`, `0.5`), `printf` formats as Go's `fmt` does
//! for the verbs templates use, and times (`time.Time`) print and `Format` with Go's
//! layouts. Rendering as HTML escapes every printed value, as Go's `html/template` does in
//! text, except what `safeHtml` marked.
//!
//! Parsing never panics and names the action at fault; an unknown function is a parse
//! error, as in Go. Execution is bounded: a step budget stops runaway loops, output is
//! capped, and templates calling themselves stop at a depth.
//!
//! Written here because no Rust crate implements Go's template language with methods on
//! values and Go's number formatting (the one port, gtmpl, was last released in 2021 and
//! has neither), and both Prometheus' and Alertmanager's templates depend on them.

mod exec;
mod funcs;
mod parse;

use std::collections::BTreeMap;

pub use funcs::{escape_html, format_time, go_g, go_v, sprintf};

use parse::Node;

/// A value templates see.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Go's `nil`.
    Nil,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// Text `safeHtml` marked: printed unescaped in HTML.
    Html(String),
    /// A list.
    List(Vec<Value>),
    /// A struct: its fields by name (a missing one is an error, as in Go).
    Struct(BTreeMap<String, Value>),
    /// A `map[string]string` (labels, annotations): a missing key reads as "".
    Map(BTreeMap<String, String>),
    /// A time, ms since the epoch, in UTC; `None` is Go's zero time.
    Time(Option<i64>),
}

impl Value {
    /// Go's truth: false, 0, nil and empty strings, lists and maps are false.
    pub fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) | Value::Html(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Struct(_) | Value::Time(_) => true,
        }
    }

    /// Its kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) | Value::Html(_) => "string",
            Value::List(_) => "slice",
            Value::Struct(_) => "struct",
            Value::Map(_) => "map",
            Value::Time(_) => "time.Time",
        }
    }

    /// Go's `fmt.Sprint` of it, appended to `out`.
    pub fn print(&self, out: &mut String) {
        funcs::print(self, out);
    }

    /// Go's `fmt.Sprint` of it.
    pub fn text(&self) -> String {
        let mut s = String::new();
        self.print(&mut s);
        s
    }

    /// It as a float, for numeric functions: numbers, and strings that parse as one.
    pub fn float(&self) -> Result<f64, String> {
        match self {
            Value::Float(f) => Ok(*f),
            #[allow(clippy::cast_precision_loss)] // template arithmetic is float64, as in Go
            Value::Int(i) => Ok(*i as f64),
            Value::Str(s) | Value::Html(s) => s
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")),
            other => Err(format!("can't convert {} to a number", other.kind())),
        }
    }

    /// A struct of `fields`.
    pub fn record<'a>(fields: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
        Value::Struct(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }
}

/// What a template language adds to Go's: functions, and fields and methods of values.
pub trait Dialect {
    /// Whether it defines function `name` (asked when a template is parsed).
    fn has(&self, name: &str) -> bool;

    /// Calls function `name`, one [`Dialect::has`] said it defines.
    fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, String>;

    /// Field or method `name` of `v` (`args`: a method call's arguments); `None` leaves it
    /// to the language (struct fields, map keys, a time's methods). Asked first, as Go
    /// looks for a method before a field or key.
    fn member(&self, _v: &Value, _name: &str, _args: &[Value]) -> Option<Result<Value, String>> {
        None
    }

    /// Whether `define`, `template` and `block` may be used.
    fn definitions(&self) -> bool {
        true
    }
}

/// Go's functions only.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

impl Dialect for Plain {
    fn has(&self, _: &str) -> bool {
        false
    }

    fn call(&self, name: &str, _: Vec<Value>) -> Result<Value, String> {
        Err(format!("function {name:?} not defined"))
    }
}

/// A parsed template: its text, and the templates it `define`s.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
    defs: BTreeMap<String, Vec<Node>>,
}

/// Named templates (`define`s of template files) that templates call by name.
#[derive(Debug, Clone, Default)]
pub struct Library {
    defs: BTreeMap<String, Vec<Node>>,
}

impl Library {
    /// Adds the `define`s of a template file (its other text is ignored, as Alertmanager
    /// ignores it); a name defined again replaces the earlier definition.
    pub fn add(&mut self, text: &str, dialect: &dyn Dialect) -> Result<(), String> {
        let t = Template::parse(text, dialect)?;
        self.defs.extend(t.defs);
        Ok(())
    }

    /// Whether `name` is defined.
    pub fn has(&self, name: &str) -> bool {
        self.defs.contains_key(name)
    }

    /// The names defined.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.defs.keys().map(String::as_str)
    }
}

/// How a template is rendered.
pub struct Render<'a> {
    /// The functions and value members.
    pub dialect: &'a dyn Dialect,
    /// Named templates `template` may call besides the template's own.
    pub library: Option<&'a Library>,
    /// Escape printed values for HTML.
    pub html: bool,
    /// Variables set before the first action (`$` is the data).
    pub vars: Vec<(String, Value)>,
}

impl Template {
    /// Parses `text`; the error names the action at fault.
    pub fn parse(text: &str, dialect: &dyn Dialect) -> Result<Template, String> {
        let (nodes, defs) = parse::parse(text, dialect)?;
        Ok(Template { nodes, defs })
    }

    /// Whether it is plain text (rendering gives it back unchanged).
    pub fn is_plain(&self) -> bool {
        self.nodes.iter().all(|n| matches!(n, Node::Text(_)))
    }

    /// Renders it with `data` as `.` and `$`.
    pub fn render(&self, data: &Value, how: &Render<'_>) -> Result<String, String> {
        exec::run(self, data, how)
    }
}

#[cfg(test)]
mod tests;
