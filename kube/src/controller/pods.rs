//! Pods to leases: what a pod asks for (its annotations), the lease `ipam` gives it, and the
//! annotations written back.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Pod;
use ovn_model::MacAddr;

use super::annotations::{self as ann, AnnotationError, BadValue, Reader};
use super::source::{Kind, ObjectRef};
use super::subnets::Subnet;

/// What the controller reads from a Pod object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its UID.
    pub uid: Option<String>,
    /// The node it is scheduled on.
    pub node: Option<String>,
    /// It uses the node's network (no port, no address).
    pub host_network: bool,
    /// It has finished (`Succeeded` or `Failed`): its address is released.
    pub finished: bool,
    /// Its ordinal when a StatefulSet owns it (`web-3` -> 3).
    pub ordinal: Option<u64>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
    /// Its labels (NetworkPolicies select by them).
    pub labels: BTreeMap<String, String>,
    /// Its named container ports: name to protocol (`TCP`, `UDP`, `SCTP`) and number
    /// (NetworkPolicies may name them).
    pub named_ports: BTreeMap<String, (String, u16)>,
}

impl PodView {
    /// The view of a Pod object (`None` without a name).
    #[must_use]
    pub fn of(pod: &Pod) -> Option<Self> {
        let meta = &pod.metadata;
        let name = meta.name.clone()?;
        let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
        let spec = pod.spec.as_ref();
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        let statefulset = meta
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.kind == "StatefulSet");
        let ordinal = statefulset
            .then(|| name.rsplit_once('-').and_then(|(_, n)| n.parse().ok()))
            .flatten();
        let named_ports = spec
            .into_iter()
            .flat_map(|s| &s.containers)
            .flat_map(|c| c.ports.iter().flatten())
            .filter_map(|p| {
                let name = p.name.clone()?;
                let number = u16::try_from(p.container_port).ok()?;
                let protocol = p.protocol.clone().unwrap_or_else(|| "TCP".into());
                Some((name, (protocol, number)))
            })
            .collect();
        Some(PodView {
            namespace,
            uid: meta.uid.clone(),
            node: spec.and_then(|s| s.node_name.clone()),
            host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
            finished: matches!(phase, Some("Succeeded" | "Failed")),
            ordinal,
            annotations: meta.annotations.clone().unwrap_or_default(),
            labels: meta.labels.clone().unwrap_or_default(),
            named_ports,
            name,
        })
    }

    /// `namespace/name`: the IPAM owner of its lease.
    #[must_use]
    pub fn owner(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// `<namespace>.<name>`: its logical switch port.
    #[must_use]
    pub fn port_name(&self) -> String {
        format!("{}.{}", self.namespace, self.name)
    }

    /// The object, for events and write-backs.
    #[must_use]
    pub fn object(&self) -> ObjectRef {
        let o = ObjectRef::namespaced(Kind::Pod, &self.namespace, &self.name);
        match &self.uid {
            Some(u) => o.with_uid(u.clone()),
            None => o,
        }
    }

    /// Whether the pod gets a port and an address.
    #[must_use]
    pub fn wants_network(&self) -> bool {
        !self.host_network && !self.finished
    }
}

/// What a pod's annotations ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct PodRequest {
    /// The subnet to use instead of the namespace's.
    pub subnet: Option<String>,
    /// Static addresses, one per family.
    pub ips: Vec<IpAddr>,
    /// A static MAC.
    pub mac: Option<MacAddr>,
    /// Addresses to pick from.
    pub pool: Vec<IpAddr>,
    /// A floating IP.
    pub eip: Option<IpAddr>,
    /// Its own SNAT address.
    pub snat: Option<IpAddr>,
    /// QoS.
    pub qos: qos::QosIntent,
    /// The QoS annotations as given (recorded on the port for the node agent).
    pub qos_annotations: BTreeMap<String, String>,
}

