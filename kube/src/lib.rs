//! The reference integration of ovnkit: the pieces a Kubernetes networking plugin is made of,
//! built from the ovnkit crates.
//!
//! `ovnkit-kube` sits on top of the stack: it uses the pure planners (`ipam`, `qos`, `gateway`)
//! and is where IO happens (the OVSDB clients, netlink, nftables, the Kubernetes API). Its
//! parts, each run by a subcommand of the `ovnkit` binary:
//!
//! - [`controller`]: Namespaces, Pods, Nodes, Services, EndpointSlices and NetworkPolicies (from an API server or a manifest directory)
//!   into one OVN logical topology, with addresses, QoS and egress, one transaction per step.
//! - [`agent`]: the node agent, which plumbs each pod the runtime starts into OVS and OVN
//!   (veth, addresses, routes, the OVS port, node-side QoS) from what the controller wrote
//!   on the pod's port, and the node's management port `ovn0`.
//! - [`cni`]: the CNI plugin the container runtime runs (CNI 1.0.0 and 1.1.0), which forwards
//!   each request to the agent over a unix socket, and the protocol between the two.
//! - [`node::gateway`]: makes a node's network namespace hold what a `gateway::NodePlan` says
//!   (routes, forwarding, masquerade); [`health`]: the gateway health probe.
//! - [`metrics`]: the Prometheus metrics of the controller and the agent, and their endpoint.
//! - [`trace`]: a packet's path through OVN from one object to another, explained in the
//!   cluster's words (`ovnkit trace`).

pub mod agent;
pub mod cni;
pub mod controller;
pub mod health;
pub mod metrics;
pub mod node;
pub mod trace;
