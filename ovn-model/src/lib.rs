//! Typed OVN models on top of the `ovsdb` crate.
//!
//! `ovn-model` sits between `ovsdb` (values, schemas, transactions, the client) and the planners
//! (`qos`, `gateway`) and the reference plugin. It is pure: it builds values (rows,
//! transactions) and never touches a socket; a client sends what it builds.
//!
//! - **Generated models** ([`nb`], [`sb`], [`vswitch`]): one struct per table of
//!   OVN_Northbound, OVN_Southbound and Open_vSwitch, made by `ovsdb-codegen` from the installed
//!   OVN 23.03 / OVS 3.1 schemas and checked in; a test regenerates them and fails on any
//!   difference. Each implements [`ovsdb::Table`]: `from_row` is forgiving (an unknown enum
//!   value becomes `Other(..)`, a missing or mistyped column its default, with a
//!   [`ovsdb::DecodeWarning`]), `to_row` is strict (checked against the model's schema). The
//!   override table (`codegen/*.json`) gives some columns domain types: [`MacAddr`],
//!   [`LspAddress`], `Vec<IpNet>` router networks.
//! - **Schema compatibility** ([`compat`]): a server's schema against a model's, tolerating
//!   added tables and columns and reporting missing ones, like the OVS C IDL.
//! - **Topology** ([`topology`]): switches, ports, routers, load balancers, ACLs, port groups,
//!   address sets, NAT, policies, routes, gateway chassis, HA groups, DHCP, DNS, QoS and meters
//!   as typed changes in a [`topology::ChangeSet`] that becomes one transaction, in which a
//!   non-root row is always referenced by its parent.
//! - **Typed snapshot** ([`snapshot`]): typed lookups by UUID or name over a replica snapshot
//!   of `ovsdb`, following references (the ports of a switch, the switch of a port), decoding
//!   only the rows asked for.
//!
//! ```
//! use ovn_model::nb::{LoadBalancer, LoadBalancerProtocol, LogicalSwitch};
//! use ovn_model::topology::ChangeSet;
//! use ovsdb::{Row, Table, Uuid};
//!
//! // Build a change set; it becomes one transaction, checked against a schema.
//! let mut cs = ChangeSet::nb();
//! let sw = cs.insert(&LogicalSwitch::new("web").with_subnet("10.0.1.0/24".parse()?))?;
//! let lb = cs.insert(&LoadBalancer::new("web-lb", Some(LoadBalancerProtocol::Tcp))
//!     .with_vip("10.96.0.10:80".parse()?, &["10.0.1.2:8080".parse()?, "10.0.1.3:8080".parse()?]))?;
//! cs.attach_load_balancer(&sw, &lb)?;
//! let txn = cs.build(ovn_model::nb::schema())?.into_transaction();
//! assert_eq!(txn.len(), 2);
//!
//! // Decoding is forgiving: an unknown protocol from a newer server is kept as Other.
//! let row = Row::new().with("name", "x").with("protocol", "quic");
//! let (lb, warnings) = LoadBalancer::from_row(Uuid::NIL, &row);
//! assert_eq!(lb.protocol, Some(LoadBalancerProtocol::Other("quic".into())));
//! assert!(warnings.iter().all(|w| w.problem == ovsdb::table::DecodeProblem::Missing));
//! // Writing is strict: the same value is refused.
//! assert!(lb.to_row().is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod codec;
pub mod compat;
mod domain;
pub mod snapshot;
pub mod topology;

// The generated models are formatted by the generator (prettyplease), which rustfmt would
// reformat slightly; the freshness test keeps them byte-for-byte as generated.
#[rustfmt::skip]
pub mod nb;
#[rustfmt::skip]
pub mod sb;
#[rustfmt::skip]
pub mod vswitch;

pub use domain::{DomainError, LspAddress, MacAddr};
