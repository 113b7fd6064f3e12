//! The cluster the planner plans for ([`Cluster`], [`NativeGateway`]) and the nodes it knows
//! ([`NodeState`]).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};

use crate::error::ConfigError;

/// The cluster-wide topology the planner works on (see the crate docs for the picture).
///
/// `Default` is Kube-OVN's: router `ovn-cluster`, join switch `100.64.0.0/16` with the router's
/// join port at `100.64.0.1`, cluster CIDR `10.16.0.0/16`, management port `ovn0`, no
/// OVN-native gateway. Change it with the chained setters and check it once with
/// [`Cluster::validate`] (the planner does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// The cluster router's name (`Logical_Router.name`).
    pub(crate) router: String,
    /// The join subnet that connects the router to every node's management port.
    pub(crate) join_cidr: IpNet,
    /// The router's address on the join switch: the next hop of every node's return route.
    pub(crate) router_join_ip: IpAddr,
    /// Destinations inside the cluster: never sent to a gateway (the join subnet and every
    /// planned subnet's CIDR are added to these).
    pub(crate) cluster_cidrs: Vec<IpNet>,
    /// The management port's name on every node (`ovn0`).
    pub(crate) mgmt_port: String,
    /// The OVN-native gateway, if the cluster has one.
    pub(crate) native: Option<NativeGateway>,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            router: "ovn-cluster".into(),
            join_cidr: IpNet::V4(Ipv4Net::new(Ipv4Addr::new(100, 64, 0, 0), 16).expect("valid")),
            router_join_ip: IpAddr::V4(Ipv4Addr::new(100, 64, 0, 1)),
            cluster_cidrs: vec![IpNet::V4(
                Ipv4Net::new(Ipv4Addr::new(10, 16, 0, 0), 16).expect("valid"),
            )],
            mgmt_port: "ovn0".into(),
            native: None,
        }
    }
}

impl Cluster {
    /// Sets the router's name.
    #[must_use]
    pub fn with_router(mut self, router: impl Into<String>) -> Self {
        self.router = router.into();
        self
    }

    /// Sets the join subnet and the router's address in it.
    #[must_use]
    pub fn with_join(mut self, cidr: IpNet, router_ip: IpAddr) -> Self {
        self.join_cidr = cidr;
        self.router_join_ip = router_ip;
        self
    }

    /// Replaces the cluster CIDRs (destinations never sent to a gateway).
    #[must_use]
    pub fn with_cluster_cidrs(mut self, cidrs: impl IntoIterator<Item = IpNet>) -> Self {
        self.cluster_cidrs = cidrs.into_iter().collect();
        self
    }

    /// Sets the management port's name.
    #[must_use]
    pub fn with_mgmt_port(mut self, name: impl Into<String>) -> Self {
        self.mgmt_port = name.into();
        self
    }

    /// Sets the OVN-native gateway.
    #[must_use]
    pub fn with_native(mut self, native: NativeGateway) -> Self {
        self.native = Some(native);
        self
    }

    /// The cluster router's name (`Logical_Router.name`).
    #[must_use]
    pub fn router(&self) -> &str {
        &self.router
    }

    /// The join subnet that connects the router to every node's management port.
    #[must_use]
    pub fn join_cidr(&self) -> IpNet {
        self.join_cidr
    }

    /// The router's address on the join switch.
    #[must_use]
    pub fn router_join_ip(&self) -> IpAddr {
        self.router_join_ip
    }

    /// Destinations inside the cluster, never sent to a gateway.
    #[must_use]
    pub fn cluster_cidrs(&self) -> &[IpNet] {
        &self.cluster_cidrs
    }

    /// The management port's name on every node.
    #[must_use]
    pub fn mgmt_port(&self) -> &str {
        &self.mgmt_port
    }

    /// The OVN-native gateway, if the cluster has one.
    #[must_use]
    pub fn native(&self) -> Option<&NativeGateway> {
        self.native.as_ref()
    }

    /// Destinations never sent to a gateway, as the planner computes them: the cluster CIDRs,
    /// the join subnet and every subnet's CIDR in `subnets`, truncated to their networks. The
    /// `allow` policy matches them, and a [`Masquerade`](crate::Masquerade) leaves them alone.
    #[must_use]
    pub fn internal_destinations(
        &self,
        subnets: impl IntoIterator<Item = IpNet>,
    ) -> BTreeSet<IpNet> {
        self.cluster_cidrs
            .iter()
            .copied()
            .chain([self.join_cidr])
            .chain(subnets)
            .map(|n| n.trunc())
            .collect()
    }

    /// Checks the configuration once, at the boundary.
    ///
    /// # Errors
    /// [`ConfigError`] naming what is wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.router.is_empty() {
            return Err(ConfigError::EmptyRouter);
        }
        if !self.join_cidr.contains(&self.router_join_ip) {
            return Err(ConfigError::RouterOutsideJoin {
                ip: self.router_join_ip,
                join: self.join_cidr,
            });
        }
        if self.mgmt_port.is_empty() {
            return Err(ConfigError::EmptyMgmtPort);
        }
        if let Some(n) = &self.native {
            if n.port.is_empty() {
                return Err(ConfigError::EmptyNativePort);
            }
            if n.chassis.is_empty() {
                return Err(ConfigError::NoNativeChassis {
                    port: n.port.clone(),
                });
            }
        }
        Ok(())
    }
}

