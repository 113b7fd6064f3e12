//! The one error type of the crate.

use std::net::IpAddr;

use crate::{Family, MacAddr};

/// Why a reserved address was refused.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Reserved {
    /// The subnet's gateway.
    Gateway,
    /// An address of the subnet's exclusion list.
    Excluded,
    /// The network or broadcast address of an IPv4 subnet, or the subnet-router anycast
    /// address of an IPv6 subnet.
    Network,
}

impl std::fmt::Display for Reserved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reserved::Gateway => "the gateway",
            Reserved::Excluded => "excluded",
            Reserved::Network => "a network or broadcast address",
        })
    }
}

/// Everything that can go wrong in the IPAM. Each variant names the subnet, address, entry or
/// owner involved, so that the message can go straight into a Kubernetes Event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpamError {
    /// No subnet of that name.
    #[error("subnet `{subnet}` does not exist")]
    UnknownSubnet {
        /// The name asked for.
        subnet: String,
    },
    /// A subnet of that name exists already.
    #[error("subnet `{subnet}` exists already")]
    DuplicateSubnet {
        /// The name given.
        subnet: String,
    },
    /// The subnet's CIDR list is empty, longer than two, or has two CIDRs of one family.
    #[error("subnet `{subnet}`: {reason}")]
    BadCidrs {
        /// The subnet.
        subnet: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A gateway is outside every CIDR of its family, or there are two of one family.
    #[error("subnet `{subnet}`: gateway {gateway} is not a usable address of the subnet")]
    BadGateway {
        /// The subnet.
        subnet: String,
        /// The gateway given.
        gateway: IpAddr,
    },
    /// Text that is not an address, an `a..b` range or a CIDR.
    #[error("`{entry}` is not an address, an `a..b` range or a CIDR: {reason}")]
    InvalidEntry {
        /// The text given.
        entry: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An exclusion or pool entry of a subnet's configuration could not be parsed.
    #[error("subnet `{subnet}`: `{entry}` is not an address, an `a..b` range or a CIDR: {reason}")]
    BadEntry {
        /// The subnet.
        subnet: String,
        /// The entry as written.
        entry: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Text that is not a MAC address.
    #[error("`{input}` is not a MAC address (six hex octets separated by `:` or `-`)")]
    InvalidMac {
        /// The text given.
        input: String,
    },
    /// An exclusion or pool entry lies (partly) outside the subnet.
    #[error("subnet `{subnet}`: entry `{entry}` is outside the subnet")]
    EntryOutsideSubnet {
        /// The subnet.
        subnet: String,
        /// The entry as written.
        entry: String,
    },
    /// Two pools (or a pool with itself) share addresses.
    #[error(
        "subnet `{subnet}`: pool `{first}` entry `{first_entry}` overlaps pool `{second}` entry `{second_entry}`"
    )]
    PoolOverlap {
        /// The subnet.
        subnet: String,
        /// The first pool.
        first: String,
        /// Its overlapping entry.
        first_entry: String,
        /// The second pool.
        second: String,
        /// Its overlapping entry.
        second_entry: String,
    },
    /// Two pools have one name, or a pool has an empty name.
    #[error("subnet `{subnet}`: pool name `{pool}` is empty or used twice")]
    BadPoolName {
        /// The subnet.
        subnet: String,
        /// The name.
        pool: String,
    },
    /// No pool of that name in the subnet.
    #[error("subnet `{subnet}` has no pool `{pool}`")]
    UnknownPool {
        /// The subnet.
        subnet: String,
        /// The pool asked for.
        pool: String,
    },
    /// Nothing left to hand out.
    #[error("subnet `{subnet}` pool `{pool}`: no free {family} address")]
    Exhausted {
        /// The subnet.
        subnet: String,
        /// The pool (`default` for the rest of the subnet).
        pool: String,
        /// The family that ran out.
        family: Family,
    },
    /// The address is leased to another owner.
    #[error("subnet `{subnet}`: {address} is held by `{owner}`")]
    AddressInUse {
        /// The subnet.
        subnet: String,
        /// The address asked for.
        address: IpAddr,
        /// Its current owner.
        owner: String,
    },
    /// The MAC is leased to another owner.
    #[error("MAC {mac} is held by `{owner}`")]
    MacInUse {
        /// The MAC asked for.
        mac: MacAddr,
        /// Its current owner.
        owner: String,
    },
    /// The MAC is multicast or all zero.
    #[error("MAC {mac} cannot be assigned to an interface (multicast or zero)")]
    BadMac {
        /// The MAC given.
        mac: MacAddr,
    },
    /// A static request for a reserved address without `allow_reserved`.
    #[error("subnet `{subnet}`: {address} is {reason}; ask with allow_reserved to take it")]
    ReservedAddress {
        /// The subnet.
        subnet: String,
        /// The address asked for.
        address: IpAddr,
        /// Why it is reserved.
        reason: Reserved,
    },
    /// A static address outside the subnet.
    #[error("subnet `{subnet}`: {address} is outside the subnet")]
    OutsideSubnet {
        /// The subnet.
        subnet: String,
        /// The address asked for.
        address: IpAddr,
    },
    /// Two static addresses of one family in one request.
    #[error("request for `{owner}` names two {family} addresses")]
    TwoAddressesOfOneFamily {
        /// The owner.
        owner: String,
        /// The family.
        family: Family,
    },
    /// An ordinal request on a pool, or an ordinal past the end of the pool's list.
    #[error(
        "subnet `{subnet}` pool `{pool}`: no {family} entry for ordinal {ordinal} (the pool lists {len})"
    )]
    OrdinalOutOfRange {
        /// The subnet.
        subnet: String,
        /// The pool.
        pool: String,
        /// The family.
        family: Family,
        /// The ordinal asked for.
        ordinal: u64,
        /// How many addresses of that family the pool lists.
        len: u128,
    },
    /// The owner holds a lease that does not match the new request.
    #[error(
        "`{owner}` already holds {held} in subnet `{subnet}`, which does not match the request ({asked})"
    )]
    LeaseMismatch {
        /// The owner.
        owner: String,
        /// The subnet of the existing lease.
        subnet: String,
        /// The existing lease.
        held: String,
        /// What the request asked for.
        asked: String,
    },
    /// The owner name is empty.
    #[error("an owner name cannot be empty")]
    EmptyOwner,
    /// The owner name is longer than 4095 bytes.
    #[error("owner names are limited to 4095 bytes; this one has {owner_len}")]
    OwnerTooLong {
        /// Length of the name given.
        owner_len: usize,
    },
    /// The owner names of all live leases would exceed 4 GiB in total.
    #[error("no room for an owner name of {owner_len} bytes: owner names exceed 4 GiB in total")]
    OwnerSpaceFull {
        /// Length of the name that did not fit.
        owner_len: usize,
    },
    /// A subnet still holds leases and cannot be removed.
    #[error("subnet `{subnet}` still holds {leases} leases")]
    SubnetInUse {
        /// The subnet.
        subnet: String,
        /// How many leases it holds.
        leases: usize,
    },
    /// A saved state does not restore cleanly.
    #[error("the saved state does not restore cleanly: {problems} problems, the first: {first}")]
    InconsistentState {
        /// How many problems.
        problems: usize,
        /// The first problem, as text.
        first: String,
    },
}
