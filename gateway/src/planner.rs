//! The planning itself: intents -> wanted rows -> a diff against the owned rows, and the node
//! plans derived from the egress policies that will be in place.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use ovn_model::nb::{self, LogicalRouterPolicyAction, NatType, NbGlobal};
use ovn_model::owner::{self, Key, Object};
use ovn_model::plan::{Change, RowTarget};
use ovn_model::reconcile::{self, OwnedRow};
use ovsdb::{Datum, Mutation, Table};

use crate::config::{Cluster, NodeState};
use crate::error::{IntentError, PlanError};
use crate::intent::{EgressIntent, GatewayType};
use crate::nodes::{held_plans, node_plans};
use crate::observed::Observed;
use crate::plan::Plan;
use crate::wanted::{Draft, Wanted, cluster_key, encode, role, subnet_key, want};

/// Priority of the policy that keeps cluster-internal traffic on the normal routing path.
pub const INTERNAL_PRIORITY: i64 = 31000;
/// Priority of the policies that reroute a subnet's traffic to its gateways.
pub const EGRESS_PRIORITY: i64 = 29000;
/// `Gateway_Chassis` priority of the native gateway's first chassis (the next ones count down).
pub const TOP_CHASSIS_PRIORITY: i64 = 100;

fn family(net: &IpNet) -> &'static str {
    match net {
        IpNet::V4(_) => "ip4",
        IpNet::V6(_) => "ip6",
    }
}

pub(crate) fn plan(
    cluster: &Cluster,
    intents: &[EgressIntent],
    nodes: &[NodeState],
    observed: &Observed,
) -> Result<Plan, PlanError> {
    cluster.validate()?;
    let by_name: BTreeMap<&str, &NodeState> = nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    let mut plan = Plan {
        nb: ovn_model::plan::Plan::nb(),
        nodes: BTreeMap::new(),
        before: BTreeMap::new(),
        rejected: Vec::new(),
        notes: Vec::new(),
    };
    let mut drafts: Vec<Draft> = Vec::new();

    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for i in intents {
        *count.entry(&i.subnet).or_default() += 1;
    }
    for (subnet, _) in count.iter().filter(|(_, n)| **n > 1) {
        plan.rejected.push(IntentError::Duplicate {
            subnet: (*subnet).to_owned(),
        });
    }

    let internal = internal_destinations(cluster, intents);
    for intent in intents.iter().filter(|i| count[i.subnet.as_str()] == 1) {
        match subnet_wants(cluster, intent, &by_name, &mut plan.notes) {
            Ok(w) => drafts.extend(w),
            Err(e) => plan.rejected.push(e),
        }
    }
    drafts.extend(global_wants(cluster, intents, &by_name, &internal)?);
    let wants = encode(cluster, observed, drafts)?;

    bfd_step(cluster, observed, &mut plan)?;
    let rejected: BTreeSet<&str> = plan.rejected.iter().map(IntentError::subnet).collect();
    // The rows of subnets set aside are neither wanted nor deleted: they stay as they are.
    let set_aside = |o: &OwnedRow| rejected.iter().any(|s| o.key.object == Object::subnet(s));
    let owned: Vec<OwnedRow> = observed
        .owned
        .iter()
        .filter(|o| !set_aside(o))
        .cloned()
        .collect();
    let kept: Vec<&OwnedRow> = observed.owned.iter().filter(|o| set_aside(o)).collect();
    plan.nodes = node_plans(cluster, nodes, &wants, &kept, &internal);
    reconcile::diff(&mut plan.nb, wants, owned)?;
    for (name, held) in held_plans(cluster, nodes, observed, &internal) {
        let next = &plan.nodes[&name];
        let both = held.merged(next);
        if both != held {
            plan.before.insert(name, both);
        }
    }
    Ok(plan)
}

