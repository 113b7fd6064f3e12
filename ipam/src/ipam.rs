//! The address manager: subnets, leases and the operations on them.

use std::fmt;
use std::net::IpAddr;

use foldhash::fast::FixedState;
use hashbrown::HashMap;

use crate::addr::{Family, to_u128};
use crate::error::{IpamError, Reserved};
use crate::leases::Leases;
use crate::mac::MacGen;
use crate::subnet::{Class, Subnet};
use crate::{Lease, SubnetConfig};

/// The address manager. Pure and deterministic: the same seed and the same calls give the same
/// answers; it never reads a clock or a random source.
///
/// ```
/// use ipam::{Ipam, IpamError, Request, SubnetConfig};
/// let mut ipam = Ipam::new(42);
/// ipam.add_subnet(SubnetConfig::new("ns1", "10.16.0.0/24".parse()?).with_exclude("10.16.0.2..10.16.0.9"))?;
/// let a = ipam.allocate(&Request::new("ns1", "ns1/a/eth0"))?;
/// assert_eq!(a.v4, Some("10.16.0.10".parse()?));
/// // Asking again for the same owner returns the same lease.
/// assert_eq!(ipam.allocate(&Request::new("ns1", "ns1/a/eth0"))?, a);
/// // A static request for a held address names the holder.
/// let err = ipam.allocate(&Request::new("ns1", "ns1/b/eth0").with_ip("10.16.0.10".parse()?)).unwrap_err();
/// assert!(matches!(err, IpamError::AddressInUse { ref owner, .. } if owner == "ns1/a/eth0"));
/// // Released addresses go to the back of the line.
/// ipam.release("ns1/a/eth0");
/// let b = ipam.allocate(&Request::new("ns1", "ns1/b/eth0"))?;
/// assert_eq!(b.v4, Some("10.16.0.11".parse()?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// `Clone` copies every lease: a way to try a change (a subnet update, say) and keep the
/// result only when it is acceptable.
#[derive(Clone)]
pub struct Ipam {
    pub(crate) subnets: Vec<Option<Subnet>>,
    pub(crate) names: HashMap<String, u32, FixedState>,
    pub(crate) leases: Leases,
    pub(crate) macs: MacGen,
    /// Release sequence: orders released addresses across pools.
    pub(crate) seq: u64,
    pub(crate) seed: u64,
}

/// A lease that a configuration change left outside the subnet or on a reserved address. The
/// lease is kept; the caller decides whether to move its owner.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReconfigIssue {
    /// The owner of the lease.
    pub owner: String,
    /// The address concerned.
    pub address: IpAddr,
    /// `None` when the address is now outside the subnet, else why it is reserved.
    pub reserved: Option<Reserved>,
}

impl fmt::Display for ReconfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reserved {
            None => write!(
                f,
                "`{}` holds {}, now outside the subnet",
                self.owner, self.address
            ),
            Some(r) => write!(f, "`{}` holds {}, now {r}", self.owner, self.address),
        }
    }
}

