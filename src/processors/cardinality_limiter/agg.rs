//! The values of data points as something that adds, subtracts and merges,
//! so the overflow series keeps totals correct.
//!
//! Guarantees: every operation either succeeds or says it cannot (bounds that
//! differ, a counter reset) and never panics; exponential histograms of
//! different scales merge by downscaling the finer one, and a merged one is
//! kept within [`MAX_EXP_BUCKETS`] buckets per side by downscaling further.

use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;

/// Buckets per side of a merged exponential histogram (the SDK's default max_size).
pub const MAX_EXP_BUCKETS: usize = 160;

#[derive(Debug, Clone, PartialEq)]
pub enum Agg {
    Number {
        f: f64,
        i: i64,
        int: bool,
    },
    Hist(HistAgg),
    Exp(ExpAgg),
    /// Quantiles cannot be merged across series; only count and sum are kept.
    Summary {
        count: u64,
        sum: f64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistAgg {
    pub count: u64,
    pub sum: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub bounds: Vec<f64>,
    pub buckets: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExpAgg {
    pub count: u64,
    pub sum: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub scale: i32,
    pub zero_count: u64,
    pub zero_threshold: f64,
    pub positive: Buckets,
    pub negative: Buckets,
}

fn add_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x + y),
        (x, None) => x,
        (None, y) => y,
    }
}

fn min_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

impl Agg {
    /// Adds `other` in place; false (and unchanged) when they cannot merge:
    /// different kinds, or explicit histogram bounds that differ.
    pub fn add(&mut self, other: &Agg) -> bool {
        match (self, other) {
            (Agg::Number { f, i, int }, Agg::Number { f: f2, i: i2, int: int2 }) => {
                *f += f2;
                *i = i.wrapping_add(*i2);
                *int = *int && *int2;
                true
            }
            (Agg::Hist(a), Agg::Hist(b)) => {
                if a.bounds != b.bounds || a.buckets.len() != b.buckets.len() {
                    return false;
                }
                a.count = a.count.saturating_add(b.count);
                a.sum = add_opt(a.sum, b.sum);
                a.min = min_opt(a.min, b.min);
                a.max = max_opt(a.max, b.max);
                for (x, y) in a.buckets.iter_mut().zip(&b.buckets) {
                    *x = x.saturating_add(*y);
                }
                true
            }
            (Agg::Exp(a), Agg::Exp(b)) => {
                let mut b = b.clone();
                let scale = a.scale.min(b.scale);
                a.downscale_to(scale);
                b.downscale_to(scale);
                // Far-apart offsets would make the union huge: coarsen first.
                for _ in 0..64 {
                    if union_len(&a.positive, &b.positive) <= MAX_EXP_BUCKETS
                        && union_len(&a.negative, &b.negative) <= MAX_EXP_BUCKETS
                    {
                        break;
                    }
                    let next = a.scale.saturating_sub(1);
                    a.downscale_to(next);
                    b.downscale_to(next);
                }
                add_buckets(&mut a.positive, &b.positive);
                add_buckets(&mut a.negative, &b.negative);
                a.count = a.count.saturating_add(b.count);
                a.sum = add_opt(a.sum, b.sum);
                a.min = min_opt(a.min, b.min);
                a.max = max_opt(a.max, b.max);
                a.zero_count = a.zero_count.saturating_add(b.zero_count);
                a.zero_threshold = a.zero_threshold.max(b.zero_threshold);
                a.fit();
                true
            }
            (Agg::Summary { count, sum }, Agg::Summary { count: c2, sum: s2 }) => {
                *count = count.saturating_add(*c2);
                *sum += s2;
                true
            }
            _ => false,
        }
    }

