//! Properties of the planner over random clusters: exactly one egress path per subnet per
//! node, node plans that match the OVN rows, idempotent re-planning, bad intents that leave
//! the subnet's path alone, and health changes that stay within those rules.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use common::{Db, cluster, fresh, ip, nodes};
use gateway::{EgressIntent, GatewayType, NodeState, Plan, Planner};
use ovn_model::owner::Object;
use ovn_model::reconcile::OwnedRow;
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct World {
    nodes: Vec<NodeState>,
    intents: Vec<EgressIntent>,
}

fn intent(
    k: u8,
    kind: u8,
    gws: Vec<u8>,
    ecmp: bool,
    nat: bool,
    pods: Vec<u8>,
    fip: bool,
) -> EgressIntent {
    let cidr = format!("10.16.{k}.0/24").parse().unwrap();
    let name = format!("ls{k}");
    let mut i = match kind {
        0 => EgressIntent::distributed(name, cidr),
        1 => EgressIntent::centralized(name, cidr, gws.iter().map(|g| format!("node{g}"))),
        _ => EgressIntent::ovn_native(name, cidr),
    };
    if ecmp && kind == 1 {
        i = i.with_ecmp();
    }
    i = i.with_nat_outgoing(nat);
    for (j, n) in pods.iter().enumerate() {
        i = i.with_pod(format!("node{n}"), ip(&format!("10.16.{k}.{}", 10 + j)));
    }
    if fip && kind == 2 {
        i = i.with_fip(
            ip(&format!("10.16.{k}.10")),
            ip(&format!("10.18.0.{}", 100 + k)),
        );
    }
    i
}

/// Gateways and pods only on nodes 1..=n (well-formed intents, unless `bad` picks node 9).
fn world() -> impl Strategy<Value = World> {
    (2u8..=5)
        .prop_flat_map(|n| {
            let health = prop::collection::vec(any::<bool>(), n as usize);
            let one = (
                0u8..3,
                prop::collection::vec(1..=n, 1..=3),
                any::<bool>(),
                any::<bool>(),
                prop::collection::vec(1..=n, 0..4),
                any::<bool>(),
            );
            (Just(n), health, prop::collection::vec(one, 0..5))
        })
        .prop_map(|(n, health, specs)| {
            let mut nodes = nodes(n);
            for (node, h) in nodes.iter_mut().zip(health) {
                node.healthy = h;
            }
            let intents = specs
                .into_iter()
                .enumerate()
                .map(|(k, (kind, mut gws, ecmp, nat, pods, fip))| {
                    gws.sort_unstable();
                    gws.dedup();
                    intent(k as u8 + 1, kind, gws, ecmp, nat, pods, fip)
                })
                .collect();
            World { nodes, intents }
        })
}

fn planner() -> Planner {
    Planner::new(cluster())
}

/// The owned rows of `subnet` doing `role`.
fn rows_of<'a>(owned: &'a [OwnedRow], subnet: &str, role: &str) -> Vec<&'a OwnedRow> {
    owned
        .iter()
        .filter(|r| r.key.role == role && r.key.object == Object::subnet(subnet))
        .collect()
}

