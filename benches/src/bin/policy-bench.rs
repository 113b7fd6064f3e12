//! NetworkPolicies reconciled onto a private `ovsdb-server` (OVN_Northbound) by the controller
//! running in this process (`run_observed`), with the objects in memory:
//!
//! - **pods**: 2,000 pods in 20 namespaces onto an empty NB (the base the policies land on).
//! - **policies**: 500 NetworkPolicies (25 per namespace) arriving at once on that cluster:
//!   wall time until OVN holds their port groups, address sets and ACLs and nothing is left.
//! - **relabel**: one pod changes labels so that it moves between port groups and address
//!   sets of many policies: wall time of that catch-up.
//!
//! Each policy selects one `app` of its namespace; allows ingress on TCP 80, on the named
//! port `http` (8080 on every pod) and on a range from `tier: web` pods of its namespace and
//! from `role: client` pods of namespaces of one `team`; and egress to UDP 53 and to an
//! ipBlock with an except. Run as root with OVN installed:
//!
//! ```text
//! cargo run --release -p benches --bin policy-bench                 # 2,000 pods, 500 policies
//! cargo run --release -p benches --bin policy-bench -- 4000 1000    # other sizes
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, Namespace, Node, Pod, PodSpec, Service,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use ovn_testbed::{Lab, OvsdbServerOptions, schemas};
use ovnkit_kube::controller::config::ControllerConfig;
use ovnkit_kube::controller::run::{Progress, run_observed};
use ovnkit_kube::controller::source::{
    ObjectEvent, ObjectRef, ObjectSource, SinkError, SourceError, StatusSink, WatchEvent,
};
use tokio::sync::{Notify, watch};

const NAMESPACES: usize = 20;

/// The listing, then policies once `policies_go` is notified, then one relabelled pod once
/// `relabel_go` is.
struct Source {
    namespaces: Vec<Namespace>,
    pods: Vec<Pod>,
    policies: Vec<NetworkPolicy>,
    relabelled: Pod,
    policies_go: Arc<Notify>,
    relabel_go: Arc<Notify>,
}

fn listed<K: Send + 'static>(
    objects: Vec<K>,
    later: Vec<K>,
    go: Arc<Notify>,
) -> BoxStream<'static, Result<WatchEvent<K>, SourceError>> {
    let first = std::iter::once(WatchEvent::Init)
        .chain(objects.into_iter().map(WatchEvent::InitApply))
        .chain(std::iter::once(WatchEvent::InitDone))
        .map(Ok);
    let then = stream::once(async move {
        go.notified().await;
        stream::iter(later.into_iter().map(|o| Ok(WatchEvent::Apply(o))))
    })
    .flatten();
    stream::iter(first)
        .chain(then)
        .chain(stream::pending())
        .boxed()
}

impl ObjectSource for Source {
    fn namespaces(&self) -> BoxStream<'static, Result<WatchEvent<Namespace>, SourceError>> {
        listed(self.namespaces.clone(), Vec::new(), Arc::new(Notify::new()))
    }
    fn pods(&self) -> BoxStream<'static, Result<WatchEvent<Pod>, SourceError>> {
        listed(
            self.pods.clone(),
            vec![self.relabelled.clone()],
            self.relabel_go.clone(),
        )
    }
    fn nodes(&self) -> BoxStream<'static, Result<WatchEvent<Node>, SourceError>> {
        let nodes = (1..=3)
            .map(|i| Node {
                metadata: meta(None, &format!("node{i}"), &[]),
                ..Node::default()
            })
            .collect();
        listed(nodes, Vec::new(), Arc::new(Notify::new()))
    }
    fn services(&self) -> BoxStream<'static, Result<WatchEvent<Service>, SourceError>> {
        listed(Vec::new(), Vec::new(), Arc::new(Notify::new()))
    }
    fn endpoint_slices(
        &self,
    ) -> BoxStream<'static, Result<WatchEvent<EndpointSlice>, SourceError>> {
        listed(Vec::new(), Vec::new(), Arc::new(Notify::new()))
    }
    fn network_policies(
        &self,
    ) -> BoxStream<'static, Result<WatchEvent<NetworkPolicy>, SourceError>> {
        listed(Vec::new(), self.policies.clone(), self.policies_go.clone())
    }
}

/// Counts events (there must be none).
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

fn meta(namespace: Option<&str>, name: &str, labels: &[(&str, String)]) -> ObjectMeta {
    ObjectMeta {
        namespace: namespace.map(str::to_owned),
        uid: Some(format!("uid-{name}")),
        name: Some(name.to_owned()),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        ),
        ..ObjectMeta::default()
    }
}

