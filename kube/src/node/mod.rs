//! The node agent's pieces that act on the node itself.

pub mod gateway;
