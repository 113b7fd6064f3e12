//! Properties: every value the model accepts survives `to_row` then `from_row` unchanged and
//! without a warning; values outside the model's constraints are refused by `to_row`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use ovn_model::nb::{
    Acl, AclAction, AclDirection, AclSeverity, LoadBalancer, LogicalRouterPort, LogicalSwitchPort,
};
use ovn_model::{LspAddress, MacAddr};
use ovsdb::{Table, Uuid};
use proptest::prelude::*;

fn round_trip<T: Table>(v: &T) -> Result<(), TestCaseError> {
    let row = v.to_row().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let (back, warnings) = T::from_row(Uuid::NIL, &row);
    prop_assert!(warnings.is_empty(), "{warnings:?}");
    prop_assert_eq!(&back, v);
    Ok(())
}

fn small_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map("[a-z_:-]{1,10}", "[ -~]{0,12}", 0..4)
}

proptest! {
    #[test]
    fn switch_ports_round_trip(
        name in "[a-z][a-z0-9-]{0,20}",
        mac in any::<[u8; 6]>(),
        ips in proptest::collection::vec(any::<Ipv4Addr>(), 0..3),
        tag_request in proptest::option::of(0i64..=4095),
        options in small_map(),
        enabled in proptest::option::of(any::<bool>()),
    ) {
        let p = LogicalSwitchPort {
            addresses: vec![LspAddress::mac(MacAddr(mac), ips.into_iter().map(IpAddr::V4))],
            tag_request,
            options,
            enabled,
            ..LogicalSwitchPort::new(&name)
        };
        round_trip(&p)?;
    }

    #[test]
    fn acls_round_trip_and_out_of_range_priorities_are_refused(
        priority in 0i64..=40_000,
        direction in proptest::sample::select(AclDirection::ALL),
        action in proptest::sample::select(AclAction::ALL),
        severity in proptest::option::of(proptest::sample::select(AclSeverity::ALL)),
        matches in "[ -~]{0,40}",
        name in proptest::option::of("[a-z]{0,63}"),
    ) {
        let acl = Acl { priority, severity, name, ..Acl::new(direction.clone(), 0, &matches, action.clone()) };
        if priority <= 32_767 {
            round_trip(&acl)?;
        } else {
            prop_assert!(acl.to_row().is_err());
        }
    }

    #[test]
    fn router_ports_round_trip(
        mac in any::<[u8; 6]>(),
        nets in proptest::collection::btree_set((any::<Ipv4Addr>(), 1u8..=32), 1..4),
    ) {
        // The database keeps networks as a set of strings: the model reads them back in that order.
        let mut networks: Vec<IpNet> = nets
            .into_iter()
            .map(|(a, len)| IpNet::V4(Ipv4Net::new(a, len).unwrap()))
            .collect();
        networks.sort_by_key(ToString::to_string);
        networks.dedup_by_key(|n| n.to_string());
        round_trip(&LogicalRouterPort::new("rp", MacAddr(mac), networks))?;
    }

    #[test]
    fn load_balancers_round_trip(
        vips in proptest::collection::btree_map(any::<(Ipv4Addr, u16)>(), proptest::collection::vec(any::<(Ipv4Addr, u16)>(), 1..4), 0..4),
        affinity in proptest::option::of(1u32..=65535),
    ) {
        let mut lb = LoadBalancer::new("lb", None);
        for ((ip, port), backends) in vips {
            let backends: Vec<_> = backends.into_iter().map(|(a, p)| (IpAddr::V4(a), p).into()).collect();
            lb = lb.with_vip((IpAddr::V4(ip), port).into(), &backends);
        }
        if let Some(t) = affinity {
            lb = lb.with_affinity(t);
        }
        round_trip(&lb)?;
    }
}
