//! The OTTL grammar: text to a syntax tree, with the column of every node.
//!
//! Hand-written recursive descent with precedence climbing, one token of
//! look-ahead and no backtracking, so parsing is linear in the statement's
//! length; recursion is bounded by [`Limits::max_depth`]. The grammar is
//! the Collector's (pkg/ottl `grammar.go`): a statement is
//! `editor(args) [where condition]`; conditions combine comparisons,
//! boolean literals and converter calls with `not`, `and`, `or` and
//! parentheses; values are literals, enums, paths, converter calls, lists,
//! maps and `+ - * /` math. Whether a sub-expression may stand where it is
//! (a path as a condition, a comparison as an argument) is checked when the
//! tree is compiled, where the error can say what was meant.

use super::{Limits, OttlError};

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bytes(Vec<u8>),
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Dot,
    Colon,
    Assign,
    Cmp(CmpOp),
    Plus,
    Minus,
    Star,
    Slash,
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MathOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// A node of the tree and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: usize,
    pub ast: Ast,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Ast {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    /// An upper-case name not followed by `(`: an enum, or a function named
    /// as an argument.
    Enum(String),
    /// `a.b.c["k"][0]`: the names, and the keys after the last name.
    Path {
        names: Vec<String>,
        keys: Vec<Node>,
    },
    /// `Name(args)` or `name(args)`, with keys after it (`Split(x, ",")[0]`).
    Call {
        name: String,
        args: Vec<Arg>,
        keys: Vec<Node>,
    },
    List(Vec<Node>),
    Map(Vec<(String, Node)>),
    Math(MathOp, Box<Node>, Box<Node>),
    Cmp(CmpOp, Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    /// `( expr )`, kept so that `(a) == b` and `(a and b)` read as written.
    Paren(Box<Node>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub name: Option<String>,
    pub value: Node,
}

/// A parsed statement: the editor call and its `where` condition.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementAst {
    pub editor: Node,
    pub condition: Option<Node>,
}

struct Lexer<'s> {
    text: &'s str,
    pos: usize,
}

impl<'s> Lexer<'s> {
    fn err(&self, at: usize, msg: impl Into<String>, hint: Option<&str>) -> OttlError {
        OttlError::at(self.text, at, msg, hint)
    }

    fn next(&mut self) -> Result<(usize, Tok), OttlError> {
        let bytes = self.text.as_bytes();
        while self.pos < bytes.len() && bytes[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(&c) = bytes.get(self.pos) else { return Ok((start, Tok::End)) };
        let two = bytes.get(self.pos + 1).copied();
        let simple = |t: Tok, n: usize| (t, n);
        let (tok, len) = match c {
            b'(' => simple(Tok::LParen, 1),
            b')' => simple(Tok::RParen, 1),
            b'[' => simple(Tok::LBracket, 1),
            b']' => simple(Tok::RBracket, 1),
            b'{' => simple(Tok::LBrace, 1),
            b'}' => simple(Tok::RBrace, 1),
            b',' => simple(Tok::Comma, 1),
            b':' => simple(Tok::Colon, 1),
            b'+' => simple(Tok::Plus, 1),
            b'-' => simple(Tok::Minus, 1),
            b'*' => simple(Tok::Star, 1),
            b'/' => simple(Tok::Slash, 1),
            b'=' if two == Some(b'=') => simple(Tok::Cmp(CmpOp::Eq), 2),
            b'=' => simple(Tok::Assign, 1),
            b'!' if two == Some(b'=') => simple(Tok::Cmp(CmpOp::Ne), 2),
            b'<' if two == Some(b'=') => simple(Tok::Cmp(CmpOp::Le), 2),
            b'<' => simple(Tok::Cmp(CmpOp::Lt), 1),
            b'>' if two == Some(b'=') => simple(Tok::Cmp(CmpOp::Ge), 2),
            b'>' => simple(Tok::Cmp(CmpOp::Gt), 1),
            b'"' => return self.string(start),
            b'0' if matches!(two, Some(b'x') | Some(b'X')) => return self.bytes_lit(start),
            b'0'..=b'9' => return self.number(start),
            b'.' if two.is_some_and(|d| d.is_ascii_digit()) => return self.number(start),
            b'.' => simple(Tok::Dot, 1),
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let end = self.text[start..]
                    .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                    .map_or(self.text.len(), |e| start + e);
                self.pos = end;
                return Ok((start, Tok::Ident(self.text[start..end].to_string())));
            }
            _ => {
                let ch = self.text[start..].chars().next().unwrap_or('?');
                let hint = match ch {
                    '\'' => Some("strings are written in double quotes"),
                    '&' | '|' => Some("write `and`, `or`"),
                    '!' => Some("write `not` for negation, `!=` for inequality"),
                    _ => None,
                };
                return Err(self.err(start, format!("unexpected character {ch:?}"), hint));
            }
        };
        self.pos += len;
        Ok((start, tok))
    }

