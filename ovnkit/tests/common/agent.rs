//! The `ovnkit agent` binary run inside a node's namespace, the CNI protocol client the tests
//! use in place of the CNI plugin, and a lab with a central, two nodes and the controller.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ovn_testbed::{Central, CentralOptions, Lab, Netns, Node};
use ovnkit::sandbox::procs::{AgentProcess, log_tail};
use ovnkit_kube::cni::protocol::{Attachment, Command, PodRef, Reply, Request};

use super::{Controller, results, write_manifest};

/// An `ovnkit agent` inside a node's namespace ([`AgentProcess`], the sandbox's too);
/// SIGKILLed (by its own PID) when dropped, and its log tail printed when the test fails.
pub struct AgentProc {
    process: AgentProcess,
    pub log: PathBuf,
    pub socket: PathBuf,
}

impl AgentProc {
    pub fn start(lab: &Lab, central: &Central, node: &Node) -> Self {
        AgentProc::start_with(lab, central, node, &[])
    }

    /// [`AgentProc::start`] with more arguments for the agent.
    pub fn start_with(lab: &Lab, central: &Central, node: &Node, extra: &[&str]) -> Self {
        let mut args = vec!["--htb-ingress", "--port-timeout", "10"];
        args.extend_from_slice(extra);
        let process = AgentProcess::start(
            Path::new(env!("CARGO_BIN_EXE_ovnkit")),
            lab.dir(),
            central,
            node,
            &args,
            Duration::from_secs(30),
        )
        .expect("ovnkit agent starts and answers STATUS");
        let agent = AgentProc {
            log: process.log().to_owned(),
            socket: process.socket().to_owned(),
            process,
        };
        let mode = fs::metadata(&agent.socket).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        agent
    }

    pub fn kill(&mut self) {
        self.process.kill();
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- agent log {} (last lines) ---", self.log.display());
            eprintln!("{}", log_tail(&self.log, 60));
        }
    }
}

/// One request over the socket, as the CNI plugin sends it; `None` when the socket refuses.
pub fn call(socket: &Path, req: &Request) -> Option<Reply> {
    let mut s = UnixStream::connect(socket).ok()?;
    let mut line = serde_json::to_vec(req).unwrap();
    line.push(b'\n');
    s.write_all(&line).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(serde_json::from_str(out.trim()).expect("a reply is JSON"))
}

pub fn status() -> Request {
    request(Command::Status, "", "", None)
}

pub fn request(
    command: Command,
    container: &str,
    netns: &str,
    pod: Option<(&str, &str)>,
) -> Request {
    Request {
        command,
        container_id: container.to_owned(),
        netns: netns.to_owned(),
        ifname: "eth0".to_owned(),
        pod: pod.map(|(ns, name)| PodRef {
            namespace: ns.to_owned(),
            name: name.to_owned(),
            uid: None,
        }),
        network: "ovnkit".to_owned(),
        mtu: None,
        prev_result: None,
        valid_attachments: Vec::new(),
    }
}

/// A pod of the test: its namespace (the sandbox) and container id.
pub struct TestPod {
    pub ns: Netns,
    pub name: String,
    pub container: String,
}

impl TestPod {
    pub fn new(lab: &Lab, name: &str, n: usize) -> Self {
        TestPod {
            ns: Netns::create(&format!("ovk{}-p{n}", lab.id())).expect("pod namespace"),
            name: name.to_owned(),
            container: format!("{n:04x}c0ffee{n:04x}0123456789abcdef"),
        }
    }

    pub fn path(&self) -> String {
        format!("/var/run/netns/{}", self.ns.name())
    }

    pub fn req(&self, command: Command) -> Request {
        request(
            command,
            &self.container,
            &self.path(),
            Some(("default", &self.name)),
        )
    }

    pub fn host(&self) -> String {
        ovnkit_kube::agent::plumb::host_ifname(&self.container)
    }
}

pub fn added(reply: Option<Reply>, what: &str) -> Attachment {
    match reply {
        Some(Reply::Added { attachment }) => attachment,
        other => panic!("ADD {what}: {other:?}"),
    }
}

/// A pod for the controller: name, node index, annotations.
pub type PodSpec = (String, usize, Vec<(&'static str, &'static str)>);

/// A central, two nodes, the controller with `pods` (name, node index, annotations) in
/// namespace `default`.
pub struct Cluster {
    pub controller: Controller,
    pub nodes: Vec<Node>,
    pub central: Central,
    pub state: PathBuf,
    pub lab: Lab,
}

pub fn cluster(pods: &[PodSpec]) -> Option<Cluster> {
    let lab = Lab::for_test()?;
    let central = lab
        .start_central(CentralOptions::default())
        .expect("central");
    let nodes: Vec<Node> = (0..2)
        .map(|_| lab.start_node(&central).expect("node"))
        .collect();
    let manifests = lab.dir().join("manifests");
    let state = lab.dir().join("state");
    fs::create_dir_all(&manifests).unwrap();
    write_manifest(
        &manifests,
        "namespaces.yaml",
        &[super::namespace("default", &[])],
    );
    let node_docs: Vec<String> = nodes
        .iter()
        .map(|n| super::node(&n.name(), &n.chassis()))
        .collect();
    write_manifest(&manifests, "nodes.yaml", &node_docs);
    let pod_docs: Vec<String> = pods
        .iter()
        .map(|(name, node, ann)| super::pod("default", name, &nodes[*node].name(), ann, None))
        .collect();
    write_manifest(&manifests, "pods.yaml", &pod_docs);
    let controller = Controller::start(
        &central.nb_remote(),
        &manifests,
        &state,
        &lab.dir().join("controller.log"),
        &["--mtu", "1400"],
    );
    Some(Cluster {
        controller,
        nodes,
        central,
        state,
        lab,
    })
}

pub fn controller_ip(state: &Path, pod: &str) -> String {
    let r: BTreeMap<String, BTreeMap<String, String>> = results(state, "pods.json");
    r.iter()
        .find(|(k, _)| k.ends_with(&format!("/{pod}")) || k.as_str() == pod)
        .and_then(|(_, a)| a.get("ovn.kubernetes.io/ip_address").cloned())
        .unwrap_or_default()
}

/// The port of the external host's source-address echo server.
pub const ECHO_PORT: u16 = 7007;

/// The source address the external host sees for a connection from `ns`, retried for up to
/// `within` (the first packets of a new path may be lost while ARP resolves, or before the
/// node holds its masquerade rule).
pub fn source_seen(
    ns: &impl ovn_testbed::EnterNetns,
    external: &ovn_testbed::ExternalNet,
    within: Duration,
) -> Option<std::net::IpAddr> {
    let server = std::net::SocketAddr::new(external.host_ip(), ECHO_PORT);
    let started = std::time::Instant::now();
    loop {
        match ovn_testbed::source_seen_by(ns, server, Duration::from_secs(1)) {
            Ok(ip) => return Some(ip),
            Err(_) if started.elapsed() < within => std::thread::sleep(Duration::from_millis(100)),
            Err(_) => return None,
        }
    }
}
