//! The whole plugin with a real container runtime, as a cluster runs it: on a 3-node OVN lab,
//! `ovnkit controller` in manifest mode, `ovnkit agent` inside each node's namespace, and one
//! containerd per node (in the node's namespace) that runs the `ovnkit` binary as its CNI
//! plugin. Pods are created through CRI (`RunPodSandbox` and a container), as kubelet does.
//! They get the addresses the controller allocated, reach each other across nodes and
//! subnets, leave the cluster through their node's address, and get their QoS; they keep their traffic while a node's agent is killed, a pod
//! removed meanwhile leaves nothing once the agent is back, a new pod starts after it, and
//! removing every pod leaves nothing behind.

mod common;

use std::collections::BTreeMap;
use std::fs::{self};
use std::net::IpAddr;
use std::time::Duration;

use common::agent::{AgentProc, ECHO_PORT, source_seen};
use common::{Controller, pod, results, wait_for, write_manifest};
use ovn_testbed::{
    CentralOptions, CniConfig, Containerd, CriPod, ExternalNet, Lab, Node, PodSpec, SourceEcho,
    tcp_throughput,
};
use ovnkit::sandbox::procs::conflist;

/// Whether the node's namespace has a link called `name`.
fn node_has_link(node: &Node, name: &str) -> bool {
    node.netns()
        .exec_raw("ip", &["link", "show", name])
        .is_ok_and(|o| o.status.success())
}

/// Whether the node's `br-int` has a port called `name`.
fn has_ovs_port(node: &Node, name: &str) -> bool {
    node.vsctl(&["list-ports", "br-int"])
        .unwrap()
        .lines()
        .any(|p| p == name)
}

/// (namespace, name, node index, annotations)
type Spec = (
    &'static str,
    String,
    usize,
    Vec<(&'static str, &'static str)>,
);

const EGRESS_MBIT: f64 = 20.0;

fn specs() -> Vec<Spec> {
    let mut out: Vec<Spec> = Vec::new();
    for i in 0..3 {
        out.push(("default", format!("a-{i}"), i, Vec::new()));
        out.push(("web", format!("w-{i}"), (i + 1) % 3, Vec::new()));
    }
    out.push((
        "default",
        "limited".into(),
        0,
        vec![("ovn.kubernetes.io/egress_rate", "20")],
    ));
    // Scheduled from the start, started through CRI only after the agent's restart.
    out.push(("default", LATE.into(), 1, Vec::new()));
    out
}

const LATE: &str = "late";

/// Pings until one reply comes back, for up to 5 tries (the first packets of a new path may
/// be lost while flows are installed).
fn reaches(from: &CriPod, to: IpAddr) -> bool {
    (0..5).any(|_| from.ping(to, 1).is_ok_and(|s| s.loss_percent() < 100.0))
}

