//! Services through the reconcile step against an in-memory NB: load balancers in the one
//! group on every switch and the router, an endpoint change as one small update, health-check
//! sources leased and restored, `Local` node ports in each node's template variables, bad
//! input reported without disturbing anything, and a restart that changes nothing.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use ovn_model::nb::{
    ChassisTemplateVar, LoadBalancer, LoadBalancerGroup, LoadBalancerHealthCheck, LogicalRouter,
    LogicalSwitch,
};
use ovn_model::snapshot::Typed;
use ovsdb::replica::Replica;
use serde_json::{Value, json};

use super::*;

fn object<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

fn namespace(name: &str, annotations: Value) -> Namespace {
    object(json!({"metadata": {"name": name, "annotations": annotations}}))
}

fn node(name: &str) -> Node {
    object(json!({"metadata": {"name": name,
        "annotations": {"ovnkit.io/chassis": format!("chassis-{name}")}}}))
}

fn pod(ns: &str, name: &str, node: &str) -> Pod {
    object(
        json!({"metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}")},
        "spec": {"nodeName": node, "containers": []}}),
    )
}

fn service(name: &str, spec: Value, annotations: Value) -> Service {
    object(
        json!({"metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
        "annotations": annotations}, "spec": spec}),
    )
}

fn slice(service: &str, name: &str, port: u16, endpoints: &[(&str, &str, &str)]) -> EndpointSlice {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(ip, node, pod)| {
            json!({"addresses": [ip], "nodeName": node, "conditions": {"ready": true},
                "targetRef": {"kind": "Pod", "namespace": "default", "name": pod}})
        })
        .collect();
    object(json!({"metadata": {"name": name, "namespace": "default",
            "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": port}],
        "endpoints": endpoints}))
}

fn cluster_ip(name: &str, ip: &str, extra: Value) -> Service {
    let mut spec = json!({"clusterIP": ip, "ports": [{"name": "http", "port": 80}]});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        spec[k] = v;
    }
    service(name, spec, json!({}))
}

/// A controller state and the NB it writes, in memory.
struct Harness {
    state: ControllerState,
    nb: Replica,
    events: Vec<ObjectEvent>,
    /// The changes of the last transaction, explained.
    last: Vec<String>,
}

impl Harness {
    fn new(config: ControllerConfig) -> Self {
        let mut nb = Replica::new(ovn_model::nb::schema());
        ovn_model::owner::index(&mut nb).unwrap();
        Harness {
            state: ControllerState::new(config).unwrap(),
            nb,
            events: Vec::new(),
            last: Vec::new(),
        }
    }

    /// The same NB under a new controller (a restart), which restores from it.
    fn restarted(&self, config: ControllerConfig) -> Self {
        Harness {
            state: ControllerState::new(config).unwrap(),
            nb: self.nb.clone(),
            events: Vec::new(),
            last: Vec::new(),
        }
    }

    fn list(
        &mut self,
        pods: Vec<Pod>,
        nodes: Vec<Node>,
        services: Vec<Service>,
        slices: Vec<EndpointSlice>,
    ) {
        let s = &mut self.state;
        s.namespace_event(WatchEvent::Init);
        s.namespace_event(WatchEvent::InitApply(namespace("default", json!({}))));
        s.namespace_event(WatchEvent::InitApply(namespace(
            "web",
            json!({"ovn.kubernetes.io/cidr": "10.17.0.0/24"}),
        )));
        s.namespace_event(WatchEvent::InitDone);
        s.node_event(WatchEvent::Init);
        nodes
            .into_iter()
            .for_each(|n| s.node_event(WatchEvent::InitApply(n)));
        s.node_event(WatchEvent::InitDone);
        s.pod_event(WatchEvent::Init);
        pods.into_iter()
            .for_each(|p| s.pod_event(WatchEvent::InitApply(p)));
        s.pod_event(WatchEvent::InitDone);
        s.service_event(WatchEvent::Init);
        services
            .into_iter()
            .for_each(|v| s.service_event(WatchEvent::InitApply(v)));
        s.service_event(WatchEvent::InitDone);
        s.endpoint_slice_event(WatchEvent::Init);
        slices
            .into_iter()
            .for_each(|v| s.endpoint_slice_event(WatchEvent::InitApply(v)));
        s.endpoint_slice_event(WatchEvent::InitDone);
    }

    fn restore(&mut self) -> Vec<ObjectEvent> {
        let snap = self.nb.snapshot();
        self.state.restore(&Typed::new(&snap))
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
                self.last = out.plan.explain();
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

    fn lb(&self, name: &str) -> Option<LoadBalancer> {
        self.rows::<LoadBalancer>()
            .into_iter()
            .find(|l| l.name == name)
    }

    fn group(&self) -> LoadBalancerGroup {
        let mut groups = self.rows::<LoadBalancerGroup>();
        assert_eq!(groups.len(), 1, "one group");
        groups.remove(0)
    }

    fn events_for(&self, name: &str) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e.object.name == name)
            .map(|e| format!("{} {}", e.reason, e.message))
            .collect()
    }
}

