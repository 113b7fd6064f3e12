//! The one owner-tag scheme: which `external_ids` mark a row as written by ovnkit, by which
//! component, for which object, and for what.
//!
//! Every row a planner of the stack writes carries these keys in its `external_ids`, and a
//! component garbage-collects exactly the rows carrying its own [`OWNER`] value that it no
//! longer wants. A row without [`OWNER`] (one a user wrote by hand, or another project's) is
//! never read as owned, so never changed or deleted.
//!
//! | key | value | example |
//! |---|---|---|
//! | [`OWNER`] | the component that wrote the row ([`Component`]) | `qos`, `gateway` |
//! | [`OBJECT`] | the object the row is for: `<kind>/<name>`, or `cluster` | `pod/default/web`, `subnet/ls1`, `cluster` |
//! | [`ROLE`] | what the row does for that object | `egress`, `default-route` |
//! | [`ID`] | optional: tells apart rows of one object and role | a node name, a floating IP, a switch |
//!
//! Together with the table they form the row's identity, a [`Key`]: two rows with the same key
//! are one too many (the reconcile core deletes the extra). A row whose [`ROLE`] a component
//! no longer knows is still its own and is deleted when unwanted.
//!
//! Besides the identity, a component may keep data it needs to read back in keys of its own,
//! all under `ovnkit.io/` and listed here so that no two components pick the same name:
//!
//! | key | written by | on | value |
//! |---|---|---|---|
//! | [`EGRESS_CIDR`] | `gateway` | egress policies | the subnet's CIDR (a node plan is derived from the row alone) |
//! | [`EGRESS_NAT`] | `gateway` | egress policies | `true` when the nodes masquerade the subnet |
//! | [`EGRESS_STANDBY`] | `gateway` | active-backup egress policies | join addresses of the healthy backups, comma-separated |
//! | [`PORT_SUBNET`] | `topology` | pod and node ports | the port's subnet (its logical switch) |
//! | [`PORT_CIDR`] | `topology` | pod and node ports | the subnet's CIDRs for the port's addresses, comma-separated |
//! | [`PORT_GATEWAY`] | `topology` | pod and node ports | the gateways for the port's addresses, comma-separated |
//! | [`PORT_MTU`] | `topology` | pod and node ports | the MTU of the pod's interface |
//! | [`PORT_QOS`] | `topology` | pod ports with QoS | the pod's QoS annotations, as a JSON object |
//! | [`SWITCH_CIDR`], [`SWITCH_CIDR6`] | `topology` | subnet switches | the subnet's IPv4 and IPv6 CIDR |
//!
//! The port keys are what a node agent needs to plumb the pod, so that it works from OVN alone.
//!
//! Objects are named by [`Object`]'s constructors so that every component spells them alike.
//!
//! ```
//! use ovn_model::owner::{Component, Key, Object, Scope};
//!
//! let key = Key::new(Component::QOS, Object::pod("default", "web"), "egress");
//! let tags = key.tags();
//! assert_eq!(tags["ovnkit.io/owner"], "qos");
//! assert_eq!(tags["ovnkit.io/object"], "pod/default/web");
//! assert_eq!(Key::from_tags(&tags), Some(key.clone()));
//! // A planner for one pod reconciles the rows of that pod only.
//! assert!(Scope::object(Component::QOS, Object::pod("default", "web")).contains(&key));
//! assert!(!Scope::object(Component::QOS, Object::pod("default", "db")).contains(&key));
//! ```

use std::collections::BTreeMap;
use std::fmt;

use ovsdb::replica::{Replica, ReplicaError};

/// `external_ids` key: the component that wrote the row.
pub const OWNER: &str = "ovnkit.io/owner";
/// `external_ids` key: the object the row is for.
pub const OBJECT: &str = "ovnkit.io/object";
/// `external_ids` key: what the row does for its object.
pub const ROLE: &str = "ovnkit.io/role";
/// `external_ids` key: what tells apart rows of one object and role (optional).
pub const ID: &str = "ovnkit.io/id";

/// Data key of the `gateway` component on egress policies: the subnet's CIDR.
pub const EGRESS_CIDR: &str = "ovnkit.io/cidr";
/// Data key of the `gateway` component on egress policies: `true` when nodes masquerade.
pub const EGRESS_NAT: &str = "ovnkit.io/nat-outgoing";
/// Data key of the `gateway` component on active-backup egress policies: the join addresses
/// of the healthy backup gateways, comma-separated.
pub const EGRESS_STANDBY: &str = "ovnkit.io/standby";

