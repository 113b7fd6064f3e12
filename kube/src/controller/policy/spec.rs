//! A NetworkPolicy checked and normalised: what the API server's validation and defaulting do
//! (the manifest source has no API server in front of it), so that building rows cannot fail.

use ipnet::IpNet;
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::selector::Selector;

/// What is wrong with a policy: the field (`spec.ingress[0].from[1].ipBlock.cidr`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpecError {
    /// The field, as `kubectl explain` spells it.
    pub(crate) field: String,
    /// Why it is refused.
    pub(crate) reason: String,
}

/// A transport protocol a policy port names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Protocol {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// The Kubernetes spelling (`TCP`); `None` for anything else.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// The OVN match field prefix (`tcp`).
    pub(crate) fn ovn(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// Which destination ports of a protocol a policy port allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PortMatch {
    /// Every port.
    Any,
    /// One port.
    Number(u16),
    /// `port` to `endPort`, both included.
    Range(u16, u16),
    /// A named container port of the destination pods (its number may differ per pod).
    Named(String),
}

/// One entry of a rule's `ports`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Port {
    pub(crate) protocol: Protocol,
    pub(crate) port: PortMatch,
}

/// Which namespaces a pod peer looks in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Namespaces {
    /// The policy's own namespace (no `namespaceSelector`).
    Own,
    /// The namespaces a selector matches.
    Selected(Selector),
}

/// One entry of a rule's `from` or `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Peer {
    /// Pods: those `pods` selects in the namespaces `namespaces` names.
    Pods {
        namespaces: Namespaces,
        pods: Selector,
    },
    /// Addresses: `cidr` except `except`.
    Block { cidr: IpNet, except: Vec<IpNet> },
}

/// An ingress or egress rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    /// `None`: every source (or destination).
    pub(crate) peers: Option<Vec<Peer>>,
    /// Empty: every port of every protocol.
    pub(crate) ports: Vec<Port>,
}

/// A checked NetworkPolicy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Compiled {
    pub(crate) namespace: String,
    pub(crate) name: String,
    /// The pods it applies to, in its namespace.
    pub(crate) pods: Selector,
    /// The ingress rules when the policy isolates ingress (`policyTypes` holds `Ingress`).
    pub(crate) ingress: Option<Vec<Rule>>,
    /// The egress rules when the policy isolates egress.
    pub(crate) egress: Option<Vec<Rule>>,
}

impl Compiled {
    /// Whether some peer selects namespaces by label (a namespace's labels matter).
    pub(crate) fn selects_namespaces(&self) -> bool {
        self.rules().any(|(_, r)| {
            r.peers.iter().flatten().any(|p| {
                matches!(
                    p,
                    Peer::Pods {
                        namespaces: Namespaces::Selected(_),
                        ..
                    }
                )
            })
        })
    }

    /// Every rule with its direction (`true` for ingress).
    pub(crate) fn rules(&self) -> impl Iterator<Item = (bool, &Rule)> {
        let i = self.ingress.iter().flatten().map(|r| (true, r));
        let e = self.egress.iter().flatten().map(|r| (false, r));
        i.chain(e)
    }
}

