//! An OVSDB client library: RFC 7047 plus the Open vSwitch extensions.
//!
//! `ovsdb` sits at the bottom of the ovnkit stack; `ovn-model`, the planners and the reference
//! plugin build on it. Its core is pure (no sockets, no clock, no runtime): values, schemas,
//! operations and transactions, JSON-RPC 1.0 framing and a sans-IO session, and an in-memory
//! replica fed by monitor updates. Behind the `client` feature a tokio driver pumps bytes between
//! that session and a TCP, unix or TLS socket.
//!
//! This release carries no API yet; the modules land with the ovsdb issues of the project
//! (values, schemas and transactions first, then monitors, the replica, reconnect, Raft and
//! locks).

pub mod framing;
pub mod jsonrpc;
pub mod session;
