//! Golden plans: for each egress mode, the plan's review text (decisions, node plans, OVN
//! steps and the transaction JSON), checked in under `tests/golden/`. Scenarios run in
//! sequence, each plan applied with the in-memory transaction engine before the next.
//!
//! After an intended change of the planner's output, regenerate with
//! `OVNKIT_BLESS=1 cargo test -p ovnkit-gateway --test golden` and review the diff.

mod common;

use std::path::Path;

use common::{Db, cluster, fresh, ip, net, nodes};
use gateway::{EgressIntent, IntentError, NodeState, Plan, Planner};
use ovn_model::nb::NbGlobal;

fn check(name: &str, plan: &Plan) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    ovn_testbed::golden::check(&dir, name, &plan.review().expect("the plan builds"));
}

/// Plans, checks the golden file, applies, and checks that re-planning is empty.
fn step(name: &str, intents: &[EgressIntent], nodes: &[NodeState], db: &mut Db) -> Plan {
    let planner = Planner::new(db.cluster.clone());
    let plan = planner.plan(intents, nodes, &db.observed()).unwrap();
    check(name, &plan);
    db.apply(&plan);
    let again = planner.plan(intents, nodes, &db.observed()).unwrap();
    assert!(
        again.is_empty(),
        "{name}: re-plan is not empty: {:#?}",
        again.explain()
    );
    assert_eq!(again.node_plans(), plan.node_plans());
    plan
}

#[test]
fn distributed_then_no_snat() {
    let nodes = nodes(3);
    let mut o = fresh(&cluster());
    let d = EgressIntent::distributed("ls1", net("10.16.1.0/24"))
        .with_pod("node1", ip("10.16.1.10"))
        .with_pod("node1", ip("10.16.1.11"))
        .with_pod("node2", ip("10.16.1.12"));
    let _ = step("distributed", std::slice::from_ref(&d), &nodes, &mut o);
    let plan = step("distributed_no_snat", &[d.without_snat()], &nodes, &mut o);
    assert!(plan.node_plans().values().all(|p| p.masquerade.is_empty()));
}

#[test]
fn centralized_active_backup_fails_over_and_back() {
    let mut nodes = nodes(3);
    let mut o = fresh(&cluster());
    let c = [EgressIntent::centralized(
        "ls2",
        net("10.16.2.0/24"),
        ["node1", "node2"],
    )];
    let _ = step("centralized", &c, &nodes, &mut o);
    nodes[0].healthy = false;
    let plan = step("centralized_failover", &c, &nodes, &mut o);
    assert_eq!(plan.nb().steps().len(), 1);
    nodes[0].healthy = true;
    let _ = step("centralized_failback", &c, &nodes, &mut o);
}

#[test]
fn ecmp_drops_an_unhealthy_gateway() {
    let mut nodes = nodes(3);
    let mut o = fresh(&cluster());
    let c = [
        EgressIntent::centralized("ls5", net("10.16.5.0/24"), ["node1", "node2", "node3"])
            .with_ecmp(),
    ];
    let _ = step("ecmp", &c, &nodes, &mut o);
    nodes[1].healthy = false;
    let plan = step("ecmp_drop", &c, &nodes, &mut o);
    assert_eq!(plan.nb().steps().len(), 1);
    assert!(plan.node_plan("node2").unwrap().is_empty());
}

#[test]
fn ovn_native_snat_and_fips() {
    let nodes = nodes(3);
    let mut o = fresh(&cluster());
    let n = EgressIntent::ovn_native("ls4", net("10.16.4.0/24"));
    let _ = step(
        "native",
        &[n.clone().with_fip(ip("10.16.4.12"), ip("10.18.0.200"))],
        &nodes,
        &mut o,
    );
    let _ = step(
        "native_fip_removed",
        std::slice::from_ref(&n),
        &nodes,
        &mut o,
    );
    let _ = step(
        "native_pod_snat",
        &[n.clone().with_pod_snat(ip("10.16.4.13"), ip("10.18.0.201"))],
        &nodes,
        &mut o,
    );
    let _ = step("native_pod_snat_removed", &[n], &nodes, &mut o);
}

