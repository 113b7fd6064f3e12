//! Rebuilding state: from observed records after a restart, and from a saved [`IpamState`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::addr::{Family, to_u128};
use crate::error::{IpamError, Reserved};
use crate::subnet::Class;
use crate::{Ipam, MacAddr, SubnetConfig};

/// A lease as observed elsewhere (OVN logical switch ports, pod annotations).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedLease {
    /// The owner, for example `namespace/pod/interface`.
    pub owner: String,
    /// The subnet, when known; otherwise the subnet containing the first address is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// At most one address per family.
    pub addresses: Vec<IpAddr>,
    /// The MAC, when known; otherwise one is generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
}

/// Something a restore found. Records with an issue are skipped, except
/// [`RestoreIssue::Reserved`], whose lease is restored and flagged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "issue")]
pub enum RestoreIssue {
    /// The owner was seen before in the same restore (or holds a lease already).
    DuplicateOwner {
        /// The owner.
        owner: String,
    },
    /// The record is unusable: empty owner, no address, or two addresses of one family.
    BadRecord {
        /// The owner.
        owner: String,
        /// What is wrong.
        reason: String,
    },
    /// The record names a subnet that does not exist.
    UnknownSubnet {
        /// The owner.
        owner: String,
        /// The subnet named.
        subnet: String,
    },
    /// An address lies outside the record's subnet, or outside every subnet.
    OutsideSubnets {
        /// The owner.
        owner: String,
        /// The address.
        address: IpAddr,
    },
    /// Several overlapping subnets contain the address and the record names none.
    Ambiguous {
        /// The owner.
        owner: String,
        /// The address.
        address: IpAddr,
        /// The subnets that contain it.
        subnets: Vec<String>,
    },
    /// The address is held by an owner restored earlier.
    AddressConflict {
        /// The owner of the skipped record.
        owner: String,
        /// The subnet.
        subnet: String,
        /// The address.
        address: IpAddr,
        /// Who holds it.
        holder: String,
    },
    /// The MAC is held by an owner restored earlier, or is multicast.
    MacConflict {
        /// The owner of the skipped record.
        owner: String,
        /// The MAC.
        mac: MacAddr,
        /// Who holds it (empty when the MAC is not assignable).
        holder: String,
    },
    /// Restored, but the address is the gateway, excluded, or a network address.
    Reserved {
        /// The owner.
        owner: String,
        /// The subnet.
        subnet: String,
        /// The address.
        address: IpAddr,
        /// Why it is reserved.
        reason: Reserved,
    },
}

impl RestoreIssue {
    /// True when the record was restored despite the issue.
    #[must_use]
    pub fn restored(&self) -> bool {
        matches!(self, RestoreIssue::Reserved { .. })
    }

    /// The owner of the record the issue is about.
    #[must_use]
    pub fn owner(&self) -> &str {
        match self {
            RestoreIssue::DuplicateOwner { owner }
            | RestoreIssue::BadRecord { owner, .. }
            | RestoreIssue::UnknownSubnet { owner, .. }
            | RestoreIssue::OutsideSubnets { owner, .. }
            | RestoreIssue::Ambiguous { owner, .. }
            | RestoreIssue::AddressConflict { owner, .. }
            | RestoreIssue::MacConflict { owner, .. }
            | RestoreIssue::Reserved { owner, .. } => owner,
        }
    }
}