    fn string(&mut self, start: usize) -> Result<(usize, Tok), OttlError> {
        let mut out = String::new();
        let mut chars = self.text[start + 1..].char_indices();
        while let Some((i, ch)) = chars.next() {
            let at = start + 1 + i;
            match ch {
                '"' => {
                    self.pos = at + 1;
                    return Ok((start, Tok::Str(out)));
                }
                '\\' => {
                    let Some((_, e)) = chars.next() else { break };
                    let simple = match e {
                        'n' => Some('\n'),
                        't' => Some('\t'),
                        'r' => Some('\r'),
                        'a' => Some('\u{7}'),
                        'b' => Some('\u{8}'),
                        'f' => Some('\u{c}'),
                        'v' => Some('\u{b}'),
                        '\\' => Some('\\'),
                        '"' => Some('"'),
                        '\'' => Some('\''),
                        _ => None,
                    };
                    if let Some(c) = simple {
                        out.push(c);
                        continue;
                    }
                    let digits = match e {
                        'x' => 2,
                        'u' => 4,
                        'U' => 8,
                        _ => {
                            return Err(self.err(
                                at,
                                format!("unknown escape \\{e} in a string"),
                                Some("a backslash for a regex is written twice: \"\\\\d+\""),
                            ))
                        }
                    };
                    let mut code = 0u32;
                    for _ in 0..digits {
                        match chars.next().and_then(|(_, d)| d.to_digit(16)) {
                            Some(d) => code = code * 16 + d,
                            None => return Err(self.err(at, "bad hexadecimal escape in a string", None)),
                        }
                    }
                    match char::from_u32(code) {
                        Some(c) => out.push(c),
                        None => return Err(self.err(at, "escape is not a valid character", None)),
                    }
                }
                c => out.push(c),
            }
        }
        Err(self.err(start, "string is not closed", Some("end it with a double quote")))
    }

    fn bytes_lit(&mut self, start: usize) -> Result<(usize, Tok), OttlError> {
        let digits_start = start + 2;
        let end = self.text[digits_start..]
            .find(|ch: char| !ch.is_ascii_alphanumeric())
            .map_or(self.text.len(), |e| digits_start + e);
        self.pos = end;
        match super::value::unhex(&self.text[digits_start..end]) {
            Some(b) if !b.is_empty() => Ok((start, Tok::Bytes(b))),
            _ => Err(self.err(start, "bad bytes literal", Some("write an even number of hex digits: 0x0a1b"))),
        }
    }

    fn number(&mut self, start: usize) -> Result<(usize, Tok), OttlError> {
        let end = self.text[start..]
            .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
            .map_or(self.text.len(), |e| start + e);
        // `1e3` and `12abc` are not numbers.
        if self.text[end..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            return Err(self.err(start, "bad number", None));
        }
        self.pos = end;
        let text = &self.text[start..end];
        if text.contains('.') {
            text.parse::<f64>().map(|f| (start, Tok::Float(f))).map_err(|_| self.err(start, "bad number", None))
        } else {
            text.parse::<i64>()
                .map(|i| (start, Tok::Int(i)))
                .map_err(|_| self.err(start, "integer out of range (64-bit signed)", None))
        }
    }
}

struct Parser<'s> {
    lex: Lexer<'s>,
    tok: Tok,
    at: usize,
    depth: usize,
    operators: usize,
    limits: Limits,
}

