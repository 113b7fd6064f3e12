//! The controller's state and its reconcile step: the objects as last seen, the subnets they
//! make, the IPAM, and what changed since the last step. Pure: a step takes a typed snapshot of
//! the NB and returns one plan (one transaction), the annotations to write back and the events
//! to report; the caller sends the plan and writes the results only once it committed.
//!
//! Each object's rows are reconciled in that object's owner scope (`pod/<ns>/<name>`,
//! `node/<name>`, `subnet/<name>`, `cluster`), found through the owner-tag index, so a step
//! costs what its dirty objects cost, not what the cluster holds. The gateway planner works on
//! the whole cluster (its rows are a few per subnet and node).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use gateway::{EgressIntent, GatewayType, NodeState};
use ipam::Ipam;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use ovn_model::nb::{self, LogicalRouter, LogicalSwitch};
use ovn_model::owner::{Component, Object, Scope};
use ovn_model::plan::{Plan, RowTarget, Target};
use ovn_model::reconcile::{self, OwnedRow, Resolved};
use ovn_model::snapshot::Typed;
use ovsdb::Table;

use super::annotations as ann;
use super::config::ControllerConfig;
use super::nodes::NodeView;
use super::pods::{self, PodView};
use super::source::{EventType, Kind, ObjectEvent, ObjectRef, WatchEvent};
use super::subnets::{self, Subnet, Subnets};
use super::topology::{self, PortData};

/// What one step produced.
#[derive(Debug)]
pub struct StepOutput {
    /// The changes, one transaction.
    pub plan: Plan,
    /// Annotations to write back once the plan committed.
    pub annotations: Vec<(ObjectRef, BTreeMap<String, Option<String>>)>,
    /// Objects that no longer exist, whose written-back results can go.
    pub forget: Vec<ObjectRef>,
    /// Problems of no one object (the cluster topology or egress could not be planned): for
    /// the log.
    pub problems: Vec<String>,
    /// Events to report.
    pub events: Vec<ObjectEvent>,
    /// Objects that could not be handled (no address yet, say): step again later.
    pub retry: bool,
    /// More dirty objects than one step takes: step again now.
    pub more: bool,
    /// How long each part of the step that had work took, by the kind it reconciles
    /// (`cluster`, `node`, `pod`, `gateway`, `service`, `networkpolicy`, `dns`), as measured
    /// by the clock given to [`ControllerState::step_clocked`] (empty from
    /// [`ControllerState::step`]).
    pub durations: Vec<(&'static str, Duration)>,
}

impl StepOutput {
    /// An output with events only (nothing to write).
    #[must_use]
    pub fn events_only(events: Vec<ObjectEvent>) -> Self {
        StepOutput {
            plan: Plan::nb(),
            annotations: Vec::new(),
            forget: Vec::new(),
            problems: Vec::new(),
            events,
            retry: false,
            more: false,
            durations: Vec::new(),
        }
    }
}

/// Objects to reconcile in the next step.
#[derive(Debug, Default, Clone)]
struct Dirty {
    cluster: bool,
    gateway: bool,
    nodes: BTreeSet<String>,
    pods: BTreeSet<String>,
}

/// One kind's objects, and the listing being received.
#[derive(Debug)]
pub(crate) struct Store<V> {
    pub(crate) objects: BTreeMap<String, V>,
    listing: Option<BTreeMap<String, V>>,
    pub(crate) listed: bool,
}

impl<V> Default for Store<V> {
    fn default() -> Self {
        Store {
            objects: BTreeMap::new(),
            listing: None,
            listed: false,
        }
    }
}

impl<V: PartialEq> Store<V> {
    /// Applies a watch event; returns the keys whose object changed.
    fn apply<K>(
        &mut self,
        event: WatchEvent<K>,
        view: impl Fn(&K) -> Option<(String, V)>,
    ) -> Vec<String> {
        match event {
            WatchEvent::Init => {
                self.listing = Some(BTreeMap::new());
                Vec::new()
            }
            WatchEvent::InitApply(o) => {
                if let (Some(l), Some((k, v))) = (self.listing.as_mut(), view(&o)) {
                    l.insert(k, v);
                }
                Vec::new()
            }
            WatchEvent::InitDone => {
                self.listed = true;
                let new = self.listing.take().unwrap_or_default();
                let mut changed: Vec<String> = self
                    .objects
                    .keys()
                    .filter(|k| !new.contains_key(*k))
                    .cloned()
                    .collect();
                changed.extend(
                    new.iter()
                        .filter(|(k, v)| self.objects.get(*k) != Some(v))
                        .map(|(k, _)| k.clone()),
                );
                self.objects = new;
                changed
            }
            WatchEvent::Apply(o) => match view(&o) {
                Some((k, v)) if self.objects.get(&k) != Some(&v) => {
                    self.objects.insert(k.clone(), v);
                    vec![k]
                }
                _ => Vec::new(),
            },
            WatchEvent::Delete(o) => match view(&o) {
                Some((k, _)) if self.objects.remove(&k).is_some() => vec![k],
                _ => Vec::new(),
            },
        }
    }
}

/// The controller's state.
#[derive(Debug)]
pub struct ControllerState {
    config: ControllerConfig,
    ipam: Ipam,
    namespaces: Store<BTreeMap<String, String>>,
    pods: Store<PodView>,
    nodes: Store<NodeView>,
    subnets: Subnets,
    /// Objects with rows in OVN (from the restore scan, then from what the steps wrote).
    known_subnets: BTreeSet<String>,
    dirty: Dirty,
    /// Objects that could not be handled yet (no subnet, no address): tried again by
    /// [`ControllerState::retry_failed`].
    failed: Dirty,
    /// The last message reported per object, so an unchanged problem is reported once.
    reported: BTreeMap<ObjectRef, String>,
    /// Services and EndpointSlices, and the load balancers they make.
    services: services::ServicesState,
    /// NetworkPolicies, and the port groups, address sets and ACLs they make.
    policies: policies::PoliciesState,
    /// The DNS records of Services.
    dns: dns::DnsState,
}

impl ControllerState {
    /// A state with no object yet.
    ///
    /// # Errors
    /// A message naming the setting that is unusable.
    pub fn new(config: ControllerConfig) -> Result<Self, String> {
        config.validate()?;
        let (subnets, _) = subnets::compute(&config, &BTreeMap::new(), &Subnets::default());
        let mut state = ControllerState {
            ipam: Ipam::new(0x6f76_6e6b_6974),
            config,
            namespaces: Store::default(),
            pods: Store::default(),
            nodes: Store::default(),
            subnets,
            known_subnets: BTreeSet::new(),
            dirty: Dirty::default(),
            failed: Dirty::default(),
            reported: BTreeMap::new(),
            services: services::ServicesState::default(),
            policies: policies::PoliciesState::default(),
            dns: dns::DnsState::default(),
        };
        // No namespace yet: only the default subnet, which the configuration check covers.
        let _ = state.reset_ipam();
        Ok(state)
    }

