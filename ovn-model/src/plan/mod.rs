//! [`Plan`]: the one change type of the stack. Every writer of OVN rows (the topology builders,
//! the `qos` and `gateway` planners, the controller's reconcilers) produces a `Plan`: steps, each
//! a [`Change`] to one row with why it is made, for one database. Plans of one reconcile step
//! [`merge`](Plan::merge) into one, and a plan becomes **one** transaction
//! ([`Plan::transaction`], or [`Plan::validated`] against the server's schema).
//!
//! # The one rule for new rows
//!
//! A row of a non-root table lives only while a parent refers to it, so a child is always
//! inserted with its parent ([`Change::Insert`]'s [`ParentLink`], from
//! [`ChildOf`](crate::topology::ChildOf)):
//!
//! - parent inserted by the same plan: the child's reference goes into the parent's own
//!   `insert` (no extra operation);
//! - parent that exists (by UUID or by name): a `mutate` of the parent adds the reference,
//!   and a `wait` right before the first step that needs the parent makes the server refuse
//!   the whole transaction when the parent is not there, instead of committing an orphan it
//!   would collect at once ([`PlanError::Missing`] names it). A parent inserted by an earlier
//!   step of the same transaction counts (a merged plan may name a switch its topology part
//!   creates).
//!
//! Rows of non-root tables are deleted by taking them out of every parent column that can hold
//! them (a `mutate ... where <column> includes <uuid>` per link), so the plan needs not know
//! the parents and the server collects the row.
//!
//! # What is checked, and when
//!
//! - Adding a change: every row against the model (strict encoding), every named reference
//!   against the plan's own inserts; a refused change leaves the plan as it was.
//! - [`Plan::transaction`]: no orphan; [`Plan::validated`] also the server's schema.
//! - [`Prepared::failure`] turns a refused transaction into the step that caused it, in words
//!   (a missing parent, the server's `error` and `details` for the operation that failed).
//! - [`Prepared::check`] reads the counts of the committed operations: a name that matched
//!   several rows ([`PlanError::Several`]) or a row changed by UUID that was gone
//!   ([`PlanError::Stale`]). OVSDB cannot refuse the first atomically (a `wait` sees rows as a
//!   set); resolve names through a snapshot ([`crate::snapshot::Typed::one_by_name`]) where that
//!   matters, and tables with a unique `name` index never match two rows.
//!
//! ```
//! use ovn_model::nb::{LogicalSwitch, LogicalSwitchPort};
//! use ovn_model::plan::Plan;
//!
//! let mut plan = Plan::nb();
//! plan.because("a port for pod web", |p| {
//!     p.insert_child::<LogicalSwitch, _>("ls1", &LogicalSwitchPort::new("web"))
//! })?;
//! let prepared = plan.validated(ovn_model::nb::schema())?;
//! // The wait that refuses the transaction if ls1 is gone, the insert, the parent's mutate.
//! let ops: Vec<String> = prepared.transaction().operations().iter()
//!     .map(|o| o.kind().to_string()).collect();
//! assert_eq!(ops, ["wait", "insert", "mutate"]);
//! assert_eq!(plan.explain()[0],
//!     r#"a port for pod web: insert Logical_Switch_Port @new_logicalswitchport_1 into Logical_Switch named "ls1" ports {"name":"web","type":""}"#);
//! # Ok::<(), ovn_model::plan::PlanError>(())
//! ```

mod build;
mod error;
#[cfg(feature = "client")]
mod send;
mod typed;

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use ovsdb::table::{Ref, RowId};
use ovsdb::{Atom, Datum, Map, Mutation, NamedUuid, Row, Set, Uuid};

pub use build::Prepared;
pub use error::PlanError;
pub use typed::Target;
pub(crate) use typed::trim_empty;

/// Which row a change is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RowTarget {
    /// A row read from the database.
    Uuid(Uuid),
    /// A row inserted by the same plan.
    Named(NamedUuid),
    /// Every row whose `name` column equals this.
    Name(String),
}

impl RowTarget {
    /// The target of `id` (a UUID or a named UUID).
    #[must_use]
    pub fn from_id(id: &RowId) -> Self {
        match id {
            RowId::Uuid(u) => RowTarget::Uuid(*u),
            RowId::Named(n) => RowTarget::Named(n.clone()),
        }
    }