impl Ipam {
    /// An empty manager. `seed` drives MAC generation and hash seeding; give a random value in
    /// production and a fixed one in tests.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self {
            subnets: Vec::new(),
            names: HashMap::with_hasher(FixedState::with_seed(seed)),
            leases: Leases::new(seed),
            macs: MacGen::new(seed),
            seq: 0,
            seed,
        }
    }

    /// Adds a subnet after validating its configuration.
    pub fn add_subnet(&mut self, config: SubnetConfig) -> Result<(), IpamError> {
        if self.names.contains_key(&config.name) {
            return Err(IpamError::DuplicateSubnet {
                subnet: config.name,
            });
        }
        let subnet = Subnet::build(config)?;
        let id = self.subnets.len() as u32;
        self.names.insert(subnet.config.name.clone(), id);
        self.subnets.push(Some(subnet));
        Ok(())
    }

    /// Replaces a subnet's CIDRs, gateways, exclusions and pools. Live leases are kept; those
    /// that end up outside the subnet or on a reserved address are reported. Released
    /// addresses keep their place in line.
    pub fn update_subnet(&mut self, config: SubnetConfig) -> Result<Vec<ReconfigIssue>, IpamError> {
        let sid = self.subnet_id(&config.name)?;
        let new = Subnet::build(config)?;
        let old = self.subnets[sid as usize].replace(new);
        let mut released = Vec::new();
        if let Some(old) = old {
            for fs in old.fams.iter().flatten() {
                for pool in &fs.pools {
                    released.extend(pool.released.iter().map(|(seq, a)| (seq, fs.family, a)));
                }
            }
        }
        released.sort_unstable();
        Ok(self.place_leases(sid, &released))
    }

    /// Removes a subnet that holds no lease.
    pub fn remove_subnet(&mut self, name: &str) -> Result<SubnetConfig, IpamError> {
        let sid = self.subnet_id(name)?;
        let leases = self.subnet(sid).leases;
        if leases > 0 {
            return Err(IpamError::SubnetInUse {
                subnet: name.to_string(),
                leases,
            });
        }
        self.names.remove(name);
        let subnet = self.subnets[sid as usize].take();
        Ok(subnet.map(|s| s.config).unwrap_or_default())
    }

    /// The configuration of a subnet.
    #[must_use]
    pub fn subnet_config(&self, name: &str) -> Option<&SubnetConfig> {
        let sid = *self.names.get(name)?;
        Some(&self.subnet(sid).config)
    }

    /// Names of all subnets, in the order they were added.
    pub fn subnet_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.subnets
            .iter()
            .flatten()
            .map(|s| s.config.name.as_str())
    }

    /// The lease of `owner`.
    #[must_use]
    pub fn lease(&self, owner: &str) -> Option<Lease> {
        self.leases
            .by_owner(owner)
            .map(|(_, r)| Lease::from_ref(&r))
    }

    /// The subnet of `owner`'s lease.
    #[must_use]
    pub fn lease_subnet(&self, owner: &str) -> Option<&str> {
        let (_, r) = self.leases.by_owner(owner)?;
        Some(self.subnet(r.subnet).config.name.as_str())
    }

    /// The owner of `address` in `subnet`.
    #[must_use]
    pub fn owner_of(&self, subnet: &str, address: IpAddr) -> Option<&str> {
        let sid = *self.names.get(subnet)?;
        self.leases
            .by_addr(sid, Family::of(address), to_u128(address))
            .map(|r| r.owner)
    }

    /// Number of live leases.
    #[must_use]
    pub fn len(&self) -> usize {
        self.leases.len()
    }

    /// Makes room for `additional` more leases, so that the next ones are stored without
    /// growing the indexes (as `HashMap::reserve`). A hint: allocation works without it.
    pub fn reserve(&mut self, additional: usize) {
        self.leases.reserve(additional);
    }

    /// True when no lease is live.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.leases.len() == 0
    }

    /// True when `address` would be handed out by some future dynamic allocation of `subnet`
    /// (it is allocatable and not leased).
    #[must_use]
    pub fn is_free(&self, subnet: &str, address: IpAddr) -> bool {
        let Some(&sid) = self.names.get(subnet) else {
            return false;
        };
        let Some(fs) = self.subnet(sid).fam(Family::of(address)) else {
            return false;
        };
        let a = to_u128(address);
        match fs.classify(a) {
            Class::Pool(p) => fs.pools[p].is_free(a),
            _ => false,
        }
    }

    /// Approximate heap bytes held by the leases, computed from capacities and element sizes
    /// (owner strings counted by length, hash tables as buckets of a 4-byte id plus a control
    /// byte). Free-range maps are not included: they grow with ranges, not leases.
    #[must_use]
    pub fn lease_heap_bytes(&self) -> usize {
        self.leases.heap_bytes()
    }

    pub(crate) fn subnet_id(&self, name: &str) -> Result<u32, IpamError> {
        self.names
            .get(name)
            .copied()
            .ok_or_else(|| IpamError::UnknownSubnet {
                subnet: name.to_string(),
            })
    }

    pub(crate) fn subnet(&self, sid: u32) -> &Subnet {
        // Ids come from `names`, which only holds live subnets.
        self.subnets[sid as usize]
            .as_ref()
            .expect("subnet ids in use are live")
    }

    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Subtracts the subnet's leases from its fresh free sets, counts them, re-queues released
    /// addresses (oldest first) and reports leases that are outside or reserved.
    pub(crate) fn place_leases(
        &mut self,
        sid: u32,
        released: &[(u64, Family, u128)],
    ) -> Vec<ReconfigIssue> {
        let mut issues = Vec::new();
        let Some(subnet) = self.subnets[sid as usize].as_mut() else {
            return issues;
        };
        subnet.leases = 0;
        for lease in self.leases.iter().filter(|l| l.subnet == sid) {
            subnet.leases += 1;
            for family in [Family::V4, Family::V6] {
                let Some(a) = lease.addr(family) else {
                    continue;
                };
                let class = match subnet.fams[family.index()].as_mut() {
                    None => Class::Outside,
                    Some(fs) => {
                        let class = fs.classify(a);
                        if class != Class::Outside {
                            fs.leased += 1;
                        }
                        if let Class::Pool(p) = class {
                            fs.pools[p].take(a);
                        }
                        class
                    }
                };
                let reserved = match class {
                    Class::Pool(_) => continue,
                    Class::Outside => None,
                    Class::Reserved(r) => Some(r),
                };
                let address = crate::addr::from_u128(family, a);
                issues.push(ReconfigIssue {
                    owner: lease.owner.to_string(),
                    address,
                    reserved,
                });
            }
        }
        for &(seq, family, a) in released {
            let Some(fs) = subnet.fams[family.index()].as_mut() else {
                continue;
            };
            if let Class::Pool(p) = fs.classify(a)
                && fs.pools[p].fresh.remove_one(a)
            {
                fs.pools[p].released.push(a, seq);
            }
        }
        issues
    }

    /// Released addresses of a subnet, oldest first.
    pub(crate) fn released_of(&self, sid: u32) -> Vec<IpAddr> {
        let mut all = Vec::new();
        for fs in self.subnet(sid).fams.iter().flatten() {
            for pool in &fs.pools {
                all.extend(
                    pool.released
                        .iter()
                        .map(|(seq, a)| (seq, fs.family, fs.addr(a))),
                );
            }
        }
        // One release queues both addresses of a dual-stack lease under one sequence number.
        all.sort_unstable();
        all.into_iter().map(|(_, _, a)| a).collect()
    }
}

impl fmt::Debug for Ipam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ipam")
            .field("seed", &self.seed)
            .field("subnets", &self.names.len())
            .field("leases", &self.leases.len())
            .finish_non_exhaustive()
    }
}

/// Two managers are equal when their states are: same subnets, leases, released order and
/// MAC generator state, so that they answer every future call alike.
impl PartialEq for Ipam {
    fn eq(&self, other: &Self) -> bool {
        self.state() == other.state()
    }
}
