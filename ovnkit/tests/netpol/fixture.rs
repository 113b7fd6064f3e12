//! The NetworkPolicy lab: a central, two nodes, `ovnkit controller` in manifest mode, and the
//! upstream e2e tests' pods (namespaces x, y, z with pods a, b, c each, serving TCP and UDP on
//! 80 and 81, with named ports `serve-<port>-<proto>`) attached as testbed pods with the
//! controller's allocations. Manifests are rewritten between cases; after each change the
//! fixture waits until the policy rows in the NB have changed and stayed so, then for every
//! chassis (`ovn-nbctl --wait=hv sync`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use ovn_testbed::{Central, CentralOptions, Lab, Node, Pod, PodConfig};
use ovnkit_kube::trace::{self, DecidingAcl, Explained, Protocol};

use crate::common::reach::{self, Matrix, Proto, Servers};
use crate::common::{self, Controller, results, wait_for, write_manifest};

/// A pod as its manifest says: namespace, name, node, labels, container ports
/// (name, number, protocol) of its two containers.
#[derive(Clone)]
pub struct PodDoc {
    pub ns: String,
    pub name: String,
    pub node: usize,
    pub labels: Vec<(String, String)>,
    pub ports: Vec<(String, u16, &'static str)>,
    pub side_ports: Vec<(String, u16, &'static str)>,
}

impl PodDoc {
    /// The upstream pod `ns/name`: label `pod: <name>`, the `serve-*` ports; and `web`, our
    /// named port that is 80 on pods a and 81 on pods b (pods c have none).
    pub fn upstream(ns: &str, name: &str, node: usize) -> Self {
        let mut ports = Vec::new();
        for (proto, p) in [("TCP", "tcp"), ("UDP", "udp")] {
            for n in [80, 81] {
                ports.push((format!("serve-{n}-{p}"), n, proto));
            }
        }
        let side_ports = match name {
            "a" => vec![("web".to_owned(), 80, "TCP")],
            "b" => vec![("web".to_owned(), 81, "TCP")],
            _ => Vec::new(),
        };
        PodDoc {
            ns: ns.into(),
            name: name.into(),
            node,
            labels: vec![("pod".into(), name.into())],
            ports,
            side_ports,
        }
    }

    fn key(&self) -> String {
        format!("{}/{}", self.ns, self.name)
    }

    fn yaml(&self, node: &str) -> String {
        let q = |s: &str| serde_json::to_string(s).unwrap();
        let mut s = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {}\n  namespace: {}\n  labels:\n",
            q(&self.name),
            q(&self.ns)
        );
        for (k, v) in &self.labels {
            let _ = writeln!(s, "    {}: {}", q(k), q(v));
        }
        let _ = write!(s, "spec:\n  nodeName: {}\n  containers:\n", q(node));
        for (c, ports) in [("serve", &self.ports), ("side", &self.side_ports)] {
            let _ = write!(s, "  - name: {c}\n    image: agnhost\n");
            if !ports.is_empty() {
                s.push_str("    ports:\n");
            }
            for (n, p, proto) in ports.iter() {
                let _ = writeln!(
                    s,
                    "    - {{name: {n}, containerPort: {p}, protocol: {proto}}}"
                );
            }
        }
        s
    }
}

/// A NetworkPolicy manifest: `spec` is YAML indented by two spaces.
pub fn np(ns: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n{spec}"
    )
}

/// The lab; fields drop in order: servers, pods, controller, nodes, central, lab.
pub struct Fixture {
    servers: BTreeMap<String, Servers>,
    pub pods: BTreeMap<String, Pod>,
    controller: Controller,
    nodes: Vec<Node>,
    pub central: Central,
    manifests: PathBuf,
    state: PathBuf,
    docs: BTreeMap<String, PodDoc>,
    ns_labels: BTreeMap<String, Vec<(String, String)>>,
    fingerprint: String,
    lab: Lab,
}