    /// A fresh IPAM with the join subnet and the current subnets; the subnets it refused.
    fn reset_ipam(&mut self) -> Vec<ObjectEvent> {
        self.ipam = Ipam::new(0x6f76_6e6b_6974);
        let cluster = self.config.cluster(std::iter::empty());
        // The configuration was validated: the join subnet fits.
        let _ = gateway::join::add_join_subnet(&mut self.ipam, &cluster);
        let mut events = Vec::new();
        for s in self.subnets.by_name.values() {
            if let Err(e) = self.ipam.add_subnet(s.ipam_config()) {
                events.push(self.subnet_event(s, format!("subnet {}: {e}", s.name)));
            }
        }
        events
    }

    /// Whether every kind has delivered its first listing.
    #[must_use]
    pub fn listed(&self) -> bool {
        self.namespaces.listed
            && self.pods.listed
            && self.nodes.listed
            && self.services.listed()
            && self.policies.listed()
    }

    /// Whether a step has work to do.
    #[must_use]
    pub fn is_dirty(&self) -> bool {
        let d = &self.dirty;
        d.cluster
            || d.gateway
            || !d.nodes.is_empty()
            || !d.pods.is_empty()
            || self.services.is_dirty()
            || self.policies.is_dirty()
            || self.dns.is_dirty()
    }

    /// The IPAM (for figures and tests).
    #[must_use]
    pub fn ipam(&self) -> &Ipam {
        &self.ipam
    }

    /// A namespace event.
    pub fn namespace_event(&mut self, event: WatchEvent<Namespace>) {
        self.policies.namespace_event(event.clone());
        let changed = self.namespaces.apply(event, |n| {
            Some((
                n.metadata.name.clone()?,
                n.metadata.annotations.clone().unwrap_or_default(),
            ))
        });
        if !changed.is_empty() {
            self.dirty.cluster = true;
        }
    }

    /// A pod event.
    pub fn pod_event(&mut self, event: WatchEvent<Pod>) {
        let changed = self.pods.apply(event, |p| {
            let v = PodView::of(p)?;
            Some((v.owner(), v))
        });
        self.policies.pods_changed(&changed);
        self.dirty.pods.extend(changed);
    }

    /// A node event.
    pub fn node_event(&mut self, event: WatchEvent<Node>) {
        let changed = self.nodes.apply(event, |n| {
            let v = NodeView::of(n)?;
            Some((v.name.clone(), v))
        });
        if !changed.is_empty() {
            self.dirty.gateway = true;
            self.services.nodes_changed(&changed);
        }
        self.dirty.nodes.extend(changed);
    }

    /// A Service event.
    pub fn service_event(&mut self, event: WatchEvent<Service>) {
        let changed = self.services.service_event(event);
        self.dns.services_changed(&changed);
    }

    /// An EndpointSlice event.
    pub fn endpoint_slice_event(&mut self, event: WatchEvent<EndpointSlice>) {
        let changed = self.services.endpoint_slice_event(event);
        // Only a headless Service's records hold its endpoints.
        let headless: Vec<String> = changed
            .into_iter()
            .filter(|key| {
                self.services
                    .services
                    .objects
                    .get(key)
                    .is_some_and(crate::controller::dns::is_headless)
            })
            .collect();
        self.dns.services_changed(&headless);
    }

