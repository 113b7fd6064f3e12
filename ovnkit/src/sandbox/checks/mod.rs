//! The checks of the report, each run against the live sandbox with real traffic and judged
//! against what the manifests say.

mod egress;
mod reach;
mod services;

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Pod, Service};

pub use egress::{gateways, qos};
pub use reach::reachability;
pub use services::{dns, node_ports, services};

use super::cluster::{Cluster, RunningPod};
use super::policy::{End, Rules};
use super::world::{Decisions, Objects};

/// What the controller of this build implements beyond subnets, pods, QoS and gateways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// Services as OVN load balancers.
    pub services: bool,
    /// Node ports forwarded by the agents.
    pub node_ports: bool,
    /// NetworkPolicies as OVN ACLs.
    pub policies: bool,
    /// DNS records in OVN.
    pub dns: bool,
}

/// This build's features.
pub const FEATURES: Features = Features {
    services: true,
    node_ports: true,
    policies: true,
    dns: true,
};

/// The cluster DNS domain the controller is started with.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// The address pods send DNS queries to (OVN answers for the names it holds, whatever the
/// destination).
pub const DNS_SERVER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 96, 0, 10));

/// What the checks look at.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The running sandbox.
    pub cluster: &'a Cluster,
    /// The objects as the user gave them (with `--pods` ones).
    pub objects: &'a Objects,
    /// What the sandbox decided.
    pub decisions: &'a Decisions,
    /// This build's features.
    pub features: Features,
}

impl<'a> Ctx<'a> {
    /// The rules the expected verdicts come from.
    pub fn rules(&self) -> Rules<'a> {
        Rules::new(
            &self.objects.namespaces,
            &self.objects.policies,
            self.features.policies,
        )
    }

    /// Where the expected verdicts come from, in words.
    pub fn expectations(&self) -> String {
        if self.features.policies {
            "private subnets and NetworkPolicies, as the sandbox reads the manifests \
             (independently of the controller's ACLs)"
                .into()
        } else {
            "private subnets, as the sandbox reads the manifests (NetworkPolicies are not \
             enforced in this build)"
                .into()
        }
    }

    /// A running pod and its object.
    pub fn pod(&self, key: &str) -> Option<(&'a RunningPod, &'a Pod)> {
        Some((self.cluster.pods.get(key)?, self.objects.pods.get(key)?))
    }

    /// The pod as an end of traffic.
    pub fn end(&self, key: &str) -> Option<End<'a>> {
        let (running, pod) = self.pod(key)?;
        Some(End {
            pod,
            ip: running.ip,
        })
    }

    /// The Services with their allocated addresses, by `namespace/name`.
    pub fn services(&self) -> BTreeMap<String, Service> {
        self.objects
            .services
            .iter()
            .map(|(k, s)| (k.clone(), self.decisions.allocated_service(k, s)))
            .collect()
    }

    /// The name of node `index`.
    pub fn node_name(&self, index: usize) -> String {
        self.cluster
            .nodes
            .get(index)
            .map(|n| n.name())
            .unwrap_or_default()
    }
}

/// Retries `f` up to `tries` times, `pause` apart, until it gives `Some`.
pub(crate) fn retry<T>(
    tries: u32,
    pause: std::time::Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    for i in 0..tries.max(1) {
        if let Some(v) = f() {
            return Some(v);
        }
        if i + 1 < tries {
            std::thread::sleep(pause);
        }
    }
    None
}
