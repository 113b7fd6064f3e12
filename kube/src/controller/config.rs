//! The controller's cluster-wide settings: [`ControllerConfig`], `Default` (Kube-OVN's) plus
//! `with_*` setters, checked once when the controller starts.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

/// Cluster-wide settings.
///
/// `Default` is Kube-OVN's: router `ovn-cluster`, default subnet `ovn-default` on
/// `10.16.0.0/16`, join subnet `join` on `100.64.0.0/16` with the router at `100.64.0.1`, pod MTU
/// 1400 (Geneve), distributed egress, the OVSDB lock `ovnkit_controller`; DNS domain
/// `cluster.local`; node ports forwarded to `169.254.169.3`; no Service health checks unless
/// asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ControllerConfig {
    pub(crate) router: String,
    pub(crate) default_subnet: String,
    pub(crate) default_cidr: IpNet,
    pub(crate) join_subnet: String,
    pub(crate) join_cidr: IpNet,
    pub(crate) router_join_ip: IpAddr,
    pub(crate) mtu: u16,
    pub(crate) lock: String,
    pub(crate) qos: qos::Config,
    pub(crate) native_gateway: Option<gateway::NativeGateway>,
    pub(crate) batch: usize,
    pub(crate) cluster_domain: String,
    pub(crate) node_port_vip: IpAddr,
    pub(crate) service_health_checks: bool,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            router: "ovn-cluster".into(),
            default_subnet: "ovn-default".into(),
            default_cidr: "10.16.0.0/16".parse().expect("a CIDR"),
            join_subnet: "join".into(),
            join_cidr: "100.64.0.0/16".parse().expect("a CIDR"),
            router_join_ip: IpAddr::V4(Ipv4Addr::new(100, 64, 0, 1)),
            mtu: 1400,
            lock: "ovnkit_controller".into(),
            qos: qos::Config::default(),
            native_gateway: None,
            batch: 5000,
            cluster_domain: "cluster.local".into(),
            node_port_vip: IpAddr::V4(Ipv4Addr::new(169, 254, 169, 3)),
            service_health_checks: false,
        }
    }
}

impl ControllerConfig {
    /// Sets the cluster router's name.
    #[must_use]
    pub fn with_router(mut self, name: impl Into<String>) -> Self {
        self.router = name.into();
        self
    }

    /// Sets the default subnet (used by namespaces that name none).
    #[must_use]
    pub fn with_default_subnet(mut self, name: impl Into<String>, cidr: IpNet) -> Self {
        self.default_subnet = name.into();
        self.default_cidr = cidr;
        self
    }

    /// Sets the join subnet (node management ports) and the router's address in it.
    #[must_use]
    pub fn with_join(mut self, name: impl Into<String>, cidr: IpNet, router_ip: IpAddr) -> Self {
        self.join_subnet = name.into();
        self.join_cidr = cidr;
        self.router_join_ip = router_ip;
        self
    }

    /// Sets the pods' MTU.
    #[must_use]
    pub fn with_mtu(mut self, mtu: u16) -> Self {
        self.mtu = mtu;
        self
    }

    /// Sets the OVSDB lock the writing controller holds.
    #[must_use]
    pub fn with_lock(mut self, name: impl Into<String>) -> Self {
        self.lock = name.into();
        self
    }

    /// Sets how pod bandwidth limits are enforced.
    #[must_use]
    pub fn with_qos(mut self, qos: qos::Config) -> Self {
        self.qos = qos;
        self
    }

    /// Gives the cluster an OVN-native gateway (for floating IPs and native SNAT).
    #[must_use]
    pub fn with_native_gateway(mut self, native: gateway::NativeGateway) -> Self {
        self.native_gateway = Some(native);
        self
    }

    /// Sets the most objects whose rows change in one transaction (more wait for the next
    /// step); objects whose rows already match do not count, though a step looks at no more
    /// than twenty times this many.
    #[must_use]
    pub fn with_batch(mut self, objects: usize) -> Self {
        self.batch = objects.max(1);
        self
    }

    /// Sets the cluster's DNS domain (Services are `<service>.<namespace>.svc.<domain>`).
    #[must_use]
    pub fn with_cluster_domain(mut self, domain: impl Into<String>) -> Self {
        self.cluster_domain = domain.into();
        self
    }

