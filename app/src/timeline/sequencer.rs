//! Puts messages in `idx` order, whatever order the snapshot, the stream and gap
//! fetches deliver them in.

use std::collections::BTreeMap;

/// Releases each item exactly once, holding back any that arrive ahead of a gap.
#[derive(Debug, Default)]
pub struct Sequencer<T> {
    next: u64,
    pending: BTreeMap<u64, T>,
}

impl<T> Sequencer<T> {
    /// Starts expecting `next` (everything below it counts as already seen).
    pub fn starting_at(next: u64) -> Self {
        Sequencer {
            next,
            pending: BTreeMap::new(),
        }
    }

    /// The next index to apply: where a stream should resume.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Accepts one item; returns the items now ready, in order. Duplicates (below
    /// `next` or already pending) are dropped.
    pub fn push(&mut self, idx: u64, item: T) -> Vec<T> {
        if idx < self.next || self.pending.contains_key(&idx) {
            return Vec::new();
        }
        self.pending.insert(idx, item);
        let mut ready = Vec::new();
        while let Some(item) = self.pending.remove(&self.next) {
            ready.push(item);
            self.next += 1;
        }
        ready
    }

    /// The missing range before the first held-back item, if there is a gap.
    pub fn gap(&self) -> Option<std::ops::Range<u64>> {
        self.pending.keys().next().map(|&first| self.next..first)
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_in_order_and_drops_duplicates() {
        let mut s = Sequencer::starting_at(0);
        assert_eq!(s.push(0, 'a'), vec!['a']);
        assert_eq!(
            s.push(0, 'x'),
            Vec::<char>::new(),
            "duplicate of an applied idx"
        );
        assert_eq!(
            s.push(2, 'c'),
            Vec::<char>::new(),
            "held back behind the gap"
        );
        assert_eq!(s.gap(), Some(1..2));
        assert_eq!(
            s.push(2, 'y'),
            Vec::<char>::new(),
            "duplicate of a pending idx"
        );
        assert_eq!(s.push(1, 'b'), vec!['b', 'c']);
        assert_eq!(s.gap(), None);
        assert_eq!(s.next(), 3);
    }

    #[test]
    fn base_skips_what_the_page_already_has() {
        let mut s = Sequencer::starting_at(10);
        assert!(s.push(9, ()).is_empty());
        assert_eq!(s.push(10, ()).len(), 1);
        assert_eq!(s.next(), 11);
    }

    proptest::proptest! {
        #[test]
        fn any_arrival_order_with_duplicates_applies_each_once_in_order(
            order in proptest::collection::vec(0u64..40, 0..200)
        ) {
            // Every index 0..40 arrives at least once, in a random order with repeats.
            let mut arrivals = order.clone();
            arrivals.extend(0..40);
            let mut s = Sequencer::starting_at(0);
            let mut applied = Vec::new();
            for idx in arrivals {
                applied.extend(s.push(idx, idx));
            }
            proptest::prop_assert_eq!(applied, (0..40).collect::<Vec<_>>());
            proptest::prop_assert_eq!(s.pending(), 0);
        }
    }
}
