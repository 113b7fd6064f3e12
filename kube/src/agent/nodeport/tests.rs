use std::collections::BTreeMap;

use ovsdb::Uuid;

use super::*;

fn lb(name: &str, protocol: Option<LoadBalancerProtocol>, ids: &[(&str, &str)]) -> LoadBalancer {
    LoadBalancer {
        uuid: Uuid::from_u128(name.len() as u128),
        name: name.into(),
        protocol,
        external_ids: ids
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .chain([(owner::OWNER.to_owned(), "services".to_owned())])
            .collect::<BTreeMap<_, _>>(),
        ..Default::default()
    }
}

fn np(protocol: Protocol, port: u16, policy: TrafficPolicy) -> NodePort {
    NodePort {
        protocol,
        port,
        vip: Ipv4Addr::new(169, 254, 169, 3),
        policy,
    }
}

const VIP: &str = "169.254.169.3";

#[test]
fn rows_give_one_node_port_per_protocol_and_port_with_its_policy() {
    let rows = vec![
        // No protocol: TCP.
        lb(
            "svc-web-tcp",
            None,
            &[
                (owner::LB_NODE_PORTS, "30080, 30090"),
                (owner::LB_NODE_PORT_VIP, VIP),
                (owner::LB_TRAFFIC_POLICY, "Cluster"),
            ],
        ),
        lb(
            "svc-dns-udp",
            Some(LoadBalancerProtocol::Udp),
            &[
                (owner::LB_NODE_PORTS, "30053"),
                (owner::LB_NODE_PORT_VIP, VIP),
                (owner::LB_TRAFFIC_POLICY, "Cluster"),
            ],
        ),
        // A template load balancer of a Local Service carries the VIP's address too.
        lb(
            "svc-local-tcp-np",
            Some(LoadBalancerProtocol::Tcp),
            &[
                (owner::LB_NODE_PORTS, "30081"),
                (owner::LB_NODE_PORT_VIP, VIP),
                (owner::LB_TRAFFIC_POLICY, "Local"),
            ],
        ),
        // A ClusterIP-only load balancer: not a node port.
        lb("svc-plain-tcp", None, &[]),
    ];
    let (plan, skipped) = plan_from_rows(rows.clone());
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(
        plan.ports.iter().copied().collect::<Vec<_>>(),
        vec![
            np(Protocol::Tcp, 30080, TrafficPolicy::Cluster),
            np(Protocol::Tcp, 30081, TrafficPolicy::Local),
            np(Protocol::Tcp, 30090, TrafficPolicy::Cluster),
            np(Protocol::Udp, 30053, TrafficPolicy::Cluster),
        ]
    );
    // The order of the rows does not matter.
    assert_eq!(plan_from_rows(rows.into_iter().rev()).0, plan);
    assert_eq!(
        plan.vips().into_iter().collect::<Vec<_>>(),
        vec![Ipv4Addr::new(169, 254, 169, 3)]
    );
    assert_eq!(
        plan.routes(),
        vec!["169.254.169.3/32".parse::<IpNet>().unwrap()]
    );
    assert_eq!(
        plan.explain()[1],
        "tcp/30081 -> 169.254.169.3:30081 (Local)"
    );
    assert!(plan_from_rows(Vec::new()).0.is_empty());
}