    /// A NetworkPolicy event.
    pub fn network_policy_event(&mut self, event: WatchEvent<NetworkPolicy>) {
        self.policies.policy_event(event);
    }

    /// Rebuilds the IPAM from what OVN holds (the ports the controller wrote, with their
    /// addresses) and what the objects say (pods' written-back annotations), marks every object
    /// dirty, and marks the objects that have rows in OVN but no longer exist for deletion.
    /// Called whenever this controller starts writing (after a restart, or on taking the lock
    /// from another).
    pub fn restore(&mut self, nb: &Typed<'_>) -> Vec<ObjectEvent> {
        let mut events = self.recompute_subnets();
        events.extend(self.reset_ipam());
        let scope = Scope::component(Component::TOPOLOGY);
        let ports = nb.owned::<nb::LogicalSwitchPort>(&scope);
        let mut records = Vec::new();
        let mut in_ovn: BTreeSet<String> = BTreeSet::new();
        let mut nodes_in_ovn = BTreeSet::new();
        for p in &ports {
            let (kind, name) = (p.key.object.kind(), p.key.object.name());
            let owner = match kind {
                "pod" => {
                    in_ovn.insert(name.to_owned());
                    name.to_owned()
                }
                "node" => {
                    nodes_in_ovn.insert(name.to_owned());
                    gateway::join::owner(name)
                }
                _ => continue,
            };
            if let Some(r) = lease_record(p, owner) {
                records.push(r);
            }
        }
        for s in nb.owned::<LogicalSwitch>(&scope) {
            if s.key.object.kind() == "subnet" {
                self.known_subnets.insert(s.key.object.name().to_owned());
            }
        }
        // Pods whose port is gone but whose annotations say what they had.
        for p in self
            .pods
            .objects
            .values()
            .filter(|p| !in_ovn.contains(&p.owner()))
        {
            if let Some(r) = annotated_lease(p) {
                records.push(r);
            }
        }
        let report = self.ipam.restore(records);
        for issue in &report.issues {
            let object = self.owner_object(issue.owner());
            events.push(warning(
                object,
                "RestoreConflict",
                format!("restoring addresses: {issue}"),
            ));
        }
        let qos_scope = Scope::component(Component::QOS);
        for q in nb.owned::<nb::QoS>(&qos_scope) {
            in_ovn.insert(q.key.object.name().to_owned());
        }
        self.dirty.cluster = true;
        self.dirty.gateway = true;
        self.dirty.pods.extend(self.pods.objects.keys().cloned());
        self.dirty.pods.extend(in_ovn);
        self.dirty.nodes.extend(self.nodes.objects.keys().cloned());
        self.dirty.nodes.extend(nodes_in_ovn);
        events.extend(self.restore_services(nb));
        events.extend(self.restore_policies(nb));
        self.dns.requeue();
        events
    }

    /// The subnets the namespaces ask for, with an event per refused namespace.
    fn recompute_subnets(&mut self) -> Vec<ObjectEvent> {
        let (subnets, errors) =
            subnets::compute(&self.config, &self.namespaces.objects, &self.subnets);
        self.subnets = subnets;
        errors
            .into_iter()
            .map(|e| warning(e.object().clone(), "BadAnnotation", e.to_string()))
            .collect()
    }

    /// One reconcile step against `nb` (see the module docs).
    pub fn step(&mut self, nb: &Typed<'_>) -> StepOutput {
        self.step_inner(nb, None)
    }

    /// [`step`](Self::step), timing each part that has work with `clock` (a monotonic
    /// reading, such as the time since the loop started) into [`StepOutput::durations`].
    pub fn step_clocked(
        &mut self,
        nb: &Typed<'_>,
        clock: &mut dyn FnMut() -> Duration,
    ) -> StepOutput {
        self.step_inner(nb, Some(clock))
    }