/// Data key of the `topology` component on ports: the port's subnet (its logical switch).
pub const PORT_SUBNET: &str = "ovnkit.io/subnet";
/// Data key of the `topology` component on ports: the CIDRs, comma-separated.
pub const PORT_CIDR: &str = "ovnkit.io/cidr";
/// Data key of the `topology` component on ports: the gateways, comma-separated.
pub const PORT_GATEWAY: &str = "ovnkit.io/gateway";
/// Data key of the `topology` component on ports: the MTU of the pod's interface.
pub const PORT_MTU: &str = "ovnkit.io/mtu";
/// Data key of the `topology` component on pod ports: the QoS annotations, a JSON object.
pub const PORT_QOS: &str = "ovnkit.io/qos";
/// Data key of the `topology` component on subnet switches: the IPv4 CIDR.
pub const SWITCH_CIDR: &str = "ovnkit.io/cidr";
/// Data key of the `topology` component on subnet switches: the IPv6 CIDR.
pub const SWITCH_CIDR6: &str = "ovnkit.io/cidr6";

/// Data key of the `services` component on load balancers: the node ports the row serves
/// (its protocol), comma-separated. A node forwards each to [`LB_NODE_PORT_VIP`] on it.
pub const LB_NODE_PORTS: &str = "ovnkit.io/node-ports";
/// Data key of the `services` component on load balancers with node ports: the address the
/// nodes forward node-port traffic to (a VIP of the row, routed into OVN by each node).
pub const LB_NODE_PORT_VIP: &str = "ovnkit.io/node-port-vip";
/// Data key of the `services` component on load balancers with node ports: the Services'
/// `externalTrafficPolicy`, `Cluster` (the node masquerades the client's address, any
/// endpoint answers) or `Local` (the client's address is kept, only the node's endpoints
/// answer).
pub const LB_TRAFFIC_POLICY: &str = "ovnkit.io/traffic-policy";

/// A component of the stack that owns rows (the value of [`OWNER`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Component(String);

impl Component {
    /// The QoS planner (`qos`).
    pub const QOS: &'static str = "qos";
    /// The egress gateway planner (`gateway`).
    pub const GATEWAY: &'static str = "gateway";
    /// The topology the controller builds: switches, router ports, pod ports (`topology`).
    pub const TOPOLOGY: &'static str = "topology";
    /// Services on OVN load balancers (`services`).
    pub const SERVICES: &'static str = "services";
    /// NetworkPolicies as port groups, address sets and ACLs (`policy`).
    pub const POLICY: &'static str = "policy";
    /// DNS records of Services (`dns`).
    pub const DNS: &'static str = "dns";

