//! `ovnkit sandbox status`: the live state of a sandbox: whether `up` runs, the pods as the
//! controller allocated them, what the NB holds, the daemons' metrics (scraped now), and the
//! last check results.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use k8s_openapi::api::core::v1::Pod;
use serde::{Deserialize, Serialize};

use super::cluster::pod_results;
use super::report::{Metrics, Report};
use super::statedir::{Record, StateDir};

/// The NB tables `status` counts.
const NB_TABLES: &[&str] = &[
    "Logical_Switch",
    "Logical_Switch_Port",
    "Logical_Router",
    "Logical_Router_Policy",
    "ACL",
    "Port_Group",
    "Address_Set",
    "Load_Balancer",
    "QoS",
    "DNS",
];

/// A pod as the controller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LivePod {
    /// `namespace/name`.
    pub pod: String,
    /// Its node (from the controller's manifests).
    pub node: String,
    /// The allocated IP.
    pub ip: String,
    /// The allocated MAC.
    pub mac: String,
    /// The subnet.
    pub subnet: String,
}

/// What `status` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The state directory.
    pub dir: String,
    /// Whether `up` runs.
    pub running: bool,
    /// Its record.
    pub record: Option<Record>,
    /// The pods the controller allocated.
    pub pods: Vec<LivePod>,
    /// Rows per NB table.
    pub nb: BTreeMap<String, usize>,
    /// The daemons' metrics, scraped now (while `up` runs).
    pub metrics: Option<Metrics>,
    /// The last report.
    pub report: Option<Report>,
}

/// The nodes of the pods in the controller's manifests (`pods.yaml` of the working copy).
fn pod_nodes(lab: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(lab.join("manifests/pods.yaml")).unwrap_or_default();
    serde_yaml::Deserializer::from_str(&text)
        .filter_map(|doc| Pod::deserialize(doc).ok())
        .map(|p| {
            (
                super::world::key(&p.metadata),
                p.spec.and_then(|s| s.node_name).unwrap_or_default(),
            )
        })
        .collect()
}

fn nb_counts(lab: &Path) -> BTreeMap<String, usize> {
    let remote = format!("unix:{}", lab.join("central/nb.sock").display());
    NB_TABLES
        .iter()
        .filter_map(|t| {
            let out = Command::new("ovn-nbctl")
                .args([
                    &format!("--db={remote}"),
                    "--timeout=5",
                    "--bare",
                    "--columns=_uuid",
                    "list",
                    t,
                ])
                .output()
                .ok()
                .filter(|o| o.status.success())?;
            let n = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.trim().is_empty())
                .count();
            Some(((*t).to_owned(), n))
        })
        .collect()
}

/// Reads the live state of the sandbox in `state`.
pub fn status(state: &StateDir) -> Status {
    let record = state.record();
    let running = record.as_ref().is_some_and(Record::up_running);
    let mut pods = Vec::new();
    let mut nb = BTreeMap::new();
    let mut metrics = None;
    if let Some(lab) = record
        .as_ref()
        .and_then(|r| r.lab_dir.as_ref())
        .filter(|_| running)
    {
        let nodes = pod_nodes(lab);
        for (k, a) in pod_results(&lab.join("state")) {
            let get = |key: &str| a.get(key).cloned().unwrap_or_default();
            pods.push(LivePod {
                node: nodes.get(&k).cloned().unwrap_or_default(),
                ip: get("ovn.kubernetes.io/ip_address"),
                mac: get("ovn.kubernetes.io/mac_address"),
                subnet: get("ovn.kubernetes.io/logical_switch"),
                pod: k,
            });
        }
        nb = nb_counts(lab);
        metrics = record.as_ref().map(|r| match &r.metrics {
            Some(targets) => targets.scrape(),
            None => Metrics {
                not_scraped: vec![format!("the daemons are not started yet ({})", r.phase)],
                ..Metrics::default()
            },
        });
    }
    Status {
        dir: state.path().display().to_string(),
        running,
        record,
        pods,
        nb,
        metrics,
        report: state.report(),
    }
}

/// The status as text.
pub fn render(s: &Status) -> String {
    let mut out = String::new();
    let Some(record) = &s.record else {
        let _ = writeln!(out, "no sandbox in {}", s.dir);
        return out;
    };
    if s.running {
        let _ = writeln!(
            out,
            "sandbox in {}: running (ovnkit sandbox up, PID {}, {})",
            s.dir, record.pid, record.phase
        );
    } else {
        let _ = writeln!(
            out,
            "sandbox in {}: NOT running (its `up` died; `ovnkit sandbox down --dir {}` cleans up)",
            s.dir, s.dir
        );
    }
    if let (Some(id), Some(dir)) = (&record.lab_id, &record.lab_dir) {
        let _ = writeln!(
            out,
            "lab {id} in {}, manifests {}",
            dir.display(),
            record.manifests.display()
        );
    }
    if !s.pods.is_empty() {
        let _ = writeln!(
            out,
            "\npods ({}, as the controller allocated them):",
            s.pods.len()
        );
        let width = s.pods.iter().map(|p| p.pod.len()).max().unwrap_or(0);
        for p in s.pods.iter().take(60) {
            let _ = writeln!(
                out,
                "  {:<width$}  {:<6}  {:<15}  {}  {}",
                p.pod, p.node, p.ip, p.mac, p.subnet
            );
        }
        if s.pods.len() > 60 {
            let _ = writeln!(out, "  ... and {} more", s.pods.len() - 60);
        }
    }
    if !s.nb.is_empty() {
        let counts: Vec<String> = s.nb.iter().map(|(t, n)| format!("{t} {n}")).collect();
        let _ = writeln!(out, "\nNB rows: {}", counts.join(", "));
    }
    if let Some(m) = &s.metrics {
        super::render::metrics(m, &mut out);
    }
    match &s.report {
        Some(r) => {
            let _ = writeln!(
                out,
                "\nlast checks: {} ({} failed, {} not available)",
                if r.passed { "PASS" } else { "FAIL" },
                r.failures.len(),
                r.unavailable.len()
            );
            for f in &r.failures {
                let _ = writeln!(out, "  FAIL {f}");
            }
            if !r.changes.is_empty() {
                let _ = writeln!(out, "changes applied (latest last):");
                for c in r.changes.iter().rev().take(10).rev() {
                    let _ = writeln!(out, "  {c}");
                }
            }
            let _ = writeln!(out, "the whole report: {}/report.txt", s.dir);
        }
        None => {
            let _ = writeln!(out, "\nno checks yet");
        }
    }
    out
}
