//! Services as OVN load balancers: what one Service and its EndpointSlices ask for, as plain
//! values (`plan`), and the rows that carry it (`rows`). Pure: the controller's state
//! ([`super::state`]) gives the inputs, allocates health-check source addresses and diffs the
//! rows against OVN.
//!
//! - One `Load_Balancer` per Service and protocol (`svc-<ns>-<name>-<proto>`) with a VIP per
//!   ClusterIP and port, whose backends are the **ready** endpoints (`conditions.ready` not
//!   false) at the port of the EndpointSlice port named like the Service port (so a named
//!   `targetPort` is resolved per slice; a slice that lists no port at all, as one written by
//!   hand may, uses a numeric `targetPort`). Headless Services (`clusterIP: None`) get none. A VIP without backends
//!   stays, and OVN rejects its connections (`options:reject`), as kube-proxy does.
//! - `sessionAffinity: ClientIP`: `options:affinity_timeout` (the Service's timeout, 10800 s
//!   by default).
//! - NodePort with `externalTrafficPolicy: Cluster`: the load balancer also holds
//!   `<node-port VIP>:<nodePort>` with every ready endpoint. With `Local`: a template load
//!   balancer per protocol (`svc-<ns>-<name>-<proto>-local`, VIP
//!   `^OVNKIT_NODE_PORT_VIP:<nodePort>`, backends `^OVNKIT_NP_<PROTO>_<nodePort>`), whose
//!   variables each node's chassis gets from a `Chassis_Template_Var` row: the node's own
//!   ready endpoints, empty where it has none. Both carry the node agent's data keys
//!   ([`owner::LB_NODE_PORTS`], [`owner::LB_NODE_PORT_VIP`], [`owner::LB_TRAFFIC_POLICY`]).
//! - Health checks (opt-in: [`HEALTH_CHECK`] on the Service, or the controller's default):
//!   a `Load_Balancer_Health_Check` per IPv4 VIP of the TCP and UDP load balancers with
//!   Kube-OVN's settings (interval 5 s, timeout 20 s, 3 successes, 3 failures; each can be
//!   changed per Service with [`HEALTH_CHECK_SETTINGS`]), and
//!   `ip_port_mappings` from each ready backend that is a pod (`targetRef`) to its port
//!   `<ns>.<pod>` and a source address of its subnet. IPv4 only: OVN 23.03 probes IPv4
//!   backends only. Template (Local node-port) load balancers get no health checks.
//!
//! Kube-OVN has no per-Service switch for health checks (it checks only the VIPs of its
//! `SwitchLBRule`s), hence ovnkit's own annotation.

mod rows;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use ovn_model::nb::LoadBalancerProtocol;
use ovn_model::owner;

pub(crate) use rows::{
    GROUP, HealthSettings, NODE_PORT_VIP_VAR, health_wants, lb_key, lb_wants, service_object,
    template_vars,
};

/// Service annotation (ovnkit's): `true` or `false`, whether OVN health-checks the Service's
/// IPv4 backends (default: the controller's `--service-health-checks`).
pub const HEALTH_CHECK: &str = "ovnkit.io/health-check";

/// The default `sessionAffinityConfig.clientIP.timeoutSeconds` (3 hours).
pub(crate) const DEFAULT_AFFINITY_TIMEOUT: u32 = 10_800;

/// A load balancer protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    /// The protocol of a Kubernetes `protocol` field (`TCP` when absent).
    fn parse(value: Option<&str>) -> Option<Self> {
        match value.unwrap_or("TCP") {
            "TCP" => Some(Proto::Tcp),
            "UDP" => Some(Proto::Udp),
            "SCTP" => Some(Proto::Sctp),
            _ => None,
        }
    }

    /// `tcp`, `udp`, `sctp`.
    pub(crate) fn lower(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }

    /// `TCP`, `UDP`, `SCTP`.
    pub(crate) fn upper(self) -> &'static str {
        match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
            Proto::Sctp => "SCTP",
        }
    }

    pub(crate) fn ovn(self) -> LoadBalancerProtocol {
        match self {
            Proto::Tcp => LoadBalancerProtocol::Tcp,
            Proto::Udp => LoadBalancerProtocol::Udp,
            Proto::Sctp => LoadBalancerProtocol::Sctp,
        }
    }

    /// Whether OVN health-checks backends of this protocol (`Service_Monitor` knows TCP and
    /// UDP).
    fn checkable(self) -> bool {
        matches!(self, Proto::Tcp | Proto::Udp)
    }
}

