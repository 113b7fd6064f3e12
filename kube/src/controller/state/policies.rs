//! The NetworkPolicy part of the controller's state (planned by
//! [`ControllerState::plan_policies`]): the policies and namespace labels as last seen, which
//! policies to reconcile, and which pods each policy's rows depend on. The rows themselves
//! are built by `controller::policy`.
//!
//! A policy is reconciled when it changes, when a pod it selects or peers with (before or
//! after the change) changes labels, addresses or named ports or gets its port, and when
//! namespace labels change (policies with namespace selectors). Its rows are diffed in its
//! own owner scope: port group and address sets first, then the ACLs under the port group,
//! all in the step's one transaction. A pod whose port is inserted in the same step joins
//! the port groups in that transaction (through the insert's named UUID).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use ovn_model::nb::{Acl, AddressSet, LogicalSwitchPort, PortGroup};
use ovn_model::owner::{Component, Scope};
use ovn_model::plan::{PlanError, RowTarget, Target};
use ovn_model::reconcile::{self, Want};
use ovn_model::snapshot::Typed;
use ovsdb::Table;

use super::services::object_key;
use super::{ControllerState, StepOutput, Store, WatchEvent, warning};
use crate::controller::policy::{self, Cluster, Compiled, Member, NamespaceView, SpecError};
use crate::controller::source::{Kind, ObjectEvent, ObjectRef};

/// NetworkPolicies, namespace labels, and what to reconcile next.
#[derive(Debug, Default)]
pub(crate) struct PoliciesState {
    /// NetworkPolicies by `namespace/name`.
    pub(crate) policies: Store<NetworkPolicy>,
    /// Namespaces' labels by name.
    namespaces: Store<BTreeMap<String, String>>,
    /// Each policy checked.
    compiled: BTreeMap<String, Result<Compiled, SpecError>>,
    /// Policies (`namespace/name`) to reconcile.
    dirty: BTreeSet<String>,
    /// Pods (`namespace/name`) that changed: the policies they touch are reconciled.
    dirty_pods: BTreeSet<String>,
    /// Ports of pods planned in this step (new ones are named UUIDs of the step's plan).
    step_ports: BTreeMap<String, RowTarget>,
    /// The pods each policy's rows were built from.
    members: BTreeMap<String, BTreeSet<String>>,
}

impl PoliciesState {
    /// Whether the first listings came.
    pub(crate) fn listed(&self) -> bool {
        self.policies.listed && self.namespaces.listed
    }

    /// Whether something waits to be reconciled.
    pub(crate) fn is_dirty(&self) -> bool {
        !self.dirty.is_empty() || !self.dirty_pods.is_empty()
    }

    /// Applies a NetworkPolicy event.
    pub(crate) fn policy_event(&mut self, event: WatchEvent<NetworkPolicy>) {
        let changed = self
            .policies
            .apply(event, |p| Some((object_key(&p.metadata)?, p.clone())));
        for k in &changed {
            match self.policies.objects.get(k) {
                Some(p) => {
                    self.compiled.insert(k.clone(), policy::compile(p));
                }
                None => {
                    self.compiled.remove(k);
                }
            }
        }
        self.dirty.extend(changed);
    }

    /// Applies a Namespace event (its labels select peers).
    pub(crate) fn namespace_event(&mut self, event: WatchEvent<Namespace>) {
        let changed = self.namespaces.apply(event, |n| {
            Some((
                n.metadata.name.clone()?,
                n.metadata.labels.clone().unwrap_or_default(),
            ))
        });
        if changed.is_empty() {
            return;
        }
        let selecting = self
            .compiled
            .iter()
            .filter(|(_, c)| c.as_ref().is_ok_and(Compiled::selects_namespaces))
            .map(|(k, _)| k.clone());
        self.dirty.extend(selecting.collect::<Vec<_>>());
    }

    /// Pods (`namespace/name`) changed (their labels select them and peers).
    pub(crate) fn pods_changed(&mut self, pods: &[String]) {
        self.dirty_pods.extend(pods.iter().cloned());
    }

    /// A pod's port was inserted or changed in this step: policies use `port` (a named
    /// UUID for an insert) to put it in their port groups in the same transaction.
    pub(crate) fn pod_port(&mut self, pod: &str, port: Option<RowTarget>) {
        if let Some(p) = port {
            self.step_ports.insert(pod.to_owned(), p);
        }
        self.dirty_pods.insert(pod.to_owned());
    }

