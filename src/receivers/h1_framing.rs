//! Finds HTTP/1.1 requests that carry both `Content-Length` and
//! `Transfer-Encoding`, which hyper cannot report.
//!
//! RFC 9112 §6.1 lets a server reject such a request (a request-smuggling
//! vector: a proxy in front may frame the body by the length, the agent by
//! the chunks). hyper frames it by `Transfer-Encoding`, drops the
//! `Content-Length` header before the service sees the request and closes
//! the connection after the answer; nothing in the request says both were
//! sent. So the receiver's connection reads its bytes through a
//! [`Framing`] that follows the request framing as hyper does (heads,
//! `Content-Length` bodies, chunked bodies) and records the number of the
//! first request whose head had both; the service numbers the requests it
//! is given on that connection, and answers that one 400.
//!
//! Guarantees: the tracker allocates at most [`MAX_HEAD`] bytes for a head
//! (or a chunk-size line) and gives up, flagging nothing, on anything it
//! does not follow (HTTP/2, an upgrade, a head longer than that, framing
//! hyper itself refuses); it never changes or holds back the bytes. Requests
//! are numbered in the order hyper parses them, which is the order the
//! service is called in on an HTTP/1 connection; hyper reads the head of a
//! request before calling the service for it, so the flag is set in time.

use std::sync::atomic::{AtomicU64, Ordering};

/// Longest request head (or chunk-size line) followed; hyper's own
/// default head buffer is larger, but OTLP heads are a few hundred bytes.
pub const MAX_HEAD: usize = 64 * 1024;

/// The request number (1-based) of the first request that carried both
/// headers; 0 while none has. Shared by the connection's stream and its
/// service.
#[derive(Debug, Default)]
pub struct Ambiguous(AtomicU64);

impl Ambiguous {
    /// Whether request number `n` (1-based) of the connection carried both headers.
    pub fn is(&self, n: u64) -> bool {
        n != 0 && self.0.load(Ordering::Acquire) == n
    }
}

/// Marks a request (in its extensions) that carried both `Content-Length`
/// and `Transfer-Encoding`: the handler answers it 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmbiguousFraming;

#[derive(Debug, PartialEq)]
enum State {
    /// Reading a request head: the bytes so far.
    Head(Vec<u8>),
    /// A body of this many bytes left.
    Body(u64),
    /// A chunk-size line: the bytes so far.
    ChunkSize(Vec<u8>),
    /// Chunk data left, then its CRLF.
    ChunkData(u64),
    /// The line ending after chunk data.
    ChunkEnd,
    /// Trailer lines after the last chunk: the bytes of the current line.
    Trailers(Vec<u8>),
    /// Nothing more to follow (HTTP/2, an upgrade, something malformed, or
    /// the flagged request: hyper closes the connection after it).
    Done,
}

/// The framing of one connection's inbound bytes.
#[derive(Debug)]
pub struct Framing {
    state: State,
    requests: u64,
}

impl Default for Framing {
    fn default() -> Self {
        Framing { state: State::Head(Vec::new()), requests: 0 }
    }
}

/// The request line of HTTP/2's connection preface (prior knowledge).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

impl Framing {
    /// Follows `bytes`, the next bytes read from the client; sets `flag`
    /// at the first request that carries both headers.
    pub fn feed(&mut self, mut bytes: &[u8], flag: &Ambiguous) {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Done => return,
                State::Head(buf) => {
                    let mut complete = false;
                    let mut used = 0;
                    for &b in bytes {
                        used += 1;
                        if buf.is_empty() && (b == b'\r' || b == b'\n') {
                            // Blank lines before the request line are skipped, as hyper does.
                            continue;
                        }
                        if b == b'\n' && (buf.ends_with(b"\n") || buf.ends_with(b"\n\r")) {
                            complete = true;
                            break;
                        }
                        buf.push(b);
                        if buf.len() > MAX_HEAD {
                            self.state = State::Done;
                            return;
                        }
                    }
                    bytes = &bytes[used..];
                    if complete {
                        let head = std::mem::take(buf);
                        self.state = self.after_head(&head, flag);
                    }
                }
                State::Body(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    *left -= n;
                    bytes = &bytes[n as usize..];
                    if *left == 0 {
                        self.state = State::Head(Vec::new());
                    }
                }
                State::ChunkSize(line) | State::Trailers(line) => {
                    let (take, ended) = match bytes.iter().position(|&b| b == b'\n') {
                        Some(i) => (i + 1, true),
                        None => (bytes.len(), false),
                    };
                    if line.len() + take > MAX_HEAD {
                        self.state = State::Done;
                        return;
                    }
                    line.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if ended {
                        let line = std::mem::take(line);
                        self.state = match self.state {
                            State::ChunkSize(_) => match chunk_size(&line) {
                                Some(0) => State::Trailers(Vec::new()),
                                Some(n) => State::ChunkData(n),
                                None => State::Done,
                            },
                            _ if line == b"\r\n" || line == b"\n" => State::Head(Vec::new()),
                            _ => State::Trailers(Vec::new()),
                        };
                    }
                }
                State::ChunkData(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    *left -= n;
                    bytes = &bytes[n as usize..];
                    if *left == 0 {
                        self.state = State::ChunkEnd;
                    }
                }
                State::ChunkEnd => {
                    // CRLF (or a bare LF, which hyper also takes).
                    match bytes[0] {
                        b'\r' => bytes = &bytes[1..],
                        b'\n' => {
                            bytes = &bytes[1..];
                            self.state = State::ChunkSize(Vec::new());
                        }
                        _ => self.state = State::Done,
                    }
                }
            }
        }
    }

    /// What follows a complete head, and whether it is the ambiguous one.
    fn after_head(&mut self, head: &[u8], flag: &Ambiguous) -> State {
        let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let request_line = lines.next().unwrap_or_default();
        if request_line == H2_PREFACE {
            return State::Done;
        }
        self.requests += 1;
        let (mut length, mut te, mut chunked, mut upgrade) = (None::<u64>, false, false, false);
        for line in lines {
            let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
            let name = &line[..colon];
            let value = trim(&line[colon + 1..]);
            if name.eq_ignore_ascii_case(b"content-length") {
                match std::str::from_utf8(value).ok().and_then(|v| v.parse::<u64>().ok()) {
                    Some(n) => length = Some(n),
                    None if !te => return State::Done,
                    None => {}
                }
                if te {
                    flag_once(flag, self.requests);
                    return State::Done;
                }
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                te = true;
                chunked = value.rsplit(|&b| b == b',').next().is_some_and(|c| trim(c).eq_ignore_ascii_case(b"chunked"));
                if length.is_some() {
                    flag_once(flag, self.requests);
                    return State::Done;
                }
            } else if name.eq_ignore_ascii_case(b"upgrade") {
                upgrade = true;
            }
        }
        if upgrade || request_line.starts_with(b"CONNECT ") {
            return State::Done;
        }
        match (te, chunked, length) {
            (true, true, _) => State::ChunkSize(Vec::new()),
            // hyper refuses a Transfer-Encoding that does not end in chunked.
            (true, false, _) => State::Done,
            (false, _, Some(0)) | (false, _, None) => State::Head(Vec::new()),
            (false, _, Some(n)) => State::Body(n),
        }
    }

    /// Requests whose heads were read so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }
}

