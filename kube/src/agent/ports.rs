//! The northbound view of one node: its pods' logical switch ports and the cluster's subnets.
//!
//! A [`NbView`] is a [`ReplicaClient`] with a conditional monitor: `Logical_Switch_Port` rows
//! whose `options` include `requested-chassis=<chassis>` (the controller sets it on every pod
//! port and on the node's own `node-<name>` join port), and of `Logical_Switch` only `name`
//! and `external_ids` (the subnets' CIDRs, [`owner::SWITCH_CIDR`]), and the egress
//! `Logical_Router_Policy` rows the `gateway` planner owns (`external_ids` including
//! [`owner::OWNER`]`=gateway` and [`owner::ROLE`]`=egress`; [`egress`](super::egress) derives the
//! node's egress plan from them), and the `Load_Balancer` rows the `services` component owns
//! (`name`, `protocol` and `external_ids` only; [`nodeport`](super::nodeport) derives the
//! node's node ports from them). A node of a cluster with 100,000 pods holds its own hundred
//! ports, not the cluster's (and one egress policy per subnet and node that carries it).
//!
//! [`NbView::wait_port`] waits, bounded, for a pod's port and reads what the agent needs from
//! it alone: MAC and addresses from `addresses`, prefixes from [`owner::PORT_CIDR`], gateways
//! from [`owner::PORT_GATEWAY`], MTU from [`owner::PORT_MTU`], QoS annotations from
//! [`owner::PORT_QOS`]. [`NbView::wait_up`] waits until `ovn-northd` reports the port `up`
//! (copied from the SB `Port_Binding.up` once `ovn-controller` has bound it).

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use ovn_model::nb::{LoadBalancer, LogicalRouterPolicy, LogicalSwitch, LogicalSwitchPort};
use ovn_model::owner;
use ovn_model::snapshot::{Monitor, Typed};
use ovn_model::{LspAddress, MacAddr};
use ovsdb::client::{ReplicaClient, ReplicaClientError, ReplicaConfig};
use ovsdb::replica::Snapshot;
use ovsdb::{Condition, Datum, Table};

/// How long [`NbView::wait_port`] and [`NbView::wait_up`] wait by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// Why the NB view failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PortError {
    /// The client failed to start or stopped.
    #[error("OVN northbound database: {what}")]
    Client {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: Box<ReplicaClientError>,
    },
    /// The port did not appear (or did not come up) in time.
    #[error("logical switch port {port}: {what} within {waited:?}")]
    Timeout {
        /// The port.
        port: String,
        /// What was waited for.
        what: &'static str,
        /// How long.
        waited: Duration,
    },
    /// The port's data cannot be used.
    #[error("logical switch port {port}: {reason}")]
    BadPort {
        /// The port.
        port: String,
        /// What is wrong.
        reason: String,
    },
}

/// What the agent plumbs a pod with, read from its logical switch port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// The port's name (`<namespace>.<pod>`).
    pub name: String,
    /// Its logical switch ([`owner::PORT_SUBNET`]).
    pub subnet: String,
    /// The MAC.
    pub mac: MacAddr,
    /// The addresses with the subnet's prefix lengths.
    pub ips: Vec<IpNet>,
    /// The gateways.
    pub gateways: Vec<IpAddr>,
    /// The MTU, when the port says.
    pub mtu: Option<u32>,
    /// The pod's QoS annotations as a JSON object, when it has any.
    pub qos: Option<String>,
}

