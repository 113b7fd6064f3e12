//! A real OVN/OVS lab on one machine, for tests, examples and benchmarks.
//!
//! `ovn-testbed` starts the real daemons by hand (no init scripts, no systemd): NB and SB
//! `ovsdb-server` and `ovn-northd` ([`Central`]), Raft clusters ([`NbCluster`]), hypervisors as
//! network namespaces with their own `ovsdb-server`, `ovs-vswitchd` on the userspace datapath and
//! `ovn-controller` ([`Node`]), pods as namespaces on veths into a node's `br-int` ([`Pod`]), and
//! an external network for gateways ([`ExternalNet`]). It carries every pitfall of running OVN
//! in namespaces (private run directories, tx checksum offload off, MTU 1400, per-namespace
//! `resolv.conf`) so that tests do not have to.
//!
//! Every lab lives in its own short directory under `/tmp` and names its namespaces
//! `ovk<id>-...`, so labs run side by side. Every part is an RAII value: dropping it stops its
//! daemons by PID (after checking the PID still belongs to its pidfile) and deletes its
//! namespaces, also when a test panics. Traffic only ever flows between namespaces of the lab.
//!
//! [`golden`] holds the golden-file check the planners' test suites share.
//!
//! It sits beside the ovnkit crates, not under them: the libraries never depend on it; their
//! tests, the examples and the benchmarks do. It needs root and the Debian packages of
//! [`PACKAGES`] (`cargo xtask install` installs them).
//!
//! ```no_run
//! use std::time::Duration;
//! use ovn_testbed::{CentralOptions, Lab, PodConfig};
//!
//! # fn main() -> Result<(), ovn_testbed::Error> {
//! let lab = Lab::new()?;
//! let central = lab.start_central(CentralOptions::default())?;
//! let node1 = lab.start_node(&central)?;
//! let node2 = lab.start_node(&central)?;
//! central.nbctl(&["ls-add", "ls1"])?;
//! for (port, mac, ip) in [("p1", "0a:00:00:00:00:01", "10.0.0.1"), ("p2", "0a:00:00:00:00:02", "10.0.0.2")] {
//!     central.nbctl(&["lsp-add", "ls1", port, "--", "lsp-set-addresses", port, &format!("{mac} {ip}")])?;
//! }
//! let a = node1.add_pod(PodConfig::new("a", "p1", "0a:00:00:00:00:01", "10.0.0.1/24".parse().unwrap()))?;
//! let b = node2.add_pod(PodConfig::new("b", "p2", "0a:00:00:00:00:02", "10.0.0.2/24".parse().unwrap()))?;
//! central.wait_port_up("p1", Duration::from_secs(10))?;
//! central.wait_port_up("p2", Duration::from_secs(10))?;
//! central.sync_hv()?;
//! assert_eq!(a.ping(b.ip(), 5)?.loss_percent(), 0.0);
//! println!("{:.0} Mbit/s", a.tcp_throughput(&b, Duration::from_secs(1))?.mbit_per_s());
//! # Ok(()) }
//! ```

mod central;
mod cluster;
mod cmd;
mod containerd;
mod cri;
mod daemon;
mod error;
mod external;
pub mod golden;
mod images;
mod lab;
mod mgmt;
mod netns;
mod node;
mod ovsdb_server;
mod pod;
mod probe;
mod traffic;

pub use central::{Central, CentralOptions};
pub use cluster::{ClusterMember, NbCluster, RaftRole};
pub use containerd::{CniConfig, Containerd, ContainerdTimings, CriPod, PodTimings, mounts_under};
pub use cri::{
    BUSYBOX_IMAGE, CRI_TIMEOUT, ContainerSpec, CriClient, PAUSE_IMAGE, PodSpec, RuntimeConditions,
    RuntimeVersion, SandboxStatus, SandboxSummary,
};
pub use error::{Error, PACKAGES, Result};
pub use external::ExternalNet;
pub use lab::{CNI_PLUGIN_DIR, Lab, check_install, namespaces_with_prefix, schemas};
pub use netns::{Netns, NsThread};
pub use node::{Node, UNDERLAY_PREFIX};
pub use ovsdb_server::{OvsdbServer, OvsdbServerOptions, Pki, TlsFiles};
pub use pod::{POD_MTU, Pod, PodConfig};
pub use probe::{PingTimeline, Pinger, SourceEcho, source_seen_by};
pub use traffic::{PingStats, Throughput, ping, tcp_throughput};

/// Whether process `pid` exists and is not a zombie. Tests use it to check that a dropped lab
/// left no daemon behind.
pub fn process_alive(pid: i32) -> bool {
    daemon::is_alive(pid)
}
