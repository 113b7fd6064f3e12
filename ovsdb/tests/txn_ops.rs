//! Every operation, mutator and condition function against a real NB `ovsdb-server`, with the
//! typed results read back through the transaction's handles.
//!
//! Needs root and OVN (the testbed skips without them, and fails when `CI=true`).

mod txn_common;

use ovsdb::{
    Atom, Condition, Datum, Delete, Function, Insert, Mutate, Mutation, Mutator, NamedUuid,
    Operation, Row, Select, Transaction, Update, Uuid,
};
use txn_common::{Nb, nb};

const NB: &str = "OVN_Northbound";

fn global_nb_cfg(nb: &Nb) -> i64 {
    let mut txn = Transaction::new(NB);
    let sel = txn.push(Select::new("NB_Global").columns(["nb_cfg"]));
    let out = nb.validated(&txn).expect("select");
    out.rows(&sel).expect("rows")[0]
        .atom("nb_cfg")
        .and_then(Atom::as_integer)
        .expect("nb_cfg")
}

#[test]
fn insert_with_client_chosen_uuid_and_named_reference() {
    let Some(nb) = nb() else { return };
    let chosen = Uuid::from_u128(0x0123_4567_89ab_4def_8123_4567_89ab_cdef);
    let port = NamedUuid::new("port").expect("name");
    let mut txn = Transaction::new(NB);
    let p = txn.push(
        Insert::new("Logical_Switch_Port", Row::new().with("name", "p1"))
            .uuid_name(port.clone())
            .with_uuid(chosen),
    );
    let sw = txn.push(Insert::new(
        "Logical_Switch",
        Row::new()
            .with("name", "sw")
            .with("ports", Datum::from(port)),
    ));
    let out = nb.validated(&txn).expect("commit");
    assert_eq!(out.uuid(&p), Some(chosen));
    let sw = out.uuid(&sw).expect("switch uuid");

    let listed = nb.nbctl(&[
        "--bare",
        "--columns=ports",
        "list",
        "Logical_Switch",
        &sw.to_string(),
    ]);
    assert_eq!(
        listed.trim(),
        chosen.to_string(),
        "ovn-nbctl sees the reference"
    );
}

