//! The reconcile step against an in-memory NB (`ovsdb`'s transaction engine, which answers as
//! `ovsdb-server` does): what a burst of objects becomes, that a second step changes nothing,
//! that a restarted controller picks up exactly where OVN is, and that bad input is reported
//! and disturbs nothing.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use ovn_model::nb::{Acl, LogicalRouterPort, LogicalSwitch, LogicalSwitchPort, QoS};
use ovn_model::snapshot::Typed;
use ovsdb::replica::Replica;

use super::*;

fn meta(namespace: Option<&str>, name: &str, annotations: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(Into::into),
        uid: Some(format!("uid-{name}")),
        annotations: Some(
            annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..Default::default()
    }
}

fn namespace(name: &str, annotations: &[(&str, &str)]) -> Namespace {
    Namespace {
        metadata: meta(None, name, annotations),
        ..Default::default()
    }
}

fn pod(ns: &str, name: &str, node: &str, annotations: &[(&str, &str)]) -> Pod {
    Pod {
        metadata: meta(Some(ns), name, annotations),
        spec: Some(PodSpec {
            node_name: Some(node.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn statefulset_pod(ns: &str, name: &str, node: &str, annotations: &[(&str, &str)]) -> Pod {
    let mut p = pod(ns, name, node, annotations);
    p.metadata.owner_references = Some(vec![OwnerReference {
        kind: "StatefulSet".into(),
        name: "db".into(),
        ..Default::default()
    }]);
    p
}

fn node(name: &str) -> Node {
    Node {
        metadata: meta(None, name, &[]),
        ..Default::default()
    }
}

/// A controller state and the NB it writes, in memory.
struct Harness {
    state: ControllerState,
    nb: Replica,
    events: Vec<ObjectEvent>,
    annotations: BTreeMap<ObjectRef, BTreeMap<String, Option<String>>>,
}

impl Harness {
    fn new() -> Self {
        let mut nb = Replica::new(ovn_model::nb::schema());
        ovn_model::owner::index(&mut nb).unwrap();
        Harness {
            state: ControllerState::new(ControllerConfig::default()).unwrap(),
            nb,
            events: Vec::new(),
            annotations: BTreeMap::new(),
        }
    }

    /// Lists every kind (as a watcher's first listing does).
    fn list(&mut self, namespaces: Vec<Namespace>, pods: Vec<Pod>, nodes: Vec<Node>) {
        self.state.namespace_event(WatchEvent::Init);
        for n in namespaces {
            self.state.namespace_event(WatchEvent::InitApply(n));
        }
        self.state.namespace_event(WatchEvent::InitDone);
        self.state.node_event(WatchEvent::Init);
        for n in nodes {
            self.state.node_event(WatchEvent::InitApply(n));
        }
        self.state.node_event(WatchEvent::InitDone);
        self.state.pod_event(WatchEvent::Init);
        for p in pods {
            self.state.pod_event(WatchEvent::InitApply(p));
        }
        self.state.pod_event(WatchEvent::InitDone);
    }

    /// Steps until nothing is dirty, applying each plan; returns how many steps wrote.
    fn settle(&mut self) -> usize {
        let mut writes = 0;
        while self.state.is_dirty() {
            let snap = self.nb.snapshot();
            let out = self.state.step(&Typed::new(&snap));
            if !out.plan.is_empty() {
                let prepared = out.plan.transaction().unwrap();
                prepared
                    .apply(&mut self.nb)
                    .unwrap_or_else(|e| panic!("{e}\n{}", out.plan));
                writes += 1;
            }
            self.events.extend(out.events);
            for (o, a) in out.annotations {
                self.annotations.entry(o).or_default().extend(a);
            }
        }
        writes
    }

    fn typed<T: Table, R>(&self, f: impl FnOnce(Vec<T>) -> R) -> R {
        let snap = self.nb.snapshot();
        f(Typed::new(&snap).rows::<T>().collect())
    }

    fn port(&self, name: &str) -> Option<LogicalSwitchPort> {
        self.typed::<LogicalSwitchPort, _>(|v| v.into_iter().find(|p| p.name == name))
    }

    fn pod_annotation(&self, ns: &str, name: &str, key: &str) -> Option<String> {
        let o = ObjectRef::namespaced(Kind::Pod, ns, name).with_uid(format!("uid-{name}"));
        self.annotations.get(&o)?.get(key).cloned().flatten()
    }

    fn events_for(&self, name: &str) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e.object.name == name)
            .map(|e| format!("{} {}", e.reason, e.message))
            .collect()
    }
}

fn lab_objects() -> (Vec<Namespace>, Vec<Pod>, Vec<Node>) {
    let namespaces = vec![
        namespace("default", &[]),
        namespace(
            "web",
            &[
                (ann::CIDR, "10.17.0.0/24"),
                (ann::EXCLUDE_IPS, "10.17.0.2..10.17.0.9"),
                (ann::PRIVATE, "true"),
                (ann::ALLOW, "10.16.0.0/16"),
            ],
        ),
    ];
    let pods = vec![
        pod("default", "a", "node1", &[]),
        pod(
            "default",
            "b",
            "node2",
            &[
                (ann::IP_ADDRESS, "10.16.0.100"),
                (ann::MAC_ADDRESS, "0a:00:00:00:00:64"),
            ],
        ),
        pod(
            "web",
            "w",
            "node1",
            &[("ovn.kubernetes.io/egress_rate", "10")],
        ),
        statefulset_pod(
            "web",
            "db-1",
            "node2",
            &[(ann::IP_POOL, "10.17.0.50,10.17.0.51")],
        ),
    ];
    (namespaces, pods, vec![node("node1"), node("node2")])
}

#[test]
fn a_cluster_becomes_one_topology_and_a_second_step_changes_nothing() {
    let mut h = Harness::new();
    let (ns, pods, nodes) = lab_objects();
    h.list(ns, pods, nodes);
    assert_eq!(h.settle(), 1, "one listing, one transaction");
    assert!(h.events.is_empty(), "{:?}", h.events);

    let switches = h.typed::<LogicalSwitch, _>(|v| {
        let mut n: Vec<String> = v.into_iter().map(|s| s.name).collect();
        n.sort();
        n
    });
    assert_eq!(switches, ["join", "ovn-default", "web"]);
    let lrps = h.typed::<LogicalRouterPort, _>(|v| {
        let mut n: Vec<String> = v
            .into_iter()
            .map(|p| format!("{} {}", p.name, ann::joined(&p.networks)))
            .collect();
        n.sort();
        n
    });
    assert_eq!(
        lrps,
        [
            "ovn-cluster-join 100.64.0.1/16",
            "ovn-cluster-ovn-default 10.16.0.1/16",
            "ovn-cluster-web 10.17.0.1/24"
        ]
    );

    let a = h.port("default.a").expect("a's port");
    assert_eq!(a.addresses[0].to_string(), {
        let mac = h.pod_annotation("default", "a", ann::MAC_ADDRESS).unwrap();
        format!("{mac} 10.16.0.2")
    });
    assert_eq!(a.options["requested-chassis"], "node1");
    assert_eq!(a.external_ids["ovnkit.io/gateway"], "10.16.0.1");
    assert_eq!(a.external_ids["ovnkit.io/mtu"], "1400");
    let b = h.port("default.b").unwrap();
    assert_eq!(b.addresses[0].to_string(), "0a:00:00:00:00:64 10.16.0.100");
    assert_eq!(
        b.port_security.iter().collect::<Vec<_>>(),
        ["0a:00:00:00:00:64 10.16.0.100/32"]
    );
    let w = h.port("web.w").unwrap();
    assert!(
        w.addresses[0].to_string().ends_with(" 10.17.0.10"),
        "exclusions kept"
    );
    assert_eq!(
        w.external_ids["ovnkit.io/qos"],
        r#"{"ovn.kubernetes.io/egress_rate":"10"}"#
    );
    let db = h.port("web.db-1").unwrap();
    assert!(
        db.addresses[0].to_string().ends_with(" 10.17.0.51"),
        "ordinal 1 of the pool"
    );
    assert!(h.port("node-node1").is_some() && h.port("node-node2").is_some());
    // A node's management port carries other addresses' traffic: its MAC only is secured.
    let n1 = h.port("node-node1").unwrap();
    assert_eq!(n1.port_security.len(), 1);
    assert!(
        n1.port_security.iter().all(|e| !e.contains(' ')),
        "{:?}",
        n1.port_security
    );
    assert_eq!(
        h.pod_annotation("web", "db-1", ann::IP_ADDRESS).as_deref(),
        Some("10.17.0.51")
    );
    assert_eq!(
        h.pod_annotation("web", "db-1", ann::LOGICAL_SWITCH)
            .as_deref(),
        Some("web")
    );
    assert_eq!(
        h.pod_annotation("web", "db-1", ann::GATEWAY).as_deref(),
        Some("10.17.0.1")
    );

    let acls = h.typed::<Acl, _>(|v| v.len());
    assert_eq!(acls, 4, "the private subnet's ACLs");
    let qos = h.typed::<QoS, _>(|v| v.len());
    assert_eq!(qos, 1, "w's egress limit");

    // Everything is marked dirty again (as after a resync): nothing to write.
    h.state.requeue_all();
    assert_eq!(h.settle(), 0);
}

#[test]
fn a_deleted_pod_loses_its_port_and_qos_and_its_address_goes_back() {
    let mut h = Harness::new();
    let (ns, pods, nodes) = lab_objects();
    h.list(ns, pods.clone(), nodes);
    h.settle();
    h.state.pod_event(WatchEvent::Delete(pods[2].clone()));
    assert_eq!(h.settle(), 1);
    assert!(h.port("web.w").is_none());
    assert_eq!(h.typed::<QoS, _>(|v| v.len()), 0);
    assert!(h.state.ipam().lease("web/w").is_none());
    assert!(h.port("web.db-1").is_some(), "the other pod is untouched");
}

#[test]
fn bad_annotations_are_reported_once_and_disturb_nothing() {
    let mut h = Harness::new();
    let (ns, mut pods, nodes) = lab_objects();
    pods.push(pod("default", "bad", "node1", &[(ann::MAC_ADDRESS, "zz")]));
    pods.push(pod(
        "default",
        "taken",
        "node1",
        &[(ann::IP_ADDRESS, "10.16.0.100")],
    ));
    h.list(ns, pods, nodes);
    h.settle();
    assert_eq!(
        h.events_for("bad"),
        [
            r#"BadAnnotation Pod default/bad: annotation ovn.kubernetes.io/mac_address="zz": not a MAC address (write six hex bytes such as 0a:00:00:00:00:01)"#
        ]
    );
    let taken = h.events_for("taken");
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert!(
        taken[0].starts_with("AddressUnavailable Pod default/taken: no address:")
            && taken[0].contains("default/b"),
        "names the holder: {taken:?}"
    );
    assert!(h.port("default.bad").is_none() && h.port("default.taken").is_none());
    assert!(h.port("default.b").is_some());

    // Retried later: still refused, not reported again.
    assert!(h.state.retry_failed());
    assert_eq!(h.settle(), 0);
    assert_eq!(h.events_for("taken").len(), 1);

    // A bad namespace annotation keeps the subnet as it was.
    h.state.namespace_event(WatchEvent::Apply(namespace(
        "web",
        &[(ann::CIDR, "10.17.0.0/33")],
    )));
    assert_eq!(h.settle(), 0, "nothing changes in OVN");
    assert_eq!(
        h.events_for("web"),
        [
            r#"BadAnnotation Namespace web: annotation ovn.kubernetes.io/cidr="10.17.0.0/33": not a CIDR (write a network such as 10.17.0.0/16)"#
        ]
    );
}

#[test]
fn a_subnet_change_that_would_orphan_leases_is_refused_naming_the_pods() {
    let mut h = Harness::new();
    let (ns, pods, nodes) = lab_objects();
    h.list(ns, pods, nodes);
    h.settle();
    h.state.namespace_event(WatchEvent::Apply(namespace(
        "web",
        &[
            (ann::CIDR, "10.17.0.0/24"),
            (ann::EXCLUDE_IPS, "10.17.0.0/26"),
        ],
    )));
    h.settle();
    let events = h.events_for("web");
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0].starts_with("SubnetRefused subnet web keeps its settings")
            && events[0].contains("web/w")
            && events[0].contains("web/db-1"),
        "{events:?}"
    );
    assert!(h.port("web.w").is_some());
}

#[test]
fn a_restarted_controller_rebuilds_its_leases_from_ovn_and_changes_nothing() {
    let mut h = Harness::new();
    let (ns, pods, nodes) = lab_objects();
    h.list(ns.clone(), pods.clone(), nodes.clone());
    h.settle();
    let before: Vec<_> = h.typed::<LogicalSwitchPort, _>(|v| {
        let mut v: Vec<_> = v.into_iter().map(|p| (p.name, p.addresses)).collect();
        v.sort();
        v
    });

    // A new controller over the same NB; pod `a` was deleted while none ran.
    let mut restarted = Harness {
        state: ControllerState::new(ControllerConfig::default()).unwrap(),
        nb: h.nb.clone(),
        events: Vec::new(),
        annotations: BTreeMap::new(),
    };
    let remaining: Vec<Pod> = pods.iter().skip(1).cloned().collect();
    restarted.list(ns, remaining, nodes);
    let snap = restarted.nb.snapshot();
    let events = restarted.state.restore(&Typed::new(&snap));
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(restarted.settle(), 1, "one transaction: a's port goes");
    assert!(restarted.port("default.a").is_none());
    let after: Vec<_> = restarted.typed::<LogicalSwitchPort, _>(|v| {
        let mut v: Vec<_> = v.into_iter().map(|p| (p.name, p.addresses)).collect();
        v.sort();
        v
    });
    let expected: Vec<_> = before
        .into_iter()
        .filter(|(n, _)| n != "default.a")
        .collect();
    assert_eq!(after, expected, "every other port kept its addresses");
    assert!(restarted.state.ipam().lease("default/a").is_none());
}

#[test]
fn a_batch_counts_the_pods_that_change_not_the_pods_looked_at() {
    let pods_named = |names: &[String]| -> Vec<Pod> {
        names
            .iter()
            .map(|n| pod("default", n, "node1", &[]))
            .collect()
    };
    let names: Vec<String> = (0..12).map(|i| format!("p{i:02}")).collect();
    let config = ControllerConfig::default().with_batch(4);
    let mut h = Harness::new();
    h.state = ControllerState::new(config.clone()).unwrap();
    h.list(
        vec![namespace("default", &[])],
        pods_named(&names),
        vec![node("node1")],
    );
    // 12 new pods, at most 4 changed per step: 3 transactions.
    assert_eq!(h.settle(), 3);

    // Restarted with 2 of the 12 deleted meanwhile: the 10 that OVN holds as asked cost no
    // place in a batch, so both deletions go out in one transaction.
    let mut restarted = Harness {
        state: ControllerState::new(config).unwrap(),
        nb: h.nb.clone(),
        events: Vec::new(),
        annotations: BTreeMap::new(),
    };
    let kept: Vec<String> = names
        .iter()
        .filter(|n| *n != "p03" && *n != "p09")
        .cloned()
        .collect();
    restarted.list(
        vec![namespace("default", &[])],
        pods_named(&kept),
        vec![node("node1")],
    );
    let snap = restarted.nb.snapshot();
    assert!(restarted.state.restore(&Typed::new(&snap)).is_empty());
    assert_eq!(restarted.settle(), 1);
    assert!(restarted.port("default.p03").is_none());
    assert!(restarted.port("default.p09").is_none());
    assert_eq!(
        restarted.typed::<LogicalSwitchPort, _>(|v| v
            .iter()
            .filter(|p| p.name.starts_with("default.p"))
            .count()),
        10
    );
}

#[test]
fn a_pods_snat_address_becomes_its_own_nat_rule_on_the_native_gateway_only() {
    // The cluster router first, then its port on the external network (an operator's, as
    // the native gateway's port is), then the controller with the native gateway.
    let mut h = Harness::new();
    h.list(
        vec![namespace("default", &[])],
        Vec::new(),
        vec![node("node1")],
    );
    h.settle();
    let router = h.typed::<ovn_model::nb::LogicalRouter, _>(|v| v[0].uuid);
    let mut plan = Plan::nb();
    plan.insert_child(
        router,
        &LogicalRouterPort::new(
            "lrp-ext",
            ovn_model::MacAddr::from([0x0a, 0, 0, 0, 0, 0xfe]),
            ["172.20.0.2/24".parse().unwrap()],
        ),
    )
    .unwrap();
    plan.transaction().unwrap().apply(&mut h.nb).unwrap();
    let native = gateway::NativeGateway::new("lrp-ext", "172.20.0.2".parse().unwrap(), ["node1"]);
    h.state =
        ControllerState::new(ControllerConfig::default().with_native_gateway(native)).unwrap();
    let namespaces = vec![
        namespace(
            "out",
            &[(ann::CIDR, "10.18.0.0/24"), (ann::GATEWAY_TYPE, "native")],
        ),
        namespace("default", &[]),
    ];
    let pods = vec![
        pod(
            "out",
            "s",
            "node1",
            &[(ann::IP_ADDRESS, "10.18.0.20"), (ann::SNAT, "172.20.0.50")],
        ),
        pod(
            "out",
            "both",
            "node1",
            &[
                (ann::IP_ADDRESS, "10.18.0.21"),
                (ann::EIP, "172.20.0.60"),
                (ann::SNAT, "172.20.0.61"),
            ],
        ),
        pod("default", "d", "node1", &[(ann::SNAT, "172.20.0.70")]),
    ];
    h.list(namespaces, pods, vec![node("node1")]);
    let snap = h.nb.snapshot();
    assert!(h.state.restore(&Typed::new(&snap)).is_empty());
    h.settle();
    let mut nats: Vec<(String, String, String)> = h.typed::<ovn_model::nb::Nat, _>(|v| {
        v.into_iter()
            .map(|n| (n.type_.to_string(), n.logical_ip, n.external_ip))
            .collect()
    });
    nats.sort();
    assert_eq!(
        nats,
        [
            (
                "dnat_and_snat".into(),
                "10.18.0.21".into(),
                "172.20.0.60".into()
            ),
            ("snat".into(), "10.18.0.0/24".into(), "172.20.0.2".into()),
            ("snat".into(), "10.18.0.20".into(), "172.20.0.50".into()),
        ]
    );
    assert_eq!(
        h.events_for("both"),
        [
            "EgressAddressUnsupported Pod out/both: annotation ovn.kubernetes.io/snat: ignored, the pod's ovn.kubernetes.io/eip already translates its traffic"
        ]
    );
    assert_eq!(
        h.events_for("d"),
        [
            "EgressAddressUnsupported Pod default/d: annotation ovn.kubernetes.io/snat: needs a subnet with gateway_type native, and ovn-default is distributed"
        ]
    );
}

#[test]
fn a_clocked_step_times_the_kinds_that_had_work_and_only_those() {
    let mut h = Harness::new();
    let (namespaces, pods, nodes) = lab_objects();
    h.list(namespaces, pods, nodes);
    // A simulated clock: every reading is 1 ms after the last.
    let mut ms = 0;
    let mut clock = || {
        ms += 1;
        std::time::Duration::from_millis(ms)
    };
    let snap = h.nb.snapshot();
    let out = h.state.step_clocked(&Typed::new(&snap), &mut clock);
    let kinds: Vec<&str> = out.durations.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        ["cluster", "node", "pod", "gateway", "service", "dns"]
    );
    // Each part spans the readings between its start and its end, none of zero length.
    assert!(
        out.durations.iter().all(|(_, d)| !d.is_zero()),
        "{:?}",
        out.durations
    );
    let prepared = out.plan.transaction().unwrap();
    prepared.apply(&mut h.nb).unwrap();
    h.settle();

    // Nothing dirty: nothing timed. The unclocked step times nothing.
    let snap = h.nb.snapshot();
    let out = h.state.step_clocked(&Typed::new(&snap), &mut clock);
    assert_eq!(out.durations, []);
    h.state
        .pod_event(WatchEvent::Apply(pod("default", "late", "node1", &[])));
    let out = h.state.step(&Typed::new(&snap));
    assert!(out.durations.is_empty());
    assert!(!out.plan.is_empty());
}
