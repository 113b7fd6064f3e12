//! The Services part of the controller's state: Services and EndpointSlices as last seen, and
//! the load balancers they make (planned by [`ControllerState::plan_services`]; the rows are
//! built by [`crate::controller::services`]).
//!
//! Each dirty Service is reconciled in its owner scope (`service/<ns>/<name>`): its load
//! balancers and their health checks. Around them, the step keeps the load balancer group
//! `ovnkit-services` (every Service load balancer in it, on every switch and the cluster
//! router), each node's `Chassis_Template_Var` row (the endpoints of `Local` node ports), and
//! one health-check source address per subnet that has monitored backends (an IPAM lease owned
//! by `health-check/<subnet>`, released when no Service needs it; after a restart it is taken
//! back from the load balancers' `ip_port_mappings`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use ovn_model::nb::{
    ChassisTemplateVar, LoadBalancer, LoadBalancerGroup, LoadBalancerHealthCheck, LogicalRouter,
    LogicalSwitch,
};
use ovn_model::owner::{Component, Scope};
use ovn_model::plan::{RowTarget, Target};
use ovn_model::reconcile::{self, Resolved};
use ovn_model::snapshot::Typed;
use ovsdb::{Datum, Mutation, Table, Uuid};

use super::{ControllerState, StepOutput, Store, SwitchTargets, WatchEvent, warning};
use crate::controller::services::{self as svc, LocalPort};
use crate::controller::source::{Kind, ObjectEvent, ObjectRef};
use crate::controller::topology;

/// The label an EndpointSlice names its Service with.
pub(crate) const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Services, their EndpointSlices, and the Services to reconcile next.
#[derive(Debug, Default)]
pub(crate) struct ServicesState {
    /// Services by `namespace/name`.
    pub(crate) services: Store<Service>,
    /// EndpointSlices by `namespace/name`.
    pub(crate) slices: Store<EndpointSlice>,
    /// Services (`namespace/name`) to reconcile.
    dirty: BTreeSet<String>,
    /// The Service (`namespace/name`) of each EndpointSlice that names one.
    slice_service: BTreeMap<String, String>,
    /// The EndpointSlices of each Service.
    by_service: BTreeMap<String, BTreeSet<String>>,
    /// The subnets whose health-check source address each Service uses.
    checked_subnets: BTreeMap<String, BTreeSet<String>>,
    /// The `Local` node ports of each Service.
    local_ports: BTreeMap<String, Vec<LocalPort>>,
    /// The Service holding each node port (protocol and number), and the node ports of each.
    node_ports: BTreeMap<(svc::Proto, u16), String>,
    claims: BTreeMap<String, BTreeSet<(svc::Proto, u16)>>,
    /// The Services refused each node port, planned again when it is given up.
    waiting: BTreeMap<(svc::Proto, u16), BTreeSet<String>>,
    /// The Services reconciled by the last step (planned again if its plan is refused).
    last: BTreeSet<String>,
    /// Whether the nodes' template variables need reconciling.
    vars_dirty: bool,
    /// Whether every switch's and the router's reference to the group needs checking.
    attach_dirty: bool,
}

