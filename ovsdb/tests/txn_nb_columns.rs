//! Every column of OVN_Northbound against a real `ovsdb-server`: values written through ovnkit
//! read back identically with `ovsdb-client dump`, and values written with `ovn-nbctl` read back
//! identically through ovnkit. The first direction also runs on OVN_Southbound and
//! Open_vSwitch, so that every schema ovnkit generates models for is covered.
//!
//! Needs root and OVN (the testbed skips without them, and fails when `CI=true`).

mod txn_common;

use std::collections::{BTreeMap, BTreeSet};

use ovn_testbed::schemas;
use ovsdb::{ColumnType, Insert, InsertHandle, Row, Select, Transaction, Uuid};
use txn_common::{Nb, nb, sample, server};

/// Distinct column types of the schema (as their display plus constraints), for coverage.
fn type_key(ty: &ColumnType) -> String {
    format!("{ty:?}")
}

fn assert_every_column_sampled(nb: &Nb, rows: &BTreeMap<String, Row>) {
    for t in nb.schema.tables.values() {
        for c in t.columns.keys() {
            assert!(
                rows[&t.name].get(c).is_some(),
                "no sample value for {}.{c}",
                t.name
            );
        }
    }
}

/// Compares what was read (`got`, per table) with the sample rows; returns the distinct column
/// types compared.
fn compare(
    nb: &Nb,
    rows: &BTreeMap<String, Row>,
    uuids: &BTreeMap<String, Uuid>,
    got: &BTreeMap<String, Vec<Row>>,
) -> BTreeSet<String> {
    let alive: BTreeSet<Uuid> = got.values().flatten().filter_map(Row::uuid).collect();
    let mut types = BTreeSet::new();
    for (t, row) in rows {
        let ts = nb.schema.table(t).expect("table");
        let got = &got[t];
        assert_eq!(
            got.len(),
            1,
            "{t}: expected the one sample row, got {got:?}"
        );
        let got = &got[0];
        assert_eq!(got.uuid(), Some(uuids[t]), "{t}: _uuid");
        let want = sample::resolve(&nb.schema, t, row, uuids, &alive);
        for (c, d) in want.iter() {
            assert_eq!(got.get(c), Some(d), "{t}.{c} reads back differently");
            types.insert(type_key(&ts.columns[c].type_));
        }
    }
    types
}

fn all_types(nb: &Nb) -> BTreeSet<String> {
    nb.schema
        .tables
        .values()
        .flat_map(|t| t.columns.values().map(|c| type_key(&c.type_)))
        .collect()
}

/// Inserts the sample row of every table in one validated transaction, then compares each
/// table's `ovsdb-client dump` with what was written.
fn write_every_column_and_dump(nb: &Nb) {
    let rows = sample::rows(&nb.schema);
    assert_every_column_sampled(nb, &rows);

    let mut txn = Transaction::new(nb.schema.name.clone());
    let handles: BTreeMap<String, InsertHandle> = rows
        .iter()
        .map(|(t, r)| {
            let op = Insert::new(t, r.clone()).uuid_name(sample::name_of(t));
            (t.clone(), txn.push(op))
        })
        .collect();
    let outcome = nb.validated(&txn).expect("the sample transaction commits");
    let uuids: BTreeMap<String, Uuid> = handles
        .iter()
        .map(|(t, h)| (t.clone(), outcome.uuid(h).expect("insert uuid")))
        .collect();

    let dumped: BTreeMap<String, Vec<Row>> = rows.keys().map(|t| (t.clone(), nb.dump(t))).collect();
    let types = compare(nb, &rows, &uuids, &dumped);
    assert_eq!(types, all_types(nb), "column types not covered");
}

#[test]
fn every_nb_column_written_by_ovnkit_reads_back_in_ovsdb_client_dump() {
    let Some(nb) = nb() else { return };
    write_every_column_and_dump(&nb);
}

#[test]
fn every_sb_column_written_by_ovnkit_reads_back_in_ovsdb_client_dump() {
    let Some(sb) = server(schemas::SB, "OVN_Southbound") else {
        return;
    };
    write_every_column_and_dump(&sb);
}

#[test]
fn every_vswitch_column_written_by_ovnkit_reads_back_in_ovsdb_client_dump() {
    let Some(ovs) = server(schemas::VSWITCH, "Open_vSwitch") else {
        return;
    };
    write_every_column_and_dump(&ovs);
}

#[test]
fn every_nb_column_written_by_ovn_nbctl_reads_back_through_ovnkit() {
    let Some(nb) = nb() else { return };
    let rows = sample::rows(&nb.schema);
    assert_every_column_sampled(&nb, &rows);

    // ovn-nbctl makes the NB_Global row itself (`init`) and refuses a second one, so that row
    // is filled with `set`; every other table gets `-- --id=@t_T create T col=value ...`, all in
    // one ovn-nbctl transaction.
    nb.nbctl(&["init"]);
    let mut args: Vec<String> = Vec::new();
    for (t, row) in &rows {
        let values = row
            .iter()
            .map(|(c, d)| format!("{c}={}", sample::ctl_syntax(d)));
        if t == "NB_Global" {
            args.extend(["--".into(), "set".into(), t.clone(), ".".into()]);
        } else {
            let id = format!("--id=@{}", sample::name_of(t));
            args.extend(["--".into(), id, "create".into(), t.clone()]);
        }
        args.extend(values);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = nb.nbctl(&args);
    let mut created = out.lines().filter(|l| !l.trim().is_empty()).map(|l| {
        l.trim()
            .parse::<Uuid>()
            .expect("ovn-nbctl create prints UUIDs")
    });
    let global: Uuid = nb
        .nbctl(&["get", "NB_Global", ".", "_uuid"])
        .trim()
        .parse()
        .expect("uuid");
    let uuids: BTreeMap<String, Uuid> = rows
        .keys()
        .map(|t| {
            let u = if t == "NB_Global" {
                global
            } else {
                created.next().expect("one UUID per create")
            };
            (t.clone(), u)
        })
        .collect();
    assert!(created.next().is_none(), "more UUIDs than creates: {out}");

    // Read every table back through ovnkit in one transaction, decoded against the schema.
    let mut txn = Transaction::new("OVN_Northbound");
    let handles: BTreeMap<String, _> = rows
        .keys()
        .map(|t| (t.clone(), txn.push(Select::new(t))))
        .collect();
    let outcome = nb.validated(&txn).expect("select every table");
    let read: BTreeMap<String, Vec<Row>> = handles
        .iter()
        .map(|(t, h)| (t.clone(), outcome.rows(h).expect("rows").to_vec()))
        .collect();
    let types = compare(&nb, &rows, &uuids, &read);
    assert_eq!(types, all_types(&nb), "column types not covered");
}