    /// The component called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Component(name.into())
    }

    /// Its name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Component {
    fn from(s: &str) -> Self {
        Component(s.to_owned())
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The object a row is for (the value of [`OBJECT`]): `<kind>/<name>` or `cluster`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Object(String);

impl Object {
    /// A pod: `pod/<namespace>/<name>`.
    #[must_use]
    pub fn pod(namespace: &str, name: &str) -> Self {
        Object(format!("pod/{namespace}/{name}"))
    }

    /// A subnet (one logical switch): `subnet/<name>`.
    #[must_use]
    pub fn subnet(name: &str) -> Self {
        Object(format!("subnet/{name}"))
    }

    /// A node: `node/<name>`.
    #[must_use]
    pub fn node(name: &str) -> Self {
        Object(format!("node/{name}"))
    }

    /// A Kubernetes object of another kind: `<kind>/<namespace>/<name>` (`service`,
    /// `networkpolicy`, ...), or `<kind>/<name>` without a namespace.
    #[must_use]
    pub fn of(kind: &str, namespace: Option<&str>, name: &str) -> Self {
        match namespace {
            Some(ns) => Object(format!("{kind}/{ns}/{name}")),
            None => Object(format!("{kind}/{name}")),
        }
    }

    /// The cluster as a whole: `cluster`.
    #[must_use]
    pub fn cluster() -> Self {
        Object("cluster".to_owned())
    }

    /// An object named exactly `tag` (as read from a row).
    pub fn from_tag(tag: impl Into<String>) -> Self {
        Object(tag.into())
    }

    /// The tag value.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The kind (`pod`, `subnet`, ..., `cluster`).
    #[must_use]
    pub fn kind(&self) -> &str {
        self.0.split('/').next().unwrap_or_default()
    }

    /// What follows the kind (`default/web` for a pod), empty for `cluster`.
    #[must_use]
    pub fn name(&self) -> &str {
        self.0.split_once('/').map_or("", |(_, n)| n)
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The identity of an owned row in its table: owner, object, role and optional id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// The component that owns the row.
    pub owner: Component,
    /// The object the row is for.
    pub object: Object,
    /// What the row does.
    pub role: String,
    /// What tells it apart from rows of the same object and role.
    pub id: Option<String>,
}

impl Key {
    /// The key of `owner`'s row for `object` doing `role`.
    pub fn new(owner: impl Into<Component>, object: Object, role: impl Into<String>) -> Self {
        Key {
            owner: owner.into(),
            object,
            role: role.into(),
            id: None,
        }
    }

    /// The same key with an id.
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The `external_ids` entries that carry the key.
    #[must_use]
    pub fn tags(&self) -> BTreeMap<String, String> {
        let mut tags = BTreeMap::from([
            (OWNER.to_owned(), self.owner.0.clone()),
            (OBJECT.to_owned(), self.object.0.clone()),
            (ROLE.to_owned(), self.role.clone()),
        ]);
        if let Some(id) = &self.id {
            tags.insert(ID.to_owned(), id.clone());
        }
        tags
    }

    /// The key `external_ids` carry; `None` for a row no component owns (no [`OWNER`], or an
    /// owned row missing its [`OBJECT`] or [`ROLE`], which no version of the stack writes).
    #[must_use]
    pub fn from_tags(ids: &BTreeMap<String, String>) -> Option<Self> {
        Some(Key {
            owner: Component(ids.get(OWNER)?.clone()),
            object: Object(ids.get(OBJECT)?.clone()),
            role: ids.get(ROLE)?.clone(),
            id: ids.get(ID).cloned(),
        })
    }
}

impl fmt::Display for Key {
    /// `owner object role[ id]`, e.g. `qos pod/default/web egress`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.owner, self.object, self.role)?;
        if let Some(id) = &self.id {
            write!(f, " {id}")?;
        }
        Ok(())
    }
}

/// Indexes `replica` on the owner tags (`external_ids:ovnkit.io/object` and
/// `external_ids:ovnkit.io/owner`) in every table with `external_ids`, so that
/// [`Typed::owned`](crate::snapshot::Typed::owned) finds a scope's rows without a scan: what a
/// controller with hundreds of thousands of owned rows needs.
///
/// # Errors
/// What [`Replica::add_index`] returns (never, for a replica of a schema whose `external_ids`
/// columns are maps).
pub fn index(replica: &mut Replica) -> Result<(), ReplicaError> {
    let tables: Vec<String> = replica
        .layout()
        .tables
        .iter()
        .filter(|t| t.column_id("external_ids").is_some())
        .map(|t| t.name.clone())
        .collect();
    for table in tables {
        for key in [OBJECT, OWNER] {
            replica.add_index(&table, &[&format!("external_ids:{key}")])?;
        }
    }
    Ok(())
}

/// The rows one reconcile is responsible for: every row of a component, or only those of one
/// of its objects. Rows outside the scope are neither matched nor deleted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    /// The component.
    pub owner: Component,
    /// The object, when the reconcile is for one object only.
    pub object: Option<Object>,
}

impl Scope {
    /// Every row of `owner`.
    pub fn component(owner: impl Into<Component>) -> Self {
        Scope {
            owner: owner.into(),
            object: None,
        }
    }

    /// The rows `owner` wrote for `object`.
    pub fn object(owner: impl Into<Component>, object: Object) -> Self {
        Scope {
            owner: owner.into(),
            object: Some(object),
        }
    }

    /// Whether a row with `key` is in the scope.
    #[must_use]
    pub fn contains(&self, key: &Key) -> bool {
        key.owner == self.owner && self.object.as_ref().is_none_or(|o| *o == key.object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_rows_without_an_owner_have_none() {
        let key = Key::new(Component::GATEWAY, Object::subnet("ls1"), "egress").with_id("node1");
        assert_eq!(Key::from_tags(&key.tags()), Some(key.clone()));
        assert_eq!(key.to_string(), "gateway subnet/ls1 egress node1");
        let hand = BTreeMap::from([("owner".to_owned(), "someone".to_owned())]);
        assert_eq!(Key::from_tags(&hand), None);
        let half = BTreeMap::from([(OWNER.to_owned(), "qos".to_owned())]);
        assert_eq!(Key::from_tags(&half), None);
    }

    #[test]
    fn objects_split_into_kind_and_name() {
        let p = Object::pod("default", "web");
        assert_eq!((p.kind(), p.name()), ("pod", "default/web"));
        assert_eq!(Object::cluster().kind(), "cluster");
        assert_eq!(Object::cluster().name(), "");
        assert_eq!(
            Object::of("service", Some("ns"), "web").as_str(),
            "service/ns/web"
        );
    }

    #[test]
    fn scopes_select_by_owner_and_object() {
        let key = Key::new(Component::QOS, Object::pod("a", "b"), "egress");
        assert!(Scope::component(Component::QOS).contains(&key));
        assert!(!Scope::component(Component::GATEWAY).contains(&key));
        assert!(Scope::object(Component::QOS, Object::pod("a", "b")).contains(&key));
    }
}
