//! The pod's veth pair, over netlink (`rtnetlink`): created in the agent's own network
//! namespace (the node's), its peer moved into the pod's namespace and configured there.
//!
//! To act inside the pod's namespace a short-lived thread enters it (`setns`), opens a netlink
//! socket there (a netlink socket stays bound to the namespace it was created in) and runs a
//! current-thread runtime for the few requests. The thread ends afterwards, so no thread of
//! the agent's runtime ever changes namespace.
//!
//! The one exception to "netlink only": turning tx checksum offload off. No maintained crate
//! sets ethtool features over netlink (rust-netlink's `ethtool` only reads them), raw ioctls
//! need `unsafe`, so [`tx_offload_off`] runs `ethtool -K <if> tx off` (in the namespace of the
//! calling thread, which the child inherits). The userspace datapath needs it: without it TCP
//! fails with bad checksums while ping still works.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use nix::sched::{CloneFlags, setns};
use ovn_model::MacAddr;
use rtnetlink::{Handle, LinkUnspec, LinkVeth, RouteMessageBuilder};

/// Why plumbing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlumbError {
    /// A netlink socket could not be opened.
    #[error("opening a netlink socket")]
    Socket(#[source] std::io::Error),
    /// A netlink request failed.
    #[error("netlink: {what}")]
    Netlink {
        /// What was being done.
        what: String,
        /// The kernel's answer.
        #[source]
        source: Box<rtnetlink::Error>,
    },
    /// The pod's network namespace does not exist (or the path is empty).
    #[error("network namespace {path:?} does not exist")]
    NetnsGone {
        /// The path.
        path: PathBuf,
    },
    /// The path exists but is no network namespace: typically an empty file the runtime
    /// bind-mounts the namespace onto, seen from a mount namespace the mount did not reach.
    #[error(
        "{path:?} is not a network namespace (an unmounted file: the agent must share the mount namespace of the runtime's netns directory, e.g. a DaemonSet hostPath with mountPropagation HostToContainer)"
    )]
    NotNetns {
        /// The path.
        path: PathBuf,
    },
    /// The pod's network namespace could not be entered.
    #[error("entering network namespace {path:?}")]
    Netns {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An interface expected to exist does not.
    #[error("interface {name} not found{}", where_.as_deref().map(|w| format!(" in {w}")).unwrap_or_default())]
    NoLink {
        /// The interface.
        name: String,
        /// The namespace path, when not the node's.
        where_: Option<String>,
    },
    /// `ethtool -K <if> tx off` failed.
    #[error("ethtool -K {ifname} tx off: {detail}")]
    Ethtool {
        /// The interface.
        ifname: String,
        /// What went wrong.
        detail: String,
    },
}

