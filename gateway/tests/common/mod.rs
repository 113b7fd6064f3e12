//! Shared fixtures: a cluster, nodes and an observed state holding the router and the
//! native gateway port.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::net::IpAddr;

use gateway::{Cluster, NativeGateway, Node, Observed, ObservedRows};
use ovn_model::nb;
use ovsdb::Uuid;

pub const ROUTER_UUID: u128 = 0xa;
pub const PORT_UUID: u128 = 0xb;

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn net(s: &str) -> ipnet::IpNet {
    s.parse().unwrap()
}

/// The default cluster, with a native gateway on `ovn-cluster-ext` hosted by node1 then node2.
pub fn cluster() -> Cluster {
    Cluster::default().with_native(NativeGateway::new(
        "ovn-cluster-ext",
        ip("10.18.0.254"),
        ["node1", "node2"],
    ))
}

/// `n` healthy nodes `node1..` with join addresses `100.64.0.2..`.
pub fn nodes(n: u8) -> Vec<Node> {
    (1..=n)
        .map(|i| {
            Node::new(format!("node{i}"), format!("chassis-{i}"))
                .with_join_ip(ip(&format!("100.64.0.{}", i + 1)))
        })
        .collect()
}

/// An observed state with the router and the gateway port and nothing owned.
pub fn fresh(cluster: &Cluster) -> Observed {
    let routers = [nb::LogicalRouter {
        uuid: Uuid::from_u128(ROUTER_UUID),
        name: cluster.router.clone(),
        ..Default::default()
    }];
    let ports: Vec<nb::LogicalRouterPort> = cluster
        .native
        .iter()
        .map(|n| nb::LogicalRouterPort {
            uuid: Uuid::from_u128(PORT_UUID),
            name: n.port.clone(),
            ..Default::default()
        })
        .collect();
    Observed::from_rows(
        cluster,
        &ObservedRows {
            routers: &routers,
            router_ports: &ports,
            ..Default::default()
        },
    )
}
