//! Node plans, derived from the egress policies that will be in place: the wanted ones, and
//! the observed ones of subnets set aside (so those keep their node state too).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use ovn_model::owner::{self, Key};
use ovn_model::reconcile::{OwnedRow, Want};
use ovsdb::Row;

use crate::config::{Cluster, NodeState};
use crate::node_plan::{Masquerade, NodePlan, NodeRoute};
use crate::observed::Observed;
use crate::wanted::role;

/// (subnet, CIDR, masquerade?, next hops and standby gateways) of an egress policy row.
fn egress_of(key: &Key, row: Option<&Row>) -> Option<(String, IpNet, bool, Vec<IpAddr>)> {
    if key.role != role::EGRESS || key.object.kind() != "subnet" {
        return None;
    }
    let row = row?;
    let ids = string_map(row);
    let cidr: IpNet = ids.get(owner::EGRESS_CIDR)?.parse().ok()?;
    let nat = ids.get(owner::EGRESS_NAT).is_some_and(|v| v == "true");
    let mut hops: Vec<IpAddr> = row
        .get("nexthops")
        .map(|d| d.atoms().filter_map(|a| a.as_str()?.parse().ok()).collect())
        .unwrap_or_default();
    if let Some(standby) = ids.get(owner::EGRESS_STANDBY) {
        hops.extend(
            standby
                .split(',')
                .filter_map(|ip| ip.parse::<IpAddr>().ok()),
        );
    }
    Some((key.object.name().to_owned(), cidr, nat, hops))
}

/// The row's `external_ids`.
fn string_map(row: &Row) -> BTreeMap<String, String> {
    row.get("external_ids")
        .and_then(ovsdb::Datum::as_map)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// What each node holds while the observed egress policies are in place.
pub(crate) fn held_plans(
    cluster: &Cluster,
    nodes: &[NodeState],
    observed: &Observed,
    internal: &BTreeSet<IpNet>,
) -> BTreeMap<String, NodePlan> {
    let egress = observed
        .owned
        .iter()
        .filter_map(|o| egress_of(&o.key, o.row.as_ref()));
    plans_of(cluster, nodes, egress, internal)
}

/// What one node must hold while the egress policies in `observed` are in place: the routes
/// back to every subnet whose policy names the node's join address as a next hop (or as a
/// standby gateway, [`owner::EGRESS_STANDBY`]), the masquerade rules of those whose policy says
/// [`owner::EGRESS_NAT`]` = true` (leaving `internal` destinations alone), and forwarding
/// when it carries anything. A node that is no next hop (or has no join address) gets an empty
/// plan, which removes what it held.
///
/// This is how a node agent derives its own [`NodePlan`] from the rows the controller wrote,
/// without the intents or the other nodes: the same derivation the [`Planner`](crate::Planner)
/// makes for every node ([`Plan::node_plans`](crate::Plan::node_plans)) once its transaction
/// is in place. Give `internal` as the planner computed it,
/// [`Cluster::internal_destinations`] of every subnet's CIDR; the cluster's
/// [`Cluster::router_join_ip`] and [`Cluster::mgmt_port`] go into the routes.
///
/// ```
/// use gateway::{Cluster, EgressIntent, NodeState, Observed, Planner, node_plan_from_observed};
/// use ovn_model::nb::LogicalRouter;
/// use ovn_model::snapshot::Typed;
/// use ovsdb::replica::Replica;
///
/// let cluster = Cluster::default();
/// let nodes = [
///     NodeState::new("node1", "chassis-1").with_join_ip("100.64.0.2".parse()?),
///     NodeState::new("node2", "chassis-2").with_join_ip("100.64.0.3".parse()?),
/// ];
/// let cidr = "10.16.1.0/24".parse()?;
/// let intents = [EgressIntent::centralized("ls1", cidr, ["node1"])];
/// let mut nb = Replica::new(ovn_model::nb::schema());
/// let mut setup = ovn_model::plan::Plan::nb();
/// setup.insert(&LogicalRouter::new("ovn-cluster"))?;
/// setup.apply(&mut nb)?;
/// let observe = |nb: &Replica| Observed::from_snapshot(&Typed::new(&nb.snapshot()), &cluster);
/// Planner::new(cluster.clone()).plan(&intents, &nodes, &observe(&nb))?.nb().apply(&mut nb)?;
///
/// // What node1's agent derives from the rows, as the planner planned it.
/// let internal = cluster.internal_destinations([cidr]);
/// let plan = node_plan_from_observed(&cluster, &nodes[0], &observe(&nb), &internal);
/// assert_eq!(plan.explain()[0], "node1: route 10.16.1.0/24 via 100.64.0.1 dev ovn0");
/// assert!(node_plan_from_observed(&cluster, &nodes[1], &observe(&nb), &internal).is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub fn node_plan_from_observed(
    cluster: &Cluster,
    node: &NodeState,
    observed: &Observed,
    internal: &BTreeSet<IpNet>,
) -> NodePlan {
    held_plans(cluster, std::slice::from_ref(node), observed, internal)
        .remove(&node.name)
        .unwrap_or_else(|| NodePlan::empty(&node.name))
}

