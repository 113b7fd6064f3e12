//! Address families, `u128` address arithmetic and the entry syntax of exclusions and pools.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::IpamError;

/// An IP address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address.
    #[must_use]
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// The family of a network.
    #[must_use]
    pub fn of_net(net: &IpNet) -> Self {
        match net {
            IpNet::V4(_) => Family::V4,
            IpNet::V6(_) => Family::V6,
        }
    }

    /// Index used for per-family arrays: 0 for IPv4, 1 for IPv6.
    pub(crate) fn index(self) -> usize {
        match self {
            Family::V4 => 0,
            Family::V6 => 1,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// An address as an integer (IPv4 addresses occupy the low 32 bits).
pub(crate) fn to_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address of `family` with integer value `value`.
pub(crate) fn from_u128(family: Family, value: u128) -> IpAddr {
    match family {
        // IPv4 values always come from IPv4 addresses or IPv4 networks, so they fit in 32 bits.
        Family::V4 => IpAddr::V4(Ipv4Addr::from(value as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

/// First and last address of a network as integers.
pub(crate) fn net_bounds(net: &IpNet) -> (u128, u128) {
    (to_u128(net.network()), to_u128(net.broadcast()))
}

/// One entry of an exclusion list or a pool: a single address, an inclusive range `a..b`, or a
/// CIDR.
///
/// ```
/// use ipam::Entry;
/// let e: Entry = "10.0.0.5..10.0.0.9".parse().unwrap();
/// assert_eq!(e.len(), 5);
/// assert_eq!(e.to_string(), "10.0.0.5..10.0.0.9");
/// assert!("10.0.0.9..10.0.0.5".parse::<Entry>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Entry {
    /// One address.
    Single(IpAddr),
    /// An inclusive range of addresses of one family, first <= last.
    Range(IpAddr, IpAddr),
    /// Every address of a network.
    Cidr(IpNet),
}

impl Entry {
    /// The family of the entry.
    #[must_use]
    pub fn family(&self) -> Family {
        match self {
            Entry::Single(a) | Entry::Range(a, _) => Family::of(*a),
            Entry::Cidr(n) => Family::of_net(n),
        }
    }

    /// First and last address as integers.
    pub(crate) fn bounds(&self) -> (u128, u128) {
        match self {
            Entry::Single(a) => (to_u128(*a), to_u128(*a)),
            Entry::Range(a, b) => (to_u128(*a), to_u128(*b)),
            Entry::Cidr(n) => net_bounds(n),
        }
    }

    /// Number of addresses in the entry (saturating at `u128::MAX`).
    #[must_use]
    pub fn len(&self) -> u128 {
        let (s, e) = self.bounds();
        crate::range_set::count(s, e)
    }

    /// Always false: an entry holds at least one address.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl FromStr for Entry {
    type Err = IpamError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let input = s.trim();
        let err = |reason| IpamError::InvalidEntry {
            entry: s.to_string(),
            reason,
        };
        if let Some((a, b)) = input.split_once("..") {
            let a: IpAddr = a.trim().parse().map_err(|_| err("bad first address"))?;
            let b: IpAddr = b.trim().parse().map_err(|_| err("bad last address"))?;
            if Family::of(a) != Family::of(b) {
                return Err(err("both ends must be of one family"));
            }
            if to_u128(a) > to_u128(b) {
                return Err(err("first address is after the last"));
            }
            return Ok(Entry::Range(a, b));
        }
        if input.contains('/') {
            let net: IpNet = input.parse().map_err(|_| err("bad CIDR"))?;
            return Ok(Entry::Cidr(net.trunc()));
        }
        input
            .parse()
            .map(Entry::Single)
            .map_err(|_| err("bad address"))
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Single(a) => write!(f, "{a}"),
            Entry::Range(a, b) => write!(f, "{a}..{b}"),
            Entry::Cidr(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for Entry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_singles_ranges_and_cidrs() {
        assert_eq!(
            "10.0.0.1".parse::<Entry>().unwrap(),
            Entry::Single("10.0.0.1".parse().unwrap())
        );
        assert_eq!("fd00::1..fd00::ff".parse::<Entry>().unwrap().len(), 255);
        assert_eq!(
            "10.1.2.3/24".parse::<Entry>().unwrap().to_string(),
            "10.1.2.0/24"
        );
    }

    #[test]
    fn malformed_entries_are_rejected_with_the_input() {
        for bad in [
            "10.0.0.1..fd00::1",
            "10.0.0.300",
            "10.0.0.0/33",
            "10.0.0.2..10.0.0.1",
            "",
        ] {
            let e = bad.parse::<Entry>().unwrap_err();
            assert!(matches!(e, IpamError::InvalidEntry { ref entry, .. } if entry == bad));
        }
    }
}
