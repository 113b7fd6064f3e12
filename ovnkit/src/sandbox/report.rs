//! The sandbox's report: what was built, what every check saw against what the manifests
//! say, and how long each part took; as text for people and as JSON (`--json`) for scripts.

use serde::{Deserialize, Serialize};

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "detail", rename_all = "snake_case")]
pub enum Outcome {
    /// It held.
    Pass,
    /// It did not; why.
    Fail(String),
    /// The check could not run in this build; why.
    Unavailable(String),
}

impl Outcome {
    /// `Pass` when `ok`, else `Fail(why())`.
    pub fn check(ok: bool, why: impl FnOnce() -> String) -> Self {
        if ok {
            Outcome::Pass
        } else {
            Outcome::Fail(why())
        }
    }

    /// Whether it failed.
    pub fn failed(&self) -> bool {
        matches!(self, Outcome::Fail(_))
    }
}

/// A daemon of ours and its memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Daemon {
    /// `controller`, `agent node1`.
    pub name: String,
    /// Its PID.
    pub pid: i32,
    /// Resident memory (VmRSS) in KiB when the report was made.
    pub rss_kib: u64,
}

/// A node of the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRow {
    /// `node<N>`.
    pub name: String,
    /// Its chassis.
    pub chassis: String,
    /// Its address on the external network.
    pub external_ip: String,
}

/// A pod: where it runs and what it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodRow {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Node.
    pub node: String,
    /// The IP the runtime reports.
    pub ip: String,
    /// The MAC of the pod's `eth0`.
    pub mac: String,
    /// The subnet (logical switch) the controller put it on.
    pub subnet: String,
    /// From `RunPodSandbox` to the app container started, in ms.
    pub ready_ms: u64,
    /// Whether the runtime's IP and the pod's MAC are the controller's.
    pub outcome: Outcome,
}

/// One probe of a matrix cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// What the manifests say.
    pub expected: bool,
    /// What happened.
    pub reached: bool,
}

/// A cell of the reachability matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// Source pod (`namespace/name`).
    pub from: String,
    /// Destination pod.
    pub to: String,
    /// ICMP echo.
    pub ping: Probe,
    /// TCP to the pod's server port.
    pub tcp: Probe,
    /// What restricts this pair (`private subnet secure`, `ingress of apps/db-0 (policy
    /// apps/db-from-web)`), empty when nothing does.
    pub by: String,
}

/// The reachability matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matrix {
    /// The pods, in row and column order.
    pub pods: Vec<String>,
    /// The TCP port probed.
    pub port: u16,
    /// How the pairs were chosen when not all were probed.
    pub sampled: Option<String>,
    /// Where the expected verdicts come from.
    pub expectations: String,
    /// The probed pairs.
    pub cells: Vec<Cell>,
    /// How long the check took, in ms.
    pub ms: u64,
    /// Whether every cell is as expected.
    pub outcome: Outcome,
}

/// A Service's answers from a pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceCheck {
    /// `namespace/name`.
    pub service: String,
    /// Where it was asked: `10.96.0.100:80/TCP`, `10.18.0.101:30080/TCP`.
    pub address: String,
    /// Who asked: a pod, or `external` (the external network's host).
    pub client: String,
    /// The ready backends (pod names).
    pub backends: Vec<String>,
    /// The answers: backend -> how many times it answered.
    pub answers: std::collections::BTreeMap<String, u32>,
    /// Every answer from a backend and every backend answering.
    pub outcome: Outcome,
}

/// A DNS answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsCheck {
    /// The name asked.
    pub name: String,
    /// The pod that asked.
    pub client: String,
    /// How: `dig` (run in the pod's network namespace) when it is installed, else `UDP
    /// query` (the sandbox's own).
    pub via: String,
    /// The addresses expected.
    pub expected: Vec<String>,
    /// The addresses answered.
    pub answer: Vec<String>,
    /// Whether they are the same.
    pub outcome: Outcome,
}

/// A measured rate against an annotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QosCheck {
    /// The pod.
    pub pod: String,
    /// `egress` (the pod sends) or `ingress` (the pod receives).
    pub direction: String,
    /// The other end of the transfer.
    pub peer: String,
    /// The annotated rate in Mbit/s.
    pub annotated_mbit: f64,
    /// The rate the receiver measured, in Mbit/s.
    pub measured_mbit: f64,
    /// Within the tolerance.
    pub outcome: Outcome,
}

