//! The node agent's metrics.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::controller::OvsdbFamilies;
use super::duration_buckets;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    command: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
}

/// The agent's metrics (see [the module](super) for the families).
#[derive(Debug, Clone)]
pub struct AgentMetrics {
    requests: Family<RequestLabels, Histogram>,
    phases: Family<PhaseLabel, Histogram>,
    ovsdb: OvsdbFamilies,
}

impl Default for AgentMetrics {
    /// Metrics registered nowhere (for an agent that does not serve them).
    fn default() -> Self {
        AgentMetrics::new(&mut Registry::default())
    }
}

impl AgentMetrics {
    /// The metrics, registered in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = AgentMetrics {
            requests: Family::new_with_constructor(|| Histogram::new(duration_buckets())),
            phases: Family::new_with_constructor(|| Histogram::new(duration_buckets())),
            ovsdb: OvsdbFamilies::default(),
        };
        registry.register_with_unit(
            "ovnkit_cni_request_duration",
            "CNI requests served, by command and result (ok or the CNI error code)",
            Unit::Seconds,
            m.requests.clone(),
        );
        registry.register_with_unit(
            "ovnkit_cni_add_phase_duration",
            "The parts of a successful ADD: wait_port, plumb, ovs, wait_up",
            Unit::Seconds,
            m.phases.clone(),
        );
        m.ovsdb.register(registry);
        m
    }

    /// A request of `command` (`ADD`, `DEL`, ...) ended with `result` after `took`.
    pub fn request(&self, command: &str, result: &str, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                command: command.to_owned(),
                result: result.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// A successful `ADD`'s parts.
    pub fn add_phases(&self, phases: &[(&str, Duration)]) {
        for (phase, took) in phases {
            self.phases
                .get_or_create(&PhaseLabel {
                    phase: (*phase).to_owned(),
                })
                .observe(took.as_secs_f64());
        }
    }

    /// The connection to `database` is synced (or not).
    pub fn connected(&self, database: &str, up: bool) {
        self.ovsdb.connected(database, up);
    }
}
