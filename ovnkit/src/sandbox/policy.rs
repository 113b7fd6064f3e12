//! What the manifests say about traffic between two pods, independently of how the
//! controller renders it into OVN: Kube-OVN's private subnets and Kubernetes NetworkPolicy
//! semantics (pod and namespace selectors, IP blocks, ports and named ports, policy types).
//! It is the expectation each cell of the reachability matrix is checked against.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// A probe's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    /// ICMP echo.
    Icmp,
    /// A TCP connection to a port.
    Tcp(u16),
    /// A UDP datagram to a port.
    Udp(u16),
}

impl Traffic {
    fn protocol(self) -> Option<(&'static str, u16)> {
        match self {
            Traffic::Icmp => None,
            Traffic::Tcp(p) => Some(("TCP", p)),
            Traffic::Udp(p) => Some(("UDP", p)),
        }
    }
}

/// One end of the traffic: a pod and its address.
#[derive(Debug, Clone, Copy)]
pub struct End<'a> {
    /// The pod.
    pub pod: &'a Pod,
    /// Its address.
    pub ip: IpAddr,
}

impl End<'_> {
    fn namespace(&self) -> &str {
        self.pod.metadata.namespace.as_deref().unwrap_or("default")
    }

    fn key(&self) -> String {
        format!(
            "{}/{}",
            self.namespace(),
            self.pod.metadata.name.as_deref().unwrap_or_default()
        )
    }
}

/// The verdict the manifests give, and what gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Whether the traffic should pass.
    pub allowed: bool,
    /// `private subnet secure`, `policy apps/db-from-web`, or empty when nothing restricts it.
    pub by: String,
}

/// A rule of a policy: its peers and its ports.
type Rule<'a> = (
    Option<&'a Vec<NetworkPolicyPeer>>,
    Option<&'a Vec<NetworkPolicyPort>>,
);

/// A private subnet: its CIDRs and the CIDRs it lets in.
#[derive(Debug, Clone)]
struct Private {
    name: String,
    cidrs: Vec<IpNet>,
    allow: Vec<IpNet>,
}

/// The rules of a set of manifests.
#[derive(Debug)]
pub struct Rules<'a> {
    namespaces: &'a BTreeMap<String, Namespace>,
    policies: Vec<(String, &'a NetworkPolicy)>,
    private: Vec<Private>,
}