/// The `NB_Global` options for the native gateway's BFD timers, when they differ: the keys
/// are deleted, then inserted (a map `insert` keeps an existing key's value); the other options
/// stay.
fn bfd_step(cluster: &Cluster, observed: &Observed, plan: &mut Plan) -> Result<(), PlanError> {
    let Some(timers) = cluster.native.as_ref().and_then(|n| n.bfd) else {
        return Ok(());
    };
    let wanted = timers.options();
    let Some(global) = &observed.nb_global else {
        plan.notes
            .push("NB_Global not observed: BFD timers left as they are".to_owned());
        return Ok(());
    };
    if wanted.iter().all(|(k, v)| global.options.get(k) == Some(v)) {
        return Ok(());
    }
    let keys = Datum::set(wanted.keys().map(String::as_str));
    let map = Datum::map(wanted.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    plan.nb.push(
        Change::Mutate {
            table: NbGlobal::TABLE,
            target: RowTarget::Uuid(global.uuid),
            mutations: vec![
                Mutation::delete("options", keys),
                Mutation::insert("options", map),
            ],
        },
        format!(
            "gateway chassis BFD: {} ms rx, {} ms tx, down after {} missed",
            timers.min_rx_ms, timers.min_tx_ms, timers.mult
        ),
    )?;
    Ok(())
}

/// Destinations never sent to a gateway: the cluster CIDRs, the join subnet and every subnet.
fn internal_destinations(cluster: &Cluster, intents: &[EgressIntent]) -> BTreeSet<IpNet> {
    cluster.internal_destinations(intents.iter().map(|i| i.cidr))
}

fn contradiction(intent: &EgressIntent, reason: &str) -> IntentError {
    IntentError::Contradictory {
        subnet: intent.subnet.clone(),
        reason: reason.to_owned(),
    }
}

/// Checks what can contradict itself in an intent, whatever the nodes.
fn check_modes(intent: &EgressIntent) -> Result<(), IntentError> {
    let t = intent.gateway_type;
    if t != GatewayType::Centralized && !intent.gateway_nodes.is_empty() {
        return Err(contradiction(
            intent,
            &format!(
                "{} egress names gateway nodes {:?}",
                t.as_str(),
                intent.gateway_nodes
            ),
        ));
    }
    if t != GatewayType::Centralized && intent.ecmp {
        return Err(contradiction(
            intent,
            &format!("ECMP asked for {} egress", t.as_str()),
        ));
    }
    if t == GatewayType::Centralized && intent.gateway_nodes.is_empty() {
        return Err(contradiction(
            intent,
            "centralized egress without gateway nodes",
        ));
    }
    if t != GatewayType::OvnNative && !intent.fips.is_empty() {
        return Err(contradiction(
            intent,
            &format!(
                "floating IPs need the OVN-native gateway, not {} egress",
                t.as_str()
            ),
        ));
    }
    if t != GatewayType::OvnNative && !intent.snats.is_empty() {
        return Err(contradiction(
            intent,
            &format!(
                "pod SNAT addresses need the OVN-native gateway, not {} egress",
                t.as_str()
            ),
        ));
    }
    if let Some(s) = intent
        .snats
        .iter()
        .find(|s| intent.fips.iter().any(|f| f.logical_ip == s.logical_ip))
    {
        return Err(contradiction(
            intent,
            &format!(
                "pod {} has both a floating IP and a SNAT address {} (the floating IP already translates its traffic)",
                s.logical_ip, s.external_ip
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    if let Some(g) = intent.gateway_nodes.iter().find(|g| !seen.insert(*g)) {
        return Err(contradiction(
            intent,
            &format!("gateway node {g:?} listed twice"),
        ));
    }
    if let Some(p) = intent.pods.iter().find(|p| !intent.cidr.contains(&p.ip)) {
        return Err(contradiction(
            intent,
            &format!("pod {} is outside the subnet's CIDR {}", p.ip, intent.cidr),
        ));
    }
    Ok(())
}

fn join_ip(intent: &EgressIntent, node: &NodeState) -> Result<IpAddr, IntentError> {
    node.join_ip.ok_or_else(|| IntentError::NoJoinAddress {
        subnet: intent.subnet.clone(),
        node: node.name.clone(),
    })
}

fn egress_row(matches: String, nexthops: &[IpAddr]) -> Wanted {
    Wanted::Policy(nb::LogicalRouterPolicy {
        priority: EGRESS_PRIORITY,
        match_: matches,
        action: LogicalRouterPolicyAction::Reroute,
        nexthops: nexthops.iter().map(ToString::to_string).collect(),
        ..Default::default()
    })
}

fn egress_key(intent: &EgressIntent, node: Option<&str>) -> Key {
    let key = subnet_key(&intent.subnet, role::EGRESS);
    match node {
        Some(n) => key.with_id(n),
        None => key,
    }
}

/// The egress data that lets a node plan be derived from a policy row alone.
fn with_egress_tags(mut d: Draft, intent: &EgressIntent) -> Draft {
    let ids = d.value.external_ids();
    ids.insert(owner::EGRESS_CIDR.to_owned(), intent.cidr.to_string());
    ids.insert(
        owner::EGRESS_NAT.to_owned(),
        intent.nat_outgoing.to_string(),
    );
    d
}

fn subnet_wants(
    cluster: &Cluster,
    intent: &EgressIntent,
    nodes: &BTreeMap<&str, &NodeState>,
    notes: &mut Vec<String>,
) -> Result<Vec<Draft>, IntentError> {
    check_modes(intent)?;
    let fam = family(&intent.cidr);
    let snat = if intent.nat_outgoing {
        "masqueraded"
    } else {
        "not masqueraded"
    };
    match intent.gateway_type {
        GatewayType::Distributed => {
            let mut per_node: BTreeMap<&str, BTreeSet<IpAddr>> = BTreeMap::new();
            for p in &intent.pods {
                per_node.entry(&p.node).or_default().insert(p.ip);
            }
            let mut out = Vec::new();
            for (name, ips) in per_node {
                let node = nodes.get(name).ok_or_else(|| IntentError::UnknownPodNode {
                    subnet: intent.subnet.clone(),
                    node: name.to_owned(),
                    ip: *ips.iter().next().expect("a node is listed for a pod"),
                })?;
                let hop = join_ip(intent, node)?;
                let list: Vec<String> = ips.iter().map(ToString::to_string).collect();
                let m = format!("{fam}.src == {{{}}}", list.join(", "));
                let what = format!(
                    "subnet {}: {} pod(s) on {name} leave through {name} ({hop}), {snat}",
                    intent.subnet,
                    ips.len()
                );
                let w = want(egress_key(intent, Some(name)), egress_row(m, &[hop]), what);
                out.push(with_egress_tags(w, intent));
            }
            Ok(out)
        }
        GatewayType::Centralized => {
            let mut all = Vec::new();
            for g in &intent.gateway_nodes {
                let node =
                    nodes
                        .get(g.as_str())
                        .ok_or_else(|| IntentError::UnknownGatewayNode {
                            subnet: intent.subnet.clone(),
                            node: g.clone(),
                        })?;
                all.push((node, join_ip(intent, node)?));
            }
            let healthy: Vec<_> = all.iter().filter(|(n, _)| n.healthy).collect();
            let chosen: Vec<_> = if intent.ecmp {
                healthy
            } else {
                healthy.into_iter().take(1).collect()
            };
            if chosen.is_empty() {
                return Err(IntentError::NoHealthyGateway {
                    subnet: intent.subnet.clone(),
                    gateways: intent.gateway_nodes.clone(),
                });
            }
            let names: Vec<&str> = chosen.iter().map(|(n, _)| n.name.as_str()).collect();
            let down: Vec<&str> = all
                .iter()
                .filter(|(n, _)| !n.healthy)
                .map(|(n, _)| n.name.as_str())
                .collect();
            let how = if intent.ecmp {
                "ECMP over"
            } else {
                "active-backup, active"
            };
            let mut what = format!(
                "subnet {}: centralized ({how} {}), {snat}",
                intent.subnet,
                names.join(", ")
            );
            if !down.is_empty() {
                what.push_str(&format!("; unhealthy: {}", down.join(", ")));
            }
            notes.push(what.clone());
            let hops: Vec<IpAddr> = chosen.iter().map(|(_, ip)| *ip).collect();
            let standby: Vec<String> = all
                .iter()
                .filter(|(n, ip)| n.healthy && !hops.contains(ip))
                .map(|(_, ip)| ip.to_string())
                .collect();
            let m = format!("{fam}.src == {}", intent.cidr);
            let mut w = with_egress_tags(
                want(egress_key(intent, None), egress_row(m, &hops), what),
                intent,
            );
            if !standby.is_empty() {
                w.value
                    .external_ids()
                    .insert(owner::EGRESS_STANDBY.to_owned(), standby.join(","));
            }
            Ok(vec![w])
        }
        GatewayType::OvnNative => {
            let Some(native) = &cluster.native else {
                return Err(IntentError::NoNativeGateway {
                    subnet: intent.subnet.clone(),
                });
            };
            let mut out = Vec::new();
            if intent.nat_outgoing {
                out.push(want(
                    subnet_key(&intent.subnet, role::SNAT),
                    Wanted::Nat(nb::Nat {
                        type_: NatType::Snat,
                        external_ip: native.address.to_string(),
                        logical_ip: intent.cidr.to_string(),
                        ..Default::default()
                    }),
                    format!(
                        "subnet {}: SNAT to {} on gateway port {}",
                        intent.subnet, native.address, native.port
                    ),
                ));
            }
            for p in &intent.snats {
                out.push(want(
                    subnet_key(&intent.subnet, role::POD_SNAT).with_id(p.logical_ip.to_string()),
                    Wanted::Nat(nb::Nat {
                        type_: NatType::Snat,
                        external_ip: p.external_ip.to_string(),
                        logical_ip: p.logical_ip.to_string(),
                        ..Default::default()
                    }),
                    format!(
                        "subnet {}: pod {} leaves as {}",
                        intent.subnet, p.logical_ip, p.external_ip
                    ),
                ));
            }
            for f in &intent.fips {
                out.push(want(
                    subnet_key(&intent.subnet, role::FIP).with_id(f.external_ip.to_string()),
                    Wanted::Nat(nb::Nat {
                        type_: NatType::DnatAndSnat,
                        external_ip: f.external_ip.to_string(),
                        logical_ip: f.logical_ip.to_string(),
                        ..Default::default()
                    }),
                    format!(
                        "subnet {}: floating IP {} for pod {}",
                        intent.subnet, f.external_ip, f.logical_ip
                    ),
                ));
            }
            Ok(out)
        }
    }
}

fn global_wants(
    cluster: &Cluster,
    intents: &[EgressIntent],
    nodes: &BTreeMap<&str, &NodeState>,
    internal: &BTreeSet<IpNet>,
) -> Result<Vec<Draft>, PlanError> {
    let mut out = Vec::new();
    let join_based = intents
        .iter()
        .any(|i| i.gateway_type != GatewayType::OvnNative);
    if join_based {
        let mut parts = Vec::new();
        for fam in ["ip4", "ip6"] {
            let nets: Vec<String> = internal
                .iter()
                .filter(|n| family(n) == fam)
                .map(ToString::to_string)
                .collect();
            if !nets.is_empty() {
                parts.push(format!("{fam}.dst == {{{}}}", nets.join(", ")));
            }
        }
        out.push(want(
            cluster_key(role::INTERNAL),
            Wanted::Policy(nb::LogicalRouterPolicy {
                priority: INTERNAL_PRIORITY,
                match_: parts.join(" || "),
                action: LogicalRouterPolicyAction::Allow,
                ..Default::default()
            }),
            "cluster-internal destinations are routed normally, never to a gateway".to_owned(),
        ));
    }
    let next_hop = cluster.native.as_ref().and_then(|n| n.next_hop);
    if join_based || next_hop.is_some() {
        let hop = next_hop.unwrap_or(cluster.router_join_ip);
        let prefix = if hop.is_ipv4() { "0.0.0.0/0" } else { "::/0" };
        out.push(want(
            cluster_key(role::DEFAULT_ROUTE),
            Wanted::Route(nb::LogicalRouterStaticRoute {
                ip_prefix: prefix.to_owned(),
                nexthop: hop.to_string(),
                ..Default::default()
            }),
            format!("default route via {hop} (egress policies pick the real gateway)"),
        ));
    }
    if let Some(native) = &cluster.native {
        for (i, name) in native.chassis.iter().enumerate() {
            let node = nodes
                .get(name.as_str())
                .ok_or_else(|| PlanError::UnknownChassisNode {
                    port: native.port.clone(),
                    node: name.clone(),
                })?;
            let priority = TOP_CHASSIS_PRIORITY - i64::try_from(i).unwrap_or(TOP_CHASSIS_PRIORITY);
            out.push(want(
                cluster_key(role::CHASSIS).with_id(name.as_str()),
                Wanted::Chassis(nb::GatewayChassis {
                    name: format!("{}-{}", native.port, node.chassis),
                    chassis_name: node.chassis.clone(),
                    priority: priority.max(0),
                    ..Default::default()
                }),
                format!(
                    "gateway port {} may run on {} ({}) with priority {}",
                    native.port,
                    name,
                    node.chassis,
                    priority.max(0)
                ),
            ));
        }
    }
    Ok(out)
}
