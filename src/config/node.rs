//! A YAML document read into a small tree that remembers the 1-based line of
//! every node and every mapping key.
//!
//! Guarantees: never panics and never recurses on the input's nesting while
//! parsing (events are consumed with an explicit stack), nesting deeper than
//! [`MAX_DEPTH`] and alias expansion beyond [`MAX_NODES`] nodes or
//! [`MAX_SCALAR_BYTES`] bytes of scalars and keys are refused, so the later
//! recursive passes (expansion, serde, drop) have bounded depth and size.
//! Anchors and aliases are resolved by copying the anchored node, once its
//! size is known to fit: an alias over a bound costs nothing.

use super::error::ConfigError;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Deepest nesting accepted; real configs use fewer than ten levels.
pub const MAX_DEPTH: usize = 64;
/// Most nodes a document may hold after alias expansion ("billion laughs").
pub const MAX_NODES: usize = 200_000;
/// Most bytes of scalars and mapping keys a document may hold after alias
/// expansion: one large anchored scalar repeated by many aliases is few
/// nodes but many bytes.
pub const MAX_SCALAR_BYTES: usize = 64 << 20;

/// How a scalar was written, which decides how it may be typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Unquoted: inferred with the YAML 1.2 core schema, and offered as
    /// whatever type the target asks for.
    Plain,
    /// Quoted or block scalar: always a string.
    Quoted,
    /// Built by env expansion inside a longer plain scalar: a string for
    /// inference, but still convertible when the target asks for a number.
    Text,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(String, Style),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub line: usize,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_line: usize,
    pub value: Node,
}

impl Node {
    pub fn null(line: usize) -> Node {
        Node { line, value: Value::Scalar(String::new(), Style::Plain) }
    }

    /// True for a plain `null`, `~` or empty scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar(s, Style::Plain) if is_null_text(s))
    }

    /// The entry of a mapping node with this key.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|e| e.key == key),
            _ => None,
        }
    }

    /// Line of the deepest key of `path` that exists below this node; this
    /// node's own line when none does. Used to place semantic errors.
    pub fn line_of(&self, path: &[&str]) -> usize {
        let mut node = self;
        let mut line = self.line;
        for k in path {
            // A numeric segment names an item of a sequence (`always_keep::0::regex`).
            if let (Value::Seq(items), Ok(i)) = (&node.value, k.parse::<usize>()) {
                match items.get(i) {
                    Some(item) => {
                        line = item.line;
                        node = item;
                        continue;
                    }
                    None => break,
                }
            }
            match node.get(k) {
                Some(e) => {
                    line = e.key_line;
                    node = &e.value;
                }
                None => break,
            }
        }
        line
    }

    fn count(&self) -> usize {
        match &self.value {
            Value::Scalar(..) => 1,
            Value::Seq(items) => 1 + items.iter().map(Node::count).sum::<usize>(),
            Value::Map(entries) => 1 + entries.iter().map(|e| e.value.count()).sum::<usize>(),
        }
    }

    /// Bytes of the scalars and mapping keys below this node.
    fn bytes(&self) -> usize {
        match &self.value {
            Value::Scalar(s, _) => s.len(),
            Value::Seq(items) => items.iter().map(Node::bytes).fold(0, usize::saturating_add),
            Value::Map(entries) => {
                entries.iter().map(|e| e.key.len().saturating_add(e.value.bytes())).fold(0, usize::saturating_add)
            }
        }
    }
}

pub fn is_null_text(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

enum Frame {
    Seq { line: usize, anchor: usize, items: Vec<Node> },
    Map { line: usize, anchor: usize, entries: Vec<Entry>, key: Option<(String, usize)> },
}

struct Builder {
    stack: Vec<Frame>,
    anchors: Vec<(usize, Node)>,
    root: Option<Node>,
    nodes: usize,
    bytes: usize,
}

fn line(mark: &Marker) -> usize {
    // yaml-rust2 lines are already 1-based; guard against 0 anyway.
    mark.line().max(1)
}

fn err(line: usize, msg: impl Into<String>) -> ConfigError {
    ConfigError::new("", Some(line), msg)
}

impl Builder {
    /// Adds a finished node to its parent (or makes it the root).
    fn push(&mut self, node: Node, anchor: usize) -> Result<(), ConfigError> {
        if anchor > 0 {
            self.anchors.push((anchor, node.clone()));
        }
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                Some((k, key_line)) => {
                    let mut node = node;
                    // An empty value's mark is the next token, often on a later
                    // line, and a block value starts below its key: errors about
                    // the value as a whole belong on the key's line.
                    node.line = node.line.min(key_line);
                    entries.push(Entry { key: k, key_line, value: node });
                    Ok(())
                }
                None => match node.value {
                    Value::Scalar(s, _) => {
                        *key = Some((s, node.line));
                        Ok(())
                    }
                    _ => Err(err(node.line, "mapping keys must be plain strings, not lists or mappings")),
                },
            },
        }
    }

    fn open(&mut self, frame: Frame, line: usize) -> Result<(), ConfigError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(err(line, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        self.stack.push(frame);
        Ok(())
    }

    fn count(&mut self, n: usize, bytes: usize, line: usize) -> Result<(), ConfigError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(err(line, format!("document too large: more than {MAX_NODES} nodes after alias expansion")));
        }
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > MAX_SCALAR_BYTES {
            return Err(ConfigError::new(
                "",
                Some(line),
                format!(
                    "document too large: more than {} MiB of scalars after alias expansion (an alias repeats its \
                     anchor's whole text)",
                    MAX_SCALAR_BYTES >> 20
                ),
            )
            .with_hint("anchor small settings, or repeat a large value with ${env:...} instead of many aliases"));
        }
        Ok(())
    }
}

