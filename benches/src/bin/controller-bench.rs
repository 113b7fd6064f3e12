//! The controller's catch-up, measured against a private `ovsdb-server` (OVN_Northbound):
//!
//! - **cold N**: the controller starts on an empty NB with N pods already listed (a cluster
//!   adopting ovnkit, or a burst): wall time until OVN holds every port and every pod's
//!   results are written, and the transactions it took.
//! - **restart N**: a new controller starts on an NB that holds N pods' rows, with the objects
//!   listed again minus 1% deleted while no controller ran: wall time until its IPAM is
//!   rebuilt from OVN, the deleted pods' rows are collected and nothing is left to do.
//!
//! The controller runs in this process through the library (`run_observed`), with the
//! objects in memory (no API server or manifest parsing is timed) and results counted in
//! memory. Run as root with OVN installed:
//!
//! ```text
//! cargo run --release -p benches --bin controller-bench            # 10,000 and 100,000 pods
//! cargo run --release -p benches --bin controller-bench -- 2000    # other sizes
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, PodSpec, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use ovn_testbed::{Lab, OvsdbServerOptions, schemas};
use ovnkit_kube::controller::config::ControllerConfig;
use ovnkit_kube::controller::run::{NB_TABLES, Progress, run_observed};
use ovnkit_kube::controller::source::{
    Kind, ObjectEvent, ObjectRef, ObjectSource, SinkError, SourceError, StatusSink, WatchEvent,
};
use ovsdb::client::{ReplicaClient, ReplicaConfig};
use tokio::sync::watch;

/// Objects listed once, then nothing more (the streams stay open).
struct Listing {
    namespaces: Vec<Namespace>,
    pods: Vec<Pod>,
    nodes: Vec<Node>,
}

fn listed<K: Send + 'static>(
    objects: Vec<K>,
) -> BoxStream<'static, Result<WatchEvent<K>, SourceError>> {
    let events = std::iter::once(WatchEvent::Init)
        .chain(objects.into_iter().map(WatchEvent::InitApply))
        .chain(std::iter::once(WatchEvent::InitDone))
        .map(Ok);
    stream::iter(events).chain(stream::pending()).boxed()
}

impl ObjectSource for Listing {
    fn namespaces(&self) -> BoxStream<'static, Result<WatchEvent<Namespace>, SourceError>> {
        listed(self.namespaces.clone())
    }
    fn pods(&self) -> BoxStream<'static, Result<WatchEvent<Pod>, SourceError>> {
        listed(self.pods.clone())
    }
    fn nodes(&self) -> BoxStream<'static, Result<WatchEvent<Node>, SourceError>> {
        listed(self.nodes.clone())
    }
    fn services(&self) -> BoxStream<'static, Result<WatchEvent<Service>, SourceError>> {
        listed(Vec::new())
    }
    fn endpoint_slices(
        &self,
    ) -> BoxStream<'static, Result<WatchEvent<EndpointSlice>, SourceError>> {
        listed(Vec::new())
    }
    fn network_policies(
        &self,
    ) -> BoxStream<'static, Result<WatchEvent<NetworkPolicy>, SourceError>> {
        listed(Vec::new())
    }
}

/// Counts the pods given results, and the events.
#[derive(Default)]
struct Counter {
    pods: AtomicUsize,
    events: AtomicUsize,
}

