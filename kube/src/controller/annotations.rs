//! Kube-OVN's annotation keys, read from Namespaces and Pods and written back on Pods and
//! Nodes, so that users can move over with their manifests.
//!
//! | object | key (`ovn.kubernetes.io/...`) | in/out | value |
//! |---|---|---|---|
//! | Namespace | `cidr` | in | the subnet's CIDR (`10.17.0.0/16`; one per family, comma-separated) |
//! | Namespace | `gateway` | in | the gateway address per family (default: the first address) |
//! | Namespace | `exclude_ips` | in | addresses and `a..b` ranges never handed out, comma-separated |
//! | Namespace | `logical_switch` | in | the subnet's name (default: the namespace's name when it has a `cidr`, else `ovn-default`) |
//! | Namespace | `private` | in | `true`: only the subnet itself, the `allow` CIDRs and the nodes reach its pods |
//! | Namespace | `allow` | in | CIDRs allowed into a private subnet, comma-separated |
//! | Namespace | `gateway_type` | in | `distributed` (default), `centralized`, or `native` (ovnkit: SNAT and floating IPs in OVN, on the cluster's OVN-native gateway) |
//! | Namespace | `gateway_node` | in | the gateway nodes of a centralized subnet, comma-separated |
//! | Namespace | `nat_outgoing` | in | `true`/`false`: masquerade traffic leaving the cluster (default `true`) |
//! | Pod | `ip_address` | in/out | a static address per family, comma-separated; written back with the lease |
//! | Pod | `mac_address` | in/out | a static MAC; written back with the lease |
//! | Pod | `ip_pool` | in | addresses to pick from, comma-separated (a StatefulSet pod takes the one at its ordinal) |
//! | Pod | `logical_switch` | in/out | the subnet to use instead of the namespace's |
//! | Pod | `ingress_rate`, `egress_rate`, `ingress_burst`, `egress_burst` | in | QoS (the `qos` crate's keys) |
//! | Pod | `eip` | in | a floating IP for the pod (in a subnet with `gateway_type` `native`) |
//! | Pod | `snat` | in | the source address the pod's traffic leaves the cluster with, instead of the subnet's (in a subnet with `gateway_type` `native`; not with an `eip`) |
//! | Pod | `allocated`, `cidr`, `gateway` | out | `true`, the subnet's CIDR and gateway |
//! | Node | `ip_address`, `mac_address`, `cidr`, `gateway`, `port_name`, `logical_switch` | out | the node's join port |
//!
//! A value that cannot be read is an [`AnnotationError`] naming the object, the key, the value
//! and why; the object is then left as it is in OVN.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use ovn_model::MacAddr;

use super::source::ObjectRef;

/// The prefix of every key.
pub const PREFIX: &str = "ovn.kubernetes.io/";
/// Namespace: the subnet's CIDR.
pub const CIDR: &str = "ovn.kubernetes.io/cidr";
/// Namespace: the subnet's gateway; Pod (out): the pod's gateway.
pub const GATEWAY: &str = "ovn.kubernetes.io/gateway";
/// Namespace: addresses never handed out.
pub const EXCLUDE_IPS: &str = "ovn.kubernetes.io/exclude_ips";
/// Namespace, Pod: the subnet (logical switch) by name.
pub const LOGICAL_SWITCH: &str = "ovn.kubernetes.io/logical_switch";
/// Namespace: a private subnet.
pub const PRIVATE: &str = "ovn.kubernetes.io/private";
/// Namespace: CIDRs allowed into a private subnet.
pub const ALLOW: &str = "ovn.kubernetes.io/allow";
/// Namespace: `distributed`, `centralized` or `native`.
pub const GATEWAY_TYPE: &str = "ovn.kubernetes.io/gateway_type";
/// Namespace: the gateway nodes of a centralized subnet.
pub const GATEWAY_NODE: &str = "ovn.kubernetes.io/gateway_node";
/// Namespace: masquerade traffic leaving the cluster.
pub const NAT_OUTGOING: &str = "ovn.kubernetes.io/nat_outgoing";
/// Pod, Node (out): the address.
pub const IP_ADDRESS: &str = "ovn.kubernetes.io/ip_address";
/// Pod, Node (out): the MAC.
pub const MAC_ADDRESS: &str = "ovn.kubernetes.io/mac_address";
/// Pod: addresses to pick from.
pub const IP_POOL: &str = "ovn.kubernetes.io/ip_pool";
/// Pod: a floating IP.
pub const EIP: &str = "ovn.kubernetes.io/eip";
/// Pod: its own SNAT address.
pub const SNAT: &str = "ovn.kubernetes.io/snat";
/// Pod (out): `true` once the pod has its lease and port.
pub const ALLOCATED: &str = "ovn.kubernetes.io/allocated";
/// Pod, Node (out): the subnet's CIDR.
pub const OUT_CIDR: &str = CIDR;
/// Node (out): the join port's name.
pub const PORT_NAME: &str = "ovn.kubernetes.io/port_name";

