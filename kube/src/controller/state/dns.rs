//! The DNS part of the controller's state: the records of Services (planned by
//! [`ControllerState::plan_dns`]) in the cluster's one `DNS` row, owned by `dns`, object
//! `cluster`, role `records`, and the reference every subnet switch and the join switch hold to
//! it (`dns_records`). What the records are, and how OVN answers them, is in
//! [`crate::controller::dns`].
//!
//! The records are rebuilt from every Service whenever one changes (a map of a few thousand
//! strings), and only the names that changed are written: the row's `records` column is
//! mutated (names dropped, then names added), so that one Service's change is that one
//! record's update in the step's plan, not the whole map. The switches are looked at when the
//! row is new, when the cluster's switches were planned in the same step (a new subnet's switch
//! gets the reference in the transaction that creates it), and after a restart or a failed
//! step; a switch that lacks the reference gets it by a mutation of its `dns_records` (a weak
//! reference column: the switch's other writers are not disturbed, and a deleted row drops out
//! of it by itself).

use std::collections::BTreeMap;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use ovn_model::nb::{Dns, LogicalSwitch};
use ovn_model::owner::{Component, Key, Object, Scope};
use ovn_model::plan::{Change, RowTarget, Target};
use ovn_model::reconcile::{self, OwnedRow, Want};
use ovn_model::snapshot::Typed;
use ovsdb::{Datum, Mutation, Table};

use super::services::slice_service;
use super::{ControllerState, StepOutput, SwitchTargets, warning};
use crate::controller::dns as records;
use crate::controller::topology;

/// Whether the DNS records, or the switches' references to them, need reconciling.
#[derive(Debug, Default)]
pub(crate) struct DnsState {
    /// A Service or EndpointSlice changed.
    dirty: bool,
    /// The switches' references may be missing (after a restart, a takeover, a failed step).
    links: bool,
}

impl DnsState {
    /// Whether something waits to be reconciled.
    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty || self.links
    }

    /// Services (`namespace/name`) changed.
    pub(crate) fn services_changed(&mut self, services: &[String]) {
        self.dirty |= !services.is_empty();
    }

    /// Marks the records and the switches' references for reconciling.
    pub(crate) fn requeue(&mut self) {
        self.dirty = true;
        self.links = true;
    }
}

/// The owner key of the cluster's DNS row.
pub(crate) fn key() -> Key {
    Key::new(Component::DNS, Object::cluster(), "records")
}