impl fmt::Display for RestoreIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreIssue::DuplicateOwner { owner } => write!(f, "`{owner}`: seen twice, skipped"),
            RestoreIssue::BadRecord { owner, reason } => write!(f, "`{owner}`: {reason}, skipped"),
            RestoreIssue::UnknownSubnet { owner, subnet } => {
                write!(f, "`{owner}`: no subnet `{subnet}`, skipped")
            }
            RestoreIssue::OutsideSubnets { owner, address } => {
                write!(
                    f,
                    "`{owner}`: {address} is in no subnet of the record, skipped"
                )
            }
            RestoreIssue::Ambiguous {
                owner,
                address,
                subnets,
            } => {
                write!(
                    f,
                    "`{owner}`: {address} is in several subnets ({}), skipped",
                    subnets.join(", ")
                )
            }
            RestoreIssue::AddressConflict {
                owner,
                subnet,
                address,
                holder,
            } => {
                write!(
                    f,
                    "`{owner}`: {address} in `{subnet}` is held by `{holder}`, skipped"
                )
            }
            RestoreIssue::MacConflict { owner, mac, holder } if holder.is_empty() => {
                write!(f, "`{owner}`: MAC {mac} cannot be assigned, skipped")
            }
            RestoreIssue::MacConflict { owner, mac, holder } => {
                write!(f, "`{owner}`: MAC {mac} is held by `{holder}`, skipped")
            }
            RestoreIssue::Reserved {
                owner,
                subnet,
                address,
                reason,
            } => {
                write!(
                    f,
                    "`{owner}`: {address} in `{subnet}` is {reason}; restored anyway"
                )
            }
        }
    }
}

/// What a restore did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[must_use]
pub struct RestoreReport {
    /// Records restored as leases.
    pub restored: usize,
    /// Records skipped or flagged, in input order.
    pub issues: Vec<RestoreIssue>,
}

/// One lease in a [`IpamState`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// The owner.
    pub owner: String,
    /// The subnet.
    pub subnet: String,
    /// The addresses, IPv4 first.
    pub addresses: Vec<IpAddr>,
    /// The MAC.
    pub mac: MacAddr,
}

/// The complete state of an [`Ipam`]: `Ipam::from_state(ipam.state())` equals `ipam`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamState {
    /// The seed given to [`Ipam::new`].
    pub seed: u64,
    /// How many MACs the generator has produced.
    pub mac_counter: u64,
    /// Subnets, in the order they were added.
    pub subnets: Vec<SubnetConfig>,
    /// Leases, sorted by owner.
    pub leases: Vec<LeaseRecord>,
    /// Released addresses per subnet, oldest first (subnets without any are left out).
    pub released: BTreeMap<String, Vec<IpAddr>>,
}

/// Whether addresses outside their subnet are accepted (a saved state) or reported (observations).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Observation,
    State,
}

impl Ipam {
    /// Adds leases from observed records. Nothing is ever allocated twice: a record whose
    /// address or MAC is held by an earlier record (or an existing lease) is skipped and
    /// reported, as are records outside every subnet. Records on reserved addresses are
    /// restored and reported.
    pub fn restore(&mut self, records: impl IntoIterator<Item = ObservedLease>) -> RestoreReport {
        let records = records.into_iter();
        self.leases.reserve(records.size_hint().0);
        let index = CidrIndex::new(self);
        let mut report = RestoreReport::default();
        for record in records {
            if self.restore_one(&record, &index, Mode::Observation, &mut report.issues) {
                report.restored += 1;
            }
        }
        report
    }