/// `namespace/name` of a namespaced object.
pub(crate) fn object_key(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<String> {
    Some(format!(
        "{}/{}",
        meta.namespace.as_deref()?,
        meta.name.as_deref()?
    ))
}

/// The Service (`namespace/name`) an EndpointSlice belongs to.
pub(crate) fn slice_service(slice: &EndpointSlice) -> Option<String> {
    let ns = slice.metadata.namespace.as_deref()?;
    let name = slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    Some(format!("{ns}/{name}"))
}

/// The IPAM owner of a subnet's health-check source address.
fn check_owner(subnet: &str) -> String {
    format!("health-check/{subnet}")
}

impl ServicesState {
    /// Whether both kinds delivered their first listing.
    pub(crate) fn listed(&self) -> bool {
        self.services.listed && self.slices.listed
    }

    /// Whether some Service waits to be reconciled.
    pub(crate) fn is_dirty(&self) -> bool {
        !self.dirty.is_empty() || self.vars_dirty || self.attach_dirty
    }

    /// Applies a Service event; the Services (`namespace/name`) that changed.
    pub(crate) fn service_event(&mut self, event: WatchEvent<Service>) -> Vec<String> {
        let changed = self
            .services
            .apply(event, |s| Some((object_key(&s.metadata)?, s.clone())));
        self.dirty.extend(changed.iter().cloned());
        changed
    }

    /// Applies an EndpointSlice event; the Services (`namespace/name`) whose endpoints changed.
    pub(crate) fn endpoint_slice_event(&mut self, event: WatchEvent<EndpointSlice>) -> Vec<String> {
        let changed = self
            .slices
            .apply(event, |s| Some((object_key(&s.metadata)?, s.clone())));
        let mut services = BTreeSet::new();
        for k in &changed {
            if let Some(old) = self.slice_service.remove(k) {
                if let Some(set) = self.by_service.get_mut(&old) {
                    set.remove(k);
                    if set.is_empty() {
                        self.by_service.remove(&old);
                    }
                }
                services.insert(old);
            }
            if let Some(s) = self.slices.objects.get(k).and_then(slice_service) {
                self.slice_service.insert(k.clone(), s.clone());
                self.by_service
                    .entry(s.clone())
                    .or_default()
                    .insert(k.clone());
                services.insert(s);
            }
        }
        self.dirty.extend(services.iter().cloned());
        services.into_iter().collect()
    }

    /// Nodes changed (node ports are per node).
    pub(crate) fn nodes_changed(&mut self, nodes: &[String]) {
        self.vars_dirty |= !nodes.is_empty();
    }

    /// Marks every Service for reconciling, and those the last step reconciled (a deleted
    /// Service whose rows did not go yet).
    pub(crate) fn requeue(&mut self) {
        self.dirty.extend(self.services.objects.keys().cloned());
        self.dirty.extend(std::mem::take(&mut self.last));
        self.vars_dirty = true;
        self.attach_dirty = true;
    }
}

/// `ns/name` split.
fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("default", key))
}

impl ControllerState {
    /// Takes what OVN holds for Services into account after a restart or a takeover: every
    /// Service with load balancers is reconciled (so those of deleted Services go), and the
    /// health-check source addresses the load balancers use are leased again.
    pub(super) fn restore_services(&mut self, nb: &Typed<'_>) -> Vec<ObjectEvent> {
        let mut sources: BTreeMap<String, IpAddr> = BTreeMap::new();
        for lb in nb.owned::<LoadBalancer>(&Scope::component(Component::SERVICES)) {
            if lb.key.object.kind() == "service" {
                self.services.dirty.insert(lb.key.object.name().to_owned());
            }
            let mappings = lb.row.as_ref().and_then(|r| r.get("ip_port_mappings"));
            let Some(map) = mappings.and_then(Datum::as_map) else {
                continue;
            };
            for (_, value) in map.as_slice() {
                let src = value
                    .as_str()
                    .and_then(|v| v.rsplit_once(':'))
                    .and_then(|(_, ip)| ip.parse::<IpAddr>().ok());
                if let Some(src) = src
                    && let Some(subnet) = self.subnet_of(src)
                {
                    sources.entry(subnet).or_insert(src);
                }
            }
        }
        let records = sources.into_iter().map(|(subnet, ip)| ipam::ObservedLease {
            owner: check_owner(&subnet),
            subnet: Some(subnet),
            addresses: vec![ip],
            mac: None,
        });
        let report = self.ipam.restore(records);
        let events = report
            .issues
            .iter()
            .filter(|i| !i.restored())
            .map(|i| {
                let subnet = i.owner().trim_start_matches("health-check/");
                warning(
                    ObjectRef::cluster(Kind::Namespace, subnet),
                    "RestoreConflict",
                    format!("restoring the health-check source address of subnet {subnet}: {i}"),
                )
            })
            .collect();
        self.services.requeue();
        events
    }

    /// The subnet whose CIDRs hold `ip`.
    fn subnet_of(&self, ip: IpAddr) -> Option<String> {
        self.subnets
            .by_name
            .values()
            .find(|s| s.cidr_for(ip).is_some())
            .map(|s| s.name.clone())
    }

