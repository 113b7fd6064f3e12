//! MAC addresses and the seeded generator of unique, locally administered ones.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::IpamError;

/// A 48-bit Ethernet MAC address. The same six bytes as `ovn_model::MacAddr`: convert with
/// `ovn_model::MacAddr::from(mac.octets())` (and back with `MacAddr::from(its.octets())`).
///
/// ```
/// use ipam::MacAddr;
/// let mac: MacAddr = "0a:58:0a:10:00:05".parse().unwrap();
/// assert!(mac.is_locally_administered() && mac.is_unicast());
/// assert_eq!(mac.to_string(), "0a:58:0a:10:00:05");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl From<[u8; 6]> for MacAddr {
    fn from(bytes: [u8; 6]) -> Self {
        MacAddr(bytes)
    }
}

impl MacAddr {
    /// The six bytes.
    #[must_use]
    pub const fn octets(self) -> [u8; 6] {
        self.0
    }

    /// The address as the low 48 bits of an integer.
    #[must_use]
    pub fn to_u64(self) -> u64 {
        self.0
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
    }

    /// The address held in the low 48 bits of `value`.
    #[must_use]
    pub fn from_u64(value: u64) -> Self {
        let b = value.to_be_bytes();
        MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    /// True when the locally administered bit is set.
    #[must_use]
    pub fn is_locally_administered(self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// True when the multicast bit is clear.
    #[must_use]
    pub fn is_unicast(self) -> bool {
        self.0[0] & 0x01 == 0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl FromStr for MacAddr {
    type Err = IpamError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || IpamError::InvalidMac {
            input: s.to_string(),
        };
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in &mut out {
            let part = parts.next().ok_or_else(err)?;
            if part.len() != 2 {
                return Err(err());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

const MASK40: u64 = (1 << 40) - 1;
const K1: u64 = 0x9E37_79B9_7F4B;
const K2: u64 = 0xD6E8_FEB8_6659;

/// Inverse of an odd number modulo 2^64 (Newton's iteration), masked to 40 bits by the caller.
const fn inverse(a: u64) -> u64 {
    let mut x = a;
    let mut i = 0;
    while i < 6 {
        x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
        i += 1;
    }
    x
}
const K1_INV: u64 = inverse(K1) & MASK40;
const K2_INV: u64 = inverse(K2) & MASK40;

/// Generates locally administered unicast MACs: a fixed first octet and 40 bits that are a
/// seeded bijection of a counter, so two generated MACs never repeat until 2^40 have been made.
/// Because the bijection can be inverted, the manager can tell whether a MAC may have been
/// generated already, and so needs no index entry for generated MACs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MacGen {
    pub(crate) seed: u64,
    pub(crate) counter: u64,
}

/// First octet of generated MACs: locally administered (0x02) and unicast.
pub(crate) const MAC_FIRST_OCTET: u64 = 0x0a;

impl MacGen {
    pub(crate) fn new(seed: u64) -> Self {
        Self { seed, counter: 0 }
    }

    fn forward(&self, c: u64) -> u64 {
        // Each step is a bijection on 40 bits: odd multiply, add, xor-shift.
        let mut x = c.wrapping_mul(K1) & MASK40;
        x = x.wrapping_add(self.seed) & MASK40;
        x ^= x >> 20;
        x = x.wrapping_mul(K2) & MASK40;
        x ^ (x >> 17)
    }

    fn backward(&self, y: u64) -> u64 {
        let mut x = y ^ (y >> 17) ^ (y >> 34);
        x = x.wrapping_mul(K2_INV) & MASK40;
        x ^= x >> 20;
        x = x.wrapping_sub(self.seed) & MASK40;
        x.wrapping_mul(K1_INV) & MASK40
    }

    /// The next candidate MAC, as the low 48 bits of an integer.
    pub(crate) fn next_mac(&mut self) -> u64 {
        let c = self.counter;
        self.counter = self.counter.wrapping_add(1);
        (MAC_FIRST_OCTET << 40) | self.forward(c & MASK40)
    }

    /// True when `mac` is a value this generator has produced already.
    pub(crate) fn issued(&self, mac: u64) -> bool {
        mac >> 40 == MAC_FIRST_OCTET
            && (self.counter > MASK40 || self.backward(mac & MASK40) < self.counter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_macs_are_unique_local_unicast_and_seed_dependent() {
        let mut a = MacGen::new(1);
        let mut b = MacGen::new(2);
        let mut seen = HashSet::new();
        for _ in 0..100_000 {
            let raw = a.next_mac();
            let mac = MacAddr::from_u64(raw);
            assert!(mac.is_locally_administered() && mac.is_unicast());
            assert!(seen.insert(mac));
            assert!(a.issued(raw));
        }
        assert_ne!(MacGen::new(1).next_mac(), b.next_mac());
    }

    #[test]
    fn issued_is_true_exactly_for_macs_already_generated() {
        let mut g = MacGen::new(0xfeed);
        let first: Vec<u64> = (0..1000).map(|_| g.next_mac()).collect();
        let mut ahead = g.clone();
        let next: Vec<u64> = (0..1000).map(|_| ahead.next_mac()).collect();
        assert!(first.iter().all(|&m| g.issued(m)));
        assert!(next.iter().all(|&m| !g.issued(m)));
        assert!(!g.issued(0x02_00_00_00_00_01));
    }

    #[test]
    fn mac_parse_round_trips_and_rejects_garbage() {
        let mac: MacAddr = "0A-58-00-00-00-01".parse().unwrap();
        assert_eq!(mac.to_string(), "0a:58:00:00:00:01");
        assert_eq!(MacAddr::from_u64(mac.to_u64()), mac);
        for bad in [
            "0a:58:00:00:00",
            "0a:58:00:00:00:01:02",
            "zz:58:00:00:00:01",
            "a:58:0:0:0:1",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }
}
