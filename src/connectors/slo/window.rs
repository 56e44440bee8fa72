//! Bucketed event counters over a sliding window of wall-clock time.
//!
//! A window of length `W` is `n` buckets of `W / n`, aligned on the Unix
//! epoch. The window at time `t` is the bucket `t` falls in plus the `n - 1`
//! before it, so it covers between `W - W/n` and `W` of the past. Memory is
//! fixed: `n` pairs of counters and the index of the newest bucket.

use serde::{Deserialize, Serialize};

/// Events (all and bad) of one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    pub bad: u64,
}

impl Counts {
    pub fn add(&mut self, other: Counts) {
        self.total = self.total.saturating_add(other.total);
        self.bad = self.bad.saturating_add(other.bad);
    }

    /// Bad events over all events; `None` with no events.
    pub fn ratio(self) -> Option<f64> {
        (self.total > 0).then(|| self.bad as f64 / self.total as f64)
    }
}

#[derive(Debug, Clone)]
pub struct Ring {
    /// Bucket width in nanoseconds.
    width: u64,
    /// Absolute index (Unix nanos / width) of the newest bucket.
    head: u64,
    buckets: Box<[Counts]>,
}

/// A ring as saved: non-empty buckets by absolute index.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SavedRing {
    pub width: u64,
    pub head: u64,
    /// `[absolute index, total, bad]` of each non-empty bucket.
    pub buckets: Vec<[u64; 3]>,
}

impl Ring {
    /// A window of `window_nanos` in `n` buckets (at least 1 ns each).
    pub fn new(window_nanos: u64, n: usize) -> Ring {
        let n = n.max(1);
        Ring {
            width: (window_nanos / n as u64).max(1),
            head: 0,
            buckets: vec![Counts::default(); n].into_boxed_slice(),
        }
    }

    fn len(&self) -> u64 {
        self.buckets.len() as u64
    }

    /// Moves the newest bucket to the one `now` falls in, emptying those it
    /// passes. A clock that went back leaves the ring as it is (events then
    /// count in the newest bucket).
    pub fn advance(&mut self, now_nanos: u64) {
        let index = now_nanos / self.width;
        if index <= self.head {
            return;
        }
        let steps = index - self.head;
        if steps >= self.len() {
            self.buckets.fill(Counts::default());
        } else {
            for k in 1..=steps {
                let slot = ((self.head + k) % self.len()) as usize;
                self.buckets[slot] = Counts::default();
            }
        }
        self.head = index;
    }

    /// Adds to the newest bucket (call `advance` first).
    pub fn add(&mut self, counts: Counts) {
        let slot = (self.head % self.len()) as usize;
        self.buckets[slot].add(counts);
    }

    /// Everything in the window.
    pub fn sum(&self) -> Counts {
        let mut out = Counts::default();
        for b in self.buckets.iter() {
            out.add(*b);
        }
        out
    }

    pub fn save(&self) -> SavedRing {
        let n = self.len();
        let first = self.head.saturating_sub(n - 1);
        let buckets = (first..=self.head)
            .filter_map(|i| {
                let c = self.buckets[(i % n) as usize];
                (c.total > 0).then_some([i, c.total, c.bad])
            })
            .collect();
        SavedRing { width: self.width, head: self.head, buckets }
    }

    /// Takes back what `save` wrote, if it was saved with the same bucket
    /// width; buckets that are not in the window at `head` are ignored.
    /// Returns whether it fit.
    pub fn restore(&mut self, saved: &SavedRing) -> bool {
        if saved.width != self.width {
            return false;
        }
        self.buckets.fill(Counts::default());
        self.head = saved.head;
        let n = self.len();
        for [i, total, bad] in &saved.buckets {
            if *i <= self.head && self.head - i < n {
                self.buckets[(i % n) as usize] = Counts { total: *total, bad: (*bad).min(*total) };
            }
        }
        true
    }

    /// Bytes this ring holds (its buckets and its fields).
    pub fn memory(&self) -> usize {
        std::mem::size_of::<Ring>() + self.buckets.len() * std::mem::size_of::<Counts>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_window_keeps_its_last_n_buckets() {
        // 5 minutes in 60 buckets of 5 s.
        let mut r = Ring::new(300 * S, 60);
        let t0 = 1_699_920_000 * S; // a multiple of 5 s
        r.advance(t0);
        r.add(Counts { total: 10, bad: 1 });
        r.advance(t0 + 100 * S);
        r.add(Counts { total: 5, bad: 5 });
        assert_eq!(r.sum(), Counts { total: 15, bad: 6 });
        // The first bucket [t0, t0+5s) is in the window until t0 + 300 s.
        r.advance(t0 + 299 * S);
        assert_eq!(r.sum(), Counts { total: 15, bad: 6 });
        r.advance(t0 + 300 * S);
        assert_eq!(r.sum(), Counts { total: 5, bad: 5 });
        r.advance(t0 + 10_000 * S);
        assert_eq!(r.sum(), Counts::default());
    }

    #[test]
    fn save_and_restore_round_trip() {
        let mut r = Ring::new(300 * S, 60);
        r.advance(1_000 * S);
        r.add(Counts { total: 3, bad: 1 });
        r.advance(1_200 * S);
        r.add(Counts { total: 4, bad: 0 });
        let saved = r.save();
        assert_eq!(saved.buckets, vec![[200, 3, 1], [240, 4, 0]]);
        let mut back = Ring::new(300 * S, 60);
        assert!(back.restore(&saved));
        assert_eq!(back.sum(), Counts { total: 7, bad: 1 });
        // A different bucket width does not fit.
        let mut other = Ring::new(600 * S, 60);
        assert!(!other.restore(&saved));
    }
}
