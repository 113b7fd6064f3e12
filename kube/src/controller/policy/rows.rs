//! The rows of one NetworkPolicy, from its checked form and the pods and namespaces it sees.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use ovn_model::nb::{Acl, AclAction, AclDirection, AddressSet, LogicalSwitchPort, PortGroup};
use ovn_model::plan::RowTarget;
use ovsdb::table::WeakRef;

use super::spec::{Compiled, Namespaces, Peer, Port, PortMatch, Protocol, Rule, SpecError};
use super::{DEFAULT_DROP, NODES_ALLOW, POLICY_ALLOW};

/// A pod as policies see it.
#[derive(Debug, Clone)]
pub(crate) struct Member<'a> {
    /// `namespace/name`.
    pub(crate) key: &'a str,
    pub(crate) labels: &'a BTreeMap<String, String>,
    /// Its addresses (none yet: it is in no address set).
    pub(crate) ips: Vec<IpAddr>,
    /// Its named container ports: name to protocol and number.
    pub(crate) named_ports: &'a BTreeMap<String, (String, u16)>,
    /// Its logical switch port, when it has one (it joins port groups only then).
    pub(crate) port: Option<RowTarget>,
}

impl Member<'_> {
    fn named_port(&self, name: &str, protocol: Protocol) -> Option<u16> {
        self.named_ports
            .get(name)
            .filter(|(p, _)| Protocol::parse(p) == Some(protocol))
            .map(|(_, n)| *n)
    }
}

/// A namespace: its labels and its pods.
#[derive(Debug, Clone, Default)]
pub(crate) struct NamespaceView<'a> {
    pub(crate) labels: Option<&'a BTreeMap<String, String>>,
    pub(crate) pods: Vec<Member<'a>>,
}

/// What the rows of a policy are built from.
#[derive(Debug, Clone)]
pub(crate) struct Cluster<'a> {
    /// Namespaces by name (a namespace with pods but no object yet has no labels but its
    /// name).
    pub(crate) namespaces: BTreeMap<&'a str, NamespaceView<'a>>,
    /// The join subnet (nodes, their health checks).
    pub(crate) join: IpNet,
    /// Whether pods have IPv4 and IPv6 addresses (address sets per family).
    pub(crate) v4: bool,
    pub(crate) v6: bool,
}

/// The rows of one policy, each with the id that tells it apart among the policy's rows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rows {
    pub(crate) port_group: PortGroup,
    pub(crate) address_sets: Vec<(String, AddressSet)>,
    pub(crate) acls: Vec<(String, Acl)>,
    /// The pods the rows depend on (a change of theirs rebuilds the policy).
    pub(crate) members: BTreeSet<String>,
    /// Named ports no candidate pod declares (for events; they allow nothing).
    pub(crate) unresolved: Vec<SpecError>,
}

/// The port group name of policy `namespace/name`: `np_` and 16 hex digits of a hash of the
/// name (port group names are letters, digits, `_` and `.`; the policy's name may hold `-`).
#[must_use]
pub(crate) fn port_group_name(namespace: &str, name: &str) -> String {
    let h = format!("{namespace}/{name}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("np_{h:016x}")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn of(ip: &IpAddr) -> Self {
        if ip.is_ipv4() { Family::V4 } else { Family::V6 }
    }
    fn ovn(self) -> &'static str {
        match self {
            Family::V4 => "ip4",
            Family::V6 => "ip6",
        }
    }
    fn suffix(self) -> &'static str {
        match self {
            Family::V4 => "4",
            Family::V6 => "6",
        }
    }
}

/// One side of an ACL's address match: the family and the expression.
type Term = (Family, String);

struct Builder<'c, 'a> {
    policy: &'c Compiled,
    cluster: &'c Cluster<'a>,
    pg: String,
    families: Vec<Family>,
    rows: Rows,
}