    /// A typed reference to the row, for a UUID or a named UUID.
    #[must_use]
    pub fn to_ref<T>(&self) -> Option<Ref<T>> {
        match self {
            RowTarget::Uuid(u) => Some(Ref::new(*u)),
            RowTarget::Named(n) => Some(Ref::named(n.clone())),
            RowTarget::Name(_) => None,
        }
    }

    /// The atom that refers to the row, for a UUID or a named UUID.
    #[must_use]
    pub fn to_atom(&self) -> Option<Atom> {
        match self {
            RowTarget::Uuid(u) => Some(Atom::Uuid(*u)),
            RowTarget::Named(n) => Some(Atom::NamedUuid(n.clone())),
            RowTarget::Name(_) => None,
        }
    }
}

impl fmt::Display for RowTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowTarget::Uuid(u) => write!(f, "{u}"),
            RowTarget::Named(n) => write!(f, "@{n}"),
            RowTarget::Name(n) => write!(f, "named {n:?}"),
        }
    }
}

/// Where a new row of a non-root table hangs: the parent's table and column, and the parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentLink {
    /// The parent's table.
    pub table: &'static str,
    /// The parent's column that holds the reference.
    pub column: &'static str,
    /// The parent row.
    pub target: RowTarget,
}

/// One change to one row (or to the rows a name selects).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Change {
    /// Inserts `row`, named `name` for references in the same plan; a row of a non-root table
    /// goes into `parent` (see the module docs for the one rule).
    Insert {
        /// The table.
        table: &'static str,
        /// The row's name in the transaction.
        name: NamedUuid,
        /// Its columns (empty sets and maps left out: the server's default is the same).
        row: Row,
        /// The parent that keeps it alive (rows of non-root tables).
        parent: Option<ParentLink>,
    },
    /// Sets the columns in `row` of the target, in place.
    Update {
        /// The table.
        table: &'static str,
        /// The row.
        target: RowTarget,
        /// Only the columns that change.
        row: Row,
    },
    /// Applies mutations to the target.
    Mutate {
        /// The table.
        table: &'static str,
        /// The row.
        target: RowTarget,
        /// The mutations, in order.
        mutations: Vec<Mutation>,
    },
    /// Deletes the target: a row of a root table by `delete`, a row of a non-root table (by
    /// UUID) by taking it out of every parent column that can hold it.
    Delete {
        /// The table.
        table: &'static str,
        /// The row.
        target: RowTarget,
    },
    /// Makes the transaction fail, changing nothing, unless the target exists (`present`) or
    /// does not (`!present`) when it runs.
    Expect {
        /// The table.
        table: &'static str,
        /// The row.
        target: RowTarget,
        /// Whether the row must exist.
        present: bool,
    },
}

impl Change {
    /// The table the change is about.
    #[must_use]
    pub fn table(&self) -> &'static str {
        match self {
            Change::Insert { table, .. }
            | Change::Update { table, .. }
            | Change::Mutate { table, .. }
            | Change::Delete { table, .. }
            | Change::Expect { table, .. } => table,
        }
    }

    /// Every row target and named reference the change holds, for renaming.
    fn rename(&mut self, names: &HashMap<NamedUuid, NamedUuid>) {
        let target = |t: &mut RowTarget| {
            if let RowTarget::Named(n) = t
                && let Some(new) = names.get(n)
            {
                *n = new.clone();
            }
        };
        match self {
            Change::Insert {
                name, row, parent, ..
            } => {
                if let Some(new) = names.get(name) {
                    *name = new.clone();
                }
                rename_row(row, names);
                if let Some(p) = parent {
                    target(&mut p.target);
                }
            }
            Change::Update { target: t, row, .. } => {
                target(t);
                rename_row(row, names);
            }
            Change::Mutate {
                target: t,
                mutations,
                ..
            } => {
                target(t);
                for m in mutations {
                    m.value = rename_datum(&m.value, names);
                }
            }
            Change::Delete { target: t, .. } | Change::Expect { target: t, .. } => target(t),
        }
    }
}

fn rename_atom(a: &Atom, names: &HashMap<NamedUuid, NamedUuid>) -> Atom {
    match a {
        Atom::NamedUuid(n) => Atom::NamedUuid(names.get(n).unwrap_or(n).clone()),
        other => other.clone(),
    }
}

