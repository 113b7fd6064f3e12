//! Centralized active-backup egress in a real OVN lab: the external host sees the gateway
//! node's address for pods on every node; when the gateway node's data plane dies, a health
//! loop that probes the gateways re-plans, and traffic resumes through the backup after one
//! outage (measured and printed, not asserted).

mod common;

use std::time::{Duration, Instant};

use common::EgressLab;
use gateway::EgressIntent;
use ovn_testbed::Pinger;

#[test]
fn active_backup_moves_to_the_backup_when_the_gateway_dies() {
    let Some(mut lab) = EgressLab::start(3, &[]) else {
        return;
    };
    let cidr = lab.add_subnet(2);
    let pods: Vec<_> = (0..3).map(|n| lab.add_pod(n, 2, n as u8 + 1)).collect();
    let intents = [EgressIntent::centralized("ls2", cidr, ["node1", "node2"])];
    let plan = lab.reconcile(&intents);
    for line in plan.explain() {
        println!("{line}");
    }
    assert!(plan.rejected().is_empty());
    // node2 is on standby: it holds node1's route and masquerade before any failover, so the
    // failover below only changes OVN's next hop.
    let (p1, p2) = (
        plan.node_plan("node1").unwrap(),
        plan.node_plan("node2").unwrap(),
    );
    assert!(!p1.is_empty());
    assert_eq!((&p1.routes, &p1.masquerade), (&p2.routes, &p2.masquerade));
    lab.sync();
    assert!(
        lab.plan(&intents).is_empty(),
        "re-plan after apply is empty"
    );

    let echo = lab.echo();
    for (n, pod) in pods.iter().enumerate() {
        let seen = lab.source_seen(pod, Duration::from_secs(10));
        println!("pod on node{} seen as {seen:?}", n + 1);
        assert_eq!(
            seen,
            Some(lab.external_ip(0)),
            "every pod leaves through node1"
        );
    }

    // Kill the active gateway's data plane; pods on node2 and node3 keep pinging out.
    let pingers: Vec<Pinger> = pods[1..]
        .iter()
        .map(|p| {
            Pinger::start(p.netns(), lab.external.host_ip(), Duration::from_millis(50)).unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let killed_at = Instant::now();
    lab.nodes[0].kill_data_plane().expect("kill node1");
    let failover = lab
        .health_loop(2, &[0, 1], &intents, killed_at, 100)
        .expect("the probes find node1 down");
    for line in failover.plan.explain() {
        println!("failover: {line}");
    }
    assert_eq!(
        failover.plan.nb().steps().len(),
        1,
        "one change moves the subnet"
    );
    assert!(!lab.health["node1"]);
    for pod in &pods[1..] {
        assert_eq!(
            lab.source_seen(pod, Duration::from_secs(15)),
            Some(lab.external_ip(1)),
            "traffic resumes through node2"
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    for (p, n) in pingers.into_iter().zip([2, 3]) {
        let t = p.stop();
        // Detection alone takes two failed probes of 300 ms each, so the failover gap is well
        // above 500 ms; shorter hiccups of a loaded machine are not counted.
        let outages = t.outages(Duration::from_millis(500));
        println!(
            "pod on node{n}: outages {outages:?}, longest gap {:?} (probes declared node1 down after {:?} in {} rounds, re-planned after {:?})",
            t.longest_gap(),
            failover.detected_after,
            failover.rounds,
            failover.replanned_after
        );
        assert_eq!(outages.len(), 1, "a single outage");
    }
    assert!(lab.plan(&intents).is_empty());
    assert!(echo.seen().contains(&lab.external_ip(1)));
}
