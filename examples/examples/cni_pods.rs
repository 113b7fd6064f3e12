//! Pods created through CRI on a 3-node OVN lab, networked by ovnkit's controller, node agents
//! and CNI plugin, all from this one program.
//!
//! The controller (manifest mode: namespaces `default` and `web`, the latter with its own
//! subnet through `ovn.kubernetes.io/cidr`) runs as a task; each node's agent runs on a thread
//! that entered the node's network namespace, with a tokio runtime built there (so every worker
//! thread is in the node's namespace, while the process keeps the host's mount namespace and
//! sees containerd's pod namespace files). One containerd per node runs this very executable as
//! its CNI plugin: started with `CNI_COMMAND` set and no arguments, it is the plugin, as the
//! `ovnkit` binary is. Six pods are created through CRI (`RunPodSandbox`, then one container),
//! as a kubelet does; the example prints each pod's node, IP, MAC and how long it took to be
//! ready, pings every pod from every other, and removes them (CNI DEL through the agents).
//!
//! ```text
//! cargo run -p examples --example cni_pods      # as root, after `cargo xtask install`
//! ```

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use examples::Table;
use examples::cluster::AgentThread;
use ovn_testbed::{CentralOptions, CniConfig, Containerd, CriPod, Lab, Node, PodSpec};
use ovnkit_kube::agent::AgentConfig;
use ovnkit_kube::controller::config::ControllerConfig;
use ovnkit_kube::controller::manifests::{ManifestSource, StateDir};
use tokio::sync::oneshot;

fn main() -> Result<()> {
    // containerd runs this executable as the CNI plugin: answer on stdout, nothing else.
    if ovnkit_kube::cni::plugin::invoked_as_plugin() {
        std::process::exit(ovnkit_kube::cni::plugin::run_process());
    }

    let lab = Lab::new().context("the example needs root and `cargo xtask install`")?;
    let central = lab.start_central(CentralOptions::default())?;
    let nodes: Vec<Node> = (0..3)
        .map(|_| lab.start_node(&central))
        .collect::<Result<_, _>>()?;
    // (namespace, pod, node index)
    let specs: Vec<(&str, String, usize)> = (0..3)
        .flat_map(|i| {
            [
                ("default", format!("app-{i}"), i),
                ("web", format!("web-{i}"), (i + 1) % 3),
            ]
        })
        .collect();

    // The manifests the controller reads (YAML, flow style), and its state directory.
    let manifests = lab.dir().join("manifests");
    std::fs::create_dir_all(&manifests)?;
    let mut docs = vec![
        doc("Namespace", "default", ""),
        doc(
            "Namespace",
            "web",
            "  annotations: {ovn.kubernetes.io/cidr: 10.17.0.0/24}\n",
        ),
    ];
    for n in &nodes {
        let chassis = format!("  annotations: {{ovnkit.io/chassis: {}}}\n", n.chassis());
        docs.push(doc("Node", &n.name(), &chassis));
    }
    for (ns, name, node) in &specs {
        let node = nodes[*node].name();
        let rest = format!(
            "  namespace: {ns}\nspec: {{nodeName: {node}, containers: [{{name: c, image: pause}}]}}\n"
        );
        docs.push(doc("Pod", name, &rest));
    }
    std::fs::write(manifests.join("cluster.yaml"), docs.join("---\n"))?;

    // The controller: a task on a runtime of this thread, stopped when `_stop` drops (also when
    // the example fails half way).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let source = ManifestSource::open(&manifests)?;
    let sink = Arc::new(StateDir::open(lab.dir().join("state"))?);
    let (_stop, stopped) = oneshot::channel::<()>();
    let nb = central.nb_remote();
    rt.spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        let run = ovnkit_kube::controller::run::run(
            ControllerConfig::default(),
            &nb,
            &source,
            sink,
            shutdown,
        );
        if let Err(e) = run.await {
            eprintln!("controller: {e}");
        }
    });

    // One agent per node, then one containerd per node whose CNI plugin is this executable.
    let agents: Vec<AgentThread> = nodes
        .iter()
        .map(|n| AgentThread::start(&lab, &central, n, AgentConfig::default()))
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
        "lab {}: 3 nodes, each with its agent and containerd; CNI plugin {}\n",
        lab.id(),
        exe.display()
    );

    // Pods through CRI, as a kubelet creates them once they are scheduled.
    let mut pods: Vec<(String, CriPod)> = Vec::new();
    let mut table = Table::new(&[
        "pod",
        "node",
        "IP",
        "MAC",
        "RunPodSandbox ms",
        "to ready ms",
    ]);
    for (ns, name, node) in &specs {
        let pod = runtimes[*node]
            .run_pod(PodSpec::new(name).namespace(ns))
            .with_context(|| format!("RunPodSandbox {ns}/{name}"))?;
        let link = pod.exec_in_netns("ip", &["-o", "link", "show", "eth0"])?;
        let mac = link
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .unwrap_or("?");
        let t = pod.timings();
        table.row([
            pod.full_name().to_owned(),
            nodes[*node].name(),
            pod.ip().to_string(),
            mac.to_owned(),
            t.run_sandbox.as_millis().to_string(),
            (t.run_sandbox + t.create_container + t.start_container)
                .as_millis()
                .to_string(),
        ]);
        pods.push((pod.full_name().to_owned(), pod));
    }
    table.print();

    // Every pod pings every other, across nodes and subnets.
    let mut header = vec!["from \\ to"];
    header.extend(pods.iter().map(|(n, _)| n.as_str()));
    let mut matrix = Table::new(&header);
    let mut failed = 0;
    for (from, a) in &pods {
        let mut row = vec![from.clone()];
        for (to, b) in &pods {
            let cell = if from == to {
                "-"
            } else if (0..5).any(|_| a.ping(b.ip(), 1).is_ok_and(|s| s.loss_percent() < 100.0)) {
                "ok"
            } else {
                failed += 1;
                "FAIL"
            };
            row.push(cell.to_owned());
        }
        matrix.row(row);
    }
    println!("\nping (up to 5 tries of one echo):");
    matrix.print();

    // Removal through CRI: StopPodSandbox runs CNI DEL, the agent removes port and veth.
    for (name, pod) in pods {
        pod.remove().with_context(|| format!("removing {name}"))?;
    }
    println!("\nremoved every pod through CRI; stopping containerd, the agents and the controller");
    drop(runtimes);
    drop(agents);
    if failed > 0 {
        bail!("{failed} pairs did not reach each other");
    }
    Ok(())
}

/// The conflist containerd loads: plugin `ovnkit` (this executable), talking to `socket`.
fn conflist(socket: &Path) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "ovnkit",
        "plugins": [{ "type": "ovnkit", "agentSocket": socket }]
    })
    .to_string()
}

/// A manifest of `kind` named `name`, `rest` following the name (more metadata, a spec).
fn doc(kind: &str, name: &str, rest: &str) -> String {
    format!("apiVersion: v1\nkind: {kind}\nmetadata:\n  name: {name}\n{rest}")
}
