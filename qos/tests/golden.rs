//! Golden plans: for each mechanism, the review text of a plan (its steps and the transaction
//! JSON), checked in under `tests/golden/`. Plans are applied between scenarios with the
//! in-memory transaction engine of `common` (the real-server tests apply them to
//! `ovsdb-server`).
//!
//! After an intended change of the planner's output, regenerate with
//! `OVNKIT_BLESS=1 cargo test -p ovnkit-qos --test golden` and review the diff.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{apply, count, nb_db, nb_observed, node_db, node_observed};
use ovn_model::plan::Plan;
use ovsdb::replica::Replica;
use qos::{
    BitRate, Burst, Config, Dscp, EgressMechanism, IngressMechanism, Limit, LossPercent, Netem,
    Planner, PodId, PodTarget, QosIntent,
};

fn target() -> PodTarget {
    PodTarget::new(PodId::new("default", "a"), "ls1", "a", "veth-a")
}

fn check(name: &str, plan: &Plan) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    ovn_testbed::golden::check(&dir, name, &plan.review().expect("the plan builds"));
}

fn nb_plan(planner: &Planner, db: &Replica, intent: &QosIntent) -> Plan {
    planner
        .plan_nb(&target(), intent, &nb_observed(db, &target()))
        .unwrap()
}

fn node_plan(planner: &Planner, db: &Replica, intent: &QosIntent) -> Plan {
    planner
        .plan_node(&target(), intent, &node_observed(db, &target()))
        .unwrap()
}

#[test]
fn ovn_qos_rows_set_change_clear() {
    let planner = Planner::new(Config::default());
    let mut db = nb_db();
    let full = QosIntent::none()
        .with_egress(Limit::new(BitRate::from_mbit_per_s(10)))
        .with_ingress(Limit::new(BitRate::from_mbit_per_s(20)).with_burst(Burst::from_mbit(5)))
        .with_dscp(Dscp::new(46).unwrap());

    let set = nb_plan(&planner, &db, &full);
    check("nb_set", &set);
    apply(&mut db, &set);
    assert!(nb_plan(&planner, &db, &full).is_empty());

    let slower = full.with_egress(Limit::new(BitRate::from_mbit_per_s(5)));
    let change = nb_plan(&planner, &db, &slower);
    check("nb_change_egress", &change);
    apply(&mut db, &change);
    assert!(nb_plan(&planner, &db, &slower).is_empty());

    let clear = nb_plan(&planner, &db, &QosIntent::none());
    check("nb_clear", &clear);
    apply(&mut db, &clear);
    assert_eq!(count(&db, "QoS"), 0);
}

#[test]
fn ovs_policing_and_htb_set_change_clear() {
    let planner = Planner::new(
        Config::default()
            .with_egress(EgressMechanism::OvsPolicing)
            .with_ingress(IngressMechanism::OvsHtb),
    );
    let mut db = node_db();
    let both = QosIntent::none()
        .with_egress(Limit::new(BitRate::from_mbit_per_s(10)))
        .with_ingress(Limit::new(BitRate::from_mbit_per_s(10)));

    let set = node_plan(&planner, &db, &both);
    check("node_set_policing_htb", &set);
    apply(&mut db, &set);
    assert!(node_plan(&planner, &db, &both).is_empty());

    let slower = both.with_ingress(Limit::new(BitRate::from_mbit_per_s(5)));
    let change = node_plan(&planner, &db, &slower);
    check("node_change_htb", &change);
    apply(&mut db, &change);

    let clear = node_plan(&planner, &db, &QosIntent::none());
    check("node_clear", &clear);
    apply(&mut db, &clear);
    assert_eq!((count(&db, "QoS"), count(&db, "Queue")), (0, 0));
}

#[test]
fn netem_replaces_htb_in_place_and_conflicts_are_named() {
    let planner = Planner::new(Config::default().with_ingress(IngressMechanism::OvsHtb));
    let mut db = node_db();
    let htb = QosIntent::none().with_ingress(Limit::new(BitRate::from_mbit_per_s(10)));
    let set = node_plan(&planner, &db, &htb);
    apply(&mut db, &set);

    let netem = QosIntent::none().with_netem(Netem {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(2),
        loss: LossPercent::from_hundredths(150).unwrap(),
        limit: Some(500),
    });
    let switch = node_plan(&planner, &db, &netem);
    check("node_htb_to_netem", &switch);
    apply(&mut db, &switch);
    assert!(node_plan(&planner, &db, &netem).is_empty());
    assert_eq!((count(&db, "QoS"), count(&db, "Queue")), (1, 0));

    let both = htb.with_netem(netem.netem.unwrap());
    let err = planner
        .plan_node(&target(), &both, &node_observed(&db, &target()))
        .unwrap_err();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    ovn_testbed::golden::check(&dir, "node_htb_and_netem_error", &format!("{err}\n"));
}