/// The cluster-wide inputs of `plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settings {
    /// Where nodes forward node-port traffic.
    pub(crate) node_port_vip: IpAddr,
    /// Whether Services without [`HEALTH_CHECK`] get health checks.
    pub(crate) health_checks: bool,
}

/// Which load balancer of a Service: its ClusterIP (and `Cluster` node ports) one, or the
/// template one of its `Local` node ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum LbKind {
    Cluster,
    LocalNodePorts,
}

/// One load balancer a Service asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lb {
    pub(crate) proto: Proto,
    pub(crate) kind: LbKind,
    /// VIP (`ip:port`, or a template) -> backends (`ip:port,...`, or a template).
    pub(crate) vips: BTreeMap<String, String>,
    /// `affinity_timeout`, for `sessionAffinity: ClientIP`.
    pub(crate) affinity: Option<u32>,
    /// The node ports it serves.
    pub(crate) node_ports: BTreeSet<u16>,
    /// The VIPs with a health check (IPv4).
    pub(crate) health_vips: BTreeSet<SocketAddr>,
    /// Health-checked backends' addresses -> their pod's port (`<ns>.<pod>`).
    pub(crate) monitored: BTreeMap<IpAddr, String>,
}

/// A `Local` node port: which ready endpoints each node has for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalPort {
    pub(crate) proto: Proto,
    pub(crate) node_port: u16,
    pub(crate) by_node: BTreeMap<String, BTreeSet<SocketAddr>>,
}

impl LocalPort {
    /// The template variable holding the node's endpoints.
    pub(crate) fn variable(&self) -> String {
        format!("OVNKIT_NP_{}_{}", self.proto.upper(), self.node_port)
    }
}

/// What a Service asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Planned {
    pub(crate) lbs: Vec<Lb>,
    pub(crate) local_ports: Vec<LocalPort>,
    /// `field: reason` for each part of the Service that could not be used.
    pub(crate) problems: Vec<String>,
    /// The health checks' settings, when the Service has health checks.
    pub(crate) health: Option<HealthSettings>,
    /// Node ports it asks for that another Service holds.
    pub(crate) refused: Vec<(Proto, u16)>,
}

/// One ready endpoint of a slice.
struct Endpoint {
    addresses: Vec<IpAddr>,
    node: Option<String>,
    /// `<ns>.<pod>` for an endpoint that is a pod.
    pod_port: Option<String>,
}

/// The parts of an EndpointSlice a Service uses.
struct Slice {
    /// `(name, protocol, port)`.
    ports: Vec<(String, Option<Proto>, Option<i32>)>,
    ready: Vec<Endpoint>,
}

/// A Service port that could be used.
struct Port {
    index: usize,
    name: String,
    proto: Proto,
    port: u16,
    target: IntOrString,
    node_port: Option<u16>,
}

fn port_number(value: i32) -> Option<u16> {
    u16::try_from(value).ok().filter(|p| *p > 0)
}

fn slices_of(slices: &[&EndpointSlice], problems: &mut Vec<String>) -> Vec<Slice> {
    let mut out = Vec::new();
    for s in slices {
        if !matches!(s.address_type.as_str(), "IPv4" | "IPv6") {
            continue; // FQDN slices are for DNS-based proxies.
        }
        let name = s.metadata.name.clone().unwrap_or_default();
        let ns = s.metadata.namespace.clone().unwrap_or_default();
        let ports = s
            .ports
            .iter()
            .flatten()
            .map(|p| {
                (
                    p.name.clone().unwrap_or_default(),
                    Proto::parse(p.protocol.as_deref()),
                    p.port,
                )
            })
            .collect();
        let mut ready = Vec::new();
        for (i, e) in s.endpoints.iter().flatten().enumerate() {
            if e.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                continue;
            }
            let mut addresses = Vec::new();
            for (j, a) in e.addresses.iter().enumerate() {
                match a.parse::<IpAddr>() {
                    Ok(ip) => addresses.push(ip),
                    Err(_) => problems.push(format!(
                        "EndpointSlice {ns}/{name}: endpoints[{i}].addresses[{j}]: {a:?} is not an IP address"
                    )),
                }
            }
            let pod_port = e
                .target_ref
                .as_ref()
                .filter(|r| r.kind.as_deref().is_none_or(|k| k == "Pod"))
                .and_then(|r| {
                    let pod = r.name.as_deref()?;
                    let pod_ns = r.namespace.as_deref().unwrap_or(&ns);
                    Some(format!("{pod_ns}.{pod}"))
                });
            ready.push(Endpoint {
                addresses,
                node: e.node_name.clone(),
                pod_port,
            });
        }
        out.push(Slice { ports, ready });
    }
    out
}