/// Why an annotation value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadValue {
    /// Not a CIDR (`10.17.0.0/16`).
    #[error("not a CIDR (write a network such as 10.17.0.0/16)")]
    NotACidr,
    /// Not an IP address.
    #[error("not an IP address")]
    NotAnAddress,
    /// Not a MAC address.
    #[error("not a MAC address (write six hex bytes such as 0a:00:00:00:00:01)")]
    NotAMac,
    /// Not `true` or `false`.
    #[error("not true or false")]
    NotABool,
    /// Not `distributed`, `centralized` or `native`.
    #[error("not distributed, centralized or native")]
    NotAGatewayType,
    /// Two values of one family.
    #[error("two values for one address family")]
    TwoOfOneFamily,
    /// An address outside the subnet it is for.
    #[error("{address} is outside the subnet's CIDR {cidr}")]
    OutsideSubnet {
        /// The address.
        address: IpAddr,
        /// The subnet's CIDR.
        cidr: String,
    },
    /// A centralized subnet without gateway nodes.
    #[error("a centralized subnet needs {key}")]
    Missing {
        /// The key that is missing.
        key: &'static str,
    },
    /// Something else: the reason in words.
    #[error("{0}")]
    Other(String),
}

/// An annotation the controller refused: which object, which key, which value, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: annotation {}={:?}: {}", .0.object, .0.key, .0.value, .0.reason)]
pub struct AnnotationError(Box<Refused>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Refused {
    object: ObjectRef,
    key: &'static str,
    value: String,
    reason: BadValue,
}

impl AnnotationError {
    /// The error for `key` of `object`, whose value is `value`.
    #[must_use]
    pub fn new(object: ObjectRef, key: &'static str, value: String, reason: BadValue) -> Self {
        AnnotationError(Box::new(Refused {
            object,
            key,
            value,
            reason,
        }))
    }

    /// The object.
    #[must_use]
    pub fn object(&self) -> &ObjectRef {
        &self.0.object
    }

    /// The key.
    #[must_use]
    pub fn key(&self) -> &'static str {
        self.0.key
    }

    /// The value as written.
    #[must_use]
    pub fn value(&self) -> &str {
        &self.0.value
    }

    /// What is wrong with it.
    #[must_use]
    pub fn reason(&self) -> &BadValue {
        &self.0.reason
    }
}

