//! The node's Open_vSwitch database, over OVSDB: the pods' ports on `br-int` and their QoS.
//!
//! A [`NodeOvs`] keeps a live replica of the tables it needs (`Open_vSwitch`, `Bridge`,
//! `Port`, `Interface`, `QoS`, `Queue`) and writes through it, one transaction per change, no
//! `ovs-vsctl`. Every port the agent adds carries, in the `external_ids` of both the `Port`
//! and its `Interface`, `iface-id=<namespace>.<pod>` (what `ovn-controller` binds to the
//! logical switch port) and the owner tags of [`ovn_model::owner`] with owner
//! [`AGENT`] and the object `pod/<namespace>/<pod>`, plus the attachment's data
//! ([`CONTAINER_ID`], [`IFNAME`], [`NETNS`]): how [`NodeOvs::attachments`] finds them again
//! after a restart, for `GC` and for the start-up reconcile.

use std::collections::BTreeMap;

use ovn_model::owner::{self, Component, Key, Object};
use ovn_model::snapshot::Typed;
use ovn_model::vswitch::{self, Bridge, Interface, OpenVSwitch, Port, Queue};
use ovsdb::client::{ReplicaClient, ReplicaClientError, ReplicaConfig};
use ovsdb::{
    Condition, Datum, Insert, Mutate, Mutation, NamedUuid, Row, Table, Transaction, Update,
};

/// The owner tag value of the agent's rows.
pub const AGENT: &str = "agent";
/// `external_ids` key on the agent's ports: the attachment's `CNI_CONTAINERID`.
pub const CONTAINER_ID: &str = "ovnkit.io/container-id";
/// `external_ids` key on the agent's ports: the attachment's `CNI_IFNAME`.
pub const IFNAME: &str = "ovnkit.io/ifname";
/// `external_ids` key on the agent's ports: the attachment's `CNI_NETNS`.
pub const NETNS: &str = "ovnkit.io/netns";
/// The `external_ids` key `ovn-controller` binds a port to its logical switch port with.
pub const IFACE_ID: &str = "iface-id";

/// Why an Open_vSwitch operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OvsError {
    /// The replica client failed (connect, monitor, transaction).
    #[error("Open_vSwitch database: {what}")]
    Client {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: Box<ReplicaClientError>,
    },
    /// The integration bridge does not exist.
    #[error("bridge {0} not found in the Open_vSwitch database")]
    NoBridge(String),
    /// A QoS plan could not be made or sent.
    #[error("QoS for {pod}: {detail}")]
    Qos {
        /// The pod.
        pod: String,
        /// Why.
        detail: String,
    },
    /// A transaction was refused.
    #[error("Open_vSwitch transaction ({what}) refused: {detail}")]
    Refused {
        /// What was being done.
        what: String,
        /// The server's answer.
        detail: String,
    },
}

fn client_error(what: impl Into<String>) -> impl FnOnce(ReplicaClientError) -> OvsError {
    let what = what.into();
    move |e| OvsError::Client {
        what,
        source: Box::new(e),
    }
}

