//! Routes over netlink: the plan's routes in the main table, tagged with [`ROUTE_PROTOCOL`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol};
use rtnetlink::{Handle, RouteMessageBuilder};

use super::{ApplyError, route_error};

/// The route protocol number ovnkit's routes carry (`ip route ... proto 141`), how they are
/// told apart from every other route of the node.
pub const ROUTE_PROTOCOL: u8 = 141;

/// The main routing table.
const MAIN_TABLE: u8 = 254;

/// A route by what identifies it: destination, gateway, device index.
type RouteKey = (IpNet, Option<IpAddr>, Option<u32>);

fn addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn key_of(m: &RouteMessage) -> Option<RouteKey> {
    let mut dst = None;
    let mut gw = None;
    let mut oif = None;
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(d) => dst = addr(d),
            RouteAttribute::Gateway(g) => gw = addr(g),
            RouteAttribute::Oif(i) => oif = Some(*i),
            _ => {}
        }
    }
    let dst = dst?;
    let net = IpNet::new(dst, m.header.destination_prefix_length).ok()?;
    Some((net, gw, oif))
}

async fn owned_routes(handle: &Handle) -> Result<Vec<RouteMessage>, ApplyError> {
    let mut out = Vec::new();
    // Without NETLINK_GET_STRICT_CHK the kernel dumps every route of the family, whatever
    // else the message says; the protocol and table are filtered here.
    let families = [
        RouteMessageBuilder::<Ipv4Addr>::new().build(),
        RouteMessageBuilder::<Ipv6Addr>::new().build(),
    ];
    for family in families {
        let mut s = handle.route().get(family).execute();
        while let Some(m) = s.try_next().await.map_err(route_error("listing routes"))? {
            if m.header.protocol == RouteProtocol::Other(ROUTE_PROTOCOL)
                && m.header.table == MAIN_TABLE
            {
                out.push(m);
            }
        }
    }
    Ok(out)
}

async fn link_index(handle: &Handle, name: &str) -> Result<Option<u32>, ApplyError> {
    let mut s = handle.link().get().match_name(name.to_owned()).execute();
    match s.try_next().await {
        Ok(Some(l)) => Ok(Some(l.header.index)),
        Ok(None) => Ok(None),
        // The kernel answers ENODEV for an unknown name.
        Err(rtnetlink::Error::NetlinkError(_)) => Ok(None),
        Err(source) => Err(route_error(format!("looking up device {name}"))(source)),
    }
}

fn show(k: &RouteKey) -> String {
    let mut s = k.0.to_string();
    if let Some(g) = k.1 {
        s.push_str(&format!(" via {g}"));
    }
    if let Some(i) = k.2 {
        s.push_str(&format!(" dev #{i}"));
    }
    s
}

/// Makes the owned routes exactly `wanted`; returns (added, removed) in words.
pub(super) async fn sync(
    wanted: &BTreeSet<gateway::NodeRoute>,
) -> Result<(Vec<String>, Vec<String>), ApplyError> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(ApplyError::Netlink)?;
    let driver = tokio::spawn(conn);
    let result = sync_with(&handle, wanted).await;
    driver.abort();
    result
}

async fn sync_with(
    handle: &Handle,
    wanted: &BTreeSet<gateway::NodeRoute>,
) -> Result<(Vec<String>, Vec<String>), ApplyError> {
    let mut want: BTreeMap<RouteKey, &gateway::NodeRoute> = BTreeMap::new();
    let mut devices: BTreeMap<&str, u32> = BTreeMap::new();
    for r in wanted {
        let index = match devices.get(r.device.as_str()) {
            Some(i) => *i,
            None => {
                let i =
                    link_index(handle, &r.device)
                        .await?
                        .ok_or_else(|| ApplyError::NoDevice {
                            route: r.to_string(),
                            device: r.device.clone(),
                        })?;
                devices.insert(&r.device, i);
                i
            }
        };
        want.insert((r.destination.trunc(), Some(r.via), Some(index)), r);
    }
    let mut have = BTreeSet::new();
    let mut removed = Vec::new();
    for m in owned_routes(handle).await? {
        match key_of(&m) {
            Some(k) if want.contains_key(&k) && !have.contains(&k) => {
                have.insert(k);
            }
            k => {
                let what = k
                    .as_ref()
                    .map_or_else(|| "an unreadable route".into(), show);
                handle
                    .route()
                    .del(m)
                    .execute()
                    .await
                    .map_err(route_error(format!("removing {what}")))?;
                removed.push(what);
            }
        }
    }
    let mut added = Vec::new();
    for (k, r) in want.iter().filter(|(k, _)| !have.contains(*k)) {
        let index = k.2.unwrap_or_default();
        let route = match (r.destination, r.via) {
            (IpNet::V4(d), IpAddr::V4(g)) => RouteMessageBuilder::<Ipv4Addr>::new()
                .protocol(RouteProtocol::Other(ROUTE_PROTOCOL))
                .output_interface(index)
                .destination_prefix(d.network(), d.prefix_len())
                .gateway(g)
                .build(),
            (IpNet::V6(d), IpAddr::V6(g)) => RouteMessageBuilder::<Ipv6Addr>::new()
                .protocol(RouteProtocol::Other(ROUTE_PROTOCOL))
                .output_interface(index)
                .destination_prefix(d.network(), d.prefix_len())
                .gateway(g)
                .build(),
            _ => {
                return Err(ApplyError::NoDevice {
                    route: r.to_string(),
                    device: "(next hop of another address family)".into(),
                });
            }
        };
        handle
            .route()
            .add(route)
            .replace()
            .execute()
            .await
            .map_err(route_error(format!("adding {r}")))?;
        added.push(r.to_string());
    }
    Ok((added, removed))
}
