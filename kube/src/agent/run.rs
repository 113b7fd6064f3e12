//! Running the agent: [`AgentConfig`] and [`run`].

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use super::ovs::NodeOvs;
use super::ports::{DEFAULT_WAIT, NbView};
use super::server::{self, Agent};
use crate::cni::protocol::Dns;
use crate::metrics::{AgentMetrics, Registry};

/// The agent's configuration: `Default` plus chained setters, checked by
/// [`AgentConfig::validate`].
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub(crate) node: String,
    pub(crate) nb: String,
    pub(crate) ovs: String,
    pub(crate) run_dir: PathBuf,
    pub(crate) chassis: Option<String>,
    pub(crate) mtu: u32,
    pub(crate) bridge: String,
    pub(crate) port_wait: Duration,
    pub(crate) up_wait: Duration,
    pub(crate) qos: qos::Config,
    pub(crate) mgmt_port: Option<String>,
    pub(crate) egress: bool,
    pub(crate) metrics_addr: Option<std::net::SocketAddr>,
    pub(crate) node_ports: bool,
    pub(crate) dns_server: Option<IpAddr>,
    pub(crate) cluster_domain: String,
}

impl Default for AgentConfig {
    /// MTU 1400, bridge `br-int`, 30 s waits, the planner's default QoS mechanisms, the
    /// management port `ovn0`, egress and node ports applied on the node, the OVS database at
    /// `unix:/var/run/openvswitch/db.sock`, the run directory `/run/ovnkit`, no DNS in the CNI
    /// result (cluster domain `cluster.local`).
    fn default() -> Self {
        AgentConfig {
            node: String::new(),
            nb: String::new(),
            ovs: "unix:/var/run/openvswitch/db.sock".into(),
            run_dir: PathBuf::from("/run/ovnkit"),
            chassis: None,
            mtu: 1400,
            bridge: "br-int".into(),
            port_wait: DEFAULT_WAIT,
            up_wait: DEFAULT_WAIT,
            qos: qos::Config::default(),
            mgmt_port: Some("ovn0".into()),
            egress: true,
            metrics_addr: None,
            node_ports: true,
            dns_server: None,
            cluster_domain: "cluster.local".into(),
        }
    }
}

impl AgentConfig {
    /// Sets the node's name (the Kubernetes Node).
    #[must_use]
    pub fn with_node(mut self, node: impl Into<String>) -> Self {
        self.node = node.into();
        self
    }

    /// Sets the NB remotes.
    #[must_use]
    pub fn with_nb(mut self, remotes: impl Into<String>) -> Self {
        self.nb = remotes.into();
        self
    }

    /// Sets the node's Open_vSwitch database remote.
    #[must_use]
    pub fn with_ovs(mut self, remote: impl Into<String>) -> Self {
        self.ovs = remote.into();
        self
    }