/// The rows of `policy` (see the module docs).
pub(crate) fn build(policy: &Compiled, cluster: &Cluster<'_>) -> Rows {
    let pg = port_group_name(&policy.namespace, &policy.name);
    let mut families = Vec::new();
    if cluster.v4 {
        families.push(Family::V4);
    }
    if cluster.v6 {
        families.push(Family::V6);
    }
    let mut b = Builder {
        policy,
        cluster,
        pg: pg.clone(),
        families,
        rows: Rows::default(),
    };
    let selected = b.selected();
    let mut group = PortGroup::new(&pg);
    for m in &selected {
        b.rows.members.insert(m.key.to_owned());
        if let Some(p) = m
            .port
            .as_ref()
            .and_then(RowTarget::to_ref::<LogicalSwitchPort>)
        {
            group.ports.insert(WeakRef::from_id(p.id().clone()));
        }
    }
    b.rows.port_group = group;
    let join = cluster.join;
    let fam = Family::of(&join.addr()).ovn();
    b.acl(
        "ingress/nodes".into(),
        true,
        NODES_ALLOW,
        format!("outport == @{pg} && {fam}.src == {join}"),
        AclAction::AllowRelated,
    );
    if let Some(rules) = &policy.ingress {
        b.acl(
            "ingress/default-deny".into(),
            true,
            DEFAULT_DROP,
            format!("outport == @{pg} && ip"),
            AclAction::Drop,
        );
        for (i, r) in rules.iter().enumerate() {
            b.rule(true, i, r, &selected);
        }
    }
    if let Some(rules) = &policy.egress {
        b.acl(
            "egress/default-deny".into(),
            false,
            DEFAULT_DROP,
            format!("inport == @{pg} && ip"),
            AclAction::Drop,
        );
        for (i, r) in rules.iter().enumerate() {
            b.rule(false, i, r, &selected);
        }
    }
    b.rows
}

