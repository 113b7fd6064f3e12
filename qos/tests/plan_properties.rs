//! Properties of the planner, applying its plans with the in-memory transaction engine of
//! `common`
//! (the same properties run against a real `ovsdb-server` in `server.rs`): planning again after
//! applying gives an empty plan; clearing leaves no row of the pod; a change of rates only
//! updates rows in place; rows of another pod are never touched.

mod common;

use common::strategies::{config, intent, limit};
use common::{all_external_ids, apply, count, nb_db, nb_observed, node_db, node_observed, rows};
use ovn_model::plan::Change;
use ovn_model::{nb, vswitch};
use ovsdb::replica::Replica;
use proptest::prelude::*;
use qos::{PlanError, Planner, PodId, PodTarget, QosIntent};

fn target(name: &str) -> PodTarget {
    PodTarget::new(PodId::new("ns", name), "ls1", name, format!("veth-{name}"))
}

/// Plans and applies `intent` for pod `name` to both databases, and checks that planning again
/// gives nothing; `false` if the planner refused the combination (htb and netem), in which case
/// nothing was applied.
fn converge(
    planner: &Planner,
    nb: &mut Replica,
    node: &mut Replica,
    name: &str,
    intent: &QosIntent,
) -> bool {
    let t = target(name);
    let node_plan = match planner.plan_node(&t, intent, &node_observed(node, &t)) {
        Ok(p) => p,
        Err(PlanError::HtbAndNetem { .. }) => return false,
        Err(e) => panic!("{e}"),
    };
    let nb_plan = planner.plan_nb(&t, intent, &nb_observed(nb, &t)).unwrap();
    // Both plans make transactions that fit their schema.
    let _ = node_plan.validated(vswitch::schema()).unwrap();
    let _ = nb_plan.validated(nb::schema()).unwrap();
    apply(nb, &nb_plan);
    apply(node, &node_plan);
    let again_nb = planner.plan_nb(&t, intent, &nb_observed(nb, &t)).unwrap();
    let again_node = planner
        .plan_node(&t, intent, &node_observed(node, &t))
        .unwrap();
    assert!(again_nb.is_empty(), "NB plan after apply:\n{again_nb}");
    assert!(
        again_node.is_empty(),
        "node plan after apply:\n{again_node}"
    );
    true
}

/// (NB QoS, OVS QoS, OVS Queue) rows.
fn counts(nb: &Replica, node: &Replica) -> (usize, usize, usize) {
    (count(nb, "QoS"), count(node, "QoS"), count(node, "Queue"))
}

proptest! {
    #[test]
    fn plan_after_apply_is_empty_and_clear_leaves_no_row(
        config in config(),
        intents in prop::collection::vec(intent(), 1..6),
        other in intent(),
    ) {
        let planner = Planner::new(config);
        let (mut nb, mut node) = (nb_db(), node_db());
        // Pod `b` (on veth-b) keeps its rows through everything done to pod `a`.
        let other_ok = converge(&planner, &mut nb, &mut node, "b", &other);
        let before = counts(&nb, &node);
        for i in &intents {
            converge(&planner, &mut nb, &mut node, "a", i);
        }
        converge(&planner, &mut nb, &mut node, "a", &QosIntent::none());
        prop_assert_eq!(counts(&nb, &node), before);
        let a = PodId::new("ns", "a").object().to_string();
        let tagged_a = all_external_ids(&nb, &node).iter().any(|ids| ids.values().any(|v| *v == a));
        prop_assert!(!tagged_a);
        let iface = rows::<vswitch::Interface>(&node).into_iter().find(|i| i.name == "veth-a").unwrap();
        prop_assert_eq!((iface.ingress_policing_rate, iface.ingress_policing_burst), (0, 0));
        if other_ok {
            converge(&planner, &mut nb, &mut node, "b", &QosIntent::none());
        }
        prop_assert_eq!(counts(&nb, &node), (0, 0, 0));
    }

    #[test]
    fn changing_rates_only_updates_in_place(
        config in config(),
        first in intent(),
        rates in (limit(), limit()),
    ) {
        let planner = Planner::new(config);
        let (mut nb, mut node) = (nb_db(), node_db());
        prop_assume!(converge(&planner, &mut nb, &mut node, "a", &first));
        // The same limits exist, with other numbers.
        let second = QosIntent {
            ingress: first.ingress.map(|_| rates.0),
            egress: first.egress.map(|_| rates.1),
            ..first
        };
        let t = target("a");
        let plans = [
            planner.plan_nb(&t, &second, &nb_observed(&nb, &t)).unwrap(),
            planner.plan_node(&t, &second, &node_observed(&node, &t)).unwrap(),
        ];
        for p in &plans {
            for s in p.steps() {
                prop_assert!(matches!(s.change, Change::Update { .. }), "not in place: {}", s.change);
            }
        }
    }
}
