//! Golden plans: for each egress mode, the explanation, the node plans and the transaction
//! JSON, checked in under `tests/golden/`. Scenarios run in sequence, each plan applied to the
//! in-memory observed state (`Observed::apply`) before the next.
//!
//! After an intended change of the planner's output, regenerate with
//! `OVNKIT_BLESS=1 cargo test -p gateway --test golden` and review the diff.

mod common;

use std::path::Path;

use common::{cluster, fresh, ip, net, nodes};
use gateway::{EgressIntent, IntentError, Node, Observed, Plan, Planner};

fn render(plan: &Plan) -> String {
    let mut out = String::new();
    for line in plan.explain() {
        out.push_str(&line);
        out.push('\n');
    }
    if !plan.node_plans_before().is_empty() {
        out.push_str("--- held before the transaction ---\n");
        for before in plan.node_plans_before().values() {
            for line in before.explain() {
                out.push_str(&line);
                out.push('\n');
            }
        }
    }
    let txn = plan.clone().into_transaction().expect("the plan validates");
    out.push_str("--- transaction ---\n");
    out.push_str(&serde_json::to_string_pretty(&txn.to_params()).unwrap());
    out.push('\n');
    out
}

fn check(name: &str, plan: &Plan) {
    let actual = render(plan);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}.txt"));
    if std::env::var("OVNKIT_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} is missing: run with OVNKIT_BLESS=1", path.display()));
    assert_eq!(
        actual,
        expected,
        "plan {name} differs from {} (OVNKIT_BLESS=1 regenerates it)",
        path.display()
    );
}

/// Plans, checks the golden file, applies, and checks that re-planning is empty.
fn step(name: &str, intents: &[EgressIntent], nodes: &[Node], observed: &mut Observed) -> Plan {
    let planner = Planner::new(cluster());
    let plan = planner.plan(intents, nodes, observed).unwrap();
    check(name, &plan);
    observed.apply(&plan, name.len() as u64);
    let again = planner.plan(intents, nodes, observed).unwrap();
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
    assert_eq!(plan.steps().len(), 1);
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
    assert_eq!(plan.steps().len(), 1);
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
    let _ = step("native_fip_removed", &[n], &nodes, &mut o);
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
    assert!(
        o.owned
            .iter()
            .all(|r| r.key.role == gateway::tags::Role::Chassis)
    );
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
        let plan = planner.plan(&[intent], &nodes, &fresh(&c)).unwrap();
        assert_eq!(plan.rejected().len(), 1);
        assert_eq!(plan.rejected()[0].to_string(), message);
        assert!(
            plan.steps()
                .iter()
                .all(|s| s.why.contains("cluster-internal")
                    || s.why.contains("default route")
                    || s.why.contains("gateway port"))
        );
    }
}

#[test]
fn bfd_timers_are_set_once_and_leave_other_options_alone() {
    let mut c = cluster();
    if let Some(n) = c.native.as_mut() {
        n.bfd = Some(gateway::BfdTimers::new(300, 3));
    }
    let mut o = fresh(&c);
    o.nb_global = Some(gateway::GlobalOptions {
        uuid: ovsdb::Uuid::from_u128(0xc),
        options: [
            ("bfd-mult".to_owned(), "5".to_owned()),
            ("other".to_owned(), "x".to_owned()),
        ]
        .into(),
    });
    let planner = Planner::new(c);
    let plan = planner.plan(&[], &nodes(2), &o).unwrap();
    check("native_bfd", &plan);
    o.apply(&plan, 1);
    assert_eq!(o.nb_global.as_ref().unwrap().options["bfd-mult"], "3");
    assert_eq!(o.nb_global.as_ref().unwrap().options["other"], "x");
    assert!(planner.plan(&[], &nodes(2), &o).unwrap().is_empty());
}
