//! Environment expansion in config values, as the Collector does it.
//!
//! `${env:VAR}` and `${VAR}` are replaced by the variable's value (empty when
//! unset, as in the Collector); `${env:VAR:-default}` uses `default` only when
//! VAR is unset; `$$` is a literal `$`. A `$` followed by anything else is
//! kept as is. Only scalar values are expanded, never mapping keys. A scalar
//! that is exactly one reference is re-typed from its expanded text, so
//! `port: ${env:PORT}` can be an integer; anything else becomes a string.

use super::error::ConfigError;
use super::node::{Entry, Node, Style, Value};

/// A malformed reference, e.g. `${env:}` or an unterminated `${`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError {
    pub message: String,
    pub hint: Option<String>,
}

/// The expanded text and whether the input was exactly one reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expanded {
    pub text: String,
    pub whole_reference: bool,
}

fn bad(message: impl Into<String>, hint: &str) -> ExpandError {
    ExpandError { message: message.into(), hint: Some(hint.to_string()) }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Expands one scalar's text.
pub fn expand_str(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Expanded, ExpandError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut refs = 0usize;
    let mut literal = false;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        if pos > 0 {
            literal = true;
        }
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            literal = true;
            rest = tail;
        } else if let Some(body_and_tail) = after.strip_prefix('{') {
            let end = body_and_tail.find('}').ok_or_else(|| {
                bad(
                    format!("unterminated reference \"${{{body_and_tail}\""),
                    "close it with '}', or write $$ for a literal $",
                )
            })?;
            let body = &body_and_tail[..end];
            out.push_str(&resolve(body, env)?);
            refs += 1;
            rest = &body_and_tail[end + 1..];
        } else {
            out.push('$');
            literal = true;
            rest = after;
        }
    }
    if !rest.is_empty() {
        literal = true;
    }
    out.push_str(rest);
    Ok(Expanded { text: out, whole_reference: refs == 1 && !literal })
}

/// Largest file a `${file:path}` reference reads: configs and secrets are
/// small, and a reference to a huge file must not exhaust memory.
pub const MAX_FILE_REFERENCE_BYTES: u64 = 1 << 20;

/// The content of the file a `${file:path}` reference names, with one
/// trailing newline taken off (secrets files usually end with one).
pub fn read_file_reference(path: &str) -> Result<String, ExpandError> {
    if path.is_empty() {
        return Err(bad("empty path in \"${file:}\"", "write ${file:/path/to/file}"));
    }
    let hint = "give a file the agent's user can read";
    let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot read {path}: {e}"), hint))?;
    if meta.len() > MAX_FILE_REFERENCE_BYTES {
        return Err(bad(
            format!("{path} is {} bytes; a ${{file:}} reference reads at most {MAX_FILE_REFERENCE_BYTES}", meta.len()),
            "reference a smaller file",
        ));
    }
    let mut text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read {path}: {e}"), hint))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

fn resolve(body: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    if let Some(path) = body.strip_prefix("file:") {
        return read_file_reference(path);
    }
    let spec = match body.strip_prefix("env:") {
        Some(spec) => spec,
        None => match body.find(':') {
            Some(i) if !body[i..].starts_with(":-") => {
                return Err(bad(
                    format!("unsupported reference \"${{{body}}}\": sluice reads the env and file providers"),
                    "write ${env:VAR}, ${env:VAR:-default} or ${file:/path}",
                ))
            }
            _ => body,
        },
    };
    let (name, default) = match spec.split_once(":-") {
        Some((n, d)) => (n, Some(d)),
        None => (spec, None),
    };
    if name.is_empty() {
        return Err(bad(format!("empty variable name in \"${{{body}}}\""), "write ${env:VAR}"));
    }
    if !valid_name(name) {
        return Err(bad(
            format!("invalid variable name \"{name}\" in \"${{{body}}}\""),
            "names hold letters, digits and '_' and do not start with a digit",
        ));
    }
    Ok(match (env(name), default) {
        (Some(v), _) => v,
        (None, Some(d)) => d.to_string(),
        (None, None) => String::new(),
    })
}

/// A reference to an environment variable that is not set (and has no
/// default): the value it left empty is at `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsetVariable {
    pub path: String,
    pub name: String,
}

