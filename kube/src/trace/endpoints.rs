//! Where a traced packet starts and where it goes, resolved from the NB: a pod's port (its
//! switch, MAC, IP, router MAC), a node's management port, a Service's VIP and backends, or an
//! address; and the microflow `ovn-trace` takes.

use std::fmt;
use std::net::IpAddr;

use ovn_model::nb::{LoadBalancer, LogicalRouterPort, LogicalSwitch, LogicalSwitchPort};
use ovn_model::owner;
use ovn_model::snapshot::Typed;
use ovn_model::{LspAddress, MacAddr};
use serde::Serialize;

/// The transport of the traced packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
    /// An ICMP echo request.
    Icmp,
}

impl Protocol {
    /// `tcp`, `udp`, `icmp`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
        }
    }
}

/// Why an endpoint could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The text names nothing this module knows.
    #[error(
        "{text:?}: not <namespace>/<pod>, node/<name>, <namespace>/<service>[:port] or <ip>[:port]"
    )]
    Syntax {
        /// The text.
        text: String,
    },
    /// No port, Service or node of that name in the NB.
    #[error("{what}: not in the OVN northbound database")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// The port has no MAC and IP to send from.
    #[error("{port}: the port has no static MAC and IP")]
    NoAddress {
        /// The port.
        port: String,
    },
    /// The Service has no VIP with that port.
    #[error("Service {service}: no VIP for port {port:?} (VIPs: {vips})")]
    NoVip {
        /// The Service.
        service: String,
        /// The port asked for.
        port: Option<u16>,
        /// The VIPs it has.
        vips: String,
    },
}

/// A port packets leave from: a pod's or a node's management port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// What the user named (`default/web-0`, `node/node1`).
    pub name: String,
    /// The logical switch port.
    pub port: String,
    /// Its switch.
    pub switch: String,
    /// Its MAC.
    pub mac: String,
    /// Its IP.
    pub ip: IpAddr,
    /// The MAC of the router port on its switch (the pod's gateway), if any.
    pub router_mac: Option<String>,
}

/// Where packets go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Destination {
    /// What the user named.
    pub name: String,
    /// The destination address.
    pub ip: IpAddr,
    /// The destination port (TCP/UDP).
    pub port: Option<u16>,
    /// The pod's port, when the destination is a pod.
    pub pod_port: Option<String>,
    /// The MAC when the destination is a port on the source's switch.
    pub mac: Option<String>,
    /// The load balancer, when the destination is a Service VIP: its name and backends.
    pub load_balancer: Option<(String, Vec<String>)>,
}

/// The source's port: `<namespace>/<pod>` (port `<namespace>.<pod>`) or `node/<name>` (port
/// `node-<name>`).
///
/// # Errors
/// [`EndpointError`] naming what is missing.
pub fn source(nb: &Typed<'_>, text: &str) -> Result<Source, EndpointError> {
    let port = port_name(text)?;
    let lsp: LogicalSwitchPort = nb.by_name(&port).ok_or_else(|| EndpointError::NotFound {
        what: format!("port {port} ({text})"),
    })?;
    let (mac, ip) =
        first_mac_ip(&lsp).ok_or_else(|| EndpointError::NoAddress { port: port.clone() })?;
    let switch = nb
        .parent::<LogicalSwitch, _>(&lsp)
        .ok_or_else(|| EndpointError::NotFound {
            what: format!("the switch of port {port}"),
        })?;
    Ok(Source {
        name: text.to_owned(),
        router_mac: router_mac(nb, &switch),
        port,
        switch: switch.name,
        mac: mac.to_string(),
        ip,
    })
}

/// The destination: a pod, a Service (`<namespace>/<service>[:port]`, when the NB has its load
/// balancer), `node/<name>`, or an address (`<ip>[:port]`; when it is a Service load balancer's
/// VIP, such as a cluster IP or the node-port VIP with a node port, that load balancer's too).
///
/// # Errors
/// [`EndpointError`] naming what is missing.
pub fn destination(
    nb: &Typed<'_>,
    from: &Source,
    text: &str,
) -> Result<Destination, EndpointError> {
    let (body, port) = split_port(text);
    if let Ok(ip) = body.parse::<IpAddr>() {
        let mac = port_with_ip(nb, &from.switch, ip).map(|(_, m)| m.to_string());
        return Ok(Destination {
            name: text.to_owned(),
            ip,
            port,
            pod_port: None,
            mac,
            load_balancer: port.and_then(|p| load_balancer_with_vip(nb, ip, p)),
        });
    }
    if let Some((ns, name)) = body.split_once('/')
        && ns != "node"
        && let Some(d) = service(nb, text, ns, name, port)?
    {
        return Ok(d);
    }
    let port_name = port_name(body)?;
    let lsp: LogicalSwitchPort = nb
        .by_name(&port_name)
        .ok_or_else(|| EndpointError::NotFound {
            what: format!("port {port_name} or a Service's load balancer ({text})"),
        })?;
    let (mac, ip) = first_mac_ip(&lsp).ok_or_else(|| EndpointError::NoAddress {
        port: port_name.clone(),
    })?;
    let same_switch = nb
        .parent::<LogicalSwitch, _>(&lsp)
        .is_some_and(|s| s.name == from.switch);
    Ok(Destination {
        name: text.to_owned(),
        ip,
        port,
        pod_port: Some(port_name),
        mac: same_switch.then(|| mac.to_string()),
        load_balancer: None,
    })
}

