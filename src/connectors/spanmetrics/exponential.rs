//! The base-2 exponential histogram that `histogram.exponential` records
//! durations in, with the behaviour of the Go aggregator the Collector uses
//! (`lightstep/go-expohisto` `structure.Histogram`): it starts at scale 20;
//! a value `v > 0` falls in bucket `index` where `base^index < v <=
//! base^(index+1)` and `base = 2^(2^-scale)`; zeros are counted apart; when
//! a value would make the buckets span `max_size` indices or more, the
//! scale drops by the least `change` that brings `(high >> change) - (low >>
//! change)` below `max_size`, merging `2^change` neighbours into one.
//!
//! Guarantee: at most `max_size` bucket counters, whatever is recorded.

use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::ExponentialHistogramDataPoint;

/// The Collector's default `max_size`.
pub const DEFAULT_MAX_SIZE: u32 = 160;
/// The Go aggregator's smallest size (the whole float range fits at the
/// lowest scale).
pub const MIN_MAX_SIZE: u32 = 2;
/// sluice's bound on `max_size` (the Collector has none).
pub const MAX_MAX_SIZE: u32 = 16_384;
const MAX_SCALE: i32 = 20;
const MIN_SCALE: i32 = -10;

/// The bucket of `v` (positive, finite) at `scale`, as the Go mapping
/// functions compute it: exact for powers of two, `floor(ln v * 2^scale *
/// log2 e)` otherwise at positive scales, the binary exponent shifted at
/// the others.
pub fn map_to_index(v: f64, scale: i32) -> i32 {
    // Subnormals are below any duration (1 ns in seconds is 1e-9).
    let v = v.max(f64::MIN_POSITIVE);
    let bits = v.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32 - 1023;
    let exact = bits & ((1u64 << 52) - 1) == 0;
    if scale <= 0 {
        return (exponent - i32::from(exact)) >> -scale;
    }
    if exact {
        return (exponent << scale) - 1;
    }
    let factor = std::f64::consts::LOG2_E * f64::powi(2.0, scale);
    let index = (v.ln() * factor).floor();
    // The largest float's bucket at this scale.
    let max_index = ((1024i64 << scale) - 1).min(i64::from(i32::MAX)) as f64;
    index.min(max_index) as i32
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExponentialHistogram {
    max_size: u32,
    scale: i32,
    count: u64,
    zero_count: u64,
    sum: f64,
    min: f64,
    max: f64,
    /// Index of `counts[0]`.
    offset: i32,
    counts: Vec<u64>,
}

impl ExponentialHistogram {
    pub fn new(max_size: u32) -> Self {
        ExponentialHistogram {
            max_size: max_size.clamp(MIN_MAX_SIZE, MAX_MAX_SIZE),
            scale: MAX_SCALE,
            count: 0,
            zero_count: 0,
            sum: 0.0,
            min: 0.0,
            max: 0.0,
            offset: 0,
            counts: Vec::new(),
        }
    }

    /// Records a duration (never negative: an inverted span lasts 0).
    pub fn record(&mut self, v: f64) {
        if self.count == 0 {
            (self.min, self.max) = (v, v);
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.count += 1;
        if v <= 0.0 || !v.is_finite() {
            self.zero_count += 1;
            return;
        }
        self.sum += v;
        let mut index = map_to_index(v, self.scale);
        if !self.counts.is_empty() {
            let high = index.max(self.offset + self.counts.len() as i32 - 1);
            let low = index.min(self.offset);
            let (mut h, mut l, mut change) = (i64::from(high), i64::from(low), 0);
            while h - l >= i64::from(self.max_size) && self.scale - change > MIN_SCALE {
                h >>= 1;
                l >>= 1;
                change += 1;
            }
            if change > 0 {
                self.downscale(change);
                index = map_to_index(v, self.scale);
            }
        }
        if self.counts.is_empty() {
            self.offset = index;
            self.counts.push(0);
        } else if index < self.offset {
            let grow = (self.offset - index) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = index;
        } else if index >= self.offset + self.counts.len() as i32 {
            self.counts.resize((index - self.offset) as usize + 1, 0);
        }
        self.counts[(index - self.offset) as usize] += 1;
    }

    fn downscale(&mut self, change: i32) {
        self.scale -= change;
        let offset = self.offset >> change;
        let last = (self.offset + self.counts.len() as i32 - 1) >> change;
        let mut counts = vec![0u64; (last - offset) as usize + 1];
        for (i, c) in self.counts.iter().enumerate() {
            counts[(((self.offset + i as i32) >> change) - offset) as usize] += c;
        }
        self.offset = offset;
        self.counts = counts;
    }

    /// The data point's fields (scale 0 while only zeros were recorded, as Go's).
    pub fn fill(&self, dp: &mut ExponentialHistogramDataPoint) {
        dp.count = self.count;
        dp.sum = Some(self.sum);
        if self.count > 0 {
            dp.min = Some(self.min);
            dp.max = Some(self.max);
        }
        dp.zero_count = self.zero_count;
        dp.scale = if self.count == self.zero_count { 0 } else { self.scale };
        dp.positive = Some(Buckets { offset: self.offset, bucket_counts: self.counts.clone() });
        dp.negative = Some(Buckets::default());
    }
}
