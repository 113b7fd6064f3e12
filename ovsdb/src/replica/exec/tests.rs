//! Unit tests of the transaction engine, one or two per rule; the expected strings are the ones
//! ovsdb-server 3.1 returns for the same transactions.

use super::super::Replica;
use crate::{
    Condition, DatabaseSchema, Datum, Delete, ErrorKind, Insert, Mutate, Mutation, NamedUuid,
    Operation, OperationResult, Row, Select, TransactError, TransactOutcome, Transaction, Update,
    Uuid, Wait, WaitUntil,
};

mod values;

const SCHEMA: &str = r#"{"name":"T","version":"1.0.0","tables":{
 "Sw":{"isRoot":true,"indexes":[["name"]],"columns":{"name":{"type":"string"},
   "ports":{"type":{"key":{"type":"uuid","refTable":"Port"},"min":0,"max":"unlimited"}},
   "lbs":{"type":{"key":{"type":"uuid","refTable":"Lb","refType":"weak"},"min":0,"max":"unlimited"}},
   "ext":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}},
   "n":{"type":{"key":{"type":"integer","minInteger":0,"maxInteger":100}}},
   "big":{"type":"integer"},
   "tags":{"type":{"key":"integer","min":0,"max":"unlimited"}},
   "r":{"type":"real"},
   "opt":{"type":{"key":"string","min":0,"max":1}}}},
 "Port":{"indexes":[["name"]],"columns":{"name":{"type":"string"},
   "next":{"type":{"key":{"type":"uuid","refTable":"Port"},"min":0,"max":1}}}},
 "Lb":{"isRoot":true,"columns":{"name":{"type":"string"}}},
 "Need":{"isRoot":true,"columns":{
   "lb":{"type":{"key":{"type":"uuid","refTable":"Lb","refType":"weak"},"min":1,"max":"unlimited"}}}},
 "Global":{"isRoot":true,"maxRows":1,"columns":{"id":{"type":"string","mutable":false}}},
 "Acl":{"columns":{"dir":{"type":{"key":{"type":"string","enum":["set",["in","out"]]}}}}}}}"#;

fn replica() -> Replica {
    Replica::new(&DatabaseSchema::from_json_str(SCHEMA).unwrap())
}

fn txn(ops: impl IntoIterator<Item = Operation>) -> Transaction {
    let mut t = Transaction::new("T");
    for op in ops {
        t.push(op);
    }
    t
}

fn name(n: &str) -> NamedUuid {
    NamedUuid::new(n).unwrap()
}

fn ins(table: &str, row: Row) -> Operation {
    Operation::Insert(Insert::new(table, row))
}

fn ins_named(table: &str, row: Row, n: &str) -> Operation {
    Operation::Insert(Insert::new(table, row).uuid_name(name(n)))
}

fn sw(n: &str) -> Row {
    Row::new().with("name", n)
}

fn ok(r: &mut Replica, ops: impl IntoIterator<Item = Operation>) -> TransactOutcome {
    r.transact(&txn(ops))
        .unwrap_or_else(|e| panic!("transaction failed: {e}"))
}

/// The error of a transaction that must fail: `(operation index or None for the commit, error,
/// details)`; checks that the replica did not change.
fn fails(
    r: &mut Replica,
    ops: impl IntoIterator<Item = Operation>,
) -> (Option<usize>, String, String) {
    let before = r.snapshot();
    let e = r.transact(&txn(ops)).expect_err("transaction must fail");
    assert_eq!(
        r.seq(),
        before.seq(),
        "a failed transaction changed the replica"
    );
    for t in before.tables() {
        let now = r.snapshot();
        assert_eq!(now.table(t.name()).unwrap().to_rows(), t.to_rows());
    }
    let index = match &e {
        TransactError::Operation { index, .. } => Some(*index),
        _ => None,
    };
    let se = e.server_error().expect("a server error").clone();
    (index, se.error, se.details.unwrap_or_default())
}

fn rows(r: &Replica, table: &str) -> Vec<Row> {
    let snap = r.snapshot();
    snap.table(table).unwrap().to_rows().into_values().collect()
}

fn get(r: &Replica, table: &str, u: Uuid, column: &str) -> Datum {
    let snap = r.snapshot();
    let t = snap.table(table).unwrap();
    t.get(u).unwrap().get(column).unwrap().clone()
}

fn select(r: &mut Replica, s: Select) -> Vec<Row> {
    match ok(r, [Operation::Select(s)]).into_results().pop() {
        Some(OperationResult::Rows(rows)) => rows,
        other => panic!("select returned {other:?}"),
    }
}

