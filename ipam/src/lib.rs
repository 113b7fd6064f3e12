//! Pure, deterministic IP and MAC address management.
//!
//! `ipam` will own subnets (IPv4, IPv6, dual-stack), exclusions, a reserved gateway, named pools,
//! static IP/MAC leases, release with delayed reuse and restore from observed state. It depends
//! on no other crate of ovnkit and does no IO.
//!
//! This release carries no API yet.