/// A [`PlumbError::Netlink`] for `what`.
pub(crate) fn nl(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> PlumbError {
    let what = what.into();
    move |source| PlumbError::Netlink {
        what,
        source: Box::new(source),
    }
}

/// Adds `route`, replacing one to the same destination; `what` names it in the error.
pub(crate) async fn replace_route(
    handle: &Handle,
    route: netlink_packet_route::route::RouteMessage,
    what: String,
) -> Result<(), PlumbError> {
    handle
        .route()
        .add(route)
        .replace()
        .execute()
        .await
        .map_err(nl(what))
}

/// The host end's name for a container: the first 11 characters of its id (hex for every
/// runtime) and `_h`, 13 characters, deterministic so that `DEL` finds it again.
#[must_use]
pub fn host_ifname(container_id: &str) -> String {
    let stem: String = container_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(11)
        .collect();
    format!("{stem}_h")
}

/// The temporary name of the pod end while it is still in the node's namespace.
fn peer_tmp_name(container_id: &str) -> String {
    let mut n = host_ifname(container_id);
    n.pop();
    n.push('p');
    n
}

/// What to make: the pod end's name, MAC, MTU, addresses and gateways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethSpec {
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS`.
    pub netns: PathBuf,
    /// `CNI_IFNAME`.
    pub ifname: String,
    /// The pod end's MAC.
    pub mac: MacAddr,
    /// The MTU of both ends.
    pub mtu: u32,
    /// The pod's addresses with their prefixes.
    pub ips: Vec<IpNet>,
    /// The default gateways (one per address family at most is used).
    pub gateways: Vec<IpAddr>,
}

/// What [`attach`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plumbed {
    /// The host end's name.
    pub host: String,
    /// The host end's MAC.
    pub host_mac: String,
}

/// What [`inspect`] found of an attachment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkState {
    /// Whether the host end exists.
    pub host: bool,
    /// The pod end's MAC, if the interface exists in the pod's namespace.
    pub pod_mac: Option<String>,
    /// The pod end's addresses.
    pub pod_ips: Vec<IpNet>,
}

fn connect() -> Result<Handle, PlumbError> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(PlumbError::Socket)?;
    tokio::spawn(conn);
    Ok(handle)
}

fn mac_string(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

async fn link_by_name(handle: &Handle, name: &str) -> Result<Option<LinkMessage>, PlumbError> {
    let mut s = handle.link().get().match_name(name.to_owned()).execute();
    match s.try_next().await {
        Ok(l) => Ok(l),
        // The kernel answers ENODEV for an unknown name.
        Err(rtnetlink::Error::NetlinkError(_)) => Ok(None),
        Err(e) => Err(nl(format!("looking up {name}"))(e)),
    }
}

fn link_mac(l: &LinkMessage) -> Option<String> {
    l.attributes.iter().find_map(|a| match a {
        LinkAttribute::Address(b) => Some(mac_string(b)),
        _ => None,
    })
}

/// Whether interface `name` exists in the agent's namespace.
///
/// # Errors
/// [`PlumbError`] when netlink fails.
pub async fn host_link_exists(name: &str) -> Result<bool, PlumbError> {
    let handle = connect()?;
    Ok(link_by_name(&handle, name).await?.is_some())
}

/// Creates the veth pair of `spec` (replacing one left by an earlier attempt), moves the pod
/// end into the pod's namespace and configures both ends (see the module docs).
///
/// # Errors
/// [`PlumbError`] naming the step; what was made is removed again.
pub async fn attach(spec: &VethSpec) -> Result<Plumbed, PlumbError> {
    let ns = open_netns(&spec.netns)?;
    let host = host_ifname(&spec.container_id);
    let tmp = peer_tmp_name(&spec.container_id);
    let handle = connect()?;
    for stale in [&host, &tmp] {
        if let Some(l) = link_by_name(&handle, stale).await? {
            handle
                .link()
                .del(l.header.index)
                .execute()
                .await
                .map_err(nl(format!("removing the stale {stale}")))?;
        }
    }
    handle
        .link()
        .add(LinkVeth::new(&host, &tmp).mtu(spec.mtu).build())
        .execute()
        .await
        .map_err(nl(format!("creating veth {host}/{tmp}")))?;
    let result = attach_created(&handle, spec, &ns, &host, &tmp).await;
    if result.is_err()
        && let Ok(Some(l)) = link_by_name(&handle, &host).await
    {
        let _ = handle.link().del(l.header.index).execute().await;
    }
    result
}

async fn attach_created(
    handle: &Handle,
    spec: &VethSpec,
    ns: &File,
    host: &str,
    tmp: &str,
) -> Result<Plumbed, PlumbError> {
    let peer = link_by_name(handle, tmp)
        .await?
        .ok_or_else(|| PlumbError::NoLink {
            name: tmp.to_owned(),
            where_: None,
        })?;
    handle
        .link()
        .set(
            LinkUnspec::new_with_index(peer.header.index)
                .setns_by_fd(ns.as_raw_fd())
                .build(),
        )
        .execute()
        .await
        .map_err(nl(format!("moving {tmp} into {}", spec.netns.display())))?;
    let host_link = link_by_name(handle, host)
        .await?
        .ok_or_else(|| PlumbError::NoLink {
            name: host.to_owned(),
            where_: None,
        })?;
    handle
        .link()
        .set(
            LinkUnspec::new_with_index(host_link.header.index)
                .mtu(spec.mtu)
                .up()
                .build(),
        )
        .execute()
        .await
        .map_err(nl(format!("setting {host} up")))?;
    tx_offload_off(host)?;
    let inside = spec.clone();
    let tmp = tmp.to_owned();
    in_netns(&spec.netns, move || configure_pod_end(&inside, &tmp)).await??;
    Ok(Plumbed {
        host: host.to_owned(),
        host_mac: link_mac(&host_link).unwrap_or_default(),
    })
}

/// Inside the pod's namespace: rename, MAC, MTU, up, addresses, default routes, `lo` up, tx
/// offload off.
fn configure_pod_end(spec: &VethSpec, tmp: &str) -> Result<(), PlumbError> {
    block_on(async {
        let handle = connect()?;
        if let Some(lo) = link_by_name(&handle, "lo").await? {
            handle
                .link()
                .set(LinkUnspec::new_with_index(lo.header.index).up().build())
                .execute()
                .await
                .map_err(nl("setting lo up"))?;
        }
        let peer = link_by_name(&handle, tmp)
            .await?
            .ok_or_else(|| PlumbError::NoLink {
                name: tmp.to_owned(),
                where_: Some(spec.netns.display().to_string()),
            })?;
        let index = peer.header.index;
        handle
            .link()
            .set(
                LinkUnspec::new_with_index(index)
                    .name(spec.ifname.clone())
                    .address(spec.mac.0.to_vec())
                    .mtu(spec.mtu)
                    .build(),
            )
            .execute()
            .await
            .map_err(nl(format!("renaming {tmp} to {}", spec.ifname)))?;
        handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(nl(format!("setting {} up", spec.ifname)))?;
        for ip in &spec.ips {
            handle
                .address()
                .add(index, ip.addr(), ip.prefix_len())
                .replace()
                .execute()
                .await
                .map_err(nl(format!("adding {ip} to {}", spec.ifname)))?;
        }
        // One default route per family, via the first gateway of that family.
        let v4 = spec.gateways.iter().find(|g| g.is_ipv4());
        let v6 = spec.gateways.iter().find(|g| g.is_ipv6());
        for g in v4.into_iter().chain(v6) {
            let r = match *g {
                IpAddr::V4(a) => RouteMessageBuilder::<Ipv4Addr>::new()
                    .output_interface(index)
                    .gateway(a)
                    .build(),
                IpAddr::V6(a) => RouteMessageBuilder::<Ipv6Addr>::new()
                    .output_interface(index)
                    .gateway(a)
                    .build(),
            };
            replace_route(&handle, r, format!("adding the default route via {g}")).await?;
        }
        Ok(())
    })?;
    tx_offload_off(&spec.ifname)
}

/// Deletes the host end of `container_id`'s veth (the pod end goes with it). Returns whether
/// there was one.
///
/// # Errors
/// [`PlumbError`] when netlink fails (a missing interface is not a failure).
pub async fn detach(container_id: &str) -> Result<bool, PlumbError> {
    let handle = connect()?;
    let mut removed = false;
    for name in [host_ifname(container_id), peer_tmp_name(container_id)] {
        if let Some(l) = link_by_name(&handle, &name).await? {
            match handle.link().del(l.header.index).execute().await {
                Ok(()) => removed = true,
                // Gone in the meantime (its pod namespace was deleted).
                Err(rtnetlink::Error::NetlinkError(_)) => {}
                Err(e) => return Err(nl(format!("removing {name}"))(e)),
            }
        }
    }
    Ok(removed)
}

/// What exists of the attachment of `container_id` with interface `ifname` in `netns`.
///
/// # Errors
/// [`PlumbError`] when netlink fails or the namespace cannot be entered.
pub async fn inspect(
    container_id: &str,
    netns: &Path,
    ifname: &str,
) -> Result<LinkState, PlumbError> {
    let mut state = LinkState {
        host: host_link_exists(&host_ifname(container_id)).await?,
        ..LinkState::default()
    };
    if !netns.as_os_str().is_empty() && netns.exists() {
        let ifname = ifname.to_owned();
        let (mac, ips) = in_netns(netns, move || {
            block_on(async {
                let handle = connect()?;
                let Some(l) = link_by_name(&handle, &ifname).await? else {
                    return Ok((None, Vec::new()));
                };
                let mut ips = Vec::new();
                let mut s = handle
                    .address()
                    .get()
                    .set_link_index_filter(l.header.index)
                    .execute();
                while let Some(m) = s.try_next().await.map_err(nl("listing addresses"))? {
                    for a in &m.attributes {
                        if let AddressAttribute::Address(ip) = a
                            && let Ok(net) = IpNet::new(*ip, m.header.prefix_len)
                        {
                            ips.push(net);
                        }
                    }
                }
                Ok::<_, PlumbError>((link_mac(&l), ips))
            })
        })
        .await??;
        state.pod_mac = mac;
        state.pod_ips = ips;
    }
    Ok(state)
}

/// Turns tx checksum offload off on `ifname` in the calling thread's namespace (`ethtool -K
/// <if> tx off`, the documented exception to netlink only; see the module docs).
///
/// # Errors
/// [`PlumbError::Ethtool`] when `ethtool` cannot run or refuses.
pub fn tx_offload_off(ifname: &str) -> Result<(), PlumbError> {
    let out = Command::new("ethtool")
        .args(["-K", ifname, "tx", "off"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| PlumbError::Ethtool {
            ifname: ifname.to_owned(),
            detail: format!("cannot run ethtool: {e}"),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(PlumbError::Ethtool {
            ifname: ifname.to_owned(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

fn open_netns(path: &Path) -> Result<File, PlumbError> {
    if path.as_os_str().is_empty() || !path.exists() {
        return Err(PlumbError::NetnsGone {
            path: path.to_owned(),
        });
    }
    let file = File::open(path).map_err(|source| PlumbError::Netns {
        path: path.to_owned(),
        source,
    })?;
    match nix::sys::statfs::fstatfs(&file) {
        Ok(fs) if fs.filesystem_type() != nix::sys::statfs::NSFS_MAGIC => {
            Err(PlumbError::NotNetns {
                path: path.to_owned(),
            })
        }
        _ => Ok(file),
    }
}

/// Runs `f` on a new thread that entered the network namespace at `path`, and waits for it
/// without blocking the runtime.
pub(crate) async fn in_netns<T, F>(path: &Path, f: F) -> Result<T, PlumbError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let file = open_netns(path)?;
    let path = path.to_owned();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let err_path = path.clone();
    std::thread::Builder::new()
        .name("agent-netns".into())
        .spawn(move || {
            let r = setns(&file, CloneFlags::CLONE_NEWNET)
                .map_err(|e| PlumbError::Netns {
                    path,
                    source: e.into(),
                })
                .map(|()| {
                    drop(file);
                    f()
                });
            let _ = tx.send(r);
        })
        .map_err(|source| PlumbError::Netns {
            path: err_path.clone(),
            source,
        })?;
    rx.await.map_err(|_| PlumbError::Netns {
        path: err_path,
        source: std::io::Error::other("the namespace thread panicked"),
    })?
}

/// Runs `fut` to completion on a current-thread runtime of the calling thread.
pub(crate) fn block_on<T>(
    fut: impl std::future::Future<Output = Result<T, PlumbError>>,
) -> Result<T, PlumbError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(PlumbError::Socket)?
        .block_on(fut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_short_and_deterministic() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(host_ifname(id), "0123456789a_h");
        assert_eq!(peer_tmp_name(id), "0123456789a_p");
        assert!(host_ifname(id).len() <= 15);
        assert_eq!(host_ifname("a/b"), "ab_h");
    }

    #[test]
    fn a_file_that_is_no_namespace_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("cni-1234");
        std::fs::write(&plain, "").unwrap();
        let e = open_netns(&plain).unwrap_err();
        assert!(matches!(e, PlumbError::NotNetns { .. }), "{e:?}");
        assert!(e.to_string().contains("is not a network namespace"), "{e}");
        assert!(open_netns(Path::new("/proc/self/ns/net")).is_ok());
        assert!(matches!(
            open_netns(&dir.path().join("gone")),
            Err(PlumbError::NetnsGone { .. })
        ));
    }
}