/// One pod attachment's port as the agent wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentPort {
    /// The port's (and interface's, and host veth's) name.
    pub name: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_IFNAME`.
    pub ifname: String,
    /// `CNI_NETNS`.
    pub netns: String,
}

impl AttachmentPort {
    /// The logical switch port it binds to: `<namespace>.<pod>`.
    #[must_use]
    pub fn iface_id(&self) -> String {
        format!("{}.{}", self.namespace, self.pod)
    }

    fn external_ids(&self) -> BTreeMap<String, String> {
        let mut ids = Key::new(AGENT, Object::pod(&self.namespace, &self.pod), "attachment")
            .with_id(&self.container_id)
            .tags();
        ids.insert(IFACE_ID.to_owned(), self.iface_id());
        ids.insert(CONTAINER_ID.to_owned(), self.container_id.clone());
        ids.insert(IFNAME.to_owned(), self.ifname.clone());
        ids.insert(NETNS.to_owned(), self.netns.clone());
        ids
    }

    fn from_ids(name: &str, ids: &BTreeMap<String, String>) -> Option<Self> {
        let key = Key::from_tags(ids)?;
        if key.owner != Component::from(AGENT) || key.object.kind() != "pod" {
            return None;
        }
        let (namespace, pod) = key.object.name().split_once('/')?;
        Some(AttachmentPort {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            pod: pod.to_owned(),
            container_id: ids.get(CONTAINER_ID)?.clone(),
            ifname: ids.get(IFNAME).cloned().unwrap_or_default(),
            netns: ids.get(NETNS).cloned().unwrap_or_default(),
        })
    }
}

/// The node's Open_vSwitch database: a live replica and the writes the agent makes.
#[derive(Debug, Clone)]
pub struct NodeOvs {
    client: ReplicaClient,
    bridge: String,
}

/// The tables the agent monitors.
const TABLES: [&str; 6] = [
    OpenVSwitch::TABLE,
    Bridge::TABLE,
    Port::TABLE,
    Interface::TABLE,
    vswitch::QoS::TABLE,
    Queue::TABLE,
];

impl NodeOvs {
    /// Connects to `remote` (`unix:/var/run/openvswitch/db.sock`) and waits until the replica
    /// is synced; ports go on `bridge`.
    ///
    /// # Errors
    /// [`OvsError::Client`] when the server cannot be reached within the client's start
    /// timeout.
    pub async fn start(remote: &str, bridge: &str) -> Result<Self, OvsError> {
        let monitor = ovn_model::snapshot::monitor(vswitch::DATABASE, &TABLES);
        let (client, mut events) = ReplicaClient::start(ReplicaConfig::new(remote, monitor))
            .await
            .map_err(client_error(format!("connecting to {remote}")))?;
        tokio::spawn(async move { while events.next().await.is_some() {} });
        client
            .with_replica(owner::index)
            .map_err(|e| OvsError::Refused {
                what: "indexing the replica".into(),
                detail: e.to_string(),
            })?;
        client
            .wait_synced()
            .await
            .map_err(client_error("the first sync"))?;
        Ok(NodeOvs {
            client,
            bridge: bridge.to_owned(),
        })
    }

    /// The replica client.
    #[must_use]
    pub fn client(&self) -> &ReplicaClient {
        &self.client
    }

    /// Whether the replica is synced with a connected server now.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.client.is_synced()
    }

    /// `external_ids:system-id` of the `Open_vSwitch` row: the node's chassis name.
    #[must_use]
    pub fn system_id(&self) -> Option<String> {
        let snap = self.client.snapshot();
        Typed::new(&snap)
            .rows::<OpenVSwitch>()
            .find_map(|o| o.external_ids.get("system-id").cloned())
    }

    /// The port called `name`, if there is one.
    #[must_use]
    pub fn port(&self, name: &str) -> Option<Port> {
        let snap = self.client.snapshot();
        Typed::new(&snap).by_name::<Port>(name)
    }

    /// Every attachment port the agent made (by its owner tags).
    #[must_use]
    pub fn attachments(&self) -> Vec<AttachmentPort> {
        let snap = self.client.snapshot();
        let mut out: Vec<AttachmentPort> = Typed::new(&snap)
            .rows::<Port>()
            .filter_map(|p| AttachmentPort::from_ids(&p.name, &p.external_ids))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    fn bridge(&self) -> Result<Bridge, OvsError> {
        let snap = self.client.snapshot();
        Typed::new(&snap)
            .by_name::<Bridge>(&self.bridge)
            .ok_or_else(|| OvsError::NoBridge(self.bridge.clone()))
    }

    /// Waits (at most 10 s) until the replica shows `f` true: a transaction's reply may
    /// arrive before the replica task applied its update.
    async fn settle(&self, mut f: impl FnMut(&Typed<'_>) -> bool) {
        let mut changes = self.client.changes();
        if f(&Typed::new(changes.last_snapshot())) {
            return;
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while let Some((_, snap)) = changes.next().await {
                if f(&Typed::new(&snap)) {
                    return;
                }
            }
        })
        .await;
    }

    async fn send(&self, what: &str, txn: &Transaction) -> Result<(), OvsError> {
        self.client
            .transact(txn)
            .await
            .map(drop)
            .map_err(client_error(what.to_owned()))
    }

    /// Adds (or re-tags) the attachment's port on the bridge: `Port` and `Interface` named
    /// `port.name`, in one transaction.
    ///
    /// # Errors
    /// [`OvsError`] when the bridge is missing or the server refuses.
    pub async fn add_attachment(&self, port: &AttachmentPort) -> Result<(), OvsError> {
        self.add_port(&port.name, "", None, port.external_ids())
            .await
    }

    /// Adds port `name` (with an interface of `kind`, `""` for a system device, and
    /// `mac` for internal ones) tagged with `ids`, or re-tags an existing one.
    pub(crate) async fn add_port(
        &self,
        name: &str,
        kind: &str,
        mac: Option<&str>,
        ids: BTreeMap<String, String>,
    ) -> Result<(), OvsError> {
        let bridge = self.bridge()?;
        let what = format!("adding port {name} to {}", self.bridge);
        let mut txn = Transaction::new(vswitch::DATABASE);
        let ids_datum = Datum::map(ids.clone());
        if let Some(existing) = self.port(name) {
            txn.push(
                Update::new(
                    Port::TABLE,
                    Row::new().with("external_ids", ids_datum.clone()),
                )
                .filter(Condition::uuid(existing.uuid)),
            );
            txn.push(
                Update::new(Interface::TABLE, Row::new().with("external_ids", ids_datum))
                    .filter(Condition::eq("name", name)),
            );
            if !bridge.ports.iter().any(|p| p.uuid() == Some(existing.uuid)) {
                txn.push(
                    Mutate::new(Bridge::TABLE)
                        .filter(Condition::uuid(bridge.uuid))
                        .mutation(Mutation::insert("ports", Datum::set([existing.uuid]))),
                );
            }
            return self.send(&what, &txn).await;
        }
        let iface = named("iface")?;
        let port = named("port")?;
        let mut irow = Row::new()
            .with("name", name)
            .with("external_ids", ids_datum.clone());
        if !kind.is_empty() {
            irow.insert("type", kind);
        }
        if let Some(mac) = mac {
            irow.insert("mac", mac);
        }
        txn.push(Insert::new(Interface::TABLE, irow).uuid_name(iface.clone()));
        txn.push(
            Insert::new(
                Port::TABLE,
                Row::new()
                    .with("name", name)
                    .with("interfaces", Datum::set([iface]))
                    .with("external_ids", ids_datum),
            )
            .uuid_name(port.clone()),
        );
        txn.push(
            Mutate::new(Bridge::TABLE)
                .filter(Condition::uuid(bridge.uuid))
                .mutation(Mutation::insert("ports", Datum::set([port]))),
        );
        self.send(&what, &txn).await?;
        self.settle(|t| t.by_name::<Port>(name).is_some()).await;
        Ok(())
    }

    /// Removes port `name` from the bridge (its `Port` and `Interface` go with it). Returns
    /// whether there was one.
    ///
    /// # Errors
    /// [`OvsError`] when the server refuses.
    pub async fn delete_port(&self, name: &str) -> Result<bool, OvsError> {
        let Some(port) = self.port(name) else {
            return Ok(false);
        };
        let snap = self.client.snapshot();
        let bridges: Vec<Bridge> = Typed::new(&snap)
            .rows::<Bridge>()
            .filter(|b| b.ports.iter().any(|p| p.uuid() == Some(port.uuid)))
            .collect();
        let mut txn = Transaction::new(vswitch::DATABASE);
        for b in &bridges {
            txn.push(
                Mutate::new(Bridge::TABLE)
                    .filter(Condition::uuid(b.uuid))
                    .mutation(Mutation::delete("ports", Datum::set([port.uuid]))),
            );
        }
        if txn.is_empty() {
            return Ok(false);
        }
        self.send(&format!("removing port {name}"), &txn).await?;
        self.settle(|t| t.by_name::<Port>(name).is_none()).await;
        Ok(true)
    }

    /// Makes the node's QoS rows of the pod on port `port` what `intent` says (clearing them
    /// when it asks nothing).
    ///
    /// # Errors
    /// [`OvsError::Qos`] when the plan cannot be made, or the server refuses it.
    pub async fn apply_qos(
        &self,
        planner: &qos::Planner,
        target: &qos::PodTarget,
        intent: &qos::QosIntent,
    ) -> Result<usize, OvsError> {
        let pod = target.pod.to_string();
        let qos_err = |detail: String| OvsError::Qos {
            pod: pod.clone(),
            detail,
        };
        let snap = self.client.snapshot();
        let observed = qos::NodeObserved::from_snapshot(&Typed::new(&snap), target);
        let plan = planner
            .plan_node(target, intent, &observed)
            .map_err(|e| qos_err(e.to_string()))?;
        if plan.is_empty() {
            return Ok(0);
        }
        let steps = plan.steps().len();
        let prepared = plan.transaction().map_err(|e| qos_err(e.to_string()))?;
        let outcome = self
            .client
            .transact(prepared.transaction())
            .await
            .map_err(|e| qos_err(e.to_string()))?;
        prepared
            .check(&outcome)
            .map_err(|e| qos_err(e.to_string()))?;
        Ok(steps)
    }
}

fn named(name: &str) -> Result<NamedUuid, OvsError> {
    NamedUuid::new(name).map_err(|e| OvsError::Refused {
        what: "naming a row".into(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_tags_round_trip() {
        let a = AttachmentPort {
            name: "0123456789a_h".into(),
            namespace: "default".into(),
            pod: "web".into(),
            container_id: "0123456789abcdef".into(),
            ifname: "eth0".into(),
            netns: "/var/run/netns/x".into(),
        };
        let ids = a.external_ids();
        assert_eq!(ids[IFACE_ID], "default.web");
        assert_eq!(ids[owner::OWNER], AGENT);
        assert_eq!(AttachmentPort::from_ids(&a.name, &ids), Some(a));
        let mut other = ids.clone();
        other.insert(owner::OWNER.into(), "qos".into());
        assert_eq!(AttachmentPort::from_ids("x", &other), None);
    }
}
