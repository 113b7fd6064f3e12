//! The naive reference of the model test: subnet layouts as offsets, and a model of the IPAM
//! built on plain sets of addresses, scanned address by address.

#![allow(clippy::needless_range_loop)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::IpAddr;

use ipam::{Entry, Family, MacAddr, PoolConfig, Reserved, SubnetConfig};

pub const SUBNETS: [&str; 2] = ["a", "b"];
pub const POOLS: [&str; 3] = ["default", "p1", "p2"];

/// Subnet "a": dual stack 10.0.0.0/27 + fd00::/124. Subnet "b": 10.0.0.0/28, overlapping "a"
/// as another VPC would.
pub fn cidrs(subnet: usize) -> Vec<&'static str> {
    if subnet == 0 {
        vec!["10.0.0.0/27", "fd00::/124"]
    } else {
        vec!["10.0.0.0/28"]
    }
}

pub fn base(fam: usize) -> u128 {
    if fam == 0 {
        0x0a00_0000
    } else {
        0xfd00u128 << 112
    }
}

pub fn ip(fam: usize, v: u128) -> IpAddr {
    if fam == 0 {
        IpAddr::V4((v as u32).into())
    } else {
        IpAddr::V6(v.into())
    }
}

pub fn to_u(ip: IpAddr) -> (usize, u128) {
    match ip {
        IpAddr::V4(a) => (0, u128::from(u32::from(a))),
        IpAddr::V6(a) => (1, u128::from(a)),
    }
}

/// A generated subnet layout, in offsets from the network address.
#[derive(Clone, Debug)]
pub struct Layout {
    /// (family, first offset, last offset) exclusion entries; `bad` adds one outside.
    pub exclude: Vec<(usize, u128, u128)>,
    pub bad_exclusion: bool,
    /// Per offset of each family, the pool (0 = default); runs become entries.
    pub pool_of: [Vec<usize>; 2],
    /// Rotation of the pool entry lists, to make list order differ from address order.
    pub rotate: usize,
    pub gateway: [Option<u128>; 2],
}

pub fn size(subnet: usize, fam: usize) -> u128 {
    match (subnet, fam) {
        (0, 0) => 32,
        (0, 1) => 16,
        _ => 16,
    }
}

pub fn config(subnet: usize, l: &Layout) -> SubnetConfig {
    let fams: Vec<usize> = if subnet == 0 { vec![0, 1] } else { vec![0] };
    let nets: Vec<ipnet::IpNet> = cidrs(subnet).iter().map(|c| c.parse().unwrap()).collect();
    let mut nets = nets.into_iter();
    let mut cfg = SubnetConfig::new(SUBNETS[subnet], nets.next().unwrap());
    for net in nets {
        cfg = cfg.with_cidr(net);
    }
    for &fam in &fams {
        if let Some(g) = l.gateway[fam] {
            cfg = cfg.with_gateway(ip(fam, base(fam) + (g % (size(subnet, fam) - 2)) + 1));
        }
    }
    for &(fam, s, e) in &l.exclude {
        if !fams.contains(&fam) {
            continue;
        }
        let n = size(subnet, fam);
        let (s, e) = (s % n, (e % n).max(s % n));
        cfg = cfg.with_exclude(if s == e {
            ip(fam, base(fam) + s).to_string()
        } else {
            format!("{}..{}", ip(fam, base(fam) + s), ip(fam, base(fam) + e))
        });
    }
    if l.bad_exclusion {
        cfg = cfg.with_exclude("192.168.9.9");
    }
    for (pi, name) in POOLS.iter().enumerate().skip(1) {
        let mut pool = PoolConfig::new(*name);
        for &fam in &fams {
            let mut runs: Vec<String> = Vec::new();
            let marks = &l.pool_of[fam][..size(subnet, fam) as usize];
            let mut i = 0;
            while i < marks.len() {
                if marks[i] != pi {
                    i += 1;
                    continue;
                }
                let start = i;
                while i < marks.len() && marks[i] == pi {
                    i += 1;
                }
                let (s, e) = (base(fam) + start as u128, base(fam) + i as u128 - 1);
                runs.push(if s == e {
                    ip(fam, s).to_string()
                } else {
                    format!("{}..{}", ip(fam, s), ip(fam, e))
                });
            }
            if !runs.is_empty() {
                let r = l.rotate % runs.len();
                runs.rotate_left(r);
            }
            for run in runs {
                pool = pool.with_entry(run);
            }
        }
        if !pool.entries().is_empty() {
            cfg = cfg.with_pool(pool);
        }
    }
    cfg
}

/// The naive reference of one subnet family.
#[derive(Clone, Debug)]
pub struct RefFam {
    pub first: u128,
    pub last: u128,
    pub usable: (u128, u128),
    pub gateway: u128,
    pub excluded: BTreeSet<u128>,
    /// Named pools: address -> pool index (>= 1), and each pool's list in order.
    pub pool_of: BTreeMap<u128, usize>,
    pub lists: BTreeMap<usize, Vec<u128>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Outside,
    Reserved(Reserved),
    Pool(usize),
}

