//! Pod network setup through a real container runtime, measured part by part.
//!
//! A 3-node OVN lab; the controller and one node agent per node run in this process (the
//! controller as a task, each agent on a thread inside its node's network namespace with a
//! runtime of its own), so the agents' per-`ADD` timings can be read. One containerd per node
//! runs this very executable as its CNI plugin (with `CNI_COMMAND` set and no arguments it is
//! the plugin, as the `ovnkit` binary is). Pods are created through CRI by concurrent
//! creators; pod `i` goes to node `i % 3`. Each pod is handed to the controller at the moment
//! its `RunPodSandbox` is sent, as a kubelet and the controller both learn of a pod once it is
//! bound, so the agent's wait for the port includes the controller's step.
//!
//! Per pod: the `RunPodSandbox` wall time (network namespace, CNI ADD, pause container), and
//! from the agent the parts of its ADD. Sandboxes only (no app container). Every pod must get
//! a distinct IP, and a sample of pairs must ping. Needs root and `cargo xtask install`:
//!
//! ```text
//! cargo build --release -p benches --bin cni-bench
//! target/release/cni-bench              # 100 pods, 4 creators
//! target/release/cni-bench 300 8        # other sizes
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use k8s_openapi::api::core::v1::{Namespace, Node as KNode, Pod, PodSpec as KPodSpec, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use ovn_testbed::{
    Central, CentralOptions, CniConfig, Containerd, CriPod, Lab, Node, NsThread, PodSpec,
};
use ovnkit_kube::agent::{AddTiming, Agent, AgentConfig, server};
use ovnkit_kube::controller::config::ControllerConfig;
use ovnkit_kube::controller::source::{
    ObjectEvent, ObjectRef, ObjectSource, SinkError, SourceError, StatusSink, WatchEvent,
};
use tokio::sync::{mpsc, oneshot};

fn main() -> Result<()> {
    // Run by containerd as the CNI plugin: answer on stdout, nothing else.
    if ovnkit_kube::cni::plugin::invoked_as_plugin() {
        std::process::exit(ovnkit_kube::cni::plugin::run_process());
    }
    let mut args = std::env::args().skip(1);
    let pods: usize = args
        .next()
        .map_or(Ok(100), |a| a.parse())
        .context("a pod count")?;
    let creators: usize = args
        .next()
        .map_or(Ok(4), |a| a.parse())
        .context("a creator count")?;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    println!("load average before: {}", loadavg());

    let lab = Lab::new().context("the benchmark needs root and `cargo xtask install`")?;
    let central = lab.start_central(CentralOptions::default())?;
    let nodes: Vec<Node> = (0..3)
        .map(|_| lab.start_node(&central))
        .collect::<Result<_, _>>()?;

    // The controller: a task on its own runtime, fed pods through a channel.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (pod_tx, pod_rx) = mpsc::unbounded_channel::<Pod>();
    let source = ChannelSource {
        nodes: nodes
            .iter()
            .map(|n| k8s_node(&n.name(), &n.chassis()))
            .collect(),
        pods: Mutex::new(Some(pod_rx)),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let nb = central.nb_remote();
    let controller = rt.spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        let config = ControllerConfig::default();
        ovnkit_kube::controller::run::run(config, &nb, &source, Arc::new(Quiet), shutdown).await
    });

    let agents: Vec<AgentThread> = nodes
        .iter()
        .map(|n| AgentThread::start(&lab, &central, n))
        .collect::<Result<_>>()?;
    let exe = std::env::current_exe()?;
    let runtimes: Vec<Containerd> = nodes
        .iter()
        .zip(&agents)
        .map(|(n, a)| {
            n.start_containerd(CniConfig::new(conflist(&a.socket)).with_plugin("ovnkit", &exe))
        })
        .collect::<Result<_, _>>()?;
    println!(
        "lab {}: 3 nodes, controller and agents in-process, containerd per node",
        lab.id()
    );

    // One pod per node first (image and runtime warm-up), not counted.
    let mut warm = Vec::new();
    for (i, runtime) in runtimes.iter().enumerate() {
        let name = format!("warm-{i}");
        pod_tx.send(k8s_pod(&name, &nodes[i].name()))?;
        warm.push(runtime.run_pod(PodSpec::new(&name).app(None))?);
    }

    let created: Mutex<Vec<(usize, CriPod)>> = Mutex::new(Vec::new());
    let start = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = (0..creators)
            .map(|k| {
                let (pod_tx, runtimes, nodes, created) = (&pod_tx, &runtimes, &nodes, &created);
                s.spawn(move || -> Result<()> {
                    for i in (k..pods).step_by(creators) {
                        let name = format!("pod-{i}");
                        pod_tx.send(k8s_pod(&name, &nodes[i % 3].name()))?;
                        let pod = runtimes[i % 3]
                            .run_pod(PodSpec::new(&name).app(None))
                            .with_context(|| format!("RunPodSandbox {name}"))?;
                        created
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((i, pod));
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join().map_err(|_| anyhow!("a creator panicked"))??;
        }
        Ok(())
    })?;
    let wall = start.elapsed();
    let mut created = created.into_inner().unwrap_or_else(|e| e.into_inner());
    created.sort_by_key(|(i, _)| *i);
    let load = loadavg();

    // Checks: every pod has a distinct IP; a sample of pairs (across nodes) ping.
    let ips: BTreeSet<IpAddr> = created.iter().map(|(_, p)| p.ip()).collect();
    if created.len() != pods || ips.len() != pods {
        bail!(
            "{} pods, {} distinct IPs, {pods} expected",
            created.len(),
            ips.len()
        );
    }
    let mut pings = (0, 0);
    for (i, (_, from)) in created.iter().enumerate().step_by(10) {
        let (_, to) = &created[(i + 1) % created.len()];
        pings.1 += 1;
        if (0..5).any(|_| {
            from.ping(to.ip(), 1)
                .is_ok_and(|s| s.loss_percent() < 100.0)
        }) {
            pings.0 += 1;
        } else {
            eprintln!(
                "{} -> {} ({}): no reply",
                from.full_name(),
                to.full_name(),
                to.ip()
            );
        }
    }

    let timings: BTreeMap<String, AddTiming> = agents
        .iter()
        .flat_map(|a| a.agent.timings())
        .map(|t| (t.port.clone(), t))
        .collect();
    let mut rows: Vec<(&str, Vec<Duration>)> = vec![("RunPodSandbox (CRI call)", Vec::new())];
    for part in [
        "wait for port",
        "plumbing",
        "OVS+QoS",
        "wait for up",
        "total ADD (agent)",
    ] {
        rows.push((part, Vec::new()));
    }
    rows.push(("RunPodSandbox - ADD (runtime)", Vec::new()));
    for (i, pod) in &created {
        let t = timings
            .get(&format!("default.pod-{i}"))
            .with_context(|| format!("no ADD timing for pod-{i}"))?;
        let sandbox = pod.timings().run_sandbox;
        let parts = [
            sandbox,
            t.wait_port,
            t.plumb,
            t.ovs,
            t.wait_up,
            t.total,
            sandbox.saturating_sub(t.total),
        ];
        for (row, d) in rows.iter_mut().zip(parts) {
            row.1.push(d);
        }
    }
    println!(
        "\n{pods} pods on 3 nodes, {creators} concurrent creators (sandboxes, no app container)\n"
    );
    println!("| part | p50 ms | p90 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    for (part, mut v) in rows {
        v.sort();
        let q = |p: f64| ms(v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]);
        println!(
            "| {part} | {} | {} | {} | {} |",
            q(0.5),
            q(0.9),
            q(0.99),
            ms(v[v.len() - 1])
        );
    }
    println!(
        "\nwall for {pods} pods: {:.2} s ({:.1} pods/s); every pod has a distinct IP; \
         pings {}/{} ok; load average after: {load}",
        wall.as_secs_f64(),
        pods as f64 / wall.as_secs_f64(),
        pings.0,
        pings.1
    );

    // Teardown in order: pods (CNI DEL through the agents), runtimes, agents, controller.
    let t = Instant::now();
    drop(created);
    drop(warm);
    drop(runtimes);
    println!(
        "teardown of the pods and runtimes: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    drop(agents);
    drop(stop);
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), controller).await })??
        .context("the controller")?;
    if pings.0 != pings.1 {
        bail!(
            "{} of {} sampled pairs did not ping",
            pings.1 - pings.0,
            pings.1
        );
    }
    Ok(())
}

