//! `ovnkit trace` against real packets on a real OVN lab: for each scenario the command's
//! verdict (read from `--json`) is what TCP connections between the lab's pods show, and for
//! drops it names the rule.
//!
//! The lab: a central, two nodes on the testbed's external network, the controller binary in
//! manifest mode, `ovnkit agent` on both nodes (management ports, egress), and pods plumbed
//! by CNI `ADD`s over the agents' sockets in three namespaces: `default` (distributed gateway),
//! `web` (a private subnet) and `corp` (a centralized gateway on node 1); one more pod of
//! `default` is never started. Then a ClusterIP and NodePort Service on one pod, and last a
//! NetworkPolicy that isolates that pod.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::agent::{AgentProc, ECHO_PORT, added, call, request};
use common::{Controller, pod, wait_for, write_manifest};
use ovn_testbed::{CentralOptions, ExternalNet, Lab, Netns, SourceEcho, source_seen_by};
use ovnkit_kube::cni::protocol::Command;

const PORT: u16 = 8080;
const CLUSTER_IP: &str = "10.96.0.30";
const NODE_PORT: u16 = 30090;
/// Where nodes send node-port traffic into OVN (the controller's and agents' default).
const NODE_PORT_VIP: &str = "169.254.169.3";

/// `ovnkit trace FROM TO --json` -> (verdict object, whole JSON), or what it printed on
/// stderr when it failed.
fn try_trace(
    nb: &str,
    sb: &str,
    from: &str,
    to: &str,
) -> Result<(serde_json::Value, serde_json::Value), String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ovnkit"))
        .args(["trace", from, to, "--nb", nb, "--sb", sb, "--json"])
        .output()
        .expect("ovnkit trace runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    Ok((json["verdict"].clone(), json))
}

/// [`try_trace`] that must succeed.
fn trace(nb: &str, sb: &str, from: &str, to: &str) -> (serde_json::Value, serde_json::Value) {
    try_trace(nb, sb, from, to).unwrap_or_else(|e| panic!("ovnkit trace {from} {to}: {e}"))
}

/// Whether some hop of the trace notes the load balancer choosing `backend`.
fn chose_backend(json: &serde_json::Value, backend: &str) -> bool {
    json["hops"].as_array().is_some_and(|hops| {
        hops.iter()
            .flat_map(|h| h["notes"].as_array().into_iter().flatten())
            .any(|n| {
                n.as_str()
                    .is_some_and(|n| n.starts_with("load balancer:") && n.contains(backend))
            })
    })
}

/// A ClusterIP and NodePort Service `echo` in `default` on `backend` (address, node), port 80
/// to the pods' 8080, node port [`NODE_PORT`], and its EndpointSlice.
fn echo_service(backend: IpAddr, node: &str) -> Vec<String> {
    vec![
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: echo\n  namespace: default\nspec:\n  type: NodePort\n  clusterIP: {CLUSTER_IP}\n  clusterIPs: [{CLUSTER_IP}]\n  externalTrafficPolicy: Cluster\n  ports:\n  - name: http\n    protocol: TCP\n    port: 80\n    targetPort: {PORT}\n    nodePort: {NODE_PORT}\n"
        ),
        format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: echo-1\n  namespace: default\n  labels:\n    kubernetes.io/service-name: echo\naddressType: IPv4\nports:\n- name: http\n  protocol: TCP\n  port: {PORT}\nendpoints:\n- addresses: [\"{backend}\"]\n  conditions: {{ready: true}}\n  nodeName: {node}\n  targetRef: {{kind: Pod, namespace: default, name: b}}\n"
        ),
    ]
}

/// Whether a TCP connection from `ns` to `to` gets an answer (retried briefly: the first
/// packets of a new path may go while ARP resolves).
fn connects(ns: &Netns, to: SocketAddr) -> bool {
    (0..3).any(|_| source_seen_by(ns, to, Duration::from_secs(1)).is_ok())
}

