//! The functions: editors (lower-case, change the item) and converters
//! (capitalised, return a value), with the Collector's semantics
//! (pkg/ottl/ottlfuncs). Arguments are checked when compiled: a literal
//! that must be a literal (a regex, a list of keys, a mode) is compiled
//! then, so nothing is parsed per item.

use super::compile::{eval_keys, index, Compiler, Expr, Path};
use super::context::{ContextKind, EvalCtx, Field};
use super::parse::{Arg, Ast, Node};
use super::value::{any_or_empty, hex, parse_duration, Value};
use super::{eval_err, EvalError, OttlError};
use crate::config::suggest::levenshtein;
use opentelemetry_proto::tonic::common::v1::{any_value::Value as Av, AnyValue, KeyValue, KeyValueList};
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, AggregationTemporality, Gauge, Sum};
use regex::Regex;
use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Set,
    DeleteKey,
    DeleteMatchingKeys,
    KeepKeys,
    KeepMatchingKeys,
    Limit,
    MergeMaps,
    ReplacePattern,
    ReplaceAllPatterns,
    ReplaceMatch,
    ReplaceAllMatches,
    TruncateAll,
    Flatten,
    Append,
    ConvertSumToGauge,
    ConvertGaugeToSum,
    Concat,
    ConvertCase,
    ToLowerCase,
    ToUpperCase,
    IsMatch,
    IsString,
    IsInt,
    IsDouble,
    IsBool,
    IsMap,
    IsList,
    Int,
    Double,
    String,
    Len,
    Split,
    Substring,
    Sha256,
    Sha1,
    Sha512,
    ParseJson,
    ExtractPatterns,
    Now,
    Time,
    HasAttrKeyOnDatapoint,
    HasAttrOnDatapoint,
    UnixNano,
    UnixMicro,
    UnixMilli,
    UnixSeconds,
    Duration,
    TraceId,
    SpanId,
    Hex,
    Trim,
    HasPrefix,
    HasSuffix,
}

/// How an argument is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A path the function writes.
    Target,
    /// Any value, evaluated per item.
    Any,
    /// A literal string.
    Str,
    /// A literal integer.
    Int,
    /// A literal bool.
    Bool,
    /// A literal string compiled as a regex.
    Regex,
    /// A literal string compiled as a glob.
    Glob,
    /// A literal list of strings.
    StrList,
    /// A list literal of values, evaluated per item.
    List,
    /// A hash converter named as an argument (SHA256).
    FuncName,
    /// A literal IANA time zone name, looked up when compiled.
    Location,
}

struct Sig {
    name: &'static str,
    func: Func,
    params: &'static [(&'static str, Kind, bool)],
}

use Kind::*;

const REPLACE_TAIL: [(&str, Kind, bool); 2] = [("function", FuncName, true), ("replacementFormat", Str, true)];