/// Parses the first YAML document of `text`. An empty document gives `None`.
pub fn parse(text: &str) -> Result<Option<Node>, ConfigError> {
    let mut parser = Parser::new_from_str(text);
    let mut b = Builder { stack: Vec::new(), anchors: Vec::new(), root: None, nodes: 0, bytes: 0 };
    let mut documents = 0usize;
    loop {
        let (ev, mark) = parser
            .next_token()
            .map_err(|e| ConfigError::new("", Some(line(e.marker())), format!("YAML syntax error: {}", e.info())))?;
        let l = line(&mark);
        match ev {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(err(l, "only one YAML document is allowed in a config file"));
                }
            }
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => {}
            Event::Alias(id) => {
                let Some(i) = b.anchors.iter().rposition(|(a, _)| *a == id) else {
                    return Err(err(l, "alias refers to an unknown anchor"));
                };
                // Sized before it is copied: an alias over a bound allocates nothing.
                let (count, bytes, deep) = {
                    let n = &b.anchors[i].1;
                    (n.count(), n.bytes(), depth(n))
                };
                b.count(count, bytes, l)?;
                if b.stack.len() + deep > MAX_DEPTH {
                    return Err(err(l, format!("nesting deeper than {MAX_DEPTH} levels")));
                }
                let node = b.anchors[i].1.clone();
                b.push(node, 0)?;
            }
            Event::Scalar(s, style, anchor, _tag) => {
                let key_or_value = s.len();
                b.count(1, key_or_value, l)?;
                let style = match style {
                    TScalarStyle::Plain => Style::Plain,
                    _ => Style::Quoted,
                };
                b.push(Node { line: l, value: Value::Scalar(s, style) }, anchor)?;
            }
            Event::SequenceStart(anchor, _) => {
                b.count(1, 0, l)?;
                b.open(Frame::Seq { line: l, anchor, items: Vec::new() }, l)?;
            }
            Event::MappingStart(anchor, _) => {
                b.count(1, 0, l)?;
                b.open(Frame::Map { line: l, anchor, entries: Vec::new(), key: None }, l)?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match b.stack.pop() {
                    Some(Frame::Seq { line, anchor, items }) => (Node { line, value: Value::Seq(items) }, anchor),
                    Some(Frame::Map { line, anchor, entries, .. }) => {
                        (Node { line, value: Value::Map(entries) }, anchor)
                    }
                    None => return Err(err(l, "YAML syntax error: unbalanced collection end")),
                };
                b.push(node, anchor)?;
            }
        }
    }
    Ok(b.root)
}

fn depth(node: &Node) -> usize {
    match &node.value {
        Value::Scalar(..) => 0,
        Value::Seq(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Map(entries) => 1 + entries.iter().map(|e| depth(&e.value)).max().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_lines_and_resolves_aliases() {
        let root = parse("a: &x\n  b: 1\nc: *x\n").unwrap().unwrap();
        let a = root.get("a").unwrap();
        assert_eq!(a.key_line, 1);
        assert_eq!(a.value.get("b").unwrap().key_line, 2);
        let c = root.get("c").unwrap();
        assert_eq!(c.key_line, 3);
        assert_eq!(c.value.get("b").map(|e| &e.value.value), Some(&Value::Scalar("1".into(), Style::Plain)));
    }

    #[test]
    fn syntax_error_has_line() {
        let e = parse("a: 1\nb: [1, 2\n").unwrap_err();
        assert!(e.line.is_some());
        assert!(e.message.contains("YAML syntax error"), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let text = "[".repeat(100_000);
        assert!(parse(&text).is_err());
        let text = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("nesting") || e.message.contains("recursion"), "{e}");
    }

    #[test]
    fn billion_laughs_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(parse(&text).unwrap_err().message.contains("too large"));
    }

    /// Issue 16: a 1 MiB anchored scalar with 150k aliases is few nodes but
    /// 150 GiB of text; `validate` reached 2.5 GB before. Refused at the alias
    /// that passes the byte bound, with its line, before copying it.
    #[test]
    fn aliases_of_a_large_scalar_are_bounded_by_bytes() {
        let mut text = format!("big: &big \"{}\"\nlist:\n", "x".repeat(1 << 20));
        for _ in 0..150_000 {
            text.push_str("  - *big\n");
        }
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("MiB of scalars after alias expansion"), "{e}");
        // The anchor (1 MiB and a bit) and 63 aliases pass 64 MiB: the 63rd alias, on line 2 + 63.
        assert_eq!(e.line, Some(2 + (MAX_SCALAR_BYTES >> 20) - 1), "{e}");
        assert!(e.hint.as_deref().is_some_and(|h| h.contains("anchor")), "{e:?}");

        // Many aliases of a small anchor are fine.
        let mut text = String::from("a: &a \"0123456789\"\nlist:\n");
        for _ in 0..1000 {
            text.push_str("  - *a\n");
        }
        assert!(parse(&text).is_ok());
    }
}
