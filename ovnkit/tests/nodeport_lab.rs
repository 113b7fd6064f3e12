//! NodePort Services through the node agent on a real OVN lab: a central and two nodes wired to
//! the testbed's external network, the real controller binary in manifest mode for the
//! topology and the pods, and the real `ovnkit agent` binary in each node's namespace. Pods
//! are plumbed by CNI `ADD`s over the agents' sockets and run a TCP server that answers with
//! its pod's name and the client address it sees.
//!
//! The test writes into the NB what the controller's Services planner writes for a NodePort
//! Service (the contract of `ovnkit_kube::agent::nodeport`): a load balancer group on the join
//! switch, the pods' switch and the cluster router; a Service load balancer with VIP
//! `169.254.169.3:30080` to both pods (`externalTrafficPolicy: Cluster`); a template load
//! balancer `^OVNKIT_NODE_PORT_VIP:30081` -> `^OVNKIT_NP_TCP_30081` (`Local`) with one
//! `Chassis_Template_Var` row per chassis, node 0's naming its own pod and node 1's empty.
//! Both carry the node-port data keys. The agents read only those rows.

mod common;

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::agent::{AgentProc, PodSpec, TestPod, added, call, cluster};
use common::wait_for;
use ovn_testbed::{ExternalNet, Netns, Node, NsThread};
use ovnkit_kube::cni::protocol::Command;

const VIP: &str = "169.254.169.3";
const CLUSTER_PORT: u16 = 30080;
const LOCAL_PORT: u16 = 30081;
const BACKEND_PORT: u16 = 8080;

/// A TCP server in a pod's namespace that answers every connection with `<pod> <client
/// address>` and closes it; stopped when dropped.
struct NameEcho {
    stop: Arc<AtomicBool>,
    thread: Option<NsThread<()>>,
}

