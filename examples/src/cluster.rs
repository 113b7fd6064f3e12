//! A small cluster on the lab for the examples: manifests written as an operator would, the
//! controller of `ovnkit_kube` running in this process on them, node agents on threads inside
//! the nodes' namespaces, and pods attached as the controller allocated them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use ovn_testbed::{Central, CentralOptions, Lab, Node, NsThread, Pod, PodConfig};
use ovnkit_kube::agent::AgentConfig;
use ovnkit_kube::agent::server;
use ovnkit_kube::controller::config::ControllerConfig;
use ovnkit_kube::controller::manifests::{ManifestSource, StateDir};
use ovnkit_kube::controller::run;
use tokio::sync::oneshot;

/// The annotations the controller writes back on a pod.
pub type Annotations = BTreeMap<String, String>;

/// A lab with a central, `n` nodes, a manifest directory and the controller running on it.
pub struct Cluster {
    /// The manifest directory.
    pub manifests: PathBuf,
    /// The controller's state directory (its results).
    pub state: PathBuf,
    /// The nodes.
    pub nodes: Vec<Node>,
    /// The central (NB, SB, northd).
    pub central: Central,
    stop: Option<oneshot::Sender<()>>,
    controller: Option<tokio::task::JoinHandle<Result<run::Progress, run::RunError>>>,
    rt: tokio::runtime::Runtime,
    /// The lab (dropped last: it deletes what is left).
    pub lab: Lab,
}

impl Cluster {
    /// Starts the lab with `nodes` nodes, writes `namespaces` and the Node objects, and starts
    /// the controller with `config` on the (still pod-less) manifest directory.
    ///
    /// # Errors
    /// When the lab or the controller cannot start.
    pub fn start(nodes: usize, namespaces: &[String], config: ControllerConfig) -> Result<Self> {
        let lab = Lab::new().context("starting the lab")?;
        let central = lab.start_central(CentralOptions::default())?;
        let nodes: Vec<Node> = (0..nodes)
            .map(|_| lab.start_node(&central))
            .collect::<Result<_, _>>()?;
        let manifests = lab.dir().join("manifests");
        let state = lab.dir().join("state");
        std::fs::create_dir_all(&manifests)?;
        write_manifest(&manifests, "namespaces.yaml", namespaces)?;
        let node_docs: Vec<String> = nodes
            .iter()
            .map(|n| node(&n.name(), &n.chassis()))
            .collect();
        write_manifest(&manifests, "nodes.yaml", &node_docs)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let source = ManifestSource::open(&manifests)?;
        let sink = Arc::new(StateDir::open(&state)?);
        let nb_remote = central.nb_remote();
        let controller = rt.spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            run::run(config, &nb_remote, &source, sink, shutdown).await
        });
        Ok(Cluster {
            manifests,
            state,
            nodes,
            central,
            stop: Some(stop),
            controller: Some(controller),
            rt,
            lab,
        })
    }

    /// Writes `documents` into the manifest file `file` (atomically).
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write(&self, file: &str, documents: &[String]) -> Result<()> {
        write_manifest(&self.manifests, file, documents)
    }

    /// The pods' written-back annotations once every one of `pods` (`namespace/name`) is
    /// allocated.
    ///
    /// # Errors
    /// When that does not happen within 30 s.
    pub fn allocated(&self, pods: &[String]) -> Result<BTreeMap<String, Annotations>> {
        wait_for("every pod allocated", || {
            let r = results(&self.state)?;
            let done = pods.iter().all(|p| {
                r.get(p)
                    .and_then(|a| a.get("ovn.kubernetes.io/allocated"))
                    .is_some_and(|v| v == "true")
            });
            Ok(done.then_some(r))
        })
    }

    /// Attaches pod `namespace/name` to node `node` as the controller allocated it (a
    /// namespace on a veth into the node's `br-int`), and waits until OVN has it up.
    ///
    /// # Errors
    /// When the pod has no allocation or does not come up.
    pub fn attach(&self, pod: &str, node: usize, annotations: &Annotations) -> Result<Pod> {
        let get = |k: &str| {
            annotations
                .get(&format!("ovn.kubernetes.io/{k}"))
                .cloned()
                .ok_or_else(|| anyhow!("{pod}: no {k}"))
        };
        let cidr: ipnet::IpNet = get("cidr")?.parse()?;
        let ip: std::net::IpAddr = get("ip_address")?.parse()?;
        let port = pod.replacen('/', ".", 1);
        let config = PodConfig::new(
            &pod.replace('/', "-"),
            &port,
            &get("mac_address")?,
            ipnet::IpNet::new(ip, cidr.prefix_len())?,
        )
        .with_gateway(get("gateway")?.parse()?)
        .with_mtu(1400);
        let attached = self.nodes[node].add_pod(config)?;
        self.central.wait_port_up(&port, Duration::from_secs(20))?;
        Ok(attached)
    }

    /// Stops the controller; what it did.
    ///
    /// # Errors
    /// When it does not stop within 10 s or failed.
    pub fn stop(mut self) -> Result<run::Progress> {
        drop(self.stop.take());
        let controller = self.controller.take().context("stopped once")?;
        let progress = self
            .rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), controller).await })
            .context("the controller did not stop within 10 s")??
            .context("the controller")?;
        Ok(progress)
    }
}

