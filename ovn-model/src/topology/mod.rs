//! The topology layer: what OVN_Northbound (or Open_vSwitch) rows are made of and how they hang
//! together, for writing them through a [`Plan`](crate::plan::Plan).
//!
//! Rows of non-root tables (ports, ACLs, routes, NAT, ...) are garbage-collected by the server
//! unless another row refers to them. [`Root`] marks the tables whose rows live on their own
//! ([`Plan::insert`](crate::plan::Plan::insert) takes only those), [`ChildOf`] says which
//! column of which parent keeps each other table's rows alive
//! ([`Plan::insert_child`](crate::plan::Plan::insert_child) takes the parent with the row and
//! emits the reference in the same transaction). Rows that need children to be valid (a
//! `Meter` and its bands, an OVS `Port` and its interfaces) are created with them
//! ([`Plan::insert_with_children`](crate::plan::Plan::insert_with_children),
//! [`Plan::insert_child_with_children`](crate::plan::Plan::insert_child_with_children)). Both
//! lists are also data ([`ROOT_TABLES`], [`CHILD_LINKS`]), checked against the schemas by a
//! test; the plan uses them to delete rows of non-root tables from every parent column.
//!
//! The row constructors (`LogicalSwitch::new(..).with_subnet(..)`, `Acl::new`, `Nat::snat`,
//! ...) and the wiring helpers on [`Plan`](crate::plan::Plan) (router to switch, load
//! balancers, port groups, DHCP, DNS, HA groups) cover the common cases; every other column
//! stays reachable as a public field.
//!
//! ```
//! use ovn_model::nb::{LogicalRouter, LogicalRouterPort, LogicalSwitch, LogicalSwitchPort};
//! use ovn_model::plan::Plan;
//! use ovn_model::{LspAddress, MacAddr};
//!
//! let mut plan = Plan::nb();
//! let sw = plan.insert(&LogicalSwitch::new("sw0").with_subnet("10.0.0.0/24".parse()?))?;
//! let mac: MacAddr = "0a:00:00:00:00:01".parse()?;
//! plan.insert_child(&sw, &LogicalSwitchPort::new("pod1")
//!     .with_address(LspAddress::mac(mac, ["10.0.0.5".parse()?])))?;
//! let r = plan.insert(&LogicalRouter::new("r0"))?;
//! plan.connect_router_to_switch(&r, &sw, &LogicalRouterPort::new(
//!     "r0-sw0", "0a:00:00:00:00:ff".parse()?, ["10.0.0.1/24".parse()?]), "sw0-r0")?;
//! let prepared = plan.validated(ovn_model::nb::schema())?;
//! // Five inserts (switch, port, router, router port, its switch-side peer), and nothing else:
//! // every child's reference is inside its new parent's insert.
//! let json = serde_json::to_string(prepared.transaction())?;
//! assert!(json.contains(r#""ports":["named-uuid","#));
//! assert_eq!(prepared.transaction().len(), 5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod links;
mod rows;
mod wiring;

use ovsdb::Table;

pub use links::{CHILD_LINKS, ROOT_TABLES};
pub use wiring::HasLoadBalancers;

/// Tables whose rows live on their own (schema `isRoot`); only these can be created with
/// [`Plan::insert`](crate::plan::Plan::insert).
pub trait Root: Table {}

/// A non-root table `Self` whose rows are kept alive by the column `COLUMN` of a parent `P`.
pub trait ChildOf<P: Table>: Table {
    /// The parent's column that holds the references.
    const COLUMN: &'static str;
}

#[cfg(test)]
mod tests;