static SIGS: &[Sig] = &[
    Sig { name: "set", func: Func::Set, params: &[("target", Target, false), ("value", Any, false)] },
    Sig { name: "delete_key", func: Func::DeleteKey, params: &[("target", Target, false), ("key", Str, false)] },
    Sig {
        name: "delete_matching_keys",
        func: Func::DeleteMatchingKeys,
        params: &[("target", Target, false), ("pattern", Regex, false)],
    },
    Sig { name: "keep_keys", func: Func::KeepKeys, params: &[("target", Target, false), ("keys", StrList, false)] },
    Sig {
        name: "keep_matching_keys",
        func: Func::KeepMatchingKeys,
        params: &[("target", Target, false), ("pattern", Regex, false)],
    },
    Sig {
        name: "limit",
        func: Func::Limit,
        params: &[("target", Target, false), ("limit", Int, false), ("priority_keys", StrList, false)],
    },
    Sig {
        name: "merge_maps",
        func: Func::MergeMaps,
        params: &[("target", Target, false), ("source", Any, false), ("strategy", Str, false)],
    },
    Sig {
        name: "replace_pattern",
        func: Func::ReplacePattern,
        params: &[
            ("target", Target, false),
            ("regex", Regex, false),
            ("replacement", Any, false),
            REPLACE_TAIL[0],
            REPLACE_TAIL[1],
        ],
    },
    Sig {
        name: "replace_all_patterns",
        func: Func::ReplaceAllPatterns,
        params: &[
            ("target", Target, false),
            ("mode", Str, false),
            ("regex", Regex, false),
            ("replacement", Any, false),
            REPLACE_TAIL[0],
            REPLACE_TAIL[1],
        ],
    },
    Sig {
        name: "replace_match",
        func: Func::ReplaceMatch,
        params: &[
            ("target", Target, false),
            ("pattern", Glob, false),
            ("replacement", Any, false),
            REPLACE_TAIL[0],
            REPLACE_TAIL[1],
        ],
    },
    Sig {
        name: "replace_all_matches",
        func: Func::ReplaceAllMatches,
        params: &[
            ("target", Target, false),
            ("pattern", Glob, false),
            ("replacement", Any, false),
            REPLACE_TAIL[0],
            REPLACE_TAIL[1],
        ],
    },
    Sig { name: "truncate_all", func: Func::TruncateAll, params: &[("target", Target, false), ("limit", Int, false)] },
    Sig {
        name: "flatten",
        func: Func::Flatten,
        params: &[("target", Target, false), ("prefix", Str, true), ("depth", Int, true)],
    },
    Sig {
        name: "append",
        func: Func::Append,
        params: &[("target", Target, false), ("value", Any, true), ("values", Any, true)],
    },
    Sig { name: "convert_sum_to_gauge", func: Func::ConvertSumToGauge, params: &[] },
    Sig {
        name: "convert_gauge_to_sum",
        func: Func::ConvertGaugeToSum,
        params: &[("aggregation_temporality", Str, false), ("is_monotonic", Bool, false)],
    },
    Sig { name: "Concat", func: Func::Concat, params: &[("vals", List, false), ("delimiter", Str, false)] },
    Sig { name: "ConvertCase", func: Func::ConvertCase, params: &[("target", Any, false), ("toCase", Str, false)] },
    Sig { name: "ToLowerCase", func: Func::ToLowerCase, params: &[("target", Any, false)] },
    Sig { name: "ToUpperCase", func: Func::ToUpperCase, params: &[("target", Any, false)] },
    Sig { name: "IsMatch", func: Func::IsMatch, params: &[("target", Any, false), ("pattern", Regex, false)] },
    Sig { name: "IsString", func: Func::IsString, params: &[("value", Any, false)] },
    Sig { name: "IsInt", func: Func::IsInt, params: &[("value", Any, false)] },
    Sig { name: "IsDouble", func: Func::IsDouble, params: &[("value", Any, false)] },
    Sig { name: "IsBool", func: Func::IsBool, params: &[("value", Any, false)] },
    Sig { name: "IsMap", func: Func::IsMap, params: &[("value", Any, false)] },
    Sig { name: "IsList", func: Func::IsList, params: &[("value", Any, false)] },
    Sig { name: "Int", func: Func::Int, params: &[("value", Any, false)] },
    Sig { name: "Double", func: Func::Double, params: &[("value", Any, false)] },
    Sig { name: "String", func: Func::String, params: &[("value", Any, false)] },
    Sig { name: "Len", func: Func::Len, params: &[("target", Any, false)] },
    Sig { name: "Split", func: Func::Split, params: &[("target", Any, false), ("delimiter", Str, false)] },
    Sig {
        name: "Substring",
        func: Func::Substring,
        params: &[("target", Any, false), ("start", Any, false), ("length", Any, false)],
    },
    Sig { name: "SHA256", func: Func::Sha256, params: &[("value", Any, false)] },
    Sig { name: "SHA1", func: Func::Sha1, params: &[("value", Any, false)] },
    Sig { name: "SHA512", func: Func::Sha512, params: &[("value", Any, false)] },
    Sig { name: "ParseJSON", func: Func::ParseJson, params: &[("target", Any, false)] },
    Sig {
        name: "ExtractPatterns",
        func: Func::ExtractPatterns,
        params: &[("target", Any, false), ("pattern", Regex, false)],
    },
    Sig { name: "Now", func: Func::Now, params: &[] },
    Sig { name: "HasAttrKeyOnDatapoint", func: Func::HasAttrKeyOnDatapoint, params: &[("key", Str, false)] },
    Sig {
        name: "HasAttrOnDatapoint",
        func: Func::HasAttrOnDatapoint,
        params: &[("key", Str, false), ("expectedVal", Str, false)],
    },
    Sig {
        name: "Time",
        func: Func::Time,
        params: &[("time", Any, false), ("format", Str, false), ("location", Location, true), ("locale", Str, true)],
    },
    Sig { name: "UnixNano", func: Func::UnixNano, params: &[("time", Any, false)] },
    Sig { name: "UnixMicro", func: Func::UnixMicro, params: &[("time", Any, false)] },
    Sig { name: "UnixMilli", func: Func::UnixMilli, params: &[("time", Any, false)] },
    Sig { name: "UnixSeconds", func: Func::UnixSeconds, params: &[("time", Any, false)] },
    Sig { name: "Duration", func: Func::Duration, params: &[("duration", Any, false)] },
    Sig { name: "TraceID", func: Func::TraceId, params: &[("bytes", Any, false)] },
    Sig { name: "SpanID", func: Func::SpanId, params: &[("bytes", Any, false)] },
    Sig { name: "Hex", func: Func::Hex, params: &[("value", Any, false)] },
    Sig { name: "Trim", func: Func::Trim, params: &[("target", Any, false), ("replacement", Str, true)] },
    Sig { name: "HasPrefix", func: Func::HasPrefix, params: &[("target", Any, false), ("prefix", Str, false)] },
    Sig { name: "HasSuffix", func: Func::HasSuffix, params: &[("target", Any, false), ("suffix", Str, false)] },
];

/// Every function name, editors first.
pub fn names() -> impl Iterator<Item = &'static str> {
    SIGS.iter().map(|s| s.name)
}

pub fn is_converter(name: &str) -> bool {
    SIGS.iter().any(|s| s.name == name && s.name.starts_with(|c: char| c.is_ascii_uppercase()))
}

/// A compiled argument.
#[derive(Debug)]
pub enum CArg {
    Absent,
    Target(Path),
    Expr(Expr),
    Str(String),
    Int(i64),
    Bool(bool),
    Regex(Regex),
    StrList(Vec<String>),
    List(Vec<Expr>),
    Func(Func),
    /// A time zone; `None` is UTC.
    Tz(Option<jiff::tz::TimeZone>),
}

/// A compiled call: the function, its arguments in declared order, and
/// keys applied to a converter's result.
#[derive(Debug)]
pub struct Call {
    pub func: Func,
    pub args: Vec<CArg>,
    pub keys: Vec<Expr>,
}

/// Names close to `name`, for "unknown function" errors.
fn close_names(name: &str, editor: bool) -> Vec<&'static str> {
    let lower = name.to_ascii_lowercase();
    let mut scored: Vec<(usize, &'static str)> = SIGS
        .iter()
        .filter(|s| s.name.starts_with(|c: char| c.is_ascii_lowercase()) == editor)
        .map(|s| (levenshtein(&lower, &s.name.to_ascii_lowercase()), s.name))
        .filter(|(d, _)| *d <= (name.len() / 3).max(2))
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, n)| n).collect()
}

/// Go's `time.LoadLocation`: `""` and `UTC` are UTC (`None`), `Local` the
/// system's zone, anything else a name in the IANA database (the system's
/// zoneinfo, else the copy built in).
pub fn location(name: &str) -> Result<Option<jiff::tz::TimeZone>, String> {
    match name {
        "" | "UTC" => Ok(None),
        "Local" => jiff::tz::TimeZone::try_system().map(Some).map_err(|e| e.to_string()),
        // Go refuses names that could leave the zoneinfo directory.
        n if n.contains("..") || n.starts_with('/') || n.contains('\\') => Err("not a zone name".into()),
        n => jiff::tz::TimeZone::get(n).map(Some).map_err(|e| e.to_string()),
    }
}

