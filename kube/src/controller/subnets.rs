//! Namespaces to subnets: each namespace either defines a subnet (it has a `cidr`), binds to
//! one by name (`logical_switch`), or uses the default subnet. Computed again from every
//! namespace whenever one changes (there are few), keeping the last good definition of a
//! namespace whose annotations are bad, so that a typo never disturbs running pods.

use std::collections::BTreeMap;
use std::net::IpAddr;

use gateway::GatewayType;
use ipnet::IpNet;

use super::annotations::{self as ann, AnnotationError, BadValue, Reader};
use super::config::ControllerConfig;
use super::source::{Kind, ObjectRef};

/// One subnet: a logical switch on the cluster router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    /// The logical switch's name.
    pub name: String,
    /// One CIDR per family.
    pub cidrs: Vec<IpNet>,
    /// The gateway per family (the router port's address).
    pub gateways: Vec<IpAddr>,
    /// Addresses never handed out, as written.
    pub exclude: Vec<String>,
    /// Only the subnet itself, `allow` and the nodes reach its pods.
    pub private: bool,
    /// CIDRs allowed into a private subnet.
    pub allow: Vec<IpNet>,
    /// How traffic leaves the cluster.
    pub gateway_type: GatewayType,
    /// The gateway nodes of a centralized subnet.
    pub gateway_nodes: Vec<String>,
    /// Whether traffic leaving the cluster is masqueraded.
    pub nat_outgoing: bool,
    /// The namespace that defines it (`None` for the default subnet).
    pub defined_by: Option<String>,
}

impl Subnet {
    /// The gateway of `address`'s family.
    #[must_use]
    pub fn gateway_for(&self, address: IpAddr) -> Option<IpAddr> {
        self.gateways
            .iter()
            .copied()
            .find(|g| g.is_ipv4() == address.is_ipv4())
    }

    /// The CIDR that holds `address`.
    #[must_use]
    pub fn cidr_for(&self, address: IpAddr) -> Option<IpNet> {
        self.cidrs.iter().copied().find(|c| c.contains(&address))
    }

    /// The IPAM configuration.
    pub(crate) fn ipam_config(&self) -> ipam::SubnetConfig {
        let mut cfg = ipam::SubnetConfig::new(&self.name, self.cidrs[0]);
        for c in &self.cidrs[1..] {
            cfg = cfg.with_cidr(*c);
        }
        for g in &self.gateways {
            cfg = cfg.with_gateway(*g);
        }
        for e in &self.exclude {
            cfg = cfg.with_exclude(e.clone());
        }
        cfg
    }

    fn overlaps(&self, other: &[IpNet]) -> Option<(IpNet, IpNet)> {
        self.cidrs.iter().find_map(|a| {
            other
                .iter()
                .find(|b| a.contains(&b.network()) || b.contains(&a.network()))
                .map(|b| (*a, *b))
        })
    }
}

/// The first usable address of `cidr` (the default gateway).
fn first_address(cidr: IpNet) -> IpAddr {
    cidr.hosts().next().unwrap_or(cidr.network())
}

/// What a namespace's annotations say.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Binding {
    /// Uses the default subnet.
    Default,
    /// Uses a subnet another namespace defines.
    Named(String),
    /// Defines a subnet.
    Defines(Subnet),
}

