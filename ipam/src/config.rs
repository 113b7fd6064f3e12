//! Subnet and pool configuration: plain serde values with chained setters, validated once when
//! handed to [`Ipam`](crate::Ipam).

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The configuration of one subnet: one CIDR per family (one for single stack, two for dual
/// stack), optional gateways, exclusions and named pools.
///
/// Exclusion and pool entries are text (`10.0.0.7`, `10.0.0.10..10.0.0.20`, `10.0.0.64/28`) so
/// that errors can name the entry as it was written.
///
/// ```
/// use ipam::{PoolConfig, SubnetConfig};
/// let cfg = SubnetConfig::new("ns1", "10.16.0.0/16".parse().unwrap())
///     .cidr("fd00:10:16::/64".parse().unwrap())
///     .exclude("10.16.0.2..10.16.0.9")
///     .pool(PoolConfig::new("db").entry("10.16.1.0/28"));
/// assert_eq!(cfg.cidrs.len(), 2);
/// let json = serde_json::to_string(&cfg).unwrap();
/// assert_eq!(serde_json::from_str::<SubnetConfig>(&json).unwrap(), cfg);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubnetConfig {
    /// Unique name of the subnet (for example the logical switch name).
    pub name: String,
    /// One CIDR per family.
    pub cidrs: Vec<IpNet>,
    /// Gateways, at most one per family; a family without one gets its first usable address.
    pub gateways: Vec<IpAddr>,
    /// Addresses never handed out: single addresses, `a..b` ranges, CIDRs.
    pub exclude: Vec<String>,
    /// Named, disjoint pools; what no pool covers forms the default pool.
    pub pools: Vec<PoolConfig>,
}

impl SubnetConfig {
    /// A subnet with one CIDR.
    #[must_use]
    pub fn new(name: impl Into<String>, cidr: IpNet) -> Self {
        Self {
            name: name.into(),
            cidrs: vec![cidr],
            ..Self::default()
        }
    }

    /// Adds a CIDR (the other family, for dual stack).
    #[must_use]
    pub fn cidr(mut self, cidr: IpNet) -> Self {
        self.cidrs.push(cidr);
        self
    }

    /// Sets the gateway of the address's family.
    #[must_use]
    pub fn gateway(mut self, gateway: IpAddr) -> Self {
        self.gateways.retain(|g| g.is_ipv4() != gateway.is_ipv4());
        self.gateways.push(gateway);
        self
    }

    /// Adds an exclusion entry.
    #[must_use]
    pub fn exclude(mut self, entry: impl Into<String>) -> Self {
        self.exclude.push(entry.into());
        self
    }

    /// Adds a pool.
    #[must_use]
    pub fn pool(mut self, pool: PoolConfig) -> Self {
        self.pools.push(pool);
        self
    }
}

/// A named pool: addresses given as entries. The order of the entries is the order of the
/// pool's address list, so a request with ordinal `i` gets the `i`-th address of each family
/// (StatefulSet-style fixed addresses).
///
/// ```
/// use ipam::PoolConfig;
/// let pool = PoolConfig::new("web").entry("10.0.0.50").entry("10.0.0.60..10.0.0.69");
/// assert_eq!(pool.entries.len(), 2);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PoolConfig {
    /// Name, unique in the subnet; `default` is taken by the rest of the subnet.
    pub name: String,
    /// Single addresses, `a..b` ranges and CIDRs, in list order.
    pub entries: Vec<String>,
}

impl PoolConfig {
    /// An empty pool.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            entries: Vec::new(),
        }
    }

    /// Appends an entry.
    #[must_use]
    pub fn entry(mut self, entry: impl Into<String>) -> Self {
        self.entries.push(entry.into());
        self
    }
}
