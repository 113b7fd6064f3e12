//! DNS answered by OVN, with no DNS server running anywhere: the real controller in manifest
//! mode with Services (their ClusterIPs given in the manifests, as the API server allocates
//! them) and a headless Service with an EndpointSlice; the real agent, started with
//! `--dns-server` and `--cluster-domain`, attaches a pod through its socket and its CNI result
//! carries the resolver settings, which become the pod's own `resolv.conf`; `dig` inside the
//! pod asks the nameserver address, where nothing listens, and `ovn-controller` answers on the
//! way. A name OVN does not hold gets no answer (the query goes on to the nameserver, which
//! does not exist); changing or deleting a Service changes or removes the answer.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::net::IpAddr;
use std::time::Duration;

use common::agent::{AgentProc, TestPod, added, call, request};
use common::{Controller, wait_for, write_manifest};
use ovn_testbed::{CentralOptions, Lab};
use ovnkit_kube::cni::protocol::{Command, Dns};

/// The pods' nameserver: an address nothing in the lab has.
const NAMESERVER: &str = "10.96.0.10";

fn service(ns: &str, name: &str, cluster_ip: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  \
         clusterIP: {cluster_ip}\n  clusterIPs: [{cluster_ip:?}]\n  ports:\n  - port: 80\n    \
         protocol: TCP\n"
    )
}

/// An EndpointSlice of `service`: (address, ready, hostname) per endpoint.
fn endpoint_slice(ns: &str, service: &str, endpoints: &[(&str, bool, &str)]) -> String {
    let mut s = format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {service}-abc\n  \
         namespace: {ns}\n  labels:\n    kubernetes.io/service-name: {service}\naddressType: IPv4\n\
         ports:\n- port: 5432\n  protocol: TCP\nendpoints:\n"
    );
    for (ip, ready, host) in endpoints {
        s.push_str(&format!(
            "- addresses: [{ip:?}]\n  hostname: {host}\n  conditions:\n    ready: {ready}\n"
        ));
    }
    s
}

/// What `dig` printed and whether it got an answer (exit status 0; 9 is "no reply").
struct Dig {
    status: Option<i32>,
    out: String,
}

/// `dig` in the pod, one try of 2 s, without EDNS: OVN 23.03 mishandles a query that carries
/// an EDNS OPT record (ovn-org/ovn#192; dig gets no usable answer); the C libraries'
/// resolvers (glibc, musl) send no EDNS unless told to.
fn dig(pod: &TestPod, args: &[&str]) -> Dig {
    let mut all = vec!["+short", "+noedns", "+tries=1", "+time=2"];
    all.extend_from_slice(args);
    let out = pod.ns.exec_raw("dig", &all).expect("dig runs");
    Dig {
        status: out.status.code(),
        out: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    }
}

/// The answers, as a set of lines, once `dig` gets one.
fn answers(pod: &TestPod, args: &[&str]) -> Option<BTreeSet<String>> {
    let d = dig(pod, args);
    (d.status == Some(0) && !d.out.is_empty()).then(|| d.out.lines().map(str::to_owned).collect())
}