/// A node agent on a thread inside a node's namespace, serving its CNI socket; stopped when
/// dropped.
pub struct AgentThread {
    /// The agent's socket.
    pub socket: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<NsThread<Result<()>>>,
}

impl AgentThread {
    /// Starts the agent of `node` with `config` (node, NB, OVS and run directory are set here).
    ///
    /// # Errors
    /// When the agent does not start within 30 s.
    pub fn start(lab: &Lab, central: &Central, node: &Node, config: AgentConfig) -> Result<Self> {
        let run_dir = lab.dir().join(format!("agent-{}", node.name()));
        let config = config
            .with_node(node.name())
            .with_nb(central.nb_remote())
            .with_ovs(node.ovsdb().unix_remote())
            .with_run_dir(&run_dir);
        let socket = config.socket();
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready, started) = mpsc::channel::<()>();
        let thread = node.netns().spawn(move || -> Result<()> {
            // Built on this thread: the runtime's worker threads start in the node's namespace.
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let agent = ovnkit_kube::agent::run::start(config).await?;
                let listener = server::bind(&run_dir)?;
                let _ = ready.send(());
                server::serve(agent, listener, async {
                    let _ = stopped.await;
                })
                .await;
                Ok(())
            })
        })?;
        match started.recv_timeout(Duration::from_secs(30)) {
            Ok(()) => Ok(AgentThread {
                socket,
                stop: Some(stop),
                thread: Some(thread),
            }),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(thread
                .join()?
                .err()
                .unwrap_or_else(|| anyhow!("the agent stopped"))),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bail!("the agent of {} did not start", node.name())
            }
        }
    }
}

impl Drop for AgentThread {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take()
            && let Ok(Err(e)) = thread.join()
        {
            eprintln!("agent: {e:#}");
        }
    }
}

/// Polls `f` every 50 ms for up to 30 s.
///
/// # Errors
/// `f`'s error, or a timeout naming `what`.
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The controller's written-back pod annotations (`state/pods.json`).
///
/// # Errors
/// When the file is there but not JSON.
pub fn results(state: &Path) -> Result<BTreeMap<String, Annotations>> {
    match std::fs::read(state.join("pods.json")) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e.into()),
    }
}

/// Writes a manifest file atomically (a hidden temporary file renamed into place).
///
/// # Errors
/// When the file cannot be written.
pub fn write_manifest(dir: &Path, file: &str, documents: &[String]) -> Result<()> {
    let tmp = dir.join(format!(".{file}.tmp"));
    std::fs::write(&tmp, documents.join("---\n"))?;
    std::fs::rename(&tmp, dir.join(file))?;
    Ok(())
}

/// A Namespace with annotations.
#[must_use]
pub fn namespace(name: &str, annotations: &[(&str, &str)]) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n{}",
        annotation_block("  ", annotations)
    )
}

/// A Node naming its OVN chassis.
#[must_use]
pub fn node(name: &str, chassis: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n{}",
        annotation_block("  ", &[("ovnkit.io/chassis", chassis)])
    )
}

/// A Pod on `node` with labels and annotations.
#[must_use]
pub fn pod(
    namespace: &str,
    name: &str,
    node: &str,
    labels: &[(&str, &str)],
    annotations: &[(&str, &str)],
) -> String {
    let mut doc =
        format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {namespace}\n");
    if !labels.is_empty() {
        doc.push_str("  labels:\n");
        for (k, v) in labels {
            let _ = writeln!(doc, "    {k}: \"{v}\"");
        }
    }
    doc.push_str(&annotation_block("  ", annotations));
    let _ = write!(
        doc,
        "spec:\n  nodeName: {node}\n  containers:\n  - name: app\n    image: busybox\n"
    );
    doc
}

fn annotation_block(indent: &str, annotations: &[(&str, &str)]) -> String {
    if annotations.is_empty() {
        return String::new();
    }
    let mut s = format!("{indent}annotations:\n");
    for (k, v) in annotations {
        let _ = writeln!(s, "{indent}  {k}: \"{v}\"");
    }
    s
}