impl Fixture {
    /// The lab with the nine upstream pods serving, or `None` when no lab can run here.
    pub fn start() -> Option<Self> {
        let lab = Lab::for_test()?;
        let central = lab
            .start_central(CentralOptions::default())
            .expect("central");
        let nodes: Vec<Node> = (0..2)
            .map(|_| lab.start_node(&central).expect("node"))
            .collect();
        let manifests = lab.dir().join("manifests");
        let state = lab.dir().join("state");
        std::fs::create_dir_all(&manifests).unwrap();
        let node_docs: Vec<String> = nodes
            .iter()
            .map(|n| common::node(&n.name(), &n.chassis()))
            .collect();
        write_manifest(&manifests, "nodes.yaml", &node_docs);
        let mut docs = BTreeMap::new();
        let mut i = 0;
        for ns in ["x", "y", "z"] {
            for name in ["a", "b", "c"] {
                let d = PodDoc::upstream(ns, name, i % 2);
                docs.insert(d.key(), d);
                i += 1;
            }
        }
        let ns_labels = ["x", "y", "z"]
            .into_iter()
            .map(|n| (n.to_owned(), Vec::new()))
            .collect();
        let controller = Controller::start(
            &central.nb_remote(),
            &manifests,
            &state,
            &lab.dir().join("controller.log"),
            &[],
        );
        let mut f = Fixture {
            servers: BTreeMap::new(),
            pods: BTreeMap::new(),
            controller,
            nodes,
            central,
            manifests,
            state,
            docs,
            ns_labels,
            fingerprint: String::new(),
            lab,
        };
        f.write_namespaces();
        f.write_pods();
        write_manifest(&f.manifests, "policies.yaml", &[]);
        let keys: Vec<String> = f.docs.keys().cloned().collect();
        for k in &keys {
            f.attach(k);
        }
        for k in &keys {
            let port = k.replace('/', ".");
            f.central
                .wait_port_up(&port, Duration::from_secs(30))
                .expect("port up");
        }
        f.central.sync_hv().expect("sync");
        f.fingerprint = f.read_fingerprint();
        Some(f)
    }

    /// Every pod, `ns/name`.
    pub fn names(&self) -> Vec<String> {
        self.pods.keys().cloned().collect()
    }

    /// A matrix over every pod, expecting `default`.
    pub fn matrix(&self, default: bool) -> Matrix {
        Matrix::new(&self.names(), default)
    }

    /// Probes `m` on `port`/`proto`; panics naming `case` when the packets disagree.
    pub fn check(&self, case: &str, m: &Matrix, port: u16, proto: Proto) {
        reach::check(case, &self.pods, m, port, proto);
    }

    /// The IP of pod `key`.
    pub fn ip(&self, key: &str) -> IpAddr {
        self.pods[key].ip()
    }

    fn write_namespaces(&self) {
        let q = |s: &str| serde_json::to_string(s).unwrap();
        let docs: Vec<String> = self
            .ns_labels
            .iter()
            .map(|(n, labels)| {
                let mut s = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {n}\n");
                if !labels.is_empty() {
                    s.push_str("  labels:\n");
                    for (k, v) in labels {
                        let _ = writeln!(s, "    {}: {}", q(k), q(v));
                    }
                }
                s
            })
            .collect();
        write_manifest(&self.manifests, "namespaces.yaml", &docs);
    }

    fn write_pods(&self) {
        let docs: Vec<String> = self
            .docs
            .values()
            .map(|d| d.yaml(&self.nodes[d.node].name()))
            .collect();
        write_manifest(&self.manifests, "pods.yaml", &docs);
    }

    /// Waits for pod `key`'s allocation, then attaches it on its node and starts its servers.
    fn attach(&mut self, key: &str) {
        let a = wait_for(Duration::from_secs(60), &format!("{key} allocated"), || {
            results(&self.state, "pods.json").remove(key).filter(|a| {
                a.get("ovn.kubernetes.io/allocated").map(String::as_str) == Some("true")
            })
        });
        let d = &self.docs[key];
        let cidr: IpNet = a["ovn.kubernetes.io/cidr"].parse().unwrap();
        let ip: IpAddr = a["ovn.kubernetes.io/ip_address"].parse().unwrap();
        let gw: IpAddr = a["ovn.kubernetes.io/gateway"].parse().unwrap();
        let config = PodConfig::new(
            &format!("{}-{}", d.ns, d.name),
            &format!("{}.{}", d.ns, d.name),
            &a["ovn.kubernetes.io/mac_address"],
            IpNet::new(ip, cidr.prefix_len()).unwrap(),
        )
        .with_gateway(gw);
        let pod = self.nodes[d.node].add_pod(config).expect("pod");
        self.servers
            .insert(key.to_owned(), Servers::start(&pod, &[80, 81]));
        self.pods.insert(key.to_owned(), pod);
    }