#[test]
fn bad_rows_and_bad_ports_are_skipped_naming_the_key_and_the_rest_is_kept() {
    let good = [
        (owner::LB_NODE_PORT_VIP, VIP),
        (owner::LB_TRAFFIC_POLICY, "Cluster"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
        let mut v: BTreeMap<&str, &str> = good.iter().copied().collect();
        v.extend(extra.iter().copied());
        v.into_iter().collect()
    };
    let rows = vec![
        lb(
            "a-ports",
            None,
            &with(&[(owner::LB_NODE_PORTS, "30080,http,0,70000")]),
        ),
        lb(
            "b-v6",
            None,
            &with(&[
                (owner::LB_NODE_PORTS, "30081"),
                (owner::LB_NODE_PORT_VIP, "fd00::3"),
            ]),
        ),
        lb(
            "c-policy",
            None,
            &with(&[
                (owner::LB_NODE_PORTS, "30082"),
                (owner::LB_TRAFFIC_POLICY, "Nearest"),
            ]),
        ),
        lb(
            "d-no-vip",
            None,
            &[
                (owner::LB_NODE_PORTS, "30083"),
                (owner::LB_TRAFFIC_POLICY, "Local"),
            ],
        ),
        lb(
            "e-proto",
            Some(LoadBalancerProtocol::Other("icmp".into())),
            &with(&[(owner::LB_NODE_PORTS, "30084")]),
        ),
        lb(
            "f-loopback",
            None,
            &with(&[
                (owner::LB_NODE_PORTS, "30085"),
                (owner::LB_NODE_PORT_VIP, "127.0.0.1"),
            ]),
        ),
        lb(
            "h-template",
            None,
            &with(&[
                (owner::LB_NODE_PORTS, "30087"),
                (owner::LB_NODE_PORT_VIP, "^OVNKIT_NODE_PORT_VIP"),
            ]),
        ),
        lb(
            "g-no-policy",
            None,
            &[
                (owner::LB_NODE_PORTS, "30086"),
                (owner::LB_NODE_PORT_VIP, VIP),
            ],
        ),
    ];
    let (plan, skipped) = plan_from_rows(rows);
    assert_eq!(
        plan.ports.iter().copied().collect::<Vec<_>>(),
        vec![np(Protocol::Tcp, 30080, TrafficPolicy::Cluster)]
    );
    let lines: Vec<String> = skipped.iter().map(ToString::to_string).collect();
    let expect = [
        ("a-ports", "\"http\" is not a port"),
        ("a-ports", "\"0\" is not a port"),
        ("a-ports", "\"70000\" is not a port"),
        ("b-v6", "IPv4 only"),
        ("c-policy", "\"Nearest\" is neither Cluster nor Local"),
        ("d-no-vip", "ovnkit.io/node-port-vip is missing"),
        ("e-proto", "unknown protocol \"icmp\""),
        ("f-loopback", "not a unicast address"),
        ("g-no-policy", "ovnkit.io/traffic-policy is missing"),
        (
            "h-template",
            "ovnkit.io/node-port-vip \"^OVNKIT_NODE_PORT_VIP\": invalid",
        ),
    ];
    assert_eq!(lines.len(), expect.len(), "{lines:#?}");
    for ((row, what), line) in expect.iter().zip(&lines) {
        assert!(
            line.starts_with(&format!("load balancer {row}: ")) && line.contains(what),
            "{line:?} should name {row} and say {what:?}"
        );
    }
}

#[test]
fn a_port_two_rows_claim_differently_stays_with_the_first_by_name() {
    let rows = vec![
        lb(
            "z-local",
            None,
            &[
                (owner::LB_NODE_PORTS, "30080"),
                (owner::LB_NODE_PORT_VIP, VIP),
                (owner::LB_TRAFFIC_POLICY, "Local"),
            ],
        ),
        lb(
            "a-cluster",
            None,
            &[
                (owner::LB_NODE_PORTS, "30080"),
                (owner::LB_NODE_PORT_VIP, VIP),
                (owner::LB_TRAFFIC_POLICY, "Cluster"),
            ],
        ),
        // The same node port again, identical: no conflict.
        lb(
            "b-cluster",
            None,
            &[
                (owner::LB_NODE_PORTS, "30080"),
                (owner::LB_NODE_PORT_VIP, VIP),
                (owner::LB_TRAFFIC_POLICY, "Cluster"),
            ],
        ),
        // Another protocol: another node port.
        lb(
            "c-udp",
            Some(LoadBalancerProtocol::Udp),
            &[
                (owner::LB_NODE_PORTS, "30080"),
                (owner::LB_NODE_PORT_VIP, VIP),
                (owner::LB_TRAFFIC_POLICY, "Local"),
            ],
        ),
    ];
    let (plan, skipped) = plan_from_rows(rows);
    assert_eq!(
        plan.ports.iter().copied().collect::<Vec<_>>(),
        vec![
            np(Protocol::Tcp, 30080, TrafficPolicy::Cluster),
            np(Protocol::Udp, 30080, TrafficPolicy::Local),
        ]
    );
    assert_eq!(skipped.len(), 1);
    assert_eq!(
        skipped[0].to_string(),
        "load balancer z-local: tcp/30080 is load balancer a-cluster's \
         (tcp/30080 -> 169.254.169.3:30080 (Cluster))"
    );
}

#[test]
fn the_script_replaces_the_whole_table_masquerades_cluster_ports_only_and_an_empty_plan_removes_it()
{
    let mut plan = NodePortPlan::default();
    assert_eq!(
        nft_script(&plan, "ovn0"),
        "table ip ovnkit-nodeport\ndelete table ip ovnkit-nodeport\n"
    );
    plan.ports
        .insert(np(Protocol::Tcp, 30081, TrafficPolicy::Local));
    let local_only = nft_script(&plan, "ovn0");
    assert!(
        local_only.contains(
            "  set cluster_ports {\n    type ipv4_addr . inet_proto . inet_service\n  }\n"
        ),
        "no Cluster port, no elements: {local_only}"
    );
    plan.ports
        .insert(np(Protocol::Tcp, 30080, TrafficPolicy::Cluster));
    plan.ports
        .insert(np(Protocol::Sctp, 30082, TrafficPolicy::Cluster));
    assert_eq!(
        nft_script(&plan, "ovn0"),
        "table ip ovnkit-nodeport\ndelete table ip ovnkit-nodeport\n\
         table ip ovnkit-nodeport {\n  \
         map node_ports {\n    type inet_proto . inet_service : ipv4_addr . inet_service\n    \
         elements = { tcp . 30080 : 169.254.169.3 . 30080, tcp . 30081 : 169.254.169.3 . 30081, \
         sctp . 30082 : 169.254.169.3 . 30082 }\n  }\n  \
         set cluster_ports {\n    type ipv4_addr . inet_proto . inet_service\n    \
         elements = { 169.254.169.3 . tcp . 30080, 169.254.169.3 . sctp . 30082 }\n  }\n  \
         chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    \
         iifname != \"ovn0\" fib daddr type local dnat ip to meta l4proto . th dport map @node_ports\n  }\n  \
         chain output {\n    type nat hook output priority -100; policy accept;\n    \
         ip daddr != 127.0.0.0/8 fib daddr type local dnat ip to meta l4proto . th dport map @node_ports\n  }\n  \
         chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n    \
         oifname \"ovn0\" ct status dnat ip daddr . meta l4proto . th dport @cluster_ports masquerade\n  }\n\
         }\n"
    );
}
