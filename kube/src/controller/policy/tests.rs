//! Checking policies and building their rows: exact match strings.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::NetworkPolicy;
use ovn_model::plan::RowTarget;

use super::rows::port_group_name;
use super::*;

fn policy(yaml: &str) -> NetworkPolicy {
    serde_yaml::from_str(yaml).unwrap()
}

fn compiled(yaml: &str) -> Compiled {
    compile(&policy(yaml)).unwrap()
}

fn error(yaml: &str) -> String {
    let e = compile(&policy(yaml)).unwrap_err();
    format!("{}: {}", e.field, e.reason)
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A pod: namespace/name, labels, ip, named ports.
type PodRow = (
    String,
    BTreeMap<String, String>,
    String,
    BTreeMap<String, (String, u16)>,
);

struct World {
    pods: Vec<PodRow>,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

impl World {
    /// x/a, x/b, y/a, y/b, z/a with `pod` labels; x/a and y/a serve `web` on 80, x/b on 8080
    /// (and UDP `dns` on 53).
    fn xyz() -> Self {
        let mut pods = Vec::new();
        for (i, (ns, pod)) in [("x", "a"), ("x", "b"), ("y", "a"), ("y", "b"), ("z", "a")]
            .into_iter()
            .enumerate()
        {
            let mut ports = BTreeMap::new();
            match (ns, pod) {
                ("x" | "y", "a") => {
                    ports.insert("web".to_owned(), ("TCP".to_owned(), 80));
                }
                ("x", "b") => {
                    ports.insert("web".to_owned(), ("TCP".to_owned(), 8080));
                    ports.insert("dns".to_owned(), ("UDP".to_owned(), 53));
                }
                _ => {}
            }
            pods.push((
                format!("{ns}/{pod}"),
                labels(&[("pod", pod)]),
                format!("10.16.0.{}", 10 + i),
                ports,
            ));
        }
        World {
            pods,
            namespaces: [("x", "x"), ("y", "y"), ("z", "z")]
                .into_iter()
                .map(|(n, team)| (n.to_owned(), labels(&[("team", team)])))
                .collect(),
        }
    }

    fn cluster(&self) -> Cluster<'_> {
        let mut namespaces: BTreeMap<&str, NamespaceView<'_>> = BTreeMap::new();
        for (name, l) in &self.namespaces {
            namespaces.entry(name).or_default().labels = Some(l);
        }
        for (i, (key, l, ip, ports)) in self.pods.iter().enumerate() {
            let ns = key.split('/').next().unwrap();
            namespaces.entry(ns).or_default().pods.push(Member {
                key,
                labels: l,
                ips: vec![ip.parse().unwrap()],
                named_ports: ports,
                port: Some(RowTarget::Uuid(ovsdb::Uuid::from_u128(i as u128 + 1))),
            });
        }
        Cluster {
            namespaces,
            join: "100.64.0.0/16".parse().unwrap(),
            v4: true,
            v6: false,
        }
    }
}

fn acl_lines(rows: &Rows) -> Vec<String> {
    rows.acls
        .iter()
        .map(|(id, a)| {
            let after = if a.options.contains_key("apply-after-lb") {
                " after-lb"
            } else {
                ""
            };
            format!(
                "{id} {} {} {:?}{after}: {}",
                a.direction, a.priority, a.action, a.match_
            )
        })
        .collect()
}

fn set_lines(rows: &Rows) -> Vec<String> {
    rows.address_sets
        .iter()
        .map(|(id, s)| {
            let a: Vec<&str> = s.addresses.iter().map(String::as_str).collect();
            format!("{id} {} [{}]", s.name, a.join(" "))
        })
        .collect()
}

const HEAD: &str =
    "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\n  namespace: x\n";

fn with_spec(spec: &str) -> String {
    format!("{HEAD}spec:\n{spec}")
}

#[test]
fn policy_types_default_as_the_api_server_does() {
    let p = compiled(&with_spec("  podSelector: {}\n"));
    assert_eq!(
        (p.ingress.as_deref(), p.egress.is_none()),
        (Some(&[][..]), true)
    );
    let p = compiled(&with_spec("  podSelector: {}\n  egress:\n  - {}\n"));
    assert!(p.ingress.is_some_and(|i| i.is_empty()));
    assert_eq!(p.egress.map(|e| e.len()), Some(1));
    let p = compiled(&with_spec("  podSelector: {}\n  policyTypes: [Egress]\n"));
    assert!(p.ingress.is_none() && p.egress.is_some_and(|e| e.is_empty()));
}

#[test]
fn bad_fields_are_named_with_why() {
    let cases = [
        (
            "  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.300/24}\n",
            r#"spec.ingress[0].from[0].ipBlock.cidr: "10.0.0.300/24" is not a CIDR (write 10.0.0.0/16)"#,
        ),
        (
            "  egress:\n  - to:\n    - ipBlock: {cidr: 10.0.0.0/24, except: [10.0.0.8/29, 10.1.0.0/28]}\n",
            "spec.egress[0].to[0].ipBlock.except[1]: 10.1.0.0/28 is not strictly inside cidr 10.0.0.0/24",
        ),
        (
            "  podSelector:\n    matchExpressions: [{key: pod, operator: Equals, values: [a]}]\n",
            r#"spec.podSelector.matchExpressions[0].operator: "Equals" is not a valid operator (In, NotIn, Exists or DoesNotExist)"#,
        ),
        (
            "  ingress:\n  - from:\n    - namespaceSelector:\n        matchExpressions: [{key: team, operator: In}]\n",
            "spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].values: must be non-empty when operator is In",
        ),
        (
            "  ingress:\n  - ports: [{protocol: ICMP, port: 1}]\n",
            r#"spec.ingress[0].ports[0].protocol: "ICMP" is not a protocol (TCP, UDP or SCTP)"#,
        ),
        (
            "  ingress:\n  - ports: [{port: 90, endPort: 80}]\n",
            "spec.ingress[0].ports[0].endPort: 80 is below port 90",
        ),
        (
            "  ingress:\n  - ports: [{port: web, endPort: 80}]\n",
            "spec.ingress[0].ports[0].endPort: needs a numeric port",
        ),
        (
            "  ingress:\n  - ports: [{port: 70000}]\n",
            "spec.ingress[0].ports[0].port: 70000 is not a port (1 to 65535)",
        ),
        (
            "  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.0/8}\n      podSelector: {}\n",
            "spec.ingress[0].from[0]: ipBlock may not be combined with podSelector or namespaceSelector",
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(error(&with_spec(spec)), want, "{spec}");
    }
}

#[test]
fn default_deny_ingress_drops_into_the_group_and_keeps_nodes() {
    let w = World::xyz();
    let rows = build(&compiled(&with_spec("  podSelector: {}\n")), &w.cluster());
    let pg = port_group_name("x", "p");
    assert_eq!(pg, "np_becfb0197f2d6f18", "stable across versions");
    assert_eq!(rows.port_group.name, pg);
    assert_eq!(rows.port_group.ports.len(), 2, "x/a and x/b");
    assert_eq!(
        acl_lines(&rows),
        [
            format!(
                "ingress/nodes to-lport 3000 AllowRelated: outport == @{pg} && ip4.src == 100.64.0.0/16"
            ),
            format!("ingress/default-deny to-lport 2000 Drop: outport == @{pg} && ip"),
        ]
    );
    assert!(rows.address_sets.is_empty());
}

#[test]
fn peers_ports_ranges_and_blocks_make_one_acl_each() {
    let w = World::xyz();
    let spec = "  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - podSelector: {matchLabels: {pod: b}}
    - namespaceSelector: {matchLabels: {team: y}}
      podSelector:
        matchExpressions: [{key: pod, operator: In, values: [a]}]
    - ipBlock: {cidr: 192.168.0.0/16, except: [192.168.1.0/24, 192.168.2.0/24]}
    ports:
    - {port: 80}
    - {protocol: UDP, port: 5000, endPort: 5010}
  egress:
  - to:
    - namespaceSelector:
        matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [x]}]
    ports: [{protocol: SCTP}]
  - to:
    - ipBlock: {cidr: 10.16.0.0/16, except: [10.16.0.11/32]}
";
    let rows = build(&compiled(&with_spec(spec)), &w.cluster());
    let pg = port_group_name("x", "p");
    assert_eq!(rows.port_group.ports.len(), 1, "x/a only");
    let lines: Vec<String> = acl_lines(&rows)
        .into_iter()
        .map(|l| l.replace(&pg, "PG"))
        .collect();
    assert_eq!(
        lines,
        [
            "ingress/nodes to-lport 3000 AllowRelated: outport == @PG && ip4.src == 100.64.0.0/16",
            "ingress/default-deny to-lport 2000 Drop: outport == @PG && ip",
            "ingress/0/peer0/port0/ip4 to-lport 2001 AllowRelated: outport == @PG && ip4.src == $PG_i0_0_4 && tcp.dst == 80",
            "ingress/0/peer1/port0/ip4 to-lport 2001 AllowRelated: outport == @PG && ip4.src == $PG_i0_1_4 && tcp.dst == 80",
            "ingress/0/peer2/port0/ip4 to-lport 2001 AllowRelated: outport == @PG && ip4.src == 192.168.0.0/16 && ip4.src != {192.168.1.0/24, 192.168.2.0/24} && tcp.dst == 80",
            "ingress/0/peer0/port1/ip4 to-lport 2001 AllowRelated: outport == @PG && ip4.src == $PG_i0_0_4 && udp.dst >= 5000 && udp.dst <= 5010",
            "ingress/0/peer1/port1/ip4 to-lport 2001 AllowRelated: outport == @PG && ip4.src == $PG_i0_1_4 && udp.dst >= 5000 && udp.dst <= 5010",
            "ingress/0/peer2/port1/ip4 to-lport 2001 AllowRelated: outport == @PG && ip4.src == 192.168.0.0/16 && ip4.src != {192.168.1.0/24, 192.168.2.0/24} && udp.dst >= 5000 && udp.dst <= 5010",
            "egress/default-deny from-lport 2000 Drop after-lb: inport == @PG && ip",
            "egress/0/peer0/port0/ip4 from-lport 2001 AllowRelated after-lb: inport == @PG && ip4.dst == $PG_e0_0_4 && sctp",
            "egress/1/peer0/*/ip4 from-lport 2001 AllowRelated after-lb: inport == @PG && ip4.dst == 10.16.0.0/16 && ip4.dst != 10.16.0.11/32",
        ]
    );
    let sets: Vec<String> = set_lines(&rows)
        .into_iter()
        .map(|l| l.replace(&pg, "PG"))
        .collect();
    assert_eq!(
        sets,
        [
            "ingress/0/peer0/ip4 PG_i0_0_4 [10.16.0.11]",
            "ingress/0/peer1/ip4 PG_i0_1_4 [10.16.0.12]",
            "egress/0/peer0/ip4 PG_e0_0_4 [10.16.0.12 10.16.0.13 10.16.0.14]",
        ]
    );
    let members: Vec<&str> = rows.members.iter().map(String::as_str).collect();
    assert_eq!(members, ["x/a", "x/b", "y/a", "y/b", "z/a"]);
    assert!(rows.unresolved.is_empty());
}

