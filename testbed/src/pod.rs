//! Pods: network namespaces on a veth into a node's `br-int`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

use crate::cmd;
use crate::error::{Error, Result};
use crate::lab::LabShared;
use crate::netns::Netns;
use crate::node::{Node, vsctl_at};
use crate::traffic::{self, PingStats, Throughput};

/// The pod MTU: Geneve adds 58 bytes to a 1500-byte underlay and the userspace datapath does
/// not fragment.
pub const POD_MTU: u32 = 1400;

/// What a pod looks like: its name, the logical switch port it binds to, MAC, address, gateway.
#[derive(Debug, Clone)]
pub struct PodConfig {
    name: String,
    port: String,
    mac: String,
    ip: IpNet,
    gateway: Option<IpAddr>,
    mtu: u32,
}

impl PodConfig {
    /// A pod `name` bound to logical switch port `port` (its `iface-id`), with `mac` and `ip`
    /// (address with prefix length, e.g. `10.0.1.10/24`). `name` is 1 to 40 characters of
    /// `[a-z0-9-]`.
    pub fn new(name: &str, port: &str, mac: &str, ip: IpNet) -> Self {
        PodConfig {
            name: name.to_string(),
            port: port.to_string(),
            mac: mac.to_string(),
            ip,
            gateway: None,
            mtu: POD_MTU,
        }
    }

    /// Sets the default route through `gateway`.
    pub fn with_gateway(mut self, gateway: IpAddr) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// Overrides the MTU (default [`POD_MTU`]).
    pub fn with_mtu(mut self, mtu: u32) -> Self {
        self.mtu = mtu;
        self
    }

    fn validate(&self) -> Result<()> {
        let ok = !self.name.is_empty()
            && self.name.len() <= 40
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            return Err(Error::Invalid(format!(
                "pod name {:?}: use 1 to 40 characters of [a-z0-9-]",
                self.name
            )));
        }
        if self.port.is_empty() {
            return Err(Error::Invalid(format!(
                "pod {}: empty logical switch port",
                self.name
            )));
        }
        Ok(())
    }
}

/// A pod: a network namespace whose `eth0` is a veth into its node's `br-int`, with the OVS
/// interface's `external_ids:iface-id` set to its logical switch port. Transmit checksum
/// offload is off on both veth ends (the userspace datapath would send bad checksums).
/// Dropping it removes the OVS port and deletes the namespace.
#[derive(Debug)]
pub struct Pod {
    ns: Netns,
    config: PodConfig,
    host_if: String,
    node_dir: PathBuf,
    node_db: String,
    _lab: Arc<LabShared>,
}

impl Node {
    /// Creates a pod on this node. The logical switch port may be created before or after.
    pub fn add_pod(&self, config: PodConfig) -> Result<Pod> {
        config.validate()?;
        let ns = Netns::create(&self.lab.ns_name(&format!("p-{}", config.name)))?;
        let host_if = self.next_port_name();
        self.ns.exec(
            "ip",
            &[
                "link",
                "add",
                &host_if,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                ns.name(),
            ],
        )?;
        self.ns.exec("ip", &["link", "set", &host_if, "up"])?;
        self.ns.exec("ethtool", &["-K", &host_if, "tx", "off"])?;
        let mtu = config.mtu.to_string();
        ns.exec(
            "ip",
            &["link", "set", "eth0", "address", &config.mac, "mtu", &mtu],
        )?;
        ns.exec(
            "ip",
            &["addr", "add", &config.ip.to_string(), "dev", "eth0"],
        )?;
        ns.exec("ip", &["link", "set", "eth0", "up"])?;
        if let Some(gateway) = config.gateway {
            ns.exec(
                "ip",
                &["route", "add", "default", "via", &gateway.to_string()],
            )?;
        }
        ns.exec("ethtool", &["-K", "eth0", "tx", "off"])?;
        let node_db = self.ovsdb().unix_remote();
        vsctl_at(
            &self.dir,
            &node_db,
            &[
                "add-port",
                "br-int",
                &host_if,
                "--",
                "set",
                "interface",
                &host_if,
                &format!("external_ids:iface-id={}", config.port),
            ],
        )?;
        Ok(Pod {
            ns,
            config,
            host_if,
            node_dir: self.dir.clone(),
            node_db,
            _lab: self.lab.clone(),
        })
    }
}

impl Pod {
    /// The pod's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The logical switch port the pod is bound to.
    pub fn port(&self) -> &str {
        &self.config.port
    }

    /// The pod's address.
    pub fn ip(&self) -> IpAddr {
        self.config.ip.addr()
    }

    /// The pod's MAC address.
    pub fn mac(&self) -> &str {
        &self.config.mac
    }

    /// The name of the OVS port (host end of the veth) on the node's `br-int`.
    pub fn ovs_port(&self) -> &str {
        &self.host_if
    }

    /// The pod's network namespace.
    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    /// Runs `program args` inside the pod; fails unless it exits 0; returns stdout.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String> {
        self.ns.exec(program, args)
    }

    /// Pings `dst` `count` times (0.2 s apart, 1 s timeout each) and reports the loss.
    pub fn ping(&self, dst: IpAddr, count: u32) -> Result<PingStats> {
        traffic::ping(&self.ns, dst, count)
    }

    /// Sends TCP data from this pod to `to` for `duration` and returns the throughput measured
    /// by the receiver.
    pub fn tcp_throughput(&self, to: &Pod, duration: Duration) -> Result<Throughput> {
        traffic::tcp_throughput(&self.ns, &to.ns, to.ip(), duration)
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        // The node may already be gone: then its port went with it.
        let mut command = cmd::in_dir("ovs-vsctl", &self.node_dir);
        command.arg(format!("--db={}", self.node_db)).args([
            "--no-wait",
            "--timeout=2",
            "--if-exists",
            "del-port",
            "br-int",
            &self.host_if,
        ]);
        let _ = cmd::raw_output(&mut command);
    }
}
