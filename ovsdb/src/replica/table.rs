//! One table of the replica: rows by UUID and the indexes over them.
//!
//! An index part is a column, or one key of a map column (`column:key`, as `ovn-nbctl find`
//! writes it): that part's value is the key's value as a one-atom datum, or the empty set when
//! the row's map lacks the key.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

use super::ReplicaError;
use crate::monitor::{ColumnId, TableLayout};
use crate::value::{Atom, AtomicType, Datum, Uuid};

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

/// One part of an index key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    /// A column's value.
    Column(ColumnId),
    /// The value of one key of a map column; `spec` is the `column:key` it was named by.
    MapKey {
        column: ColumnId,
        key: Atom,
        spec: String,
    },
}

impl Part {
    /// This part's value in a row.
    pub(crate) fn value<'a>(
        &self,
        layout: &'a TableLayout,
        cells: &'a [(ColumnId, Datum)],
    ) -> Cow<'a, Datum> {
        match self {
            Part::Column(c) => Cow::Borrowed(value(layout, cells, *c)),
            Part::MapKey { column, key, .. } => Cow::Owned(
                value(layout, cells, *column)
                    .as_map()
                    .and_then(|m| m.get(key))
                    .map_or_else(Datum::empty_set, |v| Datum::from(v.clone())),
            ),
        }
    }

    /// How the part is named: the column, or `column:key`.
    pub(crate) fn name<'a>(&'a self, layout: &'a TableLayout) -> &'a str {
        match self {
            Part::Column(c) => &layout.columns[c.index()].name,
            Part::MapKey { spec, .. } => spec,
        }
    }

    /// Reads `spec`: a column of `layout`, or `column:key` for a key of a map column.
    pub(crate) fn parse(layout: &TableLayout, spec: &str) -> Result<Part, ReplicaError> {
        if let Some(c) = layout.column_id(spec) {
            return Ok(Part::Column(c));
        }
        let unknown = |column: &str| ReplicaError::UnknownColumn {
            table: layout.name.clone(),
            column: column.to_owned(),
        };
        let Some((name, key)) = spec.split_once(':') else {
            return Err(unknown(spec));
        };
        let column = layout.column_id(name).ok_or_else(|| unknown(name))?;
        let bad = |reason: String| ReplicaError::BadIndexPart {
            table: layout.name.clone(),
            spec: spec.to_owned(),
            reason,
        };
        let ty = &layout.columns[column.index()].type_;
        if !ty.is_map() {
            return Err(bad(format!("column {name} is not a map")));
        }
        let key = match ty.key.atomic {
            AtomicType::String => Some(Atom::String(key.to_owned())),
            AtomicType::Integer => key.parse().ok().map(Atom::Integer),
            AtomicType::Real => key.parse().ok().map(Atom::Real),
            AtomicType::Boolean => key.parse().ok().map(Atom::Boolean),
            AtomicType::Uuid => key.parse().ok().map(Atom::Uuid),
        }
        .ok_or_else(|| bad(format!("{key:?} is not a {} key", ty.key.atomic)))?;
        Ok(Part::MapKey {
            column,
            key,
            spec: spec.to_owned(),
        })
    }
}

/// Reads index parts (see [`Part::parse`]).
pub(crate) fn parse_parts(layout: &TableLayout, specs: &[&str]) -> Result<Vec<Part>, ReplicaError> {
    specs.iter().map(|s| Part::parse(layout, s)).collect()
}

/// UUIDs that share one index key hash.
#[derive(Debug, Clone)]
enum Bucket {
    One(Uuid),
    Many(Vec<Uuid>),
}

/// An index: a tuple of parts (columns or map keys) to the rows holding each value. Keys are
/// stored as hashes only (the values live in the rows), so an index costs about 40 bytes a row
/// and clones cheaply.
#[derive(Debug, Clone)]
pub(crate) struct Index {
    pub(crate) parts: Vec<Part>,
    map: HashMap<u64, Bucket, State>,
    hasher: State,
}

impl Index {
    pub(crate) fn new(parts: Vec<Part>) -> Self {
        Index {
            parts,
            map: HashMap::default(),
            hasher: State::default(),
        }
    }

    fn hash_key<D: std::ops::Deref<Target = Datum>>(&self, key: impl Iterator<Item = D>) -> u64 {
        let mut h = self.hasher.build_hasher();
        for d in key {
            d.hash(&mut h);
        }
        h.finish()
    }

    fn row_hash(&self, layout: &TableLayout, cells: &[(ColumnId, Datum)]) -> u64 {
        self.hash_key(self.parts.iter().map(|p| p.value(layout, cells)))
    }

    fn same_key(
        &self,
        layout: &TableLayout,
        a: &[(ColumnId, Datum)],
        b: &[(ColumnId, Datum)],
    ) -> bool {
        self.parts
            .iter()
            .all(|p| p.value(layout, a) == p.value(layout, b))
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
            indexes: layout
                .indexes
                .iter()
                .map(|cols| Index::new(cols.iter().copied().map(Part::Column).collect()))
                .collect(),
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

    /// Adds an index over `parts` and fills it from the rows.
    pub(crate) fn add_index(&mut self, layout: &TableLayout, parts: Vec<Part>) {
        if self.indexes.iter().any(|i| i.parts == parts) {
            return;
        }
        let mut index = Index::new(parts);
        index.map.reserve(self.rows.len());
        for (uuid, cells) in &self.rows {
            index.insert(layout, *uuid, cells);
        }
        self.indexes.push(index);
    }

    /// Rebuilds every index from the rows (after the rows were replaced wholesale).
    pub(crate) fn rebuild_indexes(&mut self, layout: &TableLayout) {
        for index in &mut self.indexes {
            let mut fresh = Index::new(std::mem::take(&mut index.parts));
            fresh.map.reserve(self.rows.len());
            for (uuid, cells) in &self.rows {
                fresh.insert(layout, *uuid, cells);
            }
            *index = fresh;
        }
    }
}