    /// What a cumulative series gained since `prev`; `None` when it was
    /// reset (it went down while `monotonic`, or its shape changed), in
    /// which case all of the new value is the gain.
    pub fn since(&self, prev: &Agg, monotonic: bool) -> Option<Agg> {
        match (self, prev) {
            (Agg::Number { f, i, int }, Agg::Number { f: pf, i: pi, .. }) => {
                if monotonic && (if *int { i < pi } else { f < pf }) {
                    return None;
                }
                Some(Agg::Number { f: f - pf, i: i.wrapping_sub(*pi), int: *int })
            }
            (Agg::Hist(a), Agg::Hist(p)) => {
                if a.bounds != p.bounds || a.buckets.len() != p.buckets.len() || a.count < p.count {
                    return None;
                }
                let mut buckets = Vec::with_capacity(a.buckets.len());
                for (x, y) in a.buckets.iter().zip(&p.buckets) {
                    buckets.push(x.checked_sub(*y)?);
                }
                Some(Agg::Hist(HistAgg {
                    count: a.count - p.count,
                    sum: a.sum.map(|s| s - p.sum.unwrap_or(0.0)),
                    // Extremes of a window cannot be recovered; the series' own
                    // extremes bound it and merge correctly into the total.
                    min: a.min,
                    max: a.max,
                    bounds: a.bounds.clone(),
                    buckets,
                }))
            }
            (Agg::Exp(a), Agg::Exp(p)) => {
                if a.count < p.count || a.zero_count < p.zero_count {
                    return None;
                }
                let (mut a, mut p) = (a.clone(), p.clone());
                let scale = a.scale.min(p.scale);
                a.downscale_to(scale);
                p.downscale_to(scale);
                if !sub_buckets(&mut a.positive, &p.positive) || !sub_buckets(&mut a.negative, &p.negative) {
                    return None;
                }
                a.count -= p.count;
                a.zero_count -= p.zero_count;
                a.sum = a.sum.map(|s| s - p.sum.unwrap_or(0.0));
                Some(Agg::Exp(a))
            }
            (Agg::Summary { count, sum }, Agg::Summary { count: pc, sum: ps }) => {
                if count < pc {
                    return None;
                }
                Some(Agg::Summary { count: count - pc, sum: sum - ps })
            }
            _ => None,
        }
    }

    /// Rough heap and inline bytes, for memory accounting.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Agg>()
            + match self {
                Agg::Hist(h) => 8 * (h.bounds.len() + h.buckets.len()),
                Agg::Exp(e) => 8 * (e.positive.bucket_counts.len() + e.negative.bucket_counts.len()),
                _ => 0,
            }
    }
}

impl ExpAgg {
    fn downscale_to(&mut self, scale: i32) {
        if scale < self.scale {
            let by = (i64::from(self.scale) - i64::from(scale)).min(63) as u32;
            downscale(&mut self.positive, by);
            downscale(&mut self.negative, by);
            self.scale = scale;
        }
    }

    /// Downscales until each side fits in `MAX_EXP_BUCKETS` (offsets are
    /// 32-bit, so 64 halvings always suffice).
    fn fit(&mut self) {
        for _ in 0..64 {
            if self.positive.bucket_counts.len() <= MAX_EXP_BUCKETS
                && self.negative.bucket_counts.len() <= MAX_EXP_BUCKETS
            {
                break;
            }
            self.downscale_to(self.scale.saturating_sub(1));
        }
    }
}

/// Each downscale by one merges pairs of buckets: index i becomes i >> 1
/// (an arithmetic shift, so negative indices floor as the spec requires).
fn downscale(b: &mut Buckets, by: u32) {
    if by == 0 || b.bucket_counts.is_empty() {
        b.offset = if b.bucket_counts.is_empty() { b.offset >> by.min(31) } else { b.offset };
        return;
    }
    let lo = (b.offset as i64) >> by;
    let hi = (b.offset as i64 + b.bucket_counts.len() as i64 - 1) >> by;
    let mut counts = vec![0u64; (hi - lo + 1) as usize];
    for (k, c) in b.bucket_counts.iter().enumerate() {
        let idx = ((b.offset as i64 + k as i64) >> by) - lo;
        if let Some(slot) = counts.get_mut(idx as usize) {
            *slot = slot.saturating_add(*c);
        }
    }
    b.offset = lo as i32;
    b.bucket_counts = counts;
}

/// Buckets spanned by the union of two ranges of the same scale.
fn union_len(a: &Buckets, b: &Buckets) -> usize {
    let range = |x: &Buckets| (x.offset as i64, x.offset as i64 + x.bucket_counts.len() as i64);
    match (a.bucket_counts.is_empty(), b.bucket_counts.is_empty()) {
        (true, _) => b.bucket_counts.len(),
        (_, true) => a.bucket_counts.len(),
        _ => {
            let ((alo, ahi), (blo, bhi)) = (range(a), range(b));
            usize::try_from(ahi.max(bhi) - alo.min(blo)).unwrap_or(usize::MAX)
        }
    }
}

