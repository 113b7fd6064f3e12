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
//! A port has one `qos`: htb ingress and netem together are [`PlanError::HtbAndNetem`]. A `QoS`
//! someone else bound to the port (for example `ovn-controller`'s `linux-noop`) is replaced in
//! `Port.qos` but never deleted; clearing leaves the port with no `qos`.
//! `QoS` and `Queue` are root tables in Open_vSwitch, so nothing collects them: every row the
//! planner made for the pod and no longer needs is deleted explicitly. A row that stays is
//! updated in place (a rate change is one `update` of the `Queue`).

use std::collections::BTreeMap;

use ovn_model::vswitch::{self, Interface, Port, Queue};
use ovsdb::table::Encoder;
use ovsdb::{NamedUuid, Ref, Table, Uuid};

use crate::config::{Config, EgressMechanism, IngressMechanism, NodeObserved, PodTarget};
use crate::error::PlanError;
use crate::intent::{Limit, Netem, QosIntent};
use crate::plan::{Change, Plan};
use crate::plan_nb::saturating_i64;
use crate::tags::{self, Role};

/// What the pod's `Port.qos` should be.
enum PortQos {
    Htb(Limit),
    Netem(Netem),
}

pub(crate) fn plan(
    config: &Config,
    target: &PodTarget,
    intent: &QosIntent,
    observed: &NodeObserved<'_>,
) -> Result<Plan, PlanError> {
    let pod = &target.pod;
    let mut plan = Plan::new(pod.clone(), vswitch::schema());
    let encode = |source| PlanError::Encode {
        pod: pod.clone(),
        source: Box::new(source),
    };
    let not_found = || PlanError::PortNotFound {
        pod: pod.clone(),
        port: target.ovs_port.clone(),
    };
    let port = observed.ports.iter().find(|p| p.name == target.ovs_port);
    let iface = observed
        .interfaces
        .iter()
        .find(|i| i.name == target.ovs_port);

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
    match iface {
        None if policing.is_some() => return Err(not_found()),
        None => {}
        Some(i) if (i.ingress_policing_rate, i.ingress_policing_burst) == (rate, burst) => {}
        Some(i) => {
            let mut e = Encoder::new(Interface::TABLE, Interface::table_schema());
            e.scalar("ingress_policing_rate", &rate).map_err(encode)?;
            e.scalar("ingress_policing_burst", &burst).map_err(encode)?;
            let why = match policing {
                Some(l) => format!("{pod}: egress asked: {l} from the pod through OVS policing"),
                None => format!("{pod}: no egress policing asked: clear the interface's policing"),
            };
            plan.push(
                Change::Update {
                    table: Interface::TABLE,
                    uuid: i.uuid,
                    row: e.finish(),
                },
                why,
            );
        }
    }

    // The port's QoS.
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
    let owned_qos: Vec<&vswitch::QoS> = observed
        .qos
        .iter()
        .filter(|q| tags::owned_by(&q.external_ids, pod).is_some())
        .collect();
    let owned_queues: Vec<&Queue> = observed
        .queues
        .iter()
        .filter(|q| tags::owned_by(&q.external_ids, pod).is_some())
        .collect();
    let current = port
        .and_then(|p| p.qos.as_ref())
        .and_then(Ref::uuid)
        .and_then(|u| owned_qos.iter().find(|q| q.uuid == u).copied());

    let mut kept_qos: Option<Uuid> = None;
    let mut kept_queue: Option<Uuid> = None;
    match (&wanted, current) {
        (Some(w), Some(cur)) => {
            kept_qos = Some(cur.uuid);
            let mut row = qos_row(target, w);
            let mut changed = Vec::new();
            if let PortQos::Htb(l) = w {
                let queue_row = queue_row(target, l);
                let existing = cur
                    .queues
                    .get(&0)
                    .and_then(Ref::uuid)
                    .and_then(|u| owned_queues.iter().find(|q| q.uuid == u));
                match existing {
                    Some(q) => {
                        kept_queue = Some(q.uuid);
                        row.queues = BTreeMap::from([(0, Ref::new(q.uuid))]);
                        if q.other_config != queue_row.other_config {
                            let r = queue_row
                                .to_row_columns(&["other_config"])
                                .map_err(encode)?;
                            plan.push(
                                Change::Update {
                                    table: Queue::TABLE,
                                    uuid: q.uuid,
                                    row: r,
                                },
                                format!(
                                    "{pod}: ingress changed: {} toward the pod through htb",
                                    l.rate
                                ),
                            );
                        }
                    }
                    None => {
                        let name = NamedUuid::numbered("queue", 0);
                        plan.push(
                            Change::Insert {
                                table: Queue::TABLE,
                                name: name.clone(),
                                row: queue_row.to_row().map_err(encode)?,
                            },
                            format!(
                                "{pod}: ingress asked: {} toward the pod through an htb queue",
                                l.rate
                            ),
                        );
                        row.queues = BTreeMap::from([(0, Ref::named(name))]);
                    }
                }
            }
            if cur.type_ != row.type_ {
                changed.push("type");
            }
            if cur.other_config != row.other_config {
                changed.push("other_config");
            }
            if cur.queues != row.queues {
                changed.push("queues");
            }
            if !changed.is_empty() {
                plan.push(
                    Change::Update {
                        table: vswitch::QoS::TABLE,
                        uuid: cur.uuid,
                        row: row.to_row_columns(&changed).map_err(encode)?,
                    },
                    format!("{pod}: port QoS changed: {}", describe(w)),
                );
            }
        }
        (Some(w), None) => {
            let port = port.ok_or_else(not_found)?;
            let mut row = qos_row(target, w);
            if let PortQos::Htb(l) = w {
                let name = NamedUuid::numbered("queue", 0);
                plan.push(
                    Change::Insert {
                        table: Queue::TABLE,
                        name: name.clone(),
                        row: queue_row(target, l).to_row().map_err(encode)?,
                    },
                    format!(
                        "{pod}: ingress asked: {} toward the pod through an htb queue",
                        l.rate
                    ),
                );
                row.queues = BTreeMap::from([(0, Ref::named(name))]);
            }
            let name = NamedUuid::numbered("qos", 0);
            plan.push(
                Change::Insert {
                    table: vswitch::QoS::TABLE,
                    name: name.clone(),
                    row: row.to_row().map_err(encode)?,
                },
                format!("{pod}: port QoS asked: {}; none yet", describe(w)),
            );
            plan.push(
                Change::Update {
                    table: Port::TABLE,
                    uuid: port.uuid,
                    row: port_qos(Some(Ref::named(name))).map_err(encode)?,
                },
                format!("{pod}: bind the new QoS to port {}", port.name),
            );
        }
        (None, Some(_)) => {
            if let Some(port) = port {
                plan.push(
                    Change::Update {
                        table: Port::TABLE,
                        uuid: port.uuid,
                        row: port_qos(None).map_err(encode)?,
                    },
                    format!(
                        "{pod}: no port QoS asked: unbind it from port {}",
                        port.name
                    ),
                );
            }
        }
        (None, None) => {}
    }

    // Everything else the planner made for the pod goes: QoS and Queue are root tables.
    for q in owned_qos.iter().filter(|q| Some(q.uuid) != kept_qos) {
        for p in observed.ports.iter().filter(|p| {
            p.qos.as_ref().and_then(Ref::uuid) == Some(q.uuid) && Some(p.uuid) != current_port(port)
        }) {
            plan.push(
                Change::Update {
                    table: Port::TABLE,
                    uuid: p.uuid,
                    row: port_qos(None).map_err(encode)?,
                },
                format!(
                    "{pod}: port {} holds a stale QoS of the pod: unbind it",
                    p.name
                ),
            );
        }
        plan.push(
            Change::Delete {
                table: vswitch::QoS::TABLE,
                uuid: q.uuid,
            },
            format!("{pod}: port QoS {} no longer needed: delete it", q.type_),
        );
    }
    for q in owned_queues.iter().filter(|q| Some(q.uuid) != kept_queue) {
        plan.push(
            Change::Delete {
                table: Queue::TABLE,
                uuid: q.uuid,
            },
            format!("{pod}: htb queue no longer needed: delete it"),
        );
    }
    Ok(plan)
}

fn current_port(port: Option<&Port>) -> Option<Uuid> {
    port.map(|p| p.uuid)
}

fn describe(w: &PortQos) -> String {
    match w {
        PortQos::Htb(l) => format!("linux-htb, ingress {} toward the pod", l.rate),
        PortQos::Netem(n) => format!("linux-netem, {n}"),
    }
}

/// The `QoS` row (without its queues) for `w`.
fn qos_row(target: &PodTarget, w: &PortQos) -> vswitch::QoS {
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
        external_ids: tags::external_ids(&target.pod, Role::PortQos),
        ..vswitch::QoS::default()
    }
}

fn queue_row(target: &PodTarget, l: &Limit) -> Queue {
    Queue {
        other_config: BTreeMap::from([("max-rate".to_owned(), l.rate.bit_per_s().to_string())]),
        external_ids: tags::external_ids(&target.pod, Role::Queue),
        ..Queue::default()
    }
}

fn port_qos(qos: Option<Ref<vswitch::QoS>>) -> Result<ovsdb::Row, ovsdb::EncodeError> {
    let mut e = Encoder::new(Port::TABLE, Port::table_schema());
    e.optional("qos", qos.as_ref())?;
    Ok(e.finish())
}
