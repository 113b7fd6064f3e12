//! Nodes to join ports: each node gets a join address (its `ovn0`, from `ipam`, the join
//! subnet's gateway being the router's join port) and a port `node-<name>` on the join switch;
//! Kube-OVN's node annotations are written back.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Node;

use super::annotations as ann;
use super::source::{Kind, ObjectRef};

/// Annotation (input, ovnkit's) naming the node's OVN chassis (`ovn-controller`'s
/// `system-id`); the node's name when absent.
pub const CHASSIS: &str = "ovnkit.io/chassis";

/// What the controller reads from a Node object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// Its name.
    pub name: String,
    /// Its UID.
    pub uid: Option<String>,
    /// Its OVN chassis.
    pub chassis: String,
    /// Whether it is ready (a node without conditions, as in a manifest, is).
    pub ready: bool,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
}

impl NodeView {
    /// The view of a Node object (`None` without a name).
    #[must_use]
    pub fn of(node: &Node) -> Option<Self> {
        let name = node.metadata.name.clone()?;
        let annotations = node.metadata.annotations.clone().unwrap_or_default();
        let chassis = annotations
            .get(CHASSIS)
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| name.clone());
        let ready = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .is_none_or(|c| c.status == "True");
        Some(NodeView {
            uid: node.metadata.uid.clone(),
            chassis,
            ready,
            annotations,
            name,
        })
    }

    /// `node-<name>`: its port on the join switch.
    #[must_use]
    pub fn port_name(&self) -> String {
        format!("node-{}", self.name)
    }

    /// The object, for events and write-backs.
    #[must_use]
    pub fn object(&self) -> ObjectRef {
        let o = ObjectRef::cluster(Kind::Node, &self.name);
        match &self.uid {
            Some(u) => o.with_uid(u.clone()),
            None => o,
        }
    }
}

/// The annotations written back on a node with a join address.
#[must_use]
pub fn status(
    node: &NodeView,
    ip: IpAddr,
    mac: &str,
    join: (&str, ipnet::IpNet, IpAddr),
) -> BTreeMap<String, Option<String>> {
    let (switch, cidr, gateway) = join;
    BTreeMap::from([
        (ann::IP_ADDRESS.to_owned(), Some(ip.to_string())),
        (ann::MAC_ADDRESS.to_owned(), Some(mac.to_owned())),
        (ann::OUT_CIDR.to_owned(), Some(cidr.to_string())),
        (ann::GATEWAY.to_owned(), Some(gateway.to_string())),
        (ann::PORT_NAME.to_owned(), Some(node.port_name())),
        (ann::LOGICAL_SWITCH.to_owned(), Some(switch.to_owned())),
    ])
}
