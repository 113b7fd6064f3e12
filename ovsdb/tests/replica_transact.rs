//! Differential property test of [`Replica::transact`]: random transactions go to a real
//! ovsdb-server and to a replica holding the same contents, and must agree.
//!
//! Each case starts both from empty tables and runs a few transactions of several operations
//! (inserts with named references, forward ones included, updates, every mutator, deletes,
//! selects, waits, conditions on names, UUIDs and `external_ids`, values that break enums,
//! ranges and sizes, references to missing rows, duplicate index values). After each
//! transaction: the same success or failure; on failure the same `error` and failed operation;
//! on success the same results (server UUIDs mapped to the replica's through the insert results,
//! in operation order) and the same table contents.
//!
//! ovsdb-server 3.1 sometimes keeps a weak reference to a row the transaction deleted (when the
//! referring row was changed earlier in the same transaction); the replica removes it. The test
//! repairs such references on the server (and counts them) so that both go on in step.
//!
//! `PROPTEST_CASES` sets the number of cases (48 by default). Needs root and OVS/OVN (skips
//! without them, fails under `CI=true`).

mod transact_gen;
mod txn_common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use ovn_testbed::schemas;
use ovsdb::replica::Replica;
use ovsdb::{
    Atom, Condition, Datum, Delete, Mutate, Mutation, OperationResult, Row, Select, TransactError,
    TransactOutcome, Transaction, Uuid,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use transact_gen::{NB, Op, Side, Spec, Txn, VS, txns};
use txn_common::Nb;

/// Server UUIDs to replica UUIDs (UUIDs not in it map to themselves).
#[derive(Default)]
struct Uuids {
    to_replica: HashMap<Uuid, Uuid>,
    to_server: HashMap<Uuid, Uuid>,
}

impl Uuids {
    fn learn(&mut self, server: Uuid, replica: Uuid) -> bool {
        match self.to_replica.get(&server) {
            Some(r) => *r == replica,
            None => {
                self.to_replica.insert(server, replica);
                self.to_server.insert(replica, server);
                true
            }
        }
    }

    fn atom(&self, a: &Atom) -> Atom {
        match a {
            Atom::Uuid(u) => Atom::Uuid(self.to_replica.get(u).copied().unwrap_or(*u)),
            other => other.clone(),
        }
    }

    fn datum(&self, d: &Datum) -> Datum {
        match d {
            Datum::Set(s) => Datum::Set(s.iter().map(|a| self.atom(a)).collect()),
            Datum::Map(m) => Datum::Map(
                m.iter()
                    .map(|(k, v)| (self.atom(k), self.atom(v)))
                    .collect(),
            ),
        }
    }

    fn row(&self, row: &Row) -> Row {
        row.iter()
            .map(|(c, d)| {
                (
                    c,
                    if c == "_version" {
                        Datum::from(Uuid::NIL)
                    } else {
                        self.datum(d)
                    },
                )
            })
            .collect()
    }
}

/// Rows as sorted JSON texts (order-free comparison).
fn canonical(rows: &[Row]) -> Vec<String> {
    let mut out: Vec<String> = rows
        .iter()
        .map(|r| serde_json::to_string(r).unwrap_or_default())
        .collect();
    out.sort();
    out
}

/// `s` with every UUID replaced by `<uuid>` (the two sides' UUIDs differ).
fn without_uuids(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s.get(i..i + 36).is_some_and(|w| w.parse::<Uuid>().is_ok()) {
            out.push_str("<uuid>");
            i += 36;
        } else if let Some(c) = s[i..].chars().next() {
            out.push(c);
            i += c.len_utf8();
        } else {
            break;
        }
    }
    out
}

fn outcome_key(r: &Result<TransactOutcome, TransactError>) -> (Option<usize>, String) {
    match r {
        Ok(_) => (None, "ok".to_owned()),
        Err(TransactError::Operation { index, error, .. }) => (Some(*index), error.error.clone()),
        Err(TransactError::Commit { error }) => (None, format!("commit: {}", error.error)),
        Err(other) => (None, format!("other: {other}")),
    }
}

#[derive(Default, Debug)]
struct Stats {
    txns: usize,
    ok: usize,
    errors: BTreeMap<String, usize>,
    details_differ: usize,
    details_samples: Vec<(String, String)>,
    weak_repairs: usize,
}

