//! [`Transaction::validate`] agrees with a real NB `ovsdb-server` on what is a well-formed
//! operation: for each case, the operation is validated and also sent, followed by an `abort`.
//! The server accepted the operation exactly when the transaction fails at the `abort`.
//!
//! Needs root and OVN (the testbed skips without them, and fails when `CI=true`).

mod txn_common;

use ovsdb::{
    Condition, Datum, Function, Insert, Mutate, Mutation, Mutator, OpKind, Operation, Row, Select,
    TransactError, Transaction, Update, Uuid,
};
use txn_common::nb;

fn case(op: impl ovsdb::IntoOperation) -> Transaction {
    Transaction::new("OVN_Northbound")
        .with(op)
        .with(Operation::Abort)
}

fn lsp(row: Row) -> Insert {
    Insert::new("Logical_Switch_Port", row.with("name", "p"))
}

#[test]
fn validation_accepts_exactly_what_the_server_accepts() {
    let Some(nb) = nb() else { return };
    let sel = |c: Condition| Select::new("Logical_Switch_Port").filter(c);
    let mutate = |table: &str, m: Mutation| Mutate::new(table).mutation(m);
    let cases: Vec<(&str, bool, Transaction)> = vec![
        // Accepted.
        (
            "ordering on an optional integer",
            true,
            case(sel(Condition::lt("tag_request", 100))),
        ),
        (
            "includes on a scalar",
            true,
            case(sel(Condition::includes("name", "p"))),
        ),
        (
            "excludes with more than max elements",
            true,
            case(sel(Condition::excludes(
                "tag_request",
                Datum::set([1, 2, 3]),
            ))),
        ),
        ("== on _uuid", true, case(sel(Condition::uuid(Uuid::NIL)))),
        (
            "ordering on _uuid is not allowed",
            false,
            case(sel(Condition::new("_uuid", Function::Gt, Uuid::NIL))),
        ),
        (
            "implicit columns selected",
            true,
            case(Select::new("ACL").columns(["_uuid", "_version"])),
        ),
        (
            "integer at its maximum",
            true,
            case(lsp(Row::new().with("tag_request", 4095))),
        ),
        (
            "enum value",
            true,
            case(Insert::new(
                "ACL",
                Row::new()
                    .with("direction", "to-lport")
                    .with("priority", 1)
                    .with("match", "1")
                    .with("action", "drop"),
            )),
        ),
        (
            "+= on an optional integer",
            true,
            case(mutate(
                "Logical_Switch_Port",
                Mutation::add("tag_request", 1),
            )),
        ),
        (
            "%= on an integer",
            true,
            case(mutate(
                "NB_Global",
                Mutation::new("nb_cfg", Mutator::Mod, 3),
            )),
        ),
        (
            "insert into a set",
            true,
            case(mutate(
                "Logical_Switch_Port",
                Mutation::insert("addresses", Datum::set(["a"])),
            )),
        ),
        (
            "delete map keys",
            true,
            case(mutate(
                "Logical_Switch",
                Mutation::delete("other_config", Datum::set(["k"])),
            )),
        ),
        (
            "delete map pairs",
            true,
            case(mutate(
                "Logical_Switch",
                Mutation::delete("other_config", Datum::map([("k", "v")])),
            )),
        ),
        (
            "update a map",
            true,
            case(Update::new(
                "Logical_Switch",
                Row::new().with("other_config", Datum::empty_map()),
            )),
        ),
        (
            "insert into an optional",
            true,
            case(mutate(
                "Logical_Switch_Port",
                Mutation::insert("enabled", true),
            )),
        ),
        // Rejected.
        (
            "includes with more than max elements",
            false,
            case(sel(Condition::includes("tag_request", Datum::set([1, 2])))),
        ),
        (
            "== with fewer than min elements",
            false,
            case(sel(Condition::eq("name", Datum::empty_set()))),
        ),
        (
            "ordering on a string",
            false,
            case(sel(Condition::lt("name", "x"))),
        ),
        (
            "ordering on a set",
            false,
            case(sel(Condition::lt("addresses", "x"))),
        ),
        (
            "integer above its maximum",
            false,
            case(lsp(Row::new().with("tag_request", 4096))),
        ),
        (
            "enum outside its values",
            false,
            case(Insert::new("ACL", Row::new().with("direction", "sideways"))),
        ),
        (
            "string in an integer column",
            false,
            case(lsp(Row::new().with("tag_request", "5"))),
        ),
        (
            "two atoms in an optional column",
            false,
            case(lsp(Row::new().with("tag_request", Datum::set([1, 2])))),
        ),
        (
            "set for a map column",
            false,
            case(lsp(Row::new().with("options", Datum::set(["x"])))),
        ),
        (
            "arithmetic on a string",
            false,
            case(mutate("Logical_Switch", Mutation::add("name", 1))),
        ),
        (
            "arithmetic on a map",
            false,
            case(mutate("Logical_Switch", Mutation::add("other_config", 1))),
        ),
        (
            "insert into a scalar",
            false,
            case(mutate("Logical_Switch", Mutation::insert("name", "x"))),
        ),
        (
            "write _uuid",
            false,
            case(Update::new(
                "Logical_Switch",
                Row::new().with("_uuid", Uuid::NIL),
            )),
        ),
        (
            "unknown column in a condition",
            false,
            case(sel(Condition::eq("nope", 1))),
        ),
        ("unknown table", false, case(Select::new("Nope"))),
    ];

    let mut disagreements = Vec::new();
    for (what, expect_valid, txn) in &cases {
        let validated = txn.validate(&nb.schema);
        let server_ok = match nb.transact(txn) {
            Err(TransactError::Operation {
                kind: OpKind::Abort,
                ..
            }) => Ok(()),
            Err(e) => Err(e.to_string()),
            Ok(_) => panic!("{what}: a transaction ending in abort succeeded"),
        };
        if validated.is_ok() != *expect_valid || server_ok.is_ok() != *expect_valid {
            disagreements.push(format!(
                "{what}: expected valid={expect_valid}; validate: {validated:?}; server: {server_ok:?}"
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
