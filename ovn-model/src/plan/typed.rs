//! Typed changes: rows of the generated models in, [`Change`]s out. A row of a non-root table
//! can only be inserted with its parent ([`Plan::insert_child`]), a row of a root table only
//! with [`Plan::insert`], so a plan built through these never holds an orphan.

use ovsdb::table::{EncodeError, Ref, RowId};
use ovsdb::{Atom, Datum, Mutation, Row, Table};

use super::{Change, ParentLink, Plan, PlanError, RowTarget};
use crate::snapshot::Typed;
use crate::topology::{ChildOf, Root};

/// Which existing or new row a change applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<T> {
    /// By reference: a row read from the server, or one inserted by the same plan.
    Ref(Ref<T>),
    /// Every row whose `name` column equals this.
    Name(String),
}

impl<T> Target<T> {
    /// The untyped target.
    #[must_use]
    pub fn row_target(&self) -> RowTarget {
        match self {
            Target::Ref(r) => RowTarget::from_id(r.id()),
            Target::Name(n) => RowTarget::Name(n.clone()),
        }
    }
}

impl<T> From<Ref<T>> for Target<T> {
    fn from(r: Ref<T>) -> Self {
        Target::Ref(r)
    }
}
impl<T> From<&Ref<T>> for Target<T> {
    fn from(r: &Ref<T>) -> Self {
        Target::Ref(r.clone())
    }
}
impl<T> From<ovsdb::Uuid> for Target<T> {
    fn from(u: ovsdb::Uuid) -> Self {
        Target::Ref(Ref::new(u))
    }
}
impl<T> From<&str> for Target<T> {
    fn from(name: &str) -> Self {
        Target::Name(name.to_owned())
    }
}
impl<T> From<String> for Target<T> {
    fn from(name: String) -> Self {
        Target::Name(name)
    }
}

/// Drops empty sets and maps from an insert: the server's default is the same, and a server
/// whose schema lacks an optional column still accepts the row.
pub(crate) fn trim_empty(row: &mut Row) {
    let empty: Vec<String> = row
        .iter()
        .filter(|(_, d)| d.is_empty())
        .map(|(c, _)| c.to_owned())
        .collect();
    for c in empty {
        row.remove(&c);
    }
}

/// The parent link of a `C` under `parent`.
fn link<P: Table, C: ChildOf<P>>(parent: &Target<P>) -> ParentLink {
    ParentLink {
        table: P::TABLE,
        column: C::COLUMN,
        target: parent.row_target(),
    }
}

impl Plan {
    /// Inserts an encoded row; the caller checked the row and the parent.
    fn push_insert(
        &mut self,
        table: &'static str,
        mut row: Row,
        parent: Option<ParentLink>,
    ) -> Result<RowId, PlanError> {
        trim_empty(&mut row);
        let name = self.fresh_name(table);
        self.push(
            Change::Insert {
                table,
                name: name.clone(),
                row,
                parent,
            },
            "",
        )?;
        Ok(RowId::Named(name))
    }

    /// Inserts a row of a root table.
    ///
    /// # Errors
    /// [`PlanError::Encode`] when the row breaks the model's constraints.
    pub fn insert<T: Root>(&mut self, row: &T) -> Result<Ref<T>, PlanError> {
        let encoded = row.to_row()?;
        Ok(Ref::from_id(self.push_insert(T::TABLE, encoded, None)?))
    }

    /// Inserts a row of a non-root table into `parent`'s [`ChildOf::COLUMN`] (see the module
    /// docs of [`crate::plan`] for the one rule); a failure leaves the plan unchanged.
    ///
    /// # Errors
    /// [`PlanError::Encode`] for a row that breaks the model, [`PlanError::UnknownNamedRow`]
    /// for a parent another plan creates.
    pub fn insert_child<P: Table, C: ChildOf<P>>(
        &mut self,
        parent: impl Into<Target<P>>,
        row: &C,
    ) -> Result<Ref<C>, PlanError> {
        let encoded = row.to_row()?;
        let link = link::<P, C>(&parent.into());
        Ok(Ref::from_id(self.push_insert(
            C::TABLE,
            encoded,
            Some(link),
        )?))
    }

