//! Nodes: a network namespace with its own Open_vSwitch database, `ovs-vswitchd` on the
//! userspace datapath, `br-int`, an underlay link and `ovn-controller`.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::central::Central;
use crate::cmd;
use crate::daemon::Daemon;
use crate::error::Result;
use crate::lab::{Lab, LabShared, schemas};
use crate::netns::Netns;
use crate::ovsdb_server::{OvsdbServer, OvsdbServerOptions};

/// The underlay network the nodes' Geneve tunnels run on.
pub const UNDERLAY_PREFIX: &str = "172.30.0";

/// A hypervisor of the lab.
///
/// Its `ovsdb-server` runs in the root namespace on a unix socket (sockets reach across
/// namespaces); `ovs-vswitchd` and `ovn-controller` run inside the node's namespace with their
/// run directories in the node's own directory. The node's underlay address is
/// `172.30.0.<index>` on `br-phy`, its chassis is registered in the SB as `chassis-<index>`.
#[derive(Debug)]
pub struct Node {
    // Field order is stop order.
    controller: Daemon,
    vswitchd: Daemon,
    ovsdb: OvsdbServer,
    pub(crate) ns: Arc<Netns>,
    _underlay: Arc<Netns>,
    pub(crate) index: u8,
    pub(crate) dir: PathBuf,
    next_port: AtomicU32,
    started_in: Duration,
    pub(crate) lab: Arc<LabShared>,
}

impl Lab {
    /// Starts a node connected to `central`'s SB and waits until its chassis is registered.
    pub fn start_node(&self, central: &Central) -> Result<Node> {
        let start = Instant::now();
        let index = self.shared.next_node_index()?;
        let dir = self.shared.subdir(&format!("node{index}"))?;
        let underlay = self.shared.underlay()?;
        let ns = Arc::new(Netns::create(&self.shared.ns_name(&format!("n{index}")))?);

        // Underlay link: node:u0 <-> underlay:u<index>, bridged in the underlay.
        let peer = format!("u{index}");
        cmd::output(Command::new("ip").args([
            "link",
            "add",
            "u0",
            "netns",
            ns.name(),
            "type",
            "veth",
            "peer",
            "name",
            &peer,
            "netns",
            underlay.name(),
        ]))?;
        underlay.exec("ip", &["link", "set", &peer, "master", "br0", "up"])?;
        ns.exec("ip", &["link", "set", "u0", "up"])?;
        ns.exec("ethtool", &["-K", "u0", "tx", "off"])?;

        let ovsdb = OvsdbServer::start(
            &self.shared,
            &dir,
            OvsdbServerOptions::new(schemas::VSWITCH).with_name("conf"),
            None,
        )?;
        let vsctl = |args: &[&str]| vsctl_at(&dir, &ovsdb.unix_remote(), args);
        vsctl(&["--no-wait", "init"])?;
        let vswitchd = Daemon::start(
            "ovs-vswitchd",
            &dir,
            Some(ns.name()),
            "ovs-vswitchd",
            &[
                ovsdb.unix_remote(),
                format!("--unixctl={}", dir.join("ovs-vswitchd.ctl").display()),
            ],
        )?;
        vsctl(&[
            "add-br",
            "br-phy",
            "--",
            "set",
            "bridge",
            "br-phy",
            "datapath_type=netdev",
            "--",
            "add-port",
            "br-phy",
            "u0",
        ])?;
        let underlay_ip = format!("{UNDERLAY_PREFIX}.{index}");
        ns.exec(
            "ip",
            &["addr", "add", &format!("{underlay_ip}/24"), "dev", "br-phy"],
        )?;
        ns.exec("ip", &["link", "set", "br-phy", "up"])?;
        vsctl(&[
            "add-br",
            "br-int",
            "--",
            "set",
            "bridge",
            "br-int",
            "datapath_type=netdev",
            "fail-mode=secure",
            "other_config:disable-in-band=true",
        ])?;
        let chassis = format!("chassis-{index}");
        vsctl(&[
            "set",
            "open_vswitch",
            ".",
            &format!("external_ids:system-id={chassis}"),
            &format!("external_ids:hostname=node{index}"),
            &format!("external_ids:ovn-remote={}", central.sb_remote()),
            "external_ids:ovn-encap-type=geneve",
            &format!("external_ids:ovn-encap-ip={underlay_ip}"),
            "external_ids:ovn-bridge-datapath-type=netdev",
        ])?;
        let controller = Daemon::start(
            "ovn-controller",
            &dir,
            Some(ns.name()),
            "ovn-controller",
            &[ovsdb.unix_remote()],
        )?;
        cmd::wait_for(
            || format!("{chassis} to register in the SB"),
            Duration::from_secs(20),
            || {
                central
                    .sbctl(&["--bare", "--columns=name", "list", "Chassis"])
                    .ok()
                    .filter(|names| names.lines().any(|n| n.trim() == chassis))
            },
        )?;
        let mac = ns
            .exec("cat", &["/sys/class/net/br-phy/address"])?
            .trim()
            .to_string();
        let me = UnderlayPeer {
            index,
            mac,
            dir: dir.clone(),
        };
        self.shared
            .live_nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(me);
        let mut node = Node {
            controller,
            vswitchd,
            ovsdb,
            ns,
            _underlay: underlay,
            index,
            dir,
            next_port: AtomicU32::new(1),
            started_in: Duration::ZERO,
            lab: self.shared.clone(),
        };
        node.prime_underlay_neighbours()?;
        node.started_in = start.elapsed();
        Ok(node)
    }
}