impl NameEcho {
    fn start(ns: &Netns, name: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let name = name.to_owned();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = ns
            .spawn(move || {
                let listener = TcpListener::bind(("0.0.0.0", BACKEND_PORT)).expect("bind");
                listener.set_nonblocking(true).expect("nonblocking");
                let _ = tx.send(());
                while !flag.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((mut stream, peer)) => {
                            let _ = stream.set_nonblocking(false);
                            let _ = std::io::Write::write_all(
                                &mut stream,
                                format!("{name} {}\n", peer.ip()).as_bytes(),
                            );
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
            .expect("server thread");
        rx.recv_timeout(Duration::from_secs(5))
            .expect("the server listens");
        NameEcho {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for NameEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One connection from `ns` to `to`: the pod that answered and the client address it saw;
/// `None` when nothing answers within `timeout`.
fn ask(ns: &Netns, to: SocketAddr, timeout: Duration) -> Option<(String, IpAddr)> {
    let text = ns
        .run(move || -> std::io::Result<String> {
            let mut s = TcpStream::connect_timeout(&to, timeout)?;
            s.set_read_timeout(Some(timeout))?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text)
        })
        .expect("a thread in the namespace")
        .ok()?;
    let (name, ip) = text.trim().split_once(' ')?;
    Some((name.to_owned(), ip.parse().ok()?))
}

/// The node's `ip ovnkit-nodeport` table, empty when there is none.
fn nft_table(node: &Node) -> String {
    node.netns()
        .exec_raw("nft", &["list", "table", "ip", "ovnkit-nodeport"])
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// The node's route to the VIP, empty when there is none.
fn vip_route(node: &Node) -> String {
    node.netns()
        .exec("ip", &["-4", "route", "show", VIP])
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The node's `ovn0` address.
fn ovn0_ip(node: &Node) -> IpAddr {
    let out = node
        .netns()
        .exec("ip", &["-4", "-o", "addr", "show", "dev", "ovn0"])
        .expect("ovn0");
    let cidr = out
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .expect("an IPv4 address on ovn0");
    cidr.split('/').next().unwrap().parse().expect("an address")
}

/// The `external_ids` arguments of a load balancer the `services` component owns, with the
/// node-port data keys.
fn lb_ids(service: &str, ports: u16, policy: &str) -> Vec<String> {
    [
        ("ovnkit.io/owner", "services".to_owned()),
        ("ovnkit.io/object", format!("service/default/{service}")),
        ("ovnkit.io/role", "load-balancer".to_owned()),
        ("ovnkit.io/id", "tcp".to_owned()),
        ("ovnkit.io/node-ports", ports.to_string()),
        ("ovnkit.io/node-port-vip", VIP.to_owned()),
        ("ovnkit.io/traffic-policy", policy.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| format!("external_ids:\"{k}\"=\"{v}\""))
    .collect()
}

#[test]
fn node_ports_answer_on_every_node_for_cluster_and_only_where_a_local_endpoint_runs_for_local_keeping_the_client_address()
 {
    let specs: Vec<PodSpec> = vec![("b0".into(), 0, Vec::new()), ("b1".into(), 1, Vec::new())];
    let Some(c) = cluster(&specs) else { return };
    let external = c.lab.start_external_net().expect("external net");
    let ext_ips: Vec<Ipv4Addr> = c
        .nodes
        .iter()
        .map(|n| external.connect(n).expect("external link"))
        .collect();
    let agents: Vec<AgentProc> = c
        .nodes
        .iter()
        .map(|n| AgentProc::start(&c.lab, &c.central, n))
        .collect();
    let pods: Vec<TestPod> = (0..2)
        .map(|i| TestPod::new(&c.lab, &format!("b{i}"), 60 + i))
        .collect();
    let ips: Vec<IpAddr> = pods
        .iter()
        .enumerate()
        .map(|(i, p)| {
            added(call(&agents[i].socket, &p.req(Command::Add)), &p.name).ips[0]
                .address
                .addr()
        })
        .collect();
    let _servers: Vec<NameEcho> = pods
        .iter()
        .map(|p| NameEcho::start(&p.ns, &p.name))
        .collect();

    // What the controller writes for the two Services.
    let nbctl = |args: &[&str]| c.central.nbctl(args).expect("ovn-nbctl");
    // The chassis' template variables first: a template load balancer whose variables a
    // chassis lacks makes its ovn-controller log parse errors until they come (the
    // controller writes both in one transaction).
    for (i, n) in c.nodes.iter().enumerate() {
        let local = if i == 0 {
            format!("{}:{BACKEND_PORT}", ips[0])
        } else {
            String::new()
        };
        nbctl(&[
            "create",
            "Chassis_Template_Var",
            &format!("chassis={}", n.chassis()),
            &format!("variables:OVNKIT_NODE_PORT_VIP=\"{VIP}\""),
            &format!("variables:OVNKIT_NP_TCP_{LOCAL_PORT}=\"{local}\""),
        ]);
    }
    let backends = format!("{}:{BACKEND_PORT},{}:{BACKEND_PORT}", ips[0], ips[1]);
    let mut args = vec![
        "create".to_owned(),
        "Load_Balancer".to_owned(),
        "name=svc-web-tcp".to_owned(),
        "protocol=tcp".to_owned(),
        format!("vips:\"{VIP}:{CLUSTER_PORT}\"=\"{backends}\""),
    ];
    args.extend(lb_ids("web", CLUSTER_PORT, "Cluster"));
    let cluster_lb = nbctl(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut args = vec![
        "create".to_owned(),
        "Load_Balancer".to_owned(),
        "name=svc-local-tcp-np".to_owned(),
        "protocol=tcp".to_owned(),
        format!("vips:\"^OVNKIT_NODE_PORT_VIP:{LOCAL_PORT}\"=\"^OVNKIT_NP_TCP_{LOCAL_PORT}\""),
        "options:template=true".to_owned(),
        "options:address-family=ipv4".to_owned(),
    ];
    args.extend(lb_ids("local", LOCAL_PORT, "Local"));
    let local_lb = nbctl(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let (cluster_lb, local_lb) = (cluster_lb.trim(), local_lb.trim());
    let group = nbctl(&[
        "create",
        "Load_Balancer_Group",
        "name=services",
        &format!("load_balancer={cluster_lb},{local_lb}"),
    ]);
    for (table, row) in [
        ("Logical_Switch", "join"),
        ("Logical_Switch", "ovn-default"),
        ("Logical_Router", "ovn-cluster"),
    ] {
        nbctl(&["add", table, row, "load_balancer_group", group.trim()]);
    }
    c.central.sync_hv().expect("sync");

    // Each agent holds both node ports, masquerades the Cluster one only, and routes the VIP
    // into ovn0 via the router's join address.
    for (i, n) in c.nodes.iter().enumerate() {
        let table = wait_for(
            Duration::from_secs(30),
            &format!("node {i}'s node-port table"),
            || {
                Some(nft_table(n)).filter(|t| {
                    t.contains(&format!("tcp . {CLUSTER_PORT} : {VIP} . {CLUSTER_PORT}"))
                        && t.contains(&format!("tcp . {LOCAL_PORT} : {VIP} . {LOCAL_PORT}"))
                })
            },
        );
        assert!(
            table.contains(&format!("{VIP} . tcp . {CLUSTER_PORT}")),
            "{table}"
        );
        assert!(
            !table.contains(&format!("{VIP} . tcp . {LOCAL_PORT}")),
            "{table}"
        );
        let route = vip_route(n);
        assert_eq!(
            route,
            format!("{VIP} via 100.64.0.1 dev ovn0 proto 142"),
            "node {i}"
        );
    }

    // Cluster: every node answers, any endpoint serves, and the endpoint sees the node's ovn0
    // address.
    for (i, n) in c.nodes.iter().enumerate() {
        let to = SocketAddr::new(IpAddr::V4(ext_ips[i]), CLUSTER_PORT);
        wait_for(
            Duration::from_secs(30),
            &format!("node {i}:{CLUSTER_PORT} answers"),
            || ask(external.netns(), to, Duration::from_secs(1)),
        );
        let join = ovn0_ip(n);
        let mut served = std::collections::BTreeSet::new();
        for _ in 0..30 {
            let (pod, seen) =
                ask(external.netns(), to, Duration::from_secs(2)).expect("the node port answers");
            assert_eq!(seen, join, "the endpoint sees node {i}'s ovn0 address");
            served.insert(pod);
        }
        println!("through node {i} ({to}): served by {served:?}, seen as {join}");
        assert_eq!(
            served.into_iter().collect::<Vec<_>>(),
            ["b0", "b1"],
            "both endpoints serve through node {i}"
        );
    }

    // Local: node 0 runs an endpoint and answers with the client's own address; node 1 runs
    // none and does not answer (its table holds the port all the same, checked above).
    let host = IpAddr::V4(ExternalNet::HOST);
    let to0 = SocketAddr::new(IpAddr::V4(ext_ips[0]), LOCAL_PORT);
    let first = wait_for(
        Duration::from_secs(30),
        &format!("node 0:{LOCAL_PORT} answers"),
        || ask(external.netns(), to0, Duration::from_secs(1)),
    );
    assert_eq!(first, ("b0".to_owned(), host));
    for _ in 0..10 {
        assert_eq!(
            ask(external.netns(), to0, Duration::from_secs(2)),
            Some(("b0".to_owned(), host)),
            "node 0's own endpoint, the client's address"
        );
    }
    let to1 = SocketAddr::new(IpAddr::V4(ext_ips[1]), LOCAL_PORT);
    for _ in 0..3 {
        assert_eq!(
            ask(external.netns(), to1, Duration::from_secs(2)),
            None,
            "node 1 has no endpoint of the Local Service"
        );
    }

    // The Local load balancer goes: its port leaves every node; the Cluster one stays.
    nbctl(&["destroy", "Load_Balancer", local_lb]);
    for (i, n) in c.nodes.iter().enumerate() {
        wait_for(
            Duration::from_secs(30),
            &format!("node {i} drops {LOCAL_PORT}"),
            || {
                let t = nft_table(n);
                (!t.contains(&LOCAL_PORT.to_string()) && t.contains(&CLUSTER_PORT.to_string()))
                    .then_some(())
            },
        );
    }
    let to = SocketAddr::new(IpAddr::V4(ext_ips[1]), CLUSTER_PORT);
    assert!(ask(external.netns(), to, Duration::from_secs(2)).is_some());

    // The last one goes: no table, no route.
    nbctl(&["destroy", "Load_Balancer", cluster_lb]);
    for (i, n) in c.nodes.iter().enumerate() {
        wait_for(
            Duration::from_secs(30),
            &format!("node {i}'s table and route removed"),
            || (nft_table(n).is_empty() && vip_route(n).is_empty()).then_some(()),
        );
    }
    let log = std::fs::read_to_string(&agents[1].log).unwrap_or_default();
    assert!(
        log.contains(&format!("node ports: no longer holds tcp/{CLUSTER_PORT}")),
        "the agent logs what changed"
    );
}
