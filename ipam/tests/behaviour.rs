//! One test per promise of the crate, each on a small, readable scenario.

use std::net::IpAddr;

use ipam::{
    Ipam, IpamError, MacAddr, ObservedLease, PoolConfig, Request, Reserved, RestoreIssue,
    SubnetConfig,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ipam_with(cfg: SubnetConfig) -> Ipam {
    let mut ipam = Ipam::new(11);
    ipam.add_subnet(cfg).unwrap();
    ipam
}

#[test]
fn exclusion_outside_the_subnet_is_an_error_naming_the_entry() {
    let cfg =
        SubnetConfig::new("s", "10.0.0.0/24".parse().unwrap()).with_exclude("10.0.1.5..10.0.1.9");
    let err = Ipam::new(1).add_subnet(cfg).unwrap_err();
    assert_eq!(
        err,
        IpamError::EntryOutsideSubnet {
            subnet: "s".into(),
            entry: "10.0.1.5..10.0.1.9".into()
        }
    );
    let bad = SubnetConfig::new("s", "10.0.0.0/24".parse().unwrap()).with_exclude("10.0.0.x");
    assert!(matches!(
        Ipam::new(1).add_subnet(bad),
        Err(IpamError::BadEntry { ref entry, .. }) if entry == "10.0.0.x"
    ));
}

#[test]
fn overlapping_pools_are_an_error_naming_both() {
    let cfg = SubnetConfig::new("s", "10.0.0.0/24".parse().unwrap())
        .with_pool(PoolConfig::new("a").with_entry("10.0.0.10..10.0.0.20"))
        .with_pool(PoolConfig::new("b").with_entry("10.0.0.16/30"));
    let err = Ipam::new(1).add_subnet(cfg).unwrap_err();
    assert_eq!(
        err,
        IpamError::PoolOverlap {
            subnet: "s".into(),
            first: "a".into(),
            first_entry: "10.0.0.10..10.0.0.20".into(),
            second: "b".into(),
            second_entry: "10.0.0.16/30".into(),
        }
    );
}

#[test]
fn gateway_and_excluded_addresses_are_refused_unless_allowed() {
    let mut ipam = ipam_with(
        SubnetConfig::new("s", "10.0.0.0/24".parse().unwrap())
            .with_gateway(ip("10.0.0.254"))
            .with_exclude("10.0.0.7"),
    );
    let gw = Request::new("s", "p").with_ip(ip("10.0.0.254"));
    assert!(matches!(
        ipam.allocate(&gw),
        Err(IpamError::ReservedAddress {
            reason: Reserved::Gateway,
            ..
        })
    ));
    let ex = Request::new("s", "p").with_ip(ip("10.0.0.7"));
    assert!(matches!(
        ipam.allocate(&ex),
        Err(IpamError::ReservedAddress {
            reason: Reserved::Excluded,
            ..
        })
    ));
    assert_eq!(
        ipam.allocate(&ex.with_allow_reserved(true)).unwrap().v4,
        Some("10.0.0.7".parse().unwrap())
    );
    // With the gateway moved to .254, .1 is an ordinary address and comes first.
    assert_eq!(
        ipam.allocate(&Request::new("s", "q")).unwrap().v4,
        Some("10.0.0.1".parse().unwrap())
    );
}

#[test]
fn static_ip_and_mac_conflicts_name_the_current_owner() {
    let mut ipam = ipam_with(SubnetConfig::new("s", "10.0.0.0/24".parse().unwrap()));
    let mac: MacAddr = "02:00:00:00:00:42".parse().unwrap();
    let a = ipam
        .allocate(
            &Request::new("s", "ns/a")
                .with_ip(ip("10.0.0.50"))
                .with_mac(mac),
        )
        .unwrap();
    assert_eq!(a.mac, mac);
    let err = ipam
        .allocate(&Request::new("s", "ns/b").with_ip(ip("10.0.0.50")))
        .unwrap_err();
    assert_eq!(
        err,
        IpamError::AddressInUse {
            subnet: "s".into(),
            address: ip("10.0.0.50"),
            owner: "ns/a".into()
        }
    );
    let err = ipam
        .allocate(&Request::new("s", "ns/b").with_mac(mac))
        .unwrap_err();
    assert_eq!(
        err,
        IpamError::MacInUse {
            mac,
            owner: "ns/a".into()
        }
    );
    // A generated MAC is found too, although generated MACs are not indexed.
    let b = ipam.allocate(&Request::new("s", "ns/b")).unwrap();
    let err = ipam
        .allocate(&Request::new("s", "ns/c").with_mac(b.mac))
        .unwrap_err();
    assert_eq!(
        err,
        IpamError::MacInUse {
            mac: b.mac,
            owner: "ns/b".into()
        }
    );
}

#[test]
fn asking_again_returns_the_same_lease_and_a_different_ask_is_a_mismatch() {
    let mut ipam = ipam_with(SubnetConfig::new("s", "10.0.0.0/24".parse().unwrap()));
    let first = ipam.allocate(&Request::new("s", "p")).unwrap();
    assert_eq!(ipam.allocate(&Request::new("s", "p")).unwrap(), first);
    assert_eq!(ipam.len(), 1);
    let other = Request::new("s", "p").with_ip(ip("10.0.0.99"));
    assert!(
        matches!(ipam.allocate(&other), Err(IpamError::LeaseMismatch { ref owner, .. }) if owner == "p")
    );
}

#[test]
fn dual_stack_is_all_or_nothing() {
    // The IPv6 side has a single usable address besides its gateway.
    let mut ipam = ipam_with(
        SubnetConfig::new("s", "10.0.0.0/24".parse().unwrap())
            .with_cidr("fd00::/126".parse().unwrap()),
    );
    let a = ipam.allocate(&Request::new("s", "a")).unwrap();
    assert_eq!(
        (a.v4, a.v6),
        (
            Some("10.0.0.2".parse().unwrap()),
            Some("fd00::2".parse().unwrap())
        )
    );
    let _ = ipam.allocate(&Request::new("s", "b")).unwrap(); // takes fd00::3
    let before = ipam.stats("s").unwrap();
    let err = ipam.allocate(&Request::new("s", "c")).unwrap_err();
    assert!(matches!(
        err,
        IpamError::Exhausted {
            family: ipam::Family::V6,
            ..
        }
    ));
    assert_eq!(
        ipam.stats("s").unwrap(),
        before,
        "no IPv4 address was consumed"
    );
    assert!(ipam.lease("c").is_none());
}

#[test]
fn released_addresses_go_to_the_back_of_the_line() {
    let mut ipam = ipam_with(SubnetConfig::new("s", "10.0.0.0/29".parse().unwrap()));
    // Usable .1-.6, gateway .1: five addresses .2-.6.
    for p in ["a", "b", "c"] {
        ipam.allocate(&Request::new("s", p)).unwrap();
    }
    ipam.release("b"); // .3
    ipam.release("a"); // .2
    let order: Vec<_> = ["d", "e", "f", "g"]
        .iter()
        .map(|p| {
            ipam.allocate(&Request::new("s", p))
                .unwrap()
                .v4
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(order, ["10.0.0.5", "10.0.0.6", "10.0.0.3", "10.0.0.2"]);
}

#[test]
fn statefulset_ordinal_gets_the_entry_at_that_position() {
    let mut ipam = ipam_with(
        SubnetConfig::new("s", "10.0.0.0/24".parse().unwrap()).with_pool(
            PoolConfig::new("db")
                .with_entry("10.0.0.30")
                .with_entry("10.0.0.10..10.0.0.11"),
        ),
    );
    let got: Vec<_> = [2u64, 0, 1]
        .iter()
        .map(|&i| {
            let owner = format!("db-{i}");
            ipam.allocate(&Request::new("s", &owner).with_pool("db").with_ordinal(i))
                .unwrap()
                .v4
                .unwrap()
        })
        .collect();
    assert_eq!(
        got,
        ["10.0.0.11", "10.0.0.30", "10.0.0.10"].map(|s| s.parse::<std::net::Ipv4Addr>().unwrap())
    );
    let err = ipam
        .allocate(&Request::new("s", "db-3").with_pool("db").with_ordinal(3))
        .unwrap_err();
    assert!(matches!(
        err,
        IpamError::OrdinalOutOfRange {
            ordinal: 3,
            len: 3,
            ..
        }
    ));
}

#[test]
fn new_exclusion_over_a_live_lease_is_reported_and_the_lease_kept() {
    let mut ipam = ipam_with(SubnetConfig::new("s", "10.0.0.0/24".parse().unwrap()));
    let a = ipam.allocate(&Request::new("s", "a")).unwrap();
    let cfg = ipam
        .subnet_config("s")
        .unwrap()
        .clone()
        .with_exclude("10.0.0.0/28");
    let issues = ipam.update_subnet(cfg).unwrap();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].owner, "a");
    assert_eq!(issues[0].reserved, Some(Reserved::Excluded));
    assert_eq!(ipam.lease("a"), Some(a));
    assert_eq!(
        ipam.allocate(&Request::new("s", "b")).unwrap().v4,
        Some("10.0.0.16".parse().unwrap())
    );
    // Released, the excluded address is not handed out again.
    ipam.release("a");
    assert!(!ipam.is_free("s", ip("10.0.0.2")));
}

#[test]
fn restore_reports_conflicts_and_strays_and_never_double_allocates() {
    let mut ipam = ipam_with(SubnetConfig::new("s", "10.0.0.0/24".parse().unwrap()));
    let rec = |owner: &str, addr: &str| ObservedLease {
        owner: owner.into(),
        subnet: None,
        addresses: vec![ip(addr)],
        mac: None,
    };
    let report = ipam.restore(vec![
        rec("a", "10.0.0.5"),
        rec("b", "10.0.0.5"),
        rec("c", "192.168.0.1"),
        rec("a", "10.0.0.6"),
        rec("d", "10.0.0.1"),
    ]);
    assert_eq!(report.restored, 2);
    assert_eq!(
        report.issues,
        vec![
            RestoreIssue::AddressConflict {
                owner: "b".into(),
                subnet: "s".into(),
                address: ip("10.0.0.5"),
                holder: "a".into()
            },
            RestoreIssue::OutsideSubnets {
                owner: "c".into(),
                address: ip("192.168.0.1")
            },
            RestoreIssue::DuplicateOwner { owner: "a".into() },
            RestoreIssue::Reserved {
                owner: "d".into(),
                subnet: "s".into(),
                address: ip("10.0.0.1"),
                reason: Reserved::Gateway
            },
        ]
    );
    let next = ipam.allocate(&Request::new("s", "e")).unwrap();
    assert_eq!(next.v4, Some("10.0.0.2".parse().unwrap()));
    assert_eq!(ipam.owner_of("s", ip("10.0.0.5")), Some("a"));
}

#[test]
fn slash8_and_ipv6_slash64_work_like_a_slash24() {
    let mut ipam = Ipam::new(3);
    ipam.add_subnet(SubnetConfig::new("v4", "10.0.0.0/8".parse().unwrap()))
        .unwrap();
    ipam.add_subnet(
        SubnetConfig::new("v6", "fd00:1::/64".parse().unwrap()).with_exclude("fd00:1::/96"),
    )
    .unwrap();
    for i in 0..1000 {
        ipam.allocate(&Request::new("v4", &format!("a{i}")))
            .unwrap();
        ipam.allocate(&Request::new("v6", &format!("b{i}")))
            .unwrap();
    }
    let v4 = &ipam.stats("v4").unwrap().families[0];
    assert_eq!((v4.size, v4.used), ((1 << 24) - 3, 1000));
    let v6 = &ipam.stats("v6").unwrap().families[0];
    assert_eq!(v6.size, (1u128 << 64) - (1 << 32));
    assert_eq!(
        ipam.lease("b0").unwrap().v6,
        Some("fd00:1::1:0:0".parse().unwrap())
    );
    // Memory is the leases, not the subnets: far below one byte per address of a /8.
    assert!(ipam.lease_heap_bytes() < 200_000);
}

#[test]
fn saved_state_round_trips_through_json() {
    let mut ipam = ipam_with(
        SubnetConfig::new("s", "10.0.0.0/24".parse().unwrap())
            .with_cidr("fd00::/120".parse().unwrap())
            .with_pool(PoolConfig::new("p").with_entry("10.0.0.100..10.0.0.110")),
    );
    for p in ["a", "b", "c"] {
        ipam.allocate(&Request::new("s", p)).unwrap();
    }
    ipam.allocate(&Request::new("s", "d").with_pool("p"))
        .unwrap();
    ipam.release("b");
    let json = serde_json::to_string(&ipam.state()).unwrap();
    let mut back = Ipam::from_state(serde_json::from_str(&json).unwrap()).unwrap();
    assert_eq!(back, ipam);
    assert_eq!(
        back.allocate(&Request::new("s", "e")).unwrap(),
        ipam.allocate(&Request::new("s", "e")).unwrap()
    );
}

#[test]
fn inconsistent_saved_state_is_refused() {
    let mut ipam = ipam_with(SubnetConfig::new("s", "10.0.0.0/24".parse().unwrap()));
    ipam.allocate(&Request::new("s", "a")).unwrap();
    let mut snap = ipam.state();
    let mut twin = snap.leases[0].clone();
    twin.owner = "b".into();
    twin.mac = "02:00:00:00:00:01".parse().unwrap();
    snap.leases.push(twin);
    assert!(matches!(
        Ipam::from_state(snap),
        Err(IpamError::InconsistentState { problems: 1, .. })
    ));
}

#[test]
fn reserve_makes_room_so_that_the_indexes_do_not_grow_while_allocating() {
    let mut ipam = ipam_with(SubnetConfig::new("s", "10.20.0.0/16".parse().unwrap()));
    ipam.reserve(5000);
    let before = ipam.lease_heap_bytes();
    let mut text = 0;
    for i in 0..5000 {
        let owner = format!("ns/pod-{i}/eth0");
        text += owner.len();
        ipam.allocate(&Request::new("s", &owner)).unwrap();
    }
    // Only the owner names were added: slots and indexes kept their reserved size.
    assert_eq!(ipam.lease_heap_bytes(), before + text);
    assert_eq!(ipam.len(), 5000);
    assert_eq!(
        ipam.owner_of("s", ip("10.20.19.137")),
        Some("ns/pod-4999/eth0")
    );
}
