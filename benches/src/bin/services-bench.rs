//! Services on OVN load balancers, measured against a private `ovsdb-server` (OVN_Northbound):
//!
//! - **cold**: the controller starts on an empty NB with N Services of E ready endpoints each
//!   already listed (ClusterIP, one named TCP port): wall time until OVN holds every load
//!   balancer (in the group, on every switch and the router), and the transactions it took;
//!   once without and once with health checks (a `Load_Balancer_Health_Check` per VIP and
//!   `ip_port_mappings` per backend).
//! - **endpoint change**: then one endpoint of one Service is replaced, K times: the step's
//!   planning (the controller's state from the event to the plan) and the commit (the
//!   transaction sent until the server's reply), each, as the controller's loop does them.
//!
//! The controller runs in this process through the library: the cold runs through the loop
//! (`run_observed`), the changes through its state and a `ReplicaClient` directly, so that
//! the two parts of a step can be timed apart. Run as root with OVN installed:
//!
//! ```text
//! cargo run --release -p benches --bin services-bench              # 1,000 Services x 10
//! cargo run --release -p benches --bin services-bench -- 5000 10   # other sizes
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use ovn_model::snapshot::Typed;
use ovn_testbed::{Lab, OvsdbServerOptions, schemas};
use ovnkit_kube::controller::config::ControllerConfig;
use ovnkit_kube::controller::run::{NB_TABLES, Progress, run_observed};
use ovnkit_kube::controller::source::{
    ObjectEvent, ObjectRef, ObjectSource, SinkError, SourceError, StatusSink, WatchEvent,
};
use ovnkit_kube::controller::state::ControllerState;
use ovsdb::client::{ReplicaClient, ReplicaConfig};
use serde_json::json;
use tokio::sync::watch;

/// The objects, listed once.
#[derive(Clone)]
struct Listing {
    namespaces: Vec<Namespace>,
    nodes: Vec<Node>,
    services: Vec<Service>,
    slices: Vec<EndpointSlice>,
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
        listed(Vec::new())
    }
    fn nodes(&self) -> BoxStream<'static, Result<WatchEvent<Node>, SourceError>> {
        listed(self.nodes.clone())
    }
    fn services(&self) -> BoxStream<'static, Result<WatchEvent<Service>, SourceError>> {
        listed(self.services.clone())
    }
    fn endpoint_slices(
        &self,
    ) -> BoxStream<'static, Result<WatchEvent<EndpointSlice>, SourceError>> {
        listed(self.slices.clone())
    }
    fn network_policies(
        &self,
    ) -> BoxStream<'static, Result<WatchEvent<NetworkPolicy>, SourceError>> {
        listed(Vec::new())
    }
}

/// Counts the events (none is expected).
#[derive(Default)]
struct Counter {
    events: AtomicUsize,
}

#[async_trait::async_trait]
impl StatusSink for Counter {
    async fn annotate(
        &self,
        _: &ObjectRef,
        _: &BTreeMap<String, Option<String>>,
    ) -> Result<(), SinkError> {
        Ok(())
    }

    async fn event(&self, event: &ObjectEvent) -> Result<(), SinkError> {
        if self.events.fetch_add(1, Ordering::Relaxed) < 5 {
            eprintln!("event: {}", event.message);
        }
        Ok(())
    }
}

fn object<T: k8s_openapi::serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("a well-formed object")
}

/// The endpoint address `j` of Service `i` (in `ovn-default`, 10.16.0.0/16).
fn endpoint_ip(i: usize, j: usize) -> String {
    let n = i * 16 + j + 256;
    format!("10.16.{}.{}", n / 256, n % 256)
}