fn flag_once(flag: &Ambiguous, n: u64) {
    let _ = flag.0.compare_exchange(0, n, Ordering::AcqRel, Ordering::Acquire);
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &v[start..end.max(start)]
}

/// A chunk-size line's size (hex, before any `;` extension).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let size = line.split(|&b| b == b';').next()?;
    let size = trim(size);
    if size.is_empty() || size.len() > 16 {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(size).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` split at every `step` bytes; returns the flagged request.
    fn flagged(wire: &[u8], step: usize) -> (u64, u64) {
        let (mut f, flag) = (Framing::default(), Ambiguous::default());
        for chunk in wire.chunks(step) {
            f.feed(chunk, &flag);
        }
        (flag.0.load(Ordering::Acquire), f.requests())
    }

    fn all_splits(wire: &[u8]) -> Vec<(u64, u64)> {
        (1..=wire.len().max(1)).map(|step| flagged(wire, step)).collect()
    }

    const PLAIN: &str = "POST /v1/logs HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
    const CHUNKED: &str =
        "POST /v1/logs HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n";

    #[test]
    fn both_headers_flag_that_request_in_either_order_however_split() {
        let cl_te = "POST /v1/logs HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        let te_cl = "POST /v1/logs HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n0\r\n\r\n";
        for wire in [cl_te, te_cl] {
            assert!(all_splits(wire.as_bytes()).iter().all(|&(f, n)| f == 1 && n == 1), "{wire}");
            // Third on a keep-alive connection, after a length body and a chunked one.
            let three = format!("{PLAIN}{CHUNKED}{wire}");
            assert!(all_splits(three.as_bytes()).iter().all(|&(f, n)| f == 3 && n == 3), "{three}");
        }
    }

    #[test]
    fn one_framing_header_flags_nothing_and_bodies_are_skipped() {
        // A body that looks like a head must not be read as one.
        let inner = "GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let tricky = format!("POST /v1/logs HTTP/1.1\r\nContent-Length: {}\r\n\r\n{inner}", inner.len());
        let wire = format!("{PLAIN}{CHUNKED}{tricky}{PLAIN}");
        assert!(all_splits(wire.as_bytes()).iter().all(|&(f, n)| f == 0 && n == 4));
        // Chunk data holding a head, and a bare-LF chunk ending.
        let data = "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let chunk = format!(
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n{:x}\r\n{data}\n0\r\n\r\n{PLAIN}",
            data.len()
        );
        assert!(all_splits(chunk.as_bytes()).iter().all(|&(f, n)| f == 0 && n == 2));
    }

    #[test]
    fn what_it_does_not_follow_it_leaves_alone() {
        let (mut f, flag) = (Framing::default(), Ambiguous::default());
        f.feed(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", &flag);
        f.feed(b"Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", &flag);
        assert_eq!((flag.0.load(Ordering::Acquire), f.requests()), (0, 0));
        assert_eq!(f.state, State::Done);
        // A head past the bound: given up, nothing held past it.
        let (mut f, flag) = (Framing::default(), Ambiguous::default());
        f.feed(b"POST / HTTP/1.1\r\nX: ", &flag);
        f.feed(&vec![b'a'; MAX_HEAD], &flag);
        assert_eq!(f.state, State::Done);
        // A bad chunk size: hyper refuses it, the tracker stops.
        let (mut f, flag) = (Framing::default(), Ambiguous::default());
        f.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", &flag);
        assert_eq!(f.state, State::Done);
    }

    #[test]
    fn ambiguous_is_read_by_request_number() {
        let flag = Ambiguous::default();
        assert!(!flag.is(0) && !flag.is(1));
        flag_once(&flag, 2);
        flag_once(&flag, 3);
        assert!(flag.is(2) && !flag.is(3));
    }
}
