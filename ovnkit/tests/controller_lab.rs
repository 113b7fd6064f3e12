//! `ovnkit controller` in manifest mode on a real 3-node OVN lab: three namespaces (the default
//! subnet, a private subnet with exclusions, a centralized-gateway subnet), 30 pods with static
//! IP/MAC, an `ip_pool` StatefulSet and QoS. The NB, read back with `ovn-nbctl`, holds what
//! the objects ask for; pods placed on the named nodes with the allocated addresses reach each
//! other across nodes and subnets, and nothing outside reaches into the private subnet.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use common::{Controller, nb_rows, pod, results, wait_for, write_manifest};
use ipnet::IpNet;
use ovn_testbed::{CentralOptions, Lab, Pod, PodConfig};

/// (namespace, pod, node index, annotations, StatefulSet)
type PodSpec = (
    &'static str,
    String,
    usize,
    Vec<(&'static str, &'static str)>,
    Option<&'static str>,
);

const STATIC_MAC: &str = "0a:00:00:00:aa:01";
const STATIC_IP: &str = "10.16.7.7";
const POOL: &str = "10.17.0.100,10.17.0.101,10.17.0.102";

fn pods() -> Vec<PodSpec> {
    let mut out: Vec<PodSpec> = Vec::new();
    for i in 0..11 {
        out.push(("default", format!("app-{i}"), i % 3, Vec::new(), None));
    }
    out.push((
        "default",
        "fixed".into(),
        1,
        vec![
            ("ovn.kubernetes.io/ip_address", STATIC_IP),
            ("ovn.kubernetes.io/mac_address", STATIC_MAC),
        ],
        None,
    ));
    for i in 0..6 {
        out.push(("web", format!("web-{i}"), i % 3, Vec::new(), None));
    }
    for i in 0..3 {
        out.push((
            "web",
            format!("db-{i}"),
            (i + 1) % 3,
            vec![("ovn.kubernetes.io/ip_pool", POOL)],
            Some("db"),
        ));
    }
    for i in 0..9 {
        let qos = if i < 3 {
            vec![
                ("ovn.kubernetes.io/ingress_rate", "20"),
                ("ovn.kubernetes.io/egress_rate", "10"),
            ]
        } else {
            Vec::new()
        };
        out.push(("corp", format!("corp-{i}"), i % 3, qos, None));
    }
    out
}

