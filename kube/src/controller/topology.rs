//! The logical topology the controller owns, as wanted rows of the reconcile core: the cluster
//! router, the join switch, a switch per subnet on the router (with a private subnet's ACLs),
//! a port per node on the join switch and a port per pod on its subnet's switch.
//!
//! | row | name | owner object, role |
//! |---|---|---|
//! | `Logical_Router` | `ovn-cluster` | `cluster`, `router` |
//! | `Logical_Switch` | the subnet's name (`join`, `ovn-default`, ...) | `subnet/<name>`, `switch` |
//! | `Logical_Router_Port` | `ovn-cluster-<subnet>` | `subnet/<name>`, `router-port` |
//! | `Logical_Switch_Port` (router) | `<subnet>-ovn-cluster` | `subnet/<name>`, `router-peer` |
//! | `ACL` (private subnets) | - | `subnet/<name>`, `acl` (id: what it does) |
//! | `Logical_Switch_Port` | `node-<name>` | `node/<name>`, `port` |
//! | `Logical_Switch_Port` | `<namespace>.<pod>` | `pod/<ns>/<name>`, `port` |
//!
//! Services (owner component `services`, built by [`super::services`]) add:
//!
//! | row | name | owner object, role |
//! |---|---|---|
//! | `Load_Balancer` | `svc-<ns>-<name>-<proto>` | `service/<ns>/<name>`, `tcp`/`udp`/`sctp` |
//! | `Load_Balancer` (template, `Local` node ports) | `svc-<ns>-<name>-<proto>-local` | `service/<ns>/<name>`, `<proto>-local` |
//! | `Load_Balancer_Health_Check` | - | `service/<ns>/<name>`, `health-check` (id: protocol and VIP) |
//! | `Chassis_Template_Var` | the node's chassis | `node/<name>`, `template-vars` |
//! | `Load_Balancer_Group` | `ovnkit-services` | none: the table has no `external_ids`, the name is its identity |
//!
//! The group goes into every switch's and the router's `load_balancer_group`, a column only
//! the `services` component writes (by mutation; the rows above leave it alone).
//!
//! Kube-OVN's ACL priorities for a private subnet, all `to-lport` on its switch and stateful
//! (`allow-related`, so that replies to connections its pods open get back in): drop anything
//! for the subnet (1000), allow from the subnet itself and from each `allow` CIDR (1001), allow
//! from the join subnet, i.e. the nodes and their health checks (3000).

use std::net::IpAddr;

use ipnet::IpNet;
use ovn_model::MacAddr;
use ovn_model::nb::{
    Acl, AclAction, AclDirection, LogicalRouter, LogicalRouterPort, LogicalSwitch,
    LogicalSwitchPort,
};
use ovn_model::owner::{self, Component, Key, Object};
use ovn_model::plan::{PlanError, Target};
use ovn_model::reconcile::Want;

use super::subnets::Subnet;

/// The owner key of a topology row.
pub(crate) fn key(object: Object, role: &str) -> Key {
    Key::new(Component::TOPOLOGY, object, role)
}

/// The key of the cluster router.
pub(crate) fn router_key() -> Key {
    key(Object::cluster(), "router")
}

/// The key of a subnet's switch.
pub(crate) fn switch_key(subnet: &str) -> Key {
    key(Object::subnet(subnet), "switch")
}

/// A locally administered unicast MAC derived from `seed` with FNV-1a (stable across
/// versions and machines: router ports keep their MAC).
pub(crate) fn derived_mac(seed: &str) -> MacAddr {
    let h = seed.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let b = h.to_be_bytes();
    MacAddr::new([0x0a, 0x58, b[0], b[1], b[2], b[3]])
}

/// `ip4` or `ip6`.
fn family(net: &IpNet) -> &'static str {
    match net {
        IpNet::V4(_) => "ip4",
        IpNet::V6(_) => "ip6",
    }
}

/// The cluster router.
pub(crate) fn router(name: &str) -> Result<Want, PlanError> {
    Want::root(
        router_key(),
        &LogicalRouter::new(name),
        "the cluster router",
    )
}

