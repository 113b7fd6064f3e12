//! The DNS part of the step against an in-memory NB (`ovsdb`'s transaction engine): Services
//! become one `DNS` row every switch refers to, a Service's change is that record's mutation in
//! one transaction, a new subnet's switch gets the reference when it is created, and a restarted
//! controller writes nothing (or puts back a reference removed by hand).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Namespace, Node, Service, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use ovn_model::nb::{Dns, LogicalSwitch};
use ovn_model::plan::{Change, Plan};
use ovn_model::snapshot::Typed;
use ovsdb::replica::Replica;
use ovsdb::{Datum, Mutation, Table};

use super::super::{ControllerState, ObjectEvent, WatchEvent};
use crate::controller::config::ControllerConfig;
use crate::controller::source::Kind;

fn meta(namespace: Option<&str>, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(Into::into),
        uid: Some(format!("uid-{name}")),
        ..Default::default()
    }
}

fn namespace(name: &str, annotations: &[(&str, &str)]) -> Namespace {
    let mut m = meta(None, name);
    m.annotations = Some(
        annotations
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    Namespace {
        metadata: m,
        ..Default::default()
    }
}

fn service(ns: &str, name: &str, cluster_ip: &str) -> Service {
    Service {
        metadata: meta(Some(ns), name),
        spec: Some(ServiceSpec {
            cluster_ip: Some(cluster_ip.into()),
            cluster_ips: Some(vec![cluster_ip.into()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn slice(ns: &str, service: &str, ready: &[(&str, bool)]) -> EndpointSlice {
    let mut m = meta(Some(ns), &format!("{service}-x1"));
    m.labels = Some(BTreeMap::from([(
        "kubernetes.io/service-name".to_owned(),
        service.to_owned(),
    )]));
    EndpointSlice {
        metadata: m,
        address_type: "IPv4".into(),
        endpoints: Some(
            ready
                .iter()
                .map(|(ip, r)| Endpoint {
                    addresses: vec![(*ip).to_owned()],
                    conditions: Some(EndpointConditions {
                        ready: Some(*r),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect(),
        ),
        ports: None,
    }
}

struct Harness {
    state: ControllerState,
    nb: Replica,
    events: Vec<ObjectEvent>,
}

impl Harness {
    fn new() -> Self {
        let mut nb = Replica::new(ovn_model::nb::schema());
        ovn_model::owner::index(&mut nb).unwrap();
        Harness {
            state: ControllerState::new(ControllerConfig::default()).unwrap(),
            nb,
            events: Vec::new(),
        }
    }

    /// A new controller over the same NB.
    fn restarted(&self) -> Self {
        Harness {
            state: ControllerState::new(ControllerConfig::default()).unwrap(),
            nb: self.nb.clone(),
            events: Vec::new(),
        }
    }

    fn list(&mut self, services: Vec<Service>, slices: Vec<EndpointSlice>) {
        let s = &mut self.state;
        s.namespace_event(WatchEvent::Init);
        s.namespace_event(WatchEvent::InitApply(namespace("default", &[])));
        s.namespace_event(WatchEvent::InitDone);
        s.node_event(WatchEvent::Init);
        s.node_event(WatchEvent::InitApply(Node {
            metadata: meta(None, "node1"),
            ..Default::default()
        }));
        s.node_event(WatchEvent::InitDone);
        s.service_event(WatchEvent::Init);
        for svc in services {
            s.service_event(WatchEvent::InitApply(svc));
        }
        s.service_event(WatchEvent::InitDone);
        s.endpoint_slice_event(WatchEvent::Init);
        for sl in slices {
            s.endpoint_slice_event(WatchEvent::InitApply(sl));
        }
        s.endpoint_slice_event(WatchEvent::InitDone);
    }

    /// One step, applied; its plan.
    fn step(&mut self) -> Plan {
        let snap = self.nb.snapshot();
        let out = self.state.step(&Typed::new(&snap));
        if !out.plan.is_empty() {
            out.plan
                .transaction()
                .unwrap()
                .apply(&mut self.nb)
                .unwrap_or_else(|e| panic!("{e}\n{}", out.plan));
        }
        self.events.extend(out.events);
        out.plan
    }

    /// Steps until nothing is dirty; how many steps wrote.
    fn settle(&mut self) -> usize {
        let mut writes = 0;
        while self.state.is_dirty() {
            if !self.step().is_empty() {
                writes += 1;
            }
        }
        writes
    }

    fn dns_rows(&self) -> Vec<Dns> {
        let snap = self.nb.snapshot();
        Typed::new(&snap).rows::<Dns>().collect()
    }

    fn records(&self) -> BTreeMap<String, String> {
        let rows = self.dns_rows();
        assert_eq!(rows.len(), 1, "one DNS row: {rows:?}");
        rows[0].records.clone()
    }

    /// Each switch's name and the DNS rows it refers to.
    fn switch_links(&self) -> BTreeMap<String, BTreeSet<ovsdb::Uuid>> {
        let snap = self.nb.snapshot();
        Typed::new(&snap)
            .rows::<LogicalSwitch>()
            .map(|s| {
                let links = s.dns_records.iter().filter_map(|d| d.uuid()).collect();
                (s.name, links)
            })
            .collect()
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn lab() -> Harness {
    let mut h = Harness::new();
    h.list(
        vec![
            service("default", "web", "10.96.0.20"),
            service("default", "pg", "None"),
        ],
        vec![slice(
            "default",
            "pg",
            &[
                ("10.16.0.12", true),
                ("10.16.0.11", true),
                ("10.16.0.13", false),
            ],
        )],
    );
    assert_eq!(h.settle(), 1, "one listing, one transaction");
    h
}

#[test]
fn services_become_one_dns_row_that_every_switch_refers_to() {
    let h = lab();
    assert!(h.events.is_empty(), "{:?}", h.events);
    assert_eq!(
        h.records(),
        map(&[
            ("20.0.96.10.in-addr.arpa", "web.default.svc.cluster.local"),
            ("pg.default.svc.cluster.local", "10.16.0.11 10.16.0.12"),
            ("web.default.svc.cluster.local", "10.96.0.20"),
        ])
    );
    let dns = h.dns_rows()[0].uuid;
    let tags = &h.dns_rows()[0].external_ids;
    assert_eq!(
        (
            tags["ovnkit.io/owner"].as_str(),
            tags["ovnkit.io/object"].as_str()
        ),
        ("dns", "cluster")
    );
    let links = h.switch_links();
    assert_eq!(
        links.keys().map(String::as_str).collect::<Vec<_>>(),
        ["join", "ovn-default"]
    );
    for (name, l) in &links {
        assert_eq!(*l, BTreeSet::from([dns]), "switch {name}");
    }

    // Nothing changed: a requeued step writes nothing.
    let mut h = h;
    h.state.requeue_all();
    assert_eq!(h.settle(), 0);
}

#[test]
fn one_service_change_is_that_records_mutation_in_one_step() {
    let mut h = lab();
    h.state
        .service_event(WatchEvent::Apply(service("default", "web", "10.96.0.21")));
    let plan = h.step();
    assert!(!h.state.is_dirty());
    assert_eq!(plan.steps().len(), 1, "{plan}");
    let Change::Mutate {
        table, mutations, ..
    } = &plan.steps()[0].change
    else {
        panic!("a mutation: {plan}");
    };
    assert_eq!(*table, Dns::TABLE);
    assert_eq!(
        mutations,
        &vec![
            Mutation::delete(
                "records",
                Datum::set(["20.0.96.10.in-addr.arpa", "web.default.svc.cluster.local"])
            ),
            Mutation::insert(
                "records",
                Datum::map([
                    ("21.0.96.10.in-addr.arpa", "web.default.svc.cluster.local"),
                    ("web.default.svc.cluster.local", "10.96.0.21"),
                ])
            ),
        ]
    );
    assert_eq!(h.records()["web.default.svc.cluster.local"], "10.96.0.21");

    // An endpoint going unready leaves the headless record.
    h.state.endpoint_slice_event(WatchEvent::Apply(slice(
        "default",
        "pg",
        &[("10.16.0.12", true), ("10.16.0.11", false)],
    )));
    assert_eq!(h.step().steps().len(), 1);
    assert_eq!(h.records()["pg.default.svc.cluster.local"], "10.16.0.12");

    // A deleted Service loses its records, the others stay.
    h.state
        .service_event(WatchEvent::Delete(service("default", "web", "10.96.0.21")));
    assert_eq!(h.step().steps().len(), 1);
    assert_eq!(
        h.records(),
        map(&[("pg.default.svc.cluster.local", "10.16.0.12")])
    );
}

#[test]
fn a_new_subnets_switch_refers_to_the_row_from_the_step_that_creates_it() {
    let mut h = lab();
    h.state.namespace_event(WatchEvent::Apply(namespace(
        "shop",
        &[("ovn.kubernetes.io/cidr", "10.17.0.0/24")],
    )));
    assert_eq!(
        h.settle(),
        1,
        "the switch and its reference: one transaction"
    );
    let dns = h.dns_rows()[0].uuid;
    let links = h.switch_links();
    assert_eq!(links["shop"], BTreeSet::from([dns]), "{links:?}");
    assert_eq!(links.len(), 3);
}

#[test]
fn a_restarted_controller_writes_nothing_and_puts_back_a_reference_removed_by_hand() {
    let h = lab();
    let mut again = h.restarted();
    again.list(
        vec![
            service("default", "web", "10.96.0.20"),
            service("default", "pg", "None"),
        ],
        vec![slice(
            "default",
            "pg",
            &[
                ("10.16.0.12", true),
                ("10.16.0.11", true),
                ("10.16.0.13", false),
            ],
        )],
    );
    let snap = again.nb.snapshot();
    assert!(again.state.restore(&Typed::new(&snap)).is_empty());
    assert_eq!(again.settle(), 0, "OVN already holds it all");

    // Someone clears the join switch's reference; the next controller puts it back.
    let dns = again.dns_rows()[0].uuid;
    let mut plan = Plan::nb();
    plan.mutate::<LogicalSwitch>(
        "join",
        Mutation::delete("dns_records", Datum::set([ovsdb::Atom::Uuid(dns)])),
    )
    .unwrap();
    plan.transaction().unwrap().apply(&mut again.nb).unwrap();
    assert!(again.switch_links()["join"].is_empty());
    let mut third = again.restarted();
    third.list(
        vec![
            service("default", "web", "10.96.0.20"),
            service("default", "pg", "None"),
        ],
        vec![slice(
            "default",
            "pg",
            &[
                ("10.16.0.12", true),
                ("10.16.0.11", true),
                ("10.16.0.13", false),
            ],
        )],
    );
    let snap = third.nb.snapshot();
    third.state.restore(&Typed::new(&snap));
    assert_eq!(third.settle(), 1);
    assert_eq!(third.switch_links()["join"], BTreeSet::from([dns]));
}

#[test]
fn a_bad_cluster_ip_is_an_event_on_its_service_and_the_other_records_stay() {
    let mut h = lab();
    h.state
        .service_event(WatchEvent::Apply(service("default", "web", "10.96.0.999")));
    h.settle();
    // The Services planner reports the same address for the load balancer (BadService).
    let dns: Vec<_> = h
        .events
        .iter()
        .filter(|e| e.reason == "BadDnsRecord")
        .collect();
    assert_eq!(dns.len(), 1, "{:?}", h.events);
    let e = dns[0];
    assert_eq!(
        (e.object.kind, e.object.name.as_str()),
        (Kind::Service, "web")
    );
    assert!(e.message.contains("spec.clusterIPs"), "{}", e.message);
    assert_eq!(
        h.records(),
        map(&[("pg.default.svc.cluster.local", "10.16.0.11 10.16.0.12")])
    );
}
