//! The `external_ids` every row the planner creates carries, so that it finds its own rows
//! among the observed ones (and never touches anyone else's).

use std::collections::BTreeMap;

use crate::intent::PodId;

/// `external_ids` key: the pod the row is for, `namespace/name`.
pub const POD: &str = "ovnkit.io/pod";
/// `external_ids` key: what the row does ([`Role`]).
pub const ROLE: &str = "ovnkit.io/qos";

/// What a row the planner created does (the value of `ovnkit.io/qos`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// OVN NB `QoS`: limit on traffic from the pod.
    Egress,
    /// OVN NB `QoS`: limit on traffic toward the pod.
    Ingress,
    /// OVN NB `QoS`: DSCP marking of the pod's packets.
    Dscp,
    /// OVS `QoS` on the pod's port (`linux-htb` or `linux-netem`).
    PortQos,
    /// OVS `Queue` of the pod's htb `QoS`.
    Queue,
}

impl Role {
    /// The tag value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Egress => "egress",
            Role::Ingress => "ingress",
            Role::Dscp => "dscp",
            Role::PortQos => "port",
            Role::Queue => "queue",
        }
    }

    /// The role named by a tag value.
    #[must_use]
    pub fn from_tag(s: &str) -> Option<Self> {
        [
            Role::Egress,
            Role::Ingress,
            Role::Dscp,
            Role::PortQos,
            Role::Queue,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// The `external_ids` of a row made for `pod` with `role`.
#[must_use]
pub fn external_ids(pod: &PodId, role: Role) -> BTreeMap<String, String> {
    BTreeMap::from([
        (POD.to_owned(), pod.to_string()),
        (ROLE.to_owned(), role.as_str().to_owned()),
    ])
}

/// Whether `ids` mark a row the planner made for `pod`; its role if so (`None` inside for a
/// role this version does not know: such a row is stale and removed).
#[must_use]
pub fn owned_by(ids: &BTreeMap<String, String>, pod: &PodId) -> Option<Option<Role>> {
    let owner = ids.get(POD)?;
    (*owner == pod.to_string()).then(|| ids.get(ROLE).and_then(|r| Role::from_tag(r)))
}
