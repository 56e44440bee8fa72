//! The compiled form: a syntax tree resolved against one context (paths
//! to fields, names to functions, enums to numbers, regexes compiled), and
//! how it is evaluated.

use super::context::{fields_of, ContextKind, EvalCtx, Field, KeyVal, ENUMS};
use super::funcs::{self, Call};
use super::parse::{self, Arg, Ast, CmpOp, MathOp, Node};
use super::value::Value;
use super::{eval_err, EvalError, Limits, OttlError};
use crate::config::suggest::did_you_mean;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use std::borrow::Cow;

/// A path resolved to a field, with its keys.
#[derive(Debug)]
pub struct Path {
    pub field: Field,
    pub keys: Vec<Expr>,
}

impl Path {
    /// The key of the usual `attributes["k"]`: one literal string key on an
    /// attribute map (not a log body), read and written without building
    /// [`Value`]s for the map or the key.
    pub fn attribute_key(&self) -> Option<&str> {
        match &self.keys[..] {
            [Expr::Const(Value::Str(k))] if self.field != Field::LogBody => Some(k),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub enum Expr {
    Const(Value<'static>),
    Path(Path),
    Call(Box<Call>),
    List(Vec<Expr>),
    Map(Vec<(String, Expr)>),
    Math(MathOp, Box<Expr>, Box<Expr>),
}

#[derive(Debug)]
pub enum Cond {
    Const(bool),
    Cmp(CmpOp, Expr, Expr),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    /// A converter that must return a bool.
    Call(Expr),
}

/// Compiles one text in one context.
pub struct Compiler<'t> {
    pub text: &'t str,
    pub ctx: ContextKind,
    pub limits: Limits,
    /// The flat form: every path names its context.
    pub require_prefix: bool,
}

const CONTEXT_NAMES: &[&str] =
    &["resource", "scope", "instrumentation_scope", "span", "spanevent", "metric", "datapoint", "log"];

impl Compiler<'_> {
    pub fn err(&self, pos: usize, msg: impl Into<String>, hint: Option<&str>) -> OttlError {
        OttlError::at(self.text, pos, msg, hint)
    }

    pub fn value(&self, n: &Node) -> Result<Expr, OttlError> {
        Ok(match &n.ast {
            Ast::Nil => Expr::Const(Value::Nil),
            Ast::Bool(b) => Expr::Const(Value::Bool(*b)),
            Ast::Int(i) => Expr::Const(Value::Int(*i)),
            Ast::Float(f) => Expr::Const(Value::Double(*f)),
            Ast::Str(s) => Expr::Const(Value::string(s.clone())),
            Ast::Bytes(b) => Expr::Const(Value::Bytes(Cow::Owned(b.clone()))),
            Ast::Enum(name) => match ENUMS.iter().find(|(e, _)| e == name) {
                Some((_, v)) => Expr::Const(Value::Int(*v)),
                None if funcs::is_converter(name) => {
                    return Err(self.err(n.pos, format!("`{name}` is a function"), Some("call it: Name(...)")))
                }
                None => {
                    let hint = did_you_mean(name, ENUMS.iter().map(|(e, _)| *e));
                    return Err(self.err(n.pos, format!("unknown enum `{name}`"), hint.as_deref()));
                }
            },
            Ast::Path { names, keys } => Expr::Path(self.path(n.pos, names, keys)?),
            Ast::Call { name, args, keys } => {
                if !name.starts_with(|c: char| c.is_ascii_uppercase()) {
                    return Err(self.err(
                        n.pos,
                        format!("`{name}` is an editor: it changes data and returns nothing"),
                        Some("a value comes from a converter (capitalised: Concat, Int, ...)"),
                    ));
                }
                Expr::Call(Box::new(funcs::compile_call(self, n.pos, name, args, keys, false)?))
            }
            Ast::List(items) => Expr::List(items.iter().map(|i| self.value(i)).collect::<Result<_, _>>()?),
            Ast::Map(entries) => {
                Expr::Map(entries.iter().map(|(k, v)| Ok((k.clone(), self.value(v)?))).collect::<Result<_, _>>()?)
            }
            Ast::Math(op, l, r) => Expr::Math(*op, Box::new(self.value(l)?), Box::new(self.value(r)?)),
            Ast::Paren(inner) => self.value(inner)?,
            Ast::Cmp(..) | Ast::And(..) | Ast::Or(..) | Ast::Not(..) => {
                return Err(self.err(
                    n.pos,
                    "a condition stands where a value is expected",
                    Some("conditions go after `where`, or in a converter such as IsMatch"),
                ))
            }
        })
    }

    pub fn cond(&self, n: &Node) -> Result<Cond, OttlError> {
        Ok(match &n.ast {
            Ast::Bool(b) => Cond::Const(*b),
            Ast::Cmp(op, l, r) => Cond::Cmp(*op, self.value(l)?, self.value(r)?),
            Ast::And(l, r) => Cond::And(Box::new(self.cond(l)?), Box::new(self.cond(r)?)),
            Ast::Or(l, r) => Cond::Or(Box::new(self.cond(l)?), Box::new(self.cond(r)?)),
            Ast::Not(i) => Cond::Not(Box::new(self.cond(i)?)),
            Ast::Paren(i) => self.cond(i)?,
            Ast::Call { name, .. } if name.starts_with(|c: char| c.is_ascii_uppercase()) => Cond::Call(self.value(n)?),
            _ => {
                let what = &self.text[n.pos.min(self.text.len())..];
                let what: String = what.chars().take(40).collect();
                return Err(self.err(
                    n.pos,
                    format!("`{}` is a value, not a condition", what.trim()),
                    Some("compare it, e.g. x == true, or use a converter that returns a bool (IsMatch, IsString, ...)"),
                ));
            }
        })
    }

    fn path(&self, pos: usize, names: &[String], keys: &[Node]) -> Result<Path, OttlError> {
        if names.len() == 1 && names[0] == "cache" {
            return Ok(Path { field: Field::Cache, keys: self.keys(keys)? });
        }
        let (ctx, rest) = match ContextKind::parse(&names[0]) {
            Some(c) if names.len() > 1 || !keys.is_empty() => {
                if !self.ctx.reaches(c) {
                    return Err(self.err(
                        pos,
                        format!("`{}` paths cannot be used in the {} context", names[0], self.ctx.as_str()),
                        Some("move the statement to a group of that context"),
                    ));
                }
                (c, &names[1..])
            }
            _ if self.require_prefix => {
                return Err(self.err(
                    pos,
                    format!("path `{}` does not name its context", names.join(".")),
                    Some("prefix it: span., spanevent., metric., datapoint., log., resource. or scope."),
                ))
            }
            _ => (self.ctx, names),
        };
        // `log.cache`, `resource.cache`: the one cache of the item.
        if rest.len() == 1 && rest[0] == "cache" {
            return Ok(Path { field: Field::Cache, keys: self.keys(keys)? });
        }
        let written = rest.join(".");
        let Some(field) = fields_of(ctx).iter().find(|(n, _)| *n == written).map(|(_, f)| *f) else {
            let hint = did_you_mean(&written, fields_of(ctx).iter().map(|(n, _)| *n)).unwrap_or_else(|| {
                let all: Vec<&str> = fields_of(ctx).iter().map(|(n, _)| *n).collect();
                format!("{} paths: {}", ctx.as_str(), all.join(", "))
            });
            return Err(self.err(
                pos,
                format!("unknown path `{}` in the {} context", names.join("."), ctx.as_str()),
                Some(&hint),
            ));
        };
        if !keys.is_empty() && !field.indexable() {
            return Err(self.err(pos, format!("`{}` cannot be indexed", names.join(".")), None));
        }
        Ok(Path { field, keys: self.keys(keys)? })
    }

    fn keys(&self, keys: &[Node]) -> Result<Vec<Expr>, OttlError> {
        keys.iter()
            .map(|k| {
                let e = self.value(k)?;
                match &e {
                    Expr::Const(Value::Str(_)) | Expr::Const(Value::Int(_)) | Expr::Path(_) | Expr::Call(_) => Ok(e),
                    _ => Err(self.err(k.pos, "a key is a string, an integer, a path or a converter", None)),
                }
            })
            .collect()
    }
}

/// Evaluated keys: literal keys borrowed from the path, others owned (so
/// the item can be borrowed mutably after).
pub fn eval_keys<'p>(keys: &'p [Expr], ctx: &EvalCtx) -> Result<smallvec::SmallVec<[KeyVal<'p>; 2]>, EvalError> {
    keys.iter()
        .map(|k| match k {
            Expr::Const(Value::Str(s)) => Ok(KeyVal::Str(Cow::Borrowed(s.as_ref()))),
            Expr::Const(Value::Int(i)) => Ok(KeyVal::Int(*i)),
            k => match k.eval(ctx)? {
                Value::Str(s) => Ok(KeyVal::Str(Cow::Owned(s.into_owned()))),
                Value::Int(i) => Ok(KeyVal::Int(i)),
                v => eval_err(format!("a key must be a string or an integer, not {}", v.type_name())),
            },
        })
        .collect()
}

fn find_key<'v>(m: &'v [KeyValue], k: &str) -> Option<&'v AnyValue> {
    m.iter().find(|kv| kv.key == k).and_then(|kv| kv.value.as_ref())
}