/// The gateway a subnet's pods leave the cluster through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayCheck {
    /// The subnet.
    pub subnet: String,
    /// `distributed` or `centralized`.
    pub gateway_type: String,
    /// Pod -> the source address the external host saw, and its node.
    pub seen: Vec<(String, String)>,
    /// What was expected.
    pub expected: String,
    /// Whether every pod left as expected.
    pub outcome: Outcome,
}

/// Figures of a scale run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scale {
    /// Pods created.
    pub pods: usize,
    /// Concurrent `RunPodSandbox` callers per node.
    pub creators_per_node: usize,
    /// Pod ready (`RunPodSandbox` to app container started), p50 in ms.
    pub ready_p50_ms: u64,
    /// p99 in ms.
    pub ready_p99_ms: u64,
    /// max in ms.
    pub ready_max_ms: u64,
    /// `RunPodSandbox` alone (CNI ADD inside), p50 in ms.
    pub sandbox_p50_ms: u64,
    /// p99 in ms.
    pub sandbox_p99_ms: u64,
    /// From writing the pods into the controller's manifests to the controller having
    /// allocated every one, in ms.
    pub controller_allocated_ms: u64,
    /// All pods created, wall time in ms.
    pub pods_wall_ms: u64,
    /// The reachability check, in ms.
    pub reachability_ms: u64,
}

/// The daemons' own figures, from their `/metrics` (see [`super::metrics`]).
///
/// Durations are in ms. A quantile is estimated from the histogram's buckets: the upper bound
/// of the bucket where the cumulative count reaches it (`None` without observations, or when
/// that is the `+Inf` bucket).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Metrics {
    /// The controller's, unless it could not be scraped.
    pub controller: Option<ControllerMetrics>,
    /// Each agent's that could be scraped, by node.
    pub agents: Vec<AgentMetrics>,
    /// Why a daemon could not be scraped, one line per daemon (`agent node2: connecting to
    /// 127.0.0.1:40123: ...`).
    pub not_scraped: Vec<String>,
}

/// The controller's figures.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ControllerMetrics {
    /// Reconcile steps planned.
    pub steps: u64,
    /// Their mean duration.
    pub step_mean_ms: f64,
    /// Their p99 (a bucket's upper bound).
    pub step_p99_ms: Option<f64>,
    /// Per kind: its parts of the steps and the objects planned.
    pub kinds: Vec<KindMetrics>,
    /// Warnings reported on objects, by kind and reason.
    pub warnings: Vec<WarningCount>,
    /// Transactions committed.
    pub transactions_committed: u64,
    /// Transactions refused.
    pub transactions_refused: u64,
    /// Transaction latency (send to the replica showing it), p99.
    pub transaction_p99_ms: Option<f64>,
    /// Whether it holds the writers' lock.
    pub lock_held: bool,
    /// Addresses per subnet and family.
    pub subnets: Vec<SubnetUsage>,
}

/// One kind's part of the controller's steps (`ovnkit_reconcile_duration_seconds{kind}`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct KindMetrics {
    /// `cluster`, `node`, `pod`, ...
    pub kind: String,
    /// Steps with a part of this kind.
    pub reconciles: u64,
    /// Their p99 (a bucket's upper bound).
    pub p99_ms: Option<f64>,
    /// Objects of this kind planned.
    pub objects: u64,
}

/// Warnings of one kind and reason.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WarningCount {
    /// The object's kind.
    pub kind: String,
    /// Why.
    pub reason: String,
    /// How many.
    pub count: u64,
}

/// A subnet's addresses (`subnet_used_ip_count`, `subnet_available_ip_count`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SubnetUsage {
    /// The subnet.
    pub subnet: String,
    /// Its CIDR of this family.
    pub cidr: String,
    /// Leased.
    pub used: u64,
    /// Free.
    pub available: u64,
}

/// A node agent's figures.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AgentMetrics {
    /// Its node.
    pub node: String,
    /// CNI requests served, by command and result.
    pub requests: Vec<RequestCount>,
    /// Successful `ADD`s, p50 (a bucket's upper bound).
    pub add_p50_ms: Option<f64>,
    /// Successful `ADD`s, p99.
    pub add_p99_ms: Option<f64>,
    /// The mean of each part of a successful `ADD`, in their order (`wait_port`, `plumb`,
    /// `ovs`, `wait_up`); `None` before any `ADD`.
    pub add_phases: Vec<(String, Option<f64>)>,
}