/// What each node holds once `wants` are in place, and the `kept` rows of subnets set aside.
pub(crate) fn node_plans(
    cluster: &Cluster,
    nodes: &[NodeState],
    wants: &[Want],
    kept: &[&OwnedRow],
    internal: &BTreeSet<IpNet>,
) -> BTreeMap<String, NodePlan> {
    let egress = wants
        .iter()
        .map(|w| (w.key(), Some(w.row())))
        .chain(kept.iter().map(|o| (&o.key, o.row.as_ref())))
        .filter_map(|(k, r)| egress_of(k, r));
    plans_of(cluster, nodes, egress, internal)
}

/// Node plans that carry `egress` (subnet, CIDR, masquerade?, carrying nodes' join addresses).
fn plans_of(
    cluster: &Cluster,
    nodes: &[NodeState],
    egress: impl Iterator<Item = (String, IpNet, bool, Vec<IpAddr>)>,
    internal: &BTreeSet<IpNet>,
) -> BTreeMap<String, NodePlan> {
    let mut plans: BTreeMap<String, NodePlan> = nodes
        .iter()
        .map(|n| (n.name.clone(), NodePlan::empty(&n.name)))
        .collect();
    for (subnet, cidr, nat, hops) in egress {
        for hop in hops {
            let Some(node) = nodes.iter().find(|n| n.join_ip == Some(hop)) else {
                continue;
            };
            let p = plans.get_mut(&node.name).expect("every node has a plan");
            p.forwarding = true;
            p.routes.insert(NodeRoute {
                destination: cidr,
                via: cluster.router_join_ip,
                device: cluster.mgmt_port.clone(),
            });
            if nat {
                p.masquerade.insert(Masquerade {
                    subnet: subnet.clone(),
                    source: cidr,
                    except: internal.clone(),
                });
            }
        }
    }
    plans
}

#[cfg(test)]
mod tests {
    use ovn_model::nb::LogicalRouter;
    use ovn_model::snapshot::Typed;
    use ovsdb::replica::Replica;

    use super::*;
    use crate::{EgressIntent, Planner};

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn nodes() -> Vec<NodeState> {
        (1..=3)
            .map(|i| {
                NodeState::new(format!("node{i}"), format!("chassis-{i}"))
                    .with_join_ip(format!("100.64.0.{}", i + 1).parse().unwrap())
            })
            .collect()
    }

    type Plans = BTreeMap<String, NodePlan>;

    /// Plans `intents`, runs the plan on an in-memory NB, and returns (the plan's node plans,
    /// each node's plan derived from the rows alone).
    fn planned_and_derived(intents: &[EgressIntent], nodes: &[NodeState]) -> (Plans, Plans) {
        let (planned, derived, _) = with_observed(intents, nodes);
        (planned, derived)
    }