    /// Sets the run directory (the socket goes there).
    #[must_use]
    pub fn with_run_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.run_dir = dir.into();
        self
    }

    /// Sets the chassis name (default: the OVS `external_ids:system-id`).
    #[must_use]
    pub fn with_chassis(mut self, chassis: impl Into<String>) -> Self {
        self.chassis = Some(chassis.into());
        self
    }

    /// Sets the MTU used when neither the port nor the request says.
    #[must_use]
    pub fn with_mtu(mut self, mtu: u32) -> Self {
        self.mtu = mtu;
        self
    }

    /// Sets the integration bridge.
    #[must_use]
    pub fn with_bridge(mut self, bridge: impl Into<String>) -> Self {
        self.bridge = bridge.into();
        self
    }

    /// Sets how long `ADD` waits for the pod's port, and for it to come up.
    #[must_use]
    pub fn with_waits(mut self, port: Duration, up: Duration) -> Self {
        self.port_wait = port;
        self.up_wait = up;
        self
    }

    /// Sets the QoS mechanisms (match the controller's; the agent applies the node side).
    #[must_use]
    pub fn with_qos(mut self, qos: qos::Config) -> Self {
        self.qos = qos;
        self
    }

    /// Sets the management port's device name; `None` makes none.
    #[must_use]
    pub fn with_mgmt_port(mut self, device: Option<String>) -> Self {
        self.mgmt_port = device;
        self
    }

    /// Sets whether the agent makes the node hold its egress plan
    /// ([`egress`](super::egress); needs the management port). Turn it off when something else
    /// applies the node plans.
    #[must_use]
    pub fn with_egress(mut self, egress: bool) -> Self {
        self.egress = egress;
        self
    }

    /// Serves the agent's metrics on `addr` (`GET /metrics`; see [`crate::metrics`]).
    #[must_use]
    pub fn with_metrics_addr(mut self, addr: std::net::SocketAddr) -> Self {
        self.metrics_addr = Some(addr);
        self
    }

    /// Sets whether the agent makes the node hold its node ports
    /// ([`nodeport`](super::nodeport); needs the management port).
    #[must_use]
    pub fn with_node_ports(mut self, node_ports: bool) -> Self {
        self.node_ports = node_ports;
        self
    }

    /// Sets the pods' resolver: with a `server`, every `ADD` answers the resolver settings of
    /// [`AgentConfig::pod_dns`] in the `dns` of its CNI result; without one, none. The server
    /// is the upstream resolver for names outside the cluster (nothing needs to listen there
    /// for the cluster's own names: OVN answers the queries for Services on their way, see
    /// the controller's `dns` records); `cluster_domain` must be the controller's.
    #[must_use]
    pub fn with_dns(mut self, server: Option<IpAddr>, cluster_domain: impl Into<String>) -> Self {
        self.dns_server = server;
        self.cluster_domain = cluster_domain.into();
        self
    }

    /// The resolver settings of a pod in `namespace`: the server, the search path
    /// `<namespace>.svc.<domain> svc.<domain> <domain>` (so that `web` and `web.shop` find
    /// Services) and `ndots:5`, as the kubelet writes them for `dnsPolicy: ClusterFirst`;
    /// `None` without a server.
    #[must_use]
    pub fn pod_dns(&self, namespace: &str) -> Option<Dns> {
        let server = self.dns_server?;
        let domain = self
            .cluster_domain
            .trim_end_matches('.')
            .to_ascii_lowercase();
        Some(Dns {
            nameservers: vec![server.to_string()],
            domain: None,
            search: vec![
                format!("{}.svc.{domain}", namespace.to_ascii_lowercase()),
                format!("svc.{domain}"),
                domain,
            ],
            options: vec!["ndots:5".to_owned()],
        })
    }

    /// The socket path.
    #[must_use]
    pub fn socket(&self) -> PathBuf {
        self.run_dir.join(server::SOCKET)
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// [`RunError::Config`] naming the setting.
    pub fn validate(&self) -> Result<(), RunError> {
        let bad = |s: &str| Err(RunError::Config(s.to_owned()));
        if self.node.is_empty() {
            return bad("no node name");
        }
        if self.nb.is_empty() {
            return bad("no NB remote");
        }
        if self.ovs.is_empty() {
            return bad("no OVS remote");
        }
        if !(576..=65_535).contains(&self.mtu) {
            return bad("the MTU must be between 576 and 65535");
        }
        if self
            .mgmt_port
            .as_ref()
            .is_some_and(|d| d.is_empty() || d.len() > 15)
        {
            return bad("the management port's name must have 1 to 15 characters");
        }
        let domain = self.cluster_domain.trim_end_matches('.');
        let domain_ok = !domain.is_empty()
            && domain.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !domain_ok {
            return Err(RunError::Config(format!(
                "the cluster domain {:?} is not a DNS name",
                self.cluster_domain
            )));
        }
        Ok(())
    }
}

