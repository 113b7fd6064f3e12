//! The reconcile shape every planner of the stack has: what it **wants** ([`Want`]: a row with
//! its identity [`Key`], its parent, and why), what it **owns** ([`OwnedRow`]: the rows whose
//! owner tags are in its [`Scope`](crate::owner::Scope), read from a snapshot with
//! [`Typed::owned`](crate::snapshot::Typed::owned) or from typed rows), and [`diff`] between the
//! two, which adds to a [`Plan`]:
//!
//! - a wanted row no owned row has the key of: an insert (a child into its parent, by the
//!   plan's one rule);
//! - a wanted row an owned row has the key of: an update of the columns that differ (compared
//!   as values of their column types; a column the observed row does not have is an error,
//!   never "equal"), nothing when none does;
//!
//!   A wanted row manages every column of its table except the references it leaves empty:
//!   those are other writers' links (a switch's `ports` and `qos_rules`, filled by the inserts
//!   of its children; the `load_balancer` a Services planner attaches), which an update must
//!   not reset. A reference column the row sets is managed like any other, and
//!   [`Want::managing`] makes an empty one managed too (to drop a reference the planner itself
//!   made); [`Want::ignoring`] leaves any column to others;
//! - an owned row nothing wants (or a second one with a key already matched): a delete.
//!
//! Planning the state a plan leads to gives an empty plan; rows outside the scope (another
//! object's, another component's, a user's) are never touched. What the diff cannot know, a
//! planner adds to the same plan itself: references from rows it does not own (a port's `qos`),
//! options of shared rows.
//!
//! ```
//! use ovn_model::nb::{LogicalRouter, LogicalRouterStaticRoute};
//! use ovn_model::owner::{Component, Key, Object, Scope};
//! use ovn_model::plan::Plan;
//! use ovn_model::reconcile::{self, OwnedRow, Want};
//! use ovsdb::Uuid;
//!
//! let router = Uuid::from_u128(1);
//! let key = Key::new(Component::GATEWAY, Object::cluster(), "default-route");
//! let route = LogicalRouterStaticRoute::new("0.0.0.0/0".parse()?, "100.64.0.1".parse()?);
//! let want = Want::child::<LogicalRouter, _>(key.clone(), &route, router, "default route")?;
//!
//! // Nothing owned yet: one insert into the router.
//! let mut plan = Plan::nb();
//! reconcile::diff(&mut plan, vec![want.clone()], Vec::new())?;
//! assert_eq!(plan.steps().len(), 1);
//!
//! // Owned and equal: nothing to do.
//! let mut observed = route.clone();
//! observed.uuid = Uuid::from_u128(2);
//! observed.external_ids = key.tags();
//! let owned: Vec<OwnedRow> = OwnedRow::from_typed(&observed).into_iter().collect();
//! let mut plan = Plan::nb();
//! reconcile::diff(&mut plan, vec![want], owned.clone())?;
//! assert!(plan.is_empty());
//!
//! // Owned and no longer wanted: deleted (out of every parent column that can hold it).
//! let mut plan = Plan::nb();
//! reconcile::diff(&mut plan, Vec::new(), owned)?;
//! assert_eq!(plan.explain()[0], format!(
//!     "gateway cluster default-route: no longer wanted: delete Logical_Router_Static_Route {}",
//!     Uuid::from_u128(2)));
//! # let _ = Scope::component(Component::GATEWAY);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, HashSet};

use ovsdb::replica::RowView;
use ovsdb::{Atom, Datum, Row, Table, Uuid};

use crate::owner::Key;
use crate::plan::{Change, ParentLink, Plan, PlanError, RowTarget, Target};
use crate::topology::{ChildOf, Root};

/// A row a planner wants: its table, identity, encoded columns (owner tags included), parent
/// (rows of non-root tables) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Want {
    table: &'static str,
    key: Key,
    row: Row,
    parent: Option<ParentLink>,
    why: String,
    ignored: Vec<&'static str>,
}

/// The reference columns of `T` that `row` leaves empty: other writers' links.
fn empty_references<T: Table>(row: &Row) -> Vec<&'static str> {
    let schema = T::table_schema();
    T::COLUMNS
        .iter()
        .copied()
        .filter(|c| {
            schema.columns.get(*c).is_some_and(|col| {
                col.type_.key.ref_table.is_some()
                    || col
                        .type_
                        .value
                        .as_ref()
                        .is_some_and(|v| v.ref_table.is_some())
            })
        })
        .filter(|c| row.get(c).is_none_or(Datum::is_empty))
        .collect()
}

