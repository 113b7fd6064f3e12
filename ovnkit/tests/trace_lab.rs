//! `ovnkit trace` against real packets on a real OVN lab: for each scenario the command's
//! verdict (read from `--json`) is what TCP connections between the lab's pods show, and for
//! drops it names the rule.
//!
//! The lab: a central, two nodes on the testbed's external network, the controller binary in
//! manifest mode, `ovnkit agent` on both nodes (management ports, egress), and pods plumbed
//! by CNI `ADD`s over the agents' sockets in three namespaces: `default` (distributed gateway),
//! `web` (a private subnet) and `corp` (a centralized gateway on node 1); one more pod of
//! `default` is never started. Last, a NetworkPolicy isolates a pod.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::agent::{AgentProc, ECHO_PORT, added, call, request};
use common::{Controller, pod, wait_for, write_manifest};
use ovn_testbed::{CentralOptions, ExternalNet, Lab, Netns, SourceEcho, source_seen_by};
use ovnkit_kube::cni::protocol::Command;

const PORT: u16 = 8080;

/// `ovnkit trace FROM TO --json` -> (verdict object, whole JSON).
fn trace(nb: &str, sb: &str, from: &str, to: &str) -> (serde_json::Value, serde_json::Value) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ovnkit"))
        .args(["trace", from, to, "--nb", nb, "--sb", sb, "--json"])
        .output()
        .expect("ovnkit trace runs");
    assert!(
        out.status.success(),
        "ovnkit trace {from} {to}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    (json["verdict"].clone(), json)
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

    // 6. A NetworkPolicy isolating default/b's ingress (only pods labelled role=client may
    // come, and a is not): dropped, and the verdict names the policy.
    write_manifest(
        &manifests,
        "policies.yaml",
        &["apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: only-clients\n  namespace: default\nspec:\n  podSelector: {}\n  policyTypes: [Ingress]\n  ingress:\n  - from: [{podSelector: {matchLabels: {role: client}}}]\n".to_owned()],
    );
    let (v, json) = wait_for(Duration::from_secs(30), "the policy in the trace", || {
        let (v, json) = trace(&nb, &sb, "default/a", &format!("default/b:{PORT}"));
        (v["verdict"] == "dropped_by_acl").then_some((v, json))
    });
    assert_eq!(v["rule"]["kind"], "network_policy", "{json:#}");
    assert_eq!(v["rule"]["name"], "default/only-clients");
    central.sync_hv().expect("sync");
    assert!(!connects(ns_of("default/a"), at("default/b")));
    drop(echo);
    drop(servers);
}
