//! An external network: a namespace with a Linux bridge that chosen nodes are wired to.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net};

use crate::cmd;
use crate::error::Result;
use crate::lab::{Lab, LabShared};
use crate::netns::Netns;
use crate::node::Node;

/// The external network outside the cluster (for gateways): a namespace holding a Linux bridge
/// `brx` with the external host's address [`ExternalNet::HOST`] on `10.18.0.0/24`.
///
/// [`connect`](ExternalNet::connect) wires a node to it: a veth `x0` in the node joined to the
/// bridge, an OVS bridge `br-ext` (userspace datapath) holding `x0`, the node's own external
/// address `10.18.0.<100 + index>/24` on `br-ext`, and the bridge mapping
/// `external:br-ext` for OVN localnet ports (physical network [`ExternalNet::PHYSNET`]).
/// [`Central::attach_external`](crate::Central::attach_external) connects a logical router to it.
#[derive(Debug)]
pub struct ExternalNet {
    ns: Netns,
    _lab: Arc<LabShared>,
}

impl ExternalNet {
    /// The external host's address.
    pub const HOST: Ipv4Addr = Ipv4Addr::new(10, 18, 0, 10);
    /// The name of the physical network in `ovn-bridge-mappings` (use it as the
    /// `network_name` of a localnet port).
    pub const PHYSNET: &'static str = "external";

    /// The external subnet.
    pub fn subnet(&self) -> IpNet {
        IpNet::V4(Ipv4Net::new(Ipv4Addr::new(10, 18, 0, 0), 24).expect("prefix 24 is valid"))
    }

    /// The external host's address.
    pub fn host_ip(&self) -> IpAddr {
        IpAddr::V4(Self::HOST)
    }

    /// The namespace of the external host.
    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    /// The external address a node gets when connected.
    pub fn node_ip(node: &Node) -> Ipv4Addr {
        Ipv4Addr::new(10, 18, 0, 100 + node.index())
    }

    /// Wires `node` to this network (see the type's docs) and returns the node's external
    /// address.
    pub fn connect(&self, node: &Node) -> Result<Ipv4Addr> {
        let peer = format!("x{}", node.index());
        cmd::output(Command::new("ip").args([
            "link",
            "add",
            "x0",
            "netns",
            node.netns().name(),
            "type",
            "veth",
            "peer",
            "name",
            &peer,
            "netns",
            self.ns.name(),
        ]))?;
        self.ns
            .exec("ip", &["link", "set", &peer, "master", "brx", "up"])?;
        self.ns.exec("ethtool", &["-K", &peer, "tx", "off"])?;
        let nns = node.netns();
        nns.exec("ip", &["link", "set", "x0", "up"])?;
        nns.exec("ethtool", &["-K", "x0", "tx", "off"])?;
        node.vsctl(&[
            "add-br",
            "br-ext",
            "--",
            "set",
            "bridge",
            "br-ext",
            "datapath_type=netdev",
            "--",
            "add-port",
            "br-ext",
            "x0",
        ])?;
        let ip = Self::node_ip(node);
        nns.exec("ip", &["addr", "add", &format!("{ip}/24"), "dev", "br-ext"])?;
        nns.exec("ip", &["link", "set", "br-ext", "up"])?;
        // The userspace datapath does not fill in checksums the kernel left to the device.
        nns.exec("ethtool", &["-K", "br-ext", "tx", "off"])?;
        node.vsctl(&[
            "set",
            "open_vswitch",
            ".",
            &format!("external_ids:ovn-bridge-mappings={}:br-ext", Self::PHYSNET),
        ])?;
        Ok(ip)
    }
}

impl Lab {
    /// Creates the external network namespace with its bridge and host address.
    pub fn start_external_net(&self) -> Result<ExternalNet> {
        let ns = Netns::create(&self.shared.ns_name("x"))?;
        ns.exec("ip", &["link", "add", "brx", "type", "bridge"])?;
        ns.exec(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/24", ExternalNet::HOST),
                "dev",
                "brx",
            ],
        )?;
        ns.exec("ip", &["link", "set", "brx", "up"])?;
        Ok(ExternalNet {
            ns,
            _lab: self.shared.clone(),
        })
    }
}
