//! The node agent on a real OVN lab: a central and two nodes, the real controller binary in
//! manifest mode writing the pods' ports, and the real `ovnkit agent` binary running inside
//! each node's namespace. The tests talk to the agent's socket as the CNI plugin does and use
//! `ovs-vsctl`, `ip` and `ping` as the oracles.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::agent::{AgentProc, PodSpec, TestPod, added, call, cluster, controller_ip, request};
use common::{wait_for, write_manifest};
use ovn_testbed::{Netns, Node, ping};
use ovnkit_kube::cni::protocol::{Attachment, AttachmentRef, Command, Reply};

fn ovs_ports(node: &Node) -> String {
    node.vsctl(&["--bare", "--columns=name", "list", "Port"])
        .expect("ovs-vsctl")
}

/// The rows of `table` the QoS planner owns (ovn-controller makes `linux-noop` QoS rows of
/// its own).
fn ovs_rows(node: &Node, table: &str) -> usize {
    node.vsctl(&[
        "--bare",
        "--columns=_uuid",
        "find",
        table,
        "external_ids:\"ovnkit.io/owner\"=qos",
    ])
    .expect("ovs-vsctl")
    .split_whitespace()
    .count()
}

fn link_exists(ns: &Netns, name: &str) -> bool {
    ns.exec_raw("ip", &["link", "show", name])
        .expect("ip")
        .status
        .success()
}

const QOS: [(&str, &str); 1] = [("ovn.kubernetes.io/ingress_rate", "20")];

