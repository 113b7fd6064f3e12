//! What a pod asks for: [`QosIntent`], built in code or parsed from annotations
//! ([`crate::annotations`]).

use std::fmt;
use std::time::Duration;

use ovn_model::owner::{Component, Key, Object};

use crate::units::{BitRate, Burst, Dscp, LossPercent};

/// A pod's identity: `namespace/name`. Every row the planner creates for it carries
/// `external_ids` `ovnkit.io/owner=qos` and `ovnkit.io/object=pod/<namespace>/<name>`
/// ([`ovn_model::owner`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodId {
    namespace: String,
    name: String,
}

impl PodId {
    /// Pod `name` in `namespace`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        PodId {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The namespace.
    #[must_use]
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl PodId {
    /// The owner object of the pod's rows: `pod/<namespace>/<name>`.
    #[must_use]
    pub fn object(&self) -> Object {
        Object::pod(&self.namespace, &self.name)
    }

    /// The owner key of the pod's row doing `role`.
    #[must_use]
    pub fn key(&self, role: Role) -> Key {
        Key::new(Component::QOS, self.object(), role.as_str())
    }
}

/// What a row the planner made for a pod does (the value of `ovnkit.io/role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// OVN NB `QoS`: limit on traffic from the pod.
    Egress,
    /// OVN NB `QoS`: limit on traffic toward the pod.
    Ingress,
    /// OVN NB `QoS`: DSCP marking of the pod's packets.
    Dscp,
    /// OVS `QoS` on the pod's port (`linux-htb` or `linux-netem`).
    PortQos,
    /// OVS `Queue` of the pod's htb `QoS`.
    Queue,
}

impl Role {
    /// The tag value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Egress => "egress",
            Role::Ingress => "ingress",
            Role::Dscp => "dscp",
            Role::PortQos => "port",
            Role::Queue => "queue",
        }
    }
}

impl fmt::Display for PodId {
    /// `namespace/name`, the form stored in `external_ids`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A rate limit in one direction: the long-term rate and the burst a policer or meter lets
/// through at line rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit {
    /// The rate.
    pub rate: BitRate,
    /// The burst.
    pub burst: Burst,
}

impl Limit {
    /// `rate` with the default burst: one second of `rate`. Policer and meter bursts much
    /// smaller than that starve TCP (measured: a 10 Mbit/s meter with a 1 Mbit burst passes about
    /// 4.7 Mbit/s of TCP; with a 10 Mbit burst, about 11 Mbit/s).
    #[must_use]
    pub const fn new(rate: BitRate) -> Self {
        Limit {
            rate,
            burst: rate.one_second(),
        }
    }

    /// The same rate with `burst`.
    #[must_use]
    pub const fn with_burst(mut self, burst: Burst) -> Self {
        self.burst = burst;
        self
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (burst {})", self.rate, self.burst)
    }
}

/// Network emulation on the pod's port (OVS `linux-netem`): delay, jitter, loss and the queue
/// limit, applied to traffic toward the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Netem {
    /// Added delay.
    pub latency: Duration,
    /// Random variation of the delay.
    pub jitter: Duration,
    /// Packet loss probability.
    pub loss: LossPercent,
    /// Queue limit in packets (`None`: the kernel's default, 1000).
    pub limit: Option<u32>,
}

impl fmt::Display for Netem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "latency {} us, jitter {} us, loss {}",
            self.latency.as_micros(),
            self.jitter.as_micros(),
            self.loss
        )?;
        if let Some(limit) = self.limit {
            write!(f, ", limit {limit} packets")?;
        }
        Ok(())
    }
}

/// Everything one pod asks for. The default asks for nothing: planning it removes every row
/// the planner made for the pod.
///
/// Directions are the pod's: **egress** is traffic the pod sends, **ingress** is traffic
/// toward the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct QosIntent {
    /// Limit on traffic toward the pod.
    pub ingress: Option<Limit>,
    /// Limit on traffic from the pod.
    pub egress: Option<Limit>,
    /// DSCP code point written on the pod's outgoing IP packets.
    pub dscp: Option<Dscp>,
    /// Network emulation toward the pod.
    pub netem: Option<Netem>,
}

impl QosIntent {
    /// Nothing: no limit, no marking, no emulation.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// Limits traffic toward the pod.
    #[must_use]
    pub fn with_ingress(mut self, limit: Limit) -> Self {
        self.ingress = Some(limit);
        self
    }

    /// Limits traffic from the pod.
    #[must_use]
    pub fn with_egress(mut self, limit: Limit) -> Self {
        self.egress = Some(limit);
        self
    }

    /// Marks the pod's outgoing packets.
    #[must_use]
    pub fn with_dscp(mut self, dscp: Dscp) -> Self {
        self.dscp = Some(dscp);
        self
    }

    /// Emulates a network toward the pod.
    #[must_use]
    pub fn with_netem(mut self, netem: Netem) -> Self {
        self.netem = Some(netem);
        self
    }

    /// Whether the intent asks for nothing.
    #[must_use]
    pub fn is_none(&self) -> bool {
        *self == Self::default()
    }
}