    fn step_inner(
        &mut self,
        nb: &Typed<'_>,
        clock: Option<&mut dyn FnMut() -> Duration>,
    ) -> StepOutput {
        let mut out = StepOutput::events_only(Vec::new());
        let mut timer = PartTimer::new(clock);
        let mut resolved = Resolved::default();
        let cluster_dirty = std::mem::take(&mut self.dirty.cluster);
        if cluster_dirty {
            let events = self.recompute_subnets();
            out.events.extend(events);
            out.events.extend(self.sync_ipam());
            // Every pod may have moved subnet.
            self.dirty.pods.extend(self.pods.objects.keys().cloned());
            self.dirty.gateway = true;
            match self.plan_cluster(nb, &mut out.plan) {
                Ok(r) => resolved = r,
                Err(e) => out
                    .problems
                    .push(format!("the cluster topology could not be planned: {e}")),
            }
            timer.part("cluster", &mut out);
        }
        let switches = SwitchTargets {
            resolved: &resolved,
            nb,
        };
        let nodes = std::mem::take(&mut self.dirty.nodes);
        if !nodes.is_empty() {
            timer.restart();
            for name in nodes {
                self.plan_node(&name, nb, &switches, &mut out);
            }
            timer.part("node", &mut out);
        }
        // A batch counts the pods whose rows change: after a restart, pods that OVN already
        // holds as asked cost a look each, not a place in the transaction. Looks are bounded
        // too, so that one step never keeps the loop from the sources for long.
        let (mut changed, mut examined) = (0, 0);
        timer.restart();
        while changed < self.config.batch && examined < self.config.batch * EXAMINE_PER_CHANGE {
            let Some(key) = self.dirty.pods.pop_first() else {
                break;
            };
            let steps = out.plan.steps().len();
            if self.plan_pod(&key, nb, &switches, &mut out) {
                self.dirty.gateway = true;
            }
            examined += 1;
            if out.plan.steps().len() > steps {
                changed += 1;
            }
        }
        if examined > 0 {
            timer.part("pod", &mut out);
        }
        out.more = !self.dirty.pods.is_empty();
        if std::mem::take(&mut self.dirty.gateway) {
            timer.restart();
            self.plan_gateway(nb, &mut out);
            timer.part("gateway", &mut out);
        }
        // These three look at their own dirtiness; a part is timed when it had some.
        let parts = [
            cluster_dirty || self.services.is_dirty(),
            self.policies_pending(),
            cluster_dirty || self.dns.is_dirty(),
        ];
        timer.restart();
        self.plan_services(nb, &switches, &mut out);
        if parts[0] {
            timer.part("service", &mut out);
        }
        timer.restart();
        self.plan_policies(nb, &mut out);
        if parts[1] {
            timer.part("networkpolicy", &mut out);
        }
        timer.restart();
        self.plan_dns(nb, &switches, &mut out);
        if parts[2] {
            timer.part("dns", &mut out);
        }
        self.dedupe_events(&mut out.events);
        out
    }

    /// Adds, updates or keeps the IPAM's subnets; a change that would leave leases outside
    /// their subnet is refused (the subnet keeps its old settings) with an event naming them.
    fn sync_ipam(&mut self) -> Vec<ObjectEvent> {
        let mut events = Vec::new();
        let names: Vec<String> = self.subnets.by_name.keys().cloned().collect();
        for name in names {
            let subnet = self.subnets.by_name[&name].clone();
            let cfg = subnet.ipam_config();
            match self.ipam.subnet_config(&name) {
                None => {
                    if let Err(e) = self.ipam.add_subnet(cfg) {
                        events.push(self.subnet_event(&subnet, format!("subnet {name}: {e}")));
                    }
                }
                Some(old) if *old == cfg => {}
                Some(_) => {
                    let mut trial = self.ipam.clone();
                    match trial.update_subnet(cfg) {
                        Ok(issues) if issues.is_empty() => self.ipam = trial,
                        Ok(issues) => {
                            let held: Vec<String> =
                                issues.iter().map(ToString::to_string).collect();
                            events.push(self.subnet_event(
                                &subnet,
                                format!(
                                    "subnet {name} keeps its settings: the change would orphan live leases: {}",
                                    held.join("; ")
                                ),
                            ));
                            self.revert_subnet(&name);
                        }
                        Err(e) => {
                            events.push(self.subnet_event(&subnet, format!("subnet {name}: {e}")));
                            self.revert_subnet(&name);
                        }
                    }
                }
            }
        }
        events
    }

    /// Puts the IPAM's settings of `name` back into the subnet set.
    fn revert_subnet(&mut self, name: &str) {
        let Some(cfg) = self.ipam.subnet_config(name).cloned() else {
            return;
        };
        if let Some(s) = self.subnets.by_name.get_mut(name) {
            s.cidrs = cfg.cidrs().to_vec();
            s.gateways = cfg.gateways().to_vec();
            s.exclude = cfg.exclusions().to_vec();
        }
    }

    fn subnet_event(&self, subnet: &Subnet, message: String) -> ObjectEvent {
        let object = ObjectRef::cluster(
            Kind::Namespace,
            subnet
                .defined_by
                .clone()
                .unwrap_or_else(|| subnet.name.clone()),
        );
        warning(object, "SubnetRefused", message)
    }

