//! gRPC keepalive enforcement (grpc-go's `keepalive.EnforcementPolicy`,
//! and so the Collector's) on an HTTP/2 connection, by following its frames.
//!
//! The `h2` crate under hyper answers a client's PINGs inside its
//! connection task and tells its user nothing of them, so the gRPC
//! listener's connection stream runs its bytes through a [`PingEnforcer`]:
//! it reads the 9-byte frame headers both ways (payloads are skipped, never
//! copied) and applies grpc-go's rule to each PING the client sends.
//!
//! Guarantees:
//! - the rule is grpc-go's `handlePing`: a PING (not an ACK) is a strike
//!   when it comes sooner than `min_time` after the client's previous PING,
//!   or, with no stream open and `permit_without_stream` off, sooner than
//!   [`NO_STREAM_PING_INTERVAL`] (2 h) after it; the client's first PING is
//!   never one; a PING after the server has sent headers or data since the
//!   last PING clears the strikes instead. The third strike (more than
//!   [`MAX_PING_STRIKES`]) closes the connection;
//! - closing writes GOAWAY `ENHANCE_YOUR_CALM` with debug data
//!   `too_many_pings` (what grpc-go clients look for to slow their pings
//!   down), naming the last stream the client opened, at the next frame
//!   boundary of what the server writes: a frame the server is writing is
//!   finished first, never cut. Then reads and writes fail and the
//!   connection ends;
//! - a stream is open from the client's HEADERS until the server ends it
//!   (END_STREAM) or either side resets it; at most [`MAX_TRACKED_STREAMS`]
//!   are remembered (more count as open);
//! - the bytes are passed on unchanged; nothing is buffered but one frame
//!   header each way and the GOAWAY frame.

use std::collections::HashSet;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::AsyncWrite;

/// grpc-go's `defaultKeepalivePolicyMinTime`: the `min_time` when none is
/// set (or 0).
pub const DEFAULT_MIN_TIME: Duration = Duration::from_secs(5 * 60);

/// grpc-go's `defaultPingTimeout`: with no stream open (and pings without
/// streams not permitted) a client may ping this often.
pub const NO_STREAM_PING_INTERVAL: Duration = Duration::from_secs(2 * 60 * 60);

/// grpc-go's `maxPingStrikes`: one more closes the connection.
pub const MAX_PING_STRIKES: u32 = 2;

/// Streams whose state is followed; a client opening more at once is far
/// past any `max_concurrent_streams`, and the rest count as open.
pub const MAX_TRACKED_STREAMS: usize = 4096;

/// The debug data of the GOAWAY, as grpc-go writes it.
pub const TOO_MANY_PINGS: &[u8] = b"too_many_pings";

/// The client connection preface, which comes before the first frame.
const PREFACE_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 9;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const FLAG_ACK: u8 = 0x1;
const FLAG_END_STREAM: u8 = 0x1;
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// `keepalive.enforcement_policy` as enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingPolicy {
    pub min_time: Duration,
    pub permit_without_stream: bool,
}

impl Default for PingPolicy {
    fn default() -> Self {
        PingPolicy { min_time: DEFAULT_MIN_TIME, permit_without_stream: false }
    }
}

impl PingPolicy {
    /// The policy a gRPC receiver's `keepalive.enforcement_policy` sets:
    /// grpc-go's defaults where it is unset, and a `min_time` of 0 is
    /// grpc-go's 5 minutes too.
    pub fn of(cfg: Option<&super::otlp::config::KeepaliveEnforcementPolicy>) -> Self {
        let Some(cfg) = cfg else { return PingPolicy::default() };
        let min_time = cfg.min_time.filter(|d| !d.is_zero()).map_or(DEFAULT_MIN_TIME, |d| d.get());
        PingPolicy { min_time, permit_without_stream: cfg.permit_without_stream }
    }
}

/// One frame header read from a byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameHead {
    kind: u8,
    flags: u8,
    stream: u32,
}