fn cidrs(value: Option<&String>) -> Vec<IpNet> {
    value
        .map(|v| v.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_default()
}

impl<'a> Rules<'a> {
    /// The rules of these namespaces and policies (`namespace/name` -> policy); with
    /// `enforce_policies` false, NetworkPolicies are left out (a build that does not
    /// implement them).
    pub fn new(
        namespaces: &'a BTreeMap<String, Namespace>,
        policies: &'a BTreeMap<String, NetworkPolicy>,
        enforce_policies: bool,
    ) -> Self {
        let private = namespaces
            .iter()
            .filter_map(|(name, ns)| {
                let a = ns.metadata.annotations.as_ref()?;
                (a.get("ovn.kubernetes.io/private").map(String::as_str) == Some("true")).then(
                    || Private {
                        name: a
                            .get("ovn.kubernetes.io/logical_switch")
                            .cloned()
                            .unwrap_or_else(|| name.clone()),
                        cidrs: cidrs(a.get("ovn.kubernetes.io/cidr")),
                        allow: cidrs(a.get("ovn.kubernetes.io/allow")),
                    },
                )
            })
            .collect();
        Rules {
            namespaces,
            policies: if enforce_policies {
                policies.iter().map(|(k, p)| (k.clone(), p)).collect()
            } else {
                Vec::new()
            },
            private,
        }
    }

    /// Whether traffic from `src` to `dst` should pass.
    pub fn expect(&self, src: End<'_>, dst: End<'_>, traffic: Traffic) -> Expected {
        for p in &self.private {
            let inside = |ip: &IpAddr| p.cidrs.iter().any(|c| c.contains(ip));
            if inside(&dst.ip) && !inside(&src.ip) && !p.allow.iter().any(|c| c.contains(&src.ip)) {
                return Expected {
                    allowed: false,
                    by: format!("private subnet {}", p.name),
                };
            }
        }
        // Egress of the source, then ingress of the destination.
        for (direction, me, other) in [("Egress", src, dst), ("Ingress", dst, src)] {
            let selecting: Vec<&(String, &NetworkPolicy)> = self
                .policies
                .iter()
                .filter(|(_, p)| {
                    p.metadata.namespace.as_deref().unwrap_or("default") == me.namespace()
                        && policy_types(p).contains(&direction)
                        && p.spec.as_ref().is_some_and(|s| {
                            matches(s.pod_selector.as_ref(), me.pod.metadata.labels.as_ref())
                        })
                })
                .collect();
            if selecting.is_empty() {
                continue;
            }
            let target = if direction == "Ingress" { me } else { other };
            if !selecting
                .iter()
                .any(|(_, p)| self.rule_allows(p, direction, other, traffic, target))
            {
                let names: Vec<&str> = selecting.iter().map(|(k, _)| k.as_str()).collect();
                return Expected {
                    allowed: false,
                    by: format!(
                        "{} of {} (policy {})",
                        direction.to_lowercase(),
                        me.key(),
                        names.join(", ")
                    ),
                };
            }
        }
        let by: Vec<String> = self
            .policies
            .iter()
            .filter(|(_, p)| {
                let ns = p.metadata.namespace.as_deref().unwrap_or("default");
                let sel = p.spec.as_ref().and_then(|s| s.pod_selector.as_ref());
                (ns == dst.namespace() && matches(sel, dst.pod.metadata.labels.as_ref()))
                    || (ns == src.namespace() && matches(sel, src.pod.metadata.labels.as_ref()))
            })
            .map(|(k, _)| format!("policy {k}"))
            .collect();
        Expected {
            allowed: true,
            by: by.join(", "),
        }
    }

    /// Whether one of `policy`'s rules of `direction` admits `other` (the source of ingress,
    /// the destination of egress) with `traffic`; named ports resolve on `target`.
    fn rule_allows(
        &self,
        policy: &NetworkPolicy,
        direction: &str,
        other: End<'_>,
        traffic: Traffic,
        target: End<'_>,
    ) -> bool {
        let Some(spec) = policy.spec.as_ref() else {
            return false;
        };
        let ns = policy.metadata.namespace.as_deref().unwrap_or("default");
        let rules: Vec<Rule<'_>> = if direction == "Ingress" {
            spec.ingress
                .iter()
                .flatten()
                .map(|r| (r.from.as_ref(), r.ports.as_ref()))
                .collect()
        } else {
            spec.egress
                .iter()
                .flatten()
                .map(|r| (r.to.as_ref(), r.ports.as_ref()))
                .collect()
        };
        rules.into_iter().any(|(peers, ports)| {
            let peer_ok = match peers {
                None => true,
                Some(list) if list.is_empty() => true,
                Some(list) => list.iter().any(|peer| self.peer_matches(peer, ns, other)),
            };
            peer_ok && ports_match(ports, traffic, target.pod)
        })
    }

    fn peer_matches(&self, peer: &NetworkPolicyPeer, policy_ns: &str, other: End<'_>) -> bool {
        if let Some(block) = &peer.ip_block {
            let Ok(cidr) = block.cidr.parse::<IpNet>() else {
                return false;
            };
            let excepted = block
                .except
                .iter()
                .flatten()
                .filter_map(|e| e.parse::<IpNet>().ok())
                .any(|e| e.contains(&other.ip));
            return cidr.contains(&other.ip) && !excepted;
        }
        let ns_ok = match &peer.namespace_selector {
            None => other.namespace() == policy_ns,
            Some(sel) => {
                let labels = self.namespace_labels(other.namespace());
                matches(Some(sel), Some(&labels))
            }
        };
        let pod_ok = match &peer.pod_selector {
            None => true,
            Some(sel) => matches(Some(sel), other.pod.metadata.labels.as_ref()),
        };
        (peer.namespace_selector.is_some() || peer.pod_selector.is_some()) && ns_ok && pod_ok
    }

    /// A namespace's labels, with `kubernetes.io/metadata.name` as the API server sets it.
    fn namespace_labels(&self, name: &str) -> BTreeMap<String, String> {
        let mut labels = self
            .namespaces
            .get(name)
            .and_then(|n| n.metadata.labels.clone())
            .unwrap_or_default();
        labels.insert("kubernetes.io/metadata.name".to_owned(), name.to_owned());
        labels
    }
}

/// A policy's types: as given, else Ingress, plus Egress when it has egress rules.
fn policy_types(policy: &NetworkPolicy) -> Vec<&str> {
    let Some(spec) = policy.spec.as_ref() else {
        return Vec::new();
    };
    match &spec.policy_types {
        Some(types) => types.iter().map(String::as_str).collect(),
        None if spec.egress.is_some() => vec!["Ingress", "Egress"],
        None => vec!["Ingress"],
    }
}

/// Whether a label selector matches `labels` (an absent or empty selector matches all).
pub fn matches(
    selector: Option<&LabelSelector>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    let get = |k: &str| labels.and_then(|l| l.get(k));
    let by_label = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| get(k) == Some(v));
    let by_expression = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.clone().unwrap_or_default();
        match e.operator.as_str() {
            "In" => get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => get(&e.key).is_some(),
            "DoesNotExist" => get(&e.key).is_none(),
            _ => false,
        }
    });
    by_label && by_expression
}

/// Whether a rule's ports admit `traffic` (named ports resolved on `target`'s containers).
fn ports_match(ports: Option<&Vec<NetworkPolicyPort>>, traffic: Traffic, target: &Pod) -> bool {
    let Some(ports) = ports.filter(|p| !p.is_empty()) else {
        return true;
    };
    let Some((protocol, port)) = traffic.protocol() else {
        // A rule that lists ports admits only those protocols: never ICMP.
        return false;
    };
    let port = i32::from(port);
    ports.iter().any(|p| {
        if p.protocol.as_deref().unwrap_or("TCP") != protocol {
            return false;
        }
        match &p.port {
            None => true,
            Some(IntOrString::Int(n)) => match p.end_port {
                Some(end) => (*n..=end).contains(&port),
                None => *n == port,
            },
            Some(IntOrString::String(name)) => {
                super::world::resolve_port(
                    target,
                    Some(&IntOrString::String(name.clone())),
                    0,
                    protocol,
                ) == Some(port)
            }
        }
    })
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