#[test]
fn four_pods_on_two_nodes_attach_ping_get_qos_check_and_delete_without_leftovers_and_the_node_reaches_a_pod_over_ovn0()
 {
    let specs: Vec<PodSpec> = (0..4)
        .map(|i| {
            let ann = if i == 0 { QOS.to_vec() } else { Vec::new() };
            (format!("p{i}"), i % 2, ann)
        })
        .collect();
    let Some(c) = cluster(&specs) else { return };
    let agents: Vec<AgentProc> = c
        .nodes
        .iter()
        .map(|n| AgentProc::start(&c.lab, &c.central, n))
        .collect();
    let pods: Vec<TestPod> = (0..4)
        .map(|i| TestPod::new(&c.lab, &format!("p{i}"), i))
        .collect();

    // ADD: the replies carry the controller's addresses.
    let mut ips: Vec<IpAddr> = Vec::new();
    let mut attachments: Vec<Attachment> = Vec::new();
    for (i, p) in pods.iter().enumerate() {
        let a = added(call(&agents[i % 2].socket, &p.req(Command::Add)), &p.name);
        attachments.push(a.clone());
        let ip = a.ips[0].address.addr();
        let want = wait_for(Duration::from_secs(30), "the controller's address", || {
            Some(controller_ip(&c.state, &p.name)).filter(|s| !s.is_empty())
        });
        assert_eq!(ip.to_string(), want, "{}: the reply's address", p.name);
        assert_eq!(a.host.name, p.host());
        assert_eq!(a.pod.mtu, Some(1400));
        assert!(a.ips[0].gateway.is_some());
        ips.push(ip);
    }
    c.central.sync_hv().expect("sync");

    // Pods on the two nodes reach each other.
    for (i, p) in pods.iter().enumerate() {
        let to = ips[(i + 1) % 4];
        let stats = ping(&p.ns, to, 3).expect("ping");
        assert_eq!(stats.loss_percent(), 0.0, "{} -> {to}", p.name);
    }

    // Node-side QoS for the annotated pod (on node 0): a linux-htb QoS and its Queue.
    let node0 = &c.nodes[0];
    assert_eq!(ovs_rows(node0, "QoS"), 1, "one QoS row on node0");
    let kind = node0
        .vsctl(&[
            "--bare",
            "--columns=type",
            "find",
            "QoS",
            "external_ids:\"ovnkit.io/owner\"=qos",
        ])
        .unwrap();
    assert_eq!(kind.trim(), "linux-htb");
    assert_eq!(ovs_rows(node0, "Queue"), 1, "one Queue row on node0");
    let qos_port = node0
        .vsctl(&["--bare", "--columns=qos", "list", "Port", &pods[0].host()])
        .unwrap();
    assert!(!qos_port.trim().is_empty(), "the pod's port uses the QoS");

    // The node reaches a pod over ovn0 (its management port on the join switch).
    wait_for(Duration::from_secs(30), "ovn0 configured on node0", || {
        let out = node0
            .netns()
            .exec("ip", &["-4", "addr", "show", "ovn0"])
            .ok()?;
        out.contains("100.64.").then_some(())
    });
    wait_for(
        Duration::from_secs(30),
        "the route to the pods' subnet on node0",
        || {
            let out = node0
                .netns()
                .exec("ip", &["route", "show", "proto", "142"])
                .ok()?;
            out.contains("10.16.0.0/16").then_some(())
        },
    );
    c.central
        .wait_port_up(&format!("node-{}", node0.name()), Duration::from_secs(30))
        .expect("node port up");
    c.central.sync_hv().expect("sync");
    let stats = ping(node0.netns(), ips[1], 3).expect("ping over ovn0");
    assert_eq!(stats.loss_percent(), 0.0, "node0 -> pod p1 over ovn0");

    // A new subnet: its route appears on the management port.
    write_manifest(
        &c.lab.dir().join("manifests"),
        "namespaces.yaml",
        &[
            common::namespace("default", &[]),
            common::namespace("web", &[("ovn.kubernetes.io/cidr", "10.17.0.0/24")]),
        ],
    );
    wait_for(
        Duration::from_secs(30),
        "the route to the new subnet on node0",
        || {
            let out = node0
                .netns()
                .exec("ip", &["route", "show", "proto", "142"])
                .ok()?;
            out.contains("10.17.0.0/24 via 100.64.0.1 dev ovn0")
                .then_some(())
        },
    );

    // CHECK passes on a live pod, and fails clearly once its veth is removed by hand.
    let p1 = &pods[1];
    let mut check = p1.req(Command::Check);
    check.prev_result = Some(attachments[1].clone());
    assert_eq!(call(&agents[1].socket, &check), Some(Reply::Done));
    c.nodes[1]
        .netns()
        .exec("ip", &["link", "del", &p1.host()])
        .unwrap();
    match call(&agents[1].socket, &p1.req(Command::Check)) {
        Some(Reply::Failed { failure }) => {
            assert!(failure.msg.contains("default/p1"), "{failure:?}");
            assert!(failure.msg.contains(&p1.host()), "{failure:?}");
        }
        other => panic!("CHECK after the veth was removed: {other:?}"),
    }

    // DEL leaves no veth, no OVS port, no QoS rows; a second DEL succeeds.
    for (i, p) in pods.iter().enumerate() {
        let node = &c.nodes[i % 2];
        assert_eq!(
            call(&agents[i % 2].socket, &p.req(Command::Del)),
            Some(Reply::Done)
        );
        assert!(
            !link_exists(node.netns(), &p.host()),
            "{} veth gone",
            p.name
        );
        assert!(
            !ovs_ports(node).contains(&p.host()),
            "{} OVS port gone",
            p.name
        );
        assert_eq!(
            call(&agents[i % 2].socket, &p.req(Command::Del)),
            Some(Reply::Done)
        );
    }
    assert_eq!(ovs_rows(node0, "QoS"), 0, "no QoS row left");
    assert_eq!(ovs_rows(node0, "Queue"), 0, "no Queue row left");
}

