use ovsdb::{OperationResult, OvsdbError, TransactError, TransactOutcome, Uuid};
use serde_json::json;

use super::*;
use crate::nb::{self, Acl, LogicalSwitch, LogicalSwitchPort, PortGroup, QoS, QoSDirection};

fn ops(plan: &Plan) -> serde_json::Value {
    serde_json::to_value(plan.transaction().unwrap().transaction()).unwrap()
}

fn qos(m: &str) -> QoS {
    QoS::new(QoSDirection::FromLport, 100, m).with_rate(1000, 1000)
}

#[test]
fn merged_plans_rename_their_rows_and_keep_their_references() {
    let mut a = Plan::nb();
    let sw = a.insert(&LogicalSwitch::new("a")).unwrap();
    a.insert_child(&sw, &LogicalSwitchPort::new("a1")).unwrap();
    // The same fresh names in a second plan: merging them as they are would make the server
    // refuse the transaction with "duplicate uuid-name".
    let mut b = Plan::nb();
    let sw = b.insert(&LogicalSwitch::new("b")).unwrap();
    b.insert_child(&sw, &LogicalSwitchPort::new("b1")).unwrap();
    b.insert_child::<LogicalSwitch, _>("c", &qos("1")).unwrap();
    a.merge(b).unwrap();

    let names: Vec<String> = a
        .steps()
        .iter()
        .filter_map(|s| match &s.change {
            Change::Insert { name, .. } => Some(name.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        names,
        [
            "new_logicalswitch_1",
            "new_logicalswitchport_2",
            "new_logicalswitch_3",
            "new_logicalswitchport_4",
            "new_qos_5"
        ]
    );
    let json = ops(&a);
    // b's switch still holds b's port, under its new name.
    let b_switch = json
        .as_array()
        .unwrap()
        .iter()
        .find(|op| op["row"]["name"] == "b")
        .unwrap();
    assert_eq!(
        b_switch["row"]["ports"],
        json!(["named-uuid", "new_logicalswitchport_4"])
    );
    let _ = a.validated(nb::schema()).unwrap();
}

#[test]
fn plans_of_two_databases_do_not_merge() {
    let mut a = Plan::nb();
    let err = a.merge(Plan::vswitch()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a plan for Open_vSwitch cannot be merged into a plan for OVN_Northbound"
    );
}

#[test]
fn reasons_apply_to_the_steps_added_inside() {
    let mut plan = Plan::nb();
    plan.because("pod web", |p| p.insert(&LogicalSwitch::new("x")))
        .unwrap();
    plan.insert(&LogicalSwitch::new("y")).unwrap();
    let lines = plan.explain();
    assert_eq!(
        lines[0],
        r#"pod web: insert Logical_Switch @new_logicalswitch_1 {"name":"x"}"#
    );
    assert_eq!(
        lines[1],
        r#"insert Logical_Switch @new_logicalswitch_2 {"name":"y"}"#
    );
    assert_eq!(
        plan.to_string().lines().next(),
        Some("OVN_Northbound: 2 steps")
    );
    assert_eq!(Plan::nb().to_string(), "OVN_Northbound: nothing to change");
}

#[test]
fn updates_and_reference_inserts_of_new_rows_go_into_their_inserts() {
    let mut plan = Plan::nb();
    let sw = plan.insert(&LogicalSwitch::new("x")).unwrap();
    let renamed = LogicalSwitch::new("z");
    plan.update(&sw, &renamed, &["name"]).unwrap();
    let lb = plan
        .insert(&nb::LoadBalancer::new("lb", None).with_vip(
            "10.96.0.1:80".parse().unwrap(),
            &["10.0.0.2:80".parse().unwrap()],
        ))
        .unwrap();
    plan.attach_load_balancer(&sw, &lb).unwrap();
    let json = ops(&plan);
    assert_eq!(json.as_array().unwrap().len(), 3, "{json:#}");
    assert_eq!(json[1]["row"]["name"], "z");
    assert_eq!(
        json[1]["row"]["load_balancer"],
        json!(["named-uuid", "new_loadbalancer_2"])
    );
}

#[test]
fn a_child_without_a_parent_is_refused_and_names_must_be_the_plans_own() {
    let mut plan = Plan::nb();
    plan.push(
        Change::Insert {
            table: "ACL",
            name: NamedUuid::new("lonely").unwrap(),
            row: Row::new().with("match", "1"),
            parent: None,
        },
        "",
    )
    .unwrap();
    assert_eq!(
        plan.transaction().unwrap_err().to_string(),
        "table ACL: row @lonely is not referred to by any row of the plan"
    );
    let err = plan
        .push(
            Change::Update {
                table: "ACL",
                target: RowTarget::Named(NamedUuid::new("elsewhere").unwrap()),
                row: Row::new(),
            },
            "",
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "table ACL: row @elsewhere is not created by this plan"
    );
    assert_eq!(
        plan.steps().len(),
        1,
        "a refused change leaves the plan as it was"
    );
}

#[test]
fn a_child_is_deleted_from_every_parent_column_that_can_hold_it() {
    let acl = Uuid::from_u128(7);
    let mut plan = Plan::nb();
    plan.delete::<Acl>(acl).unwrap();
    plan.delete::<PortGroup>("pg").unwrap();
    let json = ops(&plan);
    let uuid = json!(["uuid", acl.to_string()]);
    assert_eq!(json[1]["op"], "mutate");
    assert_eq!(json[1]["table"], "Logical_Switch");
    assert_eq!(json[1]["where"], json!([["acls", "includes", uuid]]));
    assert_eq!(json[1]["mutations"], json!([["acls", "delete", uuid]]));
    assert_eq!(json[2]["table"], "Port_Group");
    assert_eq!(json[3]["op"], "delete");
    assert_eq!(json[3]["where"], json!([["name", "==", "pg"]]));

    let mut by_name = Plan::nb();
    by_name.delete::<Acl>("x").unwrap();
    assert!(matches!(
        by_name.transaction().unwrap_err(),
        PlanError::ChildByName { table: "ACL", .. }
    ));
}

#[test]
fn a_parent_inserted_earlier_by_the_same_plan_can_be_named() {
    // The topology plan creates ls1, the QoS plan (made without seeing ls1) names it; merged,
    // the guard runs after the insert, so it sees the new switch.
    let mut topology = Plan::nb();
    topology.insert(&LogicalSwitch::new("ls1")).unwrap();
    let mut qos_plan = Plan::nb();
    qos_plan
        .insert_child::<LogicalSwitch, _>("ls1", &qos("a"))
        .unwrap();
    topology.merge(qos_plan).unwrap();
    let json = ops(&topology);
    let kinds: Vec<&str> = json.as_array().unwrap()[1..]
        .iter()
        .map(|op| op["op"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["insert", "wait", "insert", "mutate"]);
}

#[test]
fn one_guard_and_one_mutate_per_existing_parent() {
    let mut plan = Plan::nb();
    for m in ["1", "2", "3"] {
        plan.insert_child::<LogicalSwitch, _>("ls1", &qos(m))
            .unwrap();
    }
    plan.insert_child::<LogicalSwitch, _>(Uuid::from_u128(9), &qos("4"))
        .unwrap();
    let json = ops(&plan);
    let kinds: Vec<&str> = json.as_array().unwrap()[1..]
        .iter()
        .map(|op| op["op"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "wait", "insert", "mutate", "insert", "insert", "wait", "insert", "mutate"
        ]
    );
    // The first child's mutate adds all three (the later ones are declared after it).
    assert_eq!(
        json[3]["mutations"][0][2],
        json!([
            "set",
            [
                ["named-uuid", "new_qos_1"],
                ["named-uuid", "new_qos_2"],
                ["named-uuid", "new_qos_3"]
            ]
        ])
    );
}

fn failed_at(index: usize, error: &str, details: &str) -> TransactError {
    TransactError::Operation {
        index,
        kind: ovsdb::OpKind::Wait,
        table: Some("Logical_Switch".into()),
        error: OvsdbError {
            error: error.into(),
            details: Some(details.into()),
            syntax: None,
        },
    }
}

#[test]
fn a_failed_guard_names_the_missing_row_and_who_needed_it() {
    let mut plan = Plan::nb();
    plan.because("pod a: egress limit", |p| {
        p.insert_child::<LogicalSwitch, _>("ls9", &qos("a"))
    })
    .unwrap();
    let prepared = plan.transaction().unwrap();
    let err = prepared.failure(failed_at(0, "timed out", "\"where\" clause test failed"));
    assert_eq!(
        err.to_string(),
        r#"Logical_Switch named "ls9" matched no row, so nothing was changed (needed by: step 1 (pod a: egress limit: insert QoS @new_qos_1 into Logical_Switch named "ls9" qos_rules {"bandwidth":["map",[["burst",1000],["rate",1000]]],"direction":"from-lport","match":"a","priority":100}))"#
    );
    let err = prepared.failure(failed_at(1, "constraint violation", "no"));
    assert!(
        err.to_string()
            .starts_with("the server refused step 1 (pod a: egress limit: insert QoS"),
        "{err}"
    );
    let err = prepared.failure(TransactError::Commit {
        error: OvsdbError {
            error: "referential integrity violation".into(),
            details: Some("d".into()),
            syntax: None,
        },
    });
    assert_eq!(
        err.to_string(),
        "the server refused the commit: referential integrity violation: d"
    );
}

#[test]
fn counts_tell_several_rows_and_vanished_ones() {
    let mut plan = Plan::nb();
    plan.insert_child::<LogicalSwitch, _>("twice", &qos("a"))
        .unwrap();
    plan.update::<QoS>(Uuid::from_u128(3), &qos("b"), &["match"])
        .unwrap();
    let prepared = plan.transaction().unwrap();
    // wait, insert, mutate (by name), update (by UUID)
    let outcome = |mutated: u64, updated: u64| {
        let results = vec![
            OperationResult::Empty,
            OperationResult::Uuid(Uuid::from_u128(1)),
            OperationResult::Count(mutated),
            OperationResult::Count(updated),
        ];
        let reply = serde_json::to_string(&results_json(&results)).unwrap();
        prepared
            .transaction()
            .decode_result_slice(reply.as_bytes())
            .unwrap()
    };
    prepared.check(&outcome(1, 1)).unwrap();
    let err = prepared.check(&outcome(2, 1)).unwrap_err();
    assert!(
        err.to_string().starts_with(
            r#"Logical_Switch named "twice" matched 2 rows where one was meant (step 1"#
        ),
        "{err}"
    );
    let err = prepared.check(&outcome(1, 0)).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "QoS row {} no longer exists: step 2",
            Uuid::from_u128(3)
        )),
        "{err}"
    );
}

fn results_json(results: &[OperationResult]) -> serde_json::Value {
    results
        .iter()
        .map(|r| match r {
            OperationResult::Uuid(u) => json!({"uuid": ["uuid", u.to_string()]}),
            OperationResult::Count(n) => json!({"count": n}),
            _ => json!({}),
        })
        .collect()
}

#[test]
fn outcome_uuids_of_inserted_rows() {
    let mut plan = Plan::nb();
    let sw = plan.insert(&LogicalSwitch::new("x")).unwrap();
    let prepared = plan.transaction().unwrap();
    let u = Uuid::from_u128(5);
    let outcome: TransactOutcome = prepared
        .transaction()
        .decode_result_slice(
            serde_json::to_string(&json!([{"uuid": ["uuid", u.to_string()]}]))
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
    assert_eq!(prepared.uuid(&outcome, &sw), Some(u));
    let existing = ovsdb::Ref::<LogicalSwitch>::new(Uuid::from_u128(6));
    assert_eq!(prepared.uuid(&outcome, &existing), Some(Uuid::from_u128(6)));
}
