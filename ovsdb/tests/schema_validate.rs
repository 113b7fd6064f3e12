//! [`Transaction::validate`]: every kind of [`ValidationError`], each naming the operation,
//! table, column and constraint.

use ovsdb::{
    AtomRole, Condition, ConstraintError, DatabaseSchema, Datum, Delete, Function, Insert, Mutate,
    Mutation, Mutator, NamedUuid, Select, Transaction, Update, Uuid, ValidationError, Wait,
    WaitUntil,
};

fn schema() -> DatabaseSchema {
    DatabaseSchema::from_json_str(
        r#"{"name":"D","version":"1.0.0","tables":{
        "Sw":{"isRoot":true,"columns":{
            "name":{"type":"string","mutable":false},
            "ports":{"type":{"key":{"type":"uuid","refTable":"Port"},"min":0,"max":"unlimited"}},
            "prio":{"type":{"key":{"type":"integer","minInteger":0,"maxInteger":10}}},
            "weight":{"type":{"key":{"type":"real","minReal":0,"maxReal":1},"min":0,"max":1}},
            "mode":{"type":{"key":{"type":"string","enum":["set",["on","off"]]}}},
            "label":{"type":{"key":{"type":"string","minLength":1,"maxLength":3},"min":0,"max":1}},
            "pair":{"type":{"key":"integer","min":0,"max":2}},
            "ids":{"type":{"key":"string","value":"integer","min":0,"max":"unlimited"}}}},
        "Port":{"columns":{"name":{"type":"string"}}},
        "Other":{"isRoot":true,"columns":{"x":{"type":"integer"}}}}}"#,
    )
    .expect("schema")
}

fn check(txn: &Transaction) -> Result<(), ValidationError> {
    txn.validate(&schema())
}

fn one(op: impl ovsdb::IntoOperation) -> Result<(), ValidationError> {
    check(&Transaction::new("D").with(op))
}

fn constraint(r: Result<(), ValidationError>) -> (usize, String, ConstraintError) {
    match r {
        Err(ValidationError::Constraint {
            index,
            column,
            constraint,
            ..
        }) => (index, column, constraint),
        other => panic!("expected a constraint error, got {other:?}"),
    }
}

fn sw(cols: &[(&str, Datum)]) -> Insert {
    Insert::new(
        "Sw",
        cols.iter()
            .cloned()
            .collect::<ovsdb::Row>()
            .with("name", "s"),
    )
}

#[test]
fn valid_transaction_passes() {
    let port = NamedUuid::new("p").expect("name");
    let txn = Transaction::new("D")
        .with(Insert::new("Port", ovsdb::Row::new().with("name", "p")).uuid_name(port.clone()))
        .with(sw(&[
            ("ports", Datum::from(port)),
            ("prio", 10.into()),
            ("weight", 1.into()),
            ("mode", "on".into()),
            ("label", "abc".into()),
            ("pair", Datum::set([1, 2])),
            ("ids", Datum::map([("a", 1)])),
        ]))
        .with(
            Select::new("Sw")
                .filter(Condition::uuid(Uuid::NIL))
                .columns(["_uuid", "name"]),
        )
        .with(Delete::new("Other").filter(Condition::new("x", Function::Ge, 3)));
    check(&txn).expect("valid");
}

#[test]
fn wrong_database_and_unknown_names() {
    assert!(matches!(
        Transaction::new("E")
            .with(Select::new("Sw"))
            .validate(&schema()),
        Err(ValidationError::WrongDatabase { .. })
    ));
    assert!(matches!(
        one(Select::new("Nope")),
        Err(ValidationError::UnknownTable { index: 0, ref table, .. }) if table == "Nope"
    ));
    assert!(matches!(
        one(Select::new("Sw").columns(["nope"])),
        Err(ValidationError::UnknownColumn { ref column, .. }) if column == "nope"
    ));
    assert!(matches!(
        one(Delete::new("Sw").filter(Condition::eq("nope", 1))),
        Err(ValidationError::UnknownColumn { .. })
    ));
}

#[test]
fn every_constraint_is_named() {
    let c = |col: &str, d: Datum| constraint(one(sw(&[(col, d)])));
    assert!(
        matches!(c("prio", 11.into()), (0, col, ConstraintError::IntegerRange { value: 11, .. }) if col == "prio")
    );
    assert!(matches!(
        c("prio", "x".into()).2,
        ConstraintError::AtomType { .. }
    ));
    assert!(matches!(
        c("weight", 1.5.into()).2,
        ConstraintError::RealRange { .. }
    ));
    assert!(matches!(
        c("mode", "auto".into()).2,
        ConstraintError::NotInEnum { .. }
    ));
    assert!(matches!(
        c("label", "abcd".into()).2,
        ConstraintError::StringLength { length: 4, .. }
    ));
    assert!(matches!(
        c("label", "".into()).2,
        ConstraintError::StringLength { length: 0, .. }
    ));
    assert!(matches!(
        c("pair", Datum::set([1, 2, 3])).2,
        ConstraintError::Size { length: 3, .. }
    ));
    assert!(matches!(
        c("prio", Datum::empty_set()).2,
        ConstraintError::Size { length: 0, .. }
    ));
    assert!(matches!(
        c("ids", Datum::set([1])).2,
        ConstraintError::ExpectedMap
    ));
    assert!(matches!(
        c("pair", Datum::map([(1, 1)])).2,
        ConstraintError::ExpectedSet
    ));
    assert!(matches!(
        c("ids", Datum::map([("a", "b")])).2,
        ConstraintError::AtomType {
            role: AtomRole::Value,
            ..
        }
    ));
    let e = one(sw(&[("prio", 11.into())])).unwrap_err().to_string();
    assert_eq!(
        e,
        "operation 0 (insert on Sw), column prio: integer 11 is outside [0, 10]"
    );
}

