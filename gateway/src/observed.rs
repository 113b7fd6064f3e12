//! What the planner reads: [`Observed`], the rows it owns plus the two parents it hangs them
//! on, from `ovn-model`'s typed NB rows ([`ObservedRows`]) or raw `ovsdb` rows; and
//! [`Query`], the one `select` transaction that fetches them.

use std::collections::BTreeSet;

use ovn_model::nb;
use ovsdb::{Condition, Row, Select, SelectHandle, Table, TransactOutcome, Transaction, Uuid};

use crate::config::Cluster;
use crate::tags::Key;

/// The child tables the planner writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChildTable {
    /// `Logical_Router_Policy` (in `Logical_Router.policies`).
    Policy,
    /// `Logical_Router_Static_Route` (in `Logical_Router.static_routes`).
    StaticRoute,
    /// `NAT` (in `Logical_Router.nat`).
    Nat,
    /// `Gateway_Chassis` (in `Logical_Router_Port.gateway_chassis`).
    GatewayChassis,
}

impl ChildTable {
    /// Every child table.
    pub const ALL: [ChildTable; 4] = [
        ChildTable::Policy,
        ChildTable::StaticRoute,
        ChildTable::Nat,
        ChildTable::GatewayChassis,
    ];

    /// The table's name.
    #[must_use]
    pub const fn table(self) -> &'static str {
        match self {
            ChildTable::Policy => nb::LogicalRouterPolicy::TABLE,
            ChildTable::StaticRoute => nb::LogicalRouterStaticRoute::TABLE,
            ChildTable::Nat => nb::Nat::TABLE,
            ChildTable::GatewayChassis => nb::GatewayChassis::TABLE,
        }
    }

    /// The parent's table and the column that holds the reference.
    #[must_use]
    pub const fn parent(self) -> (&'static str, &'static str) {
        match self {
            ChildTable::Policy => (nb::LogicalRouter::TABLE, "policies"),
            ChildTable::StaticRoute => (nb::LogicalRouter::TABLE, "static_routes"),
            ChildTable::Nat => (nb::LogicalRouter::TABLE, "nat"),
            ChildTable::GatewayChassis => (nb::LogicalRouterPort::TABLE, "gateway_chassis"),
        }
    }

    /// The child table named `name`.
    #[must_use]
    pub fn from_table(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.table() == name)
    }
}

/// A parent row (the router or the gateway port): its UUID, name and the references it holds
/// in the columns the planner uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    /// The row's UUID.
    pub uuid: Uuid,
    /// Its name.
    pub name: String,
    /// The UUIDs it refers to in `policies`, `static_routes` and `nat`, or `gateway_chassis`.
    pub children: BTreeSet<Uuid>,
}

impl Parent {
    /// The router's references.
    #[must_use]
    pub fn router(r: &nb::LogicalRouter) -> Self {
        let children = (r.policies.iter().filter_map(|x| x.uuid()))
            .chain(r.static_routes.iter().filter_map(|x| x.uuid()))
            .chain(r.nat.iter().filter_map(|x| x.uuid()))
            .collect();
        Parent {
            uuid: r.uuid,
            name: r.name.clone(),
            children,
        }
    }

    /// The router port's references.
    #[must_use]
    pub fn port(p: &nb::LogicalRouterPort) -> Self {
        Parent {
            uuid: p.uuid,
            name: p.name.clone(),
            children: p.gateway_chassis.iter().filter_map(|x| x.uuid()).collect(),
        }
    }
}

/// A row the planner owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    /// Its table.
    pub table: ChildTable,
    /// Its UUID.
    pub uuid: Uuid,
    /// What it is for (from its `external_ids`).
    pub key: Key,
    /// Its columns, encoded from the typed row (empty when the row holds a value the model
    /// refuses to write, such as an enum value of a newer schema: every wanted column then
    /// differs and is rewritten).
    pub row: Row,
}