/// `v[k]`.
pub fn index<'c>(v: Value<'c>, k: &Value) -> Result<Value<'c>, EvalError> {
    match (v, k) {
        (Value::Map(Cow::Borrowed(m)), Value::Str(key)) => Ok(Value::from_any_opt(find_key(m, key))),
        (Value::Map(Cow::Owned(m)), Value::Str(key)) => Ok(Value::from_any_opt(find_key(&m, key)).into_owned()),
        (Value::List(l), Value::Int(i)) => {
            let len = l.len();
            let Some(i) = usize::try_from(*i).ok().filter(|i| *i < len) else {
                return eval_err(format!("index {i} out of range for a list of {len}"));
            };
            match l {
                Cow::Borrowed(l) => Ok(Value::from_any(&l[i])),
                Cow::Owned(l) => Ok(Value::from_any(&l[i]).into_owned()),
            }
        }
        (Value::Nil, _) => Ok(Value::Nil),
        (v, k) => eval_err(format!("a {} cannot be indexed by a {}", v.type_name(), k.type_name())),
    }
}

impl Expr {
    pub fn eval<'c>(&'c self, ctx: &'c EvalCtx) -> Result<Value<'c>, EvalError> {
        match self {
            Expr::Const(v) => Ok(match v {
                // Borrow rather than clone the constant's contents.
                Value::Str(s) => Value::Str(Cow::Borrowed(s)),
                Value::Bytes(b) => Value::Bytes(Cow::Borrowed(b)),
                Value::Map(m) => Value::Map(Cow::Borrowed(m)),
                Value::List(l) => Value::List(Cow::Borrowed(l)),
                v => v.clone(),
            }),
            Expr::Path(p) => {
                let mut v = ctx.get(p.field)?;
                if let (Some(k), Value::Map(Cow::Borrowed(m))) = (p.attribute_key(), &v) {
                    return Ok(Value::from_any_opt(find_key(m, k)));
                }
                for k in &p.keys {
                    let key = k.eval(ctx)?;
                    v = index(v, &key)?;
                }
                Ok(v)
            }
            Expr::Call(c) => funcs::eval_converter(c, ctx),
            Expr::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for i in items {
                    out.push(super::value::any_or_empty(i.eval(ctx)?));
                }
                Ok(Value::List(Cow::Owned(out)))
            }
            Expr::Map(entries) => {
                let mut out = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    out.push(KeyValue {
                        key: k.clone(),
                        value: Some(super::value::any_or_empty(v.eval(ctx)?)),
                        ..Default::default()
                    });
                }
                Ok(Value::Map(Cow::Owned(out)))
            }
            Expr::Math(op, l, r) => math(*op, l.eval(ctx)?, r.eval(ctx)?),
        }
    }
}