#[test]
fn named_uuids_resolve_forward_and_backward() {
    let mut r = replica();
    let out = ok(
        &mut r,
        [
            ins("Sw", sw("a").with("ports", name("p"))),
            ins_named("Port", Row::new().with("name", "p1"), "p"),
            Operation::Update(
                Update::new("Port", Row::new().with("next", name("p")))
                    .filter(Condition::uuid(Uuid::NIL)),
            ),
        ],
    );
    let [OperationResult::Uuid(s), OperationResult::Uuid(p), _] = out.results() else {
        panic!("{out:?}")
    };
    assert_eq!(get(&r, "Sw", *s, "ports"), Datum::set([*p]));
    // A condition may name a row inserted earlier in the transaction.
    let out = ok(
        &mut r,
        [
            ins_named("Lb", Row::new().with("name", "x"), "lb"),
            Operation::Update(
                Update::new("Lb", Row::new().with("name", "y"))
                    .filter(Condition::eq("_uuid", name("lb"))),
            ),
        ],
    );
    assert_eq!(out.results()[1], OperationResult::Count(1));
}

#[test]
fn inserted_uuids_are_deterministic_version_4_and_skip_used_ones() {
    let mut a = replica();
    let mut b = replica();
    let t = txn([ins("Lb", Row::new()), ins("Lb", Row::new())]);
    let ua = a.transact(&t).unwrap();
    assert_eq!(ua, b.transact(&t).unwrap());
    let OperationResult::Uuid(u) = ua.results()[0] else {
        panic!()
    };
    assert_eq!(u.0.get_version_num(), 4);
    assert_ne!(ua.results()[0], ua.results()[1]);
    // A generator that repeats a UUID in use: it is skipped.
    let mut given = vec![Uuid::from_u128(7), u].into_iter();
    let out = a
        .transact_with(&txn([ins("Lb", Row::new())]), &mut || {
            given.next_back().unwrap_or(Uuid::NIL)
        })
        .unwrap();
    assert_eq!(out.results()[0], OperationResult::Uuid(Uuid::from_u128(7)));
    // Explicit UUIDs are taken as given; twice in one table is an error.
    let fixed = Uuid::from_u128(0xabc);
    let op = || Operation::Insert(Insert::new("Lb", Row::new()).with_uuid(fixed));
    ok(&mut a, [op()]);
    let (i, e, _) = fails(&mut a, [op()]);
    assert_eq!((i, e.as_str()), (Some(0), "duplicate uuid"));
}

#[test]
fn unreferenced_rows_of_non_root_tables_are_collected_along_chains() {
    let mut r = replica();
    // Unreferenced at commit: collected, although the insert reports its UUID.
    let out = ok(&mut r, [ins("Port", Row::new().with("name", "lonely"))]);
    assert!(matches!(out.results()[0], OperationResult::Uuid(_)));
    assert!(rows(&r, "Port").is_empty());
    let seq = r.seq();
    assert_eq!(
        seq, 0,
        "a transaction whose rows were all collected changes nothing"
    );

    ok(
        &mut r,
        [
            ins_named(
                "Port",
                Row::new().with("name", "a").with("next", name("b")),
                "a",
            ),
            ins_named(
                "Port",
                Row::new().with("name", "b").with("next", name("c")),
                "b",
            ),
            ins_named("Port", Row::new().with("name", "c"), "c"),
            ins("Sw", sw("s").with("ports", name("a"))),
        ],
    );
    assert_eq!(rows(&r, "Port").len(), 3);
    ok(
        &mut r,
        [Operation::Update(Update::new(
            "Sw",
            Row::new().with("ports", Datum::empty_set()),
        ))],
    );
    assert!(rows(&r, "Port").is_empty(), "the whole chain goes");
}

#[test]
fn cycles_survive_garbage_collection_as_on_the_server() {
    let mut r = replica();
    ok(
        &mut r,
        [
            ins_named(
                "Port",
                Row::new().with("name", "a").with("next", name("b")),
                "a",
            ),
            ins_named(
                "Port",
                Row::new().with("name", "b").with("next", name("a")),
                "b",
            ),
            ins("Sw", sw("s").with("ports", name("a"))),
        ],
    );
    ok(&mut r, [Operation::Delete(Delete::new("Sw"))]);
    assert_eq!(rows(&r, "Port").len(), 2);
}

#[test]
fn weak_references_to_deleted_rows_are_removed() {
    let mut r = replica();
    let out = ok(
        &mut r,
        [
            ins_named("Lb", Row::new().with("name", "lb"), "lb"),
            ins(
                "Sw",
                sw("s").with("lbs", Datum::set([name("lb"), name("never")])),
            ),
        ],
    );
    let OperationResult::Uuid(s) = out.results()[1] else {
        panic!()
    };
    let OperationResult::Uuid(lb) = out.results()[0] else {
        panic!()
    };
    // The name no insert declares stood for no row: removed at commit.
    assert_eq!(get(&r, "Sw", s, "lbs"), Datum::set([lb]));
    ok(&mut r, [Operation::Delete(Delete::new("Lb"))]);
    assert_eq!(get(&r, "Sw", s, "lbs"), Datum::empty_set());
}