/// A node agent on a thread inside its node's network namespace; stopped and joined on drop.
struct AgentThread {
    agent: Agent,
    socket: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<NsThread<Result<()>>>,
}

impl AgentThread {
    fn start(lab: &Lab, central: &Central, node: &Node) -> Result<Self> {
        let run_dir = lab.dir().join(format!("agent-{}", node.name()));
        let config = AgentConfig::default()
            .with_node(node.name())
            .with_nb(central.nb_remote())
            .with_ovs(node.ovsdb().unix_remote())
            .with_run_dir(&run_dir);
        let socket = config.socket();
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready, agent) = std_mpsc::channel();
        let thread = node.netns().spawn(move || -> Result<()> {
            // Built on this thread, so every worker thread starts in the node's namespace.
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let agent = ovnkit_kube::agent::run::start(config).await?;
                let listener = server::bind(&run_dir)?;
                let _ = ready.send(agent.clone());
                server::serve(agent, listener, async {
                    let _ = stopped.await;
                })
                .await;
                Ok(())
            })
        })?;
        match agent.recv_timeout(Duration::from_secs(30)) {
            Ok(agent) => Ok(AgentThread {
                agent,
                socket,
                stop: Some(stop),
                thread: Some(thread),
            }),
            Err(std_mpsc::RecvTimeoutError::Disconnected) => Err(thread
                .join()?
                .err()
                .unwrap_or_else(|| anyhow!("the agent stopped"))),
            Err(std_mpsc::RecvTimeoutError::Timeout) => {
                bail!("the agent of {} did not start in 30 s", node.name())
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

/// The conflist: the `ovnkit` plugin (this executable), talking to `socket`.
fn conflist(socket: &std::path::Path) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "ovnkit",
        "plugins": [{ "type": "ovnkit", "agentSocket": socket }]
    })
    .to_string()
}

