//! The lab against the real daemons: connectivity, teardown, parallel labs.

use std::net::IpAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use ovn_testbed::{
    Central, CentralOptions, ExternalNet, Lab, Node, Pinger, Pod, PodConfig, SourceEcho,
    namespaces_with_prefix, process_alive, source_seen_by,
};

const UP: Duration = Duration::from_secs(20);

/// Two subnets on one router, and pods: (name, node index, switch, port, mac, ip/len, gw).
const PODS: &[(&str, usize, &str, &str, &str, &str, &str)] = &[
    (
        "a1",
        0,
        "ls1",
        "a1",
        "0a:00:00:00:01:0a",
        "10.0.1.10/24",
        "10.0.1.1",
    ),
    (
        "a2",
        1,
        "ls1",
        "a2",
        "0a:00:00:00:01:0b",
        "10.0.1.11/24",
        "10.0.1.1",
    ),
    (
        "b1",
        2,
        "ls2",
        "b1",
        "0a:00:00:00:02:0a",
        "10.0.2.10/24",
        "10.0.2.1",
    ),
    (
        "b2",
        0,
        "ls2",
        "b2",
        "0a:00:00:00:02:0b",
        "10.0.2.11/24",
        "10.0.2.1",
    ),
];

struct Topology {
    pods: Vec<Pod>,
    nodes: Vec<Node>,
    central: Central,
}

fn two_subnets(lab: &Lab, node_count: usize) -> Topology {
    let central = lab
        .start_central(CentralOptions::default())
        .expect("central");
    let nodes: Vec<Node> = (0..node_count)
        .map(|_| lab.start_node(&central).expect("node"))
        .collect();
    central.add_router("lr0").unwrap();
    central
        .add_routed_switch(
            "lr0",
            "ls1",
            "10.0.1.1/24".parse().unwrap(),
            "0a:00:00:00:01:01",
        )
        .unwrap();
    central
        .add_routed_switch(
            "lr0",
            "ls2",
            "10.0.2.1/24".parse().unwrap(),
            "0a:00:00:00:02:01",
        )
        .unwrap();
    let mut pods = Vec::new();
    for &(name, node, switch, port, mac, ip, gw) in PODS {
        let node = &nodes[node % node_count];
        let ip: ipnet::IpNet = ip.parse().unwrap();
        central
            .add_switch_port(switch, port, mac, ip.addr())
            .unwrap();
        let config = PodConfig::new(name, port, mac, ip).with_gateway(gw.parse().unwrap());
        pods.push(node.add_pod(config).expect("pod"));
    }
    for pod in &pods {
        central.wait_port_up(pod.port(), UP).expect("port up");
    }
    central.sync_hv().unwrap();
    Topology {
        pods,
        nodes,
        central,
    }
}

#[test]
fn three_node_lab_has_no_ping_loss_across_nodes_and_subnets() {
    let Some(lab) = Lab::for_test() else { return };
    let topo = two_subnets(&lab, 3);
    let pairs: Vec<(&Pod, &Pod)> = topo
        .pods
        .iter()
        .flat_map(|from| topo.pods.iter().map(move |to| (from, to)))
        .filter(|(from, to)| from.name() != to.name())
        .collect();
    assert_eq!(pairs.len(), 12);
    std::thread::scope(|s| {
        for (from, to) in pairs {
            s.spawn(move || {
                let stats = from.ping(to.ip(), 5).unwrap();
                assert_eq!(
                    stats.loss_percent(),
                    0.0,
                    "{} -> {} ({}): {stats:?}",
                    from.name(),
                    to.name(),
                    to.ip()
                );
            });
        }
    });
}

#[test]
fn tcp_data_flows_between_pods_on_different_nodes() {
    let Some(lab) = Lab::for_test() else { return };
    let topo = two_subnets(&lab, 3);
    let (a1, a2, b1) = (&topo.pods[0], &topo.pods[1], &topo.pods[2]);
    // Same subnet, node 1 -> node 2; and across the router, node 1 -> node 3.
    for (from, to) in [(a1, a2), (a1, b1)] {
        let t = from.tcp_throughput(to, Duration::from_millis(500)).unwrap();
        assert!(
            t.bytes > 1_000_000,
            "{} -> {}: only {} bytes",
            from.name(),
            to.name(),
            t.bytes
        );
        assert!(t.kbit_per_s() > 0.0);
    }
}

/// Everything of a lab that must be gone after it is dropped.
struct Footprint {
    prefix: String,
    pids: Vec<i32>,
    namespaces: Vec<String>,
    dir: std::path::PathBuf,
}

impl Footprint {
    fn of(lab: &Lab, topo: &Topology) -> Footprint {
        let mut pids = topo.central.pids();
        for node in &topo.nodes {
            pids.extend(node.pids());
        }
        Footprint {
            prefix: format!("ovk{}-", lab.id()),
            pids,
            namespaces: lab.namespaces().unwrap(),
            dir: lab.dir().to_path_buf(),
        }
    }

    fn assert_gone(&self) {
        for pid in &self.pids {
            assert!(!process_alive(*pid), "daemon {pid} of the lab still runs");
        }
        let left = namespaces_with_prefix(&self.prefix).unwrap();
        assert!(left.is_empty(), "namespaces left behind: {left:?}");
        for ns in &self.namespaces {
            assert!(
                !std::path::Path::new("/etc/netns").join(ns).exists(),
                "/etc/netns/{ns}"
            );
        }
        assert!(
            !self.dir.exists(),
            "lab directory {} left behind",
            self.dir.display()
        );
    }
}

