//! What a subnet asks for: [`EgressIntent`].

use std::net::IpAddr;

use ipnet::IpNet;

/// How a subnet's traffic to the outside world leaves the cluster (Kube-OVN's
/// `gateway_type` plus OVN's own gateway).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GatewayType {
    /// Every node carries its own pods' traffic out through its management port.
    Distributed,
    /// All of the subnet's traffic leaves through named gateway nodes.
    Centralized,
    /// The traffic leaves through the cluster's OVN-native gateway port (SNAT in OVN).
    OvnNative,
}

impl GatewayType {
    /// The name used in messages and tags.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            GatewayType::Distributed => "distributed",
            GatewayType::Centralized => "centralized",
            GatewayType::OvnNative => "ovn-native",
        }
    }
}

/// A floating IP (EIP/FIP): an external address mapped one to one onto a pod's address
/// (`dnat_and_snat`); only on the OVN-native gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fip {
    /// The pod's address.
    pub logical_ip: IpAddr,
    /// The external address.
    pub external_ip: IpAddr,
}

/// A pod's own SNAT address (Kube-OVN's `ovn.kubernetes.io/snat`): the pod's traffic leaving
/// the cluster takes `external_ip` as its source instead of the subnet's; only on the
/// OVN-native gateway. Unlike a [`Fip`], nothing outside can reach the pod through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodSnat {
    /// The pod's address.
    pub logical_ip: IpAddr,
    /// The source address its traffic leaves with.
    pub external_ip: IpAddr,
}

/// A pod of the subnet and the node it runs on (distributed egress reroutes per node).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodPlacement {
    /// The node's name.
    pub node: String,
    /// The pod's address.
    pub ip: IpAddr,
}

/// One subnet's egress intent. Build it with [`EgressIntent::distributed`],
/// [`EgressIntent::centralized`] or [`EgressIntent::ovn_native`] and the chained setters; the
/// planner checks it (a contradictory intent is an [`IntentError`](crate::IntentError) for that
/// subnet only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressIntent {
    /// The subnet's name (its logical switch).
    pub subnet: String,
    /// The subnet's CIDR.
    pub cidr: IpNet,
    /// How its traffic leaves.
    pub gateway_type: GatewayType,
    /// Gateway nodes, highest priority first (centralized only).
    pub gateway_nodes: Vec<String>,
    /// Spread flows over every healthy gateway instead of using the first one (centralized
    /// only).
    pub ecmp: bool,
    /// Masquerade (or SNAT) the subnet's traffic; `false` lets pod addresses leave unchanged
    /// (Kube-OVN's `nat_outgoing=false`).
    pub nat_outgoing: bool,
    /// Where the subnet's pods run (distributed needs it to reroute per node).
    pub pods: Vec<PodPlacement>,
    /// Floating IPs of the subnet's pods (OVN-native only).
    pub fips: Vec<Fip>,
    /// Pods' own SNAT addresses (OVN-native only).
    pub snats: Vec<PodSnat>,
}

impl EgressIntent {
    fn new(subnet: impl Into<String>, cidr: IpNet, gateway_type: GatewayType) -> Self {
        EgressIntent {
            subnet: subnet.into(),
            cidr: cidr.trunc(),
            gateway_type,
            gateway_nodes: Vec::new(),
            ecmp: false,
            nat_outgoing: true,
            pods: Vec::new(),
            fips: Vec::new(),
            snats: Vec::new(),
        }
    }

    /// Distributed egress with masquerade on each node.
    pub fn distributed(subnet: impl Into<String>, cidr: IpNet) -> Self {
        Self::new(subnet, cidr, GatewayType::Distributed)
    }

    /// Centralized egress through `gateways` (node names, highest priority first),
    /// active-backup unless [`with_ecmp`](Self::with_ecmp).
    pub fn centralized<S: Into<String>>(
        subnet: impl Into<String>,
        cidr: IpNet,
        gateways: impl IntoIterator<Item = S>,
    ) -> Self {
        let mut i = Self::new(subnet, cidr, GatewayType::Centralized);
        i.gateway_nodes = gateways.into_iter().map(Into::into).collect();
        i
    }

    /// Egress through the cluster's OVN-native gateway port with SNAT in OVN.
    pub fn ovn_native(subnet: impl Into<String>, cidr: IpNet) -> Self {
        Self::new(subnet, cidr, GatewayType::OvnNative)
    }

    /// Adds gateway nodes (lowest priority so far).
    #[must_use]
    pub fn with_gateway_nodes<S: Into<String>>(
        mut self,
        nodes: impl IntoIterator<Item = S>,
    ) -> Self {
        self.gateway_nodes.extend(nodes.into_iter().map(Into::into));
        self
    }

    /// Spreads flows over all healthy gateways (ECMP).
    #[must_use]
    pub fn with_ecmp(mut self) -> Self {
        self.ecmp = true;
        self
    }

    /// Leaves pod addresses unchanged (`nat_outgoing=false`).
    #[must_use]
    pub fn without_snat(mut self) -> Self {
        self.nat_outgoing = false;
        self
    }

    /// Sets whether traffic is masqueraded.
    #[must_use]
    pub fn with_nat_outgoing(mut self, nat: bool) -> Self {
        self.nat_outgoing = nat;
        self
    }

    /// Records that a pod with address `ip` runs on `node`.
    #[must_use]
    pub fn with_pod(mut self, node: impl Into<String>, ip: IpAddr) -> Self {
        self.pods.push(PodPlacement {
            node: node.into(),
            ip,
        });
        self
    }

    /// Gives the pod at `logical_ip` its own SNAT address `external_ip`.
    #[must_use]
    pub fn with_pod_snat(mut self, logical_ip: IpAddr, external_ip: IpAddr) -> Self {
        self.snats.push(PodSnat {
            logical_ip,
            external_ip,
        });
        self
    }

    /// Gives the pod at `logical_ip` the floating IP `external_ip`.
    #[must_use]
    pub fn with_fip(mut self, logical_ip: IpAddr, external_ip: IpAddr) -> Self {
        self.fips.push(Fip {
            logical_ip,
            external_ip,
        });
        self
    }
}
