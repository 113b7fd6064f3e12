//! The transaction engine behind [`Replica::transact`]: the operations ([`ops`] and
//! [`value`]), the commit checks ([`commit`]) and the server's error texts ([`text`]). The
//! rules are described in the [replica module documentation](crate::replica#transactions).
//!
//! Tested by unit tests per rule (`tests`, with the strings ovsdb-server 3.1 returns), and by a
//! differential property test against a real ovsdb-server (`ovsdb/tests/replica_transact.rs`).

mod commit;
mod ops;
mod text;
mod value;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use super::Replica;
use super::table::{Cells, State};
use super::view::DbState;
use crate::monitor::{Layout, TableId, TableLayout};
use crate::result::{OvsdbError, TransactError, TransactOutcome};
use crate::transaction::Transaction;
use crate::value::Uuid;

/// How many UUIDs in use a generator may return in a row before the insert fails.
const UUID_ATTEMPTS: usize = 1024;

impl Replica {
    /// Executes `txn` against the replica's contents as ovsdb-server does, and commits what it
    /// changes (applied through the replica's own atomic update path, so consumers see the
    /// changes like any update). UUIDs of inserted rows come from a deterministic counter.
    ///
    /// Meant for replicas that hold whole tables (tests, dry runs, planners); see the
    /// [replica module documentation](crate::replica#transactions) for the rules and where they
    /// differ from the server.
    /// Nothing changes when it fails.
    pub fn transact(&mut self, txn: &Transaction) -> Result<TransactOutcome, TransactError> {
        let mut counter = self.uuid_counter;
        let mut next = || {
            counter = counter.wrapping_add(1);
            counter_uuid(counter)
        };
        let outcome = self.transact_with(txn, &mut next)?;
        self.uuid_counter = counter;
        Ok(outcome)
    }

    /// [`Replica::transact`] with UUIDs from `next_uuid` (e.g. random ones). UUIDs already in
    /// use are skipped.
    pub fn transact_with(
        &mut self,
        txn: &Transaction,
        next_uuid: &mut dyn FnMut() -> Uuid,
    ) -> Result<TransactOutcome, TransactError> {
        if txn.database() != self.layout.name {
            return Err(TransactError::Mismatch {
                reason: format!(
                    "the transaction is for database {}, the replica holds {}",
                    txn.database(),
                    self.layout.name
                ),
            });
        }
        let mut exec = Exec::new(&self.layout, &self.state, next_uuid);
        let results = exec.run(txn)?;
        let updates = exec
            .commit()
            .map_err(|error| TransactError::Commit { error })?;
        self.apply(updates).map_err(|e| TransactError::Commit {
            error: text::error("I/O error", format!("the replica refused the commit: {e}")),
        })?;
        Ok(TransactOutcome::new(results))
    }
}

/// The `n`th UUID of the deterministic counter: the counter mixed into 122 random-looking bits,
/// marked as a version 4 UUID.
fn counter_uuid(n: u64) -> Uuid {
    let hi = mix(n);
    let lo = mix(hi ^ n.rotate_left(32));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&hi.to_be_bytes());
    bytes[8..].copy_from_slice(&lo.to_be_bytes());
    Uuid(uuid::Builder::from_random_bytes(bytes).into_uuid())
}

/// splitmix64's finalizer.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a, for the `_version` the replica derives (deterministic, unlike the indexes' hasher).
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A row's state before the transaction (`old`) and now (`new`).
#[derive(Debug, Clone)]
struct Staged {
    old: Option<Cells>,
    new: Option<Cells>,
}

/// A named UUID: its value, and whether an insert declared it yet.
struct Symbol {
    uuid: Uuid,
    created: bool,
}

/// One transaction in progress: the replica's contents plus the rows it touched.
pub(super) struct Exec<'a> {
    layout: &'a Layout,
    state: &'a DbState,
    /// Per table (by id), the rows touched so far.
    staged: Vec<HashMap<Uuid, Staged, State>>,
    symbols: HashMap<String, Symbol>,
    next_uuid: &'a mut dyn FnMut() -> Uuid,
    generated: HashSet<Uuid>,
}

impl<'a> Exec<'a> {
    fn new(layout: &'a Layout, state: &'a DbState, next_uuid: &'a mut dyn FnMut() -> Uuid) -> Self {
        Exec {
            layout,
            state,
            staged: layout.tables.iter().map(|_| HashMap::default()).collect(),
            symbols: HashMap::new(),
            next_uuid,
            generated: HashSet::new(),
        }
    }