/// An OVN-native gateway: a distributed gateway router port on an external network (reached
/// through a localnet port), scheduled on chassis by `Gateway_Chassis` priority; `ovn-controller`
/// moves it when BFD says the active chassis is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeGateway {
    /// The router port on the external network (`Logical_Router_Port.name`), created with the
    /// topology; the planner only sets its `gateway_chassis`.
    pub(crate) port: String,
    /// The port's external address: SNAT rewrites subnets' traffic to it.
    pub(crate) address: IpAddr,
    /// Nodes that may host the port, highest priority first.
    pub(crate) chassis: Vec<String>,
    /// The router's default next hop on the external network, if the router should route
    /// everything else there (else the default route points at the join switch).
    pub(crate) next_hop: Option<IpAddr>,
    /// BFD timers for the gateway chassis (OVN's defaults, 1 s x 3, move the port in about
    /// 3 s; 300 ms timers in about 1 s, as measured in the lab).
    pub(crate) bfd: Option<BfdTimers>,
}

/// BFD timers of the tunnels between gateway chassis (`NB_Global` options `bfd-min-rx`,
/// `bfd-min-tx`, `bfd-mult`, which `ovn-controller` applies to every tunnel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdTimers {
    /// Slowest receive interval accepted, in milliseconds.
    pub min_rx_ms: u32,
    /// Fastest transmit interval, in milliseconds.
    pub min_tx_ms: u32,
    /// Missed packets before the peer is declared down.
    pub mult: u32,
}

impl BfdTimers {
    /// Timers of `interval_ms` both ways, down after `mult` missed packets.
    #[must_use]
    pub fn new(interval_ms: u32, mult: u32) -> Self {
        BfdTimers {
            min_rx_ms: interval_ms,
            min_tx_ms: interval_ms,
            mult,
        }
    }

    /// The `NB_Global` options that carry the timers.
    #[must_use]
    pub fn options(&self) -> std::collections::BTreeMap<String, String> {
        [
            ("bfd-min-rx", self.min_rx_ms),
            ("bfd-min-tx", self.min_tx_ms),
            ("bfd-mult", self.mult),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_string()))
        .collect()
    }
}

impl NativeGateway {
    /// A native gateway on router port `port` with external `address`, hosted on `chassis`
    /// (node names, highest priority first).
    pub fn new<S: Into<String>>(
        port: impl Into<String>,
        address: IpAddr,
        chassis: impl IntoIterator<Item = S>,
    ) -> Self {
        NativeGateway {
            port: port.into(),
            address,
            chassis: chassis.into_iter().map(Into::into).collect(),
            next_hop: None,
            bfd: None,
        }
    }

    /// Sets the BFD timers of the gateway chassis' tunnels.
    #[must_use]
    pub fn with_bfd(mut self, timers: BfdTimers) -> Self {
        self.bfd = Some(timers);
        self
    }

    /// Routes everything outside the cluster to `next_hop` on the external network.
    #[must_use]
    pub fn with_next_hop(mut self, next_hop: IpAddr) -> Self {
        self.next_hop = Some(next_hop);
        self
    }

    /// The router port on the external network.
    #[must_use]
    pub fn port(&self) -> &str {
        &self.port
    }

    /// The port's external address.
    #[must_use]
    pub fn address(&self) -> IpAddr {
        self.address
    }

    /// The nodes that may host the port, highest priority first.
    #[must_use]
    pub fn chassis(&self) -> &[String] {
        &self.chassis
    }

    /// The router's default next hop on the external network, if set.
    #[must_use]
    pub fn next_hop(&self) -> Option<IpAddr> {
        self.next_hop
    }

    /// The BFD timers of the gateway chassis' tunnels, if set.
    #[must_use]
    pub fn bfd(&self) -> Option<BfdTimers> {
        self.bfd
    }
}

/// A node as the planner sees it: its name, its OVN chassis, its management port's join
/// address (none until the node agent has set one up) and whether the last probe found it
/// healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    /// The node's name (what intents name).
    pub name: String,
    /// The node's OVN chassis name (`Chassis.name`, `system-id`).
    pub chassis: String,
    /// The address of the node's management port on the join switch.
    pub join_ip: Option<IpAddr>,
    /// Whether the node passes traffic (from a health probe; the planner reads no clock).
    pub healthy: bool,
}

impl NodeState {
    /// A healthy node with chassis `chassis` and no join address yet.
    pub fn new(name: impl Into<String>, chassis: impl Into<String>) -> Self {
        NodeState {
            name: name.into(),
            chassis: chassis.into(),
            join_ip: None,
            healthy: true,
        }
    }

    /// Sets the join address.
    #[must_use]
    pub fn with_join_ip(mut self, ip: IpAddr) -> Self {
        self.join_ip = Some(ip);
        self
    }

    /// Sets the health.
    #[must_use]
    pub fn with_health(mut self, healthy: bool) -> Self {
        self.healthy = healthy;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_what_is_wrong() {
        assert_eq!(Cluster::default().validate(), Ok(()));
        let outside = Cluster::default().with_join(
            "100.64.0.0/16".parse().unwrap(),
            "100.65.0.1".parse().unwrap(),
        );
        assert!(matches!(
            outside.validate(),
            Err(ConfigError::RouterOutsideJoin { .. })
        ));
        let lonely = Cluster::default().with_native(NativeGateway::new(
            "ext",
            "10.18.0.254".parse().unwrap(),
            Vec::<String>::new(),
        ));
        assert_eq!(
            lonely.validate().unwrap_err().to_string(),
            "the OVN-native gateway port \"ext\" has no gateway chassis"
        );
    }
}