/// A subnet's switch.
pub(crate) fn switch(subnet: &Subnet) -> Result<Want, PlanError> {
    let mut sw = LogicalSwitch::new(&subnet.name);
    for c in &subnet.cidrs {
        let k = if c.addr().is_ipv4() {
            owner::SWITCH_CIDR
        } else {
            owner::SWITCH_CIDR6
        };
        sw.external_ids.insert(k.to_owned(), c.to_string());
    }
    Want::root(
        switch_key(&subnet.name),
        &sw,
        format!(
            "subnet {} ({})",
            subnet.name,
            super::annotations::joined(&subnet.cidrs)
        ),
    )
}

/// The rows that hang a subnet's switch on the router, and a private subnet's ACLs.
pub(crate) fn subnet_children(
    subnet: &Subnet,
    router: &Target<LogicalRouter>,
    switch: &Target<LogicalSwitch>,
    router_name: &str,
    join_cidr: IpNet,
) -> Result<Vec<Want>, PlanError> {
    let object = Object::subnet(&subnet.name);
    let lrp_name = format!("{router_name}-{}", subnet.name);
    let networks: Vec<IpNet> = subnet
        .cidrs
        .iter()
        .zip(&subnet.gateways)
        .filter_map(|(c, g)| IpNet::new(*g, c.prefix_len()).ok())
        .collect();
    let lrp = LogicalRouterPort::new(&lrp_name, derived_mac(&lrp_name), networks);
    let peer = LogicalSwitchPort::router(&format!("{}-{router_name}", subnet.name), &lrp_name);
    let why = format!("subnet {} on router {router_name}", subnet.name);
    let mut out = vec![
        Want::child(
            key(object.clone(), "router-port"),
            &lrp,
            router.clone(),
            &why,
        )?,
        Want::child(
            key(object.clone(), "router-peer"),
            &peer,
            switch.clone(),
            &why,
        )?
        .ignoring(&["up", "dynamic_addresses"]),
    ];
    if subnet.private {
        for acl in private_acls(subnet, join_cidr) {
            let (id, row) = acl;
            out.push(Want::child(
                key(object.clone(), "acl").with_id(id),
                &row,
                switch.clone(),
                format!("subnet {} is private", subnet.name),
            )?);
        }
    }
    Ok(out)
}

/// A private subnet's ACLs, each with the id that tells it apart.
fn private_acls(subnet: &Subnet, join_cidr: IpNet) -> Vec<(String, Acl)> {
    let mut out = Vec::new();
    for cidr in &subnet.cidrs {
        let f = family(cidr);
        let to_me = format!("{f}.dst == {cidr}");
        out.push((
            format!("drop-{cidr}"),
            Acl::new(AclDirection::ToLport, 1000, &to_me, AclAction::Drop),
        ));
        out.push((
            format!("self-{cidr}"),
            Acl::new(
                AclDirection::ToLport,
                1001,
                &format!("{f}.src == {cidr} && {to_me}"),
                AclAction::AllowRelated,
            ),
        ));
        for allow in subnet.allow.iter().filter(|a| family(a) == f) {
            out.push((
                format!("allow-{allow}-{cidr}"),
                Acl::new(
                    AclDirection::ToLport,
                    1001,
                    &format!("{f}.src == {allow} && {to_me}"),
                    AclAction::AllowRelated,
                ),
            ));
        }
        if family(&join_cidr) == f {
            out.push((
                format!("nodes-{cidr}"),
                Acl::new(
                    AclDirection::ToLport,
                    3000,
                    &format!("{f}.src == {join_cidr} && {to_me}"),
                    AclAction::AllowRelated,
                ),
            ));
        }
    }
    out
}

/// What the node agent needs to plumb a pod or a node's management port, beside its
/// addresses: the subnet, the CIDRs, the gateways and the MTU (and, for pods, QoS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PortData {
    pub(crate) subnet: String,
    pub(crate) cidrs: Vec<IpNet>,
    pub(crate) gateways: Vec<IpAddr>,
    pub(crate) mtu: u16,
    pub(crate) qos: Option<String>,
}