fn rename_datum(d: &Datum, names: &HashMap<NamedUuid, NamedUuid>) -> Datum {
    match d {
        Datum::Set(s) => Datum::Set(s.iter().map(|a| rename_atom(a, names)).collect::<Set>()),
        Datum::Map(m) => Datum::Map(Map::from_pairs(
            m.iter()
                .map(|(k, v)| (rename_atom(k, names), rename_atom(v, names))),
        )),
    }
}

fn rename_row(row: &mut Row, names: &HashMap<NamedUuid, NamedUuid>) {
    let renamed: Vec<(String, Datum)> = row
        .iter()
        .filter(|(_, d)| d.atoms().any(|a| matches!(a, Atom::NamedUuid(_))))
        .map(|(c, d)| (c.to_owned(), rename_datum(d, names)))
        .collect();
    for (c, d) in renamed {
        row.insert(c, d);
    }
}

impl fmt::Display for Change {
    /// A short form for logs: `insert QoS @new_qos_1 into Logical_Switch <uuid> qos_rules {..}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let row = |r: &Row| serde_json::to_string(r).unwrap_or_default();
        match self {
            Change::Insert {
                table,
                name,
                row: r,
                parent,
            } => {
                write!(f, "insert {table} @{name}")?;
                if let Some(p) = parent {
                    write!(f, " into {} {} {}", p.table, p.target, p.column)?;
                }
                write!(f, " {}", row(r))
            }
            Change::Update {
                table,
                target,
                row: r,
            } => write!(f, "update {table} {target} {}", row(r)),
            Change::Mutate {
                table,
                target,
                mutations,
            } => write!(
                f,
                "mutate {table} {target} {}",
                serde_json::to_string(mutations).unwrap_or_default()
            ),
            Change::Delete { table, target } => write!(f, "delete {table} {target}"),
            Change::Expect {
                table,
                target,
                present: true,
            } => write!(f, "expect {table} {target} to exist"),
            Change::Expect {
                table,
                target,
                present: false,
            } => write!(f, "expect {table} {target} to be absent"),
        }
    }
}

/// A change and why it is made.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The change.
    pub change: Change,
    /// Why, in words (empty when whoever added the change gave no reason).
    pub why: String,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.why.is_empty() {
            write!(f, "{}", self.change)
        } else {
            write!(f, "{}: {}", self.why, self.change)
        }
    }
}

/// The changes one database needs, each with its reason; one transaction once built.
///
/// Empty when nothing needs to change. See the [module docs](self) for how rows are inserted,
/// deleted and checked.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "a plan does nothing until its transaction is sent"]
pub struct Plan {
    db: &'static str,
    steps: Vec<Step>,
    /// Named UUIDs of the plan's inserts, to the step that inserts them.
    names: BTreeMap<NamedUuid, usize>,
    next: u64,
    /// The reason given to steps added inside [`Plan::because`].
    reason: Option<String>,
}

impl Plan {
    /// An empty plan for database `db`.
    pub fn new(db: &'static str) -> Self {
        Plan {
            db,
            steps: Vec::new(),
            names: BTreeMap::new(),
            next: 0,
            reason: None,
        }
    }

    /// An empty plan for OVN_Northbound.
    pub fn nb() -> Self {
        Self::new(crate::nb::DATABASE)
    }

    /// An empty plan for Open_vSwitch.
    pub fn vswitch() -> Self {
        Self::new(crate::vswitch::DATABASE)
    }

