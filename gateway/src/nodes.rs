//! Node plans, derived from the egress policies that will be in place: the wanted ones, and
//! the observed ones of subnets set aside (so those keep their node state too).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use ovsdb::Row;

use crate::config::{Cluster, Node};
use crate::node_plan::{Masquerade, NodePlan, NodeRoute};
use crate::observed::Observed;
use crate::tags::{self, Key, Role};
use crate::wanted::Want;

/// (subnet, CIDR, masquerade?, next hops and standby gateways) of an egress policy row.
fn egress_of(key: &Key, row: &Row) -> Option<(String, IpNet, bool, Vec<IpAddr>)> {
    if key.role != Role::Egress {
        return None;
    }
    let ids = tags::string_map(row, "external_ids");
    let cidr: IpNet = ids.get(tags::CIDR)?.parse().ok()?;
    let nat = ids.get(tags::NAT).is_some_and(|v| v == "true");
    let mut hops: Vec<IpAddr> = row
        .get("nexthops")
        .map(|d| d.atoms().filter_map(|a| a.as_str()?.parse().ok()).collect())
        .unwrap_or_default();
    if let Some(standby) = ids.get(tags::STANDBY) {
        hops.extend(
            standby
                .split(',')
                .filter_map(|ip| ip.parse::<IpAddr>().ok()),
        );
    }
    Some((key.subnet.clone()?, cidr, nat, hops))
}

/// What each node holds while the observed egress policies are in place.
pub(crate) fn held_plans(
    cluster: &Cluster,
    nodes: &[Node],
    observed: &Observed,
    internal: &BTreeSet<IpNet>,
) -> BTreeMap<String, NodePlan> {
    let egress = observed
        .owned
        .iter()
        .filter_map(|o| egress_of(&o.key, &o.row));
    plans_of(cluster, nodes, egress, internal)
}

pub(crate) fn node_plans(
    cluster: &Cluster,
    nodes: &[Node],
    wants: &[Want],
    observed: &Observed,
    rejected: &BTreeSet<&str>,
    internal: &BTreeSet<IpNet>,
) -> BTreeMap<String, NodePlan> {
    let kept = observed
        .owned
        .iter()
        .filter(|o| {
            o.key
                .subnet
                .as_deref()
                .is_some_and(|s| rejected.contains(s))
        })
        .map(|o| (&o.key, &o.row));
    let egress = wants
        .iter()
        .map(|w| (&w.key, &w.row))
        .chain(kept)
        .filter_map(|(k, r)| egress_of(k, r));
    plans_of(cluster, nodes, egress, internal)
}

/// Node plans that carry `egress` (subnet, CIDR, masquerade?, carrying nodes' join addresses).
fn plans_of(
    cluster: &Cluster,
    nodes: &[Node],
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
