//! The running sandbox: a lab (central, nodes, the external network), the controller, an
//! agent and a containerd per node, and the pods created through CRI with their servers.
//! Everything is an RAII value; dropping a [`Cluster`] removes the pods through CRI (so the
//! agents see CNI DEL), then stops containerd, the agents, the controller and the lab.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::core::v1::Pod;
use ovn_testbed::{
    BUSYBOX_IMAGE, Central, CniConfig, ContainerSpec, Containerd, CriPod, ExternalNet, Lab, Node,
    PodSpec, SourceEcho,
};
use ovnkit_kube::controller::manifests::annotations_file;
use ovnkit_kube::controller::source::Kind;

use super::metrics::Targets;
use super::net::{PROBE_PORT, PodServers, serve};
use super::procs::{AgentProcess, ControllerProcess, conflist};
use super::report::Outcome;
use super::world::NodeName;

/// The port of the external host's source-address echo server.
pub const ECHO_PORT: u16 = 7007;

/// Prints progress lines with the time since the start: `[  1.2s] nodes: 3 up`.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    start: Instant,
}

impl Progress {
    /// Progress from now.
    pub fn new() -> Self {
        Progress {
            start: Instant::now(),
        }
    }

    /// Prints a line on stderr.
    pub fn line(&self, text: impl AsRef<str>) {
        eprintln!(
            "[{:>6.1}s] {}",
            self.start.elapsed().as_secs_f64(),
            text.as_ref()
        );
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

/// A pod the sandbox runs.
#[derive(Debug)]
pub struct RunningPod {
    /// Its servers (dropped first).
    pub servers: Option<PodServers>,
    /// The pod in containerd.
    pub cri: CriPod,
    /// The index of its node.
    pub node: usize,
    /// Its IP, as the runtime reports it.
    pub ip: IpAddr,
    /// The MAC of its `eth0`.
    pub mac: String,
    /// From `RunPodSandbox` to the app container started.
    pub ready: Duration,
    /// `RunPodSandbox` alone (the network namespace, CNI ADD, the pause container).
    pub sandbox: Duration,
}

/// The whole sandbox. Field order is teardown order.
#[derive(Debug)]
pub struct Cluster {
    /// Pods by `namespace/name`.
    pub pods: BTreeMap<String, RunningPod>,
    /// containerd per node.
    pub runtimes: Vec<Containerd>,
    /// The agent per node.
    pub agents: Vec<AgentProcess>,
    /// The controller.
    pub controller: ControllerProcess,
    /// The external host's echo server.
    pub echo: SourceEcho,
    /// The external network.
    pub external: ExternalNet,
    /// The nodes.
    pub nodes: Vec<Node>,
    /// NB, SB, northd.
    pub central: Central,
    /// The lab.
    pub lab: Lab,
    /// The controller's manifests (the working copy).
    pub work: PathBuf,
    /// The controller's state directory.
    pub state: PathBuf,
    /// Where the controller and the agents serve their metrics.
    pub metrics: Targets,
}

/// The node names of a lab's nodes.
pub fn node_names(nodes: &[Node]) -> Vec<NodeName> {
    nodes
        .iter()
        .map(|n| NodeName {
            name: n.name(),
            chassis: n.chassis(),
        })
        .collect()
}

/// The annotations the controller wrote for pods, by `namespace/name`.
pub fn pod_results(state: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    std::fs::read(state.join(annotations_file(Kind::Pod)))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Waits until the controller allocated an address to each of `keys`; how long it took.
pub fn wait_allocated(state: &Path, keys: &[String], within: Duration) -> Result<Duration> {
    let start = Instant::now();
    loop {
        let results = pod_results(state);
        let missing: Vec<&String> = keys
            .iter()
            .filter(|k| {
                !results
                    .get(*k)
                    .is_some_and(|a| a.contains_key("ovn.kubernetes.io/ip_address"))
            })
            .collect();
        if missing.is_empty() {
            return Ok(start.elapsed());
        }
        if start.elapsed() > within {
            bail!(
                "the controller allocated no address to {} pods within {within:?}: {}",
                missing.len(),
                missing
                    .iter()
                    .take(5)
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts a containerd per node, in parallel, each running `exe` as its CNI plugin talking to
/// the node's agent.
pub fn start_runtimes(
    nodes: &[Node],
    agents: &[AgentProcess],
    exe: &Path,
) -> Result<Vec<Containerd>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = nodes
            .iter()
            .zip(agents)
            .map(|(n, a)| {
                s.spawn(move || {
                    n.start_containerd(
                        CniConfig::new(conflist(a.socket())).with_plugin("ovnkit", exe),
                    )
                    .with_context(|| format!("containerd on {}", n.name()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow!("a containerd start panicked"))?
            })
            .collect()
    })
}

/// Starts the agents, one per node.
pub fn start_agents(
    exe: &Path,
    lab: &Lab,
    central: &Central,
    nodes: &[Node],
    extra: &[&str],
) -> Result<Vec<AgentProcess>> {
    nodes
        .iter()
        .map(|n| AgentProcess::start(exe, lab.dir(), central, n, extra, Duration::from_secs(60)))
        .collect()
}

/// Starts the external host's echo server (it answers each connection with the source address
/// it saw).
pub fn start_echo(external: &ExternalNet) -> Result<SourceEcho> {
    Ok(SourceEcho::start(
        external.netns(),
        SocketAddr::new(external.host_ip(), ECHO_PORT),
    )?)
}

/// The ports a pod serves on: [`PROBE_PORT`] and its containers' ports, TCP and UDP.
fn server_ports(pod: &Pod) -> (Vec<u16>, Vec<u16>) {
    let (mut tcp, mut udp) = (vec![PROBE_PORT], vec![PROBE_PORT]);
    for p in pod
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .flat_map(|c| c.ports.iter().flatten())
    {
        let Ok(port) = u16::try_from(p.container_port) else {
            continue;
        };
        let list = if p.protocol.as_deref() == Some("UDP") {
            &mut udp
        } else {
            &mut tcp
        };
        if !list.contains(&port) {
            list.push(port);
        }
    }
    (tcp, udp)
}

/// The MAC of a pod's `eth0`.
fn mac_of(pod: &CriPod) -> String {
    pod.exec_in_netns("ip", &["-o", "link", "show", "eth0"])
        .ok()
        .and_then(|l| {
            l.split_whitespace()
                .skip_while(|w| *w != "link/ether")
                .nth(1)
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

impl Cluster {
    /// The index of node `name`.
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name() == name)
    }

    /// Creates `pods` (`namespace/name` -> pod, node index) through CRI, `creators` at a time
    /// per node, and starts each one's servers. Pods that fail are returned with their error;
    /// the others are added to [`Cluster::pods`].
    pub fn create_pods(
        &mut self,
        pods: Vec<(String, Pod, usize)>,
        creators: usize,
        rt: &tokio::runtime::Handle,
        progress: &Progress,
        stop: &super::up::Stop,
    ) -> Vec<(String, String)> {
        let total = pods.len();
        let done = AtomicUsize::new(0);
        let step = (total / 10).max(1);
        let mut queues: Vec<Mutex<Vec<(String, Pod)>>> = (0..self.nodes.len())
            .map(|_| Mutex::new(Vec::new()))
            .collect();
        for (k, p, node) in pods {
            queues[node]
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .push((k, p));
        }
        for q in &mut queues {
            q.get_mut().unwrap_or_else(|e| e.into_inner()).reverse();
        }
        let created: Mutex<Vec<(String, Result<RunningPod>)>> = Mutex::new(Vec::new());
        let runtimes = &self.runtimes;
        std::thread::scope(|s| {
            for (node, queue) in queues.iter().enumerate() {
                for _ in 0..creators.max(1) {
                    let (queue, created, done) = (queue, &created, &done);
                    s.spawn(move || {
                        while !stop.requested() {
                            let Some((k, pod)) =
                                queue.lock().unwrap_or_else(|e| e.into_inner()).pop()
                            else {
                                break;
                            };
                            let result = run_pod(&runtimes[node], node, &k, &pod, rt);
                            created
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push((k, result));
                            let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                            if n % step == 0 || n == total {
                                progress.line(format!("pods: {n}/{total} running"));
                            }
                        }
                    });
                }
            }
        });
        let mut failed = Vec::new();
        for (k, r) in created.into_inner().unwrap_or_else(|e| e.into_inner()) {
            match r {
                Ok(p) => {
                    self.pods.insert(k, p);
                }
                Err(e) => failed.push((k, format!("{e:#}"))),
            }
        }
        failed
    }

    /// Removes every pod through CRI (CNI DEL through the agents), `per_node` at a time on
    /// each node; what failed to be removed is left to containerd's own teardown.
    pub fn remove_pods(&mut self, per_node: usize) {
        let mut queues: Vec<Mutex<Vec<RunningPod>>> = (0..self.nodes.len())
            .map(|_| Mutex::new(Vec::new()))
            .collect();
        for (_, p) in std::mem::take(&mut self.pods) {
            let node = p.node.min(queues.len().saturating_sub(1));
            queues[node]
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .push(p);
        }
        std::thread::scope(|s| {
            for queue in &queues {
                for _ in 0..per_node.max(1) {
                    s.spawn(move || {
                        loop {
                            let Some(mut p) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop()
                            else {
                                break;
                            };
                            drop(p.servers.take());
                            let _ = p.cri.remove();
                        }
                    });
                }
            }
        });
    }

    /// The pod rows' check: the runtime's IP and the pod's MAC are the controller's.
    pub fn address_outcome(
        &self,
        key: &str,
        results: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> (String, Outcome) {
        let Some(p) = self.pods.get(key) else {
            return (String::new(), Outcome::Fail("not running".into()));
        };
        let a = results.get(key);
        let get = |k: &str| a.and_then(|a| a.get(k)).cloned().unwrap_or_default();
        let subnet = get("ovn.kubernetes.io/logical_switch");
        let ip = get("ovn.kubernetes.io/ip_address");
        let mac = get("ovn.kubernetes.io/mac_address");
        let ip_ok = ip.split(',').any(|i| i.trim() == p.ip.to_string());
        let mac_ok = mac.eq_ignore_ascii_case(&p.mac);
        let outcome = Outcome::check(ip_ok && mac_ok, || {
            format!(
                "the controller allocated {ip} {mac}, the pod has {} {}",
                p.ip, p.mac
            )
        });
        (subnet, outcome)
    }
}

/// Runs one pod through CRI and starts its servers.
fn run_pod(
    runtime: &Containerd,
    node: usize,
    key: &str,
    pod: &Pod,
    rt: &tokio::runtime::Handle,
) -> Result<RunningPod> {
    let (ns, name) = key.split_once('/').unwrap_or(("default", key));
    let uid = pod
        .metadata
        .uid
        .clone()
        .unwrap_or_else(|| format!("uid-{ns}-{name}"));
    let spec = PodSpec::new(name)
        .namespace(ns)
        .uid(&uid)
        .app(Some(ContainerSpec::new(
            "app",
            BUSYBOX_IMAGE,
            &["/bin/sleep", "infinity"],
        )));
    let cri = runtime
        .run_pod(spec)
        .with_context(|| format!("creating pod {key} through CRI"))?;
    let t = cri.timings();
    let (tcp, udp) = server_ports(pod);
    let servers = serve(rt, &cri, key, &tcp, &udp)?;
    Ok(RunningPod {
        servers: Some(servers),
        ip: cri.ip(),
        mac: mac_of(&cri),
        ready: t.run_sandbox + t.create_container + t.start_container,
        sandbox: t.run_sandbox,
        node,
        cri,
    })
}
