//! [`PlanError`]: why the planner could not make a plan.

use crate::intent::PodId;

/// Why a plan could not be made. Annotation errors come earlier ([`crate::AnnotationError`]):
/// a bad annotation never reaches the planner.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// The pod's logical switch is not among the observed rows, and a row must be added to it.
    #[error("pod {pod}: logical switch {switch:?} not found")]
    SwitchNotFound {
        /// The pod.
        pod: PodId,
        /// The switch name.
        switch: String,
    },
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
    /// A value does not fit a column of the model (for example a rate above what the column
    /// holds).
    #[error("pod {pod}: {source}")]
    Encode {
        /// The pod.
        pod: PodId,
        /// The column and the constraint.
        #[source]
        source: Box<ovsdb::EncodeError>,
    },
    /// The transaction does not fit the schema (a planner bug).
    #[error("pod {pod}: the plan's transaction does not fit the schema: {source}")]
    Invalid {
        /// The pod.
        pod: PodId,
        /// What the validation found.
        #[source]
        source: Box<ovsdb::ValidationError>,
    },
}