/// The typed NB rows the planner reads, as slices (from a snapshot, a `select`, or tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct ObservedRows<'a> {
    /// `Logical_Router` rows (the cluster router is found by name).
    pub routers: &'a [nb::LogicalRouter],
    /// `Logical_Router_Port` rows (the native gateway port is found by name).
    pub router_ports: &'a [nb::LogicalRouterPort],
    /// `Logical_Router_Policy` rows.
    pub policies: &'a [nb::LogicalRouterPolicy],
    /// `Logical_Router_Static_Route` rows.
    pub static_routes: &'a [nb::LogicalRouterStaticRoute],
    /// `NAT` rows.
    pub nats: &'a [nb::Nat],
    /// `Gateway_Chassis` rows.
    pub gateway_chassis: &'a [nb::GatewayChassis],
    /// The `NB_Global` row (its options carry BFD timers).
    pub nb_global: &'a [nb::NbGlobal],
}

/// The `NB_Global` row's UUID and options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalOptions {
    /// The row's UUID.
    pub uuid: Uuid,
    /// Its options.
    pub options: std::collections::BTreeMap<String, String>,
}

/// The observed state the planner needs: the cluster router, the native gateway port (if the
/// cluster has one) and the rows the planner owns (rows without its tags are never read into
/// here, so never touched).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// The cluster router.
    pub router: Option<Parent>,
    /// The native gateway's router port.
    pub gateway_port: Option<Parent>,
    /// The owned rows.
    pub owned: Vec<Owned>,
    /// `NB_Global` (read only when the native gateway sets BFD timers).
    pub nb_global: Option<GlobalOptions>,
}

impl Observed {
    /// The observed state in typed `rows`, for `cluster`.
    #[must_use]
    pub fn from_rows(cluster: &Cluster, rows: &ObservedRows<'_>) -> Self {
        let mut o = Observed::default();
        if let Some(r) = rows.routers.iter().find(|r| r.name == cluster.router) {
            o.router = Some(Parent::router(r));
        }
        let port = cluster.native.as_ref().map(|n| n.port.as_str());
        if let Some(p) = rows
            .router_ports
            .iter()
            .find(|p| Some(p.name.as_str()) == port)
        {
            o.gateway_port = Some(Parent::port(p));
        }
        for p in rows.policies {
            o.own(ChildTable::Policy, p);
        }
        for r in rows.static_routes {
            o.own(ChildTable::StaticRoute, r);
        }
        for n in rows.nats {
            o.own(ChildTable::Nat, n);
        }
        for g in rows.gateway_chassis {
            o.own(ChildTable::GatewayChassis, g);
        }
        if let Some(g) = rows.nb_global.first() {
            o.nb_global = Some(GlobalOptions {
                uuid: g.uuid,
                options: g.options.clone(),
            });
        }
        o
    }

    fn own<T: Table + HasExternalIds>(&mut self, table: ChildTable, row: &T) {
        let Some(key) = Key::from_external_ids(row.external_ids()) else {
            return;
        };
        self.owned.push(Owned {
            table,
            uuid: row.uuid(),
            key,
            row: row.to_row().unwrap_or_default(),
        });
    }

