//! Constructors and setters on the generated NB rows for what a topology needs; every other
//! column stays reachable as a public field.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use crate::nb::{
    Acl, AclAction, AclDirection, AclSeverity, AddressSet, DhcpOptions, Dns, GatewayChassis,
    HaChassis, HaChassisGroup, LoadBalancer, LoadBalancerHealthCheck, LoadBalancerProtocol,
    LoadBalancerSelectionFields, LogicalRouter, LogicalRouterPolicy, LogicalRouterPolicyAction,
    LogicalRouterPort, LogicalRouterStaticRoute, LogicalSwitch, LogicalSwitchPort, Meter,
    MeterBand, MeterBandAction, MeterUnit, Nat, NatType, PortGroup, QoS, QoSActionKey,
    QoSBandwidthKey, QoSDirection,
};
use crate::{LspAddress, MacAddr};

impl LogicalSwitch {
    /// A switch called `name`.
    #[must_use]
    pub fn new(name: &str) -> Self {
        LogicalSwitch {
            name: name.to_owned(),
            ..Self::default()
        }
    }

    /// Sets `other_config:subnet` (northd then allocates `dynamic` addresses from it).
    #[must_use]
    pub fn with_subnet(mut self, subnet: IpNet) -> Self {
        let key = if subnet.addr().is_ipv4() {
            "subnet"
        } else {
            "ipv6_prefix"
        };
        self.other_config.insert(key.to_owned(), subnet.to_string());
        self
    }

    /// Sets `other_config:exclude_ips` (addresses or `a..b` ranges northd must not hand out).
    #[must_use]
    pub fn with_exclude_ips<S: AsRef<str>>(mut self, ips: impl IntoIterator<Item = S>) -> Self {
        let list: Vec<String> = ips.into_iter().map(|s| s.as_ref().to_owned()).collect();
        self.other_config
            .insert("exclude_ips".to_owned(), list.join(" "));
        self
    }

    /// The IPv4 `other_config:subnet`, if set and valid.
    #[must_use]
    pub fn subnet(&self) -> Option<IpNet> {
        self.other_config.get("subnet")?.parse().ok()
    }
}

impl LogicalSwitchPort {
    /// A VIF port called `name` (its OVS interface has `external_ids:iface-id=name`).
    #[must_use]
    pub fn new(name: &str) -> Self {
        LogicalSwitchPort {
            name: name.to_owned(),
            ..Self::default()
        }
    }

    /// Adds an entry to `addresses`.
    #[must_use]
    pub fn with_address(mut self, address: LspAddress) -> Self {
        self.addresses.push(address);
        self
    }

    /// Adds a `port_security` entry: the MAC and the IPs (or networks) the port may use.
    #[must_use]
    pub fn with_port_security(mut self, mac: MacAddr, ips: &[IpNet]) -> Self {
        let mut entry = mac.to_string();
        for ip in ips {
            entry.push(' ');
            entry.push_str(&ip.to_string());
        }
        self.port_security.insert(entry);
        self
    }

    /// A port of type `router` peered with the router port `router_port`.
    #[must_use]
    pub fn router(name: &str, router_port: &str) -> Self {
        let mut p = Self::new(name);
        p.type_ = "router".to_owned();
        p.addresses = vec![LspAddress::Router];
        p.options
            .insert("router-port".to_owned(), router_port.to_owned());
        p
    }

    /// A port of type `localnet` bridged to the physical network `network_name`
    /// (`ovn-bridge-mappings`).
    #[must_use]
    pub fn localnet(name: &str, network_name: &str) -> Self {
        let mut p = Self::new(name);
        p.type_ = "localnet".to_owned();
        p.addresses = vec![LspAddress::Unknown];
        p.options
            .insert("network_name".to_owned(), network_name.to_owned());
        p
    }
}

impl LogicalRouter {
    /// A router called `name`.
    #[must_use]
    pub fn new(name: &str) -> Self {
        LogicalRouter {
            name: name.to_owned(),
            ..Self::default()
        }
    }
}

impl LogicalRouterPort {
    /// A router port with its MAC and networks (`addr/len`, the router's address on each).
    #[must_use]
    pub fn new(name: &str, mac: MacAddr, networks: impl IntoIterator<Item = IpNet>) -> Self {
        LogicalRouterPort {
            name: name.to_owned(),
            mac,
            networks: networks.into_iter().collect(),
            ..Self::default()
        }
    }
}

impl LoadBalancer {
    /// A load balancer for `protocol` (`None`: OVN's default, TCP).
    #[must_use]
    pub fn new(name: &str, protocol: Option<LoadBalancerProtocol>) -> Self {
        LoadBalancer {
            name: name.to_owned(),
            protocol,
            ..Self::default()
        }
    }