fn slice(i: usize, ips: &[String]) -> EndpointSlice {
    let endpoints: Vec<serde_json::Value> = ips
        .iter()
        .enumerate()
        .map(|(j, ip)| {
            json!({"addresses": [ip], "conditions": {"ready": true},
                "nodeName": format!("node{}", j % 3 + 1),
                "targetRef": {"kind": "Pod", "namespace": "default", "name": format!("svc-{i}-{j}")}})
        })
        .collect();
    object(json!({
        "metadata": {"name": format!("svc-{i}-1"), "namespace": "default",
            "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints,
    }))
}

fn cluster(services: usize, endpoints: usize) -> Listing {
    let nodes = (1..=3)
        .map(|i| object(json!({"metadata": {"name": format!("node{i}")}})))
        .collect();
    let svcs = (0..services)
        .map(|i| {
            object(json!({
                "metadata": {"name": format!("svc-{i}"), "namespace": "default"},
                "spec": {"clusterIP": format!("10.96.{}.{}", i / 256, i % 256),
                    "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
            }))
        })
        .collect();
    let slices = (0..services)
        .map(|i| {
            let ips: Vec<String> = (0..endpoints).map(|j| endpoint_ip(i, j)).collect();
            slice(i, &ips)
        })
        .collect();
    Listing {
        namespaces: vec![object(json!({"metadata": {"name": "default"}}))],
        nodes,
        services: svcs,
        slices,
    }
}

fn config(health_checks: bool) -> ControllerConfig {
    ControllerConfig::default().with_service_health_checks(health_checks)
}

/// One controller run until it has settled; its wall time and transactions.
async fn settle(remote: &str, listing: Listing, health_checks: bool) -> Result<(Duration, u64)> {
    let (tx, mut rx) = watch::channel(Progress::default());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sink = Arc::new(Counter::default());
    let counted = sink.clone();
    let remote = remote.to_owned();
    let start = Instant::now();
    let task = tokio::spawn(async move {
        let stop = async {
            let _ = stop_rx.await;
        };
        run_observed(config(health_checks), &remote, &listing, sink, stop, &tx).await
    });
    loop {
        tokio::select! {
            r = rx.changed() => r.context("the controller stopped")?,
            () = tokio::time::sleep(Duration::from_secs(300)) => bail!("not settled after 300 s"),
        }
        if rx.borrow().settled {
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
    Ok((wall, transactions))
}

/// `(load balancers, health checks, load balancers in the group)` in the NB.
fn counts(nb: &ReplicaClient) -> (usize, usize, usize) {
    let snap = nb.snapshot();
    let typed = Typed::new(&snap);
    let lbs = typed.rows::<ovn_model::nb::LoadBalancer>().count();
    let checks = typed
        .rows::<ovn_model::nb::LoadBalancerHealthCheck>()
        .count();
    let grouped = typed
        .rows::<ovn_model::nb::LoadBalancerGroup>()
        .map(|g| g.load_balancer.len())
        .sum();
    (lbs, checks, grouped)
}

/// The time of each endpoint change: planning and commit.
struct Change {
    plan: Duration,
    commit: Duration,
    steps: usize,
}

/// A controller's state over the NB (as after a takeover), then `k` endpoint changes.
async fn endpoint_changes(
    nb: &ReplicaClient,
    listing: &Listing,
    health_checks: bool,
    k: usize,
) -> Result<Vec<Change>> {
    let mut state = ControllerState::new(config(health_checks)).map_err(anyhow::Error::msg)?;
    macro_rules! list {
        ($event:ident, $objects:expr) => {
            state.$event(WatchEvent::Init);
            for o in $objects.iter().cloned() {
                state.$event(WatchEvent::InitApply(o));
            }
            state.$event(WatchEvent::InitDone);
        };
    }
    list!(namespace_event, listing.namespaces);
    list!(node_event, listing.nodes);
    list!(pod_event, Vec::<Pod>::new());
    list!(service_event, listing.services);
    list!(endpoint_slice_event, listing.slices);
    list!(network_policy_event, Vec::<NetworkPolicy>::new());
    let snap = nb.snapshot();
    let events = state.restore(&Typed::new(&snap));
    if !events.is_empty() {
        bail!("restore reported {} events", events.len());
    }
    while state.is_dirty() {
        let snap = nb.snapshot();
        let out = state.step(&Typed::new(&snap));
        if !out.plan.is_empty() {
            bail!("the settled NB needed changes:\n{}", out.plan);
        }
    }
    let mut out = Vec::new();
    let n = listing.slices.len();
    for c in 0..k {
        let i = (c * 7919) % n;
        let mut ips: Vec<String> = (0..10).map(|j| endpoint_ip(i, j)).collect();
        ips[c % 10] = endpoint_ip(i, 10 + c % 6);
        state.endpoint_slice_event(WatchEvent::Apply(slice(i, &ips)));
        let start = Instant::now();
        let snap = nb.snapshot();
        let step = state.step(&Typed::new(&snap));
        let prepared = step.plan.transaction()?;
        let plan = start.elapsed();
        let sent = Instant::now();
        prepared.send_via(nb).await?;
        let commit = sent.elapsed();
        out.push(Change {
            plan,
            commit,
            steps: step.plan.steps().len(),
        });
        // The next change plans from a snapshot that holds this one.
        let seq = nb.with_replica(|r| r.seq());
        let deadline = Instant::now() + Duration::from_secs(5);
        while nb.with_replica(|r| r.seq()) <= seq && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if state.is_dirty() {
            bail!("a change left work for another step");
        }
    }
    Ok(out)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let services: usize = args.next().map_or(Ok(1000), |a| a.parse())?;
    let endpoints: usize = args.next().map_or(Ok(10), |a| a.parse())?;
    const CHANGES: usize = 20;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let lab = Lab::new().context("the benchmark needs root and OVN installed")?;
    let rt = tokio::runtime::Runtime::new()?;
    let listing = cluster(services, endpoints);
    println!(
        "| workload | Services x endpoints | health checks | wall s | transactions | load balancers / health checks / in the group |"
    );
    println!("|---|---|---|---|---|---|");
    let mut changes = Vec::new();
    for health_checks in [false, true] {
        let server = lab.start_ovsdb_server(
            OvsdbServerOptions::new(schemas::NB).with_name(&format!("nb-{health_checks}")),
        )?;
        let remote = server.unix_remote();
        let (wall, txns) = rt.block_on(settle(&remote, listing.clone(), health_checks))?;
        let monitor = ovn_model::snapshot::monitor(ovn_model::nb::DATABASE, &NB_TABLES);
        let (nb, _events) =
            rt.block_on(ReplicaClient::start(ReplicaConfig::new(&remote, monitor)))?;
        rt.block_on(nb.wait_synced())?;
        let (lbs, checks, grouped) = counts(&nb);
        println!(
            "| cold | {services} x {endpoints} | {} | {:.2} | {txns} | {lbs} / {checks} / {grouped} |",
            if health_checks { "on" } else { "off" },
            wall.as_secs_f64(),
        );
        if lbs != services || grouped != services {
            bail!("{lbs} load balancers, {grouped} in the group; {services} expected");
        }
        changes.push((
            health_checks,
            rt.block_on(endpoint_changes(&nb, &listing, health_checks, CHANGES))?,
        ));
    }
    println!(
        "\nOne endpoint of one Service replaced, {CHANGES} times (the step's planning, then the commit):\n"
    );
    println!(
        "| health checks | plan ms median (max) | commit ms median (max) | plan + commit ms median | plan steps |"
    );
    println!("|---|---|---|---|---|");
    for (health_checks, c) in changes {
        let plan: Vec<Duration> = c.iter().map(|c| c.plan).collect();
        let commit: Vec<Duration> = c.iter().map(|c| c.commit).collect();
        let total: Vec<Duration> = c.iter().map(|c| c.plan + c.commit).collect();
        let steps: Vec<usize> = c.iter().map(|c| c.steps).collect();
        println!(
            "| {} | {:.2} ({:.2}) | {:.2} ({:.2}) | {:.2} | {}-{} |",
            if health_checks { "on" } else { "off" },
            ms(median(plan.clone())),
            ms(*plan.iter().max().unwrap()),
            ms(median(commit.clone())),
            ms(*commit.iter().max().unwrap()),
            ms(median(total)),
            steps.iter().min().unwrap(),
            steps.iter().max().unwrap(),
        );
    }
    Ok(())
}
