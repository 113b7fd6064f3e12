//! Counters per subnet, family and pool, for metrics.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::addr::Family;
use crate::{Ipam, IpamError};

/// Counters of one pool of one family.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolStats {
    /// The pool (`default` for the rest of the subnet).
    pub pool: String,
    /// Allocatable addresses: the pool's addresses minus gateway and exclusions.
    pub size: u128,
    /// Leased addresses of the pool.
    pub used: u128,
    /// Free addresses (never used or released).
    pub available: u128,
}

/// Counters of one family of a subnet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyStats {
    /// The family.
    pub family: Family,
    /// Its CIDR.
    pub cidr: IpNet,
    /// Allocatable addresses of all pools.
    pub size: u128,
    /// Leases with an address of this family inside the CIDR (reserved ones included).
    pub used: u128,
    /// Free addresses of all pools.
    pub available: u128,
    /// Per pool, the default pool first.
    pub pools: Vec<PoolStats>,
}

/// Counters of one subnet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetStats {
    /// The subnet.
    pub subnet: String,
    /// Live leases of the subnet.
    pub leases: usize,
    /// Per family, IPv4 first.
    pub families: Vec<FamilyStats>,
}

impl Ipam {
    /// Counters of one subnet.
    ///
    /// ```
    /// use ipam::{Ipam, Request, SubnetConfig};
    /// let mut ipam = Ipam::new(1);
    /// ipam.add_subnet(SubnetConfig::new("s", "10.0.0.0/24".parse().unwrap()).with_exclude("10.0.0.0/28"))
    ///     .unwrap();
    /// let _ = ipam.allocate(&Request::new("s", "a")).unwrap();
    /// let v4 = &ipam.stats("s").unwrap().families[0];
    /// // 254 usable, minus the gateway and 14 more excluded usable addresses.
    /// assert_eq!((v4.size, v4.used, v4.available), (239, 1, 238));
    /// ```
    pub fn stats(&self, subnet: &str) -> Result<SubnetStats, IpamError> {
        let sid = self.subnet_id(subnet)?;
        let s = self.subnet(sid);
        let families = s
            .fams
            .iter()
            .flatten()
            .map(|fs| {
                let pools: Vec<PoolStats> = fs
                    .pools
                    .iter()
                    .zip(&s.pool_names)
                    .map(|(p, name)| PoolStats {
                        pool: name.clone(),
                        size: p.size,
                        used: p.used,
                        available: p.available(),
                    })
                    .collect();
                FamilyStats {
                    family: fs.family,
                    cidr: fs.cidr,
                    size: pools.iter().map(|p| p.size).fold(0, u128::saturating_add),
                    used: fs.leased,
                    available: pools
                        .iter()
                        .map(|p| p.available)
                        .fold(0, u128::saturating_add),
                    pools,
                }
            })
            .collect();
        Ok(SubnetStats {
            subnet: subnet.to_string(),
            leases: s.leases,
            families,
        })
    }

    /// Counters of every subnet, in the order they were added.
    #[must_use]
    pub fn all_stats(&self) -> Vec<SubnetStats> {
        self.subnet_names()
            .filter_map(|n| self.stats(n).ok())
            .collect()
    }
}
