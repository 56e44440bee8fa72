//! `KeyRates`: per-key trace counts, their moving averages, and the sampling
//! probability each key gets, recomputed once per adjustment interval.
//!
//! Allocation rule (max-min fair, "water-filling"): with a budget of `G`
//! traces per interval and moving-average counts `c_k`, find the level `L`
//! with `sum_k min(c_k, L) = G`. A key with `c_k <= L` keeps everything
//! (probability 1); every busier key gets probability `L / c_k`, so each busy
//! key keeps about `L` traces per interval. Rare keys are never sampled while
//! the goal allows, and one busy key cannot starve another. When all keys
//! together fit in `G`, everything is kept.
//!
//! A key first seen since the last adjustment keeps everything until the next
//! one: nothing is known of its volume, and new keys are usually rare ones.
//! The table holds at most `max_keys` keys; traces of further keys share one
//! catch-all key (counted), which is sampled like any other key.

use std::collections::HashMap;

/// The key that traces of keys beyond `max_keys` share.
pub const OVERFLOW_KEY: &str = "\u{0}overflow";

/// A moving average below this (traces per interval) with no traces in the
/// last interval frees the key's slot: it is as good as gone.
const FORGET_BELOW: f64 = 0.01;

#[derive(Debug, Clone)]
struct KeyState {
    count: u64,
    ema: f64,
    /// None until the first adjustment that saw this key.
    probability: Option<f64>,
}

pub struct KeyRates {
    max_keys: usize,
    weight: f64,
    keys: HashMap<Box<str>, KeyState, xxhash_rust::xxh3::Xxh3Builder>,
    overflow: KeyState,
}

/// The outcome of counting one trace under a key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Counted {
    pub probability: f64,
    /// A new key was added to the table.
    pub added: bool,
    /// The table was full, so the trace went to the catch-all key.
    pub overflowed: bool,
}

impl KeyRates {
    pub fn new(max_keys: usize, weight: f64) -> Self {
        KeyRates {
            max_keys: max_keys.max(1),
            weight,
            keys: HashMap::default(),
            overflow: KeyState { count: 0, ema: 0.0, probability: None },
        }
    }

    /// Keys tracked, the catch-all key not included.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Counts one new trace of `key` and returns the probability to apply.
    pub fn count(&mut self, key: &str) -> Counted {
        if let Some(state) = self.keys.get_mut(key) {
            state.count += 1;
            return Counted { probability: state.probability.unwrap_or(1.0), added: false, overflowed: false };
        }
        if self.keys.len() < self.max_keys {
            self.keys.insert(key.into(), KeyState { count: 1, ema: 0.0, probability: None });
            return Counted { probability: 1.0, added: true, overflowed: false };
        }
        self.overflow.count += 1;
        Counted { probability: self.overflow.probability.unwrap_or(1.0), added: false, overflowed: true }
    }

    /// The probability a key gets now (1 for a key not yet adjusted).
    pub fn probability(&self, key: &str) -> f64 {
        self.keys.get(key).and_then(|s| s.probability).unwrap_or(1.0)
    }

    /// Folds the interval's counts into the averages and reallocates
    /// `budget` traces per interval. Returns how many keys were forgotten.
    pub fn adjust(&mut self, budget: f64) -> usize {
        let w = self.weight;
        let fold = |s: &mut KeyState| {
            // The first interval of a key seeds its average, so a busy new key
            // is sampled down at once rather than over several intervals.
            s.ema = if s.probability.is_none() && s.ema == 0.0 {
                s.count as f64
            } else {
                w * s.count as f64 + (1.0 - w) * s.ema
            };
            s.count = 0;
        };
        self.keys.values_mut().for_each(fold);
        fold(&mut self.overflow);
        let before = self.keys.len();
        self.keys.retain(|_, s| s.ema >= FORGET_BELOW);
        let forgotten = before - self.keys.len();

        let mut emas: Vec<f64> = self.keys.values().map(|s| s.ema).collect();
        emas.push(self.overflow.ema);
        let level = water_level(&mut emas, budget);
        let p = |ema: f64| if ema <= level || ema <= 0.0 { 1.0 } else { (level / ema).clamp(f64::MIN_POSITIVE, 1.0) };
        for s in self.keys.values_mut() {
            s.probability = Some(p(s.ema));
        }
        self.overflow.probability = Some(p(self.overflow.ema));
        forgotten
    }
}

/// The level `L` with `sum min(c, L) = budget`; infinity when everything fits.
pub fn water_level(counts: &mut [f64], budget: f64) -> f64 {
    counts.sort_by(|a, b| a.total_cmp(b));
    let mut remaining = budget.max(0.0);
    let n = counts.len();
    for (i, &c) in counts.iter().enumerate() {
        let left = (n - i) as f64;
        if c * left > remaining {
            return remaining / left;
        }
        remaining -= c;
    }
    f64::INFINITY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn water_level_fills_rare_keys_first() {
        assert_eq!(water_level(&mut [10.0, 1000.0], 100.0), 90.0);
        assert_eq!(water_level(&mut [10.0, 20.0], 100.0), f64::INFINITY);
        assert_eq!(water_level(&mut [300.0, 100.0, 1000.0], 300.0), 100.0);
        assert_eq!(water_level(&mut [], 1.0), f64::INFINITY);
    }

    #[test]
    fn overflow_goes_to_the_catch_all_key() {
        let mut k = KeyRates::new(2, 0.5);
        assert!(k.count("a").added);
        assert!(k.count("b").added);
        let c = k.count("c");
        assert!(c.overflowed && !c.added);
        assert!(k.count("d").overflowed);
        assert_eq!(k.len(), 2);
        assert!(k.count("a").probability == 1.0);
    }

    #[test]
    fn idle_keys_are_forgotten() {
        let mut k = KeyRates::new(10, 1.0);
        k.count("a");
        assert_eq!(k.adjust(100.0), 0);
        assert_eq!(k.adjust(100.0), 1);
        assert!(k.is_empty());
    }
}
