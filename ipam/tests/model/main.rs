//! Model-based property test: random sequences of allocate / static / ordinal / release /
//! exclusion and pool changes / restart-restore / saved-state round-trip, run against `Ipam` and
//! against a naive reference built on plain sets of addresses. Every answer must match, no
//! address is ever held twice, dynamic allocations never land on the gateway or an excluded
//! address, and `from_state(state(s)) == s`.

// Like the reference, the harness indexes by family number (0 = IPv4, 1 = IPv6) on purpose:
// it is meant to be obviously right, not idiomatic.
#![allow(clippy::needless_range_loop)]

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use ipam::{Family, Ipam, IpamError, MacAddr, ObservedLease, Request, RestoreIssue};
use proptest::prelude::*;

mod reference;

use reference::*;

#[derive(Clone, Debug)]
enum Kind {
    Dynamic,
    Static([Option<u128>; 2], bool),
    Ordinal(u64),
}

#[derive(Clone, Debug)]
enum MacChoice {
    None,
    Fixed(u8),
    OfOwner(usize),
    Multicast,
}

#[derive(Clone, Debug)]
enum Op {
    Allocate {
        subnet: usize,
        owner: usize,
        pool: usize,
        kind: Kind,
        mac: MacChoice,
    },
    Release {
        owner: usize,
    },
    Reconfigure {
        subnet: usize,
        layout: Layout,
    },
    Restart {
        extra_conflicts: Vec<(usize, usize)>,
        outside: bool,
    },
    RoundTrip,
}

fn layout() -> impl Strategy<Value = Layout> {
    let pool_mark = prop_oneof![6 => Just(0usize), 1 => Just(1usize), 1 => Just(2usize)];
    (
        prop::collection::vec((0usize..2, 0u128..32, 0u128..32), 0..4),
        prop::bool::weighted(0.05),
        prop::collection::vec(pool_mark.clone(), 32),
        prop::collection::vec(pool_mark, 16),
        0usize..3,
        prop::array::uniform2(prop::option::weighted(0.3, 0u128..30)),
    )
        .prop_map(|(exclude, bad_exclusion, p4, p6, rotate, gateway)| Layout {
            exclude,
            bad_exclusion,
            pool_of: [p4, p6],
            rotate,
            gateway,
        })
}

fn op() -> impl Strategy<Value = Op> {
    let kind = prop_oneof![
        6 => Just(Kind::Dynamic),
        3 => (prop::array::uniform2(prop::option::of(0u128..34)), prop::bool::ANY)
            .prop_map(|(ips, allow)| Kind::Static(ips, allow)),
        2 => (0u64..12).prop_map(Kind::Ordinal),
    ];
    let mac = prop_oneof![
        8 => Just(MacChoice::None),
        2 => (0u8..4).prop_map(MacChoice::Fixed),
        1 => (0usize..14).prop_map(MacChoice::OfOwner),
        1 => Just(MacChoice::Multicast),
    ];
    prop_oneof![
        12 => (0usize..2, 0usize..14, prop_oneof![4 => Just(0usize), 1 => Just(1usize), 1 => Just(2usize)], kind, mac)
            .prop_map(|(subnet, owner, pool, kind, mac)| Op::Allocate { subnet, owner, pool, kind, mac }),
        5 => (0usize..14).prop_map(|owner| Op::Release { owner }),
        2 => (0usize..2, layout()).prop_map(|(subnet, layout)| Op::Reconfigure { subnet, layout }),
        1 => (prop::collection::vec((0usize..14, 0usize..14), 0..3), prop::bool::ANY)
            .prop_map(|(extra_conflicts, outside)| Op::Restart { extra_conflicts, outside }),
        1 => Just(Op::RoundTrip),
    ]
}

fn owner(i: usize) -> String {
    format!("ns/pod-{i}/eth0")
}

