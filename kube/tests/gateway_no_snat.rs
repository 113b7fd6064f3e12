//! Egress without SNAT (`nat_outgoing=false`) in a real OVN lab: pod addresses leave
//! unchanged; the external host, given a route back to the pod CIDR, sees each pod's own
//! address.

mod common;

use std::time::Duration;

use common::EgressLab;
use gateway::EgressIntent;

#[test]
fn the_external_host_sees_pod_addresses() {
    let Some(lab) = EgressLab::start(2, &[]) else {
        return;
    };
    let cidr = lab.add_subnet(3);
    let a = lab.add_pod(0, 3, 1);
    let b = lab.add_pod(1, 3, 2);
    let intents = [EgressIntent::distributed("ls3", cidr)
        .without_snat()
        .with_pod("node1", a.ip())
        .with_pod("node2", b.ip())];
    let plan = lab.reconcile(&intents);
    for line in plan.explain() {
        println!("{line}");
    }
    assert!(
        plan.node_plans()
            .values()
            .all(|p| p.masquerade.is_empty() && !p.routes.is_empty())
    );
    lab.sync();
    // The external network routes the pod CIDR back into the cluster through node1.
    lab.external
        .netns()
        .exec(
            "ip",
            &[
                "route",
                "add",
                &cidr.to_string(),
                "via",
                &lab.external_ip(0).to_string(),
            ],
        )
        .expect("route back");

    let _echo = lab.echo();
    for pod in [&a, &b] {
        let seen = lab.source_seen(pod, Duration::from_secs(10));
        println!("pod {} seen as {seen:?}", pod.ip());
        assert_eq!(seen, Some(pod.ip()));
    }
    assert!(lab.plan(&intents).is_empty());
}
