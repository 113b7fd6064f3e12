//! Staging one update: each row's state before and after, checked before anything is applied.

use std::collections::HashMap;

use super::ReplicaError;
use super::diff::apply_diff;
use super::table::{Cells, State, canonical, stored};
use crate::monitor::{ColumnId, RowOp, TableLayout};
use crate::value::Uuid;

/// A row's state before and after the call being staged.
pub(super) struct Staged {
    pub(super) old: Option<Cells>,
    pub(super) new: Option<Cells>,
}

/// The rows of one table a call touches, in order. Most notifications touch a row or two, so
/// the rows are searched linearly until there are enough to be worth a hash index.
#[derive(Default)]
pub(super) struct Overlay {
    pub(super) rows: Vec<(Uuid, Staged)>,
    index: Option<HashMap<Uuid, usize, State>>,
}

impl Overlay {
    const LINEAR: usize = 16;

    pub(super) fn find(&self, uuid: Uuid) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(&uuid).copied(),
            None => self.rows.iter().position(|(u, _)| *u == uuid),
        }
    }

    pub(super) fn push(&mut self, uuid: Uuid, staged: Staged) {
        self.rows.push((uuid, staged));
        let n = self.rows.len();
        match &mut self.index {
            Some(index) => {
                index.insert(uuid, n - 1);
            }
            None if n > Self::LINEAR => {
                let mut index = HashMap::with_capacity_and_hasher(n * 2, State::default());
                index.extend(self.rows.iter().enumerate().map(|(i, (u, _))| (*u, i)));
                self.index = Some(index);
            }
            None => {}
        }
    }
}

/// The row's cells after `op`, or an error naming what does not fit.
pub(super) fn stage_op(
    layout: &TableLayout,
    uuid: Uuid,
    current: Option<Cells>,
    op: RowOp,
) -> Result<Option<Cells>, ReplicaError> {
    let missing = |op: &'static str| ReplicaError::NoSuchRow {
        table: layout.name.clone(),
        row: uuid,
        op,
    };
    match op {
        RowOp::Initial(cells) | RowOp::Insert(cells) => {
            if current.is_some() {
                return Err(ReplicaError::RowExists {
                    table: layout.name.clone(),
                    row: uuid,
                });
            }
            Ok(Some(stored(layout, cells)))
        }
        RowOp::Delete => match current {
            Some(_) => Ok(None),
            None => Err(missing("delete")),
        },
        RowOp::Replace(cells) => {
            let old = current.ok_or_else(|| missing("modify"))?;
            let mut merged: Vec<(ColumnId, crate::Datum)> = old
                .iter()
                .filter(|(c, _)| !cells.iter().any(|(n, _)| n == c))
                .cloned()
                .collect();
            merged.extend(cells);
            Ok(Some(canonical(layout, merged)))
        }
        RowOp::Modify(diffs) => {
            let old = current.ok_or_else(|| missing("modify"))?;
            let mut merged: Vec<(ColumnId, crate::Datum)> = old.to_vec();
            for (c, diff) in diffs {
                let col = &layout.columns[c.index()];
                let slot = merged.iter().position(|(m, _)| *m == c);
                let before = slot.map_or(&col.default, |i| &merged[i].1);
                let after =
                    apply_diff(&col.type_, before, diff).ok_or_else(|| ReplicaError::BadDiff {
                        table: layout.name.clone(),
                        row: uuid,
                        column: col.name.clone(),
                    })?;
                match slot {
                    Some(i) => merged[i].1 = after,
                    None => merged.push((c, after)),
                }
            }
            Ok(Some(canonical(layout, merged)))
        }
    }
}
