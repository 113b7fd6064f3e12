//! `up --keep`: the sandbox follows its manifests. A pod added is created through CRI, a pod
//! removed is removed through CRI, every other change reaches the controller through the
//! working copy; the checks a change affects run again and the report `status` shows is
//! rewritten.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::checks::{Ctx, FEATURES};
use super::cluster::{Cluster, Progress, node_names, wait_allocated};
use super::objects::Follower;
use super::report::Report;
use super::statedir::StateDir;
use super::up::{Stop, UpOptions, Which, daemons, pod_rows, run_checks, write_endpoints};
use super::world::{Decisions, Objects};

/// How long the manifests must stay unchanged before a change is applied.
const QUIET: Duration = Duration::from_millis(300);

/// Applies manifest changes until a stop is requested.
#[allow(clippy::too_many_arguments)]
pub fn follow(
    cluster: &mut Cluster,
    follower: &mut Follower,
    decisions: &mut Decisions,
    mut objects: Objects,
    opts: &UpOptions,
    report: &mut Report,
    state: &StateDir,
    rt: &tokio::runtime::Runtime,
    progress: &Progress,
    stop: &Stop,
) -> Result<()> {
    let start = Instant::now();
    loop {
        let changed = rt.block_on(async {
            tokio::select! {
                () = follower.changed(QUIET) => true,
                () = stop.wait() => false,
            }
        });
        if !changed || stop.requested() {
            return Ok(());
        }
        let stamp = |line: &str| format!("[{:>7.1}s] {line}", start.elapsed().as_secs_f64());
        for e in follower.take_errors() {
            progress.line(format!("manifests: {e} (its objects stay as they were)"));
            report.changes.push(stamp(&format!("not applied: {e}")));
        }
        let new = follower.objects().with_scale_pods(opts.pods);
        if new == objects {
            continue;
        }
        let t = Instant::now();
        let Applied {
            lines,
            which,
            failed,
        } = match apply(cluster, decisions, &objects, &new, opts, rt, progress, stop) {
            Ok(applied) => applied,
            Err(_) if stop.requested() => return Ok(()),
            Err(e) => return Err(e),
        };
        objects = new;
        for l in &lines {
            progress.line(l);
            report.changes.push(stamp(l));
        }
        let ctx = Ctx {
            cluster,
            objects: &objects,
            decisions,
            features: FEATURES,
        };
        match run_checks(&ctx, report, which, progress, stop) {
            Ok(()) => {}
            Err(_) if stop.requested() => return Ok(()),
            Err(e) => return Err(e),
        }
        pod_rows(&ctx, &failed, report);
        daemons(cluster, report);
        report.metrics = Some(cluster.metrics.scrape());
        report.time("last change: applied and checked", t.elapsed());
        report.conclude();
        state.write_report(report)?;
        progress.line(if report.passed {
            "checks after the change: all pass".to_owned()
        } else {
            format!(
                "checks after the change: {} failed: {}",
                report.failures.len(),
                report.failures.join("; ")
            )
        });
    }
}

fn annotations(o: &Objects, k: &str) -> BTreeMap<String, String> {
    o.pods
        .get(k)
        .and_then(|p| p.metadata.annotations.clone())
        .unwrap_or_default()
}

fn labels(o: &Objects, k: &str) -> BTreeMap<String, String> {
    o.pods
        .get(k)
        .and_then(|p| p.metadata.labels.clone())
        .unwrap_or_default()
}

/// What changed between two maps: (added, removed, changed) keys.
fn diff<T: PartialEq>(
    old: &BTreeMap<String, T>,
    new: &BTreeMap<String, T>,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let added = new
        .keys()
        .filter(|k| !old.contains_key(*k))
        .cloned()
        .collect();
    let removed = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .cloned()
        .collect();
    let changed = new
        .iter()
        .filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v))
        .map(|(k, _)| k.clone())
        .collect();
    (added, removed, changed)
}

fn describe(
    kind: &str,
    (added, removed, changed): &(Vec<String>, Vec<String>, Vec<String>),
    lines: &mut Vec<String>,
) -> bool {
    for k in added {
        lines.push(format!("{kind} {k} added"));
    }
    for k in removed {
        lines.push(format!("{kind} {k} removed"));
    }
    for k in changed {
        lines.push(format!("{kind} {k} changed"));
    }
    !(added.is_empty() && removed.is_empty() && changed.is_empty())
}

