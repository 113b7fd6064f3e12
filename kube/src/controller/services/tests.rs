//! What Services and EndpointSlices become, as VIP maps and rows.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use ovn_model::reconcile::Resolved;
use serde_json::{Value, json};

use super::*;

fn service(spec: Value, annotations: Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "shop", "annotations": annotations},
        "spec": spec,
    }))
    .unwrap()
}

fn slice(name: &str, ports: Value, endpoints: Value) -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "shop",
                     "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": endpoints,
    }))
    .unwrap()
}

fn endpoint(ip: &str, ready: Option<bool>, node: &str, pod: &str) -> Value {
    let mut e = json!({
        "addresses": [ip],
        "nodeName": node,
        "targetRef": {"kind": "Pod", "namespace": "shop", "name": pod},
    });
    if let Some(r) = ready {
        e["conditions"] = json!({"ready": r});
    }
    e
}

fn free(_: Proto, _: u16) -> Option<String> {
    None
}

fn settings(health: bool) -> Settings {
    Settings {
        node_port_vip: "169.254.169.3".parse().unwrap(),
        health_checks: health,
    }
}

/// `proto kind: vip => backends` lines of every load balancer.
fn vips(p: &Planned) -> Vec<String> {
    p.lbs
        .iter()
        .flat_map(|lb| {
            lb.vips
                .iter()
                .map(move |(v, b)| format!("{} {:?}: {v} => {b}", lb.proto.lower(), lb.kind))
        })
        .collect()
}

fn two_slices() -> Vec<EndpointSlice> {
    vec![
        slice(
            "web-a",
            json!([{"name": "http", "port": 8080}, {"name": "dns", "port": 5353, "protocol": "UDP"}]),
            json!([
                endpoint("10.16.0.5", Some(true), "node1", "web-0"),
                endpoint("10.16.0.6", Some(false), "node1", "web-1"),
                endpoint("10.16.0.7", None, "node2", "web-2"),
            ]),
        ),
        // Another set of pods whose named port has another number.
        slice(
            "web-b",
            json!([{"name": "http", "port": 9090}]),
            json!([endpoint("10.17.0.8", Some(true), "node2", "web-3")]),
        ),
    ]
}

#[test]
fn ready_endpoints_behind_every_port_with_named_target_ports_resolved_per_slice() {
    let svc = service(
        json!({"clusterIP": "10.96.0.10", "ports": [
            {"name": "http", "port": 80, "targetPort": "http"},
            {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353},
        ]}),
        json!({}),
    );
    let slices = two_slices();
    let refs: Vec<&EndpointSlice> = slices.iter().collect();
    let p = plan(&svc, &refs, &settings(false), &free);
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    assert_eq!(
        vips(&p),
        [
            "tcp Cluster: 10.96.0.10:80 => 10.16.0.5:8080,10.16.0.7:8080,10.17.0.8:9090",
            "udp Cluster: 10.96.0.10:53 => 10.16.0.5:5353,10.16.0.7:5353",
        ]
    );
    assert!(
        p.lbs
            .iter()
            .all(|l| l.affinity.is_none() && l.node_ports.is_empty())
    );
    assert!(p.local_ports.is_empty());
}

#[test]
fn headless_and_external_name_services_get_no_load_balancer() {
    let slices = two_slices();
    let refs: Vec<&EndpointSlice> = slices.iter().collect();
    for spec in [
        json!({"clusterIP": "None", "ports": [{"name": "http", "port": 80}]}),
        json!({"type": "ExternalName", "externalName": "example.org"}),
    ] {
        let p = plan(&service(spec, json!({})), &refs, &settings(true), &free);
        assert!(p.lbs.is_empty() && p.local_ports.is_empty(), "{p:?}");
        assert!(p.problems.is_empty(), "{:?}", p.problems);
    }
}