impl PortInfo {
    /// Reads `lsp`.
    ///
    /// # Errors
    /// [`PortError::BadPort`] when the port has no `MAC IP...` address, or an address that
    /// no CIDR of [`owner::PORT_CIDR`] holds.
    pub fn from_port(lsp: &LogicalSwitchPort) -> Result<Self, PortError> {
        let bad = |reason: String| PortError::BadPort {
            port: lsp.name.clone(),
            reason,
        };
        let (mac, ips) = lsp
            .addresses
            .iter()
            .find_map(|a| match a {
                LspAddress::Mac { mac, ips } => Some((*mac, ips.clone())),
                _ => None,
            })
            .ok_or_else(|| bad("no \"MAC IP\" address".into()))?;
        let ids = &lsp.external_ids;
        let cidrs: Vec<IpNet> = list(ids.get(owner::PORT_CIDR))
            .map(|c| {
                c.parse::<IpNet>()
                    .map_err(|e| bad(format!("{} {c:?}: {e}", owner::PORT_CIDR)))
            })
            .collect::<Result<_, _>>()?;
        let ips = ips
            .iter()
            .map(|ip| {
                cidrs
                    .iter()
                    .find(|c| c.contains(ip))
                    .and_then(|c| IpNet::new(*ip, c.prefix_len()).ok())
                    .ok_or_else(|| bad(format!("no CIDR in {} holds {ip}", owner::PORT_CIDR)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let gateways = list(ids.get(owner::PORT_GATEWAY))
            .map(|g| {
                g.parse::<IpAddr>()
                    .map_err(|e| bad(format!("{} {g:?}: {e}", owner::PORT_GATEWAY)))
            })
            .collect::<Result<_, _>>()?;
        let mtu = match ids.get(owner::PORT_MTU) {
            Some(m) => Some(
                m.trim()
                    .parse::<u32>()
                    .map_err(|e| bad(format!("{} {m:?}: {e}", owner::PORT_MTU)))?,
            ),
            None => None,
        };
        Ok(PortInfo {
            name: lsp.name.clone(),
            subnet: ids.get(owner::PORT_SUBNET).cloned().unwrap_or_default(),
            mac,
            ips,
            gateways,
            mtu,
            qos: ids.get(owner::PORT_QOS).cloned().filter(|q| !q.is_empty()),
        })
    }

    /// The QoS annotations, parsed.
    ///
    /// # Errors
    /// [`PortError::BadPort`] when [`PortInfo::qos`] is not a JSON object of strings.
    pub fn qos_annotations(&self) -> Result<Vec<(String, String)>, PortError> {
        let Some(json) = &self.qos else {
            return Ok(Vec::new());
        };
        let map: std::collections::BTreeMap<String, String> =
            serde_json::from_str(json).map_err(|e| PortError::BadPort {
                port: self.name.clone(),
                reason: format!("{} is not a JSON object of strings: {e}", owner::PORT_QOS),
            })?;
        Ok(map.into_iter().collect())
    }
}

fn list(v: Option<&String>) -> impl Iterator<Item = &str> {
    v.map(String::as_str)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The role of the `gateway` component's egress policies ([`owner::ROLE`]).
const EGRESS_ROLE: &str = "egress";

/// The NB monitor of node `chassis` (see the module docs).
#[must_use]
pub fn monitor(chassis: &str) -> ovsdb::monitor::MonitorRequest {
    let lsp = Monitor::nb()
        .columns::<LogicalSwitchPort>(&["name", "addresses", "options", "external_ids", "up"])
        .map(|m| {
            m.filter::<LogicalSwitchPort>([Condition::includes(
                "options",
                Datum::map([("requested-chassis", chassis)]),
            )
            .into()])
        });
    let ls = lsp.and_then(|m| m.columns::<LogicalSwitch>(&["name", "external_ids"]));
    let egress = ls.map(|m| {
        m.table::<LogicalRouterPolicy>()
            .filter::<LogicalRouterPolicy>([Condition::includes(
                "external_ids",
                Datum::map([
                    (owner::OWNER, owner::Component::GATEWAY),
                    (owner::ROLE, EGRESS_ROLE),
                ]),
            )
            .into()])
    });
    let lbs = egress.and_then(|m| {
        Ok(
            m.columns::<LoadBalancer>(&["name", "protocol", "external_ids"])?
                .filter::<LoadBalancer>([Condition::includes(
                    "external_ids",
                    Datum::map([(owner::OWNER, owner::Component::SERVICES)]),
                )
                .into()]),
        )
    });
    // The columns are the model's own, so the checks above cannot fail.
    lbs.map(Monitor::into_request).unwrap_or_else(|_| {
        ovn_model::snapshot::monitor(
            ovn_model::nb::DATABASE,
            &[
                LogicalSwitchPort::TABLE,
                LogicalSwitch::TABLE,
                LogicalRouterPolicy::TABLE,
                LoadBalancer::TABLE,
            ],
        )
    })
}

/// The node's view of the NB (see the module docs).
#[derive(Debug, Clone)]
pub struct NbView {
    client: ReplicaClient,
    chassis: String,
}

impl NbView {
    /// Connects to `remotes` and monitors the ports of `chassis`; waits for the first sync.
    ///
    /// # Errors
    /// [`PortError::Client`] when no remote answers within the client's start timeout.
    pub async fn start(remotes: &str, chassis: &str) -> Result<Self, PortError> {
        let (client, mut events) =
            ReplicaClient::start(ReplicaConfig::new(remotes, monitor(chassis)))
                .await
                .map_err(|e| PortError::Client {
                    what: format!("connecting to {remotes}"),
                    source: Box::new(e),
                })?;
        tokio::spawn(async move { while events.next().await.is_some() {} });
        client.wait_synced().await.map_err(|e| PortError::Client {
            what: "the first sync".into(),
            source: Box::new(e),
        })?;
        Ok(NbView {
            client,
            chassis: chassis.to_owned(),
        })
    }

    /// The replica client.
    #[must_use]
    pub fn client(&self) -> &ReplicaClient {
        &self.client
    }

    /// The chassis whose ports are monitored.
    #[must_use]
    pub fn chassis(&self) -> &str {
        &self.chassis
    }

    /// Whether the replica is synced with a connected server now.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.client.is_synced()
    }

    /// The port called `name` now, if this node has it.
    #[must_use]
    pub fn port(&self, name: &str) -> Option<LogicalSwitchPort> {
        let snap = self.client.snapshot();
        Typed::new(&snap).by_name::<LogicalSwitchPort>(name)
    }

    /// The cluster's subnet CIDRs now ([`owner::SWITCH_CIDR`] and [`owner::SWITCH_CIDR6`] of
    /// every logical switch), sorted.
    #[must_use]
    pub fn subnet_cidrs(&self) -> Vec<IpNet> {
        subnet_cidrs(&self.client.snapshot())
    }

    /// Waits until `f` returns `Some` for a snapshot, at most `timeout`.
    async fn wait<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&Snapshot) -> Option<T>,
    ) -> Option<T> {
        let mut changes = self.client.changes();
        if let Some(v) = f(changes.last_snapshot()) {
            return Some(v);
        }
        tokio::time::timeout(timeout, async {
            loop {
                let (_, snap) = changes.next().await?;
                if let Some(v) = f(&snap) {
                    return Some(v);
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// Waits (at most `timeout`) for the port of pod `namespace/pod` and reads it.
    ///
    /// # Errors
    /// [`PortError::Timeout`] when it does not appear in time; [`PortError::BadPort`] when its
    /// data cannot be used.
    pub async fn wait_port(
        &self,
        namespace: &str,
        pod: &str,
        timeout: Duration,
    ) -> Result<PortInfo, PortError> {
        let name = format!("{namespace}.{pod}");
        let lsp = self
            .wait(timeout, |snap| {
                Typed::new(snap)
                    .by_name::<LogicalSwitchPort>(&name)
                    .filter(|p| {
                        p.addresses
                            .iter()
                            .any(|a| matches!(a, LspAddress::Mac { .. }))
                    })
            })
            .await
            .ok_or(PortError::Timeout {
                port: name.clone(),
                what: "no port for this node",
                waited: timeout,
            })?;
        PortInfo::from_port(&lsp)
    }

    /// Waits (at most `timeout`) until port `name` is `up`.
    ///
    /// # Errors
    /// [`PortError::Timeout`] when it is not up in time.
    pub async fn wait_up(&self, name: &str, timeout: Duration) -> Result<(), PortError> {
        self.wait(timeout, |snap| {
            Typed::new(snap)
                .by_name::<LogicalSwitchPort>(name)
                .filter(|p| p.up == Some(true))
        })
        .await
        .map(drop)
        .ok_or(PortError::Timeout {
            port: name.to_owned(),
            what: "not up",
            waited: timeout,
        })
    }
}

pub(crate) fn subnet_cidrs(snap: &Snapshot) -> Vec<IpNet> {
    let mut out: Vec<IpNet> = Typed::new(snap)
        .rows::<LogicalSwitch>()
        .flat_map(|s| {
            [owner::SWITCH_CIDR, owner::SWITCH_CIDR6]
                .into_iter()
                .filter_map(move |k| s.external_ids.get(k).and_then(|c| c.parse().ok()))
                .collect::<Vec<IpNet>>()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_gives_prefixes_gateways_mtu_and_qos() {
        let mut lsp = LogicalSwitchPort {
            name: "default.web".into(),
            addresses: vec![LspAddress::mac(
                "0a:00:00:00:00:05".parse().unwrap(),
                ["10.16.0.5".parse().unwrap()],
            )],
            ..Default::default()
        };
        for (k, v) in [
            (owner::PORT_CIDR, "10.16.0.0/16"),
            (owner::PORT_GATEWAY, "10.16.0.1"),
            (owner::PORT_MTU, "1400"),
            (owner::PORT_SUBNET, "ovn-default"),
            (
                owner::PORT_QOS,
                r#"{"ovn.kubernetes.io/ingress_rate":"10"}"#,
            ),
        ] {
            lsp.external_ids.insert(k.into(), v.into());
        }
        let info = PortInfo::from_port(&lsp).unwrap();
        assert_eq!(info.ips, vec!["10.16.0.5/16".parse::<IpNet>().unwrap()]);
        assert_eq!(info.gateways, vec!["10.16.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(info.mtu, Some(1400));
        assert_eq!(info.subnet, "ovn-default");
        assert_eq!(
            info.qos_annotations().unwrap(),
            vec![("ovn.kubernetes.io/ingress_rate".into(), "10".into())]
        );
        lsp.external_ids
            .insert(owner::PORT_CIDR.into(), "10.17.0.0/16".into());
        assert!(matches!(
            PortInfo::from_port(&lsp),
            Err(PortError::BadPort { .. })
        ));
    }
}
