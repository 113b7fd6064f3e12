//! What the planner does with rows it did not expect: a pod that moved to another switch, rows
//! that belong to someone else, rows of the pod left behind by an interrupted run, and missing
//! switches or ports. Plans are applied with the in-memory transaction engine of `common`.

mod common;

use std::collections::BTreeMap;

use common::{apply, count, nb_db, nb_observed, node_db, node_observed, rows};
use ovn_model::nb::{self, LogicalSwitch};
use ovn_model::plan::{Change, Plan};
use ovn_model::vswitch::{self, Port};
use qos::{
    BitRate, Config, Dscp, EgressMechanism, IngressMechanism, Limit, Planner, PodId, PodTarget,
    QosIntent, Role,
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

fn kinds(plan: &Plan) -> Vec<&'static str> {
    plan.steps()
        .iter()
        .map(|s| match s.change {
            Change::Insert { .. } => "insert",
            Change::Update { .. } => "update",
            Change::Delete { .. } => "delete",
            Change::Mutate { .. } => "mutate",
            Change::Expect { .. } => "expect",
            _ => "other",
        })
        .collect()
}

#[test]
fn a_pod_that_moved_switch_gets_its_row_on_the_new_switch_only() {
    let planner = Planner::default();
    let mut db = nb_db();
    let first = planner
        .plan_nb(&on("ls1"), &ten(), &nb_observed(&db, &on("ls1")))
        .unwrap();
    apply(&mut db, &first);
    let moved = planner
        .plan_nb(&on("ls2"), &ten(), &nb_observed(&db, &on("ls2")))
        .unwrap();
    // A row under ls2 (its key names the switch), the one under ls1 taken out of it.
    assert_eq!(kinds(&moved), ["insert", "delete"]);
    apply(&mut db, &moved);
    let switches = rows::<LogicalSwitch>(&db);
    let ls1 = switches.iter().find(|s| s.name == "ls1").unwrap();
    let ls2 = switches.iter().find(|s| s.name == "ls2").unwrap();
    assert!(ls1.qos_rules.is_empty());
    assert_eq!(ls2.qos_rules.len(), 1);
    assert_eq!(count(&db, "QoS"), 1, "the old row was collected");
}

#[test]
fn rows_of_others_are_left_alone() {
    let planner = Planner::new(Config::default().with_ingress(IngressMechanism::OvsHtb));
    // An NB QoS row someone else made for the same port, on the same switch.
    let mut nb = nb_db();
    let theirs = nb::QoS {
        match_: "inport == \"a\"".into(),
        priority: 100,
        external_ids: BTreeMap::from([("owner".into(), "someone".into())]),
        ..Default::default()
    };
    let mut seed = Plan::nb();
    seed.insert_child::<LogicalSwitch, _>("ls1", &theirs)
        .unwrap();
    apply(&mut nb, &seed);
    // An OVS QoS bound to the pod's port by someone else (ovn-controller binds linux-noop).
    let mut node = node_db();
    let noop = vswitch::QoS {
        type_: "linux-noop".into(),
        ..Default::default()
    };
    let mut seed = Plan::vswitch();
    let noop_ref = seed.insert(&noop).unwrap();
    let bound = Port {
        qos: Some(noop_ref),
        ..Default::default()
    };
    seed.update::<Port>("veth-a", &bound, &["qos"]).unwrap();
    apply(&mut node, &seed);
    let theirs_uuid = rows::<nb::QoS>(&nb)[0].uuid;
    let noop_uuid = rows::<vswitch::QoS>(&node)[0].uuid;

    let intent = ten().with_ingress(Limit::new(BitRate::from_mbit_per_s(10)));
    for i in [intent, QosIntent::none()] {
        let p = planner
            .plan_nb(&on("ls1"), &i, &nb_observed(&nb, &on("ls1")))
            .unwrap();
        apply(&mut nb, &p);
        let p = planner
            .plan_node(&on("ls1"), &i, &node_observed(&node, &on("ls1")))
            .unwrap();
        apply(&mut node, &p);
        assert!(rows::<nb::QoS>(&nb).iter().any(|q| q.uuid == theirs_uuid));
        assert!(
            rows::<vswitch::QoS>(&node)
                .iter()
                .any(|q| q.uuid == noop_uuid)
        );
    }
}

#[test]
fn rows_of_the_pod_left_unbound_are_deleted() {
    // An interrupted run left a tagged QoS and Queue that no port uses.
    let mut node = node_db();
    let mut seed = Plan::vswitch();
    let queue = seed
        .insert(&vswitch::Queue {
            external_ids: pod().key(Role::Queue).tags(),
            ..Default::default()
        })
        .unwrap();
    seed.insert(&vswitch::QoS {
        type_: "linux-htb".into(),
        queues: BTreeMap::from([(0, queue)]),
        external_ids: pod().key(Role::PortQos).tags(),
        ..Default::default()
    })
    .unwrap();
    apply(&mut node, &seed);
    let planner = Planner::new(Config::default().with_ingress(IngressMechanism::OvsHtb));
    let plan = planner
        .plan_node(
            &on("ls1"),
            &QosIntent::none(),
            &node_observed(&node, &on("ls1")),
        )
        .unwrap();
    assert_eq!(kinds(&plan), ["delete", "delete"]);
    apply(&mut node, &plan);
    assert_eq!((count(&node, "QoS"), count(&node, "Queue")), (0, 0));
}

#[test]
fn missing_switch_or_port_is_an_error_only_when_something_must_be_added() {
    let planner = Planner::new(
        Config::default()
            .with_egress(EgressMechanism::OvsPolicing)
            .with_ingress(IngressMechanism::OvsHtb),
    );
    let gone = PodTarget::new(pod(), "nowhere", "a", "veth-gone");
    let mut nb = nb_db();
    let node = node_db();
    let dscp = QosIntent::none().with_dscp(Dscp::new(10).unwrap());
    // The switch is named in the plan (another part of the reconcile step may create it);
    // applied where it exists nowhere, the transaction fails and names it.
    let plan = planner
        .plan_nb(&gone, &dscp, &nb_observed(&nb, &gone))
        .unwrap();
    let err = plan.apply(&mut nb).unwrap_err();
    assert!(
        matches!(
            err,
            ovn_model::plan::PlanError::Missing {
                table: "Logical_Switch",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with(r#"Logical_Switch named "nowhere" matched no row, so nothing was changed (needed by: step 1 (default/a: dscp: DSCP 10"#),
        "{err}"
    );
    assert_eq!(count(&nb, "QoS"), 0);
    let err = planner
        .plan_node(&gone, &ten(), &node_observed(&node, &gone))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "pod default/a: OVS port \"veth-gone\" not found"
    );
    // Clearing a pod whose switch and port are gone is fine.
    assert!(
        planner
            .plan_nb(&gone, &QosIntent::none(), &nb_observed(&nb, &gone))
            .unwrap()
            .is_empty()
    );
    assert!(
        planner
            .plan_node(&gone, &QosIntent::none(), &node_observed(&node, &gone))
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
        .plan_nb(&on("ls1"), &dscp, &nb_observed(&nb_db(), &on("ls1")))
        .unwrap();
    assert_eq!(kinds(&nb), ["insert"]);
    let node = planner
        .plan_node(&on("ls1"), &dscp, &node_observed(&node_db(), &on("ls1")))
        .unwrap();
    assert!(node.is_empty());
}