    /// The router, the join switch and every subnet's switch, router port and ACLs; switches of
    /// subnets no namespace defines any more go.
    fn plan_cluster(
        &mut self,
        nb: &Typed<'_>,
        plan: &mut Plan,
    ) -> Result<Resolved, ovn_model::plan::PlanError> {
        let (join_name, join_cidr, router_ip) = self.config.join();
        let join = Subnet {
            name: join_name.to_owned(),
            cidrs: vec![join_cidr],
            gateways: vec![router_ip],
            exclude: Vec::new(),
            private: false,
            allow: Vec::new(),
            gateway_type: GatewayType::Distributed,
            gateway_nodes: Vec::new(),
            nat_outgoing: false,
            defined_by: None,
        };
        let subnets: Vec<Subnet> = std::iter::once(join)
            .chain(self.subnets.by_name.values().cloned())
            .collect();
        let mut objects: BTreeSet<String> = subnets.iter().map(|s| s.name.clone()).collect();
        objects.extend(self.known_subnets.iter().cloned());
        let mut roots = vec![topology::router(&self.config.router)?];
        for s in &subnets {
            roots.push(topology::switch(s)?);
        }
        let scopes: Vec<Scope> =
            std::iter::once(Scope::object(Component::TOPOLOGY, Object::cluster()))
                .chain(
                    objects
                        .iter()
                        .map(|o| Scope::object(Component::TOPOLOGY, Object::subnet(o))),
                )
                .collect();
        let owned_roots = owned_in::<LogicalRouter>(nb, &scopes)
            .into_iter()
            .chain(owned_in::<LogicalSwitch>(nb, &scopes))
            .collect();
        let resolved = reconcile::diff(plan, roots, owned_roots)?;
        let router: Target<LogicalRouter> =
            target(&resolved, LogicalRouter::TABLE, &topology::router_key());
        let mut children = Vec::new();
        for s in &subnets {
            let switch = target(
                &resolved,
                LogicalSwitch::TABLE,
                &topology::switch_key(&s.name),
            );
            children.extend(topology::subnet_children(
                s,
                &router,
                &switch,
                &self.config.router,
                join_cidr,
            )?);
        }
        let owned_children = owned_in::<nb::LogicalRouterPort>(nb, &scopes)
            .into_iter()
            .chain(owned_in::<nb::LogicalSwitchPort>(nb, &scopes))
            .chain(owned_in::<nb::Acl>(nb, &scopes))
            .collect();
        reconcile::diff(plan, children, owned_children)?;
        self.known_subnets = subnets.into_iter().map(|s| s.name).collect();
        Ok(resolved)
    }

    /// A node's join address and port, or their removal.
    fn plan_node(
        &mut self,
        name: &str,
        nb: &Typed<'_>,
        switches: &SwitchTargets<'_>,
        out: &mut StepOutput,
    ) {
        let scope = Scope::object(Component::TOPOLOGY, Object::node(name));
        let owned = nb.owned::<nb::LogicalSwitchPort>(&scope);
        let (join_name, join_cidr, router_ip) = self.config.join();
        let mut wants = Vec::new();
        match self.nodes.objects.get(name).cloned() {
            None => {
                gateway::join::release(&mut self.ipam, name);
                out.forget.push(ObjectRef::cluster(Kind::Node, name));
            }
            Some(node) => match gateway::join::assign(&mut self.ipam, name) {
                Err(e) => {
                    out.retry = true;
                    self.failed.nodes.insert(name.to_owned());
                    out.events
                        .push(warning(node.object(), "NoJoinAddress", e.to_string()));
                }
                Ok(join) => {
                    let mac = ovn_model::MacAddr::from(join.mac.octets());
                    let data = PortData {
                        subnet: join_name.to_owned(),
                        cidrs: vec![join_cidr],
                        gateways: vec![router_ip],
                        mtu: self.config.mtu,
                        qos: None,
                    };
                    let key = topology::key(Object::node(name), "port");
                    let switch = switches.get(join_name);
                    match topology::port(
                        key,
                        &node.port_name(),
                        &switch,
                        mac,
                        &[join.ip],
                        topology::Security::MacOnly,
                        Some(&node.chassis),
                        &data,
                        format!("node {name}'s management port"),
                    ) {
                        Ok(w) => wants.push(w),
                        Err(e) => {
                            out.events
                                .push(warning(node.object(), "PlanFailed", e.to_string()))
                        }
                    }
                    let status = super::nodes::status(
                        &node,
                        join.ip,
                        &mac.to_string(),
                        (join_name, join_cidr, router_ip),
                    );
                    push_status(
                        &mut out.annotations,
                        node.object(),
                        &node.annotations,
                        status,
                    );
                }
            },
        }
        if let Err(e) = reconcile::diff(&mut out.plan, wants, owned) {
            out.events.push(warning(
                ObjectRef::cluster(Kind::Node, name),
                "PlanFailed",
                e.to_string(),
            ));
        }
    }