/// Expands every scalar value of the tree in place and reports duplicate
/// mapping keys, each error with its path and line. Variables that are not
/// set are noted in `unset`, so an error about the value they left empty
/// can name them.
pub fn expand_tree(
    node: &mut Node,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
    unset: &mut Vec<UnsetVariable>,
) {
    let line = node.line;
    match &mut node.value {
        Value::Scalar(text, style) => {
            if !text.contains('$') {
                return;
            }
            // `key: ${file:part.yaml}` takes the file's YAML as the value,
            // mapping or list included, as the Collector's file provider does.
            let whole_file = (*style != Style::Quoted)
                .then(|| text.strip_prefix("${file:").and_then(|r| r.strip_suffix('}')))
                .flatten()
                .filter(|f| !f.contains('}') && !f.contains("${"))
                .map(str::to_string);
            if let Some(file) = whole_file {
                if FILE_DEPTH.with(|d| d.get()) >= MAX_FILE_DEPTH {
                    let msg = format!("${{file:{file}}} is nested more than {MAX_FILE_DEPTH} files deep");
                    errors.push(ConfigError::new(path, Some(line), msg).with_hint("does a file reference itself?"));
                    return;
                }
                match read_file_reference(&file) {
                    Err(e) => {
                        let mut ce = ConfigError::new(path, Some(line), e.message);
                        ce.hint = e.hint;
                        errors.push(ce);
                        return;
                    }
                    Ok(content) => {
                        if let Ok(Some(mut parsed)) = super::node::parse(&content) {
                            if !matches!(parsed.value, Value::Scalar(..)) {
                                // Errors inside point at the line that references the file.
                                relines(&mut parsed, line);
                                *node = parsed;
                                FILE_DEPTH.with(|d| d.set(d.get() + 1));
                                expand_tree(node, path, env, errors, unset);
                                FILE_DEPTH.with(|d| d.set(d.get() - 1));
                                return;
                            }
                        }
                    }
                }
            }
            let missing = std::cell::RefCell::new(Vec::new());
            let noting = |name: &str| {
                let v = env(name);
                if v.is_none() {
                    missing.borrow_mut().push(name.to_string());
                }
                v
            };
            let expanded = expand_str(text, &noting);
            // A variable with a default is not a problem when unset.
            for name in missing.into_inner() {
                if !text.contains(&format!("{name}:-")) {
                    unset.push(UnsetVariable { path: path.to_string(), name });
                }
            }
            match expanded {
                Ok(e) => {
                    *style = match (*style, e.whole_reference) {
                        (Style::Quoted, _) => Style::Quoted,
                        (_, true) => Style::Plain,
                        (_, false) => Style::Text,
                    };
                    *text = e.text;
                }
                Err(e) => {
                    let mut ce = ConfigError::new(path, Some(line), e.message);
                    ce.hint = e.hint;
                    errors.push(ce);
                }
            }
        }
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_tree(item, &join(path, &i.to_string()), env, errors, unset);
            }
        }
        Value::Map(entries) => {
            check_duplicates(entries, path, errors);
            for e in entries.iter_mut() {
                expand_tree(&mut e.value, &join(path, &e.key), env, errors, unset);
            }
        }
    }
}

/// Most files a chain of whole-value `${file:}` references may go through.
const MAX_FILE_DEPTH: usize = 8;

thread_local! {
    /// Whole-value `${file:}` references being expanded on this thread.
    static FILE_DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Sets the line of every node of a tree (one read from another file).
fn relines(node: &mut Node, line: usize) {
    node.line = line;
    match &mut node.value {
        Value::Scalar(..) => {}
        Value::Seq(items) => items.iter_mut().for_each(|n| relines(n, line)),
        Value::Map(entries) => {
            for e in entries {
                e.key_line = line;
                relines(&mut e.value, line);
            }
        }
    }
}

fn check_duplicates(entries: &[Entry], path: &str, errors: &mut Vec<ConfigError>) {
    for (i, e) in entries.iter().enumerate() {
        if let Some(first) = entries[..i].iter().find(|p| p.key == e.key) {
            errors.push(
                ConfigError::new(join(path, &e.key), Some(e.key_line), format!("duplicate key \"{}\"", e.key))
                    .with_hint(format!("it is already defined on line {}", first.key_line)),
            );
        }
    }
}

/// Joins YAML path segments with `::`.
pub fn join(path: &str, seg: &str) -> String {
    if path.is_empty() {
        seg.to_string()
    } else {
        format!("{path}::{seg}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(k: &str) -> Option<String> {
        let m: HashMap<&str, &str> = [("PORT", "4317"), ("HOST", "collector"), ("EMPTY", "")].into_iter().collect();
        m.get(k).map(|v| v.to_string())
    }

    fn x(s: &str) -> Expanded {
        expand_str(s, &env).unwrap()
    }

    #[test]
    fn expands_both_forms_and_keeps_literals() {
        assert_eq!(x("${env:PORT}"), Expanded { text: "4317".into(), whole_reference: true });
        assert_eq!(x("${PORT}"), Expanded { text: "4317".into(), whole_reference: true });
        assert_eq!(x("${env:HOST}:${env:PORT}").text, "collector:4317");
        assert!(!x("${env:HOST}:${env:PORT}").whole_reference);
        assert_eq!(x("a$$b").text, "a$b");
        assert_eq!(x("$$${env:PORT}").text, "$4317");
        assert!(!x("$$${env:PORT}").whole_reference);
        assert_eq!(x("cost $5").text, "cost $5");
        assert_eq!(x("end$").text, "end$");
    }

    #[test]
    fn defaults_apply_only_when_unset() {
        assert_eq!(x("${env:NOPE:-8080}").text, "8080");
        assert_eq!(x("${env:PORT:-8080}").text, "4317");
        assert_eq!(x("${env:EMPTY:-x}").text, "");
        assert_eq!(x("${env:NOPE:-}").text, "");
    }

    #[test]
    fn unset_without_default_is_empty() {
        assert_eq!(x("${env:NOPE}"), Expanded { text: "".into(), whole_reference: true });
        assert_eq!(x("a${NOPE}b").text, "ab");
    }

    #[test]
    fn malformed_references_are_errors() {
        assert!(expand_str("${env:}", &env).unwrap_err().message.contains("empty variable name"));
        assert!(expand_str("${}", &env).unwrap_err().message.contains("empty variable name"));
        assert!(expand_str("abc ${env:PORT", &env).unwrap_err().message.contains("unterminated"));
        assert!(expand_str("${env:1X}", &env).unwrap_err().message.contains("invalid variable name"));
        assert!(expand_str("${s3:bucket/key}", &env).unwrap_err().message.contains("unsupported"));
        assert!(expand_str("${file:/nonexistent/x}", &env).unwrap_err().message.contains("cannot read /nonexistent/x"));
    }
}
