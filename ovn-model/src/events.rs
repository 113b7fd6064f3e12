//! Typed change events, as libovsdb's `OnAdd`/`OnUpdate(old, new)`/`OnDelete`: what happened
//! to the rows of a model table between two snapshots of a replica, with the rows themselves,
//! including a deleted row's last contents.
//!
//! A replica reports changes as UUID lists per table ([`Changes`], from
//! [`Replica::take_changes`](ovsdb::replica::Replica::take_changes) or a replica client's
//! change stream) with a snapshot at the new point; keep the snapshot of the previous pull and
//! hand both to a [`Batch`], which decodes the rows of the tables you ask for, and only those.
//! [`diff`] compares two snapshots whole when no change set is at hand.
//!
//! ```
//! use ovn_model::events::{Batch, Event};
//! use ovn_model::nb::LogicalSwitch;
//! use ovn_model::plan::Plan;
//! use ovsdb::replica::Replica;
//!
//! let mut nb = Replica::new(ovn_model::nb::schema());
//! let (me, start) = nb.subscribe();
//! let mut plan = Plan::nb();
//! plan.insert(&LogicalSwitch::new("ls1"))?;
//! plan.apply(&mut nb)?;
//! let (changes, now) = nb.take_changes(me)?;
//! let batch = Batch::new(start, changes, now.clone());
//! let events = batch.of::<LogicalSwitch>();
//! let [Event::Inserted(sw)] = &events[..] else { panic!("{events:?}") };
//! assert_eq!(sw.name, "ls1");
//!
//! let mut plan = Plan::nb();
//! plan.delete::<LogicalSwitch>(sw.uuid)?;
//! plan.apply(&mut nb)?;
//! let (changes, later) = nb.take_changes(me)?;
//! let batch = Batch::new(now, changes, later);
//! // A deleted row comes with what it held.
//! assert!(matches!(&batch.of::<LogicalSwitch>()[..], [Event::Deleted(s)] if s.name == "ls1"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use ovsdb::replica::{Changes, Snapshot, TableChanges};
use ovsdb::{Table, Uuid};

use crate::snapshot::Typed;

/// What happened to one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<T> {
    /// The row is new.
    Inserted(T),
    /// The row changed: as it was, and as it is.
    Modified {
        /// The row before.
        old: T,
        /// The row now.
        new: T,
    },
    /// The row is gone; as it was last.
    Deleted(T),
}

impl<T: Table> Event<T> {
    /// The row's UUID.
    #[must_use]
    pub fn uuid(&self) -> Uuid {
        match self {
            Event::Inserted(r) | Event::Deleted(r) | Event::Modified { new: r, .. } => r.uuid(),
        }
    }

    /// The row as it is now (`None` for a deleted row).
    #[must_use]
    pub fn current(&self) -> Option<&T> {
        match self {
            Event::Inserted(r) | Event::Modified { new: r, .. } => Some(r),
            Event::Deleted(_) => None,
        }
    }
}

/// The changes of one pull, with the snapshots before and after: typed events per table on
/// demand.
#[derive(Debug, Clone)]
pub struct Batch {
    old: Snapshot,
    changes: Changes,
    new: Snapshot,
}

impl Batch {
    /// The changes between `old` (the snapshot of the previous pull, or the one a
    /// subscription started from) and `new` (the snapshot handed out with `changes`).
    #[must_use]
    pub fn new(old: Snapshot, changes: Changes, new: Snapshot) -> Self {
        Batch { old, changes, new }
    }

    /// The untyped changes.
    #[must_use]
    pub fn changes(&self) -> &Changes {
        &self.changes
    }

    /// The snapshot after the changes (keep it for the next batch).
    #[must_use]
    pub fn snapshot(&self) -> &Snapshot {
        &self.new
    }

    /// The events of `T`'s table, inserted rows first, then modified, then deleted, each in
    /// UUID order.
    #[must_use]
    pub fn of<T: Table>(&self) -> Vec<Event<T>> {
        match self.changes.table(T::TABLE) {
            Some(t) => events(&self.old, &self.new, t),
            None => Vec::new(),
        }
    }
}

