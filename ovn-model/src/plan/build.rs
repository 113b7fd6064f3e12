//! From a [`Plan`] to one transaction ([`Prepared`]), and from the server's answer back to the
//! plan's words: which step failed, which name matched nothing or several rows.

use std::collections::{BTreeMap, HashMap, HashSet};

use ovsdb::replica::Replica;
use ovsdb::table::Ref;
use ovsdb::{
    Atom, Condition, DatabaseSchema, Datum, Delete, ErrorKind, Function, Insert, InsertHandle,
    Mutate, Mutation, Mutator, NamedUuid, Operation, OperationResult, Row, Set, TransactError,
    TransactOutcome, Transaction, Update, Uuid, Wait, WaitUntil,
};

use super::{Change, Plan, PlanError, RowTarget};
use crate::topology::{CHILD_LINKS, ROOT_TABLES};

/// What an operation of the transaction is for.
#[derive(Debug, Clone, PartialEq)]
enum Origin {
    /// The `assert` that this client holds the lock.
    Lock { lock: String },
    /// A `wait` that the target exists (or not) when the transaction runs.
    Guard {
        table: &'static str,
        target: RowTarget,
        present: bool,
        needed_by: Vec<usize>,
    },
    /// An operation of step `step`; `one` when it must match exactly one row.
    Step { step: usize, one: Option<Counted> },
}

/// A row an operation must match exactly once.
#[derive(Debug, Clone, PartialEq)]
struct Counted {
    table: &'static str,
    target: RowTarget,
}

/// A plan made into one transaction, with what is needed to read the server's answer in the
/// plan's words.
#[derive(Debug, Clone)]
#[must_use = "a prepared plan does nothing until its transaction is sent"]
pub struct Prepared {
    txn: Transaction,
    inserted: HashMap<NamedUuid, InsertHandle>,
    origins: Vec<Origin>,
    steps: Vec<String>,
}

impl Plan {
    /// The plan as one transaction, without checking it against a server's schema (every row
    /// was checked against the model when it was added).
    ///
    /// # Errors
    /// [`PlanError::Orphan`] for a row of a non-root table nothing refers to;
    /// [`PlanError::ChildByName`] for a delete of such a row by name.
    pub fn transaction(&self) -> Result<Prepared, PlanError> {
        Builder::new(self).build(None)
    }

    /// The plan as one transaction that first asserts that this client holds the OVSDB lock
    /// `lock` (RFC 7047 `assert`): a client that lost the lock commits nothing. How several
    /// writers (controllers) make sure only one of them writes.
    ///
    /// # Errors
    /// What [`Plan::transaction`] returns.
    pub fn transaction_holding(&self, lock: &str) -> Result<Prepared, PlanError> {
        Builder::new(self).build(Some(lock))
    }

    /// The plan as one transaction, checked against `schema` (the server's, from
    /// `get_schema`).
    ///
    /// # Errors
    /// What [`Plan::transaction`] returns, and [`PlanError::Invalid`] when the transaction does
    /// not fit `schema`.
    pub fn validated(&self, schema: &DatabaseSchema) -> Result<Prepared, PlanError> {
        let prepared = self.transaction()?;
        prepared.txn.validate(schema).map_err(PlanError::Invalid)?;
        Ok(prepared)
    }
}

/// Whether `table` of `db` is a root table.
pub(crate) fn is_root(db: &str, table: &str) -> bool {
    ROOT_TABLES.iter().any(|(d, t)| *d == db && *t == table)
}

/// The parent columns that can hold rows of `table` of `db`: `(parent table, column)`.
pub(crate) fn parents_of(
    db: &str,
    table: &str,
) -> impl Iterator<Item = (&'static str, &'static str)> {
    CHILD_LINKS
        .iter()
        .filter(move |(d, _, _, c)| *d == db && *c == table)
        .map(|(_, p, col, _)| (*p, *col))
}

