//! One worker's processor chain: the output of each processor is the input of
//! the next, and what a timer releases in processor `i` still runs through
//! processors `i+1..`.

use crate::data::Batch;
use crate::processors::Processor;
use std::time::Instant;

pub struct ProcessorChain {
    processors: Vec<Box<dyn Processor>>,
}

impl ProcessorChain {
    pub fn new(processors: Vec<Box<dyn Processor>>) -> Self {
        ProcessorChain { processors }
    }

    fn run_from(&mut self, start: usize, mut current: Vec<Batch>, now: Instant, out: &mut Vec<Batch>) {
        for p in &mut self.processors[start..] {
            if current.is_empty() {
                return;
            }
            let mut next = Vec::with_capacity(current.len());
            for batch in current {
                p.process(batch, now, &mut next);
            }
            current = next;
        }
        out.extend(current);
    }

    pub fn process(&mut self, batch: Batch, now: Instant, out: &mut Vec<Batch>) {
        self.run_from(0, vec![batch], now, out);
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.processors.iter().filter_map(|p| p.next_deadline()).min()
    }

    /// Runs every timer that is due.
    pub fn tick(&mut self, now: Instant, out: &mut Vec<Batch>) {
        for i in 0..self.processors.len() {
            if self.processors[i].next_deadline().is_some_and(|d| d <= now) {
                let mut released = Vec::new();
                self.processors[i].tick(now, &mut released);
                self.run_from(i + 1, released, now, out);
            }
        }
    }

    /// Empties every processor in order, so what processor `i` flushes is
    /// still seen (and flushed) by the processors after it.
    pub fn flush(&mut self, now: Instant, out: &mut Vec<Batch>) {
        for i in 0..self.processors.len() {
            let mut released = Vec::new();
            self.processors[i].flush(&mut released);
            self.run_from(i + 1, released, now, out);
        }
    }
}
