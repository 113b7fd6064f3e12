//! The topology layer: typed changes to OVN_Northbound (or Open_vSwitch) collected in a
//! [`ChangeSet`] that becomes ONE [`ovsdb::Transaction`].
//!
//! Rows of non-root tables (ports, ACLs, routes, NAT, ...) are garbage-collected by the server
//! unless another row refers to them in the same transaction. The change set makes forgetting
//! that impossible: a non-root row can only be created with [`ChangeSet::insert_child`], which
//! takes its parent (a [`Target`]) and emits the parent's reference in the same change set:
//! merged into the parent's own `insert` when the parent is new, as a `mutate` of the parent
//! otherwise. Root rows use [`ChangeSet::insert`], which only accepts [`Root`] tables. Rows
//! that need children to be valid (a `Meter` and its bands, an OVS `Port` and its interfaces)
//! are created with them ([`ChangeSet::insert_with_children`],
//! [`ChangeSet::insert_child_with_children`]). Which tables are roots and which parent column
//! holds each child is listed in [`ROOT_TABLES`] and [`CHILD_LINKS`], checked against the
//! schemas by a test.
//!
//! Updates ([`ChangeSet::update`] writes only the chosen columns), deletes of roots
//! ([`ChangeSet::delete`]) and removal of children from their parent
//! ([`ChangeSet::remove_child`], after which the server collects them) work on any table; the
//! row constructors (`LogicalSwitch::new(..).with_subnet(..)`, `Acl::new`, `Nat::snat`, ...)
//! and the wiring helpers (router to switch, load balancers, port groups, DHCP, DNS, HA
//! groups) cover the common cases.
//!
//! Every row is checked against the model when it is added ([`ovsdb::Table::to_row`] is
//! strict), and the whole transaction against the server's schema by [`ChangeSet::build`].
//!
//! ```
//! use ovn_model::nb::{LogicalRouter, LogicalRouterPort, LogicalSwitch, LogicalSwitchPort};
//! use ovn_model::topology::ChangeSet;
//! use ovn_model::{LspAddress, MacAddr};
//!
//! let mut cs = ChangeSet::nb();
//! let sw = cs.insert(&LogicalSwitch::new("sw0").with_subnet("10.0.0.0/24".parse()?))?;
//! let mac: MacAddr = "0a:00:00:00:00:01".parse()?;
//! cs.insert_child(&sw, &LogicalSwitchPort::new("pod1")
//!     .with_address(LspAddress::mac(mac, ["10.0.0.5".parse()?])))?;
//! let r = cs.insert(&LogicalRouter::new("r0"))?;
//! cs.connect_router_to_switch(&r, &sw, &LogicalRouterPort::new(
//!     "r0-sw0", "0a:00:00:00:00:ff".parse()?, ["10.0.0.1/24".parse()?]))?;
//! let plan = cs.build(ovn_model::nb::schema())?;
//! // Five inserts (switch, port, router, router port, its switch-side peer), and nothing else:
//! // every child's reference is inside its new parent's insert.
//! let json = serde_json::to_string(plan.transaction())?;
//! assert!(json.contains(r#""ports":["named-uuid","#));
//! assert_eq!(plan.transaction().len(), 5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod links;
mod rows;
mod wiring;

use std::collections::HashMap;

use ovsdb::table::{EncodeError, Ref};
use ovsdb::{
    Atom, Condition, DatabaseSchema, Datum, Delete, Function, Insert, InsertHandle, Mutate,
    Mutation, NamedUuid, Operation, Row, Table, TransactOutcome, Transaction, Update, Uuid,
    ValidationError,
};

use crate::nb;

pub use links::{CHILD_LINKS, ROOT_TABLES};
pub use wiring::HasLoadBalancers;

/// Why a change could not be added or the change set could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TopologyError {
    /// A row breaks the model's constraints (names the table and column).
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The transaction does not fit the server's schema.
    #[error("the change set does not fit the server's schema")]
    Validation(#[source] ValidationError),
    /// A reference to a row created by another change set.
    #[error("table {table}: row @{name} was not created in this change set")]
    UnknownNamedRow {
        /// Table.
        table: &'static str,
        /// The named UUID.
        name: String,
    },
    /// A row of a non-root table with nothing referring to it (a bug in this crate).
    #[error("table {table}: row @{name} is not referenced by any row of the change set")]
    Orphan {
        /// Table.
        table: String,
        /// The named UUID.
        name: String,
    },
}