#[test]
fn removing_weak_references_below_min_is_a_constraint_violation() {
    let mut r = replica();
    ok(
        &mut r,
        [
            ins_named("Lb", Row::new(), "lb"),
            ins("Need", Row::new().with("lb", name("lb"))),
        ],
    );
    let (i, e, d) = fails(&mut r, [Operation::Delete(Delete::new("Lb"))]);
    assert_eq!((i, e.as_str()), (None, "constraint violation"));
    assert!(d.starts_with("Deletion of 1 weak reference(s) to deleted (or never-existing) rows from column \"lb\" in \"Need\" row "), "{d}");
    let (_, e, d) = fails(&mut r, [ins("Need", Row::new())]);
    assert_eq!(e, "constraint violation");
    assert!(d.contains("contained all-zeros UUID"), "{d}");
}

#[test]
fn strong_references_must_exist_and_keep_their_rows() {
    let mut r = replica();
    let ghost = Uuid::from_u128(0x1111);
    let (i, e, d) = fails(&mut r, [ins("Sw", sw("s").with("ports", ghost))]);
    assert_eq!((i, e.as_str()), (None, "referential integrity violation"));
    assert!(
        d.ends_with(&format!(
            "references nonexistent row {ghost} in table Port."
        )),
        "{d}"
    );
    assert!(d.starts_with("Table Sw column ports row "), "{d}");

    let out = ok(
        &mut r,
        [
            ins_named("Port", Row::new().with("name", "p"), "p"),
            ins("Sw", sw("s").with("ports", name("p"))),
        ],
    );
    let OperationResult::Uuid(p) = out.results()[0] else {
        panic!()
    };
    let (_, e, d) = fails(&mut r, [Operation::Delete(Delete::new("Port"))]);
    assert_eq!(e, "referential integrity violation");
    assert_eq!(
        d,
        format!("cannot delete Port row {p} because of 1 remaining reference(s)")
    );
}

