//! Subnet and pool configuration: `new` plus `with_*` setters, read through accessors, serde
//! values (they are saved in [`IpamState`](crate::IpamState)), validated once when handed to
//! [`Ipam`](crate::Ipam).

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
///     .with_cidr("fd00:10:16::/64".parse().unwrap())
///     .with_exclude("10.16.0.2..10.16.0.9")
///     .with_pool(PoolConfig::new("db").with_entry("10.16.1.0/28"));
/// assert_eq!(cfg.cidrs().len(), 2);
/// let json = serde_json::to_string(&cfg).unwrap();
/// assert_eq!(serde_json::from_str::<SubnetConfig>(&json).unwrap(), cfg);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubnetConfig {
    /// Unique name of the subnet (for example the logical switch name).
    pub(crate) name: String,
    /// One CIDR per family.
    pub(crate) cidrs: Vec<IpNet>,
    /// Gateways, at most one per family; a family without one gets its first usable address.
    pub(crate) gateways: Vec<IpAddr>,
    /// Addresses never handed out: single addresses, `a..b` ranges, CIDRs.
    pub(crate) exclude: Vec<String>,
    /// Named, disjoint pools; what no pool covers forms the default pool.
    pub(crate) pools: Vec<PoolConfig>,
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
    pub fn with_cidr(mut self, cidr: IpNet) -> Self {
        self.cidrs.push(cidr);
        self
    }

    /// Sets the gateway of the address's family.
    #[must_use]
    pub fn with_gateway(mut self, gateway: IpAddr) -> Self {
        self.gateways.retain(|g| g.is_ipv4() != gateway.is_ipv4());
        self.gateways.push(gateway);
        self
    }

    /// Adds an exclusion entry.
    #[must_use]
    pub fn with_exclude(mut self, entry: impl Into<String>) -> Self {
        self.exclude.push(entry.into());
        self
    }

    /// Adds a pool.
    #[must_use]
    pub fn with_pool(mut self, pool: PoolConfig) -> Self {
        self.pools.push(pool);
        self
    }

    /// The subnet's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CIDRs, one per family.
    #[must_use]
    pub fn cidrs(&self) -> &[IpNet] {
        &self.cidrs
    }

    /// The gateways given (a family without one gets its first usable address).
    #[must_use]
    pub fn gateways(&self) -> &[IpAddr] {
        &self.gateways
    }

    /// The exclusion entries, as written.
    #[must_use]
    pub fn exclusions(&self) -> &[String] {
        &self.exclude
    }

    /// The named pools.
    #[must_use]
    pub fn pools(&self) -> &[PoolConfig] {
        &self.pools
    }
}

/// A named pool: addresses given as entries. The order of the entries is the order of the
/// pool's address list, so a request with ordinal `i` gets the `i`-th address of each family
/// (StatefulSet-style fixed addresses).
///
/// ```
/// use ipam::PoolConfig;
/// let pool = PoolConfig::new("web").with_entry("10.0.0.50").with_entry("10.0.0.60..10.0.0.69");
/// assert_eq!(pool.entries().len(), 2);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PoolConfig {
    /// Name, unique in the subnet; `default` is taken by the rest of the subnet.
    pub(crate) name: String,
    /// Single addresses, `a..b` ranges and CIDRs, in list order.
    pub(crate) entries: Vec<String>,
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
    pub fn with_entry(mut self, entry: impl Into<String>) -> Self {
        self.entries.push(entry.into());
        self
    }

    /// The pool's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The entries, in list order, as written.
    #[must_use]
    pub fn entries(&self) -> &[String] {
        &self.entries
    }
}
