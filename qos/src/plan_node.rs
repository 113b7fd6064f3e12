//! Planning the node side: the pod's OVS interface policing and its port's `QoS`.
//!
//! - Egress through [`EgressMechanism::OvsPolicing`]: `Interface.ingress_policing_rate`
//!   (kbit/s) and `ingress_policing_burst` (kbit); 0 and 0 when not asked (ovnkit owns these
//!   two columns of the pod's interface).
//! - Ingress through [`IngressMechanism::OvsHtb`]: a `linux-htb` `QoS` whose queue 0 is a
//!   `Queue` with `other_config:max-rate` in bit/s, on `Port.qos`.
//! - Netem: a `linux-netem` `QoS` on `Port.qos` with `other_config` `latency` and `jitter` in
//!   microseconds, `loss` in whole percent (what OVS 3.1 reads; a fraction is rounded) and
//!   `limit` in packets.
//!
//! A port has one `qos`: htb ingress and netem together are [`PlanError::HtbAndNetem`]. The
//! `QoS` and its `Queue` are wanted rows of root tables, reconciled by the core (a rate change
//! is one `update` of the `Queue`; rows no longer asked for are deleted, since nothing collects
//! rows of root tables). The port is not the planner's: binding it to the pod's `QoS` is a
//! change of its own. A `QoS` someone else bound to the port (for example `ovn-controller`'s
//! `linux-noop`) is replaced in `Port.qos` but never deleted; clearing leaves the port with no
//! `qos`.

use std::collections::BTreeMap;

use ovn_model::plan::{Change, Plan, RowTarget};
use ovn_model::reconcile::{self, OwnedRow, Want};
use ovn_model::vswitch::{self, Interface, Port, Queue};
use ovsdb::table::Encoder;
use ovsdb::{Ref, Row, Table, Uuid};

use crate::config::{Config, EgressMechanism, IngressMechanism, PodTarget};
use crate::error::PlanError;
use crate::intent::{Limit, Netem, QosIntent, Role};
use crate::observed::NodeObserved;
use crate::plan_nb::saturating_i64;

/// What the pod's `Port.qos` should be.
enum PortQos {
    Htb(Limit),
    Netem(Netem),
}