fn condition(target: &RowTarget) -> Condition {
    match target {
        RowTarget::Uuid(u) => Condition::uuid(*u),
        RowTarget::Named(n) => Condition::new("_uuid", Function::Eq, Atom::NamedUuid(n.clone())),
        RowTarget::Name(n) => Condition::eq("name", n.as_str()),
    }
}

/// A count check for an operation on `target`: rows read by UUID or selected by name must be
/// matched exactly once; a row new in the plan always is.
fn counted(table: &'static str, target: &RowTarget) -> Option<Counted> {
    (!matches!(target, RowTarget::Named(_))).then(|| Counted {
        table,
        target: target.clone(),
    })
}

struct Builder<'a> {
    plan: &'a Plan,
    /// The row of each insert step, with what later steps merged into it.
    rows: BTreeMap<usize, Row>,
    /// Steps merged into an insert: they emit no operation.
    merged: HashSet<usize>,
}

impl<'a> Builder<'a> {
    fn new(plan: &'a Plan) -> Self {
        Builder {
            plan,
            rows: BTreeMap::new(),
            merged: HashSet::new(),
        }
    }

    fn build(mut self, lock: Option<&str>) -> Result<Prepared, PlanError> {
        self.merge_into_inserts();
        self.check_orphans()?;
        let mut txn = Transaction::with_capacity(self.plan.db, self.plan.steps.len() + 5);
        let mut origins = Vec::new();
        if let Some(lock) = lock {
            txn.push(Operation::Assert {
                lock: lock.to_owned(),
            });
            origins.push(Origin::Lock {
                lock: lock.to_owned(),
            });
        }
        let mut guards = self.guards().into_iter().peekable();
        let mut inserted = HashMap::new();
        let mut siblings = self.siblings();
        for (i, step) in self.plan.steps.iter().enumerate() {
            // A guard goes right before the first step that needs it: rows inserted by earlier
            // steps of the same transaction count as existing.
            while let Some((table, target, present, needed_by)) =
                guards.next_if(|g| g.3.first() == Some(&i))
            {
                let until = if present {
                    WaitUntil::NotEqual
                } else {
                    WaitUntil::Equal
                };
                txn.push(
                    Wait::new(table, Vec::<String>::new(), until, Vec::new())
                        .filter(condition(&target))
                        .timeout_ms(0),
                );
                origins.push(Origin::Guard {
                    table,
                    target,
                    present,
                    needed_by,
                });
            }
            if self.merged.contains(&i) {
                continue;
            }
            let mut push = |txn: &mut Transaction, op: Operation, one: Option<Counted>| {
                txn.push(op);
                origins.push(Origin::Step { step: i, one });
            };
            match &step.change {
                Change::Insert {
                    table,
                    name,
                    parent,
                    ..
                } => {
                    let row = self.rows.remove(&i).unwrap_or_default();
                    let handle = InsertHandle {
                        index: txn.len(),
                        uuid_name: Some(name.clone()),
                    };
                    inserted.insert(name.clone(), handle);
                    push(
                        &mut txn,
                        Operation::Insert(Insert::new(*table, row).uuid_name(name.clone())),
                        None,
                    );
                    // Every new child of one existing parent goes in with one mutate, at the
                    // first child (named UUIDs may be declared later in a transaction).
                    let group = parent
                        .as_ref()
                        .filter(|p| !is_named(&p.target))
                        .and_then(|p| siblings.remove(&(p.table, p.column, p.target.clone())))
                        .zip(parent.as_ref());
                    if let Some((names, p)) = group {
                        let add = Mutation::insert(
                            p.column,
                            Datum::set(names.into_iter().map(Atom::NamedUuid)),
                        );
                        push(
                            &mut txn,
                            Operation::Mutate(
                                Mutate::new(p.table)
                                    .filter(condition(&p.target))
                                    .mutation(add),
                            ),
                            counted(p.table, &p.target),
                        );
                    }
                }
                Change::Update { table, target, row } => push(
                    &mut txn,
                    Operation::Update(Update::new(*table, row.clone()).filter(condition(target))),
                    counted(table, target),
                ),
                Change::Mutate {
                    table,
                    target,
                    mutations,
                } => {
                    let mut m = Mutate::new(*table).filter(condition(target));
                    m.mutations.clone_from(mutations);
                    push(&mut txn, Operation::Mutate(m), counted(table, target));
                }
                Change::Delete { table, target } if is_root(self.plan.db, table) => push(
                    &mut txn,
                    Operation::Delete(Delete::new(*table).filter(condition(target))),
                    None,
                ),
                Change::Delete { table, target } => {
                    let RowTarget::Uuid(u) = target else {
                        return Err(PlanError::ChildByName {
                            table,
                            target: target.clone(),
                        });
                    };
                    for (ptable, column) in parents_of(self.plan.db, table) {
                        let one = Datum::set([Atom::Uuid(*u)]);
                        push(
                            &mut txn,
                            Operation::Mutate(
                                Mutate::new(ptable)
                                    .filter(Condition::includes(column, one.clone()))
                                    .mutation(Mutation::delete(column, one)),
                            ),
                            None,
                        );
                    }
                }
                Change::Expect { .. } => {}
            }
        }
        Ok(Prepared {
            txn,
            inserted,
            origins,
            steps: self.plan.explain(),
        })
    }

