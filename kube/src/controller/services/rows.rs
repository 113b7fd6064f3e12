//! The rows of Services: load balancers, their health checks, and each node's template
//! variables, as wanted rows of the reconcile core.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ovn_model::nb::{ChassisTemplateVar, LoadBalancer, LoadBalancerHealthCheck};
use ovn_model::owner::{Component, Key, Object};
use ovn_model::plan::{PlanError, RowTarget, Target};
use ovn_model::reconcile::{Resolved, Want};
use ovsdb::Table;

use super::{Lb, LbKind, LocalPort, node_port_data};

/// The one `Load_Balancer_Group` of every Service load balancer (a table without
/// `external_ids`: the controller knows it by this name).
pub(crate) const GROUP: &str = "ovnkit-services";

/// The template variable holding the node-port VIP on every chassis.
pub(crate) const NODE_PORT_VIP_VAR: &str = "OVNKIT_NODE_PORT_VIP";

/// A health check's settings (OVN's `Load_Balancer_Health_Check` options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HealthSettings {
    pub(crate) interval: u32,
    pub(crate) timeout: u32,
    pub(crate) success: u32,
    pub(crate) failure: u32,
}

impl Default for HealthSettings {
    /// Kube-OVN's: a probe every 5 s, 20 s to answer, 3 to come back, 3 to go.
    fn default() -> Self {
        HealthSettings {
            interval: 5,
            timeout: 20,
            success: 3,
            failure: 3,
        }
    }
}

/// The owner object of a Service's rows.
pub(crate) fn service_object(ns: &str, name: &str) -> Object {
    Object::of("service", Some(ns), name)
}

fn lb_role(lb: &Lb) -> String {
    match lb.kind {
        LbKind::Cluster => lb.proto.lower().to_owned(),
        LbKind::LocalNodePorts => format!("{}-local", lb.proto.lower()),
    }
}

/// The key of a Service's load balancer.
pub(crate) fn lb_key(ns: &str, name: &str, lb: &Lb) -> Key {
    Key::new(Component::SERVICES, service_object(ns, name), lb_role(lb))
}

/// A Service's load balancers; `source` gives the health-check source address for a backend
/// (backends without one are not monitored).
pub(crate) fn lb_wants(
    ns: &str,
    name: &str,
    lbs: &[Lb],
    node_port_vip: IpAddr,
    source: &dyn Fn(IpAddr) -> Option<IpAddr>,
) -> Result<Vec<Want>, PlanError> {
    let mut out = Vec::new();
    for lb in lbs {
        let role = lb_role(lb);
        let mut row = LoadBalancer::new(&format!("svc-{ns}-{name}-{role}"), Some(lb.proto.ovn()));
        row.vips = lb.vips.clone();
        match lb.kind {
            LbKind::Cluster => {
                row.options.insert("reject".to_owned(), "true".to_owned());
                if let Some(t) = lb.affinity {
                    row = row.with_affinity(t);
                }
            }
            LbKind::LocalNodePorts => {
                row.options.insert("template".to_owned(), "true".to_owned());
                let family = if node_port_vip.is_ipv4() {
                    "ipv4"
                } else {
                    "ipv6"
                };
                row.options
                    .insert("address-family".to_owned(), family.to_owned());
            }
        }
        if !lb.health_vips.is_empty() {
            for (backend, port) in &lb.monitored {
                if let Some(src) = source(*backend) {
                    row = row.with_ip_port_mapping(*backend, port, src);
                }
            }
        }
        row.external_ids = node_port_data(lb, node_port_vip);
        out.push(Want::root(
            lb_key(ns, name, lb),
            &row,
            format!("Service {ns}/{name} ({})", lb.proto.upper()),
        )?);
    }
    Ok(out)
}

/// The health checks of a Service's load balancers, under the rows `resolved` placed.
pub(crate) fn health_wants(
    ns: &str,
    name: &str,
    lbs: &[Lb],
    resolved: &Resolved,
    settings: HealthSettings,
) -> Result<Vec<Want>, PlanError> {
    let mut out = Vec::new();
    for lb in lbs {
        let Some(parent) = resolved
            .target(LoadBalancer::TABLE, &lb_key(ns, name, lb))
            .and_then(RowTarget::to_ref)
        else {
            continue;
        };
        for vip in &lb.health_vips {
            let row = LoadBalancerHealthCheck::new(
                *vip,
                settings.interval,
                settings.timeout,
                settings.success,
                settings.failure,
            );
            let key = Key::new(
                Component::SERVICES,
                service_object(ns, name),
                "health-check",
            )
            .with_id(format!("{} {vip}", lb.proto.lower()));
            out.push(Want::child::<LoadBalancer, _>(
                key,
                &row,
                Target::Ref(parent.clone()),
                format!("Service {ns}/{name}: health check of {vip}"),
            )?);
        }
    }
    Ok(out)
}

/// A node's template variables: the node-port VIP, and for each `Local` node port its own
/// ready endpoints (empty: the node has none, and drops the port's traffic).
pub(crate) fn template_vars<'a>(
    node: &str,
    chassis: &str,
    node_port_vip: IpAddr,
    ports: impl IntoIterator<Item = &'a LocalPort>,
) -> Result<Want, PlanError> {
    let mut variables = BTreeMap::from([(NODE_PORT_VIP_VAR.to_owned(), node_port_vip.to_string())]);
    for p in ports {
        let mine: Vec<String> = p
            .by_node
            .get(node)
            .into_iter()
            .flatten()
            .map(ToString::to_string)
            .collect();
        variables.insert(p.variable(), mine.join(","));
    }
    let row = ChassisTemplateVar {
        chassis: chassis.to_owned(),
        variables,
        ..ChassisTemplateVar::default()
    };
    Want::root(
        Key::new(Component::SERVICES, Object::node(node), "template-vars"),
        &row,
        format!("node {node}'s node-port endpoints"),
    )
}
