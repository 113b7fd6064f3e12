use std::time::Duration;

use super::*;
use crate::sandbox::objects::{DEFAULT_MANIFESTS, Follower};

fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
    serde_yaml::from_str(text).expect("test YAML")
}

fn nodes(n: usize) -> Vec<NodeName> {
    (1..=n)
        .map(|i| NodeName {
            name: format!("node{i}"),
            chassis: format!("chassis-{i}"),
        })
        .collect()
}

fn pod(ns: &str, name: &str, extra: &str) -> (String, Pod) {
    let p: Pod = yaml(&format!(
        "metadata: {{name: {name}, namespace: {ns}}}\nspec: {{containers: [{{name: c}}]{extra}}}\n"
    ));
    (format!("{ns}/{name}"), p)
}

/// The default manifests, read by the controller's own manifest reader.
fn default_objects() -> Objects {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster.yaml"), DEFAULT_MANIFESTS).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        Follower::start(dir.path(), Duration::from_secs(20))
            .await
            .unwrap()
            .objects()
    })
}

#[test]
fn pods_go_to_their_node_name_or_round_robin_and_stay_there() {
    let mut objects = Objects::default();
    for (k, p) in [
        pod("a", "p0", ""),
        pod("a", "p1", ", nodeName: node3"),
        pod("a", "p2", ""),
        pod("a", "p3", ", nodeName: nowhere"),
    ] {
        objects.pods.insert(k, p);
    }
    let mut d = Decisions::default();
    let warnings = d.update(&objects, &nodes(3));
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("a/p3") && warnings[0].contains("nowhere"));
    assert_eq!(d.pod_nodes["a/p0"], "node1");
    assert_eq!(d.pod_nodes["a/p1"], "node3");
    assert_eq!(d.pod_nodes["a/p2"], "node2");
    assert_eq!(d.pod_nodes["a/p3"], "node3");
    let placed = d.placed_pod("a/p2", &objects.pods["a/p2"]);
    assert_eq!(placed.spec.unwrap().node_name.as_deref(), Some("node2"));

    // A new pod continues the round; a removed one is forgotten; the others stay.
    objects.pods.remove("a/p0");
    let (k, p) = pod("a", "p4", "");
    objects.pods.insert(k, p);
    assert!(d.update(&objects, &nodes(3)).is_empty());
    assert_eq!(d.pod_nodes["a/p4"], "node1");
    assert_eq!(d.pod_nodes["a/p2"], "node2");
    assert!(!d.pod_nodes.contains_key("a/p0"));
}

#[test]
fn services_get_a_cluster_ip_and_node_ports_unless_the_manifest_has_them() {
    let mut objects = Objects::default();
    let services = [
        (
            "a/given",
            "spec: {clusterIP: 10.96.0.100, ports: [{port: 80}]}",
        ),
        ("a/plain", "spec: {ports: [{port: 80}]}"),
        ("a/headless", "spec: {clusterIP: None, ports: [{port: 80}]}"),
        (
            "a/np",
            "spec: {type: NodePort, ports: [{port: 80, nodePort: 30000}, {port: 81}]}",
        ),
    ];
    for (k, s) in services {
        let name = k.split_once('/').unwrap().1;
        let svc: Service = yaml(&format!("metadata: {{name: {name}, namespace: a}}\n{s}\n"));
        objects.services.insert(k.to_owned(), svc);
    }
    let mut d = Decisions::default();
    d.update(&objects, &nodes(1));
    let ip = |k: &str| cluster_ip(&d.allocated_service(k, &objects.services[k]));
    assert_eq!(ip("a/given"), Some("10.96.0.100".parse().unwrap()));
    // .100 is taken by the manifest: the next ones.
    assert_eq!(ip("a/np"), Some("10.96.0.101".parse().unwrap()));
    assert_eq!(ip("a/plain"), Some("10.96.0.102".parse().unwrap()));
    assert_eq!(ip("a/headless"), None);
    assert!(is_headless(&d.allocated_service(
        "a/headless",
        &objects.services["a/headless"]
    )));
    let np = d.allocated_service("a/np", &objects.services["a/np"]);
    let ports: Vec<Option<i32>> = np
        .spec
        .unwrap()
        .ports
        .unwrap()
        .iter()
        .map(|p| p.node_port)
        .collect();
    assert_eq!(ports, vec![Some(30000), Some(30001)]);
    // Sticky.
    let before = d.cluster_ips.clone();
    d.update(&objects, &nodes(1));
    assert_eq!(d.cluster_ips, before);
}