    /// Marks everything for reconciling.
    pub(crate) fn requeue(&mut self) {
        self.dirty.extend(self.policies.objects.keys().cloned());
    }
}

/// The event of a policy.
fn policy_ref(p: Option<&NetworkPolicy>, key: &str) -> ObjectRef {
    let (ns, name) = key.split_once('/').unwrap_or(("default", key));
    let o = ObjectRef::namespaced(Kind::NetworkPolicy, ns, name);
    match p.and_then(|p| p.metadata.uid.clone()) {
        Some(uid) => o.with_uid(uid),
        None => o,
    }
}

impl ControllerState {
    /// Takes what OVN holds for policies into account after a restart or a takeover:
    /// policies with rows but no object any more are reconciled too (their rows go).
    pub(super) fn restore_policies(&mut self, nb: &Typed<'_>) -> Vec<ObjectEvent> {
        let scope = Scope::component(Component::POLICY);
        let rows = nb
            .owned::<PortGroup>(&scope)
            .into_iter()
            .chain(nb.owned::<AddressSet>(&scope));
        for r in rows {
            if r.key.object.kind() == "networkpolicy" {
                self.policies.dirty.insert(r.key.object.name().to_owned());
            }
        }
        self.policies.members.clear();
        self.policies.requeue();
        Vec::new()
    }

    /// The policies the changed pods touch, before or after their change.
    fn policies_of_dirty_pods(&mut self) {
        let pods = std::mem::take(&mut self.policies.dirty_pods);
        let p = &self.policies;
        if p.compiled.keys().all(|k| p.dirty.contains(k)) {
            // Every policy is reconciled anyway (a listing, a restart).
            return;
        }
        let empty = BTreeMap::new();
        for key in pods {
            let pod = self.pods.objects.get(&key).filter(|p| p.wants_network());
            for (pk, c) in &self.policies.compiled {
                if self.policies.dirty.contains(pk) {
                    continue;
                }
                let was = self
                    .policies
                    .members
                    .get(pk)
                    .is_some_and(|m| m.contains(&key));
                let is = match (pod, c) {
                    (Some(p), Ok(c)) => {
                        let ns_labels = self
                            .policies
                            .namespaces
                            .objects
                            .get(&p.namespace)
                            .unwrap_or(&empty);
                        policy::touches(c, &p.namespace, ns_labels, &p.labels)
                    }
                    _ => false,
                };
                if was || is {
                    self.policies.dirty.insert(pk.clone());
                }
            }
        }
    }

    /// The pods and namespaces as policies see them.
    fn policy_cluster<'a>(&'a self, nb: &Typed<'_>) -> Cluster<'a> {
        let mut namespaces: BTreeMap<&str, NamespaceView<'a>> = BTreeMap::new();
        for (name, labels) in &self.policies.namespaces.objects {
            namespaces.entry(name).or_default().labels = Some(labels);
        }
        for p in self.pods.objects.values().filter(|p| p.wants_network()) {
            let owner = p.owner();
            let ips = self
                .ipam
                .lease(&owner)
                .map(|l| l.addresses().collect())
                .unwrap_or_default();
            let port = self.policies.step_ports.get(&owner).cloned().or_else(|| {
                nb.uuid_by_name::<LogicalSwitchPort>(&p.port_name())
                    .map(RowTarget::Uuid)
            });
            let key = self
                .pods
                .objects
                .get_key_value(&owner)
                .map_or("", |(k, _)| k.as_str());
            namespaces
                .entry(&p.namespace)
                .or_default()
                .pods
                .push(Member {
                    key,
                    labels: &p.labels,
                    ips,
                    named_ports: &p.named_ports,
                    port,
                });
        }
        let cidrs = self.subnets.by_name.values().flat_map(|s| s.cidrs.iter());
        let (v4, v6) = cidrs.fold((false, false), |(v4, v6), c| {
            (v4 || c.addr().is_ipv4(), v6 || c.addr().is_ipv6())
        });
        Cluster {
            namespaces,
            join: self.config.join().1,
            v4,
            v6,
        }
    }

