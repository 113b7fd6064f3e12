use ovsdb::monitor::{MonitorMethod, MonitorRequest, TableMonitor};
use ovsdb::replica::Replica;
use ovsdb::{Datum, Uuid};

use super::*;
use crate::nb::{self, LogicalRouter, LogicalRouterStaticRoute, LogicalSwitch, QoS, QoSDirection};
use crate::owner::{Component, Object, Scope};
use crate::snapshot::Typed;

fn key(role: &str) -> Key {
    Key::new(Component::QOS, Object::pod("default", "web"), role)
}

fn qos(m: &str, rate: u32) -> QoS {
    QoS::new(QoSDirection::FromLport, 100, m).with_rate(rate, rate)
}

fn want(role: &str, row: &QoS) -> Want {
    Want::child::<LogicalSwitch, _>(key(role), row, Uuid::from_u128(1), format!("{role} asked"))
        .unwrap()
}

/// `row` as observed: with a UUID and the tags `key` gives it.
fn observed(uuid: u128, k: &Key, row: &QoS) -> OwnedRow {
    let mut r = row.clone();
    r.uuid = Uuid::from_u128(uuid);
    r.external_ids = k.tags();
    OwnedRow::from_typed(&r).unwrap()
}

#[test]
fn wanted_rows_are_inserted_changed_or_left_and_the_rest_deleted() {
    let owned = vec![
        observed(10, &key("egress"), &qos("a", 1000)),
        observed(11, &key("ingress"), &qos("b", 1000)),
        observed(12, &key("dscp"), &qos("c", 1000)),
    ];
    let wanted = vec![
        want("egress", &qos("a", 1000)),
        want("ingress", &qos("b", 2000)),
        want("new", &qos("d", 1000)),
    ];
    let mut plan = Plan::nb();
    let resolved = diff(&mut plan, wanted, owned).unwrap();
    let lines = plan.explain();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert_eq!(
        lines[0],
        format!(
            r#"ingress asked: update QoS {} {{"bandwidth":["map",[["burst",2000],["rate",2000]]]}}"#,
            Uuid::from_u128(11)
        )
    );
    assert!(lines[1].starts_with(&format!(
        "new asked: insert QoS @new_qos_1 into Logical_Switch {} qos_rules",
        Uuid::from_u128(1)
    )));
    assert_eq!(
        lines[2],
        format!(
            "qos pod/default/web dscp: no longer wanted: delete QoS {}",
            Uuid::from_u128(12)
        )
    );
    assert_eq!(
        resolved.target("QoS", &key("egress")),
        Some(&RowTarget::Uuid(Uuid::from_u128(10)))
    );
    assert_eq!(
        resolved.atom("QoS", &key("new")),
        Some(Atom::NamedUuid(ovsdb::NamedUuid::new("new_qos_1").unwrap()))
    );
}

#[test]
fn a_second_owned_row_with_the_same_key_is_deleted() {
    let row = qos("a", 1000);
    let owned = vec![
        observed(10, &key("egress"), &row),
        observed(11, &key("egress"), &row),
    ];
    let mut plan = Plan::nb();
    diff(&mut plan, vec![want("egress", &row)], owned).unwrap();
    assert_eq!(plan.steps().len(), 1);
    assert!(matches!(
        &plan.steps()[0].change,
        Change::Delete { target: RowTarget::Uuid(u), .. } if *u == Uuid::from_u128(11)
    ));
}

#[test]
fn a_column_the_observed_row_lacks_is_an_error_not_equal() {
    let mut o = observed(10, &key("egress"), &qos("a", 1000));
    if let Some(row) = &mut o.row {
        row.remove("bandwidth");
    }
    let err = diff(
        &mut Plan::nb(),
        vec![want("egress", &qos("a", 1000))],
        vec![o],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "QoS row {} (qos pod/default/web egress): the server has no column bandwidth",
            Uuid::from_u128(10)
        )
    );
}

#[test]
fn an_unreadable_owned_row_is_rewritten_whole() {
    let mut o = observed(10, &key("egress"), &qos("a", 1000));
    o.row = None;
    let mut plan = Plan::nb();
    diff(&mut plan, vec![want("egress", &qos("a", 1000))], vec![o]).unwrap();
    let Change::Update { row, .. } = &plan.steps()[0].change else {
        panic!("{plan}")
    };
    let columns: Vec<&str> = row.columns().collect();
    assert_eq!(
        columns,
        [
            "action",
            "bandwidth",
            "direction",
            "external_ids",
            "match",
            "priority"
        ]
    );
}

