//! The operations: each reads its arguments as the server parses them (in the server's order,
//! so that the first error is the server's), then runs against the transaction's view.

use std::borrow::Cow;
use std::collections::BTreeSet;

use super::text::{self, constraint, syntax};
use super::value::{self, MutationOp, UUID_TYPE};
use super::{Exec, OvsdbError, Staged, Symbol};
use crate::condition::{Condition, Function, Mutation, Mutator};
use crate::monitor::{ColumnId, TableId};
use crate::ops::{Delete, Insert, Mutate, Operation, Select, Update, Wait, WaitUntil};
use crate::replica::table::{Cells, canonical, value as cell_value};
use crate::result::OperationResult;
use crate::row::Row;
use crate::schema::{ColumnType, Max};
use crate::value::{Datum, Uuid};

/// A column of a table, the implicit ones included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Col {
    /// `_uuid`.
    Uuid,
    /// `_version`.
    Version,
    /// A declared column.
    Id(ColumnId),
}

/// A `where` clause read against its table.
struct Clause {
    col: Col,
    function: Function,
    arg: Datum,
}

impl<'a> Exec<'a> {
    pub(super) fn operation(
        &mut self,
        index: usize,
        n: usize,
        op: &Operation,
    ) -> Result<OperationResult, OvsdbError> {
        let table = match op.table() {
            Some(name) => Some(self.layout.table(name).map(|(t, _)| t).ok_or_else(|| {
                syntax(format!(
                    "Parsing ovsdb operation {} of {n} failed: No table named {name}.",
                    index + 1
                ))
            })?),
            None => None,
        };
        match (op, table) {
            (Operation::Insert(o), Some(t)) => self.insert(t, o),
            (Operation::Select(o), Some(t)) => self.select(t, o),
            (Operation::Update(o), Some(t)) => self.update(t, o),
            (Operation::Mutate(o), Some(t)) => self.mutate(t, o),
            (Operation::Delete(o), Some(t)) => self.delete(t, o),
            (Operation::Wait(o), Some(t)) => self.wait(t, o),
            (Operation::Abort, _) => Err(text::error("aborted", "aborted by request")),
            (Operation::Assert { lock }, _) => Err(text::error(
                "not owner",
                format!("Asserted lock {lock} not held."),
            )),
            _ => Ok(OperationResult::Empty),
        }
    }

    fn column(&self, t: TableId, name: &str) -> Result<Col, OvsdbError> {
        match name {
            "_uuid" => Ok(Col::Uuid),
            "_version" => Ok(Col::Version),
            _ => {
                let layout = self.table_layout(t);
                layout
                    .column_id(name)
                    .map(Col::Id)
                    .ok_or_else(|| text::unknown_column(name, &layout.name))
            }
        }
    }

