//! NodePort Services on the node: the agent makes `<any address of the node>:<node port>`
//! lead into OVN's load balancers.
//!
//! The controller writes the OVN side of a NodePort Service: a load-balancer VIP
//! `<node-port VIP>:<node port>` (a link-local address that no node or pod uses, `169.254.169.3`
//! by default) that OVN's load balancers on the join switch translate to the Service's
//! endpoints. Every load balancer that serves node ports says so in its `external_ids`
//! ([`owner::LB_NODE_PORTS`]: the ports, [`owner::LB_NODE_PORT_VIP`]: the VIP,
//! [`owner::LB_TRAFFIC_POLICY`]: `Cluster` or `Local`; the protocol is the row's `protocol`,
//! TCP when empty). From those rows alone the agent derives this node's [`NodePortPlan`]
//! ([`plan_from_rows`], pure) and makes the node hold it:
//!
//! - **DNAT** (nftables, table `ip ovnkit-nodeport`, [`NFT_TABLE`]): a packet of a node port's
//!   protocol and port to any local address of the node (`fib daddr type local`), arriving on
//!   any interface but the management port, gets destination `VIP:port` (hook `prerouting`);
//!   so does a connection the node itself opens to one of its own non-loopback addresses
//!   (hook `output`). The node ports are one map (`protocol . port : VIP . port`), so a
//!   thousand of them cost one lookup. What arrives through the management port (pods'
//!   traffic routed to the node) is left alone: pods reach a Service by its ClusterIP.
//! - **Route**: `VIP/32 via <the router's join address> dev ovn0`, among the management port's
//!   routes ([`bootstrap`](super::bootstrap), protocol
//!   [`ROUTE_PROTOCOL`](super::bootstrap::ROUTE_PROTOCOL)): the translated packet enters OVN
//!   on the node's join port, where the join switch's load balancer picks the endpoint.
//! - **Masquerade** for `externalTrafficPolicy: Cluster`: a translated connection leaving
//!   through the management port to a Cluster port gets the node's `ovn0` address as source,
//!   so that the endpoint, wherever it runs, answers the node, which translates the reply back.
//!   The endpoint sees the node's join address, not the client's.
//! - **No masquerade** for `Local`: the endpoint sees the client's address. The controller
//!   makes the Local VIP a template load balancer whose backends, per chassis, are the node's
//!   own endpoints only (none: the node drops), and the endpoint's reply must come back through
//!   the node the client used, which holds the connection's translation. It does for a pod of a
//!   distributed-gateway subnet: its traffic to outside the cluster is rerouted to its own node
//!   (the egress policies), which is the node the client used, as only that node's endpoints
//!   answer there. A subnet with a centralized gateway sends the reply to its gateway node
//!   instead, and the connection fails: `Local` keeps the client's address only for pods of
//!   distributed-gateway subnets.
//! - **Forwarding** (`net.ipv4.ip_forward=1`) while the node has node ports; never turned off.
//!
//! The table is rewritten as a whole in one `nft -f -` transaction, and removed when the node
//! has no node ports. Node ports are IPv4: a row with an IPv6 VIP is skipped and logged.
//!
//! **Rows that cannot be used** (a port that is not a number, a VIP that is not a unicast IPv4
//! address, an unknown policy or protocol) are skipped and logged once, naming the row, the key
//! and why ([`Skipped`]); the node's other node ports are unaffected. Two rows claiming one
//! protocol and port for different VIPs or policies: the row first by name keeps it.
//!
//! **When.** [`bootstrap::keep`](super::bootstrap::keep) derives the plan after every NB change
//! (the agent's NB view follows the `services` component's load balancers, [`ports::monitor`]),
//! routes its VIPs with the management port, and applies the table once the port is in sync,
//! when it differs from the one applied last (the first time always, so that what a previous
//! run left is replaced). `--no-node-ports` turns it off.
//!
//! [`owner::LB_NODE_PORTS`]: ovn_model::owner::LB_NODE_PORTS
//! [`owner::LB_NODE_PORT_VIP`]: ovn_model::owner::LB_NODE_PORT_VIP
//! [`owner::LB_TRAFFIC_POLICY`]: ovn_model::owner::LB_TRAFFIC_POLICY
//! [`ports::monitor`]: super::ports::monitor

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use ovn_model::nb::{LoadBalancer, LoadBalancerProtocol};
use ovn_model::owner;
use ovn_model::snapshot::Typed;
use ovsdb::replica::Snapshot;

