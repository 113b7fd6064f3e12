//! The free addresses of one pool: never-used addresses in address order, then released ones in
//! the order they were released.

use std::collections::BTreeMap;

use foldhash::fast::FixedState;
use hashbrown::HashMap;

use crate::range_set::RangeSet;

/// Released addresses, oldest first. Each carries a sequence number from a counter shared by
/// the whole [`Ipam`](crate::Ipam), so that queues of different pools can be merged in order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Released {
    order: BTreeMap<u64, u128>,
    seq_of: HashMap<u128, u64, FixedState>,
}

impl Released {
    pub(crate) fn push(&mut self, addr: u128, seq: u64) {
        if let Some(old) = self.seq_of.insert(addr, seq) {
            self.order.remove(&old);
        }
        self.order.insert(seq, addr);
    }

    pub(crate) fn front(&self) -> Option<u128> {
        self.order.first_key_value().map(|(_, &a)| a)
    }

    pub(crate) fn pop_front(&mut self) -> Option<u128> {
        let (_, addr) = self.order.pop_first()?;
        self.seq_of.remove(&addr);
        Some(addr)
    }

    pub(crate) fn remove(&mut self, addr: u128) -> bool {
        match self.seq_of.remove(&addr) {
            Some(seq) => {
                self.order.remove(&seq);
                true
            }
            None => false,
        }
    }

    pub(crate) fn contains(&self, addr: u128) -> bool {
        self.seq_of.contains_key(&addr)
    }

    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    /// (sequence, address), oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u128)> + '_ {
        self.order.iter().map(|(&s, &a)| (s, a))
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
}
