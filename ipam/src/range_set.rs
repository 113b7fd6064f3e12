//! A set of `u128` values stored as disjoint, non-adjacent inclusive ranges.
//!
//! Memory is proportional to the number of ranges, not to the number of values: a whole IPv6 /64
//! is one entry. The map is keyed by the *end* of each range so that taking the lowest value only
//! rewrites the value of the first entry.

use std::collections::BTreeMap;

/// Disjoint inclusive ranges `start..=end`, keyed by `end`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    /// end -> start
    map: BTreeMap<u128, u128>,
    /// Number of values held (saturating; a full IPv6 space does not fit in u128).
    len: u128,
}

impl RangeSet {
    /// An empty set.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Number of values in the set.
    pub(crate) fn len(&self) -> u128 {
        self.len
    }

    /// True when the set holds no value.
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The inclusive ranges in ascending order.
    pub(crate) fn ranges(&self) -> impl Iterator<Item = (u128, u128)> + '_ {
        self.map.iter().map(|(&end, &start)| (start, end))
    }

    /// The range that contains `value`, if any.
    pub(crate) fn range_of(&self, value: u128) -> Option<(u128, u128)> {
        let (&end, &start) = self.map.range(value..).next()?;
        (start <= value).then_some((start, end))
    }

    /// True when `value` is in the set.
    pub(crate) fn contains(&self, value: u128) -> bool {
        self.range_of(value).is_some()
    }

    /// The lowest value, if any.
    pub(crate) fn first(&self) -> Option<u128> {
        self.map.first_key_value().map(|(_, &start)| start)
    }

    /// Removes and returns the lowest value.
    pub(crate) fn pop_first(&mut self) -> Option<u128> {
        let mut entry = self.map.first_entry()?;
        let start = *entry.get();
        if start == *entry.key() {
            entry.remove();
        } else {
            *entry.get_mut() = start + 1;
        }
        self.len = self.len.saturating_sub(1);
        Some(start)
    }

    /// Adds `start..=end`, merging with overlapping and adjacent ranges.
    pub(crate) fn insert(&mut self, start: u128, end: u128) {
        debug_assert!(start <= end);
        let mut new_start = start;
        let mut new_end = end;
        // Ranges that overlap or touch: end >= start - 1 and start <= end + 1.
        let lower = start.saturating_sub(1);
        let mut absorbed = Vec::new();
        for (&e, &s) in self.map.range(lower..) {
            if end != u128::MAX && s > end + 1 {
                break;
            }
            new_start = new_start.min(s);
            new_end = new_end.max(e);
            absorbed.push((e, s));
        }
        for (e, s) in absorbed {
            self.map.remove(&e);
            self.len = self.len.saturating_sub(count(s, e));
        }
        self.map.insert(new_end, new_start);
        self.len = self.len.saturating_add(count(new_start, new_end));
    }

    /// Removes `start..=end` from the set, splitting ranges as needed. Returns how many values
    /// were removed.
    pub(crate) fn remove(&mut self, start: u128, end: u128) -> u128 {
        debug_assert!(start <= end);
        let mut touched = Vec::new();
        for (&e, &s) in self.map.range(start..) {
            if s > end {
                break;
            }
            touched.push((e, s));
        }
        let mut removed = 0u128;
        for (e, s) in touched {
            self.map.remove(&e);
            if s < start {
                self.map.insert(start - 1, s);
            }
            if e > end {
                self.map.insert(e, end + 1);
            }
            removed = removed.saturating_add(count(s.max(start), e.min(end)));
        }
        self.len = self.len.saturating_sub(removed);
        removed
    }

    /// Removes one value; true if it was present.
    pub(crate) fn remove_one(&mut self, value: u128) -> bool {
        // Fast path for the common case of a value inside one range.
        let Some((&end, &start)) = self.map.range(value..).next() else {
            return false;
        };
        if start > value {
            return false;
        }
        if start == end {
            self.map.remove(&end);
        } else if value == start {
            self.map.insert(end, start + 1);
        } else if value == end {
            self.map.remove(&end);
            self.map.insert(end - 1, start);
        } else {
            self.map.insert(end, value + 1);
            self.map.insert(value - 1, start);
        }
        self.len = self.len.saturating_sub(1);
        true
    }

    /// Removes every value of `other` from `self`.
    pub(crate) fn subtract(&mut self, other: &RangeSet) {
        for (s, e) in other.ranges() {
            if self.is_empty() {
                break;
            }
            self.remove(s, e);
        }
    }
}

/// Number of values in `start..=end`, saturating at `u128::MAX`.
pub(crate) fn count(start: u128, end: u128) -> u128 {
    (end - start).saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(set: &RangeSet) -> Vec<u128> {
        set.ranges().flat_map(|(s, e)| s..=e).collect()
    }

    #[test]
    fn insert_merges_adjacent_and_overlapping_ranges() {
        let mut set = RangeSet::new();
        set.insert(10, 12);
        set.insert(14, 15);
        set.insert(13, 13);
        set.insert(0, 2);
        assert_eq!(set.ranges().collect::<Vec<_>>(), vec![(0, 2), (10, 15)]);
        set.insert(1, 11);
        assert_eq!(set.ranges().collect::<Vec<_>>(), vec![(0, 15)]);
        assert_eq!(set.len(), 16);
    }

    #[test]
    fn remove_splits_ranges_and_counts_removed_values() {
        let mut set = RangeSet::new();
        set.insert(0, 20);
        assert_eq!(set.remove(5, 7), 3);
        assert_eq!(set.remove(30, 40), 0);
        assert!(set.remove_one(0));
        assert!(!set.remove_one(6));
        assert!(set.remove_one(10));
        assert_eq!(
            set.ranges().collect::<Vec<_>>(),
            vec![(1, 4), (8, 9), (11, 20)]
        );
        assert_eq!(set.len(), 16);
    }

    #[test]
    fn pop_first_returns_values_in_ascending_order() {
        let mut set = RangeSet::new();
        set.insert(7, 8);
        set.insert(2, 3);
        let popped: Vec<_> = std::iter::from_fn(|| set.pop_first()).collect();
        assert_eq!(popped, vec![2, 3, 7, 8]);
        assert!(set.is_empty());
        assert_eq!(set.len(), 0);
    }

    #[test]
    fn full_u128_range_saturates_len_without_overflow() {
        let mut set = RangeSet::new();
        set.insert(0, u128::MAX);
        assert_eq!(set.len(), u128::MAX);
        assert!(set.remove_one(u128::MAX));
        assert!(set.contains(5));
    }

    #[test]
    fn operations_agree_with_a_btreeset() {
        use std::collections::BTreeSet;
        let mut set = RangeSet::new();
        let mut reference = BTreeSet::new();
        let mut x: u64 = 12345;
        for _ in 0..2000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let a = u128::from((x >> 33) % 64);
            let b = (a + u128::from((x >> 20) % 5)).min(63);
            match (x >> 10) % 3 {
                0 => {
                    set.insert(a, b);
                    reference.extend(a..=b);
                }
                1 => {
                    set.remove(a, b);
                    for v in a..=b {
                        reference.remove(&v);
                    }
                }
                _ => {
                    assert_eq!(set.pop_first(), reference.pop_first());
                }
            }
            assert_eq!(values(&set), reference.iter().copied().collect::<Vec<_>>());
            assert_eq!(set.len(), reference.len() as u128);
        }
    }
}
