//! Service DNS records answered by OVN itself: the records map of the cluster's one `DNS` row,
//! built from Services and their EndpointSlices (pure: objects in, a map out).
//!
//! | name | answer |
//! |---|---|
//! | `<service>.<namespace>.svc.<domain>` | the Service's ClusterIPs (`clusterIPs`, else `clusterIP`) |
//! | `<service>.<namespace>.svc.<domain>` of a headless Service (`clusterIP: None`) | the IPs of its ready endpoints (every endpoint with `publishNotReadyAddresses`) |
//! | `<hostname>.<service>.<namespace>.svc.<domain>` of a headless Service | the IPs of the endpoints with that `hostname` |
//! | `<reversed ClusterIP>.in-addr.arpa` (`.ip6.arpa`) | `<service>.<namespace>.svc.<domain>` (PTR) |
//!
//! Names are lowercase (OVN stores and matches them so). A value holds its addresses separated
//! by spaces, as OVN's `records` column takes them. A Service with no address (no ClusterIP
//! allocated yet, a headless Service without ready endpoint) has no record. Services of type
//! `ExternalName` are skipped: OVN answers A, AAAA and PTR queries only, it cannot answer a
//! CNAME. SRV records (named ports) are not made for the same reason.
//!
//! How the records are used: every subnet switch (and the join switch) refers to the row in
//! its `dns_records`, so `ovn-controller` on the pod's node answers a UDP query to port 53
//! whose name the row holds, whatever the query's destination address (A, AAAA, ANY and PTR;
//! names match whatever their case; TTL one hour, so a resolver that caches keeps an old
//! address that long). Any other query goes on unchanged to its destination: the pod's
//! nameserver (from the CNI result, the agent's `--dns-server`) is the upstream resolver, and
//! OVN answers the cluster's names in its path, so no DNS server needs to run for them.
//!
//! What needs the upstream all the same, as OVN never answers "no such name" (OVN 23.03):
//!
//! - Names outside the cluster.
//! - An `AAAA` query for a Service with IPv4 addresses only (OVN has no answer for it and lets
//!   it go on), so a lookup of both families (`getaddrinfo` with `AF_UNSPEC`) waits for the
//!   upstream's answer to that half.
//! - Short names resolved through the search path (`<namespace>.svc.<domain> svc.<domain>
//!   <domain>`, `ndots:5`) beyond its first entry: a resolver goes to the next entry only on a
//!   "no such name" answer and stops at a query nobody answers. So with no DNS server at all,
//!   a pod resolves the Services of its own namespace by their short name (`web`, the first
//!   entry) and any Service by its absolute name (`web.shop.svc.cluster.local.`, or a lookup
//!   that skips the search path, as `dig` does), while `web.shop` from another namespace, and
//!   full names written without the final dot, need an upstream that answers the other
//!   candidates with `NXDOMAIN`.
//!
//! OVN 23.03 also mishandles a query that carries an EDNS OPT record (ovn-org/ovn#192; `dig`
//! gets no usable answer): the C libraries' resolvers send none unless `options edns0` asks;
//! `dig` needs `+noedns`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::source::{Kind, ObjectRef};

/// The records of the cluster's DNS row, and the objects that could not be used as they are.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Records {
    /// Query name -> answer (addresses separated by spaces, or a name for PTR records).
    pub(crate) records: BTreeMap<String, String>,
    /// Bad fields, each naming its object, the field and why.
    pub(crate) problems: Vec<(ObjectRef, String)>,
}

/// The records of `services`, whose EndpointSlices are in `slices` by Service
/// (`namespace/name`), in the cluster domain `domain`.
pub(crate) fn records<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    slices: &BTreeMap<String, Vec<&'a EndpointSlice>>,
    domain: &str,
) -> Records {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let mut out = Records::default();
    for svc in services {
        service_records(svc, slices, &domain, &mut out);
    }
    out
}

/// Whether `label` is a DNS label (1 to 63 of `[a-z0-9-]`, not starting or ending with `-`).
fn is_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// The records of one Service, added to `out`.
fn service_records(
    svc: &Service,
    slices: &BTreeMap<String, Vec<&EndpointSlice>>,
    domain: &str,
    out: &mut Records,
) {
    let (Some(ns), Some(name)) = (
        svc.metadata.namespace.as_deref(),
        svc.metadata.name.as_deref(),
    ) else {
        return;
    };
    let object = || {
        let o = ObjectRef::namespaced(Kind::Service, ns, name);
        match &svc.metadata.uid {
            Some(uid) => o.with_uid(uid.clone()),
            None => o,
        }
    };
    let Some(spec) = &svc.spec else {
        return;
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        return;
    }
    for (field, label) in [("metadata.name", name), ("metadata.namespace", ns)] {
        if !is_label(&label.to_ascii_lowercase()) {
            out.problems.push((
                object(),
                format!("Service {ns}/{name}: {field} {label:?} is not a DNS label: no DNS record"),
            ));
            return;
        }
    }
    let fqdn = format!("{name}.{ns}.svc.{domain}").to_ascii_lowercase();
    let cluster_ips = cluster_ips(spec);
    if is_headless(svc) {
        headless_records(
            &fqdn,
            spec.publish_not_ready_addresses.unwrap_or(false),
            slices
                .get(&format!("{ns}/{name}"))
                .map_or(&[][..], Vec::as_slice),
            out,
        );
        return;
    }
    let mut ips: Vec<IpAddr> = Vec::new();
    for raw in cluster_ips {
        match raw.parse::<IpAddr>() {
            Ok(ip) if !ips.contains(&ip) => ips.push(ip),
            Ok(_) => {}
            Err(_) => out.problems.push((
                object(),
                format!(
                    "Service {ns}/{name}: spec.clusterIPs: {raw:?} is not an IP address: left out of its DNS record"
                ),
            )),
        }
    }
    if ips.is_empty() {
        return;
    }
    for ip in &ips {
        out.records
            .entry(reverse_name(*ip))
            .or_insert_with(|| fqdn.clone());
    }
    out.records.insert(fqdn, joined(ips.iter()));
}

