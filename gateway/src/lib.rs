//! Pure planning of OVN egress gateways.
//!
//! `gateway` will turn egress intents (distributed, centralized active-backup or ECMP, with or
//! without SNAT, OVN-native gateway ports with EIP/FIP) plus node health and observed rows into
//! OVN changes (router policies, static routes, NAT, gateway chassis) and a node-side plan as
//! data. It reads no clock and touches no socket.
//!
//! This release carries no API yet.
