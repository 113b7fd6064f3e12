//! Error paths against a real NB `ovsdb-server`: each failure comes back as a typed
//! [`TransactError`] that names the failed operation and keeps the server's `error` and
//! `details`; where the schema can tell in advance, [`Transaction::validate`] catches it first.
//!
//! Needs root and OVN (the testbed skips without them, and fails when `CI=true`).

mod txn_common;

use ovsdb::{
    Condition, ConstraintError, Datum, Delete, ErrorKind, Insert, NamedUuid, OpKind, Operation,
    Row, Select, TransactError, Transaction, Uuid, ValidationError, Wait, WaitUntil,
};
use txn_common::nb;

const NB: &str = "OVN_Northbound";

fn op_error(e: &TransactError) -> (usize, OpKind, Option<&str>, ErrorKind) {
    match e {
        TransactError::Operation {
            index,
            kind,
            table,
            error,
        } => (*index, *kind, table.as_deref(), error.kind()),
        other => panic!("expected an operation error, got {other:?}"),
    }
}

fn switch_named(name: &str) -> Insert {
    Insert::new("Logical_Switch", Row::new().with("name", name))
}

#[test]
fn constraint_violation_is_typed_and_caught_by_validation() {
    let Some(nb) = nb() else { return };
    let port = Insert::new(
        "Logical_Switch_Port",
        Row::new().with("name", "p").with("tag_request", 5000),
    );
    let txn = Transaction::new(NB).with(switch_named("ok")).with(port);

    match txn.validate(&nb.schema) {
        Err(ValidationError::Constraint {
            index: 1,
            table,
            column,
            constraint: ConstraintError::IntegerRange { value: 5000, .. },
            ..
        }) => assert_eq!(
            (table.as_str(), column.as_str()),
            ("Logical_Switch_Port", "tag_request")
        ),
        other => panic!("validation: {other:?}"),
    }

    let e = nb.transact(&txn).unwrap_err();
    assert_eq!(
        op_error(&e),
        (
            1,
            OpKind::Insert,
            Some("Logical_Switch_Port"),
            ErrorKind::ConstraintViolation
        )
    );
    let details = e
        .server_error()
        .and_then(|s| s.details.clone())
        .unwrap_or_default();
    assert!(details.contains("5000"), "details kept: {details}");
    assert!(nb.dump("Logical_Switch").is_empty(), "nothing committed");
}

#[test]
fn duplicate_index_value_fails_at_commit() {
    let Some(nb) = nb() else { return };
    let mut txn = Transaction::new(NB);
    let mut ports = Vec::new();
    for i in 0..2 {
        let n = NamedUuid::numbered("p", i);
        txn.push(
            Insert::new("Logical_Switch_Port", Row::new().with("name", "same"))
                .uuid_name(n.clone()),
        );
        ports.push(n);
    }
    txn.push(Insert::new(
        "Logical_Switch",
        Row::new().with("ports", Datum::set(ports)),
    ));
    txn.validate(&nb.schema)
        .expect("index uniqueness is the server's to check");
    match nb.transact(&txn).unwrap_err() {
        TransactError::Commit { error } => {
            assert_eq!(error.kind(), ErrorKind::ConstraintViolation);
            assert!(error.details.unwrap_or_default().contains("same"));
        }
        other => panic!("expected a commit error, got {other:?}"),
    }
}