/// Where a byte stream of HTTP/2 frames is: in a prefix to skip, in a frame
/// header, or in a payload.
#[derive(Debug, Default)]
struct Frames {
    skip: usize,
    header: [u8; FRAME_HEADER_LEN],
    have: usize,
    payload_left: usize,
}

impl Frames {
    /// Follows `bytes`, calling `on_head` for each frame header completed.
    fn feed(&mut self, mut bytes: &[u8], mut on_head: impl FnMut(FrameHead)) {
        while !bytes.is_empty() {
            let n = if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                n
            } else if self.payload_left > 0 {
                let n = self.payload_left.min(bytes.len());
                self.payload_left -= n;
                n
            } else {
                let n = (FRAME_HEADER_LEN - self.have).min(bytes.len());
                self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
                self.have += n;
                if self.have == FRAME_HEADER_LEN {
                    self.have = 0;
                    let h = self.header;
                    self.payload_left = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
                    let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
                    on_head(FrameHead { kind: h[3], flags: h[4], stream });
                }
                n
            };
            bytes = &bytes[n..];
        }
    }

    /// Bytes left before the stream is between two frames (0: it is).
    fn to_boundary(&self) -> usize {
        if self.skip > 0 {
            self.skip
        } else if self.have > 0 {
            FRAME_HEADER_LEN - self.have
        } else {
            self.payload_left
        }
    }
}

#[derive(Debug)]
enum Goaway {
    NotDue,
    /// Due: the frame and how much of it is written.
    Due(Vec<u8>, usize),
    Sent,
}

/// grpc-go's ping policy on one connection (see the module docs).
#[derive(Debug)]
pub struct PingEnforcer {
    policy: PingPolicy,
    inbound: Frames,
    outbound: Frames,
    last_ping: Option<Instant>,
    strikes: u32,
    /// The server sent headers or data since the client's last PING.
    reset_strikes: bool,
    open_streams: HashSet<u32>,
    /// Open streams past [`MAX_TRACKED_STREAMS`], not followed.
    untracked_streams: bool,
    last_client_stream: u32,
    goaway: Goaway,
}

impl PingEnforcer {
    pub fn new(policy: PingPolicy) -> Self {
        PingEnforcer {
            policy,
            inbound: Frames { skip: PREFACE_LEN, ..Default::default() },
            outbound: Frames::default(),
            last_ping: None,
            strikes: 0,
            reset_strikes: false,
            open_streams: HashSet::new(),
            untracked_streams: false,
            last_client_stream: 0,
            goaway: Goaway::NotDue,
        }
    }

    /// Follows bytes the client sent, received at `now`. Returns true when
    /// they hold the ping that made a GOAWAY due (once per connection).
    pub fn received(&mut self, bytes: &[u8], now: Instant) -> bool {
        // Taken out for the walk, so that each header is acted on as it is read.
        let mut inbound = std::mem::take(&mut self.inbound);
        let mut closing = false;
        inbound.feed(bytes, |h| match h.kind {
            HEADERS if h.stream > self.last_client_stream => {
                self.last_client_stream = h.stream;
                if self.open_streams.len() < MAX_TRACKED_STREAMS {
                    self.open_streams.insert(h.stream);
                } else {
                    self.untracked_streams = true;
                }
            }
            RST_STREAM => self.end_stream(h.stream),
            PING if h.flags & FLAG_ACK == 0 => closing |= self.ping(now),
            _ => {}
        });
        self.inbound = inbound;
        closing
    }

