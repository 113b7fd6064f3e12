//! The by-name writes of a plan fail loudly against a real OVN_Northbound, with the exact
//! error text, and nothing else changes: a child inserted into a parent that does not exist,
//! into a name two rows share, "insert if absent" racing another client, a row changed by UUID
//! that is gone, a write asserting a lock the client does not hold, and the server's own
//! refusals in the plan's words.

mod common;

use common::Nb;
use ovn_model::nb::{LogicalSwitch, LogicalSwitchPort, QoS, QoSDirection};
use ovn_model::plan::{Plan, PlanError};
use ovn_model::snapshot::Typed;
use ovsdb::Uuid;

fn qos(m: &str) -> QoS {
    QoS::new(QoSDirection::FromLport, 100, m).with_rate(1000, 1000)
}

fn switches(nb: &Nb) -> Vec<LogicalSwitch> {
    nb.rows::<LogicalSwitch>()
}

#[test]
fn a_child_of_a_missing_parent_fails_the_transaction_and_names_the_parent() {
    let Some(nb) = Nb::start() else { return };
    let mut plan = Plan::nb();
    plan.insert(&LogicalSwitch::new("ls1")).unwrap();
    plan.because("pod default/a: egress", |p| {
        p.insert_child::<LogicalSwitch, _>("ls9", &qos(r#"inport == "a""#))
    })
    .unwrap();
    let prepared = plan.validated(&nb.schema).unwrap();
    let err = nb.try_send(&prepared).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Logical_Switch named "ls9" matched no row, so nothing was changed (needed by: step 2 (pod default/a: egress: insert QoS @new_qos_2 into Logical_Switch named "ls9" qos_rules {"bandwidth":["map",[["burst",1000],["rate",1000]]],"direction":"from-lport","match":"inport == \"a\"","priority":100}))"#
    );
    assert!(switches(&nb).is_empty(), "ls1 was not inserted either");
    assert!(nb.rows::<QoS>().is_empty());
}

#[test]
fn a_name_two_rows_share_is_reported_after_the_commit() {
    let Some(nb) = Nb::start() else { return };
    nb.nbctl(&["ls-add", "dup", "--", "--may-exist", "ls-add", "other"]);
    nb.nbctl(&["create", "Logical_Switch", "name=dup"]);
    let mut plan = Plan::nb();
    plan.because("pod default/a: egress", |p| {
        p.insert_child::<LogicalSwitch, _>("dup", &qos("1"))
    })
    .unwrap();
    let err = nb
        .try_send(&plan.validated(&nb.schema).unwrap())
        .unwrap_err();
    assert!(matches!(err, PlanError::Several { count: 2, .. }), "{err}");
    assert!(
        err.to_string().starts_with(
            r#"Logical_Switch named "dup" matched 2 rows where one was meant (step 1 (pod default/a: egress: insert QoS"#
        ),
        "{err}"
    );
    // The double attach happened: this is what resolving through a snapshot prevents.
    let dups: Vec<LogicalSwitch> = switches(&nb)
        .into_iter()
        .filter(|s| s.name == "dup")
        .collect();
    assert!(dups.iter().all(|s| s.qos_rules.len() == 1));

    let replica = nb.replica(&["Logical_Switch"]);
    let snap = replica.snapshot();
    let err = Typed::new(&snap)
        .one_by_name::<LogicalSwitch>("dup")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Logical_Switch named "dup" matched 2 rows where one was meant (looked up by name)"#
    );
}

#[test]
fn insert_if_absent_keeps_an_existing_row_and_refuses_a_racing_one() {
    let Some(nb) = Nb::start() else { return };
    nb.nbctl(&["ls-add", "ls1"]);
    let replica = nb.replica(&["Logical_Switch", "Logical_Switch_Port"]);
    let snap = replica.snapshot();
    let observed = Typed::new(&snap);

    // ls1 exists: nothing inserted, the port goes into it.
    let mut plan = Plan::nb();
    let ls1 = plan
        .insert_if_absent(&observed, &LogicalSwitch::new("ls1"))
        .unwrap();
    plan.insert_child(&ls1, &LogicalSwitchPort::new("p1"))
        .unwrap();
    // ls2 does not: inserted, guarded against another client creating it first.
    let mut racing = Plan::nb();
    racing
        .insert_if_absent(&observed, &LogicalSwitch::new("ls2"))
        .unwrap();
    nb.try_send(&plan.validated(&nb.schema).unwrap()).unwrap();
    assert_eq!(
        nb.nbctl(&["lsp-get-ls", "p1"]).split(' ').nth(1),
        Some("(ls1)")
    );
    assert_eq!(switches(&nb).len(), 1);

    nb.nbctl(&["ls-add", "ls2"]);
    let err = nb
        .try_send(&racing.validated(&nb.schema).unwrap())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Logical_Switch named "ls2" exists now, so nothing was changed (the plan inserts it only if absent)"#
    );
    assert_eq!(switches(&nb).len(), 2, "no second ls2");
}