#[test]
fn a_bad_intent_keeps_the_current_path_and_a_removed_one_is_cleaned_up() {
    let nodes = nodes(3);
    let mut o = fresh(&cluster());
    let good = [
        EgressIntent::centralized("ls2", net("10.16.2.0/24"), ["node1"]),
        EgressIntent::distributed("ls1", net("10.16.1.0/24")).with_pod("node3", ip("10.16.1.10")),
    ];
    let before = step("two_subnets", &good, &nodes, &mut o);
    let bad = [
        EgressIntent::centralized("ls2", net("10.16.2.0/24"), ["node9"]),
        good[1].clone(),
    ];
    let plan = step("unknown_gateway_kept", &bad, &nodes, &mut o);
    assert!(plan.is_empty());
    assert_eq!(
        plan.rejected(),
        &[IntentError::UnknownGatewayNode {
            subnet: "ls2".into(),
            node: "node9".into()
        }]
    );
    assert_eq!(
        plan.node_plans(),
        before.node_plans(),
        "ls2 keeps node1 on the nodes too"
    );
    let _ = step("all_removed", &[], &nodes, &mut o);
    // Only the native gateway's chassis rows stay: the cluster, not a subnet, asks for them.
    assert!(o.owned().iter().all(|r| r.key.role == "chassis"));
}

#[test]
fn bad_intents_are_typed_errors_naming_the_subnet() {
    let mut nodes = nodes(2);
    nodes[1].join_ip = None;
    let c = cluster();
    let planner = Planner::new(c.clone());
    let cases = [
        (
            EgressIntent::centralized("a", net("10.16.1.0/24"), ["node2"]),
            "subnet a: node \"node2\" has no join address (its management port is not set up)",
        ),
        (
            EgressIntent::distributed("b", net("10.16.2.0/24")).with_gateway_nodes(["node1"]),
            "subnet b: contradictory egress modes: distributed egress names gateway nodes [\"node1\"]",
        ),
        (
            EgressIntent::distributed("c", net("10.16.3.0/24"))
                .with_fip(ip("10.16.3.2"), ip("10.18.0.9")),
            "subnet c: contradictory egress modes: floating IPs need the OVN-native gateway, not distributed egress",
        ),
        (
            EgressIntent::centralized("c2", net("10.16.7.0/24"), ["node1"])
                .with_pod_snat(ip("10.16.7.2"), ip("10.18.0.9")),
            "subnet c2: contradictory egress modes: pod SNAT addresses need the OVN-native gateway, not centralized egress",
        ),
        (
            EgressIntent::ovn_native("c3", net("10.16.8.0/24"))
                .with_fip(ip("10.16.8.2"), ip("10.18.0.9"))
                .with_pod_snat(ip("10.16.8.2"), ip("10.18.0.10")),
            "subnet c3: contradictory egress modes: pod 10.16.8.2 has both a floating IP and a SNAT address 10.18.0.10 (the floating IP already translates its traffic)",
        ),
        (
            EgressIntent::centralized("d", net("10.16.4.0/24"), Vec::<String>::new()),
            "subnet d: contradictory egress modes: centralized egress without gateway nodes",
        ),
        (
            EgressIntent::ovn_native("e", net("10.16.5.0/24")).with_ecmp(),
            "subnet e: contradictory egress modes: ECMP asked for ovn-native egress",
        ),
        (
            EgressIntent::distributed("f", net("10.16.6.0/24")).with_pod("node7", ip("10.16.6.2")),
            "subnet f: pod 10.16.6.2 runs on unknown node \"node7\"",
        ),
    ];
    for (intent, message) in cases {
        let plan = planner
            .plan(&[intent], &nodes, &fresh(&c).observed())
            .unwrap();
        assert_eq!(plan.rejected().len(), 1);
        assert_eq!(plan.rejected()[0].to_string(), message);
        assert!(
            plan.nb()
                .steps()
                .iter()
                .all(|s| s.why.contains("cluster-internal")
                    || s.why.contains("default route")
                    || s.why.contains("gateway port"))
        );
    }
}

#[test]
fn bfd_timers_are_set_once_and_leave_other_options_alone() {
    let base = cluster();
    let native = base.native().cloned().unwrap();
    let c = base.with_native(native.with_bfd(gateway::BfdTimers::new(300, 3)));
    let mut o = fresh(&c);
    let global = NbGlobal {
        options: [
            ("bfd-mult".to_owned(), "5".to_owned()),
            ("other".to_owned(), "x".to_owned()),
        ]
        .into(),
        ..Default::default()
    };
    let uuid = o.rows::<NbGlobal>()[0].uuid;
    let mut seed = ovn_model::plan::Plan::nb();
    seed.update::<NbGlobal>(uuid, &global, &["options"])
        .unwrap();
    seed.apply(&mut o.replica).unwrap();
    let planner = Planner::new(c);
    let plan = planner.plan(&[], &nodes(2), &o.observed()).unwrap();
    check("native_bfd", &plan);
    o.apply(&plan);
    let options = &o.rows::<NbGlobal>()[0].options;
    assert_eq!(options["bfd-mult"], "3");
    assert_eq!(options["other"], "x");
    assert!(
        planner
            .plan(&[], &nodes(2), &o.observed())
            .unwrap()
            .is_empty()
    );
}