/// Tables whose rows live on their own (schema `isRoot`); only these can be created with
/// [`ChangeSet::insert`].
pub trait Root: Table {}

/// A non-root table `Self` whose rows are kept alive by the column `COLUMN` of a parent `P`.
pub trait ChildOf<P: Table>: Table {
    /// The parent's column that holds the references.
    const COLUMN: &'static str;
}

/// Which existing or new row a change applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<T> {
    /// By reference: a row read from the server, or one created in this change set.
    Ref(Ref<T>),
    /// Every row whose `name` column equals this.
    Name(String),
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
impl<T> From<Uuid> for Target<T> {
    fn from(u: Uuid) -> Self {
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

/// A pending operation; inserts stay editable until [`ChangeSet::build`].
#[derive(Debug, Clone)]
enum Pending {
    Insert {
        table: &'static str,
        root: bool,
        name: NamedUuid,
        row: Row,
    },
    Op(Operation),
}

/// Typed changes to one database, built into one transaction.
#[derive(Debug, Clone)]
#[must_use]
pub struct ChangeSet {
    db: &'static str,
    pending: Vec<Pending>,
    names: HashMap<NamedUuid, usize>,
    next: u64,
}

impl ChangeSet {
    /// An empty change set for database `db`.
    pub fn new(db: &'static str) -> Self {
        ChangeSet {
            db,
            pending: Vec::new(),
            names: HashMap::new(),
            next: 0,
        }
    }

    /// An empty change set for OVN_Northbound.
    pub fn nb() -> Self {
        Self::new(nb::DATABASE)
    }

    /// Whether nothing was added.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    fn fresh_name(&mut self, table: &str) -> NamedUuid {
        self.next += 1;
        let prefix: String = table
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        NamedUuid::numbered(&format!("new_{prefix}_"), self.next)
    }

    fn push_insert<T: Table>(&mut self, row: &T) -> Result<Ref<T>, TopologyError> {
        let encoded = row.to_row()?;
        Ok(self.push_encoded(encoded))
    }

    /// Creates a row of a root table.
    pub fn insert<T: Root>(&mut self, row: &T) -> Result<Ref<T>, TopologyError> {
        self.push_insert(row)
    }

    /// Creates a root row together with its children, for parents that need at least one
    /// child (a `Meter` needs a band): the parent's column is checked once the children are in.
    pub fn insert_with_children<P: Root, C: ChildOf<P>>(
        &mut self,
        parent: &P,
        children: &[C],
    ) -> Result<(Ref<P>, Vec<Ref<C>>), TopologyError> {
        let row = encode_with_children(parent, children)?;
        let parent_ref = self.push_encoded::<P>(row);
        let refs = self.insert_children(&parent_ref, children)?;
        Ok((parent_ref, refs))
    }

    /// Creates a non-root row under `grandparent` together with its own children (an OVS `Port`
    /// needs an `Interface`).
    pub fn insert_child_with_children<G: Table, P: ChildOf<G>, C: ChildOf<P>>(
        &mut self,
        grandparent: impl Into<Target<G>>,
        parent: &P,
        children: &[C],
    ) -> Result<(Ref<P>, Vec<Ref<C>>), TopologyError> {
        let grandparent = grandparent.into();
        let _ = self.condition_or_insert(&grandparent)?;
        let row = encode_with_children(parent, children)?;
        let parent_ref = self.push_encoded::<P>(row);
        self.add_reference(&grandparent, P::COLUMN, parent_ref.id().to_atom())?;
        let refs = self.insert_children(&parent_ref, children)?;
        Ok((parent_ref, refs))
    }

    fn insert_children<P: Table, C: ChildOf<P>>(
        &mut self,
        parent: &Ref<P>,
        children: &[C],
    ) -> Result<Vec<Ref<C>>, TopologyError> {
        children
            .iter()
            .map(|c| self.insert_child(parent, c))
            .collect()
    }

    fn push_encoded<T: Table>(&mut self, mut row: Row) -> Ref<T> {
        trim_empty(&mut row);
        let name = self.fresh_name(T::TABLE);
        self.names.insert(name.clone(), self.pending.len());
        self.pending.push(Pending::Insert {
            table: T::TABLE,
            root: T::IS_ROOT,
            name: name.clone(),
            row,
        });
        Ref::named(name)
    }

    /// Creates a row of a non-root table and adds it to `parent`'s column in the same change
    /// set, so the server keeps it.
    pub fn insert_child<P: Table, C: ChildOf<P>>(
        &mut self,
        parent: impl Into<Target<P>>,
        row: &C,
    ) -> Result<Ref<C>, TopologyError> {
        let parent = parent.into();
        // Check the parent before adding anything, so a failure leaves the set unchanged.
        let _ = self.condition_or_insert(&parent)?;
        let child = self.push_insert(row)?;
        self.add_reference(&parent, C::COLUMN, child.id().to_atom())?;
        Ok(child)
    }

    /// Removes a child from its parent; the server then deletes the unreferenced row.
    pub fn remove_child<P: Table, C: ChildOf<P>>(
        &mut self,
        parent: impl Into<Target<P>>,
        child: &Ref<C>,
    ) -> Result<(), TopologyError> {
        let parent = parent.into();
        self.mutate(
            &parent,
            Mutation::delete(C::COLUMN, Datum::set([child.id().to_atom()])),
        )
    }

    /// Sets `columns` of the target rows to their values in `row` (checked against the model).
    pub fn update<T: Table>(
        &mut self,
        target: impl Into<Target<T>>,
        row: &T,
        columns: &[&str],
    ) -> Result<(), TopologyError> {
        let target = target.into();
        let values = row.to_row_columns(columns)?;
        match self.condition_or_insert(&target)? {
            Err(i) => {
                if let Some(Pending::Insert { row, .. }) = self.pending.get_mut(i) {
                    for (c, d) in values.iter() {
                        row.insert(c, d.clone());
                    }
                }
            }
            Ok(cond) => {
                let mut u = Update::new(T::TABLE, values);
                u.conditions.push(cond);
                self.pending.push(Pending::Op(Operation::Update(u)));
            }
        }
        Ok(())
    }

    /// Deletes rows of a root table. Weak references to them disappear with them; strong ones
    /// make the server refuse the transaction.
    pub fn delete<T: Root>(&mut self, target: impl Into<Target<T>>) -> Result<(), TopologyError> {
        let target = target.into();
        let cond = self.existing_condition(&target)?;
        self.pending.push(Pending::Op(Operation::Delete(
            Delete::new(T::TABLE).filter(cond),
        )));
        Ok(())
    }

    /// Applies a raw mutation to the target rows (checked against the server's schema at
    /// [`ChangeSet::build`]).
    pub fn mutate<T: Table>(
        &mut self,
        target: &Target<T>,
        mutation: Mutation,
    ) -> Result<(), TopologyError> {
        let cond = self.existing_condition(target)?;
        let m = Mutate::new(T::TABLE).filter(cond).mutation(mutation);
        self.pending.push(Pending::Op(Operation::Mutate(m)));
        Ok(())
    }

    /// Adds `atom` to the set (or `(key, value)` pairs to the map) `column` of the target.
    fn add_reference<T: Table>(
        &mut self,
        target: &Target<T>,
        column: &'static str,
        atom: Atom,
    ) -> Result<(), TopologyError> {
        match self.condition_or_insert(target)? {
            Err(i) => {
                if let Some(Pending::Insert { row, .. }) = self.pending.get_mut(i) {
                    let mut set = match row.get(column) {
                        Some(Datum::Set(s)) => s.clone(),
                        _ => ovsdb::Set::new(),
                    };
                    set.insert(atom);
                    row.insert(column, Datum::Set(set));
                }
                Ok(())
            }
            Ok(cond) => {
                let m = Mutate::new(T::TABLE)
                    .filter(cond)
                    .mutation(Mutation::insert(column, Datum::set([atom])));
                self.pending.push(Pending::Op(Operation::Mutate(m)));
                Ok(())
            }
        }
    }

    /// The `where` clause selecting the target, or `Err(index)` of its pending insert.
    fn condition_or_insert<T: Table>(
        &self,
        target: &Target<T>,
    ) -> Result<Result<Condition, usize>, TopologyError> {
        match target {
            Target::Name(n) => Ok(Ok(Condition::eq("name", n.as_str()))),
            Target::Ref(r) => match r.uuid() {
                Some(u) => Ok(Ok(Condition::uuid(u))),
                None => {
                    let ovsdb::table::RowId::Named(n) = r.id() else {
                        unreachable!("a reference without a UUID is named")
                    };
                    match self.names.get(n) {
                        Some(&i) => Ok(Err(i)),
                        None => Err(TopologyError::UnknownNamedRow {
                            table: T::TABLE,
                            name: n.to_string(),
                        }),
                    }
                }
            },
        }
    }

    /// The `where` clause for a row that may be new in this change set (by named UUID).
    fn existing_condition<T: Table>(&self, target: &Target<T>) -> Result<Condition, TopologyError> {
        match self.condition_or_insert(target)? {
            Ok(c) => Ok(c),
            Err(i) => match &self.pending[i] {
                Pending::Insert { name, .. } => Ok(Condition::new(
                    "_uuid",
                    Function::Eq,
                    Atom::NamedUuid(name.clone()),
                )),
                Pending::Op(_) => unreachable!("names point at inserts"),
            },
        }
    }

    /// The transaction, checked against the server's schema (`get_schema`).
    pub fn build(self, server: &DatabaseSchema) -> Result<Plan, TopologyError> {
        let plan = self.build_unchecked()?;
        plan.txn
            .validate(server)
            .map_err(TopologyError::Validation)?;
        Ok(plan)
    }

    /// The transaction without the server check (the model's checks were made as rows were
    /// added).
    pub fn build_unchecked(self) -> Result<Plan, TopologyError> {
        let mut referenced = std::collections::HashSet::new();
        for p in &self.pending {
            let datums: Vec<&Datum> = match p {
                Pending::Insert { row, .. } => row.iter().map(|(_, d)| d).collect(),
                Pending::Op(Operation::Mutate(m)) => m.mutations.iter().map(|m| &m.value).collect(),
                Pending::Op(Operation::Update(u)) => u.row.iter().map(|(_, d)| d).collect(),
                Pending::Op(_) => Vec::new(),
            };
            for d in datums {
                for a in d.atoms() {
                    if let Atom::NamedUuid(n) = a {
                        referenced.insert(n.clone());
                    }
                }
            }
        }
        let mut txn = Transaction::with_capacity(self.db, self.pending.len());
        let mut created = HashMap::new();
        for p in self.pending {
            match p {
                Pending::Insert {
                    table,
                    root,
                    name,
                    row,
                } => {
                    if !root && !referenced.contains(&name) {
                        return Err(TopologyError::Orphan {
                            table: table.to_owned(),
                            name: name.to_string(),
                        });
                    }
                    let h = txn.push(Insert::new(table, row).uuid_name(name.clone()));
                    created.insert(name, h);
                }
                Pending::Op(op) => {
                    txn.push(op);
                }
            }
        }
        Ok(Plan { txn, created })
    }
}

/// `parent` without its `C::COLUMN` (filled by the children's references), after checking the
/// children and that their number fits the column.
fn encode_with_children<P: Table, C: ChildOf<P>>(
    parent: &P,
    children: &[C],
) -> Result<Row, TopologyError> {
    let columns: Vec<&str> = P::COLUMNS
        .iter()
        .copied()
        .filter(|c| *c != C::COLUMN)
        .collect();
    let row = parent.to_row_columns(&columns)?;
    for child in children {
        child.to_row()?;
    }
    if let Some(col) = P::table_schema().columns.get(C::COLUMN) {
        col.type_
            .check_size(children.len() as u64, col.type_.min, col.type_.max)
            .map_err(|source| EncodeError::Constraint {
                table: P::TABLE,
                column: C::COLUMN,
                source,
            })?;
    }
    Ok(row)
}

/// Drops empty sets and maps from an insert: the server's default is the same, and a server
/// whose schema lacks an optional column still accepts the row.
fn trim_empty(row: &mut Row) {
    let empty: Vec<String> = row
        .iter()
        .filter(|(_, d)| d.is_empty())
        .map(|(c, _)| c.to_owned())
        .collect();
    for c in empty {
        row.remove(&c);
    }
}

/// A built change set: the transaction and the handles of the rows it creates.
#[derive(Debug, Clone)]
#[must_use]
pub struct Plan {
    txn: Transaction,
    created: HashMap<NamedUuid, InsertHandle>,
}

impl Plan {
    /// The transaction to send.
    pub fn transaction(&self) -> &Transaction {
        &self.txn
    }

    /// The transaction, by value.
    pub fn into_transaction(self) -> Transaction {
        self.txn
    }

    /// The UUID the server gave a row created by this plan (or the UUID of an existing row).
    #[must_use]
    pub fn uuid<T>(&self, outcome: &TransactOutcome, r: &Ref<T>) -> Option<Uuid> {
        match r.id() {
            ovsdb::table::RowId::Uuid(u) => Some(*u),
            ovsdb::table::RowId::Named(n) => outcome.uuid(self.created.get(n)?),
        }
    }
}

#[cfg(test)]
mod tests;
