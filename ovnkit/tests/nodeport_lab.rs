//! NodePort Services through the node agent on a real OVN lab: a central and two nodes wired to
//! the testbed's external network, the real controller binary in manifest mode for the
//! topology and the pods, and the real `ovnkit agent` binary in each node's namespace. Pods
//! are plumbed by CNI `ADD`s over the agents' sockets and run a TCP server that answers with
//! its pod's name and the client address it sees.
//!
//! Two NodePort Services come as manifests with their EndpointSlices: `web`
//! (`externalTrafficPolicy: Cluster`, node port 30080, both pods) and `local` (`Local`, node
//! port 30081, only the pod on node 0). The controller turns them into a Service load balancer
//! with VIP `169.254.169.3:30080`, a template load balancer `^OVNKIT_NODE_PORT_VIP:30081` with
//! one `Chassis_Template_Var` per chassis (node 0's naming its own pod, node 1's empty), all
//! carrying the node-port data keys that the agents follow.

mod common;

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::agent::{AgentProc, PodSpec, TestPod, added, call, cluster};
use common::{wait_for, write_manifest};
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

/// A NodePort Service in `default` selecting nothing by itself (its slice is written beside
/// it): port 80 to the pods' `BACKEND_PORT`, node port `node_port`, `policy` its
/// `externalTrafficPolicy`.
fn service(name: &str, cluster_ip: &str, node_port: u16, policy: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  type: NodePort\n  clusterIP: {cluster_ip}\n  clusterIPs: [{cluster_ip}]\n  externalTrafficPolicy: {policy}\n  ports:\n  - name: http\n    protocol: TCP\n    port: 80\n    targetPort: {BACKEND_PORT}\n    nodePort: {node_port}\n"
    )
}

/// The EndpointSlice of Service `service` with ready `endpoints` (address, pod, node).
fn slice(service: &str, endpoints: &[(IpAddr, &str, &String)]) -> String {
    let mut s = format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {service}-1\n  namespace: default\n  labels:\n    kubernetes.io/service-name: {service}\naddressType: IPv4\nports:\n- name: http\n  protocol: TCP\n  port: {BACKEND_PORT}\nendpoints:\n"
    );
    for (ip, pod, node) in endpoints {
        s.push_str(&format!(
            "- addresses: [\"{ip}\"]\n  conditions: {{ready: true}}\n  nodeName: {node}\n  targetRef: {{kind: Pod, namespace: default, name: {pod}}}\n"
        ));
    }
    s
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

    // The two Services and their EndpointSlices, as an API server and its endpoint-slice
    // controller would hold them: `web` (Cluster) on both pods, `local` (Local) on b0 only.
    let manifests = c.lab.dir().join("manifests");
    let nodes: Vec<String> = c.nodes.iter().map(|n| n.name()).collect();
    let web = (
        service("web", "10.96.0.20", CLUSTER_PORT, "Cluster"),
        slice(
            "web",
            &[(ips[0], "b0", &nodes[0]), (ips[1], "b1", &nodes[1])],
        ),
    );
    let local = (
        service("local", "10.96.0.21", LOCAL_PORT, "Local"),
        slice("local", &[(ips[0], "b0", &nodes[0])]),
    );
    write_manifest(
        &manifests,
        "services.yaml",
        &[web.0.clone(), web.1.clone(), local.0, local.1],
    );
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

    // The Local Service goes: its port leaves every node; the Cluster one stays.
    write_manifest(&manifests, "services.yaml", &[web.0, web.1]);
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
    write_manifest(&manifests, "services.yaml", &[]);
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