impl<'s> Parser<'s> {
    fn new(text: &'s str, limits: Limits) -> Result<Self, OttlError> {
        if text.len() > limits.max_statement_len {
            return Err(OttlError::at(
                text,
                limits.max_statement_len,
                format!("statement is {} bytes long, over the limit of {}", text.len(), limits.max_statement_len),
                Some("split it into several statements"),
            ));
        }
        let mut lex = Lexer { text, pos: 0 };
        let (at, tok) = lex.next()?;
        Ok(Parser { lex, tok, at, depth: 0, operators: 0, limits })
    }

    fn bump(&mut self) -> Result<(usize, Tok), OttlError> {
        let (at, tok) = self.lex.next()?;
        let prev_at = std::mem::replace(&mut self.at, at);
        Ok((prev_at, std::mem::replace(&mut self.tok, tok)))
    }

    fn err(&self, msg: impl Into<String>, hint: Option<&str>) -> OttlError {
        OttlError::at(self.lex.text, self.at, msg, hint)
    }

    fn expect(&mut self, t: Tok, what: &str) -> Result<usize, OttlError> {
        if self.tok == t {
            Ok(self.bump()?.0)
        } else {
            Err(self.err(format!("expected {what}, found {}", describe(&self.tok)), None))
        }
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(&self.tok, Tok::Ident(i) if i == w)
    }