/// `external_ids` keys of the data a port carries for the node agent.
pub(crate) mod data {
    pub(crate) use ovn_model::owner::{
        PORT_CIDR as CIDR, PORT_GATEWAY as GATEWAY, PORT_MTU as MTU, PORT_QOS as QOS,
        PORT_SUBNET as SUBNET,
    };
}

/// Which addresses a port's `port_security` allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Security {
    /// Its MAC and its own IPs (a pod).
    MacAndIps,
    /// Its MAC, any IP: a node's management port, which carries egress traffic of other
    /// addresses (pods' traffic rerouted to the node, the external replies it routes back).
    MacOnly,
}

/// A port on a switch: a pod's (`<namespace>.<pod>`) or a node's management port
/// (`node-<name>`).
#[allow(clippy::too_many_arguments)] // Each is one column or one datum of the port.
pub(crate) fn port(
    key: Key,
    name: &str,
    switch: &Target<LogicalSwitch>,
    mac: MacAddr,
    ips: &[IpAddr],
    security: Security,
    chassis: Option<&str>,
    data: &PortData,
    why: String,
) -> Result<Want, PlanError> {
    let mut lsp = LogicalSwitchPort::new(name)
        .with_address(ovn_model::LspAddress::mac(mac, ips.iter().copied()));
    let nets: Vec<IpNet> = match security {
        Security::MacAndIps => ips.iter().map(|ip| IpNet::from(*ip)).collect(),
        Security::MacOnly => Vec::new(),
    };
    lsp = lsp.with_port_security(mac, &nets);
    if let Some(c) = chassis {
        lsp.options
            .insert("requested-chassis".to_owned(), c.to_owned());
    }
    let ids = &mut lsp.external_ids;
    ids.insert(data::SUBNET.to_owned(), data.subnet.clone());
    ids.insert(
        data::CIDR.to_owned(),
        super::annotations::joined(&data.cidrs),
    );
    ids.insert(
        data::GATEWAY.to_owned(),
        super::annotations::joined(&data.gateways),
    );
    ids.insert(data::MTU.to_owned(), data.mtu.to_string());
    if let Some(q) = &data.qos {
        ids.insert(data::QOS.to_owned(), q.clone());
    }
    Ok(Want::child(key, &lsp, switch.clone(), why)?.ignoring(&["up", "dynamic_addresses"]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway::GatewayType;

    fn subnet(private: bool) -> Subnet {
        Subnet {
            name: "web".into(),
            cidrs: vec!["10.17.0.0/16".parse().unwrap()],
            gateways: vec!["10.17.0.1".parse().unwrap()],
            exclude: Vec::new(),
            private,
            allow: vec!["10.16.0.0/16".parse().unwrap()],
            gateway_type: GatewayType::Distributed,
            gateway_nodes: Vec::new(),
            nat_outgoing: true,
            defined_by: Some("web".into()),
        }
    }

    #[test]
    fn a_private_subnet_gets_kube_ovn_acls() {
        let acls = private_acls(&subnet(true), "100.64.0.0/16".parse().unwrap());
        let lines: Vec<String> = acls
            .iter()
            .map(|(id, a)| format!("{id} {} {:?} {}", a.priority, a.action, a.match_))
            .collect();
        assert_eq!(
            lines,
            [
                "drop-10.17.0.0/16 1000 Drop ip4.dst == 10.17.0.0/16",
                "self-10.17.0.0/16 1001 AllowRelated ip4.src == 10.17.0.0/16 && ip4.dst == 10.17.0.0/16",
                "allow-10.16.0.0/16-10.17.0.0/16 1001 AllowRelated ip4.src == 10.16.0.0/16 && ip4.dst == 10.17.0.0/16",
                "nodes-10.17.0.0/16 3000 AllowRelated ip4.src == 100.64.0.0/16 && ip4.dst == 10.17.0.0/16",
            ]
        );
    }

    #[test]
    fn router_ports_get_stable_local_macs() {
        let a = derived_mac("ovn-cluster-web");
        assert_eq!(a, derived_mac("ovn-cluster-web"));
        assert_ne!(a, derived_mac("ovn-cluster-db"));
        assert_eq!(a.octets()[0], 0x0a);
    }
}