    /// A pod's lease, port and QoS, or their removal. Returns whether its address or node
    /// changed in a way the gateway planner sees.
    fn plan_pod(
        &mut self,
        key: &str,
        nb: &Typed<'_>,
        switches: &SwitchTargets<'_>,
        out: &mut StepOutput,
    ) -> bool {
        let (ns, name) = key.split_once('/').unwrap_or(("default", key));
        let object = Object::pod(ns, name);
        let scope = Scope::object(Component::TOPOLOGY, object.clone());
        let owned = nb.owned::<nb::LogicalSwitchPort>(&scope);
        let qos_planner = qos::Planner::new(self.config.qos);
        let pod = self
            .pods
            .objects
            .get(key)
            .cloned()
            .filter(PodView::wants_network);
        let Some(pod) = pod else {
            let had = self.ipam.release(key).is_some();
            let gone = ObjectRef::namespaced(Kind::Pod, ns, name);
            let target =
                qos::PodTarget::new(qos::PodId::new(ns, name), "", format!("{ns}.{name}"), "");
            let observed = qos::NbObserved::from_snapshot(nb, &target);
            let removed = match reconcile::diff(&mut out.plan, Vec::new(), owned) {
                Err(e) => Err(e.to_string()),
                Ok(_) => qos_planner
                    .plan_nb(&target, &qos::QosIntent::none(), &observed)
                    .map_err(|e| e.to_string())
                    .and_then(|p| out.plan.merge(p).map_err(|e| e.to_string())),
            };
            if let Err(e) = removed {
                out.events.push(warning(gone.clone(), "PlanFailed", e));
            }
            if !self.pods.objects.contains_key(key) {
                out.forget.push(gone);
            }
            return had;
        };
        let request = match pods::request(&pod) {
            Ok(r) => r,
            Err(e) => {
                out.events
                    .push(warning(pod.object(), "BadAnnotation", e.to_string()));
                return false;
            }
        };
        let subnet_name = request.subnet.clone().unwrap_or_else(|| {
            self.subnets
                .for_namespace(ns, &self.config.default_subnet)
                .to_owned()
        });
        let Some(subnet) = self.subnets.by_name.get(&subnet_name).cloned() else {
            out.retry = true;
            self.failed.pods.insert(key.to_owned());
            out.events.push(warning(
                pod.object(),
                "NoSubnet",
                format!("{}: subnet {subnet_name:?} does not exist", pod.object()),
            ));
            return false;
        };
        let before = self.ipam.lease(key);
        let lease = match pods::lease(&mut self.ipam, &pod, &request, &subnet) {
            Ok(l) => l,
            Err(e) => {
                out.retry = true;
                self.failed.pods.insert(key.to_owned());
                out.events
                    .push(warning(pod.object(), "AddressUnavailable", e.to_string()));
                return false;
            }
        };
        let ips: Vec<IpAddr> = lease.addresses().collect();
        let qos_json = (!request.qos_annotations.is_empty())
            .then(|| serde_json::to_string(&request.qos_annotations).unwrap_or_default());
        let data = PortData {
            subnet: subnet.name.clone(),
            cidrs: ips.iter().filter_map(|ip| subnet.cidr_for(*ip)).collect(),
            gateways: ips
                .iter()
                .filter_map(|ip| subnet.gateway_for(*ip))
                .collect(),
            mtu: self.config.mtu,
            qos: qos_json,
        };
        let chassis = pod.node.as_ref().map(|n| {
            self.nodes
                .objects
                .get(n)
                .map_or(n.clone(), |v| v.chassis.clone())
        });
        let switch = switches.get(&subnet.name);
        let mac = ovn_model::MacAddr::from(lease.mac.octets());
        let port_key = topology::key(object, "port");
        let want = topology::port(
            port_key.clone(),
            &pod.port_name(),
            &switch,
            mac,
            &ips,
            topology::Security::MacAndIps,
            chassis.as_deref(),
            &data,
            format!("pod {key}"),
        );
        let steps = out.plan.steps().len();
        match want.and_then(|w| reconcile::diff(&mut out.plan, vec![w], owned)) {
            // Policies put a new or changed port in their port groups in this transaction.
            Ok(r) if out.plan.steps().len() > steps => self.policies.pod_port(
                key,
                r.target(nb::LogicalSwitchPort::TABLE, &port_key).cloned(),
            ),
            Ok(_) => {}
            Err(e) => {
                out.events
                    .push(warning(pod.object(), "PlanFailed", e.to_string()));
                return false;
            }
        }
        let target = qos::PodTarget::new(
            qos::PodId::new(ns, name),
            subnet.name.clone(),
            pod.port_name(),
            "",
        );
        let observed = qos::NbObserved::from_snapshot(nb, &target);
        match qos_planner.plan_nb(&target, &request.qos, &observed) {
            Ok(p) => {
                if let Err(e) = out.plan.merge(p) {
                    out.events
                        .push(warning(pod.object(), "PlanFailed", e.to_string()));
                }
            }
            Err(e) => out
                .events
                .push(warning(pod.object(), "BadQoS", e.to_string())),
        }
        push_status(
            &mut out.annotations,
            pod.object(),
            &pod.annotations,
            pods::status(&lease, &subnet),
        );
        before != Some(lease) || pod.node.is_some()
    }

