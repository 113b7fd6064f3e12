//! What the planner does with rows it did not expect: a pod that moved to another switch, rows
//! that belong to someone else, rows of the pod left behind by an interrupted run, and missing
//! switches or ports. Plans are applied with the in-memory database of `common`.

mod common;

use std::collections::BTreeMap;

use common::{NbRows, NodeRows, nb_db, node_db};
use ovn_model::{nb, vswitch};
use ovsdb::{Ref, Uuid};
use qos::tags::{self, Role};
use qos::{
    BitRate, Change, Config, Dscp, EgressMechanism, IngressMechanism, Limit, PlanError, Planner,
    PodId, PodTarget, QosIntent,
};

fn pod() -> PodId {
    PodId::new("default", "a")
}

fn on(switch: &str) -> PodTarget {
    PodTarget::new(pod(), switch, "a", "veth-a")
}

fn ten() -> QosIntent {
    QosIntent::none().with_egress(Limit::new(BitRate::from_mbit_per_s(10)))
}

fn kinds(plan: &qos::Plan) -> Vec<&'static str> {
    plan.steps()
        .iter()
        .map(|s| match s.change {
            Change::Insert { .. } => "insert",
            Change::Update { .. } => "update",
            Change::Delete { .. } => "delete",
            Change::AddRef { .. } => "add-ref",
            Change::RemoveRef { .. } => "remove-ref",
        })
        .collect()
}

#[test]
fn a_pod_that_moved_switch_gets_its_row_on_the_new_switch_only() {
    let planner = Planner::default();
    let mut db = nb_db();
    let first = planner
        .plan_nb(&on("ls1"), &ten(), &NbRows::of(&db).observed())
        .unwrap();
    db.apply(&first);
    let moved = planner
        .plan_nb(&on("ls2"), &ten(), &NbRows::of(&db).observed())
        .unwrap();
    assert_eq!(kinds(&moved), ["insert", "add-ref", "remove-ref", "delete"]);
    db.apply(&moved);
    let rows = NbRows::of(&db);
    let ls1 = rows.0.iter().find(|s| s.name == "ls1").unwrap();
    let ls2 = rows.0.iter().find(|s| s.name == "ls2").unwrap();
    assert!(ls1.qos_rules.is_empty());
    assert_eq!(ls2.qos_rules.len(), 1);
}

#[test]
fn rows_of_others_are_left_alone() {
    let planner = Planner::new(Config::default().with_ingress(IngressMechanism::OvsHtb));
    // An NB QoS row someone else made for the same port, on the same switch.
    let mut nb = nb_db();
    let theirs = nb::QoS {
        uuid: Uuid::from_u128(0xf1),
        match_: "inport == \"a\"".into(),
        priority: 100,
        external_ids: BTreeMap::from([("owner".into(), "someone".into())]),
        ..Default::default()
    };
    nb.put(&theirs);
    let mut ls1 = NbRows::of(&nb)
        .0
        .into_iter()
        .find(|s| s.name == "ls1")
        .unwrap();
    ls1.qos_rules.insert(Ref::new(theirs.uuid));
    nb.put(&ls1);
    // An OVS QoS bound to the pod's port by someone else (ovn-controller binds linux-noop).
    let mut node = node_db();
    let noop = vswitch::QoS {
        uuid: Uuid::from_u128(0xf2),
        type_: "linux-noop".into(),
        ..Default::default()
    };
    node.put(&noop);
    let mut port = NodeRows::of(&node)
        .0
        .into_iter()
        .find(|p| p.name == "veth-a")
        .unwrap();
    port.qos = Some(Ref::new(noop.uuid));
    node.put(&port);

    let intent = ten().with_ingress(Limit::new(BitRate::from_mbit_per_s(10)));
    for i in [intent, QosIntent::none()] {
        let p = planner
            .plan_nb(&on("ls1"), &i, &NbRows::of(&nb).observed())
            .unwrap();
        nb.apply(&p);
        let p = planner
            .plan_node(&on("ls1"), &i, &NodeRows::of(&node).observed())
            .unwrap();
        node.apply(&p);
        assert!(NbRows::of(&nb).1.contains(&theirs));
        assert!(NodeRows::of(&node).2.iter().any(|q| q.uuid == noop.uuid));
    }
}

#[test]
fn rows_of_the_pod_left_unbound_are_deleted() {
    // An interrupted run left a tagged QoS and Queue that no port uses.
    let mut node = node_db();
    let queue = node.put(&vswitch::Queue {
        external_ids: tags::external_ids(&pod(), Role::Queue),
        ..Default::default()
    });
    node.put(&vswitch::QoS {
        type_: "linux-htb".into(),
        queues: BTreeMap::from([(0, Ref::new(queue))]),
        external_ids: tags::external_ids(&pod(), Role::PortQos),
        ..Default::default()
    });
    let planner = Planner::new(Config::default().with_ingress(IngressMechanism::OvsHtb));
    let plan = planner
        .plan_node(
            &on("ls1"),
            &QosIntent::none(),
            &NodeRows::of(&node).observed(),
        )
        .unwrap();
    assert_eq!(kinds(&plan), ["delete", "delete"]);
    node.apply(&plan);
    assert_eq!((node.count("QoS"), node.count("Queue")), (0, 0));
}

#[test]
fn missing_switch_or_port_is_an_error_only_when_something_must_be_added() {
    let planner = Planner::new(
        Config::default()
            .with_egress(EgressMechanism::OvsPolicing)
            .with_ingress(IngressMechanism::OvsHtb),
    );
    let gone = PodTarget::new(pod(), "nowhere", "a", "veth-gone");
    let nb = nb_db();
    let node = node_db();
    let dscp = QosIntent::none().with_dscp(Dscp::new(10).unwrap());
    let err = planner
        .plan_nb(&gone, &dscp, &NbRows::of(&nb).observed())
        .unwrap_err();
    assert!(matches!(err, PlanError::SwitchNotFound { ref switch, .. } if switch == "nowhere"));
    assert_eq!(
        err.to_string(),
        "pod default/a: logical switch \"nowhere\" not found"
    );
    let err = planner
        .plan_node(&gone, &ten(), &NodeRows::of(&node).observed())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "pod default/a: OVS port \"veth-gone\" not found"
    );
    // Clearing a pod whose switch and port are gone is fine.
    assert!(
        planner
            .plan_nb(&gone, &QosIntent::none(), &NbRows::of(&nb).observed())
            .unwrap()
            .is_empty()
    );
    assert!(
        planner
            .plan_node(&gone, &QosIntent::none(), &NodeRows::of(&node).observed())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn dscp_is_an_ovn_row_whatever_the_bandwidth_mechanisms() {
    let planner = Planner::new(
        Config::default()
            .with_egress(EgressMechanism::OvsPolicing)
            .with_ingress(IngressMechanism::OvsHtb),
    );
    let dscp = QosIntent::none().with_dscp(Dscp::new(46).unwrap());
    let nb = planner
        .plan_nb(&on("ls1"), &dscp, &NbRows::of(&nb_db()).observed())
        .unwrap();
    assert_eq!(kinds(&nb), ["insert", "add-ref"]);
    let node = planner
        .plan_node(&on("ls1"), &dscp, &NodeRows::of(&node_db()).observed())
        .unwrap();
    assert!(node.is_empty());
}
