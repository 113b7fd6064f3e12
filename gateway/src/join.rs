//! Join addresses for the nodes' management ports, from `ipam`.
//!
//! The join switch is an ordinary `ipam` subnet ([`JOIN_SUBNET`]) whose gateway is the
//! router's join port ([`Cluster::router_join_ip`]), so that address is never handed out. Each
//! node's `ovn0` gets one lease, owned by `node/<name>`: asking again gives the same address
//! and MAC, and a node that leaves releases it.
//!
//! ```
//! use gateway::{Cluster, join};
//!
//! let cluster = Cluster::default();
//! let mut ipam = ipam::Ipam::new(7);
//! join::add_join_subnet(&mut ipam, &cluster)?;
//! let n1 = join::assign(&mut ipam, "node1")?;
//! assert_eq!(n1.ip, "100.64.0.2".parse::<std::net::IpAddr>()?);
//! assert_eq!(join::assign(&mut ipam, "node1")?, n1); // idempotent
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::net::IpAddr;

use crate::config::Cluster;

/// The `ipam` subnet name of the join switch.
pub const JOIN_SUBNET: &str = "join";

/// A node's management port address and MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinAddress {
    /// The join address (of the join subnet's family).
    pub ip: IpAddr,
    /// The MAC for `ovn0` and its logical switch port.
    pub mac: ipam::MacAddr,
}

/// Why a join address could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The join subnet could not be added to the IPAM.
    #[error("join subnet {cidr} could not be added to the IPAM")]
    Subnet {
        /// The join subnet.
        cidr: ipnet::IpNet,
        /// What the IPAM said.
        #[source]
        source: Box<ipam::IpamError>,
    },
    /// A node got no join address.
    #[error("node {node} got no join address")]
    Assign {
        /// The node.
        node: String,
        /// What the IPAM said.
        #[source]
        source: Box<ipam::IpamError>,
    },
}

/// Adds the join subnet of `cluster` to `ipam` (gateway: the router's join address).
///
/// # Errors
/// [`JoinError::Subnet`] when the subnet cannot be added (for example, it exists).
pub fn add_join_subnet(ipam: &mut ipam::Ipam, cluster: &Cluster) -> Result<(), JoinError> {
    ipam.add_subnet(
        ipam::SubnetConfig::new(JOIN_SUBNET, cluster.join_cidr)
            .with_gateway(cluster.router_join_ip),
    )
    .map_err(|e| JoinError::Subnet {
        cidr: cluster.join_cidr,
        source: Box::new(e),
    })
}

/// The owner name of `node`'s join lease.
#[must_use]
pub fn owner(node: &str) -> String {
    format!("node/{node}")
}

/// The join address of `node` (allocated on first use, the same one afterwards).
///
/// # Errors
/// [`JoinError::Assign`] when the join subnet is missing or full.
pub fn assign(ipam: &mut ipam::Ipam, node: &str) -> Result<JoinAddress, JoinError> {
    let owner = owner(node);
    let lease = ipam
        .allocate(&ipam::Request::new(JOIN_SUBNET, &owner))
        .map_err(|e| JoinError::Assign {
            node: node.to_owned(),
            source: Box::new(e),
        })?;
    let ip = lease
        .addresses()
        .next()
        .expect("a lease in a single-family subnet has an address");
    Ok(JoinAddress { ip, mac: lease.mac })
}

/// Releases `node`'s join address (a node that left the cluster).
pub fn release(ipam: &mut ipam::Ipam, node: &str) -> Option<JoinAddress> {
    let lease = ipam.release(&owner(node))?;
    Some(JoinAddress {
        ip: lease.addresses().next()?,
        mac: lease.mac,
    })
}