    /// Reconciles the dirty Services, the group and its references, and the nodes' template
    /// variables.
    pub(super) fn plan_services(
        &mut self,
        nb: &Typed<'_>,
        switches: &SwitchTargets<'_>,
        out: &mut StepOutput,
    ) {
        let cluster_planned = switches
            .resolved
            .target(LogicalRouter::TABLE, &topology::router_key())
            .is_some();
        if !self.services.is_dirty() && !cluster_planned {
            return;
        }
        let mut group = Group::find(nb);
        if group.target.is_none() {
            let row = LoadBalancerGroup {
                name: svc::GROUP.to_owned(),
                ..LoadBalancerGroup::default()
            };
            match out.plan.insert_if_absent(nb, &row) {
                Ok(r) => group.target = Some(RowTarget::from_id(r.id())),
                Err(e) => {
                    out.problems
                        .push(format!("the Services' load balancer group: {e}"));
                    return;
                }
            }
        }
        let fresh = matches!(group.target, Some(RowTarget::Named(_)));
        if fresh || cluster_planned || self.services.attach_dirty {
            self.attach_group(nb, switches, &group, out);
            self.services.attach_dirty = false;
        }
        // A Service that gives up a node port wakes those refused it: planned in the same
        // step when they come after it, in the next one otherwise.
        let mut planned = BTreeSet::new();
        let mut later = BTreeSet::new();
        while let Some(key) = self.services.dirty.pop_first() {
            if planned.contains(&key) {
                later.insert(key);
                continue;
            }
            self.plan_service(&key, nb, &mut group, out);
            planned.insert(key);
        }
        self.services.dirty = later;
        self.services.last = planned;
        self.release_check_sources();
        if std::mem::take(&mut self.services.vars_dirty) {
            self.plan_template_vars(nb, out);
        }
    }

    /// Adds the group to every switch and the router that lacks it.
    fn attach_group(
        &self,
        nb: &Typed<'_>,
        switches: &SwitchTargets<'_>,
        group: &Group,
        out: &mut StepOutput,
    ) {
        let Some(atom) = group.target.as_ref().and_then(RowTarget::to_atom) else {
            return;
        };
        let has = |have: Vec<Uuid>| group.uuid.is_some_and(|g| have.contains(&g));
        let add = Mutation::insert("load_balancer_group", Datum::set([atom]));
        let mut names: Vec<&str> = vec![self.config.join().0];
        names.extend(self.subnets.by_name.keys().map(String::as_str));
        for name in names {
            let target = switches.get(name);
            let present = match &target {
                Target::Ref(r) => match r.uuid() {
                    Some(u) => nb.get::<LogicalSwitch>(u).map(|s| {
                        has(s
                            .load_balancer_group
                            .iter()
                            .filter_map(|g| g.uuid())
                            .collect())
                    }),
                    None => Some(false),
                },
                Target::Name(_) => None,
            };
            if present == Some(false)
                && let Err(e) = out.plan.because(
                    format!("switch {name} applies the Services' load balancers"),
                    |p| p.mutate::<LogicalSwitch>(target, add.clone()),
                )
            {
                out.problems.push(format!("switch {name}: {e}"));
            }
        }
        let router = match switches
            .resolved
            .target(LogicalRouter::TABLE, &topology::router_key())
            .and_then(RowTarget::to_ref)
        {
            Some(r) => Some(r),
            None => nb
                .uuid_by_name::<LogicalRouter>(&self.config.router)
                .map(ovsdb::table::Ref::new),
        };
        if let Some(r) = router {
            let present = match r.uuid() {
                Some(u) => nb.get::<LogicalRouter>(u).map(|l| {
                    has(l
                        .load_balancer_group
                        .iter()
                        .filter_map(|g| g.uuid())
                        .collect())
                }),
                None => Some(false),
            };
            if present == Some(false)
                && let Err(e) = out.plan.because(
                    format!(
                        "router {} applies the Services' load balancers",
                        self.config.router
                    ),
                    |p| p.mutate::<LogicalRouter>(r, add.clone()),
                )
            {
                out.problems.push(format!("router: {e}"));
            }
        }
    }

