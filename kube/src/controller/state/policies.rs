//! The NetworkPolicy part of the controller's state (planned by
//! [`ControllerState::plan_policies`]).

use std::collections::BTreeSet;

use k8s_openapi::api::networking::v1::NetworkPolicy;
use ovn_model::snapshot::Typed;

use super::services::object_key;
use super::{ControllerState, StepOutput, Store, WatchEvent};
use crate::controller::source::ObjectEvent;

/// NetworkPolicies, and what to reconcile next.
#[derive(Debug, Default)]
pub(crate) struct PoliciesState {
    /// NetworkPolicies by `namespace/name`.
    pub(crate) policies: Store<NetworkPolicy>,
    /// Policies (`namespace/name`) to reconcile.
    dirty: BTreeSet<String>,
}

impl PoliciesState {
    /// Whether the first listing came.
    pub(crate) fn listed(&self) -> bool {
        self.policies.listed
    }

    /// Whether something waits to be reconciled.
    pub(crate) fn is_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Applies a NetworkPolicy event.
    pub(crate) fn policy_event(&mut self, event: WatchEvent<NetworkPolicy>) {
        let changed = self
            .policies
            .apply(event, |p| Some((object_key(&p.metadata)?, p.clone())));
        self.dirty.extend(changed);
    }

    /// Namespaces changed (their labels select peers).
    pub(crate) fn namespaces_changed(&mut self, namespaces: &[String]) {
        let _ = namespaces;
    }

    /// Pods (`namespace/name`) changed (their labels select them and peers).
    pub(crate) fn pods_changed(&mut self, pods: &[String]) {
        let _ = pods;
    }

    /// Marks everything for reconciling.
    pub(crate) fn requeue(&mut self) {
        self.dirty.extend(self.policies.objects.keys().cloned());
    }
}

impl ControllerState {
    /// Takes what OVN holds for policies into account after a restart or a takeover.
    pub(super) fn restore_policies(&mut self, nb: &Typed<'_>) -> Vec<ObjectEvent> {
        let _ = nb;
        self.policies.requeue();
        Vec::new()
    }

    /// Reconciles the dirty policies.
    pub(super) fn plan_policies(&mut self, nb: &Typed<'_>, out: &mut StepOutput) {
        let _ = (nb, out);
        self.policies.dirty.clear();
    }
}
