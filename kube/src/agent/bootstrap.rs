//! The node's management port (`ovn0`): how the node itself reaches the pods.
//!
//! The controller gives every node a port `node-<name>` on the join switch. The agent makes
//! its local end: an OVS internal port on `br-int` with `iface-id=node-<name>` (and the
//! `Interface.mac` of the NB port), configured over netlink in the node's namespace (MAC, the
//! join address with the prefix of [`PORT_CIDR`], MTU, up, tx checksum offload off), and
//! routes to every subnet's CIDR ([`SWITCH_CIDR`] of each logical switch) and to the node-port
//! VIPs ([`nodeport`](super::nodeport)) via the join gateway ([`PORT_GATEWAY`]). The routes carry protocol [`ROUTE_PROTOCOL`], so they are told
//! apart from the gateway executor's and anyone else's; [`keep`] re-syncs them whenever the
//! NB changes (a subnet added or removed).
//!
//! [`PORT_CIDR`]: ovn_model::owner::PORT_CIDR
//! [`SWITCH_CIDR`]: ovn_model::owner::SWITCH_CIDR
//! [`PORT_GATEWAY`]: ovn_model::owner::PORT_GATEWAY

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol};
use ovn_model::owner::{Key, Object};
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};

use super::egress::Egress;
use super::nodeport::NodePorts;
use super::ovs::{AGENT, IFACE_ID, NodeOvs, OvsError};
use super::plumb::{self, PlumbError};
use super::ports::{NbView, PortError, PortInfo};

/// The route protocol of the management port's routes (`ip route ... proto 142`).
pub const ROUTE_PROTOCOL: u8 = 142;

