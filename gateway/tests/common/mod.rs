//! Shared fixtures: a cluster, nodes and an observed state holding the router and the
//! native gateway port.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::net::IpAddr;

use gateway::{Cluster, NativeGateway, Node, Observed};
use ovsdb::{Row, Uuid};

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
    let mut o = Observed::default();
    o.add_row(
        cluster,
        "Logical_Router",
        &Row::new()
            .with("_uuid", Uuid::from_u128(ROUTER_UUID))
            .with("name", cluster.router.as_str()),
    );
    if let Some(n) = &cluster.native {
        o.add_row(
            cluster,
            "Logical_Router_Port",
            &Row::new()
                .with("_uuid", Uuid::from_u128(PORT_UUID))
                .with("name", n.port.as_str()),
        );
    }
    o
}
