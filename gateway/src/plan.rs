//! [`Plan`]: the OVN changes (each with its reason) that become one transaction, the node
//! plans, and the subnets set aside.

use std::collections::BTreeMap;

use ovsdb::{
    Condition, DatabaseSchema, Datum, Delete, Insert, Mutate, Mutation, NamedUuid, Row,
    Transaction, Update, Uuid,
};

use crate::error::{IntentError, PlanError};
use crate::node_plan::NodePlan;
use crate::observed::ChildTable;

/// One change to OVN_Northbound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Insert a row under a named UUID and add it to its parent's column.
    Insert {
        /// The table.
        table: ChildTable,
        /// The named UUID it is inserted under.
        name: NamedUuid,
        /// Its columns.
        row: Row,
        /// The parent (router or gateway port) that will refer to it.
        parent: Uuid,
    },
    /// Update some columns of an owned row.
    Update {
        /// The table.
        table: ChildTable,
        /// The row.
        uuid: Uuid,
        /// The columns that change.
        row: Row,
    },
    /// Set some `NB_Global` options (the other options stay).
    SetGlobalOptions {
        /// The `NB_Global` row.
        uuid: Uuid,
        /// The options and their values.
        options: std::collections::BTreeMap<String, String>,
    },
    /// Take an owned row out of its parent and delete it.
    Delete {
        /// The table.
        table: ChildTable,
        /// The row.
        uuid: Uuid,
        /// The parent that refers to it, if observed.
        parent: Option<Uuid>,
    },
}

/// A change and why it is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The change.
    pub change: Change,
    /// Why, in words.
    pub why: String,
}

/// What the planner decided: OVN changes for one transaction, what each node must hold, and
/// the subnets set aside (their current egress path untouched).
///
/// A plan is a value: nothing happens until a client sends
/// [`into_transaction`](Plan::into_transaction)'s result and each node agent applies its
/// [`NodePlan`].
#[derive(Debug, Clone, Default, PartialEq)]
#[must_use = "a plan does nothing until its transaction is sent and its node plans applied"]
pub struct Plan {
    pub(crate) steps: Vec<Step>,
    pub(crate) nodes: BTreeMap<String, NodePlan>,
    pub(crate) before: BTreeMap<String, NodePlan>,
    pub(crate) rejected: Vec<IntentError>,
    pub(crate) notes: Vec<String>,
}

impl Plan {
    /// The OVN changes, in order.
    #[must_use]
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Whether OVN needs no change (node plans are whole states, not changes).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// What every known node must hold (a node that carries nothing gets an empty plan, so
    /// that its executor removes what it held).
    #[must_use]
    pub fn node_plans(&self) -> &BTreeMap<String, NodePlan> {
        &self.nodes
    }

    /// The plan of one node.
    #[must_use]
    pub fn node_plan(&self, node: &str) -> Option<&NodePlan> {
        self.nodes.get(node)
    }

    /// What a node must hold *before* the transaction is sent, when that is more than it holds
    /// now: what the observed OVN state uses plus what the planned one will. Applying these
    /// first, then sending the transaction, then applying [`Plan::node_plans`] is make before
    /// break: OVN never steers traffic to a node that has not got its route and masquerade rule
    /// yet, and a node keeps them until OVN has stopped sending it the traffic. Nodes absent
    /// here gain nothing: their final plan only keeps or removes.
    #[must_use]
    pub fn node_plans_before(&self) -> &BTreeMap<String, NodePlan> {
        &self.before
    }

    /// The subnets set aside, with why.
    #[must_use]
    pub fn rejected(&self) -> &[IntentError] {
        &self.rejected
    }

    /// The plan in words: each OVN change with its reason, what each node holds, what was set
    /// aside and the decisions taken (which gateway is active, and why).
    #[must_use]
    pub fn explain(&self) -> Vec<String> {
        let mut out = self.notes.clone();
        out.extend(self.steps.iter().map(|s| s.why.clone()));
        for n in self.nodes.values() {
            out.extend(n.explain());
        }
        out.extend(
            self.rejected
                .iter()
                .map(|e| format!("{e}; its current egress path is kept")),
        );
        out
    }

    /// The changes as one transaction on OVN_Northbound, without validation.
    pub fn transaction(&self) -> Transaction {
        let mut txn = Transaction::new("OVN_Northbound");
        for step in &self.steps {
            match &step.change {
                Change::Insert {
                    table,
                    name,
                    row,
                    parent,
                } => {
                    txn.push(Insert::new(table.table(), row.clone()).uuid_name(name.clone()));
                    let (ptable, column) = table.parent();
                    txn.push(
                        Mutate::new(ptable)
                            .filter(Condition::uuid(*parent))
                            .mutation(Mutation::insert(column, Datum::set([name.clone()]))),
                    );
                }
                Change::Update { table, uuid, row } => {
                    txn.push(
                        Update::new(table.table(), row.clone()).filter(Condition::uuid(*uuid)),
                    );
                }
                Change::SetGlobalOptions { uuid, options } => {
                    // A map "insert" keeps an existing key's value: delete the keys first.
                    let keys = Datum::set(options.keys().map(String::as_str));
                    let map = Datum::map(options.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                    txn.push(
                        Mutate::new("NB_Global")
                            .filter(Condition::uuid(*uuid))
                            .mutation(Mutation::delete("options", keys))
                            .mutation(Mutation::insert("options", map)),
                    );
                }
                Change::Delete {
                    table,
                    uuid,
                    parent,
                } => {
                    if let Some(parent) = parent {
                        let (ptable, column) = table.parent();
                        txn.push(
                            Mutate::new(ptable)
                                .filter(Condition::uuid(*parent))
                                .mutation(Mutation::delete(column, Datum::set([*uuid]))),
                        );
                    } else {
                        txn.push(Delete::new(table.table()).filter(Condition::uuid(*uuid)));
                    }
                }
            }
        }
        txn
    }

    /// The changes as one transaction, validated against the OVN_Northbound schema this crate
    /// was written for (OVN 23.03, schema 7.0.0).
    ///
    /// # Errors
    /// [`PlanError::Invalid`] when the transaction does not fit the schema (a planner bug).
    pub fn into_transaction(self) -> Result<Transaction, PlanError> {
        self.into_transaction_for(nb_schema())
    }

    /// The changes as one transaction, validated against `schema` (for example the one a
    /// server reported).
    ///
    /// # Errors
    /// [`PlanError::Invalid`] when the transaction does not fit `schema`.
    pub fn into_transaction_for(self, schema: &DatabaseSchema) -> Result<Transaction, PlanError> {
        let txn = self.transaction();
        txn.validate(schema).map_err(|e| PlanError::Invalid {
            source: Box::new(e),
        })?;
        Ok(txn)
    }
}

/// The OVN_Northbound schema the planner writes for (`ovn-model`'s, OVN 23.03, 7.0.0).
#[must_use]
pub fn nb_schema() -> &'static DatabaseSchema {
    ovn_model::nb::schema()
}
