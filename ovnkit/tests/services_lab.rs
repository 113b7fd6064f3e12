//! Services on OVN load balancers, with `ovnkit controller` in manifest mode on a real 3-node
//! OVN lab. Three backend pods (one per node) run a TCP and a UDP server that answer with the
//! pod's name; client pods connect to ClusterIPs:
//!
//! - TCP and UDP connections spread over every backend (a named `targetPort` resolved from the
//!   EndpointSlice);
//! - an endpoint removed from and added back to the EndpointSlice manifest is followed (the
//!   time until traffic shows it is printed);
//! - `sessionAffinity: ClientIP` keeps a client on one backend;
//! - hairpin: a backend reaches its own Service, and itself through it;
//! - with health checks on, a backend whose server stops (its endpoint still ready) stops
//!   getting new connections (the time is printed);
//! - `ovn-nbctl` reads back the load balancer group on every switch and the router;
//! - a `Local` NodePort Service's template load balancer and the nodes' template variables
//!   become per-chassis flows (the backend only on the node that has it).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Controller, nb_rows, results, wait_for, write_manifest};
use ipnet::IpNet;
use ovn_testbed::{CentralOptions, Lab, Netns, Node, NsThread, Pod, PodConfig};

const ECHO: &str = "10.96.0.10";
const STICKY: &str = "10.96.0.11";
const CHECKED: &str = "10.96.0.12";
const LOCAL: &str = "10.96.0.13";
const NODE_PORT: u16 = 30080;
/// Backend pods: name, node index, address.
const BACKENDS: [(&str, usize, &str); 3] = [
    ("b0", 0, "10.16.0.11"),
    ("b1", 1, "10.16.0.12"),
    ("b2", 2, "10.16.0.13"),
];
/// Client pods: name, node index, address.
const CLIENTS: [(&str, usize, &str); 2] = [("c0", 0, "10.16.0.21"), ("c1", 1, "10.16.0.22")];
const TCP_PORT: u16 = 8080;
const UDP_PORT: u16 = 9090;
const CHECKED_PORT: u16 = 8081;
const LOCAL_PORT: u16 = 8082;

fn service(name: &str, ip: &str, annotations: &str, extra: &str, ports: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\n{annotations}spec:\n  clusterIP: {ip}\n  selector: {{app: {name}}}\n{extra}  ports:\n{ports}"
    )
}

/// An EndpointSlice of `service` with `ports` (YAML list items) and the backends `members`.
fn endpoint_slice(service: &str, ports: &str, members: &[usize]) -> String {
    let mut s = format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {service}-1\n  namespace: default\n  labels:\n    kubernetes.io/service-name: {service}\naddressType: IPv4\nports:\n{ports}endpoints:\n"
    );
    for i in members {
        let (pod, node, ip) = BACKENDS[*i];
        s.push_str(&format!(
            "- addresses: [\"{ip}\"]\n  nodeName: node{}\n  conditions: {{ready: true}}\n  targetRef: {{kind: Pod, namespace: default, name: {pod}}}\n",
            node + 1
        ));
    }
    s
}

/// The Services and EndpointSlices, with `echo_members` behind `echo`.
fn services(echo_members: &[usize]) -> Vec<String> {
    let all = [0, 1, 2];
    vec![
        service(
            "echo",
            ECHO,
            "",
            "",
            "  - {name: tcp, port: 80, protocol: TCP, targetPort: tcp}\n  - {name: udp, port: 53, protocol: UDP, targetPort: udp}\n",
        ),
        endpoint_slice(
            "echo",
            &format!(
                "- {{name: tcp, port: {TCP_PORT}, protocol: TCP}}\n- {{name: udp, port: {UDP_PORT}, protocol: UDP}}\n"
            ),
            echo_members,
        ),
        service(
            "sticky",
            STICKY,
            "",
            "  sessionAffinity: ClientIP\n",
            "  - {name: tcp, port: 80, targetPort: 8080}\n",
        ),
        endpoint_slice(
            "sticky",
            &format!("- {{name: tcp, port: {TCP_PORT}}}\n"),
            &all,
        ),
        service(
            "checked",
            CHECKED,
            // Probes every second, 2 s to answer, offline after 2 misses (Kube-OVN's defaults,
            // 5 s, 20 s and 3, make the window up to ~35 s).
            "  annotations:\n    ovnkit.io/health-check: \"true\"\n    ovnkit.io/health-check-interval: \"1\"\n    ovnkit.io/health-check-timeout: \"2\"\n    ovnkit.io/health-check-failure-count: \"2\"\n",
            "",
            &format!("  - {{name: tcp, port: 80, targetPort: {CHECKED_PORT}}}\n"),
        ),
        endpoint_slice(
            "checked",
            &format!("- {{name: tcp, port: {CHECKED_PORT}}}\n"),
            &all,
        ),
        service(
            "local",
            LOCAL,
            "",
            "  type: NodePort\n  externalTrafficPolicy: Local\n",
            &format!(
                "  - {{name: tcp, port: 80, targetPort: {LOCAL_PORT}, nodePort: {NODE_PORT}}}\n"
            ),
        ),
        endpoint_slice(
            "local",
            &format!("- {{name: tcp, port: {LOCAL_PORT}}}\n"),
            &[0],
        ),
    ]
}