/// The error class used to compare answers: variant plus the owner/entry it names.
fn err_key(e: &IpamError) -> String {
    match e {
        IpamError::AddressInUse { owner, address, .. } => format!("in-use {address} {owner}"),
        IpamError::MacInUse { owner, .. } => format!("mac-in-use {owner}"),
        IpamError::ReservedAddress {
            address, reason, ..
        } => format!("reserved {address} {reason:?}"),
        IpamError::OutsideSubnet { address, .. } => format!("outside {address}"),
        IpamError::Exhausted { pool, family, .. } => format!("exhausted {pool} {family:?}"),
        IpamError::UnknownPool { pool, .. } => format!("unknown-pool {pool}"),
        IpamError::OrdinalOutOfRange {
            ordinal, family, ..
        } => format!("ordinal {ordinal} {family:?}"),
        IpamError::LeaseMismatch { owner, .. } => format!("mismatch {owner}"),
        IpamError::BadMac { .. } => "bad-mac".into(),
        IpamError::EntryOutsideSubnet { entry, .. } => format!("entry-outside {entry}"),
        other => format!("other {other}"),
    }
}

struct Harness {
    ipam: Ipam,
    model: Model,
}

impl Harness {
    fn new(l0: &Layout, l1: &Layout) -> Self {
        let mut h = Harness {
            ipam: Ipam::new(99),
            model: Model::default(),
        };
        for (i, l) in [l0, l1].into_iter().enumerate() {
            let mut l = l.clone();
            l.bad_exclusion = false;
            let cfg = config(i, &l);
            h.ipam.add_subnet(cfg.clone()).unwrap();
            h.model.subnets.push(Some(ref_subnet(&cfg).unwrap()));
        }
        h
    }

    fn mac_for(&self, choice: &MacChoice) -> Option<MacAddr> {
        match choice {
            MacChoice::None => None,
            MacChoice::Fixed(i) => Some(MacAddr([0x02, 0, 0, 0, 0, *i])),
            MacChoice::OfOwner(o) => self.model.leases.get(&owner(*o)).map(|l| l.mac),
            MacChoice::Multicast => Some(MacAddr([0x01, 0, 0x5e, 0, 0, 1])),
        }
    }

    /// The reference answer for an allocation, committing it on success. Dynamic picks are
    /// returned in the second element to check they are allocatable.
    fn model_allocate(
        &mut self,
        subnet: usize,
        who: &str,
        pool: usize,
        kind: &Kind,
        mac: Option<MacAddr>,
    ) -> Result<[Option<u128>; 2], String> {
        let m = &self.model;
        let s = m.subnets[subnet].as_ref().unwrap();
        let Some(p) = s.pools.iter().position(|n| n == POOLS[pool]) else {
            return Err(format!("unknown-pool {}", POOLS[pool]));
        };
        let statics = match kind {
            Kind::Static(ips, allow) => Some((*ips, *allow)),
            _ => None,
        };
        let given = |fam: usize| -> Option<u128> {
            let (ips, _) = statics?;
            let off = ips[fam]?;
            let f = s.fams[fam].as_ref().map_or(base(fam), |f| f.first);
            Some(f + off)
        };
        let given_ip = |fam: usize| given(fam).map(|a| ip(fam, a));
        let allow = statics.is_some_and(|(_, a)| a);
        if let Some(l) = m.leases.get(who) {
            let ok = l.subnet == subnet
                && (0..2).all(|f| given(f).is_none() || given(f) == l.addrs[f])
                && mac.is_none_or(|x| x == l.mac)
                && match kind {
                    Kind::Ordinal(o) => (0..2).all(|f| {
                        s.fams[f].as_ref().is_none_or(|rf| {
                            p > 0
                                && (!rf.lists.contains_key(&p)
                                    || rf.lists.get(&p).and_then(|v| v.get(*o as usize)).copied()
                                        == l.addrs[f])
                        })
                    }),
                    _ => true,
                };
            return if ok {
                Ok(l.addrs)
            } else {
                Err(format!("mismatch {who}"))
            };
        }
        let mut picks = [None, None];
        let mut dynamic = [false, false];
        for fam in 0..2 {
            let Some(f) = s.fams[fam].as_ref() else {
                if let Some(a) = given_ip(fam) {
                    return Err(format!("outside {a}"));
                }
                continue;
            };
            // A named pool without addresses of this family leaves it to the default pool.
            let unlisted = p > 0 && !f.lists.contains_key(&p);
            let fam_p = if unlisted { 0 } else { p };
            let target = match (given(fam), kind) {
                (Some(a), _) => Some(a),
                (None, Kind::Ordinal(o)) if !unlisted => {
                    let fam_name = if fam == 0 { Family::V4 } else { Family::V6 };
                    match (p > 0)
                        .then(|| f.lists.get(&p).and_then(|v| v.get(*o as usize)))
                        .flatten()
                    {
                        Some(&a) => Some(a),
                        None => return Err(format!("ordinal {o} {fam_name:?}")),
                    }
                }
                _ => None,
            };
            picks[fam] = Some(match target {
                Some(a) => {
                    if let Some(h) = m.holder(subnet, fam, a) {
                        return Err(format!("in-use {} {h}", ip(fam, a)));
                    }
                    match f.class(a) {
                        Class::Outside => return Err(format!("outside {}", ip(fam, a))),
                        Class::Reserved(r) if !allow => {
                            return Err(format!("reserved {} {r:?}", ip(fam, a)));
                        }
                        _ => a,
                    }
                }
                None => {
                    dynamic[fam] = true;
                    match m.next(subnet, fam, fam_p) {
                        Some(a) => a,
                        None => {
                            let fam_name = if fam == 0 { Family::V4 } else { Family::V6 };
                            let name = &s.pools[fam_p];
                            return Err(format!("exhausted {name} {fam_name:?}"));
                        }
                    }
                }
            });
        }
        if let Some(x) = mac {
            if x.0[0] & 1 == 1 {
                return Err("bad-mac".into());
            }
            if let Some((o, _)) = m.leases.iter().find(|(_, l)| l.mac == x) {
                return Err(format!("mac-in-use {o}"));
            }
        }
        for fam in 0..2 {
            if let (Some(a), true) = (picks[fam], dynamic[fam]) {
                let f = s.fams[fam].as_ref().unwrap();
                assert!(
                    matches!(f.class(a), Class::Pool(_)),
                    "dynamic pick reserved"
                );
            }
        }
        for fam in 0..2 {
            if let Some(a) = picks[fam] {
                self.model.released[subnet].retain(|&(rf, ra)| !(rf == fam && ra == a));
            }
        }
        Ok(picks)
    }