fn add_buckets(a: &mut Buckets, b: &Buckets) {
    if b.bucket_counts.is_empty() {
        return;
    }
    if a.bucket_counts.is_empty() {
        *a = b.clone();
        return;
    }
    let lo = a.offset.min(b.offset) as i64;
    let hi = (a.offset as i64 + a.bucket_counts.len() as i64).max(b.offset as i64 + b.bucket_counts.len() as i64);
    let mut counts = vec![0u64; (hi - lo) as usize];
    for src in [&*a, b] {
        for (k, c) in src.bucket_counts.iter().enumerate() {
            if let Some(slot) = counts.get_mut((src.offset as i64 + k as i64 - lo) as usize) {
                *slot = slot.saturating_add(*c);
            }
        }
    }
    a.offset = lo as i32;
    a.bucket_counts = counts;
}

/// Subtracts `b` from `a` bucket by bucket; false if `b` has counts `a` lacks.
fn sub_buckets(a: &mut Buckets, b: &Buckets) -> bool {
    for (k, c) in b.bucket_counts.iter().enumerate() {
        if *c == 0 {
            continue;
        }
        let idx = b.offset as i64 + k as i64 - a.offset as i64;
        match usize::try_from(idx).ok().and_then(|i| a.bucket_counts.get_mut(i)) {
            Some(slot) if *slot >= *c => *slot -= c,
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp(scale: i32, offset: i32, counts: &[u64]) -> Agg {
        let n = counts.iter().sum();
        Agg::Exp(ExpAgg {
            count: n,
            sum: Some(n as f64),
            min: None,
            max: None,
            scale,
            zero_count: 0,
            zero_threshold: 0.0,
            positive: Buckets { offset, bucket_counts: counts.to_vec() },
            negative: Buckets::default(),
        })
    }

    #[test]
    fn exponential_histograms_of_different_scales_merge_by_downscaling() {
        let mut a = exp(1, 0, &[1, 1, 1, 1]); // indices 0..4 at scale 1
        assert!(a.add(&exp(0, -1, &[5]))); // index -1 at scale 0
        let Agg::Exp(e) = &a else { panic!("kind") };
        assert_eq!(e.scale, 0);
        assert_eq!((e.positive.offset, e.positive.bucket_counts.clone()), (-1, vec![5, 2, 2]));
        assert_eq!(e.count, 9);
        let wide: Vec<u64> = vec![1; 300];
        let mut w = exp(3, 0, &wide);
        assert!(w.add(&exp(3, 0, &[1])));
        let Agg::Exp(e) = &w else { panic!("kind") };
        assert!(e.positive.bucket_counts.len() <= MAX_EXP_BUCKETS);
        assert_eq!(e.positive.bucket_counts.iter().sum::<u64>(), 301);
        let gain = w.since(&exp(3, 0, &[1]), true).expect("no reset");
        let Agg::Exp(g) = gain else { panic!("kind") };
        assert_eq!(g.count, 300);
    }

    #[test]
    fn far_apart_exponential_buckets_merge_within_the_bound() {
        let mut a = exp(0, i32::MIN + 5, &[1, 2]);
        assert!(a.add(&exp(0, i32::MAX - 5, &[3])));
        let Agg::Exp(e) = &a else { panic!("kind") };
        assert!(e.positive.bucket_counts.len() <= MAX_EXP_BUCKETS);
        assert_eq!(e.positive.bucket_counts.iter().sum::<u64>(), 6);
        // Extreme scales must not overflow.
        let mut a = exp(i32::MAX, 0, &[1]);
        assert!(a.add(&exp(i32::MIN, 0, &[1])));
        assert!(a.since(&exp(i32::MAX, 0, &[1]), true).is_some());
    }

    #[test]
    fn histograms_with_other_bounds_do_not_merge() {
        let h = |bounds: Vec<f64>| {
            Agg::Hist(HistAgg { count: 1, sum: None, min: None, max: None, buckets: vec![0; bounds.len() + 1], bounds })
        };
        let mut a = h(vec![1.0]);
        assert!(!a.add(&h(vec![2.0])));
        assert!(a.add(&h(vec![1.0])));
    }
}
