//! Traffic leaving pods: QoS rates against the annotations, and the gateway each subnet
//! leaves the cluster through.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ovn_testbed::{ExternalNet, source_seen_by, tcp_throughput};

use super::super::cluster::{ECHO_PORT, pod_results};
use super::super::policy::Traffic;
use super::super::report::{GatewayCheck, Outcome, QosCheck};
use super::{Ctx, retry};

/// How long a rate is measured.
const MEASURE: Duration = Duration::from_secs(5);
/// How far a measured rate may be from the annotation.
const TOLERANCE: f64 = 0.2;
/// Pods probed per subnet for its gateway.
const GATEWAY_PODS: usize = 6;

const EGRESS: &str = "ovn.kubernetes.io/egress_rate";
const INGRESS: &str = "ovn.kubernetes.io/ingress_rate";

/// A pod without rate annotations on another node than `key`'s, that `key` may send to and
/// receive from on any TCP port.
fn peer_for(ctx: &Ctx<'_>, key: &str) -> Option<String> {
    let (me, _) = ctx.pod(key)?;
    let rules = ctx.rules();
    let src = ctx.end(key)?;
    let candidates = ctx.cluster.pods.iter().filter(|(k, p)| {
        *k != key
            && ctx.objects.pods.get(*k).is_some_and(|o| {
                let a = o.metadata.annotations.as_ref();
                !a.is_some_and(|a| a.contains_key(EGRESS) || a.contains_key(INGRESS))
            })
            && ctx.end(k).is_some_and(|dst| {
                rules.expect(src, dst, Traffic::Tcp(20000)).allowed
                    && rules.expect(dst, src, Traffic::Tcp(20000)).allowed
            })
            && p.node != me.node
    });
    candidates.map(|(k, _)| k.clone()).next()
}

/// The rate annotations of the running pods, measured with TCP for 5 s each, one at a time.
/// `only`: just these pods.
pub fn qos(ctx: &Ctx<'_>, only: Option<&[String]>) -> Vec<QosCheck> {
    let mut out = Vec::new();
    for key in ctx.cluster.pods.keys() {
        if only.is_some_and(|o| !o.contains(key)) {
            continue;
        }
        let Some(annotations) = ctx
            .objects
            .pods
            .get(key)
            .and_then(|p| p.metadata.annotations.as_ref())
        else {
            continue;
        };
        for (annotation, direction) in [(EGRESS, "egress"), (INGRESS, "ingress")] {
            let Some(rate) = annotations.get(annotation) else {
                continue;
            };
            let mut check = QosCheck {
                pod: key.clone(),
                direction: direction.to_owned(),
                peer: String::new(),
                annotated_mbit: rate.trim().parse().unwrap_or(f64::NAN),
                measured_mbit: 0.0,
                outcome: Outcome::Pass,
            };
            let Some(peer) = peer_for(ctx, key) else {
                check.outcome = Outcome::Fail("no pod on another node to measure against".into());
                out.push(check);
                continue;
            };
            let me = &ctx.cluster.pods[key];
            let other = &ctx.cluster.pods[&peer];
            let measured = if direction == "egress" {
                tcp_throughput(&me.cri, &other.cri, other.ip, MEASURE)
            } else {
                tcp_throughput(&other.cri, &me.cri, me.ip, MEASURE)
            };
            check.peer = peer;
            match measured {
                Ok(t) => {
                    check.measured_mbit = t.mbit_per_s();
                    let want = check.annotated_mbit;
                    check.outcome = Outcome::check(
                        (check.measured_mbit - want).abs() <= want * TOLERANCE,
                        || format!("more than {:.0}% from {want} Mbit/s", TOLERANCE * 100.0),
                    );
                }
                Err(e) => check.outcome = Outcome::Fail(format!("the transfer failed: {e}")),
            }
            out.push(check);
        }
    }
    out
}

/// A subnet's egress, from the namespaces' annotations: (type, gateway nodes).
fn egress_of(ctx: &Ctx<'_>, subnet: &str) -> (String, Vec<String>) {
    for (name, ns) in &ctx.objects.namespaces {
        let Some(a) = ns.metadata.annotations.as_ref() else {
            continue;
        };
        let own = a
            .get("ovn.kubernetes.io/logical_switch")
            .cloned()
            .unwrap_or_else(|| name.clone());
        if a.contains_key("ovn.kubernetes.io/cidr") && own == subnet {
            let kind = a
                .get("ovn.kubernetes.io/gateway_type")
                .cloned()
                .unwrap_or_else(|| "distributed".to_owned());
            let nodes = a
                .get("ovn.kubernetes.io/gateway_node")
                .map(|v| {
                    v.split(',')
                        .map(|n| n.trim().to_owned())
                        .filter(|n| !n.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            return (kind, nodes);
        }
    }
    ("distributed".to_owned(), Vec::new())
}

/// For each subnet with running pods (up to 6 of them), the source address the
/// external host sees: a distributed subnet's pods leave through their own node, a
/// centralized subnet's all through the same one of its gateway nodes.
pub fn gateways(ctx: &Ctx<'_>) -> Vec<GatewayCheck> {
    let results = pod_results(&ctx.cluster.state);
    let mut subnets: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for key in ctx.cluster.pods.keys() {
        if let Some(s) = results
            .get(key)
            .and_then(|a| a.get("ovn.kubernetes.io/logical_switch"))
        {
            subnets.entry(s.clone()).or_default().push(key.clone());
        }
    }
    let node_of_ip: BTreeMap<IpAddr, String> = ctx
        .cluster
        .nodes
        .iter()
        .map(|n| (IpAddr::V4(ExternalNet::node_ip(n)), n.name()))
        .collect();
    let server = SocketAddr::new(ctx.cluster.external.host_ip(), ECHO_PORT);
    let mut out = Vec::new();
    for (subnet, pods) in subnets {
        let (kind, gateway_nodes) = egress_of(ctx, &subnet);
        let probed: Vec<&String> = pods.iter().take(GATEWAY_PODS).collect();
        let mut seen = Vec::new();
        let mut wrong = Vec::new();
        let mut used = std::collections::BTreeSet::new();
        for key in &probed {
            let pod = &ctx.cluster.pods[*key];
            let ip = retry(20, Duration::from_millis(500), || {
                source_seen_by(&pod.cri, server, Duration::from_secs(1)).ok()
            });
            let node = ip.and_then(|ip| node_of_ip.get(&ip).cloned());
            let shown = match (ip, &node) {
                (Some(ip), Some(n)) => format!("{ip} ({n})"),
                (Some(ip), None) => format!("{ip} (no node)"),
                (None, _) => "nothing arrived".to_owned(),
            };
            let own = ctx.node_name(pod.node);
            let ok = match (kind.as_str(), &node) {
                ("centralized", Some(n)) => gateway_nodes.contains(n),
                (_, Some(n)) => *n == own,
                (_, None) => false,
            };
            if let Some(n) = node {
                used.insert(n);
            }
            if !ok {
                wrong.push(format!("{key} left as {shown}"));
            }
            seen.push(((*key).clone(), shown));
        }
        if kind == "centralized" && used.len() > 1 {
            wrong.push(format!("more than one gateway in use: {used:?}"));
        }
        let expected = if kind == "centralized" {
            format!("one of {}", gateway_nodes.join(", "))
        } else {
            "each pod's own node".to_owned()
        };
        out.push(GatewayCheck {
            subnet,
            gateway_type: kind,
            seen,
            expected,
            outcome: Outcome::check(wrong.is_empty(), || wrong.join("; ")),
        });
    }
    out
}
