//! Typed OVN models on top of the `ovsdb` crate.
//!
//! `ovn-model` sits between `ovsdb` (values, schemas, transactions, the client) and the planners
//! (`qos`, `gateway`) and the reference plugin. It is pure: it builds values (rows,
//! transactions) and never touches a socket; a client sends what it builds.
//!
//! - **Generated models** ([`nb`], [`sb`], [`vswitch`]): one struct per table of
//!   OVN_Northbound, OVN_Southbound and Open_vSwitch, made by `ovsdb-codegen` from the
//!   OVN 23.03 / OVS 3.1 schemas vendored in `codegen/` and checked in; a test regenerates them
//!   and fails on any difference, another checks the installed schemas against the vendored ones. Each implements [`ovsdb::Table`]: `from_row` is forgiving (an unknown enum
//!   value becomes `Other(..)`, a missing or mistyped column its default, with a
//!   [`ovsdb::DecodeWarning`]), `to_row` is strict (checked against the model's schema). The
//!   override table (`codegen/*.json`) gives some columns domain types: [`MacAddr`],
//!   [`LspAddress`], `Vec<IpNet>` router networks.
//! - **Schema compatibility** ([`compat`]): a server's schema against a model's, tolerating
//!   added tables and columns and reporting missing ones, like the OVS C IDL.
//! - **Plans** ([`plan`]): the one change type of the stack. Every writer of OVN rows
//!   produces a [`plan::Plan`]: steps, each a change to one row with why it is made; plans of
//!   one reconcile step merge into one, and a plan becomes one transaction in which a row of a
//!   non-root table is always inserted together with its parent's reference, a parent that
//!   must exist is guarded by a `wait`, and the server's answer comes back in the plan's words.
//! - **Topology** ([`topology`]): which tables are roots and which column keeps each other
//!   table's rows alive, row constructors (switches, ports, routers, load balancers, ACLs,
//!   port groups, address sets, NAT, policies, routes, gateway chassis, HA groups, DHCP, DNS,
//!   QoS, meters) and wiring helpers on [`plan::Plan`].
//! - **Owner tags** ([`owner`]) and **reconcile** ([`reconcile`]): every row the stack writes
//!   carries `ovnkit.io/owner`, `object`, `role` (and `id`) in its `external_ids`; a planner
//!   says what it wants, reads what its scope owns, and [`reconcile::diff`] adds the inserts,
//!   updates and deletes between the two to a plan.
//! - **Typed snapshot** ([`snapshot`]): typed lookups by UUID or name over a replica snapshot
//!   of `ovsdb`, following references (the ports of a switch, the switch of a port), and the
//!   rows an owner scope holds, decoding only the rows asked for; monitor requests built from
//!   model tables ([`snapshot::Monitor`]).
//! - **Typed change events** ([`events`]): `Inserted(T)`, `Modified { old, new }`,
//!   `Deleted(T)` per table, from a replica's change set and the snapshots around it.
//!
//! # The reconcile shape
//!
//! Every planner (the `qos` and `gateway` crates, the controller's reconcilers) is the same
//! pure function: intent + observed state -> [`plan::Plan`]. A new planner starts from
//! `reconcile.rs` (the shape) and `owner.rs` (the tags); `qos/src/plan_nb.rs` is a small
//! complete example.
//!
//! ```
//! use ovn_model::nb::{LogicalRouter, LogicalRouterStaticRoute, LogicalSwitch};
//! use ovn_model::owner::{Component, Key, Object, Scope};
//! use ovn_model::plan::Plan;
//! use ovn_model::reconcile::{self, OwnedRow, Want};
//! use ovsdb::Uuid;
//!
//! /// A toy planner: one static route per wanted prefix, owned by component "routes".
//! fn plan_routes(prefixes: &[&str], router: Uuid, owned: Vec<OwnedRow>)
//!     -> Result<Plan, Box<dyn std::error::Error>> {
//!     let mut wants = Vec::new();
//!     for p in prefixes {
//!         let key = Key::new("routes", Object::cluster(), "route").with_id(*p);
//!         let row = LogicalRouterStaticRoute::new(p.parse()?, "100.64.0.1".parse()?);
//!         wants.push(Want::child::<LogicalRouter, _>(key, &row, router, format!("route to {p}"))?);
//!     }
//!     let mut plan = Plan::nb();
//!     reconcile::diff(&mut plan, wants, owned)?;
//!     Ok(plan)
//! }
//!
//! let router = Uuid::from_u128(1);
//! let routes = plan_routes(&["10.1.0.0/16", "10.2.0.0/16"], router, Vec::new())?;
//! assert_eq!(routes.steps().len(), 2); // two inserts into the router
//!
//! // Plans of one reconcile step merge into one transaction (named rows are renumbered).
//! let mut step = Plan::nb();
//! step.insert(&LogicalSwitch::new("ls1"))?;
//! step.merge(routes)?;
//! let prepared = step.validated(ovn_model::nb::schema())?;
//! // A wait that the router exists, the switch, the two routes and one mutate of the router
//! // that adds both.
//! assert_eq!(prepared.transaction().len(), 5);
//! # let _ = Scope::component(Component::GATEWAY);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Typed rows
//!
//! ```
//! use ovn_model::nb::{LoadBalancer, LoadBalancerProtocol, LogicalSwitch};
//! use ovn_model::plan::Plan;
//! use ovsdb::{Row, Table, Uuid};
//!
//! // Build a plan; it becomes one transaction, checked against a schema.
//! let mut plan = Plan::nb();
//! let sw = plan.insert(&LogicalSwitch::new("web").with_subnet("10.0.1.0/24".parse()?))?;
//! let lb = plan.insert(&LoadBalancer::new("web-lb", Some(LoadBalancerProtocol::Tcp))
//!     .with_vip("10.96.0.10:80".parse()?, &["10.0.1.2:8080".parse()?, "10.0.1.3:8080".parse()?]))?;
//! plan.attach_load_balancer(&sw, &lb)?;
//! let txn = plan.validated(ovn_model::nb::schema())?.into_transaction();
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
pub mod events;
pub mod owner;
pub mod plan;
pub mod reconcile;
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

// What every row constructor and plan needs, so that users depend on one crate.
pub use ipnet;
pub use ovsdb;