/// The addresses glibc's `getaddrinfo` (IPv4) finds for `name` in the pod (`getent
/// ahostsv4`: the search path and options of the pod's resolv.conf apply), once it finds any.
fn getaddrinfo(pod: &TestPod, name: &str) -> Option<BTreeSet<String>> {
    let out = pod
        .ns
        .exec_raw("getent", &["ahostsv4", name])
        .expect("getent runs");
    let found: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    (out.status.success() && !found.is_empty()).then_some(found)
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn a_pod_resolves_services_from_ovn_with_no_dns_server_anywhere() {
    let Some(lab) = Lab::for_test() else { return };
    let central = lab
        .start_central(CentralOptions::default())
        .expect("central");
    let node = lab.start_node(&central).expect("node");
    let manifests = lab.dir().join("manifests");
    let state = lab.dir().join("state");
    fs::create_dir_all(&manifests).unwrap();
    write_manifest(
        &manifests,
        "namespaces.yaml",
        &[
            common::namespace("default", &[]),
            common::namespace("shop", &[("ovn.kubernetes.io/cidr", "10.17.0.0/24")]),
        ],
    );
    write_manifest(
        &manifests,
        "nodes.yaml",
        &[common::node(&node.name(), &node.chassis())],
    );
    write_manifest(
        &manifests,
        "pods.yaml",
        &[common::pod("shop", "client", &node.name(), &[], None)],
    );
    let db = endpoint_slice(
        "default",
        "db",
        &[
            ("10.16.0.50", true, "db-0"),
            ("10.16.0.51", true, "db-1"),
            ("10.16.0.52", false, "db-2"),
        ],
    );
    let services = |web_ip: Option<&str>| {
        let mut docs = vec![
            service("shop", "cart", "10.96.0.30"),
            service("default", "db", "None"),
            db.clone(),
        ];
        if let Some(ip) = web_ip {
            docs.push(service("default", "web", ip));
        }
        docs
    };
    write_manifest(&manifests, "services.yaml", &services(Some("10.96.0.20")));
    let controller = Controller::start(
        &central.nb_remote(),
        &manifests,
        &state,
        &lab.dir().join("controller.log"),
        &["--cluster-domain", "cluster.local"],
    );

    // The NB: one DNS row, which every switch refers to.
    let nbctl = |args: &[&str]| central.nbctl(args).expect("ovn-nbctl");
    let dns_row = wait_for(Duration::from_secs(30), "the DNS row", || {
        let uuids = nbctl(&["--bare", "--columns=_uuid", "list", "DNS"]);
        let uuids: Vec<&str> = uuids.split_whitespace().collect();
        (uuids.len() == 1).then(|| uuids[0].to_owned())
    });
    wait_for(Duration::from_secs(30), "every switch refers to it", || {
        let out = nbctl(&[
            "--format=csv",
            "--data=bare",
            "--no-headings",
            "--columns=name,dns_records",
            "list",
            "Logical_Switch",
        ]);
        let rows: Vec<&str> = out.lines().collect();
        (rows.len() == 3 && rows.iter().all(|r| r.ends_with(&format!(",{dns_row}")))).then_some(())
    });

    // The agent, with the pods' resolver settings, attaches the pod.
    let agent = AgentProc::start_with(
        &lab,
        &central,
        &node,
        &[
            "--dns-server",
            NAMESERVER,
            "--cluster-domain",
            "cluster.local",
        ],
    );
    let pod = TestPod::new(&lab, "client", 0);
    let req = request(
        Command::Add,
        &pod.container,
        &pod.path(),
        Some(("shop", "client")),
    );
    let attachment = added(call(&agent.socket, &req), "shop/client");
    let dns = attachment.dns.clone().expect("the CNI result carries DNS");
    assert_eq!(
        dns,
        Dns {
            nameservers: vec![NAMESERVER.into()],
            domain: None,
            search: vec![
                "shop.svc.cluster.local".into(),
                "svc.cluster.local".into(),
                "cluster.local".into(),
            ],
            options: vec!["ndots:5".into()],
        }
    );
    // The pod's own resolv.conf, as a runtime writes it from the result (`ip netns exec`
    // mounts /etc/netns/<namespace>/resolv.conf over /etc/resolv.conf).
    fs::write(
        format!("/etc/netns/{}/resolv.conf", pod.ns.name()),
        format!(
            "nameserver {}\nsearch {}\noptions {}\n",
            dns.nameservers.join(" "),
            dns.search.join(" "),
            dns.options.join(" ")
        ),
    )
    .expect("resolv.conf");
    let own: IpAddr = attachment.ips[0].address.addr();
    assert!(
        "10.17.0.0/24"
            .parse::<ipnet::IpNet>()
            .unwrap()
            .contains(&own),
        "the pod is on the shop subnet: {own}"
    );
    central.sync_hv().expect("sync");

    // Full names, from OVN (the flows take a moment to reach the node).
    let web = wait_for(Duration::from_secs(30), "web.default answered", || {
        answers(&pod, &["web.default.svc.cluster.local"])
    });
    assert_eq!(web, set(&["10.96.0.20"]));
    assert_eq!(
        answers(&pod, &["db.default.svc.cluster.local"]),
        Some(set(&["10.16.0.50", "10.16.0.51"])),
        "a headless Service: its ready endpoints"
    );
    assert_eq!(
        answers(&pod, &["db-1.db.default.svc.cluster.local"]),
        Some(set(&["10.16.0.51"])),
        "an endpoint by its hostname"
    );
    assert_eq!(
        answers(&pod, &["-x", "10.96.0.20"]),
        Some(set(&["web.default.svc.cluster.local."])),
        "the ClusterIP's PTR record"
    );
    assert_eq!(
        answers(&pod, &["WEB.Default.svc.CLUSTER.local"]),
        Some(set(&["10.96.0.20"])),
        "names match whatever their case"
    );
    // A short name through the pod's search path (its own namespace comes first).
    assert_eq!(
        answers(&pod, &["+search", "cart"]),
        Some(set(&["10.96.0.30"]))
    );
    // glibc's resolver, as applications use it: the short name through the search path, and
    // an absolute name (a name with fewer dots than ndots would try the search path first,
    // and a query nobody answers stops the search: see the controller's dns module).
    assert_eq!(getaddrinfo(&pod, "cart"), Some(set(&["10.96.0.30"])));
    assert_eq!(
        getaddrinfo(&pod, "web.default.svc.cluster.local."),
        Some(set(&["10.96.0.20"]))
    );
    // A name OVN does not hold goes on to the nameserver, where nothing answers.
    let unknown = dig(&pod, &["nope.default.svc.cluster.local"]);
    assert_eq!(
        unknown.status,
        Some(9),
        "no reply for a name OVN does not hold: {}",
        unknown.out
    );

    // The Service's ClusterIP changes: so does the answer.
    write_manifest(&manifests, "services.yaml", &services(Some("10.96.0.21")));
    wait_for(
        Duration::from_secs(30),
        "the new ClusterIP answered",
        || {
            (answers(&pod, &["web.default.svc.cluster.local"])? == set(&["10.96.0.21"]))
                .then_some(())
        },
    );
    // The Service goes: its name gets no answer any more, the others keep theirs.
    write_manifest(&manifests, "services.yaml", &services(None));
    wait_for(
        Duration::from_secs(30),
        "web.default no longer answered",
        || (dig(&pod, &["web.default.svc.cluster.local"]).status == Some(9)).then_some(()),
    );
    assert_eq!(
        answers(&pod, &["cart.shop.svc.cluster.local"]),
        Some(set(&["10.96.0.30"]))
    );
    let events = common::events(&state);
    assert!(events.is_empty(), "no problem reported: {events:#?}");
    drop(pod);
    drop(agent);
    drop(controller);
}
