//! What the sandbox does in place of a cluster's other components, as pure functions: it
//! schedules pods (`spec.nodeName`, or round-robin), allocates Services' cluster IPs and node
//! ports, makes the Nodes, acts as the EndpointSlice controller, and writes all of it as the
//! working copy of manifests the controller reads.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::api::core::v1::{Namespace, Node, ObjectReference, Pod, PodSpec, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

/// The label an EndpointSlice names its Service with.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label that says who manages an EndpointSlice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// The sandbox's value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "ovnkit-sandbox";
/// The namespace of the pods `--pods N` adds.
pub const SCALE_NAMESPACE: &str = "scale";
/// Where the sandbox allocates cluster IPs: `10.96.0.0/16`, from `.0.100` on.
const CLUSTER_IP_BASE: u32 = u32::from_be_bytes([10, 96, 0, 100]);
const CLUSTER_IP_LAST: u32 = u32::from_be_bytes([10, 96, 255, 254]);
/// The node port range.
const NODE_PORTS: std::ops::RangeInclusive<i32> = 30000..=32767;

/// `namespace/name` of a namespaced object (namespace `default` when it has none).
pub fn key(meta: &ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or("default"),
        meta.name.as_deref().unwrap_or_default()
    )
}

/// The objects of the manifests, by `namespace/name` (Namespaces by name).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Objects {
    /// Namespaces.
    pub namespaces: BTreeMap<String, Namespace>,
    /// Pods.
    pub pods: BTreeMap<String, Pod>,
    /// Services.
    pub services: BTreeMap<String, Service>,
    /// EndpointSlices written by the user (for Services without a selector).
    pub slices: BTreeMap<String, EndpointSlice>,
    /// NetworkPolicies.
    pub policies: BTreeMap<String, NetworkPolicy>,
}

impl Objects {
    /// Adds `count` pods `scale/load-NNN` (label `app=load`) and their namespace.
    pub fn with_scale_pods(mut self, count: usize) -> Self {
        if count == 0 {
            return self;
        }
        self.namespaces
            .entry(SCALE_NAMESPACE.to_owned())
            .or_insert_with(|| Namespace {
                metadata: ObjectMeta {
                    name: Some(SCALE_NAMESPACE.to_owned()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            });
        let width = count.to_string().len().max(3);
        for i in 0..count {
            let name = format!("load-{i:0width$}");
            let pod = Pod {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(SCALE_NAMESPACE.to_owned()),
                    labels: Some([("app".to_owned(), "load".to_owned())].into()),
                    ..ObjectMeta::default()
                },
                spec: Some(PodSpec {
                    containers: vec![k8s_openapi::api::core::v1::Container {
                        name: "app".to_owned(),
                        image: Some("busybox".to_owned()),
                        ..Default::default()
                    }],
                    ..PodSpec::default()
                }),
                ..Pod::default()
            };
            self.pods.insert(format!("{SCALE_NAMESPACE}/{name}"), pod);
        }
        self
    }
}

/// A node of the sandbox: its name and OVN chassis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeName {
    /// `node<N>`.
    pub name: String,
    /// `chassis-<N>`.
    pub chassis: String,
}

/// What the sandbox decided for the objects; decisions stick (a pod keeps its node, a Service
/// its addresses) while the manifests change.
#[derive(Debug, Clone, Default)]
pub struct Decisions {
    /// The node of every pod, by `namespace/name`.
    pub pod_nodes: BTreeMap<String, String>,
    next_node: usize,
    /// Cluster IPs the sandbox allocated, by Service.
    pub cluster_ips: BTreeMap<String, IpAddr>,
    /// Node ports the sandbox allocated, by Service and port index.
    pub node_ports: BTreeMap<(String, usize), i32>,
}

/// Whether a Service is headless (`clusterIP: None`).
pub fn is_headless(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .is_some_and(|ip| ip.eq_ignore_ascii_case("none"))
}

/// A Service's type (`ClusterIP` when not given).
pub fn service_type(service: &Service) -> &str {
    service
        .spec
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("ClusterIP")
}

fn has_node_ports(service: &Service) -> bool {
    matches!(service_type(service), "NodePort" | "LoadBalancer")
}