/// A Service's VIP from its load balancers, if the NB has any for it.
fn service(
    nb: &Typed<'_>,
    text: &str,
    ns: &str,
    name: &str,
    port: Option<u16>,
) -> Result<Option<Destination>, EndpointError> {
    let object = owner::Object::of("service", Some(ns), name);
    let lbs: Vec<LoadBalancer> = nb
        .rows::<LoadBalancer>()
        .filter(|lb| {
            lb.external_ids.get(owner::OWNER).map(String::as_str)
                == Some(owner::Component::SERVICES)
                && lb.external_ids.get(owner::OBJECT).map(String::as_str) == Some(object.as_str())
                && lb.options.get("template").map(String::as_str) != Some("true")
        })
        .collect();
    if lbs.is_empty() {
        return Ok(None);
    }
    let mut all = Vec::new();
    for lb in &lbs {
        for (vip, backends) in &lb.vips {
            let (ip, vport) = split_port(vip);
            let Ok(ip) = ip.trim_matches(['[', ']']).parse::<IpAddr>() else {
                continue;
            };
            all.push(vip.clone());
            if port.is_none_or(|p| vport == Some(p))
                && !ip.is_loopback()
                && !is_node_port_vip(lb, ip)
            {
                return Ok(Some(Destination {
                    name: text.to_owned(),
                    ip,
                    port: vport,
                    pod_port: None,
                    mac: None,
                    load_balancer: Some((lb.name.clone(), backend_list(backends))),
                }));
            }
        }
    }
    Err(EndpointError::NoVip {
        service: format!("{ns}/{name}"),
        port,
        vips: all.join(", "),
    })
}

/// The Service load balancer (not a template) holding the VIP `ip:port` (a cluster IP, or the
/// node-port VIP), and its backends.
fn load_balancer_with_vip(nb: &Typed<'_>, ip: IpAddr, port: u16) -> Option<(String, Vec<String>)> {
    let key = match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    };
    nb.rows::<LoadBalancer>()
        .filter(|lb| {
            lb.external_ids.get(owner::OWNER).map(String::as_str)
                == Some(owner::Component::SERVICES)
                && lb.options.get("template").map(String::as_str) != Some("true")
        })
        .find_map(|lb| {
            let backends = lb.vips.get(&key)?;
            Some((lb.name.clone(), backend_list(backends)))
        })
}

