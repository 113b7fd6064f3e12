//! NetworkPolicies through the reconcile step against an in-memory NB: one transaction per
//! change, pods joining port groups in the transaction that makes their port, label changes
//! that move pods between port groups and address sets without touching ACLs, deletion,
//! restart, and bad policies that are reported and disturb nothing.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, ContainerPort, Namespace, Node, Pod, PodSpec};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use ovn_model::nb::{Acl, AddressSet, LogicalSwitchPort, PortGroup};
use ovn_model::snapshot::Typed;
use ovsdb::replica::Replica;

use super::*;
use crate::controller::policy::rows as policy;

fn labels(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

fn namespace(name: &str, l: &[(&str, &str)]) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: labels(l),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn pod(ns: &str, name: &str, l: &[(&str, &str)], ports: &[(&str, i32)]) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            uid: Some(format!("uid-{ns}-{name}")),
            labels: labels(l),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: Some("node1".into()),
            containers: vec![Container {
                name: "c".into(),
                ports: Some(
                    ports
                        .iter()
                        .map(|(n, p)| ContainerPort {
                            name: Some((*n).into()),
                            container_port: *p,
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn policy(yaml: &str) -> NetworkPolicy {
    serde_yaml::from_str(yaml).unwrap()
}

/// `allow-b` in x: pods `pod=a` take ingress from pods `pod=b` of namespaces `team=blue` on
/// TCP 80 and on the named port `web`.
const ALLOW_B: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-b, namespace: x, uid: uid-allow-b}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {team: blue}}
      podSelector: {matchLabels: {pod: b}}
    ports: [{port: 80}, {port: web}]
";

struct Harness {
    state: ControllerState,
    nb: Replica,
    events: Vec<ObjectEvent>,
    /// Each written step's plan, explained.
    plans: Vec<Vec<String>>,
}

impl Harness {
    fn new() -> Self {
        let mut nb = Replica::new(ovn_model::nb::schema());
        ovn_model::owner::index(&mut nb).unwrap();
        Harness {
            state: ControllerState::new(ControllerConfig::default()).unwrap(),
            nb,
            events: Vec::new(),
            plans: Vec::new(),
        }
    }

    fn list(&mut self, namespaces: Vec<Namespace>, pods: Vec<Pod>, policies: Vec<NetworkPolicy>) {
        let node = Node {
            metadata: ObjectMeta {
                name: Some("node1".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        self.state.node_event(WatchEvent::Init);
        self.state.node_event(WatchEvent::InitApply(node));
        self.state.node_event(WatchEvent::InitDone);
        self.state.namespace_event(WatchEvent::Init);
        for n in namespaces {
            self.state.namespace_event(WatchEvent::InitApply(n));
        }
        self.state.namespace_event(WatchEvent::InitDone);
        self.state.pod_event(WatchEvent::Init);
        for p in pods {
            self.state.pod_event(WatchEvent::InitApply(p));
        }
        self.state.pod_event(WatchEvent::InitDone);
        self.state.network_policy_event(WatchEvent::Init);
        for p in policies {
            self.state.network_policy_event(WatchEvent::InitApply(p));
        }
        self.state.network_policy_event(WatchEvent::InitDone);
    }

    /// Steps until nothing is dirty; returns how many steps wrote.
    fn settle(&mut self) -> usize {
        let mut writes = 0;
        while self.state.is_dirty() {
            let snap = self.nb.snapshot();
            let out = self.state.step(&Typed::new(&snap));
            if !out.plan.is_empty() {
                out.plan
                    .transaction()
                    .unwrap()
                    .apply(&mut self.nb)
                    .unwrap_or_else(|e| panic!("{e}\n{}", out.plan));
                self.plans.push(out.plan.explain());
                writes += 1;
            }
            self.events.extend(out.events);
        }
        writes
    }

    fn rows<T: Table>(&self) -> Vec<T> {
        let snap = self.nb.snapshot();
        Typed::new(&snap).rows::<T>().collect()
    }

    /// The port group of policy `ns/name`, as port names.
    fn group(&self, ns: &str, name: &str) -> Vec<String> {
        let pg_name = policy::port_group_name(ns, name);
        let ports = self.rows::<LogicalSwitchPort>();
        let Some(pg) = self
            .rows::<PortGroup>()
            .into_iter()
            .find(|g| g.name == pg_name)
        else {
            return Vec::new();
        };
        let mut names: Vec<String> = pg
            .ports
            .iter()
            .filter_map(|r| ports.iter().find(|p| Some(p.uuid) == r.uuid()))
            .map(|p| p.name.clone())
            .collect();
        names.sort();
        names
    }

    /// Address sets by name (the policy's prefix cut), with their addresses.
    fn sets(&self) -> BTreeMap<String, Vec<String>> {
        self.rows::<AddressSet>()
            .into_iter()
            .map(|s| {
                let short = s.name.split_once('_').map_or(s.name.clone(), |(_, r)| {
                    r.split_once('_')
                        .map_or(r.to_owned(), |(_, r)| r.to_owned())
                });
                (short, s.addresses.into_iter().collect())
            })
            .collect()
    }

    fn acls(&self) -> Vec<(ovsdb::Uuid, i64, String)> {
        let mut v: Vec<_> = self
            .rows::<Acl>()
            .into_iter()
            .filter(|a| {
                a.external_ids
                    .get(ovn_model::owner::OWNER)
                    .map(String::as_str)
                    == Some("policy")
            })
            .map(|a| (a.uuid, a.priority, a.match_))
            .collect();
        v.sort();
        v
    }

    fn ip(&self, pod: &str) -> String {
        self.state
            .ipam()
            .lease(pod)
            .unwrap()
            .addresses()
            .next()
            .unwrap()
            .to_string()
    }
}

fn xy() -> (Vec<Namespace>, Vec<Pod>) {
    (
        vec![
            namespace("x", &[]),
            namespace("y", &[("team", "blue")]),
            namespace("z", &[]),
        ],
        vec![
            pod("x", "a", &[("pod", "a")], &[("web", 8080)]),
            pod("x", "b", &[("pod", "b")], &[]),
            pod("y", "b", &[("pod", "b")], &[]),
            pod("z", "b", &[("pod", "b")], &[]),
        ],
    )
}

#[test]
fn pods_and_their_policy_are_one_transaction_and_a_second_step_changes_nothing() {
    let mut h = Harness::new();
    let (ns, pods) = xy();
    h.list(ns, pods, vec![policy(ALLOW_B)]);
    assert_eq!(
        h.settle(),
        1,
        "ports, port group, sets and ACLs in one transaction"
    );
    assert!(h.events.is_empty(), "{:?}", h.events);
    assert_eq!(
        h.group("x", "allow-b"),
        ["x.a"],
        "the new port joined in the same transaction"
    );
    let sets = h.sets();
    assert_eq!(sets["i0_0_4"], [h.ip("y/b")], "only pod=b of team=blue");
    assert_eq!(sets["i0_n1_8080_4"], [h.ip("x/a")], "web is 8080 on x/a");
    let mut acls: Vec<(i64, String)> = h.acls().into_iter().map(|(_, p, m)| (p, m)).collect();
    acls.sort();
    let pg = policy::port_group_name("x", "allow-b");
    assert_eq!(
        acls.iter()
            .map(|(p, m)| format!("{p} {}", m.replace(&pg, "PG")))
            .collect::<Vec<_>>(),
        [
            "2000 outport == @PG && ip",
            "2001 outport == @PG && ip4.src == $PG_i0_0_4 && ip4.dst == $PG_i0_n1_8080_4 && tcp.dst == 8080",
            "2001 outport == @PG && ip4.src == $PG_i0_0_4 && tcp.dst == 80",
            "3000 outport == @PG && ip4.src == 100.64.0.0/16",
        ]
    );
    h.state.requeue_all();
    assert_eq!(
        h.settle(),
        0,
        "planning the same state again writes nothing"
    );
}

#[test]
fn a_label_change_moves_a_pod_between_sets_and_groups_without_touching_acls() {
    let mut h = Harness::new();
    let (ns, pods) = xy();
    h.list(ns, pods, vec![policy(ALLOW_B)]);
    h.settle();
    let acls = h.acls();
    // z/b's namespace joins team blue; x/b becomes pod=a (selected); y/b loses its label.
    h.state
        .namespace_event(WatchEvent::Apply(namespace("z", &[("team", "blue")])));
    h.state.pod_event(WatchEvent::Apply(pod(
        "x",
        "b",
        &[("pod", "a")],
        &[("web", 8080)],
    )));
    h.state
        .pod_event(WatchEvent::Apply(pod("y", "b", &[("pod", "c")], &[])));
    h.plans.clear();
    assert_eq!(h.settle(), 1);
    assert_eq!(h.group("x", "allow-b"), ["x.a", "x.b"]);
    let sets = h.sets();
    assert_eq!(sets["i0_0_4"], [h.ip("z/b")]);
    let mut web = vec![h.ip("x/a"), h.ip("x/b")];
    web.sort();
    assert_eq!(sets["i0_n1_8080_4"], web);
    assert_eq!(h.acls(), acls, "the same ACL rows, untouched");
    let tables: std::collections::BTreeSet<String> = h.plans[0]
        .iter()
        .filter_map(|l| l.split(": ").nth(1))
        .filter_map(|c| c.split_whitespace().nth(1).map(str::to_owned))
        .collect();
    assert_eq!(
        tables,
        ["Address_Set", "Port_Group"].map(str::to_owned).into(),
        "only groups and sets change: {:#?}",
        h.plans[0]
    );
}

#[test]
fn a_pod_added_later_joins_in_the_transaction_of_its_port() {
    let mut h = Harness::new();
    let (ns, pods) = xy();
    h.list(ns, pods, vec![policy(ALLOW_B)]);
    h.settle();
    h.state.pod_event(WatchEvent::Apply(pod(
        "x",
        "a2",
        &[("pod", "a")],
        &[("web", 9090)],
    )));
    h.plans.clear();
    assert_eq!(h.settle(), 1, "one transaction");
    assert_eq!(h.group("x", "allow-b"), ["x.a", "x.a2"]);
    assert_eq!(h.sets()["i0_n1_9090_4"], [h.ip("x/a2")]);
    let plan = h.plans[0].join("\n");
    assert!(plan.contains("insert Logical_Switch_Port"), "{plan}");
    assert!(plan.contains("update Port_Group"), "{plan}");
    assert_eq!(
        h.acls().len(),
        5,
        "a new number of the named port is one more ACL"
    );
}

#[test]
fn a_deleted_policy_takes_its_rows_and_a_restart_collects_what_no_policy_owns() {
    let mut h = Harness::new();
    let (ns, pods) = xy();
    let other = ALLOW_B.replace("allow-b", "other");
    h.list(
        ns.clone(),
        pods.clone(),
        vec![policy(ALLOW_B), policy(&other)],
    );
    h.settle();
    assert_eq!(h.rows::<PortGroup>().len(), 2);
    h.state
        .network_policy_event(WatchEvent::Delete(policy(&other)));
    assert_eq!(h.settle(), 1);
    assert_eq!(h.rows::<PortGroup>().len(), 1);
    assert_eq!(
        h.acls().len(),
        4,
        "the deleted policy's ACLs went with its group"
    );
    assert_eq!(h.rows::<AddressSet>().len(), 2);

    // A controller that restarts after allow-b was deleted meanwhile.
    let mut restarted = Harness {
        state: ControllerState::new(ControllerConfig::default()).unwrap(),
        nb: h.nb.clone(),
        events: Vec::new(),
        plans: Vec::new(),
    };
    restarted.list(ns, pods, Vec::new());
    let snap = restarted.nb.snapshot();
    assert!(restarted.state.restore(&Typed::new(&snap)).is_empty());
    assert_eq!(restarted.settle(), 1);
    assert!(restarted.rows::<PortGroup>().is_empty());
    assert!(restarted.rows::<AddressSet>().is_empty());
    assert!(restarted.acls().is_empty());
}

#[test]
fn a_bad_policy_is_reported_naming_the_field_and_leaves_its_rows() {
    let mut h = Harness::new();
    let (ns, pods) = xy();
    h.list(ns, pods, vec![policy(ALLOW_B)]);
    h.settle();
    let (groups, sets, acls) = (h.group("x", "allow-b"), h.sets(), h.acls());
    let bad = ALLOW_B.replace("ports: [{port: 80}", "ports: [{port: 80, protocol: ICMP}");
    h.state
        .network_policy_event(WatchEvent::Apply(policy(&bad)));
    let broken = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: broken, namespace: y}
spec:
  podSelector: {}
  egress:
  - to: [{ipBlock: {cidr: 10.0.0.0/24, except: [10.9.0.0/28]}}]
";
    h.state
        .network_policy_event(WatchEvent::Apply(policy(broken)));
    assert_eq!(h.settle(), 0, "nothing written");
    assert_eq!(
        (h.group("x", "allow-b"), h.sets(), h.acls()),
        (groups, sets, acls)
    );
    let events: Vec<String> = h
        .events
        .iter()
        .map(|e| format!("{} {}: {}", e.reason, e.object, e.message))
        .collect();
    assert_eq!(
        events,
        [
            r#"BadNetworkPolicy NetworkPolicy x/allow-b: NetworkPolicy x/allow-b: spec.ingress[0].ports[0].protocol: "ICMP" is not a protocol (TCP, UDP or SCTP); its rows are left as they were"#,
            "BadNetworkPolicy NetworkPolicy y/broken: NetworkPolicy y/broken: spec.egress[0].to[0].ipBlock.except[0]: 10.9.0.0/28 is not strictly inside cidr 10.0.0.0/24; its rows are left as they were",
        ]
    );
    assert_eq!(h.events[0].object.uid.as_deref(), Some("uid-allow-b"));
    assert!(
        h.rows::<PortGroup>()
            .iter()
            .all(|g| g.name != policy::port_group_name("y", "broken"))
    );
}

#[test]
fn an_unknown_named_port_is_reported_and_the_rest_applies() {
    let mut h = Harness::new();
    let (ns, pods) = xy();
    let p = ALLOW_B.replace("{port: web}", "{port: metrics}");
    h.list(ns, pods, vec![policy(&p)]);
    assert_eq!(h.settle(), 1);
    let events: Vec<String> = h
        .events
        .iter()
        .map(|e| format!("{} {}", e.reason, e.message))
        .collect();
    assert_eq!(
        events,
        [
            r#"UnknownNamedPort NetworkPolicy x/allow-b: spec.ingress[0].ports[1].port: no selected pod declares a TCP port named "metrics": it allows nothing"#
        ]
    );
    assert_eq!(h.acls().len(), 3, "nodes, default deny, port 80");
}