impl Decisions {
    /// Places new pods (their `spec.nodeName`, else the next node round-robin), allocates
    /// what new Services lack, and forgets what is gone. Returns a warning per pod whose
    /// `spec.nodeName` names no node of the sandbox (placed round-robin instead).
    pub fn update(&mut self, objects: &Objects, nodes: &[NodeName]) -> Vec<String> {
        let mut warnings = Vec::new();
        self.pod_nodes.retain(|k, _| objects.pods.contains_key(k));
        for (k, pod) in &objects.pods {
            if self.pod_nodes.contains_key(k) || nodes.is_empty() {
                continue;
            }
            let wanted = pod.spec.as_ref().and_then(|s| s.node_name.clone());
            let node = match wanted {
                Some(n) if nodes.iter().any(|x| x.name == n) => n,
                other => {
                    if let Some(n) = other {
                        warnings.push(format!(
                            "pod {k}: spec.nodeName {n:?} is not a node of the sandbox; placed round-robin"
                        ));
                    }
                    let n = nodes[self.next_node % nodes.len()].name.clone();
                    self.next_node += 1;
                    n
                }
            };
            self.pod_nodes.insert(k.clone(), node);
        }

        self.cluster_ips
            .retain(|k, _| objects.services.contains_key(k));
        self.node_ports
            .retain(|(k, _), _| objects.services.contains_key(k));
        let mut used_ips: BTreeSet<IpAddr> = self.cluster_ips.values().copied().collect();
        let mut used_ports: BTreeSet<i32> = self.node_ports.values().copied().collect();
        for service in objects.services.values() {
            let spec = service.spec.as_ref();
            if let Some(ip) = spec
                .and_then(|s| s.cluster_ip.as_deref())
                .and_then(|ip| ip.parse().ok())
            {
                used_ips.insert(ip);
            }
            for port in spec.and_then(|s| s.ports.as_ref()).into_iter().flatten() {
                if let Some(p) = port.node_port {
                    used_ports.insert(p);
                }
            }
        }
        for (k, service) in &objects.services {
            let spec = service.spec.as_ref();
            let given = spec
                .and_then(|s| s.cluster_ip.as_deref())
                .is_some_and(|ip| !ip.is_empty());
            if !given
                && service_type(service) != "ExternalName"
                && !self.cluster_ips.contains_key(k)
            {
                let ip = (CLUSTER_IP_BASE..=CLUSTER_IP_LAST)
                    .map(|n| IpAddr::V4(Ipv4Addr::from(n)))
                    .find(|ip| !used_ips.contains(ip));
                if let Some(ip) = ip {
                    used_ips.insert(ip);
                    self.cluster_ips.insert(k.clone(), ip);
                }
            }
            if has_node_ports(service) {
                for (i, port) in spec
                    .and_then(|s| s.ports.as_ref())
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    if port.node_port.is_some() || self.node_ports.contains_key(&(k.clone(), i)) {
                        continue;
                    }
                    if let Some(p) = NODE_PORTS.clone().find(|p| !used_ports.contains(p)) {
                        used_ports.insert(p);
                        self.node_ports.insert((k.clone(), i), p);
                    }
                }
            }
        }
        warnings
    }

    /// The pod as scheduled: `spec.nodeName` set.
    pub fn placed_pod(&self, k: &str, pod: &Pod) -> Pod {
        let mut pod = pod.clone();
        let spec = pod.spec.get_or_insert_with(PodSpec::default);
        spec.node_name = self.pod_nodes.get(k).cloned();
        pod
    }

    /// The Service with its allocated cluster IP and node ports.
    pub fn allocated_service(&self, k: &str, service: &Service) -> Service {
        let mut service = service.clone();
        let spec = service.spec.get_or_insert_with(Default::default);
        if let Some(ip) = self.cluster_ips.get(k) {
            spec.cluster_ip = Some(ip.to_string());
            spec.cluster_ips = Some(vec![ip.to_string()]);
        }
        for (i, port) in spec.ports.iter_mut().flatten().enumerate() {
            if let Some(p) = self.node_ports.get(&(k.to_owned(), i)) {
                port.node_port = Some(*p);
            }
        }
        service
    }
}

/// A Service's cluster IP as the working copy has it (none for a headless Service).
pub fn cluster_ip(service: &Service) -> Option<IpAddr> {
    service.spec.as_ref()?.cluster_ip.as_deref()?.parse().ok()
}

