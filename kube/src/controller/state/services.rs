//! The Services part of the controller's state: Services and EndpointSlices as last seen, and
//! the load balancers they make (planned by [`ControllerState::plan_services`]).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use ovn_model::snapshot::Typed;

use super::{ControllerState, StepOutput, Store, SwitchTargets, WatchEvent};
use crate::controller::source::ObjectEvent;

/// The label an EndpointSlice names its Service with.
pub(crate) const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Services, their EndpointSlices, and the Services to reconcile next.
#[derive(Debug, Default)]
pub(crate) struct ServicesState {
    /// Services by `namespace/name`.
    pub(crate) services: Store<Service>,
    /// EndpointSlices by `namespace/name`.
    pub(crate) slices: Store<EndpointSlice>,
    /// Services (`namespace/name`) to reconcile.
    dirty: BTreeSet<String>,
}

/// `namespace/name` of a namespaced object.
pub(crate) fn object_key(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<String> {
    Some(format!(
        "{}/{}",
        meta.namespace.as_deref()?,
        meta.name.as_deref()?
    ))
}

/// The Service (`namespace/name`) an EndpointSlice belongs to.
pub(crate) fn slice_service(slice: &EndpointSlice) -> Option<String> {
    let ns = slice.metadata.namespace.as_deref()?;
    let name = slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    Some(format!("{ns}/{name}"))
}

impl ServicesState {
    /// Whether both kinds delivered their first listing.
    pub(crate) fn listed(&self) -> bool {
        self.services.listed && self.slices.listed
    }

    /// Whether some Service waits to be reconciled.
    pub(crate) fn is_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Applies a Service event; the Services (`namespace/name`) that changed.
    pub(crate) fn service_event(&mut self, event: WatchEvent<Service>) -> Vec<String> {
        let changed = self
            .services
            .apply(event, |s| Some((object_key(&s.metadata)?, s.clone())));
        self.dirty.extend(changed.iter().cloned());
        changed
    }

    /// Applies an EndpointSlice event; the Services (`namespace/name`) whose endpoints changed.
    pub(crate) fn endpoint_slice_event(&mut self, event: WatchEvent<EndpointSlice>) -> Vec<String> {
        let old: std::collections::BTreeMap<String, Option<String>> = self
            .slices
            .objects
            .iter()
            .map(|(k, s)| (k.clone(), slice_service(s)))
            .collect();
        let changed = self
            .slices
            .apply(event, |s| Some((object_key(&s.metadata)?, s.clone())));
        let mut services = BTreeSet::new();
        for k in &changed {
            if let Some(Some(s)) = old.get(k) {
                services.insert(s.clone());
            }
            if let Some(s) = self.slices.objects.get(k).and_then(slice_service) {
                services.insert(s);
            }
        }
        self.dirty.extend(services.iter().cloned());
        services.into_iter().collect()
    }

    /// Nodes changed (node ports are per node).
    pub(crate) fn nodes_changed(&mut self, nodes: &[String]) {
        let _ = nodes;
    }

    /// Marks every Service for reconciling.
    pub(crate) fn requeue(&mut self) {
        self.dirty.extend(self.services.objects.keys().cloned());
    }
}

impl ControllerState {
    /// Takes what OVN holds for Services into account after a restart or a takeover.
    pub(super) fn restore_services(&mut self, nb: &Typed<'_>) -> Vec<ObjectEvent> {
        let _ = nb;
        self.services.requeue();
        Vec::new()
    }

    /// Reconciles the dirty Services.
    pub(super) fn plan_services(
        &mut self,
        nb: &Typed<'_>,
        switches: &SwitchTargets<'_>,
        out: &mut StepOutput,
    ) {
        let _ = (nb, switches, out);
        self.services.dirty.clear();
    }
}