impl<'a> Builder<'_, 'a> {
    fn namespace(&self, name: &str) -> Option<&NamespaceView<'a>> {
        self.cluster.namespaces.get(name)
    }

    /// The pods the policy applies to.
    fn selected(&self) -> Vec<Member<'a>> {
        self.namespace(&self.policy.namespace)
            .map(|n| {
                n.pods
                    .iter()
                    .filter(|m| self.policy.pods.matches(m.labels))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The pods a pod peer selects.
    fn peer_pods(&self, namespaces: &Namespaces, pods: &super::Selector) -> Vec<Member<'a>> {
        let mut out = Vec::new();
        for (name, ns) in &self.cluster.namespaces {
            let in_scope = match namespaces {
                Namespaces::Own => *name == self.policy.namespace,
                Namespaces::Selected(s) => {
                    s.matches_namespace(name, ns.labels.unwrap_or(&BTreeMap::new()))
                }
            };
            if in_scope {
                out.extend(ns.pods.iter().filter(|m| pods.matches(m.labels)).cloned());
            }
        }
        out
    }

    /// Every pod of the cluster.
    fn all_pods(&self) -> Vec<Member<'a>> {
        self.cluster
            .namespaces
            .values()
            .flat_map(|n| n.pods.iter().cloned())
            .collect()
    }

    fn acl(&mut self, id: String, ingress: bool, priority: u16, m: String, action: AclAction) {
        let direction = if ingress {
            AclDirection::ToLport
        } else {
            AclDirection::FromLport
        };
        let mut acl = Acl::new(direction, priority, &m, action);
        if !ingress {
            // Egress is matched after load balancing, on the backend's address: a policy
            // allowing pods lets a Service with those pods as backends through.
            acl.options
                .insert("apply-after-lb".to_owned(), "true".to_owned());
        }
        self.rows.acls.push((id, acl));
    }

    /// An address set of `members`' addresses of family `f`; its `$name`.
    fn address_set(
        &mut self,
        id: String,
        suffix: &str,
        f: Family,
        members: &[Member<'a>],
    ) -> String {
        let name = format!("{}_{suffix}_{}", self.pg, f.suffix());
        let mut addresses = BTreeSet::new();
        for m in members {
            self.rows.members.insert(m.key.to_owned());
            addresses.extend(m.ips.iter().filter(|ip| Family::of(ip) == f).copied());
        }
        self.rows.address_sets.push((
            format!("{id}/{}", f.ovn()),
            AddressSet::new(&name, addresses),
        ));
        format!("${name}")
    }

    /// The address terms of rule `i`'s peer `j` (`src` for ingress, `dst` for egress).
    fn peer_terms(&mut self, ingress: bool, i: usize, j: usize, peer: &Peer) -> Vec<Term> {
        let side = if ingress { "src" } else { "dst" };
        let d = if ingress { "i" } else { "e" };
        match peer {
            Peer::Pods { namespaces, pods } => {
                let members = self.peer_pods(namespaces, pods);
                let dir = if ingress { "ingress" } else { "egress" };
                self.families
                    .clone()
                    .into_iter()
                    .map(|f| {
                        let set = self.address_set(
                            format!("{dir}/{i}/peer{j}"),
                            &format!("{d}{i}_{j}"),
                            f,
                            &members,
                        );
                        (f, format!("{}.{side} == {set}", f.ovn()))
                    })
                    .collect()
            }
            Peer::Block { cidr, except } => {
                let f = Family::of(&cidr.addr());
                let mut t = format!("{}.{side} == {cidr}", f.ovn());
                match except.as_slice() {
                    [] => {}
                    [one] => t.push_str(&format!(" && {}.{side} != {one}", f.ovn())),
                    many => {
                        let list: Vec<String> = many.iter().map(ToString::to_string).collect();
                        t.push_str(&format!(
                            " && {}.{side} != {{{}}}",
                            f.ovn(),
                            list.join(", ")
                        ));
                    }
                }
                vec![(f, t)]
            }
        }
    }

    fn rule(&mut self, ingress: bool, i: usize, rule: &Rule, selected: &[Member<'a>]) {
        let dir = if ingress { "ingress" } else { "egress" };
        let head = if ingress {
            format!("outport == @{}", self.pg)
        } else {
            format!("inport == @{}", self.pg)
        };
        // The peers' address terms, per peer (`None`: anyone).
        let peers: Vec<(String, Option<Term>)> = match &rule.peers {
            None => vec![("*".into(), None)],
            Some(list) => {
                let mut out = Vec::new();
                for (j, p) in list.iter().enumerate() {
                    for t in self.peer_terms(ingress, i, j, p) {
                        out.push((format!("peer{j}"), Some(t)));
                    }
                }
                out
            }
        };
        let ports: Vec<(usize, &Port)> = rule.ports.iter().enumerate().collect();
        if ports.is_empty() {
            for (pid, term) in &peers {
                let fam = term.as_ref().map(|(f, _)| *f);
                let mut m = vec![head.clone()];
                match term {
                    Some((_, t)) => m.push(t.clone()),
                    None => m.push("ip".into()),
                }
                let id = format!("{dir}/{i}/{pid}/*{}", fam_id(fam));
                self.acl(
                    id,
                    ingress,
                    POLICY_ALLOW,
                    m.join(" && "),
                    AclAction::AllowRelated,
                );
            }
            return;
        }
        for (k, port) in ports {
            if let PortMatch::Named(name) = &port.port {
                self.named(
                    ingress,
                    i,
                    k,
                    port.protocol,
                    name,
                    rule,
                    &peers,
                    selected,
                    &head,
                );
                continue;
            }
            let pm = port_term(port.protocol, &port.port);
            for (pid, term) in &peers {
                let fam = term.as_ref().map(|(f, _)| *f);
                let mut m = vec![head.clone()];
                if let Some((_, t)) = term {
                    m.push(t.clone());
                }
                m.push(pm.clone());
                let id = format!("{dir}/{i}/{pid}/port{k}{}", fam_id(fam));
                self.acl(
                    id,
                    ingress,
                    POLICY_ALLOW,
                    m.join(" && "),
                    AclAction::AllowRelated,
                );
            }
        }
    }

    /// A named port: one ACL per number it resolves to, over an address set of the pods
    /// where it has that number (the selected pods for ingress, the peers for egress).
    #[allow(clippy::too_many_arguments)] // One rule's context.
    fn named(
        &mut self,
        ingress: bool,
        i: usize,
        k: usize,
        protocol: Protocol,
        name: &str,
        rule: &Rule,
        peers: &[(String, Option<Term>)],
        selected: &[Member<'a>],
        head: &str,
    ) {
        let dir = if ingress { "ingress" } else { "egress" };
        let d = if ingress { "i" } else { "e" };
        let candidates: Vec<Member<'a>> = if ingress {
            selected.to_vec()
        } else {
            match &rule.peers {
                None => self.all_pods(),
                Some(list) => list
                    .iter()
                    .filter_map(|p| match p {
                        Peer::Pods { namespaces, pods } => Some(self.peer_pods(namespaces, pods)),
                        Peer::Block { .. } => None,
                    })
                    .flatten()
                    .collect(),
            }
        };
        let mut by_number: BTreeMap<u16, Vec<Member<'a>>> = BTreeMap::new();
        for m in &candidates {
            self.rows.members.insert(m.key.to_owned());
            if let Some(n) = m.named_port(name, protocol) {
                by_number.entry(n).or_default().push(m.clone());
            }
        }
        if by_number.is_empty() && !candidates.is_empty() {
            let whose = if ingress {
                "selected pod"
            } else {
                "destination pod"
            };
            self.rows.unresolved.push(SpecError {
                field: format!("spec.{dir}[{i}].ports[{k}].port"),
                reason: format!(
                    "no {whose} declares a {} port named {name:?}: it allows nothing",
                    protocol.ovn().to_uppercase()
                ),
            });
        }
        for (n, members) in by_number {
            let pm = port_term(protocol, &PortMatch::Number(n));
            for f in self.families.clone() {
                let set = self.address_set(
                    format!("{dir}/{i}/port{k}={n}"),
                    &format!("{d}{i}_n{k}_{n}"),
                    f,
                    &members,
                );
                let dst = format!("{}.dst == {set}", f.ovn());
                // Egress: the set already holds only peers; ingress: combine with each peer.
                let sources: Vec<(String, Option<Term>)> = if ingress {
                    peers.to_vec()
                } else {
                    vec![("*".into(), None)]
                };
                for (pid, term) in sources {
                    if term.as_ref().is_some_and(|(tf, _)| *tf != f) {
                        continue;
                    }
                    let mut m = vec![head.to_owned()];
                    if let Some((_, t)) = &term {
                        m.push(t.clone());
                    }
                    m.push(dst.clone());
                    m.push(pm.clone());
                    let id = format!("{dir}/{i}/{pid}/port{k}={n}{}", fam_id(Some(f)));
                    self.acl(
                        id,
                        ingress,
                        POLICY_ALLOW,
                        m.join(" && "),
                        AclAction::AllowRelated,
                    );
                }
            }
        }
    }
}

fn fam_id(f: Option<Family>) -> String {
    f.map(|f| format!("/{}", f.ovn())).unwrap_or_default()
}

/// The transport part of a match.
fn port_term(protocol: Protocol, port: &PortMatch) -> String {
    let p = protocol.ovn();
    match port {
        PortMatch::Any | PortMatch::Named(_) => p.to_owned(),
        PortMatch::Number(n) => format!("{p}.dst == {n}"),
        PortMatch::Range(a, b) => format!("{p}.dst >= {a} && {p}.dst <= {b}"),
    }
}

/// Whether a change of a pod in namespace `namespace` (with `ns_labels`) and `labels`, can
/// change `policy`'s rows: it is selected, or a peer, or a candidate of a named port.
pub(crate) fn touches(
    policy: &Compiled,
    namespace: &str,
    ns_labels: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    if namespace == policy.namespace && policy.pods.matches(labels) {
        return true;
    }
    policy.rules().any(|(ingress, r)| match &r.peers {
        None => {
            !ingress
                && r.ports
                    .iter()
                    .any(|p| matches!(p.port, PortMatch::Named(_)))
        }
        Some(peers) => peers.iter().any(|p| match p {
            Peer::Pods { namespaces, pods } => {
                let ns_ok = match namespaces {
                    Namespaces::Own => namespace == policy.namespace,
                    Namespaces::Selected(s) => s.matches_namespace(namespace, ns_labels),
                };
                ns_ok && pods.matches(labels)
            }
            Peer::Block { .. } => false,
        }),
    })
}
