//! Pure planning of pod bandwidth QoS on OVN and OVS.
//!
//! `qos` sits on `ovn-model` (typed OVN NB and Open_vSwitch rows) and `ovsdb` (transactions),
//! below the reference controller and node agent. It turns what a pod asks for (a
//! [`QosIntent`]: ingress and egress rate and burst, DSCP, netem; parsed from Kube-OVN
//! annotations by [`annotations::parse`]) and the rows observed in a database
//! ([`NbObserved`], [`NodeObserved`]: from a replica snapshot, or typed rows in tests) into an
//! [`ovn_model::plan::Plan`]: the minimal changes, each with its reason, that become **one**
//! transaction, and merge with the other plans of the same reconcile step. It reads no clock
//! and touches no socket; whoever holds a client sends the transaction.
//!
//! # Mechanisms
//!
//! Chosen per cluster with [`Config`]:
//!
//! | what | mechanism | rows |
//! |---|---|---|
//! | egress limit | [`EgressMechanism::OvnQos`] (default) | NB `QoS`, `from-lport`, `inport == "<lsp>"`, `bandwidth` rate (kbit/s) and burst (kbit), on `Logical_Switch.qos_rules` |
//! | egress limit | [`EgressMechanism::OvsPolicing`] | `Interface.ingress_policing_rate` (kbit/s) and `_burst` (kbit) |
//! | ingress limit | [`IngressMechanism::OvnQos`] (default) | NB `QoS`, `to-lport`, `outport == "<lsp>"` |
//! | ingress limit | [`IngressMechanism::OvsHtb`] | OVS `QoS` `linux-htb` + `Queue` `other_config:max-rate` (bit/s) on `Port.qos` |
//! | DSCP | always OVN | NB `QoS`, `from-lport`, `action` `dscp` |
//! | netem | always OVS | OVS `QoS` `linux-netem` on `Port.qos` |
//!
//! [`Planner::plan_nb`] plans the OVN_Northbound side, [`Planner::plan_node`] the pod's node
//! (its Open_vSwitch database). Each plans the whole intent for its database, so switching a
//! mechanism also removes what the other one left behind. Both are built on the reconcile core
//! of `ovn-model` ([`ovn_model::reconcile`]): every row the planner creates carries the owner
//! tags of [`ovn_model::owner`] (`ovnkit.io/owner=qos`, `ovnkit.io/object=pod/<ns>/<name>`,
//! `ovnkit.io/role` = its [`Role`]): that is how it finds its own rows among the observed ones,
//! updates them in place, and deletes them (no orphan `QoS` or `Queue`) when the intent goes
//! away. OVN meters are derived by `ovn-northd` from `bandwidth`; the planner writes no NB
//! `Meter` rows.
//!
//! The default burst is one second of the rate: policer and meter bursts much smaller than that
//! starve TCP (a 10 Mbit/s OVN meter with a 1 Mbit burst passes ~4.7 Mbit/s of TCP).
//!
//! # How it is tested
//!
//! - Golden plans for each mechanism (`tests/golden.rs`, expected text in `tests/golden/`).
//! - Properties (`tests/plan_properties.rs`): planning again after applying gives an empty plan,
//!   set-then-clear leaves no row, a rate change only updates rows, another pod's rows survive;
//!   "apply" there runs the plan's transaction in memory with `ovsdb`'s own transaction engine
//!   ([`ovsdb::replica::Replica::transact`]). `tests/server.rs` runs the same property against real
//!   OVN_Northbound and Open_vSwitch `ovsdb-server`s, reads rows back with `ovn-nbctl` and
//!   `ovs-vsctl`, and checks that a bad annotation leaves every row as it was.
//! - Real traffic (`tests/lab_traffic.rs`, and `cargo run -p examples --example qos_dynamic`):
//!   two pods on two lab nodes, limits changed on the running pods, a pinger throughout. On the
//!   2-core development machine (12 s transfers when limited):
//!
//! | limit | mechanism | measured |
//! |---|---|---|
//! | egress 10 Mbit/s | OVN meter | 10.0-10.1 Mbit/s |
//! | egress changed to 5 Mbit/s | OVN meter | 5.0-5.1 Mbit/s |
//! | egress removed | - | 230-290 Mbit/s |
//! | ingress 10 Mbit/s | OVS htb | 9.4-9.5 Mbit/s |
//! | ingress changed to 5 Mbit/s | OVS htb | 4.8 Mbit/s |
//! | ingress removed | - | 200-265 Mbit/s |
//! | ingress 10, then 5 Mbit/s (example only) | OVN meter (`to-lport`) | 10.2, then 5.0 Mbit/s |
//!
//! Ping every 100 ms never stopped (longest gap about 0.5 s). `Interface.ingress_policing_*`
//! and `linux-netem` are written and read back, but this lab's kernel does not enforce them.
//!
//! # Example
//!
//! ```
//! use ovn_model::nb;
//! use ovsdb::Uuid;
//! use qos::{annotations, Config, NbObserved, PodId, PodTarget, Planner};
//!
//! let pod = PodId::new("default", "web");
//! let intent = annotations::parse(&pod, [("ovn.kubernetes.io/egress_rate", "10")])?;
//! let target = PodTarget::new(pod, "ls1", "web", "veth-web");
//! let switches = [nb::LogicalSwitch { uuid: Uuid::from_u128(1), name: "ls1".into(), ..Default::default() }];
//! let observed = NbObserved::from_rows(&switches, &[], &target);
//!
//! let plan = Planner::new(Config::default()).plan_nb(&target, &intent, &observed)?;
//! for line in plan.explain() {
//!     println!("{line}"); // default/web: egress: 10 Mbit/s (burst 10 Mbit) from the pod ...: insert QoS ...
//! }
//! let prepared = plan.validated(ovn_model::nb::schema())?; // one transaction
//! // A wait that the switch still exists, the QoS row, the switch's qos_rules mutate.
//! assert_eq!(prepared.transaction().len(), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod annotations;
mod config;
mod error;
mod intent;
mod observed;
mod plan_nb;
mod plan_node;
mod units;

