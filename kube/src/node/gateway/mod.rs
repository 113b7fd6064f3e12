//! The node side of egress gateways: makes the current network namespace hold exactly what a
//! [`gateway::NodePlan`] says.
//!
//! - **Routes** over netlink (`rtnetlink`): every route the plan lists, in the main table,
//!   tagged with route protocol [`ROUTE_PROTOCOL`] so that routes of ovnkit are told apart from
//!   anyone else's; routes with that protocol the plan no longer lists are removed.
//! - **Masquerade** with nftables: one table, `inet ovnkit` ([`NFT_TABLE`]), rewritten as a
//!   whole in one `nft -f -` transaction (create, delete, re-create), so that the kernel never
//!   holds half a rule set; no masquerade left means no table.
//! - **Forwarding**: `net.ipv4.ip_forward` (and `net.ipv6.conf.all.forwarding` when the plan
//!   has IPv6 routes) set to 1 when the plan forwards; never turned off again (other software
//!   on the node may rely on it).
//!
//! Applying the same plan twice leaves the same state. Everything happens in the network
//! namespace of the calling thread: netlink sockets are opened in it, and `nft` is started
//! from it (a child process inherits the namespace of the thread that forks it), so run it
//! on a thread that has entered the node's namespace, on a current-thread runtime.

pub(crate) mod nft;
mod routes;

use std::path::PathBuf;

pub use nft::{NFT_TABLE, nft_script};
pub use routes::ROUTE_PROTOCOL;

/// Why a node plan could not be applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// A netlink connection could not be opened.
    #[error("opening a netlink socket")]
    Netlink(#[source] std::io::Error),
    /// A netlink request failed.
    #[error("netlink: {what}")]
    Route {
        /// What was being done.
        what: String,
        /// The kernel's answer.
        #[source]
        source: Box<rtnetlink::Error>,
    },
    /// A route's device does not exist in this namespace.
    #[error("route {route}: device {device:?} not found")]
    NoDevice {
        /// The route.
        route: String,
        /// The device.
        device: String,
    },
    /// `nft` could not be run.
    #[error("running nft")]
    NftSpawn(#[source] std::io::Error),
    /// `nft` refused the script.
    #[error("nft refused the ruleset: {stderr}\nscript:\n{script}")]
    Nft {
        /// What nft said.
        stderr: String,
        /// The script.
        script: String,
    },
    /// A sysctl could not be written.
    #[error("writing {path}")]
    Sysctl {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What [`apply`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Routes added.
    pub routes_added: Vec<String>,
    /// Routes removed.
    pub routes_removed: Vec<String>,
    /// Masquerade rules now held.
    pub masquerade_rules: usize,
}

/// Makes the current network namespace hold exactly what `plan` says (see the module docs).
///
/// # Errors
/// [`ApplyError`] naming the step that failed; steps before it stay applied, and applying the
/// plan again finishes the job.
pub async fn apply(plan: &gateway::NodePlan) -> Result<ApplyReport, ApplyError> {
    if plan.forwarding {
        let v6 = plan.routes.iter().any(|r| r.destination.addr().is_ipv6());
        sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
        if v6 {
            sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1")?;
        }
    }
    let (routes_added, routes_removed) = routes::sync(&plan.routes).await?;
    nft::sync(plan)?;
    Ok(ApplyReport {
        routes_added,
        routes_removed,
        masquerade_rules: plan.masquerade.len(),
    })
}

/// An [`ApplyError::Route`] for `what`.
fn route_error(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> ApplyError {
    let what = what.into();
    move |source| ApplyError::Route {
        what,
        source: Box::new(source),
    }
}

/// Writes `value` to the sysctl file `path` unless it holds it already.
pub(crate) fn sysctl(path: &str, value: &str) -> Result<(), ApplyError> {
    let current = std::fs::read_to_string(path).unwrap_or_default();
    if current.trim() == value {
        return Ok(());
    }
    std::fs::write(path, value).map_err(|source| ApplyError::Sysctl {
        path: path.into(),
        source,
    })
}