    /// Sets the address nodes forward node-port traffic to: a load balancer VIP in OVN that
    /// each node routes into its management port. It must not be used anywhere else.
    #[must_use]
    pub fn with_node_port_vip(mut self, vip: IpAddr) -> Self {
        self.node_port_vip = vip;
        self
    }

    /// Sets whether Services get OVN health checks of their IPv4 backends unless their
    /// `ovnkit.io/health-check` annotation says otherwise (default: off).
    #[must_use]
    pub fn with_service_health_checks(mut self, on: bool) -> Self {
        self.service_health_checks = on;
        self
    }

    /// Whether Services get health checks by default.
    #[must_use]
    pub fn service_health_checks(&self) -> bool {
        self.service_health_checks
    }

    /// The cluster's DNS domain.
    #[must_use]
    pub fn cluster_domain(&self) -> &str {
        &self.cluster_domain
    }

    /// The address nodes forward node-port traffic to.
    #[must_use]
    pub fn node_port_vip(&self) -> IpAddr {
        self.node_port_vip
    }

    /// The cluster router's name.
    #[must_use]
    pub fn router(&self) -> &str {
        &self.router
    }

    /// The default subnet's name and CIDR.
    #[must_use]
    pub fn default_subnet(&self) -> (&str, IpNet) {
        (&self.default_subnet, self.default_cidr)
    }

    /// The join subnet's name, CIDR and the router's address in it.
    #[must_use]
    pub fn join(&self) -> (&str, IpNet, IpAddr) {
        (&self.join_subnet, self.join_cidr, self.router_join_ip)
    }

    /// The pods' MTU.
    #[must_use]
    pub fn mtu(&self) -> u16 {
        self.mtu
    }

    /// The OVSDB lock.
    #[must_use]
    pub fn lock(&self) -> &str {
        &self.lock
    }

    /// Checks the settings once.
    ///
    /// # Errors
    /// A message naming the setting that is unusable.
    pub fn validate(&self) -> Result<(), String> {
        if self.router.is_empty() || self.default_subnet.is_empty() || self.join_subnet.is_empty() {
            return Err("the router, default subnet and join subnet need names".into());
        }
        let id = |c: char| c.is_ascii_alphanumeric() || c == '_';
        if !self
            .lock
            .starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            || !self.lock.chars().all(id)
        {
            return Err(format!(
                "the lock name {:?} is not an OVSDB id (letters, digits and _, not starting with a digit)",
                self.lock
            ));
        }
        if self.default_subnet == self.join_subnet {
            return Err("the default subnet and the join subnet need different names".into());
        }
        if !self.join_cidr.contains(&self.router_join_ip) {
            return Err(format!(
                "the router's join address {} is outside the join subnet {}",
                self.router_join_ip, self.join_cidr
            ));
        }
        let domain_ok = !self.cluster_domain.is_empty()
            && self.cluster_domain.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !domain_ok {
            return Err(format!(
                "the cluster domain {:?} is not a DNS name",
                self.cluster_domain
            ));
        }
        if self.join_cidr.contains(&self.node_port_vip)
            || self.default_cidr.contains(&self.node_port_vip)
        {
            return Err(format!(
                "the node-port address {} is inside the join or default subnet",
                self.node_port_vip
            ));
        }
        if self.join_cidr.contains(&self.default_cidr.network())
            || self.default_cidr.contains(&self.join_cidr.network())
        {
            return Err(format!(
                "the default subnet {} overlaps the join subnet {}",
                self.default_cidr, self.join_cidr
            ));
        }
        Ok(())
    }

    /// The gateway planner's view of the cluster.
    pub(crate) fn cluster(
        &self,
        cluster_cidrs: impl IntoIterator<Item = IpNet>,
    ) -> gateway::Cluster {
        let cluster = gateway::Cluster::default()
            .with_router(self.router.clone())
            .with_join(self.join_cidr, self.router_join_ip)
            .with_cluster_cidrs(cluster_cidrs);
        match &self.native_gateway {
            Some(n) => cluster.with_native(n.clone()),
            None => cluster,
        }
    }
}
