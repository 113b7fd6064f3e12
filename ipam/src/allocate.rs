//! Allocation and release.

use std::net::IpAddr;

use crate::addr::{Family, from_u128, to_u128};
use crate::error::IpamError;
use crate::leases::OwnerKey;
use crate::subnet::{Class, Subnet};
use crate::{DEFAULT_POOL, Ipam, Lease, MacAddr, Request};

/// One family's part of an allocation plan.
#[derive(Clone, Copy, Debug)]
enum Pick {
    /// A given address: take it out of pool `Some(p)`, or no pool when reserved.
    Given(u128, Option<usize>),
    /// The next free address of pool `p`.
    Next(usize),
}

impl Ipam {
    /// Gives `req.owner()` a lease in `req.subnet()`: one address per family of the subnet and
    /// a MAC. A named pool that lists no address of one family of a dual-stack subnet leaves
    /// that family to the default pool (dynamic, also for ordinal requests). Asking again for an owner that holds a lease returns that lease (or
    /// [`IpamError::LeaseMismatch`] if the request asks for something else). Dual-stack
    /// requests are all-or-nothing: on error nothing changes.
    pub fn allocate(&mut self, req: &Request<'_>) -> Result<Lease, IpamError> {
        if req.owner.is_empty() {
            return Err(IpamError::EmptyOwner);
        }
        if req.owner.len() > crate::leases::MAX_OWNER_LEN {
            return Err(IpamError::OwnerTooLong {
                owner_len: req.owner.len(),
            });
        }
        if !self.leases.has_room_for(req.owner) {
            return Err(IpamError::OwnerSpaceFull {
                owner_len: req.owner.len(),
            });
        }
        if let Some(family) = req.twice {
            return Err(IpamError::TwoAddressesOfOneFamily {
                owner: req.owner.into(),
                family,
            });
        }
        let sid = self.subnet_id(req.subnet)?;
        let subnet = self.subnet(sid);
        let pool = match req.pool {
            None => 0,
            Some(name) => subnet
                .pool_index(name)
                .ok_or_else(|| IpamError::UnknownPool {
                    subnet: req.subnet.into(),
                    pool: name.into(),
                })?,
        };
        let key = self.leases.key(req.owner);
        if let Some((_, held)) = self.leases.by_key(key) {
            let lease = Lease::from_ref(&held);
            let same_subnet = held.subnet == sid;
            let ips_match = req
                .ips
                .iter()
                .flatten()
                .all(|&ip| lease.addresses().any(|a| a == ip));
            let mac_match = req.mac.is_none_or(|m| m == lease.mac);
            let ordinal_match = match req.ordinal {
                None => true,
                Some(o) => [Family::V4, Family::V6].iter().all(|&f| {
                    subnet.fam(f).is_none_or(|fs| {
                        pool > 0
                            && (fs.pool_lists[pool - 1].is_empty()
                                || fs.nth_of_pool(pool, o).ok() == held.addr(f))
                    })
                }),
            };
            if same_subnet && ips_match && mac_match && ordinal_match {
                return Ok(lease);
            }
            return Err(IpamError::LeaseMismatch {
                owner: req.owner.into(),
                subnet: self.subnet(held.subnet).config.name.clone(),
                held: lease.to_string(),
                asked: req.to_string(),
            });
        }
        let mut picks: [Option<Pick>; 2] = [None, None];
        for family in [Family::V4, Family::V6] {
            let given = req.ips[family.index()];
            let Some(fs) = subnet.fam(family) else {
                if let Some(ip) = given {
                    return Err(IpamError::OutsideSubnet {
                        subnet: req.subnet.into(),
                        address: ip,
                    });
                }
                continue;
            };
            // A named pool that lists no address of this family leaves it to the default pool.
            let unlisted = pool > 0 && fs.pool_lists[pool - 1].is_empty();
            let fam_pool = if unlisted { 0 } else { pool };
            let target = match (given, req.ordinal) {
                (Some(ip), _) => Some(to_u128(ip)),
                (None, Some(ordinal)) if !unlisted => {
                    let nth = if pool == 0 {
                        Err(0)
                    } else {
                        fs.nth_of_pool(pool, ordinal)
                    };
                    Some(nth.map_err(|len| IpamError::OrdinalOutOfRange {
                        subnet: req.subnet.into(),
                        pool: subnet.pool_names[pool].clone(),
                        family,
                        ordinal,
                        len,
                    })?)
                }
                (None, _) => None,
            };
            picks[family.index()] = Some(match target {
                Some(a) => Pick::Given(a, self.check_given(subnet, sid, family, a, req)?),
                None => {
                    if fs.pools[fam_pool].peek().is_none() {
                        return Err(IpamError::Exhausted {
                            subnet: req.subnet.into(),
                            pool: subnet.pool_names[fam_pool].clone(),
                            family,
                        });
                    }
                    Pick::Next(fam_pool)
                }
            });
        }
        let mac = match req.mac {
            Some(mac) => {
                self.check_mac(mac)?;
                mac.to_u64()
            }
            None => self.generate_mac(),
        };
        // Every check passed: commit.
        let subnet = self.subnets[sid as usize]
            .as_mut()
            .expect("subnet ids in use are live");
        let mut addrs = [None, None];
        for (i, pick) in picks.iter().enumerate() {
            let Some(pick) = *pick else { continue };
            let Some(fs) = subnet.fams[i].as_mut() else {
                continue;
            };
            fs.leased += 1;
            addrs[i] = match pick {
                Pick::Given(a, Some(p)) => {
                    fs.pools[p].take(a);
                    Some(a)
                }
                Pick::Given(a, None) => Some(a),
                Pick::Next(p) => fs.pools[p].take_next(),
            };
        }
        subnet.leases += 1;
        self.store(key, sid, addrs, mac);
        Ok(Lease {
            v4: addrs[0].map(|a| std::net::Ipv4Addr::from(a as u32)),
            v6: addrs[1].map(std::net::Ipv6Addr::from),
            mac: MacAddr::from_u64(mac),
        })
    }