/// Reads a pod's annotations.
///
/// # Errors
/// The first bad value.
pub fn request(pod: &PodView) -> Result<PodRequest, AnnotationError> {
    let object = pod.object();
    let r = Reader::new(&object, &pod.annotations);
    let id = qos::PodId::new(&pod.namespace, &pod.name);
    let qos = qos::annotations::parse(&id, pod.annotations.iter()).map_err(|e| {
        AnnotationError::new(
            object.clone(),
            e.key,
            e.value.to_string(),
            BadValue::Other(e.reason.to_string()),
        )
    })?;
    let qos_annotations = pod
        .annotations
        .iter()
        .filter(|(k, v)| qos::annotations::KEYS.contains(&k.as_str()) && !v.trim().is_empty())
        .map(|(k, v)| (k.clone(), v.trim().to_owned()))
        .collect();
    Ok(PodRequest {
        subnet: r.get(ann::LOGICAL_SWITCH).map(str::to_owned),
        ips: r.addresses(ann::IP_ADDRESS)?,
        mac: r.mac(ann::MAC_ADDRESS)?,
        pool: r.address_list(ann::IP_POOL)?,
        eip: r
            .get(ann::EIP)
            .map(|v| {
                v.parse()
                    .map_err(|_| r.error(ann::EIP, BadValue::NotAnAddress))
            })
            .transpose()?,
        snat: r
            .get(ann::SNAT)
            .map(|v| {
                v.parse()
                    .map_err(|_| r.error(ann::SNAT, BadValue::NotAnAddress))
            })
            .transpose()?,
        qos,
        qos_annotations,
    })
}

/// Why a pod got no lease (an event, and a retry later).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// An annotation is bad.
    #[error(transparent)]
    Annotation(#[from] AnnotationError),
    /// The subnet asked for does not exist.
    #[error("{object}: subnet {subnet:?} does not exist")]
    NoSubnet {
        /// The pod.
        object: ObjectRef,
        /// The subnet.
        subnet: String,
    },
    /// The IPAM refused (a static address held by another pod, a full subnet or pool, ...).
    #[error("{object}: no address: {reason}")]
    Ipam {
        /// The pod.
        object: ObjectRef,
        /// What the IPAM said (it names the holder of a conflicting address).
        reason: String,
    },
}

/// The lease of `pod` (allocated on first use; the same one afterwards) in `subnet`.
///
/// # Errors
/// [`LeaseError::Ipam`] naming why.
pub fn lease(
    ipam: &mut ipam::Ipam,
    pod: &PodView,
    req: &PodRequest,
    subnet: &Subnet,
) -> Result<ipam::Lease, LeaseError> {
    let owner = pod.owner();
    if let Some(l) = ipam.lease(&owner) {
        if ipam.lease_subnet(&owner) == Some(subnet.name.as_str()) {
            return Ok(l);
        }
        // The pod's subnet changed (its namespace moved): a new lease in the new subnet.
        ipam.release(&owner);
    }
    let mac = req.mac.map(|m| ipam::MacAddr::from(m.octets()));
    let ipam_err = |e: ipam::IpamError| LeaseError::Ipam {
        object: pod.object(),
        reason: e.to_string(),
    };
    let base = |ips: &[IpAddr]| {
        let mut r = ipam::Request::new(&subnet.name, &owner);
        for ip in ips {
            r = r.with_ip(*ip);
        }
        match mac {
            Some(m) => r.with_mac(m),
            None => r,
        }
    };
    if !req.ips.is_empty() {
        return ipam.allocate(&base(&req.ips)).map_err(ipam_err);
    }
    if req.pool.is_empty() {
        return ipam.allocate(&base(&[])).map_err(ipam_err);
    }
    // A StatefulSet pod takes the pool's address at its ordinal; any other pod the first free.
    let candidates: Vec<IpAddr> = match pod.ordinal {
        Some(i) => usize::try_from(i)
            .ok()
            .and_then(|i| req.pool.get(i))
            .copied()
            .into_iter()
            .collect(),
        None => req.pool.clone(),
    };
    let mut last = None;
    for ip in candidates {
        match ipam.allocate(&base(&[ip])) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => ipam_err(e),
        None => LeaseError::Ipam {
            object: pod.object(),
            reason: format!(
                "ordinal {} is past the end of {} ({} addresses)",
                pod.ordinal.unwrap_or_default(),
                ann::IP_POOL,
                req.pool.len()
            ),
        },
    })
}