/// Reads a namespace's subnet annotations.
fn binding(
    object: &ObjectRef,
    annotations: &BTreeMap<String, String>,
) -> Result<Binding, AnnotationError> {
    let r = Reader::new(object, annotations);
    let cidrs = r.cidrs(ann::CIDR)?;
    let switch = r.get(ann::LOGICAL_SWITCH).map(str::to_owned);
    if cidrs.is_empty() {
        return Ok(switch.map_or(Binding::Default, Binding::Named));
    }
    let cidrs: Vec<IpNet> = cidrs.iter().map(IpNet::trunc).collect();
    let mut gateways = r.addresses(ann::GATEWAY)?;
    for g in &gateways {
        if !cidrs.iter().any(|c| c.contains(g)) {
            return Err(r.error(
                ann::GATEWAY,
                BadValue::OutsideSubnet {
                    address: *g,
                    cidr: ann::joined(&cidrs),
                },
            ));
        }
    }
    for c in &cidrs {
        if !gateways.iter().any(|g| g.is_ipv4() == c.addr().is_ipv4()) {
            gateways.push(first_address(*c));
        }
    }
    let exclude: Vec<String> = r
        .list(ann::EXCLUDE_IPS)
        .into_iter()
        .map(str::to_owned)
        .collect();
    for e in &exclude {
        let parsed: Result<ipam::Entry, _> = e.parse();
        if parsed.is_err() {
            return Err(r.error(
                ann::EXCLUDE_IPS,
                BadValue::Other(format!("{e:?} is not an address, a..b range or CIDR")),
            ));
        }
    }
    let gateway_type = match r.get(ann::GATEWAY_TYPE) {
        None | Some("distributed") => GatewayType::Distributed,
        Some("centralized") => GatewayType::Centralized,
        Some("native") => GatewayType::OvnNative,
        Some(_) => return Err(r.error(ann::GATEWAY_TYPE, BadValue::NotAGatewayType)),
    };
    let gateway_nodes: Vec<String> = r
        .list(ann::GATEWAY_NODE)
        .into_iter()
        .map(str::to_owned)
        .collect();
    if gateway_type == GatewayType::Centralized && gateway_nodes.is_empty() {
        return Err(r.error(
            ann::GATEWAY_TYPE,
            BadValue::Missing {
                key: ann::GATEWAY_NODE,
            },
        ));
    }
    Ok(Binding::Defines(Subnet {
        name: switch.unwrap_or_else(|| object.name.clone()),
        cidrs,
        gateways,
        exclude,
        private: r.bool(ann::PRIVATE, false)?,
        allow: r.cidrs_list(ann::ALLOW)?,
        gateway_type,
        gateway_nodes,
        nat_outgoing: r.bool(ann::NAT_OUTGOING, true)?,
        defined_by: Some(object.name.clone()),
    }))
}

/// Every subnet and which subnet each namespace uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subnets {
    /// Subnets by name (the default subnet included).
    pub by_name: BTreeMap<String, Subnet>,
    /// The subnet of each namespace.
    pub of_namespace: BTreeMap<String, String>,
}

impl Subnets {
    /// The subnet `namespace` uses (the default subnet for one not seen).
    #[must_use]
    pub fn for_namespace<'a>(&'a self, namespace: &str, default: &'a str) -> &'a str {
        self.of_namespace
            .get(namespace)
            .map_or(default, String::as_str)
    }

    /// Every subnet CIDR (for the gateway planner's cluster-internal destinations).
    pub fn cidrs(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.by_name.values().flat_map(|s| s.cidrs.iter().copied())
    }
}

/// The subnets the namespaces (name -> annotations) ask for. A namespace whose annotations are
/// bad, or conflict with an earlier namespace's (by name order), keeps what it had in
/// `previous`, and its error is returned.
pub fn compute(
    config: &ControllerConfig,
    namespaces: &BTreeMap<String, BTreeMap<String, String>>,
    previous: &Subnets,
) -> (Subnets, Vec<AnnotationError>) {
    let (default_name, default_cidr) = config.default_subnet();
    let (_, join_cidr, _) = config.join();
    let mut out = Subnets::default();
    out.by_name.insert(
        default_name.to_owned(),
        Subnet {
            name: default_name.to_owned(),
            cidrs: vec![default_cidr],
            gateways: vec![first_address(default_cidr)],
            exclude: Vec::new(),
            private: false,
            allow: Vec::new(),
            gateway_type: GatewayType::Distributed,
            gateway_nodes: Vec::new(),
            nat_outgoing: true,
            defined_by: None,
        },
    );
    let mut errors = Vec::new();
    let mut named = Vec::new();
    for (ns, annotations) in namespaces {
        let object = ObjectRef::cluster(Kind::Namespace, ns.clone());
        let result = binding(&object, annotations).and_then(|b| match b {
            Binding::Defines(s) => admit(&object, s, &out, join_cidr).map(Binding::Defines),
            other => Ok(other),
        });
        let b = match result {
            Ok(b) => b,
            Err(e) => {
                errors.push(e);
                // The last good definition, if it still fits.
                match previous
                    .by_name
                    .values()
                    .find(|s| s.defined_by.as_deref() == Some(ns.as_str()))
                {
                    Some(s) if admit(&object, s.clone(), &out, join_cidr).is_ok() => {
                        Binding::Defines(s.clone())
                    }
                    _ => match previous.of_namespace.get(ns) {
                        Some(name) if name != default_name => Binding::Named(name.clone()),
                        _ => Binding::Default,
                    },
                }
            }
        };
        match b {
            Binding::Default => {
                out.of_namespace.insert(ns.clone(), default_name.to_owned());
            }
            Binding::Named(name) => named.push((ns.clone(), name)),
            Binding::Defines(s) => {
                out.of_namespace.insert(ns.clone(), s.name.clone());
                out.by_name.insert(s.name.clone(), s);
            }
        }
    }
    for (ns, name) in named {
        if out.by_name.contains_key(&name) {
            out.of_namespace.insert(ns, name);
        } else {
            let object = ObjectRef::cluster(Kind::Namespace, ns.clone());
            let values = &namespaces[&ns];
            errors.push(Reader::new(&object, values).error(
                ann::LOGICAL_SWITCH,
                BadValue::Other(format!("no subnet is named {name:?}")),
            ));
            out.of_namespace.insert(ns, default_name.to_owned());
        }
    }
    (out, errors)
}