    /// Maps `vip` to `backends` (all with ports, or all without).
    #[must_use]
    pub fn with_vip(mut self, vip: SocketAddr, backends: &[SocketAddr]) -> Self {
        let list: Vec<String> = backends.iter().map(ToString::to_string).collect();
        self.vips.insert(vip.to_string(), list.join(","));
        self
    }

    /// Maps an IP-only `vip` to IP-only `backends` (any port).
    #[must_use]
    pub fn with_ip_vip(mut self, vip: IpAddr, backends: &[IpAddr]) -> Self {
        let list: Vec<String> = backends.iter().map(ToString::to_string).collect();
        self.vips.insert(vip.to_string(), list.join(","));
        self
    }

    /// Session affinity: a client keeps its backend for `timeout_s` seconds.
    #[must_use]
    pub fn with_affinity(mut self, timeout_s: u32) -> Self {
        self.options
            .insert("affinity_timeout".to_owned(), timeout_s.to_string());
        self
    }

    /// Hashes these fields to pick a backend (default: the 5-tuple).
    #[must_use]
    pub fn with_selection_fields(
        mut self,
        fields: impl IntoIterator<Item = LoadBalancerSelectionFields>,
    ) -> Self {
        self.selection_fields.extend(fields);
        self
    }

    /// Tells northd which logical port and source IP to use to probe `backend_ip`
    /// (`ip_port_mappings`, needed by health checks).
    #[must_use]
    pub fn with_ip_port_mapping(mut self, backend_ip: IpAddr, port: &str, src_ip: IpAddr) -> Self {
        self.ip_port_mappings
            .insert(backend_ip.to_string(), format!("{port}:{src_ip}"));
        self
    }
}

impl LoadBalancerHealthCheck {
    /// A health check of `vip` (as written in the load balancer's `vips`) with northd's
    /// options `interval`, `timeout`, `success_count`, `failure_count` (seconds, counts).
    #[must_use]
    pub fn new(vip: SocketAddr, interval: u32, timeout: u32, success: u32, failure: u32) -> Self {
        let mut h = LoadBalancerHealthCheck {
            vip: vip.to_string(),
            ..Self::default()
        };
        for (k, v) in [
            ("interval", interval),
            ("timeout", timeout),
            ("success_count", success),
            ("failure_count", failure),
        ] {
            h.options.insert(k.to_owned(), v.to_string());
        }
        h
    }
}

impl Acl {
    /// An ACL.
    #[must_use]
    pub fn new(direction: AclDirection, priority: u16, match_: &str, action: AclAction) -> Self {
        Acl {
            direction,
            priority: i64::from(priority),
            match_: match_.to_owned(),
            action,
            ..Self::default()
        }
    }

    /// Logs matching packets under `name` at `severity`.
    #[must_use]
    pub fn with_log(mut self, name: &str, severity: AclSeverity) -> Self {
        self.log = true;
        self.name = Some(name.to_owned());
        self.severity = Some(severity);
        self
    }
}

impl PortGroup {
    /// A port group called `name` (usable in matches as `@name`, `$name_ip4`).
    #[must_use]
    pub fn new(name: &str) -> Self {
        PortGroup {
            name: name.to_owned(),
            ..Self::default()
        }
    }
}

impl AddressSet {
    /// An address set (usable in matches as `$name`).
    #[must_use]
    pub fn new<S: ToString>(name: &str, addresses: impl IntoIterator<Item = S>) -> Self {
        AddressSet {
            name: name.to_owned(),
            addresses: addresses.into_iter().map(|a| a.to_string()).collect(),
            ..Self::default()
        }
    }
}

impl Nat {
    /// Source NAT of `logical` (an address or network) to `external`.
    #[must_use]
    pub fn snat(external: IpAddr, logical: IpNet) -> Self {
        Nat {
            type_: NatType::Snat,
            external_ip: external.to_string(),
            logical_ip: logical.to_string(),
            ..Self::default()
        }
    }

    /// One-to-one NAT between `external` and `logical`; with `port` and `mac` it is
    /// distributed (handled on the chassis of the logical port).
    #[must_use]
    pub fn dnat_and_snat(
        external: IpAddr,
        logical: IpAddr,
        distributed: Option<(&str, MacAddr)>,
    ) -> Self {
        let (logical_port, external_mac) = distributed
            .map(|(p, m)| (Some(p.to_owned()), Some(m)))
            .unwrap_or_default();
        Nat {
            type_: NatType::DnatAndSnat,
            external_ip: external.to_string(),
            logical_ip: logical.to_string(),
            logical_port,
            external_mac,
            ..Self::default()
        }
    }
}