/// How long the userspace datapath may take to create the internal port's device.
const DEVICE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the management port could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootstrapError {
    /// The NB port's data cannot be used.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The OVS port could not be added.
    #[error(transparent)]
    Ovs(#[from] OvsError),
    /// Netlink failed.
    #[error(transparent)]
    Plumb(#[from] PlumbError),
    /// The device did not appear.
    #[error("device {0} did not appear within {DEVICE_TIMEOUT:?}")]
    NoDevice(String),
}

fn nl(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> BootstrapError {
    let what = what.into();
    move |source| BootstrapError::Plumb(plumb::nl(what)(source))
}

/// What [`sync`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MgmtState {
    /// The management port's address, once configured.
    pub address: Option<IpNet>,
    /// The subnet routes it holds.
    pub routes: Vec<IpNet>,
    /// The device's interface index when it was configured: a device re-created (by a
    /// restarted `ovs-vswitchd`) has a new one and is configured again; otherwise only the
    /// routes are synced.
    pub index: Option<u32>,
}

/// The management port `device` of `node`: makes it and its routes match the NB now. Returns
/// `None` while the controller has not made the node's port yet. `previous` is what the last
/// call returned: the link is configured again only when its device changed. `extra` are
/// further destinations routed the same way (the node-port VIPs,
/// [`nodeport`](super::nodeport)).
///
/// # Errors
/// [`BootstrapError`] naming the step.
pub async fn sync(
    nb: &NbView,
    ovs: &NodeOvs,
    node: &str,
    device: &str,
    mtu: u32,
    previous: Option<&MgmtState>,
    extra: &[IpNet],
) -> Result<Option<MgmtState>, BootstrapError> {
    let lsp_name = format!("node-{node}");
    let Some(lsp) = nb.port(&lsp_name) else {
        return Ok(None);
    };
    let info = PortInfo::from_port(&lsp)?;
    let mac = info.mac.to_string();
    let bound = ovs
        .port(device)
        .is_some_and(|p| p.external_ids.get(IFACE_ID) == Some(&lsp_name));
    if !bound {
        let mut ids = Key::new(AGENT, Object::node(node), "management-port").tags();
        ids.insert(IFACE_ID.to_owned(), lsp_name.clone());
        ovs.add_port(device, "internal", Some(&mac), ids).await?;
    }
    let (conn, handle, _) =
        rtnetlink::new_connection().map_err(|e| BootstrapError::Plumb(PlumbError::Socket(e)))?;
    let driver = tokio::spawn(conn);
    let done = previous.and_then(|p| p.index);
    let mut destinations = nb.subnet_cidrs();
    destinations.extend_from_slice(extra);
    let result = configure(&handle, device, &info, mtu, destinations, done).await;
    driver.abort();
    result.map(Some)
}

async fn link_index(handle: &Handle, name: &str) -> Result<Option<u32>, BootstrapError> {
    let mut s = handle.link().get().match_name(name.to_owned()).execute();
    match s.try_next().await {
        Ok(l) => Ok(l.map(|l| l.header.index)),
        Err(rtnetlink::Error::NetlinkError(_)) => Ok(None),
        Err(e) => Err(nl(format!("looking up {name}"))(e)),
    }
}

async fn configure(
    handle: &Handle,
    device: &str,
    info: &PortInfo,
    mtu: u32,
    cidrs: Vec<IpNet>,
    configured: Option<u32>,
) -> Result<MgmtState, BootstrapError> {
    let started = Instant::now();
    let index = loop {
        if let Some(i) = link_index(handle, device).await? {
            break i;
        }
        if started.elapsed() > DEVICE_TIMEOUT {
            return Err(BootstrapError::NoDevice(device.to_owned()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    if configured != Some(index) {
        configure_link(handle, device, index, info, mtu).await?;
    }
    let own: Vec<IpNet> = info.ips.iter().map(IpNet::trunc).collect();
    let want: BTreeSet<(IpNet, IpAddr)> = cidrs
        .into_iter()
        .filter(|c| !own.contains(&c.trunc()))
        .filter_map(|c| {
            let gw = info
                .gateways
                .iter()
                .find(|g| g.is_ipv4() == c.addr().is_ipv4())?;
            Some((c.trunc(), *gw))
        })
        .collect();
    sync_routes(handle, index, &want).await?;
    Ok(MgmtState {
        address: info.ips.first().copied(),
        routes: want.into_iter().map(|(c, _)| c).collect(),
        index: Some(index),
    })
}

/// MAC, MTU, up, the join address, tx checksum offload off.
async fn configure_link(
    handle: &Handle,
    device: &str,
    index: u32,
    info: &PortInfo,
    mtu: u32,
) -> Result<(), BootstrapError> {
    handle
        .link()
        .set(
            LinkUnspec::new_with_index(index)
                .address(info.mac.0.to_vec())
                .mtu(mtu)
                .up()
                .build(),
        )
        .execute()
        .await
        .map_err(nl(format!("configuring {device}")))?;
    for ip in &info.ips {
        handle
            .address()
            .add(index, ip.addr(), ip.prefix_len())
            .replace()
            .execute()
            .await
            .map_err(nl(format!("adding {ip} to {device}")))?;
    }
    plumb::tx_offload_off(device)?;
    Ok(())
}

fn route_key(m: &RouteMessage) -> Option<(IpNet, Option<IpAddr>, Option<u32>)> {
    let addr = |a: &RouteAddress| match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    };
    let (mut dst, mut gw, mut oif) = (None, None, None);
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(d) => dst = addr(d),
            RouteAttribute::Gateway(g) => gw = addr(g),
            RouteAttribute::Oif(i) => oif = Some(*i),
            _ => {}
        }
    }
    let net = IpNet::new(dst?, m.header.destination_prefix_length).ok()?;
    Some((net, gw, oif))
}

async fn sync_routes(
    handle: &Handle,
    index: u32,
    want: &BTreeSet<(IpNet, IpAddr)>,
) -> Result<(), BootstrapError> {
    let mut have = BTreeSet::new();
    let families = [
        RouteMessageBuilder::<Ipv4Addr>::new().build(),
        RouteMessageBuilder::<Ipv6Addr>::new().build(),
    ];
    let mut stale = Vec::new();
    for family in families {
        let mut s = handle.route().get(family).execute();
        while let Some(m) = s.try_next().await.map_err(nl("listing routes"))? {
            if m.header.protocol != RouteProtocol::Other(ROUTE_PROTOCOL) {
                continue;
            }
            match route_key(&m) {
                Some((net, Some(gw), Some(oif))) if oif == index && want.contains(&(net, gw)) => {
                    have.insert((net, gw));
                }
                _ => stale.push(m),
            }
        }
    }
    for m in stale {
        handle
            .route()
            .del(m)
            .execute()
            .await
            .map_err(nl("removing a stale management route"))?;
    }
    for (net, gw) in want.iter().filter(|k| !have.contains(*k)) {
        let route = match (net, gw) {
            (IpNet::V4(d), IpAddr::V4(g)) => RouteMessageBuilder::<Ipv4Addr>::new()
                .protocol(RouteProtocol::Other(ROUTE_PROTOCOL))
                .output_interface(index)
                .destination_prefix(d.network(), d.prefix_len())
                .gateway(*g)
                .build(),
            (IpNet::V6(d), IpAddr::V6(g)) => RouteMessageBuilder::<Ipv6Addr>::new()
                .protocol(RouteProtocol::Other(ROUTE_PROTOCOL))
                .output_interface(index)
                .destination_prefix(d.network(), d.prefix_len())
                .gateway(*g)
                .build(),
            _ => continue,
        };
        plumb::replace_route(handle, route, format!("adding route {net} via {gw}")).await?;
    }
    Ok(())
}

/// Keeps the management port in sync with the NB for as long as the NB replica runs: syncs
/// now and after every change; failures are logged and retried on the next change (or after
/// a second). With `egress`, once the port is in sync, also makes the node hold its egress
/// plan ([`egress`](super::egress)), the management port being the device its routes use.
/// With `node_ports`, the port also routes the node-port VIPs, and once it is in sync the node
/// holds its node ports ([`nodeport`](super::nodeport)).
pub async fn keep(
    nb: NbView,
    ovs: NodeOvs,
    node: String,
    device: String,
    mtu: u32,
    egress: bool,
    node_ports: bool,
) {
    let mut changes = nb.client().changes();
    let mut last = None;
    let mut gateway = egress.then(|| Egress::new(&node, nb.chassis(), &device));
    let mut ports = node_ports.then(|| NodePorts::new(&node, &device));
    loop {
        let wanted = ports
            .as_mut()
            .map(|p| p.wanted(&nb.client().snapshot()))
            .unwrap_or_default();
        match sync(
            &nb,
            &ovs,
            &node,
            &device,
            mtu,
            last.as_ref(),
            &wanted.routes(),
        )
        .await
        {
            Ok(state) => {
                if state != last {
                    tracing::info!(device = %device, state = ?state, "management port in sync");
                    last = state;
                }
            }
            Err(e) => {
                tracing::warn!(device = %device, error = %e, "management port");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        let mut failed = false;
        if let (Some(g), Some(mgmt)) = (gateway.as_mut(), last.as_ref())
            && let Err(e) = g.sync(&nb.client().snapshot(), mgmt).await
        {
            tracing::warn!(node = %node, error = %DisplayChain(&e), "egress");
            failed = true;
        }
        if let (Some(p), Some(_)) = (ports.as_mut(), last.as_ref())
            && let Err(e) = p.sync(&wanted)
        {
            tracing::warn!(node = %node, error = %DisplayChain(&e), "node ports");
            failed = true;
        }
        if failed {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        if changes.next().await.is_none() {
            return;
        }
    }
}

/// An error with its sources, `: `-separated.
struct DisplayChain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}
