//! Folding streamed conversation messages by their dense `idx`.
//!
//! After a reconnect the server replays from where we asked, so duplicates
//! are normal; a dropped range shows up as a gap that the UI backfills with
//! `messages?start=&end=`. Keyed storage makes all of that order-independent.

use std::collections::BTreeMap;
use std::ops::Range;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    New,
    /// Already present, or below the fold's base (the UI already has it from
    /// SSR); the item was ignored.
    Duplicate,
}

#[derive(Clone, Debug)]
pub struct IdxFold<T> {
    items: BTreeMap<u64, T>,
    base: u64,
    /// First idx ≥ base not yet present; kept incrementally so
    /// `next_expected` is O(1) and inserts are amortised O(log n).
    contiguous_end: u64,
}

impl<T> Default for IdxFold<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> IdxFold<T> {
    pub fn new() -> Self {
        Self::with_base(0)
    }

    /// Start at `base`: indices below it are treated as already delivered.
    pub fn with_base(base: u64) -> Self {
        IdxFold {
            items: BTreeMap::new(),
            base,
            contiguous_end: base,
        }
    }

    /// First insert wins: a replayed message must not replace one the UI is
    /// already showing (and possibly holding references into).
    pub fn insert(&mut self, idx: u64, item: T) -> Applied {
        if idx < self.base || self.items.contains_key(&idx) {
            return Applied::Duplicate;
        }
        self.items.insert(idx, item);
        while self.items.contains_key(&self.contiguous_end) {
            self.contiguous_end += 1;
        }
        Applied::New
    }

    /// Where a stream should resume: one past the contiguous prefix from base.
    pub fn next_expected(&self) -> u64 {
        self.contiguous_end
    }

    /// Gaps between the contiguous prefix and the highest idx seen, as
    /// half-open ranges suitable for `messages?start=&end=`.
    pub fn missing_ranges(&self) -> Vec<Range<u64>> {
        let mut gaps = Vec::new();
        let mut expect = self.contiguous_end;
        for &idx in self.items.range(self.contiguous_end..).map(|(k, _)| k) {
            if idx > expect {
                gaps.push(expect..idx);
            }
            expect = idx + 1;
        }
        gaps
    }

    pub fn get(&self, idx: u64) -> Option<&T> {
        self.items.get(&idx)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&u64, &T)> {
        self.items.iter()
    }

    pub fn highest(&self) -> Option<u64> {
        self.items.last_key_value().map(|(k, _)| *k)
    }

    pub fn base(&self) -> u64 {
        self.base
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn in_order_and_duplicates() {
        let mut f = IdxFold::new();
        assert!(f.is_empty());
        assert_eq!(f.next_expected(), 0);
        assert_eq!(f.insert(0, "a"), Applied::New);
        assert_eq!(f.insert(1, "b"), Applied::New);
        assert_eq!(f.insert(1, "B"), Applied::Duplicate);
        assert_eq!(f.get(1), Some(&"b"));
        assert_eq!(f.next_expected(), 2);
        assert_eq!(f.len(), 2);
        assert_eq!(f.highest(), Some(1));
        assert!(f.missing_ranges().is_empty());
    }

    #[test]
    fn gaps_and_out_of_order() {
        let mut f = IdxFold::new();
        for i in [0, 1, 4, 5, 8] {
            f.insert(i, i);
        }
        assert_eq!(f.next_expected(), 2);
        assert_eq!(f.missing_ranges(), vec![2..4, 6..8]);
        assert_eq!(f.highest(), Some(8));
        f.insert(3, 3);
        assert_eq!(f.missing_ranges(), vec![2..3, 6..8]);
        f.insert(2, 2);
        assert_eq!(f.next_expected(), 6);
        assert_eq!(f.missing_ranges(), vec![6..8]);
        f.insert(7, 7);
        f.insert(6, 6);
        assert_eq!(f.next_expected(), 9);
        assert!(f.missing_ranges().is_empty());
        let keys: Vec<u64> = f.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, (0..9).collect::<Vec<_>>());
    }

    #[test]
    fn missing_start_is_a_gap() {
        let mut f = IdxFold::new();
        f.insert(3, ());
        assert_eq!(f.next_expected(), 0);
        assert_eq!(f.missing_ranges(), vec![0..3]);
    }

    #[test]
    fn with_base() {
        let mut f = IdxFold::with_base(10);
        assert_eq!(f.base(), 10);
        assert_eq!(f.next_expected(), 10);
        assert_eq!(f.insert(9, "old"), Applied::Duplicate);
        assert_eq!(f.get(9), None);
        assert_eq!(f.insert(12, "x"), Applied::New);
        assert_eq!(f.missing_ranges(), vec![10..12]);
        f.insert(10, "y");
        f.insert(11, "z");
        assert_eq!(f.next_expected(), 13);
        assert!(f.missing_ranges().is_empty());
    }

    proptest! {
        #[test]
        fn any_permutation_with_duplicates_completes(
            (n, order) in (0u64..60).prop_flat_map(|n| {
                let dups = prop::collection::vec(0..n.max(1), 0..30);
                (Just(n), dups).prop_flat_map(move |(n, dups)| {
                    let mut all: Vec<u64> = (0..n).collect();
                    if n > 0 {
                        all.extend(dups);
                    }
                    (Just(n), Just(all).prop_shuffle())
                })
            })
        ) {
            let mut f = IdxFold::new();
            let mut news = 0;
            for &i in &order {
                if f.insert(i, i * 10) == Applied::New {
                    news += 1;
                }
                // Invariant at every step: gaps and the prefix partition
                // exactly the absent indices below the highest.
                let missing: u64 = f.missing_ranges().iter().map(|r| r.end - r.start).sum();
                let span = f.highest().map_or(0, |h| h + 1);
                prop_assert_eq!(missing + f.len() as u64, span);
            }
            prop_assert_eq!(news, n);
            prop_assert_eq!(f.next_expected(), n);
            prop_assert!(f.missing_ranges().is_empty());
            prop_assert_eq!(f.len() as u64, n);
            for i in 0..n {
                prop_assert_eq!(f.get(i), Some(&(i * 10)));
            }
        }
    }
}