#[test]
fn pods_through_cri_get_their_addresses_reach_each_other_get_their_qos_outlive_an_agent_kill_and_leave_nothing()
 {
    let Some(lab) = Lab::for_test() else { return };
    let central = lab
        .start_central(CentralOptions::default())
        .expect("central");
    let nodes: Vec<Node> = (0..3)
        .map(|_| lab.start_node(&central).expect("node"))
        .collect();
    let manifests = lab.dir().join("manifests");
    let state = lab.dir().join("state");
    fs::create_dir_all(&manifests).unwrap();
    write_manifest(
        &manifests,
        "namespaces.yaml",
        &[
            common::namespace("default", &[]),
            common::namespace("web", &[("ovn.kubernetes.io/cidr", "10.17.0.0/24")]),
        ],
    );
    let node_docs: Vec<String> = nodes
        .iter()
        .map(|n| common::node(&n.name(), &n.chassis()))
        .collect();
    write_manifest(&manifests, "nodes.yaml", &node_docs);
    let specs = specs();
    let pod_docs: Vec<String> = specs
        .iter()
        .map(|(ns, name, node, ann)| pod(ns, name, &nodes[*node].name(), ann, None))
        .collect();
    write_manifest(&manifests, "pods.yaml", &pod_docs);
    let external = lab.start_external_net().expect("external net");
    for n in &nodes {
        external.connect(n).expect("external link");
    }
    let _controller = Controller::start(
        &central.nb_remote(),
        &manifests,
        &state,
        &lab.dir().join("controller.log"),
        &[],
    );
    let agents: Vec<AgentProc> = nodes
        .iter()
        .map(|n| AgentProc::start(&lab, &central, n))
        .collect();
    let runtimes: Vec<Containerd> = nodes
        .iter()
        .zip(&agents)
        .map(|(n, a)| {
            n.start_containerd(
                CniConfig::new(conflist(&a.socket))
                    .with_plugin("ovnkit", env!("CARGO_BIN_EXE_ovnkit")),
            )
            .expect("containerd")
        })
        .collect();

    // Pods through CRI, as kubelet creates them once the scheduler has placed them.
    let mut pods: BTreeMap<String, CriPod> = BTreeMap::new();
    for (ns, name, node, _) in specs.iter().filter(|s| s.1 != LATE) {
        let p = runtimes[*node]
            .run_pod(PodSpec::new(name).namespace(ns))
            .unwrap_or_else(|e| panic!("RunPodSandbox {ns}/{name}: {e}"));
        pods.insert(format!("{ns}/{name}"), p);
    }
    let allocated = results(&state, "pods.json");
    for (key, p) in &pods {
        let want: IpAddr = allocated[key]["ovn.kubernetes.io/ip_address"]
            .parse()
            .unwrap();
        assert_eq!(
            p.ip(),
            want,
            "{key}: the runtime reports the controller's address"
        );
        let eth0 = p
            .exec_in_netns("ip", &["-o", "addr", "show", "eth0"])
            .unwrap();
        assert!(eth0.contains(&want.to_string()), "{key}: {eth0}");
    }

    // Every pod reaches every other, across nodes and subnets.
    let mut unreachable = Vec::new();
    for (a, pa) in &pods {
        for (b, pb) in &pods {
            if a != b && !reaches(pa, pb.ip()) {
                unreachable.push(format!("{a} -> {b}"));
            }
        }
    }
    assert!(unreachable.is_empty(), "unreachable: {unreachable:?}");

    // Each pod leaves the cluster through its own node (distributed egress), masqueraded to
    // the node's external address.
    let echo = SourceEcho::start(
        external.netns(),
        std::net::SocketAddr::new(external.host_ip(), ECHO_PORT),
    )
    .expect("echo server");
    for (ns, name, node, _) in specs.iter().filter(|s| s.1 != LATE) {
        let seen = source_seen(
            &pods[&format!("{ns}/{name}")],
            &external,
            Duration::from_secs(20),
        );
        let want = IpAddr::V4(ExternalNet::node_ip(&nodes[*node]));
        assert_eq!(seen, Some(want), "{ns}/{name} leaves through its node");
    }
    drop(echo);

    // The QoS-annotated pod sends at its egress rate (OVN's meter), within 20%.
    let limited = &pods["default/limited"];
    let peer = &pods["default/a-1"];
    // Over 5 s, so that the meter's burst (as large as the rate) weighs little in the average.
    let measured = tcp_throughput(limited, peer, peer.ip(), Duration::from_secs(5))
        .expect("throughput")
        .mbit_per_s();
    println!("default/limited sends at {measured:.1} Mbit/s (egress_rate {EGRESS_MBIT})");
    assert!(
        (measured - EGRESS_MBIT).abs() <= EGRESS_MBIT * 0.2,
        "{measured:.1} Mbit/s against {EGRESS_MBIT}"
    );
    let free = tcp_throughput(peer, limited, limited.ip(), Duration::from_secs(2))
        .expect("throughput")
        .mbit_per_s();
    println!("default/a-1 sends at {free:.1} Mbit/s (no annotation)");
    assert!(
        free > EGRESS_MBIT * 1.5,
        "an unannotated pod is not limited"
    );

    // The agent of node2 is killed under running pods: they keep their traffic. A pod of
    // that node removed meanwhile (its CNI DEL finds no agent and succeeds, as the spec asks)
    // leaves nothing once the agent is back, and a new pod starts there.
    let mut agents = agents;
    drop(agents.remove(1));
    let (a0, w0) = (&pods["default/a-0"], &pods["web/w-0"]);
    assert!(
        reaches(a0, w0.ip()) && reaches(w0, a0.ip()),
        "traffic without the agent"
    );
    let a0_ip = a0.ip();
    let gone = pods.remove("default/a-1").unwrap();
    // The host end of the veth goes with the pod's namespace; its OVS port stays.
    let gone_port = format!("{}_h", &gone.sandbox_id()[..11]);
    gone.remove().expect("removal with the agent down");
    assert!(
        has_ovs_port(&nodes[1], &gone_port),
        "nothing could remove the OVS port without the agent"
    );
    agents.insert(1, AgentProc::start(&lab, &central, &nodes[1]));
    wait_for(
        Duration::from_secs(20),
        "the restarted agent cleans up",
        || {
            (!has_ovs_port(&nodes[1], &gone_port) && !node_has_link(&nodes[1], &gone_port))
                .then_some(())
        },
    );
    let late = runtimes[1]
        .run_pod(PodSpec::new(LATE))
        .expect("a new pod after the agent's restart");
    assert_eq!(
        late.ip().to_string(),
        results(&state, "pods.json")["default/late"]["ovn.kubernetes.io/ip_address"]
    );
    assert!(reaches(&late, a0_ip), "the new pod has traffic");
    pods.insert(format!("default/{LATE}"), late);

    // Removal through CRI (StopPodSandbox runs CNI DEL) leaves nothing on the nodes.
    for (key, p) in std::mem::take(&mut pods) {
        p.remove().unwrap_or_else(|e| panic!("removing {key}: {e}"));
    }
    for (node, runtime) in nodes.iter().zip(&runtimes) {
        assert!(runtime.list_pod_sandboxes().unwrap().is_empty());
        // Every port on br-int bound to a logical switch port, but the node's own ovn0.
        let ports = node
            .vsctl(&[
                "--bare",
                "--columns=name",
                "find",
                "Interface",
                "external_ids:iface-id!=\"\"",
            ])
            .unwrap();
        let left: Vec<&str> = ports.split_whitespace().filter(|p| *p != "ovn0").collect();
        assert!(left.is_empty(), "{}: pod ports left: {left:?}", node.name());
        // ovn-controller keeps linux-noop QoS rows of its own; none may carry ovnkit's tags.
        for table in ["QoS", "Queue"] {
            let ids = node
                .vsctl(&["--bare", "--columns=external_ids", "list", table])
                .unwrap();
            assert!(
                !ids.contains("ovnkit.io/"),
                "{}: {table} rows of ovnkit left: {ids}",
                node.name()
            );
        }
        let links = node.netns().exec("ip", &["-o", "link", "show"]).unwrap();
        let veths: Vec<&str> = links.lines().filter(|l| l.contains("_h@")).collect();
        assert!(veths.is_empty(), "{}: veths left: {veths:?}", node.name());
        let netns_files = fs::read_dir(runtime.netns_dir())
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(netns_files, 0, "{}: pod namespaces left", node.name());
    }
}