fn two_services() -> (Vec<Service>, Vec<EndpointSlice>) {
    (
        vec![
            cluster_ip("web", "10.96.0.10", json!({})),
            cluster_ip("db", "10.96.0.11", json!({"sessionAffinity": "ClientIP"})),
        ],
        vec![
            slice(
                "web",
                "web-1",
                8080,
                &[("10.16.0.5", "node1", "a"), ("10.16.0.6", "node2", "b")],
            ),
            slice("db", "db-1", 5432, &[("10.17.0.7", "node1", "c")]),
        ],
    )
}

fn nodes() -> Vec<Node> {
    vec![node("node1"), node("node2")]
}

/// Every switch and the router hold the group, and the group every Service load balancer.
fn assert_group_everywhere(h: &Harness) {
    let group = h.group();
    let lbs: BTreeSet<_> = h
        .rows::<LoadBalancer>()
        .into_iter()
        .map(|l| l.uuid)
        .collect();
    let members: BTreeSet<_> = group
        .load_balancer
        .iter()
        .filter_map(|l| l.uuid())
        .collect();
    assert_eq!(members, lbs, "the group holds every load balancer");
    for sw in h.rows::<LogicalSwitch>() {
        let refs: Vec<_> = sw
            .load_balancer_group
            .iter()
            .filter_map(|g| g.uuid())
            .collect();
        assert_eq!(refs, [group.uuid], "switch {} applies the group", sw.name);
    }
    for r in h.rows::<LogicalRouter>() {
        let refs: Vec<_> = r
            .load_balancer_group
            .iter()
            .filter_map(|g| g.uuid())
            .collect();
        assert_eq!(refs, [group.uuid], "router {} applies the group", r.name);
    }
}

#[test]
fn services_become_load_balancers_in_one_group_on_every_switch_and_the_router() {
    let mut h = Harness::new(ControllerConfig::default());
    let (services, slices) = two_services();
    h.list(
        vec![pod("default", "a", "node1")],
        nodes(),
        services,
        slices,
    );
    assert_eq!(h.settle(), 1, "one listing, one transaction");
    assert!(h.events.is_empty(), "{:?}", h.events);
    let web = h.lb("svc-default-web-tcp").expect("web's load balancer");
    assert_eq!(
        web.vips,
        BTreeMap::from([(
            "10.96.0.10:80".into(),
            "10.16.0.5:8080,10.16.0.6:8080".into()
        )])
    );
    let db = h.lb("svc-default-db-tcp").expect("db's load balancer");
    assert_eq!(db.options["affinity_timeout"], "10800");
    assert_eq!(h.rows::<LogicalSwitch>().len(), 3, "join, ovn-default, web");
    assert_group_everywhere(&h);

    // Everything planned again (a resync): nothing to write.
    h.state.requeue_all();
    assert_eq!(h.settle(), 0);
}

#[test]
fn an_endpoint_change_is_one_update_of_one_load_balancer() {
    let mut h = Harness::new(ControllerConfig::default());
    let (services, slices) = two_services();
    h.list(Vec::new(), nodes(), services, slices);
    h.settle();
    let before = h.lb("svc-default-web-tcp").unwrap();
    h.state.endpoint_slice_event(WatchEvent::Apply(slice(
        "web",
        "web-1",
        8080,
        &[("10.16.0.5", "node1", "a"), ("10.16.0.9", "node2", "d")],
    )));
    assert_eq!(h.settle(), 1);
    assert_eq!(h.last.len(), 1, "{:#?}", h.last);
    assert!(
        h.last[0].contains(&format!("update Load_Balancer {}", before.uuid)),
        "{:?}",
        h.last
    );
    let after = h.lb("svc-default-web-tcp").unwrap();
    assert_eq!(after.uuid, before.uuid);
    assert_eq!(after.vips["10.96.0.10:80"], "10.16.0.5:8080,10.16.0.9:8080");
}

#[test]
fn a_new_subnet_switch_gets_the_group_in_the_same_step() {
    let mut h = Harness::new(ControllerConfig::default());
    let (services, slices) = two_services();
    h.list(Vec::new(), nodes(), services, slices);
    h.settle();
    h.state.namespace_event(WatchEvent::Apply(namespace(
        "shop",
        json!({"ovn.kubernetes.io/cidr": "10.18.0.0/24"}),
    )));
    assert_eq!(h.settle(), 1);
    assert!(h.rows::<LogicalSwitch>().iter().any(|s| s.name == "shop"));
    assert_group_everywhere(&h);
}

