//! Execution: nodes over data, with variables, the step budget and the output cap.

use crate::parse::{Node, Operand, Pipe, Term};
use crate::{Render, Template, Value};

/// Most nested `template` calls (a template calling itself stops here, not on the stack).
const MAX_DEPTH: usize = 64;
/// Most nodes and loop turns one rendering executes.
const MAX_STEPS: usize = 100_000;
/// Most bytes one rendering writes.
const MAX_OUTPUT: usize = 1 << 20;

/// Renders `t` with `data`.
pub(crate) fn run(t: &Template, data: &Value, how: &Render<'_>) -> Result<String, String> {
    let mut vars = vec![("$".to_owned(), data.clone())];
    vars.extend(how.vars.iter().cloned());
    let mut x = Exec {
        t,
        how,
        out: String::new(),
        vars,
        depth: 0,
        steps: 0,
    };
    x.nodes(&t.nodes, data)?;
    Ok(x.out)
}

/// What a list of nodes ended with.
enum Flow {
    Normal,
    Break,
    Continue,
}

struct Exec<'a> {
    t: &'a Template,
    how: &'a Render<'a>,
    out: String,
    vars: Vec<(String, Value)>,
    depth: usize,
    steps: usize,
}

impl Exec<'_> {
    fn step(&mut self) -> Result<(), String> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err("template runs too long".into());
        }
        if self.out.len() > MAX_OUTPUT {
            return Err("template output over 1 MiB".into());
        }
        Ok(())
    }

    fn nodes(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, String> {
        let mark = self.vars.len();
        let flow = self.nodes_in_scope(nodes, dot);
        self.vars.truncate(mark);
        flow
    }

    fn nodes_in_scope(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, String> {
        for n in nodes {
            self.step()?;
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Out(p) => {
                    let v = self.pipe(p, dot)?;
                    if p.vars.is_empty() {
                        self.emit(&v);
                    }
                }
                Node::If(p, body, els) => {
                    let mark = self.vars.len();
                    let v = self.pipe(p, dot)?;
                    let flow = if v.truth() {
                        self.nodes(body, dot)
                    } else {
                        self.nodes(els, dot)
                    };
                    self.vars.truncate(mark);
                    match flow? {
                        Flow::Normal => {}
                        f => return Ok(f),
                    }
                }
                Node::With(p, body, els) => {
                    let mark = self.vars.len();
                    let v = self.pipe(p, dot)?;
                    let flow = if v.truth() {
                        self.nodes(body, &v)
                    } else {
                        self.nodes(els, dot)
                    };
                    self.vars.truncate(mark);
                    match flow? {
                        Flow::Normal => {}
                        f => return Ok(f),
                    }
                }
                Node::Range(p, body, els) => self.range(p, body, els, dot)?,
                Node::Call(name, p) => {
                    let def = self
                        .t
                        .defs
                        .get(name)
                        .or_else(|| self.how.library.and_then(|l| l.defs.get(name)))
                        .ok_or_else(|| format!("no template {name:?}"))?;
                    let arg = match p {
                        Some(p) => self.pipe(p, dot)?,
                        None => Value::Nil,
                    };
                    self.depth += 1;
                    if self.depth > MAX_DEPTH {
                        return Err(format!("{name:?} calls itself too deep"));
                    }
                    // A called template sees only its own `$`.
                    let saved = std::mem::replace(&mut self.vars, vec![("$".into(), arg.clone())]);
                    let r = self.nodes(def, &arg);
                    self.vars = saved;
                    self.depth -= 1;
                    r?;
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn range(&mut self, p: &Pipe, body: &[Node], els: &[Node], dot: &Value) -> Result<(), String> {
        let mark = self.vars.len();
        let mut bare = p.clone();
        let names = std::mem::take(&mut bare.vars);
        let v = self.pipe(&bare, dot)?;
        let items: Vec<(Value, Value)> = match v {
            Value::List(l) => l
                .into_iter()
                .enumerate()
                .map(|(i, v)| (Value::Int(i64::try_from(i).unwrap_or(i64::MAX)), v))
                .collect(),
            Value::Map(m) => m
                .into_iter()
                .map(|(k, v)| (Value::Str(k), Value::Str(v)))
                .collect(),
            Value::Int(n) => (0..n.clamp(0, 100_001))
                .map(|i| (Value::Int(i), Value::Int(i)))
                .collect(),
            Value::Nil => Vec::new(),
            other => {
                return Err(format!("range can't iterate over {}", other.kind()));
            }
        };
        if items.is_empty() {
            self.nodes(els, dot)?;
            self.vars.truncate(mark);
            return Ok(());
        }
        for (k, e) in items {
            self.step()?;
            let inner = self.vars.len();
            match names.as_slice() {
                [one] => self.vars.push((one.clone(), e.clone())),
                [i, v] => {
                    self.vars.push((i.clone(), k));
                    self.vars.push((v.clone(), e.clone()));
                }
                _ => {}
            }
            let flow = self.nodes(body, &e)?;
            self.vars.truncate(inner);
            if matches!(flow, Flow::Break) {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(())
    }

    fn emit(&mut self, v: &Value) {
        match v {
            Value::Html(s) => self.out.push_str(s),
            v if self.how.html => self.out.push_str(&crate::escape_html(&v.text())),
            v => v.print(&mut self.out),
        }
    }

    fn pipe(&mut self, p: &Pipe, dot: &Value) -> Result<Value, String> {
        let mut v: Option<Value> = None;
        for cmd in &p.cmds {
            v = Some(self.command(cmd, dot, v)?);
        }
        let v = v.unwrap_or(Value::Nil);
        match (p.vars.as_slice(), p.declare) {
            ([], _) => {}
            ([name], true) => self.vars.push((name.clone(), v.clone())),
            ([name], false) => {
                let slot = self
                    .vars
                    .iter_mut()
                    .rev()
                    .find(|(n, _)| n == name)
                    .ok_or_else(|| format!("undefined variable {name}"))?;
                slot.1 = v.clone();
            }
            _ => return Err("too many declarations".into()),
        }
        Ok(v)
    }

    fn command(
        &mut self,
        cmd: &[Operand],
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value, String> {
        let first = &cmd[0];
        if let (Term::Func(name), true) = (&first.term, first.fields.is_empty()) {
            let mut args = Vec::with_capacity(cmd.len());
            for o in &cmd[1..] {
                args.push(self.operand(o, dot)?);
            }
            args.extend(piped);
            return self.call(name, args);
        }
        let has_args = cmd.len() > 1 || piped.is_some();
        if !has_args {
            return self.operand(first, dot);
        }
        // A method with arguments: `.CommonLabels.Remove .GroupLabels.Names`.
        let Some((method, path)) = first.fields.split_last() else {
            return Err("can't give arguments to a non-function".into());
        };
        let receiver_op = Operand {
            term: first.term.clone(),
            fields: path.to_vec(),
        };
        let receiver = self.operand(&receiver_op, dot)?;
        let mut args = Vec::with_capacity(cmd.len());
        for o in &cmd[1..] {
            args.push(self.operand(o, dot)?);
        }
        args.extend(piped);
        self.member(&receiver, method, &args)
    }

    fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, String> {
        let r = if crate::funcs::builtin(name) {
            crate::funcs::call(name, args)
        } else {
            self.how.dialect.call(name, args)
        };
        r.map_err(|e| format!("{name}: {e}"))
    }

    /// Field or method `name` of `v`: the dialect's, else the language's.
    fn member(&self, v: &Value, name: &str, args: &[Value]) -> Result<Value, String> {
        match self.how.dialect.member(v, name, args) {
            Some(r) => r,
            None => crate::funcs::member(v, name, args),
        }
    }

    fn operand(&mut self, o: &Operand, dot: &Value) -> Result<Value, String> {
        let mut v = match &o.term {
            Term::Dot => dot.clone(),
            Term::Var(name) => self
                .vars
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| format!("undefined variable {name}"))?,
            Term::Lit(v) => v.clone(),
            Term::Func(name) => self.call(name, Vec::new())?,
            Term::Sub(p) => self.pipe(p, dot)?,
        };
        for f in &o.fields {
            v = self.member(&v, f, &[])?;
        }
        Ok(v)
    }
}
