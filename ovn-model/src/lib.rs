//! Typed OVN models on top of the `ovsdb` crate.
//!
//! `ovn-model` will hold the generated OVN_Northbound, OVN_Southbound and Open_vSwitch tables
//! (checked in and kept fresh by a test), typed row references, a topology layer (switches,
//! routers, ports, load balancers, ACLs, NAT, policies, routes, DNS, QoS) that produces change
//! sets, and a typed snapshot over a replica. It is pure: change sets are values; only a client
//! sends them.
//!
//! This release carries no API yet.