#[test]
fn a_deleted_service_loses_its_rows_and_leaves_the_group() {
    let mut h = Harness::new(ControllerConfig::default().with_service_health_checks(true));
    let (services, slices) = two_services();
    h.list(Vec::new(), nodes(), services.clone(), slices);
    h.settle();
    assert_eq!(h.rows::<LoadBalancerHealthCheck>().len(), 2);
    h.state
        .service_event(WatchEvent::Delete(services[0].clone()));
    assert_eq!(h.settle(), 1);
    assert!(h.lb("svc-default-web-tcp").is_none());
    assert!(
        h.lb("svc-default-db-tcp").is_some(),
        "the other Service is untouched"
    );
    assert_eq!(h.rows::<LoadBalancerHealthCheck>().len(), 1, "db's is left");
    assert_group_everywhere(&h);
}

#[test]
fn health_checks_lease_one_source_per_subnet_and_a_restart_takes_it_back() {
    let config = ControllerConfig::default().with_service_health_checks(true);
    let mut h = Harness::new(config.clone());
    let (services, slices) = two_services();
    let pods = vec![pod("default", "a", "node1")];
    h.list(pods.clone(), nodes(), services.clone(), slices.clone());
    h.settle();
    let src = h
        .state
        .ipam()
        .lease("health-check/ovn-default")
        .expect("a source in ovn-default");
    let src_ip = src.addresses().next().unwrap();
    let web_src = h
        .state
        .ipam()
        .lease("health-check/web")
        .expect("a source in web");
    let web = h.lb("svc-default-web-tcp").unwrap();
    assert_eq!(
        web.ip_port_mappings,
        BTreeMap::from([
            ("10.16.0.5".into(), format!("default.a:{src_ip}")),
            ("10.16.0.6".into(), format!("default.b:{src_ip}")),
        ])
    );
    let checks: Vec<(String, BTreeMap<String, String>)> = h
        .rows::<LoadBalancerHealthCheck>()
        .into_iter()
        .map(|c| (c.vip, c.options))
        .filter(|(v, _)| v == "10.96.0.10:80")
        .collect();
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].1["interval"], "5");
    assert_eq!(checks[0].1["timeout"], "20");

    // A restarted controller leases the same sources again (no pod gets them) and changes
    // nothing.
    let mut r = h.restarted(config);
    r.list(pods, nodes(), services.clone(), slices);
    assert!(r.restore().is_empty());
    assert_eq!(r.settle(), 0, "nothing to change: {:?}", r.last);
    let address = |h: &Harness, owner: &str| -> Vec<IpAddr> {
        h.state
            .ipam()
            .lease(owner)
            .map(|l| l.addresses().collect())
            .unwrap_or_default()
    };
    assert_eq!(address(&r, "health-check/ovn-default"), [src_ip]);
    assert_eq!(
        address(&r, "health-check/web"),
        web_src.addresses().collect::<Vec<_>>()
    );

    // Once no Service with health checks has backends in a subnet, its source goes back.
    r.state
        .service_event(WatchEvent::Delete(services[1].clone()));
    r.settle();
    assert!(r.state.ipam().lease("health-check/web").is_none());
    assert!(r.state.ipam().lease("health-check/ovn-default").is_some());
}

