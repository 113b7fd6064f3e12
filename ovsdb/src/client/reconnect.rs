//! The pure parts of reconnection: the backoff between attempts and the order in which a
//! remote list is tried. No clock and no randomness of their own: delays are values, and the
//! shuffle takes its seed as an argument.

use std::time::Duration;

/// Delays between rounds of connection attempts: `initial`, doubled after each failed round
/// up to `max`; reset once a connection is established. The default is Open vSwitch's: 1 s
/// doubling up to 8 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The largest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(8),
        }
    }
}

impl Backoff {
    /// A backoff from `initial` doubling up to `max`.
    #[must_use]
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max }
    }

    /// The delay before round `failed_rounds + 1`, after `failed_rounds` rounds failed in a row
    /// (`failed_rounds >= 1`; 0 gives no delay).
    #[must_use]
    pub fn delay(&self, failed_rounds: u32) -> Duration {
        if failed_rounds == 0 {
            return Duration::ZERO;
        }
        let shift = (failed_rounds - 1).min(31);
        self.initial
            .checked_mul(1u32 << shift)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// How a remote list is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RemoteOrder {
    /// In the order given, starting after the last remote used (the default).
    #[default]
    InOrder,
    /// Shuffled once with this seed (so that many clients of one list spread over the
    /// members), then tried in that order.
    Shuffled(u64),
}

/// Returns `items` in the order `order` gives (a deterministic Fisher-Yates shuffle for
/// [`RemoteOrder::Shuffled`]).
#[must_use]
pub fn ordered<T>(mut items: Vec<T>, order: RemoteOrder) -> Vec<T> {
    if let RemoteOrder::Shuffled(seed) = order {
        let mut state = seed;
        for i in (1..items.len()).rev() {
            let r = splitmix64(&mut state);
            // `i + 1` items left; the modulo bias is irrelevant for a handful of remotes.
            let j = usize::try_from(r % (i as u64 + 1)).unwrap_or(0);
            items.swap(i, j);
        }
    }
    items
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Walks a remote list round-robin: each [`Rotation::round`] yields every remote once,
/// starting after the one that was used last.
#[derive(Debug, Clone)]
pub struct Rotation<T> {
    items: Vec<T>,
    next: usize,
}

impl<T: Clone> Rotation<T> {
    /// A rotation over `items` (already in [`ordered`] order).
    #[must_use]
    pub fn new(items: Vec<T>) -> Self {
        Self { items, next: 0 }
    }

    /// Every item once, starting where the previous round's successful item left off.
    #[must_use]
    pub fn round(&self) -> Vec<(usize, T)> {
        let n = self.items.len();
        (0..n)
            .map(|k| {
                let i = (self.next + k) % n;
                (i, self.items[i].clone())
            })
            .collect()
    }

    /// Records that item `i` was used: the next round starts after it.
    pub fn used(&mut self, i: usize) {
        if !self.items.is_empty() {
            self.next = (i + 1) % self.items.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_max() {
        let b = Backoff::default();
        let got: Vec<u64> = (0..7).map(|k| b.delay(k).as_secs()).collect();
        assert_eq!(got, vec![0, 1, 2, 4, 8, 8, 8]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(8));
    }

    #[test]
    fn shuffle_is_a_permutation_fixed_by_its_seed() {
        let items: Vec<u32> = (0..10).collect();
        let a = ordered(items.clone(), RemoteOrder::Shuffled(7));
        let b = ordered(items.clone(), RemoteOrder::Shuffled(7));
        assert_eq!(a, b);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, items);
        assert_ne!(a, items, "seed 7 moves something");
        assert_eq!(ordered(items.clone(), RemoteOrder::InOrder), items);
    }

    #[test]
    fn rotation_starts_after_the_last_used() {
        let mut r = Rotation::new(vec!["a", "b", "c"]);
        assert_eq!(r.round(), vec![(0, "a"), (1, "b"), (2, "c")]);
        r.used(1);
        assert_eq!(r.round(), vec![(2, "c"), (0, "a"), (1, "b")]);
    }
}