/// The records of a headless Service named `fqdn`: its endpoints' addresses, and one name per
/// endpoint hostname.
/// The Service's cluster IPs as written (`None` for a headless one), empty ones left out.
fn cluster_ips(spec: &k8s_openapi::api::core::v1::ServiceSpec) -> Vec<&str> {
    let ips: Vec<&str> = match spec.cluster_ips.as_deref() {
        Some(ips) if !ips.is_empty() => ips.iter().map(String::as_str).collect(),
        _ => spec.cluster_ip.as_deref().into_iter().collect(),
    };
    ips.into_iter().filter(|s| !s.is_empty()).collect()
}

/// Whether the Service is headless (`clusterIP: None`): only then do its records follow its
/// endpoints.
pub(crate) fn is_headless(service: &Service) -> bool {
    service.spec.as_ref().is_some_and(|spec| {
        cluster_ips(spec)
            .iter()
            .any(|ip| ip.eq_ignore_ascii_case("None"))
    })
}

fn headless_records(fqdn: &str, not_ready_too: bool, slices: &[&EndpointSlice], out: &mut Records) {
    let mut all: BTreeSet<IpAddr> = BTreeSet::new();
    let mut by_host: BTreeMap<String, BTreeSet<IpAddr>> = BTreeMap::new();
    for slice in slices {
        if slice.address_type == "FQDN" {
            continue;
        }
        let slice_name = || {
            format!(
                "EndpointSlice {}/{}",
                slice.metadata.namespace.as_deref().unwrap_or_default(),
                slice.metadata.name.as_deref().unwrap_or_default()
            )
        };
        for (i, ep) in slice.endpoints.iter().flatten().enumerate() {
            let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            if !ready && !not_ready_too {
                continue;
            }
            let host = ep
                .hostname
                .as_deref()
                .map(str::to_ascii_lowercase)
                .filter(|h| is_label(h));
            for raw in &ep.addresses {
                let Ok(ip) = raw.parse::<IpAddr>() else {
                    let mut object = ObjectRef::namespaced(
                        Kind::EndpointSlice,
                        slice.metadata.namespace.clone().unwrap_or_default(),
                        slice.metadata.name.clone().unwrap_or_default(),
                    );
                    object.uid.clone_from(&slice.metadata.uid);
                    out.problems.push((
                        object,
                        format!(
                            "{}: endpoints[{i}].addresses: {raw:?} is not an IP address: left out of DNS",
                            slice_name()
                        ),
                    ));
                    continue;
                };
                all.insert(ip);
                if let Some(h) = &host {
                    by_host.entry(h.clone()).or_default().insert(ip);
                }
            }
        }
    }
    for (host, ips) in by_host {
        out.records
            .insert(format!("{host}.{fqdn}"), joined(ips.iter()));
    }
    if !all.is_empty() {
        out.records.insert(fqdn.to_owned(), joined(all.iter()));
    }
}

/// Addresses separated by spaces.
fn joined<'a>(ips: impl Iterator<Item = &'a IpAddr>) -> String {
    ips.map(ToString::to_string).collect::<Vec<_>>().join(" ")
}

/// The PTR query name of `ip`: `4.3.2.1.in-addr.arpa`, or the reversed nibbles under
/// `ip6.arpa`.
pub(crate) fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(72);
            for b in v6.octets().iter().rev() {
                let _ = write!(s, "{:x}.{:x}.", b & 0xf, b >> 4);
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

/// What turns the records `have` into `want`: the names to drop (gone or changed) and the
/// records to add (new or changed), as OVSDB map mutations apply them (delete by key, then
/// insert).
pub(crate) fn delta(
    have: &BTreeMap<String, String>,
    want: &BTreeMap<String, String>,
) -> (Vec<String>, BTreeMap<String, String>) {
    let drop: Vec<String> = have
        .iter()
        .filter(|(k, v)| want.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    let add: BTreeMap<String, String> = want
        .iter()
        .filter(|(k, v)| have.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (drop, add)
}

#[cfg(test)]
mod tests;