impl RefFam {
    pub fn class(&self, a: u128) -> Class {
        if a < self.first || a > self.last {
            Class::Outside
        } else if a < self.usable.0 || a > self.usable.1 {
            Class::Reserved(Reserved::Network)
        } else if a == self.gateway {
            Class::Reserved(Reserved::Gateway)
        } else if self.excluded.contains(&a) {
            Class::Reserved(Reserved::Excluded)
        } else {
            Class::Pool(self.pool_of.get(&a).copied().unwrap_or(0))
        }
    }
}

pub fn bounds(e: &Entry) -> (u128, u128) {
    match *e {
        Entry::Single(a) => (to_u(a).1, to_u(a).1),
        Entry::Range(a, b) => (to_u(a).1, to_u(b).1),
        Entry::Cidr(n) => (to_u(n.network()).1, to_u(n.broadcast()).1),
    }
}

#[derive(Clone, Debug)]
pub struct RefSubnet {
    pub cfg: SubnetConfig,
    pub fams: [Option<RefFam>; 2],
    pub pools: Vec<String>,
}

/// Builds the reference subnet, or the error the implementation must give.
pub fn ref_subnet(cfg: &SubnetConfig) -> Result<RefSubnet, String> {
    let mut fams: [Option<RefFam>; 2] = [None, None];
    for net in cfg.cidrs() {
        let fam = if net.addr().is_ipv4() { 0 } else { 1 };
        let (first, last) = (to_u(net.network()).1, to_u(net.broadcast()).1);
        let usable = if fam == 0 {
            (first + 1, last - 1)
        } else {
            (first + 1, last)
        };
        fams[fam] = Some(RefFam {
            first,
            last,
            usable,
            gateway: usable.0,
            excluded: BTreeSet::new(),
            pool_of: BTreeMap::new(),
            lists: BTreeMap::new(),
        });
    }
    for g in cfg.gateways() {
        let (fam, a) = to_u(*g);
        fams[fam].as_mut().unwrap().gateway = a;
    }
    for text in cfg.exclusions() {
        let e: Entry = text.parse().unwrap();
        let fam = if e.family() == Family::V4 { 0 } else { 1 };
        let (s, t) = bounds(&e);
        match fams[fam].as_mut() {
            Some(f) if f.first <= s && t <= f.last => f.excluded.extend(s..=t),
            _ => return Err(text.clone()),
        }
    }
    let mut pools = vec!["default".to_string()];
    for (i, pool) in cfg.pools().iter().enumerate() {
        pools.push(pool.name().to_owned());
        for text in pool.entries() {
            let e: Entry = text.parse().unwrap();
            let fam = if e.family() == Family::V4 { 0 } else { 1 };
            let (s, t) = bounds(&e);
            let f = fams[fam].as_mut().unwrap();
            for a in s..=t {
                f.pool_of.insert(a, i + 1);
                f.lists.entry(i + 1).or_default().push(a);
            }
        }
    }
    Ok(RefSubnet {
        cfg: cfg.clone(),
        fams,
        pools,
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefLease {
    pub subnet: usize,
    pub addrs: [Option<u128>; 2],
    pub mac: MacAddr,
}

#[derive(Clone, Debug, Default)]
pub struct Model {
    pub subnets: Vec<Option<RefSubnet>>,
    pub leases: BTreeMap<String, RefLease>,
    /// Per subnet, released (family, address), oldest first.
    pub released: [Vec<(usize, u128)>; 2],
}

impl Model {
    pub fn holder(&self, subnet: usize, fam: usize, a: u128) -> Option<&str> {
        self.leases
            .iter()
            .find(|(_, l)| l.subnet == subnet && l.addrs[fam] == Some(a))
            .map(|(o, _)| o.as_str())
    }

    pub fn is_free(&self, subnet: usize, fam: usize, a: u128) -> bool {
        self.holder(subnet, fam, a).is_none()
    }

    /// The next dynamic address of pool `p`, family `fam`.
    pub fn next(&self, subnet: usize, fam: usize, p: usize) -> Option<u128> {
        let s = self.subnets[subnet].as_ref().unwrap();
        let f = s.fams[fam].as_ref().unwrap();
        let queued: HashSet<u128> = self.released[subnet]
            .iter()
            .filter(|r| r.0 == fam)
            .map(|r| r.1)
            .collect();
        (f.first..=f.last)
            .find(|&a| {
                f.class(a) == Class::Pool(p) && self.is_free(subnet, fam, a) && !queued.contains(&a)
            })
            .or_else(|| {
                self.released[subnet]
                    .iter()
                    .find(|&&(rf, a)| rf == fam && f.class(a) == Class::Pool(p))
                    .map(|r| r.1)
            })
    }
}