#[test]
fn endpoint_slices_hold_the_running_pods_of_the_selector_with_named_ports_resolved() {
    let service: Service = yaml(
        "metadata: {name: web, namespace: a}\n\
         spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}, {name: udp, protocol: UDP, port: 53}]}\n",
    );
    let mut pods = BTreeMap::new();
    let mk = |name: &str, app: &str, port: i32| -> (String, Pod) {
        (
            format!("a/{name}"),
            yaml(&format!(
                "metadata: {{name: {name}, namespace: a, labels: {{app: {app}}}}}\n\
                 spec: {{containers: [{{name: c, ports: [{{name: http, containerPort: {port}}}]}}]}}\n"
            )),
        )
    };
    for (k, p) in [
        mk("w1", "web", 8080),
        mk("w2", "web", 8080),
        mk("w3", "web", 9090),
        mk("other", "db", 8080),
        mk("stopped", "web", 8080),
    ] {
        pods.insert(k, p);
    }
    let mut other_ns = mk("w9", "web", 8080);
    other_ns.1.metadata.namespace = Some("b".into());
    pods.insert("b/w9".into(), other_ns.1);
    let running: BTreeMap<String, (IpAddr, String)> = ["a/w1", "a/w2", "a/w3", "a/other", "b/w9"]
        .iter()
        .enumerate()
        .map(|(i, k)| {
            (
                (*k).to_owned(),
                (
                    format!("10.0.0.{}", i + 1).parse().unwrap(),
                    "node1".to_owned(),
                ),
            )
        })
        .collect();
    let slices = endpoint_slices("a/web", &service, &pods, &running);
    assert_eq!(slices.len(), 2, "8080 and 9090 pods in separate slices");
    type Summary = (Vec<String>, Vec<(Option<String>, Option<i32>)>);
    let summary: Vec<Summary> = slices
        .iter()
        .map(|s| {
            assert_eq!(
                s.metadata.labels.as_ref().unwrap()[SERVICE_NAME_LABEL],
                "web"
            );
            assert_eq!(s.address_type, "IPv4");
            (
                s.endpoints
                    .iter()
                    .flatten()
                    .flat_map(|e| e.addresses.clone())
                    .collect(),
                s.ports
                    .iter()
                    .flatten()
                    .map(|p| (p.name.clone(), p.port))
                    .collect(),
            )
        })
        .collect();
    assert!(summary.contains(&(
        vec!["10.0.0.1".into(), "10.0.0.2".into()],
        vec![
            (Some("http".into()), Some(8080)),
            (Some("udp".into()), Some(53))
        ]
    )));
    assert!(summary.contains(&(
        vec!["10.0.0.3".into()],
        vec![
            (Some("http".into()), Some(9090)),
            (Some("udp".into()), Some(53))
        ]
    )));
}

#[test]
fn the_default_manifests_are_what_the_sandbox_promises() {
    let objects = default_objects();
    let annotation = |ns: &str, key: &str| {
        objects.namespaces[ns]
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key).cloned())
    };
    assert_eq!(
        annotation("secure", "ovn.kubernetes.io/private").as_deref(),
        Some("true")
    );
    assert_eq!(
        annotation("edge", "ovn.kubernetes.io/gateway_type").as_deref(),
        Some("centralized")
    );
    assert_eq!(
        annotation("edge", "ovn.kubernetes.io/gateway_node").as_deref(),
        Some("node1,node2")
    );
    let pod_annotation = |k: &str, key: &str| {
        objects.pods[k]
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key).cloned())
    };
    assert!(pod_annotation("apps/db-1", "ovn.kubernetes.io/ip_pool").is_some());
    assert!(
        objects.pods["apps/db-1"]
            .metadata
            .owner_references
            .is_some()
    );
    assert!(pod_annotation("apps/static", "ovn.kubernetes.io/mac_address").is_some());
    assert!(pod_annotation("default/uploader", "ovn.kubernetes.io/egress_rate").is_some());
    assert!(pod_annotation("default/downloader", "ovn.kubernetes.io/ingress_rate").is_some());
    let types: Vec<&str> = objects.services.values().map(service_type).collect();
    assert!(types.contains(&"ClusterIP") && types.contains(&"NodePort"));
    assert!(objects.services.values().any(is_headless));
    assert_eq!(objects.policies.len(), 1);
}

#[test]
fn the_working_copy_reads_back_through_the_controllers_manifest_reader() {
    let objects = default_objects().with_scale_pods(3);
    let nodes = nodes(3);
    let mut d = Decisions::default();
    assert!(d.update(&objects, &nodes).is_empty());
    let running: BTreeMap<String, (IpAddr, String)> = objects
        .pods
        .keys()
        .enumerate()
        .map(|(i, k)| {
            (
                k.clone(),
                (
                    format!("10.16.0.{}", i + 2).parse().unwrap(),
                    "node1".to_owned(),
                ),
            )
        })
        .collect();
    let copy = working_copy(&objects, &d, &nodes, &running);
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(write_working_copy(dir.path(), &copy).unwrap().len(), 6);
    assert!(
        write_working_copy(dir.path(), &copy).unwrap().is_empty(),
        "nothing changed"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let back = rt.block_on(async {
        Follower::start(dir.path(), Duration::from_secs(20))
            .await
            .unwrap()
            .objects()
    });
    assert_eq!(back.pods.len(), objects.pods.len());
    assert!(back.pods.contains_key("scale/load-002"));
    for (k, p) in &back.pods {
        assert_eq!(
            p.spec.as_ref().unwrap().node_name.as_ref(),
            Some(&d.pod_nodes[k])
        );
    }
    for (k, s) in &back.services {
        assert_eq!(
            s.spec,
            d.allocated_service(k, &objects.services[k]).spec,
            "{k}"
        );
    }
    let web: Vec<&EndpointSlice> = back
        .slices
        .values()
        .filter(|s| s.metadata.labels.as_ref().unwrap()[SERVICE_NAME_LABEL] == "web")
        .collect();
    let addresses: usize = web
        .iter()
        .map(|s| s.endpoints.iter().flatten().count())
        .sum();
    assert_eq!(addresses, 3, "the three web pods");
    assert_eq!(back.policies, objects.policies);
}
