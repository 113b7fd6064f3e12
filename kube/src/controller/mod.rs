//! The reference controller: Namespaces, Pods and Nodes in, one OVN logical topology out.
//!
//! Objects come from a Kubernetes API server or a directory of manifests ([`source`]); results
//! go back as annotations and events on the objects, or into a state directory.

pub mod annotations;
pub mod config;
mod dns;
pub mod kubeapi;
pub mod manifests;
pub mod nodes;
pub mod pods;
mod policy;
pub mod run;
pub mod services;
pub mod source;
pub mod state;
pub mod subnets;
mod topology;
