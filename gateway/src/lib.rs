//! Pure planning of OVN egress gateways: how pods reach the world outside the cluster.
//!
//! `gateway` sits on `ovn-model` (typed OVN_Northbound rows, the reconcile core) and `ovsdb`,
//! beside `qos`, below the reference controller and node agent (`ovnkit-kube`). It turns each
//! subnet's [`EgressIntent`], the [`NodeState`]s (join address, chassis, health) and the
//! [`Observed`] state (from a replica snapshot, or typed rows in tests) into a [`Plan`]: the
//! OVN_Northbound changes (router policies, static routes, NAT, gateway chassis), each with its
//! reason, as an [`ovn_model::plan::Plan`] that becomes **one** transaction (merged with the
//! other plans of the reconcile step), plus a [`NodePlan`] per node, as data: the routes and
//! masquerade rules that node must hold. It reads no clock and touches no socket; a client
//! sends the transaction and the node agent
//! (`ovnkit_kube::node::gateway`) applies the node plans, in this order (make before break):
//! each node in [`Plan::node_plans_before`] applies that plan (what it holds now plus what it
//! will need), then the transaction goes out, then every node applies its
//! [`Plan::node_plans`] entry, which removes what it no longer carries.
//!
//! # The topology it assumes
//!
//! ```text
//!                        external network (e.g. 10.18.0.0/24)
//!        masquerade on node1   |        |  masquerade on node2   | OVN-native: localnet port,
//!        node1 (10.18.0.101)   |        |  node2 (10.18.0.102)   | distributed gateway port
//!        ovn0 100.64.0.2 ------+        +------ ovn0 100.64.0.3  | on the gateway chassis
//!               |                                    |           |
//!   join switch 100.64.0.0/16 -----------------------+           |
//!               | 100.64.0.1                                     |
//!          cluster router (`ovn-cluster`) -----------------------+
//!           |                  |
//!   subnet switch 10.16.1.0/24   subnet switch 10.16.2.0/24  ... pods
//! ```
//!
//! - A cluster router ([`Cluster::router`]).
//! - A join switch ([`Cluster::join_cidr`], default `100.64.0.0/16`) on the router (the
//!   router's join port at [`Cluster::router_join_ip`], e.g. `100.64.0.1`), with a
//!   management port on every node: `ovn0`, an OVS internal port on the node's `br-int` in the
//!   node's own network namespace, holding the node's join address ([`NodeState::join_ip`]).
//! - Each subnet a logical switch on the router.
//! - Optionally ([`NativeGateway`]): a distributed gateway router port on an external network
//!   reached through a localnet port.
//!
//! Node join addresses come from `ipam` ([`join`]: the join switch is an `ipam` subnet whose
//! gateway is the router's join port). The planner does not create that topology (the
//! topology layer of `ovn-model` does); it owns only the rows carrying its owner tags
//! (`ovnkit.io/owner=gateway`, see [`ovn_model::owner`]): objects `subnet/<name>` and
//! `cluster`, roles `internal`, `egress`, `default-route`, `snat`, `pod-snat`, `fip` and `chassis`.
//!
//! # Egress modes, per subnet
//!
//! | mode | OVN rows | node side |
//! |---|---|---|
//! | distributed | one `reroute` policy per node: `ip4.src == {that node's pods}` -> that node's join address | each node routes the subnet back via `ovn0` and masquerades it |
//! | centralized active-backup | one `reroute` policy: `ip4.src == CIDR` -> the first healthy gateway node | every healthy gateway node routes and masquerades (the backups on standby, listed in the policy's `ovnkit.io/standby`), so a failover changes OVN only |
//! | centralized ECMP | one `reroute` policy with every healthy gateway as a next hop | every healthy gateway node |
//! | no SNAT (`nat_outgoing=false`) | as distributed or centralized | routes only; pod addresses leave unchanged |
//! | OVN-native | `snat` to the gateway port's address, `snat` per pod with its own SNAT address ([`PodSnat`]), `dnat_and_snat` per floating IP; `Gateway_Chassis` priorities on the port (BFD moves it; optional BFD timers in `NB_Global` options, [`BfdTimers`]) | nothing |
//!
//! Besides: one `allow` policy at a higher priority keeps cluster-internal destinations
//! (cluster CIDRs, the join subnet, every subnet) on the normal routing path, and a default
//! route lets traffic to the outside reach the policy stage.
//!
//! A node that stops passing traffic (its [`NodeState::healthy`] turned false by a probe) moves a
//! centralized active-backup subnet to its next gateway, or leaves an ECMP set, in one plan.
//! The node that takes the traffic over already holds its route and masquerade rule: had it
//! to add them after OVN steered the traffic to it, the first packets would pass unmasqueraded
//! (in the lab, that showed as an occasional 3.9 s outage in place of the usual 0.8 s).
//! A subnet whose intent is bad (an unknown gateway node, a gateway without a join address,
//! contradictory modes) is an [`IntentError`] in [`Plan::rejected`]; the plan leaves its
//! current egress path alone, on OVN and on the nodes. Planning the applied state again gives
//! an empty plan.
//!
//! # Example
//!
//! ```
//! use gateway::{Cluster, EgressIntent, NodeState, Observed, Planner};
//! use ovn_model::nb::LogicalRouter;
//! use ovn_model::plan::Plan;
//! use ovn_model::snapshot::Typed;
//! use ovsdb::replica::Replica;
//!
//! let cluster = Cluster::default();
//! let nodes = [
//!     NodeState::new("node1", "chassis-1").with_join_ip("100.64.0.2".parse()?),
//!     NodeState::new("node2", "chassis-2").with_join_ip("100.64.0.3".parse()?),
//! ];
//! let intents = [EgressIntent::centralized("ls1", "10.16.1.0/24".parse()?, ["node1", "node2"])];
//! // OVN_Northbound in memory, with the cluster router (a controller reads a live replica).
//! let mut nb = Replica::new(ovn_model::nb::schema());
//! let mut setup = Plan::nb();
//! setup.insert(&LogicalRouter::new("ovn-cluster"))?;
//! setup.apply(&mut nb)?;
//! let observe = |nb: &Replica| Observed::from_snapshot(&Typed::new(&nb.snapshot()), &cluster);
//!
//! let planner = Planner::new(cluster.clone());
//! let plan = planner.plan(&intents, &nodes, &observe(&nb))?;
//! for line in plan.explain() {
//!     println!("{line}"); // subnet ls1: centralized (active-backup, active node1), masqueraded ...
//! }
//! assert_eq!(plan.node_plan("node1").unwrap().masquerade.len(), 1);
//! // node2 is on standby: it holds the same rule, and OVN sends it nothing yet.
//! assert_eq!(plan.node_plan("node2").unwrap().masquerade.len(), 1);
//! // Allow policy, reroute policy, default route: one transaction (here run in memory).
//! assert_eq!(plan.nb().steps().len(), 3);
//! plan.nb().apply(&mut nb)?;
//!
//! // node1 stops answering probes: one plan moves the subnet to node2.
//! let nodes = [nodes[0].clone().with_health(false), nodes[1].clone()];
//! let failover = planner.plan(&intents, &nodes, &observe(&nb))?;
//! assert_eq!(failover.nb().steps().len(), 1); // the policy's next hop (and standby list)
//! assert!(failover.node_plan("node1").unwrap().is_empty());
//! assert_eq!(failover.node_plan("node2").unwrap().masquerade.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod error;
mod intent;
pub mod join;
mod node_plan;
mod nodes;
mod observed;
mod plan;
mod planner;
mod wanted;