    /// [`planned_and_derived`], and the observed rows.
    fn with_observed(intents: &[EgressIntent], nodes: &[NodeState]) -> (Plans, Plans, Observed) {
        let cluster = Cluster::default();
        let mut nb = Replica::new(ovn_model::nb::schema());
        let mut setup = ovn_model::plan::Plan::nb();
        setup.insert(&LogicalRouter::new("ovn-cluster")).unwrap();
        setup.apply(&mut nb).unwrap();
        let observe = |nb: &Replica| Observed::from_snapshot(&Typed::new(&nb.snapshot()), &cluster);
        let plan = Planner::new(cluster.clone())
            .plan(intents, nodes, &observe(&nb))
            .unwrap();
        assert!(plan.rejected().is_empty(), "{:?}", plan.rejected());
        plan.nb().apply(&mut nb).unwrap();
        let observed = observe(&nb);
        let internal = cluster.internal_destinations(intents.iter().map(|i| i.cidr));
        let derived = nodes
            .iter()
            .map(|n| {
                let p = node_plan_from_observed(&cluster, n, &observed, &internal);
                (n.name.clone(), p)
            })
            .collect();
        (plan.node_plans().clone(), derived, observed)
    }

    fn route(cidr: &str) -> NodeRoute {
        NodeRoute {
            destination: net(cidr),
            via: "100.64.0.1".parse().unwrap(),
            device: "ovn0".into(),
        }
    }

    #[test]
    fn distributed_the_nodes_with_pods_route_and_masquerade() {
        let nodes = nodes();
        let intents = [EgressIntent::distributed("ls1", net("10.16.1.0/24"))
            .with_pod("node1", "10.16.1.10".parse().unwrap())
            .with_pod("node2", "10.16.1.11".parse().unwrap())];
        let (planned, derived) = planned_and_derived(&intents, &nodes);
        assert_eq!(planned, derived);
        for n in ["node1", "node2"] {
            let p = &derived[n];
            assert!(p.forwarding);
            assert_eq!(p.routes, [route("10.16.1.0/24")].into());
            let m = p.masquerade.first().expect("a masquerade rule");
            assert_eq!((m.subnet.as_str(), m.source), ("ls1", net("10.16.1.0/24")));
            assert_eq!(
                m.except,
                [
                    net("10.16.0.0/16"),
                    net("10.16.1.0/24"),
                    net("100.64.0.0/16")
                ]
                .into()
            );
        }
        // node3 has no pod of the subnet: no policy names it.
        assert_eq!(derived["node3"], NodePlan::empty("node3"));
    }

    #[test]
    fn centralized_the_active_and_the_standby_gateway_hold_the_same() {
        let nodes = nodes();
        let intents = [EgressIntent::centralized(
            "ls2",
            net("10.16.2.0/24"),
            ["node2", "node3"],
        )];
        let (planned, derived) = planned_and_derived(&intents, &nodes);
        assert_eq!(planned, derived);
        assert_eq!(derived["node2"].routes, [route("10.16.2.0/24")].into());
        assert_eq!(derived["node2"].masquerade.len(), 1);
        assert_eq!(derived["node3"], {
            let mut p = derived["node2"].clone();
            p.node = "node3".into();
            p
        });
        assert!(derived["node1"].is_empty() && !derived["node1"].forwarding);
    }

    #[test]
    fn without_nat_outgoing_a_gateway_routes_and_does_not_masquerade() {
        let nodes = nodes();
        let intents = [
            EgressIntent::centralized("ls3", net("10.16.3.0/24"), ["node1"])
                .with_nat_outgoing(false),
        ];
        let (planned, derived) = planned_and_derived(&intents, &nodes);
        assert_eq!(planned, derived);
        let p = &derived["node1"];
        assert!(p.forwarding);
        assert_eq!(p.routes, [route("10.16.3.0/24")].into());
        assert!(p.masquerade.is_empty());
    }

    #[test]
    fn a_node_that_is_no_next_hop_or_has_no_join_address_gets_an_empty_plan() {
        let nodes = nodes();
        let intents = [EgressIntent::centralized(
            "ls1",
            net("10.16.1.0/24"),
            ["node1"],
        )];
        let (_, derived, observed) = with_observed(&intents, &nodes);
        assert!(!derived["node1"].is_empty());
        assert_eq!(derived["node2"], NodePlan::empty("node2"));
        // The same rows, read by node1 before it knows its join address.
        let cluster = Cluster::default();
        let internal = cluster.internal_destinations([net("10.16.1.0/24")]);
        let unjoined = NodeState::new("node1", "chassis-1");
        let plan = node_plan_from_observed(&cluster, &unjoined, &observed, &internal);
        assert_eq!(plan, NodePlan::empty("node1"));
    }
}