/// The Collector's math: int with int, float with float, time and duration.
pub fn math(op: MathOp, l: Value, r: Value) -> Result<Value<'static>, EvalError> {
    use MathOp::*;
    use Value::*;
    let sym = match op {
        Add => "+",
        Sub => "-",
        Mul => "*",
        Div => "/",
    };
    Ok(match (op, &l, &r) {
        (Div, Int(_), Int(0)) => return eval_err("division by zero"),
        (_, Int(a), Int(b)) => Int(match op {
            Add => a.wrapping_add(*b),
            Sub => a.wrapping_sub(*b),
            Mul => a.wrapping_mul(*b),
            Div => a.wrapping_div(*b),
        }),
        (_, Double(a), Double(b)) => Double(match op {
            Add => a + b,
            Sub => a - b,
            Mul => a * b,
            Div => a / b,
        }),
        (Sub, Time(a), Time(b)) => Duration(a.wrapping_sub(*b)),
        (Add, Time(a), Duration(b)) => Time(a.wrapping_add(*b)),
        (Sub, Time(a), Duration(b)) => Time(a.wrapping_sub(*b)),
        (Add, Duration(a), Duration(b)) => Duration(a.wrapping_add(*b)),
        (Sub, Duration(a), Duration(b)) => Duration(a.wrapping_sub(*b)),
        _ => {
            return eval_err(format!("cannot compute {} {sym} {}", l.type_name(), r.type_name()));
        }
    })
}