    fn run(&mut self, txn: &Transaction) -> Result<Vec<crate::OperationResult>, TransactError> {
        let ops = txn.operations();
        let mut results = Vec::with_capacity(ops.len());
        for (index, op) in ops.iter().enumerate() {
            let result =
                self.operation(index, ops.len(), op)
                    .map_err(|error| TransactError::Operation {
                        index,
                        kind: op.kind(),
                        table: op.table().map(str::to_owned),
                        error,
                    })?;
            results.push(result);
        }
        Ok(results)
    }

    fn table_layout(&self, t: TableId) -> &'a TableLayout {
        &self.layout.tables[t.index()]
    }

    /// Row `u` of table `t` as the transaction sees it now.
    fn get(&self, t: TableId, u: Uuid) -> Option<&Cells> {
        match self.staged[t.index()].get(&u) {
            Some(s) => s.new.as_ref(),
            None => self.state.tables[t.index()].rows.get(&u),
        }
    }

    /// Whether the transaction has touched row `u` of `t` (it may have deleted it).
    fn touched(&self, t: TableId, u: Uuid) -> bool {
        self.staged[t.index()].contains_key(&u)
    }

    /// Every row of `t` as the transaction sees it now, in no particular order.
    fn live(&self, t: TableId) -> impl Iterator<Item = (Uuid, &Cells)> {
        let staged = &self.staged[t.index()];
        let base = self.state.tables[t.index()]
            .rows
            .iter()
            .filter(move |(u, _)| !staged.contains_key(*u))
            .map(|(u, c)| (*u, c));
        base.chain(
            staged
                .iter()
                .filter_map(|(u, s)| s.new.as_ref().map(|c| (*u, c))),
        )
    }

    /// Number of rows of `t` now.
    fn row_count(&self, t: TableId) -> usize {
        let base = self.state.tables[t.index()].rows.len();
        let staged = &self.staged[t.index()];
        let added = staged
            .values()
            .filter(|s| s.old.is_none() && s.new.is_some())
            .count();
        let removed = staged
            .values()
            .filter(|s| s.old.is_some() && s.new.is_none())
            .count();
        base + added - removed
    }

    /// Sets row `u` of `t` to `new` (`None` deletes it). A row inserted and deleted within the
    /// transaction is forgotten, as the server forgets it.
    fn set_row(&mut self, t: TableId, u: Uuid, new: Option<Cells>) {
        let staged = &mut self.staged[t.index()];
        match staged.get_mut(&u) {
            Some(s) if s.old.is_none() && new.is_none() => {
                staged.remove(&u);
            }
            Some(s) => s.new = new,
            None => {
                let old = self.state.tables[t.index()].rows.get(&u).cloned();
                staged.insert(u, Staged { old, new });
            }
        }
    }

    /// Whether `u` is the UUID of any row, before or in this transaction.
    fn in_use(&self, u: Uuid) -> bool {
        self.generated.contains(&u)
            || self.state.tables.iter().any(|t| t.rows.contains_key(&u))
            || self.staged.iter().any(|s| s.contains_key(&u))
    }

    /// A fresh UUID from the generator, skipping any in use.
    fn fresh_uuid(&mut self) -> Result<Uuid, OvsdbError> {
        for _ in 0..UUID_ATTEMPTS {
            let u = (self.next_uuid)();
            if !self.in_use(u) {
                self.generated.insert(u);
                return Ok(u);
            }
        }
        Err(text::error(
            "resources exhausted",
            format!("the UUID generator returned {UUID_ATTEMPTS} UUIDs in use in a row"),
        ))
    }

    /// The UUID of named UUID `name`, made up on first use (a forward reference, or a name no
    /// insert declares, which then refers to no row).
    fn symbol(&mut self, name: &str) -> Result<Uuid, OvsdbError> {
        if let Some(s) = self.symbols.get(name) {
            return Ok(s.uuid);
        }
        let uuid = self.fresh_uuid()?;
        self.symbols.insert(
            name.to_owned(),
            Symbol {
                uuid,
                created: false,
            },
        );
        Ok(uuid)
    }

    /// The `_version` the replica reports for row `u` of `t`: derived from the UUID and the
    /// row's contents before the transaction (a row's version does not change until commit).
    fn version(&self, t: TableId, u: Uuid) -> Uuid {
        let mut h = Fnv(0xcbf2_9ce4_8422_2325);
        u.hash(&mut h);
        if let Some(cells) = self.state.tables[t.index()].rows.get(&u) {
            cells.hash(&mut h);
        }
        let hi = h.finish();
        hi.hash(&mut h);
        let lo = h.finish();
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&hi.to_be_bytes());
        bytes[8..].copy_from_slice(&lo.to_be_bytes());
        Uuid(uuid::Builder::from_random_bytes(bytes).into_uuid())
    }
}
