//! The node agent on a real OVN lab: a central and two nodes, the real controller binary in
//! manifest mode writing the pods' ports, and the real `ovnkit agent` binary running inside
//! each node's namespace. The tests talk to the agent's socket as the CNI plugin does and use
//! `ovs-vsctl`, `ip` and `ping` as the oracles.

mod common;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{Controller, results, wait_for, write_manifest};
use ovn_testbed::{Central, CentralOptions, Lab, Netns, Node, ping};
use ovnkit_kube::cni::protocol::{Attachment, AttachmentRef, Command, PodRef, Reply, Request};

/// An `ovnkit agent` inside a node's namespace; SIGKILLed (by its own PID) when dropped, and
/// its log tail printed when the test fails.
struct AgentProc {
    child: Child,
    log: PathBuf,
    socket: PathBuf,
}

impl AgentProc {
    fn start(lab: &Lab, central: &Central, node: &Node) -> Self {
        let run_dir = lab.dir().join(format!("agent-{}", node.name()));
        let log = lab.dir().join(format!("agent-{}.log", node.name()));
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .expect("agent log");
        // `ip netns exec` execs the agent: the child's PID is the agent's.
        let child = node
            .netns()
            .command(env!("CARGO_BIN_EXE_ovnkit"))
            .args([
                "agent",
                "--node",
                &node.name(),
                "--nb",
                &central.nb_remote(),
            ])
            .args(["--ovs", &node.ovsdb().unix_remote(), "--run-dir"])
            .arg(&run_dir)
            .args(["--htb-ingress", "--port-timeout", "10"])
            .env("RUST_LOG", "info,ovnkit_kube=debug")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("ovnkit agent starts");
        let mut agent = AgentProc {
            child,
            log,
            socket: run_dir.join("agent.sock"),
        };
        let socket = agent.socket.clone();
        wait_for(Duration::from_secs(30), "the agent answers STATUS", || {
            assert!(
                matches!(agent.child.try_wait(), Ok(None)),
                "the agent exited"
            );
            (socket.exists() && matches!(call(&socket, &status()), Some(Reply::Done))).then_some(())
        });
        let mode = fs::metadata(&agent.socket).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        agent
    }

    fn kill(&mut self) {
        // Our own child, not reaped yet: its PID cannot have been reused.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- agent log {} (last lines) ---", self.log.display());
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// One request over the socket, as the CNI plugin sends it; `None` when the socket refuses.
fn call(socket: &Path, req: &Request) -> Option<Reply> {
    let mut s = UnixStream::connect(socket).ok()?;
    let mut line = serde_json::to_vec(req).unwrap();
    line.push(b'\n');
    s.write_all(&line).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(serde_json::from_str(out.trim()).expect("a reply is JSON"))
}

fn status() -> Request {
    request(Command::Status, "", "", None)
}

fn request(command: Command, container: &str, netns: &str, pod: Option<(&str, &str)>) -> Request {
    Request {
        command,
        container_id: container.to_owned(),
        netns: netns.to_owned(),
        ifname: "eth0".to_owned(),
        pod: pod.map(|(ns, name)| PodRef {
            namespace: ns.to_owned(),
            name: name.to_owned(),
            uid: None,
        }),
        network: "ovnkit".to_owned(),
        mtu: None,
        prev_result: None,
        valid_attachments: Vec::new(),
    }
}

/// A pod of the test: its namespace (the sandbox) and container id.
struct TestPod {
    ns: Netns,
    name: String,
    container: String,
}

impl TestPod {
    fn new(lab: &Lab, name: &str, n: usize) -> Self {
        TestPod {
            ns: Netns::create(&format!("ovk{}-p{n}", lab.id())).expect("pod namespace"),
            name: name.to_owned(),
            container: format!("{n:04x}c0ffee{n:04x}0123456789abcdef"),
        }
    }

    fn path(&self) -> String {
        format!("/var/run/netns/{}", self.ns.name())
    }

    fn req(&self, command: Command) -> Request {
        request(
            command,
            &self.container,
            &self.path(),
            Some(("default", &self.name)),
        )
    }

    fn host(&self) -> String {
        ovnkit_kube::agent::plumb::host_ifname(&self.container)
    }
}

fn added(reply: Option<Reply>, what: &str) -> Attachment {
    match reply {
        Some(Reply::Added { attachment }) => attachment,
        other => panic!("ADD {what}: {other:?}"),
    }
}

/// A pod for the controller: name, node index, annotations.
type PodSpec = (String, usize, Vec<(&'static str, &'static str)>);

/// A central, two nodes, the controller with `pods` (name, node index, annotations) in
/// namespace `default`.
struct Cluster {
    _controller: Controller,
    nodes: Vec<Node>,
    central: Central,
    state: PathBuf,
    lab: Lab,
}

fn cluster(pods: &[PodSpec]) -> Option<Cluster> {
    let lab = Lab::for_test()?;
    let central = lab
        .start_central(CentralOptions::default())
        .expect("central");
    let nodes: Vec<Node> = (0..2)
        .map(|_| lab.start_node(&central).expect("node"))
        .collect();
    let manifests = lab.dir().join("manifests");
    let state = lab.dir().join("state");
    fs::create_dir_all(&manifests).unwrap();
    write_manifest(
        &manifests,
        "namespaces.yaml",
        &[common::namespace("default", &[])],
    );
    let node_docs: Vec<String> = nodes
        .iter()
        .map(|n| common::node(&n.name(), &n.chassis()))
        .collect();
    write_manifest(&manifests, "nodes.yaml", &node_docs);
    let pod_docs: Vec<String> = pods
        .iter()
        .map(|(name, node, ann)| common::pod("default", name, &nodes[*node].name(), ann, None))
        .collect();
    write_manifest(&manifests, "pods.yaml", &pod_docs);
    let controller = Controller::start(
        &central.nb_remote(),
        &manifests,
        &state,
        &lab.dir().join("controller.log"),
        &["--mtu", "1400"],
    );
    Some(Cluster {
        _controller: controller,
        nodes,
        central,
        state,
        lab,
    })
}

fn controller_ip(state: &Path, pod: &str) -> String {
    let r: BTreeMap<String, BTreeMap<String, String>> = results(state, "pods.json");
    r.iter()
        .find(|(k, _)| k.ends_with(&format!("/{pod}")) || k.as_str() == pod)
        .and_then(|(_, a)| a.get("ovn.kubernetes.io/ip_address").cloned())
        .unwrap_or_default()
}

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
