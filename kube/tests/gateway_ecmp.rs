//! Centralized ECMP egress in a real OVN lab: flows spread over both gateways; when one dies,
//! the health loop drops it from the set and traffic goes on through the other.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::EgressLab;
use gateway::EgressIntent;
use ovn_testbed::Pinger;

#[test]
fn ecmp_spreads_flows_over_both_gateways() {
    let Some(mut lab) = EgressLab::start(3, &[]) else {
        return;
    };
    let cidr = lab.add_subnet(5);
    let pods: Vec<_> = (1..=4).map(|j| lab.add_pod(2, 5, j)).collect();
    let intents = [EgressIntent::centralized("ls5", cidr, ["node1", "node2"]).with_ecmp()];
    let plan = lab.reconcile(&intents);
    for line in plan.explain() {
        println!("{line}");
    }
    lab.sync();
    assert!(lab.plan(&intents).is_empty());

    let echo = lab.echo();
    let mut seen = BTreeSet::new();
    for _ in 0..8 {
        for pod in &pods {
            seen.extend(lab.source_seen(pod, Duration::from_secs(10)));
        }
    }
    println!(
        "sources seen over 32 flows: {seen:?} ({} connections logged)",
        echo.seen().len()
    );
    assert_eq!(
        seen,
        BTreeSet::from([lab.external_ip(0), lab.external_ip(1)])
    );

    let pinger = Pinger::start(
        pods[0].netns(),
        lab.external.host_ip(),
        Duration::from_millis(50),
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let killed_at = Instant::now();
    lab.nodes[0].kill_data_plane().expect("kill node1");
    let failover = lab
        .health_loop(2, &[0, 1], &intents, killed_at, 100)
        .expect("the probes find node1 down");
    for line in failover.plan.explain() {
        println!("failover: {line}");
    }
    assert_eq!(failover.plan.nb().steps().len(), 1);
    for pod in &pods {
        assert_eq!(
            lab.source_seen(pod, Duration::from_secs(15)),
            Some(lab.external_ip(1))
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let t = pinger.stop();
    println!(
        "ECMP: outages {:?}, longest gap {:?} (node1 declared down after {:?}, re-planned after {:?})",
        t.outages(Duration::from_millis(300)),
        t.longest_gap(),
        failover.detected_after,
        failover.replanned_after
    );
}