    /// One Service's load balancers and health checks, or their removal.
    fn plan_service(&mut self, key: &str, nb: &Typed<'_>, group: &mut Group, out: &mut StepOutput) {
        let (ns, name) = split_key(key);
        let scope = Scope::object(Component::SERVICES, svc::service_object(ns, name));
        let settings = svc::Settings {
            node_port_vip: self.config.node_port_vip,
            health_checks: self.config.service_health_checks,
        };
        let service = self.services.services.objects.get(key);
        let object = {
            let o = ObjectRef::namespaced(Kind::Service, ns, name);
            match service.and_then(|s| s.metadata.uid.clone()) {
                Some(uid) => o.with_uid(uid),
                None => o,
            }
        };
        let mut planned = match service {
            None => svc::Planned::default(),
            Some(s) => {
                let slices: Vec<&EndpointSlice> = self
                    .services
                    .by_service
                    .get(key)
                    .into_iter()
                    .flatten()
                    .filter_map(|k| self.services.slices.objects.get(k))
                    .collect();
                let held = &self.services.node_ports;
                let services = &self.services.services.objects;
                let taken = |proto, port| {
                    held.get(&(proto, port))
                        .filter(|o| o.as_str() != key && services.contains_key(o.as_str()))
                        .cloned()
                };
                svc::plan(s, &slices, &settings, &taken)
            }
        };
        self.claim_node_ports(key, &planned);
        // Health-check source addresses, one per subnet of a monitored backend.
        let mut sources: BTreeMap<IpAddr, IpAddr> = BTreeMap::new();
        let mut subnets = BTreeSet::new();
        let monitored: BTreeSet<IpAddr> = planned
            .lbs
            .iter()
            .filter(|l| !l.health_vips.is_empty())
            .flat_map(|l| l.monitored.keys().copied())
            .collect();
        for backend in monitored {
            let Some(subnet) = self.subnet_of(backend) else {
                continue;
            };
            match self.check_source(&subnet) {
                Ok(src) => {
                    sources.insert(backend, src);
                    subnets.insert(subnet);
                }
                Err(e) => planned
                    .problems
                    .push(format!("health checks of backend {backend}: {e}")),
            }
        }
        let owned_lbs = nb.owned::<LoadBalancer>(&scope);
        let owned_checks = nb.owned::<LoadBalancerHealthCheck>(&scope);
        let result = svc::lb_wants(ns, name, &planned.lbs, settings.node_port_vip, &|b| {
            sources.get(&b).copied()
        })
        .and_then(|wants| reconcile::diff(&mut out.plan, wants, owned_lbs))
        .and_then(|resolved| {
            let checks = svc::health_wants(
                ns,
                name,
                &planned.lbs,
                &resolved,
                planned.health.unwrap_or_default(),
            )?;
            reconcile::diff(&mut out.plan, checks, owned_checks)?;
            Ok(resolved)
        });
        match result {
            Ok(resolved) => {
                for lb in &planned.lbs {
                    let lb_key = svc::lb_key(ns, name, lb);
                    self.join_group(&resolved, &lb_key, group, out);
                }
            }
            Err(e) => out
                .events
                .push(warning(object.clone(), "PlanFailed", e.to_string())),
        }
        if !planned.problems.is_empty() {
            out.events.push(warning(
                object.clone(),
                "BadService",
                format!("{object}: {}", planned.problems.join("; ")),
            ));
        }
        if subnets.is_empty() {
            self.services.checked_subnets.remove(key);
        } else {
            self.services
                .checked_subnets
                .insert(key.to_owned(), subnets);
        }
        let before = self.services.local_ports.get(key);
        if before.map_or(!planned.local_ports.is_empty(), |b| {
            *b != planned.local_ports
        }) {
            self.services.vars_dirty = true;
        }
        if planned.local_ports.is_empty() {
            self.services.local_ports.remove(key);
        } else {
            self.services
                .local_ports
                .insert(key.to_owned(), planned.local_ports);
        }
    }

    /// Records the node ports `key` holds now and those it was refused; Services waiting for
    /// a port it gave up are planned again.
    fn claim_node_ports(&mut self, key: &str, planned: &svc::Planned) {
        let st = &mut self.services;
        let now: BTreeSet<(svc::Proto, u16)> = planned
            .lbs
            .iter()
            .flat_map(|l| l.node_ports.iter().map(move |p| (l.proto, *p)))
            .collect();
        let before = st.claims.remove(key).unwrap_or_default();
        for port in before.difference(&now) {
            if st.node_ports.get(port).map(String::as_str) == Some(key) {
                st.node_ports.remove(port);
                let woken = st.waiting.remove(port).unwrap_or_default();
                st.dirty.extend(woken.into_iter().filter(|w| w != key));
            }
        }
        for port in &now {
            st.node_ports.insert(*port, key.to_owned());
        }
        if !now.is_empty() {
            st.claims.insert(key.to_owned(), now);
        }
        for set in st.waiting.values_mut() {
            set.remove(key);
        }
        for port in &planned.refused {
            st.waiting.entry(*port).or_default().insert(key.to_owned());
        }
        st.waiting.retain(|_, s| !s.is_empty());
    }