#[test]
fn ignored_columns_are_neither_compared_nor_written() {
    let o = observed(10, &key("egress"), &qos("a", 1000));
    let w = want("egress", &qos("changed", 1000)).ignoring(&["match"]);
    let mut plan = Plan::nb();
    diff(&mut plan, vec![w.clone()], vec![o]).unwrap();
    assert!(plan.is_empty(), "{plan}");
    let mut plan = Plan::nb();
    diff(&mut plan, vec![w], Vec::new()).unwrap();
    let Change::Insert { row, .. } = &plan.steps()[0].change else {
        panic!("{plan}")
    };
    assert!(row.get("match").is_none());
}

#[test]
fn two_wants_with_one_key_are_a_planner_bug() {
    let err = diff(
        &mut Plan::nb(),
        vec![want("egress", &qos("a", 1)), want("egress", &qos("b", 1))],
        Vec::new(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "table QoS: two wanted rows have the key qos pod/default/web egress"
    );
}

#[test]
fn tags_are_added_to_the_rows_own_external_ids_and_tables_without_them_are_refused() {
    let mut row =
        LogicalRouterStaticRoute::new("10.0.0.0/8".parse().unwrap(), "10.1.0.1".parse().unwrap());
    row.external_ids.insert("note".into(), "kept".into());
    let k = Key::new(Component::GATEWAY, Object::cluster(), "route");
    let w = Want::child::<LogicalRouter, _>(k, &row, "r", "").unwrap();
    let ids = w.external_ids();
    assert_eq!(ids["note"], "kept");
    assert_eq!(ids["ovnkit.io/owner"], "gateway");
    let err = Want::root(
        Key::new(Component::GATEWAY, Object::cluster(), "group"),
        &nb::LoadBalancerGroup::default(),
        "",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "table Load_Balancer_Group has no external_ids column to carry owner tags"
    );
}

#[test]
fn a_snapshot_gives_the_rows_of_a_scope_only() {
    let mut replica = Replica::new(nb::schema());
    let monitor = MonitorRequest::new("OVN_Northbound", MonitorMethod::Monitor)
        .with_table("QoS", TableMonitor::all());
    let tags = |object: &str| {
        format!(
            r#"["map",[["ovnkit.io/object","{object}"],["ovnkit.io/owner","qos"],["ovnkit.io/role","egress"]]]"#
        )
    };
    let reply = format!(
        r#"{{"QoS":{{
        "{}":{{"new":{{"match":"a","external_ids":{}}}}},
        "{}":{{"new":{{"match":"b","external_ids":{}}}}},
        "{}":{{"new":{{"match":"c","external_ids":["map",[["owner","someone"]]]}}}}}}}}"#,
        Uuid::from_u128(1),
        tags("pod/default/web"),
        Uuid::from_u128(2),
        tags("pod/default/db"),
        Uuid::from_u128(3),
    );
    replica.apply_reply(&monitor, &reply).unwrap();
    let snap = replica.snapshot();
    let typed = Typed::new(&snap);
    let web = typed.owned::<QoS>(&Scope::object(
        Component::QOS,
        Object::pod("default", "web"),
    ));
    assert_eq!(web.len(), 1);
    assert_eq!(web[0].uuid, Uuid::from_u128(1));
    assert_eq!(
        web[0].row.as_ref().unwrap().get("match"),
        Some(&Datum::from("a"))
    );
    let all = typed.owned::<QoS>(&Scope::component(Component::QOS));
    assert_eq!(all.len(), 2, "the hand-written row is nobody's");
}

#[test]
fn a_wanted_parent_leaves_its_children_and_others_references_alone() {
    let k = Key::new(Component::TOPOLOGY, Object::subnet("ls1"), "switch");
    let want = Want::root(k.clone(), &LogicalSwitch::new("ls1"), "a subnet").unwrap();
    // As observed: ports (the inserts of its children) and a load balancer (another planner).
    let mut seen = LogicalSwitch::new("ls1");
    seen.uuid = Uuid::from_u128(1);
    seen.external_ids = k.tags();
    seen.ports.insert(ovsdb::Ref::new(Uuid::from_u128(2)));
    seen.load_balancer
        .insert(ovsdb::WeakRef::new(Uuid::from_u128(3)));
    let owned = OwnedRow::from_rows(&[seen.clone()]);
    let mut plan = Plan::nb();
    diff(&mut plan, vec![want.clone()], owned.clone()).unwrap();
    assert!(plan.is_empty(), "{plan}");
    // Managed on request: the planner drops references it made itself.
    let mut plan = Plan::nb();
    diff(&mut plan, vec![want.managing(&["load_balancer"])], owned).unwrap();
    assert_eq!(
        plan.explain(),
        [format!(
            r#"a subnet: update Logical_Switch {} {{"load_balancer":["set",[]]}}"#,
            Uuid::from_u128(1)
        )]
    );
}