/// The Collector's comparison (pkg/ottl `compare.go`): numbers compare
/// across int and float; values of other different types are unequal and
/// unordered; nil equals only nil; booleans, maps and lists are not ordered.
pub fn compare(op: CmpOp, l: &Value, r: &Value) -> bool {
    use std::cmp::Ordering;
    use Value::*;
    let ord: Option<Ordering> = match (l, r) {
        (Nil, Nil) => Some(Ordering::Equal),
        (Int(a), Int(b)) => Some(a.cmp(b)),
        (Int(a), Double(b)) => (*a as f64).partial_cmp(b),
        (Double(a), Int(b)) => a.partial_cmp(&(*b as f64)),
        (Double(a), Double(b)) => a.partial_cmp(b),
        (Str(a), Str(b)) => Some(a.as_ref().cmp(b.as_ref())),
        (Bytes(a), Bytes(b)) => Some(a.as_ref().cmp(b.as_ref())),
        (Time(a), Time(b)) | (Duration(a), Duration(b)) => Some(a.cmp(b)),
        (Bool(a), Bool(b)) => {
            return match op {
                CmpOp::Eq => a == b,
                CmpOp::Ne => a != b,
                _ => false,
            }
        }
        (Map(_), Map(_)) | (List(_), List(_)) => {
            return match op {
                CmpOp::Eq => l == r,
                CmpOp::Ne => l != r,
                _ => false,
            }
        }
        _ => None,
    };
    match (op, ord) {
        (CmpOp::Eq, o) => o == Some(Ordering::Equal),
        (CmpOp::Ne, o) => o != Some(Ordering::Equal),
        (_, None) => false,
        (CmpOp::Lt, Some(o)) => o == Ordering::Less,
        (CmpOp::Le, Some(o)) => o != Ordering::Greater,
        (CmpOp::Gt, Some(o)) => o == Ordering::Greater,
        (CmpOp::Ge, Some(o)) => o != Ordering::Less,
    }
}

impl Cond {
    pub fn eval(&self, ctx: &EvalCtx) -> Result<bool, EvalError> {
        match self {
            Cond::Const(b) => Ok(*b),
            // The usual `x == "literal"`: compared as strings, as
            // `compare` would (a value of another type is unequal).
            Cond::Cmp(op @ (CmpOp::Eq | CmpOp::Ne), e, Expr::Const(Value::Str(c)))
            | Cond::Cmp(op @ (CmpOp::Eq | CmpOp::Ne), Expr::Const(Value::Str(c)), e) => {
                let eq = matches!(e.eval(ctx)?, Value::Str(s) if *s == **c);
                Ok(eq == (*op == CmpOp::Eq))
            }
            Cond::Cmp(op, l, r) => Ok(compare(*op, &l.eval(ctx)?, &r.eval(ctx)?)),
            Cond::And(l, r) => Ok(l.eval(ctx)? && r.eval(ctx)?),
            Cond::Or(l, r) => Ok(l.eval(ctx)? || r.eval(ctx)?),
            Cond::Not(c) => Ok(!c.eval(ctx)?),
            Cond::Call(e) => match e.eval(ctx)? {
                Value::Bool(b) => Ok(b),
                v => eval_err(format!("a condition's converter returned {}, not a bool", v.type_name())),
            },
        }
    }
}