    /// Returns false (and pushes an issue) when the record is skipped.
    fn restore_one(
        &mut self,
        rec: &ObservedLease,
        index: &CidrIndex,
        mode: Mode,
        issues: &mut Vec<RestoreIssue>,
    ) -> bool {
        let owner = || rec.owner.clone();
        let bad = |reason: &str| RestoreIssue::BadRecord {
            owner: owner(),
            reason: reason.into(),
        };
        if rec.owner.is_empty() {
            issues.push(bad("empty owner"));
            return false;
        }
        if rec.owner.len() > crate::leases::MAX_OWNER_LEN {
            issues.push(bad("owner name longer than 4095 bytes"));
            return false;
        }
        if !self.leases.has_room_for(&rec.owner) {
            issues.push(bad("owner names exceed 4 GiB in total"));
            return false;
        }
        let Some(&first) = rec.addresses.first() else {
            issues.push(bad("no address"));
            return false;
        };
        let mut addrs: [Option<u128>; 2] = [None, None];
        for &ip in &rec.addresses {
            let slot = &mut addrs[Family::of(ip).index()];
            if slot.is_some() {
                issues.push(bad("two addresses of one family"));
                return false;
            }
            *slot = Some(to_u128(ip));
        }
        if self.leases.by_owner(&rec.owner).is_some() {
            issues.push(RestoreIssue::DuplicateOwner { owner: owner() });
            return false;
        }
        let sid = match &rec.subnet {
            Some(name) => match self.names.get(name) {
                Some(&sid) => sid,
                None => {
                    issues.push(RestoreIssue::UnknownSubnet {
                        owner: owner(),
                        subnet: name.clone(),
                    });
                    return false;
                }
            },
            None => match index.lookup(first) {
                Ok(sid) => sid,
                Err(subnets) if subnets.is_empty() => {
                    issues.push(RestoreIssue::OutsideSubnets {
                        owner: owner(),
                        address: first,
                    });
                    return false;
                }
                Err(sids) => {
                    let subnets = sids
                        .iter()
                        .map(|&s| self.subnet(s).config.name.clone())
                        .collect();
                    issues.push(RestoreIssue::Ambiguous {
                        owner: owner(),
                        address: first,
                        subnets,
                    });
                    return false;
                }
            },
        };
        let subnet = self.subnet(sid);
        let mut classes = [None, None];
        let mut flagged = Vec::new();
        for family in [Family::V4, Family::V6] {
            let Some(a) = addrs[family.index()] else {
                continue;
            };
            let address = crate::addr::from_u128(family, a);
            let class = subnet
                .fam(family)
                .map_or(Class::Outside, |fs| fs.classify(a));
            if class == Class::Outside && mode == Mode::Observation {
                issues.push(RestoreIssue::OutsideSubnets {
                    owner: owner(),
                    address,
                });
                return false;
            }
            if let Some(holder) = self.leases.by_addr(sid, family, a) {
                issues.push(RestoreIssue::AddressConflict {
                    owner: owner(),
                    subnet: subnet.config.name.clone(),
                    address,
                    holder: holder.owner.to_string(),
                });
                return false;
            }
            if let Class::Reserved(reason) = class {
                flagged.push(RestoreIssue::Reserved {
                    owner: owner(),
                    subnet: subnet.config.name.clone(),
                    address,
                    reason,
                });
            }
            classes[family.index()] = Some(class);
        }
        let mac = match rec.mac {
            Some(mac) => match self.check_mac(mac) {
                Ok(()) => mac.to_u64(),
                Err(e) => {
                    let holder = match e {
                        IpamError::MacInUse { owner, .. } => owner,
                        _ => String::new(),
                    };
                    issues.push(RestoreIssue::MacConflict {
                        owner: owner(),
                        mac,
                        holder,
                    });
                    return false;
                }
            },
            None => self.generate_mac(),
        };
        issues.extend(flagged);
        let subnet = self.subnets[sid as usize]
            .as_mut()
            .expect("subnet ids in use are live");
        for (i, class) in classes.iter().enumerate() {
            let (Some(class), Some(a)) = (class, addrs[i]) else {
                continue;
            };
            let Some(fs) = subnet.fams[i].as_mut() else {
                continue;
            };
            match class {
                Class::Outside => {}
                Class::Reserved(_) => fs.leased += 1,
                Class::Pool(p) => {
                    fs.leased += 1;
                    fs.pools[*p].take(a);
                }
            }
        }
        subnet.leases += 1;
        let key = self.leases.key(&rec.owner);
        self.store(key, sid, addrs, mac);
        true
    }

    /// The complete state, in canonical order (leases sorted by owner).
    #[must_use]
    pub fn state(&self) -> IpamState {
        let mut leases: Vec<LeaseRecord> = self
            .leases
            .iter()
            .map(|r| LeaseRecord {
                owner: r.owner.to_string(),
                subnet: self.subnet(r.subnet).config.name.clone(),
                addresses: crate::Lease::from_ref(&r).addresses().collect(),
                mac: MacAddr::from_u64(r.mac),
            })
            .collect();
        leases.sort_unstable_by(|a, b| a.owner.cmp(&b.owner));
        let mut released = BTreeMap::new();
        for (sid, s) in self.subnets.iter().enumerate() {
            let Some(s) = s else { continue };
            let list = self.released_of(sid as u32);
            if !list.is_empty() {
                released.insert(s.config.name.clone(), list);
            }
        }
        IpamState {
            seed: self.seed,
            mac_counter: self.macs.counter,
            subnets: self
                .subnets
                .iter()
                .flatten()
                .map(|s| s.config.clone())
                .collect(),
            leases,
            released,
        }
    }