    /// The new children of each existing parent column, in step order.
    fn siblings(&self) -> HashMap<(&'static str, &'static str, RowTarget), Vec<NamedUuid>> {
        let mut out: HashMap<_, Vec<NamedUuid>> = HashMap::new();
        for step in &self.plan.steps {
            if let Change::Insert {
                name,
                parent: Some(p),
                ..
            } = &step.change
                && !is_named(&p.target)
            {
                out.entry((p.table, p.column, p.target.clone()))
                    .or_default()
                    .push(name.clone());
            }
        }
        out
    }

    /// Puts the references of children of new parents, and updates and reference-adding
    /// mutations of new rows, into the rows' own inserts.
    fn merge_into_inserts(&mut self) {
        for (i, step) in self.plan.steps.iter().enumerate() {
            if let Change::Insert { row, .. } = &step.change {
                self.rows.insert(i, row.clone());
            }
        }
        // The children of each new parent are added in one go: a switch inserted with
        // thousands of ports is one sort, not one per port.
        let mut children: BTreeMap<(usize, &'static str), Vec<Atom>> = BTreeMap::new();
        for step in &self.plan.steps {
            if let Change::Insert {
                name,
                parent: Some(p),
                ..
            } = &step.change
                && let RowTarget::Named(n) = &p.target
                && let Some(i) = self.plan.insert_index(n)
            {
                children
                    .entry((i, p.column))
                    .or_default()
                    .push(Atom::NamedUuid(name.clone()));
            }
        }
        for ((i, column), atoms) in children {
            if let Some(row) = self.rows.get_mut(&i) {
                add_atoms(row, column, &Datum::Set(Set::from_atoms(atoms)));
            }
        }
        for (i, step) in self.plan.steps.iter().enumerate() {
            match &step.change {
                Change::Update { target, row, .. } => {
                    if let Some(new) = self.named_row(target) {
                        for (c, d) in row.iter() {
                            new.insert(c, d.clone());
                        }
                        self.merged.insert(i);
                    }
                }
                Change::Mutate {
                    target, mutations, ..
                } if mutations.iter().all(|m| m.mutator == Mutator::Insert) => {
                    if let Some(new) = self.named_row(target) {
                        for m in mutations {
                            add_atoms(new, &m.column, &m.value);
                        }
                        self.merged.insert(i);
                    }
                }
                _ => {}
            }
        }
    }

    /// The insert row of the plan's row `target` names, if it is one.
    fn named_row(&mut self, target: &RowTarget) -> Option<&mut Row> {
        let RowTarget::Named(n) = target else {
            return None;
        };
        let i = self.plan.insert_index(n)?;
        self.rows.get_mut(&i)
    }

    fn check_orphans(&self) -> Result<(), PlanError> {
        let mut referenced: HashSet<&NamedUuid> = HashSet::new();
        for (i, step) in self.plan.steps.iter().enumerate() {
            let datums: Vec<&Datum> = match &step.change {
                Change::Insert { name, parent, .. } => {
                    if parent.is_some() {
                        referenced.insert(name);
                    }
                    self.rows
                        .get(&i)
                        .map(|r| r.iter().map(|(_, d)| d).collect())
                        .unwrap_or_default()
                }
                Change::Mutate { mutations, .. } => mutations.iter().map(|m| &m.value).collect(),
                Change::Update { row, .. } => row.iter().map(|(_, d)| d).collect(),
                Change::Delete { .. } | Change::Expect { .. } => Vec::new(),
            };
            for d in datums {
                referenced.extend(d.atoms().filter_map(Atom::as_named_uuid));
            }
        }
        for step in &self.plan.steps {
            if let Change::Insert { table, name, .. } = &step.change
                && !is_root(self.plan.db, table)
                && !referenced.contains(name)
            {
                return Err(PlanError::Orphan {
                    table,
                    name: name.to_string(),
                });
            }
        }
        Ok(())
    }

    /// The rows that must exist (or not) for the plan to make sense, each once, in the order
    /// of the first step that needs it.
    fn guards(&self) -> Vec<(&'static str, RowTarget, bool, Vec<usize>)> {
        let mut out: Vec<(&'static str, RowTarget, bool, Vec<usize>)> = Vec::new();
        let mut need = |table: &'static str, target: &RowTarget, present: bool, step: usize| {
            if is_named(target) {
                return;
            }
            match out
                .iter_mut()
                .find(|(t, g, p, _)| *t == table && g == target && *p == present)
            {
                Some((_, _, _, by)) => by.push(step),
                None => out.push((table, target.clone(), present, vec![step])),
            }
        };
        for (i, step) in self.plan.steps.iter().enumerate() {
            match &step.change {
                Change::Insert {
                    parent: Some(p), ..
                } => need(p.table, &p.target, true, i),
                Change::Update { table, target, .. } | Change::Mutate { table, target, .. }
                    if matches!(target, RowTarget::Name(_)) =>
                {
                    need(table, target, true, i);
                }
                Change::Expect {
                    table,
                    target,
                    present,
                } => need(table, target, *present, i),
                _ => {}
            }
        }
        out
    }
}

fn is_named(t: &RowTarget) -> bool {
    matches!(t, RowTarget::Named(_))
}

/// Adds a set's atoms (or a map's pairs whose keys are new, as OVSDB's map `insert` does) to
/// `column` of `row`.
fn add_atoms(row: &mut Row, column: &str, value: &Datum) {
    let merged = match (row.get(column), value) {
        (None, v) => v.clone(),
        (Some(Datum::Set(have)), Datum::Set(add)) => {
            Datum::Set(have.iter().chain(add.iter()).cloned().collect())
        }
        (Some(Datum::Map(have)), Datum::Map(add)) => {
            let mut m = have.clone();
            for (k, v) in add.iter() {
                if m.get(k).is_none() {
                    m.insert(k.clone(), v.clone());
                }
            }
            Datum::Map(m)
        }
        // An empty column is stored as an empty set whatever its type.
        (Some(have), v) if have.is_empty() => v.clone(),
        (Some(have), _) => have.clone(),
    };
    row.insert(column, merged);
}

impl Prepared {
    /// The transaction to send.
    pub fn transaction(&self) -> &Transaction {
        &self.txn
    }

