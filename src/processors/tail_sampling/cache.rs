//! `DecisionCache`: trace IDs whose decision is made, so spans that arrive
//! after it follow it. Bounded by entry count; the oldest entry is evicted
//! first (insertion order), and evictions are counted by the caller.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};

/// A map keyed by trace ID, hashed with xxh3 under a per-process random
/// seed: a quarter of the cost of the default SipHash on 16-byte keys, and
/// still keyed, so clients that pick trace IDs cannot pick collisions.
pub type TraceIdMap<V> = HashMap<[u8; 16], V, TraceIdHashing>;

#[derive(Clone, Copy)]
pub struct TraceIdHashing {
    seed: u64,
}

impl Default for TraceIdHashing {
    fn default() -> Self {
        TraceIdHashing { seed: std::hash::RandomState::new().build_hasher().finish() }
    }
}

impl BuildHasher for TraceIdHashing {
    type Hasher = TraceIdHasher;
    fn build_hasher(&self) -> TraceIdHasher {
        TraceIdHasher { state: self.seed }
    }
}

pub struct TraceIdHasher {
    state: u64,
}

impl Hasher for TraceIdHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.state = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.state);
    }

    /// The length prefix of a slice: always 16 here, so it changes nothing.
    fn write_usize(&mut self, _: usize) {}

    fn finish(&self) -> u64 {
        self.state
    }
}

pub struct DecisionCache<V> {
    capacity: usize,
    map: TraceIdMap<V>,
    order: VecDeque<[u8; 16]>,
}

impl<V> DecisionCache<V> {
    /// A cache of `capacity` entries; 0 keeps nothing.
    pub fn new(capacity: usize) -> Self {
        DecisionCache { capacity, map: TraceIdMap::default(), order: VecDeque::new() }
    }

    pub fn get(&self, id: &[u8; 16]) -> Option<&V> {
        self.map.get(id)
    }

    /// Remembers `id`; returns how many entries were evicted to make room.
    pub fn insert(&mut self, id: [u8; 16], v: V) -> u64 {
        if self.capacity == 0 {
            return 0;
        }
        if let Some(old) = self.map.get_mut(&id) {
            *old = v;
            return 0;
        }
        let mut evicted = 0;
        while self.map.len() >= self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    if self.map.remove(&old).is_some() {
                        evicted += 1;
                    }
                }
                None => break,
            }
        }
        self.map.insert(id, v);
        self.order.push_back(id);
        evicted
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Entries it holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The entries, oldest first (the order `insert` rebuilds them in).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8; 16], &V)> + '_ {
        self.order.iter().filter_map(|id| self.map.get(id).map(|v| (id, v)))
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_oldest_and_stays_bounded() {
        let mut c = DecisionCache::new(2);
        assert_eq!(c.insert([1; 16], ()), 0);
        assert_eq!(c.insert([2; 16], ()), 0);
        assert_eq!(c.insert([3; 16], ()), 1);
        assert!(c.get(&[1; 16]).is_none());
        assert!(c.get(&[3; 16]).is_some());
        assert_eq!(c.len(), 2);
        let mut off = DecisionCache::new(0);
        off.insert([1; 16], ());
        assert!(off.is_empty());
    }
}
