//! The planner's failure domains: a bad cluster configuration ([`ConfigError`]), a bad
//! intent of one subnet ([`IntentError`], which only sets that subnet aside), and a plan that
//! cannot be made at all ([`PlanError`]).

use std::net::IpAddr;

use ipnet::IpNet;

/// Why a [`Cluster`](crate::Cluster) configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No router name.
    #[error("the cluster router has no name")]
    EmptyRouter,
    /// The router's join address is outside the join subnet.
    #[error("the router's join address {ip} is outside the join subnet {join}")]
    RouterOutsideJoin {
        /// The address.
        ip: IpAddr,
        /// The join subnet.
        join: IpNet,
    },
    /// No management port name.
    #[error("the management port has no name")]
    EmptyMgmtPort,
    /// The native gateway names no router port.
    #[error("the OVN-native gateway names no router port")]
    EmptyNativePort,
    /// The native gateway has no chassis to run on.
    #[error("the OVN-native gateway port {port:?} has no gateway chassis")]
    NoNativeChassis {
        /// The router port.
        port: String,
    },
}

/// Why one subnet's intent cannot be planned. The subnet keeps its current egress path: the
/// plan neither adds, changes nor removes anything of it, on OVN or on the nodes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntentError {
    /// A gateway node the intent names is not a known node.
    #[error("subnet {subnet}: gateway node {node:?} is not a known node")]
    UnknownGatewayNode {
        /// The subnet.
        subnet: String,
        /// The node named.
        node: String,
    },
    /// A node that must carry the subnet's traffic has no join address yet.
    #[error(
        "subnet {subnet}: node {node:?} has no join address (its management port is not set up)"
    )]
    NoJoinAddress {
        /// The subnet.
        subnet: String,
        /// The node.
        node: String,
    },
    /// A pod of the subnet runs on a node that is not known.
    #[error("subnet {subnet}: pod {ip} runs on unknown node {node:?}")]
    UnknownPodNode {
        /// The subnet.
        subnet: String,
        /// The node named.
        node: String,
        /// The pod's address.
        ip: IpAddr,
    },
    /// The intent asks for things that exclude each other.
    #[error("subnet {subnet}: contradictory egress modes: {reason}")]
    Contradictory {
        /// The subnet.
        subnet: String,
        /// What contradicts what.
        reason: String,
    },
    /// None of the subnet's gateway nodes is healthy.
    #[error("subnet {subnet}: none of the gateway nodes {gateways:?} is healthy")]
    NoHealthyGateway {
        /// The subnet.
        subnet: String,
        /// Its gateway nodes.
        gateways: Vec<String>,
    },
    /// OVN-native egress was asked but the cluster has no native gateway.
    #[error(
        "subnet {subnet}: OVN-native egress needs a native gateway in the cluster configuration"
    )]
    NoNativeGateway {
        /// The subnet.
        subnet: String,
    },
    /// The same subnet appears twice among the intents (both are set aside).
    #[error("subnet {subnet}: given more than once")]
    Duplicate {
        /// The subnet.
        subnet: String,
    },
}

impl IntentError {
    /// The subnet the error is about.
    #[must_use]
    pub fn subnet(&self) -> &str {
        match self {
            IntentError::UnknownGatewayNode { subnet, .. }
            | IntentError::NoJoinAddress { subnet, .. }
            | IntentError::UnknownPodNode { subnet, .. }
            | IntentError::Contradictory { subnet, .. }
            | IntentError::NoHealthyGateway { subnet, .. }
            | IntentError::NoNativeGateway { subnet }
            | IntentError::Duplicate { subnet } => subnet,
        }
    }
}

/// Why no plan could be made at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The cluster configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The OVN-native gateway names a node that is not known.
    #[error("OVN-native gateway port {port:?}: chassis node {node:?} is not a known node")]
    UnknownChassisNode {
        /// The router port.
        port: String,
        /// The node named.
        node: String,
    },
    /// A wanted row does not fit its table (a planner bug).
    #[error("{what}: the row does not fit its table")]
    Encode {
        /// The row, in words.
        what: String,
        /// The column and the constraint.
        #[source]
        source: Box<ovn_model::plan::PlanError>,
    },
    /// The reconcile core refused the wanted or observed rows.
    #[error("the OVN changes could not be planned")]
    Reconcile(#[source] Box<ovn_model::plan::PlanError>),
}

impl From<ovn_model::plan::PlanError> for PlanError {
    fn from(e: ovn_model::plan::PlanError) -> Self {
        PlanError::Reconcile(Box::new(e))
    }
}
