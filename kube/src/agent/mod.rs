//! The node agent: plumbs each pod the CNI plugin asks for into OVS and OVN.
//!
//! # Shape
//!
//! The agent runs in the node's network namespace, next to `ovs-vswitchd` and
//! `ovn-controller`, and works from OVN alone: the controller writes each pod's
//! `Logical_Switch_Port` (`<namespace>.<pod>`, `addresses "<mac> <ip>..."`,
//! `options:requested-chassis`, and the data keys of [`ovn_model::owner`]: CIDRs, gateways,
//! MTU, QoS), and the agent reads them from a conditional NB monitor of this node's ports
//! ([`ports`]).
//!
//! - [`ports`]: the NB view; waits for a pod's port and for it to come `up`.
//! - [`plumb`]: the veth pair over netlink, the pod end configured inside the pod's namespace.
//! - [`ovs`]: the pods' ports on `br-int` and their node-side QoS, over OVSDB.
//! - [`server`]: the CNI socket and what `ADD`, `DEL`, `CHECK`, `GC` and `STATUS` do.
//! - [`bootstrap`]: the node's management port `ovn0` and its routes to the subnets.
//! - [`egress`]: the node's egress plan (forwarding, masquerade), derived from the egress
//!   policies the controller wrote and applied in the node's namespace.
//! - [`nodeport`]: NodePort Services on the node (DNAT of its node ports to the node-port VIP,
//!   routed into OVN; masquerade for `externalTrafficPolicy: Cluster`), derived from the
//!   load balancers the controller wrote.
//! - [`run`](mod@run): [`AgentConfig`] and [`run()`](run::run).
//!
//! **`ADD`**, in order, each part timed ([`server::AddTiming`]): wait for the port (bounded,
//! 30 s by default; code 11 "try again later" when it does not come) -> veth pair: host end
//! `<11 chars of the container id>_h` in the node, peer renamed `CNI_IFNAME` in the pod with
//! the port's MAC, MTU, addresses and default route, tx checksum offload off on both ends ->
//! OVS `Port`+`Interface` with `iface-id` and the agent's owner tags, one transaction ->
//! `qos::Planner::plan_node` for the pod's interface -> wait for `Logical_Switch_Port.up`.
//! The result carries the pod's resolver settings when the agent has a DNS server
//! ([`AgentConfig::with_dns`], [`AgentConfig::pod_dns`]): OVN answers the Services' names on
//! the way to that server (the controller's DNS records).
//!
//! **State** lives in the systems themselves, never in files of the agent: the OVS ports'
//! `external_ids` say which container, interface and network namespace each belongs to. On
//! start the agent removes the attachments whose namespace is gone ([`server::Agent::reconcile`]),
//! so a restart after pods were deleted while it was down leaves nothing behind; pods keep
//! their traffic while the agent is down (nothing of the data path depends on it).
//!
//! **Teardown** is idempotent: `DEL` of an attachment with nothing left succeeds.
//!
//! # Threads and namespaces
//!
//! Netlink sockets are bound to the namespace they were opened in. Work inside a pod's
//! namespace runs on a short-lived thread that entered it (`setns`) with its own
//! current-thread runtime; the agent's runtime threads never change namespace.
//!
//! # Tested
//!
//! `ovnkit/tests/agent_lab.rs` runs the real controller and the real agent binary inside the
//! nodes of a real OVN lab and talks to the socket as the CNI plugin does.
//! `ovnkit/tests/agent_egress.rs` checks egress the same way: pods on two nodes reach an
//! external host, which sees each node's own external address.

pub mod bootstrap;
pub mod egress;
pub mod nodeport;
pub mod ovs;
pub mod plumb;
pub mod ports;
pub mod run;
pub mod server;

pub use run::{AgentConfig, RunError, run};
pub use server::{AddTiming, Agent};
