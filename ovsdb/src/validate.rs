//! Checking a transaction against a [`DatabaseSchema`] before it is sent.
//!
//! This catches, without a round trip, what ovsdb-server would reject while parsing the request:
//! unknown tables and columns, values of the wrong type or outside their constraints, writes to
//! `_uuid`/`_version` or to immutable columns, functions and mutators that do not apply to a
//! column, and named UUIDs that no insert of the transaction declares or that point into the
//! wrong table. What depends on the database's contents (index uniqueness, referential
//! integrity of real UUIDs, `maxRows`) is left to the server.
//!
//! ```
//! use ovsdb::{DatabaseSchema, Insert, Row, Transaction, ValidationError};
//!
//! let schema = DatabaseSchema::from_json_str(r#"{"name":"D","version":"1.0.0","tables":{
//!     "T":{"columns":{"n":{"type":{"key":{"type":"integer","maxInteger":9}}}}}}}"#).unwrap();
//! let txn = Transaction::new("D").with(Insert::new("T", Row::new().with("n", 10)));
//! let err = txn.validate(&schema).unwrap_err();
//! assert!(matches!(err, ValidationError::Constraint { index: 0, ref column, .. } if column == "n"));
//! assert_eq!(err.to_string(), "operation 0 (insert on T), column n: integer 10 is outside [-, 9]");
//! ```

use std::collections::HashMap;

use crate::condition::{Condition, Function, Mutation, Mutator};
use crate::ops::{OpKind, Operation};
use crate::row::Row;
use crate::schema::{ColumnSchema, ColumnType, ConstraintError, DatabaseSchema, Max, TableSchema};
use crate::transaction::Transaction;
use crate::value::{Atom, AtomicType, Datum};

/// Why a transaction does not fit its schema. Every variant names the operation (`index`, `op`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The transaction is for another database.
    #[error("transaction is for database {found}, the schema is {expected}")]
    WrongDatabase {
        /// The schema's database.
        expected: String,
        /// The transaction's database.
        found: String,
    },
    /// The table does not exist.
    #[error("operation {index} ({op}): unknown table {table}")]
    UnknownTable {
        /// Operation index.
        index: usize,
        /// Operation kind.
        op: OpKind,
        /// Table.
        table: String,
    },
    /// The column does not exist.
    #[error("operation {index} ({op} on {table}): unknown column {column}")]
    UnknownColumn {
        /// Operation index.
        index: usize,
        /// Operation kind.
        op: OpKind,
        /// Table.
        table: String,
        /// Column.
        column: String,
    },
    /// `_uuid` or `_version` written.
    #[error("operation {index} ({op} on {table}): column {column} is read-only")]
    ReadOnlyColumn {
        /// Operation index.
        index: usize,
        /// Operation kind.
        op: OpKind,
        /// Table.
        table: String,
        /// Column.
        column: String,
    },
    /// A column declared `"mutable": false` changed by `update` or `mutate`.
    #[error("operation {index} ({op} on {table}): column {column} is not mutable")]
    ImmutableColumn {
        /// Operation index.
        index: usize,
        /// Operation kind.
        op: OpKind,
        /// Table.
        table: String,
        /// Column.
        column: String,
    },
    /// A value breaks the column's type or constraints.
    #[error("operation {index} ({op} on {table}), column {column}: {constraint}")]
    Constraint {
        /// Operation index.
        index: usize,
        /// Operation kind.
        op: OpKind,
        /// Table.
        table: String,
        /// Column.
        column: String,
        /// The broken constraint.
        constraint: ConstraintError,
    },
    /// A condition function that does not apply to the column's type (e.g. `<` on a string).
    #[error(
        "operation {index} ({op} on {table}): function {function} does not apply to column {column} ({column_type})"
    )]
    FunctionNotApplicable {
        /// Operation index.
        index: usize,
        /// Operation kind.
        op: OpKind,
        /// Table.
        table: String,
        /// Column.
        column: String,
        /// The function.
        function: Function,
        /// The column's type, described.
        column_type: String,
    },
    /// A mutator that does not apply to the column's type (e.g. `+=` on a map).
    #[error(
        "operation {index} ({op} on {table}): mutator {mutator} does not apply to column {column} ({column_type})"
    )]
    MutatorNotApplicable {
        /// Operation index.
        index: usize,
        /// Operation kind.
        op: OpKind,
        /// Table.
        table: String,
        /// Column.
        column: String,
        /// The mutator.
        mutator: Mutator,
        /// The column's type, described.
        column_type: String,
    },
    /// Two inserts declare the same `uuid-name`.
    #[error(
        "operation {index} (insert on {table}): uuid-name {name} already declared by operation {first}"
    )]
    DuplicateUuidName {
        /// Operation index of the second declaration.
        index: usize,
        /// Table.
        table: String,
        /// The name.
        name: String,
        /// Operation index of the first declaration.
        first: usize,
    },
    /// A named UUID that no insert of the transaction declares.
    #[error(
        "operation {index} ({op} on {table}), column {column}: named-uuid {name} is not declared by any insert"
    )]
    UnknownNamedUuid {
        /// Operation index.
        index: usize,
        /// Operation kind.
        op: OpKind,
        /// Table.
        table: String,
        /// Column.
        column: String,
        /// The name.
        name: String,
    },
    /// A named UUID that refers to a row of another table than the column's `refTable`.
    #[error(
        "operation {index} ({op} on {table}), column {column}: named-uuid {name} is a row of {found}, the column refers to {expected}"
    )]
    RefTableMismatch {
        /// Operation index.
        index: usize,
        /// Operation kind.
        op: OpKind,
        /// Table.
        table: String,
        /// Column.
        column: String,
        /// The name.
        name: String,
        /// The column's `refTable` (boxed to keep the error small).
        expected: Box<str>,
        /// The table the named row is inserted into.
        found: Box<str>,
    },
}

