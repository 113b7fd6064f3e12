//! The node-port table applied with the real `nft` in a namespace of its own: the kernel takes
//! the script, applying a plan twice changes nothing, a smaller plan drops what it no longer
//! lists, an empty one removes the table, and another table of the node is never touched.

use std::net::Ipv4Addr;

use ovn_testbed::{Lab, Netns};
use ovnkit_kube::agent::nodeport::{
    NFT_TABLE, NodePort, NodePortPlan, Protocol, TrafficPolicy, apply,
};

fn port(protocol: Protocol, port: u16, policy: TrafficPolicy) -> NodePort {
    NodePort {
        protocol,
        port,
        vip: Ipv4Addr::new(169, 254, 169, 3),
        policy,
    }
}

fn apply_in(ns: &Netns, plan: &NodePortPlan) {
    let plan = plan.clone();
    ns.run(move || apply(&plan, "ovn0"))
        .expect("a thread in the namespace")
        .expect("the plan applies");
}

/// `nft list table ip ovnkit-nodeport`, `None` when there is no such table.
fn table(ns: &Netns) -> Option<String> {
    let out = ns
        .exec_raw("nft", &["list", "table", "ip", NFT_TABLE])
        .expect("nft runs");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn the_table_follows_the_plan_exactly_and_leaves_other_tables_alone() {
    let Some(lab) = Lab::for_test() else { return };
    let ns = Netns::create(&format!("ovk{}-np", lab.id())).expect("namespace");
    ns.exec("nft", &["add", "table", "ip", "someone-else"])
        .expect("a table of someone else");
    let forwarding = || {
        ns.exec("cat", &["/proc/sys/net/ipv4/ip_forward"])
            .expect("ip_forward")
            .trim()
            .to_owned()
    };
    assert_eq!(forwarding(), "0");

    let mut plan = NodePortPlan::default();
    plan.ports
        .insert(port(Protocol::Tcp, 30080, TrafficPolicy::Cluster));
    plan.ports
        .insert(port(Protocol::Tcp, 30081, TrafficPolicy::Local));
    plan.ports
        .insert(port(Protocol::Udp, 30082, TrafficPolicy::Cluster));
    apply_in(&ns, &plan);
    let first = table(&ns).expect("the table exists");
    println!("{first}");
    for element in [
        "tcp . 30080 : 169.254.169.3 . 30080",
        "tcp . 30081 : 169.254.169.3 . 30081",
        "udp . 30082 : 169.254.169.3 . 30082",
        "169.254.169.3 . tcp . 30080",
        "169.254.169.3 . udp . 30082",
        "iifname != \"ovn0\" fib daddr type local dnat ip to meta l4proto . th dport map @node_ports",
        "oifname \"ovn0\" ct status dnat ip daddr . meta l4proto . th dport @cluster_ports masquerade",
    ] {
        assert!(first.contains(element), "{element:?} in {first}");
    }
    assert!(
        !first.contains("169.254.169.3 . tcp . 30081"),
        "a Local port is not masqueraded: {first}"
    );
    assert_eq!(forwarding(), "1");

    apply_in(&ns, &plan);
    assert_eq!(table(&ns).as_deref(), Some(first.as_str()), "idempotent");

    plan.ports
        .remove(&port(Protocol::Tcp, 30081, TrafficPolicy::Local));
    plan.ports
        .remove(&port(Protocol::Udp, 30082, TrafficPolicy::Cluster));
    apply_in(&ns, &plan);
    let smaller = table(&ns).expect("the table exists");
    assert!(smaller.contains("tcp . 30080 : 169.254.169.3 . 30080"));
    assert!(
        !smaller.contains("30081") && !smaller.contains("30082"),
        "{smaller}"
    );

    apply_in(&ns, &NodePortPlan::default());
    assert_eq!(table(&ns), None, "no node ports, no table");
    apply_in(&ns, &NodePortPlan::default());
    assert_eq!(table(&ns), None);
    let all = ns
        .exec("nft", &["list", "tables"])
        .expect("nft list tables");
    assert!(all.contains("table ip someone-else"), "{all}");
}