impl Want {
    /// A row of a root table.
    ///
    /// # Errors
    /// [`PlanError::Encode`] for a row that breaks the model; [`PlanError::NoExternalIds`]
    /// for a table that cannot carry the owner tags.
    pub fn root<T: Root>(key: Key, row: &T, why: impl Into<String>) -> Result<Self, PlanError> {
        let row = encode(&key, row)?;
        Ok(Want {
            table: T::TABLE,
            ignored: empty_references::<T>(&row),
            row,
            key,
            parent: None,
            why: why.into(),
        })
    }

    /// A row of a non-root table, inserted (when new) into `parent`.
    ///
    /// # Errors
    /// As [`Want::root`].
    pub fn child<P: Table, C: ChildOf<P>>(
        key: Key,
        row: &C,
        parent: impl Into<Target<P>>,
        why: impl Into<String>,
    ) -> Result<Self, PlanError> {
        let row = encode(&key, row)?;
        Ok(Want {
            table: C::TABLE,
            ignored: empty_references::<C>(&row),
            row,
            key,
            parent: Some(ParentLink {
                table: P::TABLE,
                column: C::COLUMN,
                target: parent.into().row_target(),
            }),
            why: why.into(),
        })
    }

    /// Leaves `columns` to others (a daemon's status column, a value the planner does not
    /// manage): they are neither compared nor written.
    #[must_use]
    pub fn ignoring(mut self, columns: &[&'static str]) -> Self {
        self.ignored.extend_from_slice(columns);
        self
    }

    /// Manages `columns` even where the row leaves them empty references: an update resets
    /// them (a planner dropping a reference it made itself).
    #[must_use]
    pub fn managing(mut self, columns: &[&str]) -> Self {
        self.ignored.retain(|c| !columns.contains(c));
        self
    }

    /// The table.
    #[must_use]
    pub fn table(&self) -> &'static str {
        self.table
    }

    /// The identity.
    #[must_use]
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The encoded columns, owner tags included.
    #[must_use]
    pub fn row(&self) -> &Row {
        &self.row
    }

    /// Why the planner wants the row.
    #[must_use]
    pub fn why(&self) -> &str {
        &self.why
    }

    /// The row's `external_ids`.
    #[must_use]
    pub fn external_ids(&self) -> BTreeMap<String, String> {
        string_map(self.row.get("external_ids"))
    }

    fn managed(&self) -> impl Iterator<Item = (&str, &Datum)> {
        self.row.iter().filter(|(c, _)| !self.ignored.contains(c))
    }
}

