//! Shared fixtures: a cluster, nodes, and an OVN_Northbound held in an `ovsdb` replica (the
//! router, the native gateway port and `NB_Global`), changed by plans run with `ovsdb`'s
//! in-memory transaction engine and observed from its snapshot as the controller observes it.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::net::IpAddr;

use gateway::{Cluster, NativeGateway, NodeState, Observed, Plan};
use ovn_model::nb::{self, LogicalRouter, LogicalRouterPort, NbGlobal};
use ovn_model::reconcile::OwnedRow;
use ovn_model::snapshot::Typed;
use ovsdb::replica::Replica;

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
pub fn nodes(n: u8) -> Vec<NodeState> {
    (1..=n)
        .map(|i| {
            NodeState::new(format!("node{i}"), format!("chassis-{i}"))
                .with_join_ip(ip(&format!("100.64.0.{}", i + 1)))
        })
        .collect()
}

/// An OVN_Northbound in memory.
#[derive(Debug, Clone)]
pub struct Db {
    pub cluster: Cluster,
    pub replica: Replica,
}

impl Db {
    /// The state the planner reads.
    pub fn observed(&self) -> Observed {
        Observed::from_snapshot(&Typed::new(&self.replica.snapshot()), &self.cluster)
    }

    /// Runs `plan`'s OVN changes, failing the test if the engine refuses them.
    pub fn apply(&mut self, plan: &Plan) {
        plan.nb()
            .apply(&mut self.replica)
            .unwrap_or_else(|e| panic!("the plan does not apply: {e}\n{}", plan.nb()));
    }

    /// The rows the planner owns now.
    pub fn owned(&self) -> Vec<OwnedRow> {
        self.observed().owned
    }

    /// Every row of `T`.
    pub fn rows<T: ovsdb::Table>(&self) -> Vec<T> {
        let snap = self.replica.snapshot();
        Typed::new(&snap).rows::<T>().collect()
    }
}

/// A database with the router, the gateway port (when the cluster has one) and `NB_Global`,
/// and nothing owned.
pub fn fresh(cluster: &Cluster) -> Db {
    let mut replica = Replica::new(nb::schema());
    let mut plan = ovn_model::plan::Plan::nb();
    let router = plan.insert(&LogicalRouter::new(cluster.router())).unwrap();
    if let Some(n) = cluster.native() {
        let port = LogicalRouterPort::new(
            n.port(),
            "0a:00:12:00:00:fe".parse().unwrap(),
            [net("10.18.0.254/24")],
        );
        plan.insert_child(&router, &port).unwrap();
    }
    plan.insert(&NbGlobal::default()).unwrap();
    plan.apply(&mut replica).unwrap();
    Db {
        cluster: cluster.clone(),
        replica,
    }
}