#[test]
fn dropping_a_lab_stops_every_daemon_and_deletes_its_namespaces() {
    let Some(lab) = Lab::for_test() else { return };
    let topo = two_subnets(&lab, 2);
    let external = lab.start_external_net().unwrap();
    external.connect(&topo.nodes[0]).unwrap();
    let footprint = Footprint::of(&lab, &topo);
    // central (3) + 2 nodes (3 each), pods (4), underlay and external namespaces.
    assert_eq!(footprint.pids.len(), 9, "{:?}", footprint.pids);
    assert_eq!(
        footprint.namespaces.len(),
        2 + 4 + 2,
        "{:?}",
        footprint.namespaces
    );
    drop((topo, external, lab));
    footprint.assert_gone();
}

#[test]
fn a_test_that_panics_midway_still_tears_its_lab_down() {
    let Some(lab) = Lab::for_test() else { return };
    let mut footprint = None;
    let result = catch_unwind(AssertUnwindSafe(|| {
        let topo = two_subnets(&lab, 2);
        footprint = Some(Footprint::of(&lab, &topo));
        drop(lab);
        panic!("deliberate failure in the middle of a test");
    }));
    assert!(result.is_err(), "the closure must have panicked");
    let footprint = footprint.expect("the lab came up before the panic");
    assert!(!footprint.pids.is_empty() && !footprint.namespaces.is_empty());
    footprint.assert_gone();
}

#[test]
fn two_labs_run_side_by_side() {
    let Some(first) = Lab::for_test() else { return };
    let second = Lab::new().unwrap();
    assert_ne!(first.id(), second.id());
    let (one, two) = std::thread::scope(|s| {
        let one = s.spawn(|| two_subnets(&first, 2));
        let two = s.spawn(|| two_subnets(&second, 2));
        (one.join().unwrap(), two.join().unwrap())
    });
    // The same addresses live in both labs, isolated from each other.
    for topo in [&one, &two] {
        let stats = topo.pods[0].ping(topo.pods[2].ip(), 3).unwrap();
        assert_eq!(stats.loss_percent(), 0.0, "{stats:?}");
    }
    let (ns1, ns2) = (first.namespaces().unwrap(), second.namespaces().unwrap());
    assert!(ns1.iter().all(|n| !ns2.contains(n)));
}

#[test]
fn killing_a_nodes_data_plane_cuts_its_pods_off_until_restarted() {
    let Some(lab) = Lab::for_test() else { return };
    let mut topo = two_subnets(&lab, 2);
    let (a1, a2) = (topo.pods[0].ip(), topo.pods[1].ip());
    assert_eq!(topo.pods[0].ping(a2, 3).unwrap().loss_percent(), 0.0);
    let pids = topo.nodes[1].pids();
    let pinger = Pinger::start(topo.pods[0].netns(), a2, Duration::from_millis(50)).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    topo.nodes[1].kill_data_plane().unwrap();
    assert!(!topo.nodes[1].data_plane_running());
    assert_eq!(topo.pods[0].ping(a2, 3).unwrap().loss_percent(), 100.0);
    // The node's database survived.
    assert!(topo.nodes[1].ovsdb().pid().is_some());
    assert!(pids.iter().filter(|p| process_alive(**p)).count() == 1);
    topo.nodes[1].restart_data_plane().unwrap();
    topo.central.wait_port_up("a2", UP).unwrap();
    let recovered = (0..50).any(|_| topo.pods[1].ping(a1, 1).is_ok_and(|s| s.received == 1));
    assert!(recovered, "a2 never reached a1 again after the restart");
    std::thread::sleep(Duration::from_millis(500));
    let timeline = pinger.stop();
    let outages = timeline.outages(Duration::from_millis(500));
    assert_eq!(
        outages.len(),
        1,
        "one outage while the data plane was down: {outages:?}"
    );
    assert!(
        timeline.replies.len() > 10,
        "replies before and after the outage"
    );
    assert!(
        *timeline.replies.last().unwrap() > outages[0].0 + outages[0].1 - Duration::from_millis(1)
    );
}

#[test]
fn external_network_is_reachable_from_a_connected_node_only() {
    let Some(lab) = Lab::for_test() else { return };
    let central = lab.start_central(CentralOptions::default()).unwrap();
    let n1 = lab.start_node(&central).unwrap();
    let n2 = lab.start_node(&central).unwrap();
    let external = lab.start_external_net().unwrap();
    let ip = external.connect(&n1).unwrap();
    let host: IpAddr = external.host_ip();
    let ping = |node: &Node| {
        let out = node
            .netns()
            .exec_raw("ping", &["-n", "-c", "2", "-W", "1", &host.to_string()]);
        out.unwrap().status.success()
    };
    assert!(ping(&n1), "node1 ({ip}) cannot reach the external host");
    assert!(
        !ping(&n2),
        "node2 is not connected and must not reach the external host"
    );
    let echo = SourceEcho::start(external.netns(), (host, 8080).into()).unwrap();
    let seen = source_seen_by(n1.netns(), echo.addr(), Duration::from_secs(5)).unwrap();
    assert_eq!(
        seen,
        IpAddr::V4(ip),
        "the external host sees node1's external address"
    );
    assert_eq!(echo.seen(), vec![IpAddr::V4(ip)]);
    let mappings = n1
        .vsctl(&[
            "get",
            "open_vswitch",
            ".",
            "external_ids:ovn-bridge-mappings",
        ])
        .unwrap();
    assert_eq!(
        mappings.trim().trim_matches('"'),
        format!("{}:br-ext", ExternalNet::PHYSNET)
    );
}