/// `s` if it conflicts with no subnet of `so_far` and the join subnet.
fn admit(
    object: &ObjectRef,
    s: Subnet,
    so_far: &Subnets,
    join_cidr: IpNet,
) -> Result<Subnet, AnnotationError> {
    let err = |key: &'static str, reason: String| {
        AnnotationError::new(
            object.clone(),
            key,
            ann::joined(&s.cidrs),
            BadValue::Other(reason),
        )
    };
    if let Some(existing) = so_far.by_name.get(&s.name) {
        let by = existing
            .defined_by
            .as_deref()
            .map_or("the controller's configuration".to_owned(), |n| {
                format!("namespace {n}")
            });
        return Err(err(
            ann::CIDR,
            format!("subnet {:?} is defined by {by} already", s.name),
        ));
    }
    if let Some((a, b)) = s.overlaps(&[join_cidr]) {
        return Err(err(ann::CIDR, format!("{a} overlaps the join subnet {b}")));
    }
    for other in so_far.by_name.values() {
        if let Some((a, b)) = s.overlaps(&other.cidrs) {
            return Err(err(
                ann::CIDR,
                format!("{a} overlaps {b} of subnet {:?}", other.name),
            ));
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn namespaces_define_bind_or_default() {
        let config = ControllerConfig::default();
        let all = BTreeMap::from([
            ("a".to_owned(), ns(&[])),
            (
                "b".to_owned(),
                ns(&[
                    (ann::CIDR, "10.17.0.0/16"),
                    (ann::EXCLUDE_IPS, "10.17.0.2..10.17.0.9"),
                    (ann::PRIVATE, "true"),
                    (ann::ALLOW, "10.16.0.0/16"),
                ]),
            ),
            ("c".to_owned(), ns(&[(ann::LOGICAL_SWITCH, "b")])),
            (
                "d".to_owned(),
                ns(&[
                    (ann::CIDR, "10.18.0.0/16"),
                    (ann::LOGICAL_SWITCH, "db"),
                    (ann::GATEWAY_TYPE, "centralized"),
                    (ann::GATEWAY_NODE, "node1,node2"),
                ]),
            ),
        ]);
        let (s, errors) = compute(&config, &all, &Subnets::default());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(s.for_namespace("a", "ovn-default"), "ovn-default");
        assert_eq!(s.for_namespace("c", "ovn-default"), "b");
        let b = &s.by_name["b"];
        assert_eq!(b.gateways, ["10.17.0.1".parse::<IpAddr>().unwrap()]);
        assert!(b.private && b.allow.len() == 1);
        assert_eq!(s.by_name["db"].gateway_nodes, ["node1", "node2"]);
    }

    #[test]
    fn overlaps_and_bad_values_keep_the_last_good_definition() {
        let config = ControllerConfig::default();
        let good = BTreeMap::from([("b".to_owned(), ns(&[(ann::CIDR, "10.17.0.0/16")]))]);
        let (first, _) = compute(&config, &good, &Subnets::default());
        let bad = BTreeMap::from([
            (
                "b".to_owned(),
                ns(&[(ann::CIDR, "10.17.0.0/16"), (ann::PRIVATE, "maybe")]),
            ),
            ("c".to_owned(), ns(&[(ann::CIDR, "10.17.128.0/17")])),
            ("d".to_owned(), ns(&[(ann::CIDR, "100.64.1.0/24")])),
        ]);
        let (s, errors) = compute(&config, &bad, &first);
        let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            texts,
            [
                r#"Namespace b: annotation ovn.kubernetes.io/private="maybe": not true or false"#,
                r#"Namespace c: annotation ovn.kubernetes.io/cidr="10.17.128.0/17": 10.17.128.0/17 overlaps 10.17.0.0/16 of subnet "b""#,
                r#"Namespace d: annotation ovn.kubernetes.io/cidr="100.64.1.0/24": 100.64.1.0/24 overlaps the join subnet 100.64.0.0/16"#,
            ]
        );
        assert_eq!(s.by_name["b"], first.by_name["b"], "b keeps what it had");
        assert_eq!(s.for_namespace("c", "ovn-default"), "ovn-default");
    }
}
