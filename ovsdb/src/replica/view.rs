//! Read access: [`Snapshot`], [`TableView`] and [`RowView`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::ReplicaError;
use super::table::{TableData, cell, parse_parts, value};
use crate::Row;
use crate::monitor::{ColumnId, Layout, TableLayout};
use crate::value::{Datum, Uuid};

/// The replica's contents at one sequence number.
#[derive(Debug, Clone)]
pub(crate) struct DbState {
    pub(crate) tables: Vec<Arc<TableData>>,
    pub(crate) seq: u64,
    pub(crate) synced: bool,
    pub(crate) last_txn_id: Option<Uuid>,
}

/// A consistent, immutable view of the whole replica at one sequence number.
///
/// Taking one is O(1) (two `Arc` clones); it never sees part of an update. Rows are shared with
/// the replica: holding a snapshot while updates arrive costs one copy of the row pointers of
/// each table that changes (the rows themselves are not copied).
#[derive(Clone)]
pub struct Snapshot {
    pub(crate) layout: Arc<Layout>,
    pub(crate) state: Arc<DbState>,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("db", &self.layout.name)
            .field("seq", &self.state.seq)
            .field("synced", &self.state.synced)
            .finish_non_exhaustive()
    }
}

impl Snapshot {
    /// The sequence number: how many updates the replica had applied when this was taken.
    #[must_use]
    pub fn seq(&self) -> u64 {
        self.state.seq
    }

    /// Whether the initial contents had arrived (see [`Replica::is_synced`](super::Replica::is_synced)).
    #[must_use]
    pub fn is_synced(&self) -> bool {
        self.state.synced
    }

    /// The last transaction id seen (`update3` and `monitor_cond_since` only).
    #[must_use]
    pub fn last_txn_id(&self) -> Option<Uuid> {
        self.state.last_txn_id
    }

    /// The schema layout.
    #[must_use]
    pub fn layout(&self) -> &Arc<Layout> {
        &self.layout
    }

    /// The table called `name`, if the schema has it.
    #[must_use]
    pub fn table(&self, name: &str) -> Option<TableView<'_>> {
        let (id, layout) = self.layout.table(name)?;
        Some(TableView {
            layout,
            data: self.state.tables.get(id.index())?,
        })
    }

    /// Every table, in name order.
    pub fn tables(&self) -> impl Iterator<Item = TableView<'_>> {
        self.layout
            .tables
            .iter()
            .zip(&self.state.tables)
            .map(|(layout, data)| TableView { layout, data })
    }
}

/// One table of a [`Snapshot`].
#[derive(Clone, Copy)]
pub struct TableView<'a> {
    layout: &'a TableLayout,
    data: &'a TableData,
}

impl fmt::Debug for TableView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableView")
            .field("table", &self.layout.name)
            .field("rows", &self.data.rows.len())
            .finish()
    }
}

