//! Node management ports: the `ovn0` an egress gateway routes through.
//!
//! A management port is an OVS internal port on the node's `br-int`, bound to a logical switch
//! port of the join switch (`external_ids:iface-id`), and configured in the node's own
//! namespace (where its `ovs-vswitchd` runs, so it survives nothing it should not): MAC, join
//! address, MTU [`POD_MTU`] and tx checksum offload off (the userspace datapath leaves
//! checksums to be filled in, see `docs/lab.md`).

use std::thread;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::error::{Error, Result};
use crate::node::Node;
use crate::pod::POD_MTU;

/// How long the userspace datapath may take to create an internal port's tap device.
const DEVICE_TIMEOUT: Duration = Duration::from_secs(10);

impl Node {
    /// Adds management port `name` (e.g. `ovn0`) to this node: an internal port on `br-int`
    /// with `iface-id` `lsp`, `mac` and address `ip` (with its prefix, e.g.
    /// `100.64.0.2/16`) in the node's namespace. The logical switch port `lsp` (on the join
    /// switch, with addresses `"<mac> <ip>"`) is the caller's to create;
    /// [`Central::add_mgmt_port`](crate::Central::add_mgmt_port) does both.
    pub fn add_mgmt_port(&self, name: &str, lsp: &str, mac: &str, ip: IpNet) -> Result<()> {
        self.vsctl(&[
            "--may-exist",
            "add-port",
            "br-int",
            name,
            "--",
            "set",
            "interface",
            name,
            "type=internal",
            &format!("mac=\"{mac}\""),
            &format!("external_ids:iface-id={lsp}"),
        ])?;
        let ns = self.netns();
        let started = Instant::now();
        while !ns.exec_raw("ip", &["link", "show", name])?.status.success() {
            if started.elapsed() > DEVICE_TIMEOUT {
                return Err(Error::Timeout {
                    what: format!("device {name} in {}", ns.name()),
                    waited: DEVICE_TIMEOUT,
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
        ns.exec("ip", &["link", "set", name, "address", mac])?;
        ns.exec("ip", &["link", "set", name, "mtu", &POD_MTU.to_string()])?;
        ns.exec("ip", &["addr", "replace", &ip.to_string(), "dev", name])?;
        ns.exec("ip", &["link", "set", name, "up"])?;
        ns.exec("ethtool", &["-K", name, "tx", "off"])?;
        Ok(())
    }
}
