//! The reference integration of ovnkit: the pieces a Kubernetes networking plugin is made of,
//! built from the ovnkit crates.
//!
//! `ovnkit-kube` sits on top of the stack: it uses the pure planners (`gateway`, later `qos`
//! and `ipam`) and is where IO happens (netlink, nftables, OVSDB clients). The controller, the
//! node agent's CNI server and the CNI plugin come later; what exists now is the node agent's
//! gateway executor, [`node::gateway`], which makes a node's network namespace hold what a
//! `gateway::NodePlan` says, and the gateway health probe, [`health`], that the controller's
//! health loop re-plans from.

pub mod agent;
pub mod cni;
pub mod controller;
pub mod health;
pub mod node;