#[async_trait::async_trait]
impl StatusSink for Counter {
    async fn annotate(
        &self,
        object: &ObjectRef,
        _: &BTreeMap<String, Option<String>>,
    ) -> Result<(), SinkError> {
        if object.kind == Kind::Pod {
            self.pods.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn event(&self, event: &ObjectEvent) -> Result<(), SinkError> {
        if self.events.fetch_add(1, Ordering::Relaxed) < 5 {
            eprintln!("event: {}", event.message);
        }
        Ok(())
    }
}

fn meta(namespace: Option<&str>, name: String) -> ObjectMeta {
    ObjectMeta {
        namespace: namespace.map(str::to_owned),
        uid: Some(format!("uid-{name}")),
        name: Some(name),
        ..ObjectMeta::default()
    }
}

fn cluster(pods: usize, skip_every: Option<usize>) -> Listing {
    let nodes: Vec<Node> = (1..=3)
        .map(|i| Node {
            metadata: meta(None, format!("node{i}")),
            ..Node::default()
        })
        .collect();
    let pods = (0..pods)
        .filter(|i| skip_every.is_none_or(|k| i % k != 0))
        .map(|i| Pod {
            metadata: meta(Some("default"), format!("pod-{i}")),
            spec: Some(PodSpec {
                node_name: Some(format!("node{}", i % 3 + 1)),
                ..PodSpec::default()
            }),
            ..Pod::default()
        })
        .collect();
    Listing {
        namespaces: vec![Namespace {
            metadata: meta(None, "default".into()),
            ..Namespace::default()
        }],
        pods,
        nodes,
    }
}

/// One controller run until it has settled; its wall time and transactions.
async fn settle(remote: &str, listing: Listing, expect_pods: usize) -> Result<(Duration, u64)> {
    let (tx, mut rx) = watch::channel(Progress::default());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sink = Arc::new(Counter::default());
    let counted = sink.clone();
    let remote = remote.to_owned();
    let start = Instant::now();
    let task = tokio::spawn(async move {
        let config = ControllerConfig::default()
            .with_default_subnet("ovn-default", "10.0.0.0/8".parse().expect("a CIDR"));
        let stop = async {
            let _ = stop_rx.await;
        };
        run_observed(config, &remote, &listing, sink, stop, &tx).await
    });
    loop {
        tokio::select! {
            r = rx.changed() => r.context("the controller stopped")?,
            () = tokio::time::sleep(Duration::from_secs(300)) => bail!("not settled after 300 s"),
        }
        let p = *rx.borrow();
        if p.settled {
            break;
        }
    }
    let wall = start.elapsed();
    let transactions = rx.borrow().transactions;
    let _ = stop_tx.send(());
    task.await??;
    let events = counted.events.load(Ordering::Relaxed);
    if events > 0 {
        bail!("{events} events reported (see above)");
    }
    let annotated = counted.pods.load(Ordering::Relaxed);
    if annotated != expect_pods {
        bail!("{annotated} pods got results, {expect_pods} expected");
    }
    Ok((wall, transactions))
}

/// The NB's `Logical_Switch_Port` count, read with `ovsdb-client`.
fn ports(lab: &Lab, remote: &str) -> Result<usize> {
    let out = std::process::Command::new("ovsdb-client")
        .current_dir(lab.dir())
        .args([
            "--format=csv",
            "--no-headings",
            "dump",
            remote,
            "OVN_Northbound",
            "Logical_Switch_Port",
            "name",
        ])
        .output()
        .context("ovsdb-client")?;
    if !out.status.success() {
        bail!(
            "ovsdb-client dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter(|l| l.trim_matches('"').starts_with("default."))
        .count())
}

/// The floor under a restart: reading the controller's tables once, by a bare replica sync
/// and by `ovsdb-client dump` (the C client) of the same tables.
async fn read_floor(lab: &Lab, remote: &str) -> Result<(Duration, Duration)> {
    let start = Instant::now();
    let monitor = ovn_model::snapshot::monitor(ovn_model::nb::DATABASE, &NB_TABLES);
    let (client, _events) = ReplicaClient::start(ReplicaConfig::new(remote, monitor)).await?;
    client.wait_synced().await?;
    let replica = start.elapsed();
    drop(client);
    let start = Instant::now();
    for table in NB_TABLES {
        let out = std::process::Command::new("ovsdb-client")
            .current_dir(lab.dir())
            .args(["dump", remote, "OVN_Northbound", table])
            .stdout(std::process::Stdio::null())
            .status()
            .context("ovsdb-client")?;
        if !out.success() {
            bail!("ovsdb-client dump {table} failed");
        }
    }
    Ok((replica, start.elapsed()))
}

fn peak_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

fn main() -> Result<()> {
    let sizes: Vec<usize> = match std::env::args().nth(1) {
        Some(n) => vec![n.parse().context("a pod count")?],
        None => vec![10_000, 100_000],
    };
    // The controller's own log, off unless RUST_LOG asks (e.g. `ovnkit_kube=debug`).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let lab = Lab::new().context("the benchmark needs root and OVN installed")?;
    let rt = tokio::runtime::Runtime::new()?;
    println!("| workload | pods | wall s | transactions | ports in NB after |");
    println!("|---|---|---|---|---|");
    let mut floors = Vec::new();
    for n in sizes {
        let server = lab.start_ovsdb_server(
            OvsdbServerOptions::new(schemas::NB).with_name(&format!("nb{n}")),
        )?;
        let remote = server.unix_remote();
        let (wall, txns) = rt.block_on(settle(&remote, cluster(n, None), n))?;
        println!(
            "| cold | {n} | {:.2} | {txns} | {} |",
            wall.as_secs_f64(),
            ports(&lab, &remote)?
        );
        let (replica, dump) = rt.block_on(read_floor(&lab, &remote))?;
        floors.push((n, replica, dump));
        let remaining = n - n.div_ceil(100);
        let (wall, txns) = rt.block_on(settle(&remote, cluster(n, Some(100)), remaining))?;
        println!(
            "| restart, 1% deleted meanwhile | {n} | {:.2} | {txns} | {} |",
            wall.as_secs_f64(),
            ports(&lab, &remote)?
        );
    }
    println!("\nReading the controller's tables once (the floor under a restart):\n");
    println!("| pods | ovnkit replica sync s | ovsdb-client dump s |");
    println!("|---|---|---|");
    for (n, replica, dump) in floors {
        println!(
            "| {n} | {:.2} | {:.2} |",
            replica.as_secs_f64(),
            dump.as_secs_f64()
        );
    }
    println!(
        "\npeak RSS of this process (controller and runtime): {} MB",
        peak_rss_mb()
    );
    Ok(())
}
