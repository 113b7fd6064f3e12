//! `ovnkit sandbox up`: bring-up, the checks and the report.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ovn_testbed::{CentralOptions, ExternalNet, Lab, Node};

use super::checks::{self, CLUSTER_DOMAIN, Ctx, FEATURES};
use super::cluster::{
    Cluster, Progress, node_names, pod_results, start_agents, start_echo, start_runtimes,
    wait_allocated,
};
use super::metrics::Targets;
use super::objects::{DEFAULT_FILE, DEFAULT_MANIFESTS, Follower};
use super::procs::ControllerProcess;
use super::report::{Daemon, NodeRow, Outcome, PodRow, Report, Scale};
use super::statedir::{Record, StateDir, rss_kib, start_time};
use super::world::{Decisions, Objects, working_copy, write_working_copy};
use super::{down, keep};

/// What `up` was asked for.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Nodes.
    pub nodes: usize,
    /// The manifest directory (default: the binary's own manifests).
    pub manifests: Option<PathBuf>,
    /// Stay in the foreground after the checks, following the manifests.
    pub keep: bool,
    /// Extra pods (`scale/load-NNN`).
    pub pods: usize,
    /// Print the report as JSON.
    pub json: bool,
    /// The state directory.
    pub dir: PathBuf,
    /// Concurrent `RunPodSandbox` callers per node.
    pub creators: usize,
}

/// The agents' flags: OVS linux-htb for ingress limits, a bound on how long ADD waits, the
/// pods' resolver (OVN answers the Services' names on the way to it), and metrics on a free
/// port of the node's loopback.
pub const AGENT_ARGS: &[&str] = &[
    "--htb-ingress",
    "--port-timeout",
    "30",
    "--dns-server",
    "10.96.0.10",
    "--cluster-domain",
    "cluster.local",
    "--metrics-addr",
    "127.0.0.1:0",
];

/// Removes the state directory when dropped (after everything declared later is gone).
struct RemoveOnDrop(StateDir);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = self.0.remove();
    }
}

/// Set by SIGINT/SIGTERM.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    flag: Arc<AtomicBool>,
    notify: Arc<tokio::sync::Notify>,
}

impl Stop {
    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Fails when a stop was asked for.
    pub fn check(&self) -> Result<()> {
        if self.requested() {
            bail!("stopped by a signal");
        }
        Ok(())
    }

    /// Completes once a stop was asked for.
    pub async fn wait(&self) {
        while !self.requested() {
            self.notify.notified().await;
        }
    }