    /// Whether [`plan_policies`](Self::plan_policies) has policies to reconcile, or changed
    /// pods to place in the policies there are.
    pub(super) fn policies_pending(&self) -> bool {
        !self.policies.dirty.is_empty()
            || !self.policies.dirty_pods.is_empty() && !self.policies.compiled.is_empty()
    }

    /// Reconciles the dirty policies.
    pub(super) fn plan_policies(&mut self, nb: &Typed<'_>, out: &mut StepOutput) {
        self.policies_of_dirty_pods();
        if self.policies.dirty.is_empty() {
            self.policies.step_ports.clear();
            return;
        }
        let dirty = std::mem::take(&mut self.policies.dirty);
        let mut members = Vec::new();
        {
            let cluster = self.policy_cluster(nb);
            for key in &dirty {
                let object = policy_ref(self.policies.policies.objects.get(key), key);
                let compiled = self.policies.compiled.get(key);
                let result = match compiled {
                    None => plan_policy(nb, out, key, None).map(|()| None),
                    Some(Err(e)) => {
                        out.events.push(warning(
                            object,
                            "BadNetworkPolicy",
                            format!(
                                "NetworkPolicy {key}: {}: {}; its rows are left as they were",
                                e.field, e.reason
                            ),
                        ));
                        continue;
                    }
                    Some(Ok(c)) => {
                        let rows = policy::build(c, &cluster);
                        if !rows.unresolved.is_empty() {
                            let what: Vec<String> = rows
                                .unresolved
                                .iter()
                                .map(|e| format!("{}: {}", e.field, e.reason))
                                .collect();
                            out.events.push(warning(
                                object.clone(),
                                "UnknownNamedPort",
                                format!("NetworkPolicy {key}: {}", what.join("; ")),
                            ));
                        }
                        let used = rows.members.clone();
                        plan_policy(nb, out, key, Some(rows)).map(|()| Some(used))
                    }
                };
                match result {
                    Ok(used) => members.push((key.clone(), used)),
                    Err(e) => out.events.push(warning(
                        policy_ref(self.policies.policies.objects.get(key), key),
                        "PlanFailed",
                        format!("NetworkPolicy {key}: {e}"),
                    )),
                }
            }
        }
        for (key, used) in members {
            match used {
                Some(u) => self.policies.members.insert(key, u),
                None => self.policies.members.remove(&key),
            };
        }
        self.policies.step_ports.clear();
    }
}

/// Diffs one policy's rows (`None`: the policy is gone) against what OVN holds for it.
fn plan_policy(
    nb: &Typed<'_>,
    out: &mut StepOutput,
    key: &str,
    rows: Option<policy::Rows>,
) -> Result<(), PlanError> {
    let (ns, name) = key.split_once('/').unwrap_or(("default", key));
    let scope = Scope::object(Component::POLICY, policy::object(ns, name));
    let owned_roots = nb
        .owned::<PortGroup>(&scope)
        .into_iter()
        .chain(nb.owned::<AddressSet>(&scope))
        .collect();
    let Some(rows) = rows else {
        // The port group's ACLs go with it.
        reconcile::diff(&mut out.plan, Vec::new(), owned_roots)?;
        return Ok(());
    };
    let why = format!("NetworkPolicy {key}");
    let pg_key = policy::key(ns, name, "port-group");
    let mut roots = vec![Want::root(pg_key.clone(), &rows.port_group, &why)?.managing(&["ports"])];
    for (id, set) in &rows.address_sets {
        roots.push(Want::root(
            policy::key(ns, name, "address-set").with_id(id),
            set,
            &why,
        )?);
    }
    let resolved = reconcile::diff(&mut out.plan, roots, owned_roots)?;
    let group: Target<PortGroup> = resolved
        .target(PortGroup::TABLE, &pg_key)
        .and_then(RowTarget::to_ref)
        .map_or_else(|| Target::Name(rows.port_group.name.clone()), Target::Ref);
    let mut acls = Vec::new();
    for (id, acl) in &rows.acls {
        acls.push(Want::child(
            policy::key(ns, name, "acl").with_id(id),
            acl,
            group.clone(),
            &why,
        )?);
    }
    reconcile::diff(&mut out.plan, acls, nb.owned::<Acl>(&scope))?;
    Ok(())
}