/// Turns a glob (`*`, `?`, `[abc]`, `[!a]`, `{a,b}`) into an anchored regex.
pub fn glob_to_regex(glob: &str) -> String {
    let mut out = String::from("^");
    let mut in_class = false;
    let mut braces = 0;
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if !in_class => out.push_str(".*"),
            '?' if !in_class => out.push('.'),
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                if chars.peek() == Some(&'!') {
                    chars.next();
                    out.push('^');
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '{' if !in_class => {
                braces += 1;
                out.push_str("(?:");
            }
            '}' if !in_class && braces > 0 => {
                braces -= 1;
                out.push(')');
            }
            ',' if !in_class && braces > 0 => out.push('|'),
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push_str(&regex::escape(&n.to_string()));
                }
            }
            c if in_class => out.push(c),
            c => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    if in_class {
        out.push(']');
    }
    for _ in 0..braces {
        out.push(')');
    }
    out.push('$');
    out
}

pub fn compile_call(
    c: &Compiler,
    pos: usize,
    name: &str,
    args: &[Arg],
    keys: &[Node],
    editor: bool,
) -> Result<Call, OttlError> {
    let Some(sig) = SIGS.iter().find(|s| s.name == name) else {
        let close = close_names(name, editor);
        let hint = if close.is_empty() {
            None
        } else {
            Some(format!("did you mean {}?", close.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")))
        };
        let kind = if editor { "editor" } else { "converter" };
        return Err(c.err(pos, format!("unknown {kind} `{name}`"), hint.as_deref()));
    };
    if sig.name.starts_with(|ch: char| ch.is_ascii_lowercase()) != editor {
        return Err(c.err(pos, format!("`{name}` cannot be used here"), None));
    }
    if editor && !keys.is_empty() {
        return Err(c.err(pos, "an editor's result cannot be indexed", None));
    }
    // Place positional then named arguments.
    let mut slots: Vec<Option<&Node>> = vec![None; sig.params.len()];
    let mut named_seen = false;
    for (i, a) in args.iter().enumerate() {
        let at = match &a.name {
            Some(n) => {
                named_seen = true;
                match sig.params.iter().position(|(p, _, _)| p == n) {
                    Some(j) => j,
                    None => {
                        let all: Vec<&str> = sig.params.iter().map(|(p, _, _)| *p).collect();
                        return Err(c.err(
                            a.value.pos,
                            format!("`{name}` has no parameter `{n}`"),
                            Some(&format!("its parameters: {}", all.join(", "))),
                        ));
                    }
                }
            }
            None if named_seen => {
                return Err(c.err(a.value.pos, "a positional argument after a named one", None));
            }
            None => i,
        };
        if at >= sig.params.len() {
            return Err(c.err(
                a.value.pos,
                format!("`{name}` takes at most {} arguments, got {}", sig.params.len(), args.len()),
                Some(&signature(sig)),
            ));
        }
        if slots[at].is_some() {
            return Err(c.err(a.value.pos, format!("`{}` given twice", sig.params[at].0), None));
        }
        slots[at] = Some(&a.value);
    }
    let mut out = Vec::with_capacity(slots.len());
    for ((pname, kind, optional), slot) in sig.params.iter().zip(slots) {
        let Some(n) = slot else {
            if *optional {
                out.push(CArg::Absent);
                continue;
            }
            return Err(c.err(pos, format!("`{name}` needs its `{pname}` argument"), Some(&signature(sig))));
        };
        out.push(compile_arg(c, sig, pname, *kind, n)?);
    }
    if matches!(sig.func, Func::HasAttrKeyOnDatapoint | Func::HasAttrOnDatapoint) && c.ctx != ContextKind::Metric {
        return Err(c.err(pos, format!("`{name}` runs in the metric context only"), Some("use it in metrics.metric")));
    }
    let call = Call { func: sig.func, args: out, keys: keys.iter().map(|k| c.value(k)).collect::<Result<_, _>>()? };
    check_literals(c, pos, &call)?;
    Ok(call)
}

fn signature(sig: &Sig) -> String {
    let ps: Vec<String> =
        sig.params.iter().map(|(n, _, opt)| if *opt { format!("Optional[{n}]") } else { n.to_string() }).collect();
    format!("{}({})", sig.name, ps.join(", "))
}

fn compile_arg(c: &Compiler, sig: &Sig, pname: &str, kind: Kind, n: &Node) -> Result<CArg, OttlError> {
    let literal_str = |what: &str| match &n.ast {
        Ast::Str(s) => Ok(s.clone()),
        _ => Err(c.err(n.pos, format!("`{}`'s `{pname}` must be a literal string ({what})", sig.name), None)),
    };
    Ok(match kind {
        Target => match &n.ast {
            Ast::Path { .. } => match c.value(n)? {
                Expr::Path(p) => CArg::Target(p),
                _ => unreachable!("a path compiles to a path"),
            },
            _ => {
                return Err(c.err(
                    n.pos,
                    format!("`{}`'s `{pname}` must be a path it can write, e.g. attributes[\"k\"]", sig.name),
                    None,
                ))
            }
        },
        Any => CArg::Expr(c.value(n)?),
        Str => CArg::Str(literal_str("in double quotes")?),
        Int => match &n.ast {
            Ast::Int(i) => CArg::Int(*i),
            _ => return Err(c.err(n.pos, format!("`{}`'s `{pname}` must be a literal integer", sig.name), None)),
        },
        Bool => match &n.ast {
            Ast::Bool(b) => CArg::Bool(*b),
            _ => return Err(c.err(n.pos, format!("`{}`'s `{pname}` must be true or false", sig.name), None)),
        },
        Regex | Glob => {
            let text = literal_str("a pattern")?;
            let pattern = if kind == Glob { glob_to_regex(&text) } else { text };
            let re = regex::RegexBuilder::new(&pattern)
                .size_limit(c.limits.max_regex_size)
                .dfa_size_limit(c.limits.max_regex_size)
                .build()
                .map_err(|e| {
                    let msg = match e {
                        regex::Error::CompiledTooBig(limit) => {
                            format!("the pattern compiles to more than {limit} bytes")
                        }
                        e => format!("bad pattern: {}", e.to_string().lines().last().unwrap_or("")),
                    };
                    c.err(n.pos, msg, Some("patterns use RE2 syntax; backslashes are written twice in a string"))
                })?;
            CArg::Regex(re)
        }
        StrList => match &n.ast {
            Ast::List(items) => CArg::StrList(
                items
                    .iter()
                    .map(|i| match &i.ast {
                        Ast::Str(s) => Ok(s.clone()),
                        _ => Err(c.err(i.pos, format!("`{}`'s `{pname}` lists literal strings", sig.name), None)),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(c.err(n.pos, format!("`{}`'s `{pname}` must be a list: [\"a\", \"b\"]", sig.name), None)),
        },
        List => match &n.ast {
            Ast::List(items) => CArg::List(items.iter().map(|i| c.value(i)).collect::<Result<_, _>>()?),
            _ => return Err(c.err(n.pos, format!("`{}`'s `{pname}` must be a list: [a, b]", sig.name), None)),
        },
        Location => {
            let name = literal_str("an IANA time zone name such as \"America/New_York\"")?;
            CArg::Tz(location(&name).map_err(|e| {
                c.err(
                    n.pos,
                    format!("unknown location {name:?}: {e}"),
                    Some("an IANA time zone name (America/New_York, Europe/Berlin), UTC or Local"),
                )
            })?)
        }
        FuncName => match &n.ast {
            Ast::Enum(f) => match f.as_str() {
                "SHA256" => CArg::Func(Func::Sha256),
                "SHA1" => CArg::Func(Func::Sha1),
                "SHA512" => CArg::Func(Func::Sha512),
                _ => return Err(c.err(n.pos, format!("`{f}` is not a hash function"), Some("SHA1, SHA256 or SHA512"))),
            },
            _ => return Err(c.err(n.pos, "expected a hash function name: SHA1, SHA256 or SHA512", None)),
        },
    })
}

/// Checks of literal arguments the Collector makes when it builds the function.
fn check_literals(c: &Compiler, pos: usize, call: &Call) -> Result<(), OttlError> {
    match call.func {
        Func::Limit => {
            if let (CArg::Int(l), CArg::StrList(keys)) = (&call.args[1], &call.args[2]) {
                if *l < 1 {
                    return Err(c.err(
                        pos,
                        format!("invalid limit for limit function, {l} cannot be less than 1"),
                        None,
                    ));
                }
                if keys.len() as i64 > *l {
                    return Err(c.err(
                        pos,
                        format!("invalid limit for limit function, {l} cannot be less than number of priority attributes {}", keys.len()),
                        None,
                    ));
                }
            }
        }
        Func::TruncateAll => {
            if let CArg::Int(l) = call.args[1] {
                if l < 0 {
                    return Err(c.err(
                        pos,
                        format!("invalid limit for truncate_all function, {l} cannot be negative"),
                        None,
                    ));
                }
            }
        }
        Func::Flatten => {
            if let CArg::Int(d) = call.args[2] {
                if d < 0 {
                    return Err(c.err(pos, "invalid depth for flatten function, it cannot be negative", None));
                }
            }
        }
        Func::MergeMaps => {
            if let CArg::Str(s) = &call.args[2] {
                if !matches!(s.as_str(), "insert" | "update" | "upsert") {
                    return Err(c.err(
                        pos,
                        format!("invalid value for strategy, {s:?}"),
                        Some("insert, update or upsert"),
                    ));
                }
            }
        }
        Func::ReplaceAllPatterns if !matches!(arg_str(&call.args[1]), Some("key" | "value")) => {
            return Err(c.err(pos, "invalid mode: it must be \"key\" or \"value\"", None));
        }
        Func::ConvertCase => {
            if let CArg::Str(s) = &call.args[1] {
                if !matches!(s.as_str(), "lower" | "upper" | "snake" | "camel") {
                    return Err(c.err(pos, format!("invalid case: {s}"), Some("lower, upper, snake or camel")));
                }
            }
        }
        Func::ConvertGaugeToSum => {
            if let CArg::Str(s) = &call.args[0] {
                if !matches!(s.as_str(), "cumulative" | "delta") {
                    return Err(c.err(
                        pos,
                        format!("unknown aggregation temporality: {s}"),
                        Some("cumulative or delta"),
                    ));
                }
            }
        }
        Func::Time => {
            if let CArg::Str(f) = &call.args[1] {
                if f.is_empty() {
                    return Err(c.err(pos, "format cannot be nil", None));
                }
                if let Err(e) = super::strptime::check_format(f) {
                    return Err(c.err(pos, e, Some("ctime directives: %Y %m %d %H %M %S %L %f %s %z %b ...")));
                }
            }
            if let CArg::Str(locale) = &call.args[3] {
                // Month and day names are read in English only.
                let lang = locale.split(['-', '_']).next().unwrap_or("");
                if !lang.eq_ignore_ascii_case("en") {
                    return Err(c.err(
                        pos,
                        format!("locale {locale:?} is not supported"),
                        Some("sluice reads month and day names in English only: leave locale out, or give \"en\""),
                    ));
                }
            }
        }
        Func::ExtractPatterns => {
            if let CArg::Regex(re) = &call.args[1] {
                if !re.capture_names().any(|n| n.is_some()) {
                    return Err(c.err(pos, "at least 1 named capture group must be supplied in the given regex", None));
                }
            }
        }
        Func::ReplacePattern | Func::ReplaceAllPatterns | Func::ReplaceMatch | Func::ReplaceAllMatches => {
            let n = call.args.len();
            if let (CArg::Str(f), CArg::Absent) = (&call.args[n - 1], &call.args[n - 2]) {
                let _ = f;
                return Err(c.err(pos, "replacementFormat is given without a function", None));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Editors that only make sense in some contexts.
pub fn check_editor_context(c: &Compiler, pos: usize, call: &Call) -> Result<(), OttlError> {
    if matches!(call.func, Func::ConvertSumToGauge | Func::ConvertGaugeToSum) && c.ctx != ContextKind::Metric {
        return Err(c.err(pos, "this function runs in the metric context only", Some("put it in a group of its own")));
    }
    Ok(())
}

fn arg_expr(a: &CArg) -> &Expr {
    match a {
        CArg::Expr(e) => e,
        _ => unreachable!("compiled as a value"),
    }
}

fn arg_str(a: &CArg) -> Option<&str> {
    match a {
        CArg::Str(s) => Some(s),
        _ => None,
    }
}

fn arg_regex(a: &CArg) -> &Regex {
    match a {
        CArg::Regex(r) => r,
        _ => unreachable!("compiled as a regex"),
    }
}

fn string_arg<'c>(e: &'c Expr, ctx: &'c EvalCtx, what: &str) -> Result<Cow<'c, str>, EvalError> {
    match e.eval(ctx)? {
        Value::Str(s) => Ok(s),
        v => eval_err(format!("{what}: expected a string but got {}", v.type_name())),
    }
}

fn hash(f: Func, data: &[u8]) -> String {
    use ring::digest;
    let alg = match f {
        Func::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        Func::Sha512 => &digest::SHA512,
        _ => &digest::SHA256,
    };
    hex(digest::digest(alg, data).as_ref())
}

fn is_true(v: bool) -> Result<Value<'static>, EvalError> {
    Ok(Value::Bool(v))
}

pub fn eval_converter<'c>(call: &'c Call, ctx: &'c EvalCtx) -> Result<Value<'c>, EvalError> {
    let v = converter(call, ctx)?;
    if call.keys.is_empty() {
        return Ok(v);
    }
    let mut v = v;
    for k in &call.keys {
        let key = k.eval(ctx)?;
        v = index(v, &key)?;
    }
    Ok(v)
}

fn converter<'c>(call: &'c Call, ctx: &'c EvalCtx) -> Result<Value<'c>, EvalError> {
    let a = &call.args;
    let first = || arg_expr(&a[0]).eval(ctx);
    Ok(match call.func {
        Func::Concat => {
            let CArg::List(vals) = &a[0] else { unreachable!() };
            let delim = arg_str(&a[1]).unwrap_or("");
            let mut out = String::new();
            for (i, v) in vals.iter().enumerate() {
                if i > 0 {
                    out.push_str(delim);
                }
                match v.eval(ctx)?.to_string_like() {
                    Some(s) => out.push_str(&s),
                    None => out.push_str("<nil>"),
                }
            }
            Value::string(out)
        }
        Func::ToLowerCase | Func::ToUpperCase | Func::ConvertCase => {
            let s = string_arg(arg_expr(&a[0]), ctx, "the case converters")?;
            let case = match call.func {
                Func::ToLowerCase => "lower",
                Func::ToUpperCase => "upper",
                _ => arg_str(&a[1]).unwrap_or("lower"),
            };
            Value::string(convert_case(&s, case))
        }
        Func::IsMatch => {
            let v = first()?;
            match v.to_string_like() {
                Some(s) => Value::Bool(arg_regex(&a[1]).is_match(&s)),
                None => Value::Bool(false),
            }
        }
        Func::IsString => is_true(matches!(first()?, Value::Str(_)))?,
        Func::IsInt => is_true(matches!(first()?, Value::Int(_)))?,
        Func::IsDouble => is_true(matches!(first()?, Value::Double(_)))?,
        Func::IsBool => is_true(matches!(first()?, Value::Bool(_)))?,
        Func::IsMap => is_true(matches!(first()?, Value::Map(_)))?,
        Func::IsList => is_true(matches!(first()?, Value::List(_)))?,
        Func::Int => match first()? {
            Value::Int(i) => Value::Int(i),
            Value::Double(d) if d.is_finite() => Value::Int(d.trunc() as i64),
            Value::Bool(b) => Value::Int(b as i64),
            Value::Str(s) => s.parse::<i64>().map_or(Value::Nil, Value::Int),
            _ => Value::Nil,
        },
        Func::Double => match first()? {
            Value::Int(i) => Value::Double(i as f64),
            Value::Double(d) => Value::Double(d),
            Value::Bool(b) => Value::Double(if b { 1.0 } else { 0.0 }),
            Value::Str(s) => s.parse::<f64>().map_or(Value::Nil, Value::Double),
            _ => Value::Nil,
        },
        Func::String => match first()? {
            Value::Nil => Value::Nil,
            Value::Str(s) => Value::Str(s),
            v => Value::string(v.display()),
        },
        Func::Len => match first()? {
            Value::Str(s) => Value::Int(s.len() as i64),
            Value::Bytes(b) => Value::Int(b.len() as i64),
            Value::Map(m) => Value::Int(m.len() as i64),
            Value::List(l) => Value::Int(l.len() as i64),
            v => return eval_err(format!("Len: unsupported type {}", v.type_name())),
        },
        Func::Split => {
            let s = string_arg(arg_expr(&a[0]), ctx, "Split")?;
            let d = arg_str(&a[1]).unwrap_or("");
            let parts: Vec<AnyValue> = if d.is_empty() {
                s.chars().map(|c| any_or_empty(Value::string(c.to_string()))).collect()
            } else {
                s.split(d).map(|p| any_or_empty(Value::str(p))).collect()
            };
            Value::List(Cow::Owned(parts))
        }
        Func::Substring => {
            let s = string_arg(arg_expr(&a[0]), ctx, "Substring")?;
            let (Value::Int(start), Value::Int(len)) = (arg_expr(&a[1]).eval(ctx)?, arg_expr(&a[2]).eval(ctx)?) else {
                return eval_err("Substring: start and length must be integers");
            };
            if start < 0 {
                return eval_err(format!("invalid start for substring function, {start} cannot be negative"));
            }
            if len <= 0 {
                return eval_err(format!("invalid length for substring function, {len} cannot be negative or zero"));
            }
            let end = start.saturating_add(len);
            if end as u64 > s.len() as u64 {
                return eval_err(format!(
                    "invalid range for substring function, {end} cannot be greater than the length of target string({})",
                    s.len()
                ));
            }
            match s.get(start as usize..end as usize) {
                Some(sub) => Value::string(sub.to_string()),
                None => return eval_err("Substring: the range splits a character"),
            }
        }
        Func::Sha256 | Func::Sha1 | Func::Sha512 => {
            let s = string_arg(arg_expr(&a[0]), ctx, "the hash functions")?;
            Value::string(hash(call.func, s.as_bytes()))
        }
        Func::ParseJson => {
            let s = string_arg(arg_expr(&a[0]), ctx, "ParseJSON")?;
            match serde_json::from_str::<serde_json::Value>(&s) {
                Ok(j @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => Value::from_json(&j),
                Ok(_) => return eval_err("ParseJSON: the target is not a JSON object or array"),
                Err(e) => return eval_err(format!("ParseJSON: {e}")),
            }
        }
        Func::ExtractPatterns => {
            let s = string_arg(arg_expr(&a[0]), ctx, "ExtractPatterns")?;
            let re = arg_regex(&a[1]);
            let mut out = Vec::new();
            if let Some(caps) = re.captures(&s) {
                for name in re.capture_names().flatten() {
                    if let Some(m) = caps.name(name) {
                        out.push(KeyValue {
                            key: name.to_string(),
                            value: Some(any_or_empty(Value::str(m.as_str()))),
                            ..Default::default()
                        });
                    }
                }
            }
            Value::Map(Cow::Owned(out))
        }
        Func::Now => Value::Time(ctx.now_unix_nanos),
        Func::HasAttrKeyOnDatapoint | Func::HasAttrOnDatapoint => {
            let key = arg_str(&a[0]).unwrap_or("");
            let want = if call.func == Func::HasAttrOnDatapoint { arg_str(&a[1]) } else { None };
            let hit = |attrs: &[KeyValue]| {
                attrs.iter().any(|kv| {
                    kv.key == key
                        && want.is_none_or(|w| {
                            matches!(kv.value.as_ref().and_then(|v| v.value.as_ref()), Some(Av::StringValue(s)) if s == w)
                        })
                })
            };
            let Some(m) = ctx.metric.as_deref() else { return eval_err("no metric in this context") };
            Value::Bool(match &m.data {
                Some(Data::Gauge(g)) => g.data_points.iter().any(|p| hit(&p.attributes)),
                Some(Data::Sum(s)) => s.data_points.iter().any(|p| hit(&p.attributes)),
                Some(Data::Histogram(h)) => h.data_points.iter().any(|p| hit(&p.attributes)),
                Some(Data::ExponentialHistogram(h)) => h.data_points.iter().any(|p| hit(&p.attributes)),
                Some(Data::Summary(s)) => s.data_points.iter().any(|p| hit(&p.attributes)),
                None => false,
            })
        }
        Func::Time => {
            let s = string_arg(arg_expr(&a[0]), ctx, "Time")?;
            let tz = match &a[2] {
                CArg::Tz(tz) => tz.as_ref(),
                _ => None,
            };
            match super::strptime::parse_in(&s, arg_str(&a[1]).unwrap_or(""), tz) {
                Ok(t) => Value::Time(t),
                Err(e) => return eval_err(format!("Time: {e}")),
            }
        }
        Func::UnixNano | Func::UnixMicro | Func::UnixMilli | Func::UnixSeconds => {
            let Value::Time(t) = first()? else { return eval_err("expected a time: use Time(...) or a time path") };
            Value::Int(match call.func {
                Func::UnixNano => t,
                Func::UnixMicro => t.div_euclid(1_000),
                Func::UnixMilli => t.div_euclid(1_000_000),
                _ => t.div_euclid(1_000_000_000),
            })
        }
        Func::Duration => {
            let s = string_arg(arg_expr(&a[0]), ctx, "Duration")?;
            match parse_duration(&s) {
                Some(d) => Value::Duration(d),
                None => return eval_err(format!("Duration: invalid duration {s:?}")),
            }
        }
        Func::TraceId | Func::SpanId => {
            let want = if call.func == Func::TraceId { 16 } else { 8 };
            match first()? {
                Value::Bytes(b) if b.len() == want => Value::Bytes(Cow::Owned(b.into_owned())),
                Value::Bytes(_) => return eval_err(format!("the ID must be exactly {want} bytes")),
                v => return eval_err(format!("expected bytes but got {}", v.type_name())),
            }
        }
        Func::Hex => match first()? {
            Value::Bytes(b) => Value::string(hex(&b)),
            Value::Str(s) => Value::string(hex(s.as_bytes())),
            Value::Int(i) => Value::string(hex(&i.to_be_bytes())),
            Value::Double(d) => Value::string(hex(&d.to_bits().to_be_bytes())),
            Value::Bool(b) => Value::string(hex(&[b as u8])),
            v => return eval_err(format!("Hex: unsupported type {}", v.type_name())),
        },
        Func::Trim => {
            let s = string_arg(arg_expr(&a[0]), ctx, "Trim")?;
            let cut = arg_str(&a[1]).unwrap_or(" ");
            let set: Vec<char> = cut.chars().collect();
            Value::string(s.trim_matches(|c| set.contains(&c)).to_string())
        }
        Func::HasPrefix | Func::HasSuffix => {
            let s = string_arg(arg_expr(&a[0]), ctx, "HasPrefix/HasSuffix")?;
            let p = arg_str(&a[1]).unwrap_or("");
            Value::Bool(if call.func == Func::HasPrefix { s.starts_with(p) } else { s.ends_with(p) })
        }
        _ => return eval_err("an editor cannot be used as a value"),
    })
}

fn convert_case(s: &str, case: &str) -> String {
    match case {
        "upper" => s.to_uppercase(),
        "snake" => {
            let mut out = String::new();
            let mut prev_lower = false;
            for c in s.chars() {
                if c.is_uppercase() {
                    if prev_lower {
                        out.push('_');
                    }
                    out.extend(c.to_lowercase());
                    prev_lower = false;
                } else if c == ' ' || c == '-' {
                    out.push('_');
                    prev_lower = false;
                } else {
                    out.push(c);
                    prev_lower = c.is_lowercase() || c.is_ascii_digit();
                }
            }
            out
        }
        "camel" => {
            let mut out = String::new();
            let mut up = true;
            for c in s.chars() {
                if c == '_' || c == ' ' || c == '-' {
                    up = true;
                } else if up {
                    out.extend(c.to_uppercase());
                    up = false;
                } else {
                    out.push(c);
                }
            }
            out
        }
        _ => s.to_lowercase(),
    }
}

fn target(a: &CArg) -> &Path {
    match a {
        CArg::Target(p) => p,
        _ => unreachable!("compiled as a target"),
    }
}

/// Reads the target's current value, borrowed from the item.
fn get_target<'c>(ctx: &'c EvalCtx, p: &Path) -> Result<Value<'c>, EvalError> {
    let mut v = ctx.get(p.field)?;
    for k in &p.keys {
        let key = k.eval(ctx)?;
        v = index(v, &key)?;
    }
    Ok(v)
}

/// Writes a value to a path.
pub fn set_path(ctx: &mut EvalCtx, p: &Path, v: Value<'static>) -> Result<(), EvalError> {
    if p.keys.is_empty() {
        return ctx.set(p.field, v);
    }
    if let Some(key) = p.attribute_key() {
        // `attributes["k"]`: replaced where it is, else added at the end.
        let Some(map) = ctx.map_mut(p.field) else { return eval_err("the path is not a map") };
        let value = Some(any_or_empty(v));
        match map.iter_mut().find(|kv| kv.key == key) {
            Some(kv) => kv.value = value,
            None => map.push(KeyValue { key: key.to_string(), value, ..Default::default() }),
        }
        return Ok(());
    }
    let keys = eval_keys(&p.keys, ctx)?;
    if let Some(slot) = ctx.slot_mut(p.field, &keys, true)? {
        *slot = any_or_empty(v);
    }
    Ok(())
}

/// The map a target path is, to edit in place.
fn map_target<'m>(ctx: &'m mut EvalCtx, p: &Path) -> Result<&'m mut Vec<KeyValue>, EvalError> {
    if p.keys.is_empty() {
        if p.field == Field::LogBody {
            let is_map = matches!(ctx.get(Field::LogBody)?, Value::Map(_));
            if !is_map {
                return eval_err("expected a map but got another type");
            }
        }
        return match ctx.map_mut(p.field) {
            Some(m) => Ok(m),
            None => eval_err("expected a map but the path is not one"),
        };
    }
    let keys = eval_keys(&p.keys, ctx)?;
    match ctx.slot_mut(p.field, &keys, false)? {
        Some(AnyValue { value: Some(Av::KvlistValue(m)) }) => Ok(&mut m.values),
        Some(_) => eval_err("expected a map but got another type"),
        None => eval_err("expected a map but got nil"),
    }
}

/// A replacement's hash function and format, if given.
type HashFn = Option<(Func, Option<String>)>;

fn replacement<'c>(
    ctx: &'c EvalCtx,
    a: &'c CArg,
    func: &CArg,
    format: &CArg,
) -> Result<(Cow<'c, str>, HashFn), EvalError> {
    let r = string_arg(arg_expr(a), ctx, "replacement")?;
    Ok((r, hash_fn(func, format)))
}

fn hash_fn(func: &CArg, format: &CArg) -> HashFn {
    match func {
        CArg::Func(f) => Some((*f, arg_str(format).map(str::to_string))),
        _ => None,
    }
}

fn string_mut(v: &mut AnyValue) -> Option<&mut String> {
    match &mut v.value {
        Some(Av::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn apply_fn(s: String, f: &HashFn) -> String {
    match f {
        None => s,
        Some((func, fmt)) => {
            let h = hash(*func, s.as_bytes());
            match fmt {
                Some(fmt) => fmt.replacen("%s", &h, 1),
                None => h,
            }
        }
    }
}

/// Replaces every match of `re` in `s`, expanding `$1`/`${name}` and then
/// applying the hash function, if any.
fn replace_all(re: &Regex, s: &str, repl: &str, f: &HashFn) -> Option<String> {
    // One pass: the regex crate hands back the input when nothing matched.
    let out = if f.is_none() {
        re.replace_all(s, repl)
    } else {
        re.replace_all(s, |caps: &regex::Captures| {
            let mut expanded = String::new();
            caps.expand(repl, &mut expanded);
            apply_fn(expanded, f)
        })
    };
    match out {
        Cow::Owned(new) => Some(new),
        Cow::Borrowed(_) => None,
    }
}

fn truncate_str(s: &mut String, limit: usize) {
    if s.len() > limit {
        let mut cut = limit;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

fn flatten_into(out: &mut Vec<KeyValue>, prefix: &str, v: AnyValue, depth: usize, max: usize) {
    match v.value {
        Some(Av::KvlistValue(m)) if depth < max => {
            for kv in m.values {
                let key = if prefix.is_empty() { kv.key } else { format!("{prefix}.{}", kv.key) };
                flatten_into(out, &key, kv.value.unwrap_or(AnyValue { value: None }), depth + 1, max);
            }
        }
        Some(Av::ArrayValue(a)) if depth < max => {
            for (i, item) in a.values.into_iter().enumerate() {
                let key = if prefix.is_empty() { i.to_string() } else { format!("{prefix}.{i}") };
                flatten_into(out, &key, item, depth + 1, max);
            }
        }
        other => {
            out.push(KeyValue { key: prefix.to_string(), value: Some(AnyValue { value: other }), ..Default::default() })
        }
    }
}

pub fn run_editor(call: &Call, ctx: &mut EvalCtx) -> Result<(), EvalError> {
    let a = &call.args;
    match call.func {
        Func::Set => {
            let v = arg_expr(&a[1]).eval(ctx)?.into_owned();
            if v != Value::Nil {
                set_path(ctx, target(&a[0]), v)?;
            }
        }
        Func::DeleteKey => {
            let key = arg_str(&a[1]).unwrap_or("");
            map_target(ctx, target(&a[0]))?.retain(|kv| kv.key != key);
        }
        Func::DeleteMatchingKeys => {
            let re = arg_regex(&a[1]);
            map_target(ctx, target(&a[0]))?.retain(|kv| !re.is_match(&kv.key));
        }
        Func::KeepKeys => {
            let CArg::StrList(keys) = &a[1] else { unreachable!() };
            map_target(ctx, target(&a[0]))?.retain(|kv| keys.contains(&kv.key));
        }
        Func::KeepMatchingKeys => {
            let re = arg_regex(&a[1]);
            map_target(ctx, target(&a[0]))?.retain(|kv| re.is_match(&kv.key));
        }
        Func::Limit => {
            let (CArg::Int(limit), CArg::StrList(priority)) = (&a[1], &a[2]) else { unreachable!() };
            let limit = *limit as usize;
            let m = map_target(ctx, target(&a[0]))?;
            if m.len() <= limit {
                return Ok(());
            }
            let mut count = priority.iter().filter(|p| m.iter().any(|kv| kv.key == **p)).count();
            m.retain(|kv| {
                if priority.contains(&kv.key) {
                    return true;
                }
                if count < limit {
                    count += 1;
                    return true;
                }
                false
            });
        }
        Func::MergeMaps => {
            let source = match arg_expr(&a[1]).eval(ctx)? {
                Value::Map(m) => m.into_owned(),
                v => return eval_err(format!("merge_maps: expected a map source but got {}", v.type_name())),
            };
            let strategy = arg_str(&a[2]).unwrap_or("upsert").to_string();
            let m = map_target(ctx, target(&a[0]))?;
            for kv in source {
                let existing = m.iter().position(|t| t.key == kv.key);
                match (strategy.as_str(), existing) {
                    ("insert", None) | ("upsert", None) => m.push(kv),
                    ("update", Some(i)) | ("upsert", Some(i)) => m[i].value = kv.value,
                    _ => {}
                }
            }
        }
        Func::ReplacePattern => {
            let p = target(&a[0]);
            let re = arg_regex(&a[1]);
            // The usual `attributes["k"]` with a literal replacement: the
            // string is found once and replaced in place.
            if let (Some(key), CArg::Expr(Expr::Const(Value::Str(repl)))) = (p.attribute_key(), &a[2]) {
                let f = hash_fn(&a[3], &a[4]);
                if let Some(s) = ctx.attribute_mut(p.field, key).and_then(string_mut) {
                    if let Some(new) = replace_all(re, s, repl, &f) {
                        *s = new;
                    }
                }
                return Ok(());
            }
            // Nothing is copied for the (usual) item that does not match.
            let new = match get_target(ctx, p)? {
                Value::Str(s) => {
                    let (repl, f) = replacement(ctx, &a[2], &a[3], &a[4])?;
                    replace_all(re, &s, &repl, &f)
                }
                _ => None,
            };
            if let Some(new) = new {
                set_path(ctx, p, Value::string(new))?;
            }
        }
        Func::ReplaceAllPatterns => {
            let (repl, f) = replacement(ctx, &a[3], &a[4], &a[5])?;
            let repl = repl.into_owned();
            let re = arg_regex(&a[2]);
            let by_key = arg_str(&a[1]) == Some("key");
            let m = map_target(ctx, target(&a[0]))?;
            for kv in m.iter_mut() {
                if by_key {
                    if let Some(new) = replace_all(re, &kv.key, &repl, &f) {
                        kv.key = new;
                    }
                } else if let Some(AnyValue { value: Some(Av::StringValue(s)) }) = &mut kv.value {
                    if let Some(new) = replace_all(re, s, &repl, &f) {
                        *s = new;
                    }
                }
            }
        }
        Func::ReplaceMatch => {
            let p = target(&a[0]);
            let matched = matches!(get_target(ctx, p)?, Value::Str(s) if arg_regex(&a[1]).is_match(&s));
            if matched {
                let (repl, f) = replacement(ctx, &a[2], &a[3], &a[4])?;
                let new = apply_fn(repl.into_owned(), &f);
                set_path(ctx, p, Value::string(new))?;
            }
        }
        Func::ReplaceAllMatches => {
            let (repl, f) = replacement(ctx, &a[2], &a[3], &a[4])?;
            let repl = repl.into_owned();
            let re = arg_regex(&a[1]);
            let new = apply_fn(repl, &f);
            for kv in map_target(ctx, target(&a[0]))?.iter_mut() {
                if let Some(AnyValue { value: Some(Av::StringValue(s)) }) = &mut kv.value {
                    if re.is_match(s) {
                        *s = new.clone();
                    }
                }
            }
        }
        Func::TruncateAll => {
            let CArg::Int(limit) = a[1] else { unreachable!() };
            for kv in map_target(ctx, target(&a[0]))?.iter_mut() {
                if let Some(AnyValue { value: Some(Av::StringValue(s)) }) = &mut kv.value {
                    truncate_str(s, limit as usize);
                }
            }
        }
        Func::Flatten => {
            let prefix = arg_str(&a[1]).unwrap_or("").to_string();
            let max = match a[2] {
                CArg::Int(d) => d as usize,
                _ => usize::MAX,
            };
            let m = map_target(ctx, target(&a[0]))?;
            let old = std::mem::take(m);
            let mut out = Vec::with_capacity(old.len());
            flatten_into(
                &mut out,
                &prefix,
                AnyValue { value: Some(Av::KvlistValue(KeyValueList { values: old })) },
                0,
                max.saturating_add(1),
            );
            *m = out;
        }
        Func::Append => {
            let p = target(&a[0]);
            let mut items: Vec<AnyValue> = match get_target(ctx, p)?.into_owned() {
                Value::Nil => Vec::new(),
                Value::List(l) => l.into_owned(),
                v => vec![any_or_empty(v)],
            };
            if let CArg::Expr(e) = &a[1] {
                items.push(any_or_empty(e.eval(ctx)?.into_owned()));
            }
            if let CArg::Expr(e) = &a[2] {
                match e.eval(ctx)? {
                    Value::List(l) => items.extend(l.iter().cloned()),
                    v => return eval_err(format!("append: values must be a list, not {}", v.type_name())),
                }
            }
            set_path(ctx, p, Value::List(Cow::Owned(items)))?;
        }
        Func::ConvertSumToGauge => {
            if let Some(m) = ctx.metric.as_deref_mut() {
                if let Some(Data::Sum(s)) = m.data.take() {
                    m.data = Some(Data::Gauge(Gauge { data_points: s.data_points }));
                } else if let Some(d) = m.data.take() {
                    m.data = Some(d);
                }
            }
        }
        Func::ConvertGaugeToSum => {
            let temporality = match arg_str(&a[0]) {
                Some("delta") => AggregationTemporality::Delta as i32,
                _ => AggregationTemporality::Cumulative as i32,
            };
            let CArg::Bool(mono) = a[1] else { unreachable!() };
            if let Some(m) = ctx.metric.as_deref_mut() {
                match m.data.take() {
                    Some(Data::Gauge(g)) => {
                        m.data = Some(Data::Sum(Sum {
                            data_points: g.data_points,
                            aggregation_temporality: temporality,
                            is_monotonic: mono,
                        }))
                    }
                    other => m.data = other,
                }
            }
        }
        _ => return eval_err("a converter cannot be a statement"),
    }
    Ok(())
}