/// Checks the egress invariants of `plan` applied to `db` (the state after the plan).
fn check_paths(w: &World, plan: &Plan, db: &Db) -> Result<(), TestCaseError> {
    let owned = db.owned();
    let rejected: BTreeSet<&str> = plan.rejected().iter().map(|e| e.subnet()).collect();
    let join: BTreeMap<IpAddr, &NodeState> =
        w.nodes.iter().map(|n| (n.join_ip.unwrap(), n)).collect();
    for i in w
        .intents
        .iter()
        .filter(|i| !rejected.contains(i.subnet.as_str()))
    {
        let policies = rows_of(&owned, &i.subnet, "egress");
        let pod_nodes: BTreeSet<&str> = i.pods.iter().map(|p| p.node.as_str()).collect();
        for n in &w.nodes {
            let paths = policies
                .iter()
                .filter(|r| match i.gateway_type {
                    GatewayType::Distributed => r.key.id.as_deref() == Some(&n.name),
                    _ => r.key.id.is_none(),
                })
                .count();
            let expected = match i.gateway_type {
                GatewayType::Distributed => usize::from(pod_nodes.contains(n.name.as_str())),
                GatewayType::Centralized => 1,
                GatewayType::OvnNative => 0,
            };
            prop_assert_eq!(paths, expected, "subnet {} node {}", &i.subnet, &n.name);
        }
        let snat = rows_of(&owned, &i.subnet, "snat").len();
        prop_assert_eq!(
            snat,
            usize::from(i.gateway_type == GatewayType::OvnNative && i.nat_outgoing)
        );
        // The nodes that carry the subnet are the policies' next hops, and for centralized
        // subnets every healthy gateway (next hops and standbys, so that a failover changes
        // OVN only); they masquerade iff the subnet asks for it.
        let mut carriers = BTreeSet::new();
        for r in &policies {
            let hops = r.row.as_ref().and_then(|row| row.get("nexthops")).unwrap();
            prop_assert!(!hops.is_empty());
            for h in hops.atoms() {
                let node = join[&h.as_str().unwrap().parse::<IpAddr>().unwrap()];
                if i.gateway_type == GatewayType::Centralized {
                    prop_assert!(node.healthy);
                }
                carriers.insert(node.name.as_str());
            }
        }
        if i.gateway_type == GatewayType::Centralized {
            let healthy: BTreeSet<&str> = w
                .nodes
                .iter()
                .filter(|n| n.healthy && i.gateway_nodes.contains(&n.name))
                .map(|n| n.name.as_str())
                .collect();
            prop_assert!(carriers.is_subset(&healthy));
            carriers = healthy;
        }
        for n in &w.nodes {
            let p = plan.node_plan(&n.name).unwrap();
            let routed = p.routes.iter().any(|r| r.destination == i.cidr);
            let masq = p.masquerade.iter().any(|m| m.source == i.cidr);
            prop_assert_eq!(routed, carriers.contains(n.name.as_str()));
            prop_assert_eq!(masq, routed && i.nat_outgoing);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn one_path_per_subnet_per_node_and_replanning_is_empty(w in world()) {
        let c = cluster();
        let mut o = fresh(&c);
        let plan = planner().plan(&w.intents, &w.nodes, &o.observed()).unwrap();
        let _ = plan.nb().validated(ovn_model::nb::schema()).unwrap();
        o.apply(&plan);
        check_paths(&w, &plan, &o)?;
        let again = planner().plan(&w.intents, &w.nodes, &o.observed()).unwrap();
        prop_assert!(again.is_empty(), "{:#?}", again.explain());
        prop_assert_eq!(again.node_plans(), plan.node_plans());
        prop_assert!(again.node_plans_before().is_empty(), "nothing to add once applied");
    }

    #[test]
    fn health_changes_keep_the_invariants_in_one_plan(w in world(), flips in prop::collection::vec(any::<bool>(), 5)) {
        let c = cluster();
        let mut o = fresh(&c);
        let plan = planner().plan(&w.intents, &w.nodes, &o.observed()).unwrap();
        o.apply(&plan);
        let mut w2 = w.clone();
        for (n, f) in w2.nodes.iter_mut().zip(flips) {
            n.healthy ^= f;
        }
        let moved = planner().plan(&w2.intents, &w2.nodes, &o.observed()).unwrap();
        let _ = moved.nb().validated(ovn_model::nb::schema()).unwrap();
        // Health only ever changes next hops: no insert, no delete, at most one update per subnet.
        let previously: BTreeSet<&str> = plan.rejected().iter().map(|e| e.subnet()).collect();
        let now: BTreeSet<&str> = moved.rejected().iter().map(|e| e.subnet()).collect();
        if previously == now {
            let only_updates = moved.nb().steps().iter().all(|s| matches!(s.change, ovn_model::plan::Change::Update { .. }));
            prop_assert!(only_updates);
            prop_assert!(moved.nb().steps().len() <= w.intents.len());
        }
        // Make before break: what a node holds before the transaction covers what it held
        // and what it will hold.
        for (name, held) in plan.node_plans() {
            let next = &moved.node_plans()[name];
            let before = moved.node_plans_before().get(name).unwrap_or(held);
            prop_assert!(held.routes.is_subset(&before.routes) && next.routes.is_subset(&before.routes));
            prop_assert!(held.masquerade.is_subset(&before.masquerade) && next.masquerade.is_subset(&before.masquerade));
            prop_assert!(before.forwarding || !(held.forwarding || next.forwarding));
        }
        o.apply(&moved);
        check_paths(&w2, &moved, &o)?;
        prop_assert!(planner().plan(&w2.intents, &w2.nodes, &o.observed()).unwrap().is_empty());
    }

    #[test]
    fn a_bad_intent_leaves_its_subnet_alone(w in world(), victim in any::<prop::sample::Index>()) {
        prop_assume!(!w.intents.is_empty());
        let c = cluster();
        let mut o = fresh(&c);
        let plan = planner().plan(&w.intents, &w.nodes, &o.observed()).unwrap();
        o.apply(&plan);
        let v = victim.index(w.intents.len());
        let subnet = w.intents[v].subnet.clone();
        let mut bad = w.intents.clone();
        bad[v] = EgressIntent::centralized(subnet.clone(), bad[v].cidr, ["node9"]);
        let after = planner().plan(&bad, &w.nodes, &o.observed()).unwrap();
        prop_assert!(after.rejected().iter().any(|e| e.subnet() == subnet));
        let subnet_rows = |db: &Db| -> Vec<OwnedRow> {
            let mut rows: Vec<OwnedRow> = db.owned().into_iter().filter(|r| r.key.object == Object::subnet(&subnet)).collect();
            rows.sort_by_key(|r| r.uuid);
            rows
        };
        let before_rows = subnet_rows(&o);
        let mut o2 = o.clone();
        o2.apply(&after);
        prop_assert_eq!(subnet_rows(&o2), before_rows);
        let cidr = w.intents[v].cidr;
        for n in &w.nodes {
            let held = |p: &Plan| {
                let p = p.node_plan(&n.name).unwrap();
                (
                    p.routes.iter().any(|r| r.destination == cidr),
                    p.masquerade.iter().any(|m| m.source == cidr),
                )
            };
            prop_assert_eq!(held(&after), held(&plan), "node {} for {}", &n.name, &subnet);
        }
    }
}
