//! Distributed egress in a real OVN lab: pods on two nodes reach the external host, which
//! sees each node's own external address; re-planning is empty and applying a node plan twice
//! changes nothing.

mod common;

use std::time::Duration;

use common::EgressLab;
use gateway::EgressIntent;

#[test]
fn pods_leave_through_their_own_node_with_its_address() {
    let Some(lab) = EgressLab::start(2, &[]) else {
        return;
    };
    let cidr = lab.add_subnet(1);
    let a = lab.add_pod(0, 1, 1);
    let b = lab.add_pod(1, 1, 2);
    let intents = [EgressIntent::distributed("ls1", cidr)
        .with_pod("node1", a.ip())
        .with_pod("node2", b.ip())];
    let plan = lab.reconcile(&intents);
    for line in plan.explain() {
        println!("{line}");
    }
    assert!(plan.rejected().is_empty());
    lab.sync();

    let _echo = lab.echo();
    let seen_a = lab.source_seen(&a, Duration::from_secs(10));
    let seen_b = lab.source_seen(&b, Duration::from_secs(10));
    println!("external host sees pod on node1 as {seen_a:?}, pod on node2 as {seen_b:?}");
    assert_eq!(seen_a, Some(lab.external_ip(0)));
    assert_eq!(seen_b, Some(lab.external_ip(1)));

    let again = lab.plan(&intents);
    assert!(
        again.is_empty(),
        "re-plan after apply: {:#?}",
        again.explain()
    );
    let before: Vec<String> = (0..2).map(|i| lab.node_state(i)).collect();
    for i in 0..2 {
        let p = again.node_plan(&format!("node{}", i + 1)).unwrap();
        let applied = lab.apply_node(i, p).expect("apply again");
        assert!(applied.routes_added.is_empty() && applied.routes_removed.is_empty());
    }
    let after: Vec<String> = (0..2).map(|i| lab.node_state(i)).collect();
    assert_eq!(before, after);
    assert!(
        before
            .iter()
            .all(|s| s.contains("masquerade") && s.contains("10.16.1.0/24 via 100.64.0.1"))
    );

    // The intent goes away: OVN rows and node state are removed.
    let gone = lab.reconcile(&[]);
    assert!(!gone.is_empty());
    assert!(lab.plan(&[]).is_empty());
    assert!(
        (0..2).all(|i| lab.node_state(i).trim().is_empty()),
        "{:?}",
        (0..2).map(|i| lab.node_state(i)).collect::<Vec<_>>()
    );
}