#[test]
fn empty_rules_allow_everyone_and_everything() {
    let w = World::xyz();
    let spec = "  podSelector: {}\n  policyTypes: [Ingress, Egress]\n  ingress: [{}]\n  egress:\n  - ports: [{protocol: UDP, port: 53}]\n";
    let rows = build(&compiled(&with_spec(spec)), &w.cluster());
    let lines: Vec<String> = acl_lines(&rows)
        .into_iter()
        .filter(|l| l.contains(" 2001 "))
        .map(|l| l.replace(&rows.port_group.name, "PG"))
        .collect();
    assert_eq!(
        lines,
        [
            "ingress/0/*/* to-lport 2001 AllowRelated: outport == @PG && ip",
            "egress/0/*/port0 from-lport 2001 AllowRelated after-lb: inport == @PG && udp.dst == 53",
        ]
    );
}

#[test]
fn a_named_port_is_one_acl_per_number_over_the_pods_using_it() {
    let w = World::xyz();
    // Ingress: `web` is 80 on x/a and 8080 on x/b (both selected).
    let spec = "  podSelector: {}\n  ingress:\n  - from: [{namespaceSelector: {}}]\n    ports: [{port: web}]\n";
    let rows = build(&compiled(&with_spec(spec)), &w.cluster());
    let pg = rows.port_group.name.clone();
    let lines: Vec<String> = acl_lines(&rows)
        .into_iter()
        .filter(|l| l.contains(" 2001 "))
        .map(|l| l.replace(&pg, "PG"))
        .collect();
    assert_eq!(
        lines,
        [
            "ingress/0/peer0/port0=80/ip4 to-lport 2001 AllowRelated: outport == @PG && ip4.src == $PG_i0_0_4 && ip4.dst == $PG_i0_n0_80_4 && tcp.dst == 80",
            "ingress/0/peer0/port0=8080/ip4 to-lport 2001 AllowRelated: outport == @PG && ip4.src == $PG_i0_0_4 && ip4.dst == $PG_i0_n0_8080_4 && tcp.dst == 8080",
        ]
    );
    let sets: Vec<String> = set_lines(&rows)
        .into_iter()
        .map(|l| l.replace(&pg, "PG"))
        .collect();
    assert_eq!(
        sets,
        [
            "ingress/0/peer0/ip4 PG_i0_0_4 [10.16.0.10 10.16.0.11 10.16.0.12 10.16.0.13 10.16.0.14]",
            "ingress/0/port0=80/ip4 PG_i0_n0_80_4 [10.16.0.10]",
            "ingress/0/port0=8080/ip4 PG_i0_n0_8080_4 [10.16.0.11]",
        ]
    );
    // Egress to anyone on `web`: the destinations are every pod declaring it.
    let spec = "  podSelector: {matchLabels: {pod: b}}\n  egress:\n  - ports: [{port: web}]\n";
    let rows = build(&compiled(&with_spec(spec)), &w.cluster());
    let pg = rows.port_group.name.clone();
    let lines: Vec<String> = acl_lines(&rows)
        .into_iter()
        .filter(|l| l.contains(" 2001 "))
        .map(|l| l.replace(&pg, "PG"))
        .collect();
    assert_eq!(
        lines,
        [
            "egress/0/*/port0=80/ip4 from-lport 2001 AllowRelated after-lb: inport == @PG && ip4.dst == $PG_e0_n0_80_4 && tcp.dst == 80",
            "egress/0/*/port0=8080/ip4 from-lport 2001 AllowRelated after-lb: inport == @PG && ip4.dst == $PG_e0_n0_8080_4 && tcp.dst == 8080",
        ]
    );
    let sets: Vec<String> = set_lines(&rows)
        .into_iter()
        .map(|l| l.replace(&pg, "PG"))
        .collect();
    assert_eq!(
        sets,
        [
            "egress/0/port0=80/ip4 PG_e0_n0_80_4 [10.16.0.10 10.16.0.12]",
            "egress/0/port0=8080/ip4 PG_e0_n0_8080_4 [10.16.0.11]",
        ]
    );
}