    fn enter(&mut self) -> Result<(), OttlError> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(self.err(
                format!("expression nested more than {} levels deep", self.limits.max_depth),
                Some("flatten the expression or split the statement"),
            ));
        }
        Ok(())
    }

    /// Counts one binary operator against [`Limits::max_operators`].
    fn operator(&mut self) -> Result<(), OttlError> {
        self.operators += 1;
        if self.operators > self.limits.max_operators {
            return Err(self.err(
                format!("more than {} operators in one statement", self.limits.max_operators),
                Some("split it into several statements or conditions"),
            ));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Node, OttlError> {
        self.enter()?;
        let r = self.or();
        self.depth -= 1;
        r
    }

    fn or(&mut self) -> Result<Node, OttlError> {
        let mut left = self.and()?;
        while self.is_word("or") {
            self.operator()?;
            self.bump()?;
            let right = self.and()?;
            left = Node { pos: left.pos, ast: Ast::Or(Box::new(left), Box::new(right)) };
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Node, OttlError> {
        let mut left = self.not()?;
        while self.is_word("and") {
            self.operator()?;
            self.bump()?;
            let right = self.not()?;
            left = Node { pos: left.pos, ast: Ast::And(Box::new(left), Box::new(right)) };
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Node, OttlError> {
        if self.is_word("not") {
            let (pos, _) = self.bump()?;
            self.enter()?;
            let inner = self.not();
            self.depth -= 1;
            return Ok(Node { pos, ast: Ast::Not(Box::new(inner?)) });
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Node, OttlError> {
        let left = self.additive()?;
        if let Tok::Cmp(op) = self.tok {
            self.operator()?;
            self.bump()?;
            let right = self.additive()?;
            if let Tok::Cmp(_) = self.tok {
                return Err(self.err("comparisons do not chain", Some("join them with `and`: a < b and b < c")));
            }
            return Ok(Node { pos: left.pos, ast: Ast::Cmp(op, Box::new(left), Box::new(right)) });
        }
        Ok(left)
    }

    fn additive(&mut self) -> Result<Node, OttlError> {
        let mut left = self.multiplicative()?;
        loop {
            let op = match self.tok {
                Tok::Plus => MathOp::Add,
                Tok::Minus => MathOp::Sub,
                _ => return Ok(left),
            };
            self.operator()?;
            self.bump()?;
            let right = self.multiplicative()?;
            left = Node { pos: left.pos, ast: Ast::Math(op, Box::new(left), Box::new(right)) };
        }
    }

    fn multiplicative(&mut self) -> Result<Node, OttlError> {
        let mut left = self.unary()?;
        loop {
            let op = match self.tok {
                Tok::Star => MathOp::Mul,
                Tok::Slash => MathOp::Div,
                _ => return Ok(left),
            };
            self.operator()?;
            self.bump()?;
            let right = self.unary()?;
            left = Node { pos: left.pos, ast: Ast::Math(op, Box::new(left), Box::new(right)) };
        }
    }

    fn unary(&mut self) -> Result<Node, OttlError> {
        if self.tok == Tok::Minus {
            let (pos, _) = self.bump()?;
            return match self.bump()? {
                (_, Tok::Int(i)) => Ok(Node { pos, ast: Ast::Int(-i) }),
                (_, Tok::Float(f)) => Ok(Node { pos, ast: Ast::Float(-f) }),
                _ => Err(OttlError::at(
                    self.lex.text,
                    pos,
                    "a minus sign stands only before a number",
                    Some("write 0 - x to negate a value"),
                )),
            };
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Node, OttlError> {
        let pos = self.at;
        match self.tok.clone() {
            Tok::Str(s) => {
                self.bump()?;
                Ok(Node { pos, ast: Ast::Str(s) })
            }
            Tok::Int(i) => {
                self.bump()?;
                Ok(Node { pos, ast: Ast::Int(i) })
            }
            Tok::Float(f) => {
                self.bump()?;
                Ok(Node { pos, ast: Ast::Float(f) })
            }
            Tok::Bytes(b) => {
                self.bump()?;
                Ok(Node { pos, ast: Ast::Bytes(b) })
            }
            Tok::LParen => {
                self.bump()?;
                let inner = self.expr()?;
                self.expect(Tok::RParen, "`)`")?;
                Ok(Node { pos, ast: Ast::Paren(Box::new(inner)) })
            }
            Tok::LBracket => {
                self.bump()?;
                self.enter()?;
                let mut items = Vec::new();
                while self.tok != Tok::RBracket {
                    items.push(self.expr()?);
                    if self.tok == Tok::Comma {
                        self.bump()?;
                    } else {
                        break;
                    }
                }
                self.depth -= 1;
                self.expect(Tok::RBracket, "`,` or `]`")?;
                Ok(Node { pos, ast: Ast::List(items) })
            }
            Tok::LBrace => {
                self.bump()?;
                self.enter()?;
                let mut entries = Vec::new();
                while self.tok != Tok::RBrace {
                    let key = match self.bump()? {
                        (_, Tok::Str(s)) => s,
                        (at, t) => {
                            return Err(OttlError::at(
                                self.lex.text,
                                at,
                                format!("expected a string map key, found {}", describe(&t)),
                                Some("map literals read {\"key\": value}"),
                            ))
                        }
                    };
                    self.expect(Tok::Colon, "`:`")?;
                    entries.push((key, self.expr()?));
                    if self.tok == Tok::Comma {
                        self.bump()?;
                    } else {
                        break;
                    }
                }
                self.depth -= 1;
                self.expect(Tok::RBrace, "`,` or `}`")?;
                Ok(Node { pos, ast: Ast::Map(entries) })
            }
            Tok::Ident(name) => {
                self.bump()?;
                match name.as_str() {
                    "nil" => return Ok(Node { pos, ast: Ast::Nil }),
                    "true" => return Ok(Node { pos, ast: Ast::Bool(true) }),
                    "false" => return Ok(Node { pos, ast: Ast::Bool(false) }),
                    "where" | "and" | "or" | "not" => {
                        return Err(OttlError::at(
                            self.lex.text,
                            pos,
                            format!("expected a value, found `{name}`"),
                            None,
                        ))
                    }
                    _ => {}
                }
                if self.tok == Tok::LParen {
                    let args = self.args()?;
                    let keys = self.keys()?;
                    return Ok(Node { pos, ast: Ast::Call { name, args, keys } });
                }
                if name.starts_with(|c: char| c.is_ascii_uppercase()) {
                    return Ok(Node { pos, ast: Ast::Enum(name) });
                }
                let mut names = vec![name];
                let mut keys = self.keys()?;
                while self.tok == Tok::Dot {
                    if !keys.is_empty() {
                        return Err(self.err(
                            "a path continues after an index",
                            Some("indexes come last: attributes[\"a\"][\"b\"]"),
                        ));
                    }
                    self.bump()?;
                    match self.bump()? {
                        (_, Tok::Ident(n)) => names.push(n),
                        (at, t) => {
                            return Err(OttlError::at(
                                self.lex.text,
                                at,
                                format!("expected a field name after `.`, found {}", describe(&t)),
                                None,
                            ))
                        }
                    }
                    keys = self.keys()?;
                }
                Ok(Node { pos, ast: Ast::Path { names, keys } })
            }
            t => Err(self.err(format!("expected a value, found {}", describe(&t)), None)),
        }
    }

    fn args(&mut self) -> Result<Vec<Arg>, OttlError> {
        self.expect(Tok::LParen, "`(`")?;
        self.enter()?;
        let mut args = Vec::new();
        while self.tok != Tok::RParen {
            let mut name = None;
            if let Tok::Ident(n) = &self.tok {
                // `name = value`: look one token further without consuming.
                let save = (self.lex.pos, self.at);
                let n = n.clone();
                let mut probe = Lexer { text: self.lex.text, pos: self.lex.pos };
                if let Ok((_, Tok::Assign)) = probe.next() {
                    self.bump()?;
                    self.bump()?;
                    name = Some(n);
                } else {
                    let _ = save;
                }
            }
            let value = self.expr()?;
            args.push(Arg { name, value });
            if self.tok == Tok::Comma {
                self.bump()?;
            } else {
                break;
            }
        }
        self.depth -= 1;
        self.expect(Tok::RParen, "`,` or `)`")?;
        Ok(args)
    }

    fn keys(&mut self) -> Result<Vec<Node>, OttlError> {
        let mut keys = Vec::new();
        while self.tok == Tok::LBracket {
            self.bump()?;
            keys.push(self.expr()?);
            self.expect(Tok::RBracket, "`]`")?;
        }
        Ok(keys)
    }

    fn finish(&mut self) -> Result<(), OttlError> {
        if self.tok != Tok::End {
            let hint = match &self.tok {
                Tok::Ident(w) if w == "where" => Some("a condition has no `where`"),
                Tok::Ident(_) => Some("join conditions with `and` / `or`"),
                _ => None,
            };
            return Err(self.err(format!("unexpected {} after the end", describe(&self.tok)), hint));
        }
        Ok(())
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(i) => format!("`{i}`"),
        Tok::Str(s) => format!("string {s:?}"),
        Tok::Int(i) => format!("number {i}"),
        Tok::Float(f) => format!("number {f}"),
        Tok::Bytes(_) => "bytes".to_string(),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::LBracket => "`[`".into(),
        Tok::RBracket => "`]`".into(),
        Tok::LBrace => "`{`".into(),
        Tok::RBrace => "`}`".into(),
        Tok::Comma => "`,`".into(),
        Tok::Dot => "`.`".into(),
        Tok::Colon => "`:`".into(),
        Tok::Assign => "`=`".into(),
        Tok::Cmp(op) => format!("`{}`", op.as_str()),
        Tok::Plus => "`+`".into(),
        Tok::Minus => "`-`".into(),
        Tok::Star => "`*`".into(),
        Tok::Slash => "`/`".into(),
        Tok::End => "the end of the statement".into(),
    }
}

/// Parses `editor(args) [where condition]`.
pub fn parse_statement(text: &str, limits: Limits) -> Result<StatementAst, OttlError> {
    let mut p = Parser::new(text, limits)?;
    let pos = p.at;
    let name = match &p.tok {
        Tok::Ident(n) => n.clone(),
        t => {
            return Err(p.err(
                format!("expected an editor call, found {}", describe(t)),
                Some("e.g. set(attributes[\"k\"], \"v\")"),
            ))
        }
    };
    p.bump()?;
    if p.tok != Tok::LParen {
        return Err(p.err(
            format!("expected `(` after `{name}`: a statement is an editor call"),
            Some("e.g. set(attributes[\"k\"], \"v\"); a condition belongs in a `conditions` list"),
        ));
    }
    let args = p.args()?;
    let keys = p.keys()?;
    let editor = Node { pos, ast: Ast::Call { name, args, keys } };
    let condition = if p.is_word("where") {
        p.bump()?;
        Some(p.expr()?)
    } else {
        None
    };
    p.finish()?;
    Ok(StatementAst { editor, condition })
}

/// Parses a boolean expression (a `conditions` entry, a filter condition).
pub fn parse_condition(text: &str, limits: Limits) -> Result<Node, OttlError> {
    let mut p = Parser::new(text, limits)?;
    if p.tok == Tok::End {
        return Err(p.err("the condition is empty", Some("e.g. attributes[\"k\"] == \"v\"")));
    }
    let n = p.expr()?;
    p.finish()?;
    Ok(n)
}
