//! Planning the OVN NB side: `QoS` rows on the pod's logical switch.
//!
//! One row per role ([`Role::Egress`], [`Role::Ingress`], [`Role::Dscp`]), each a wanted child
//! of the pod's switch (by UUID when observed, else by name: the switch may be created by the
//! same reconcile step), keyed by the pod, the role and the switch's name (a pod that moved to
//! another switch gets a new row there, and its old one goes). The reconcile core does the
//! rest: a new row is inserted into `Logical_Switch.qos_rules`, a row that stays is updated in
//! the columns that differ, a row no longer asked for is taken out of its switch (the server
//! collects it). Meters are not NB rows here: `ovn-northd` derives them from `bandwidth`.

use std::collections::BTreeMap;

use ovn_model::nb::{self, LogicalSwitch, QoSActionKey, QoSBandwidthKey, QoSDirection};
use ovn_model::plan::{Plan, Target};
use ovn_model::reconcile::{self, Want};

use crate::config::{Config, EgressMechanism, IngressMechanism, PodTarget};
use crate::error::PlanError;
use crate::intent::{Limit, QosIntent, Role};
use crate::observed::NbObserved;

pub(crate) fn plan(
    config: &Config,
    target: &PodTarget,
    intent: &QosIntent,
    observed: &NbObserved,
) -> Result<Plan, PlanError> {
    let pod = &target.pod;
    let mut plan = Plan::nb();
    // A switch not observed is named: it may be created by an earlier part of the same
    // reconcile step's plan; if it exists nowhere, the transaction fails, naming it.
    let switch: Target<LogicalSwitch> = match observed.switch {
        Some(u) => u.into(),
        None => target.switch.as_str().into(),
    };
    let wants = wanted(config, target, intent)
        .into_iter()
        .map(|(role, row, what)| {
            let key = pod.key(role).with_id(&target.switch);
            let why = format!("{pod}: {}: {what}", role.as_str());
            Want::child::<LogicalSwitch, _>(key, &row, switch.clone(), why)
        })
        .collect::<Result<_, _>>()
        .map_err(|e| PlanError::plan(pod, e))?;
    reconcile::diff(&mut plan, wants, observed.owned.clone())
        .map_err(|e| PlanError::plan(pod, e))?;
    Ok(plan)
}

/// The rows `intent` asks for on the NB side, in role order, with what each is for.
fn wanted(config: &Config, target: &PodTarget, intent: &QosIntent) -> Vec<(Role, nb::QoS, String)> {
    let inport = format!("inport == \"{}\"", target.lsp);
    let outport = format!("outport == \"{}\"", target.lsp);
    let row = |direction: QoSDirection, match_: &str| nb::QoS {
        direction,
        match_: match_.to_owned(),
        priority: i64::from(config.priority),
        ..nb::QoS::default()
    };
    let bandwidth = |l: &Limit| {
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
        out.push((
            Role::Egress,
            nb::QoS {
                bandwidth: bandwidth(&l),
                ..row(QoSDirection::FromLport, &inport)
            },
            format!("{l} from the pod through an OVN meter"),
        ));
    }
    if let (IngressMechanism::OvnQos, Some(l)) = (config.ingress, intent.ingress) {
        out.push((
            Role::Ingress,
            nb::QoS {
                bandwidth: bandwidth(&l),
                ..row(QoSDirection::ToLport, &outport)
            },
            format!("{l} toward the pod through an OVN meter"),
        ));
    }
    if let Some(d) = intent.dscp {
        out.push((
            Role::Dscp,
            nb::QoS {
                action: BTreeMap::from([(QoSActionKey::Dscp, i64::from(d.value()))]),
                ..row(QoSDirection::FromLport, &inport)
            },
            format!("DSCP {d} on packets from the pod"),
        ));
    }
    out
}

/// A count as the `i64` of an integer column; a value too large for it is left for the
/// column's constraint to refuse (encoding names the column).
pub(crate) fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