    /// The transaction, by value.
    pub fn into_transaction(self) -> Transaction {
        self.txn
    }

    /// Runs the transaction on `replica` with `ovsdb`'s in-memory transaction engine (what the
    /// server would do, on the replica's contents) and checks the answer as sending it would:
    /// the one in-memory application every planner's tests use.
    ///
    /// # Errors
    /// What [`Prepared::failure`] and [`Prepared::check`] return.
    pub fn apply(&self, replica: &mut Replica) -> Result<TransactOutcome, PlanError> {
        let outcome = replica.transact(&self.txn).map_err(|e| self.failure(e))?;
        self.check(&outcome)?;
        Ok(outcome)
    }

    /// Every row the transaction inserted, as `(table, UUID)`, from its committed outcome.
    #[must_use]
    pub fn inserted_rows(&self, outcome: &TransactOutcome) -> Vec<(String, Uuid)> {
        self.inserted
            .values()
            .filter_map(|h| {
                let Some(Operation::Insert(insert)) = self.txn.operations().get(h.index) else {
                    return None;
                };
                Some((insert.table.clone(), outcome.uuid(h)?))
            })
            .collect()
    }

    /// The UUID the server gave a row the plan inserted (or the UUID of a row read from it).
    #[must_use]
    pub fn uuid<T>(&self, outcome: &TransactOutcome, r: &Ref<T>) -> Option<Uuid> {
        match r.id() {
            ovsdb::table::RowId::Uuid(u) => Some(*u),
            ovsdb::table::RowId::Named(n) => outcome.uuid(self.inserted.get(n)?),
        }
    }