#[test]
fn select_update_delete_return_rows_and_counts() {
    let Some(nb) = nb() else { return };
    let mut txn = Transaction::new(NB);
    for name in ["a", "b", "c"] {
        txn.push(Insert::new("Logical_Switch", Row::new().with("name", name)));
    }
    txn.push(Operation::Commit { durable: true });
    txn.push(Operation::Comment("three switches".into()));
    nb.validated(&txn).expect("insert");

    let mut txn = Transaction::new(NB);
    let upd = txn.push(
        Update::new(
            "Logical_Switch",
            Row::new().with("other_config", Datum::map([("k", "v")])),
        )
        .filter(Condition::ne("name", "a")),
    );
    let sel = txn.push(
        Select::new("Logical_Switch")
            .filter(Condition::includes(
                "other_config",
                Datum::map([("k", "v")]),
            ))
            .columns(["name"]),
    );
    let del = txn.push(Delete::new("Logical_Switch").filter(Condition::eq("name", "c")));
    let out = nb.validated(&txn).expect("update/select/delete");
    assert_eq!(out.count(&upd), Some(2));
    let mut names: Vec<String> = out
        .rows(&sel)
        .expect("rows")
        .iter()
        .map(|r| {
            assert_eq!(r.len(), 1, "only the selected column");
            r.atom("name")
                .and_then(Atom::as_str)
                .expect("name")
                .to_owned()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["b", "c"]);
    assert_eq!(out.count(&del), Some(1));

    let left = nb.nbctl(&[
        "--bare",
        "--columns=name",
        "find",
        "Logical_Switch",
        "other_config:k=v",
    ]);
    assert_eq!(left.split_whitespace().collect::<Vec<_>>(), ["b"]);
}

#[test]
fn every_mutator_changes_the_row_as_ovn_nbctl_reads_it() {
    let Some(nb) = nb() else { return };
    let row = Row::new().with("nb_cfg", 10).with(
        "external_ids",
        Datum::map([("a", "1"), ("b", "2"), ("c", "3")]),
    );
    nb.validated(&Transaction::new(NB).with(Insert::new("NB_Global", row)))
        .expect("insert");

    let steps = [
        (Mutator::Add, 5, 15),
        (Mutator::Sub, 3, 12),
        (Mutator::Mul, 4, 48),
        (Mutator::Div, 5, 9),
        (Mutator::Mod, 4, 1),
    ];
    for (mutator, arg, want) in steps {
        let txn = Transaction::new(NB)
            .with(Mutate::new("NB_Global").mutation(Mutation::new("nb_cfg", mutator, arg)));
        nb.validated(&txn).expect("arithmetic mutate");
        assert_eq!(global_nb_cfg(&nb), want, "after {mutator} {arg}");
        let shown = nb.nbctl(&["get", "NB_Global", ".", "nb_cfg"]);
        assert_eq!(shown.trim(), want.to_string());
    }

    let mut txn = Transaction::new(NB);
    let m = txn.push(
        Mutate::new("NB_Global")
            .mutation(Mutation::insert(
                "external_ids",
                Datum::map([("d", "4"), ("a", "ignored")]),
            ))
            .mutation(Mutation::delete("external_ids", Datum::set(["b"])))
            .mutation(Mutation::delete("external_ids", Datum::map([("c", "3")]))),
    );
    let out = nb.validated(&txn).expect("set/map mutate");
    assert_eq!(out.count(&m), Some(1));
    let ids = nb.nbctl(&["get", "NB_Global", ".", "external_ids"]);
    assert_eq!(ids.trim(), r#"{a="1", d="4"}"#);
}

#[test]
fn every_condition_function_selects_what_it_should() {
    let Some(nb) = nb() else { return };
    let mut txn = Transaction::new(NB);
    for (prio, addrs) in [(10_i64, vec!["x"]), (20, vec!["x", "y"]), (30, vec![])] {
        let name = NamedUuid::numbered("q", prio.unsigned_abs());
        txn.push(
            Insert::new(
                "QoS",
                Row::new()
                    .with("priority", prio)
                    .with("direction", "to-lport")
                    .with("match", "1")
                    .with("external_ids", Datum::map(addrs.iter().map(|a| (*a, "1")))),
            )
            .uuid_name(name.clone()),
        );
        txn.push(Insert::new(
            "Logical_Switch",
            Row::new()
                .with("name", format!("s{prio}"))
                .with("qos_rules", Datum::from(name)),
        ));
    }
    nb.validated(&txn).expect("insert");

    let cases: Vec<(Condition, Vec<i64>)> = vec![
        (Condition::new("priority", Function::Lt, 20), vec![10]),
        (Condition::new("priority", Function::Le, 20), vec![10, 20]),
        (Condition::new("priority", Function::Eq, 20), vec![20]),
        (Condition::new("priority", Function::Ne, 20), vec![10, 30]),
        (Condition::new("priority", Function::Ge, 20), vec![20, 30]),
        (Condition::new("priority", Function::Gt, 20), vec![30]),
        (
            Condition::includes("external_ids", Datum::map([("x", "1")])),
            vec![10, 20],
        ),
        (
            Condition::excludes("external_ids", Datum::map([("y", "1")])),
            vec![10, 30],
        ),
        (Condition::eq("external_ids", Datum::empty_map()), vec![30]),
    ];
    for (cond, want) in cases {
        let mut txn = Transaction::new(NB);
        let sel = txn.push(
            Select::new("QoS")
                .filter(cond.clone())
                .columns(["priority"]),
        );
        let out = nb.validated(&txn).expect("select");
        let mut got: Vec<i64> = out
            .rows(&sel)
            .expect("rows")
            .iter()
            .filter_map(|r| r.atom("priority").and_then(Atom::as_integer))
            .collect();
        got.sort_unstable();
        assert_eq!(got, want, "{}", serde_json::to_string(&cond).expect("json"));
    }
}