    /// Checks a static or ordinal address; returns its pool (None when reserved and allowed).
    fn check_given(
        &self,
        subnet: &Subnet,
        sid: u32,
        family: Family,
        a: u128,
        req: &Request<'_>,
    ) -> Result<Option<usize>, IpamError> {
        let address = from_u128(family, a);
        let name = || req.subnet.to_string();
        let Some(fs) = subnet.fam(family) else {
            return Err(IpamError::OutsideSubnet {
                subnet: name(),
                address,
            });
        };
        let class = fs.classify(a);
        if let Some(holder) = self.leases.by_addr(sid, family, a) {
            return Err(IpamError::AddressInUse {
                subnet: name(),
                address,
                owner: holder.owner.to_string(),
            });
        }
        match class {
            Class::Outside => Err(IpamError::OutsideSubnet {
                subnet: name(),
                address,
            }),
            Class::Reserved(reason) if !req.allow_reserved => Err(IpamError::ReservedAddress {
                subnet: name(),
                address,
                reason,
            }),
            Class::Reserved(_) => Ok(None),
            Class::Pool(p) => Ok(Some(p)),
        }
    }

    /// Checks that a static MAC can be given to an interface and is not held.
    pub(crate) fn check_mac(&self, mac: MacAddr) -> Result<(), IpamError> {
        if !mac.is_unicast() || mac.to_u64() == 0 {
            return Err(IpamError::BadMac { mac });
        }
        if let Some(holder) = self.mac_holder(mac.to_u64()) {
            return Err(IpamError::MacInUse {
                mac,
                owner: holder.owner.to_string(),
            });
        }
        Ok(())
    }

    /// The lease holding `mac`. MACs the generator issued are not indexed, so for those the
    /// index is backed by a scan (a cost paid only when a static or restored MAC could be one).
    pub(crate) fn mac_holder(&self, mac: u64) -> Option<crate::leases::LeaseRef<'_>> {
        self.leases.by_mac(mac, self.macs.issued(mac))
    }

    /// The next generated MAC that nobody holds. A fresh generator value can only clash with
    /// an indexed (static or restored) MAC, until the 40-bit counter wraps.
    pub(crate) fn generate_mac(&mut self) -> u64 {
        loop {
            let mac = self.macs.next_mac();
            let wrapped = self.macs.counter > (1 << 40);
            if self.leases.by_mac(mac, wrapped).is_none() {
                return mac;
            }
        }
    }

    /// Stores a lease whose every part has been checked.
    pub(crate) fn store(
        &mut self,
        owner: OwnerKey<'_>,
        sid: u32,
        addrs: [Option<u128>; 2],
        mac: u64,
    ) {
        let index_mac = !self.macs.issued(mac);
        self.leases
            .insert(owner, sid, (addrs[0], addrs[1]), mac, index_mac);
    }

    /// Ends `owner`'s lease. Its addresses go to the back of their pool's line, so they are
    /// handed out again only after every never-used address. Returns the lease that ended.
    pub fn release(&mut self, owner: &str) -> Option<Lease> {
        let (id, _) = self.leases.by_owner(owner)?;
        let (sid, v4, v6, mac) = self.leases.remove(id);
        let seq = self.next_seq();
        if let Some(subnet) = self.subnets[sid as usize].as_mut() {
            subnet.leases = subnet.leases.saturating_sub(1);
            for (family, addr) in [(Family::V4, v4), (Family::V6, v6)] {
                let (Some(a), Some(fs)) = (addr, subnet.fams[family.index()].as_mut()) else {
                    continue;
                };
                match fs.classify(a) {
                    Class::Outside => {}
                    Class::Reserved(_) => fs.leased = fs.leased.saturating_sub(1),
                    Class::Pool(p) => {
                        fs.leased = fs.leased.saturating_sub(1);
                        fs.pools[p].give_back(a, seq);
                    }
                }
            }
        }
        Some(Lease {
            v4: v4.map(|a| std::net::Ipv4Addr::from(a as u32)),
            v6: v6.map(std::net::Ipv6Addr::from),
            mac: MacAddr::from_u64(mac),
        })
    }

    /// The address a dynamic request to `pool` (or the default pool) of `subnet` would get
    /// next, per family, without allocating it.
    pub fn peek(&self, subnet: &str, pool: Option<&str>) -> Result<Vec<IpAddr>, IpamError> {
        let sid = self.subnet_id(subnet)?;
        let s = self.subnet(sid);
        let pool_name = pool.unwrap_or(DEFAULT_POOL);
        let p = s
            .pool_index(pool_name)
            .ok_or_else(|| IpamError::UnknownPool {
                subnet: subnet.into(),
                pool: pool_name.into(),
            })?;
        Ok(s.fams
            .iter()
            .flatten()
            .filter_map(|fs| fs.pools[p].peek().map(|a| fs.addr(a)))
            .collect())
    }
}