    /// Adds a raw row of `table` as read from the database (with `_uuid`), decoded forgivingly
    /// with `ovn-model`: the router and gateway port by name, child rows when they carry the
    /// planner's tags. Other rows are ignored.
    pub fn add_row(&mut self, cluster: &Cluster, table: &str, row: &Row) {
        let uuid = row.uuid().unwrap_or(Uuid::NIL);
        match table {
            nb::LogicalRouter::TABLE => {
                let (r, _) = nb::LogicalRouter::from_row(uuid, row);
                if r.name == cluster.router {
                    self.router = Some(Parent::router(&r));
                }
            }
            nb::NbGlobal::TABLE => {
                let (g, _) = nb::NbGlobal::from_row(uuid, row);
                self.nb_global = Some(GlobalOptions {
                    uuid,
                    options: g.options,
                });
            }
            nb::LogicalRouterPort::TABLE => {
                let (p, _) = nb::LogicalRouterPort::from_row(uuid, row);
                if cluster.native.as_ref().is_some_and(|n| n.port == p.name) {
                    self.gateway_port = Some(Parent::port(&p));
                }
            }
            _ => match ChildTable::from_table(table) {
                Some(t @ ChildTable::Policy) => {
                    self.own(t, &nb::LogicalRouterPolicy::from_row(uuid, row).0);
                }
                Some(t @ ChildTable::StaticRoute) => {
                    self.own(t, &nb::LogicalRouterStaticRoute::from_row(uuid, row).0);
                }
                Some(t @ ChildTable::Nat) => self.own(t, &nb::Nat::from_row(uuid, row).0),
                Some(t @ ChildTable::GatewayChassis) => {
                    self.own(t, &nb::GatewayChassis::from_row(uuid, row).0);
                }
                None => {}
            },
        }
    }

    /// The one transaction of `select`s that reads everything the planner needs for
    /// `cluster`, and the handles to decode its outcome with.
    #[must_use]
    pub fn query(cluster: &Cluster) -> Query {
        let mut txn = Transaction::new("OVN_Northbound");
        let router = txn.push(
            Select::new(nb::LogicalRouter::TABLE)
                .filter(Condition::eq("name", cluster.router.as_str())),
        );
        let port = cluster.native.as_ref().map(|n| {
            txn.push(
                Select::new(nb::LogicalRouterPort::TABLE)
                    .filter(Condition::eq("name", n.port.as_str())),
            )
        });
        let global = cluster
            .native
            .as_ref()
            .and_then(|n| n.bfd)
            .map(|_| txn.push(Select::new(nb::NbGlobal::TABLE).columns(["_uuid", "options"])));
        let children = ChildTable::ALL
            .iter()
            // OVSDB cannot select on a map key's presence: read all, keep the tagged.
            .map(|t| (*t, txn.push(Select::new(t.table()))))
            .collect();
        Query {
            cluster: cluster.clone(),
            txn,
            router,
            port,
            global,
            children,
        }
    }
}

/// The `external_ids` of the typed rows the planner owns.
trait HasExternalIds {
    fn external_ids(&self) -> &std::collections::BTreeMap<String, String>;
}

macro_rules! has_external_ids {
    ($($t:ty),*) => {$(
        impl HasExternalIds for $t {
            fn external_ids(&self) -> &std::collections::BTreeMap<String, String> {
                &self.external_ids
            }
        }
    )*};
}

has_external_ids!(
    nb::LogicalRouterPolicy,
    nb::LogicalRouterStaticRoute,
    nb::Nat,
    nb::GatewayChassis
);

/// A read of the observed state: send [`Query::transaction`], then
/// [`decode`](Query::decode) the outcome.
#[derive(Debug, Clone)]
pub struct Query {
    cluster: Cluster,
    txn: Transaction,
    router: SelectHandle,
    port: Option<SelectHandle>,
    global: Option<SelectHandle>,
    children: Vec<(ChildTable, SelectHandle)>,
}

impl Query {
    /// The transaction to send.
    pub fn transaction(&self) -> &Transaction {
        &self.txn
    }

    /// The observed state in the transaction's outcome.
    #[must_use]
    pub fn decode(&self, outcome: &TransactOutcome) -> Observed {
        let mut o = Observed::default();
        let parents = [
            (Some(&self.router), nb::LogicalRouter::TABLE),
            (self.port.as_ref(), nb::LogicalRouterPort::TABLE),
            (self.global.as_ref(), nb::NbGlobal::TABLE),
        ];
        for (h, table) in parents {
            for row in h.and_then(|h| outcome.rows(h)).unwrap_or_default() {
                o.add_row(&self.cluster, table, row);
            }
        }
        for (t, h) in &self.children {
            for row in outcome.rows(h).unwrap_or_default() {
                o.add_row(&self.cluster, t.table(), row);
            }
        }
        o
    }
}
