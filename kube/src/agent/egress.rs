//! Egress on the node: the agent makes its own node hold what the egress policies the
//! controller wrote ask of it.
//!
//! The controller plans egress with the `gateway` planner and writes the OVN side only: a
//! `reroute` policy per subnet (per node, for a distributed subnet) whose next hops are the
//! join addresses of the nodes that carry the subnet's traffic, with the subnet's CIDR, whether
//! it is masqueraded and the standby gateways in its `external_ids` ([`owner::EGRESS_CIDR`],
//! [`owner::EGRESS_NAT`], [`owner::EGRESS_STANDBY`]). From those rows alone the agent derives
//! this node's [`NodePlan`] ([`gateway::node_plan_from_observed`]): forwarding, a route back
//! to every carried subnet via the router's join address on the management port, a masquerade
//! rule for every masqueraded one (cluster-internal destinations excepted). It applies the
//! plan with [`node::gateway::apply`](crate::node::gateway::apply) in its own network
//! namespace, the node's.
//!
//! What the derivation reads, all from the agent's NB view ([`ports::monitor`]):
//!
//! - the `gateway`-owned egress `Logical_Router_Policy` rows;
//! - the node's own join port `node-<name>`: the node's join address (its address) and the
//!   router's join address ([`owner::PORT_GATEWAY`]), the join subnet (its [`owner::PORT_CIDR`]);
//! - every subnet's CIDR ([`owner::SWITCH_CIDR`]): with the join subnet, the destinations a
//!   masquerade rule leaves alone ([`Cluster::internal_destinations`]).
//!
//! **Routes.** The routes a plan lists (each carried subnet via the router's join address on
//! the management port) are routes the management port already holds for every subnet
//! ([`bootstrap`](super::bootstrap), protocol [`ROUTE_PROTOCOL`](super::bootstrap::ROUTE_PROTOCOL)).
//! The kernel keeps one route per destination and metric, whatever its protocol: applying
//! both would make each replace the other. So the agent applies the plan without the routes
//! the management port holds ([`without_mgmt_routes`]); any other route of the plan is applied
//! as it is.
//!
//! **When.** [`bootstrap::keep`](super::bootstrap::keep) runs it after every sync of the
//! management port (at start and after every NB change), once the port exists: a plan that
//! differs from the last one applied is applied and logged line by line; a failure is logged
//! and retried. It never runs on the CNI request path.
//!
//! [`owner::EGRESS_CIDR`]: ovn_model::owner::EGRESS_CIDR
//! [`owner::EGRESS_NAT`]: ovn_model::owner::EGRESS_NAT
//! [`owner::EGRESS_STANDBY`]: ovn_model::owner::EGRESS_STANDBY
//! [`owner::PORT_GATEWAY`]: ovn_model::owner::PORT_GATEWAY
//! [`owner::PORT_CIDR`]: ovn_model::owner::PORT_CIDR
//! [`owner::SWITCH_CIDR`]: ovn_model::owner::SWITCH_CIDR

use std::collections::BTreeSet;

use gateway::{Cluster, NodePlan, NodeState, Observed};
use ipnet::IpNet;
use ovn_model::nb::LogicalSwitchPort;
use ovn_model::snapshot::Typed;
use ovsdb::replica::Snapshot;

use super::bootstrap::MgmtState;
use super::ports::{self, PortError, PortInfo};
use crate::node::gateway::{ApplyError, apply};

/// Why this node's egress could not be made to hold.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EgressError {
    /// The node's join port cannot be used.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The node plan could not be applied.
    #[error("applying the node's egress plan")]
    Apply(#[from] ApplyError),
}

/// The cluster as the node sees it, from its join port `port` and the subnets' CIDRs: the
/// join subnet and the router's join address, the management port `device`. `None` when the
/// port has no address, or no gateway of its address's family.
#[must_use]
pub fn cluster_of(port: &PortInfo, subnets: &[IpNet], device: &str) -> Option<(Cluster, IpNet)> {
    let ip = *port.ips.first()?;
    let router = *port
        .gateways
        .iter()
        .find(|g| g.is_ipv4() == ip.addr().is_ipv4())?;
    let cluster = Cluster::default()
        .with_join(ip.trunc(), router)
        .with_cluster_cidrs(subnets.iter().copied())
        .with_mgmt_port(device);
    Some((cluster, ip))
}

/// What node `node` (chassis `chassis`, management port `device`) must hold while the NB is
/// as in `snap`; `None` while the controller has not given the node its join port (or the port
/// has no address and router address yet).
///
/// # Errors
/// [`PortError::BadPort`] when the join port's data cannot be read.
pub fn node_plan(
    snap: &Snapshot,
    node: &str,
    chassis: &str,
    device: &str,
) -> Result<Option<NodePlan>, PortError> {
    let nb = Typed::new(snap);
    let Some(lsp) = nb.by_name::<LogicalSwitchPort>(&format!("node-{node}")) else {
        return Ok(None);
    };
    let info = PortInfo::from_port(&lsp)?;
    let subnets = ports::subnet_cidrs(snap);
    let Some((cluster, ip)) = cluster_of(&info, &subnets, device) else {
        return Ok(None);
    };
    let internal: BTreeSet<IpNet> = cluster.internal_destinations(subnets);
    let observed = Observed::from_snapshot(&nb, &cluster);
    let me = NodeState::new(node, chassis).with_join_ip(ip.addr());
    Ok(Some(gateway::node_plan_from_observed(
        &cluster, &me, &observed, &internal,
    )))
}