/// The string map a row's column holds.
fn string_map(row: Option<&ovsdb::Row>, column: &str) -> BTreeMap<String, String> {
    row.and_then(|r| r.get(column))
        .and_then(Datum::as_map)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

impl ControllerState {
    /// Reconciles the DNS row and the switches' references to it (see the module docs).
    pub(super) fn plan_dns(
        &mut self,
        nb: &Typed<'_>,
        switches: &SwitchTargets<'_>,
        out: &mut StepOutput,
    ) {
        let (join, _, _) = self.config.join();
        let join = join.to_owned();
        let cluster_planned = switches
            .resolved
            .target(LogicalSwitch::TABLE, &topology::switch_key(&join))
            .is_some();
        if !self.dns.dirty && !self.dns.links && !cluster_planned {
            return;
        }
        let mut by_service: BTreeMap<String, Vec<&EndpointSlice>> = BTreeMap::new();
        for s in self.services.slices.objects.values() {
            if let Some(svc) = slice_service(s) {
                by_service.entry(svc).or_default().push(s);
            }
        }
        let wanted = records::records(
            self.services.services.objects.values(),
            &by_service,
            self.config.cluster_domain(),
        );
        for (object, message) in wanted.problems {
            out.events.push(warning(object, "BadDnsRecord", message));
        }
        let key = key();
        let owned = nb.owned::<Dns>(&Scope::object(Component::DNS, Object::cluster()));
        let dns = match plan_row(&mut out.plan, &key, wanted.records, owned) {
            Ok(t) => t,
            Err(e) => {
                out.problems
                    .push(format!("the DNS records could not be planned: {e}"));
                return;
            }
        };
        let new_row = matches!(dns, RowTarget::Named(_));
        if self.dns.links || cluster_planned || new_row {
            let names = std::iter::once(join).chain(self.subnets.by_name.keys().cloned());
            for name in names {
                if let Err(e) = link_switch(&mut out.plan, nb, &switches.get(&name), &dns, &name) {
                    out.problems.push(format!(
                        "the DNS records could not be attached to switch {name}: {e}"
                    ));
                }
            }
        }
        self.dns.dirty = false;
        self.dns.links = false;
    }
}

/// Adds to `plan` what makes the DNS row hold `wanted`: the row's insert when there is none,
/// else the mutation of the names that changed (and the delete of any duplicate). Returns the
/// row.
fn plan_row(
    plan: &mut ovn_model::plan::Plan,
    key: &Key,
    wanted: BTreeMap<String, String>,
    owned: Vec<OwnedRow>,
) -> Result<RowTarget, ovn_model::plan::PlanError> {
    let existing = owned.iter().find(|o| o.key == *key);
    let have = existing.map(|o| string_map(o.row.as_ref(), "records"));
    let row = Dns {
        records: if have.is_some() {
            BTreeMap::new()
        } else {
            wanted.clone()
        },
        ..Dns::default()
    };
    let why = "the cluster's Service DNS records";
    let mut want = Want::root(key.clone(), &row, why)?;
    if have.is_some() {
        want = want.ignoring(&["records"]);
    }
    let resolved = reconcile::diff(plan, vec![want], owned)?;
    let target = resolved
        .target(Dns::TABLE, key)
        .cloned()
        .unwrap_or_else(|| RowTarget::Name(String::new()));
    if let (Some(have), RowTarget::Uuid(_)) = (have, &target) {
        let (drop, add) = records::delta(&have, &wanted);
        let mut mutations = Vec::new();
        if !drop.is_empty() {
            mutations.push(Mutation::delete(
                "records",
                Datum::set(drop.iter().map(String::as_str)),
            ));
        }
        if !add.is_empty() {
            mutations.push(Mutation::insert(
                "records",
                Datum::map(add.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            ));
        }
        if !mutations.is_empty() {
            let changed: Vec<&String> = drop
                .iter()
                .filter(|k| !add.contains_key(*k))
                .chain(add.keys())
                .collect();
            plan.push(
                Change::Mutate {
                    table: Dns::TABLE,
                    target: target.clone(),
                    mutations,
                },
                format!(
                    "{why}: {} changed: {}",
                    changed.len(),
                    changed
                        .iter()
                        .take(5)
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )?;
        }
    }
    Ok(target)
}

/// Adds the reference to `dns` to the switch `switch` (named `name`) unless it holds it.
fn link_switch(
    plan: &mut ovn_model::plan::Plan,
    nb: &Typed<'_>,
    switch: &Target<LogicalSwitch>,
    dns: &RowTarget,
    name: &str,
) -> Result<(), ovn_model::plan::PlanError> {
    let Target::Ref(r) = switch else {
        // Neither in the NB nor in this plan (its topology could not be planned): it gets the
        // reference in the step that creates it.
        return Ok(());
    };
    if let (Some(uuid), RowTarget::Uuid(dns_uuid)) = (r.uuid(), dns) {
        let holds = nb
            .get::<LogicalSwitch>(uuid)
            .is_some_and(|s| s.dns_records.iter().any(|d| d.uuid() == Some(*dns_uuid)));
        if holds {
            return Ok(());
        }
    }
    let Some(dns) = dns.to_ref::<Dns>() else {
        return Ok(());
    };
    plan.because(
        format!("switch {name} answers the cluster's Service names"),
        |p| p.attach_dns(switch.clone(), &dns),
    )
}

#[cfg(test)]
mod tests;
