//! Change tracking: per consumer, the coalesced set of rows changed since its last pull.

use std::collections::{BTreeMap, HashMap};

use super::table::State;
use crate::monitor::{Layout, TableId};
use crate::value::Uuid;

/// Identifies a consumer of changes (see [`Replica::subscribe`](super::Replica::subscribe)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConsumerId(pub u64);

/// How a row changed since a consumer last looked, with every event in between folded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// The row is new to the consumer.
    Inserted,
    /// The consumer knew the row, and it changed (or was deleted and came back).
    Modified,
    /// The consumer knew the row, and it is gone.
    Deleted,
}

impl ChangeKind {
    /// Folds `next` into `self` (an earlier change); `None` when they cancel out (a row
    /// inserted and deleted between two pulls).
    #[must_use]
    pub fn then(self, next: ChangeKind) -> Option<ChangeKind> {
        use ChangeKind::{Deleted, Inserted, Modified};
        match (self, next) {
            (Inserted, Deleted) => None,
            (Inserted, _) => Some(Inserted),
            (Deleted, Inserted | Modified) => Some(Modified),
            (Deleted, Deleted) => Some(Deleted),
            (Modified, Deleted) => Some(Deleted),
            (Modified, _) => Some(Modified),
        }
    }
}

/// The rows of one table that changed, each UUID in exactly one list, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableChanges {
    /// Rows new to the consumer.
    pub inserted: Vec<Uuid>,
    /// Rows the consumer knew that changed.
    pub modified: Vec<Uuid>,
    /// Rows the consumer knew that are gone.
    pub deleted: Vec<Uuid>,
}

impl TableChanges {
    /// Number of changed rows.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inserted.len() + self.modified.len() + self.deleted.len()
    }

    /// Whether nothing changed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What changed for one consumer between two pulls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// The replica's sequence number at the previous pull (or at subscription).
    pub since: u64,
    /// The replica's sequence number now; the snapshot handed out with this set is at `seq`.
    pub seq: u64,
    /// Changed rows per table name; tables without changes are absent.
    pub tables: BTreeMap<String, TableChanges>,
}

impl Changes {
    /// Whether no row changed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tables.values().all(TableChanges::is_empty)
    }

    /// The changes of `table`, if any.
    #[must_use]
    pub fn table(&self, table: &str) -> Option<&TableChanges> {
        self.tables.get(table)
    }

    /// Number of changed rows over all tables.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tables.values().map(TableChanges::len).sum()
    }
}

#[derive(Debug, Clone)]
struct Consumer {
    id: ConsumerId,
    since: u64,
    /// Per table id; empty maps allocate nothing.
    pending: Vec<HashMap<Uuid, ChangeKind, State>>,
}

/// Every consumer's pending changes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Consumers {
    next: u64,
    list: Vec<Consumer>,
}

impl Consumers {
    pub(crate) fn subscribe(&mut self, tables: usize, seq: u64) -> ConsumerId {
        let id = ConsumerId(self.next);
        self.next += 1;
        self.list.push(Consumer {
            id,
            since: seq,
            pending: (0..tables).map(|_| HashMap::default()).collect(),
        });
        id
    }

    pub(crate) fn unsubscribe(&mut self, id: ConsumerId) -> bool {
        let before = self.list.len();
        self.list.retain(|c| c.id != id);
        self.list.len() != before
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub(crate) fn record(&mut self, table: TableId, uuid: Uuid, kind: ChangeKind) {
        for c in &mut self.list {
            let Some(map) = c.pending.get_mut(table.index()) else {
                continue;
            };
            match map.get(&uuid).copied() {
                None => {
                    map.insert(uuid, kind);
                }
                Some(prev) => match prev.then(kind) {
                    Some(k) => {
                        map.insert(uuid, k);
                    }
                    None => {
                        map.remove(&uuid);
                    }
                },
            }
        }
    }

    pub(crate) fn pending(&self, id: ConsumerId) -> Option<usize> {
        self.list
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.pending.iter().map(HashMap::len).sum())
    }

    pub(crate) fn take(&mut self, id: ConsumerId, layout: &Layout, seq: u64) -> Option<Changes> {
        let c = self.list.iter_mut().find(|c| c.id == id)?;
        let mut set = Changes {
            since: c.since,
            seq,
            tables: BTreeMap::new(),
        };
        c.since = seq;
        for (i, map) in c.pending.iter_mut().enumerate() {
            if map.is_empty() {
                continue;
            }
            let mut t = TableChanges::default();
            for (uuid, kind) in map.drain() {
                match kind {
                    ChangeKind::Inserted => t.inserted.push(uuid),
                    ChangeKind::Modified => t.modified.push(uuid),
                    ChangeKind::Deleted => t.deleted.push(uuid),
                }
            }
            // Give back the memory of a burst (an initial dump) once it is consumed.
            if map.capacity() > 1024 {
                map.shrink_to(0);
            }
            t.inserted.sort_unstable();
            t.modified.sort_unstable();
            t.deleted.sort_unstable();
            if let Some(layout) = layout.tables.get(i) {
                set.tables.insert(layout.name.clone(), t);
            }
        }
        Some(set)
    }
}