/// Named UUIDs declared by the transaction's inserts: name -> (table, op index).
type Names<'a> = HashMap<&'a str, (&'a str, usize)>;

pub(crate) fn transaction(
    txn: &Transaction,
    schema: &DatabaseSchema,
) -> Result<(), ValidationError> {
    if txn.database() != schema.name {
        return Err(ValidationError::WrongDatabase {
            expected: schema.name.clone(),
            found: txn.database().to_owned(),
        });
    }
    let mut names: Names<'_> = HashMap::new();
    for (index, op) in txn.operations().iter().enumerate() {
        if let Operation::Insert(ins) = op
            && let Some(n) = &ins.uuid_name
        {
            if let Some(&(_, first)) = names.get(n.as_str()) {
                return Err(ValidationError::DuplicateUuidName {
                    index,
                    table: ins.table.clone(),
                    name: n.to_string(),
                    first,
                });
            }
            names.insert(n.as_str(), (ins.table.as_str(), index));
        }
    }
    for (index, op) in txn.operations().iter().enumerate() {
        let Some(table) = op.table() else { continue };
        let Some(ts) = schema.table(table) else {
            return Err(ValidationError::UnknownTable {
                index,
                op: op.kind(),
                table: table.to_owned(),
            });
        };
        let cx = Cx {
            index,
            op: op.kind(),
            table: ts,
            names: &names,
        };
        cx.operation(op)?;
    }
    Ok(())
}

/// The context of one operation's checks.
struct Cx<'a> {
    index: usize,
    op: OpKind,
    table: &'a TableSchema,
    names: &'a Names<'a>,
}

