//! A real OVN/OVS lab on one machine, for tests, examples and benchmarks.
//!
//! `ovn-testbed` starts the real daemons by hand (no init scripts, no systemd): NB and SB
//! `ovsdb-server` and `ovn-northd` ([`Central`]), Raft clusters ([`NbCluster`]), hypervisors as
//! network namespaces with their own `ovsdb-server`, `ovs-vswitchd` on the userspace datapath and
//! `ovn-controller` ([`Node`]), pods as namespaces on veths into a node's `br-int` ([`Pod`]),
//! an external network for gateways ([`ExternalNet`]), and containerd with real pods run through
//! CRI and a CNI plugin ([`Containerd`], [`CriPod`]). It carries every pitfall of running OVN
//! in namespaces (private run directories, tx checksum offload off, MTU 1400, per-namespace
//! `resolv.conf`) so that tests do not have to.
//!
//! Every lab lives in its own short directory under `/tmp` and names its namespaces
//! `ovk<id>-...`, so labs run side by side. Every part is an RAII value: dropping it stops its
//! daemons by PID (after checking the PID still belongs to its pidfile) and deletes its
//! namespaces, also when a test panics. Traffic only ever flows between namespaces of the lab.
//!
//! # Pods through CRI
//!
//! [`Node::start_containerd`] runs a containerd for a node, inside the node's network
//! namespace, configured entirely within the lab directory (`<lab>/c<index>`: config, root,
//! state, socket, CNI plugin and config directories, pod logs). [`Containerd::run_pod`] runs a
//! pod the way the kubelet would, through CRI ([`CriClient`], a blocking client with a timeout
//! per call): RunPodSandbox (containerd creates the network namespace and calls the CNI plugin
//! of the caller's conflist), then one busybox app container. The [`CriPod`] it returns knows
//! its IP and network namespace file and runs commands there (`nsenter --net`). No registry is
//! needed: the lab builds two one-layer images from the static busybox,
//! [`PAUSE_IMAGE`] and [`BUSYBOX_IMAGE`], and imports them into containerd's `k8s.io`
//! namespace. Dropping a pod stops and removes it through CRI, so the plugin sees DEL;
//! dropping the containerd does that for every pod left, then stops containerd by its
//! checked PID and removes its mounts, network namespace files and cgroups.
//!
//! ```no_run
//! use ovn_testbed::{CentralOptions, CniConfig, Lab, PodSpec};
//!
//! # fn main() -> Result<(), ovn_testbed::Error> {
//! let lab = Lab::new()?;
//! let central = lab.start_central(CentralOptions::default())?;
//! let node = lab.start_node(&central)?;
//! let conflist = format!(
//!     r#"{{"cniVersion": "1.0.0", "name": "labnet", "plugins": [{{"type": "ptp",
//!         "ipam": {{"type": "host-local", "ranges": [[{{"subnet": "10.99.1.0/24"}}]],
//!                   "dataDir": "{}/ipam"}}}}]}}"#,
//!     lab.dir().display()
//! );
//! let containerd = node.start_containerd(CniConfig::new(conflist))?;
//! let a = containerd.run_pod(PodSpec::new("pod-a"))?;
//! let b = containerd.run_pod(PodSpec::new("pod-b"))?;
//! assert_eq!(a.ping(b.ip(), 3)?.loss_percent(), 0.0);
//! println!("RunPodSandbox took {:?}", a.timings().run_sandbox);
//! # Ok(()) }
//! ```
//!
//! A plugin of your own (the `ovnkit` CNI binary, say) is added with
//! [`CniConfig::with_plugin`] under the name its conflist `"type"` uses. The pitfalls the lab
//! handles, and the ones a plugin author meets, are in `docs/lab.md`.
//!
//! # After a crash
//!
//! A program that keeps a lab beyond its own lifetime (`ovnkit sandbox up --keep`) records
//! the lab's directory; [`reclaim`] removes everything of that lab from the directory and the
//! lab's name prefix when the program died without dropping it: daemons and
//! [`LabProcess`]es by their checked pidfiles, containerd's leftovers, namespaces, the
//! directory.
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
mod cri_pod;
mod daemon;
mod error;
mod external;
pub mod golden;
mod images;
mod lab;
mod leftovers;
mod mgmt;
mod netns;
mod node;
mod ovsdb_server;
mod pod;
mod probe;
mod process;
mod reclaim;
mod traffic;

pub use central::{Central, CentralOptions};
pub use cluster::{ClusterMember, NbCluster, RaftRole};
pub use containerd::{CniConfig, Containerd, ContainerdTimings};
pub use cri::{
    BUSYBOX_IMAGE, CRI_TIMEOUT, ContainerSpec, CriClient, PAUSE_IMAGE, PodSpec, RuntimeConditions,
    RuntimeVersion, SandboxStatus, SandboxSummary,
};
pub use cri_pod::{CriPod, PodTimings};
pub use error::{Error, PACKAGES, Result};
pub use external::ExternalNet;
pub use lab::{CNI_PLUGIN_DIR, Lab, check_install, namespaces_with_prefix, schemas};
pub use leftovers::mounts_under;
pub use netns::{EnterNetns, Netns, NsThread, spawn_in};
pub use node::{Node, UNDERLAY_PREFIX};
pub use ovsdb_server::{OvsdbServer, OvsdbServerOptions, Pki, TlsFiles};
pub use pod::{POD_MTU, Pod, PodConfig};
pub use probe::{PingTimeline, Pinger, SourceEcho, source_seen_by};
pub use process::LabProcess;
pub use reclaim::{Reclaimed, lab_id_of, reclaim};
pub use traffic::{PingStats, Throughput, ping, tcp_throughput};

/// Whether process `pid` exists and is not a zombie. Tests use it to check that a dropped lab
/// left no daemon behind.
pub fn process_alive(pid: i32) -> bool {
    daemon::is_alive(pid)
}