#[test]
fn index_uniqueness_names_the_rows_like_the_server() {
    let mut r = replica();
    let out = ok(&mut r, [ins("Sw", sw("a")), ins("Sw", sw("b"))]);
    let [OperationResult::Uuid(a), OperationResult::Uuid(b)] = out.results() else {
        panic!()
    };
    let (i, e, d) = fails(
        &mut r,
        [Operation::Update(
            Update::new("Sw", sw("a")).filter(Condition::eq("name", "b")),
        )],
    );
    assert_eq!((i, e.as_str()), (None, "constraint violation"));
    let (first, second) = if a > b { (a, b) } else { (b, a) };
    let describe = |u: &Uuid| {
        if u == b {
            "had the following index values before the transaction: b.".to_owned()
        } else {
            "existed in the database before this transaction and was not modified by the transaction.".to_owned()
        }
    };
    assert_eq!(
        d,
        format!(
            "Transaction causes multiple rows in \"Sw\" table to have identical values (a) for \
             index on column \"name\".  First row, with UUID {first}, {}  Second row, with UUID \
             {second}, {}",
            describe(first),
            describe(second)
        )
    );
    // Swapping two names in one transaction is fine.
    ok(
        &mut r,
        [
            Operation::Update(Update::new("Sw", sw("tmp")).filter(Condition::eq("name", "a"))),
            Operation::Update(Update::new("Sw", sw("a")).filter(Condition::eq("name", "b"))),
            Operation::Update(Update::new("Sw", sw("b")).filter(Condition::eq("name", "tmp"))),
        ],
    );
    let (_, _, d) = fails(&mut r, [ins("Sw", sw("x y")), ins("Sw", sw("x y"))]);
    assert!(d.contains(r#"identical values ("x y")"#), "{d}");
    assert!(d.contains("was inserted by this transaction."), "{d}");
}

#[test]
fn max_rows_and_immutable_columns() {
    let mut r = replica();
    let g = |id: &str| ins("Global", Row::new().with("id", id));
    let (_, e, d) = fails(&mut r, [g("a"), g("b")]);
    assert_eq!(e, "constraint violation");
    assert_eq!(
        d,
        "transaction causes \"Global\" table to contain 2 rows, greater than the schema-defined limit of 1 row(s)"
    );
    ok(&mut r, [g("a")]);
    // Even an update that matches nothing, or writes the same value, is refused.
    let (i, e, d) = fails(
        &mut r,
        [Operation::Update(Update::new(
            "Global",
            Row::new().with("id", "a"),
        ))],
    );
    assert_eq!((i, e.as_str()), (Some(0), "constraint violation"));
    assert_eq!(d, "Cannot update immutable column id in table Global.");
    let (_, _, d) = fails(
        &mut r,
        [Operation::Update(Update::new(
            "Sw",
            Row::new().with("_uuid", Uuid::NIL),
        ))],
    );
    assert_eq!(d, "Cannot update immutable column _uuid in table Sw.");
}

#[test]
fn select_projects_and_collapses_duplicates() {
    let mut r = replica();
    ok(&mut r, [ins("Sw", sw("a")), ins("Sw", sw("b"))]);
    let all = select(&mut r, Select::new("Sw").filter(Condition::eq("name", "a")));
    assert_eq!(all.len(), 1);
    assert!(all[0].uuid().is_some() && all[0].version().is_some());
    assert_eq!(all[0].len(), 11, "every column, _uuid and _version");
    assert_eq!(select(&mut r, Select::new("Sw").columns(["opt"])).len(), 1);
    assert_eq!(
        select(&mut r, Select::new("Sw").columns(Vec::<String>::new())),
        vec![Row::new()]
    );
    assert_eq!(
        select(&mut r, Select::new("Sw").columns(["_uuid", "opt"])).len(),
        2
    );
}

#[test]
fn wait_compares_sets_of_rows() {
    let mut r = replica();
    ok(&mut r, [ins("Sw", sw("a")), ins("Sw", sw("b"))]);
    let w = |until, rows: Vec<Row>, timeout| {
        let mut w = Wait::new("Sw", ["opt"], until, rows);
        w.timeout = timeout;
        Operation::Wait(w)
    };
    let empty = || Row::new().with("opt", Datum::empty_set());
    // Two rows with the same projection are one row; so are two expected rows.
    ok(
        &mut r,
        [w(WaitUntil::Equal, vec![empty(), empty()], Some(0))],
    );
    ok(
        &mut r,
        [w(
            WaitUntil::NotEqual,
            vec![Row::new().with("opt", "z")],
            Some(0),
        )],
    );
    let (i, e, d) = fails(&mut r, [w(WaitUntil::NotEqual, vec![empty()], Some(0))]);
    assert_eq!(
        (i, e.as_str(), d.as_str()),
        (Some(0), "timed out", "\"where\" clause test failed")
    );
    let (_, e, d) = fails(&mut r, [w(WaitUntil::Equal, vec![], Some(10))]);
    assert_eq!(
        (e.as_str(), d.as_str()),
        ("timed out", "\"wait\" timed out after 10 ms")
    );
    let (_, e, _) = fails(&mut r, [w(WaitUntil::Equal, vec![], None)]);
    assert_eq!(e, "timed out");
}

#[test]
fn other_operations_and_failures_change_nothing() {
    let mut r = replica();
    let (c, _) = r.subscribe();
    let out = ok(
        &mut r,
        [
            Operation::Comment("hi".into()),
            Operation::Commit { durable: true },
        ],
    );
    assert_eq!(
        out.results(),
        &[OperationResult::Empty, OperationResult::Empty]
    );
    assert_eq!(r.seq(), 0, "nothing changed: seq stays");
    let (i, e, d) = fails(&mut r, [ins("Lb", Row::new()), Operation::Abort]);
    assert_eq!(
        (i, e.as_str(), d.as_str()),
        (Some(1), "aborted", "aborted by request")
    );
    let (_, e, d) = fails(&mut r, [Operation::Assert { lock: "l".into() }]);
    assert_eq!(
        (e.as_str(), d.as_str()),
        ("not owner", "Asserted lock l not held.")
    );
    let (_, e, _) = fails(
        &mut r,
        [
            ins_named("Lb", Row::new(), "x"),
            ins_named("Lb", Row::new(), "x"),
        ],
    );
    assert_eq!(ErrorKind::from_error(&e), ErrorKind::DuplicateUuidName);
    // An insert then a delete of the same row in one transaction: nothing to apply.
    ok(
        &mut r,
        [
            ins_named("Lb", Row::new(), "x"),
            Operation::Delete(Delete::new("Lb").filter(Condition::eq("_uuid", name("x")))),
        ],
    );
    assert_eq!(r.seq(), 0);
    ok(&mut r, [ins("Lb", Row::new())]);
    assert_eq!(r.seq(), 1);
    let (changes, _) = r.take_changes(c).unwrap();
    assert_eq!(changes.table("Lb").unwrap().inserted.len(), 1);
    let wrong = Transaction::new("Other");
    assert!(matches!(
        r.transact(&wrong),
        Err(TransactError::Mismatch { .. })
    ));
}
