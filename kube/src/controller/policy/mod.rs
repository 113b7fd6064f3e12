//! Kubernetes NetworkPolicies as OVN port groups, address sets and ACLs (Kube-OVN's layout
//! and priorities), built from a checked policy ([`spec::compile`]) and the pods and
//! namespaces it sees ([`rows::build`]). Pure: the state glue (`state/policies.rs`) diffs
//! the rows against what OVN holds, one transaction per step.
//!
//! # Rows of one policy
//!
//! Every row is owned by component `policy`, object `networkpolicy/<namespace>/<name>`, so
//! a policy's rows are found (and collected when it goes) by its owner tags.
//!
//! | row | name | role, id | holds |
//! |---|---|---|---|
//! | `Port_Group` | `np_<16 hex>` | `port-group` | the logical switch ports of the pods the policy selects |
//! | `Address_Set` | `np_<hex>_i<rule>_<peer>_4` (`e` for egress, `_6` for IPv6) | `address-set`, `ingress/<rule>/peer<peer>/ip4` | the addresses of the pods a `podSelector`/`namespaceSelector` peer selects |
//! | `Address_Set` | `np_<hex>_i<rule>_n<port>_<number>_4` | `address-set`, `ingress/<rule>/port<port>=<number>/ip4` | named ports: the pods on which the named port is `<number>` (selected pods for ingress, peers for egress) |
//! | `ACL` (on the port group) | - | `acl`, what it does (`ingress/0/peer1/port0/ip4`) | see below |
//!
//! Port group and address set names are `np_` and 16 hex digits of an FNV-1a hash of
//! `<namespace>/<name>`, plus a suffix: OVN wants names of letters, digits, `_` (and `.`),
//! which a policy's name (`allow-web`) is not, and `$name`/`@name` in matches must parse.
//! Peers of kind `ipBlock` are written into the ACL's match (`ip4.src == 10.0.0.0/8 &&
//! ip4.src != 10.0.1.0/24`), not into address sets: they change only with the policy.
//!
//! # ACLs and priorities
//!
//! The ACLs sit on the policy's port group, so they apply to every switch its pods are on.
//! Ingress ACLs are `to-lport` and match `outport == @pg`; egress ACLs are `from-lport`,
//! match `inport == @pg` and are applied after load balancing (`options:apply-after-lb`), so
//! that they see the backend a Service picked.
//!
//! | priority | direction | match | action | why |
//! |---|---|---|---|---|
//! | 3000 | to-lport | `outport == @pg && ip4.src == <join subnet>` | allow-related | nodes (kubelet health checks) always reach their pods; it also makes every policy stateful |
//! | 2001 | both | the pod group, a peer, a port | allow-related | what a rule allows; replies come back through conntrack |
//! | 2000 | to-lport | `outport == @pg && ip` | drop | ingress default deny, when the policy isolates ingress |
//! | 2000 | from-lport | `inport == @pg && ip` | drop | egress default deny, when the policy isolates egress |
//! | 1000/1001 | to-lport | (on a private subnet's switch, see `topology`) | drop / allow-related | unchanged: a policy's allow at 2001 takes precedence |
//!
//! A pod selected by several policies is in several port groups: it is isolated in a
//! direction when any of them isolates that direction (a drop at 2000), and any allow of any
//! of them lets traffic through (2001 > 2000), which is the union Kubernetes specifies. Since
//! all allows are `allow-related`, replies to allowed connections pass in both directions
//! whatever the other direction's policies say. ARP never matches `ip`; IPv6 neighbour
//! discovery is let through by OVN before ACLs. DNS (port 53) is not special: as in
//! Kubernetes, a pod whose egress is isolated reaches a DNS server only if a rule allows it.
//!
//! # Semantics kept from Kubernetes
//!
//! - `policyTypes` absent: `Ingress`, plus `Egress` when the policy has egress rules.
//! - Empty `podSelector`: every pod of the policy's namespace; empty `from`/`to`: anyone;
//!   empty `ports`: every port of every protocol; a port without protocol is TCP.
//! - A peer with both `namespaceSelector` and `podSelector` selects those pods in those
//!   namespaces; `namespaceSelector` alone, every pod there; `podSelector` alone, pods of the
//!   policy's namespace. Namespaces always carry `kubernetes.io/metadata.name`.
//! - `endPort` makes a range; a named port is resolved per pod from its container ports
//!   (name and protocol), so one name may be several numbers: one ACL per number, over an
//!   address set of the pods that use it. On egress, named ports resolve on pod peers only
//!   (an `ipBlock` peer with a named port allows nothing on it).
//! - Pods join and leave port groups and address sets as their labels change (and
//!   namespaces' labels for namespace selectors); ACLs change only when the policy does, or
//!   when a named port gains or loses a number.
//!
//! # Bad policies
//!
//! A policy the API server would refuse (a bad CIDR, an `except` outside its `cidr`, an
//! unknown selector operator or protocol, a port out of range, `endPort` below `port`) gets
//! a warning Event naming the field and why, and nothing is written for it: its rows, if a
//! previous version had some, stay as they were (as the API server would keep the previous
//! version). A named port that no candidate pod declares is legal (pods may come later): it
//! gets an Event and allows nothing, and the rest of the policy applies.

pub(crate) mod rows;
mod selector;
mod spec;
#[cfg(test)]
mod tests;

use ovn_model::owner::{Component, Key, Object};

pub(crate) use rows::{Cluster, Member, NamespaceView, Rows, build, touches};
pub(crate) use selector::Selector;
pub(crate) use spec::{Compiled, SpecError, compile};

/// Priority of the ACLs that allow what rules allow (Kube-OVN's `IngressAllowPriority` and
/// `EgressAllowPriority`).
pub(crate) const POLICY_ALLOW: u16 = 2001;
/// Priority of the per-direction default drop of isolated pods.
pub(crate) const DEFAULT_DROP: u16 = 2000;
/// Priority of the allow from the join subnet (nodes).
pub(crate) const NODES_ALLOW: u16 = 3000;

/// The owner object of policy `namespace/name`'s rows.
pub(crate) fn object(namespace: &str, name: &str) -> Object {
    Object::of("networkpolicy", Some(namespace), name)
}

/// The key of a row of policy `namespace/name`.
pub(crate) fn key(namespace: &str, name: &str, role: &str) -> Key {
    Key::new(Component::POLICY, object(namespace, name), role)
}
