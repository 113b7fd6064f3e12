//! A validated subnet: per family, the usable range, gateway, exclusions, pool layout and the
//! free addresses of each pool.

use std::collections::BTreeMap;

use ipnet::IpNet;

use crate::addr::{Entry, Family, from_u128, net_bounds, to_u128};
use crate::error::{IpamError, Reserved};
use crate::free::PoolFree;
use crate::range_set::RangeSet;
use crate::{DEFAULT_POOL, SubnetConfig};

/// Where an address falls in a family of a subnet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// Outside the CIDR.
    Outside,
    /// Inside, but never handed out without `allow_reserved`.
    Reserved(Reserved),
    /// An allocatable address of pool `n` (0 is the default pool).
    Pool(usize),
}

/// One family of a subnet.
#[derive(Clone, Debug)]
pub(crate) struct FamilyState {
    pub(crate) family: Family,
    pub(crate) cidr: IpNet,
    pub(crate) first: u128,
    pub(crate) last: u128,
    /// Usable bounds (network/broadcast removed where the family has them).
    pub(crate) usable: (u128, u128),
    pub(crate) gateway: u128,
    pub(crate) excluded: RangeSet,
    /// Named pool ranges: end -> (start, pool index >= 1).
    pub(crate) pool_ranges: BTreeMap<u128, (u128, usize)>,
    /// Per named pool (index - 1): its entries of this family in list order.
    pub(crate) pool_lists: Vec<Vec<(u128, u128)>>,
    /// Free addresses per pool, index 0 being the default pool.
    pub(crate) pools: Vec<PoolFree>,
    /// Leases with an address inside the CIDR.
    pub(crate) leased: u128,
}

impl FamilyState {
    /// Classifies an address of this family.
    pub(crate) fn classify(&self, a: u128) -> Class {
        if a < self.first || a > self.last {
            return Class::Outside;
        }
        if a < self.usable.0 || a > self.usable.1 {
            return Class::Reserved(Reserved::Network);
        }
        if a == self.gateway {
            return Class::Reserved(Reserved::Gateway);
        }
        if self.excluded.contains(a) {
            return Class::Reserved(Reserved::Excluded);
        }
        Class::Pool(self.pool_of(a))
    }

    /// The pool whose ranges contain `a` (0 when no named pool does).
    pub(crate) fn pool_of(&self, a: u128) -> usize {
        match self.pool_ranges.range(a..).next() {
            Some((_, &(start, pool))) if start <= a => pool,
            _ => 0,
        }
    }

    /// The `ordinal`-th address of named pool `pool` in list order, or the list length.
    pub(crate) fn nth_of_pool(&self, pool: usize, ordinal: u64) -> Result<u128, u128> {
        let list = &self.pool_lists[pool - 1];
        let mut left = u128::from(ordinal);
        let mut total = 0u128;
        for &(s, e) in list {
            let n = crate::range_set::count(s, e);
            if left < n {
                return Ok(s + left);
            }
            left -= n;
            total = total.saturating_add(n);
        }
        Err(total)
    }

    pub(crate) fn addr(&self, a: u128) -> std::net::IpAddr {
        from_u128(self.family, a)
    }
}

/// A validated subnet.
#[derive(Clone, Debug)]
pub(crate) struct Subnet {
    pub(crate) config: SubnetConfig,
    /// Index 0 IPv4, 1 IPv6.
    pub(crate) fams: [Option<FamilyState>; 2],
    /// Pool names; index 0 is the default pool.
    pub(crate) pool_names: Vec<String>,
    pub(crate) leases: usize,
}

