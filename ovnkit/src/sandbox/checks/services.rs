//! Services: ClusterIP answers from a pod, NodePort answers from the external host on every
//! node, and DNS answers.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;

use super::super::net::{in_netns, resolve, tcp_ask, udp_ask};
use super::super::policy::Traffic;
use super::super::report::{DnsCheck, Outcome, ServiceCheck};
use super::super::world::{cluster_ip, is_headless, resolve_port, selects, service_type};
use super::{CLUSTER_DOMAIN, Ctx, DNS_SERVER};

/// Connections (or datagrams) per Service port: enough that every one of a few backends
/// answers with near certainty when the load balancer spreads them.
const ASKS: u32 = 60;
/// Stop early once every backend answered and at least this many asked.
const ASKS_AT_LEAST: u32 = 12;

/// A ready backend of a Service port: pod key, address, target port, node index.
#[derive(Debug, Clone)]
struct Backend {
    key: String,
    ip: IpAddr,
    port: u16,
    node: usize,
}

/// The running pods that back `service`'s port `index`.
fn backends(ctx: &Ctx<'_>, key: &str, service: &Service, index: usize) -> Vec<Backend> {
    let ns = key.split_once('/').map_or("default", |(n, _)| n);
    let Some(spec) = service.spec.as_ref() else {
        return Vec::new();
    };
    let (Some(selector), Some(port)) = (
        spec.selector.as_ref(),
        spec.ports.as_ref().and_then(|p| p.get(index)),
    ) else {
        return Vec::new();
    };
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    ctx.cluster
        .pods
        .iter()
        .filter_map(|(k, running)| {
            let pod = ctx.objects.pods.get(k)?;
            if !k.starts_with(&format!("{ns}/")) || !selects(selector, pod.metadata.labels.as_ref())
            {
                return None;
            }
            let target = resolve_port(pod, port.target_port.as_ref(), port.port, protocol)?;
            Some(Backend {
                key: k.clone(),
                ip: running.ip,
                port: u16::try_from(target).ok()?,
                node: running.node,
            })
        })
        .collect()
}

fn traffic(protocol: &str, port: u16) -> Traffic {
    if protocol == "UDP" {
        Traffic::Udp(port)
    } else {
        Traffic::Tcp(port)
    }
}

/// A client pod every backend admits: `default/client` if it qualifies, else the first.
fn client_for(ctx: &Ctx<'_>, backends: &[Backend], protocol: &str) -> Option<String> {
    let rules = ctx.rules();
    let ok = |k: &String| {
        let Some(src) = ctx.end(k) else { return false };
        backends.iter().all(|b| {
            b.key != *k
                && ctx
                    .end(&b.key)
                    .is_some_and(|dst| rules.expect(src, dst, traffic(protocol, b.port)).allowed)
        })
    };
    let preferred = "default/client".to_owned();
    if ctx.cluster.pods.contains_key(&preferred) && ok(&preferred) {
        return Some(preferred);
    }
    ctx.cluster.pods.keys().find(|k| ok(k)).cloned()
}

/// Asks `addr` up to [`ASKS`] times (from inside a namespace) and counts who answered.
fn ask_many(addr: SocketAddr, protocol: &str, wanted: usize) -> BTreeMap<String, u32> {
    let mut answers: BTreeMap<String, u32> = BTreeMap::new();
    for i in 0..ASKS {
        let answer = if protocol == "UDP" {
            udp_ask(addr, Duration::from_millis(500))
        } else {
            tcp_ask(addr, Duration::from_secs(1))
        };
        if let Ok(a) = answer {
            *answers.entry(a).or_default() += 1;
        }
        if i + 1 >= ASKS_AT_LEAST && answers.len() >= wanted && wanted > 0 {
            break;
        }
        if i + 1 >= ASKS_AT_LEAST && answers.is_empty() && wanted == 0 {
            break;
        }
    }
    answers
}