/// The ClusterIPs (empty for a headless Service or one without any).
fn cluster_ips(service: &Service, problems: &mut Vec<String>) -> Vec<IpAddr> {
    let Some(spec) = &service.spec else {
        return Vec::new();
    };
    let (field, listed): (&str, Vec<&String>) = match &spec.cluster_ips {
        Some(ips) if !ips.is_empty() => ("spec.clusterIPs", ips.iter().collect()),
        _ => ("spec.clusterIP", spec.cluster_ip.iter().collect()),
    };
    let mut out = Vec::new();
    for (i, ip) in listed.into_iter().enumerate() {
        if ip.is_empty() || ip == "None" {
            continue;
        }
        match ip.parse::<IpAddr>() {
            Ok(a) => out.push(a),
            Err(_) => {
                let at = if field == "spec.clusterIPs" {
                    format!("{field}[{i}]")
                } else {
                    field.to_owned()
                };
                problems.push(format!("{at}: {ip:?} is not an IP address"));
            }
        }
    }
    out
}

/// The usable ports of a Service; a node port `taken` by another Service is refused.
fn ports_of(
    service: &Service,
    node_ports: bool,
    taken: &dyn Fn(Proto, u16) -> Option<String>,
    problems: &mut Vec<String>,
    refused: &mut Vec<(Proto, u16)>,
) -> Vec<Port> {
    let ports: &[ServicePort] = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for (index, p) in ports.iter().enumerate() {
        let at = format!("spec.ports[{index}]");
        let Some(proto) = Proto::parse(p.protocol.as_deref()) else {
            problems.push(format!(
                "{at}.protocol: {:?} is not supported (TCP, UDP or SCTP)",
                p.protocol.as_deref().unwrap_or_default()
            ));
            continue;
        };
        let Some(port) = port_number(p.port) else {
            problems.push(format!("{at}.port: {} is not a port number", p.port));
            continue;
        };
        if !seen.insert((proto, port)) {
            problems.push(format!(
                "{at}.port: {port}/{} is listed twice",
                proto.upper()
            ));
            continue;
        }
        let node_port = match (node_ports, p.node_port) {
            (false, _) | (true, None) => None,
            (true, Some(n)) => match port_number(n) {
                Some(n) => match taken(proto, n) {
                    None => Some(n),
                    Some(other) => {
                        problems.push(format!(
                            "{at}.nodePort: {n}/{} is taken by Service {other}",
                            proto.upper()
                        ));
                        refused.push((proto, n));
                        None
                    }
                },
                None => {
                    problems.push(format!("{at}.nodePort: {n} is not a port number"));
                    None
                }
            },
        };
        let target = p.target_port.clone().unwrap_or(IntOrString::Int(p.port));
        if let IntOrString::Int(t) = target
            && port_number(t).is_none()
        {
            problems.push(format!("{at}.targetPort: {t} is not a port number"));
            continue;
        }
        out.push(Port {
            index,
            name: p.name.clone().unwrap_or_default(),
            proto,
            port,
            target,
            node_port,
        });
    }
    out
}

/// Service annotations (ovnkit's) overriding one health-check setting each: seconds between
/// probes, seconds to answer, answers to come back, misses to go (positive integers).
pub const HEALTH_CHECK_SETTINGS: [&str; 4] = [
    "ovnkit.io/health-check-interval",
    "ovnkit.io/health-check-timeout",
    "ovnkit.io/health-check-success-count",
    "ovnkit.io/health-check-failure-count",
];

