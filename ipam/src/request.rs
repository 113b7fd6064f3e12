//! What a caller asks for ([`Request`]) and what it gets ([`Lease`]).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::MacAddr;
use crate::addr::Family;

/// A request for a lease, built with chained setters and borrowed strings (no allocation).
///
/// ```
/// use ipam::Request;
/// let req = Request::new("ns1", "ns1/web-0/eth0")
///     .with_pool("web")
///     .with_ordinal(0)
///     .with_mac("0a:00:00:00:00:01".parse().unwrap());
/// assert_eq!(req.owner(), "ns1/web-0/eth0");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct Request<'a> {
    pub(crate) subnet: &'a str,
    pub(crate) owner: &'a str,
    pub(crate) pool: Option<&'a str>,
    pub(crate) ordinal: Option<u64>,
    pub(crate) ips: [Option<IpAddr>; 2],
    pub(crate) twice: Option<Family>,
    pub(crate) mac: Option<MacAddr>,
    pub(crate) allow_reserved: bool,
}

impl<'a> Request<'a> {
    /// A dynamic request: the next free address of every family of `subnet`'s default pool.
    pub fn new(subnet: &'a str, owner: &'a str) -> Self {
        Self {
            subnet,
            owner,
            pool: None,
            ordinal: None,
            ips: [None, None],
            twice: None,
            mac: None,
            allow_reserved: false,
        }
    }

    /// Allocates from the named pool instead of the default pool.
    pub fn with_pool(mut self, pool: &'a str) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Takes entry `ordinal` of the pool's address list in every family (StatefulSet-style).
    pub fn with_ordinal(mut self, ordinal: u64) -> Self {
        self.ordinal = Some(ordinal);
        self
    }

    /// Asks for a static address; call once per family. A static address may lie anywhere in
    /// the subnet: [`Request::with_pool`] only steers dynamic and ordinal picks.
    pub fn with_ip(mut self, ip: IpAddr) -> Self {
        let slot = &mut self.ips[Family::of(ip).index()];
        if slot.is_some_and(|old| old != ip) {
            self.twice = Some(Family::of(ip));
        }
        *slot = Some(ip);
        self
    }

    /// Asks for a static MAC.
    pub fn with_mac(mut self, mac: MacAddr) -> Self {
        self.mac = Some(mac);
        self
    }

    /// Allows static addresses that are the gateway, excluded, or a network/broadcast address.
    pub fn with_allow_reserved(mut self, allow: bool) -> Self {
        self.allow_reserved = allow;
        self
    }

    /// The owner the lease is for.
    #[must_use]
    pub fn owner(&self) -> &'a str {
        self.owner
    }

    /// The subnet asked for.
    #[must_use]
    pub fn subnet(&self) -> &'a str {
        self.subnet
    }
}

impl fmt::Display for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "subnet {}", self.subnet)?;
        if let Some(p) = self.pool {
            write!(f, " pool {p}")?;
        }
        if let Some(o) = self.ordinal {
            write!(f, " ordinal {o}")?;
        }
        for ip in self.ips.iter().flatten() {
            write!(f, " ip {ip}")?;
        }
        if let Some(m) = self.mac {
            write!(f, " mac {m}")?;
        }
        Ok(())
    }
}

/// The addresses and MAC of one owner.
///
/// ```
/// use ipam::{Ipam, Request, SubnetConfig};
/// let mut ipam = Ipam::new(7);
/// ipam.add_subnet(SubnetConfig::new("s", "10.0.0.0/24".parse().unwrap())).unwrap();
/// let lease = ipam.allocate(&Request::new("s", "pod-a")).unwrap();
/// assert_eq!(lease.v4, Some("10.0.0.2".parse().unwrap())); // .1 is the gateway
/// assert_eq!(lease.addresses().count(), 1);
/// assert!(lease.mac.is_locally_administered());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Lease {
    /// The IPv4 address, if the lease has one.
    pub v4: Option<Ipv4Addr>,
    /// The IPv6 address, if the lease has one.
    pub v6: Option<Ipv6Addr>,
    /// The MAC.
    pub mac: MacAddr,
}

impl Lease {
    /// The addresses, IPv4 first.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + use<> {
        self.v4
            .map(IpAddr::V4)
            .into_iter()
            .chain(self.v6.map(IpAddr::V6))
    }

    pub(crate) fn from_ref(r: &crate::leases::LeaseRef<'_>) -> Self {
        Lease {
            v4: r.v4.map(|a| Ipv4Addr::from(a as u32)),
            v6: r.v6.map(Ipv6Addr::from),
            mac: MacAddr::from_u64(r.mac),
        }
    }
}

impl fmt::Display for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for a in self.addresses() {
            write!(f, "{a} ")?;
        }
        write!(f, "mac {}", self.mac)
    }
}