/// Whether `labels` match a Service's `selector` (every key equal).
pub fn selects(
    selector: &BTreeMap<String, String>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// The container port a Service's `targetPort` names on `pod` (a number is itself; a name is
/// looked up among the containers' ports of that protocol).
pub fn resolve_port(
    pod: &Pod,
    target: Option<&IntOrString>,
    port: i32,
    protocol: &str,
) -> Option<i32> {
    match target {
        None => Some(port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            pod.spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// A Service port resolved on a pod: name, container port, protocol.
type ResolvedPort = (Option<String>, i32, String);

/// The EndpointSlices of a Service with a selector, from the running pods (`namespace/name`
/// -> address) that match it: one slice per address family and set of resolved ports (pods
/// that name a port differently go into different slices, as in Kubernetes). A Service
/// without a selector gets none (its slices are the user's).
pub fn endpoint_slices(
    service_key: &str,
    service: &Service,
    pods: &BTreeMap<String, Pod>,
    running: &BTreeMap<String, (IpAddr, String)>,
) -> Vec<EndpointSlice> {
    let Some(spec) = service.spec.as_ref() else {
        return Vec::new();
    };
    let Some(selector) = spec.selector.as_ref() else {
        return Vec::new();
    };
    let (ns, name) = service_key
        .split_once('/')
        .unwrap_or(("default", service_key));
    let ports = spec.ports.clone().unwrap_or_default();
    // (family, resolved ports) -> endpoints
    let mut groups: BTreeMap<(&str, Vec<ResolvedPort>), Vec<Endpoint>> = BTreeMap::new();
    for (k, (ip, node)) in running {
        let Some(pod) = pods.get(k) else { continue };
        if pod.metadata.namespace.as_deref().unwrap_or("default") != ns
            || !selects(selector, pod.metadata.labels.as_ref())
        {
            continue;
        }
        let resolved: Vec<ResolvedPort> = ports
            .iter()
            .filter_map(|p| {
                let protocol = p.protocol.clone().unwrap_or_else(|| "TCP".to_owned());
                let n = resolve_port(pod, p.target_port.as_ref(), p.port, &protocol)?;
                Some((p.name.clone(), n, protocol))
            })
            .collect();
        let family = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
        groups
            .entry((family, resolved))
            .or_default()
            .push(Endpoint {
                addresses: vec![ip.to_string()],
                conditions: Some(EndpointConditions {
                    ready: Some(true),
                    serving: Some(true),
                    terminating: Some(false),
                }),
                node_name: Some(node.clone()),
                target_ref: Some(ObjectReference {
                    kind: Some("Pod".to_owned()),
                    namespace: Some(ns.to_owned()),
                    name: pod.metadata.name.clone(),
                    ..ObjectReference::default()
                }),
                ..Endpoint::default()
            });
    }
    groups
        .into_iter()
        .enumerate()
        .map(|(i, ((family, resolved), endpoints))| EndpointSlice {
            metadata: ObjectMeta {
                name: Some(format!("{name}-sandbox-{i}")),
                namespace: Some(ns.to_owned()),
                labels: Some(
                    [
                        (SERVICE_NAME_LABEL.to_owned(), name.to_owned()),
                        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
                    ]
                    .into(),
                ),
                ..ObjectMeta::default()
            },
            address_type: family.to_owned(),
            endpoints: Some(endpoints),
            ports: Some(
                resolved
                    .into_iter()
                    .map(|(name, port, protocol)| EndpointPort {
                        name,
                        port: Some(port),
                        protocol: Some(protocol),
                        ..EndpointPort::default()
                    })
                    .collect(),
            ),
        })
        .collect()
}

/// The working copy: file name -> YAML text.
pub type WorkingCopy = BTreeMap<&'static str, String>;

fn documents<T: Serialize>(objects: impl IntoIterator<Item = T>) -> String {
    objects
        .into_iter()
        .filter_map(|o| serde_yaml::to_string(&o).ok())
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The manifests the controller reads: the objects as the sandbox completed them, the Nodes,
/// and the EndpointSlices of the running pods (`namespace/name` -> address and node).
pub fn working_copy(
    objects: &Objects,
    decisions: &Decisions,
    nodes: &[NodeName],
    running: &BTreeMap<String, (IpAddr, String)>,
) -> WorkingCopy {
    let node_objects = nodes.iter().map(|n| Node {
        metadata: ObjectMeta {
            name: Some(n.name.clone()),
            annotations: Some([("ovnkit.io/chassis".to_owned(), n.chassis.clone())].into()),
            ..ObjectMeta::default()
        },
        ..Node::default()
    });
    let pods = objects.pods.iter().map(|(k, p)| decisions.placed_pod(k, p));
    let services: BTreeMap<&String, Service> = objects
        .services
        .iter()
        .map(|(k, s)| (k, decisions.allocated_service(k, s)))
        .collect();
    let mut slices: Vec<EndpointSlice> = objects.slices.values().cloned().collect();
    for (k, s) in &services {
        slices.extend(endpoint_slices(k, s, &objects.pods, running));
    }
    WorkingCopy::from([
        ("namespaces.yaml", documents(objects.namespaces.values())),
        ("nodes.yaml", documents(node_objects)),
        ("pods.yaml", documents(pods)),
        ("services.yaml", documents(services.values())),
        ("endpointslices.yaml", documents(slices)),
        ("networkpolicies.yaml", documents(objects.policies.values())),
    ])
}

/// Writes the files of `copy` that changed into `dir`, each atomically (a hidden temporary
/// file, then a rename). Returns the names written.
pub fn write_working_copy(
    dir: &std::path::Path,
    copy: &WorkingCopy,
) -> std::io::Result<Vec<&'static str>> {
    let mut written = Vec::new();
    for (name, text) in copy {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).is_ok_and(|old| &old == text) {
            continue;
        }
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)?;
        written.push(*name);
    }
    Ok(written)
}

#[cfg(test)]
mod tests;