    fn col_type(&self, t: TableId, col: Col) -> &'a ColumnType {
        match col {
            Col::Id(c) => &self.table_layout(t).columns[c.index()].type_,
            _ => &UUID_TYPE,
        }
    }

    /// The value of `col` in row `u` (whose cells are `cells`).
    fn field<'c>(&self, t: TableId, u: Uuid, cells: &'c Cells, col: Col) -> Cow<'c, Datum>
    where
        'a: 'c,
    {
        match col {
            Col::Uuid => Cow::Owned(Datum::from(u)),
            Col::Version => Cow::Owned(Datum::from(self.version(t, u))),
            Col::Id(c) => Cow::Borrowed(cell_value(self.table_layout(t), cells, c)),
        }
    }

    /// A row of an insert, update or wait, read against the table: `(column, value)` in the
    /// row's order.
    fn parse_row(&mut self, t: TableId, row: &Row) -> Result<Vec<(Col, Datum)>, OvsdbError> {
        let mut out = Vec::with_capacity(row.len());
        for (name, d) in row.iter() {
            let col = self.column(t, name)?;
            let ty = self.col_type(t, col);
            out.push((col, self.parse(ty, d)?));
        }
        Ok(out)
    }

    fn clauses(&mut self, t: TableId, conditions: &[Condition]) -> Result<Vec<Clause>, OvsdbError> {
        let mut out = Vec::with_capacity(conditions.len());
        for c in conditions {
            let col = self.column(t, &c.column)?;
            let ty = value::condition_type(c.function, self.col_type(t, col), &c.column)?;
            let arg = self.parse(&ty, &c.value)?;
            out.push(Clause {
                col,
                function: c.function,
                arg,
            });
        }
        Ok(out)
    }

    /// The rows of `t` matching every clause, in UUID order.
    fn query(&self, t: TableId, clauses: &[Clause]) -> Vec<(Uuid, Cells)> {
        let matches = |u: Uuid, cells: &Cells| {
            clauses
                .iter()
                .all(|c| value::holds(c.function, &self.field(t, u, cells, c.col), &c.arg))
        };
        let by_uuid = clauses.iter().find_map(|c| match (c.col, c.function) {
            (Col::Uuid, Function::Eq) => c.arg.as_atom().and_then(crate::Atom::as_uuid),
            _ => None,
        });
        let mut rows: Vec<(Uuid, Cells)> = match by_uuid {
            Some(u) => self
                .get(t, u)
                .filter(|cells| matches(u, cells))
                .map(|cells| vec![(u, cells.clone())])
                .unwrap_or_default(),
            None => self
                .live(t)
                .filter(|(u, cells)| matches(*u, cells))
                .map(|(u, cells)| (u, cells.clone()))
                .collect(),
        };
        rows.sort_unstable_by_key(|(u, _)| *u);
        rows
    }

    /// A list of column names (`select` and `wait`): distinct, each a column of `t`.
    fn column_list(&self, t: TableId, names: &[String]) -> Result<Vec<Col>, OvsdbError> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let col = self
                .column(t, name)
                .map_err(|_| syntax(format!("{name} is not a valid column name")))?;
            if !seen.insert(name.as_str()) {
                return Err(syntax("array of distinct column names expected"));
            }
            out.push(col);
        }
        Ok(out)
    }

    fn insert(&mut self, t: TableId, o: &Insert) -> Result<OperationResult, OvsdbError> {
        if let Some(u) = o.uuid {
            let deleted = self.staged[t.index()]
                .get(&u)
                .is_some_and(|s| s.new.is_none());
            if deleted || self.get(t, u).is_some() {
                let mut e = text::error(
                    "duplicate uuid",
                    "This UUID would duplicate a UUID already present within the table or \
                     deleted within the same transaction.",
                );
                e.syntax = Some(format!("\"{u}\""));
                return Err(e);
            }
        }
        let uuid = match &o.uuid_name {
            Some(name) => {
                let name = name.as_str();
                if self.symbols.get(name).is_some_and(|s| s.created) {
                    let mut e = text::error(
                        "duplicate uuid-name",
                        "This \"uuid-name\" appeared on an earlier \"insert\" operation.",
                    );
                    e.syntax = Some(format!("\"{name}\""));
                    return Err(e);
                }
                let uuid = match (o.uuid, self.symbols.get(name)) {
                    (Some(u), _) => u,
                    (None, Some(s)) => s.uuid,
                    (None, None) => self.fresh_uuid()?,
                };
                let created = true;
                self.symbols
                    .insert(name.to_owned(), Symbol { uuid, created });
                uuid
            }
            None => match o.uuid {
                Some(u) => u,
                None => self.fresh_uuid()?,
            },
        };
        let layout = self.table_layout(t);
        let mut cells = Vec::with_capacity(o.row.len());
        for (col, d) in self.parse_row(t, &o.row)? {
            // `_uuid` and `_version` in an inserted row are read, then ignored.
            if let Col::Id(c) = col {
                cells.push((c, d));
            }
        }
        let cells = canonical(layout, cells);
        for (i, c) in layout.columns.iter().enumerate() {
            let id = ColumnId(u16::try_from(i).unwrap_or(u16::MAX));
            value::check_single(&c.type_, cell_value(layout, &cells, id))?;
        }
        self.staged[t.index()].insert(
            uuid,
            Staged {
                old: None,
                new: Some(cells),
            },
        );
        Ok(OperationResult::Uuid(uuid))
    }

    fn select(&mut self, t: TableId, o: &Select) -> Result<OperationResult, OvsdbError> {
        let clauses = self.clauses(t, &o.conditions)?;
        let columns = o
            .columns
            .as_ref()
            .map(|c| self.column_list(t, c))
            .transpose()?;
        let rows = self.query(t, &clauses);
        let layout = self.table_layout(t);
        let Some(columns) = columns else {
            let all = rows
                .iter()
                .map(|(u, cells)| {
                    let mut row: Row = layout
                        .columns
                        .iter()
                        .enumerate()
                        .map(|(i, c)| {
                            let id = ColumnId(u16::try_from(i).unwrap_or(u16::MAX));
                            (c.name.clone(), cell_value(layout, cells, id).clone())
                        })
                        .collect();
                    row.insert("_uuid", *u);
                    row.insert("_version", self.version(t, *u));
                    row
                })
                .collect();
            return Ok(OperationResult::Rows(all));
        };
        // Without `_uuid`, rows that look the same are returned once.
        let distinct = columns.contains(&Col::Uuid);
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (u, cells) in &rows {
            let values: Vec<Datum> = columns
                .iter()
                .map(|c| self.field(t, *u, cells, *c).into_owned())
                .collect();
            if !distinct && !seen.insert(values.clone()) {
                continue;
            }
            let names = o.columns.iter().flatten();
            out.push(names.cloned().zip(values).collect::<Row>());
        }
        Ok(OperationResult::Rows(out))
    }

    fn update(&mut self, t: TableId, o: &Update) -> Result<OperationResult, OvsdbError> {
        let values = self.parse_row(t, &o.row)?;
        let layout = self.table_layout(t);
        for ((name, _), (col, _)) in o.row.iter().zip(&values) {
            let mutable = match col {
                Col::Id(c) => layout.columns[c.index()].mutable,
                _ => false,
            };
            if !mutable {
                return Err(immutable("update", name, &layout.name));
            }
        }
        let clauses = self.clauses(t, &o.conditions)?;
        let rows = self.query(t, &clauses);
        let count = rows.len() as u64;
        for (u, cells) in rows {
            let mut merged: Vec<(ColumnId, Datum)> = cells.to_vec();
            for (col, d) in &values {
                if let Col::Id(c) = col {
                    merged.retain(|(m, _)| m != c);
                    merged.push((*c, d.clone()));
                }
            }
            let new = canonical(layout, merged);
            if new != cells {
                self.set_row(t, u, Some(new));
            }
        }
        Ok(OperationResult::Count(count))
    }

    fn mutation(&mut self, t: TableId, m: &Mutation) -> Result<(ColumnId, MutationOp), OvsdbError> {
        let layout = self.table_layout(t);
        let col = self.column(t, &m.column)?;
        let Col::Id(c) = col else {
            return Err(immutable("mutate", &m.column, &layout.name));
        };
        let column = &layout.columns[c.index()];
        if !column.mutable {
            return Err(immutable("mutate", &m.column, &layout.name));
        }
        let ty = &column.type_;
        let bad = || value::mismatch(m.mutator.as_str(), &m.column, ty);
        let arg = if m.mutator.is_arithmetic() {
            let numeric = matches!(
                (ty.key.atomic, m.mutator),
                (crate::AtomicType::Integer, _)
                    | (
                        crate::AtomicType::Real,
                        Mutator::Add | Mutator::Sub | Mutator::Mul | Mutator::Div
                    )
            );
            if ty.is_map() || !numeric {
                return Err(bad());
            }
            let arg_ty = ColumnType::scalar(crate::BaseType::new(ty.key.atomic));
            self.parse(&arg_ty, &m.value)?
        } else {
            if ty.is_scalar() {
                return Err(bad());
            }
            let max = match m.mutator {
                Mutator::Delete => Max::Unlimited,
                _ => ty.max,
            };
            let arg_ty = ColumnType {
                min: 0,
                max,
                ..ty.clone()
            };
            match self.parse(&arg_ty, &m.value) {
                Err(_) if ty.is_map() && m.mutator == Mutator::Delete => {
                    // A map's keys alone.
                    let keys = ColumnType {
                        value: None,
                        ..arg_ty
                    };
                    self.parse(&keys, &m.value)?
                }
                other => other?,
            }
        };
        Ok((
            c,
            MutationOp {
                mutator: m.mutator,
                arg,
            },
        ))
    }

    fn mutate(&mut self, t: TableId, o: &Mutate) -> Result<OperationResult, OvsdbError> {
        let mutations = o
            .mutations
            .iter()
            .map(|m| self.mutation(t, m))
            .collect::<Result<Vec<_>, _>>()?;
        let clauses = self.clauses(t, &o.conditions)?;
        let rows = self.query(t, &clauses);
        let layout = self.table_layout(t);
        let count = rows.len() as u64;
        for (u, cells) in rows {
            let mut merged: Vec<(ColumnId, Datum)> = cells.to_vec();
            for (c, m) in &mutations {
                let ty = &layout.columns[c.index()].type_;
                let slot = merged.iter().position(|(x, _)| x == c);
                let before = slot.map_or(&layout.columns[c.index()].default, |i| &merged[i].1);
                let after = value::mutate(ty, before, m)?;
                match slot {
                    Some(i) => merged[i].1 = after,
                    None => merged.push((*c, after)),
                }
            }
            let new = canonical(layout, merged);
            if new != cells {
                self.set_row(t, u, Some(new));
            }
        }
        Ok(OperationResult::Count(count))
    }

    fn delete(&mut self, t: TableId, o: &Delete) -> Result<OperationResult, OvsdbError> {
        let clauses = self.clauses(t, &o.conditions)?;
        let rows = self.query(t, &clauses);
        for (u, _) in &rows {
            self.set_row(t, *u, None);
        }
        Ok(OperationResult::Count(rows.len() as u64))
    }

    fn wait(&mut self, t: TableId, o: &Wait) -> Result<OperationResult, OvsdbError> {
        let clauses = self.clauses(t, &o.conditions)?;
        let columns = self.column_list(t, &o.columns)?;
        let layout = self.table_layout(t);
        let mut expected = BTreeSet::new();
        for row in &o.rows {
            let values = self.parse_row(t, row)?;
            let projected: Vec<Datum> = columns
                .iter()
                .map(|c| match values.iter().rev().find(|(v, _)| v == c) {
                    Some((_, d)) => d.clone(),
                    None => match c {
                        Col::Id(id) => layout.columns[id.index()].default.clone(),
                        _ => Datum::from(Uuid::NIL),
                    },
                })
                .collect();
            expected.insert(projected);
        }
        let actual: BTreeSet<Vec<Datum>> = self
            .query(t, &clauses)
            .iter()
            .map(|(u, cells)| {
                columns
                    .iter()
                    .map(|c| self.field(t, *u, cells, *c).into_owned())
                    .collect()
            })
            .collect();
        let equal = actual == expected;
        if equal == (o.until == WaitUntil::Equal) {
            return Ok(OperationResult::Empty);
        }
        Err(text::error(
            "timed out",
            match o.timeout {
                Some(0) => "\"where\" clause test failed".to_owned(),
                Some(ms) => format!("\"wait\" timed out after {ms} ms"),
                None => "\"wait\" would block forever: nothing else changes the replica".to_owned(),
            },
        ))
    }
}

fn immutable(op: &str, column: &str, table: &str) -> OvsdbError {
    constraint(format!(
        "Cannot {op} immutable column {column} in table {table}."
    ))
}