use crate::node::gateway::{ApplyError, nft, sysctl};

/// The nftables table (family `ip`) that holds the node's node ports.
pub const NFT_TABLE: &str = "ovnkit-nodeport";

/// The protocol of a node port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// The name nftables (and OVN) use.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// A Service's `externalTrafficPolicy`, as the load balancer carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TrafficPolicy {
    /// Any endpoint answers; the node masquerades the client.
    Cluster,
    /// Only the node's endpoints answer; the client's address is kept.
    Local,
}

impl TrafficPolicy {
    /// The value of [`owner::LB_TRAFFIC_POLICY`].
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TrafficPolicy::Cluster => "Cluster",
            TrafficPolicy::Local => "Local",
        }
    }
}

/// One node port: what arrives on `protocol`/`port` goes to `vip:port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodePort {
    /// The protocol.
    pub protocol: Protocol,
    /// The port, on every address of the node.
    pub port: u16,
    /// Where it goes (the port stays).
    pub vip: Ipv4Addr,
    /// Whether the node masquerades.
    pub policy: TrafficPolicy,
}

impl fmt::Display for NodePort {
    /// `tcp/30080 -> 169.254.169.3:30080 (Cluster)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} -> {}:{} ({})",
            self.protocol.as_str(),
            self.port,
            self.vip,
            self.port,
            self.policy.as_str()
        )
    }
}

/// What the node holds for node ports: at most one [`NodePort`] per protocol and port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodePortPlan {
    /// The node ports.
    pub ports: BTreeSet<NodePort>,
}

impl NodePortPlan {
    /// Whether there is nothing to hold.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
    }

    /// The VIPs the node routes into its management port.
    #[must_use]
    pub fn vips(&self) -> BTreeSet<Ipv4Addr> {
        self.ports.iter().map(|p| p.vip).collect()
    }

    /// The VIPs as host routes' destinations.
    #[must_use]
    pub fn routes(&self) -> Vec<IpNet> {
        self.vips()
            .into_iter()
            .map(|v| IpNet::from(IpAddr::V4(v)))
            .collect()
    }

    /// One line per node port.
    #[must_use]
    pub fn explain(&self) -> Vec<String> {
        self.ports.iter().map(ToString::to_string).collect()
    }
}

/// A load balancer row, or part of one, that [`plan_from_rows`] left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Skipped {
    /// The row's name (its UUID when it has none).
    pub row: String,
    /// What is wrong, naming the key.
    pub reason: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "load balancer {}: {}", self.row, self.reason)
    }
}

fn row_name(lb: &LoadBalancer) -> String {
    if lb.name.is_empty() {
        lb.uuid.to_string()
    } else {
        lb.name.clone()
    }
}