    fn step(&mut self, op: &Op) {
        match op {
            Op::Allocate {
                subnet,
                owner: o,
                pool,
                kind,
                mac,
            } => {
                let who = owner(*o);
                let mac = self.mac_for(mac);
                let mut req = Request::new(SUBNETS[*subnet], &who);
                if *pool > 0 {
                    req = req.with_pool(POOLS[*pool]);
                }
                let s = self.model.subnets[*subnet].as_ref().unwrap();
                match kind {
                    Kind::Dynamic => {}
                    Kind::Ordinal(i) => req = req.with_ordinal(*i),
                    Kind::Static(ips, allow) => {
                        for (fam, off) in ips.iter().enumerate() {
                            if let Some(off) = off {
                                let f = s.fams[fam].as_ref().map_or(base(fam), |f| f.first);
                                req = req.with_ip(ip(fam, f + off));
                            }
                        }
                        req = req.with_allow_reserved(*allow);
                    }
                }
                if let Some(m) = mac {
                    req = req.with_mac(m);
                }
                let got = self.ipam.allocate(&req);
                let existed = self.model.leases.contains_key(&who);
                let want = self.model_allocate(*subnet, &who, *pool, kind, mac);
                match (&got, &want) {
                    (Ok(l), Ok(addrs)) => {
                        let got_addrs: Vec<IpAddr> = l.addresses().collect();
                        let want_addrs: Vec<IpAddr> =
                            (0..2).filter_map(|f| addrs[f].map(|a| ip(f, a))).collect();
                        assert_eq!(got_addrs, want_addrs, "{op:?}");
                        assert!(l.mac.is_unicast());
                        if mac.is_none() && !existed {
                            assert!(l.mac.is_locally_administered());
                        }
                        if let Some(m) = mac {
                            assert_eq!(l.mac, m);
                        }
                        if !existed {
                            self.model.leases.insert(
                                who.clone(),
                                RefLease {
                                    subnet: *subnet,
                                    addrs: *addrs,
                                    mac: l.mac,
                                },
                            );
                        }
                    }
                    (Err(e), Err(w)) => assert_eq!(&err_key(e), w, "{op:?}"),
                    _ => panic!("{op:?}: ipam {got:?} vs reference {want:?}"),
                }
            }
            Op::Release { owner: o } => {
                let who = owner(*o);
                let got = self.ipam.release(&who);
                let want = self.model.leases.remove(&who);
                assert_eq!(got.is_some(), want.is_some());
                if let (Some(g), Some(w)) = (got, want) {
                    assert_eq!(g.mac, w.mac);
                    let s = self.model.subnets[w.subnet].as_ref().unwrap();
                    for fam in 0..2 {
                        if let Some(a) = w.addrs[fam]
                            && let Some(f) = s.fams[fam].as_ref()
                            && matches!(f.class(a), Class::Pool(_))
                        {
                            self.model.released[w.subnet].push((fam, a));
                        }
                    }
                }
            }
            Op::Reconfigure { subnet, layout } => {
                let cfg = config(*subnet, layout);
                let got = self.ipam.update_subnet(cfg.clone());
                match ref_subnet(&cfg) {
                    Err(entry) => {
                        assert_eq!(err_key(&got.unwrap_err()), format!("entry-outside {entry}"));
                    }
                    Ok(new) => {
                        let mut issues = got.unwrap();
                        let mut want = Vec::new();
                        for (o, l) in &self.model.leases {
                            if l.subnet != *subnet {
                                continue;
                            }
                            for fam in 0..2 {
                                let Some(a) = l.addrs[fam] else { continue };
                                let class = new.fams[fam]
                                    .as_ref()
                                    .map_or(Class::Outside, |f| f.class(a));
                                match class {
                                    Class::Outside => want.push((o.clone(), ip(fam, a), None)),
                                    Class::Reserved(r) => {
                                        want.push((o.clone(), ip(fam, a), Some(r)))
                                    }
                                    Class::Pool(_) => {}
                                }
                            }
                        }
                        issues.sort_by_key(|i| (i.owner.clone(), i.address));
                        want.sort();
                        let issues: Vec<_> = issues
                            .into_iter()
                            .map(|i| (i.owner, i.address, i.reserved))
                            .collect();
                        assert_eq!(issues, want);
                        self.model.released[*subnet].retain(|&(fam, a)| {
                            new.fams[fam]
                                .as_ref()
                                .is_some_and(|f| matches!(f.class(a), Class::Pool(_)))
                        });
                        self.model.subnets[*subnet] = Some(new);
                    }
                }
            }
            Op::Restart {
                extra_conflicts,
                outside,
            } => {
                let snap = self.ipam.state();
                let mut records: Vec<ObservedLease> = snap
                    .leases
                    .iter()
                    .map(|l| ObservedLease {
                        owner: l.owner.clone(),
                        subnet: Some(l.subnet.clone()),
                        addresses: l.addresses.clone(),
                        mac: Some(l.mac),
                    })
                    .collect();
                let mut want_issues = Vec::new();
                for &(a, b) in extra_conflicts {
                    // A stale record: someone else's address under a new owner name.
                    let Some(src) = snap.leases.get(a % snap.leases.len().max(1)) else {
                        continue;
                    };
                    let who = format!("stale-{b}-{}", records.len());
                    let sid = SUBNETS.iter().position(|s| *s == src.subnet).unwrap();
                    let first = src.addresses[0];
                    // Named subnet for even b; looked up by address for odd b.
                    let named = b % 2 == 0;
                    let containing: Vec<String> = (0..2)
                        .filter(|&s| {
                            let (fam, a) = to_u(first);
                            self.model.subnets[s]
                                .as_ref()
                                .and_then(|x| x.fams[fam].as_ref())
                                .is_some_and(|f| f.first <= a && a <= f.last)
                        })
                        .map(|s| SUBNETS[s].to_string())
                        .collect();
                    let issue = if named || containing.len() == 1 {
                        let sub = if named {
                            src.subnet.clone()
                        } else {
                            containing[0].clone()
                        };
                        let in_subnet = sub == src.subnet;
                        let (fam, a) = to_u(first);
                        let holder = if in_subnet {
                            Some(src.owner.clone())
                        } else {
                            let other = SUBNETS.iter().position(|s| *s == sub).unwrap();
                            self.model.holder(other, fam, a).map(str::to_string)
                        };
                        match holder {
                            Some(h) => RestoreIssue::AddressConflict {
                                owner: who.clone(),
                                subnet: sub,
                                address: first,
                                holder: h,
                            },
                            None => continue,
                        }
                    } else if containing.is_empty() {
                        RestoreIssue::OutsideSubnets {
                            owner: who.clone(),
                            address: first,
                        }
                    } else {
                        RestoreIssue::Ambiguous {
                            owner: who.clone(),
                            address: first,
                            subnets: containing.clone(),
                        }
                    };
                    let _ = sid;
                    want_issues.push(issue);
                    records.push(ObservedLease {
                        owner: who,
                        subnet: named.then(|| src.subnet.clone()),
                        addresses: vec![first],
                        mac: None,
                    });
                }
                if *outside {
                    let address: IpAddr = "192.168.1.1".parse().unwrap();
                    want_issues.push(RestoreIssue::OutsideSubnets {
                        owner: "far".into(),
                        address,
                    });
                    records.push(ObservedLease {
                        owner: "far".into(),
                        subnet: None,
                        addresses: vec![address],
                        mac: None,
                    });
                }
                let mut fresh = Ipam::new(7);
                for cfg in &snap.subnets {
                    fresh.add_subnet(cfg.clone()).unwrap();
                }
                let report = fresh.restore(records);
                let got: Vec<_> = report
                    .issues
                    .iter()
                    .filter(|i| !i.restored())
                    .cloned()
                    .collect();
                assert_eq!(got, want_issues);
                assert_eq!(report.restored, snap.leases.len());
                self.ipam = fresh;
                self.model.released = [Vec::new(), Vec::new()];
            }
            Op::RoundTrip => {
                let snap = self.ipam.state();
                let json = serde_json::to_string(&snap).unwrap();
                let back = Ipam::from_state(serde_json::from_str(&json).unwrap()).unwrap();
                assert!(back == self.ipam, "from_state(state(s)) != s");
                self.ipam = back;
            }
        }
        self.check_invariants();
    }