#[test]
fn read_only_and_immutable_columns() {
    assert!(matches!(
        one(sw(&[("_uuid", Uuid::NIL.into())])),
        Err(ValidationError::ReadOnlyColumn { ref column, .. }) if column == "_uuid"
    ));
    assert!(matches!(
        one(Update::new(
            "Sw",
            ovsdb::Row::new().with("_version", Uuid::NIL)
        )),
        Err(ValidationError::ReadOnlyColumn { .. })
    ));
    assert!(matches!(
        one(Update::new("Sw", ovsdb::Row::new().with("name", "t"))),
        Err(ValidationError::ImmutableColumn { ref column, .. }) if column == "name"
    ));
    assert!(matches!(
        one(Mutate::new("Sw").mutation(Mutation::insert("name", "t"))),
        Err(ValidationError::ImmutableColumn { .. })
    ));
}

#[test]
fn functions_and_mutators_must_fit_the_column() {
    assert!(matches!(
        one(Select::new("Sw").filter(Condition::lt("mode", "on"))),
        Err(ValidationError::FunctionNotApplicable {
            function: Function::Lt,
            ..
        })
    ));
    assert!(one(Select::new("Sw").filter(Condition::lt("weight", 0.5))).is_ok());
    assert!(one(Select::new("Sw").filter(Condition::includes("pair", Datum::empty_set()))).is_ok());
    assert!(
        one(Select::new("Sw").filter(Condition::excludes("pair", Datum::set([1, 2, 3])))).is_ok()
    );
    assert!(matches!(
        one(Mutate::new("Sw").mutation(Mutation::add("mode", 1))),
        Err(ValidationError::MutatorNotApplicable {
            mutator: Mutator::Add,
            ..
        })
    ));
    assert!(matches!(
        one(Mutate::new("Sw").mutation(Mutation::rem("weight", 1))),
        Err(ValidationError::MutatorNotApplicable {
            mutator: Mutator::Mod,
            ..
        })
    ));
    assert!(matches!(
        one(Mutate::new("Sw").mutation(Mutation::insert("prio", 1))),
        Err(ValidationError::MutatorNotApplicable {
            mutator: Mutator::Insert,
            ..
        })
    ));
    // Arithmetic arguments are not range-checked (the result is), but they are type-checked.
    assert!(one(Mutate::new("Sw").mutation(Mutation::add("prio", 100))).is_ok());
    assert!(matches!(
        one(Mutate::new("Sw").mutation(Mutation::add("prio", "x"))),
        Err(ValidationError::Constraint { .. })
    ));
    // Deleting map entries by key or by pair.
    assert!(one(Mutate::new("Sw").mutation(Mutation::delete("ids", Datum::set(["a"])))).is_ok());
    assert!(
        one(Mutate::new("Sw").mutation(Mutation::delete("ids", Datum::map([("a", 1)])))).is_ok()
    );
    assert!(
        one(Mutate::new("Sw").mutation(Mutation::new(
            "pair",
            Mutator::Delete,
            Datum::set([1, 2, 3])
        )))
        .is_ok()
    );
}

#[test]
fn named_uuids_must_be_declared_once_and_point_at_the_ref_table() {
    let p = NamedUuid::new("p").expect("name");
    assert!(matches!(
        one(sw(&[("ports", Datum::from(p.clone()))])),
        Err(ValidationError::UnknownNamedUuid { ref name, ref column, .. }) if name == "p" && column == "ports"
    ));
    let txn = Transaction::new("D")
        .with(Insert::new("Other", ovsdb::Row::new().with("x", 1)).uuid_name(p.clone()))
        .with(sw(&[("ports", Datum::from(p.clone()))]));
    assert!(matches!(
        check(&txn),
        Err(ValidationError::RefTableMismatch { index: 1, ref expected, ref found, .. })
            if &**expected == "Port" && &**found == "Other"
    ));
    let txn = Transaction::new("D")
        .with(Insert::new("Port", ovsdb::Row::new()).uuid_name(p.clone()))
        .with(Insert::new("Port", ovsdb::Row::new()).uuid_name(p.clone()));
    assert!(matches!(
        check(&txn),
        Err(ValidationError::DuplicateUuidName {
            index: 1,
            first: 0,
            ..
        })
    ));
    // A named UUID may be used before the insert that declares it.
    let txn = Transaction::new("D")
        .with(sw(&[("ports", Datum::from(p.clone()))]))
        .with(Insert::new("Port", ovsdb::Row::new()).uuid_name(p));
    check(&txn).expect("forward reference");
}

#[test]
fn wait_rows_and_columns_are_checked() {
    let w = Wait::new(
        "Sw",
        ["prio"],
        WaitUntil::Equal,
        vec![ovsdb::Row::new().with("prio", 99)],
    );
    assert!(matches!(one(w), Err(ValidationError::Constraint { .. })));
    let w = Wait::new("Sw", ["nope"], WaitUntil::NotEqual, vec![]);
    assert!(matches!(one(w), Err(ValidationError::UnknownColumn { .. })));
}