struct Harness {
    nb: Nb,
    specs: &'static [Spec],
    db: &'static str,
    roots: &'static [&'static str],
    stats: Stats,
}

impl Harness {
    fn reset(&mut self) -> Result<Replica, TestCaseError> {
        let mut t = Transaction::new(self.db);
        for root in self.roots {
            t.push(Delete::new(*root));
        }
        self.nb
            .transact(&t)
            .map_err(|e| TestCaseError::fail(format!("reset: {e}")))?;
        Ok(Replica::new(&self.nb.schema))
    }

    /// Every row of the specs' tables on the server, with UUIDs mapped to the replica's.
    fn server_rows(
        &self,
        uuids: &Uuids,
    ) -> Result<BTreeMap<&'static str, BTreeMap<Uuid, Row>>, TestCaseError> {
        let mut t = Transaction::new(self.db);
        for (table, _) in self.specs {
            t.push(Select::new(*table));
        }
        let out = self
            .nb
            .transact(&t)
            .map_err(|e| TestCaseError::fail(format!("dump: {e}")))?;
        let mut all = BTreeMap::new();
        for ((table, _), r) in self.specs.iter().zip(out.into_results()) {
            let OperationResult::Rows(rows) = r else {
                return Err(TestCaseError::fail("dump result is not rows"));
            };
            let rows = rows
                .iter()
                .map(|row| {
                    let mut row = uuids.row(row);
                    row.remove("_version");
                    (row.uuid().unwrap_or(Uuid::NIL), row)
                })
                .collect();
            all.insert(*table, rows);
        }
        Ok(all)
    }

    /// Removes from the server the weak references to rows that do not exist (ovsdb-server
    /// 3.1 leaves some behind); returns how many rows it repaired.
    fn repair_weak(&mut self) -> Result<usize, TestCaseError> {
        let schema = self.nb.schema.clone();
        let mut t = Transaction::new(self.db);
        for (table, _) in self.specs {
            t.push(Select::new(*table).columns(["_uuid"]));
        }
        let out = self
            .nb
            .transact(&t)
            .map_err(|e| TestCaseError::fail(format!("list: {e}")))?;
        let mut live: HashMap<&str, HashSet<Uuid>> = HashMap::new();
        for ((table, _), r) in self.specs.iter().zip(out.into_results()) {
            if let OperationResult::Rows(rows) = r {
                live.insert(table, rows.iter().filter_map(Row::uuid).collect());
            }
        }
        let dump = self.server_rows(&Uuids::default())?;
        let mut fix = Transaction::new(self.db);
        for (table, rows) in &dump {
            let Some(ts) = schema.table(table) else {
                continue;
            };
            for (u, row) in rows {
                for (col, cs) in &ts.columns {
                    let Some(target) = cs
                        .type_
                        .key
                        .ref_table
                        .as_deref()
                        .filter(|_| cs.type_.key.ref_type == ovsdb::RefType::Weak)
                    else {
                        continue;
                    };
                    let Some(live_rows) = live.get(target) else {
                        continue;
                    };
                    let dead: Vec<Atom> = row
                        .get(col)
                        .map(|d| {
                            d.atoms()
                                .filter(|a| a.as_uuid().is_some_and(|x| !live_rows.contains(&x)))
                                .cloned()
                                .collect()
                        })
                        .unwrap_or_default();
                    if !dead.is_empty() {
                        fix.push(Mutate::new(*table).filter(Condition::uuid(*u)).mutation(
                            Mutation::delete(col.as_str(), Datum::Set(dead.into_iter().collect())),
                        ));
                    }
                }
            }
        }
        let n = fix.len();
        if n > 0 {
            self.nb
                .transact(&fix)
                .map_err(|e| TestCaseError::fail(format!("repair: {e}")))?;
        }
        Ok(n)
    }

    fn run_case(&mut self, case: &[Txn]) -> Result<(), TestCaseError> {
        let mut replica = self.reset()?;
        let mut uuids = Uuids::default();
        for txn in case {
            let before = replica.snapshot();
            let declared: HashMap<u8, &'static str> = txn
                .iter()
                .filter_map(|(t, o)| match o {
                    Op::Insert { name: Some(n), .. } => Some((*n, self.specs[*t].0)),
                    _ => None,
                })
                .collect();
            let mut side = Side {
                specs: self.specs,
                before: &before,
                to_server: None,
                declared,
            };
            let rt = side.transaction(self.db, txn);
            side.to_server = Some(&uuids.to_server);
            let st = side.transaction(self.db, txn);
            let server = self.nb.transact(&st);
            let mine = replica.transact(&rt);
            self.stats.txns += 1;
            let (sk, mk) = (outcome_key(&server), outcome_key(&mine));
            prop_assert_eq!(
                &sk,
                &mk,
                "outcomes differ for {}\nserver: {:?}\nreplica: {:?}",
                serde_json::to_string(&st).unwrap_or_default(),
                server,
                mine
            );
            let (server, mine) = match (server, mine) {
                (Ok(s), Ok(m)) => (s, m),
                (Err(s), Err(m)) => {
                    *self.stats.errors.entry(sk.1).or_default() += 1;
                    let sd = s
                        .server_error()
                        .and_then(|e| e.details.as_deref().map(without_uuids));
                    let md = m
                        .server_error()
                        .and_then(|e| e.details.as_deref().map(without_uuids));
                    if sd != md {
                        self.stats.details_differ += 1;
                        if self.stats.details_samples.len() < 6 {
                            self.stats
                                .details_samples
                                .push((sd.unwrap_or_default(), md.unwrap_or_default()));
                        }
                    }
                    continue;
                }
                _ => unreachable!("outcome keys are equal"),
            };
            self.stats.ok += 1;
            for (i, (s, m)) in server.results().iter().zip(mine.results()).enumerate() {
                match (s, m) {
                    (OperationResult::Uuid(s), OperationResult::Uuid(m)) => {
                        prop_assert!(
                            uuids.learn(*s, *m),
                            "insert {} maps {} to two replica UUIDs",
                            i,
                            s
                        );
                    }
                    (OperationResult::Rows(s), OperationResult::Rows(m)) => {
                        let s: Vec<Row> = s.iter().map(|r| uuids.row(r)).collect();
                        let m: Vec<Row> = m.iter().map(|r| Uuids::default().row(r)).collect();
                        prop_assert_eq!(
                            canonical(&s),
                            canonical(&m),
                            "select {} differs in {}",
                            i,
                            serde_json::to_string(&st).unwrap_or_default()
                        );
                    }
                    (s, m) => prop_assert_eq!(s, m, "result {} differs", i),
                }
            }
            let repaired = self.repair_weak()?;
            self.stats.weak_repairs += repaired;
            let on_server = self.server_rows(&uuids)?;
            let snap = replica.snapshot();
            for (table, rows) in on_server {
                let mine = snap.table(table).map(|t| t.to_rows()).unwrap_or_default();
                prop_assert_eq!(
                    &rows,
                    &mine,
                    "table {} differs after {}",
                    table,
                    serde_json::to_string(&st).unwrap_or_default()
                );
            }
        }
        Ok(())
    }
}