#[test]
fn a_service_without_endpoints_keeps_its_vip_with_no_backend() {
    let svc = service(
        json!({"clusterIPs": ["10.96.0.11"], "ports": [{"port": 80, "targetPort": 8080}]}),
        json!({}),
    );
    let p = plan(&svc, &[], &settings(false), &free);
    assert_eq!(vips(&p), ["tcp Cluster: 10.96.0.11:80 => "]);
}

#[test]
fn a_hand_written_slice_without_ports_uses_the_numeric_target_port() {
    let svc = service(
        json!({"clusterIP": "10.96.0.12", "ports": [{"port": 80, "targetPort": 8080}]}),
        json!({}),
    );
    let bare = slice(
        "ext",
        Value::Null,
        json!([{"addresses": ["192.0.2.1", "192.0.2.2"]}]),
    );
    let p = plan(&svc, &[&bare], &settings(false), &free);
    assert_eq!(
        vips(&p),
        ["tcp Cluster: 10.96.0.12:80 => 192.0.2.1:8080,192.0.2.2:8080"]
    );
}

#[test]
fn client_ip_affinity_sets_the_timeout_default_or_given() {
    let slices = two_slices();
    let refs: Vec<&EndpointSlice> = slices.iter().collect();
    let spec = |config: Value| {
        json!({"clusterIP": "10.96.0.10", "sessionAffinity": "ClientIP",
               "sessionAffinityConfig": config,
               "ports": [{"name": "http", "port": 80}]})
    };
    let p = plan(
        &service(spec(json!({})), json!({})),
        &refs,
        &settings(false),
        &free,
    );
    assert_eq!(p.lbs[0].affinity, Some(10_800));
    let given = spec(json!({"clientIP": {"timeoutSeconds": 60}}));
    let p = plan(&service(given, json!({})), &refs, &settings(false), &free);
    assert_eq!(p.lbs[0].affinity, Some(60));
}