/// The node ports `lb` asks for; `Err` when the whole row cannot be used, and the ports of it
/// that cannot be (each with why) beside those that can.
fn row_ports(lb: &LoadBalancer) -> Result<(Vec<NodePort>, Vec<String>), String> {
    let ids = &lb.external_ids;
    let Some(ports) = ids.get(owner::LB_NODE_PORTS) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let protocol = match &lb.protocol {
        None | Some(LoadBalancerProtocol::Tcp) => Protocol::Tcp,
        Some(LoadBalancerProtocol::Udp) => Protocol::Udp,
        Some(LoadBalancerProtocol::Sctp) => Protocol::Sctp,
        Some(LoadBalancerProtocol::Other(p)) => return Err(format!("unknown protocol {p:?}")),
    };
    let vip = ids
        .get(owner::LB_NODE_PORT_VIP)
        .ok_or_else(|| format!("{} is missing", owner::LB_NODE_PORT_VIP))?;
    let vip = match vip.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(v))
            if !(v.is_unspecified() || v.is_loopback() || v.is_multicast() || v.is_broadcast()) =>
        {
            v
        }
        Ok(IpAddr::V4(_)) => {
            return Err(format!(
                "{} {vip:?} is not a unicast address",
                owner::LB_NODE_PORT_VIP
            ));
        }
        Ok(IpAddr::V6(_)) => {
            return Err(format!(
                "{} {vip:?}: node ports are IPv4 only",
                owner::LB_NODE_PORT_VIP
            ));
        }
        Err(e) => return Err(format!("{} {vip:?}: {e}", owner::LB_NODE_PORT_VIP)),
    };
    let policy = match ids.get(owner::LB_TRAFFIC_POLICY).map(|p| p.trim()) {
        Some("Cluster") => TrafficPolicy::Cluster,
        Some("Local") => TrafficPolicy::Local,
        Some(p) => {
            return Err(format!(
                "{} {p:?} is neither Cluster nor Local",
                owner::LB_TRAFFIC_POLICY
            ));
        }
        None => return Err(format!("{} is missing", owner::LB_TRAFFIC_POLICY)),
    };
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for p in ports.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match p.parse::<u16>() {
            Ok(port) if port > 0 => out.push(NodePort {
                protocol,
                port,
                vip,
                policy,
            }),
            _ => bad.push(format!(
                "{} entry {p:?} is not a port (1 to 65535)",
                owner::LB_NODE_PORTS
            )),
        }
    }
    Ok((out, bad))
}

/// The node's plan from the load balancers `lbs` (any order; rows without
/// [`owner::LB_NODE_PORTS`] are ignored), and what was left out (see the module docs).
///
/// [`owner::LB_NODE_PORTS`]: ovn_model::owner::LB_NODE_PORTS
#[must_use]
pub fn plan_from_rows(lbs: impl IntoIterator<Item = LoadBalancer>) -> (NodePortPlan, Vec<Skipped>) {
    let mut rows: Vec<LoadBalancer> = lbs
        .into_iter()
        .filter(|lb| lb.external_ids.contains_key(owner::LB_NODE_PORTS))
        .collect();
    rows.sort_by(|a, b| (&a.name, a.uuid).cmp(&(&b.name, b.uuid)));
    let mut taken: BTreeMap<(Protocol, u16), (NodePort, String)> = BTreeMap::new();
    let mut skipped = Vec::new();
    for lb in &rows {
        let name = row_name(lb);
        let skip = |reason: String| Skipped {
            row: name.clone(),
            reason,
        };
        match row_ports(lb) {
            Err(reason) => skipped.push(skip(reason)),
            Ok((ports, bad)) => {
                skipped.extend(bad.into_iter().map(skip));
                for p in ports {
                    match taken.get(&(p.protocol, p.port)) {
                        None => {
                            taken.insert((p.protocol, p.port), (p, name.clone()));
                        }
                        Some((q, _)) if *q == p => {}
                        Some((q, other)) => skipped.push(skip(format!(
                            "{}/{} is load balancer {other}'s ({q})",
                            p.protocol.as_str(),
                            p.port
                        ))),
                    }
                }
            }
        }
    }
    let plan = NodePortPlan {
        ports: taken.into_values().map(|(p, _)| p).collect(),
    };
    (plan, skipped)
}

/// [`plan_from_rows`] of the load balancers in `snap`.
#[must_use]
pub fn plan(snap: &Snapshot) -> (NodePortPlan, Vec<Skipped>) {
    plan_from_rows(Typed::new(snap).rows::<LoadBalancer>())
}