fn judge(answers: &BTreeMap<String, u32>, expected: &BTreeSet<String>) -> Outcome {
    let strangers: Vec<&String> = answers.keys().filter(|a| !expected.contains(*a)).collect();
    let silent: Vec<&String> = expected
        .iter()
        .filter(|b| !answers.contains_key(*b))
        .collect();
    if !strangers.is_empty() {
        Outcome::Fail(format!("answers from non-backends: {strangers:?}"))
    } else if !silent.is_empty() {
        Outcome::Fail(format!("backends that never answered: {silent:?}"))
    } else {
        Outcome::Pass
    }
}

fn port_label(ip: IpAddr, port: i32, protocol: &str) -> String {
    format!("{}:{port}/{protocol}", SocketAddr::new(ip, 0).ip())
}

/// Every port of every Service with a cluster IP, asked from a pod all its backends admit.
pub fn services(ctx: &Ctx<'_>) -> Vec<ServiceCheck> {
    let mut out = Vec::new();
    for (key, service) in ctx.services() {
        let Some(ip) = cluster_ip(&service).filter(|_| !is_headless(&service)) else {
            continue;
        };
        let ports = service
            .spec
            .as_ref()
            .and_then(|s| s.ports.clone())
            .unwrap_or_default();
        for (i, port) in ports.iter().enumerate() {
            let protocol = port.protocol.clone().unwrap_or_else(|| "TCP".to_owned());
            let bs = backends(ctx, &key, &service, i);
            let names: BTreeSet<String> = bs.iter().map(|b| b.key.clone()).collect();
            let mut check = ServiceCheck {
                service: key.clone(),
                address: port_label(ip, port.port, &protocol),
                client: String::new(),
                backends: names.iter().cloned().collect(),
                answers: BTreeMap::new(),
                outcome: Outcome::Pass,
            };
            if !ctx.features.services {
                check.outcome = Outcome::Unavailable(
                    "the controller of this build makes no load balancers".into(),
                );
                out.push(check);
                continue;
            }
            let Some(client) = client_for(ctx, &bs, &protocol) else {
                check.outcome = Outcome::Fail("no pod may reach every backend".into());
                out.push(check);
                continue;
            };
            let addr = SocketAddr::new(ip, u16::try_from(port.port).unwrap_or(0));
            let wanted = names.len();
            let pod = &ctx.cluster.pods[&client].cri;
            let proto = protocol.clone();
            check.answers =
                in_netns(pod, move || ask_many(addr, &proto, wanted)).unwrap_or_default();
            check.client = client;
            check.outcome = judge(&check.answers, &names);
            out.push(check);
        }
    }
    out
}

/// Every node port of every Service, asked from the external host at every node's external
/// address. With `externalTrafficPolicy: Local` only the node's own backends answer (none:
/// nothing answers).
pub fn node_ports(ctx: &Ctx<'_>) -> Vec<ServiceCheck> {
    let mut out = Vec::new();
    for (key, service) in ctx.services() {
        if !matches!(service_type(&service), "NodePort" | "LoadBalancer") {
            continue;
        }
        let spec = service.spec.clone().unwrap_or_default();
        let local = spec.external_traffic_policy.as_deref() == Some("Local");
        for (i, port) in spec.ports.iter().flatten().enumerate() {
            let Some(node_port) = port.node_port.and_then(|p| u16::try_from(p).ok()) else {
                continue;
            };
            let protocol = port.protocol.clone().unwrap_or_else(|| "TCP".to_owned());
            let bs = backends(ctx, &key, &service, i);
            for (n, node) in ctx.cluster.nodes.iter().enumerate() {
                let names: BTreeSet<String> = bs
                    .iter()
                    .filter(|b| !local || b.node == n)
                    .map(|b| b.key.clone())
                    .collect();
                let ip = IpAddr::V4(ovn_testbed::ExternalNet::node_ip(node));
                let mut check = ServiceCheck {
                    service: key.clone(),
                    address: port_label(ip, i32::from(node_port), &protocol),
                    client: format!("external ({})", ctx.cluster.external.host_ip()),
                    backends: names.iter().cloned().collect(),
                    answers: BTreeMap::new(),
                    outcome: Outcome::Pass,
                };
                if !ctx.features.node_ports {
                    check.outcome = Outcome::Unavailable(
                        "the agents of this build forward no node ports".into(),
                    );
                    out.push(check);
                    continue;
                }
                let addr = SocketAddr::new(ip, node_port);
                let (proto, wanted) = (protocol.clone(), names.len());
                check.answers = in_netns(ctx.cluster.external.netns(), move || {
                    ask_many(addr, &proto, wanted)
                })
                .unwrap_or_default();
                check.outcome = judge(&check.answers, &names);
                out.push(check);
            }
        }
    }
    out
}

