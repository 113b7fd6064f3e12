use ovsdb::table::EncodeError;
use ovsdb::{Datum, Operation};

use crate::nb::{
    self, Acl, AclAction, AclDirection, LoadBalancer, LogicalRouter, LogicalRouterPort,
    LogicalRouterStaticRoute, LogicalSwitch, LogicalSwitchPort, PortGroup,
};

use crate::plan::{Plan, PlanError};

fn mac(s: &str) -> crate::MacAddr {
    s.parse().unwrap()
}

#[test]
fn children_of_new_parents_go_into_the_parents_insert() {
    let mut cs = Plan::nb();
    let sw = cs.insert(&LogicalSwitch::new("sw")).unwrap();
    let p = cs.insert_child(&sw, &LogicalSwitchPort::new("p")).unwrap();
    let plan = cs.validated(nb::schema()).unwrap();
    let ops = plan.transaction().operations();
    assert_eq!(ops.len(), 2);
    let Operation::Insert(ins) = &ops[0] else {
        panic!("{ops:?}")
    };
    assert_eq!(ins.row.get("ports"), Some(&Datum::set([p.id().to_atom()])));
}

#[test]
fn children_of_existing_parents_mutate_the_parent() {
    let mut cs = Plan::nb();
    cs.insert_child::<LogicalSwitch, _>("sw", &LogicalSwitchPort::new("p"))
        .unwrap();
    let plan = cs.validated(nb::schema()).unwrap();
    let json = serde_json::to_value(plan.transaction()).unwrap();
    // First a wait that fails the transaction when no switch is called sw.
    assert_eq!(json[1]["op"], "wait");
    assert_eq!(json[1]["where"], serde_json::json!([["name", "==", "sw"]]));
    assert_eq!(json[1]["until"], "!=");
    assert_eq!(json[1]["rows"], serde_json::json!([]));
    assert_eq!(json[1]["timeout"], 0);
    assert_eq!(json[2]["op"], "insert");
    assert_eq!(json[3]["op"], "mutate");
    assert_eq!(json[3]["where"], serde_json::json!([["name", "==", "sw"]]));
    assert_eq!(json[3]["mutations"][0][1], "insert");
}

#[test]
fn a_parent_from_another_change_set_is_refused() {
    let mut other = Plan::nb();
    let sw = other.insert(&LogicalSwitch::new("sw")).unwrap();
    let mut cs = Plan::nb();
    let err = cs
        .insert_child(&sw, &LogicalSwitchPort::new("p"))
        .unwrap_err();
    assert!(matches!(
        err,
        PlanError::UnknownNamedRow {
            table: "Logical_Switch",
            ..
        }
    ));
    assert!(cs.is_empty(), "a refused child leaves nothing behind");
}

#[test]
fn model_constraints_are_checked_when_rows_are_added() {
    let mut cs = Plan::nb();
    let sw = cs.insert(&LogicalSwitch::new("sw")).unwrap();
    let mut acl = Acl::new(AclDirection::ToLport, 100, "ip4", AclAction::Drop);
    acl.priority = 40_000;
    let err = cs.insert_child(&sw, &acl).unwrap_err();
    assert!(
        matches!(
            &err,
            PlanError::Encode(EncodeError::Constraint {
                table: "ACL",
                column: "priority",
                ..
            })
        ),
        "{err}"
    );
    acl.priority = 1;
    acl.action = AclAction::Other("allow-sometimes".into());
    assert!(cs.insert_child(&sw, &acl).is_err());
    let no_networks = LogicalRouterPort::new("rp", mac("0a:00:00:00:00:01"), []);
    let r = cs.insert(&LogicalRouter::new("r")).unwrap();
    assert!(cs.insert_child(&r, &no_networks).is_err());
}

#[test]
fn server_schema_is_checked_at_build() {
    let mut cs = Plan::nb();
    cs.insert(&LoadBalancer::new("lb", None).with_affinity(10))
        .unwrap();
    let old = ovsdb::DatabaseSchema::from_json_str(
        r#"{"name":"OVN_Northbound","version":"1.0.0","tables":{"Load_Balancer":{"isRoot":true,
            "columns":{"name":{"type":"string"}}}}}"#,
    )
    .unwrap();
    let err = cs.validated(&old).unwrap_err();
    assert!(matches!(err, PlanError::Invalid(_)), "{err}");
}

#[test]
fn updates_write_only_the_chosen_columns() {
    let mut cs = Plan::nb();
    let sw = LogicalSwitch::new("sw").with_subnet("10.1.0.0/24".parse().unwrap());
    cs.update::<LogicalSwitch>("sw", &sw, &["other_config"])
        .unwrap();
    let route = LogicalRouterStaticRoute::new(
        "10.2.0.0/16".parse().unwrap(),
        "10.1.0.254".parse().unwrap(),
    );
    cs.insert_child::<LogicalRouter, _>("r", &route).unwrap();
    cs.delete::<PortGroup>("pg").unwrap();
    let plan = cs.validated(nb::schema()).unwrap();
    let json = serde_json::to_value(plan.transaction()).unwrap();
    // A guard before each use of a name: the switch updated, the router the route goes into.
    assert_eq!(
        (&json[1]["op"], &json[1]["table"]),
        (&"wait".into(), &"Logical_Switch".into())
    );
    assert_eq!(
        json[2]["row"],
        serde_json::json!({"other_config": ["map", [["subnet", "10.1.0.0/24"]]]})
    );
    assert_eq!(
        (&json[3]["op"], &json[3]["table"]),
        (&"wait".into(), &"Logical_Router".into())
    );
    assert_eq!(json[4]["row"]["ip_prefix"], "10.2.0.0/16");
    assert_eq!(json[6]["op"], "delete");
}