#[test]
fn a_named_port_no_pod_declares_allows_nothing_and_is_reported() {
    let w = World::xyz();
    // `dns` is UDP on x/b: as TCP it resolves nowhere.
    let spec = "  podSelector: {}\n  ingress:\n  - ports: [{port: dns}, {port: 81}]\n";
    let rows = build(&compiled(&with_spec(spec)), &w.cluster());
    let allows: Vec<String> = acl_lines(&rows)
        .into_iter()
        .filter(|l| l.contains(" 2001 "))
        .collect();
    assert_eq!(allows.len(), 1, "port 81 only: {allows:?}");
    assert_eq!(
        rows.unresolved
            .iter()
            .map(|e| format!("{}: {}", e.field, e.reason))
            .collect::<Vec<_>>(),
        [
            r#"spec.ingress[0].ports[0].port: no selected pod declares a TCP port named "dns": it allows nothing"#
        ]
    );
    // Nothing selected yet: nothing to report.
    let spec = "  podSelector: {matchLabels: {pod: none}}\n  ingress:\n  - ports: [{port: dns}]\n";
    assert!(
        build(&compiled(&with_spec(spec)), &w.cluster())
            .unresolved
            .is_empty()
    );
}

#[test]
fn ipv6_pods_get_their_own_address_sets() {
    let mut w = World::xyz();
    w.pods[2].2 = "fd00::12".into();
    let mut cluster = w.cluster();
    cluster.v6 = true;
    let spec = "  podSelector: {}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {team: y}}}]\n";
    let rows = build(&compiled(&with_spec(spec)), &cluster);
    let pg = rows.port_group.name.clone();
    let sets: Vec<String> = set_lines(&rows)
        .into_iter()
        .map(|l| l.replace(&pg, "PG"))
        .collect();
    assert_eq!(
        sets,
        [
            "ingress/0/peer0/ip4 PG_i0_0_4 [10.16.0.13]",
            "ingress/0/peer0/ip6 PG_i0_0_6 [fd00::12]",
        ]
    );
    assert_eq!(
        acl_lines(&rows)
            .iter()
            .filter(|l| l.contains(" 2001 "))
            .count(),
        2
    );
}

#[test]
fn a_pod_touches_the_policies_that_select_or_peer_it() {
    let p = compiled(&with_spec(
        "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {team: y}}, podSelector: {matchLabels: {pod: b}}}]\n",
    ));
    let none = labels(&[]);
    let y = labels(&[("team", "y")]);
    assert!(touches(&p, "x", &none, &labels(&[("pod", "a")])));
    assert!(!touches(&p, "x", &none, &labels(&[("pod", "b")])));
    assert!(touches(&p, "y", &y, &labels(&[("pod", "b")])));
    assert!(!touches(&p, "z", &none, &labels(&[("pod", "b")])));
    assert!(p.selects_namespaces());
    let p = compiled(&with_spec(
        "  podSelector: {}\n  egress:\n  - ports: [{port: web}]\n",
    ));
    assert!(
        touches(&p, "z", &none, &none),
        "a named port's candidates are every pod"
    );
}