/// The `nft -f -` script that makes table `ip` [`NFT_TABLE`] hold exactly `plan` for the
/// management port `device` (and removes the table when the plan is empty): one nftables
/// transaction.
#[must_use]
pub fn nft_script(plan: &NodePortPlan, device: &str) -> String {
    let mut s = format!("table ip {NFT_TABLE}\ndelete table ip {NFT_TABLE}\n");
    if plan.is_empty() {
        return s;
    }
    let device: String = device.chars().filter(|c| *c != '"').collect();
    let forward: Vec<String> = plan
        .ports
        .iter()
        .map(|p| {
            format!(
                "{} . {} : {} . {}",
                p.protocol.as_str(),
                p.port,
                p.vip,
                p.port
            )
        })
        .collect();
    let cluster: Vec<String> = plan
        .ports
        .iter()
        .filter(|p| p.policy == TrafficPolicy::Cluster)
        .map(|p| format!("{} . {} . {}", p.vip, p.protocol.as_str(), p.port))
        .collect();
    let elements = |e: &[String]| {
        if e.is_empty() {
            String::new()
        } else {
            format!("    elements = {{ {} }}\n", e.join(", "))
        }
    };
    s.push_str(&format!("table ip {NFT_TABLE} {{\n"));
    s.push_str(
        "  map node_ports {\n    type inet_proto . inet_service : ipv4_addr . inet_service\n",
    );
    s.push_str(&elements(&forward));
    s.push_str("  }\n  set cluster_ports {\n    type ipv4_addr . inet_proto . inet_service\n");
    s.push_str(&elements(&cluster));
    s.push_str("  }\n");
    s.push_str(&format!(
        "  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n    \
         iifname != \"{device}\" fib daddr type local \
         dnat ip to meta l4proto . th dport map @node_ports\n  }}\n"
    ));
    s.push_str(
        "  chain output {\n    type nat hook output priority -100; policy accept;\n    \
         ip daddr != 127.0.0.0/8 fib daddr type local \
         dnat ip to meta l4proto . th dport map @node_ports\n  }\n",
    );
    s.push_str(&format!(
        "  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    \
         oifname \"{device}\" ct status dnat \
         ip daddr . meta l4proto . th dport @cluster_ports masquerade\n  }}\n"
    ));
    s.push_str("}\n");
    s
}

/// Makes the calling thread's network namespace hold `plan` (the table; forwarding on when
/// there are node ports). The routes are the management port's.
///
/// # Errors
/// [`ApplyError`] when `nft` refuses or a sysctl cannot be written.
pub fn apply(plan: &NodePortPlan, device: &str) -> Result<(), ApplyError> {
    if !plan.is_empty() {
        sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
    }
    nft::run_script(nft_script(plan, device))
}

/// The agent's node-port loop state: the plan applied last and the skipped rows logged last.
#[derive(Debug, Clone)]
pub(crate) struct NodePorts {
    node: String,
    device: String,
    applied: Option<NodePortPlan>,
    reported: Vec<Skipped>,
}

impl NodePorts {
    pub(crate) fn new(node: &str, device: &str) -> Self {
        NodePorts {
            node: node.to_owned(),
            device: device.to_owned(),
            applied: None,
            reported: Vec::new(),
        }
    }

    /// The plan the NB asks for now; rows left out are logged when they change.
    pub(crate) fn wanted(&mut self, snap: &Snapshot) -> NodePortPlan {
        let (plan, skipped) = plan(snap);
        if skipped != self.reported {
            for s in &skipped {
                tracing::warn!(node = %self.node, "node ports: skipped {s}");
            }
            self.reported = skipped;
        }
        plan
    }

    /// Applies `plan` when it differs from the one applied last (the first time always).
    pub(crate) fn sync(&mut self, plan: &NodePortPlan) -> Result<(), ApplyError> {
        if self.applied.as_ref() == Some(plan) {
            return Ok(());
        }
        apply(plan, &self.device)?;
        let before: BTreeSet<String> = self
            .applied
            .as_ref()
            .map(NodePortPlan::explain)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let now: BTreeSet<String> = plan.explain().into_iter().collect();
        for line in now.difference(&before) {
            tracing::info!(node = %self.node, "node ports: holds {line}");
        }
        for line in before.difference(&now) {
            tracing::info!(node = %self.node, "node ports: no longer holds {line}");
        }
        tracing::info!(node = %self.node, node_ports = plan.ports.len(), "node-port plan applied");
        self.applied = Some(plan.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests;