#[test]
fn cluster_node_ports_share_the_load_balancer_with_the_node_port_vip() {
    let slices = two_slices();
    let refs: Vec<&EndpointSlice> = slices.iter().collect();
    let svc = service(
        json!({"type": "NodePort", "clusterIP": "10.96.0.10",
               "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}),
        json!({}),
    );
    let p = plan(&svc, &refs, &settings(false), &free);
    assert_eq!(
        vips(&p),
        [
            "tcp Cluster: 10.96.0.10:80 => 10.16.0.5:8080,10.16.0.7:8080,10.17.0.8:9090",
            "tcp Cluster: 169.254.169.3:30080 => 10.16.0.5:8080,10.16.0.7:8080,10.17.0.8:9090",
        ]
    );
    assert_eq!(
        node_port_data(&p.lbs[0], settings(false).node_port_vip),
        BTreeMap::from([
            (
                "ovnkit.io/node-port-vip".to_owned(),
                "169.254.169.3".to_owned()
            ),
            ("ovnkit.io/node-ports".to_owned(), "30080".to_owned()),
            ("ovnkit.io/traffic-policy".to_owned(), "Cluster".to_owned()),
        ])
    );
}

#[test]
fn a_node_port_another_service_holds_is_refused_and_the_rest_served() {
    let svc = service(
        json!({"type": "NodePort", "clusterIP": "10.96.0.10",
               "ports": [{"name": "http", "port": 80, "nodePort": 30080},
                         {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30080}]}),
        json!({}),
    );
    let taken = |p: Proto, n: u16| (p == Proto::Tcp && n == 30080).then(|| "shop/old".to_owned());
    let p = plan(&svc, &[], &settings(false), &taken);
    assert_eq!(
        p.problems,
        ["spec.ports[0].nodePort: 30080/TCP is taken by Service shop/old"]
    );
    assert_eq!(p.refused, [(Proto::Tcp, 30080)]);
    assert_eq!(
        vips(&p),
        [
            "tcp Cluster: 10.96.0.10:80 => ",
            "udp Cluster: 10.96.0.10:53 => ",
            "udp Cluster: 169.254.169.3:30080 => ",
        ]
    );
}

#[test]
fn local_node_ports_become_a_template_load_balancer_and_per_node_endpoints() {
    let slices = two_slices();
    let refs: Vec<&EndpointSlice> = slices.iter().collect();
    let svc = service(
        json!({"type": "LoadBalancer", "clusterIP": "10.96.0.10",
               "externalTrafficPolicy": "Local",
               "ports": [{"name": "http", "port": 80, "nodePort": 30080},
                         {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053}]}),
        json!({}),
    );
    let p = plan(&svc, &refs, &settings(false), &free);
    assert_eq!(
        vips(&p),
        [
            "tcp Cluster: 10.96.0.10:80 => 10.16.0.5:8080,10.16.0.7:8080,10.17.0.8:9090",
            "udp Cluster: 10.96.0.10:53 => 10.16.0.5:5353,10.16.0.7:5353",
            "tcp LocalNodePorts: ^OVNKIT_NODE_PORT_VIP:30080 => ^OVNKIT_NP_TCP_30080",
            "udp LocalNodePorts: ^OVNKIT_NODE_PORT_VIP:30053 => ^OVNKIT_NP_UDP_30053",
        ]
    );
    let local: Vec<String> = p
        .local_ports
        .iter()
        .map(|l| {
            let nodes: Vec<String> = l
                .by_node
                .iter()
                .map(|(n, b)| {
                    let b: Vec<String> = b.iter().map(ToString::to_string).collect();
                    format!("{n}={}", b.join(","))
                })
                .collect();
            format!("{} {}", l.variable(), nodes.join(" "))
        })
        .collect();
    assert_eq!(
        local,
        [
            "OVNKIT_NP_TCP_30080 node1=10.16.0.5:8080 node2=10.16.0.7:8080,10.17.0.8:9090",
            "OVNKIT_NP_UDP_30053 node1=10.16.0.5:5353 node2=10.16.0.7:5353",
        ]
    );
    let template = &p.lbs[2];
    assert_eq!(
        node_port_data(template, settings(false).node_port_vip)["ovnkit.io/traffic-policy"],
        "Local"
    );
    assert!(
        p.lbs[0].node_ports.is_empty(),
        "the ClusterIP one serves none"
    );
}

#[test]
fn bad_ports_and_annotations_are_named_and_the_rest_is_planned() {
    let slices = two_slices();
    let refs: Vec<&EndpointSlice> = slices.iter().collect();
    let svc = service(
        json!({"clusterIP": "10.96.0.10", "ports": [
            {"name": "ping", "port": 7, "protocol": "ICMP"},
            {"name": "admin", "port": 81, "targetPort": "admin"},
            {"name": "http", "port": 80},
        ]}),
        json!({HEALTH_CHECK: "yes"}),
    );
    let p = plan(&svc, &refs, &settings(false), &free);
    assert_eq!(
        p.problems,
        [
            r#"annotation ovnkit.io/health-check="yes": write true or false"#,
            r#"spec.ports[0].protocol: "ICMP" is not supported (TCP, UDP or SCTP)"#,
            r#"spec.ports[1].targetPort: "admin" is not a number and no EndpointSlice of the Service has a port named "admin" to resolve it"#,
        ]
    );
    assert_eq!(
        vips(&p),
        [
            "tcp Cluster: 10.96.0.10:80 => 10.16.0.5:8080,10.16.0.7:8080,10.17.0.8:9090",
            "tcp Cluster: 10.96.0.10:81 => ",
        ]
    );
}

#[test]
fn health_checks_cover_ipv4_tcp_and_udp_vips_and_pod_backends() {
    let mut slices = two_slices();
    // An endpoint that is no pod (a user's slice): load-balanced, not monitored.
    slices.push(slice(
        "web-ext",
        json!([{"name": "http", "port": 8080}, {"name": "sctp", "port": 9999, "protocol": "SCTP"}]),
        json!([{"addresses": ["192.0.2.10"]}]),
    ));
    let refs: Vec<&EndpointSlice> = slices.iter().collect();
    let svc = service(
        json!({"clusterIPs": ["10.96.0.10", "fd00::10"], "ports": [
            {"name": "http", "port": 80},
            {"name": "sctp", "port": 9999, "protocol": "SCTP"},
        ]}),
        json!({HEALTH_CHECK: "true"}),
    );
    let p = plan(&svc, &refs, &settings(false), &free);
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    let tcp = &p.lbs[0];
    assert_eq!(tcp.proto, Proto::Tcp);
    let checked: Vec<String> = tcp.health_vips.iter().map(ToString::to_string).collect();
    assert_eq!(checked, ["10.96.0.10:80"], "IPv4 only");
    let monitored: Vec<String> = tcp
        .monitored
        .iter()
        .map(|(ip, port)| format!("{ip} {port}"))
        .collect();
    assert_eq!(
        monitored,
        [
            "10.16.0.5 shop.web-0",
            "10.16.0.7 shop.web-2",
            "10.17.0.8 shop.web-3"
        ]
    );
    assert_eq!(tcp.vips["[fd00::10]:80"], "", "no IPv6 endpoint");
    let sctp = &p.lbs[1];
    assert_eq!(sctp.proto, Proto::Sctp);
    assert!(sctp.health_vips.is_empty(), "OVN monitors TCP and UDP only");
    assert_eq!(p.health, Some(HealthSettings::default()));
    // Settings per Service; a bad one keeps the default and is named.
    let tuned = service(
        json!({"clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 80}]}),
        json!({HEALTH_CHECK: "true", "ovnkit.io/health-check-interval": "1",
               "ovnkit.io/health-check-failure-count": "0"}),
    );
    let p = plan(&tuned, &refs, &settings(false), &free);
    assert_eq!(
        p.health,
        Some(HealthSettings {
            interval: 1,
            ..HealthSettings::default()
        })
    );
    assert_eq!(
        p.problems,
        [
            r#"annotation ovnkit.io/health-check-failure-count="0": write a positive whole number (3 used)"#
        ]
    );
    // Off by default, and off when the Service says so.
    let off = service(
        json!({"clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 80}]}),
        json!({HEALTH_CHECK: "false"}),
    );
    assert!(
        plan(&off, &refs, &settings(true), &free).lbs[0]
            .health_vips
            .is_empty()
    );
}

fn row_columns(w: &ovn_model::reconcile::Want, columns: &[&str]) -> Vec<String> {
    columns
        .iter()
        .map(|c| {
            format!(
                "{c}={}",
                w.row().get(c).map(ToString::to_string).unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn load_balancer_rows_carry_options_node_port_data_and_mappings() {
    let slices = two_slices();
    let refs: Vec<&EndpointSlice> = slices.iter().collect();
    let svc = service(
        json!({"type": "NodePort", "clusterIP": "10.96.0.10", "sessionAffinity": "ClientIP",
               "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}),
        json!({HEALTH_CHECK: "true"}),
    );
    let vip: IpAddr = "169.254.169.3".parse().unwrap();
    let p = plan(&svc, &refs, &settings(false), &free);
    let src = |b: IpAddr| -> Option<IpAddr> {
        b.to_string()
            .starts_with("10.16.")
            .then(|| "10.16.255.250".parse().unwrap())
    };
    let wants = lb_wants("shop", "web", &p.lbs, vip, &src).unwrap();
    assert_eq!(wants.len(), 1);
    assert_eq!(
        row_columns(
            &wants[0],
            &["name", "protocol", "options", "ip_port_mappings", "vips"]
        ),
        [
            r#"name="svc-shop-web-tcp""#,
            r#"protocol="tcp""#,
            r#"options=["map",[["affinity_timeout","10800"],["reject","true"]]]"#,
            r#"ip_port_mappings=["map",[["10.16.0.5","shop.web-0:10.16.255.250"],["10.16.0.7","shop.web-2:10.16.255.250"]]]"#,
            r#"vips=["map",[["10.96.0.10:80","10.16.0.5:8080,10.16.0.7:8080,10.17.0.8:9090"],["169.254.169.3:30080","10.16.0.5:8080,10.16.0.7:8080,10.17.0.8:9090"]]]"#,
        ]
    );
    let ids = wants[0].external_ids();
    assert_eq!(ids["ovnkit.io/owner"], "services");
    assert_eq!(ids["ovnkit.io/object"], "service/shop/web");
    assert_eq!(ids["ovnkit.io/role"], "tcp");
    assert_eq!(ids["ovnkit.io/node-ports"], "30080");
    // The health checks go under the load balancer, one per IPv4 VIP, Kube-OVN's settings.
    let mut plan_ = ovn_model::plan::Plan::nb();
    let resolved: Resolved = ovn_model::reconcile::diff(&mut plan_, wants, Vec::new()).unwrap();
    let checks = health_wants("shop", "web", &p.lbs, &resolved, HealthSettings::default()).unwrap();
    let lines: Vec<String> = checks
        .iter()
        .map(|w| {
            format!(
                "{} {}",
                w.key(),
                row_columns(w, &["vip", "options"]).join(" ")
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            r#"services service/shop/web health-check tcp 10.96.0.10:80 vip="10.96.0.10:80" options=["map",[["failure_count","3"],["interval","5"],["success_count","3"],["timeout","20"]]]"#,
            r#"services service/shop/web health-check tcp 169.254.169.3:30080 vip="169.254.169.3:30080" options=["map",[["failure_count","3"],["interval","5"],["success_count","3"],["timeout","20"]]]"#,
        ]
    );
}

#[test]
fn template_load_balancers_and_node_variables() {
    let slices = two_slices();
    let refs: Vec<&EndpointSlice> = slices.iter().collect();
    let svc = service(
        json!({"type": "NodePort", "clusterIP": "10.96.0.10", "externalTrafficPolicy": "Local",
               "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}),
        json!({}),
    );
    let vip: IpAddr = "169.254.169.3".parse().unwrap();
    let p = plan(&svc, &refs, &settings(false), &free);
    let wants = lb_wants("shop", "web", &p.lbs, vip, &|_| None).unwrap();
    assert_eq!(
        row_columns(&wants[1], &["name", "options", "vips", "external_ids"]),
        [
            r#"name="svc-shop-web-tcp-local""#,
            r#"options=["map",[["address-family","ipv4"],["template","true"]]]"#,
            r#"vips=["map",[["^OVNKIT_NODE_PORT_VIP:30080","^OVNKIT_NP_TCP_30080"]]]"#,
            r#"external_ids=["map",[["ovnkit.io/node-port-vip","169.254.169.3"],["ovnkit.io/node-ports","30080"],["ovnkit.io/object","service/shop/web"],["ovnkit.io/owner","services"],["ovnkit.io/role","tcp-local"],["ovnkit.io/traffic-policy","Local"]]]"#,
        ]
    );
    let vars = |node: &str| {
        let w = template_vars(node, &format!("chassis-{node}"), vip, &p.local_ports).unwrap();
        row_columns(&w, &["chassis", "variables"]).join(" ")
    };
    assert_eq!(
        vars("node2"),
        r#"chassis="chassis-node2" variables=["map",[["OVNKIT_NODE_PORT_VIP","169.254.169.3"],["OVNKIT_NP_TCP_30080","10.16.0.7:8080,10.17.0.8:9090"]]]"#
    );
    assert_eq!(
        vars("node3"),
        r#"chassis="chassis-node3" variables=["map",[["OVNKIT_NODE_PORT_VIP","169.254.169.3"],["OVNKIT_NP_TCP_30080",""]]]"#,
        "a node without endpoints drops"
    );
}
