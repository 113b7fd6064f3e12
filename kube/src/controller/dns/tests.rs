//! The records map, exactly, for each kind of Service.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;

fn service(ns: &str, name: &str, spec: ServiceSpec) -> Service {
    Service {
        metadata: ObjectMeta {
            namespace: Some(ns.into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            ..Default::default()
        },
        spec: Some(spec),
        ..Default::default()
    }
}

fn cluster_ip(ips: &[&str]) -> ServiceSpec {
    ServiceSpec {
        cluster_ip: ips.first().map(|s| (*s).to_owned()),
        cluster_ips: Some(ips.iter().map(|s| (*s).to_owned()).collect()),
        ..Default::default()
    }
}

fn headless() -> ServiceSpec {
    cluster_ip(&["None"])
}

/// An endpoint: its addresses, its `ready` condition, its hostname.
fn endpoint(addresses: &[&str], ready: Option<bool>, hostname: Option<&str>) -> Endpoint {
    Endpoint {
        addresses: addresses.iter().map(|s| (*s).to_owned()).collect(),
        conditions: Some(EndpointConditions {
            ready,
            ..Default::default()
        }),
        hostname: hostname.map(Into::into),
        ..Default::default()
    }
}

fn slice(ns: &str, name: &str, address_type: &str, endpoints: Vec<Endpoint>) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            namespace: Some(ns.into()),
            name: Some(name.into()),
            ..Default::default()
        },
        address_type: address_type.into(),
        endpoints: Some(endpoints),
        ports: None,
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn no_slices() -> BTreeMap<String, Vec<&'static EndpointSlice>> {
    BTreeMap::new()
}

#[test]
fn a_cluster_ip_service_answers_its_full_name_and_its_address_backwards() {
    let svc = service("default", "web", cluster_ip(&["10.96.0.20"]));
    let r = records([&svc], &no_slices(), "cluster.local");
    assert_eq!(
        r.records,
        map(&[
            ("20.0.96.10.in-addr.arpa", "web.default.svc.cluster.local"),
            ("web.default.svc.cluster.local", "10.96.0.20"),
        ])
    );
    assert!(r.problems.is_empty());
}

#[test]
fn a_dual_stack_service_answers_both_cluster_ips_space_separated() {
    let svc = service(
        "shop",
        "cart",
        cluster_ip(&["10.96.7.1", "fd00:10:96::7:1", "10.96.7.1"]),
    );
    let r = records([&svc], &no_slices(), "cluster.local");
    assert_eq!(
        r.records,
        map(&[
            ("1.7.96.10.in-addr.arpa", "cart.shop.svc.cluster.local"),
            (
                "1.0.0.0.7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa",
                "cart.shop.svc.cluster.local"
            ),
            ("cart.shop.svc.cluster.local", "10.96.7.1 fd00:10:96::7:1"),
        ])
    );
}

#[test]
fn only_cluster_ip_counts_when_cluster_ips_is_absent() {
    let spec = ServiceSpec {
        cluster_ip: Some("10.96.0.5".into()),
        ..Default::default()
    };
    let svc = service("default", "old", spec);
    let r = records([&svc], &no_slices(), "cluster.local");
    assert_eq!(r.records["old.default.svc.cluster.local"], "10.96.0.5");
}

#[test]
fn a_headless_service_answers_its_ready_endpoints_and_their_hostnames() {
    let svc = service("db", "pg", headless());
    let a = slice(
        "db",
        "pg-abc",
        "IPv4",
        vec![
            endpoint(&["10.16.0.12"], Some(true), Some("pg-0")),
            endpoint(&["10.16.0.11"], None, Some("pg-1")),
            endpoint(&["10.16.0.13"], Some(false), Some("pg-2")),
        ],
    );
    let b = slice(
        "db",
        "pg-def",
        "IPv4",
        vec![endpoint(&["10.16.0.14"], Some(true), None)],
    );
    let fqdn_slice = slice(
        "db",
        "pg-fqdn",
        "FQDN",
        vec![endpoint(&["pg.example.org"], Some(true), None)],
    );
    let slices = BTreeMap::from([("db/pg".to_owned(), vec![&a, &b, &fqdn_slice])]);
    let r = records([&svc], &slices, "cluster.local");
    assert_eq!(
        r.records,
        map(&[
            ("pg-0.pg.db.svc.cluster.local", "10.16.0.12"),
            ("pg-1.pg.db.svc.cluster.local", "10.16.0.11"),
            (
                "pg.db.svc.cluster.local",
                "10.16.0.11 10.16.0.12 10.16.0.14"
            ),
        ]),
        "unready pg-2 left out, ready unknown counts as ready, FQDN slices ignored"
    );
    assert!(r.problems.is_empty(), "{:?}", r.problems);
}

