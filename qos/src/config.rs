//! Per-cluster choices ([`Config`]: which mechanism enforces each direction) and where one pod
//! lives ([`PodTarget`]).

use crate::intent::PodId;

/// How a limit on traffic **from** the pod is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EgressMechanism {
    /// An OVN NB `QoS` row on the pod's logical switch: `from-lport`, `inport == "<lsp>"`,
    /// `bandwidth` rate and burst; `ovn-controller` turns it into an OpenFlow meter on the
    /// pod's chassis.
    #[default]
    OvnQos,
    /// `Interface.ingress_policing_rate` and `ingress_policing_burst` of the pod's OVS
    /// interface, as Kube-OVN does (the interface *receives* what the pod sends). Needs the
    /// kernel's `cls_basic` and `act_police`.
    OvsPolicing,
}

/// How a limit on traffic **toward** the pod is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IngressMechanism {
    /// An OVN NB `QoS` row on the pod's logical switch: `to-lport`, `outport == "<lsp>"`.
    #[default]
    OvnQos,
    /// A `linux-htb` OVS `QoS` with one `Queue` (`other_config:max-rate`) on the pod's
    /// `Port.qos`, as Kube-OVN does: a shaper, so the burst is not used.
    OvsHtb,
}

/// The planner's per-cluster configuration.
///
/// DSCP marking is always an OVN NB `QoS` row (`from-lport`, `action` `dscp`); netem is always
/// a `linux-netem` OVS `QoS` on the pod's port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Config {
    pub(crate) egress: EgressMechanism,
    pub(crate) ingress: IngressMechanism,
    pub(crate) priority: u16,
}

impl Default for Config {
    /// Both directions through OVN NB `QoS` rows, priority 2000.
    fn default() -> Self {
        Config {
            egress: EgressMechanism::default(),
            ingress: IngressMechanism::default(),
            priority: 2000,
        }
    }
}

impl Config {
    /// Sets the egress mechanism.
    #[must_use]
    pub fn with_egress(mut self, m: EgressMechanism) -> Self {
        self.egress = m;
        self
    }

    /// Sets the ingress mechanism.
    #[must_use]
    pub fn with_ingress(mut self, m: IngressMechanism) -> Self {
        self.ingress = m;
        self
    }

    /// Sets the priority of the OVN NB `QoS` rows (capped at 32767).
    #[must_use]
    pub fn with_priority(mut self, priority: u16) -> Self {
        self.priority = priority.min(32_767);
        self
    }

    /// How egress limits are enforced.
    #[must_use]
    pub fn egress(&self) -> EgressMechanism {
        self.egress
    }

    /// How ingress limits are enforced.
    #[must_use]
    pub fn ingress(&self) -> IngressMechanism {
        self.ingress
    }

    /// Priority of the OVN NB `QoS` rows (0 to 32767).
    #[must_use]
    pub fn priority(&self) -> u16 {
        self.priority
    }
}

/// Where one pod lives: its logical switch and port in OVN, and its port on the node's OVS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PodTarget {
    /// The pod.
    pub pod: PodId,
    /// The name of the pod's logical switch.
    pub switch: String,
    /// The name of the pod's logical switch port.
    pub lsp: String,
    /// The name of the pod's OVS port and interface on `br-int`.
    pub ovs_port: String,
}

impl PodTarget {
    /// A pod on logical switch port `lsp` of `switch`, attached to the node as OVS port
    /// `ovs_port`.
    pub fn new(
        pod: PodId,
        switch: impl Into<String>,
        lsp: impl Into<String>,
        ovs_port: impl Into<String>,
    ) -> Self {
        PodTarget {
            pod,
            switch: switch.into(),
            lsp: lsp.into(),
            ovs_port: ovs_port.into(),
        }
    }
}
