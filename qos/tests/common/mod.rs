//! Shared by the pure tests: a small in-memory database that applies a plan's own steps, and
//! fixtures (a logical switch; a bridge port with its interface).
//!
//! The in-memory application is deliberately literal: inserts get fresh UUIDs and named UUIDs
//! are resolved, updates set columns, mutations add or remove one reference, deletes remove the
//! row (and fail the test if it is missing). The real-server tests (`server.rs`) check the same
//! properties against `ovsdb-server`.

#![allow(dead_code)]

pub mod strategies;

use std::collections::{BTreeMap, HashMap};

use ovn_model::{nb, vswitch};
use ovsdb::table::Table;
use ovsdb::{Atom, Datum, Map, NamedUuid, Ref, Row, Set, Uuid};
use qos::{Change, NbObserved, NodeObserved, Plan};

/// Rows by table and UUID.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemDb {
    tables: BTreeMap<&'static str, BTreeMap<Uuid, Row>>,
    next: u128,
}

impl MemDb {
    pub fn new(first_uuid: u128) -> Self {
        MemDb {
            tables: BTreeMap::new(),
            next: first_uuid,
        }
    }

    fn alloc(&mut self) -> Uuid {
        self.next += 1;
        Uuid::from_u128(self.next)
    }

    /// Inserts a typed row as it is (keeps its UUID, or allocates one when nil).
    pub fn put<T: Table>(&mut self, row: &T) -> Uuid {
        let uuid = if row.uuid() == Uuid::NIL {
            self.alloc()
        } else {
            row.uuid()
        };
        let r = row.to_row().expect("fixture rows fit the model");
        self.tables.entry(T::TABLE).or_default().insert(uuid, r);
        uuid
    }

    /// Every row of `T`, decoded.
    pub fn rows<T: Table>(&self) -> Vec<T> {
        self.tables
            .get(T::TABLE)
            .map(|t| t.iter().map(|(u, r)| T::from_row(*u, r).0).collect())
            .unwrap_or_default()
    }

    pub fn count(&self, table: &str) -> usize {
        self.tables.get(table).map_or(0, BTreeMap::len)
    }

    /// Applies every step of `plan`, in order.
    pub fn apply(&mut self, plan: &Plan) {
        let mut names: HashMap<NamedUuid, Uuid> = HashMap::new();
        for step in plan.steps() {
            if let Change::Insert { name, .. } = &step.change {
                let u = self.alloc();
                names.insert(name.clone(), u);
            }
        }
        for step in plan.steps() {
            match &step.change {
                Change::Insert { table, name, row } => {
                    let row = resolve_row(row, &names);
                    self.tables
                        .entry(table)
                        .or_default()
                        .insert(names[name], row);
                }
                Change::Update { table, uuid, row } => {
                    let r = self.row_mut(table, *uuid);
                    for (c, d) in resolve_row(row, &names).iter() {
                        r.insert(c, d.clone());
                    }
                }
                Change::Delete { table, uuid } => {
                    let gone = self.tables.get_mut(table).and_then(|t| t.remove(uuid));
                    assert!(gone.is_some(), "delete of a missing {table} row {uuid}");
                }
                Change::AddRef {
                    table,
                    uuid,
                    column,
                    target,
                } => {
                    let atom = resolve_atom(&target.to_atom(), &names);
                    let r = self.row_mut(table, *uuid);
                    let mut set = r
                        .get(column)
                        .and_then(Datum::as_set)
                        .cloned()
                        .unwrap_or_default();
                    set.insert(atom);
                    r.insert(*column, Datum::Set(set));
                }
                Change::RemoveRef {
                    table,
                    uuid,
                    column,
                    target,
                } => {
                    let r = self.row_mut(table, *uuid);
                    let set: Set = r
                        .get(column)
                        .and_then(Datum::as_set)
                        .map(|s| {
                            s.iter()
                                .filter(|a| a.as_uuid() != Some(*target))
                                .cloned()
                                .collect()
                        })
                        .unwrap_or_default();
                    r.insert(*column, Datum::Set(set));
                }
            }
        }
        self.check_integrity();
    }

    fn row_mut(&mut self, table: &str, uuid: Uuid) -> &mut Row {
        self.tables
            .get_mut(table)
            .and_then(|t| t.get_mut(&uuid))
            .unwrap_or_else(|| panic!("no {table} row {uuid}"))
    }

