//! Consistent hashing of routing keys onto backends.
//!
//! Each endpoint sits at [`POINTS_PER_ENDPOINT`] points of a 64-bit ring (the
//! xxh3 of `"endpoint#i"`); a key belongs to the first point at or after its
//! hash, going clockwise. Guarantees: the same key maps to the same endpoint
//! for the same endpoint set, whatever order the set was listed in; adding or
//! removing one of N endpoints moves only the keys that land on (or came from)
//! that endpoint, about 1/N of them; skipping an endpoint (it is down) sends
//! its keys to the next endpoint clockwise, as if it had been removed.

use xxhash_rust::xxh3::xxh3_64;

/// Virtual points per endpoint: enough that each of a few endpoints gets its
/// share within a few percent.
pub const POINTS_PER_ENDPOINT: usize = 160;

#[derive(Debug, Clone, Default)]
pub struct Ring {
    /// Sorted by hash; the `u32` indexes `endpoints`.
    points: Vec<(u64, u32)>,
    /// Sorted, without duplicates.
    endpoints: Vec<String>,
}

impl Ring {
    pub fn new(endpoints: impl IntoIterator<Item = String>) -> Ring {
        let mut endpoints: Vec<String> = endpoints.into_iter().collect();
        endpoints.sort();
        endpoints.dedup();
        let mut points = Vec::with_capacity(endpoints.len() * POINTS_PER_ENDPOINT);
        for (i, e) in endpoints.iter().enumerate() {
            for p in 0..POINTS_PER_ENDPOINT {
                points.push((xxh3_64(format!("{e}#{p}").as_bytes()), i as u32));
            }
        }
        // Ties (vanishingly rare) are broken by endpoint so the order never depends on input order.
        points.sort_unstable();
        Ring { points, endpoints }
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// The endpoint (index into [`Ring::endpoints`]) that owns `hash`.
    pub fn owner(&self, hash: u64) -> Option<usize> {
        self.owner_among(hash, |_| true)
    }

    /// The first endpoint clockwise from `hash` that `usable` accepts.
    pub fn owner_among(&self, hash: u64, usable: impl Fn(usize) -> bool) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let start = self.points.partition_point(|(h, _)| *h < hash);
        let n = self.points.len();
        (0..n).map(|step| self.points[(start + step) % n].1 as usize).find(|&i| usable(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn endpoints(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("gateway-{i}.example:4317")).collect()
    }

    fn trace_hashes(n: usize) -> Vec<u64> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        (0..n).map(|_| xxh3_64(&rng.random::<[u8; 16]>())).collect()
    }

    fn owners(ring: &Ring, hashes: &[u64]) -> Vec<String> {
        hashes.iter().map(|&h| ring.endpoints()[ring.owner(h).unwrap()].clone()).collect()
    }

    #[test]
    fn every_endpoint_gets_about_its_share() {
        let ring = Ring::new(endpoints(5));
        let hashes = trace_hashes(100_000);
        let mut counts = [0usize; 5];
        for &h in &hashes {
            counts[ring.owner(h).unwrap()] += 1;
        }
        eprintln!("keys per endpoint of 5: {counts:?}");
        for c in counts {
            let share = c as f64 / hashes.len() as f64;
            assert!((share - 0.2).abs() < 0.05, "shares {counts:?}");
        }
    }

    #[test]
    fn input_order_does_not_change_the_mapping() {
        let mut reversed = endpoints(4);
        reversed.reverse();
        let hashes = trace_hashes(10_000);
        assert_eq!(owners(&Ring::new(endpoints(4)), &hashes), owners(&Ring::new(reversed), &hashes));
    }

    #[test]
    fn adding_an_endpoint_moves_about_one_in_n_keys_all_to_it() {
        let hashes = trace_hashes(100_000);
        let before = owners(&Ring::new(endpoints(4)), &hashes);
        let after = owners(&Ring::new(endpoints(5)), &hashes);
        let added = &endpoints(5)[4];
        let moved: Vec<usize> = (0..hashes.len()).filter(|&i| before[i] != after[i]).collect();
        assert!(moved.iter().all(|&i| &after[i] == added), "a key moved between two old endpoints");
        let fraction = moved.len() as f64 / hashes.len() as f64;
        eprintln!("adding a 5th endpoint moved {fraction:.4} of the keys");
        assert!((fraction - 1.0 / 5.0).abs() < 0.05, "moved {fraction}");
    }

    #[test]
    fn removing_an_endpoint_moves_only_its_keys_about_one_in_n() {
        let hashes = trace_hashes(100_000);
        let all = endpoints(5);
        let before = owners(&Ring::new(all.clone()), &hashes);
        let removed = &all[2];
        let after = owners(&Ring::new(all.iter().filter(|e| *e != removed).cloned()), &hashes);
        let moved = (0..hashes.len()).filter(|&i| before[i] != after[i]).count();
        let owned_by_removed = before.iter().filter(|e| *e == removed).count();
        assert_eq!(moved, owned_by_removed, "only the removed endpoint's keys move");
        let fraction = moved as f64 / hashes.len() as f64;
        eprintln!("removing one of 5 endpoints moved {fraction:.4} of the keys");
        assert!((fraction - 1.0 / 5.0).abs() < 0.05, "moved {fraction}");
    }

    #[test]
    fn skipping_an_endpoint_is_the_same_as_removing_it() {
        let hashes = trace_hashes(20_000);
        let all = endpoints(4);
        let full = Ring::new(all.clone());
        let down = full.endpoints().iter().position(|e| e == &all[1]).unwrap();
        let skipped: Vec<String> =
            hashes.iter().map(|&h| full.endpoints()[full.owner_among(h, |i| i != down).unwrap()].clone()).collect();
        let without = owners(&Ring::new(all.iter().filter(|e| *e != &all[1]).cloned()), &hashes);
        assert_eq!(skipped, without);
    }

    #[test]
    fn no_usable_endpoint_means_no_owner() {
        let ring = Ring::new(endpoints(2));
        assert_eq!(ring.owner_among(42, |_| false), None);
        assert_eq!(Ring::new(Vec::new()).owner(42), None);
    }
}
