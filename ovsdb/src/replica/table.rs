//! One table of the replica: rows by UUID and the indexes over them.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

use crate::monitor::{ColumnId, TableLayout};
use crate::value::{Datum, Uuid};

pub(crate) type State = foldhash::fast::RandomState;

pub(crate) use crate::monitor::Cells;

/// The value of `column` in `cells`, or `None` when the row holds the default.
pub(crate) fn cell(cells: &[(ColumnId, Datum)], column: ColumnId) -> Option<&Datum> {
    // Rows hold a handful of cells: a linear scan beats a binary search.
    cells.iter().find(|(c, _)| *c == column).map(|(_, d)| d)
}

/// The value of `column` in `cells`, with the default filled in.
pub(crate) fn value<'a>(
    layout: &'a TableLayout,
    cells: &'a [(ColumnId, Datum)],
    column: ColumnId,
) -> &'a Datum {
    cell(cells, column).unwrap_or(&layout.columns[column.index()].default)
}

/// `cells` in stored form (sorted, defaults left out), reusing the allocation when they
/// already are.
pub(crate) fn stored(layout: &TableLayout, cells: Cells) -> Cells {
    if crate::monitor::is_row_form(layout, &cells) {
        cells
    } else {
        crate::monitor::row_cells(layout, &mut cells.to_vec())
    }
}

/// A merged row in stored form.
pub(crate) fn canonical(layout: &TableLayout, mut cells: Vec<(ColumnId, Datum)>) -> Cells {
    crate::monitor::row_cells(layout, &mut cells)
}

/// UUIDs that share one index key hash.
#[derive(Debug, Clone)]
enum Bucket {
    One(Uuid),
    Many(Vec<Uuid>),
}

/// An index: a column tuple to the rows holding each value. Keys are stored as hashes only (the
/// values live in the rows), so an index costs about 40 bytes a row and clones cheaply.
#[derive(Debug, Clone)]
pub(crate) struct Index {
    pub(crate) columns: Vec<ColumnId>,
    map: HashMap<u64, Bucket, State>,
    hasher: State,
}

impl Index {
    pub(crate) fn new(columns: Vec<ColumnId>) -> Self {
        Index {
            columns,
            map: HashMap::default(),
            hasher: State::default(),
        }
    }

    fn hash_key<'a>(&self, key: impl Iterator<Item = &'a Datum>) -> u64 {
        let mut h = self.hasher.build_hasher();
        for d in key {
            d.hash(&mut h);
        }
        h.finish()
    }

    fn row_hash(&self, layout: &TableLayout, cells: &[(ColumnId, Datum)]) -> u64 {
        self.hash_key(self.columns.iter().map(|&c| value(layout, cells, c)))
    }

    fn same_key(
        &self,
        layout: &TableLayout,
        a: &[(ColumnId, Datum)],
        b: &[(ColumnId, Datum)],
    ) -> bool {
        self.columns
            .iter()
            .all(|&c| value(layout, a, c) == value(layout, b, c))
    }

    fn insert(&mut self, layout: &TableLayout, uuid: Uuid, cells: &[(ColumnId, Datum)]) {
        let h = self.row_hash(layout, cells);
        match self.map.get_mut(&h) {
            None => {
                self.map.insert(h, Bucket::One(uuid));
            }
            Some(b) => match b {
                Bucket::Many(v) => v.push(uuid),
                Bucket::One(first) => {
                    let first = *first;
                    *b = Bucket::Many(vec![first, uuid]);
                }
            },
        }
    }

    fn remove(&mut self, layout: &TableLayout, uuid: Uuid, cells: &[(ColumnId, Datum)]) {
        let h = self.row_hash(layout, cells);
        let empty = match self.map.get_mut(&h) {
            Some(Bucket::One(u)) => *u == uuid,
            Some(Bucket::Many(v)) => {
                v.retain(|u| *u != uuid);
                if v.len() == 1 {
                    let only = v[0];
                    self.map.insert(h, Bucket::One(only));
                }
                false
            }
            None => false,
        };
        if empty {
            self.map.remove(&h);
        }
    }

    /// The UUIDs whose key hash equals that of `key` (callers compare the values).
    pub(crate) fn candidates(&self, key: &[&Datum]) -> &[Uuid] {
        match self.map.get(&self.hash_key(key.iter().copied())) {
            None => &[],
            Some(Bucket::One(u)) => std::slice::from_ref(u),
            Some(Bucket::Many(v)) => v,
        }
    }
}

/// Rows by UUID plus indexes (the schema's first, then the user's).
#[derive(Debug, Clone, Default)]
pub(crate) struct TableData {
    pub(crate) rows: HashMap<Uuid, Cells, State>,
    pub(crate) indexes: Vec<Index>,
}

impl TableData {
    pub(crate) fn new(layout: &TableLayout) -> Self {
        TableData {
            rows: HashMap::default(),
            indexes: layout.indexes.iter().cloned().map(Index::new).collect(),
        }
    }

    /// Sets row `uuid` to `new` (or deletes it), keeping the indexes in step.
    pub(crate) fn set(&mut self, layout: &TableLayout, uuid: Uuid, new: Option<Cells>) {
        let old = match &new {
            Some(cells) => self.rows.insert(uuid, cells.clone()),
            None => self.rows.remove(&uuid),
        };
        for index in &mut self.indexes {
            match (&old, &new) {
                (Some(o), Some(n)) if index.same_key(layout, o, n) => {}
                _ => {
                    if let Some(o) = &old {
                        index.remove(layout, uuid, o);
                    }
                    if let Some(n) = &new {
                        index.insert(layout, uuid, n);
                    }
                }
            }
        }
    }

    /// Adds an index over `columns` and fills it from the rows.
    pub(crate) fn add_index(&mut self, layout: &TableLayout, columns: Vec<ColumnId>) {
        if self.indexes.iter().any(|i| i.columns == columns) {
            return;
        }
        let mut index = Index::new(columns);
        index.map.reserve(self.rows.len());
        for (uuid, cells) in &self.rows {
            index.insert(layout, *uuid, cells);
        }
        self.indexes.push(index);
    }

    /// Rebuilds every index from the rows (after the rows were replaced wholesale).
    pub(crate) fn rebuild_indexes(&mut self, layout: &TableLayout) {
        for index in &mut self.indexes {
            let mut fresh = Index::new(std::mem::take(&mut index.columns));
            fresh.map.reserve(self.rows.len());
            for (uuid, cells) in &self.rows {
                fresh.insert(layout, *uuid, cells);
            }
            *index = fresh;
        }
    }
}
