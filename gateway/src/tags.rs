//! The `external_ids` that mark the rows the planner owns, so that it finds them among the
//! observed rows and never touches anyone else's.

use std::collections::BTreeMap;

use ovsdb::{Atom, Datum, Row};

/// `external_ids` key on every row the planner owns: what the row does ([`Role`]).
pub const ROLE: &str = "ovnkit.io/gateway";
/// `external_ids` key: the subnet a row is for.
pub const SUBNET: &str = "ovnkit.io/subnet";
/// `external_ids` key: the node a row is for (distributed policies, gateway chassis).
pub const NODE: &str = "ovnkit.io/node";
/// `external_ids` key on egress policies: the subnet's CIDR (the node plan is derived from it).
pub const CIDR: &str = "ovnkit.io/cidr";
/// `external_ids` key on egress policies: `true` when the nodes masquerade the subnet.
pub const NAT: &str = "ovnkit.io/nat-outgoing";
/// `external_ids` key on active-backup egress policies: the join addresses of the healthy
/// backup gateways, comma-separated. They hold the active node's route and masquerade too, so
/// that a failover only changes the policy's next hop.
pub const STANDBY: &str = "ovnkit.io/standby";
/// `external_ids` key on floating IPs: the external address.
pub const FIP: &str = "ovnkit.io/fip";

/// What a row the planner owns does (the value of [`ROLE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// `Logical_Router_Policy` `allow` for cluster-internal destinations (never rerouted).
    Internal,
    /// `Logical_Router_Policy` `reroute` of a subnet's traffic to gateway join addresses.
    Egress,
    /// `Logical_Router_Static_Route` default route.
    DefaultRoute,
    /// `NAT` `snat` of a subnet to the native gateway's address.
    Snat,
    /// `NAT` `dnat_and_snat` of a floating IP.
    Fip,
    /// `Gateway_Chassis` of the native gateway port.
    Chassis,
}

impl Role {
    /// The tag value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Internal => "internal",
            Role::Egress => "egress",
            Role::DefaultRoute => "default-route",
            Role::Snat => "snat",
            Role::Fip => "fip",
            Role::Chassis => "chassis",
        }
    }

    /// The role named by a tag value.
    #[must_use]
    pub fn from_tag(s: &str) -> Option<Self> {
        [
            Role::Internal,
            Role::Egress,
            Role::DefaultRoute,
            Role::Snat,
            Role::Fip,
            Role::Chassis,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// The identity of an owned row: its role and what it is for. Two owned rows with the same
/// key are one too many (the planner deletes the extra).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// The role.
    pub role: Role,
    /// The subnet (subnet-scoped rows).
    pub subnet: Option<String>,
    /// The node (per-node rows).
    pub node: Option<String>,
    /// The floating IP (floating-IP rows).
    pub fip: Option<String>,
}

impl Key {
    /// A key with only a role.
    #[must_use]
    pub fn global(role: Role) -> Self {
        Key {
            role,
            subnet: None,
            node: None,
            fip: None,
        }
    }

    /// A key for `subnet`.
    #[must_use]
    pub fn subnet(role: Role, subnet: &str) -> Self {
        Key {
            subnet: Some(subnet.to_owned()),
            ..Key::global(role)
        }
    }

    /// The `external_ids` that carry this key.
    #[must_use]
    pub fn external_ids(&self) -> BTreeMap<String, String> {
        let mut ids = BTreeMap::from([(ROLE.to_owned(), self.role.as_str().to_owned())]);
        for (k, v) in [(SUBNET, &self.subnet), (NODE, &self.node), (FIP, &self.fip)] {
            if let Some(v) = v {
                ids.insert(k.to_owned(), v.clone());
            }
        }
        ids
    }

    /// The key carried by `ids`; `None` for a row the planner does not own. A row tagged with
    /// a role this version does not know gets no key either (it is left alone).
    #[must_use]
    pub fn from_external_ids(ids: &BTreeMap<String, String>) -> Option<Self> {
        let role = Role::from_tag(ids.get(ROLE)?)?;
        Some(Key {
            role,
            subnet: ids.get(SUBNET).cloned(),
            node: ids.get(NODE).cloned(),
            fip: ids.get(FIP).cloned(),
        })
    }
}

/// The string map in `column` of `row` (empty when missing or not a string map).
#[must_use]
pub fn string_map(row: &Row, column: &str) -> BTreeMap<String, String> {
    row.get(column)
        .and_then(Datum::as_map)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// A string map as a datum.
#[must_use]
pub fn map_datum(map: &BTreeMap<String, String>) -> Datum {
    Datum::map(
        map.iter()
            .map(|(k, v)| (Atom::from(k.as_str()), Atom::from(v.as_str()))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_external_ids_and_foreign_rows_have_none() {
        let key = Key {
            node: Some("node1".into()),
            ..Key::subnet(Role::Egress, "ls1")
        };
        assert_eq!(Key::from_external_ids(&key.external_ids()), Some(key));
        let foreign = BTreeMap::from([("owner".to_owned(), "someone".to_owned())]);
        assert_eq!(Key::from_external_ids(&foreign), None);
        let newer = BTreeMap::from([(ROLE.to_owned(), "future-role".to_owned())]);
        assert_eq!(Key::from_external_ids(&newer), None);
    }
}