/// Whether the Service asks for health checks, and with which settings; a bad annotation is a
/// problem and leaves the default.
fn health_wanted(
    service: &Service,
    default: bool,
    problems: &mut Vec<String>,
) -> Option<HealthSettings> {
    let annotations = service.metadata.annotations.as_ref();
    let get = |key: &str| annotations.and_then(|a| a.get(key)).map(|v| v.trim());
    let on = match get(HEALTH_CHECK) {
        None => default,
        Some("true") => true,
        Some("false") => false,
        Some(other) => {
            problems.push(format!(
                "annotation {HEALTH_CHECK}={other:?}: write true or false"
            ));
            default
        }
    };
    let mut settings = HealthSettings::default();
    let fields = [
        &mut settings.interval,
        &mut settings.timeout,
        &mut settings.success,
        &mut settings.failure,
    ];
    for (key, field) in HEALTH_CHECK_SETTINGS.iter().zip(fields) {
        let Some(v) = get(key) else {
            continue;
        };
        match v.parse::<u32>() {
            Ok(n) if n > 0 => *field = n,
            _ => problems.push(format!(
                "annotation {key}={v:?}: write a positive whole number ({} used)",
                *field
            )),
        }
    }
    on.then_some(settings)
}

/// A ready backend of one Service port: where it is, which node, which pod port.
struct Backend<'a> {
    at: SocketAddr,
    node: Option<&'a str>,
    pod_port: Option<&'a str>,
}

/// The ready backends of `port`, from every slice: at the slice's port of the same name, or,
/// in a slice that lists no port at all (one written by hand), at a numeric `targetPort`. A
/// slice that lists other ports only has no endpoint for it (its pods lack the named port).
fn backends<'a>(port: &Port, slices: &'a [Slice], problems: &mut Vec<String>) -> Vec<Backend<'a>> {
    let mut out = Vec::new();
    let (mut resolved, mut waiting) = (false, false);
    for s in slices {
        let named = s
            .ports
            .iter()
            .find(|(n, p, _)| *n == port.name && p.unwrap_or(Proto::Tcp) == port.proto)
            .and_then(|(_, _, number)| number.and_then(port_number));
        let target = match (named, &port.target) {
            (Some(t), _) => t,
            (None, IntOrString::Int(t)) if s.ports.is_empty() => match port_number(*t) {
                Some(t) => t,
                None => continue,
            },
            _ => {
                waiting |= !s.ready.is_empty();
                continue;
            }
        };
        resolved = true;
        for e in &s.ready {
            for a in &e.addresses {
                out.push(Backend {
                    at: SocketAddr::new(*a, target),
                    node: e.node.as_deref(),
                    pod_port: e.pod_port.as_deref(),
                });
            }
        }
    }
    if let IntOrString::String(name) = &port.target
        && waiting
        && !resolved
    {
        problems.push(format!(
            "spec.ports[{}].targetPort: {name:?} is not a number and no EndpointSlice of the Service has a port named {:?} to resolve it",
            port.index, port.name
        ));
    }
    out
}

