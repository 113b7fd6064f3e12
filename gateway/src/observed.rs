//! What the planner reads: [`Observed`], the rows it owns plus the two parents it hangs them
//! on, decoded forgivingly from raw `ovsdb` rows; and [`Query`], the one `select` transaction
//! that fetches them.

use std::collections::BTreeSet;

use ovsdb::{Condition, Datum, Row, Select, SelectHandle, TransactOutcome, Transaction, Uuid};

use crate::config::Cluster;
use crate::tags::{self, Key};

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
            ChildTable::Policy => "Logical_Router_Policy",
            ChildTable::StaticRoute => "Logical_Router_Static_Route",
            ChildTable::Nat => "NAT",
            ChildTable::GatewayChassis => "Gateway_Chassis",
        }
    }

    /// The parent's table and the column that holds the reference.
    #[must_use]
    pub const fn parent(self) -> (&'static str, &'static str) {
        match self {
            ChildTable::Policy => ("Logical_Router", "policies"),
            ChildTable::StaticRoute => ("Logical_Router", "static_routes"),
            ChildTable::Nat => ("Logical_Router", "nat"),
            ChildTable::GatewayChassis => ("Logical_Router_Port", "gateway_chassis"),
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
    /// The UUIDs it refers to in `policies`, `static_routes`, `nat` or `gateway_chassis`.
    pub children: BTreeSet<Uuid>,
}

impl Parent {
    /// Decodes a router or router port row (with `_uuid`); `None` without a UUID.
    #[must_use]
    pub fn from_row(row: &Row) -> Option<Self> {
        let uuid = row.uuid()?;
        let name = row
            .atom("name")
            .and_then(|a| a.as_str())
            .unwrap_or_default()
            .to_owned();
        let children = ["policies", "static_routes", "nat", "gateway_chassis"]
            .iter()
            .filter_map(|c| row.get(c))
            .flat_map(Datum::atoms)
            .filter_map(|a| a.as_uuid())
            .collect();
        Some(Parent {
            uuid,
            name,
            children,
        })
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
    /// Its columns as read.
    pub row: Row,
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
}

impl Observed {
    /// Adds a row of `table` as read from the database (with `_uuid`): the router and gateway
    /// port by name, child rows when they carry the planner's tags. Other rows are ignored.
    pub fn add_row(&mut self, cluster: &Cluster, table: &str, row: &Row) {
        match table {
            "Logical_Router" => {
                if let Some(p) = Parent::from_row(row).filter(|p| p.name == cluster.router) {
                    self.router = Some(p);
                }
            }
            "Logical_Router_Port" => {
                let wanted = cluster.native.as_ref().map(|n| n.port.as_str());
                if let Some(p) = Parent::from_row(row).filter(|p| Some(p.name.as_str()) == wanted) {
                    self.gateway_port = Some(p);
                }
            }
            _ => {
                let (Some(t), Some(uuid)) = (ChildTable::from_table(table), row.uuid()) else {
                    return;
                };
                let Some(key) = Key::from_external_ids(&tags::string_map(row, "external_ids"))
                else {
                    return;
                };
                let mut row = row.clone();
                row.remove("_uuid");
                row.remove("_version");
                self.owned.push(Owned {
                    table: t,
                    uuid,
                    key,
                    row,
                });
            }
        }
    }

    /// The one transaction of `select`s that reads everything the planner needs for
    /// `cluster`, and the handles to decode its outcome with.
    #[must_use]
    pub fn query(cluster: &Cluster) -> Query {
        let mut txn = Transaction::new("OVN_Northbound");
        let router = txn.push(
            Select::new("Logical_Router").filter(Condition::eq("name", cluster.router.as_str())),
        );
        let port = cluster.native.as_ref().map(|n| {
            txn.push(
                Select::new("Logical_Router_Port").filter(Condition::eq("name", n.port.as_str())),
            )
        });
        let children = ChildTable::ALL
            .iter()
            .map(|t| {
                // OVSDB cannot select on a map key's presence: read all, keep the tagged.
                (*t, txn.push(Select::new(t.table())))
            })
            .collect();
        Query {
            cluster: cluster.clone(),
            txn,
            router,
            port,
            children,
        }
    }
}

/// A read of the observed state: send [`Query::transaction`], then
/// [`decode`](Query::decode) the outcome.
#[derive(Debug, Clone)]
pub struct Query {
    cluster: Cluster,
    txn: Transaction,
    router: SelectHandle,
    port: Option<SelectHandle>,
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
        let tables = [
            (Some(&self.router), "Logical_Router"),
            (self.port.as_ref(), "Logical_Router_Port"),
        ];
        for (h, table) in tables {
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
