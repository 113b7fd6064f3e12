//! [`PlanError`]: why the planner could not make a plan.

use crate::intent::PodId;

/// Why a plan could not be made. Annotation errors come earlier ([`crate::AnnotationError`]):
/// a bad annotation never reaches the planner.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The pod's OVS port or interface is not among the observed rows, and it must change.
    #[error("pod {pod}: OVS port {port:?} not found")]
    PortNotFound {
        /// The pod.
        pod: PodId,
        /// The port (and interface) name.
        port: String,
    },
    /// An htb ingress limit and netem both need the pod's one `Port.qos`.
    #[error(
        "pod {pod}: an ingress limit through OVS htb and netem both need the port's one QoS; \
         limit ingress through OVN instead, or drop the netem annotations"
    )]
    HtbAndNetem {
        /// The pod.
        pod: PodId,
    },
    /// The reconcile core refused a row (a value that does not fit its column, for example a
    /// rate above what the column holds).
    #[error("pod {pod}: no plan could be made")]
    Plan {
        /// The pod.
        pod: PodId,
        /// What the core said.
        #[source]
        source: Box<ovn_model::plan::PlanError>,
    },
}

impl PlanError {
    pub(crate) fn plan(pod: &PodId, source: ovn_model::plan::PlanError) -> Self {
        PlanError::Plan {
            pod: pod.clone(),
            source: Box::new(source),
        }
    }
}
