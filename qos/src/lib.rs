//! Pure planning of pod bandwidth QoS.
//!
//! `qos` will turn a QoS intent (ingress/egress rate and burst, DSCP, netem) plus the rows
//! observed in OVN/OVS into the minimal change set: OVN NB `QoS` rows and meters, or OVS
//! `QoS`/`Queue`/`Interface` settings on the node. It reads no clock and touches no socket.
//!
//! This release carries no API yet.