    /// grpc-go's `handlePing` for a client PING; true when it is the strike too many.
    fn ping(&mut self, now: Instant) -> bool {
        let last = self.last_ping.replace(now);
        if std::mem::take(&mut self.reset_strikes) {
            self.strikes = 0;
            return false;
        }
        let streams_open = !self.open_streams.is_empty() || self.untracked_streams;
        let allowed = if !streams_open && !self.policy.permit_without_stream {
            NO_STREAM_PING_INTERVAL
        } else {
            self.policy.min_time
        };
        if last.is_some_and(|last| now < last + allowed) {
            self.strikes += 1;
        }
        if self.strikes > MAX_PING_STRIKES && matches!(self.goaway, Goaway::NotDue) {
            self.goaway = Goaway::Due(goaway_frame(self.last_client_stream), 0);
            return true;
        }
        false
    }

    fn end_stream(&mut self, stream: u32) {
        if !self.open_streams.remove(&stream) && self.open_streams.is_empty() {
            self.untracked_streams = false;
        }
    }

    /// Follows bytes the server wrote.
    pub fn sent(&mut self, bytes: &[u8]) {
        let mut outbound = std::mem::take(&mut self.outbound);
        outbound.feed(bytes, |h| match h.kind {
            DATA | HEADERS if h.stream != 0 => {
                self.reset_strikes = true;
                if h.flags & FLAG_END_STREAM != 0 {
                    self.end_stream(h.stream);
                }
            }
            RST_STREAM => self.end_stream(h.stream),
            _ => {}
        });
        self.outbound = outbound;
    }

    /// Whether a GOAWAY is due or sent: the server writes nothing more of its own after it.
    pub fn closing(&self) -> bool {
        !matches!(self.goaway, Goaway::NotDue)
    }

    /// Whether the GOAWAY is to be written now (one is due and the server is
    /// between frames) or is already out: the connection carries nothing
    /// more of its own.
    pub fn goaway_now(&self) -> bool {
        self.writable(1) == 0
    }

    /// How many of the `len` bytes the server wants to write may go before
    /// the GOAWAY: all while none is due, the rest of the frame being
    /// written while one is (0: the GOAWAY goes now).
    pub fn writable(&self, len: usize) -> usize {
        match self.goaway {
            Goaway::NotDue => len,
            Goaway::Due(..) => len.min(self.outbound.to_boundary()),
            Goaway::Sent => 0,
        }
    }

    /// Writes the due GOAWAY (when the server's stream is at a frame
    /// boundary) and flushes it. Ready(Ok) once it is sent; Pending while
    /// the socket is busy or the server's current frame is unfinished.
    pub fn poll_goaway<W: AsyncWrite + Unpin>(&mut self, w: &mut W, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match &mut self.goaway {
                Goaway::NotDue | Goaway::Sent => return Poll::Ready(Ok(())),
                Goaway::Due(..) if self.outbound.to_boundary() > 0 => return Poll::Pending,
                Goaway::Due(frame, written) if *written < frame.len() => {
                    let n = ready!(Pin::new(&mut *w).poll_write(cx, &frame[*written..]))?;
                    if n == 0 {
                        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                    }
                    *written += n;
                }
                Goaway::Due(..) => {
                    ready!(Pin::new(&mut *w).poll_flush(cx))?;
                    self.goaway = Goaway::Sent;
                }
            }
        }
    }
}

/// The error reads and writes give once the GOAWAY is out.
pub fn too_many_pings() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "closed: the client sent too many pings (too_many_pings)")
}