/// `plan` without the routes the management port `device` already holds (`mgmt`, see the
/// module docs).
#[must_use]
pub fn without_mgmt_routes(plan: &NodePlan, device: &str, mgmt: &MgmtState) -> NodePlan {
    let mut out = plan.clone();
    out.routes
        .retain(|r| !(r.device == device && mgmt.routes.contains(&r.destination.trunc())));
    out
}

/// The lines of `now` not in `before` (added) and of `before` not in `now` (removed).
fn changes(before: Option<&NodePlan>, now: &NodePlan) -> (Vec<String>, Vec<String>) {
    let old: BTreeSet<String> = before
        .map(NodePlan::explain)
        .unwrap_or_default()
        .into_iter()
        .collect();
    let new: BTreeSet<String> = now.explain().into_iter().collect();
    (
        new.difference(&old).cloned().collect(),
        old.difference(&new).cloned().collect(),
    )
}

/// The agent's egress loop state: the plan applied last.
#[derive(Debug, Clone)]
pub(crate) struct Egress {
    node: String,
    chassis: String,
    device: String,
    applied: Option<NodePlan>,
}

impl Egress {
    pub(crate) fn new(node: &str, chassis: &str, device: &str) -> Self {
        Egress {
            node: node.to_owned(),
            chassis: chassis.to_owned(),
            device: device.to_owned(),
            applied: None,
        }
    }

    /// Derives the node's plan from `snap` and applies it when it changed (the first time
    /// always, so that what a previous run left is removed); `mgmt` is what the management
    /// port holds.
    pub(crate) async fn sync(
        &mut self,
        snap: &Snapshot,
        mgmt: &MgmtState,
    ) -> Result<(), EgressError> {
        let Some(plan) = node_plan(snap, &self.node, &self.chassis, &self.device)? else {
            return Ok(());
        };
        if self.applied.as_ref() == Some(&plan) {
            return Ok(());
        }
        let report = apply(&without_mgmt_routes(&plan, &self.device, mgmt)).await?;
        let (added, removed) = changes(self.applied.as_ref(), &plan);
        for line in &added {
            tracing::info!(node = %self.node, "egress: holds {line}");
        }
        for line in &removed {
            tracing::info!(node = %self.node, "egress: no longer holds {line}");
        }
        tracing::info!(
            node = %self.node,
            routes_added = ?report.routes_added,
            routes_removed = ?report.routes_removed,
            masquerade_rules = report.masquerade_rules,
            carries = !plan.is_empty(),
            "egress plan applied"
        );
        self.applied = Some(plan);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use gateway::{Masquerade, NodeRoute};

    use super::*;

    fn port(ip: &str, gateway: &str) -> PortInfo {
        PortInfo {
            name: "node-node1".into(),
            subnet: "join".into(),
            mac: "0a:00:64:00:00:02".parse().unwrap(),
            ips: vec![ip.parse().unwrap()],
            gateways: vec![gateway.parse().unwrap()],
            mtu: None,
            qos: None,
        }
    }

    #[test]
    fn the_cluster_comes_from_the_join_port() {
        let subnets: Vec<IpNet> = vec!["10.16.0.0/16".parse().unwrap()];
        let (cluster, ip) =
            cluster_of(&port("100.64.0.2/16", "100.64.0.1"), &subnets, "mgmt0").expect("a cluster");
        assert_eq!(ip, "100.64.0.2/16".parse::<IpNet>().unwrap());
        assert_eq!(
            cluster.join_cidr(),
            "100.64.0.0/16".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            cluster.router_join_ip(),
            "100.64.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(cluster.mgmt_port(), "mgmt0");
        assert_eq!(cluster.validate(), Ok(()));
        assert!(cluster_of(&port("100.64.0.2/16", "fd00::1"), &subnets, "ovn0").is_none());
    }

    #[test]
    fn routes_the_management_port_holds_are_left_to_it() {
        let mut plan = NodePlan::empty("node1");
        plan.forwarding = true;
        for d in ["10.16.0.0/16", "10.17.0.0/24"] {
            plan.routes.insert(NodeRoute {
                destination: d.parse().unwrap(),
                via: "100.64.0.1".parse().unwrap(),
                device: "ovn0".into(),
            });
        }
        plan.masquerade.insert(Masquerade {
            subnet: "ovn-default".into(),
            source: "10.16.0.0/16".parse().unwrap(),
            except: BTreeSet::new(),
        });
        let mgmt = MgmtState {
            address: None,
            routes: vec!["10.16.0.0/16".parse().unwrap()],
            index: Some(7),
        };
        let applied = without_mgmt_routes(&plan, "ovn0", &mgmt);
        let left: Vec<String> = applied.routes.iter().map(ToString::to_string).collect();
        assert_eq!(left, ["10.17.0.0/24 via 100.64.0.1 dev ovn0"]);
        assert_eq!(applied.masquerade, plan.masquerade);
        assert!(applied.forwarding);
        let (added, removed) = changes(None, &plan);
        assert_eq!(added.len(), 4);
        assert!(removed.is_empty());
        let (added, removed) = changes(Some(&plan), &NodePlan::empty("node1"));
        assert!(added.is_empty());
        assert_eq!(removed.len(), 4);
    }
}