    fn watch(&self, rt: &tokio::runtime::Runtime) -> Result<()> {
        let (flag, notify) = (self.flag.clone(), self.notify.clone());
        let _guard = rt.enter();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        rt.spawn(async move {
            loop {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                eprintln!("ovnkit sandbox: stopping (tearing everything down)");
                flag.store(true, Ordering::SeqCst);
                notify.notify_waiters();
            }
        });
        Ok(())
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The `p`-th percentile (0-100) of sorted `values`.
pub fn percentile(sorted: &[u64], p: u64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p as usize * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// Brings the sandbox up, runs the checks, prints the report; with `keep`, follows the
/// manifests until stopped. Whether every check of the last report held.
pub fn up(opts: &UpOptions) -> Result<bool> {
    let progress = Progress::new();
    let state = StateDir::new(&opts.dir);
    if let Some(record) = state.record() {
        if record.up_running() {
            bail!(
                "a sandbox runs in {} (ovnkit sandbox up, PID {}); stop it with `ovnkit sandbox down --dir {}`",
                opts.dir.display(),
                record.pid,
                opts.dir.display()
            );
        }
        progress.line("cleaning up what an earlier `up` left behind");
        down::reclaim_record(&state, &record, &progress)?;
    }
    if opts.nodes == 0 || opts.nodes > 20 {
        bail!("--nodes {}: the sandbox runs 1 to 20 nodes", opts.nodes);
    }
    state.remove()?;
    state.create()?;
    let _remove_state = RemoveOnDrop(state.clone());
    let me = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
    let manifests = match &opts.manifests {
        Some(dir) => {
            std::fs::canonicalize(dir).with_context(|| format!("--manifests {}", dir.display()))?
        }
        None => {
            let dir = state.manifests();
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join(DEFAULT_FILE), DEFAULT_MANIFESTS)?;
            dir
        }
    };
    let mut record = Record {
        pid: me,
        started: start_time(me).unwrap_or(0),
        manifests: manifests.clone(),
        keep: opts.keep,
        phase: "starting".into(),
        ..Record::default()
    };
    state.write_record(&record)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let stop = Stop::default();
    stop.watch(&rt)?;
    let mut follower = rt.block_on(Follower::start(&manifests, Duration::from_secs(30)))?;
    let objects = follower.objects().with_scale_pods(opts.pods);
    progress.line(format!(
        "manifests {}: {} namespaces, {} pods, {} services, {} network policies",
        manifests.display(),
        objects.namespaces.len(),
        objects.pods.len(),
        objects.services.len(),
        objects.policies.len()
    ));
    let mut report = Report {
        manifests: manifests.display().to_string(),
        ..Report::default()
    };

    let lab = Lab::new()
        .context("the sandbox needs root and the lab's packages (`cargo xtask install`)")?;
    record.lab_dir = Some(lab.dir().to_owned());
    record.lab_id = Some(lab.id().to_owned());
    state.write_record(&record)?;
    report.lab_id = lab.id().to_owned();
    report.lab_dir = lab.dir().display().to_string();
    progress.line(format!("lab {} in {}", lab.id(), lab.dir().display()));

    let t = Instant::now();
    let central = lab.start_central(CentralOptions::default())?;
    report.time("central (NB, SB, northd)", t.elapsed());
    progress.line("central: NB, SB and northd up");
    stop.check()?;
    let t = Instant::now();
    let mut nodes: Vec<Node> = Vec::new();
    for _ in 0..opts.nodes {
        nodes.push(lab.start_node(&central)?);
        stop.check()?;
    }
    report.time("nodes (OVS, ovn-controller)", t.elapsed());
    progress.line(format!("nodes: {} up", nodes.len()));
    let t = Instant::now();
    let external = lab.start_external_net()?;
    for n in &nodes {
        external.connect(n)?;
    }
    let echo = start_echo(&external)?;
    report.time("external network", t.elapsed());
    report.nodes = nodes
        .iter()
        .map(|n| NodeRow {
            name: n.name(),
            chassis: n.chassis(),
            external_ip: ExternalNet::node_ip(n).to_string(),
        })
        .collect();

    let names = node_names(&nodes);
    let mut decisions = Decisions::default();
    for w in decisions.update(&objects, &names) {
        progress.line(format!("warning: {w}"));
    }
    let work = lab.dir().join("manifests");
    let cstate = lab.dir().join("state");
    std::fs::create_dir_all(&work)?;
    write_working_copy(
        &work,
        &working_copy(&objects, &decisions, &names, &BTreeMap::new()),
    )?;
    let exe = std::env::current_exe().context("finding the ovnkit binary")?;
    let t = Instant::now();
    let controller = ControllerProcess::start(
        &exe,
        &central.nb_remote(),
        &work,
        &cstate,
        &lab.dir().join("controller.log"),
        &[
            "--cluster-domain",
            CLUSTER_DOMAIN,
            "--metrics-addr",
            "127.0.0.1:0",
        ],
    )?;
    let keys: Vec<String> = objects.pods.keys().cloned().collect();
    let within = Duration::from_secs(60 + keys.len() as u64 / 5);
    let allocated = wait_allocated(&cstate, &keys, within)
        .with_context(|| format!("see {}", controller.log().display()))?;
    report.time("controller: every pod allocated", t.elapsed());
    progress.line(format!("controller: {} pods allocated", keys.len()));
    stop.check()?;

    let t = Instant::now();
    let agents = start_agents(&exe, &lab, &central, &nodes, AGENT_ARGS)?;
    report.time("agents", t.elapsed());
    progress.line(format!("agents: {} up", agents.len()));
    stop.check()?;
    let netns: Vec<(String, String)> = nodes
        .iter()
        .map(|n| (n.name(), n.netns().name().to_owned()))
        .collect();
    let targets = Targets::learn(&controller, &agents, &netns, Duration::from_secs(10));
    record.metrics = Some(targets.clone());
    state.write_record(&record)?;
    let t = Instant::now();
    let runtimes = start_runtimes(&nodes, &agents, &exe)?;
    report.time("containerd (with the local images)", t.elapsed());
    progress.line(format!("containerd: {} up", runtimes.len()));
    stop.check()?;

    let mut cluster = Cluster {
        pods: BTreeMap::new(),
        runtimes,
        agents,
        controller,
        echo,
        external,
        nodes,
        central,
        lab,
        work,
        state: cstate,
        metrics: targets,
    };
    record.phase = "creating pods".into();
    state.write_record(&record)?;
    let t = Instant::now();
    let list = objects
        .pods
        .iter()
        .filter_map(|(k, p)| {
            let node = cluster.node_index(decisions.pod_nodes.get(k)?)?;
            Some((k.clone(), p.clone(), node))
        })
        .collect();
    let failed = cluster.create_pods(list, opts.creators, rt.handle(), &progress, &stop);
    let pods_wall = t.elapsed();
    report.time("pods through CRI", pods_wall);
    for (k, e) in &failed {
        progress.line(format!("pod {k} failed: {e}"));
    }
    stop.check()?;
    let t = Instant::now();
    write_endpoints(&cluster, &objects, &decisions)?;
    cluster.central.sync_hv()?;
    report.time("endpoints", t.elapsed());

    record.phase = "checking".into();
    state.write_record(&record)?;
    let ctx = Ctx {
        cluster: &cluster,
        objects: &objects,
        decisions: &decisions,
        features: FEATURES,
    };
    run_checks(&ctx, &mut report, Which::all(), &progress, &stop)?;
    pod_rows(&ctx, &failed, &mut report);
    if opts.pods > 0 {
        let mut ready: Vec<u64> = cluster.pods.values().map(|p| ms(p.ready)).collect();
        ready.sort_unstable();
        let mut sandbox: Vec<u64> = cluster.pods.values().map(|p| ms(p.sandbox)).collect();
        sandbox.sort_unstable();
        report.scale = Some(Scale {
            pods: cluster.pods.len(),
            creators_per_node: opts.creators,
            ready_p50_ms: percentile(&ready, 50),
            ready_p99_ms: percentile(&ready, 99),
            ready_max_ms: ready.last().copied().unwrap_or(0),
            sandbox_p50_ms: percentile(&sandbox, 50),
            sandbox_p99_ms: percentile(&sandbox, 99),
            controller_allocated_ms: ms(allocated),
            pods_wall_ms: ms(pods_wall),
            reachability_ms: report.reachability.as_ref().map_or(0, |m| m.ms),
        });
    }
    daemons(&mut cluster, &mut report);
    report.metrics = Some(cluster.metrics.scrape());
    report.conclude();
    state.write_report(&report)?;
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    if opts.keep {
        record.phase = "running".into();
        state.write_record(&record)?;
        progress.line(format!(
            "running: edit the manifests in {} to change the network; `ovnkit sandbox status` shows it; \
             Ctrl-C or `ovnkit sandbox down` stops it",
            manifests.display()
        ));
        keep::follow(
            &mut cluster,
            &mut follower,
            &mut decisions,
            objects,
            opts,
            &mut report,
            &state,
            &rt,
            &progress,
            &stop,
        )?;
    }
    progress.line(format!(
        "tearing down: removing {} pods through CRI",
        cluster.pods.len()
    ));
    let t = Instant::now();
    cluster.remove_pods(opts.creators);
    progress.line(format!(
        "pods removed in {:.1}s; stopping containerd, the agents, the controller and the lab",
        t.elapsed().as_secs_f64()
    ));
    drop(cluster);
    progress.line("torn down");
    Ok(report.passed)
}

/// Writes the working copy with the EndpointSlices of the running pods.
pub fn write_endpoints(cluster: &Cluster, objects: &Objects, decisions: &Decisions) -> Result<()> {
    let running: BTreeMap<String, (IpAddr, String)> = cluster
        .pods
        .iter()
        .map(|(k, p)| (k.clone(), (p.ip, cluster.nodes[p.node].name())))
        .collect();
    let names = node_names(&cluster.nodes);
    write_working_copy(
        &cluster.work,
        &working_copy(objects, decisions, &names, &running),
    )?;
    Ok(())
}

/// Which checks to run.
#[derive(Debug, Clone, Default)]
pub struct Which {
    /// The reachability matrix.
    pub reachability: bool,
    /// Services and node ports.
    pub services: bool,
    /// DNS.
    pub dns: bool,
    /// QoS of these pods (`None`: all; empty: none).
    pub qos: Option<Vec<String>>,
    /// Gateways.
    pub gateways: bool,
}

impl Which {
    /// Every check.
    pub fn all() -> Self {
        Which {
            reachability: true,
            services: true,
            dns: true,
            qos: None,
            gateways: true,
        }
    }
}

/// Runs the checks of `which` and puts their results into `report`.
pub fn run_checks(
    ctx: &Ctx<'_>,
    report: &mut Report,
    which: Which,
    progress: &Progress,
    stop: &Stop,
) -> Result<()> {
    if which.reachability {
        let t = Instant::now();
        let m = checks::reachability(ctx);
        progress.line(format!("reachability: {} pairs probed", m.cells.len()));
        report.reachability = Some(m);
        report.time("check: reachability", t.elapsed());
        stop.check()?;
    }
    if which.services {
        let t = Instant::now();
        report.services = checks::services(ctx);
        report.node_ports = checks::node_ports(ctx);
        progress.line("services: asked");
        report.time("check: services and node ports", t.elapsed());
        stop.check()?;
    }
    if which.dns {
        let t = Instant::now();
        report.dns = checks::dns(ctx);
        report.time("check: DNS", t.elapsed());
        stop.check()?;
    }
    match &which.qos {
        Some(only) if only.is_empty() => {}
        only => {
            let t = Instant::now();
            let fresh = checks::qos(ctx, only.as_deref());
            match only {
                None => report.qos = fresh,
                Some(only) => {
                    report.qos.retain(|q| !only.contains(&q.pod));
                    report.qos.extend(fresh);
                    report
                        .qos
                        .sort_by(|a, b| (&a.pod, &a.direction).cmp(&(&b.pod, &b.direction)));
                }
            }
            report.qos.retain(|q| ctx.cluster.pods.contains_key(&q.pod));
            progress.line("qos: measured");
            report.time("check: QoS", t.elapsed());
            stop.check()?;
        }
    }
    if which.gateways {
        let t = Instant::now();
        report.gateways = checks::gateways(ctx);
        progress.line("gateways: probed");
        report.time("check: gateways", t.elapsed());
    }
    Ok(())
}

/// The pod rows: every pod of the manifests, running or not.
pub fn pod_rows(ctx: &Ctx<'_>, failed: &[(String, String)], report: &mut Report) {
    let results = pod_results(&ctx.cluster.state);
    report.pods = ctx
        .objects
        .pods
        .keys()
        .map(|k| {
            let (ns, name) = k.split_once('/').unwrap_or(("default", k));
            let node = ctx.decisions.pod_nodes.get(k).cloned().unwrap_or_default();
            match ctx.cluster.pods.get(k) {
                Some(p) => {
                    let (subnet, outcome) = ctx.cluster.address_outcome(k, &results);
                    PodRow {
                        namespace: ns.to_owned(),
                        name: name.to_owned(),
                        node,
                        ip: p.ip.to_string(),
                        mac: p.mac.clone(),
                        subnet,
                        ready_ms: ms(p.ready),
                        outcome,
                    }
                }
                None => PodRow {
                    namespace: ns.to_owned(),
                    name: name.to_owned(),
                    node,
                    ip: String::new(),
                    mac: String::new(),
                    subnet: String::new(),
                    ready_ms: 0,
                    outcome: Outcome::Fail(
                        failed
                            .iter()
                            .find(|(f, _)| f == k)
                            .map_or_else(|| "not running".to_owned(), |(_, e)| e.clone()),
                    ),
                },
            }
        })
        .collect();
}

/// Our daemons with their memory, and every PID of the lab.
pub fn daemons(cluster: &mut Cluster, report: &mut Report) {
    let mut list = vec![Daemon {
        name: "controller".into(),
        pid: cluster.controller.pid(),
        rss_kib: rss_kib(cluster.controller.pid()),
    }];
    for (a, n) in cluster.agents.iter().zip(&cluster.nodes) {
        list.push(Daemon {
            name: format!("agent {}", n.name()),
            pid: a.pid(),
            rss_kib: rss_kib(a.pid()),
        });
    }
    let mut pids: Vec<i32> = cluster.central.pids();
    for n in &cluster.nodes {
        pids.extend(n.pids());
    }
    pids.extend(cluster.runtimes.iter().filter_map(|r| r.pid()));
    pids.extend(list.iter().map(|d| d.pid));
    report.daemons = list;
    report.pids = pids;
}