    /// The policy rows of the NB, as text.
    fn read_fingerprint(&self) -> String {
        let nbctl = |args: &[&str]| self.central.nbctl(args).expect("ovn-nbctl");
        let mut lines = Vec::new();
        for (table, columns) in [
            ("Port_Group", "name,ports"),
            ("Address_Set", "name,addresses"),
            ("ACL", "priority,match"),
        ] {
            for r in common::nb_rows(nbctl, table, columns) {
                lines.push(format!("{table} {}", r.join(" ")));
            }
        }
        lines.sort();
        lines.join("\n")
    }

    /// Waits until the policy rows differ from before and stay so for 400 ms, then until
    /// every chassis has them.
    fn settle(&mut self, case: &str) {
        let before = std::mem::take(&mut self.fingerprint);
        let start = Instant::now();
        let mut last = (before.clone(), Instant::now());
        loop {
            let now = self.read_fingerprint();
            if now != last.0 {
                last = (now, Instant::now());
            } else if now != before && last.1.elapsed() >= Duration::from_millis(400) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "case {case}: the controller did not change the policy rows within 30 s; they are:\n{}",
                last.0
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.fingerprint = last.0;
        self.central.sync_hv().expect("sync");
    }

    /// The policy rows now (for checks that nothing changed).
    pub fn policy_rows(&self) -> String {
        self.read_fingerprint()
    }

    /// Replaces the policies with `docs` and waits until OVN has them.
    pub fn policies(&mut self, case: &str, docs: &[String]) {
        write_manifest(&self.manifests, "policies.yaml", docs);
        self.settle(case);
    }

    /// Replaces the policies with `docs` where OVN is not expected to change (a bad policy):
    /// waits for the controller's event naming `policy` instead.
    pub fn bad_policies(&mut self, docs: &[String], policy: &str) -> serde_json::Value {
        let seen = common::events(&self.state).len();
        write_manifest(&self.manifests, "policies.yaml", docs);
        wait_for(
            Duration::from_secs(30),
            &format!("an event about {policy}"),
            || {
                common::events(&self.state)
                    .into_iter()
                    .skip(seen)
                    .find(|e| e["object"] == format!("NetworkPolicy {policy}"))
            },
        )
    }

    /// Sets pod `key`'s labels and waits until OVN follows.
    pub fn relabel_pod(&mut self, case: &str, key: &str, labels: &[(&str, &str)]) {
        let d = self.docs.get_mut(key).expect("a pod");
        d.labels = labels
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        self.write_pods();
        self.settle(case);
    }

    /// Sets namespace `ns`'s labels and waits until OVN follows.
    pub fn label_namespace(&mut self, case: &str, ns: &str, labels: &[(&str, &str)]) {
        self.ns_labels.insert(
            ns.to_owned(),
            labels
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        );
        self.write_namespaces();
        self.settle(case);
    }

    /// Adds a pod, attaches it once allocated and waits until OVN's policy rows follow.
    pub fn add_pod(&mut self, case: &str, doc: PodDoc) {
        let key = doc.key();
        self.docs.insert(key.clone(), doc);
        self.write_pods();
        self.attach(&key);
        self.central
            .wait_port_up(&key.replace('/', "."), Duration::from_secs(30))
            .expect("port up");
        self.settle(case);
    }

    /// Removes pod `key` (manifest and namespace) and waits until OVN's policy rows follow.
    pub fn remove_pod(&mut self, case: &str, key: &str) {
        self.docs.remove(key);
        self.write_pods();
        self.settle(case);
        self.servers.remove(key);
        self.pods.remove(key);
    }

    /// Traces a first TCP packet from `from` to `to:port` with `ovnkit_kube::trace` (which
    /// runs `ovn-trace`): the explanation and the ACL that decided.
    pub fn trace(&self, from: &str, to: &str, port: u16) -> (Explained, DecidingAcl) {
        let snap = trace::nb_snapshot(&self.central.nb_remote()).expect("NB snapshot");
        let nb = ovn_model::snapshot::Typed::new(&snap);
        let sb = self.central.sb_remote();
        let e = trace::trace(&nb, &sb, from, &format!("{to}:{port}"), Protocol::Tcp)
            .unwrap_or_else(|err| panic!("tracing {from} -> {to}:{port}: {err}"));
        let acl = e
            .acl
            .clone()
            .unwrap_or_else(|| panic!("no ACL decided {from} -> {to}:{port}:\n{e}"));
        (e, acl)
    }

    /// The lab's directory (for messages).
    pub fn dir(&self) -> PathBuf {
        self.lab.dir().to_path_buf()
    }

    /// Whether the controller still runs.
    pub fn controller_running(&mut self) -> bool {
        self.controller.running()
    }
}