/// What applying a change did.
struct Applied {
    /// One line per change.
    lines: Vec<String>,
    /// The checks to run again.
    which: Which,
    /// Pods that failed to start, with why.
    failed: Vec<(String, String)>,
}

/// Applies the change from `old` to `new`.
#[allow(clippy::too_many_arguments)]
fn apply(
    cluster: &mut Cluster,
    decisions: &mut Decisions,
    old: &Objects,
    new: &Objects,
    opts: &UpOptions,
    rt: &tokio::runtime::Runtime,
    progress: &Progress,
    stop: &Stop,
) -> Result<Applied> {
    let mut lines = Vec::new();
    let mut which = Which {
        qos: Some(Vec::new()),
        ..Which::default()
    };
    let pods = diff(&old.pods, &new.pods);
    let (added, removed, changed) = &pods;
    for k in removed {
        // Through CRI: StopPodSandbox runs CNI DEL on the pod's node.
        cluster.pods.remove(k);
        lines.push(format!("pod {k} removed through CRI"));
    }
    let names = node_names(&cluster.nodes);
    for w in decisions.update(new, &names) {
        lines.push(format!("warning: {w}"));
    }
    write_endpoints(cluster, new, decisions)?;
    let mut failed = Vec::new();
    if !added.is_empty() {
        wait_allocated(&cluster.state, added, Duration::from_secs(60))?;
        let list = added
            .iter()
            .filter_map(|k| {
                let node = cluster.node_index(decisions.pod_nodes.get(k)?)?;
                Some((k.clone(), new.pods.get(k)?.clone(), node))
            })
            .collect();
        failed = cluster.create_pods(list, opts.creators, rt.handle(), progress, stop);
        for k in added {
            match cluster.pods.get(k) {
                Some(p) => lines.push(format!(
                    "pod {k} created through CRI on {} ({})",
                    cluster.nodes[p.node].name(),
                    p.ip
                )),
                None => lines.push(format!("pod {k} could not start")),
            }
        }
        which
            .qos
            .get_or_insert_with(Vec::new)
            .extend(added.iter().cloned());
    }
    for k in changed {
        let (a, b) = (annotations(old, k), annotations(new, k));
        if a != b {
            let shown: Vec<String> = b
                .iter()
                .filter(|(key, v)| a.get(*key) != Some(*v))
                .map(|(key, v)| format!("{key}={v}"))
                .chain(
                    a.keys()
                        .filter(|key| !b.contains_key(*key))
                        .map(|key| format!("{key} removed")),
                )
                .collect();
            lines.push(format!("pod {k}: {}", shown.join(", ")));
            which.qos.get_or_insert_with(Vec::new).push(k.clone());
        }
        if labels(old, k) != labels(new, k) {
            lines.push(format!("pod {k}: labels changed"));
            which.reachability = true;
            which.services = true;
            which.dns = true;
        }
    }
    if !added.is_empty() || !removed.is_empty() {
        which.reachability = true;
        which.services = true;
        which.dns = true;
        which.gateways = true;
    }
    if describe(
        "network policy",
        &diff(&old.policies, &new.policies),
        &mut lines,
    ) {
        which.reachability = true;
        which.services = true;
    }
    if describe("service", &diff(&old.services, &new.services), &mut lines)
        | describe(
            "endpoint slice",
            &diff(&old.slices, &new.slices),
            &mut lines,
        )
    {
        which.services = true;
        which.dns = true;
    }
    if describe(
        "namespace",
        &diff(&old.namespaces, &new.namespaces),
        &mut lines,
    ) {
        which = Which {
            qos: which.qos,
            ..Which::all()
        };
    }
    write_endpoints(cluster, new, decisions)?;
    // The controller picks the working copy up within its debounce; then every chassis
    // catches up with the NB.
    std::thread::sleep(Duration::from_secs(1));
    cluster.central.sync_hv()?;
    Ok(Applied {
        lines,
        which,
        failed,
    })
}
