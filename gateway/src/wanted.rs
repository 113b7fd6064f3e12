//! Wanted rows: typed `ovn-model` rows the intents ask for ([`Wanted`]) with their owner key
//! and reason ([`Draft`]), then made into the reconcile core's [`Want`]s (tags added, encoded
//! strictly, the parent named).

use std::collections::BTreeMap;

use ovn_model::nb::{self, LogicalRouter, LogicalRouterPort};
use ovn_model::owner::{Component, Key, Object};
use ovn_model::plan::Target;
use ovn_model::reconcile::Want;

use crate::config::Cluster;
use crate::error::PlanError;
use crate::observed::Observed;

/// What a row the planner owns does (the value of `ovnkit.io/role`).
pub(crate) mod role {
    /// `Logical_Router_Policy` `allow` for cluster-internal destinations (never rerouted).
    pub(crate) const INTERNAL: &str = "internal";
    /// `Logical_Router_Policy` `reroute` of a subnet's traffic to gateway join addresses.
    pub(crate) const EGRESS: &str = "egress";
    /// `Logical_Router_Static_Route` default route.
    pub(crate) const DEFAULT_ROUTE: &str = "default-route";
    /// `NAT` `snat` of a subnet to the native gateway's address.
    pub(crate) const SNAT: &str = "snat";
    /// `NAT` `dnat_and_snat` of a floating IP.
    pub(crate) const FIP: &str = "fip";
    pub(crate) const POD_SNAT: &str = "pod-snat";
    /// `Gateway_Chassis` of the native gateway port.
    pub(crate) const CHASSIS: &str = "chassis";
}

/// The key of a cluster-wide row doing `role`.
pub(crate) fn cluster_key(role: &str) -> Key {
    Key::new(Component::GATEWAY, Object::cluster(), role)
}

/// The key of `subnet`'s row doing `role`.
pub(crate) fn subnet_key(subnet: &str, role: &str) -> Key {
    Key::new(Component::GATEWAY, Object::subnet(subnet), role)
}

/// A typed row the intents ask for.
pub(crate) enum Wanted {
    Policy(nb::LogicalRouterPolicy),
    Route(nb::LogicalRouterStaticRoute),
    Nat(nb::Nat),
    Chassis(nb::GatewayChassis),
}

impl Wanted {
    pub(crate) fn external_ids(&mut self) -> &mut BTreeMap<String, String> {
        match self {
            Wanted::Policy(r) => &mut r.external_ids,
            Wanted::Route(r) => &mut r.external_ids,
            Wanted::Nat(r) => &mut r.external_ids,
            Wanted::Chassis(r) => &mut r.external_ids,
        }
    }
}

/// A wanted row with its key and reason, before encoding.
pub(crate) struct Draft {
    pub(crate) key: Key,
    pub(crate) value: Wanted,
    pub(crate) what: String,
}

pub(crate) fn want(key: Key, value: Wanted, what: String) -> Draft {
    Draft { key, value, what }
}

/// The drafts as the core's wants, each under its parent: the router or the native gateway
/// port, by UUID when observed, else by name (the reconcile step may create it; if it exists
/// nowhere, the transaction fails, naming it).
pub(crate) fn encode(
    cluster: &Cluster,
    observed: &Observed,
    drafts: Vec<Draft>,
) -> Result<Vec<Want>, PlanError> {
    let router: Target<LogicalRouter> = match observed.router {
        Some(u) => u.into(),
        None => cluster.router.as_str().into(),
    };
    let port: Target<LogicalRouterPort> = match (observed.gateway_port, &cluster.native) {
        (Some(u), _) => u.into(),
        (None, Some(n)) => n.port.as_str().into(),
        (None, None) => String::new().into(),
    };
    drafts
        .into_iter()
        .map(|d| {
            let r = match &d.value {
                Wanted::Policy(row) => Want::child(d.key, row, router.clone(), d.what.clone()),
                Wanted::Route(row) => Want::child(d.key, row, router.clone(), d.what.clone()),
                Wanted::Nat(row) => Want::child(d.key, row, router.clone(), d.what.clone()),
                Wanted::Chassis(row) => Want::child(d.key, row, port.clone(), d.what.clone()),
            };
            r.map_err(|source| PlanError::Encode {
                what: d.what,
                source: Box::new(source),
            })
        })
        .collect()
}
