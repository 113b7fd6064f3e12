//! Golden plans: for each mechanism, the explanation and the transaction JSON of a plan,
//! checked in under `tests/golden/`. Plans are applied between scenarios by the in-memory
//! database of `common` (the real-server tests apply them to `ovsdb-server`).
//!
//! After an intended change of the planner's output, regenerate with
//! `OVNKIT_BLESS=1 cargo test -p qos --test golden` and review the diff.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{MemDb, NbRows, NodeRows, nb_db, node_db};
use qos::{
    BitRate, Burst, Config, Dscp, EgressMechanism, IngressMechanism, Limit, LossPercent, Netem,
    Plan, Planner, PodId, PodTarget, QosIntent,
};

fn target() -> PodTarget {
    PodTarget::new(PodId::new("default", "a"), "ls1", "a", "veth-a")
}

fn render(plan: &Plan) -> String {
    let mut out = plan.to_string();
    let txn = plan.clone().into_transaction().expect("the plan validates");
    out.push_str("\n--- transaction ---\n");
    out.push_str(&serde_json::to_string_pretty(&txn.to_params()).unwrap());
    out.push('\n');
    out
}

fn check(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}.txt"));
    if std::env::var("OVNKIT_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} is missing: run with OVNKIT_BLESS=1", path.display()));
    assert_eq!(
        actual,
        expected,
        "plan {name} differs from {} (OVNKIT_BLESS=1 regenerates it)",
        path.display()
    );
}

fn nb_plan(planner: &Planner, db: &MemDb, intent: &QosIntent) -> Plan {
    let rows = NbRows::of(db);
    planner
        .plan_nb(&target(), intent, &rows.observed())
        .unwrap()
}

fn node_plan(planner: &Planner, db: &MemDb, intent: &QosIntent) -> Plan {
    let rows = NodeRows::of(db);
    planner
        .plan_node(&target(), intent, &rows.observed())
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
    check("nb_set", &render(&set));
    db.apply(&set);
    assert!(nb_plan(&planner, &db, &full).is_empty());

    let slower = full.with_egress(Limit::new(BitRate::from_mbit_per_s(5)));
    let change = nb_plan(&planner, &db, &slower);
    check("nb_change_egress", &render(&change));
    db.apply(&change);
    assert!(nb_plan(&planner, &db, &slower).is_empty());

    let clear = nb_plan(&planner, &db, &QosIntent::none());
    check("nb_clear", &render(&clear));
    db.apply(&clear);
    assert_eq!(db.count("QoS"), 0);
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
    check("node_set_policing_htb", &render(&set));
    db.apply(&set);
    assert!(node_plan(&planner, &db, &both).is_empty());

    let slower = both.with_ingress(Limit::new(BitRate::from_mbit_per_s(5)));
    let change = node_plan(&planner, &db, &slower);
    check("node_change_htb", &render(&change));
    db.apply(&change);

    let clear = node_plan(&planner, &db, &QosIntent::none());
    check("node_clear", &render(&clear));
    db.apply(&clear);
    assert_eq!((db.count("QoS"), db.count("Queue")), (0, 0));
}

#[test]
fn netem_replaces_htb_in_place_and_conflicts_are_named() {
    let planner = Planner::new(Config::default().with_ingress(IngressMechanism::OvsHtb));
    let mut db = node_db();
    let htb = QosIntent::none().with_ingress(Limit::new(BitRate::from_mbit_per_s(10)));
    let set = node_plan(&planner, &db, &htb);
    db.apply(&set);

    let netem = QosIntent::none().with_netem(Netem {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(2),
        loss: LossPercent::from_hundredths(150).unwrap(),
        limit: Some(500),
    });
    let switch = node_plan(&planner, &db, &netem);
    check("node_htb_to_netem", &render(&switch));
    db.apply(&switch);
    assert!(node_plan(&planner, &db, &netem).is_empty());
    assert_eq!((db.count("QoS"), db.count("Queue")), (1, 0));

    let both = htb.with_netem(netem.netem.unwrap());
    let rows = NodeRows::of(&db);
    let err = planner
        .plan_node(&target(), &both, &rows.observed())
        .unwrap_err();
    check("node_htb_and_netem_error", &format!("{err}\n"));
}
