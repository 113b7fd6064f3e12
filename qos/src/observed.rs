//! What the planner reads about one pod: [`NbObserved`] (its logical switch and the NB `QoS`
//! rows it owns) and [`NodeObserved`] (its OVS port and interface, and the OVS `QoS` and
//! `Queue` rows it owns), from a replica snapshot or, in tests, from typed rows.

use ovn_model::nb::{self, LogicalSwitch};
use ovn_model::owner::{Component, Scope};
use ovn_model::reconcile::OwnedRow;
use ovn_model::snapshot::{self, Typed};
use ovn_model::vswitch::{self, Interface, Port, Queue};
use ovsdb::monitor::MonitorRequest;
use ovsdb::{Ref, Table, Uuid};

use crate::config::PodTarget;

/// The pod's owner scope: the rows `qos` made for it.
fn scope(target: &PodTarget) -> Scope {
    Scope::object(Component::QOS, target.pod.object())
}

/// The OVN_Northbound rows the planner needs for one pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NbObserved {
    /// The UUID of the pod's logical switch, if it exists.
    pub switch: Option<Uuid>,
    /// The NB `QoS` rows the planner made for the pod.
    pub owned: Vec<OwnedRow>,
}

impl NbObserved {
    /// The OVN_Northbound tables [`NbObserved::from_snapshot`] reads.
    pub const TABLES: [&'static str; 2] = [LogicalSwitch::TABLE, nb::QoS::TABLE];

    /// A monitor of [`NbObserved::TABLES`], every column.
    #[must_use]
    pub fn monitor() -> MonitorRequest {
        snapshot::monitor(nb::DATABASE, &Self::TABLES)
    }

    /// The pod's switch (the first with its name) and rows, from an OVN_Northbound snapshot
    /// (monitoring at least [`NbObserved::TABLES`]).
    #[must_use]
    pub fn from_snapshot(nb: &Typed<'_>, target: &PodTarget) -> Self {
        NbObserved {
            switch: nb.uuid_by_name::<LogicalSwitch>(&target.switch),
            owned: nb.owned::<nb::QoS>(&scope(target)),
        }
    }

    /// The same from typed rows (more rows than the pod's are fine).
    #[must_use]
    pub fn from_rows(switches: &[LogicalSwitch], qos: &[nb::QoS], target: &PodTarget) -> Self {
        let scope = scope(target);
        NbObserved {
            switch: switches
                .iter()
                .find(|s| s.name == target.switch)
                .map(|s| s.uuid),
            owned: OwnedRow::from_rows(qos)
                .into_iter()
                .filter(|o| scope.contains(&o.key))
                .collect(),
        }
    }
}

/// The pod's OVS port as observed: its UUID and the `QoS` it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortState {
    /// The port's UUID.
    pub uuid: Uuid,
    /// Its name.
    pub name: String,
    /// The `QoS` row in its `qos` column.
    pub qos: Option<Uuid>,
}

impl PortState {
    fn of(p: &Port) -> Self {
        PortState {
            uuid: p.uuid,
            name: p.name.clone(),
            qos: p.qos.as_ref().and_then(Ref::uuid),
        }
    }
}

/// The pod's OVS interface as observed: its UUID and its policing (kbit/s, kbit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceState {
    /// The interface's UUID.
    pub uuid: Uuid,
    /// `ingress_policing_rate`.
    pub rate: i64,
    /// `ingress_policing_burst`.
    pub burst: i64,
}

/// The node's Open_vSwitch rows the planner needs for one pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeObserved {
    /// The pod's port, if it exists.
    pub port: Option<PortState>,
    /// The pod's interface, if it exists.
    pub interface: Option<InterfaceState>,
    /// The `QoS` and `Queue` rows the planner made for the pod.
    pub owned: Vec<OwnedRow>,
    /// Other ports whose `qos` is one of those rows (left behind by an interrupted run).
    pub bound_elsewhere: Vec<PortState>,
}

impl NodeObserved {
    /// The Open_vSwitch tables [`NodeObserved::from_snapshot`] reads.
    pub const TABLES: [&'static str; 4] = [
        Port::TABLE,
        Interface::TABLE,
        vswitch::QoS::TABLE,
        Queue::TABLE,
    ];

    /// A monitor of [`NodeObserved::TABLES`], every column.
    #[must_use]
    pub fn monitor() -> MonitorRequest {
        snapshot::monitor(vswitch::DATABASE, &Self::TABLES)
    }

    /// The pod's port, interface and rows from the node's Open_vSwitch snapshot (monitoring
    /// at least [`NodeObserved::TABLES`]).
    #[must_use]
    pub fn from_snapshot(ovs: &Typed<'_>, target: &PodTarget) -> Self {
        let scope = scope(target);
        let mut owned = ovs.owned::<vswitch::QoS>(&scope);
        owned.extend(ovs.owned::<Queue>(&scope));
        let port = ovs.by_name::<Port>(&target.ovs_port);
        let bound = bound_elsewhere(ovs.rows::<Port>(), port.as_ref(), &owned);
        NodeObserved {
            port: port.as_ref().map(PortState::of),
            interface: ovs
                .by_name::<Interface>(&target.ovs_port)
                .map(|i| interface_state(&i)),
            owned,
            bound_elsewhere: bound,
        }
    }

    /// The same from typed rows (more rows than the pod's are fine).
    #[must_use]
    pub fn from_rows(
        ports: &[Port],
        interfaces: &[Interface],
        qos: &[vswitch::QoS],
        queues: &[Queue],
        target: &PodTarget,
    ) -> Self {
        let scope = scope(target);
        let owned: Vec<OwnedRow> = OwnedRow::from_rows(qos)
            .into_iter()
            .chain(OwnedRow::from_rows(queues))
            .filter(|o| scope.contains(&o.key))
            .collect();
        let port = ports.iter().find(|p| p.name == target.ovs_port);
        NodeObserved {
            port: port.map(PortState::of),
            interface: interfaces
                .iter()
                .find(|i| i.name == target.ovs_port)
                .map(interface_state),
            bound_elsewhere: bound_elsewhere(ports.iter().cloned(), port, &owned),
            owned,
        }
    }
}

fn interface_state(i: &Interface) -> InterfaceState {
    InterfaceState {
        uuid: i.uuid,
        rate: i.ingress_policing_rate,
        burst: i.ingress_policing_burst,
    }
}

/// The ports other than the pod's whose `qos` is one of `owned`.
fn bound_elsewhere(
    ports: impl IntoIterator<Item = Port>,
    pod_port: Option<&Port>,
    owned: &[OwnedRow],
) -> Vec<PortState> {
    let mut bound: Vec<PortState> = ports
        .into_iter()
        .filter(|p| Some(p.uuid) != pod_port.map(|pp| pp.uuid))
        .map(|p| PortState::of(&p))
        .filter(|p| {
            p.qos.is_some_and(|q| {
                owned
                    .iter()
                    .any(|o| o.uuid == q && o.table == vswitch::QoS::TABLE)
            })
        })
        .collect();
    bound.sort_by(|a, b| a.name.cmp(&b.name));
    bound
}