    /// The error a failed transaction means in the plan's words: a row that had to exist and
    /// did not ([`PlanError::Missing`]), one that had to be absent ([`PlanError::Exists`]), or
    /// the step (or the commit) the server refused with its `error` and `details`
    /// ([`PlanError::Refused`]).
    #[must_use]
    pub fn failure(&self, err: TransactError) -> PlanError {
        match err {
            TransactError::Operation { index, error, .. } => match self.origins.get(index) {
                Some(Origin::Lock { lock }) if error.kind() == ErrorKind::NotOwner => {
                    PlanError::NotLockOwner { lock: lock.clone() }
                }
                Some(Origin::Guard {
                    table,
                    target,
                    present,
                    needed_by,
                }) if error.kind() == ErrorKind::TimedOut => {
                    if *present {
                        PlanError::Missing {
                            table,
                            target: target.clone(),
                            needed_by: self.describe(needed_by),
                        }
                    } else {
                        PlanError::Exists {
                            table,
                            target: target.clone(),
                        }
                    }
                }
                Some(Origin::Step { step, .. }) => PlanError::Refused {
                    what: format!("step {} ({})", step + 1, self.steps[*step]),
                    index: Some(index),
                    error,
                },
                _ => PlanError::Refused {
                    what: format!("operation {index}"),
                    index: Some(index),
                    error,
                },
            },
            TransactError::Commit { error } => PlanError::Refused {
                what: "the commit".to_owned(),
                index: None,
                error,
            },
            other => PlanError::Reply(other),
        }
    }

    /// Checks the counts of a committed transaction: every row the plan changed by UUID or by
    /// name was matched exactly once.
    ///
    /// # Errors
    /// [`PlanError::Several`] for a name that matched several rows (all of them changed), or
    /// [`PlanError::Stale`] for a row changed by UUID that no longer existed; the transaction
    /// committed either way, so plan again from a fresh snapshot.
    pub fn check(&self, outcome: &TransactOutcome) -> Result<(), PlanError> {
        for (i, origin) in self.origins.iter().enumerate() {
            let Origin::Step { step, one: Some(c) } = origin else {
                continue;
            };
            let Some(OperationResult::Count(n)) = outcome.results().get(i) else {
                continue;
            };
            let what = || format!("step {} ({})", step + 1, self.steps[*step]);
            match (*n, &c.target) {
                (1, _) => {}
                (0, RowTarget::Uuid(u)) => {
                    return Err(PlanError::Stale {
                        table: c.table,
                        uuid: *u,
                        what: what(),
                    });
                }
                (0, target) => {
                    return Err(PlanError::Missing {
                        table: c.table,
                        target: target.clone(),
                        needed_by: what(),
                    });
                }
                (count, RowTarget::Name(name)) => {
                    return Err(PlanError::Several {
                        table: c.table,
                        name: name.clone(),
                        count,
                        what: what(),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn describe(&self, steps: &[usize]) -> String {
        steps
            .iter()
            .map(|s| format!("step {} ({})", s + 1, self.steps[*s]))
            .collect::<Vec<_>>()
            .join("; ")
    }
}