    /// Puts the load balancer `key` placed in the group unless it is there.
    fn join_group(
        &self,
        resolved: &Resolved,
        key: &ovn_model::owner::Key,
        group: &mut Group,
        out: &mut StepOutput,
    ) {
        let (Some(lb), Some(target)) = (
            resolved.target(LoadBalancer::TABLE, key),
            group.target.clone(),
        ) else {
            return;
        };
        if let RowTarget::Uuid(u) = lb
            && group.holds(*u)
        {
            return;
        }
        let Some(atom) = lb.to_atom() else {
            return;
        };
        let m = Mutation::insert("load_balancer", Datum::set([atom]));
        let target: Target<LoadBalancerGroup> = match target.to_ref() {
            Some(r) => Target::Ref(r),
            None => return,
        };
        if let Err(e) = out
            .plan
            .because(format!("{key}: in the Services' group"), |p| {
                p.mutate::<LoadBalancerGroup>(target, m)
            })
        {
            out.problems
                .push(format!("the Services' load balancer group: {e}"));
        }
    }

    /// The health-check source address of `subnet` (leased on first use).
    fn check_source(&mut self, subnet: &str) -> Result<IpAddr, String> {
        let owner = check_owner(subnet);
        let lease = match self.ipam.lease(&owner) {
            Some(l) => l,
            None => self
                .ipam
                .allocate(&ipam::Request::new(subnet, &owner))
                .map_err(|e| format!("no source address in subnet {subnet}: {e}"))?,
        };
        lease
            .addresses()
            .find(IpAddr::is_ipv4)
            .ok_or_else(|| format!("subnet {subnet} has no IPv4 address to probe from"))
    }

    /// Gives back the health-check addresses no Service uses, once every Service was planned.
    fn release_check_sources(&mut self) {
        if !self.services.dirty.is_empty() {
            return;
        }
        let used: BTreeSet<&String> = self.services.checked_subnets.values().flatten().collect();
        let unused: Vec<String> = self
            .ipam
            .subnet_names()
            .filter(|s| !used.contains(&(*s).to_owned()))
            .map(check_owner)
            .collect();
        for owner in unused {
            if self.ipam.lease(&owner).is_some() {
                self.ipam.release(&owner);
            }
        }
    }

    /// Every node's template variables.
    fn plan_template_vars(&mut self, nb: &Typed<'_>, out: &mut StepOutput) {
        let ports: Vec<&LocalPort> = self.services.local_ports.values().flatten().collect();
        let mut wants = Vec::new();
        for n in self.nodes.objects.values() {
            match svc::template_vars(
                &n.name,
                &n.chassis,
                self.config.node_port_vip,
                ports.iter().copied(),
            ) {
                Ok(w) => wants.push(w),
                Err(e) => out
                    .events
                    .push(warning(n.object(), "PlanFailed", e.to_string())),
            }
        }
        let owned = nb.owned::<ChassisTemplateVar>(&Scope::component(Component::SERVICES));
        if let Err(e) = reconcile::diff(&mut out.plan, wants, owned) {
            out.problems
                .push(format!("the nodes' node-port template variables: {e}"));
        }
    }
}

/// The Services' load balancer group as this step sees it.
struct Group {
    /// Where it is: in the snapshot, or inserted by this step.
    target: Option<RowTarget>,
    /// Its UUID in the snapshot.
    uuid: Option<Uuid>,
    /// The load balancers it holds in the snapshot.
    members: Option<BTreeSet<Uuid>>,
}

impl Group {
    fn find(nb: &Typed<'_>) -> Self {
        match nb.by_name::<LoadBalancerGroup>(svc::GROUP) {
            Some(g) => Group {
                target: Some(RowTarget::Uuid(g.uuid)),
                uuid: Some(g.uuid),
                members: Some(g.load_balancer.iter().filter_map(|l| l.uuid()).collect()),
            },
            None => Group {
                target: None,
                uuid: None,
                members: None,
            },
        }
    }

    fn holds(&self, lb: Uuid) -> bool {
        self.members.as_ref().is_some_and(|m| m.contains(&lb))
    }
}