    /// What a server would refuse or collect: a dangling strong reference, or an NB `QoS` row
    /// that no switch refers to.
    fn check_integrity(&self) {
        for s in self.rows::<nb::LogicalSwitch>() {
            for q in &s.qos_rules {
                assert!(
                    self.has("QoS", q.uuid()),
                    "switch {} refers to a missing QoS",
                    s.name
                );
            }
        }
        if self.tables.contains_key("Logical_Switch") {
            for q in self.rows::<nb::QoS>() {
                let referred = self
                    .rows::<nb::LogicalSwitch>()
                    .iter()
                    .any(|s| s.qos_rules.contains(&Ref::new(q.uuid)));
                assert!(referred, "NB QoS row {} is not on any switch", q.uuid);
            }
        }
        for p in self.rows::<vswitch::Port>() {
            if let Some(q) = &p.qos {
                assert!(
                    self.has("QoS", q.uuid()),
                    "port {} refers to a missing QoS",
                    p.name
                );
            }
        }
        if self.tables.contains_key("Port") {
            for q in self.rows::<vswitch::QoS>() {
                for r in q.queues.values() {
                    assert!(
                        self.has("Queue", r.uuid()),
                        "QoS {} refers to a missing Queue",
                        q.uuid
                    );
                }
            }
        }
    }

    fn has(&self, table: &str, uuid: Option<Uuid>) -> bool {
        uuid.is_some_and(|u| self.tables.get(table).is_some_and(|t| t.contains_key(&u)))
    }
}

fn resolve_atom(a: &Atom, names: &HashMap<NamedUuid, Uuid>) -> Atom {
    match a {
        Atom::NamedUuid(n) => Atom::Uuid(*names.get(n).unwrap_or_else(|| panic!("unknown @{n}"))),
        other => other.clone(),
    }
}

fn resolve_row(row: &Row, names: &HashMap<NamedUuid, Uuid>) -> Row {
    row.iter()
        .map(|(c, d)| {
            let d = match d {
                Datum::Set(s) => Datum::Set(s.iter().map(|a| resolve_atom(a, names)).collect()),
                Datum::Map(m) => Datum::Map(
                    m.iter()
                        .map(|(k, v)| (resolve_atom(k, names), resolve_atom(v, names)))
                        .collect::<Map>(),
                ),
            };
            (c.to_owned(), d)
        })
        .collect()
}

/// An NB database with switch `ls1` (and an unrelated `ls2`).
pub fn nb_db() -> MemDb {
    let mut db = MemDb::new(0x1000);
    db.put(&nb::LogicalSwitch {
        uuid: Uuid::from_u128(0xa1),
        name: "ls1".into(),
        ..Default::default()
    });
    db.put(&nb::LogicalSwitch {
        uuid: Uuid::from_u128(0xa2),
        name: "ls2".into(),
        ..Default::default()
    });
    db
}

/// A node database with port and interface `veth-a` (and an unrelated `veth-b`).
pub fn node_db() -> MemDb {
    let mut db = MemDb::new(0x2000);
    for (i, name) in [(1u128, "veth-a"), (2, "veth-b")] {
        let iface = db.put(&vswitch::Interface {
            uuid: Uuid::from_u128(0xb0 + i),
            name: name.into(),
            ..Default::default()
        });
        db.put(&vswitch::Port {
            uuid: Uuid::from_u128(0xc0 + i),
            name: name.into(),
            interfaces: [Ref::new(iface)].into(),
            ..Default::default()
        });
    }
    db
}

/// Owned copies of the observed rows, borrowed as `NbObserved` / `NodeObserved`.
pub struct NbRows(pub Vec<nb::LogicalSwitch>, pub Vec<nb::QoS>);

impl NbRows {
    pub fn of(db: &MemDb) -> Self {
        NbRows(db.rows(), db.rows())
    }
    pub fn observed(&self) -> NbObserved<'_> {
        NbObserved {
            switches: &self.0,
            qos: &self.1,
        }
    }
}

pub struct NodeRows(
    pub Vec<vswitch::Port>,
    pub Vec<vswitch::Interface>,
    pub Vec<vswitch::QoS>,
    pub Vec<vswitch::Queue>,
);

impl NodeRows {
    pub fn of(db: &MemDb) -> Self {
        NodeRows(db.rows(), db.rows(), db.rows(), db.rows())
    }
    pub fn observed(&self) -> NodeObserved<'_> {
        NodeObserved {
            ports: &self.0,
            interfaces: &self.1,
            qos: &self.2,
            queues: &self.3,
        }
    }
}
