//! The node-side half of a plan: what each node must hold in its own network namespace
//! ([`NodePlan`]), as data. The node agent applies it (`ovnkit_kube::node::gateway`).

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// A route a node must hold: `destination via via dev device`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeRoute {
    /// The destination (a subnet's CIDR).
    pub destination: IpNet,
    /// The next hop (the router's join address).
    pub via: IpAddr,
    /// The outgoing device (the management port).
    pub device: String,
}

impl fmt::Display for NodeRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} via {} dev {}",
            self.destination, self.via, self.device
        )
    }
}

/// A masquerade rule a node must hold: traffic from `source` to anywhere but `except` leaves
/// with the node's own address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Masquerade {
    /// The subnet whose traffic is masqueraded.
    pub subnet: String,
    /// Its CIDR.
    pub source: IpNet,
    /// Destinations left alone (cluster-internal).
    pub except: BTreeSet<IpNet>,
}

impl fmt::Display for Masquerade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "masquerade {} ({})", self.source, self.subnet)?;
        if !self.except.is_empty() {
            let ex: Vec<String> = self.except.iter().map(ToString::to_string).collect();
            write!(f, " except to {}", ex.join(", "))?;
        }
        Ok(())
    }
}

/// Everything one node must hold for egress, as a whole (not a diff): an executor makes the
/// node hold exactly this, removing what an earlier plan had and this one has not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodePlan {
    /// The node's name.
    pub node: String,
    /// Whether the node must forward IP packets (it carries some subnet's traffic).
    pub forwarding: bool,
    /// Routes back to the subnets whose traffic the node carries.
    pub routes: BTreeSet<NodeRoute>,
    /// Masquerade rules.
    pub masquerade: BTreeSet<Masquerade>,
}

impl NodePlan {
    /// An empty plan for `node` (it carries nothing: an executor removes what it held).
    #[must_use]
    pub fn empty(node: impl Into<String>) -> Self {
        NodePlan {
            node: node.into(),
            ..Default::default()
        }
    }

    /// Everything `self` or `other` holds (forwarding if either forwards).
    #[must_use]
    pub fn merged(&self, other: &NodePlan) -> NodePlan {
        NodePlan {
            node: self.node.clone(),
            forwarding: self.forwarding || other.forwarding,
            routes: self.routes.union(&other.routes).cloned().collect(),
            masquerade: self.masquerade.union(&other.masquerade).cloned().collect(),
        }
    }

    /// Whether the node carries no egress traffic.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty() && self.masquerade.is_empty()
    }

    /// One line per thing the node must hold.
    #[must_use]
    pub fn explain(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .routes
            .iter()
            .map(|r| format!("{}: route {r}", self.node))
            .chain(
                self.masquerade
                    .iter()
                    .map(|m| format!("{}: {m}", self.node)),
            )
            .collect();
        if self.forwarding {
            out.push(format!("{}: forward IP packets", self.node));
        }
        out
    }
}