/// `ip:port,ip:port` of the backends of `family` (of `vip`), sorted, each once.
fn backend_list<'a>(vip: IpAddr, backends: impl Iterator<Item = &'a SocketAddr>) -> String {
    let set: BTreeSet<&SocketAddr> = backends.filter(|b| b.is_ipv4() == vip.is_ipv4()).collect();
    set.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// What `service` and its `slices` ask for (see the module docs).
///
/// `taken` names the Service (`namespace/name`) that holds a node port (protocol and number)
/// already, if another does.
pub(crate) fn plan(
    service: &Service,
    slices: &[&EndpointSlice],
    settings: &Settings,
    taken: &dyn Fn(Proto, u16) -> Option<String>,
) -> Planned {
    let mut out = Planned::default();
    let mut problems_list = Vec::new();
    let problems = &mut problems_list;
    let Some(spec) = &service.spec else {
        return out;
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        return out;
    }
    let ips = cluster_ips(service, problems);
    let node_ports = matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer"));
    let local = node_ports && spec.external_traffic_policy.as_deref() == Some("Local");
    if let Some(p) = spec.external_traffic_policy.as_deref()
        && !matches!(p, "Cluster" | "Local")
    {
        problems.push(format!(
            "spec.externalTrafficPolicy: {p:?} is not Cluster or Local (Cluster used)"
        ));
    }
    let affinity = match spec.session_affinity.as_deref() {
        Some("ClientIP") => {
            let t = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds);
            match t {
                None => Some(DEFAULT_AFFINITY_TIMEOUT),
                Some(t) => match u32::try_from(t).ok().filter(|t| *t > 0) {
                    Some(t) => Some(t),
                    None => {
                        problems.push(format!(
                            "spec.sessionAffinityConfig.clientIP.timeoutSeconds: {t} is not a positive number of seconds (10800 used)"
                        ));
                        Some(DEFAULT_AFFINITY_TIMEOUT)
                    }
                },
            }
        }
        None | Some("None") => None,
        Some(other) => {
            problems.push(format!(
                "spec.sessionAffinity: {other:?} is not None or ClientIP (None used)"
            ));
            None
        }
    };
    let health_settings = health_wanted(service, settings.health_checks, problems);
    let health = health_settings.is_some();
    let ports = ports_of(service, node_ports, taken, problems, &mut out.refused);
    let parsed = slices_of(slices, problems);
    let vip = settings.node_port_vip;
    let mut cluster: BTreeMap<Proto, Lb> = BTreeMap::new();
    let mut templates: BTreeMap<Proto, Lb> = BTreeMap::new();
    let new_lb = |proto, kind| Lb {
        proto,
        kind,
        vips: BTreeMap::new(),
        affinity: if kind == LbKind::Cluster {
            affinity
        } else {
            None
        },
        node_ports: BTreeSet::new(),
        health_vips: BTreeSet::new(),
        monitored: BTreeMap::new(),
    };
    for port in &ports {
        let found = backends(port, &parsed, problems);
        let at: Vec<SocketAddr> = found.iter().map(|b| b.at).collect();
        let checked = health && port.proto.checkable();
        if !ips.is_empty() || (port.node_port.is_some() && !local) {
            let lb = cluster
                .entry(port.proto)
                .or_insert_with(|| new_lb(port.proto, LbKind::Cluster));
            let mut frontends: Vec<SocketAddr> = ips
                .iter()
                .map(|ip| SocketAddr::new(*ip, port.port))
                .collect();
            if let (Some(np), false) = (port.node_port, local) {
                frontends.push(SocketAddr::new(vip, np));
                lb.node_ports.insert(np);
            }
            for f in frontends {
                lb.vips
                    .insert(f.to_string(), backend_list(f.ip(), at.iter()));
                if checked && f.is_ipv4() {
                    lb.health_vips.insert(f);
                }
            }
            if checked {
                for b in found.iter().filter(|b| b.at.is_ipv4()) {
                    if let Some(p) = b.pod_port {
                        lb.monitored.insert(b.at.ip(), p.to_owned());
                    }
                }
            }
        }
        if let (Some(np), true) = (port.node_port, local) {
            let lb = templates
                .entry(port.proto)
                .or_insert_with(|| new_lb(port.proto, LbKind::LocalNodePorts));
            let mut by_node: BTreeMap<String, BTreeSet<SocketAddr>> = BTreeMap::new();
            for b in found.iter().filter(|b| b.at.is_ipv4() == vip.is_ipv4()) {
                if let Some(n) = b.node {
                    by_node.entry(n.to_owned()).or_default().insert(b.at);
                }
            }
            let local_port = LocalPort {
                proto: port.proto,
                node_port: np,
                by_node,
            };
            lb.vips.insert(
                format!("^{NODE_PORT_VIP_VAR}:{np}"),
                format!("^{}", local_port.variable()),
            );
            lb.node_ports.insert(np);
            out.local_ports.push(local_port);
        }
    }
    out.lbs = cluster
        .into_values()
        .chain(templates.into_values())
        .collect();
    out.health = health_settings;
    out.problems = problems_list;
    out
}

/// The data keys the node agent reads on a load balancer with node ports.
pub(crate) fn node_port_data(lb: &Lb, vip: IpAddr) -> BTreeMap<String, String> {
    if lb.node_ports.is_empty() {
        return BTreeMap::new();
    }
    let ports: Vec<String> = lb.node_ports.iter().map(ToString::to_string).collect();
    let policy = match lb.kind {
        LbKind::Cluster => "Cluster",
        LbKind::LocalNodePorts => "Local",
    };
    BTreeMap::from([
        (owner::LB_NODE_PORTS.to_owned(), ports.join(",")),
        (owner::LB_NODE_PORT_VIP.to_owned(), vip.to_string()),
        (owner::LB_TRAFFIC_POLICY.to_owned(), policy.to_owned()),
    ])
}
