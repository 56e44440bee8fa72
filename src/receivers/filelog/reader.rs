//! Turns the bytes of one file into log entries: lines (cut at
//! `max_log_size`), container lines (partial lines joined), multiline entries.
//!
//! Pure and synchronous: bytes and time come in as arguments. Each entry
//! carries its `resume` offset: where reading must restart after a crash so
//! that nothing after this entry is lost, i.e. the end of the entry or the
//! start of older data still waiting to be joined, whichever is first. A
//! checkpoint at an accepted entry's `resume` therefore never skips data.

use super::container::{self, Format, Stream};
use regex::Regex;
use std::time::{Duration, Instant};

/// What the reader of every file of one receiver applies.
#[derive(Debug, Clone)]
pub struct ReaderSettings {
    pub max_log_size: usize,
    /// Longest entry joined from partial container lines.
    pub max_join_size: usize,
    /// The `container` operator's format, when it is configured.
    pub container: Option<Format>,
    pub line_start: Option<Regex>,
    pub line_end: Option<Regex>,
    pub force_flush_period: Duration,
}

/// One log entry, ready to become a log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub body: String,
    /// From the container line; 0 when unknown (plain files, unparsed lines).
    pub time_unix_nano: u64,
    pub stream: Option<Stream>,
    pub logtag: Option<String>,
    pub resume: u64,
}

/// What the reader counts; the receiver adds these to its metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReaderCounts {
    /// Entries cut at `max_log_size` (the rest became the next entry).
    pub truncated: u64,
    /// Container lines that fit no format, sent with their raw text.
    pub unparsed: u64,
}

#[derive(Debug, Clone)]
struct Pending {
    text: String,
    time: u64,
    stream: Option<Stream>,
    logtag: Option<String>,
    start: u64,
    end: u64,
}

#[derive(Debug)]
pub struct FileReader {
    line: Vec<u8>,
    line_start: u64,
    /// Partial container lines being joined, by stream.
    partial: [Option<Pending>; 2],
    multi: Option<Pending>,
    last_data: Option<Instant>,
    pub counts: ReaderCounts,
}

/// Cuts `text` at `max` bytes, backing off to a character boundary.
fn split_at_boundary(text: &str, max: usize) -> usize {
    let mut cut = max.min(text.len());
    while cut > 0 && !text.is_char_boundary(cut) {
        cut -= 1;
    }
    if cut == 0 {
        // A single character longer than max (max < 4): take it whole rather than loop.
        cut = text.char_indices().nth(1).map_or(text.len(), |(i, _)| i);
    }
    cut
}

impl FileReader {
    /// A reader whose next byte is at file offset `at`.
    pub fn new(at: u64) -> FileReader {
        FileReader {
            line: Vec::new(),
            line_start: at,
            partial: [None, None],
            multi: None,
            last_data: None,
            counts: ReaderCounts::default(),
        }
    }

    /// Whether data is waiting for more bytes (or the force flush) before it becomes an entry.
    pub fn has_pending(&self) -> bool {
        !self.line.is_empty() || self.partial.iter().any(Option::is_some) || self.multi.is_some()
    }

    /// Offset of the oldest byte not yet in an emitted entry.
    fn pending_start(&self) -> u64 {
        let mut start = if self.line.is_empty() { u64::MAX } else { self.line_start };
        for p in self.partial.iter().chain(std::iter::once(&self.multi)).flatten() {
            start = start.min(p.start);
        }
        start
    }

    /// Feeds the bytes at file offset `at` (the offset after everything fed so far).
    pub fn push(&mut self, s: &ReaderSettings, data: &[u8], now: Instant, out: &mut Vec<Entry>) {
        if data.is_empty() {
            return;
        }
        self.last_data = Some(now);
        let max = s.max_log_size.max(1);
        let mut rest = data;
        while !rest.is_empty() {
            let room = max - self.line.len().min(max);
            match rest.iter().take(room + 1).position(|&b| b == b'\n') {
                Some(i) => {
                    self.line.extend_from_slice(&rest[..i]);
                    rest = &rest[i + 1..];
                    let (start, end) = (self.line_start, self.line_start + self.line.len() as u64 + 1);
                    let line = std::mem::take(&mut self.line);
                    self.line_start = end;
                    self.physical(s, &line, start, end, out);
                }
                None if rest.len() > room => {
                    // The line is longer than max_log_size: its first max bytes are an entry.
                    self.line.extend_from_slice(&rest[..room]);
                    rest = &rest[room..];
                    self.cut_line(s, max, out);
                }
                None => {
                    self.line.extend_from_slice(rest);
                    rest = &[];
                }
            }
        }
    }