fn err(field: impl Into<String>, reason: impl Into<String>) -> SpecError {
    SpecError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Checks `policy` and applies the API server's defaults: `policyTypes` absent means `Ingress`,
/// plus `Egress` when the policy has egress rules; a port without protocol is TCP.
///
/// # Errors
/// The first field that the API server would refuse.
pub(crate) fn compile(policy: &NetworkPolicy) -> Result<Compiled, SpecError> {
    let meta = &policy.metadata;
    let name = meta.name.clone().unwrap_or_default();
    let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
    let spec = policy.spec.clone().unwrap_or_default();
    let pods = selector(spec.pod_selector.as_ref(), "spec.podSelector")?;
    let (mut wants_ingress, mut wants_egress) = (false, false);
    match &spec.policy_types {
        None => {
            wants_ingress = true;
            wants_egress = spec.egress.as_ref().is_some_and(|e| !e.is_empty());
        }
        Some(types) => {
            for (i, t) in types.iter().enumerate() {
                match t.as_str() {
                    "Ingress" => wants_ingress = true,
                    "Egress" => wants_egress = true,
                    other => {
                        return Err(err(
                            format!("spec.policyTypes[{i}]"),
                            format!("{other:?} is not a policy type (Ingress or Egress)"),
                        ));
                    }
                }
            }
        }
    }
    let mut ingress = Vec::new();
    for (i, r) in spec.ingress.iter().flatten().enumerate() {
        let at = format!("spec.ingress[{i}]");
        ingress.push(rule(r.from.as_deref(), r.ports.as_deref(), &at, "from")?);
    }
    let mut egress = Vec::new();
    for (i, r) in spec.egress.iter().flatten().enumerate() {
        let at = format!("spec.egress[{i}]");
        egress.push(rule(r.to.as_deref(), r.ports.as_deref(), &at, "to")?);
    }
    Ok(Compiled {
        namespace,
        name,
        pods,
        ingress: wants_ingress.then_some(ingress),
        egress: wants_egress.then_some(egress),
    })
}

fn selector(s: Option<&LabelSelector>, at: &str) -> Result<Selector, SpecError> {
    match s {
        None => Ok(Selector::default()),
        Some(s) => Selector::parse(s).map_err(|(f, r)| err(format!("{at}.{f}"), r)),
    }
}

fn rule(
    peers: Option<&[NetworkPolicyPeer]>,
    ports: Option<&[NetworkPolicyPort]>,
    at: &str,
    peers_field: &str,
) -> Result<Rule, SpecError> {
    let peers = match peers {
        None | Some([]) => None,
        Some(list) => {
            let mut out = Vec::new();
            for (j, p) in list.iter().enumerate() {
                out.push(peer(p, &format!("{at}.{peers_field}[{j}]"))?);
            }
            Some(out)
        }
    };
    let mut out = Vec::new();
    for (k, p) in ports.iter().copied().flatten().enumerate() {
        out.push(port(p, &format!("{at}.ports[{k}]"))?);
    }
    Ok(Rule { peers, ports: out })
}

fn peer(p: &NetworkPolicyPeer, at: &str) -> Result<Peer, SpecError> {
    let selectors = p.pod_selector.is_some() || p.namespace_selector.is_some();
    match (&p.ip_block, selectors) {
        (Some(_), true) => Err(err(
            at,
            "ipBlock may not be combined with podSelector or namespaceSelector",
        )),
        (Some(b), false) => block(b, &format!("{at}.ipBlock")),
        (None, false) => Err(err(
            at,
            "must set podSelector, namespaceSelector or ipBlock",
        )),
        (None, true) => Ok(Peer::Pods {
            namespaces: match &p.namespace_selector {
                None => Namespaces::Own,
                Some(s) => {
                    Namespaces::Selected(selector(Some(s), &format!("{at}.namespaceSelector"))?)
                }
            },
            pods: selector(p.pod_selector.as_ref(), &format!("{at}.podSelector"))?,
        }),
    }
}

fn cidr(s: &str, field: &str) -> Result<IpNet, SpecError> {
    s.trim()
        .parse::<IpNet>()
        .map(|n| n.trunc())
        .map_err(|_| err(field, format!("{s:?} is not a CIDR (write 10.0.0.0/16)")))
}

fn block(b: &IPBlock, at: &str) -> Result<Peer, SpecError> {
    let net = cidr(&b.cidr, &format!("{at}.cidr"))?;
    let mut except = Vec::new();
    for (k, e) in b.except.iter().flatten().enumerate() {
        let field = format!("{at}.except[{k}]");
        let x = cidr(e, &field)?;
        if x.prefix_len() <= net.prefix_len() || !net.contains(&x) {
            return Err(err(field, format!("{x} is not strictly inside cidr {net}")));
        }
        except.push(x);
    }
    Ok(Peer::Block { cidr: net, except })
}

fn port(p: &NetworkPolicyPort, at: &str) -> Result<Port, SpecError> {
    let protocol = match p.protocol.as_deref() {
        None => Protocol::Tcp,
        Some(s) => Protocol::parse(s).ok_or_else(|| {
            err(
                format!("{at}.protocol"),
                format!("{s:?} is not a protocol (TCP, UDP or SCTP)"),
            )
        })?,
    };
    let number = |n: i32, field: &str| {
        u16::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
            err(
                format!("{at}.{field}"),
                format!("{n} is not a port (1 to 65535)"),
            )
        })
    };
    let port = match (&p.port, p.end_port) {
        (None, None) => PortMatch::Any,
        (None, Some(_)) => {
            return Err(err(format!("{at}.endPort"), "needs a numeric port"));
        }
        (Some(IntOrString::Int(n)), None) => PortMatch::Number(number(*n, "port")?),
        (Some(IntOrString::Int(n)), Some(e)) => {
            let (start, end) = (number(*n, "port")?, number(e, "endPort")?);
            if end < start {
                return Err(err(
                    format!("{at}.endPort"),
                    format!("{end} is below port {start}"),
                ));
            }
            PortMatch::Range(start, end)
        }
        (Some(IntOrString::String(s)), end) => {
            if end.is_some() {
                return Err(err(format!("{at}.endPort"), "needs a numeric port"));
            }
            if let Ok(n) = s.parse::<i32>() {
                PortMatch::Number(number(n, "port")?)
            } else if is_port_name(s) {
                PortMatch::Named(s.clone())
            } else {
                return Err(err(
                    format!("{at}.port"),
                    format!("{s:?} is not a port name (1 to 15 of a-z, 0-9 and -, with a letter)"),
                ));
            }
        }
    };
    Ok(Port { protocol, port })
}

/// An IANA service name, as container port names are.
fn is_port_name(s: &str) -> bool {
    (1..=15).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && s.chars().any(|c| c.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}