impl LogicalRouterPolicy {
    /// A policy; `nexthops` matter only for `reroute`.
    #[must_use]
    pub fn new(
        priority: u16,
        match_: &str,
        action: LogicalRouterPolicyAction,
        nexthops: &[IpAddr],
    ) -> Self {
        LogicalRouterPolicy {
            priority: i64::from(priority),
            match_: match_.to_owned(),
            action,
            nexthops: nexthops.iter().map(ToString::to_string).collect(),
            ..Self::default()
        }
    }
}

impl LogicalRouterStaticRoute {
    /// A route to `prefix` via `nexthop`.
    #[must_use]
    pub fn new(prefix: IpNet, nexthop: IpAddr) -> Self {
        LogicalRouterStaticRoute {
            ip_prefix: prefix.trunc().to_string(),
            nexthop: nexthop.to_string(),
            ..Self::default()
        }
    }

    /// Sends the route out of `port`.
    #[must_use]
    pub fn with_output_port(mut self, port: &str) -> Self {
        self.output_port = Some(port.to_owned());
        self
    }
}

impl GatewayChassis {
    /// `chassis` may host the router port at `priority` (highest wins); named
    /// `<port>-<chassis>` as ovn-nbctl does.
    #[must_use]
    pub fn new(router_port: &str, chassis: &str, priority: u16) -> Self {
        GatewayChassis {
            name: format!("{router_port}-{chassis}"),
            chassis_name: chassis.to_owned(),
            priority: i64::from(priority),
            ..Self::default()
        }
    }
}

impl HaChassisGroup {
    /// An HA chassis group.
    #[must_use]
    pub fn new(name: &str) -> Self {
        HaChassisGroup {
            name: name.to_owned(),
            ..Self::default()
        }
    }
}

impl HaChassis {
    /// A member of an HA chassis group.
    #[must_use]
    pub fn new(chassis: &str, priority: u16) -> Self {
        HaChassis {
            chassis_name: chassis.to_owned(),
            priority: i64::from(priority),
            ..Self::default()
        }
    }
}

impl DhcpOptions {
    /// DHCP options for `cidr` with the usual v4 options set: `router`, `server_id`,
    /// `server_mac`, `lease_time` (seconds).
    #[must_use]
    pub fn v4(cidr: IpNet, router: IpAddr, server_mac: MacAddr, lease_time: u32) -> Self {
        let mut d = DhcpOptions {
            cidr: cidr.trunc().to_string(),
            ..Self::default()
        };
        for (k, v) in [
            ("router", router.to_string()),
            ("server_id", router.to_string()),
            ("server_mac", server_mac.to_string()),
            ("lease_time", lease_time.to_string()),
        ] {
            d.options.insert(k.to_owned(), v);
        }
        d
    }
}

impl Dns {
    /// DNS records: host name to its addresses.
    #[must_use]
    pub fn new<'a>(records: impl IntoIterator<Item = (&'a str, &'a [IpAddr])>) -> Self {
        let mut d = Dns::default();
        for (name, ips) in records {
            let list: Vec<String> = ips.iter().map(ToString::to_string).collect();
            d.records.insert(name.to_owned(), list.join(" "));
        }
        d
    }
}

impl QoS {
    /// A QoS rule on packets matching `match_`.
    #[must_use]
    pub fn new(direction: QoSDirection, priority: u16, match_: &str) -> Self {
        QoS {
            direction,
            priority: i64::from(priority),
            match_: match_.to_owned(),
            ..Self::default()
        }
    }

    /// Polices to `rate_kbps` with a bucket of `burst_kbits`.
    #[must_use]
    pub fn with_rate(mut self, rate_kbps: u32, burst_kbits: u32) -> Self {
        self.bandwidth
            .insert(QoSBandwidthKey::Rate, i64::from(rate_kbps));
        self.bandwidth
            .insert(QoSBandwidthKey::Burst, i64::from(burst_kbits));
        self
    }

    /// Marks packets with `dscp`.
    #[must_use]
    pub fn with_dscp(mut self, dscp: u8) -> Self {
        self.action.insert(QoSActionKey::Dscp, i64::from(dscp));
        self
    }
}

impl Meter {
    /// A meter (its bands are children: [`crate::plan::Plan::insert_with_children`]).
    #[must_use]
    pub fn new(name: &str, unit: MeterUnit) -> Self {
        Meter {
            name: name.to_owned(),
            unit,
            ..Self::default()
        }
    }
}

impl MeterBand {
    /// A band that drops above `rate` with bucket `burst` (in the meter's unit).
    #[must_use]
    pub fn drop(rate: u32, burst: u32) -> Self {
        MeterBand {
            action: MeterBandAction::Drop,
            rate: i64::from(rate),
            burst_size: i64::from(burst),
            ..Self::default()
        }
    }
}
