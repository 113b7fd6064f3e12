//! An OVSDB client library: RFC 7047 plus the Open vSwitch extensions.
//!
//! `ovsdb` sits at the bottom of the ovnkit stack; `ovn-model`, the planners and the reference
//! plugin build on it. Its core is pure (no sockets, no clock, no runtime): values, schemas,
//! operations and transactions, JSON-RPC 1.0 framing and a sans-IO session, and an in-memory
//! replica fed by monitor updates. Behind the `client` feature a tokio driver pumps bytes between
//! that session and a TCP, unix or TLS socket.
//!
//! # What exists now
//!
//! - **Values** ([`value`]): [`Atom`], [`Datum`] (a [`Set`] or a [`Map`]), [`Uuid`] and
//!   [`NamedUuid`], with the exact RFC 7047 JSON forms, encoded and decoded straight through
//!   serde; [`DatumSeed`] and [`RowSeed`] decode against a column or table type.
//! - **Schemas** ([`schema`]): [`DatabaseSchema`] from a `.ovsschema` file or a `get_schema`
//!   reply, with every column constraint, and [`ColumnType::check`] for values.
//! - **Operations and transactions**: [`Insert`], [`Select`], [`Update`], [`Mutate`],
//!   [`Delete`], [`Wait`] and the other [`Operation`]s with their [`Condition`]s and
//!   [`Mutation`]s; a [`Transaction`] serializes to the `transact` params and decodes the
//!   reply's `result` into a [`TransactOutcome`] (typed per-operation handles) or a
//!   [`TransactError`] naming the failed operation; [`Transaction::validate`] checks it against
//!   a schema first ([`ValidationError`]).
//! - **Wire**: JSON-RPC 1.0 streaming framing ([`framing`]: concatenated JSON values split at
//!   any byte, scanned once however they arrive), messages with raw `params`/`result`
//!   ([`jsonrpc`]), and a sans-IO [`session::Session`] (bytes and time in, bytes and events
//!   out; ids matched, `echo` answered, `cancel`, inactivity probe).
//! - **Client** (feature `client`, tokio): `client::connect` over `tcp:`, `unix:` and `ssl:`
//!   remotes (rustls, chain checked against the CA as Open vSwitch does) or a list of them;
//!   it returns a driver to spawn, a cloneable `client::Client` (`list_dbs`, `get_schema`,
//!   `transact`, `transact_validated`, `echo`, `get_server_id`, any request; pipelined) and a
//!   stream of notifications.
//!
//! - **Monitors** ([`monitor`]): `monitor`, `monitor_cond` and `monitor_cond_since` requests
//!   as values (columns, conditions and `select` per table), `monitor_cond_change` and
//!   `monitor_cancel`, and the decoding of their replies and of `update`/`update2`/`update3`
//!   straight from the JSON text against the schema.
//! - **Replica** ([`replica`]): an in-memory copy fed by those replies and notifications, with
//!   O(1) snapshots, schema and user indexes, coalesced per-consumer change sets, full resync
//!   that reports the difference, and the last transaction id for resumption.
//!
//! - **Replica client** (feature `client`): `client::ReplicaClient` keeps a replica live across
//!   reconnects (OVS-like backoff, inactivity probe, remote lists in order or shuffled),
//!   resumes with `monitor_cond_since` or resyncs and reports the difference, follows the Raft
//!   leader through `_Server` (refusing stale members), holds a lock for leader election, and
//!   fails in-flight transactions as "may or may not have committed" instead of replaying them.
//!
//! ```
//! use ovsdb::{Datum, Insert, NamedUuid, Row, Transaction};
//!
//! let schema = ovsdb::DatabaseSchema::from_json_str(r#"{"name":"OVN_Northbound","version":"7.0.0",
//!     "tables":{"Logical_Switch":{"columns":{"name":{"type":"string"},
//!       "external_ids":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}}},
//!       "isRoot":true}}}"#).unwrap();
//! let mut txn = Transaction::new("OVN_Northbound");
//! let sw = txn.push(
//!     Insert::new("Logical_Switch", Row::new()
//!         .with("name", "sw0")
//!         .with("external_ids", Datum::map([("owner", "docs")])))
//!     .uuid_name(NamedUuid::new("sw0").unwrap()),
//! );
//! txn.validate(&schema).unwrap();
//! let params = serde_json::to_string(&txn).unwrap(); // the "transact" params
//! # assert!(params.contains("uuid-name"));
//! let outcome = txn
//!     .decode_result_slice(br#"[{"uuid":["uuid","e0bbd7e6-7b5a-4f0e-9c6c-45a2c7b4b8d1"]}]"#)
//!     .unwrap();
//! assert!(outcome.uuid(&sw).is_some());
//! ```

pub mod framing;
pub mod jsonrpc;
pub mod session;

pub mod condition;
pub mod monitor;
pub mod ops;
pub mod replica;
pub mod result;
mod row;
pub mod schema;
pub mod table;
pub mod transaction;
pub mod validate;
pub mod value;

pub use condition::{Condition, Function, Mutation, Mutator};
pub use ops::{Delete, Insert, Mutate, OpKind, Operation, Select, Update, Wait, WaitUntil};
pub use result::{ErrorKind, OperationResult, OvsdbError, TransactError, TransactOutcome};
pub use row::Row;
pub use schema::{
    AtomRole, BaseType, ColumnSchema, ColumnType, ConstraintError, DatabaseSchema, Max, RefType,
    SchemaError, TableSchema,
};
pub use table::{DecodeWarning, EncodeError, Ref, Table, WeakRef};
pub use transaction::{
    CountHandle, InsertHandle, IntoOperation, OpHandle, SelectHandle, Transaction,
};
pub use validate::ValidationError;
pub use value::{
    Atom, AtomSeed, AtomicType, Datum, DatumSeed, Map, NamedUuid, RowSeed, Set, Uuid, ValueError,
};
#[cfg(feature = "client")]
pub mod client;