    /// Rebuilds a manager from a saved state. Fails if the state is not self-consistent (for
    /// example two leases holding one address).
    pub fn from_state(state: IpamState) -> Result<Self, IpamError> {
        let mut ipam = Ipam::new(state.seed);
        // Set first, so that generated MACs are recognised as such and left out of the index.
        ipam.macs.counter = state.mac_counter;
        for cfg in state.subnets {
            ipam.add_subnet(cfg)?;
        }
        ipam.leases.reserve(state.leases.len());
        let index = CidrIndex::new(&ipam);
        let mut issues = Vec::new();
        for lease in state.leases {
            let rec = ObservedLease {
                owner: lease.owner,
                subnet: Some(lease.subnet),
                addresses: lease.addresses,
                mac: Some(lease.mac),
            };
            ipam.restore_one(&rec, &index, Mode::State, &mut issues);
        }
        issues.retain(|i| !i.restored());
        for (subnet, list) in state.released {
            let sid = ipam.subnet_id(&subnet)?;
            for ip in list {
                let seq = ipam.next_seq();
                let fam = Family::of(ip);
                let a = to_u128(ip);
                let queued = ipam.subnets[sid as usize]
                    .as_mut()
                    .and_then(|s| s.fams[fam.index()].as_mut())
                    .is_some_and(|fs| match fs.classify(a) {
                        Class::Pool(p) if fs.pools[p].fresh.remove_one(a) => {
                            fs.pools[p].released.push(a, seq);
                            true
                        }
                        _ => false,
                    });
                if !queued {
                    issues.push(RestoreIssue::BadRecord {
                        owner: String::new(),
                        reason: format!("released address {ip} of `{subnet}` is not free"),
                    });
                }
            }
        }
        if let Some(first) = issues.first() {
            return Err(IpamError::InconsistentState {
                problems: issues.len(),
                first: first.to_string(),
            });
        }
        Ok(ipam)
    }
}

/// CIDRs of all subnets, sorted, to find the subnet of an address.
struct CidrIndex {
    /// (family, first address, subnet id) -> last address
    map: BTreeMap<(Family, u128, u32), u128>,
    overlapping: bool,
}

impl CidrIndex {
    fn new(ipam: &Ipam) -> Self {
        let mut map = BTreeMap::new();
        for (sid, s) in ipam.subnets.iter().enumerate() {
            for fs in s.iter().flat_map(|s| s.fams.iter().flatten()) {
                map.insert((fs.family, fs.first, sid as u32), fs.last);
            }
        }
        let mut overlapping = false;
        let mut reach: Option<(Family, u128)> = None;
        for (&(fam, first, _), &last) in &map {
            if let Some((f, end)) = reach
                && f == fam
                && first <= end
            {
                overlapping = true;
            }
            if reach.is_none_or(|(f, end)| f != fam || last > end) {
                reach = Some((fam, last));
            }
        }
        Self { map, overlapping }
    }

    /// The one subnet containing `ip`, or all that do (none or several).
    fn lookup(&self, ip: IpAddr) -> Result<u32, Vec<u32>> {
        let fam = Family::of(ip);
        let a = to_u128(ip);
        let mut found: Vec<u32> = Vec::new();
        for (&(f, _, sid), &last) in self.map.range(..=(fam, a, u32::MAX)).rev() {
            if f != fam {
                break;
            }
            if last >= a {
                found.push(sid);
            }
            if !self.overlapping {
                break;
            }
        }
        found.sort_unstable();
        match found.as_slice() {
            [one] => Ok(*one),
            _ => Err(found),
        }
    }
}