/// `row` encoded strictly, with `key`'s tags in its `external_ids`.
fn encode<T: Table>(key: &Key, row: &T) -> Result<Row, PlanError> {
    if !T::COLUMNS.contains(&"external_ids") {
        return Err(PlanError::NoExternalIds { table: T::TABLE });
    }
    let mut encoded = row.to_row()?;
    let mut ids = string_map(encoded.get("external_ids"));
    ids.extend(key.tags());
    encoded.insert(
        "external_ids",
        Datum::map(ids.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    );
    Ok(encoded)
}

/// The string map a datum holds (empty for anything else).
fn string_map(d: Option<&Datum>) -> BTreeMap<String, String> {
    d.and_then(Datum::as_map)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// A row some component owns, as observed.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedRow {
    /// The table.
    pub table: &'static str,
    /// The row's UUID.
    pub uuid: Uuid,
    /// Its identity, from its owner tags.
    pub key: Key,
    /// Every column the database has for it (`None` for a typed row the model cannot encode,
    /// such as one holding an enum value of a newer schema: every wanted column then counts as
    /// different and is rewritten).
    pub row: Option<Row>,
}

impl OwnedRow {
    /// The owned row a typed row is, if its tags say it is owned.
    #[must_use]
    pub fn from_typed<T: Table>(row: &T) -> Option<Self> {
        let ids = row.to_row_columns(&["external_ids"]).ok()?;
        let key = Key::from_tags(&string_map(ids.get("external_ids")))?;
        Some(OwnedRow {
            table: T::TABLE,
            uuid: row.uuid(),
            key,
            row: row.to_row().ok(),
        })
    }

    /// The owned rows among typed rows.
    #[must_use]
    pub fn from_rows<T: Table>(rows: &[T]) -> Vec<Self> {
        rows.iter().filter_map(Self::from_typed).collect()
    }

    /// The owned row a snapshot's row is, if its tags say it is owned.
    #[must_use]
    pub fn from_view(table: &'static str, view: RowView<'_>) -> Option<Self> {
        let key = Key::from_tags(&string_map(view.get("external_ids")))?;
        let mut row = view.to_row();
        row.remove("_uuid");
        Some(OwnedRow {
            table,
            uuid: view.uuid(),
            key,
            row: Some(row),
        })
    }

    /// The row's `external_ids`.
    #[must_use]
    pub fn external_ids(&self) -> BTreeMap<String, String> {
        string_map(self.row.as_ref().and_then(|r| r.get("external_ids")))
    }
}

/// Where each wanted row is after a [`diff`]: the owned row it matched, or its named insert.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved {
    rows: BTreeMap<(&'static str, Key), RowTarget>,
}

impl Resolved {
    /// The row of `table` with `key`: a UUID for a row that exists, a named UUID for one the
    /// plan inserts (refer to it from other rows of the same plan).
    #[must_use]
    pub fn target(&self, table: &str, key: &Key) -> Option<&RowTarget> {
        self.rows
            .iter()
            .find(|((t, k), _)| *t == table && k == key)
            .map(|(_, r)| r)
    }

    /// The atom that refers to the row of `table` with `key`.
    #[must_use]
    pub fn atom(&self, table: &str, key: &Key) -> Option<Atom> {
        self.target(table, key).and_then(RowTarget::to_atom)
    }
}

/// Adds to `plan` what turns `owned` into `wanted` (see the module docs), and says where each
/// wanted row is.
///
/// `owned` must hold exactly the rows of the planner's scope: any of them not wanted is
/// deleted.
///
/// # Errors
/// [`PlanError::DuplicateKey`] when two wanted rows share a table and key;
/// [`PlanError::UnknownColumn`] when an observed row lacks a wanted column.
pub fn diff(
    plan: &mut Plan,
    wanted: Vec<Want>,
    owned: Vec<OwnedRow>,
) -> Result<Resolved, PlanError> {
    let mut resolved = Resolved::default();
    let mut kept: HashSet<Uuid> = HashSet::new();
    for w in wanted {
        let slot = (w.table, w.key.clone());
        if resolved.rows.contains_key(&slot) {
            return Err(PlanError::DuplicateKey {
                table: w.table,
                key: w.key.to_string(),
            });
        }
        let existing = owned
            .iter()
            .find(|o| o.table == w.table && o.key == w.key && !kept.contains(&o.uuid));
        let target = match existing {
            Some(o) => {
                kept.insert(o.uuid);
                let changed = changed_columns(&w, o)?;
                if !changed.is_empty() {
                    plan.push(
                        Change::Update {
                            table: w.table,
                            target: RowTarget::Uuid(o.uuid),
                            row: changed,
                        },
                        w.why.clone(),
                    )?;
                }
                RowTarget::Uuid(o.uuid)
            }
            None => {
                let mut row: Row = w
                    .managed()
                    .map(|(c, d)| (c.to_owned(), d.clone()))
                    .collect();
                crate::plan::trim_empty(&mut row);
                let name = plan.fresh_name(w.table);
                plan.push(
                    Change::Insert {
                        table: w.table,
                        name: name.clone(),
                        row,
                        parent: w.parent.clone(),
                    },
                    w.why.clone(),
                )?;
                RowTarget::Named(name)
            }
        };
        resolved.rows.insert(slot, target);
    }
    for o in owned.iter().filter(|o| !kept.contains(&o.uuid)) {
        plan.push(
            Change::Delete {
                table: o.table,
                target: RowTarget::Uuid(o.uuid),
            },
            format!("{}: no longer wanted", o.key),
        )?;
    }
    Ok(resolved)
}

/// The wanted columns whose value the owned row does not hold.
fn changed_columns(w: &Want, o: &OwnedRow) -> Result<Row, PlanError> {
    let mut changed = Row::new();
    for (column, want) in w.managed() {
        let same = match &o.row {
            None => false,
            Some(row) => {
                let have = row.get(column).ok_or_else(|| PlanError::UnknownColumn {
                    table: w.table,
                    uuid: o.uuid,
                    key: o.key.to_string(),
                    column: column.to_owned(),
                })?;
                // An empty column reads back as an empty set whatever its type.
                have == want || (have.is_empty() && want.is_empty())
            }
        };
        if !same {
            changed.insert(column, want.clone());
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests;