#[test]
fn trace_verdicts_match_what_real_connections_do_and_name_the_rule_that_drops() {
    let Some(lab) = Lab::for_test() else { return };
    let central = lab
        .start_central(CentralOptions::default())
        .expect("central");
    let nodes: Vec<_> = (0..2)
        .map(|_| lab.start_node(&central).expect("node"))
        .collect();
    let external = lab.start_external_net().expect("external net");
    for n in &nodes {
        external.connect(n).expect("external link");
    }
    let manifests = lab.dir().join("manifests");
    let state = lab.dir().join("state");
    std::fs::create_dir_all(&manifests).unwrap();
    write_manifest(
        &manifests,
        "namespaces.yaml",
        &[
            common::namespace("default", &[]),
            common::namespace(
                "web",
                &[
                    ("ovn.kubernetes.io/cidr", "10.17.0.0/24"),
                    ("ovn.kubernetes.io/private", "true"),
                ],
            ),
            common::namespace(
                "corp",
                &[
                    ("ovn.kubernetes.io/cidr", "10.19.0.0/24"),
                    ("ovn.kubernetes.io/gateway_type", "centralized"),
                    ("ovn.kubernetes.io/gateway_node", &nodes[1].name()),
                ],
            ),
        ],
    );
    let node_docs: Vec<String> = nodes
        .iter()
        .map(|n| common::node(&n.name(), &n.chassis()))
        .collect();
    write_manifest(&manifests, "nodes.yaml", &node_docs);
    // (namespace, name, node)
    let specs = [
        ("default", "a", 0),
        ("default", "b", 1),
        ("web", "w", 1),
        ("corp", "c", 0),
    ];
    let mut docs: Vec<String> = specs
        .iter()
        .map(|(ns, name, n)| pod(ns, name, &nodes[*n].name(), &[], None))
        .collect();
    docs.push(pod("default", "ghost", &nodes[1].name(), &[], None));
    write_manifest(&manifests, "pods.yaml", &docs);
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
    let mut pods = std::collections::BTreeMap::new();
    for (i, (ns, name, n)) in specs.iter().enumerate() {
        let netns = Netns::create(&format!("ovk{}-t{i}", lab.id())).expect("pod namespace");
        let path = format!("/var/run/netns/{}", netns.name());
        let container = format!("{i:04x}7ace{i:04x}0123456789abcdef");
        let req = request(Command::Add, &container, &path, Some((ns, name)));
        let ip = added(call(&agents[*n].socket, &req), name).ips[0]
            .address
            .addr();
        pods.insert(format!("{ns}/{name}"), (netns, ip));
    }
    central.sync_hv().expect("sync");
    let servers: Vec<SourceEcho> = ["default/b", "web/w", "corp/c"]
        .iter()
        .map(|p| {
            let (ns, ip) = &pods[*p];
            SourceEcho::start(ns, SocketAddr::new(*ip, PORT)).expect("server")
        })
        .collect();
    let echo = SourceEcho::start(
        external.netns(),
        SocketAddr::new(external.host_ip(), ECHO_PORT),
    )
    .expect("external echo");
    let (nb, sb) = (central.nb_remote(), central.sb_remote());
    let ns_of = |p: &str| &pods[p].0;
    let at = |p: &str| SocketAddr::new(pods[p].1, PORT);

    // 1. Same subnet, across nodes: delivered, and it connects.
    let (v, json) = trace(&nb, &sb, "default/a", &format!("default/b:{PORT}"));
    assert_eq!(v["verdict"], "delivered", "{json:#}");
    assert_eq!(v["port"], "default.b");
    assert!(connects(ns_of("default/a"), at("default/b")));

    // 2. Across subnets (through the cluster router): delivered, and it connects.
    let (v, json) = trace(&nb, &sb, "default/a", &format!("corp/c:{PORT}"));
    assert_eq!(v["verdict"], "delivered", "{json:#}");
    assert!(
        json["hops"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["kind"] == "router"),
        "{json:#}"
    );
    assert!(connects(ns_of("default/a"), at("corp/c")));

    // 3. Into a private subnet from outside it: dropped by the subnet's rule, and no
    // connection; from inside it is allowed.
    let (v, json) = trace(&nb, &sb, "default/a", &format!("web/w:{PORT}"));
    assert_eq!(v["verdict"], "dropped_by_acl", "{json:#}");
    assert_eq!(v["rule"]["kind"], "private_subnet");
    assert_eq!(v["rule"]["subnet"], "web");
    assert!(!connects(ns_of("default/a"), at("web/w")));

    // 4. A pod that never started: its port is down (bound to no chassis); nothing answers.
    let ghost_ip: IpAddr = wait_for(Duration::from_secs(10), "ghost's address", || {
        common::results(&state, "pods.json")
            .get("default/ghost")
            .and_then(|a| a.get("ovn.kubernetes.io/ip_address")?.parse().ok())
    });
    let (v, json) = trace(&nb, &sb, "default/a", "default/ghost");
    assert_eq!(v["verdict"], "not_bound", "{json:#}");
    assert!(!connects(
        ns_of("default/a"),
        SocketAddr::new(ghost_ip, PORT)
    ));

    // 5. Egress from the centralized subnet: rerouted to the gateway node's management port,
    // and the external host sees the gateway node's address.
    let host = SocketAddr::new(external.host_ip(), ECHO_PORT);
    let (v, json) = trace(&nb, &sb, "corp/c", &host.to_string());
    assert_eq!(v["verdict"], "to_node", "{json:#}");
    assert_eq!(v["node"], nodes[1].name());
    let seen = wait_for(Duration::from_secs(20), "egress through node 1", || {
        source_seen_by(ns_of("corp/c"), host, Duration::from_secs(1)).ok()
    });
    assert_eq!(seen, IpAddr::V4(ExternalNet::node_ip(&nodes[1])));

    // 6. To a ClusterIP: the Service's load balancer picks default/b, delivered, and a
    // connection to the cluster IP reaches b.
    let b_ip = pods["default/b"].1;
    write_manifest(
        &manifests,
        "services.yaml",
        &echo_service(b_ip, &nodes[1].name()),
    );
    let (v, json) = wait_for(Duration::from_secs(30), "the Service in the trace", || {
        try_trace(&nb, &sb, "default/a", "default/echo:80").ok()
    });
    assert_eq!(v["verdict"], "delivered", "{json:#}");
    assert_eq!(v["port"], "default.b", "{json:#}");
    assert_eq!(
        json["destination"]["load_balancer"][0],
        "svc-default-echo-tcp"
    );
    let backend = format!("{b_ip}:{PORT}");
    assert!(chose_backend(&json, &backend), "{json:#}");
    central.sync_hv().expect("sync");
    let vip: SocketAddr = format!("{CLUSTER_IP}:80").parse().unwrap();
    let seen = wait_for(Duration::from_secs(20), "the cluster IP answers", || {
        source_seen_by(ns_of("default/a"), vip, Duration::from_secs(1)).ok()
    });
    assert_eq!(seen, pods["default/a"].1, "b sees a's own address");

    // 7. A node port from outside: a node forwards it to the node-port VIP through its
    // management port, so the trace starts there: the load balancer picks default/b,
    // delivered; and the external host's connection to node 0's address reaches b, which
    // sees node 0's management (ovn0) address.
    let to_vip = format!("{NODE_PORT_VIP}:{NODE_PORT}");
    let node0 = format!("node/{}", nodes[0].name());
    let (v, json) = trace(&nb, &sb, &node0, &to_vip);
    assert_eq!(v["verdict"], "delivered", "{json:#}");
    assert_eq!(v["port"], "default.b", "{json:#}");
    assert_eq!(
        json["destination"]["load_balancer"][0],
        "svc-default-echo-tcp"
    );
    assert!(chose_backend(&json, &backend), "{json:#}");
    let node_port = SocketAddr::new(IpAddr::V4(ExternalNet::node_ip(&nodes[0])), NODE_PORT);
    let seen = wait_for(
        Duration::from_secs(30),
        "node 0's node port answers",
        || source_seen_by(external.netns(), node_port, Duration::from_secs(1)).ok(),
    );
    assert_eq!(
        seen,
        json["source"]["ip"]
            .as_str()
            .unwrap()
            .parse::<IpAddr>()
            .unwrap()
    );

    // 8. A NetworkPolicy isolating default/b's ingress (only pods labelled role=client may
    // come, and a is not): dropped, and the verdict names the policy.
    write_manifest(
        &manifests,
        "policies.yaml",
        &["apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: only-clients\n  namespace: default\nspec:\n  podSelector: {}\n  policyTypes: [Ingress]\n  ingress:\n  - from: [{podSelector: {matchLabels: {role: client}}}]\n".to_owned()],
    );
    // (`ovnkit trace` reads the NB, then asks `ovn-trace` of the SB: until the NB it read
    // holds the policy's ACLs too, the flow that drops names an ACL it cannot find.)
    let (v, json) = wait_for(Duration::from_secs(30), "the policy in the trace", || {
        let (v, json) = trace(&nb, &sb, "default/a", &format!("default/b:{PORT}"));
        (v["verdict"] == "dropped_by_acl" && v["rule"]["kind"] != "acl").then_some((v, json))
    });
    assert_eq!(v["rule"]["kind"], "network_policy", "{json:#}");
    assert_eq!(v["rule"]["name"], "default/only-clients");
    central.sync_hv().expect("sync");
    assert!(!connects(ns_of("default/a"), at("default/b")));
    drop(echo);
    drop(servers);
}