impl Cx<'_> {
    fn operation(&self, op: &Operation) -> Result<(), ValidationError> {
        match op {
            Operation::Insert(o) => self.row(&o.row, false),
            Operation::Select(o) => {
                self.conditions(&o.conditions)?;
                for c in o.columns.iter().flatten() {
                    self.column(c)?;
                }
                Ok(())
            }
            Operation::Update(o) => {
                self.conditions(&o.conditions)?;
                self.row(&o.row, true)
            }
            Operation::Mutate(o) => {
                self.conditions(&o.conditions)?;
                o.mutations.iter().try_for_each(|m| self.mutation(m))
            }
            Operation::Delete(o) => self.conditions(&o.conditions),
            Operation::Wait(o) => {
                self.conditions(&o.conditions)?;
                for c in &o.columns {
                    self.column(c)?;
                }
                for r in &o.rows {
                    for (c, d) in r.iter() {
                        let col = self.column(c)?;
                        self.datum(c, &col.type_, d)?;
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn column(&self, name: &str) -> Result<&ColumnSchema, ValidationError> {
        self.table
            .column(name)
            .ok_or_else(|| ValidationError::UnknownColumn {
                index: self.index,
                op: self.op,
                table: self.table.name.clone(),
                column: name.to_owned(),
            })
    }

    fn writable(&self, name: &str, changing: bool) -> Result<&ColumnSchema, ValidationError> {
        let col = self.column(name)?;
        let (table, column) = (self.table.name.clone(), name.to_owned());
        let (index, op) = (self.index, self.op);
        if col.is_implicit() {
            return Err(ValidationError::ReadOnlyColumn {
                index,
                op,
                table,
                column,
            });
        }
        if changing && !col.mutable {
            return Err(ValidationError::ImmutableColumn {
                index,
                op,
                table,
                column,
            });
        }
        Ok(col)
    }

    fn row(&self, row: &Row, changing: bool) -> Result<(), ValidationError> {
        for (c, d) in row.iter() {
            let col = self.writable(c, changing)?;
            self.datum(c, &col.type_, d)?;
        }
        Ok(())
    }

    fn constraint(&self, column: &str, constraint: ConstraintError) -> ValidationError {
        ValidationError::Constraint {
            index: self.index,
            op: self.op,
            table: self.table.name.clone(),
            column: column.to_owned(),
            constraint,
        }
    }

    fn not_applicable(
        &self,
        column: &str,
        ty: &ColumnType,
        what: Result<Function, Mutator>,
    ) -> ValidationError {
        let (index, op, table) = (self.index, self.op, self.table.name.clone());
        let (column, column_type) = (column.to_owned(), ty.to_string());
        match what {
            Ok(function) => ValidationError::FunctionNotApplicable {
                index,
                op,
                table,
                column,
                function,
                column_type,
            },
            Err(mutator) => ValidationError::MutatorNotApplicable {
                index,
                op,
                table,
                column,
                mutator,
                column_type,
            },
        }
    }

    /// Checks `d` against `ty` (elements and size), then its named UUIDs.
    fn datum(&self, column: &str, ty: &ColumnType, d: &Datum) -> Result<(), ValidationError> {
        ty.check(d).map_err(|e| self.constraint(column, e))?;
        self.named_refs(column, ty, d)
    }

    fn named_refs(&self, column: &str, ty: &ColumnType, d: &Datum) -> Result<(), ValidationError> {
        let check = |atom: &Atom, ref_table: Option<&String>| -> Result<(), ValidationError> {
            let Atom::NamedUuid(n) = atom else {
                return Ok(());
            };
            let (index, op, table, column) = (
                self.index,
                self.op,
                self.table.name.clone(),
                column.to_owned(),
            );
            let Some(&(found, _)) = self.names.get(n.as_str()) else {
                return Err(ValidationError::UnknownNamedUuid {
                    index,
                    op,
                    table,
                    column,
                    name: n.to_string(),
                });
            };
            match ref_table {
                Some(expected) if expected != found => Err(ValidationError::RefTableMismatch {
                    index,
                    op,
                    table,
                    column,
                    name: n.to_string(),
                    expected: expected.as_str().into(),
                    found: found.into(),
                }),
                _ => Ok(()),
            }
        };
        match d {
            Datum::Set(s) => s
                .iter()
                .try_for_each(|a| check(a, ty.key.ref_table.as_ref())),
            Datum::Map(m) => m.iter().try_for_each(|(k, v)| {
                check(k, ty.key.ref_table.as_ref())?;
                check(v, ty.value.as_ref().and_then(|v| v.ref_table.as_ref()))
            }),
        }
    }

    fn conditions(&self, conditions: &[Condition]) -> Result<(), ValidationError> {
        for c in conditions {
            let col = self.column(&c.column)?;
            let ty = &col.type_;
            let numeric = matches!(ty.key.atomic, AtomicType::Integer | AtomicType::Real);
            let arg_type = match c.function {
                f if f.is_ordering() => {
                    if !(numeric && (ty.is_scalar() || ty.is_optional())) {
                        return Err(self.not_applicable(&c.column, ty, Ok(f)));
                    }
                    ty.clone()
                }
                Function::Eq | Function::Ne => ty.clone(),
                Function::Includes if !ty.is_scalar() => ColumnType {
                    min: 0,
                    ..ty.clone()
                },
                Function::Excludes if !ty.is_scalar() => ColumnType {
                    min: 0,
                    max: Max::Unlimited,
                    ..ty.clone()
                },
                _ => ty.clone(),
            };
            self.datum(&c.column, &arg_type, &c.value)?;
        }
        Ok(())
    }

    fn mutation(&self, m: &Mutation) -> Result<(), ValidationError> {
        let col = self.writable(&m.column, true)?;
        let ty = &col.type_;
        let bad = || self.not_applicable(&m.column, ty, Err(m.mutator));
        if m.mutator.is_arithmetic() {
            let ok_type = match m.mutator {
                Mutator::Mod => ty.key.atomic == AtomicType::Integer,
                _ => matches!(ty.key.atomic, AtomicType::Integer | AtomicType::Real),
            };
            if !ok_type || ty.is_map() {
                return Err(bad());
            }
            // The argument is one atom of the key's atomic type; range constraints apply to the
            // result, which only the server can check.
            let arg = ColumnType::scalar(crate::schema::BaseType::new(ty.key.atomic));
            return self.datum(&m.column, &arg, &m.value);
        }
        if ty.is_scalar() {
            return Err(bad());
        }
        if m.mutator == Mutator::Delete && ty.is_map() && matches!(m.value, Datum::Set(_)) {
            // Deleting from a map by keys alone.
            let keys = ColumnType {
                value: None,
                min: 0,
                max: Max::Unlimited,
                ..ty.clone()
            };
            return self.datum(&m.column, &keys, &m.value);
        }
        let arg = ColumnType {
            min: 0,
            max: if m.mutator == Mutator::Delete {
                Max::Unlimited
            } else {
                ty.max
            },
            ..ty.clone()
        };
        self.datum(&m.column, &arg, &m.value)
    }
}
