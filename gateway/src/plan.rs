//! [`Plan`]: the OVN changes (an [`ovn_model::plan::Plan`], one transaction), the node plans,
//! and the subnets set aside.

use std::collections::BTreeMap;

use crate::error::IntentError;
use crate::node_plan::NodePlan;

/// What the planner decided: OVN changes for one transaction, what each node must hold, and
/// the subnets set aside (their current egress path untouched).
///
/// A plan is a value: nothing happens until a client sends the OVN plan's transaction
/// ([`Plan::nb`], mergeable with the other plans of a reconcile step) and each node agent
/// applies its [`NodePlan`].
#[derive(Debug, Clone, PartialEq)]
#[must_use = "a plan does nothing until its transaction is sent and its node plans applied"]
pub struct Plan {
    pub(crate) nb: ovn_model::plan::Plan,
    pub(crate) nodes: BTreeMap<String, NodePlan>,
    pub(crate) before: BTreeMap<String, NodePlan>,
    pub(crate) rejected: Vec<IntentError>,
    pub(crate) notes: Vec<String>,
}

impl Plan {
    /// The OVN_Northbound changes.
    pub fn nb(&self) -> &ovn_model::plan::Plan {
        &self.nb
    }

    /// The OVN_Northbound changes, by value (to merge into a reconcile step's plan).
    pub fn into_nb(self) -> ovn_model::plan::Plan {
        self.nb
    }

    /// Whether OVN needs no change (node plans are whole states, not changes).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nb.is_empty()
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

    /// The plan for a person to review (and for golden files): the decisions, what each node
    /// holds, what was set aside, what nodes hold before the transaction, then the OVN steps
    /// and the transaction's JSON ([`ovn_model::plan::Plan::review`]).
    ///
    /// # Errors
    /// When the OVN plan does not build (a planner bug).
    pub fn review(&self) -> Result<String, ovn_model::plan::PlanError> {
        let mut lines = self.summary();
        if !self.before.is_empty() {
            lines.push("--- held before the transaction ---".to_owned());
            for n in self.before.values() {
                lines.extend(n.explain());
            }
        }
        let mut out = String::new();
        for line in lines {
            out.push_str(&line);
            out.push('\n');
        }
        out.push_str(&self.nb.review()?);
        Ok(out)
    }

    /// The plan in words: the decisions taken (which gateway is active, and why), what each
    /// node holds, what was set aside, and each OVN change with its reason.
    #[must_use]
    pub fn explain(&self) -> Vec<String> {
        let mut out = self.summary();
        out.extend(self.nb.explain());
        out
    }

    /// The decisions, the node plans and the subnets set aside, in words.
    fn summary(&self) -> Vec<String> {
        let mut out = self.notes.clone();
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
}
