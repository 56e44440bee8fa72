//! A HyperLogLog distinct-value estimator with 2^8 one-byte registers
//! (256 bytes, about 6.5% standard error), fed with xxh3 hashes.

const P: u32 = 8;
const M: usize = 1 << P;

#[derive(Clone)]
pub struct HyperLogLog {
    registers: [u8; M],
}

impl Default for HyperLogLog {
    fn default() -> Self {
        HyperLogLog { registers: [0; M] }
    }
}

impl HyperLogLog {
    /// Bytes one estimator holds, for memory accounting.
    pub const BYTES: usize = M;

    /// Adds one 64-bit hash (already well mixed: xxh3).
    pub fn add(&mut self, hash: u64) {
        let idx = (hash >> (64 - P)) as usize;
        // A sentinel bit bounds the rank when the remaining bits are all zero.
        let rest = (hash << P) | (1 << (P - 1));
        let rank = rest.leading_zeros() as u8 + 1;
        if let Some(r) = self.registers.get_mut(idx) {
            *r = (*r).max(rank);
        }
    }

    /// The estimated number of distinct hashes added.
    pub fn estimate(&self) -> f64 {
        let m = M as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let mut sum = 0.0;
        let mut zeros = 0usize;
        for &r in &self.registers {
            sum += 2f64.powi(-(r as i32));
            zeros += usize::from(r == 0);
        }
        let raw = alpha * m * m / sum;
        // Linear counting is more accurate while many registers are empty.
        if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hll_estimates_within_ten_percent() {
        for n in [1000u64, 5000] {
            let mut h = HyperLogLog::default();
            for i in 0..n {
                let v = format!("user-{i}");
                h.add(xxhash_rust::xxh3::xxh3_64(v.as_bytes()));
                h.add(xxhash_rust::xxh3::xxh3_64(v.as_bytes())); // repeats do not count
            }
            let e = h.estimate();
            assert!((e - n as f64).abs() / (n as f64) < 0.10, "n={n} estimate={e}");
        }
        assert!(HyperLogLog::default().estimate() < 0.5);
    }
}