/// The events of `T`'s table for the changed rows `changes` between `old` and `new`. A row a
/// snapshot does not hold where it should (the snapshots are not the pull's) is skipped, or
/// reported as inserted when only its old contents are missing.
#[must_use]
pub fn events<T: Table>(old: &Snapshot, new: &Snapshot, changes: &TableChanges) -> Vec<Event<T>> {
    let (before, after) = (Typed::new(old), Typed::new(new));
    let inserted = changes
        .inserted
        .iter()
        .filter_map(|u| after.get::<T>(*u).map(Event::Inserted));
    let modified =
        changes
            .modified
            .iter()
            .filter_map(|u| match (before.get::<T>(*u), after.get::<T>(*u)) {
                (Some(old), Some(new)) => Some(Event::Modified { old, new }),
                (None, Some(new)) => Some(Event::Inserted(new)),
                (Some(old), None) => Some(Event::Deleted(old)),
                (None, None) => None,
            });
    let deleted = changes
        .deleted
        .iter()
        .filter_map(|u| before.get::<T>(*u).map(Event::Deleted));
    inserted.chain(modified).chain(deleted).collect()
}

/// The events of `T`'s table found by comparing two snapshots row by row (every row of the
/// table is looked at; prefer [`Batch`] when a change set is at hand).
#[must_use]
pub fn diff<T: Table>(old: &Snapshot, new: &Snapshot) -> Vec<Event<T>> {
    let rows = |s: &Snapshot| -> std::collections::BTreeMap<Uuid, ovsdb::Row> {
        s.table(T::TABLE).map(|t| t.to_rows()).unwrap_or_default()
    };
    let (before, after) = (rows(old), rows(new));
    let mut changes = TableChanges::default();
    for (u, row) in &after {
        match before.get(u) {
            None => changes.inserted.push(*u),
            Some(was) if was != row => changes.modified.push(*u),
            Some(_) => {}
        }
    }
    changes.deleted = before
        .keys()
        .filter(|u| !after.contains_key(u))
        .copied()
        .collect();
    events(old, new, &changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nb::{LogicalSwitch, LogicalSwitchPort};
    use crate::plan::Plan;
    use ovsdb::replica::Replica;

    #[test]
    fn inserts_updates_and_deletes_come_with_their_rows_and_match_a_whole_diff() {
        let mut nb = Replica::new(crate::nb::schema());
        let (me, start) = nb.subscribe();
        let mut plan = Plan::nb();
        let a = plan.insert(&LogicalSwitch::new("a")).unwrap();
        plan.insert_child(&a, &LogicalSwitchPort::new("p1"))
            .unwrap();
        plan.insert(&LogicalSwitch::new("b")).unwrap();
        plan.apply(&mut nb).unwrap();
        let (changes, mid) = nb.take_changes(me).unwrap();
        let first = Batch::new(start.clone(), changes, mid.clone());
        let switches = first.of::<LogicalSwitch>();
        assert_eq!(switches.len(), 2);
        assert!(switches.iter().all(|e| matches!(e, Event::Inserted(_))));
        assert_eq!(first.of::<LogicalSwitchPort>().len(), 1);
        assert_eq!(diff::<LogicalSwitch>(&start, &mid), switches);

        let b = Typed::new(&mid).by_name::<LogicalSwitch>("b").unwrap();
        let mut plan = Plan::nb();
        plan.update::<LogicalSwitch>("a", &LogicalSwitch::new("a2"), &["name"])
            .unwrap();
        plan.delete::<LogicalSwitch>(b.uuid).unwrap();
        plan.apply(&mut nb).unwrap();
        let (changes, end) = nb.take_changes(me).unwrap();
        let second = Batch::new(mid.clone(), changes, end.clone());
        let events = second.of::<LogicalSwitch>();
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(matches!(
            &events[0],
            Event::Modified { old, new } if old.name == "a" && new.name == "a2"
        ));
        assert!(matches!(&events[1], Event::Deleted(s) if s.name == "b" && s.uuid == b.uuid));
        assert_eq!(events[1].current(), None);
        assert_eq!(diff::<LogicalSwitch>(&mid, &end), events);
        assert!(second.of::<LogicalSwitchPort>().is_empty());
    }
}
