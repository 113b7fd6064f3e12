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