impl AgentMetrics {
    /// The requests of `command` (`ADD`, `DEL`) that ended with `result` (`ok` or a CNI
    /// error code).
    pub fn count(&self, command: &str, result: &str) -> u64 {
        self.requests
            .iter()
            .filter(|r| r.command == command && r.result == result)
            .map(|r| r.count)
            .sum()
    }
}

/// CNI requests of one command and result.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RequestCount {
    /// `ADD`, `DEL`, `CHECK`, `STATUS`, ...
    pub command: String,
    /// `ok` or the CNI error code.
    pub result: String,
    /// How many.
    pub count: u64,
}

/// How long a part took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    /// The part.
    pub part: String,
    /// Milliseconds.
    pub ms: u64,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Report {
    /// Whether every check held.
    pub passed: bool,
    /// One line per failed check.
    pub failures: Vec<String>,
    /// What this build could not check, one line per reason (with how many checks).
    pub unavailable: Vec<String>,
    /// The lab's id (its namespaces are `ovk<id>-*`).
    pub lab_id: String,
    /// The lab's directory.
    pub lab_dir: String,
    /// The manifests applied.
    pub manifests: String,
    /// The nodes.
    pub nodes: Vec<NodeRow>,
    /// The controller and the agents.
    pub daemons: Vec<Daemon>,
    /// PIDs of every process of the lab (OVN/OVS daemons, containerd, ours).
    pub pids: Vec<i32>,
    /// The pods.
    pub pods: Vec<PodRow>,
    /// Ping and TCP between pods.
    pub reachability: Option<Matrix>,
    /// ClusterIP answers.
    pub services: Vec<ServiceCheck>,
    /// NodePort answers from the external host.
    pub node_ports: Vec<ServiceCheck>,
    /// DNS answers.
    pub dns: Vec<DnsCheck>,
    /// QoS rates.
    pub qos: Vec<QosCheck>,
    /// Gateways.
    pub gateways: Vec<GatewayCheck>,
    /// Scale figures (`--pods N`).
    pub scale: Option<Scale>,
    /// The daemons' metrics, scraped after the checks.
    pub metrics: Option<Metrics>,
    /// Manifest changes applied while running (`--keep`).
    pub changes: Vec<String>,
    /// How long each part took.
    pub timings: Vec<Timing>,
}

impl Report {
    /// Recomputes `passed`, `failures` and `unavailable` from the checks.
    pub fn conclude(&mut self) {
        let mut failures = Vec::new();
        let mut unavailable: Vec<(String, usize)> = Vec::new();
        let mut note = |what: String, o: &Outcome| match o {
            Outcome::Pass => {}
            Outcome::Fail(why) => failures.push(format!("{what}: {why}")),
            Outcome::Unavailable(why) => match unavailable.iter_mut().find(|(w, _)| w == why) {
                Some((_, n)) => *n += 1,
                None => unavailable.push((why.clone(), 1)),
            },
        };
        for p in &self.pods {
            note(format!("pod {}/{}", p.namespace, p.name), &p.outcome);
        }
        if let Some(m) = &self.reachability {
            note("reachability".into(), &m.outcome);
        }
        for s in &self.services {
            note(
                format!("service {} at {}", s.service, s.address),
                &s.outcome,
            );
        }
        for s in &self.node_ports {
            note(
                format!("node port {} at {}", s.service, s.address),
                &s.outcome,
            );
        }
        for d in &self.dns {
            note(format!("dns {}", d.name), &d.outcome);
        }
        for q in &self.qos {
            note(format!("qos {} {}", q.pod, q.direction), &q.outcome);
        }
        for g in &self.gateways {
            note(format!("gateway of {}", g.subnet), &g.outcome);
        }
        self.passed = failures.is_empty();
        self.failures = failures;
        self.unavailable = unavailable
            .into_iter()
            .map(|(why, n)| format!("{why} ({n} checks)"))
            .collect();
    }

    /// Adds a timing.
    pub fn time(&mut self, part: &str, d: std::time::Duration) {
        self.timings.retain(|t| t.part != part);
        self.timings.push(Timing {
            part: part.to_owned(),
            ms: u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
        });
    }

    /// The report as text.
    pub fn render(&self) -> String {
        super::render::render(self)
    }
}
