//! `DecisionCache`: the decisions of recent traces, bounded by entry count,
//! evicted by the clock (second-chance) algorithm. A hit marks the entry, so
//! a trace whose spans keep arriving survives a sweep; the sweep evicts the
//! first unmarked entry. Memory is fixed at construction: no growth past
//! `capacity`, no allocation per insert once full.

use std::collections::HashMap;

pub type TraceKey = [u8; 16];

struct Slot<V> {
    trace: TraceKey,
    value: V,
    referenced: bool,
}

pub struct DecisionCache<V> {
    capacity: usize,
    slots: Vec<Slot<V>>,
    index: HashMap<TraceKey, usize, xxhash_rust::xxh3::Xxh3Builder>,
    hand: usize,
}

/// What `insert` did to make room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Fresh,
    Evicted,
}

impl<V: Copy> DecisionCache<V> {
    /// A cache of at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        // Preallocate a modest amount only: a large configured size is a bound,
        // not a promise that it fills.
        let pre = capacity.min(4096);
        DecisionCache {
            capacity,
            slots: Vec::with_capacity(pre),
            index: HashMap::with_capacity_and_hasher(pre, Default::default()),
            hand: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn get(&mut self, trace: &TraceKey) -> Option<V> {
        let i = *self.index.get(trace)?;
        let slot = &mut self.slots[i];
        slot.referenced = true;
        Some(slot.value)
    }

    /// Records a decision for a trace not in the cache.
    pub fn insert(&mut self, trace: TraceKey, value: V) -> Inserted {
        if let Some(&i) = self.index.get(&trace) {
            self.slots[i].value = value;
            self.slots[i].referenced = true;
            return Inserted::Fresh;
        }
        if self.slots.len() < self.capacity {
            self.index.insert(trace, self.slots.len());
            // New entries start unmarked: a trace seen once is the first to go.
            self.slots.push(Slot { trace, value, referenced: false });
            return Inserted::Fresh;
        }
        // Sweep: clear marks until an unmarked slot is found; at most one
        // full turn, since the turn clears every mark.
        loop {
            let slot = &mut self.slots[self.hand];
            if slot.referenced {
                slot.referenced = false;
                self.hand = (self.hand + 1) % self.capacity;
                continue;
            }
            self.index.remove(&slot.trace);
            self.index.insert(trace, self.hand);
            *slot = Slot { trace, value, referenced: false };
            self.hand = (self.hand + 1) % self.capacity;
            return Inserted::Evicted;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(i: u8) -> TraceKey {
        [i; 16]
    }

    #[test]
    fn bounded_and_second_chance() {
        let mut c = DecisionCache::new(3);
        for i in 0..3 {
            assert_eq!(c.insert(t(i), i), Inserted::Fresh);
        }
        assert_eq!(c.get(&t(0)), Some(0)); // marks 0
        assert_eq!(c.insert(t(9), 9), Inserted::Evicted);
        assert_eq!(c.len(), 3);
        // 0 was referenced, so 1 went first.
        assert_eq!(c.get(&t(1)), None);
        assert_eq!(c.get(&t(0)), Some(0));
        assert_eq!(c.get(&t(9)), Some(9));
        for i in 10..100 {
            c.insert(t(i), i);
            assert!(c.len() <= 3);
        }
    }
}