/// Why the agent could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// A bad setting.
    #[error("agent configuration: {0}")]
    Config(String),
    /// The OVS database could not be reached.
    #[error(transparent)]
    Ovs(#[from] super::ovs::OvsError),
    /// The NB could not be reached.
    #[error(transparent)]
    Nb(#[from] super::ports::PortError),
    /// The metrics endpoint could not be served.
    #[error(transparent)]
    Metrics(Box<crate::metrics::ServeError>),
    /// The socket could not be bound.
    #[error("binding {path}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Starts an agent: connects to the node's OVS database and the NB (monitoring this node's
/// ports), reconciles what was left by a previous run (attachments whose network namespace is
/// gone), and starts keeping the management port, the node's egress plan and its node ports.
///
/// # Errors
/// [`RunError`] when a database cannot be reached or the configuration is bad.
pub async fn start(config: AgentConfig) -> Result<Agent, RunError> {
    start_with_metrics(config, AgentMetrics::default()).await
}

/// [`start`], recording what the agent does in `metrics`.
///
/// # Errors
/// As [`start`].
pub async fn start_with_metrics(
    config: AgentConfig,
    metrics: AgentMetrics,
) -> Result<Agent, RunError> {
    config.validate()?;
    let ovs = NodeOvs::start(&config.ovs, &config.bridge).await?;
    let chassis = config
        .chassis
        .clone()
        .or_else(|| ovs.system_id())
        .unwrap_or_else(|| config.node.clone());
    let nb = NbView::start(&config.nb, &chassis).await?;
    tracing::info!(node = %config.node, chassis = %chassis, "connected to the NB and the node's OVS");
    let agent = Agent::with_metrics(config.clone(), nb.clone(), ovs.clone(), metrics.clone());
    tokio::spawn(sample_connections(nb.clone(), ovs.clone(), metrics));
    match agent.reconcile().await {
        Ok(n) => tracing::info!(removed = n, "start-up reconcile done"),
        Err(f) => tracing::warn!(error = %f.msg, "start-up reconcile"),
    }
    if let Some(device) = config.mgmt_port.clone() {
        tokio::spawn(super::bootstrap::keep(
            nb,
            ovs,
            config.node.clone(),
            device,
            config.mtu,
            config.egress,
            config.node_ports,
        ));
    }
    Ok(agent)
}

/// Runs the agent until `shutdown` completes: [`start`], then serves the socket.
///
/// # Errors
/// [`RunError`] when it cannot start.
pub async fn run(config: AgentConfig, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
    let socket = config.socket();
    let mut registry = Registry::default();
    let metrics = AgentMetrics::new(&mut registry);
    if let Some(addr) = config.metrics_addr {
        let (bound, server) =
            crate::metrics::serve(addr, Arc::new(registry), std::future::pending())
                .await
                .map_err(|e| RunError::Metrics(Box::new(e)))?;
        tracing::info!(%bound, "serving metrics");
        tokio::spawn(server);
    }
    let agent = start_with_metrics(config.clone(), metrics).await?;
    let listener = server::bind(&config.run_dir).map_err(|source| RunError::Bind {
        path: socket.clone(),
        source,
    })?;
    tracing::info!(socket = %socket.display(), "serving CNI requests");
    server::serve(agent, listener, shutdown).await;
    let _ = std::fs::remove_file(&socket);
    Ok(())
}

/// Samples, every second, whether the agent's two databases are connected.
async fn sample_connections(nb: NbView, ovs: NodeOvs, metrics: AgentMetrics) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        metrics.connected("OVN_Northbound", nb.is_connected());
        metrics.connected("Open_vSwitch", ovs.is_connected());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_a_dns_server_a_pod_gets_the_kubelet_s_cluster_first_settings() {
        let config =
            AgentConfig::default().with_dns(Some("10.96.0.10".parse().unwrap()), "Cluster.Local.");
        assert_eq!(
            config.pod_dns("Shop"),
            Some(Dns {
                nameservers: vec!["10.96.0.10".into()],
                domain: None,
                search: vec![
                    "shop.svc.cluster.local".into(),
                    "svc.cluster.local".into(),
                    "cluster.local".into(),
                ],
                options: vec!["ndots:5".into()],
            })
        );
    }

    #[test]
    fn without_a_dns_server_a_pod_gets_no_dns_settings() {
        let config = AgentConfig::default().with_dns(None, "cluster.local");
        assert_eq!(config.pod_dns("default"), None);
        assert_eq!(AgentConfig::default().pod_dns("default"), None);
    }

    #[test]
    fn a_cluster_domain_that_is_no_dns_name_is_refused() {
        let config = AgentConfig::default()
            .with_node("n1")
            .with_nb("unix:/nb.sock")
            .with_dns(Some("10.96.0.10".parse().unwrap()), "cluster..local");
        let e = config.validate().unwrap_err().to_string();
        assert!(e.contains("cluster domain"), "{e}");
        assert!(config.with_dns(None, "cluster.local").validate().is_ok());
    }
}
