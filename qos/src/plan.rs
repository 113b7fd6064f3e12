//! [`Plan`]: the changes one database needs, each with the reason, convertible into one
//! validated [`Transaction`].

use std::fmt;

use ovsdb::table::RowId;
use ovsdb::{
    Condition, DatabaseSchema, Datum, Delete, Insert, Mutate, Mutation, NamedUuid, Operation, Row,
    Transaction, Update, Uuid,
};

use crate::error::PlanError;
use crate::intent::PodId;

/// One change to one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Inserts `row` into `table`, named `name` for references in the same transaction.
    Insert {
        /// Table.
        table: &'static str,
        /// The row's name in the transaction.
        name: NamedUuid,
        /// Every column the planner sets.
        row: Row,
    },
    /// Sets the columns in `row` of the row `uuid`, in place.
    Update {
        /// Table.
        table: &'static str,
        /// The row.
        uuid: Uuid,
        /// Only the columns that change.
        row: Row,
    },
    /// Deletes the row `uuid`.
    Delete {
        /// Table.
        table: &'static str,
        /// The row.
        uuid: Uuid,
    },
    /// Adds a reference to `target` to the set column `column` of row `uuid`.
    AddRef {
        /// Table.
        table: &'static str,
        /// The referring row.
        uuid: Uuid,
        /// The set column.
        column: &'static str,
        /// The row referred to.
        target: RowId,
    },
    /// Removes the reference to `target` from the set column `column` of row `uuid`.
    RemoveRef {
        /// Table.
        table: &'static str,
        /// The referring row.
        uuid: Uuid,
        /// The set column.
        column: &'static str,
        /// The row no longer referred to.
        target: Uuid,
    },
}

impl Change {
    /// The OVSDB operation.
    #[must_use]
    pub fn to_operation(&self) -> Operation {
        match self {
            Change::Insert { table, name, row } => {
                Operation::Insert(Insert::new(*table, row.clone()).uuid_name(name.clone()))
            }
            Change::Update { table, uuid, row } => {
                Operation::Update(Update::new(*table, row.clone()).filter(Condition::uuid(*uuid)))
            }
            Change::Delete { table, uuid } => {
                Operation::Delete(Delete::new(*table).filter(Condition::uuid(*uuid)))
            }
            Change::AddRef {
                table,
                uuid,
                column,
                target,
            } => Operation::Mutate(
                Mutate::new(*table)
                    .filter(Condition::uuid(*uuid))
                    .mutation(Mutation::insert(*column, Datum::set([target.to_atom()]))),
            ),
            Change::RemoveRef {
                table,
                uuid,
                column,
                target,
            } => Operation::Mutate(
                Mutate::new(*table)
                    .filter(Condition::uuid(*uuid))
                    .mutation(Mutation::delete(*column, Datum::set([*target]))),
            ),
        }
    }
}

impl fmt::Display for Change {
    /// A short form for logs: `insert QoS @qos_egress {..}`, `update Interface <uuid> {..}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let row = |row: &Row| serde_json::to_string(row).unwrap_or_default();
        match self {
            Change::Insert {
                table,
                name,
                row: r,
            } => {
                write!(f, "insert {table} @{name} {}", row(r))
            }
            Change::Update {
                table,
                uuid,
                row: r,
            } => {
                write!(f, "update {table} {uuid} {}", row(r))
            }
            Change::Delete { table, uuid } => write!(f, "delete {table} {uuid}"),
            Change::AddRef {
                table,
                uuid,
                column,
                target,
            } => write!(f, "mutate {table} {uuid} {column} += {target}"),
            Change::RemoveRef {
                table,
                uuid,
                column,
                target,
            } => write!(f, "mutate {table} {uuid} {column} -= {target}"),
        }
    }
}

/// A change and why the planner wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The change.
    pub change: Change,
    /// Why, in words, for logs.
    pub why: String,
}

/// The minimal set of changes that brings one database to what a pod's intent asks for.
///
/// Empty when the database already holds exactly that. Apply it with
/// [`Plan::into_transaction`] (one transaction, checked against the schema); log it with
/// [`Plan::explain`] or `Display`.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "a plan does nothing until its transaction is sent"]
pub struct Plan {
    pod: PodId,
    schema: &'static DatabaseSchema,
    steps: Vec<Step>,
}

impl Plan {
    pub(crate) fn new(pod: PodId, schema: &'static DatabaseSchema) -> Self {
        Plan {
            pod,
            schema,
            steps: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, change: Change, why: impl Into<String>) {
        self.steps.push(Step {
            change,
            why: why.into(),
        });
    }

    /// The pod the plan is for.
    pub fn pod(&self) -> &PodId {
        &self.pod
    }

    /// The database the plan changes (`OVN_Northbound` or `Open_vSwitch`).
    #[must_use]
    pub fn database(&self) -> &str {
        &self.schema.name
    }

    /// The steps, in transaction order.
    #[must_use]
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Whether nothing needs to change.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// One line per step: what changes and why.
    #[must_use]
    pub fn explain(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|s| format!("{}: {}", s.why, s.change))
            .collect()
    }

    /// The transaction that applies the plan, checked against the schema of the model.
    ///
    /// # Errors
    /// [`PlanError::Invalid`] if the transaction does not fit the schema (a planner bug).
    pub fn into_transaction(self) -> Result<Transaction, PlanError> {
        let mut txn = Transaction::with_capacity(self.schema.name.clone(), self.steps.len());
        for step in &self.steps {
            txn.push(step.change.to_operation());
        }
        txn.validate(self.schema)
            .map_err(|source| PlanError::Invalid {
                pod: self.pod.clone(),
                source: Box::new(source),
            })?;
        Ok(txn)
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.steps.is_empty() {
            return write!(f, "{} {}: nothing to change", self.database(), self.pod);
        }
        let n = self.steps.len();
        let unit = if n == 1 { "step" } else { "steps" };
        write!(f, "{} {}: {n} {unit}", self.database(), self.pod)?;
        for line in self.explain() {
            write!(f, "\n- {line}")?;
        }
        Ok(())
    }
}