/// `a:1,b:2` -> [`a:1`, `b:2`].
fn backend_list(backends: &str) -> Vec<String> {
    backends
        .split(',')
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `ip` is the node-port VIP a load balancer names.
fn is_node_port_vip(lb: &LoadBalancer, ip: IpAddr) -> bool {
    lb.external_ids
        .get(owner::LB_NODE_PORT_VIP)
        .is_some_and(|v| v.parse::<IpAddr>().ok() == Some(ip))
}

/// `ns/pod` -> `ns.pod`, `node/name` -> `node-name`.
fn port_name(text: &str) -> Result<String, EndpointError> {
    let syntax = || EndpointError::Syntax {
        text: text.to_owned(),
    };
    let (a, b) = text.split_once('/').ok_or_else(syntax)?;
    if a.is_empty() || b.is_empty() || b.contains('/') {
        return Err(syntax());
    }
    Ok(if a == "node" {
        format!("node-{b}")
    } else {
        format!("{a}.{b}")
    })
}

/// `x:80` -> (`x`, Some(80)); a v6 address in brackets keeps them off.
fn split_port(text: &str) -> (&str, Option<u16>) {
    if let Some(rest) = text.strip_prefix('[')
        && let Some((ip, port)) = rest.split_once("]:")
    {
        return (ip, port.parse().ok());
    }
    match text.rsplit_once(':') {
        Some((a, p)) if !a.contains(':') => match p.parse() {
            Ok(p) => (a, Some(p)),
            Err(_) => (text, None),
        },
        _ => (text, None),
    }
}

fn first_mac_ip(lsp: &LogicalSwitchPort) -> Option<(MacAddr, IpAddr)> {
    lsp.addresses.iter().find_map(|a| match a {
        LspAddress::Mac { mac, ips } => Some((*mac, *ips.first()?)),
        _ => None,
    })
}

/// The port of `switch` holding `ip`, and its MAC.
fn port_with_ip(nb: &Typed<'_>, switch: &str, ip: IpAddr) -> Option<(String, MacAddr)> {
    let sw: LogicalSwitch = nb.by_name(switch)?;
    nb.children::<LogicalSwitch, LogicalSwitchPort>(&sw)
        .into_iter()
        .find_map(|p| {
            let (mac, _) = p.addresses.iter().find_map(|a| match a {
                LspAddress::Mac { mac, ips } if ips.contains(&ip) => Some((*mac, ())),
                _ => None,
            })?;
            Some((p.name.clone(), mac))
        })
}

/// The MAC of the router port a switch's router-type port peers with.
fn router_mac(nb: &Typed<'_>, switch: &LogicalSwitch) -> Option<String> {
    nb.children::<LogicalSwitch, LogicalSwitchPort>(switch)
        .into_iter()
        .filter(|p| p.type_ == "router")
        .find_map(|p| {
            let lrp: LogicalRouterPort = nb.by_name(p.options.get("router-port")?)?;
            Some(lrp.mac.to_string())
        })
}

/// The microflow `ovn-trace` takes for a packet from `from` to `to`.
#[must_use]
pub fn microflow(from: &Source, to: &Destination, protocol: Protocol) -> String {
    let dst_mac = to
        .mac
        .clone()
        .or_else(|| from.router_mac.clone())
        .unwrap_or_else(|| "ff:ff:ff:ff:ff:ff".to_owned());
    let family = if to.ip.is_ipv4() { "ip4" } else { "ip6" };
    let mut flow = Flow(format!(
        "inport == \"{}\" && eth.src == {} && eth.dst == {dst_mac} && {family}.src == {} && {family}.dst == {} && ip.ttl == 64",
        from.port, from.mac, from.ip, to.ip
    ));
    match protocol {
        Protocol::Tcp | Protocol::Udp => {
            let p = protocol.as_str();
            flow.and(&format!(
                "{p} && {p}.src == 33333 && {p}.dst == {}",
                to.port.unwrap_or(80)
            ));
        }
        Protocol::Icmp => {
            let icmp = if to.ip.is_ipv4() {
                "icmp4.type == 8"
            } else {
                "icmp6.type == 128"
            };
            flow.and(icmp);
        }
    }
    flow.0
}

struct Flow(String);

impl Flow {
    fn and(&mut self, term: &str) {
        self.0.push_str(" && ");
        self.0.push_str(term);
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ports_split_as_written() {
        assert_eq!(port_name("default/web").unwrap(), "default.web");
        assert_eq!(port_name("node/n1").unwrap(), "node-n1");
        assert!(port_name("web").is_err());
        assert!(port_name("a/b/c").is_err());
        assert_eq!(split_port("10.96.0.10:53"), ("10.96.0.10", Some(53)));
        assert_eq!(split_port("default/web:80"), ("default/web", Some(80)));
        assert_eq!(split_port("fd00::1"), ("fd00::1", None));
        assert_eq!(split_port("[fd00::1]:80"), ("fd00::1", Some(80)));
    }

    #[test]
    fn a_microflow_names_every_field_ovn_trace_needs() {
        let from = Source {
            name: "default/a".into(),
            port: "default.a".into(),
            switch: "ovn-default".into(),
            mac: "0a:00:00:00:00:01".into(),
            ip: "10.16.0.2".parse().unwrap(),
            router_mac: Some("0a:58:00:00:00:01".into()),
        };
        let to = Destination {
            name: "10.17.0.2:8080".into(),
            ip: "10.17.0.2".parse().unwrap(),
            port: Some(8080),
            pod_port: None,
            mac: None,
            load_balancer: None,
        };
        assert_eq!(
            microflow(&from, &to, Protocol::Tcp),
            "inport == \"default.a\" && eth.src == 0a:00:00:00:00:01 && eth.dst == 0a:58:00:00:00:01 && ip4.src == 10.16.0.2 && ip4.dst == 10.17.0.2 && ip.ttl == 64 && tcp && tcp.src == 33333 && tcp.dst == 8080"
        );
        assert!(microflow(&from, &to, Protocol::Icmp).ends_with("icmp4.type == 8"));
    }
}
