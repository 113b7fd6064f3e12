//! Egress through the node agent on a real OVN lab: a central and two nodes wired to the
//! testbed's external network, the real controller binary in manifest mode planning egress for
//! the default (distributed) subnet, and the real `ovnkit agent` binary in each node's
//! namespace deriving its node plan from the controller's egress policies and applying it
//! (forwarding, masquerade). Pods are plumbed by CNI `ADD`s over the agent's socket; the
//! oracle is a source-address echo server on the external host.
//!
//! The external network is lab plumbing (the nodes' second link, `br-ext` with the node's
//! external address on the external host's subnet): the external host is on a connected
//! route of every node, so the nodes need no default route.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::agent::{AgentProc, ECHO_PORT, PodSpec, TestPod, added, call, cluster, source_seen};
use common::{wait_for, write_manifest};
use ovn_testbed::{ExternalNet, Node, SourceEcho, ping};
use ovnkit_kube::cni::protocol::{Command, Reply};

/// The node's `inet ovnkit` nftables table, empty when there is none.
fn nft_table(node: &Node) -> String {
    node.netns()
        .exec_raw("nft", &["list", "table", "inet", "ovnkit"])
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

#[test]
fn pods_on_two_nodes_leave_through_their_own_node_with_its_external_address_and_a_node_without_pods_stops_masquerading()
 {
    let specs: Vec<PodSpec> = vec![("e0".into(), 0, Vec::new()), ("e1".into(), 1, Vec::new())];
    let Some(c) = cluster(&specs) else { return };
    let external = c.lab.start_external_net().expect("external net");
    for n in &c.nodes {
        external.connect(n).expect("external link");
    }
    let agents: Vec<AgentProc> = c
        .nodes
        .iter()
        .map(|n| AgentProc::start(&c.lab, &c.central, n))
        .collect();
    let pods: Vec<TestPod> = (0..2)
        .map(|i| TestPod::new(&c.lab, &format!("e{i}"), 40 + i))
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
    c.central.sync_hv().expect("sync");

    // Each agent applies its node's plan: forwarding and a masquerade rule for the subnet,
    // cluster-internal destinations excepted.
    for (i, n) in c.nodes.iter().enumerate() {
        let table = wait_for(
            Duration::from_secs(30),
            &format!("the masquerade rule on node {i}"),
            || {
                Some(nft_table(n))
                    .filter(|t| t.contains("10.16.0.0/16") && t.contains("masquerade"))
            },
        );
        assert!(
            table.contains("100.64.0.0/16"),
            "join subnet excepted: {table}"
        );
        let forward = n
            .netns()
            .exec("cat", &["/proc/sys/net/ipv4/ip_forward"])
            .expect("ip_forward");
        assert_eq!(forward.trim(), "1", "node {i} forwards");
    }

    // The external host sees each pod as its own node's external address.
    let echo = SourceEcho::start(
        external.netns(),
        SocketAddr::new(external.host_ip(), ECHO_PORT),
    )
    .expect("echo server");
    for (i, p) in pods.iter().enumerate() {
        let seen = source_seen(&p.ns, &external, Duration::from_secs(20));
        let want = IpAddr::V4(ExternalNet::node_ip(&c.nodes[i]));
        println!("external host sees pod {} (node {i}) as {seen:?}", p.name);
        assert_eq!(seen, Some(want), "pod {} leaves as node {i}", p.name);
    }
    drop(echo);

    // Cluster-internal traffic stays unmasqueraded on the normal path.
    assert_eq!(ping(&pods[0].ns, ips[1], 3).unwrap().loss_percent(), 0.0);

    // Pod e1 goes away: node 1 carries no egress any more and its table is removed; node 0
    // keeps its rule.
    assert_eq!(
        call(&agents[1].socket, &pods[1].req(Command::Del)),
        Some(Reply::Done)
    );
    write_manifest(
        &c.lab.dir().join("manifests"),
        "pods.yaml",
        &[common::pod("default", "e0", &c.nodes[0].name(), &[], None)],
    );
    wait_for(
        Duration::from_secs(30),
        "node 1's masquerade table removed",
        || nft_table(&c.nodes[1]).is_empty().then_some(()),
    );
    assert!(nft_table(&c.nodes[0]).contains("10.16.0.0/16"));
    let log = std::fs::read_to_string(&agents[1].log).unwrap_or_default();
    assert!(
        log.contains("no longer holds"),
        "the agent logs what changed"
    );
}
