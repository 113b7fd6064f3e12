//! Shared by the pure tests: databases held in `ovsdb` replicas and changed by plans run with
//! `ovsdb`'s in-memory transaction engine (what `ovsdb-server` would do: named rows resolved,
//! unreferenced rows of non-root tables collected, dangling strong references refused), and
//! the planner's observed state read from their snapshots as the controller reads it. The
//! real-server tests (`server.rs`) check the same properties against `ovsdb-server`.

#![allow(dead_code)]

pub mod strategies;

use std::collections::BTreeMap;

use ovn_model::nb::{self, LogicalSwitch};
use ovn_model::plan::Plan;
use ovn_model::snapshot::Typed;
use ovn_model::vswitch::{self, Bridge, Interface, OpenVSwitch, Port};
use ovsdb::Table;
use ovsdb::replica::Replica;
use qos::{NbObserved, NodeObserved, PodTarget};

/// Runs `plan` on `db`, failing the test if the engine refuses it.
pub fn apply(db: &mut Replica, plan: &Plan) {
    plan.apply(db)
        .unwrap_or_else(|e| panic!("the plan does not apply: {e}\n{plan}"));
}

/// An NB database with switches `ls1` and `ls2`.
pub fn nb_db() -> Replica {
    let mut db = Replica::new(nb::schema());
    let mut plan = Plan::nb();
    for name in ["ls1", "ls2"] {
        plan.insert(&LogicalSwitch::new(name)).unwrap();
    }
    apply(&mut db, &plan);
    db
}

/// A node database with bridge `br-int` and ports `veth-a` and `veth-b`, each with its
/// interface.
pub fn node_db() -> Replica {
    let mut db = Replica::new(vswitch::schema());
    let mut plan = Plan::vswitch();
    let ovs = plan.insert(&OpenVSwitch::default()).unwrap();
    let br = plan
        .insert_child(
            &ovs,
            &Bridge {
                name: "br-int".into(),
                ..Default::default()
            },
        )
        .unwrap();
    for name in ["veth-a", "veth-b"] {
        let port = Port {
            name: name.into(),
            ..Default::default()
        };
        let iface = Interface {
            name: name.into(),
            ..Default::default()
        };
        plan.insert_child_with_children(&br, &port, &[iface])
            .unwrap();
    }
    apply(&mut db, &plan);
    db
}

/// Every row of `T` in `db`.
pub fn rows<T: Table>(db: &Replica) -> Vec<T> {
    let snap = db.snapshot();
    Typed::new(&snap).rows::<T>().collect()
}

/// The number of rows of `table`.
pub fn count(db: &Replica, table: &str) -> usize {
    db.snapshot().table(table).map_or(0, |t| t.len())
}

/// The planner's view of `target` in an NB database.
pub fn nb_observed(db: &Replica, target: &PodTarget) -> NbObserved {
    NbObserved::from_snapshot(&Typed::new(&db.snapshot()), target)
}

/// The planner's view of `target` in a node database.
pub fn node_observed(db: &Replica, target: &PodTarget) -> NodeObserved {
    NodeObserved::from_snapshot(&Typed::new(&db.snapshot()), target)
}

/// The `external_ids` of every QoS and Queue row of both databases.
pub fn all_external_ids(nb: &Replica, node: &Replica) -> Vec<BTreeMap<String, String>> {
    rows::<nb::QoS>(nb)
        .into_iter()
        .map(|q| q.external_ids)
        .chain(
            rows::<vswitch::QoS>(node)
                .into_iter()
                .map(|q| q.external_ids),
        )
        .chain(
            rows::<vswitch::Queue>(node)
                .into_iter()
                .map(|q| q.external_ids),
        )
        .collect()
}