#[test]
fn thirty_pods_on_three_nodes_get_ports_acls_qos_and_connectivity() {
    let Some(lab) = Lab::for_test() else { return };
    let central = lab
        .start_central(CentralOptions::default())
        .expect("central");
    let nodes: Vec<_> = (0..3)
        .map(|_| lab.start_node(&central).expect("node"))
        .collect();
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
                    ("ovn.kubernetes.io/exclude_ips", "10.17.0.2..10.17.0.9"),
                    ("ovn.kubernetes.io/private", "true"),
                ],
            ),
            common::namespace(
                "corp",
                &[
                    ("ovn.kubernetes.io/cidr", "10.18.0.0/24"),
                    ("ovn.kubernetes.io/gateway_type", "centralized"),
                    ("ovn.kubernetes.io/gateway_node", "node1"),
                ],
            ),
        ],
    );
    let node_docs: Vec<String> = nodes
        .iter()
        .map(|n| common::node(&n.name(), &n.chassis()))
        .collect();
    write_manifest(&manifests, "nodes.yaml", &node_docs);
    let specs = pods();
    assert_eq!(specs.len(), 30);
    let pod_docs: Vec<String> = specs
        .iter()
        .map(|(ns, name, node, ann, sts)| pod(ns, name, &nodes[*node].name(), ann, *sts))
        .collect();
    write_manifest(&manifests, "pods.yaml", &pod_docs);

    let controller = Controller::start(
        &central.nb_remote(),
        &manifests,
        &state,
        &lab.dir().join("controller.log"),
        &[],
    );
    let allocated = wait_for(Duration::from_secs(60), "30 pods allocated", || {
        let r = results(&state, "pods.json");
        let done = r
            .values()
            .filter(|a| a.get("ovn.kubernetes.io/allocated").map(String::as_str) == Some("true"))
            .count();
        (done == 30).then_some(r)
    });
    let events = common::events(&state);
    assert!(events.is_empty(), "no problem reported: {events:#?}");

    // The NB, as ovn-nbctl reads it.
    let nbctl = |args: &[&str]| central.nbctl(args).expect("ovn-nbctl");
    let switches: BTreeSet<String> = nbctl(&["--bare", "--columns=name", "list", "Logical_Switch"])
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        switches,
        ["corp", "join", "ovn-default", "web"]
            .map(str::to_owned)
            .into()
    );
    let ports: BTreeMap<String, (String, String)> =
        nb_rows(nbctl, "Logical_Switch_Port", "name,addresses,options")
            .into_iter()
            .map(|r| (r[0].clone(), (r[1].clone(), r[2].clone())))
            .collect();
    for (ns, name, node, _, _) in &specs {
        let a = &allocated[&format!("{ns}/{name}")];
        let (addresses, options) = ports
            .get(&format!("{ns}.{name}"))
            .unwrap_or_else(|| panic!("port {ns}.{name}"));
        assert_eq!(
            *addresses,
            format!(
                "{} {}",
                a["ovn.kubernetes.io/mac_address"], a["ovn.kubernetes.io/ip_address"]
            )
        );
        assert!(
            options.contains(&format!("requested-chassis={}", nodes[*node].chassis())),
            "{ns}/{name}: {options}"
        );
    }
    assert_eq!(
        ports["default.fixed"].0,
        format!("{STATIC_MAC} {STATIC_IP}")
    );
    for i in 0..3 {
        assert_eq!(
            allocated[&format!("web/db-{i}")]["ovn.kubernetes.io/ip_address"],
            format!("10.17.0.{}", 100 + i),
            "StatefulSet ordinal {i} takes the pool's address {i}"
        );
    }
    for i in 0..6 {
        let ip: IpAddr = allocated[&format!("web/web-{i}")]["ovn.kubernetes.io/ip_address"]
            .parse()
            .unwrap();
        let last = match ip {
            IpAddr::V4(v4) => v4.octets()[3],
            IpAddr::V6(_) => panic!("v4 only"),
        };
        assert!(!(2..=9).contains(&last), "web/web-{i} got excluded {ip}");
    }
    let acls = nbctl(&["acl-list", "web"]);
    assert_eq!(acls.lines().count(), 3, "drop, same subnet, nodes:\n{acls}");
    assert!(acls.contains("1000") && acls.contains("drop"), "{acls}");
    assert!(
        acls.contains("1001") && acls.contains("ip4.src == 10.17.0.0/24"),
        "{acls}"
    );
    assert!(
        acls.contains("3000") && acls.contains("ip4.src == 100.64.0.0/16"),
        "{acls}"
    );
    let qos = nbctl(&["qos-list", "corp"]);
    assert_eq!(
        qos.lines().count(),
        6,
        "ingress and egress limits of 3 pods:\n{qos}"
    );
    let policies = nbctl(&["lr-policy-list", "ovn-cluster"]);
    assert!(
        policies.contains("ip4.src == 10.18.0.0/24") && policies.contains("reroute"),
        "corp leaves through its gateway node:\n{policies}"
    );

    // Pods placed on their nodes with what was allocated (as the node agent will).
    let mut placed: BTreeMap<String, Pod> = BTreeMap::new();
    for (ns, name, node, _, _) in &specs {
        let a = &allocated[&format!("{ns}/{name}")];
        let cidr: IpNet = a["ovn.kubernetes.io/cidr"].parse().unwrap();
        let ip: IpAddr = a["ovn.kubernetes.io/ip_address"].parse().unwrap();
        let gw: IpAddr = a["ovn.kubernetes.io/gateway"].parse().unwrap();
        let config = PodConfig::new(
            &format!("{ns}-{name}"),
            &format!("{ns}.{name}"),
            &a["ovn.kubernetes.io/mac_address"],
            IpNet::new(ip, cidr.prefix_len()).unwrap(),
        )
        .with_gateway(gw);
        placed.insert(
            format!("{ns}/{name}"),
            nodes[*node].add_pod(config).expect("pod"),
        );
    }
    let reaches = |from: &str, to: &str| {
        let dst = placed[to].ip();
        placed[from]
            .ping(dst, 1)
            .map(|s| s.received > 0)
            .unwrap_or(false)
    };
    // Flows take a moment to land on every node.
    wait_for(
        Duration::from_secs(30),
        "default/app-0 reaches default/app-1",
        || reaches("default/app-0", "default/app-1").then_some(()),
    );
    for (from, to) in [
        ("default/app-0", "default/app-2"), // node1 -> node3
        ("default/fixed", "default/app-0"), // static address
        ("default/app-1", "corp/corp-2"),   // across subnets and nodes
        ("corp/corp-0", "default/app-1"),
        ("web/web-0", "web/web-1"), // inside the private subnet, across nodes
        ("web/db-0", "web/web-2"),
        ("web/web-0", "default/app-1"), // out of it: replies come back
    ] {
        assert!(
            wait_for(
                Duration::from_secs(15),
                &format!("{from} reaches {to}"),
                || { reaches(from, to).then_some(true) }
            ),
            "{from} -> {to}"
        );
    }
    for (from, to) in [("default/app-0", "web/web-0"), ("corp/corp-1", "web/db-1")] {
        let dst = placed[to].ip();
        let stats = placed[from].ping(dst, 3).expect("ping runs");
        assert_eq!(stats.received, 0, "{from} must not reach private {to}");
    }
    drop(placed);
    drop(controller);
}