/// Servers in a pod answering with its name, until stopped.
struct Servers {
    stop: Arc<AtomicBool>,
    threads: Vec<NsThread<()>>,
}

impl Servers {
    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().expect("server thread");
        }
    }
}

fn tcp_server(ns: &Netns, port: u16, name: &str) -> Servers {
    let stop = Arc::new(AtomicBool::new(false));
    let (flag, name) = (stop.clone(), name.to_owned());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread = ns
        .spawn(move || {
            let listener = TcpListener::bind(("0.0.0.0", port)).expect("bind");
            listener.set_nonblocking(true).unwrap();
            ready_tx.send(()).unwrap();
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.write_all(format!("{name}\n").as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        })
        .expect("server thread");
    ready_rx.recv().expect("the server listens");
    Servers {
        stop,
        threads: vec![thread],
    }
}

fn udp_server(ns: &Netns, port: u16, name: &str) -> Servers {
    let stop = Arc::new(AtomicBool::new(false));
    let (flag, name) = (stop.clone(), name.to_owned());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread = ns
        .spawn(move || {
            let socket = UdpSocket::bind(("0.0.0.0", port)).expect("bind");
            socket
                .set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            ready_tx.send(()).unwrap();
            let mut buf = [0u8; 64];
            while !flag.load(Ordering::SeqCst) {
                if let Ok((_, from)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(name.as_bytes(), from);
                }
            }
        })
        .expect("server thread");
    ready_rx.recv().expect("the server listens");
    Servers {
        stop,
        threads: vec![thread],
    }
}

/// Who answers `n` TCP connections from `ns` to `to` (`None`: no answer).
fn ask_tcp(ns: &Netns, to: SocketAddr, n: usize) -> Vec<Option<String>> {
    ns.run(move || {
        (0..n)
            .map(|_| {
                let mut s = TcpStream::connect_timeout(&to, Duration::from_millis(500)).ok()?;
                s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
                let mut out = String::new();
                s.read_to_string(&mut out).ok()?;
                Some(out.trim().to_owned()).filter(|o| !o.is_empty())
            })
            .collect()
    })
    .expect("client thread")
}

/// Who answers `n` UDP requests (each from a new socket) from `ns` to `to`.
fn ask_udp(ns: &Netns, to: SocketAddr, n: usize) -> Vec<Option<String>> {
    ns.run(move || {
        (0..n)
            .map(|_| {
                let s = UdpSocket::bind("0.0.0.0:0").ok()?;
                s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
                s.send_to(b"who", to).ok()?;
                let mut buf = [0u8; 64];
                let (len, _) = s.recv_from(&mut buf).ok()?;
                Some(String::from_utf8_lossy(&buf[..len]).into_owned())
            })
            .collect()
    })
    .expect("client thread")
}

fn answered(replies: &[Option<String>]) -> BTreeSet<String> {
    replies.iter().flatten().cloned().collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn vip(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

const NODE_PORT_VIP: &str = "169.254.169.3";

fn ofctl(node: &Node, command: &str) -> String {
    let out = std::process::Command::new("ovs-ofctl")
        .args([
            command,
            &format!("unix:{}/br-int.mgmt", node.dir().display()),
        ])
        .output()
        .expect("ovs-ofctl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// On a node's `br-int`: how many flows start connections to the node-port VIP and port, and
/// the backends of the groups they send them to.
fn node_port_flows(node: &Node) -> (usize, BTreeSet<String>) {
    let flows = ofctl(node, "dump-flows");
    let groups = ofctl(node, "dump-groups");
    let matching: Vec<&str> = flows
        .lines()
        .filter(|l| l.contains(&format!("nw_dst={NODE_PORT_VIP},tp_dst={NODE_PORT}")))
        .filter(|l| l.contains("+new"))
        .collect();
    let mut backends = BTreeSet::new();
    for flow in &matching {
        let Some(id) = flow.split("group:").nth(1) else {
            continue;
        };
        let id: String = id.chars().take_while(char::is_ascii_digit).collect();
        let Some(group) = groups
            .lines()
            .find(|g| g.contains(&format!("group_id={id},")))
        else {
            continue;
        };
        for part in group.split("nat(dst=").skip(1) {
            backends.insert(part.split(')').next().unwrap_or_default().to_owned());
        }
    }
    (matching.len(), backends)
}

fn pods_manifest(nodes: &[Node]) -> Vec<String> {
    BACKENDS
        .iter()
        .chain(CLIENTS.iter())
        .map(|(name, node, ip)| {
            common::pod(
                "default",
                name,
                &nodes[*node].name(),
                &[("ovn.kubernetes.io/ip_address", ip)],
                None,
            )
        })
        .collect()
}

/// Places the pods on their nodes with what the controller allocated.
fn place(nodes: &[Node], state: &Path) -> BTreeMap<String, Pod> {
    let allocated = wait_for(Duration::from_secs(30), "5 pods allocated", || {
        let r = results(state, "pods.json");
        (r.values()
            .filter(|a| a.get("ovn.kubernetes.io/allocated").map(String::as_str) == Some("true"))
            .count()
            == 5)
            .then_some(r)
    });
    BACKENDS
        .iter()
        .chain(CLIENTS.iter())
        .map(|(name, node, _)| {
            let a = &allocated[&format!("default/{name}")];
            let cidr: IpNet = a["ovn.kubernetes.io/cidr"].parse().unwrap();
            let ip: IpAddr = a["ovn.kubernetes.io/ip_address"].parse().unwrap();
            let gw: IpAddr = a["ovn.kubernetes.io/gateway"].parse().unwrap();
            let config = PodConfig::new(
                name,
                &format!("default.{name}"),
                &a["ovn.kubernetes.io/mac_address"],
                IpNet::new(ip, cidr.prefix_len()).unwrap(),
            )
            .with_gateway(gw);
            (
                (*name).to_owned(),
                nodes[*node].add_pod(config).expect("pod"),
            )
        })
        .collect()
}

#[test]
fn cluster_ips_spread_follow_endpoints_stick_hairpin_and_health_check_on_real_ovn() {
    let Some(lab) = Lab::for_test() else { return };
    let started = Instant::now();
    let central = lab
        .start_central(CentralOptions::default())
        .expect("central");
    let nodes: Vec<Node> = (0..3)
        .map(|_| lab.start_node(&central).expect("node"))
        .collect();
    let manifests = lab.dir().join("manifests");
    let state = lab.dir().join("state");
    std::fs::create_dir_all(&manifests).unwrap();
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
    write_manifest(&manifests, "pods.yaml", &pods_manifest(&nodes));
    write_manifest(&manifests, "services.yaml", &services(&[0, 1, 2]));
    let controller = Controller::start(
        &central.nb_remote(),
        &manifests,
        &state,
        &lab.dir().join("controller.log"),
        &[],
    );
    let pods = place(&nodes, &state);
    let mut servers = BTreeMap::new();
    for (name, _, _) in BACKENDS {
        let ns = pods[name].netns();
        servers.insert(format!("{name}/tcp"), tcp_server(ns, TCP_PORT, name));
        servers.insert(format!("{name}/udp"), udp_server(ns, UDP_PORT, name));
        servers.insert(
            format!("{name}/checked"),
            tcp_server(ns, CHECKED_PORT, name),
        );
    }
    let c0 = pods["c0"].netns();
    let c1 = pods["c1"].netns();
    let all = names(&["b0", "b1", "b2"]);

    // ClusterIP, TCP and UDP: every backend answers.
    let flows_in = wait_for(Duration::from_secs(30), "the echo VIP answers", || {
        ask_tcp(c0, vip(ECHO, 80), 1)[0]
            .as_ref()
            .map(|_| started.elapsed())
    });
    println!(
        "first answer through the ClusterIP {:.2} s after the lab started",
        flows_in.as_secs_f64()
    );
    let tcp = ask_tcp(c0, vip(ECHO, 80), 30);
    assert!(
        tcp.iter().all(Option::is_some),
        "every TCP connection answered: {tcp:?}"
    );
    assert_eq!(
        answered(&tcp),
        all,
        "30 TCP connections reach every backend"
    );
    let udp = wait_for(Duration::from_secs(10), "UDP through the ClusterIP", || {
        let r = ask_udp(c1, vip(ECHO, 53), 30);
        (answered(&r) == all).then_some(r)
    });
    let lost = udp.iter().filter(|r| r.is_none()).count();
    println!(
        "UDP: 30 requests, {lost} unanswered, answered by {:?}",
        answered(&udp)
    );

    // Health checks: b1's server on the checked port stops; its endpoint stays ready.
    wait_for(
        Duration::from_secs(10),
        "the checked VIP reaches every backend",
        || (answered(&ask_tcp(c0, vip(CHECKED, 80), 30)) == all).then_some(()),
    );
    let sbctl = |args: &[&str]| central.sbctl(args).expect("ovn-sbctl");
    let monitors = sbctl(&[
        "--bare",
        "--columns=ip,port,status",
        "list",
        "Service_Monitor",
    ]);
    println!("Service_Monitor before:\n{monitors}");
    servers.remove("b1/checked").unwrap().stop();
    let stopped = Instant::now();

    // An endpoint leaves the EndpointSlice, then comes back.
    write_manifest(&manifests, "services.yaml", &services(&[0, 1]));
    let changed = Instant::now();
    wait_for(Duration::from_secs(15), "b2 leaves the echo VIP", || {
        let r = ask_tcp(c0, vip(ECHO, 80), 12);
        (r.iter().all(Option::is_some) && !answered(&r).contains("b2")).then_some(())
    });
    println!(
        "endpoint removed: traffic avoided it after {:.0} ms",
        changed.elapsed().as_secs_f64() * 1e3
    );
    let r = ask_tcp(c0, vip(ECHO, 80), 30);
    assert_eq!(answered(&r), names(&["b0", "b1"]), "{r:?}");
    write_manifest(&manifests, "services.yaml", &services(&[0, 1, 2]));
    let changed = Instant::now();
    wait_for(
        Duration::from_secs(15),
        "b2 comes back to the echo VIP",
        || {
            answered(&ask_tcp(c0, vip(ECHO, 80), 3))
                .contains("b2")
                .then_some(())
        },
    );
    println!(
        "endpoint added: traffic reached it after {:.0} ms",
        changed.elapsed().as_secs_f64() * 1e3
    );

    // Session affinity: each client keeps one backend.
    for (client, ns) in [("c0", c0), ("c1", c1)] {
        // The first connection to a VIP with affinity may lose its first SYN while the
        // datapath learns the flow (a client's retransmission, after 1 s, gets through).
        wait_for(Duration::from_secs(5), "the sticky VIP answers", || {
            ask_tcp(ns, vip(STICKY, 80), 1)[0].as_ref().map(drop)
        });
        let r = ask_tcp(ns, vip(STICKY, 80), 10);
        assert!(r.iter().all(Option::is_some), "{client}: {r:?}");
        assert_eq!(
            answered(&r).len(),
            1,
            "{client} sticks to one backend: {r:?}"
        );
        println!("{client} -> sticky: {:?}", answered(&r));
    }

    // Hairpin: a backend reaches its own Service, and itself through it.
    let b0 = pods["b0"].netns();
    let r = ask_tcp(b0, vip(ECHO, 80), 30);
    assert!(
        r.iter().all(Option::is_some),
        "hairpin connections answered: {r:?}"
    );
    assert!(
        answered(&r).contains("b0"),
        "b0 reaches itself through its Service: {r:?}"
    );

    // The load balancer group on every switch and the router.
    let nbctl = |args: &[&str]| central.nbctl(args).expect("ovn-nbctl");
    let group = nbctl(&[
        "--bare",
        "--columns=_uuid",
        "find",
        "Load_Balancer_Group",
        "name=ovnkit-services",
    ]);
    let group = group.trim();
    assert!(!group.is_empty(), "the group exists");
    for table in ["Logical_Switch", "Logical_Router"] {
        let rows = nb_rows(nbctl, table, "name,load_balancer_group");
        assert!(!rows.is_empty());
        for row in rows {
            assert_eq!(row[1], group, "{table} {} applies the group", row[0]);
        }
    }
    let members = nbctl(&[
        "--bare",
        "--columns=load_balancer",
        "list",
        "Load_Balancer_Group",
        group,
    ]);
    let lbs = nb_rows(nbctl, "Load_Balancer", "_uuid,name");
    assert_eq!(
        lbs.len(),
        6,
        "echo's TCP and UDP, sticky, checked, local's ClusterIP and template: {lbs:?}"
    );
    for lb in &lbs {
        assert!(members.contains(&lb[0]), "{} is in the group", lb[1]);
    }

    // Local node port: the template load balancer's variables become each chassis' flows,
    // with node1's endpoint on node1 only.
    let vars = sbctl(&[
        "--bare",
        "--columns=chassis,variables",
        "list",
        "Chassis_Template_Var",
    ]);
    println!("Chassis_Template_Var (SB):\n{vars}");
    let local_backend = format!("{}:{LOCAL_PORT}", BACKENDS[0].2);
    let seen = wait_for(
        Duration::from_secs(10),
        "node1's flows hold its local endpoint",
        || {
            let seen: Vec<(usize, BTreeSet<String>)> = nodes.iter().map(node_port_flows).collect();
            seen[0].1.contains(&local_backend).then_some(seen)
        },
    );
    for (n, (flows, backends)) in seen.iter().enumerate() {
        println!(
            "node{}: {flows} flows for {NODE_PORT_VIP}:{NODE_PORT}, backends {backends:?}",
            n + 1
        );
        assert!(*flows > 0, "node{}'s chassis expanded the template", n + 1);
    }
    let backends: Vec<&BTreeSet<String>> = seen.iter().map(|(_, b)| b).collect();
    assert_eq!(
        backends,
        [
            &names(&[local_backend.as_str()]),
            &BTreeSet::new(),
            &BTreeSet::new()
        ],
        "only node1 load-balances its node port, to its own endpoint"
    );
    let flows = sbctl(&["lflow-list"]);
    let template_flows: Vec<&str> = flows
        .lines()
        .filter(|l| l.contains("^OVNKIT_NP_TCP_30080"))
        .collect();
    println!("logical flows of the template: {}", template_flows.len());
    assert!(
        !template_flows.is_empty(),
        "northd made flows of the template load balancer"
    );

    // Back to the health check: once OVN marks b1 offline, b1 (whose connections are refused
    // now) gets no new connection: 30 in a row are all answered, by the others.
    let status = |ip: &str| {
        sbctl(&[
            "--bare",
            "--columns=status",
            "find",
            "Service_Monitor",
            &format!("ip={ip}"),
        ])
        .trim()
        .to_owned()
    };
    let gone = wait_for(Duration::from_secs(40), "b1 leaves the checked VIP", || {
        if status(BACKENDS[1].2) != "offline" {
            return None;
        }
        let r = ask_tcp(c0, vip(CHECKED, 80), 30);
        (r.iter().all(Option::is_some) && answered(&r) == names(&["b0", "b2"]))
            .then(|| stopped.elapsed())
    });
    println!(
        "health check: b1 offline and no longer load-balanced {:.1} s after its server stopped",
        gone.as_secs_f64()
    );
    let monitors = sbctl(&[
        "--bare",
        "--columns=ip,port,status",
        "list",
        "Service_Monitor",
    ]);
    println!("Service_Monitor after:\n{monitors}");
    assert!(
        common::events(&state).is_empty(),
        "no problem reported: {:#?}",
        common::events(&state)
    );
    for (_, s) in servers {
        s.stop();
    }
    drop(pods);
    drop(controller);
    println!("wall time {:.1} s", started.elapsed().as_secs_f64());
}