#[test]
fn pods_ping_through_an_agent_kill_a_restart_removes_pods_deleted_meanwhile_failures_carry_cni_codes_and_twenty_parallel_adds_succeed()
 {
    let mut specs: Vec<PodSpec> = vec![
        ("a".into(), 0, Vec::new()),
        ("b".into(), 1, Vec::new()),
        ("gone".into(), 0, QOS.to_vec()),
        ("late".into(), 0, Vec::new()),
    ];
    for i in 0..20 {
        specs.push((format!("par{i}"), i % 2, Vec::new()));
    }
    let Some(c) = cluster(&specs) else { return };
    let mut agent0 = AgentProc::start(&c.lab, &c.central, &c.nodes[0]);
    let agent1 = AgentProc::start(&c.lab, &c.central, &c.nodes[1]);
    let a = TestPod::new(&c.lab, "a", 0);
    let b = TestPod::new(&c.lab, "b", 1);
    let gone = TestPod::new(&c.lab, "gone", 2);
    let ip_a = added(call(&agent0.socket, &a.req(Command::Add)), "a").ips[0]
        .address
        .addr();
    let ip_b = added(call(&agent1.socket, &b.req(Command::Add)), "b").ips[0]
        .address
        .addr();
    added(call(&agent0.socket, &gone.req(Command::Add)), "gone");
    c.central.sync_hv().expect("sync");
    assert_eq!(ping(&a.ns, ip_b, 3).unwrap().loss_percent(), 0.0);

    // SIGKILL the agent: the pods keep their traffic.
    agent0.kill();
    assert_eq!(
        ping(&a.ns, ip_b, 3).unwrap().loss_percent(),
        0.0,
        "a -> b, agent down"
    );
    assert_eq!(
        ping(&b.ns, ip_a, 3).unwrap().loss_percent(),
        0.0,
        "b -> a, agent down"
    );

    // A pod's namespace deleted while the agent is down: gone after the restart.
    let gone_host = gone.host();
    drop(gone);
    let node0 = &c.nodes[0];
    assert!(
        ovs_ports(node0).contains(&gone_host),
        "still there while the agent is down"
    );
    let agent0 = AgentProc::start(&c.lab, &c.central, node0);
    assert!(
        !ovs_ports(node0).contains(&gone_host),
        "OVS port removed on restart"
    );
    assert!(
        !link_exists(node0.netns(), &gone_host),
        "veth removed on restart"
    );
    assert_eq!(ovs_rows(node0, "QoS"), 0, "its QoS rows removed on restart");
    let late = TestPod::new(&c.lab, "late", 3);
    let ip_late = added(call(&agent0.socket, &late.req(Command::Add)), "late").ips[0]
        .address
        .addr();
    c.central.sync_hv().expect("sync");
    assert_eq!(
        ping(&late.ns, ip_b, 3).unwrap().loss_percent(),
        0.0,
        "new pod after restart"
    );
    assert_eq!(ping(&a.ns, ip_late, 3).unwrap().loss_percent(), 0.0);

    // A retried ADD of the same container starts afresh and still carries traffic.
    let again = added(call(&agent0.socket, &late.req(Command::Add)), "late again");
    assert_eq!(again.ips[0].address.addr(), ip_late);
    c.central.sync_hv().expect("sync");
    assert_eq!(
        ping(&late.ns, ip_b, 3).unwrap().loss_percent(),
        0.0,
        "after a retried ADD"
    );

    // Failures are CNI errors naming the pod: a pod with no port on this node is "try
    // again later" (11) after the wait, a gone namespace "unknown container" (3), a request
    // without a pod "invalid" (4).
    let stray = TestPod::new(&c.lab, "stray", 4);
    match call(&agent0.socket, &stray.req(Command::Add)) {
        Some(Reply::Failed { failure }) => {
            assert_eq!(failure.code, 11, "{failure:?}");
            assert!(failure.msg.contains("default/stray"), "{failure:?}");
        }
        other => panic!("ADD of a pod without a port: {other:?}"),
    }
    let mut no_ns = late.req(Command::Add);
    no_ns.netns = "/var/run/netns/no-such-namespace".into();
    match call(&agent0.socket, &no_ns) {
        Some(Reply::Failed { failure }) => assert_eq!(failure.code, 3, "{failure:?}"),
        other => panic!("ADD into a missing namespace: {other:?}"),
    }
    let mut no_pod = late.req(Command::Add);
    no_pod.pod = None;
    match call(&agent0.socket, &no_pod) {
        Some(Reply::Failed { failure }) => assert_eq!(failure.code, 4, "{failure:?}"),
        other => panic!("ADD without a pod: {other:?}"),
    }

    // 20 ADDs in parallel (10 per node) all succeed.
    let pods: Vec<TestPod> = (0..20)
        .map(|i| TestPod::new(&c.lab, &format!("par{i}"), 10 + i))
        .collect();
    let sockets = [agent0.socket.clone(), agent1.socket.clone()];
    let replies: Vec<Option<Reply>> = std::thread::scope(|s| {
        let handles: Vec<_> = pods
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let socket = sockets[i % 2].clone();
                let req = p.req(Command::Add);
                s.spawn(move || call(&socket, &req))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (p, r) in pods.iter().zip(replies) {
        added(r, &p.name);
    }

    // GC keeps the valid attachments and removes the rest.
    let mut gc = request(Command::Gc, "", "", None);
    gc.valid_attachments = pods
        .iter()
        .skip(1)
        .map(|p| AttachmentRef {
            container_id: p.container.clone(),
            ifname: "eth0".into(),
        })
        .collect();
    assert_eq!(call(&agent0.socket, &gc), Some(Reply::Done));
    let ports = ovs_ports(node0);
    assert!(!ports.contains(&pods[0].host()), "GC removed par0");
    assert!(ports.contains(&pods[2].host()), "GC kept par2");
}
