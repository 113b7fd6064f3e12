//! The library part of the `ovnkit` binary: [`sandbox`] (`ovnkit sandbox`), the whole plugin
//! on one machine from Kubernetes manifests, and the process wiring (the controller and the
//! agents as processes on a lab) that the sandbox and the lab tests share.
//!
//! The binary's other commands (`controller`, `agent`, `cni`) are thin wrappers over the
//! `ovnkit-kube` library.

pub mod sandbox;