/// GOAWAY `ENHANCE_YOUR_CALM` with debug data `too_many_pings`.
fn goaway_frame(last_stream: u32) -> Vec<u8> {
    let len = 8 + TOO_MANY_PINGS.len();
    let mut f = Vec::with_capacity(FRAME_HEADER_LEN + len);
    f.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    f.extend_from_slice(&[GOAWAY, 0]);
    f.extend_from_slice(&0u32.to_be_bytes());
    f.extend_from_slice(&(last_stream & 0x7fff_ffff).to_be_bytes());
    f.extend_from_slice(&ENHANCE_YOUR_CALM.to_be_bytes());
    f.extend_from_slice(TOO_MANY_PINGS);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        f.extend_from_slice(&[kind, flags]);
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn ping() -> Vec<u8> {
        frame(PING, 0, 0, &[7; 8])
    }

    /// grpc-go's `handlePing`, as its source reads, over a sequence of
    /// client pings: (seconds since the start, streams open, server sent
    /// headers or data since the last ping). Returns the index of the ping
    /// that closes the connection.
    fn grpc_go_closes_at(policy: PingPolicy, pings: &[(u64, bool, bool)]) -> Option<usize> {
        // lastPingAt starts at Go's zero time: the first ping is never early.
        let mut last_ping_at: Option<u64> = None;
        let mut strikes = 0;
        for (i, &(now, streams, reset)) in pings.iter().enumerate() {
            let last = last_ping_at.replace(now);
            if reset {
                strikes = 0;
                continue;
            }
            let after = |d: Duration| last.is_some_and(|l| l * 1000 + d.as_millis() as u64 > now * 1000);
            if !streams && !policy.permit_without_stream {
                if after(NO_STREAM_PING_INTERVAL) {
                    strikes += 1;
                }
            } else if after(policy.min_time) {
                strikes += 1;
            }
            if strikes > 2 {
                return Some(i);
            }
        }
        None
    }

    /// Drives a [`PingEnforcer`] with the same sequence, as frames.
    fn enforcer_closes_at(policy: PingPolicy, pings: &[(u64, bool, bool)]) -> Option<usize> {
        let start = Instant::now();
        let mut e = PingEnforcer::new(policy);
        e.received(PREFACE, start);
        let mut stream = 1;
        let mut open = false;
        for (i, &(now, streams, reset)) in pings.iter().enumerate() {
            if streams && !open {
                e.received(&frame(HEADERS, 0x4, stream, b"h"), start);
                open = true;
            } else if !streams && open {
                e.sent(&frame(HEADERS, 0x5, stream, b"t"));
                stream += 2;
                open = false;
                // That trailer is headers from the server: it resets, as in grpc-go.
            }
            if reset {
                e.sent(&frame(DATA, 0, stream, b"d"));
            }
            let closed = e.received(&ping(), start + Duration::from_secs(now));
            if closed {
                return Some(i);
            }
        }
        None
    }

    #[test]
    fn strikes_follow_grpc_go() {
        let strict = PingPolicy { min_time: Duration::from_secs(10), permit_without_stream: false };
        let permissive = PingPolicy { min_time: Duration::from_secs(10), permit_without_stream: true };
        // Pings every second with a stream open: the fourth closes.
        let fast: Vec<_> = (0..6).map(|t| (t, true, false)).collect();
        assert_eq!(enforcer_closes_at(strict, &fast), Some(3));
        // Every 10 s exactly is not early.
        let paced: Vec<_> = (0..6).map(|t| (t * 10, true, false)).collect();
        assert_eq!(enforcer_closes_at(strict, &paced), None);
        // No stream: every 10 min is early for the strict policy (2 h), fine for the permissive one.
        let idle: Vec<_> = (0..6).map(|t| (t * 600, false, false)).collect();
        assert_eq!(enforcer_closes_at(strict, &idle), Some(3));
        assert_eq!(enforcer_closes_at(permissive, &idle), None);
        // Data from the server between pings clears the strikes.
        let busy: Vec<_> = (0..8).map(|t| (t, true, t % 3 == 2)).collect();
        assert_eq!(enforcer_closes_at(strict, &busy), None);
        assert_eq!(grpc_go_closes_at(strict, &busy), None);
    }

    #[test]
    fn matches_grpc_go_on_random_ping_sequences() {
        let mut next = crate::data::fixtures::xorshift64(0x9e37_79b9_7f4a_7c15);
        for case in 0..2000 {
            let policy = PingPolicy {
                min_time: Duration::from_secs(1 + next() % 20),
                permit_without_stream: next().is_multiple_of(2),
            };
            let mut now = 0;
            let pings: Vec<_> = (0..12)
                .map(|_| {
                    now += match next() % 4 {
                        0 => next() % 3,
                        1 => next() % 30,
                        2 => 3000 + next() % 9000,
                        _ => next() % 600,
                    };
                    // A stream closing is headers from the server, which grpc-go also
                    // counts as a reset; the model is told so.
                    (now, !next().is_multiple_of(3), next().is_multiple_of(5))
                })
                .collect();
            let mut modelled = pings.clone();
            let mut open = false;
            for p in modelled.iter_mut() {
                if open && !p.1 {
                    p.2 = true;
                }
                open = p.1;
            }
            assert_eq!(
                enforcer_closes_at(policy, &pings),
                grpc_go_closes_at(policy, &modelled),
                "case {case}: {policy:?} {pings:?}"
            );
        }
    }

    #[test]
    fn frames_split_anywhere_are_followed() {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(0x4, 0, 0, &[0; 12]));
        bytes.extend(frame(HEADERS, 0x4, 1, &[1; 40]));
        bytes.extend(frame(DATA, 0x1, 1, &[2; 300]));
        for _ in 0..4 {
            bytes.extend(ping());
        }
        let strict = PingPolicy { min_time: Duration::from_secs(60), permit_without_stream: false };
        for split in 0..bytes.len() {
            let mut e = PingEnforcer::new(strict);
            let now = Instant::now();
            let first = e.received(&bytes[..split], now);
            let second = e.received(&bytes[split..], now);
            assert!(first ^ second, "split at {split}: the fourth ping closes, once");
            assert_eq!(e.last_client_stream, 1);
        }
    }

    #[test]
    fn goaway_waits_for_the_frame_being_written_and_names_the_last_stream() {
        let strict = PingPolicy::default();
        let mut e = PingEnforcer::new(strict);
        let now = Instant::now();
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(HEADERS, 0x4, 5, b"h"));
        for _ in 0..4 {
            bytes.extend(ping());
        }
        // Half of a DATA frame written: the GOAWAY must not cut it.
        let data = frame(DATA, 0, 5, &[9; 100]);
        e.sent(&data[..50]);
        assert!(e.received(&bytes, now));
        assert!(e.closing());
        assert_eq!(e.writable(1000), 59);
        assert!(!e.goaway_now(), "the frame being written is finished first");
        let mut out = Vec::new();
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(e.poll_goaway(&mut out, &mut cx).is_pending());
        e.sent(&data[50..]);
        assert_eq!(e.writable(1000), 0);
        assert!(e.goaway_now());
        assert!(matches!(e.poll_goaway(&mut out, &mut cx), Poll::Ready(Ok(()))));
        let mut want = frame(GOAWAY, 0, 0, &[0, 0, 0, 5, 0, 0, 0, 0xb]);
        want[2] += TOO_MANY_PINGS.len() as u8;
        want.extend_from_slice(TOO_MANY_PINGS);
        assert_eq!(out, want);
        assert_eq!(e.writable(1000), 0);
    }

    #[test]
    fn unset_and_zero_min_time_are_grpc_gos_five_minutes() {
        use super::super::otlp::config::KeepaliveEnforcementPolicy;
        assert_eq!(PingPolicy::of(None), PingPolicy { min_time: DEFAULT_MIN_TIME, permit_without_stream: false });
        let zero = KeepaliveEnforcementPolicy {
            min_time: Some(crate::config::Duration::from_secs(0)),
            permit_without_stream: true,
        };
        assert_eq!(PingPolicy::of(Some(&zero)), PingPolicy { min_time: DEFAULT_MIN_TIME, permit_without_stream: true });
        let set = KeepaliveEnforcementPolicy {
            min_time: Some(crate::config::Duration::from_secs(10)),
            permit_without_stream: false,
        };
        assert_eq!(PingPolicy::of(Some(&set)).min_time, Duration::from_secs(10));
    }
}
