//! What the planner reads: [`Observed`], the rows it owns plus the two parents it hangs them
//! on and the `NB_Global` options, from a replica snapshot ([`Observed::from_snapshot`]) or
//! from typed rows ([`Observed::from_rows`], for tests).

use std::collections::BTreeMap;

use ovn_model::nb::{self, LogicalRouter, LogicalRouterPort, NbGlobal};
use ovn_model::owner::{Component, Scope};
use ovn_model::reconcile::OwnedRow;
use ovn_model::snapshot::{self, Typed};
use ovsdb::monitor::MonitorRequest;
use ovsdb::{Table, Uuid};

use crate::config::Cluster;

/// The typed NB rows the planner reads, as slices (tests, or rows read some other way).
#[derive(Debug, Clone, Copy, Default)]
pub struct ObservedRows<'a> {
    /// `Logical_Router` rows (the cluster router is found by name).
    pub routers: &'a [LogicalRouter],
    /// `Logical_Router_Port` rows (the native gateway port is found by name).
    pub router_ports: &'a [LogicalRouterPort],
    /// `Logical_Router_Policy` rows.
    pub policies: &'a [nb::LogicalRouterPolicy],
    /// `Logical_Router_Static_Route` rows.
    pub static_routes: &'a [nb::LogicalRouterStaticRoute],
    /// `NAT` rows.
    pub nats: &'a [nb::Nat],
    /// `Gateway_Chassis` rows.
    pub gateway_chassis: &'a [nb::GatewayChassis],
    /// The `NB_Global` row (its options carry BFD timers).
    pub nb_global: &'a [NbGlobal],
}

/// The `NB_Global` row's UUID and options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalOptions {
    /// The row's UUID.
    pub uuid: Uuid,
    /// Its options.
    pub options: BTreeMap<String, String>,
}

impl GlobalOptions {
    fn of(g: &NbGlobal) -> Self {
        GlobalOptions {
            uuid: g.uuid,
            options: g.options.clone(),
        }
    }
}

/// The observed state the planner needs: the cluster router, the native gateway port (if the
/// cluster has one), the rows the `gateway` component owns (rows without its owner tags are
/// never read into here, so never touched) and `NB_Global`'s options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// The cluster router's UUID.
    pub router: Option<Uuid>,
    /// The native gateway's router port's UUID.
    pub gateway_port: Option<Uuid>,
    /// The rows the planner owns.
    pub owned: Vec<OwnedRow>,
    /// `NB_Global`.
    pub nb_global: Option<GlobalOptions>,
}

/// The planner's owner scope: every row of the `gateway` component.
fn scope() -> Scope {
    Scope::component(Component::GATEWAY)
}

impl Observed {
    /// The OVN_Northbound tables [`Observed::from_snapshot`] reads.
    pub const TABLES: [&'static str; 7] = [
        LogicalRouter::TABLE,
        LogicalRouterPort::TABLE,
        nb::LogicalRouterPolicy::TABLE,
        nb::LogicalRouterStaticRoute::TABLE,
        nb::Nat::TABLE,
        nb::GatewayChassis::TABLE,
        NbGlobal::TABLE,
    ];

    /// A monitor of [`Observed::TABLES`], every column.
    #[must_use]
    pub fn monitor() -> MonitorRequest {
        snapshot::monitor(nb::DATABASE, &Self::TABLES)
    }

    /// The observed state in an OVN_Northbound snapshot (monitoring at least
    /// [`Observed::TABLES`]).
    #[must_use]
    pub fn from_snapshot(nb: &Typed<'_>, cluster: &Cluster) -> Self {
        let scope = scope();
        let mut owned = nb.owned::<nb::LogicalRouterPolicy>(&scope);
        owned.extend(nb.owned::<nb::LogicalRouterStaticRoute>(&scope));
        owned.extend(nb.owned::<nb::Nat>(&scope));
        owned.extend(nb.owned::<nb::GatewayChassis>(&scope));
        Observed {
            router: nb.uuid_by_name::<LogicalRouter>(&cluster.router),
            gateway_port: cluster
                .native
                .as_ref()
                .and_then(|n| nb.uuid_by_name::<LogicalRouterPort>(&n.port)),
            owned,
            nb_global: nb.rows::<NbGlobal>().next().map(|g| GlobalOptions::of(&g)),
        }
    }

    /// The observed state in typed `rows`, for `cluster`.
    #[must_use]
    pub fn from_rows(cluster: &Cluster, rows: &ObservedRows<'_>) -> Self {
        let port = cluster.native.as_ref().map(|n| n.port.as_str());
        let scope = scope();
        let owned = (OwnedRow::from_rows(rows.policies).into_iter())
            .chain(OwnedRow::from_rows(rows.static_routes))
            .chain(OwnedRow::from_rows(rows.nats))
            .chain(OwnedRow::from_rows(rows.gateway_chassis))
            .filter(|o| scope.contains(&o.key))
            .collect();
        Observed {
            router: rows
                .routers
                .iter()
                .find(|r| r.name == cluster.router)
                .map(|r| r.uuid),
            gateway_port: rows
                .router_ports
                .iter()
                .find(|p| Some(p.name.as_str()) == port)
                .map(|p| p.uuid),
            owned,
            nb_global: rows.nb_global.first().map(GlobalOptions::of),
        }
    }
}