    /// Egress for every subnet, through the gateway planner.
    fn plan_gateway(&mut self, nb: &Typed<'_>, out: &mut StepOutput) {
        let nodes: Vec<NodeState> = self
            .nodes
            .objects
            .values()
            .map(|n| {
                let s = NodeState::new(n.name.clone(), n.chassis.clone()).with_health(n.ready);
                match self
                    .ipam
                    .lease(&gateway::join::owner(&n.name))
                    .and_then(|l| l.addresses().next())
                {
                    Some(ip) => s.with_join_ip(ip),
                    None => s,
                }
            })
            .collect();
        let mut intents = Vec::new();
        for s in self.subnets.by_name.values() {
            let cidr = s.cidrs[0];
            let mut i = match s.gateway_type {
                GatewayType::Centralized => {
                    EgressIntent::centralized(s.name.clone(), cidr, s.gateway_nodes.clone())
                }
                GatewayType::OvnNative => EgressIntent::ovn_native(s.name.clone(), cidr),
                _ => EgressIntent::distributed(s.name.clone(), cidr),
            };
            i = i.with_nat_outgoing(s.nat_outgoing);
            for p in self.pods.objects.values().filter(|p| p.wants_network()) {
                let Some(lease) = self.ipam.lease(&p.owner()) else {
                    continue;
                };
                if self.ipam.lease_subnet(&p.owner()) != Some(s.name.as_str()) {
                    continue;
                }
                let Some(ip) = lease.addresses().find(|a| cidr.contains(a)) else {
                    continue;
                };
                if s.gateway_type == GatewayType::Distributed
                    && let Some(node) = &p.node
                {
                    i = i.with_pod(node.clone(), ip);
                }
                let address = |key: &str| {
                    p.annotations
                        .get(key)
                        .and_then(|v| v.trim().parse::<IpAddr>().ok())
                };
                let (eip, snat) = (address(ann::EIP), address(ann::SNAT));
                for (key, wanted) in [(ann::EIP, eip), (ann::SNAT, snat)] {
                    if wanted.is_some() && s.gateway_type != GatewayType::OvnNative {
                        out.events.push(warning(
                            p.object(),
                            "EgressAddressUnsupported",
                            format!(
                                "{}: annotation {key}: needs a subnet with gateway_type native, and {} is {}",
                                p.object(),
                                s.name,
                                s.gateway_type.as_str()
                            ),
                        ));
                    }
                }
                if s.gateway_type != GatewayType::OvnNative {
                    continue;
                }
                if let Some(eip) = eip {
                    i = i.with_fip(ip, eip);
                }
                match (eip, snat) {
                    (Some(_), Some(_)) => out.events.push(warning(
                        p.object(),
                        "EgressAddressUnsupported",
                        format!(
                            "{}: annotation {}: ignored, the pod's {} already translates its traffic",
                            p.object(),
                            ann::SNAT,
                            ann::EIP
                        ),
                    )),
                    (None, Some(snat)) => i = i.with_pod_snat(ip, snat),
                    _ => {}
                }
            }
            intents.push(i);
        }
        let cluster = self.config.cluster(self.subnets.cidrs());
        let observed = gateway::Observed::from_snapshot(nb, &cluster);
        match gateway::Planner::new(cluster).plan(&intents, &nodes, &observed) {
            Ok(plan) => {
                for e in plan.rejected() {
                    let subnet = self.subnets.by_name.get(e.subnet());
                    let object = subnet.map_or_else(
                        || ObjectRef::cluster(Kind::Namespace, e.subnet()),
                        |s| {
                            ObjectRef::cluster(
                                Kind::Namespace,
                                s.defined_by.clone().unwrap_or_else(|| s.name.clone()),
                            )
                        },
                    );
                    out.events
                        .push(warning(object, "EgressRefused", e.to_string()));
                }
                if let Err(e) = out.plan.merge(plan.into_nb()) {
                    out.problems
                        .push(format!("egress could not be planned: {e}"));
                }
            }
            Err(e) => out
                .problems
                .push(format!("egress could not be planned: {e}")),
        }
    }

    /// Drops events already reported with the same message.
    fn dedupe_events(&mut self, events: &mut Vec<ObjectEvent>) {
        events.retain(|e| self.reported.get(&e.object) != Some(&e.message));
        for e in events.iter() {
            self.reported.insert(e.object.clone(), e.message.clone());
        }
    }

    /// The object an IPAM owner stands for: a pod (`ns/name`) or a node's join lease.
    fn owner_object(&self, owner: &str) -> ObjectRef {
        if let Some(p) = self.pods.objects.get(owner) {
            return p.object();
        }
        if let Some(n) = self
            .nodes
            .objects
            .values()
            .find(|n| gateway::join::owner(&n.name) == owner)
        {
            return n.object();
        }
        match owner.split_once('/') {
            Some((ns, name)) => ObjectRef::namespaced(Kind::Pod, ns, name),
            None => ObjectRef::cluster(Kind::Node, owner),
        }
    }

    /// Marks the objects that could not be handled dirty again; whether there were any.
    pub fn retry_failed(&mut self) -> bool {
        let failed = std::mem::take(&mut self.failed);
        let any = failed.cluster || !failed.nodes.is_empty() || !failed.pods.is_empty();
        self.dirty.cluster |= failed.cluster;
        self.dirty.gateway |= failed.gateway;
        self.dirty.nodes.extend(failed.nodes);
        self.dirty.pods.extend(failed.pods);
        any
    }

    /// Whether some objects wait for [`ControllerState::retry_failed`].
    #[must_use]
    pub fn has_failed(&self) -> bool {
        let f = &self.failed;
        f.cluster || !f.nodes.is_empty() || !f.pods.is_empty()
    }