    /// Inserts a root row together with its children, for parents that need at least one
    /// child (a `Meter` needs a band): the parent's column is checked once the children are in.
    ///
    /// # Errors
    /// [`PlanError::Encode`] when a row, or the number of children, breaks the model.
    pub fn insert_with_children<P: Root, C: ChildOf<P>>(
        &mut self,
        parent: &P,
        children: &[C],
    ) -> Result<(Ref<P>, Vec<Ref<C>>), PlanError> {
        let (row, encoded) = encode_with_children(parent, children)?;
        let parent_ref: Ref<P> = Ref::from_id(self.push_insert(P::TABLE, row, None)?);
        let refs = self.push_children(&parent_ref, encoded)?;
        Ok((parent_ref, refs))
    }

    /// Inserts a non-root row under `grandparent` together with its own children (an OVS
    /// `Port` needs an `Interface`).
    ///
    /// # Errors
    /// As [`Plan::insert_child`] and [`Plan::insert_with_children`].
    pub fn insert_child_with_children<G: Table, P: ChildOf<G>, C: ChildOf<P>>(
        &mut self,
        grandparent: impl Into<Target<G>>,
        parent: &P,
        children: &[C],
    ) -> Result<(Ref<P>, Vec<Ref<C>>), PlanError> {
        let (row, encoded) = encode_with_children(parent, children)?;
        let link = link::<G, P>(&grandparent.into());
        let parent_ref: Ref<P> = Ref::from_id(self.push_insert(P::TABLE, row, Some(link))?);
        let refs = self.push_children(&parent_ref, encoded)?;
        Ok((parent_ref, refs))
    }

    fn push_children<P: Table, C: ChildOf<P>>(
        &mut self,
        parent: &Ref<P>,
        rows: Vec<Row>,
    ) -> Result<Vec<Ref<C>>, PlanError> {
        let target = Target::Ref(parent.clone());
        rows.into_iter()
            .map(|r| {
                let link = link::<P, C>(&target);
                Ok(Ref::from_id(self.push_insert(C::TABLE, r, Some(link))?))
            })
            .collect()
    }

    /// Inserts `row` unless a row of its table with its `name` exists, as ovsdbapp's
    /// `may_exist`: the existing row is returned as it is, and the transaction fails (changing
    /// nothing) if it is gone by then; a new row is inserted with a guard that fails the
    /// transaction if another client created one with the same name in the meantime.
    ///
    /// # Errors
    /// [`PlanError::Several`] when `observed` holds several rows with the name;
    /// [`PlanError::Encode`] for a row that breaks the model (or a table without `name`).
    pub fn insert_if_absent<T: Root>(
        &mut self,
        observed: &Typed<'_>,
        row: &T,
    ) -> Result<Ref<T>, PlanError> {
        let name = name_of(row)?;
        match self.existing::<T>(observed, &name)? {
            Some(found) => Ok(found),
            None => {
                self.expect::<T>(RowTarget::Name(name), false)?;
                self.insert(row)
            }
        }
    }

    /// [`Plan::insert_if_absent`] for a row of a non-root table, inserted into `parent`.
    ///
    /// # Errors
    /// As [`Plan::insert_if_absent`] and [`Plan::insert_child`].
    pub fn insert_child_if_absent<P: Table, C: ChildOf<P>>(
        &mut self,
        observed: &Typed<'_>,
        parent: impl Into<Target<P>>,
        row: &C,
    ) -> Result<Ref<C>, PlanError> {
        let name = name_of(row)?;
        match self.existing::<C>(observed, &name)? {
            Some(found) => Ok(found),
            None => {
                self.expect::<C>(RowTarget::Name(name), false)?;
                self.insert_child(parent, row)
            }
        }
    }

    /// The one row of `T` named `name` in `observed` (guarded to still exist), if any.
    fn existing<T: Table>(
        &mut self,
        observed: &Typed<'_>,
        name: &str,
    ) -> Result<Option<Ref<T>>, PlanError> {
        let found = observed.all_by_name::<T>(name);
        match found.as_slice() {
            [] => Ok(None),
            [one] => {
                self.expect::<T>(RowTarget::Uuid(one.uuid()), true)?;
                Ok(Some(Ref::new(one.uuid())))
            }
            many => Err(PlanError::Several {
                table: T::TABLE,
                name: name.to_owned(),
                count: many.len() as u64,
                what: "insert if absent".to_owned(),
            }),
        }
    }

    fn expect<T: Table>(&mut self, target: RowTarget, present: bool) -> Result<(), PlanError> {
        self.push(
            Change::Expect {
                table: T::TABLE,
                target,
                present,
            },
            "",
        )
    }

