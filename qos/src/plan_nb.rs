//! Planning the OVN NB side: `QoS` rows on the pod's logical switch.
//!
//! One row per role ([`Role::Egress`], [`Role::Ingress`], [`Role::Dscp`]). `QoS` is not a root
//! table: a new row is inserted under a named UUID and added to `Logical_Switch.qos_rules` in
//! the same transaction; a row is removed by taking it out of every switch that refers to it
//! and deleting it. Rows that stay are updated in place, only in the columns that differ.
//! Meters are not NB rows here: `ovn-northd` derives them from `bandwidth`.

use std::collections::BTreeMap;

use ovn_model::nb::{self, LogicalSwitch, QoSActionKey, QoSBandwidthKey, QoSDirection};
use ovsdb::table::RowId;
use ovsdb::{NamedUuid, Ref, Table, Uuid};

use crate::config::{Config, EgressMechanism, IngressMechanism, NbObserved, PodTarget};
use crate::error::PlanError;
use crate::intent::QosIntent;
use crate::plan::{Change, Plan};
use crate::tags::{self, Role};

/// A row the intent asks for, and what it is for (in words).
struct Wanted {
    role: Role,
    row: nb::QoS,
    what: String,
}

/// The columns compared (and updated) on a row that stays.
const COLUMNS: &[&str] = &["action", "bandwidth", "direction", "match", "priority"];

pub(crate) fn plan(
    config: &Config,
    target: &PodTarget,
    intent: &QosIntent,
    observed: &NbObserved<'_>,
) -> Result<Plan, PlanError> {
    let pod = &target.pod;
    let mut plan = Plan::new(pod.clone(), nb::schema());
    let wanted = wanted(config, target, intent);
    let switch = observed.switches.iter().find(|s| s.name == target.switch);
    let owned: Vec<(&nb::QoS, Option<Role>)> = observed
        .qos
        .iter()
        .filter_map(|q| tags::owned_by(&q.external_ids, pod).map(|role| (q, role)))
        .collect();
    let on_switch = |q: &nb::QoS| switch.is_some_and(|s| s.qos_rules.contains(&Ref::new(q.uuid)));

    let mut kept: Vec<Uuid> = Vec::new();
    for w in &wanted {
        let Some(switch) = switch else {
            return Err(PlanError::SwitchNotFound {
                pod: pod.clone(),
                switch: target.switch.clone(),
            });
        };
        let existing = owned
            .iter()
            .find(|(q, role)| *role == Some(w.role) && on_switch(q) && !kept.contains(&q.uuid));
        match existing {
            Some((q, _)) => {
                kept.push(q.uuid);
                let changed: Vec<&str> = COLUMNS
                    .iter()
                    .copied()
                    .filter(|c| differs(q, &w.row, c))
                    .collect();
                if !changed.is_empty() {
                    let row =
                        w.row
                            .to_row_columns(&changed)
                            .map_err(|source| PlanError::Encode {
                                pod: pod.clone(),
                                source: Box::new(source),
                            })?;
                    plan.push(
                        Change::Update {
                            table: nb::QoS::TABLE,
                            uuid: q.uuid,
                            row,
                        },
                        format!("{pod}: {} changed: {}", w.role.as_str(), w.what),
                    );
                }
            }
            None => {
                let name = named(w.role);
                let row = w.row.to_row().map_err(|source| PlanError::Encode {
                    pod: pod.clone(),
                    source: Box::new(source),
                })?;
                plan.push(
                    Change::Insert {
                        table: nb::QoS::TABLE,
                        name: name.clone(),
                        row,
                    },
                    format!("{pod}: {} asked: {}; no row yet", w.role.as_str(), w.what),
                );
                plan.push(
                    Change::AddRef {
                        table: LogicalSwitch::TABLE,
                        uuid: switch.uuid,
                        column: "qos_rules",
                        target: RowId::Named(name),
                    },
                    format!(
                        "{pod}: the new {} row lives while switch {} refers to it",
                        w.role.as_str(),
                        switch.name
                    ),
                );
            }
        }
    }

    for (q, role) in owned.iter().filter(|(q, _)| !kept.contains(&q.uuid)) {
        let role = role.map_or("unknown", Role::as_str);
        for s in observed
            .switches
            .iter()
            .filter(|s| s.qos_rules.contains(&Ref::new(q.uuid)))
        {
            plan.push(
                Change::RemoveRef {
                    table: LogicalSwitch::TABLE,
                    uuid: s.uuid,
                    column: "qos_rules",
                    target: q.uuid,
                },
                format!(
                    "{pod}: {role} no longer asked here: switch {} lets go of it",
                    s.name
                ),
            );
        }
        plan.push(
            Change::Delete {
                table: nb::QoS::TABLE,
                uuid: q.uuid,
            },
            format!("{pod}: {role} no longer asked here: delete its row"),
        );
    }
    Ok(plan)
}

/// The rows `intent` asks for on the NB side, in role order.
fn wanted(config: &Config, target: &PodTarget, intent: &QosIntent) -> Vec<Wanted> {
    let pod = &target.pod;
    let inport = format!("inport == \"{}\"", target.lsp);
    let outport = format!("outport == \"{}\"", target.lsp);
    let row = |role: Role, direction: QoSDirection, match_: &str| nb::QoS {
        direction,
        match_: match_.to_owned(),
        priority: i64::from(config.priority),
        external_ids: tags::external_ids(pod, role),
        ..nb::QoS::default()
    };
    let bandwidth = |l: &crate::Limit| {
        BTreeMap::from([
            (
                QoSBandwidthKey::Rate,
                saturating_i64(l.rate.kbit_per_s_ceil()),
            ),
            (QoSBandwidthKey::Burst, saturating_i64(l.burst.kbit_ceil())),
        ])
    };
    let mut out = Vec::new();
    if let (EgressMechanism::OvnQos, Some(l)) = (config.egress, intent.egress) {
        out.push(Wanted {
            role: Role::Egress,
            row: nb::QoS {
                bandwidth: bandwidth(&l),
                ..row(Role::Egress, QoSDirection::FromLport, &inport)
            },
            what: format!("{l} from the pod through an OVN meter"),
        });
    }
    if let (IngressMechanism::OvnQos, Some(l)) = (config.ingress, intent.ingress) {
        out.push(Wanted {
            role: Role::Ingress,
            row: nb::QoS {
                bandwidth: bandwidth(&l),
                ..row(Role::Ingress, QoSDirection::ToLport, &outport)
            },
            what: format!("{l} toward the pod through an OVN meter"),
        });
    }
    if let Some(d) = intent.dscp {
        out.push(Wanted {
            role: Role::Dscp,
            row: nb::QoS {
                action: BTreeMap::from([(QoSActionKey::Dscp, i64::from(d.value()))]),
                ..row(Role::Dscp, QoSDirection::FromLport, &inport)
            },
            what: format!("DSCP {d} on packets from the pod"),
        });
    }
    out
}

fn differs(a: &nb::QoS, b: &nb::QoS, column: &str) -> bool {
    match column {
        "action" => a.action != b.action,
        "bandwidth" => a.bandwidth != b.bandwidth,
        "direction" => a.direction != b.direction,
        "match" => a.match_ != b.match_,
        "priority" => a.priority != b.priority,
        _ => false,
    }
}

fn named(role: Role) -> NamedUuid {
    NamedUuid::numbered(&format!("qos_{}", role.as_str()), 0)
}

/// A count as the `i64` of an integer column; a value too large for it is left for the
/// column's constraint to refuse (`to_row` names the column).
pub(crate) fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