    /// How many objects of each kind wait to be planned (`cluster` and `gateway` are 0 or 1:
    /// the cluster topology, the egress plan).
    #[must_use]
    pub fn queue_depths(&self) -> Vec<(&'static str, usize)> {
        let d = &self.dirty;
        vec![
            ("cluster", usize::from(d.cluster)),
            ("gateway", usize::from(d.gateway)),
            ("node", d.nodes.len()),
            ("pod", d.pods.len()),
        ]
    }

    /// Marks everything a failed step touched dirty again (the plan did not commit).
    pub fn requeue_all(&mut self) {
        self.dirty.cluster = true;
        self.dirty.gateway = true;
        self.dirty.pods.extend(self.pods.objects.keys().cloned());
        self.dirty.nodes.extend(self.nodes.objects.keys().cloned());
        self.services.requeue();
        self.policies.requeue();
        self.dns.requeue();
    }
}

/// How many pods a step may look at per pod it may change (see [`ControllerState::step`]).
const EXAMINE_PER_CHANGE: usize = 20;

/// Where each switch is in this step: new in the plan, or in the snapshot, or by name.
pub(crate) struct SwitchTargets<'a> {
    resolved: &'a Resolved,
    nb: &'a Typed<'a>,
}

impl SwitchTargets<'_> {
    fn get(&self, name: &str) -> Target<LogicalSwitch> {
        if let Some(t) = self
            .resolved
            .target(LogicalSwitch::TABLE, &topology::switch_key(name))
            .and_then(RowTarget::to_ref)
        {
            return Target::Ref(t);
        }
        match self.nb.uuid_by_name::<LogicalSwitch>(name) {
            Some(uuid) => uuid.into(),
            None => name.into(),
        }
    }
}

fn target<T>(resolved: &Resolved, table: &str, key: &ovn_model::owner::Key) -> Target<T> {
    resolved
        .target(table, key)
        .and_then(RowTarget::to_ref)
        .map_or_else(|| Target::Name(String::new()), Target::Ref)
}

/// The owned rows of `T` in any of `scopes`.
fn owned_in<T: Table>(nb: &Typed<'_>, scopes: &[Scope]) -> Vec<OwnedRow> {
    scopes.iter().flat_map(|s| nb.owned::<T>(s)).collect()
}

/// A lease as a port in OVN holds it.
fn lease_record(p: &OwnedRow, owner: String) -> Option<ipam::ObservedLease> {
    let row = p.row.as_ref()?;
    let addresses = row.get("addresses")?;
    let first = addresses.atoms().next()?.as_str()?;
    let ovn_model::LspAddress::Mac { mac, ips } = first.parse().ok()? else {
        return None;
    };
    let subnet = p.external_ids().get(topology::data::SUBNET).cloned();
    Some(ipam::ObservedLease {
        owner,
        subnet,
        addresses: ips,
        mac: Some(ipam::MacAddr::from(mac.octets())),
    })
}

/// A lease as a pod's written-back annotations hold it.
fn annotated_lease(p: &PodView) -> Option<ipam::ObservedLease> {
    if p.annotations.get(ann::ALLOCATED).map(String::as_str) != Some("true") || !p.wants_network() {
        return None;
    }
    let addresses: Vec<IpAddr> = p
        .annotations
        .get(ann::IP_ADDRESS)?
        .split(',')
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    Some(ipam::ObservedLease {
        owner: p.owner(),
        subnet: p.annotations.get(ann::LOGICAL_SWITCH).cloned(),
        addresses,
        mac: p
            .annotations
            .get(ann::MAC_ADDRESS)
            .and_then(|m| m.parse().ok()),
    })
}

/// Adds the write-back of `wanted` to `object` if its annotations differ.
fn push_status(
    out: &mut Vec<(ObjectRef, BTreeMap<String, Option<String>>)>,
    object: ObjectRef,
    current: &BTreeMap<String, String>,
    wanted: BTreeMap<String, Option<String>>,
) {
    if wanted.iter().any(|(k, v)| current.get(k) != v.as_ref()) {
        out.push((object, wanted));
    }
}

fn warning(object: ObjectRef, reason: &str, message: String) -> ObjectEvent {
    ObjectEvent {
        object,
        type_: EventType::Warning,
        reason: reason.to_owned(),
        message,
    }
}

mod dns;
mod policies;
#[cfg(test)]
mod policy_tests;
mod services;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_services;

/// Times the parts of one step with an optional clock.
struct PartTimer<'c> {
    clock: Option<&'c mut dyn FnMut() -> Duration>,
    started: Duration,
}

impl<'c> PartTimer<'c> {
    fn new(mut clock: Option<&'c mut dyn FnMut() -> Duration>) -> Self {
        let started = clock.as_mut().map_or(Duration::ZERO, |c| c());
        PartTimer { clock, started }
    }

    /// A part starts now.
    fn restart(&mut self) {
        if let Some(c) = self.clock.as_mut() {
            self.started = c();
        }
    }

    /// The part of `kind` that started at the last restart ends now.
    fn part(&mut self, kind: &'static str, out: &mut StepOutput) {
        if let Some(c) = self.clock.as_mut() {
            let now = c();
            out.durations.push((kind, now.saturating_sub(self.started)));
            self.started = now;
        }
    }
}