fn pod(i: usize, role: &str) -> Pod {
    let ns = format!("ns{}", i % NAMESPACES);
    let tier = ["web", "db", "cache"][i % 3];
    let labels = [
        ("app", format!("app{}", (i / NAMESPACES) % 25)),
        ("tier", tier.to_owned()),
        ("role", role.to_owned()),
    ];
    Pod {
        metadata: meta(Some(&ns), &format!("pod-{i}"), &labels),
        spec: Some(PodSpec {
            node_name: Some(format!("node{}", i % 3 + 1)),
            containers: vec![Container {
                name: "c".into(),
                ports: Some(vec![ContainerPort {
                    name: Some("http".into()),
                    container_port: 8080,
                    ..ContainerPort::default()
                }]),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

fn policy(ns: usize, app: usize) -> Result<NetworkPolicy> {
    let team = format!("t{}", app % 5);
    let v = serde_json::json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": format!("p{app}"), "namespace": format!("ns{ns}"),
                     "uid": format!("uid-ns{ns}-p{app}")},
        "spec": {
            "podSelector": {"matchLabels": {"app": format!("app{app}")}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{
                "from": [
                    {"podSelector": {"matchLabels": {"tier": "web"}}},
                    {"namespaceSelector": {"matchLabels": {"team": team}},
                     "podSelector": {"matchExpressions": [
                         {"key": "role", "operator": "In", "values": ["client"]}]}}
                ],
                "ports": [{"port": 80}, {"port": "http"}, {"port": 9000, "endPort": 9100}]
            }],
            "egress": [
                {"ports": [{"protocol": "UDP", "port": 53}]},
                {"to": [{"ipBlock": {"cidr": "172.16.0.0/12", "except": ["172.16.1.0/24"]}}]}
            ]
        }
    });
    Ok(serde_json::from_value(v)?)
}

fn source(pods: usize, policies: usize) -> Result<Source> {
    let namespaces = (0..NAMESPACES)
        .map(|i| Namespace {
            metadata: meta(None, &format!("ns{i}"), &[("team", format!("t{}", i % 5))]),
            ..Namespace::default()
        })
        .collect();
    let all: Vec<Pod> = (0..pods)
        .map(|i| pod(i, if i % 4 == 0 { "client" } else { "server" }))
        .collect();
    let mut relabelled = all[0].clone();
    if let Some(l) = relabelled.metadata.labels.as_mut() {
        l.insert("app".into(), "app7".into());
        l.insert("tier".into(), "db".into());
        l.insert("role".into(), "server".into());
    }
    let per_ns = policies.div_ceil(NAMESPACES);
    let mut nps = Vec::new();
    'outer: for app in 0..per_ns {
        for ns in 0..NAMESPACES {
            if nps.len() == policies {
                break 'outer;
            }
            nps.push(policy(ns, app)?);
        }
    }
    Ok(Source {
        namespaces,
        pods: all,
        policies: nps,
        relabelled,
        policies_go: Arc::new(Notify::new()),
        relabel_go: Arc::new(Notify::new()),
    })
}

/// Waits until the controller has written at least once more after `after` transactions and
/// has settled; the time since `start` and the transactions it took.
async fn settled(
    rx: &mut watch::Receiver<Progress>,
    after: u64,
    start: Instant,
) -> Result<(Duration, u64)> {
    loop {
        {
            let p = *rx.borrow();
            if p.settled && p.transactions > after {
                return Ok((start.elapsed(), p.transactions - after));
            }
        }
        tokio::select! {
            r = rx.changed() => r.context("the controller stopped")?,
            () = tokio::time::sleep(Duration::from_secs(300)) => bail!("not settled after 300 s"),
        }
    }
}

/// Rows of `table` in the NB, counted with `ovsdb-client`.
fn count(lab: &Lab, remote: &str, table: &str) -> Result<usize> {
    let out = std::process::Command::new("ovsdb-client")
        .current_dir(lab.dir())
        .args([
            "--format=csv",
            "--no-headings",
            "dump",
            remote,
            "OVN_Northbound",
            table,
            "_uuid",
        ])
        .output()
        .context("ovsdb-client")?;
    if !out.status.success() {
        bail!(
            "ovsdb-client dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().count())
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let pods: usize = args
        .next()
        .map_or(Ok(2000), |a| a.parse())
        .context("a pod count")?;
    let policies: usize = args
        .next()
        .map_or(Ok(500), |a| a.parse())
        .context("a policy count")?;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let lab = Lab::new().context("the benchmark needs root and OVN installed")?;
    let server = lab.start_ovsdb_server(OvsdbServerOptions::new(schemas::NB).with_name("nbp"))?;
    let remote = server.unix_remote();
    let rt = tokio::runtime::Runtime::new()?;
    let src = Arc::new(source(pods, policies)?);
    let (policies_go, relabel_go) = (src.policies_go.clone(), src.relabel_go.clone());
    let sink = Arc::new(Counter::default());
    let counted = sink.clone();
    let mut rows = Vec::new();
    rt.block_on(async {
        let (tx, mut rx) = watch::channel(Progress::default());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let remote2 = remote.clone();
        let task = tokio::spawn(async move {
            let config = ControllerConfig::default()
                .with_default_subnet("ovn-default", "10.0.0.0/8".parse().expect("a CIDR"));
            let stop = async {
                let _ = stop_rx.await;
            };
            run_observed(config, &remote2, src.as_ref(), sink, stop, &tx).await
        });
        let (wall, txns) = settled(&mut rx, 0, Instant::now()).await?;
        rows.push(("pods onto an empty NB", wall, txns));
        let before = rx.borrow().transactions;
        let start = Instant::now();
        policies_go.notify_one();
        let (wall, txns) = settled(&mut rx, before, start).await?;
        rows.push(("policies onto the pods", wall, txns));
        let before = rx.borrow().transactions;
        let start = Instant::now();
        relabel_go.notify_one();
        let (wall, txns) = settled(&mut rx, before, start).await?;
        rows.push(("one pod relabelled", wall, txns));
        let _ = stop_tx.send(());
        task.await??;
        anyhow::Ok(())
    })?;
    let events = counted.events.load(Ordering::Relaxed);
    if events > 0 {
        bail!("{events} events reported (see above)");
    }
    let groups = count(&lab, &remote, "Port_Group")?;
    let sets = count(&lab, &remote, "Address_Set")?;
    let acls = count(&lab, &remote, "ACL")?;
    if groups != policies {
        bail!("{groups} port groups for {policies} policies");
    }
    println!("| step | pods | policies | wall s | transactions |");
    println!("|---|---|---|---|---|");
    for (what, wall, txns) in rows {
        println!(
            "| {what} | {pods} | {policies} | {:.3} | {txns} |",
            wall.as_secs_f64()
        );
    }
    println!("\nNB after: {groups} port groups, {sets} address sets, {acls} ACLs");
    Ok(())
}