    /// Takes `child` out of `parent`; the server then deletes the row if nothing else refers
    /// to it.
    ///
    /// # Errors
    /// [`PlanError::UnknownNamedRow`] for a parent another plan creates.
    pub fn remove_child<P: Table, C: ChildOf<P>>(
        &mut self,
        parent: impl Into<Target<P>>,
        child: &Ref<C>,
    ) -> Result<(), PlanError> {
        let m = Mutation::delete(C::COLUMN, Datum::set([child.id().to_atom()]));
        self.mutate(parent, m)
    }

    /// Sets `columns` of the target rows to their values in `row` (checked against the model).
    ///
    /// # Errors
    /// [`PlanError::Encode`] for a value or a column the model refuses;
    /// [`PlanError::UnknownNamedRow`] for a row another plan creates.
    pub fn update<T: Table>(
        &mut self,
        target: impl Into<Target<T>>,
        row: &T,
        columns: &[&str],
    ) -> Result<(), PlanError> {
        let values = row.to_row_columns(columns)?;
        self.push(
            Change::Update {
                table: T::TABLE,
                target: target.into().row_target(),
                row: values,
            },
            "",
        )
    }

    /// Deletes the target rows: rows of a root table with `delete` (weak references to them
    /// disappear; strong ones make the server refuse the transaction), a row of a non-root
    /// table by taking it out of every parent column that can hold it.
    ///
    /// # Errors
    /// [`PlanError::UnknownNamedRow`] for a row another plan creates; building the plan fails
    /// with [`PlanError::ChildByName`] for a non-root row given by name.
    pub fn delete<T: Table>(&mut self, target: impl Into<Target<T>>) -> Result<(), PlanError> {
        self.push(
            Change::Delete {
                table: T::TABLE,
                target: target.into().row_target(),
            },
            "",
        )
    }

    /// Deletes the row of `T` named `name`, found in `observed` (for a row of a non-root table,
    /// which is deleted through its parents by UUID: `ovn-nbctl lsp-del NAME` in one call).
    /// Returns whether there was such a row (nothing is added when there was not).
    ///
    /// # Errors
    /// [`PlanError::Several`] when several rows have the name.
    pub fn delete_named<T: Table>(
        &mut self,
        observed: &Typed<'_>,
        name: &str,
    ) -> Result<bool, PlanError> {
        let found = observed.all_by_name::<T>(name);
        match found.as_slice() {
            [] => Ok(false),
            [one] => self.delete::<T>(one.uuid()).map(|()| true),
            many => Err(PlanError::Several {
                table: T::TABLE,
                name: name.to_owned(),
                count: many.len() as u64,
                what: "delete by name".to_owned(),
            }),
        }
    }

    /// Applies a raw mutation to the target rows (checked against the server's schema by
    /// [`Plan::validated`]).
    ///
    /// # Errors
    /// [`PlanError::UnknownNamedRow`] for a row another plan creates.
    pub fn mutate<T: Table>(
        &mut self,
        target: impl Into<Target<T>>,
        mutation: Mutation,
    ) -> Result<(), PlanError> {
        self.push(
            Change::Mutate {
                table: T::TABLE,
                target: target.into().row_target(),
                mutations: vec![mutation],
            },
            "",
        )
    }

    /// Adds `atom` to the set column `column` of the target.
    pub(crate) fn add_reference<T: Table>(
        &mut self,
        target: impl Into<Target<T>>,
        column: &'static str,
        atom: Atom,
    ) -> Result<(), PlanError> {
        self.mutate(target, Mutation::insert(column, Datum::set([atom])))
    }
}

/// The `name` column of `row`.
fn name_of<T: Table>(row: &T) -> Result<String, PlanError> {
    let r = row.to_row_columns(&["name"])?;
    Ok(r.get("name")
        .and_then(Datum::as_atom)
        .and_then(Atom::as_str)
        .unwrap_or_default()
        .to_owned())
}

/// `parent` without its `C::COLUMN` (filled by the children's references) and the children,
/// encoded, after checking that their number fits the column.
fn encode_with_children<P: Table, C: ChildOf<P>>(
    parent: &P,
    children: &[C],
) -> Result<(Row, Vec<Row>), PlanError> {
    let columns: Vec<&str> = P::COLUMNS
        .iter()
        .copied()
        .filter(|c| *c != C::COLUMN)
        .collect();
    let row = parent.to_row_columns(&columns)?;
    let encoded = children
        .iter()
        .map(Table::to_row)
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(col) = P::table_schema().columns.get(C::COLUMN) {
        col.type_
            .check_size(children.len() as u64, col.type_.min, col.type_.max)
            .map_err(|source| EncodeError::Constraint {
                table: P::TABLE,
                column: C::COLUMN,
                source,
            })?;
    }
    Ok((row, encoded))
}