/// The annotations of one object, with the object to name in errors.
pub(crate) struct Reader<'a> {
    object: &'a ObjectRef,
    values: &'a BTreeMap<String, String>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(object: &'a ObjectRef, values: &'a BTreeMap<String, String>) -> Self {
        Reader { object, values }
    }

    /// The trimmed value of `key`, `None` when absent or empty.
    pub(crate) fn get(&self, key: &str) -> Option<&'a str> {
        self.values
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub(crate) fn error(&self, key: &'static str, reason: BadValue) -> AnnotationError {
        AnnotationError::new(
            self.object.clone(),
            key,
            self.values.get(key).cloned().unwrap_or_default(),
            reason,
        )
    }

    /// A comma-separated list.
    pub(crate) fn list(&self, key: &str) -> Vec<&'a str> {
        self.get(key)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One parsed value per comma-separated item, at most one per address family.
    pub(crate) fn per_family<T: Copy>(
        &self,
        key: &'static str,
        parse: impl Fn(&str) -> Option<T>,
        is_v4: impl Fn(&T) -> bool,
        bad: BadValue,
    ) -> Result<Vec<T>, AnnotationError> {
        let mut out: Vec<T> = Vec::new();
        for item in self.list(key) {
            let v = parse(item).ok_or_else(|| self.error(key, bad.clone()))?;
            if out.iter().any(|o| is_v4(o) == is_v4(&v)) {
                return Err(self.error(key, BadValue::TwoOfOneFamily));
            }
            out.push(v);
        }
        Ok(out)
    }

    /// CIDRs, one per family.
    pub(crate) fn cidrs(&self, key: &'static str) -> Result<Vec<IpNet>, AnnotationError> {
        self.per_family(key, |s| s.parse().ok(), IpNet::is_v4, BadValue::NotACidr)
    }

    /// CIDRs in list order (any number per family).
    pub(crate) fn cidrs_list(&self, key: &'static str) -> Result<Vec<IpNet>, AnnotationError> {
        self.list(key)
            .into_iter()
            .map(|s| {
                s.parse::<IpNet>()
                    .map(|n| n.trunc())
                    .map_err(|_| self.error(key, BadValue::NotACidr))
            })
            .collect()
    }

    /// Addresses, one per family.
    pub(crate) fn addresses(&self, key: &'static str) -> Result<Vec<IpAddr>, AnnotationError> {
        self.per_family(
            key,
            |s| s.parse().ok(),
            IpAddr::is_ipv4,
            BadValue::NotAnAddress,
        )
    }

    /// Addresses in list order (any number per family).
    pub(crate) fn address_list(&self, key: &'static str) -> Result<Vec<IpAddr>, AnnotationError> {
        self.list(key)
            .into_iter()
            .map(|s| {
                s.parse()
                    .map_err(|_| self.error(key, BadValue::NotAnAddress))
            })
            .collect()
    }

    /// A boolean, with its default when absent.
    pub(crate) fn bool(&self, key: &'static str, default: bool) -> Result<bool, AnnotationError> {
        match self.get(key) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(_) => Err(self.error(key, BadValue::NotABool)),
        }
    }

    /// A MAC address.
    pub(crate) fn mac(&self, key: &'static str) -> Result<Option<MacAddr>, AnnotationError> {
        self.get(key)
            .map(|v| v.parse().map_err(|_| self.error(key, BadValue::NotAMac)))
            .transpose()
    }
}

/// `v4` for IPv4 networks.
trait Family {
    fn is_v4(&self) -> bool;
}

impl Family for IpNet {
    fn is_v4(&self) -> bool {
        matches!(self, IpNet::V4(_))
    }
}

/// Formats values as a comma-separated list (the form of the output annotations).
pub(crate) fn joined<T: fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::source::Kind;

    fn reader_of(pairs: &[(&str, &str)]) -> (ObjectRef, BTreeMap<String, String>) {
        (
            ObjectRef::cluster(Kind::Namespace, "web"),
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn lists_and_families() {
        let (o, v) = reader_of(&[(CIDR, " 10.17.0.0/16 , fd00:17::/64 ")]);
        let r = Reader::new(&o, &v);
        assert_eq!(r.cidrs(CIDR).unwrap().len(), 2);
        let (o, v) = reader_of(&[(CIDR, "10.17.0.0/16,10.18.0.0/16")]);
        let err = Reader::new(&o, &v).cidrs(CIDR).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"Namespace web: annotation ovn.kubernetes.io/cidr="10.17.0.0/16,10.18.0.0/16": two values for one address family"#
        );
        let (o, v) = reader_of(&[(CIDR, "10.17.0.0/33")]);
        let err = Reader::new(&o, &v).cidrs(CIDR).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"Namespace web: annotation ovn.kubernetes.io/cidr="10.17.0.0/33": not a CIDR (write a network such as 10.17.0.0/16)"#
        );
    }

    #[test]
    fn booleans_and_macs() {
        let (o, v) = reader_of(&[(PRIVATE, "yes"), (MAC_ADDRESS, "0A:00:00:00:00:01")]);
        let r = Reader::new(&o, &v);
        assert_eq!(
            r.bool(PRIVATE, false).unwrap_err().to_string(),
            r#"Namespace web: annotation ovn.kubernetes.io/private="yes": not true or false"#
        );
        assert!(r.bool(NAT_OUTGOING, true).unwrap());
        assert_eq!(
            r.mac(MAC_ADDRESS).unwrap().unwrap().to_string(),
            "0a:00:00:00:00:01"
        );
    }
}