/// What other nodes need to know of a node to reach it on the underlay.
#[derive(Debug, Clone)]
pub(crate) struct UnderlayPeer {
    index: u8,
    mac: String,
    dir: PathBuf,
}

impl UnderlayPeer {
    fn ip(&self) -> String {
        format!("{UNDERLAY_PREFIX}.{}", self.index)
    }

    fn set_neighbour(&self, other: &UnderlayPeer) -> Result<()> {
        let ctl = self.dir.join("ovs-vswitchd.ctl");
        crate::daemon::appctl(
            &self.dir,
            &ctl,
            &["tnl/neigh/set", "br-phy", &other.ip(), &other.mac],
        )
        .map(drop)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let mut live = self
            .lab
            .live_nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        live.retain(|peer| peer.index != self.index);
    }
}

pub(crate) fn vsctl_at(dir: &Path, remote: &str, args: &[&str]) -> Result<String> {
    let mut command = cmd::in_dir("ovs-vsctl", dir);
    command
        .arg(format!("--db={remote}"))
        .arg("--timeout=20")
        .args(args);
    cmd::output(&mut command)
}

impl Node {
    /// The node's number in the lab (1, 2, ...).
    pub fn index(&self) -> u8 {
        self.index
    }

    /// `node<index>`.
    pub fn name(&self) -> String {
        format!("node{}", self.index)
    }

    /// The chassis name the node registers in the SB (`chassis-<index>`).
    pub fn chassis(&self) -> String {
        format!("chassis-{}", self.index)
    }

    /// The node's underlay address (the Geneve tunnel endpoint).
    pub fn underlay_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(172, 30, 0, self.index)
    }

    /// The node's network namespace.
    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    /// The node's Open_vSwitch database server.
    pub fn ovsdb(&self) -> &OvsdbServer {
        &self.ovsdb
    }

    /// The node's directory (logs, sockets, pidfiles).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How long the node took to come up (until its chassis was registered).
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// Runs `ovs-vsctl` against the node's database; returns its stdout.
    pub fn vsctl(&self, args: &[&str]) -> Result<String> {
        vsctl_at(&self.dir, &self.ovsdb.unix_remote(), args)
    }

    /// Runs `ovs-appctl` against this node's `ovs-vswitchd`.
    pub fn vswitchd_appctl(&self, args: &[&str]) -> Result<String> {
        crate::daemon::appctl(&self.dir, &self.dir.join("ovs-vswitchd.ctl"), args)
    }

    /// Kills the node's data plane: `ovs-vswitchd` and `ovn-controller` get SIGKILL. Its
    /// database and namespace stay, so [`restart_data_plane`](Self::restart_data_plane) can
    /// bring it back.
    pub fn kill_data_plane(&mut self) -> Result<()> {
        self.lab.set_node_running(self.index, false);
        self.controller.kill()?;
        self.vswitchd.kill()
    }

    /// Restarts `ovs-vswitchd` and `ovn-controller` after [`kill_data_plane`].
    ///
    /// [`kill_data_plane`]: Self::kill_data_plane
    pub fn restart_data_plane(&mut self) -> Result<()> {
        self.vswitchd.restart()?;
        self.controller.restart()?;
        self.lab.set_node_running(self.index, true);
        self.prime_underlay_neighbours()
    }

    /// Whether `ovs-vswitchd` and `ovn-controller` both run.
    pub fn data_plane_running(&self) -> bool {
        self.vswitchd.is_running() && self.controller.is_running()
    }

    /// PIDs of the node's daemons that run now.
    pub fn pids(&self) -> Vec<i32> {
        [
            self.controller.live_pid(),
            self.vswitchd.live_pid(),
            self.ovsdb.pid(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Tells this node's and every other node's `ovs-vswitchd` the underlay MAC of the other.
    ///
    /// The userspace datapath drops a tunnel packet whose underlay neighbour it does not know
    /// yet (it sends an ARP instead), and it only learns neighbours from ARP once a tunnel
    /// exists, so the first packets between pods on two fresh nodes would be lost. The lab sets
    /// the entries (`tnl/neigh/set`) when a node comes up and after its data plane restarts.
    pub(crate) fn prime_underlay_neighbours(&self) -> Result<()> {
        let peers = self
            .lab
            .live_nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(me) = peers.iter().find(|p| p.index == self.index) else {
            return Ok(());
        };
        for peer in peers.iter().filter(|p| p.index != self.index) {
            me.set_neighbour(peer)?;
            if self.lab.node_running(peer.index) {
                peer.set_neighbour(me)?;
            }
        }
        Ok(())
    }

    pub(crate) fn next_port_name(&self) -> String {
        format!("vh{}", self.next_port.fetch_add(1, Ordering::SeqCst))
    }
}