/// Namespace `default` and the nodes listed once; pods as they are sent.
struct ChannelSource {
    nodes: Vec<KNode>,
    pods: Mutex<Option<mpsc::UnboundedReceiver<Pod>>>,
}

type Events<K> = BoxStream<'static, Result<WatchEvent<K>, SourceError>>;

fn listed<K: Send + 'static>(objects: Vec<K>) -> Events<K> {
    let events = std::iter::once(WatchEvent::Init)
        .chain(objects.into_iter().map(WatchEvent::InitApply))
        .chain(std::iter::once(WatchEvent::InitDone))
        .map(Ok);
    stream::iter(events).chain(stream::pending()).boxed()
}

impl ObjectSource for ChannelSource {
    fn namespaces(&self) -> Events<Namespace> {
        listed(vec![Namespace {
            metadata: meta(None, "default"),
            ..Namespace::default()
        }])
    }

    fn pods(&self) -> Events<Pod> {
        let Some(rx) = self.pods.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return stream::pending().boxed();
        };
        let sent = stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|pod| (Ok(WatchEvent::Apply(pod)), rx))
        });
        let init = [WatchEvent::Init, WatchEvent::InitDone].map(Ok);
        stream::iter(init)
            .chain(sent)
            .chain(stream::pending())
            .boxed()
    }

    fn nodes(&self) -> Events<KNode> {
        listed(self.nodes.clone())
    }
    fn services(&self) -> Events<Service> {
        listed(Vec::new())
    }
    fn endpoint_slices(&self) -> Events<EndpointSlice> {
        listed(Vec::new())
    }
    fn network_policies(&self) -> Events<NetworkPolicy> {
        listed(Vec::new())
    }
}

/// Discards results; prints events (there should be none).
struct Quiet;

#[async_trait::async_trait]
impl StatusSink for Quiet {
    async fn annotate(
        &self,
        _: &ObjectRef,
        _: &BTreeMap<String, Option<String>>,
    ) -> Result<(), SinkError> {
        Ok(())
    }

    async fn event(&self, event: &ObjectEvent) -> Result<(), SinkError> {
        eprintln!("event: {}: {}", event.object, event.message);
        Ok(())
    }
}

fn meta(namespace: Option<&str>, name: &str) -> ObjectMeta {
    ObjectMeta {
        namespace: namespace.map(str::to_owned),
        uid: Some(format!("uid-{name}")),
        name: Some(name.to_owned()),
        ..ObjectMeta::default()
    }
}

fn k8s_node(name: &str, chassis: &str) -> KNode {
    let mut metadata = meta(None, name);
    metadata.annotations = Some([("ovnkit.io/chassis".to_owned(), chassis.to_owned())].into());
    KNode {
        metadata,
        ..KNode::default()
    }
}

fn k8s_pod(name: &str, node: &str) -> Pod {
    Pod {
        metadata: meta(Some("default"), name),
        spec: Some(KPodSpec {
            node_name: Some(node.to_owned()),
            ..KPodSpec::default()
        }),
        ..Pod::default()
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e3)
}

/// `/proc/loadavg`'s three averages.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