pub use annotations::{AnnotationError, BadValue};
pub use config::{Config, EgressMechanism, IngressMechanism, PodTarget};
pub use error::PlanError;
pub use intent::{Limit, Netem, PodId, QosIntent, Role};
pub use observed::{InterfaceState, NbObserved, NodeObserved, PortState};
pub use units::{BitRate, Burst, Dscp, LossPercent};

use ovn_model::plan::Plan;

/// The planner: a [`Config`] and two pure functions from (intent, observed rows) to a [`Plan`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Planner {
    config: Config,
}

impl Planner {
    /// A planner for a cluster configured with `config`.
    #[must_use]
    pub fn new(config: Config) -> Self {
        Planner { config }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The OVN_Northbound changes for the pod at `target` to get `intent`.
    ///
    /// # Errors
    /// [`PlanError::Plan`] when a value does not fit its column. A switch that was not
    /// observed is named in the plan: sending it fails, naming the switch, if it does not exist
    /// by then.
    pub fn plan_nb(
        &self,
        target: &PodTarget,
        intent: &QosIntent,
        observed: &NbObserved,
    ) -> Result<Plan, PlanError> {
        plan_nb::plan(&self.config, target, intent, observed)
    }

    /// The Open_vSwitch changes on the pod's node for the pod at `target` to get `intent`.
    ///
    /// # Errors
    /// [`PlanError::PortNotFound`] when the pod's port must change but was not observed;
    /// [`PlanError::HtbAndNetem`] when ingress through htb and netem are both asked;
    /// [`PlanError::Plan`] when a value does not fit its column.
    pub fn plan_node(
        &self,
        target: &PodTarget,
        intent: &QosIntent,
        observed: &NodeObserved,
    ) -> Result<Plan, PlanError> {
        plan_node::plan(&self.config, target, intent, observed)
    }
}