    fn check_invariants(&self) {
        let snap = self.ipam.state();
        let mut held = HashSet::new();
        let mut macs = HashSet::new();
        let mut got = BTreeMap::new();
        for l in &snap.leases {
            for a in &l.addresses {
                assert!(
                    held.insert((l.subnet.clone(), *a)),
                    "{a} held twice in {}",
                    l.subnet
                );
            }
            assert!(macs.insert(l.mac), "MAC {} held twice", l.mac);
            got.insert(l.owner.clone(), (l.subnet.clone(), l.addresses.clone()));
        }
        let want: BTreeMap<_, _> = self
            .model
            .leases
            .iter()
            .map(|(o, l)| {
                let addrs = (0..2)
                    .filter_map(|f| l.addrs[f].map(|a| ip(f, a)))
                    .collect();
                (o.clone(), (SUBNETS[l.subnet].to_string(), addrs))
            })
            .collect();
        assert_eq!(got, want);
        for (si, s) in self.model.subnets.iter().enumerate() {
            let s = s.as_ref().unwrap();
            let stats = self.ipam.stats(SUBNETS[si]).unwrap();
            for fs in &stats.families {
                let fam = if fs.family == Family::V4 { 0 } else { 1 };
                let f = s.fams[fam].as_ref().unwrap();
                for (p, ps) in fs.pools.iter().enumerate() {
                    let addrs: Vec<u128> = (f.first..=f.last)
                        .filter(|&a| f.class(a) == Class::Pool(p))
                        .collect();
                    let used = addrs
                        .iter()
                        .filter(|&&a| !self.model.is_free(si, fam, a))
                        .count();
                    assert_eq!(ps.size, addrs.len() as u128, "size of {}", ps.pool);
                    assert_eq!(ps.used, used as u128, "used of {}", ps.pool);
                    assert_eq!(
                        ps.available,
                        (addrs.len() - used) as u128,
                        "available of {}",
                        ps.pool
                    );
                }
                for a in f.first..=f.last {
                    let free =
                        matches!(f.class(a), Class::Pool(_)) && self.model.is_free(si, fam, a);
                    assert_eq!(self.ipam.is_free(SUBNETS[si], ip(fam, a)), free);
                }
            }
            let _ = &s.cfg;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn ipam_matches_reference_and_never_double_allocates(
        l0 in layout(),
        l1 in layout(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let mut h = Harness::new(&l0, &l1);
        for op in &ops {
            h.step(op);
        }
        // And a final round trip.
        h.step(&Op::RoundTrip);
    }
}