/// Whether `program` is on `PATH`.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// The A records of every Service (`<service>.<namespace>.svc.<domain>`: the cluster IP, or
/// a headless Service's ready endpoints), asked from a pod.
pub fn dns(ctx: &Ctx<'_>) -> Vec<DnsCheck> {
    let client = ["default/client".to_owned()]
        .into_iter()
        .chain(ctx.cluster.pods.keys().cloned())
        .find(|k| ctx.cluster.pods.contains_key(k));
    let dig = on_path("dig");
    let mut out = Vec::new();
    for (key, service) in ctx.services() {
        if service_type(&service) == "ExternalName" {
            continue;
        }
        let (ns, name) = key.split_once('/').unwrap_or(("default", &key));
        let fqdn = format!("{name}.{ns}.svc.{CLUSTER_DOMAIN}");
        let mut expected: Vec<String> = if is_headless(&service) {
            let ports = service
                .spec
                .as_ref()
                .and_then(|s| s.ports.as_ref())
                .map_or(0, Vec::len);
            let mut ips: BTreeSet<String> = BTreeSet::new();
            for i in 0..ports.max(1) {
                ips.extend(
                    backends(ctx, &key, &service, i)
                        .iter()
                        .map(|b| b.ip.to_string()),
                );
            }
            ips.into_iter().collect()
        } else {
            cluster_ip(&service)
                .map(|ip| vec![ip.to_string()])
                .unwrap_or_default()
        };
        expected.sort();
        let mut check = DnsCheck {
            name: fqdn.clone(),
            client: client.clone().unwrap_or_default(),
            via: String::new(),
            expected: expected.clone(),
            answer: Vec::new(),
            outcome: Outcome::Pass,
        };
        if !ctx.features.dns {
            check.outcome =
                Outcome::Unavailable("the controller of this build writes no DNS records".into());
            out.push(check);
            continue;
        }
        let Some(client) = &client else {
            check.outcome = Outcome::Fail("no pod to ask from".into());
            out.push(check);
            continue;
        };
        let pod = &ctx.cluster.pods[client].cri;
        let name = fqdn.clone();
        let answer = if dig {
            check.via = "dig".into();
            let server = format!("@{DNS_SERVER}");
            // Without EDNS: OVN 23.03 answers a query carrying an EDNS OPT record with nothing
            // dig can use (ovn-org/ovn#192); the C libraries' resolvers send none either.
            pod.exec_in_netns(
                "dig",
                &[
                    "+short", "+noedns", "+time=1", "+tries=3", &server, &fqdn, "A",
                ],
            )
            .map(|out| {
                let ips: Vec<IpAddr> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
                Ok::<_, std::io::Error>((0u8, ips))
            })
            .map_err(anyhow::Error::from)
        } else {
            check.via = "UDP query".into();
            in_netns(pod, move || {
                resolve(DNS_SERVER, &name, Duration::from_secs(1), 3)
            })
        };
        check.outcome = match answer {
            Ok(Ok((0, ips))) => {
                let mut got: Vec<String> = ips.iter().map(ToString::to_string).collect();
                got.sort();
                check.answer = got.clone();
                Outcome::check(got == expected, || format!("expected {expected:?}"))
            }
            Ok(Ok((rcode, _))) => Outcome::Fail(format!("response code {rcode}")),
            Ok(Err(e)) => Outcome::Fail(format!("no answer from {DNS_SERVER}: {e}")),
            Err(e) => Outcome::Fail(format!("{e:#}")),
        };
        out.push(check);
    }
    out
}