#[test]
fn local_node_ports_fill_each_nodes_template_variables() {
    let mut h = Harness::new(ControllerConfig::default());
    let svc = service(
        "np",
        json!({"type": "NodePort", "clusterIP": "10.96.0.20", "externalTrafficPolicy": "Local",
            "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}),
        json!({}),
    );
    let eps = slice("np", "np-1", 8080, &[("10.16.0.5", "node1", "a")]);
    h.list(
        Vec::new(),
        vec![node("node1"), node("node2"), node("node3")],
        vec![svc],
        vec![eps],
    );
    h.settle();
    let vars = |h: &Harness| -> BTreeMap<String, String> {
        h.rows::<ChassisTemplateVar>()
            .into_iter()
            .map(|v| {
                let np = v
                    .variables
                    .get("OVNKIT_NP_TCP_30080")
                    .cloned()
                    .unwrap_or_default();
                (
                    v.chassis,
                    format!("{} {np}", v.variables["OVNKIT_NODE_PORT_VIP"]),
                )
            })
            .collect()
    };
    assert_eq!(
        vars(&h),
        BTreeMap::from([
            (
                "chassis-node1".into(),
                "169.254.169.3 10.16.0.5:8080".into()
            ),
            ("chassis-node2".into(), "169.254.169.3 ".into()),
            ("chassis-node3".into(), "169.254.169.3 ".into()),
        ])
    );
    let template = h
        .lb("svc-default-np-tcp-local")
        .expect("the template load balancer");
    assert_eq!(template.options["template"], "true");
    assert_eq!(template.external_ids["ovnkit.io/traffic-policy"], "Local");
    // The endpoint moves to node2; node3 leaves.
    h.state.endpoint_slice_event(WatchEvent::Apply(slice(
        "np",
        "np-1",
        8080,
        &[("10.16.0.8", "node2", "b")],
    )));
    h.state.node_event(WatchEvent::Delete(node("node3")));
    h.settle();
    assert_eq!(
        vars(&h),
        BTreeMap::from([
            ("chassis-node1".into(), "169.254.169.3 ".into()),
            (
                "chassis-node2".into(),
                "169.254.169.3 10.16.0.8:8080".into()
            ),
        ])
    );
}

#[test]
fn bad_services_are_reported_once_and_disturb_nothing() {
    let mut h = Harness::new(ControllerConfig::default());
    let (mut services, slices) = two_services();
    services.push(service(
        "odd",
        json!({"clusterIP": "10.96.0.30", "ports": [
            {"name": "ping", "port": 7, "protocol": "ICMP"},
            {"name": "http", "port": 80},
        ]}),
        json!({"ovnkit.io/health-check": "maybe"}),
    ));
    h.list(Vec::new(), nodes(), services, slices);
    h.settle();
    assert_eq!(
        h.events_for("odd"),
        [
            r#"BadService Service default/odd: annotation ovnkit.io/health-check="maybe": write true or false; spec.ports[0].protocol: "ICMP" is not supported (TCP, UDP or SCTP)"#
        ]
    );
    assert_eq!(
        h.lb("svc-default-odd-tcp").unwrap().vips.len(),
        1,
        "its good port is served"
    );
    assert!(h.lb("svc-default-web-tcp").is_some() && h.lb("svc-default-db-tcp").is_some());
    assert!(h.events_for("web").is_empty() && h.events_for("db").is_empty());
    h.state.requeue_all();
    assert_eq!(h.settle(), 0);
    assert_eq!(h.events_for("odd").len(), 1, "reported once");
}

#[test]
fn a_restarted_controller_keeps_every_load_balancer_and_collects_deleted_services() {
    let config = ControllerConfig::default();
    let mut h = Harness::new(config.clone());
    let (services, slices) = two_services();
    h.list(Vec::new(), nodes(), services.clone(), slices.clone());
    h.settle();
    let kept = h.lb("svc-default-web-tcp").unwrap();
    // db was deleted while no controller ran.
    let mut r = h.restarted(config);
    r.list(
        Vec::new(),
        nodes(),
        services[..1].to_vec(),
        slices[..1].to_vec(),
    );
    assert!(r.restore().is_empty());
    assert_eq!(r.settle(), 1, "one transaction: db's load balancer goes");
    // The same transaction drops db's DNS records (the dns component's rows).
    let services: Vec<_> = r
        .last
        .iter()
        .filter(|l| l.starts_with("services "))
        .collect();
    assert_eq!(services.len(), 1, "{:?}", r.last);
    assert!(r.lb("svc-default-db-tcp").is_none());
    assert_eq!(
        r.rows::<LoadBalancer>(),
        vec![kept],
        "web's is untouched, not doubled"
    );
    assert_eq!(r.rows::<LoadBalancerGroup>().len(), 1);
    assert_group_everywhere(&r);
}

#[test]
fn a_node_port_two_services_ask_for_goes_to_one_and_passes_on_when_it_leaves() {
    let mut h = Harness::new(ControllerConfig::default());
    let np = |name: &str, ip: &str| {
        service(
            name,
            json!({"type": "NodePort", "clusterIP": ip,
                "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}),
            json!({}),
        )
    };
    let (a, b) = (np("a", "10.96.0.40"), np("b", "10.96.0.41"));
    h.list(Vec::new(), nodes(), vec![a.clone(), b], Vec::new());
    h.settle();
    let node_port_vips = |h: &Harness, lb: &str| -> Vec<String> {
        h.lb(lb)
            .unwrap()
            .vips
            .into_keys()
            .filter(|v| v.starts_with("169.254.169.3:"))
            .collect()
    };
    assert_eq!(
        node_port_vips(&h, "svc-default-a-tcp"),
        ["169.254.169.3:30080"]
    );
    assert!(node_port_vips(&h, "svc-default-b-tcp").is_empty());
    assert_eq!(
        h.events_for("b"),
        [
            "BadService Service default/b: spec.ports[0].nodePort: 30080/TCP is taken by Service default/a"
        ]
    );
    h.state.service_event(WatchEvent::Delete(a));
    h.settle();
    assert_eq!(
        node_port_vips(&h, "svc-default-b-tcp"),
        ["169.254.169.3:30080"]
    );
    assert_eq!(
        h.lb("svc-default-b-tcp").unwrap().external_ids["ovnkit.io/node-ports"],
        "30080"
    );
}