/// One compiled statement: an editor and its `where` condition.
#[derive(Debug)]
pub struct Statement {
    pub text: String,
    pub context: ContextKind,
    editor: Call,
    condition: Option<Cond>,
}

impl Statement {
    /// Compiles `text` in `ctx`, or in the context its paths name when
    /// `ctx` is `None` (the Collector's flat form), one of `allowed`.
    pub fn compile(
        text: &str,
        ctx: Option<ContextKind>,
        allowed: &[ContextKind],
        limits: Limits,
    ) -> Result<Statement, OttlError> {
        match ctx {
            Some(c) => Self::compile_in(text, c, false, limits),
            None => {
                let c = infer_group(&[text], &[], allowed, limits).map_err(|(_, e)| e)?;
                Self::compile_in(text, c, true, limits)
            }
        }
    }

    /// Compiles `text` in `context`; `prefixed`: every path must name its
    /// context (the flat form).
    pub fn compile_in(
        text: &str,
        context: ContextKind,
        prefixed: bool,
        limits: Limits,
    ) -> Result<Statement, OttlError> {
        let ast = parse::parse_statement(text, limits)?;
        let c = Compiler { text, ctx: context, limits, require_prefix: prefixed };
        let Ast::Call { name, args, keys } = &ast.editor.ast else { unreachable!("the parser makes a call") };
        if name.starts_with(|ch: char| ch.is_ascii_uppercase()) {
            return Err(c.err(
                ast.editor.pos,
                format!("`{name}` is a converter; a statement calls an editor"),
                Some("e.g. set(attributes[\"x\"], Concat([...], \"-\"))"),
            ));
        }
        let editor = funcs::compile_call(&c, ast.editor.pos, name, args, keys, true)?;
        funcs::check_editor_context(&c, ast.editor.pos, &editor)?;
        let condition = ast.condition.as_ref().map(|n| c.cond(n)).transpose()?;
        Ok(Statement { text: text.to_string(), context, editor, condition })
    }

    /// Runs on one item: whether the editor ran.
    pub fn execute(&self, ctx: &mut EvalCtx) -> Result<bool, EvalError> {
        if let Some(c) = &self.condition {
            if !c.eval(ctx).map_err(|e| self.wrap(e))? {
                return Ok(false);
            }
        }
        funcs::run_editor(&self.editor, ctx).map_err(|e| self.wrap(e))?;
        Ok(true)
    }

    fn wrap(&self, e: EvalError) -> EvalError {
        EvalError(format!("{:?}: {}", self.text, e.0))
    }
}

/// One compiled condition.
#[derive(Debug)]
pub struct Condition {
    pub text: String,
    pub context: ContextKind,
    cond: Cond,
}

impl Condition {
    /// As [`Statement::compile`], for a boolean expression.
    pub fn compile(
        text: &str,
        ctx: Option<ContextKind>,
        allowed: &[ContextKind],
        limits: Limits,
    ) -> Result<Condition, OttlError> {
        match ctx {
            Some(c) => Self::compile_in(text, c, false, limits),
            None => {
                let c = infer_group(&[], &[text], allowed, limits).map_err(|(_, e)| e)?;
                Self::compile_in(text, c, true, limits)
            }
        }
    }

    /// As [`Statement::compile_in`].
    pub fn compile_in(
        text: &str,
        context: ContextKind,
        prefixed: bool,
        limits: Limits,
    ) -> Result<Condition, OttlError> {
        let ast = parse::parse_condition(text, limits)?;
        let c = Compiler { text, ctx: context, limits, require_prefix: prefixed };
        Ok(Condition { text: text.to_string(), context, cond: c.cond(&ast)? })
    }

    pub fn eval(&self, ctx: &EvalCtx) -> Result<bool, EvalError> {
        self.cond.eval(ctx).map_err(|e| EvalError(format!("{:?}: {}", self.text, e.0)))
    }
}

