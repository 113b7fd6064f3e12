//! The CNI side of the node: the plugin the container runtime runs, and the protocol between
//! it and the node agent.

pub mod protocol;