pub(crate) fn plan(
    config: &Config,
    target: &PodTarget,
    intent: &QosIntent,
    observed: &NodeObserved,
) -> Result<Plan, PlanError> {
    let pod = &target.pod;
    let mut plan = Plan::vswitch();
    let not_found = || PlanError::PortNotFound {
        pod: pod.clone(),
        port: target.ovs_port.clone(),
    };
    let core = |e| PlanError::plan(pod, e);

    // Egress policing on the interface.
    let policing = match (config.egress, intent.egress) {
        (EgressMechanism::OvsPolicing, Some(l)) => Some(l),
        _ => None,
    };
    let (rate, burst) = policing.map_or((0, 0), |l| {
        (
            saturating_i64(l.rate.kbit_per_s_ceil()),
            saturating_i64(l.burst.kbit_ceil()),
        )
    });
    match observed.interface {
        None if policing.is_some() => return Err(not_found()),
        Some(i) if (i.rate, i.burst) != (rate, burst) => {
            let mut e = Encoder::new(Interface::TABLE, Interface::table_schema());
            e.scalar("ingress_policing_rate", &rate)
                .and_then(|()| e.scalar("ingress_policing_burst", &burst))
                .map_err(|e| core(e.into()))?;
            let why = match policing {
                Some(l) => format!("{pod}: egress asked: {l} from the pod through OVS policing"),
                None => format!("{pod}: no egress policing asked: clear the interface's policing"),
            };
            plan.push(
                Change::Update {
                    table: Interface::TABLE,
                    target: RowTarget::Uuid(i.uuid),
                    row: e.finish(),
                },
                why,
            )
            .map_err(core)?;
        }
        _ => {}
    }

    // The port's QoS and its queue: wanted rows of the pod.
    let htb = match (config.ingress, intent.ingress) {
        (IngressMechanism::OvsHtb, Some(l)) => Some(l),
        _ => None,
    };
    let wanted = match (htb, intent.netem) {
        (Some(_), Some(_)) => return Err(PlanError::HtbAndNetem { pod: pod.clone() }),
        (Some(l), None) => Some(PortQos::Htb(l)),
        (None, Some(n)) => Some(PortQos::Netem(n)),
        (None, None) => None,
    };
    if wanted.is_some() && observed.port.is_none() {
        return Err(not_found());
    }
    let (owned_qos, owned_queues): (Vec<OwnedRow>, Vec<OwnedRow>) = observed
        .owned
        .iter()
        .cloned()
        .partition(|o| o.table == vswitch::QoS::TABLE);
    let queue_key = pod.key(Role::Queue);
    let mut queue_wants = Vec::new();
    if let Some(PortQos::Htb(l)) = &wanted {
        let queue = Queue {
            other_config: BTreeMap::from([("max-rate".to_owned(), l.rate.bit_per_s().to_string())]),
            ..Queue::default()
        };
        let why = format!(
            "{pod}: ingress {} toward the pod through an htb queue",
            l.rate
        );
        queue_wants.push(Want::root(queue_key.clone(), &queue, why).map_err(core)?);
    }
    let queues = reconcile::diff(&mut plan, queue_wants, owned_queues).map_err(core)?;
    let qos_key = pod.key(Role::PortQos);
    let mut qos_wants = Vec::new();
    if let Some(w) = &wanted {
        let mut row = qos_row(w);
        if let Some(q) = queues.target(Queue::TABLE, &queue_key) {
            row.queues = BTreeMap::from([(0, q.to_ref().expect("a wanted row has an id"))]);
        }
        let why = format!("{pod}: port QoS: {}", describe(w));
        // The queues are the planner's own: an htb QoS turned into netem lets go of its queue.
        let want = Want::root(qos_key.clone(), &row, why).map_err(core)?;
        qos_wants.push(want.managing(&["queues"]));
    }
    let resolved = reconcile::diff(&mut plan, qos_wants, owned_qos.clone()).map_err(core)?;
    let kept = resolved.target(vswitch::QoS::TABLE, &qos_key);

    // Bind the pod's port to its QoS, or unbind the pod's QoS from it.
    let owned = |u: Option<Uuid>| u.is_some_and(|u| owned_qos.iter().any(|o| o.uuid == u));
    if let Some(port) = &observed.port {
        let bind = match kept {
            Some(RowTarget::Uuid(u)) if port.qos == Some(*u) => None,
            Some(t) => Some((
                t.to_ref(),
                format!("bind the pod's QoS to port {}", port.name),
            )),
            None if owned(port.qos) => Some((
                None,
                format!("unbind the pod's QoS from port {}", port.name),
            )),
            None => None,
        };
        if let Some((qos, what)) = bind {
            port_qos(&mut plan, port.uuid, qos, format!("{pod}: {what}")).map_err(core)?;
        }
    }
    // Ports still holding a QoS of the pod that goes (an interrupted run) let go of it.
    for p in &observed.bound_elsewhere {
        if !matches!(kept, Some(RowTarget::Uuid(u)) if p.qos == Some(*u)) {
            let why = format!(
                "{pod}: port {} holds a stale QoS of the pod: unbind it",
                p.name
            );
            port_qos(&mut plan, p.uuid, None, why).map_err(core)?;
        }
    }
    Ok(plan)
}

fn describe(w: &PortQos) -> String {
    match w {
        PortQos::Htb(l) => format!("linux-htb, ingress {} toward the pod", l.rate),
        PortQos::Netem(n) => format!("linux-netem, {n}"),
    }
}

/// The `QoS` row (without its queues) for `w`.
fn qos_row(w: &PortQos) -> vswitch::QoS {
    let (type_, other_config) = match w {
        PortQos::Htb(_) => ("linux-htb", BTreeMap::new()),
        PortQos::Netem(n) => {
            let mut c = BTreeMap::from([
                ("latency".to_owned(), n.latency.as_micros().to_string()),
                ("jitter".to_owned(), n.jitter.as_micros().to_string()),
                (
                    "loss".to_owned(),
                    n.loss.whole_percent_rounded().to_string(),
                ),
            ]);
            if let Some(limit) = n.limit {
                c.insert("limit".to_owned(), limit.to_string());
            }
            ("linux-netem", c)
        }
    };
    vswitch::QoS {
        type_: type_.to_owned(),
        other_config,
        ..vswitch::QoS::default()
    }
}

/// Sets `Port.qos` of `port` to `qos` (or clears it).
fn port_qos(
    plan: &mut Plan,
    port: Uuid,
    qos: Option<Ref<vswitch::QoS>>,
    why: String,
) -> Result<(), ovn_model::plan::PlanError> {
    let mut e = Encoder::new(Port::TABLE, Port::table_schema());
    e.optional("qos", qos.as_ref())?;
    let row: Row = e.finish();
    plan.push(
        Change::Update {
            table: Port::TABLE,
            target: RowTarget::Uuid(port),
            row,
        },
        why,
    )
}
