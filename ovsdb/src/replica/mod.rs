//! An in-memory replica of a database, fed by monitor replies and `update`/`update2`/`update3`
//! notifications, or by its own transactions ([`Replica::transact`], for tests and dry runs).
//! Pure: no IO, no clock, no runtime.
//!
//! # Shape
//!
//! A [`Replica`] is owned by whoever drives the connection (the *driver*); readers get
//! [`Snapshot`]s and pull changes. Nothing here blocks or spawns: the async client wraps the
//! replica in a mutex (every call below is short) and wakes readers when [`Replica::seq`]
//! moves.
//!
//! **Driver side.**
//! 1. Build a [`MonitorRequest`] and send
//!    `request.method.as_str()` with `request.params(replica.last_txn_id())`.
//! 2. Feed the reply's `result` to [`Replica::apply_reply`]. For `monitor` and `monitor_cond`,
//!    and for `monitor_cond_since` when the server did not know the last transaction id, the
//!    reply is the full contents of the monitored tables: it *replaces* them, and the difference
//!    to what the replica held (rows added, removed, changed) is reported as changes. That is the
//!    resync after a reconnect. When the server knew the id, the reply holds only what changed
//!    since, applied on top. Afterwards [`Replica::is_synced`] is true.
//! 3. Feed each `update`/`update2`/`update3` notification to [`Replica::apply_notification`]
//!    (or decode with [`UpdateNotification::decode`](crate::monitor::UpdateNotification::decode)
//!    and call [`Replica::apply`]), in the order the server sent them.
//! 4. When the connection drops, call [`Replica::mark_unsynced`]; keep the replica and go to 1.
//!    `update3` ids are kept in [`Replica::last_txn_id`] for resumption.
//!
//! Each call applies one reply or notification atomically: it is checked completely first
//! (row exists for `modify`/`delete`, not for `insert`; diffs fit their columns) and either
//! applied whole or not at all, with a [`ReplicaError`] naming the table, row and column. After
//! an error the driver should resubscribe (a full resync repairs any divergence).
//!
//! **Reader side.**
//! - [`Replica::snapshot`] is O(1) and immutable: a [`Snapshot`] never sees part of an update.
//!   Look rows up by UUID or through indexes ([`TableView::find`]): every index of the schema
//!   exists from the start, [`Replica::add_index`] adds others (any tuple of columns and map
//!   keys). A map key is written `column:key`, as `ovn-nbctl find` writes it: an index on
//!   `external_ids:ovnkit.io/object` finds the rows tagged `pod/default/web` by
//!   `find(&["external_ids:ovnkit.io/object"], &[Datum::from("pod/default/web")])`, and the
//!   rows without the tag by the empty set.
//! - [`Replica::subscribe`] registers a consumer; [`Replica::take_changes`] returns, with a
//!   snapshot at the same point, the rows of each table inserted, modified or deleted since the
//!   consumer's previous call, and the sequence numbers between which they changed.
//!   Events are coalesced per row (insert then modify is an insert, insert then delete is
//!   nothing, delete then insert is a modify), so a slow consumer gets "these rows changed"
//!   instead of a backlog of every event, and nothing is ever dropped. What a consumer has
//!   pending is bounded by the rows it could know about (the rows now, plus the rows at its last
//!   pull), never by the number of events. Unsubscribe consumers you no longer read.
//!
//! # Transactions
//!
//! [`Replica::transact`] executes a [`Transaction`](crate::Transaction) as ovsdb-server 3.1 does and commits what it changes through
//! the replica's own atomic update path ([`Replica::apply`]), so indexes, change sets and
//! [`Replica::seq`] see the commit like any update; a transaction that changes nothing does not
//! move `seq`, and a failed one changes nothing at all. It is meant for replicas that hold whole
//! tables: tests, dry runs, planners' property tests. (A replica whose monitor leaves out rows or
//! columns would answer from what it holds.)
//!
//! ## What it does, in the server's order
//!
//! 1. The operations, one after the other, each seeing what the earlier ones did; the first one
//!    that fails fails the transaction ([`TransactError::Operation`](crate::TransactError::Operation)). Values are checked as the
//!    server parses them (shape and size: `syntax error`; enums, ranges, lengths: `constraint
//!    violation`), named UUIDs resolve as the server resolves them, forward references
//!    included (a name used before the insert that declares it), and `select` and `wait`
//!    collapse duplicate rows as the server does.
//! 2. The commit checks ([`TransactError::Commit`](crate::TransactError::Commit)): strong references to rows that do not exist
//!    (`referential integrity violation`), deleted rows still referenced (the same), garbage
//!    collection of unreferenced rows of non-root tables (repeated along chains; cycles are
//!    kept, as the server keeps them), `maxRows` (`constraint violation`), removal of weak
//!    references to rows that are gone (`constraint violation` when that empties a column that
//!    may not be empty) and uniqueness of the schema's indexes (`constraint violation`).
//!
//! Error objects carry the server's `error` string and its `details` wording (the order of the
//! two rows named by an index violation may differ).
//!
//! ## Where it differs from ovsdb-server
//!
//! - Inserted rows get UUIDs from a deterministic counter kept in the replica (valid-looking
//!   version 4 UUIDs that skip any already in use), or from the caller's generator with
//!   [`Replica::transact_with`].
//! - The replica does not store `_version`: it reports one derived from the row's UUID and
//!   contents before the transaction.
//! - A `wait` whose rows do not compare as asked fails at once with `timed out`, whatever its
//!   timeout: nothing else can change the replica while it waits.
//! - `assert` always fails with `not owner`: a replica holds no locks.
//! - ovsdb-server 3.1 sometimes leaves a weak reference to a deleted row in place (when the
//!   referring row was itself changed earlier in the same transaction); the replica always
//!   removes it, as RFC 7047 says.
//! - A transaction for another database fails with [`TransactError::Mismatch`](crate::TransactError::Mismatch).
//!
//! ```
//! use ovsdb::replica::Replica;
//! use ovsdb::{Condition, DatabaseSchema, Datum, Insert, Mutate, Mutation, NamedUuid, Row, Transaction};
//!
//! let schema = DatabaseSchema::from_json_str(r#"{"name":"OVN_Northbound","version":"7.0.0",
//!   "tables":{"Logical_Switch":{"isRoot":true,"columns":{"name":{"type":"string"},
//!       "ports":{"type":{"key":{"type":"uuid","refTable":"Logical_Switch_Port"},
//!                        "min":0,"max":"unlimited"}}}},
//!     "Logical_Switch_Port":{"columns":{"name":{"type":"string"},
//!       "external_ids":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}}},
//!       "indexes":[["name"]]}}}"#).unwrap();
//! let mut replica = Replica::new(&schema);
//!
//! let mut txn = Transaction::new("OVN_Northbound");
//! let port = NamedUuid::new("p").unwrap();
//! // A forward reference: the switch names the port before the port is inserted.
//! txn.push(Insert::new("Logical_Switch", Row::new().with("name", "sw0").with("ports", port.clone())));
//! let p = txn.push(Insert::new("Logical_Switch_Port", Row::new().with("name", "p1")).uuid_name(port));
//! txn.push(Mutate::new("Logical_Switch_Port")
//!     .filter(Condition::eq("name", "p1"))
//!     .mutation(Mutation::insert("external_ids", Datum::map([("owner", "docs")]))));
//! let outcome = replica.transact(&txn).unwrap();
//!
//! let snap = replica.snapshot();
//! let ports = snap.table("Logical_Switch_Port").unwrap();
//! let row = ports.find_one(&["name"], &[Datum::from("p1")]).unwrap().unwrap();
//! assert_eq!(Some(row.uuid()), outcome.uuid(&p));
//! assert_eq!(row.get("external_ids"), Some(&Datum::map([("owner", "docs")])));
//!
//! // Deleting the switch garbage-collects the port (a non-root row nothing refers to).
//! let del = Transaction::new("OVN_Northbound")
//!     .with(ovsdb::Delete::new("Logical_Switch").filter(Condition::eq("name", "sw0")));
//! replica.transact(&del).unwrap();
//! assert!(replica.snapshot().table("Logical_Switch_Port").unwrap().is_empty());
//! ```
//!
//! # Memory
//!
//! Rows store only the columns that differ from their default (`[]`, `{}`, `""`, `0`,
//! `false`), sorted by column number, in one shared allocation per row (`Arc<[(ColumnId,
//! Datum)]>`); column names live once, in the [`Layout`]. Indexes keep key hashes and UUIDs,
//! not copies of the key values. No JSON is kept.
//!
//! ```
//! use ovsdb::monitor::{MonitorMethod, MonitorRequest, TableMonitor};
//! use ovsdb::replica::Replica;
//! use ovsdb::{DatabaseSchema, Datum};
//!
//! let schema = DatabaseSchema::from_json_str(r#"{"name":"OVN_Northbound","version":"7.0.0",
//!     "tables":{"Logical_Switch":{"columns":{"name":{"type":"string"},
//!       "external_ids":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}}},
//!       "indexes":[["name"]]}}}"#).unwrap();
//! let mut replica = Replica::new(&schema);
//! let (reader, _) = replica.subscribe();
//! let monitor = MonitorRequest::new("OVN_Northbound", MonitorMethod::MonitorCondSince)
//!     .with_table("Logical_Switch", TableMonitor::all());
//! let sw0 = "5a3c0f1e-4a1b-4c2d-8e3f-9a0b1c2d3e4f";
//! let reply = format!(r#"[false,"2f6c4a8e-1b9d-4f8a-9a59-6c3c8b1f0b3e",
//!     {{"Logical_Switch":{{"{sw0}":{{"initial":{{"name":"sw0"}}}}}}}}]"#);
//! replica.apply_reply(&monitor, &reply).unwrap();
//! assert!(replica.is_synced());
//!
//! let update = format!(r#"[null,"7d1f4e2a-3b5c-4d6e-8f70-a1b2c3d4e5f6",
//!     {{"Logical_Switch":{{"{sw0}":{{"modify":{{"external_ids":["map",[["k","v"]]]}}}}}}}}]"#);
//! replica.apply_notification("update3", &update).unwrap();
//!
//! let (changes, snap) = replica.take_changes(reader).unwrap();
//! let uuid = sw0.parse().unwrap();
//! assert_eq!(changes.table("Logical_Switch").unwrap().inserted, vec![uuid]);
//! let sw = snap.table("Logical_Switch").unwrap();
//! let row = sw.find_one(&["name"], &[Datum::from("sw0")]).unwrap().unwrap();
//! assert_eq!(row.get("external_ids"), Some(&Datum::map([("k", "v")])));
//! assert_eq!(snap.last_txn_id().unwrap().to_string(), "7d1f4e2a-3b5c-4d6e-8f70-a1b2c3d4e5f6");
//! ```