/// The context of a group of statements and conditions that name their
/// contexts (the Collector's context inference): the deepest of `allowed`
/// that their paths name. An error carries the index of the text it is in
/// (statements first, then conditions).
pub fn infer_group(
    statements: &[&str],
    conditions: &[&str],
    allowed: &[ContextKind],
    limits: Limits,
) -> Result<ContextKind, (usize, OttlError)> {
    let mut best: Option<ContextKind> = None;
    let texts = statements.iter().map(|t| (t, true)).chain(conditions.iter().map(|t| (t, false)));
    for (i, (text, is_statement)) in texts.enumerate() {
        let nodes = if is_statement {
            let ast = parse::parse_statement(text, limits).map_err(|e| (i, e))?;
            let mut v = vec![ast.editor];
            v.extend(ast.condition);
            v
        } else {
            vec![parse::parse_condition(text, limits).map_err(|e| (i, e))?]
        };
        for (c, pos) in path_contexts(text, &nodes).map_err(|e| (i, e))? {
            if !allowed.contains(&c) {
                let names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
                return Err((
                    i,
                    OttlError::at(
                        text,
                        pos,
                        format!("`{}` paths are not available here", c.as_str()),
                        Some(&format!("this signal's contexts: {}", names.join(", "))),
                    ),
                ));
            }
            best = Some(match best {
                Some(b) if b.reaches(c) => b,
                Some(b) if c.reaches(b) => c,
                Some(b) => {
                    return Err((
                        i,
                        OttlError::at(
                            text,
                            pos,
                            format!("`{}` and `{}` paths cannot be used together", b.as_str(), c.as_str()),
                            Some("put them in groups of their own"),
                        ),
                    ))
                }
                None => c,
            });
        }
    }
    best.ok_or_else(|| {
        let text = statements.first().or(conditions.first()).copied().unwrap_or("");
        (0, OttlError::at(text, 0, "cannot infer the context: no path names one", Some("give the group a `context`")))
    })
}

/// The contexts the paths of `nodes` name, with where.
fn path_contexts(text: &str, nodes: &[Node]) -> Result<Vec<(ContextKind, usize)>, OttlError> {
    let mut found: Vec<(ContextKind, usize)> = Vec::new();
    let mut first_unprefixed = None;
    for n in nodes {
        walk(n, &mut |n| {
            if let Ast::Path { names, keys } = &n.ast {
                if names.len() == 1 && names[0] == "cache" {
                    return;
                }
                match ContextKind::parse(&names[0]) {
                    Some(c) if names.len() > 1 || !keys.is_empty() => found.push((c, n.pos)),
                    _ => {
                        first_unprefixed.get_or_insert(n.pos);
                    }
                }
            }
        });
    }
    if let Some(pos) = first_unprefixed {
        return Err(OttlError::at(
            text,
            pos,
            "this path does not name its context",
            Some("prefix it (span., spanevent., metric., datapoint., log., resource., scope.) or give the group a `context`"),
        ));
    }
    Ok(found)
}

fn walk<'n>(n: &'n Node, f: &mut impl FnMut(&'n Node)) {
    f(n);
    match &n.ast {
        Ast::Path { keys, .. } => keys.iter().for_each(|k| walk(k, f)),
        Ast::Call { args, keys, .. } => {
            args.iter().for_each(|Arg { value, .. }| walk(value, f));
            keys.iter().for_each(|k| walk(k, f));
        }
        Ast::List(items) => items.iter().for_each(|i| walk(i, f)),
        Ast::Map(entries) => entries.iter().for_each(|(_, v)| walk(v, f)),
        Ast::Math(_, l, r) | Ast::Cmp(_, l, r) | Ast::And(l, r) | Ast::Or(l, r) => {
            walk(l, f);
            walk(r, f);
        }
        Ast::Not(i) | Ast::Paren(i) => walk(i, f),
        _ => {}
    }
}

/// Whether a context name begins the path (used by consumers that
/// describe what a statement touches).
pub fn is_context_name(s: &str) -> bool {
    CONTEXT_NAMES.contains(&s)
}