#[test]
fn referential_integrity_violation_is_a_commit_error() {
    let Some(nb) = nb() else { return };
    // A strong reference to a row that does not exist.
    let missing = Uuid::from_u128(0xdead_beef_0000_4000_8000_0000_0000_0001);
    let txn = Transaction::new(NB).with(Insert::new(
        "Logical_Switch",
        Row::new()
            .with("name", "sw")
            .with("ports", Datum::set([missing])),
    ));
    txn.validate(&nb.schema)
        .expect("existence of real UUIDs is the server's to check");
    let e = nb.transact(&txn).unwrap_err();
    assert!(matches!(e, TransactError::Commit { .. }), "{e:?}");
    assert_eq!(e.kind(), Some(ErrorKind::ReferentialIntegrity));

    // Deleting a row that a strong reference still points at.
    let port = NamedUuid::new("port").expect("name");
    let mut txn = Transaction::new(NB);
    let p = txn.push(
        Insert::new("Logical_Switch_Port", Row::new().with("name", "p1")).uuid_name(port.clone()),
    );
    txn.push(Insert::new(
        "Logical_Switch",
        Row::new().with("ports", Datum::from(port)),
    ));
    let port_uuid = nb.validated(&txn).expect("commit").uuid(&p).expect("uuid");
    // Logical_Switch_Port is not a root table: deleting it while referenced breaks integrity.
    let del = Transaction::new(NB)
        .with(Delete::new("Logical_Switch_Port").filter(Condition::uuid(port_uuid)));
    let e = nb.validated(&del).unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::ReferentialIntegrity), "{e}");
}

#[test]
fn unknown_column_is_typed_and_caught_by_validation() {
    let Some(nb) = nb() else { return };
    let txn =
        Transaction::new(NB).with(Insert::new("Logical_Switch", Row::new().with("nmae", "x")));
    assert!(matches!(
        txn.validate(&nb.schema),
        Err(ValidationError::UnknownColumn { index: 0, ref column, .. }) if column == "nmae"
    ));
    let e = nb.transact(&txn).unwrap_err();
    assert_eq!(
        op_error(&e),
        (
            0,
            OpKind::Insert,
            Some("Logical_Switch"),
            ErrorKind::UnknownColumn
        )
    );
    assert!(e.to_string().contains("nmae"), "{e}");
    let syntax = e
        .server_error()
        .and_then(|s| s.syntax.clone())
        .unwrap_or_default();
    assert!(
        syntax.contains("nmae"),
        "the server's syntax member is kept: {syntax:?}"
    );
}

#[test]
fn wait_timeout_is_typed() {
    let Some(nb) = nb() else { return };
    nb.validated(&Transaction::new(NB).with(switch_named("present")))
        .expect("insert");
    // Wait (at most 100 ms) until no switch is called "present": never true.
    let wait = Wait::new("Logical_Switch", ["name"], WaitUntil::Equal, vec![])
        .filter(Condition::eq("name", "present"))
        .timeout_ms(100);
    let txn = Transaction::new(NB).with(wait).with(switch_named("after"));
    let e = nb.validated(&txn).unwrap_err();
    assert_eq!(
        op_error(&e),
        (0, OpKind::Wait, Some("Logical_Switch"), ErrorKind::TimedOut)
    );

    // The same wait with `!=` holds at once and the transaction goes through.
    let wait = Wait::new("Logical_Switch", ["name"], WaitUntil::NotEqual, vec![])
        .filter(Condition::eq("name", "present"))
        .timeout_ms(0);
    nb.validated(&Transaction::new(NB).with(wait).with(switch_named("after")))
        .expect("wait != holds");
}

#[test]
fn aborted_transaction_is_typed_and_changes_nothing() {
    let Some(nb) = nb() else { return };
    let txn = Transaction::new(NB)
        .with(switch_named("never"))
        .with(Operation::Comment("about to abort".into()))
        .with(Operation::Abort);
    let e = nb.validated(&txn).unwrap_err();
    assert_eq!(op_error(&e), (2, OpKind::Abort, None, ErrorKind::Aborted));
    let sel = Transaction::new(NB).with(Select::new("Logical_Switch"));
    let out = nb.validated(&sel).expect("select");
    assert_eq!(out.results().len(), 1);
    assert!(nb.dump("Logical_Switch").is_empty());
}

#[test]
fn assert_without_the_lock_is_not_owner() {
    let Some(nb) = nb() else { return };
    let txn = Transaction::new(NB).with(Operation::Assert {
        lock: "ovnkit".into(),
    });
    let e = nb.validated(&txn).unwrap_err();
    assert_eq!(op_error(&e), (0, OpKind::Assert, None, ErrorKind::NotOwner));
}