    /// The database the plan changes.
    #[must_use]
    pub fn database(&self) -> &'static str {
        self.db
    }

    /// The steps, in order.
    #[must_use]
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Whether nothing needs to change.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Adds a change with its reason.
    ///
    /// # Errors
    /// [`PlanError::UnknownNamedRow`] when the change refers to a named row no insert of this
    /// plan creates (a change refers only to rows inserted before it); the plan is unchanged.
    pub fn push(&mut self, change: Change, why: impl Into<String>) -> Result<(), PlanError> {
        self.check_names(&change)?;
        if let Change::Insert { name, .. } = &change {
            self.names.insert(name.clone(), self.steps.len());
        }
        let why = why.into();
        let why = match (&self.reason, why.is_empty()) {
            (Some(r), true) => r.clone(),
            _ => why,
        };
        self.steps.push(Step { change, why });
        Ok(())
    }

    fn check_names(&self, change: &Change) -> Result<(), PlanError> {
        let unknown = |table: &'static str, n: &NamedUuid| PlanError::UnknownNamedRow {
            table,
            name: n.to_string(),
        };
        let known = |table: &'static str, t: &RowTarget| match t {
            RowTarget::Named(n) if !self.names.contains_key(n) => Err(unknown(table, n)),
            _ => Ok(()),
        };
        match change {
            Change::Insert {
                table,
                parent,
                name,
                ..
            } => {
                if self.names.contains_key(name) {
                    return Err(PlanError::DuplicateName {
                        table,
                        name: name.to_string(),
                    });
                }
                if let Some(p) = parent {
                    known(p.table, &p.target)?;
                }
                Ok(())
            }
            Change::Update { table, target, .. }
            | Change::Mutate { table, target, .. }
            | Change::Delete { table, target }
            | Change::Expect { table, target, .. } => known(table, target),
        }
    }

    /// Runs `f` on the plan; the steps it adds without a reason of their own get `why`.
    pub fn because<R>(&mut self, why: impl Into<String>, f: impl FnOnce(&mut Plan) -> R) -> R {
        let outer = self.reason.replace(why.into());
        let r = f(self);
        self.reason = outer;
        r
    }

    /// A fresh named UUID for a row of `table`: `new_<table>_<n>`.
    pub fn fresh_name(&mut self, table: &str) -> NamedUuid {
        self.next += 1;
        let prefix: String = table
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        NamedUuid::numbered(&format!("new_{prefix}_"), self.next)
    }

    /// Appends `other`'s steps, renaming its named rows so that names stay unique: topology,
    /// QoS, gateway (and any other) plans of one reconcile step go out as one transaction.
    ///
    /// # Errors
    /// [`PlanError::OtherDatabase`] when `other` is for another database; nothing is merged.
    pub fn merge(&mut self, other: Plan) -> Result<(), PlanError> {
        if other.db != self.db {
            return Err(PlanError::OtherDatabase {
                expected: self.db,
                found: other.db,
            });
        }
        let mut renames = HashMap::new();
        for step in &other.steps {
            if let Change::Insert { table, name, .. } = &step.change {
                renames.insert(name.clone(), self.fresh_name(table));
            }
        }
        for mut step in other.steps {
            step.change.rename(&renames);
            if let Change::Insert { name, .. } = &step.change {
                self.names.insert(name.clone(), self.steps.len());
            }
            self.steps.push(step);
        }
        Ok(())
    }

    /// One line per step: why, then what changes.
    #[must_use]
    pub fn explain(&self) -> Vec<String> {
        self.steps.iter().map(ToString::to_string).collect()
    }

    /// The plan for a person to review (and for golden files): the steps, then the
    /// transaction's JSON (without schema validation).
    ///
    /// # Errors
    /// What [`Plan::transaction`] returns.
    pub fn review(&self) -> Result<String, PlanError> {
        let mut out = self.to_string();
        out.push_str("\n--- transaction ---\n");
        let txn = self.transaction()?;
        out.push_str(
            &serde_json::to_string_pretty(&txn.transaction().to_params()).unwrap_or_default(),
        );
        out.push('\n');
        Ok(out)
    }

    /// Builds the transaction and runs it on `replica` in memory ([`Prepared::apply`]).
    ///
    /// # Errors
    /// What [`Plan::transaction`] and [`Prepared::apply`] return.
    pub fn apply(
        &self,
        replica: &mut ovsdb::replica::Replica,
    ) -> Result<ovsdb::TransactOutcome, PlanError> {
        self.transaction()?.apply(replica)
    }

    /// The insert step that creates `name`, if this plan has one.
    fn insert_index(&self, name: &NamedUuid) -> Option<usize> {
        self.names.get(name).copied()
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.steps.is_empty() {
            return write!(f, "{}: nothing to change", self.db);
        }
        let n = self.steps.len();
        let unit = if n == 1 { "step" } else { "steps" };
        write!(f, "{}: {n} {unit}", self.db)?;
        for s in &self.steps {
            write!(f, "\n- {s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