/// The annotations written back on a pod with a lease.
#[must_use]
pub fn status(lease: &ipam::Lease, subnet: &Subnet) -> BTreeMap<String, Option<String>> {
    let ips: Vec<IpAddr> = lease.addresses().collect();
    let cidrs: Vec<String> = ips
        .iter()
        .filter_map(|ip| subnet.cidr_for(*ip))
        .map(|c| c.to_string())
        .collect();
    let gateways: Vec<String> = ips
        .iter()
        .filter_map(|ip| subnet.gateway_for(*ip))
        .map(|g| g.to_string())
        .collect();
    BTreeMap::from([
        (ann::ALLOCATED.to_owned(), Some("true".to_owned())),
        (ann::IP_ADDRESS.to_owned(), Some(ann::joined(&ips))),
        (ann::MAC_ADDRESS.to_owned(), Some(lease.mac.to_string())),
        (ann::OUT_CIDR.to_owned(), Some(cidrs.join(","))),
        (ann::GATEWAY.to_owned(), Some(gateways.join(","))),
        (ann::LOGICAL_SWITCH.to_owned(), Some(subnet.name.clone())),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    fn pod(name: &str, annotations: &[(&str, &str)], statefulset: bool) -> PodView {
        let p = Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                owner_references: statefulset.then(|| {
                    vec![OwnerReference {
                        kind: "StatefulSet".into(),
                        name: "web".into(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        PodView::of(&p).unwrap()
    }

    fn subnet() -> (ipam::Ipam, Subnet) {
        let s = Subnet {
            name: "ls".into(),
            cidrs: vec!["10.17.0.0/24".parse().unwrap()],
            gateways: vec!["10.17.0.1".parse().unwrap()],
            exclude: vec!["10.17.0.2..10.17.0.9".into()],
            private: false,
            allow: Vec::new(),
            gateway_type: gateway::GatewayType::Distributed,
            gateway_nodes: Vec::new(),
            nat_outgoing: true,
            defined_by: None,
        };
        let mut ipam = ipam::Ipam::new(1);
        ipam.add_subnet(s.ipam_config()).unwrap();
        (ipam, s)
    }

    #[test]
    fn dynamic_static_and_pool_leases() {
        let (mut ipam, s) = subnet();
        let a = pod("a", &[], false);
        let la = lease(&mut ipam, &a, &request(&a).unwrap(), &s).unwrap();
        assert_eq!(la.addresses().next().unwrap().to_string(), "10.17.0.10");
        assert_eq!(lease(&mut ipam, &a, &request(&a).unwrap(), &s).unwrap(), la);
        let b = pod("b", &[(ann::IP_ADDRESS, "10.17.0.10")], false);
        let err = lease(&mut ipam, &b, &request(&b).unwrap(), &s).unwrap_err();
        assert!(
            err.to_string().starts_with("Pod ns/b: no address:"),
            "{err}"
        );
        assert!(
            err.to_string().contains("ns/a"),
            "the holder is named: {err}"
        );
        let pool = "10.17.0.50,10.17.0.51,10.17.0.52";
        let w1 = pod("web-1", &[(ann::IP_POOL, pool)], true);
        let l = lease(&mut ipam, &w1, &request(&w1).unwrap(), &s).unwrap();
        assert_eq!(l.addresses().next().unwrap().to_string(), "10.17.0.51");
        let d = pod("d", &[(ann::IP_POOL, "10.17.0.51,10.17.0.52")], false);
        let l = lease(&mut ipam, &d, &request(&d).unwrap(), &s).unwrap();
        assert_eq!(l.addresses().next().unwrap().to_string(), "10.17.0.52");
        let st = status(&l, &s);
        assert_eq!(st[ann::GATEWAY].as_deref(), Some("10.17.0.1"));
        assert_eq!(st[ann::OUT_CIDR].as_deref(), Some("10.17.0.0/24"));
    }

    #[test]
    fn bad_annotations_name_the_pod_and_key() {
        let p = pod("a", &[(ann::MAC_ADDRESS, "zz")], false);
        assert_eq!(
            request(&p).unwrap_err().to_string(),
            r#"Pod ns/a: annotation ovn.kubernetes.io/mac_address="zz": not a MAC address (write six hex bytes such as 0a:00:00:00:00:01)"#
        );
        let p = pod("a", &[("ovn.kubernetes.io/egress_rate", "fast")], false);
        assert_eq!(
            request(&p).unwrap_err().to_string(),
            r#"Pod ns/a: annotation ovn.kubernetes.io/egress_rate="fast": not a number (write a plain number of Mbit/s)"#
        );
    }
}