fn run(nb: Nb, specs: &'static [Spec], db: &'static str, roots: &'static [&'static str]) {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(48);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let harness = std::cell::RefCell::new(Harness {
        nb,
        specs,
        db,
        roots,
        stats: Stats::default(),
    });
    let start = Instant::now();
    let result = runner.run(&txns(specs), |case| harness.borrow_mut().run_case(&case));
    let stats = &harness.borrow().stats;
    eprintln!("{db}: {cases} cases in {:?}: {stats:?}", start.elapsed());
    if let Err(e) = result {
        panic!("{db}: {e}");
    }
    assert!(
        stats.ok > 0 && !stats.errors.is_empty(),
        "the generator should make both successes and failures"
    );
}

#[test]
fn northbound_transactions_agree_with_ovsdb_server() {
    let Some(nb) = txn_common::nb() else { return };
    run(
        nb,
        NB,
        "OVN_Northbound",
        &[
            "Logical_Switch",
            "Port_Group",
            "Address_Set",
            "Load_Balancer",
            "Logical_Router",
        ],
    );
}

#[test]
fn open_vswitch_transactions_agree_with_ovsdb_server() {
    let Some(vs) = txn_common::server(schemas::VSWITCH, "Open_vSwitch") else {
        return;
    };
    run(
        vs,
        VS,
        "Open_vSwitch",
        &["Open_vSwitch", "Flow_Sample_Collector_Set"],
    );
}