mod changes;
mod diff;
mod exec;
mod stage;
mod table;
mod view;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub use changes::{ChangeKind, Changes, ConsumerId, TableChanges};
pub use diff::apply_diff;
pub use view::{RowView, Snapshot, TableView};

use changes::Consumers;
use stage::{Overlay, Staged, stage_op};
use table::{Cells, State, TableData, stored};
use view::DbState;

use crate::monitor::{
    Layout, MonitorError, MonitorReply, MonitorRequest, RowOp, TableId, TableLayout, TableUpdates,
    UpdateNotification,
};
use crate::schema::DatabaseSchema;
use crate::value::Uuid;

/// Why an update could not be applied. The replica is unchanged when one is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaError {
    /// The reply or notification could not be decoded.
    #[error(transparent)]
    Decode(#[from] MonitorError),
    /// An `insert` or `initial` for a row the replica already holds.
    #[error("table {table}: row {row} inserted but already present")]
    RowExists {
        /// The table.
        table: String,
        /// The row.
        row: Uuid,
    },
    /// A `modify` or `delete` for a row the replica does not hold.
    #[error("table {table}: {op} of row {row}, which is not present")]
    NoSuchRow {
        /// The table.
        table: String,
        /// The row.
        row: Uuid,
        /// `modify` or `delete`.
        op: &'static str,
    },
    /// A diff whose shape does not fit the column (a set diff for a map column).
    #[error("table {table}, row {row}, column {column}: diff does not fit the column type")]
    BadDiff {
        /// The table.
        table: String,
        /// The row.
        row: Uuid,
        /// The column.
        column: String,
    },
    /// Contents that replace a table hold something other than initial rows.
    #[error("table {table}, row {row}: full contents may only hold initial or inserted rows")]
    NotInitial {
        /// The table.
        table: String,
        /// The row.
        row: Uuid,
    },
    /// The schema has no such table.
    #[error("unknown table {table}")]
    UnknownTable {
        /// The table.
        table: String,
    },
    /// The table has no such column.
    #[error("table {table} has no column {column}")]
    UnknownColumn {
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// An index part `column:key` whose column is not a map, or whose key does not fit the
    /// map's key type.
    #[error("table {table}: cannot index {spec:?}: {reason}")]
    BadIndexPart {
        /// The table.
        table: String,
        /// The part as given.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// A lookup through an index that does not exist.
    #[error("table {table} has no index on {columns:?}")]
    NoIndex {
        /// The table.
        table: String,
        /// The columns asked for.
        columns: Vec<String>,
    },
    /// An index lookup with the wrong number of key values.
    #[error("table {table}: index key has {got} values, the index {expected} columns")]
    KeyLength {
        /// The table.
        table: String,
        /// Columns of the index.
        expected: usize,
        /// Values given.
        got: usize,
    },
    /// The consumer was never subscribed or has unsubscribed.
    #[error("unknown consumer {}", id.0)]
    UnknownConsumer {
        /// The consumer.
        id: ConsumerId,
    },
}

/// What one call changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// The replica's sequence number afterwards.
    pub seq: u64,
    /// Rows added.
    pub inserted: usize,
    /// Rows whose contents changed.
    pub modified: usize,
    /// Rows removed.
    pub deleted: usize,
}

/// The in-memory replica. See the [module documentation](self) for how to drive and read it.
#[derive(Debug, Clone)]
pub struct Replica {
    layout: Arc<Layout>,
    state: Arc<DbState>,
    consumers: Consumers,
    /// Counter behind the UUIDs of rows inserted by [`Replica::transact`].
    uuid_counter: u64,
}

impl Replica {
    /// An empty replica of `schema`, with the schema's indexes.
    #[must_use]
    pub fn new(schema: &DatabaseSchema) -> Self {
        Self::with_layout(Arc::new(Layout::new(schema)))
    }

    /// An empty replica over an already compiled layout.
    #[must_use]
    pub fn with_layout(layout: Arc<Layout>) -> Self {
        let tables = layout
            .tables
            .iter()
            .map(|t| Arc::new(TableData::new(t)))
            .collect();
        Replica {
            layout,
            state: Arc::new(DbState {
                tables,
                seq: 0,
                synced: false,
                last_txn_id: None,
            }),
            consumers: Consumers::default(),
            uuid_counter: 0,
        }
    }

    /// The layout (the schema, compiled).
    #[must_use]
    pub fn layout(&self) -> &Arc<Layout> {
        &self.layout
    }

    /// The number of calls that changed something so far; it only grows.
    #[must_use]
    pub fn seq(&self) -> u64 {
        self.state.seq
    }

    /// Whether the initial contents have arrived since the replica was made or last marked
    /// unsynced.
    #[must_use]
    pub fn is_synced(&self) -> bool {
        self.state.synced
    }

    /// The last transaction id from `update3` or a `monitor_cond_since` reply: pass it to the
    /// next `monitor_cond_since` to resume.
    #[must_use]
    pub fn last_txn_id(&self) -> Option<Uuid> {
        self.state.last_txn_id
    }

    /// Marks the replica as no longer synced (the connection dropped); contents are kept until
    /// the next reply replaces or updates them.
    pub fn mark_unsynced(&mut self) {
        if self.state.synced {
            Arc::make_mut(&mut self.state).synced = false;
        }
    }

    /// Forgets the last transaction id, so that the next `monitor_cond_since` asks for
    /// everything (for example after the server's database was replaced).
    pub fn forget_txn_id(&mut self) {
        Arc::make_mut(&mut self.state).last_txn_id = None;
    }

    /// A consistent view of everything, O(1).
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            layout: self.layout.clone(),
            state: self.state.clone(),
        }
    }

    /// Registers a consumer of changes, and returns the snapshot it starts from.
    pub fn subscribe(&mut self) -> (ConsumerId, Snapshot) {
        let id = self
            .consumers
            .subscribe(self.layout.tables.len(), self.state.seq);
        (id, self.snapshot())
    }

    /// Removes a consumer and its pending changes; `false` if it was not subscribed.
    pub fn unsubscribe(&mut self, id: ConsumerId) -> bool {
        self.consumers.unsubscribe(id)
    }

    /// The rows changed since `id`'s previous call (or subscription), and a snapshot that
    /// shows them.
    pub fn take_changes(&mut self, id: ConsumerId) -> Result<(Changes, Snapshot), ReplicaError> {
        let set = self
            .consumers
            .take(id, &self.layout, self.state.seq)
            .ok_or(ReplicaError::UnknownConsumer { id })?;
        Ok((set, self.snapshot()))
    }

    /// How many rows `id` has pending (`None` for an unknown consumer).
    #[must_use]
    pub fn pending_changes(&self, id: ConsumerId) -> Option<usize> {
        self.consumers.pending(id)
    }

    /// Adds an index on `columns` of `table` (a no-op if it exists), built from the rows now.
    ///
    /// A column may be `column:key` for one key of a map column (`external_ids:owner`): that
    /// part of the key is the map's value for `key`, or the empty set when the row's map lacks
    /// it. Plain columns and map keys mix freely.
    pub fn add_index(&mut self, table: &str, columns: &[&str]) -> Result<(), ReplicaError> {
        let (tid, layout) = self.table(table)?;
        let parts = table::parse_parts(layout, columns)?;
        let layout = self.layout.tables[tid.index()].clone();
        let state = Arc::make_mut(&mut self.state);
        Arc::make_mut(&mut state.tables[tid.index()]).add_index(&layout, parts);
        Ok(())
    }

    fn table(&self, name: &str) -> Result<(TableId, &TableLayout), ReplicaError> {
        self.layout
            .table(name)
            .ok_or_else(|| ReplicaError::UnknownTable {
                table: name.to_owned(),
            })
    }

    /// Decodes and applies the `result` of `monitor`'s request (see the module docs: a full
    /// contents reply replaces the monitored tables, except those whose
    /// [`MonitorSelect`](crate::monitor::MonitorSelect) has `initial: false`; a
    /// `monitor_cond_since` reply with `found: true` applies on top). Marks the replica synced.
    pub fn apply_reply(
        &mut self,
        monitor: &MonitorRequest,
        result: &str,
    ) -> Result<ApplyStats, ReplicaError> {
        // Tables whose monitor skips the initial contents have none in the reply: keep them.
        let tables = monitor
            .tables
            .iter()
            .filter(|(_, t)| t.select.initial)
            .map(|(name, _)| self.table(name).map(|(id, _)| id))
            .collect::<Result<Vec<_>, _>>()?;
        let reply = MonitorReply::decode(&self.layout, monitor.method, result)?;
        let (applied, txn) = match reply {
            MonitorReply::Initial(updates) => (self.replace(&tables, updates)?, None),
            MonitorReply::Since {
                found: true,
                last_txn_id,
                updates,
            } => (self.apply(updates)?, Some(last_txn_id)),
            MonitorReply::Since {
                found: false,
                last_txn_id,
                updates,
            } => (self.replace(&tables, updates)?, Some(last_txn_id)),
        };
        let state = Arc::make_mut(&mut self.state);
        state.synced = true;
        if txn.is_some() {
            state.last_txn_id = txn;
        }
        Ok(applied)
    }

    /// Decodes and applies an `update`, `update2` or `update3` notification's params (the
    /// monitor id is not checked: filter notifications of other monitors before).
    pub fn apply_notification(
        &mut self,
        method: &str,
        params: &str,
    ) -> Result<ApplyStats, ReplicaError> {
        let n = UpdateNotification::decode(&self.layout, method, params)?;
        self.apply_notification_decoded(n)
    }

    /// Applies an already decoded notification, keeping its transaction id.
    pub fn apply_notification_decoded(
        &mut self,
        n: UpdateNotification,
    ) -> Result<ApplyStats, ReplicaError> {
        let applied = self.apply(n.updates)?;
        if let Some(id) = n.last_txn_id {
            Arc::make_mut(&mut self.state).last_txn_id = Some(id);
        }
        Ok(applied)
    }

    /// Applies decoded updates on top of the current contents, atomically.
    pub fn apply(&mut self, updates: TableUpdates) -> Result<ApplyStats, ReplicaError> {
        let mut staged: BTreeMap<TableId, Overlay> = BTreeMap::new();
        for tu in updates.tables {
            let layout = self.layout_of(tu.table)?;
            let data = &self.state.tables[tu.table.index()];
            let overlay = staged.entry(tu.table).or_default();
            overlay.rows.reserve(tu.rows.len());
            for ru in tu.rows {
                let slot = overlay.find(ru.uuid);
                let current = match slot {
                    Some(i) => overlay.rows[i].1.new.clone(),
                    None => data.rows.get(&ru.uuid).cloned(),
                };
                let new = stage_op(layout, ru.uuid, current, ru.op)?;
                match slot {
                    Some(i) => overlay.rows[i].1.new = new,
                    None => {
                        let old = data.rows.get(&ru.uuid).cloned();
                        overlay.push(ru.uuid, Staged { old, new });
                    }
                }
            }
        }
        Ok(self.commit(staged))
    }

    /// Replaces the contents of `tables` with `contents` (which may hold only initial or
    /// inserted rows, of those tables), atomically, and records the difference as changes.
    pub fn replace(
        &mut self,
        tables: &[TableId],
        contents: TableUpdates,
    ) -> Result<ApplyStats, ReplicaError> {
        let mut fresh: BTreeMap<TableId, HashMap<Uuid, Cells, State>> = BTreeMap::new();
        for &t in tables {
            self.layout_of(t)?;
            fresh.entry(t).or_default();
        }
        for tu in contents.tables {
            let layout = self.layout_of(tu.table)?;
            let map = fresh.entry(tu.table).or_default();
            map.reserve(tu.rows.len());
            for ru in tu.rows {
                let (RowOp::Initial(cells) | RowOp::Insert(cells)) = ru.op else {
                    return Err(ReplicaError::NotInitial {
                        table: layout.name.clone(),
                        row: ru.uuid,
                    });
                };
                if map.insert(ru.uuid, stored(layout, cells)).is_some() {
                    return Err(ReplicaError::RowExists {
                        table: layout.name.clone(),
                        row: ru.uuid,
                    });
                }
            }
        }
        let mut applied = ApplyStats::default();
        let state = Arc::make_mut(&mut self.state);
        for (t, rows) in fresh {
            let layout = &self.layout.tables[t.index()];
            let old = std::mem::take(&mut Arc::make_mut(&mut state.tables[t.index()]).rows);
            if !old.is_empty() || !self.consumers.is_empty() {
                for (uuid, cells) in &old {
                    match rows.get(uuid) {
                        None => {
                            applied.deleted += 1;
                            self.consumers.record(t, *uuid, ChangeKind::Deleted);
                        }
                        Some(n) if !Arc::ptr_eq(n, cells) && n != cells => {
                            applied.modified += 1;
                            self.consumers.record(t, *uuid, ChangeKind::Modified);
                        }
                        Some(_) => {}
                    }
                }
            }
            for uuid in rows.keys() {
                if !old.contains_key(uuid) {
                    applied.inserted += 1;
                    self.consumers.record(t, *uuid, ChangeKind::Inserted);
                }
            }
            drop(old);
            let data = Arc::make_mut(&mut state.tables[t.index()]);
            data.rows = rows;
            data.rebuild_indexes(layout);
        }
        if applied != ApplyStats::default() {
            state.seq += 1;
        }
        applied.seq = state.seq;
        Ok(applied)
    }

    fn layout_of(&self, t: TableId) -> Result<&TableLayout, ReplicaError> {
        self.layout
            .table_by_id(t)
            .ok_or_else(|| ReplicaError::UnknownTable {
                table: format!("#{}", t.0),
            })
    }

    fn commit(&mut self, staged: BTreeMap<TableId, Overlay>) -> ApplyStats {
        let mut applied = ApplyStats::default();
        let changed = staged
            .values()
            .flat_map(|o| o.rows.iter().map(|(_, s)| s))
            .any(|s| match (&s.old, &s.new) {
                (None, None) => false,
                (Some(o), Some(n)) => !Arc::ptr_eq(o, n) && o != n,
                _ => true,
            });
        if !changed {
            applied.seq = self.state.seq;
            return applied;
        }
        let state = Arc::make_mut(&mut self.state);
        for (t, overlay) in staged {
            let layout = &self.layout.tables[t.index()];
            let data = Arc::make_mut(&mut state.tables[t.index()]);
            for (uuid, s) in overlay.rows {
                let kind = match (&s.old, &s.new) {
                    (None, None) => continue,
                    (Some(o), Some(n)) if Arc::ptr_eq(o, n) || o == n => continue,
                    (None, Some(_)) => {
                        applied.inserted += 1;
                        ChangeKind::Inserted
                    }
                    (Some(_), Some(_)) => {
                        applied.modified += 1;
                        ChangeKind::Modified
                    }
                    (Some(_), None) => {
                        applied.deleted += 1;
                        ChangeKind::Deleted
                    }
                };
                data.set(layout, uuid, s.new);
                self.consumers.record(t, uuid, kind);
            }
        }
        state.seq += 1;
        applied.seq = state.seq;
        applied
    }
}

#[cfg(test)]
mod tests;