    fn cut_line(&mut self, s: &ReaderSettings, max: usize, out: &mut Vec<Entry>) {
        // Back off to a UTF-8 boundary so a character is not split between two entries.
        let mut cut = max.min(self.line.len());
        if let Err(e) = std::str::from_utf8(&self.line[..cut]) {
            if e.error_len().is_none() && e.valid_up_to() > 0 {
                cut = e.valid_up_to();
            }
        }
        let head: Vec<u8> = self.line.drain(..cut).collect();
        let start = self.line_start;
        self.line_start += cut as u64;
        self.counts.truncated += 1;
        self.physical(s, &head, start, self.line_start, out);
    }

    /// Emits whatever waits, if nothing arrived for `force_flush_period`.
    pub fn flush_if_idle(&mut self, s: &ReaderSettings, now: Instant, out: &mut Vec<Entry>) {
        if s.force_flush_period.is_zero() {
            return; // As in the Collector, 0 turns the force flush off.
        }
        let idle = self.last_data.is_none_or(|t| now.saturating_duration_since(t) >= s.force_flush_period);
        if idle && self.has_pending() {
            self.flush(s, out);
        }
    }

    /// Emits everything that waits: the unterminated last line, partial
    /// container lines, the multiline entry.
    pub fn flush(&mut self, s: &ReaderSettings, out: &mut Vec<Entry>) {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            let start = self.line_start;
            self.line_start += line.len() as u64;
            self.physical(s, &line, start, self.line_start, out);
        }
        for i in 0..2 {
            if let Some(p) = self.partial[i].take() {
                self.record(s, p, out);
            }
        }
        if let Some(p) = self.multi.take() {
            self.emit(p, out);
        }
    }

    /// One line of the file (without newline), bytes [start, end).
    fn physical(&mut self, s: &ReaderSettings, bytes: &[u8], start: u64, end: u64, out: &mut Vec<Entry>) {
        let text = String::from_utf8_lossy(bytes);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        let Some(format) = s.container else {
            let p = Pending { text: text.to_string(), time: 0, stream: None, logtag: None, start, end };
            return self.record(s, p, out);
        };
        let Some(line) = container::parse(format, text) else {
            self.counts.unparsed += 1;
            let p = Pending { text: text.to_string(), time: 0, stream: None, logtag: None, start, end };
            return self.record(s, p, out);
        };
        let slot = line.stream.index();
        let mut joined = match self.partial[slot].take() {
            Some(mut p) => {
                p.text.push_str(&line.text);
                p.end = end;
                p.logtag = line.logtag;
                p
            }
            None => Pending {
                text: line.text,
                time: line.time_unix_nano,
                stream: Some(line.stream),
                logtag: line.logtag,
                start,
                end,
            },
        };
        // A joined entry over max_log_size: its first max bytes are an entry, the rest goes on.
        while joined.text.len() > s.max_join_size.max(1) {
            let cut = split_at_boundary(&joined.text, s.max_join_size.max(1));
            let rest = joined.text.split_off(cut);
            self.counts.truncated += 1;
            // The rest may hold bytes of earlier lines, so a restart must read the whole join again.
            let head = Pending { text: std::mem::replace(&mut joined.text, rest), end: joined.start, ..joined.clone() };
            self.record(s, head, out);
        }
        if line.partial {
            self.partial[slot] = Some(joined);
        } else {
            self.record(s, joined, out);
        }
    }

    /// A complete record: through the multiline rules, then out.
    fn record(&mut self, s: &ReaderSettings, r: Pending, out: &mut Vec<Entry>) {
        if let Some(start) = &s.line_start {
            if start.is_match(&r.text) {
                if let Some(prev) = self.multi.take() {
                    self.emit(prev, out);
                }
                self.multi = Some(r);
            } else if let Some(m) = &mut self.multi {
                if m.text.len() + 1 + r.text.len() > s.max_log_size {
                    // Over max_log_size: the entry ends here and this line starts the next one.
                    self.counts.truncated += 1;
                    if let Some(prev) = self.multi.take() {
                        self.emit(prev, out);
                    }
                    self.multi = Some(r);
                } else {
                    m.text.push('\n');
                    m.text.push_str(&r.text);
                    m.end = r.end;
                }
            } else {
                // Lines before the first start line are entries of their own.
                self.emit(r, out);
            }
        } else if let Some(end) = &s.line_end {
            let done = end.is_match(&r.text);
            let r = match self.multi.take() {
                Some(mut m) if m.text.len() + 1 + r.text.len() <= s.max_log_size => {
                    m.text.push('\n');
                    m.text.push_str(&r.text);
                    m.end = r.end;
                    m
                }
                Some(m) => {
                    self.counts.truncated += 1;
                    self.emit(m, out);
                    r
                }
                None => r,
            };
            if done {
                self.emit(r, out);
            } else {
                self.multi = Some(r);
            }
        } else {
            self.emit(r, out);
        }
    }

    fn emit(&mut self, p: Pending, out: &mut Vec<Entry>) {
        let resume = p.end.min(self.pending_start());
        out.push(Entry { body: p.text, time_unix_nano: p.time, stream: p.stream, logtag: p.logtag, resume });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(container: Option<Format>, max: usize) -> ReaderSettings {
        ReaderSettings {
            max_log_size: max,
            max_join_size: max,
            container,
            line_start: None,
            line_end: None,
            force_flush_period: Duration::from_millis(500),
        }
    }

    fn feed(s: &ReaderSettings, r: &mut FileReader, text: &str) -> Vec<Entry> {
        let mut out = Vec::new();
        r.push(s, text.as_bytes(), Instant::now(), &mut out);
        out
    }

    fn bodies(e: &[Entry]) -> Vec<&str> {
        e.iter().map(|e| e.body.as_str()).collect()
    }

    #[test]
    fn plain_lines_split_across_reads_with_resume_offsets() {
        let s = settings(None, 1024);
        let mut r = FileReader::new(100);
        let a = feed(&s, &mut r, "one\ntw");
        assert_eq!(bodies(&a), ["one"]);
        assert_eq!(a[0].resume, 104);
        assert!(r.has_pending());
        let b = feed(&s, &mut r, "o\r\nthree\n");
        assert_eq!(bodies(&b), ["two", "three"]);
        assert_eq!((b[0].resume, b[1].resume), (109, 115));
        assert!(!r.has_pending());
    }

    #[test]
    fn long_lines_are_cut_and_the_rest_is_the_next_entry() {
        let s = settings(None, 4);
        let mut r = FileReader::new(0);
        let e = feed(&s, &mut r, "abcdefghij\nxy\n");
        assert_eq!(bodies(&e), ["abcd", "efgh", "ij", "xy"]);
        assert_eq!(e.iter().map(|e| e.resume).collect::<Vec<_>>(), [4, 8, 11, 14]);
        assert_eq!(r.counts.truncated, 2);
        // A multi-byte character is not split.
        let mut r = FileReader::new(0);
        let e = feed(&s, &mut r, "abcé\n");
        assert_eq!(bodies(&e), ["abc", "é"]);
    }

    #[test]
    fn cri_partial_lines_join_per_stream_and_resume_before_the_open_part() {
        let s = settings(Some(Format::Auto), 1024);
        let mut r = FileReader::new(0);
        let l1 = "2024-03-01T12:00:00Z stdout P hello \n";
        let l2 = "2024-03-01T12:00:01Z stderr F oops\n";
        let l3 = "2024-03-01T12:00:02Z stdout F world\n";
        let e = feed(&s, &mut r, &format!("{l1}{l2}{l3}"));
        assert_eq!(bodies(&e), ["oops", "hello world"]);
        // "oops" is complete, but the stdout part before it is not yet: resume there.
        assert_eq!(e[0].resume, 0);
        assert_eq!(e[1].resume, (l1.len() + l2.len() + l3.len()) as u64);
        assert_eq!(e[1].time_unix_nano, 1_709_294_400_000_000_000, "time of the first part");
        assert_eq!(e[1].stream, Some(Stream::Stdout));
        assert_eq!(e[1].logtag.as_deref(), Some("F"));
    }

    #[test]
    fn docker_partial_lines_join_and_bad_lines_are_kept_raw() {
        let s = settings(Some(Format::Docker), 1024);
        let mut r = FileReader::new(0);
        let e = feed(
            &s,
            &mut r,
            "{\"log\":\"par\",\"stream\":\"stdout\",\"time\":\"2024-03-01T12:00:00Z\"}\n\
             not json at all\n\
             {\"log\":\"tial\\n\",\"stream\":\"stdout\",\"time\":\"2024-03-01T12:00:01Z\"}\n",
        );
        assert_eq!(bodies(&e), ["not json at all", "partial"]);
        assert_eq!(r.counts.unparsed, 1);
        assert_eq!(e[0].stream, None);
    }

    #[test]
    fn joined_container_lines_are_bounded_by_max_log_size() {
        // Each physical line (30 bytes of CRI prefix + 8) fits in 40 bytes; their join does not.
        let s = settings(Some(Format::Cri), 40);
        let mut r = FileReader::new(0);
        let mut text = String::new();
        for part in ["aaaaaaaa", "bbbbbbbb", "cccccccc", "dddddddd", "eeeeeeee", "ffffffff"] {
            text.push_str(&format!("2024-03-01T12:00:00Z stdout P {part}\n"));
        }
        text.push_str("2024-03-01T12:00:00Z stdout F xy\n");
        let e = feed(&s, &mut r, &text);
        assert_eq!(bodies(&e), ["aaaaaaaabbbbbbbbccccccccddddddddeeeeeeee", "ffffffffxy"]);
        assert_eq!(r.counts.truncated, 1);
        assert_eq!(e[0].time_unix_nano, e[1].time_unix_nano);
        assert_eq!(e[0].resume, 0, "the rest is not sent yet: resume before the whole join");
        assert_eq!(e[1].resume, text.len() as u64);
    }

    #[test]
    fn multiline_start_pattern_joins_a_stack_trace_and_force_flush_ends_it() {
        let mut s = settings(None, 1024);
        s.line_start = Some(Regex::new(r"^\d{4}-").unwrap());
        let mut r = FileReader::new(0);
        let now = Instant::now();
        let mut out = Vec::new();
        r.push(
            &s,
            b"2024-01-01 ERROR boom\n\tat a.b(C.java:1)\n\tat d.e(F.java:2)\n2024-01-01 INFO ok\n",
            now,
            &mut out,
        );
        assert_eq!(bodies(&out), ["2024-01-01 ERROR boom\n\tat a.b(C.java:1)\n\tat d.e(F.java:2)"]);
        assert_eq!(out[0].resume, 58, "up to the start of the waiting entry");
        r.flush_if_idle(&s, now + Duration::from_millis(100), &mut out);
        assert_eq!(out.len(), 1, "not idle long enough");
        r.flush_if_idle(&s, now + Duration::from_millis(600), &mut out);
        assert_eq!(bodies(&out)[1], "2024-01-01 INFO ok");
        assert_eq!(out[1].resume, 77);
        assert!(!r.has_pending());
    }

    #[test]
    fn arbitrary_input_never_panics_and_resume_offsets_never_go_back() {
        use rand::{Rng, SeedableRng};
        let pieces = [
            "2024-03-01T12:00:00Z stdout P ",
            "2024-03-01T12:00:00Z stderr F ",
            "2024-03-01T12:00:00.5+02:00 stdout F ",
            "{\"log\":\"x\",\"stream\":\"stdout\",\"time\":\"2024-03-01T12:00:00Z\"}",
            "\n",
            "\r\n",
            "é",
            "2024-",
            "abc ",
            "{",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let start = Regex::new("^2024-").unwrap();
        for round in 0..200 {
            let mut s = settings(
                [None, Some(Format::Auto), Some(Format::Cri), Some(Format::Docker)][round % 4],
                1 + round % 50,
            );
            s.max_join_size = 1 + (round * 7) % 60;
            if round % 3 == 0 {
                s.line_start = Some(start.clone());
            }
            let mut r = FileReader::new(0);
            let (mut fed, mut last, mut out) = (0u64, 0u64, Vec::new());
            let now = Instant::now();
            for _ in 0..rng.random_range(1..40) {
                let text: String =
                    (0..rng.random_range(0..6)).map(|_| pieces[rng.random_range(0..pieces.len())]).collect();
                r.push(&s, text.as_bytes(), now, &mut out);
                fed += text.len() as u64;
                if rng.random_bool(0.1) {
                    r.flush(&s, &mut out);
                }
                for e in out.drain(..) {
                    assert!(
                        e.resume >= last && e.resume <= fed,
                        "round {round}: resume {} after {last}, fed {fed}",
                        e.resume
                    );
                    last = e.resume;
                }
            }
        }
    }

    #[test]
    fn multiline_end_pattern_ends_entries() {
        let mut s = settings(None, 1024);
        s.line_end = Some(Regex::new(r";$").unwrap());
        let mut r = FileReader::new(0);
        let e = feed(&s, &mut r, "select *\nfrom t;\nx;\n");
        assert_eq!(bodies(&e), ["select *\nfrom t;", "x;"]);
    }
}