#[test]
fn a_row_changed_by_uuid_that_is_gone_is_stale() {
    let Some(nb) = Nb::start() else { return };
    let gone = Uuid::from_u128(0x5eed);
    let mut plan = Plan::nb();
    plan.because("pod default/a: egress changed", |p| {
        p.update::<QoS>(gone, &qos("2"), &["match"])
    })
    .unwrap();
    let err = nb
        .try_send(&plan.validated(&nb.schema).unwrap())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            r#"QoS row {gone} no longer exists: step 1 (pod default/a: egress changed: update QoS {gone} {{"match":"2"}}) changed nothing (plan again from a fresh snapshot)"#
        )
    );
}

#[test]
fn the_servers_refusal_names_the_step_and_keeps_the_servers_words() {
    let Some(nb) = Nb::start() else { return };
    nb.nbctl(&["ls-add", "ls1", "--", "lsp-add", "ls1", "p1"]);
    let mut plan = Plan::nb();
    plan.because("pod default/p1", |p| {
        p.insert_child::<LogicalSwitch, _>("ls1", &LogicalSwitchPort::new("p1"))
    })
    .unwrap();
    let err = nb
        .try_send(&plan.validated(&nb.schema).unwrap())
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(
            r#"the server refused the commit: constraint violation: Transaction causes multiple rows in "Logical_Switch_Port" table to have identical values (p1) for index on column "name"."#
        ),
        "{text}"
    );
    assert_eq!(nb.nbctl(&["lsp-list", "ls1"]).lines().count(), 1);
}

#[test]
fn a_port_is_deleted_by_name_in_one_call() {
    let Some(nb) = Nb::start() else { return };
    nb.nbctl(&[
        "ls-add", "ls1", "--", "lsp-add", "ls1", "p1", "--", "lsp-add", "ls1", "p2",
    ]);
    let replica = nb.replica(&["Logical_Switch", "Logical_Switch_Port"]);
    let snap = replica.snapshot();
    let observed = Typed::new(&snap);
    let mut plan = Plan::nb();
    assert!(
        plan.delete_named::<LogicalSwitchPort>(&observed, "p1")
            .unwrap()
    );
    assert!(
        !plan
            .delete_named::<LogicalSwitchPort>(&observed, "p9")
            .unwrap()
    );
    nb.try_send(&plan.validated(&nb.schema).unwrap()).unwrap();
    assert_eq!(nb.nbctl(&["lsp-list", "ls1"]).lines().count(), 1);
    assert!(nb.nbctl(&["lsp-list", "ls1"]).ends_with("(p2)"));
}

#[test]
fn only_the_holder_of_the_lock_writes() {
    let Some(nb) = Nb::start() else { return };
    let mut plan = Plan::nb();
    let sw = plan.insert(&LogicalSwitch::new("ls1")).unwrap();
    plan.insert_child(&sw, &LogicalSwitchPort::new("p1"))
        .unwrap();
    let err = nb
        .try_send(&plan.transaction_holding("writer").unwrap())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"this client does not hold the lock "writer": nothing was written"#
    );
    assert!(switches(&nb).is_empty());

    assert!(nb.lock("writer"), "the lock is free");
    let prepared = plan.transaction_holding("writer").unwrap();
    let outcome = nb.try_send(&prepared).unwrap();
    let mut rows = prepared.inserted_rows(&outcome);
    rows.sort();
    let mut expected = vec![
        ("Logical_Switch".to_owned(), switches(&nb)[0].uuid),
        (
            "Logical_Switch_Port".to_owned(),
            nb.rows::<LogicalSwitchPort>()[0].uuid,
        ),
    ];
    expected.sort();
    assert_eq!(rows, expected);
}