impl Subnet {
    /// Validates `config` and lays out its free addresses (no leases subtracted yet).
    pub(crate) fn build(config: SubnetConfig) -> Result<Self, IpamError> {
        let name = config.name.clone();
        let bad = |reason| IpamError::BadCidrs {
            subnet: name.clone(),
            reason,
        };
        if name.is_empty() {
            return Err(bad("the subnet name is empty"));
        }
        if config.cidrs.is_empty() || config.cidrs.len() > 2 {
            return Err(bad("give one CIDR, or two of different families"));
        }
        let mut fams: [Option<FamilyState>; 2] = [None, None];
        for cidr in &config.cidrs {
            let family = Family::of_net(cidr);
            if fams[family.index()].is_some() {
                return Err(bad("two CIDRs of one family"));
            }
            fams[family.index()] = Some(family_layout(cidr.trunc(), config.pools.len()));
        }
        for &gw in &config.gateways {
            let fam = Family::of(gw);
            let state = fams[fam.index()].as_mut();
            let g = to_u128(gw);
            match state {
                Some(s) if s.usable.0 <= g && g <= s.usable.1 => s.gateway = g,
                _ => {
                    return Err(IpamError::BadGateway {
                        subnet: name.clone(),
                        gateway: gw,
                    });
                }
            }
        }
        if config.gateways.iter().filter(|g| g.is_ipv4()).count() > 1
            || config.gateways.iter().filter(|g| g.is_ipv6()).count() > 1
        {
            return Err(bad("two gateways of one family"));
        }
        for text in &config.exclude {
            let (fam, s, e) = parse_in_subnet(&name, &fams, text)?;
            if let Some(f) = fams[fam.index()].as_mut() {
                f.excluded.insert(s, e);
            }
        }
        let mut pool_names = vec![DEFAULT_POOL.to_string()];
        // Every named pool entry, per family: (start, end, pool index, entry text).
        let mut spans: [Vec<(u128, u128, usize, &str)>; 2] = [Vec::new(), Vec::new()];
        for (i, pool) in config.pools.iter().enumerate() {
            if pool.name.is_empty() || pool_names.contains(&pool.name) {
                return Err(IpamError::BadPoolName {
                    subnet: name.clone(),
                    pool: pool.name.clone(),
                });
            }
            pool_names.push(pool.name.clone());
            for text in &pool.entries {
                let (fam, s, e) = parse_in_subnet(&name, &fams, text)?;
                spans[fam.index()].push((s, e, i + 1, text));
                if let Some(f) = fams[fam.index()].as_mut() {
                    f.pool_lists[i].push((s, e));
                }
            }
        }
        for (fam_spans, state) in spans.iter_mut().zip(fams.iter_mut()) {
            let Some(state) = state.as_mut() else {
                continue;
            };
            fam_spans.sort_unstable();
            // Overlap check: compare each entry with the furthest-reaching one before it.
            let mut reach: Option<(u128, usize, &str)> = None;
            for &(s, e, pool, text) in fam_spans.iter() {
                if let Some((end, p, t)) = reach
                    && s <= end
                {
                    return Err(IpamError::PoolOverlap {
                        subnet: name.clone(),
                        first: pool_names[p].clone(),
                        first_entry: t.to_string(),
                        second: pool_names[pool].clone(),
                        second_entry: text.to_string(),
                    });
                }
                if reach.is_none_or(|(end, _, _)| e > end) {
                    reach = Some((e, pool, text));
                }
                state.pool_ranges.insert(e, (s, pool));
            }
            lay_out_free(state);
        }
        Ok(Self {
            config,
            fams,
            pool_names,
            leases: 0,
        })
    }

    /// The family state of `family`, if the subnet has that family.
    pub(crate) fn fam(&self, family: Family) -> Option<&FamilyState> {
        self.fams[family.index()].as_ref()
    }

    /// Index of the pool called `name`.
    pub(crate) fn pool_index(&self, name: &str) -> Option<usize> {
        self.pool_names.iter().position(|p| p == name)
    }
}

/// The bounds and an empty layout of one family.
fn family_layout(cidr: IpNet, named_pools: usize) -> FamilyState {
    let (first, last) = net_bounds(&cidr);
    let family = Family::of_net(&cidr);
    let host_bits = cidr.max_prefix_len() - cidr.prefix_len();
    let usable = match (family, host_bits) {
        (_, 0) => (first, last),
        (Family::V4, 1) | (Family::V6, 1) => (first, last),
        (Family::V4, _) => (first + 1, last - 1),
        (Family::V6, _) => (first + 1, last),
    };
    FamilyState {
        family,
        cidr,
        first,
        last,
        usable,
        gateway: usable.0,
        excluded: RangeSet::new(),
        pool_ranges: BTreeMap::new(),
        pool_lists: vec![Vec::new(); named_pools],
        pools: Vec::new(),
        leased: 0,
    }
}

/// Parses an entry and checks it lies inside the subnet.
fn parse_in_subnet(
    subnet: &str,
    fams: &[Option<FamilyState>; 2],
    text: &str,
) -> Result<(Family, u128, u128), IpamError> {
    let entry: Entry = text.parse().map_err(|e| match e {
        IpamError::InvalidEntry { reason, .. } => IpamError::BadEntry {
            subnet: subnet.to_string(),
            entry: text.to_string(),
            reason,
        },
        other => other,
    })?;
    let fam = entry.family();
    let (s, e) = entry.bounds();
    match &fams[fam.index()] {
        Some(f) if f.first <= s && e <= f.last => Ok((fam, s, e)),
        _ => Err(IpamError::EntryOutsideSubnet {
            subnet: subnet.to_string(),
            entry: text.to_string(),
        }),
    }
}

/// Fills the free sets of every pool: usable addresses minus gateway and exclusions, split by
/// pool ranges. Pool sizes are the initial free counts.
fn lay_out_free(state: &mut FamilyState) {
    let named = state.pool_lists.len();
    let mut reserved = state.excluded.clone();
    reserved.insert(state.gateway, state.gateway);
    let mut default = RangeSet::new();
    default.insert(state.usable.0, state.usable.1);
    let mut pools = vec![RangeSet::new(); named + 1];
    for (&e, &(s, pool)) in &state.pool_ranges {
        let (s, e) = (s.max(state.usable.0), e.min(state.usable.1));
        if s <= e {
            pools[pool].insert(s, e);
            default.remove(s, e);
        }
    }
    pools[0] = default;
    state.pools = pools
        .into_iter()
        .map(|mut set| {
            set.subtract(&reserved);
            PoolFree::new(set)
        })
        .collect();
}