#[test]
fn publish_not_ready_addresses_answers_unready_endpoints_too() {
    let mut spec = headless();
    spec.publish_not_ready_addresses = Some(true);
    let svc = service("db", "pg", spec);
    let a = slice(
        "db",
        "pg-abc",
        "IPv4",
        vec![
            endpoint(&["10.16.0.12"], Some(true), None),
            endpoint(&["10.16.0.13"], Some(false), None),
        ],
    );
    let slices = BTreeMap::from([("db/pg".to_owned(), vec![&a])]);
    let r = records([&svc], &slices, "cluster.local");
    assert_eq!(
        r.records,
        map(&[("pg.db.svc.cluster.local", "10.16.0.12 10.16.0.13")])
    );
}

#[test]
fn services_without_an_address_and_external_names_get_no_record() {
    let external = service(
        "default",
        "ext",
        ServiceSpec {
            type_: Some("ExternalName".into()),
            external_name: Some("example.org".into()),
            ..Default::default()
        },
    );
    let pending = service("default", "pending", ServiceSpec::default());
    let empty = service("default", "empty", headless());
    let unready = service("default", "unready", headless());
    let s = slice(
        "default",
        "unready-x",
        "IPv4",
        vec![endpoint(&["10.16.0.9"], Some(false), None)],
    );
    let slices = BTreeMap::from([("default/unready".to_owned(), vec![&s])]);
    let r = records(
        [&external, &pending, &empty, &unready],
        &slices,
        "cluster.local",
    );
    assert!(r.records.is_empty(), "{:?}", r.records);
    assert!(r.problems.is_empty());
}

#[test]
fn names_are_lowercase_in_the_configured_domain() {
    let svc = service("Team-A", "Web", cluster_ip(&["10.96.0.30"]));
    let r = records([&svc], &no_slices(), "Corp.Example.");
    assert_eq!(
        r.records,
        map(&[
            ("30.0.96.10.in-addr.arpa", "web.team-a.svc.corp.example"),
            ("web.team-a.svc.corp.example", "10.96.0.30"),
        ])
    );
}

#[test]
fn a_bad_cluster_ip_is_reported_and_the_good_ones_kept() {
    let svc = service("default", "web", cluster_ip(&["10.96.0.300", "10.96.0.31"]));
    let other = service("default", "db", cluster_ip(&["10.96.0.32"]));
    let r = records([&svc, &other], &no_slices(), "cluster.local");
    assert_eq!(r.records["web.default.svc.cluster.local"], "10.96.0.31");
    assert_eq!(r.records["db.default.svc.cluster.local"], "10.96.0.32");
    assert_eq!(r.problems.len(), 1);
    let (object, message) = &r.problems[0];
    assert_eq!(object.kind, Kind::Service);
    assert_eq!(object.name, "web");
    assert!(
        message.contains("spec.clusterIPs") && message.contains("10.96.0.300"),
        "{message}"
    );
}

#[test]
fn a_name_that_is_no_dns_label_is_reported_and_gets_no_record() {
    let svc = service("default", "web_1", cluster_ip(&["10.96.0.40"]));
    let r = records([&svc], &no_slices(), "cluster.local");
    assert!(r.records.is_empty());
    assert_eq!(r.problems.len(), 1);
    assert!(
        r.problems[0].1.contains("metadata.name"),
        "{:?}",
        r.problems
    );
}

#[test]
fn a_bad_endpoint_address_is_reported_on_its_slice() {
    let svc = service("db", "pg", headless());
    let a = slice(
        "db",
        "pg-abc",
        "IPv4",
        vec![endpoint(&["10.16.0.12", "nope"], Some(true), None)],
    );
    let slices = BTreeMap::from([("db/pg".to_owned(), vec![&a])]);
    let r = records([&svc], &slices, "cluster.local");
    assert_eq!(r.records["pg.db.svc.cluster.local"], "10.16.0.12");
    assert_eq!(r.problems.len(), 1);
    let (object, message) = &r.problems[0];
    assert_eq!(
        (object.kind, object.name.as_str()),
        (Kind::EndpointSlice, "pg-abc")
    );
    assert!(message.contains("endpoints[0].addresses"), "{message}");
}

#[test]
fn the_delta_drops_gone_and_changed_names_and_adds_new_and_changed_ones() {
    let have = map(&[("a", "1"), ("b", "2"), ("c", "3")]);
    let want = map(&[("a", "1"), ("b", "20"), ("d", "4")]);
    let (drop, add) = delta(&have, &want);
    assert_eq!(drop, ["b", "c"]);
    assert_eq!(add, map(&[("b", "20"), ("d", "4")]));
    assert_eq!(delta(&want, &want), (Vec::new(), BTreeMap::new()));
}
