//! OVN-native egress in a real OVN lab: a distributed gateway port on the external network
//! (localnet), SNAT to its address, a pod's own SNAT address, a pod's floating IP reachable
//! from the external host, and
//! the port moving to the next gateway chassis (BFD, 300 ms timers set by the planner) when
//! the highest-priority one dies. The time the move takes is measured and printed (the goal
//! is 3 s; not asserted).

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use common::{EgressLab, NATIVE_IP};
use gateway::{BfdTimers, EgressIntent, Planner};
use ovn_testbed::Pinger;

const FIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 18, 0, 200));
const POD_SNAT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 18, 0, 201));

#[test]
fn snat_fip_and_gateway_chassis_failover() {
    let Some(mut lab) = EgressLab::start(3, &[1, 2]) else {
        return;
    };
    // Faster BFD than OVN's 1 s x 3, set by the planner in NB_Global.
    let cluster = lab.planner.cluster().clone();
    let native = cluster.native().cloned().expect("a native gateway");
    lab.planner = Planner::new(cluster.with_native(native.with_bfd(BfdTimers::new(300, 3))));
    let cidr = lab.add_subnet(4);
    let plain = lab.add_pod(2, 4, 1);
    let floating = lab.add_pod(2, 4, 2);
    let snatted = lab.add_pod(2, 4, 3);
    let intents = [EgressIntent::ovn_native("ls4", cidr)
        .with_fip(floating.ip(), FIP)
        .with_pod_snat(snatted.ip(), POD_SNAT)];
    let plan = lab.reconcile(&intents);
    for line in plan.explain() {
        println!("{line}");
    }
    assert!(plan.rejected().is_empty());
    assert!(plan.node_plans().values().all(|p| p.is_empty()));
    let mult = lab
        .central
        .nbctl(&["get", "NB_Global", ".", "options:bfd-mult"])
        .expect("read back");
    assert_eq!(mult.trim().trim_matches('"'), "3");
    lab.sync();
    assert!(lab.plan(&intents).is_empty());
    assert!(
        lab.wait_bfd(Duration::from_secs(30)),
        "BFD up on every tunnel"
    );
    assert_eq!(lab.native_chassis().as_deref(), Some("chassis-1"));

    let _echo = lab.echo();
    let seen = lab.source_seen(&plain, Duration::from_secs(10));
    println!("pod without FIP seen as {seen:?}");
    assert_eq!(seen, Some(IpAddr::V4(NATIVE_IP)));
    let seen = lab.source_seen(&floating, Duration::from_secs(10));
    println!("pod with FIP seen as {seen:?}");
    assert_eq!(seen, Some(FIP));
    let seen = lab.source_seen(&snatted, Duration::from_secs(10));
    println!("pod with its own SNAT address seen as {seen:?}");
    assert_eq!(seen, Some(POD_SNAT));
    let ping = ovn_testbed::ping(lab.external.netns(), FIP, 3).expect("ping the FIP");
    assert!(
        ping.loss_percent() < 100.0,
        "FIP reachable from the external host"
    );

    let inbound = Pinger::start(lab.external.netns(), FIP, Duration::from_millis(50)).unwrap();
    let outbound = Pinger::start(
        plain.netns(),
        lab.external.host_ip(),
        Duration::from_millis(50),
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let killed_at = Instant::now();
    lab.nodes[0].kill_data_plane().expect("kill node1");
    let mut moved_after = None;
    while killed_at.elapsed() < Duration::from_secs(30) {
        if lab.native_chassis().as_deref() == Some("chassis-2") {
            moved_after = Some(killed_at.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let moved_after = moved_after.expect("the gateway port moves to chassis-2");
    let seen = lab.source_seen(&plain, Duration::from_secs(15));
    assert_eq!(
        seen,
        Some(IpAddr::V4(NATIVE_IP)),
        "SNAT resumes on the backup chassis"
    );
    std::thread::sleep(Duration::from_millis(500));
    let inbound = inbound.stop();
    let outbound = outbound.stop();
    println!(
        "gateway port bound to chassis-2 {moved_after:?} after the kill; FIP inbound outages {:?} (longest gap {:?}); SNAT outbound outages {:?} (longest gap {:?})",
        inbound.outages(Duration::from_millis(300)),
        inbound.longest_gap(),
        outbound.outages(Duration::from_millis(300)),
        outbound.longest_gap()
    );
    assert!(!inbound.replies.is_empty() && inbound.replies.last() > Some(&moved_after));
    assert!(
        lab.plan(&intents).is_empty(),
        "OVN moved the port; the plan has nothing to do"
    );
}
