//! The free addresses of one pool: never-used addresses in address order, then released ones in
//! the order they were released.

use std::collections::VecDeque;

use foldhash::fast::FixedState;
use hashbrown::HashMap;

use crate::range_set::RangeSet;

/// Released addresses, oldest first. Each carries a sequence number from a counter shared by
/// the whole [`Ipam`](crate::Ipam), so that queues of different pools can be merged in order.
///
/// A queue in release order plus the live sequence number of each queued address. Taking an
/// address out of the middle (a static request for a released address) only forgets its
/// sequence number; its queue entry becomes stale and is skipped when it reaches the front, or
/// dropped when stale entries outnumber live ones. The front entry is always live.
#[derive(Clone, Debug, Default)]
pub(crate) struct Released {
    queue: VecDeque<(u64, u128)>,
    seq_of: HashMap<u128, u64, FixedState>,
}

impl Released {
    /// Queues `addr` at the back. Sequence numbers only grow, so the queue stays in order.
    pub(crate) fn push(&mut self, addr: u128, seq: u64) {
        debug_assert!(self.queue.back().is_none_or(|&(s, _)| s < seq));
        let was_queued = self.seq_of.insert(addr, seq).is_some();
        self.queue.push_back((seq, addr));
        if was_queued {
            // The address's older entry, perhaps the front one, is stale now.
            self.tidy();
        }
    }

    pub(crate) fn front(&self) -> Option<u128> {
        self.queue.front().map(|&(_, a)| a)
    }

    pub(crate) fn pop_front(&mut self) -> Option<u128> {
        let (_, addr) = self.queue.pop_front()?;
        self.seq_of.remove(&addr);
        self.tidy();
        Some(addr)
    }

    pub(crate) fn remove(&mut self, addr: u128) -> bool {
        let found = self.seq_of.remove(&addr).is_some();
        if found {
            self.tidy();
        }
        found
    }

    pub(crate) fn contains(&self, addr: u128) -> bool {
        self.seq_of.contains_key(&addr)
    }

    pub(crate) fn len(&self) -> usize {
        self.seq_of.len()
    }

    /// (sequence, address), oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u128)> + '_ {
        self.queue.iter().copied().filter(|e| self.is_live(e))
    }

    fn is_live(&self, &(seq, addr): &(u64, u128)) -> bool {
        self.seq_of.get(&addr) == Some(&seq)
    }

    /// Drops stale entries from the front, and all of them once they outnumber live ones.
    fn tidy(&mut self) {
        // Each queued address has one live entry: the others are stale.
        if self.queue.len() == self.seq_of.len() {
            return;
        }
        while let Some(front) = self.queue.front() {
            if self.is_live(front) {
                break;
            }
            self.queue.pop_front();
        }
        if self.queue.len() > 2 * self.seq_of.len() + 64 {
            let seq_of = &self.seq_of;
            self.queue
                .retain(|&(seq, addr)| seq_of.get(&addr) == Some(&seq));
        }
    }
}

/// Free addresses and counters of one pool of one family.
#[derive(Clone, Debug)]
pub(crate) struct PoolFree {
    /// Never handed out since the last layout, in address order.
    pub(crate) fresh: RangeSet,
    /// Handed out and released: reused only when `fresh` is empty.
    pub(crate) released: Released,
    /// Allocatable addresses of the pool (ranges minus gateway and exclusions).
    pub(crate) size: u128,
    /// Leased addresses that belong to the pool.
    pub(crate) used: u128,
}

impl PoolFree {
    pub(crate) fn new(fresh: RangeSet) -> Self {
        let size = fresh.len();
        Self {
            fresh,
            released: Released::default(),
            size,
            used: 0,
        }
    }

    /// The address the next dynamic allocation would get.
    pub(crate) fn peek(&self) -> Option<u128> {
        self.fresh.first().or_else(|| self.released.front())
    }

    /// Takes the next address.
    pub(crate) fn take_next(&mut self) -> Option<u128> {
        let a = self
            .fresh
            .pop_first()
            .or_else(|| self.released.pop_front())?;
        self.used += 1;
        Some(a)
    }

    /// Takes a given address (free or not: a static lease always counts as used).
    pub(crate) fn take(&mut self, addr: u128) {
        if !self.fresh.remove_one(addr) {
            self.released.remove(addr);
        }
        self.used += 1;
    }

    /// Returns an address to the back of the line.
    pub(crate) fn give_back(&mut self, addr: u128, seq: u64) {
        self.released.push(addr, seq);
        self.used = self.used.saturating_sub(1);
    }

    /// True when `addr` is free.
    pub(crate) fn is_free(&self, addr: u128) -> bool {
        self.fresh.contains(addr) || self.released.contains(addr)
    }

    /// Number of free addresses.
    pub(crate) fn available(&self) -> u128 {
        self.fresh.len().saturating_add(self.released.len() as u128)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_addresses_come_after_fresh_ones_in_release_order() {
        let mut fresh = RangeSet::new();
        fresh.insert(1, 3);
        let mut pool = PoolFree::new(fresh);
        assert_eq!(pool.take_next(), Some(1));
        assert_eq!(pool.take_next(), Some(2));
        pool.give_back(2, 10);
        pool.give_back(1, 11);
        assert_eq!(pool.take_next(), Some(3));
        assert_eq!(pool.take_next(), Some(2));
        assert_eq!(pool.take_next(), Some(1));
        assert_eq!(pool.take_next(), None);
        assert_eq!(pool.used, 3);
    }

    #[test]
    fn an_address_taken_from_the_middle_and_released_again_goes_to_the_back() {
        let mut q = Released::default();
        for (seq, a) in [(1, 10), (2, 20), (3, 30)] {
            q.push(a, seq);
        }
        assert!(q.remove(20));
        assert!(!q.contains(20));
        q.push(20, 4);
        assert!(q.remove(10));
        assert_eq!(q.front(), Some(30));
        assert_eq!(q.iter().collect::<Vec<_>>(), vec![(3, 30), (4, 20)]);
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop_front(), Some(30));
        assert_eq!(q.pop_front(), Some(20));
        assert_eq!(q.pop_front(), None);
    }

    #[test]
    fn stale_entries_are_dropped_once_they_outnumber_live_ones() {
        let mut q = Released::default();
        q.push(0, 1);
        for seq in 2..1000u64 {
            q.push(1, seq);
            assert!(q.remove(1));
        }
        assert!(q.queue.len() <= 2 * q.len() + 65, "{}", q.queue.len());
        assert_eq!(q.iter().collect::<Vec<_>>(), vec![(1, 0)]);
    }
}
