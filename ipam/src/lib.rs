//! Pure, deterministic IP and MAC address management for ovnkit.
//!
//! `ipam` is the address manager under ovnkit's controller: it hands out addresses and MACs
//! for logical switch ports. It sits at the bottom of the crate stack: it depends on no other
//! ovnkit crate, does no IO, never reads a clock or a random source (a seed comes in through
//! [`Ipam::new`]), and returns values. `gateway` and the reference controller build on it.
//!
//! What it does:
//! - **Subnets** ([`SubnetConfig`]): IPv4, IPv6 or dual stack; a gateway (by default the first
//!   usable address) that is never handed out; exclusions as single addresses, `a..b` ranges or
//!   CIDRs ([`Entry`]). [`Ipam::update_subnet`] changes all of it without touching live leases
//!   and reports the leases that now sit on reserved addresses or outside the subnet.
//! - **Pools** ([`PoolConfig`]): named, disjoint sets of addresses; what they leave is the
//!   `default` pool. A pool's entry order is an address list for StatefulSet-style ordinals.
//! - **Leases** ([`Request`] -> [`Lease`]) keyed by owner: idempotent, all-or-nothing for dual
//!   stack, with static IPs and MACs whose conflicts name the current owner, and generated MACs
//!   that are unique and locally administered.
//! - **Release** with delayed reuse: a released address is handed out again only after every
//!   never-used address of its pool, oldest release first.
//! - **Restore** ([`Ipam::restore`]) from observed records after a restart, with a
//!   [`RestoreReport`] instead of a silent double allocation; [`IpamState`]s round-trip exactly.
//! - **Stats** ([`SubnetStats`]) per subnet, family and pool.
//!
//! Memory grows with the number of ranges and leases, never with the size of a subnet:
//! - free addresses are sorted ranges keyed by their end (`range_set.rs`; a whole IPv6 /64 is one
//!   entry, and taking the lowest address rewrites one value in place);
//! - released addresses wait in a per-pool queue ordered by a release sequence (`free.rs`);
//! - leases live in 24-byte slots, owner names back to back in one text arena, and the owner
//!   and address indexes are hash tables of 4-byte slot ids that keep no copy of their keys
//!   (`leases.rs`); the address index keeps each aligned block of 64 addresses in consecutive
//!   buckets, so addresses handed out in order stay close in memory too;
//! - generated MACs are a seeded bijection of a counter (`mac.rs`), so they are unique by
//!   construction and need no index entry; only static and restored MACs are indexed.
//!
//! That makes about 60 bytes per live lease with 15-byte owner names (see `benches/README.md`).
//! [`Ipam::reserve`] sizes the indexes ahead of a known number of leases.
//!
//! ```
//! use ipam::{Ipam, IpamError, PoolConfig, Request, SubnetConfig};
//!
//! let mut ipam = Ipam::new(2024);
//! ipam.add_subnet(
//!     SubnetConfig::new("ns1", "10.16.0.0/16".parse()?)
//!         .with_cidr("fd00:10:16::/64".parse()?)
//!         .with_exclude("10.16.0.2..10.16.0.10")
//!         .with_pool(PoolConfig::new("db").with_entry("10.16.5.10").with_entry("10.16.5.20").with_entry("fd00:10:16::5:10..fd00:10:16::5:11")),
//! )?;
//!
//! // Dual stack: one address per family, and a MAC.
//! let web = ipam.allocate(&Request::new("ns1", "ns1/web-x/eth0"))?;
//! assert_eq!(web.v4, Some("10.16.0.11".parse()?));
//! assert_eq!(web.v6, Some("fd00:10:16::2".parse()?));
//!
//! // Ordinal 1 of pool `db`: the second address of each family.
//! let db1 = ipam.allocate(&Request::new("ns1", "ns1/db-1/eth0").with_pool("db").with_ordinal(1))?;
//! assert_eq!(db1.v4, Some("10.16.5.20".parse()?));
//!
//! // The gateway is refused unless explicitly allowed.
//! let gw = Request::new("ns1", "ns1/odd/eth0").with_ip("10.16.0.1".parse()?);
//! assert!(matches!(ipam.allocate(&gw), Err(IpamError::ReservedAddress { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod addr;
mod allocate;
mod config;
mod error;
mod free;
mod ipam;
mod leases;
mod mac;
mod range_set;
mod request;
mod restore;
mod stats;
mod subnet;

pub use addr::{Entry, Family};
pub use config::{PoolConfig, SubnetConfig};
pub use error::{IpamError, Reserved};
pub use ipam::{Ipam, ReconfigIssue};
pub use mac::MacAddr;
pub use request::{Lease, Request};
pub use restore::{IpamState, LeaseRecord, ObservedLease, RestoreIssue, RestoreReport};
pub use stats::{FamilyStats, PoolStats, SubnetStats};

/// Name of the pool made of the addresses that no named pool covers.
pub const DEFAULT_POOL: &str = "default";