impl<'a> TableView<'a> {
    /// The table name.
    #[must_use]
    pub fn name(&self) -> &'a str {
        &self.layout.name
    }

    /// The table's layout.
    #[must_use]
    pub fn layout(&self) -> &'a TableLayout {
        self.layout
    }

    /// Number of rows.
    #[must_use]
    pub fn len(&self) -> usize {
        self.data.rows.len()
    }

    /// Whether the table has no rows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.data.rows.is_empty()
    }

    /// The row `uuid`.
    #[must_use]
    pub fn get(&self, uuid: Uuid) -> Option<RowView<'a>> {
        let (k, cells) = self.data.rows.get_key_value(&uuid)?;
        Some(RowView {
            uuid: *k,
            layout: self.layout,
            cells,
        })
    }

    /// Every row, in no particular order.
    pub fn rows(&self) -> impl Iterator<Item = RowView<'a>> + 'a {
        let layout = self.layout;
        self.data.rows.iter().map(move |(uuid, cells)| RowView {
            uuid: *uuid,
            layout,
            cells,
        })
    }

    /// The column tuples that have an index (the schema's, then those added with
    /// [`Replica::add_index`](super::Replica::add_index)); a map key is named `column:key`.
    pub fn indexes(&self) -> impl Iterator<Item = Vec<&'a str>> + 'a {
        let layout = self.layout;
        self.data
            .indexes
            .iter()
            .map(move |i| i.parts.iter().map(|p| p.name(layout)).collect())
    }

    /// The rows whose `columns` equal `key`, through the index on exactly those columns.
    ///
    /// A column may be `column:key` for one key of a map column, matched by the key's value as
    /// a one-atom datum (`Datum::from("pod/default/web")`), or by the empty set for rows whose
    /// map lacks the key. Fails when there is no such index or `key` has the wrong length.
    pub fn find(&self, columns: &[&str], key: &[Datum]) -> Result<Vec<RowView<'a>>, ReplicaError> {
        let ids = parse_parts(self.layout, columns)?;
        let Some(index) = self.data.indexes.iter().find(|i| i.parts == ids) else {
            return Err(ReplicaError::NoIndex {
                table: self.layout.name.clone(),
                columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            });
        };
        if key.len() != ids.len() {
            return Err(ReplicaError::KeyLength {
                table: self.layout.name.clone(),
                expected: ids.len(),
                got: key.len(),
            });
        }
        let probe: Vec<&Datum> = key.iter().collect();
        Ok(index
            .candidates(&probe)
            .iter()
            .filter_map(|u| self.get(*u))
            .filter(|row| {
                ids.iter()
                    .zip(key)
                    .all(|(p, k)| *p.value(self.layout, row.cells) == *k)
            })
            .collect())
    }

    /// The one row whose `columns` equal `key` (the first, if an index that is not unique has
    /// several).
    pub fn find_one(
        &self,
        columns: &[&str],
        key: &[Datum],
    ) -> Result<Option<RowView<'a>>, ReplicaError> {
        Ok(self.find(columns, key)?.into_iter().next())
    }

    /// Every row as a [`Row`] with all columns (defaults filled in) and `_uuid`, by UUID.
    #[must_use]
    pub fn to_rows(&self) -> BTreeMap<Uuid, Row> {
        self.rows().map(|r| (r.uuid(), r.to_row())).collect()
    }
}

/// One row of a [`TableView`].
#[derive(Clone, Copy)]
pub struct RowView<'a> {
    uuid: Uuid,
    layout: &'a TableLayout,
    cells: &'a [(ColumnId, Datum)],
}

impl fmt::Debug for RowView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RowView");
        d.field("_uuid", &self.uuid);
        for (c, v) in self.cells {
            d.field(&self.layout.columns[c.index()].name, v);
        }
        d.finish()
    }
}

impl<'a> RowView<'a> {
    /// The row's UUID.
    #[must_use]
    pub fn uuid(&self) -> Uuid {
        self.uuid
    }

    /// The value of `column` (its default when the server never sent one); `None` only for a
    /// column the table does not have.
    #[must_use]
    pub fn get(&self, column: &str) -> Option<&'a Datum> {
        self.layout.column_id(column).map(|c| self.get_id(c))
    }

    /// The value of the column with id `column`.
    ///
    /// # Panics
    /// If `column` is not a column of this table's layout.
    #[must_use]
    pub fn get_id(&self, column: ColumnId) -> &'a Datum {
        value(self.layout, self.cells, column)
    }

    /// Whether `column` holds something other than its default.
    #[must_use]
    pub fn is_set(&self, column: ColumnId) -> bool {
        cell(self.cells, column).is_some()
    }

    /// The columns that hold something other than their default, in column order.
    pub fn cells(&self) -> impl Iterator<Item = (&'a str, &'a Datum)> + 'a {
        let layout = self.layout;
        self.cells
            .iter()
            .map(move |(c, d)| (layout.columns[c.index()].name.as_str(), d))
    }

    /// The row with every column (defaults filled in) and `_uuid`.
    #[must_use]
    pub fn to_row(&self) -> Row {
        let mut row: Row = self
            .layout
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let v = cell(self.cells, ColumnId(i as u16)).unwrap_or(&c.default);
                (c.name.clone(), v.clone())
            })
            .collect();
        row.insert("_uuid", self.uuid);
        row
    }
}
