//! The commit: ovsdb-server's checks after the operations, in its order (strong references,
//! garbage collection, `maxRows`, weak references, index uniqueness), then the changes as
//! [`TableUpdates`] for the replica's update path.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::text::{self, constraint};
use super::{Exec, OvsdbError, Staged};
use crate::monitor::{ColumnId, RowOp, RowUpdate, TableId, TableLayout, TableUpdate, TableUpdates};
use crate::replica::table::{Cells, value as cell_value};
use crate::schema::{BaseType, Max, RefType};
use crate::value::{Atom, Datum, Uuid};

/// A reference to a row: its table and UUID.
type RowRef = (TableId, Uuid);

/// One side (keys or values) of a column that refers to rows.
#[derive(Debug, Clone, Copy)]
struct RefSide {
    column: ColumnId,
    /// Keys (`false`) or values (`true`) of a map.
    value: bool,
    target: TableId,
    strong: bool,
}

impl Exec<'_> {
    /// Runs the commit checks and returns what to apply (nothing, for a transaction that
    /// changed nothing).
    pub(super) fn commit(mut self) -> Result<TableUpdates, OvsdbError> {
        for staged in &mut self.staged {
            staged.retain(|_, s| match (&s.old, &s.new) {
                (Some(o), Some(n)) => o != n,
                _ => true,
            });
        }
        if self.staged.iter().all(HashMap::is_empty) {
            return Ok(TableUpdates::default());
        }
        let sides: Vec<Vec<RefSide>> = self
            .layout
            .tables
            .iter()
            .map(|t| ref_sides(self.layout, t))
            .collect();
        let released = self.check_strong_refs(&sides)?;
        let mut counts = self.count_refs(&sides, &released);
        self.check_deleted(&counts)?;
        self.collect_garbage(&sides, &released, &mut counts);
        self.check_max_rows()?;
        self.remove_weak_refs(&sides)?;
        self.check_indexes()?;
        Ok(self.updates())
    }

    /// The changed rows, in table and UUID order.
    fn changed(&self) -> Vec<(TableId, Uuid)> {
        let mut out = Vec::new();
        for (i, staged) in self.staged.iter().enumerate() {
            let t = TableId(u16::try_from(i).unwrap_or(u16::MAX));
            let mut rows: Vec<Uuid> = staged.keys().copied().collect();
            rows.sort_unstable();
            out.extend(rows.into_iter().map(|u| (t, u)));
        }
        out
    }

    fn staged_row(&self, t: TableId, u: Uuid) -> Option<&Staged> {
        self.staged[t.index()].get(&u)
    }

    /// Checks that every strong reference a changed row gains points to a row that exists (or
    /// existed: referring to a row deleted in this transaction is caught next). Returns the
    /// targets of the strong references changed rows lost.
    fn check_strong_refs(&self, sides: &[Vec<RefSide>]) -> Result<BTreeSet<RowRef>, OvsdbError> {
        let mut released = BTreeSet::new();
        for (t, u) in self.changed() {
            let Some(s) = self.staged_row(t, u) else {
                continue;
            };
            let layout = self.table_layout(t);
            for side in sides[t.index()].iter().filter(|s| s.strong) {
                let old = s.old.as_ref().map(|c| side_atoms(layout, c, side));
                let new = s.new.as_ref().map(|c| side_atoms(layout, c, side));
                let (old, new) = (old.unwrap_or_default(), new.unwrap_or_default());
                for x in new.difference(&old) {
                    if *x == u
                        || self.get(side.target, *x).is_some()
                        || self.touched(side.target, *x)
                    {
                        continue;
                    }
                    return Err(text::error(
                        "referential integrity violation",
                        format!(
                            "Table {} column {} row {u} references nonexistent row {x} in table {}.",
                            layout.name,
                            layout.columns[side.column.index()].name,
                            self.table_layout(side.target).name
                        ),
                    ));
                }
                released.extend(old.difference(&new).map(|x| (side.target, *x)));
            }
        }
        Ok(released)
    }

    /// Strong references to the rows of every table whose rows the commit may delete or
    /// check (changed tables, tables of released rows, and the non-root tables those refer to),
    /// counted over the rows as they are now. Self-references do not count.
    fn count_refs(
        &self,
        sides: &[Vec<RefSide>],
        released: &BTreeSet<RowRef>,
    ) -> HashMap<RowRef, usize> {
        let mut interest: HashSet<TableId> = released.iter().map(|(t, _)| *t).collect();
        for (t, _) in self.changed() {
            interest.insert(t);
        }
        loop {
            let more: Vec<TableId> = interest
                .iter()
                .flat_map(|t| sides[t.index()].iter())
                .filter(|s| s.strong && !self.table_layout(s.target).is_root)
                .map(|s| s.target)
                .filter(|t| !interest.contains(t))
                .collect();
            if more.is_empty() {
                break;
            }
            interest.extend(more);
        }
        let mut counts = HashMap::new();
        for (i, table_sides) in sides.iter().enumerate() {
            let t = TableId(u16::try_from(i).unwrap_or(u16::MAX));
            let wanted: Vec<&RefSide> = table_sides
                .iter()
                .filter(|s| s.strong && interest.contains(&s.target))
                .collect();
            if wanted.is_empty() {
                continue;
            }
            let layout = self.table_layout(t);
            for (u, cells) in self.live(t) {
                for side in &wanted {
                    for x in side_atoms(layout, cells, side) {
                        if x != u {
                            *counts.entry((side.target, x)).or_insert(0) += 1;
                        }
                    }
                }
            }
        }
        counts
    }

    /// Fails when a row deleted by the operations is still referenced.
    fn check_deleted(&self, counts: &HashMap<RowRef, usize>) -> Result<(), OvsdbError> {
        for (t, u) in self.changed() {
            let deleted = self.staged_row(t, u).is_some_and(|s| s.new.is_none());
            let n = counts.get(&(t, u)).copied().unwrap_or(0);
            if deleted && n > 0 {
                return Err(text::error(
                    "referential integrity violation",
                    format!(
                        "cannot delete {} row {u} because of {n} remaining reference(s)",
                        self.table_layout(t).name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Deletes the rows of non-root tables that the transaction touched (changed, or released
    /// a reference to) and that no strong reference keeps, then the rows only they kept, and so
    /// on.
    fn collect_garbage(
        &mut self,
        sides: &[Vec<RefSide>],
        released: &BTreeSet<RowRef>,
        counts: &mut HashMap<RowRef, usize>,
    ) {
        let mut candidates: Vec<RowRef> = self.changed();
        candidates.extend(released.iter().copied());
        let mut work: Vec<RowRef> = candidates
            .into_iter()
            .filter(|r| counts.get(r).copied().unwrap_or(0) == 0)
            .collect();
        while let Some((t, u)) = work.pop() {
            if self.table_layout(t).is_root {
                continue;
            }
            let Some(cells) = self.get(t, u).cloned() else {
                continue;
            };
            self.set_row(t, u, None);
            let layout = self.table_layout(t);
            for side in sides[t.index()].iter().filter(|s| s.strong) {
                for x in side_atoms(layout, &cells, side) {
                    if x == u {
                        continue;
                    }
                    if let Some(n) = counts.get_mut(&(side.target, x)) {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            work.push((side.target, x));
                        }
                    }
                }
            }
        }
    }

    fn check_max_rows(&self) -> Result<(), OvsdbError> {
        for (i, staged) in self.staged.iter().enumerate() {
            let t = TableId(u16::try_from(i).unwrap_or(u16::MAX));
            let layout = self.table_layout(t);
            let (Some(max), false) = (layout.max_rows, staged.is_empty()) else {
                continue;
            };
            let n = self.row_count(t);
            if n as u64 > max {
                return Err(constraint(format!(
                    "transaction causes \"{}\" table to contain {n} rows, greater than the \
                     schema-defined limit of {max} row(s)",
                    layout.name
                )));
            }
        }
        Ok(())
    }

    /// Removes weak references to rows that this transaction deleted, and weak references the
    /// transaction added to rows that do not exist; fails when that leaves a column with fewer
    /// elements than its `min`.
    fn remove_weak_refs(&mut self, sides: &[Vec<RefSide>]) -> Result<(), OvsdbError> {
        let gone: HashSet<RowRef> = self
            .changed()
            .into_iter()
            .filter(|(t, u)| {
                self.staged_row(*t, *u)
                    .is_some_and(|s| s.old.is_some() && s.new.is_none())
            })
            .collect();
        let gone_tables: HashSet<TableId> = gone.iter().map(|(t, _)| *t).collect();
        let mut rows: BTreeSet<RowRef> = BTreeSet::new();
        for (i, table_sides) in sides.iter().enumerate() {
            let t = TableId(u16::try_from(i).unwrap_or(u16::MAX));
            let weak: Vec<&RefSide> = table_sides.iter().filter(|s| !s.strong).collect();
            if weak.is_empty() {
                continue;
            }
            rows.extend(
                self.staged[i]
                    .iter()
                    .filter(|(_, s)| s.new.is_some())
                    .map(|(u, _)| (t, *u)),
            );
            if weak.iter().any(|s| gone_tables.contains(&s.target)) {
                let layout = self.table_layout(t);
                for (u, cells) in self.live(t) {
                    let refers = weak.iter().any(|s| {
                        side_atoms(layout, cells, s)
                            .iter()
                            .any(|x| gone.contains(&(s.target, *x)))
                    });
                    if refers {
                        rows.insert((t, u));
                    }
                }
            }
        }
        for (t, u) in rows {
            self.clean_weak_row(t, u, &sides[t.index()], &gone)?;
        }
        Ok(())
    }

    fn clean_weak_row(
        &mut self,
        t: TableId,
        u: Uuid,
        sides: &[RefSide],
        gone: &HashSet<RowRef>,
    ) -> Result<(), OvsdbError> {
        let layout = self.table_layout(t);
        let Some(cells) = self.get(t, u).cloned() else {
            return Ok(());
        };
        let old = self
            .staged_row(t, u)
            .map_or(Some(&cells), |s| s.old.as_ref())
            .cloned();
        let mut merged: Vec<(ColumnId, Datum)> = cells.to_vec();
        let mut changed = false;
        let mut columns: Vec<ColumnId> = sides
            .iter()
            .filter(|s| !s.strong)
            .map(|s| s.column)
            .collect();
        columns.dedup();
        for c in columns {
            let col = &layout.columns[c.index()];
            let before = cell_value(layout, &cells, c);
            let previous = old.as_ref().map(|o| cell_value(layout, o, c));
            let col_sides: Vec<&RefSide> = sides
                .iter()
                .filter(|s| !s.strong && s.column == c)
                .collect();
            let dead = |side: &RefSide, x: &Atom| {
                let Some(x) = x.as_uuid() else { return false };
                if gone.contains(&(side.target, x)) {
                    return true;
                }
                let added = previous.is_none_or(|p| !contains_atom(p, side.value, &x));
                added && self.get(side.target, x).is_none()
            };
            let (after, zero) = filter_datum(before, |k, v| {
                col_sides
                    .iter()
                    .any(|s| dead(s, if s.value { v.unwrap_or(k) } else { k }))
            });
            let removed = before.len() - after.len();
            if removed == 0 {
                continue;
            }
            if (after.len() as u64) < col.type_.min {
                return Err(weak_min_error(
                    layout,
                    &col.name,
                    u,
                    removed,
                    zero,
                    old.is_none(),
                ));
            }
            changed = true;
            merged.retain(|(m, _)| *m != c);
            merged.push((c, after));
        }
        if changed {
            let new = crate::replica::table::canonical(layout, merged);
            self.set_row(t, u, Some(new));
        }
        Ok(())
    }

    /// Fails when two rows hold the same values in the columns of one of the schema's indexes
    /// and at least one of them changed.
    fn check_indexes(&self) -> Result<(), OvsdbError> {
        for (i, staged) in self.staged.iter().enumerate() {
            let t = TableId(u16::try_from(i).unwrap_or(u16::MAX));
            let layout = self.table_layout(t);
            let data = &self.state.tables[i];
            let mut rows: Vec<(&Uuid, &Cells)> = staged
                .iter()
                .filter_map(|(u, s)| s.new.as_ref().map(|c| (u, c)))
                .collect();
            rows.sort_unstable_by_key(|(u, _)| **u);
            for (n, columns) in layout.indexes.iter().enumerate() {
                let mut seen: HashMap<Vec<&Datum>, Uuid> = HashMap::new();
                for (u, cells) in &rows {
                    let key: Vec<&Datum> = columns
                        .iter()
                        .map(|c| cell_value(layout, cells, *c))
                        .collect();
                    if let Some(other) = seen.get(&key) {
                        return Err(self.duplicate(t, columns, *other, **u));
                    }
                    let base = data
                        .indexes
                        .get(n)
                        .map_or(&[][..], |ix| ix.candidates(&key));
                    for other in base {
                        if self.touched(t, *other) {
                            continue;
                        }
                        let same = self.get(t, *other).is_some_and(|o| {
                            columns
                                .iter()
                                .zip(&key)
                                .all(|(c, k)| cell_value(layout, o, *c) == *k)
                        });
                        if same {
                            return Err(self.duplicate(t, columns, *other, **u));
                        }
                    }
                    seen.insert(key, **u);
                }
            }
        }
        Ok(())
    }

    fn duplicate(&self, t: TableId, columns: &[ColumnId], a: Uuid, b: Uuid) -> OvsdbError {
        let layout = self.table_layout(t);
        // The server orders the two rows by their contents; here the greater UUID comes first.
        let (first, second) = if a > b { (a, b) } else { (b, a) };
        let values = |cells: &Cells| -> String {
            let items: Vec<String> = columns
                .iter()
                .map(|c| {
                    let many = !matches!(layout.columns[c.index()].type_.max, Max::Limited(0 | 1));
                    text::datum_string(cell_value(layout, cells, *c), many)
                })
                .collect();
            text::english_list(&items)
        };
        let names: Vec<String> = columns
            .iter()
            .map(|c| format!("\"{}\"", layout.columns[c.index()].name))
            .collect();
        let on = if names.len() == 1 {
            "column"
        } else {
            "columns"
        };
        let describe = |u: Uuid, title: &str| -> String {
            let head = format!("{title} row, with UUID {u}, ");
            let tail = match self.staged_row(t, u) {
                None => "existed in the database before this transaction and was not modified by the transaction.".to_owned(),
                Some(Staged { old: None, .. }) => "was inserted by this transaction.".to_owned(),
                Some(Staged { old: Some(o), new: Some(n) })
                    if columns.iter().all(|c| cell_value(layout, o, *c) == cell_value(layout, n, *c)) =>
                {
                    "existed in the database before this transaction, which modified some of the row's columns but not any columns in this index.".to_owned()
                }
                Some(Staged { old: Some(o), .. }) => {
                    format!("had the following index values before the transaction: {}.", values(o))
                }
            };
            head + &tail
        };
        let shown = self.get(t, first).map(values).unwrap_or_default();
        constraint(format!(
            "Transaction causes multiple rows in \"{}\" table to have identical values ({shown}) \
             for index on {on} {}.  {}  {}",
            layout.name,
            text::english_list(&names),
            describe(first, "First"),
            describe(second, "Second"),
        ))
    }

    /// The staged rows as updates for [`Replica::apply`](crate::replica::Replica::apply).
    fn updates(&self) -> TableUpdates {
        let mut tables = Vec::new();
        for (i, staged) in self.staged.iter().enumerate() {
            let t = TableId(u16::try_from(i).unwrap_or(u16::MAX));
            let layout = self.table_layout(t);
            let mut rows: Vec<(&Uuid, &Staged)> = staged.iter().collect();
            rows.sort_unstable_by_key(|(u, _)| **u);
            let rows: Vec<RowUpdate> = rows
                .into_iter()
                .filter_map(|(u, s)| {
                    let op = match (&s.old, &s.new) {
                        (None, Some(n)) => RowOp::Insert(n.clone()),
                        (Some(_), None) => RowOp::Delete,
                        (Some(o), Some(n)) if o != n => RowOp::Replace(replaced(layout, o, n)),
                        _ => return None,
                    };
                    Some(RowUpdate { uuid: *u, op })
                })
                .collect();
            if !rows.is_empty() {
                tables.push(TableUpdate { table: t, rows });
            }
        }
        TableUpdates { tables }
    }
}

/// The columns whose value differs between `old` and `new`, with their new values.
fn replaced(layout: &TableLayout, old: &Cells, new: &Cells) -> Vec<(ColumnId, Datum)> {
    (0..layout.columns.len())
        .filter_map(|i| {
            let c = ColumnId(u16::try_from(i).ok()?);
            let n = cell_value(layout, new, c);
            (cell_value(layout, old, c) != n).then(|| (c, n.clone()))
        })
        .collect()
}

fn weak_min_error(
    layout: &TableLayout,
    column: &str,
    u: Uuid,
    removed: usize,
    zero: bool,
    inserted: bool,
) -> OvsdbError {
    let table = &layout.name;
    if zero && inserted {
        return constraint(format!(
            "Weak reference column \"{column}\" in \"{table}\" row {u} (inserted within this \
             transaction) contained all-zeros UUID (probably as the default value for this \
             column) but deleting this value caused a constraint volation because this column \
             is not allowed to be empty."
        ));
    }
    let within = if inserted {
        "(inserted within this transaction) "
    } else {
        ""
    };
    constraint(format!(
        "Deletion of {removed} weak reference(s) to deleted (or never-existing) rows from column \
         \"{column}\" in \"{table}\" row {u} {within}caused this column to become empty, but \
         constraints on this column disallow an empty column."
    ))
}

/// The sides of `t`'s columns that refer to rows of a table of `layout`.
fn ref_sides(layout: &crate::monitor::Layout, t: &TableLayout) -> Vec<RefSide> {
    let mut out = Vec::new();
    for (i, c) in t.columns.iter().enumerate() {
        let Ok(column) = u16::try_from(i).map(ColumnId) else {
            continue;
        };
        let mut side = |base: &BaseType, value: bool| {
            let Some(target) = base.ref_table.as_deref().and_then(|n| layout.table(n)) else {
                return;
            };
            out.push(RefSide {
                column,
                value,
                target: target.0,
                strong: base.ref_type == RefType::Strong,
            });
        };
        side(&c.type_.key, false);
        if let Some(v) = &c.type_.value {
            side(v, true);
        }
    }
    out
}

/// The UUIDs on one side of a column of a row.
fn side_atoms(layout: &TableLayout, cells: &Cells, side: &RefSide) -> BTreeSet<Uuid> {
    let d = cell_value(layout, cells, side.column);
    match (d, side.value) {
        (Datum::Map(m), true) => m.iter().filter_map(|(_, v)| v.as_uuid()).collect(),
        (Datum::Map(m), false) => m.iter().filter_map(|(k, _)| k.as_uuid()).collect(),
        (Datum::Set(s), _) => s.iter().filter_map(Atom::as_uuid).collect(),
    }
}

fn contains_atom(d: &Datum, value_side: bool, x: &Uuid) -> bool {
    let x = Atom::Uuid(*x);
    match (d, value_side) {
        (Datum::Set(s), _) => s.contains(&x),
        (Datum::Map(m), false) => m.get(&x).is_some(),
        (Datum::Map(m), true) => m.iter().any(|(_, v)| *v == x),
    }
}

/// `d` without the elements (or pairs) for which `dead(key, value)` holds, and whether one of
/// them was the all-zero UUID.
fn filter_datum(d: &Datum, dead: impl Fn(&Atom, Option<&Atom>) -> bool) -> (Datum, bool) {
    let nil = Atom::Uuid(Uuid::NIL);
    let mut zero = false;
    let out = match d {
        Datum::Set(s) => Datum::Set(
            s.iter()
                .filter(|a| {
                    let dead = dead(a, None);
                    zero |= dead && **a == nil;
                    !dead
                })
                .cloned()
                .collect(),
        ),
        Datum::Map(m) => Datum::Map(
            m.iter()
                .filter(|(k, v)| {
                    let dead = dead(k, Some(v));
                    zero |= dead && (**k == nil || **v == nil);
                    !dead
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
    };
    (out, zero)
}