pub use config::{BfdTimers, Cluster, NativeGateway, NodeState};
pub use error::{ConfigError, IntentError, PlanError};
pub use intent::{EgressIntent, Fip, GatewayType, PodPlacement, PodSnat};
pub use node_plan::{Masquerade, NodePlan, NodeRoute};
pub use nodes::node_plan_from_observed;
pub use observed::{GlobalOptions, Observed, ObservedRows};
pub use plan::Plan;
pub use planner::{EGRESS_PRIORITY, INTERNAL_PRIORITY, TOP_CHASSIS_PRIORITY};

/// The planner: a [`Cluster`] and one pure function from (intents, nodes, observed rows) to a
/// [`Plan`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Planner {
    cluster: Cluster,
}

impl Planner {
    /// A planner for `cluster`.
    #[must_use]
    pub fn new(cluster: Cluster) -> Self {
        Planner { cluster }
    }

    /// The cluster.
    #[must_use]
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The plan that gives every subnet of `intents` its egress path, given `nodes` and the
    /// `observed` rows. Subnets whose intent is bad are set aside ([`Plan::rejected`]) and keep
    /// their current path; owned rows of subnets no longer in `intents` are removed.
    ///
    /// # Errors
    /// [`PlanError`] when no plan can be made at all: a bad cluster configuration, a native
    /// chassis node that is not known. A router or gateway port that was not observed is named
    /// in the plan (the same reconcile step may create it).
    pub fn plan(
        &self,
        intents: &[EgressIntent],
        nodes: &[NodeState],
        observed: &Observed,
    ) -> Result<Plan, PlanError> {
        planner::plan(&self.cluster, intents, nodes, observed)
    }
}
