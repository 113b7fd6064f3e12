//! The daemons' own figures: `ovnkit controller` and every `ovnkit agent` run with
//! `--metrics-addr 127.0.0.1:0`; the sandbox learns the bound addresses from their logs
//! ([`Targets::learn`]), records them in the state directory's record, and scrapes `GET
//! /metrics` (plain HTTP/1.0 over a [`TcpStream`], an agent's from inside its node's network
//! namespace) for the report's `metrics` part, after the checks and in `status`.
//!
//! [`parse`] reads the OpenMetrics text the daemons render (`kube/src/metrics`) into
//! [`Samples`]: each series (name and labels) with its value; `#` lines (`HELP`, `TYPE`,
//! `UNIT`, `EOF`) are skipped, a timestamp or an exemplar after the value is ignored.
//! [`Histogram::quantile`] estimates a quantile as the upper bound of the bucket where the
//! cumulative count reaches it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ovn_testbed::{EnterNetns, spawn_in};
use serde::{Deserialize, Serialize};

use super::procs::{AgentProcess, ControllerProcess};
use super::report::{
    AgentMetrics, ControllerMetrics, KindMetrics, Metrics, RequestCount, SubnetUsage, WarningCount,
};

/// How long a scrape may take (connecting, and each read).
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// The most a `/metrics` answer may hold.
const MAX_ANSWER: u64 = 16 << 20;

/// The parts of a successful `ADD`, in their order.
const ADD_PHASES: &[&str] = &["wait_port", "plumb", "ovs", "wait_up"];

/// A series: a metric name and its labels (sorted by name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Series {
    /// The name, with its suffix (`_total`, `_bucket`, ...).
    pub name: String,
    /// The labels, sorted by name.
    pub labels: Labels,
}

impl Series {
    /// The value of label `name`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether it has every label of `labels` with that value.
    fn has(&self, labels: &[(&str, &str)]) -> bool {
        labels.iter().all(|(k, v)| self.label(k) == Some(*v))
    }
}

/// A line of the text that is not a sample.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {what}")]
pub struct ParseError {
    /// The line (from 1).
    pub line: usize,
    /// What is wrong with it.
    pub what: String,
}

/// The samples of a scrape: series -> value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples(pub BTreeMap<Series, f64>);

/// Parses the OpenMetrics (or Prometheus) text format into its samples. Lines starting with
/// `#` and empty lines are skipped; a sample is `name{label="value",...} value [timestamp] [#
/// exemplar]`, with `\\`, `\"` and `\n` escaped in label values. A series given twice keeps
/// its last value.
///
/// # Errors
/// [`ParseError`] naming the first line that is neither.
pub fn parse(text: &str) -> Result<Samples, ParseError> {
    let mut samples = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = sample(line).map_err(|what| ParseError { line: i + 1, what })?;
        samples.insert(series, value);
    }
    Ok(Samples(samples))
}

fn is_name_char(c: char, first: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (!first && c.is_ascii_digit())
}

/// One sample line.
fn sample(line: &str) -> Result<(Series, f64), String> {
    let end = line
        .char_indices()
        .find(|&(i, c)| !is_name_char(c, i == 0))
        .map_or(line.len(), |(i, _)| i);
    if end == 0 {
        return Err(format!("no metric name in {line:?}"));
    }
    let name = line[..end].to_owned();
    let mut rest = &line[end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, after) = label_set(after)?;
        labels = parsed;
        rest = after;
    }
    if !rest.starts_with([' ', '\t']) {
        return Err(format!("no space before the value of {name}"));
    }
    let token = rest.split_whitespace().next().unwrap_or("");
    let value = number(token).ok_or_else(|| format!("{name}: the value {token:?} is no number"))?;
    labels.sort();
    if labels.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(format!("{name}: a label given twice"));
    }
    Ok((Series { name, labels }, value))
}

/// A series' labels: (name, value).
pub type Labels = Vec<(String, String)>;

/// The labels after `{`, up to and with the closing `}`; what follows.
fn label_set(mut s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Ok((labels, after));
        }
        let end = s
            .char_indices()
            .find(|&(i, c)| !is_name_char(c, i == 0))
            .map_or(s.len(), |(i, _)| i);
        if end == 0 {
            return Err(format!("a label without a name at {s:?}"));
        }
        let key = s[..end].to_owned();
        s = s[end..]
            .trim_start()
            .strip_prefix('=')
            .ok_or_else(|| format!("no `=` after the label {key}"))?
            .trim_start()
            .strip_prefix('"')
            .ok_or_else(|| format!("the label {key}'s value is not quoted"))?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let close = loop {
            match chars.next() {
                None => return Err(format!("the label {key}'s value does not end")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    Some((_, c)) => return Err(format!("the escape \\{c} in the label {key}")),
                    None => return Err(format!("the label {key}'s value does not end")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.push((key, value));
        s = s[close + 1..].trim_start();
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if !s.starts_with('}') {
            return Err(format!("no `,` or `}}` after a label at {s:?}"));
        }
    }
}

/// A sample value: a float, `+Inf`, `-Inf` or `NaN`.
fn number(token: &str) -> Option<f64> {
    match token {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        t if t
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) =>
        {
            t.parse().ok()
        }
        _ => None,
    }
}

/// A histogram read from its `_bucket`, `_count` and `_sum` series (summed over the series
/// that match, when several do).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Histogram {
    /// (upper bound, cumulative count), by upper bound; the last is `+Inf`.
    pub buckets: Vec<(f64, f64)>,
    /// Observations.
    pub count: f64,
    /// Their sum.
    pub sum: f64,
}

impl Histogram {
    /// The mean observation, if there is one.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0.0).then(|| self.sum / self.count)
    }

    /// The `q`-quantile (0 to 1) as the upper bound of the first bucket whose cumulative count
    /// reaches `q` of the observations (`+Inf` when only that bucket does); `None` without
    /// observations.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count <= 0.0 || !q.is_finite() {
            return None;
        }
        // The rank of the observation sought, from 1; integral counts make `ceil` exact
        // up to float noise, which the small margin absorbs.
        let rank = (q.clamp(0.0, 1.0) * self.count - 1e-9).ceil().max(1.0);
        Some(
            self.buckets
                .iter()
                .find(|(_, cumulative)| *cumulative >= rank)
                .map_or(f64::INFINITY, |(le, _)| *le),
        )
    }
}

impl Samples {
    /// The value of the series `name` with exactly `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.matching(name, labels)
            .find(|(s, _)| s.labels.len() == labels.len())
            .map(|(_, v)| v)
    }

    /// The series of `name` that have every label of `labels` (and maybe others).
    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = (&'a Series, f64)> + 'a {
        self.0
            .iter()
            .filter(move |(s, _)| s.name == name && s.has(labels))
            .map(|(s, v)| (s, *v))
    }

    /// The sum of the series of `name` that have `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|(_, v)| v).sum()
    }

    /// The values label `label` takes in the series of `name`.
    pub fn label_values(&self, name: &str, label: &str) -> BTreeSet<String> {
        self.matching(name, &[])
            .filter_map(|(s, _)| s.label(label).map(str::to_owned))
            .collect()
    }

    /// The histogram `base` (`<base>_bucket`, `_count`, `_sum`) over its series with `labels`;
    /// `None` when it has no bucket.
    pub fn histogram(&self, base: &str, labels: &[(&str, &str)]) -> Option<Histogram> {
        let mut buckets: Vec<(f64, f64)> = Vec::new();
        for (s, v) in self.matching(&format!("{base}_bucket"), labels) {
            let Some(le) = s.label("le").and_then(number) else {
                continue;
            };
            match buckets.iter_mut().find(|(b, _)| *b == le) {
                Some((_, n)) => *n += v,
                None => buckets.push((le, v)),
            }
        }
        if buckets.is_empty() {
            return None;
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let inf = buckets.last().map_or(0.0, |b| b.1);
        let counted: Vec<f64> = self
            .matching(&format!("{base}_count"), labels)
            .map(|(_, v)| v)
            .collect();
        Some(Histogram {
            count: if counted.is_empty() {
                inf
            } else {
                counted.iter().sum()
            },
            sum: self.sum(&format!("{base}_sum"), labels),
            buckets,
        })
    }
}

/// `GET /metrics` on `addr` (HTTP/1.0, from the calling thread's network namespace); the
/// body of a `200` answer.
///
/// # Errors
/// When it cannot connect within `timeout`, a read waits longer, or the answer is not a
/// `200` with a body.
pub fn scrape(addr: SocketAddr, timeout: Duration) -> Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: ovnkit\r\nAccept: text/plain\r\n\r\n")
        .with_context(|| format!("asking {addr} for /metrics"))?;
    let mut answer = Vec::new();
    stream
        .take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .with_context(|| format!("reading /metrics from {addr}"))?;
    let answer = String::from_utf8_lossy(&answer);
    let Some((head, body)) = answer.split_once("\r\n\r\n") else {
        bail!("{addr} answered no HTTP headers ({} bytes)", answer.len());
    };
    let status = head.lines().next().unwrap_or("");
    if status.split_whitespace().nth(1) != Some("200") {
        bail!("{addr} answered {status:?} to GET /metrics");
    }
    Ok(body.to_owned())
}

/// A network namespace by its name (`/var/run/netns/<name>`), for a scrape from inside it.
struct NamedNetns(String);

impl EnterNetns for NamedNetns {
    fn netns_file(&self) -> PathBuf {
        PathBuf::from("/var/run/netns").join(&self.0)
    }

    fn netns_label(&self) -> String {
        self.0.clone()
    }
}

/// [`scrape`] and [`parse`], inside the network namespace `netns` when one is given.
///
/// # Errors
/// When the scrape fails or the text does not parse.
pub fn scrape_samples(netns: Option<&str>, addr: SocketAddr) -> Result<Samples> {
    let text = match netns {
        None => scrape(addr, SCRAPE_TIMEOUT)?,
        Some(ns) => spawn_in(&NamedNetns(ns.to_owned()), move || {
            scrape(addr, SCRAPE_TIMEOUT)
        })?
        .join()??,
    };
    parse(&text).with_context(|| format!("the metrics of {addr}"))
}

/// Where an agent serves its metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentTarget {
    /// Its node.
    pub node: String,
    /// The node's network namespace (where the address is).
    pub netns: String,
    /// The bound address, `None` when its log did not name one.
    pub addr: Option<SocketAddr>,
}

/// Where the daemons serve their metrics (part of the state directory's record).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    /// The controller's address (on the host's loopback), `None` when its log did not name
    /// one.
    pub controller: Option<SocketAddr>,
    /// The agents'.
    pub agents: Vec<AgentTarget>,
}

/// The address of the last `serving metrics bound=ADDR` line of the daemon's `log`.
pub fn bound_in_log(log: &Path) -> Option<SocketAddr> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .filter(|l| l.contains("serving metrics"))
        .find_map(|l| {
            let at = l.find("bound=")? + "bound=".len();
            l[at..].split_whitespace().next()?.parse().ok()
        })
}

/// [`bound_in_log`], waiting for the line at most `within`.
pub fn wait_bound(log: &Path, within: Duration) -> Option<SocketAddr> {
    let start = Instant::now();
    loop {
        if let Some(addr) = bound_in_log(log) {
            return Some(addr);
        }
        if start.elapsed() > within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Targets {
    /// The addresses from the daemons' logs (each waited for at most `within`); `nodes` are
    /// the agents' nodes and network namespaces, in the agents' order.
    pub fn learn(
        controller: &ControllerProcess,
        agents: &[AgentProcess],
        nodes: &[(String, String)],
        within: Duration,
    ) -> Self {
        Targets {
            controller: wait_bound(controller.log(), within),
            agents: agents
                .iter()
                .zip(nodes)
                .map(|(a, (node, netns))| AgentTarget {
                    node: node.clone(),
                    netns: netns.clone(),
                    addr: wait_bound(a.log(), within),
                })
                .collect(),
        }
    }

    /// Scrapes every daemon; one that cannot be scraped is named in
    /// [`Metrics::not_scraped`].
    pub fn scrape(&self) -> Metrics {
        let mut m = Metrics::default();
        match self.controller {
            None => m
                .not_scraped
                .push("controller: its log names no metrics address".into()),
            Some(addr) => match scrape_samples(None, addr) {
                Ok(s) => m.controller = Some(controller_metrics(&s)),
                Err(e) => m.not_scraped.push(format!("controller: {e:#}")),
            },
        }
        for a in &self.agents {
            let Some(addr) = a.addr else {
                m.not_scraped.push(format!(
                    "agent {}: its log names no metrics address",
                    a.node
                ));
                continue;
            };
            match scrape_samples(Some(&a.netns), addr) {
                Ok(s) => m.agents.push(agent_metrics(&a.node, &s)),
                Err(e) => m.not_scraped.push(format!("agent {}: {e:#}", a.node)),
            }
        }
        m
    }
}

fn ms(seconds: f64) -> f64 {
    seconds * 1000.0
}

/// A quantile in ms, `None` in the `+Inf` bucket.
fn quantile_ms(h: Option<&Histogram>, q: f64) -> Option<f64> {
    h?.quantile(q).filter(|v| v.is_finite()).map(ms)
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn count(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v.round() as u64
    } else {
        0
    }
}

/// The controller's part of the report from its samples.
pub fn controller_metrics(s: &Samples) -> ControllerMetrics {
    let step = s.histogram("ovnkit_controller_step_duration_seconds", &[]);
    let mut kinds: BTreeSet<String> =
        s.label_values("ovnkit_reconcile_duration_seconds_count", "kind");
    kinds.extend(s.label_values("ovnkit_reconcile_objects_total", "kind"));
    let kinds = kinds
        .into_iter()
        .map(|kind| {
            let label = [("kind", kind.as_str())];
            let h = s.histogram("ovnkit_reconcile_duration_seconds", &label);
            KindMetrics {
                reconciles: count(h.as_ref().map_or(0.0, |h| h.count)),
                p99_ms: quantile_ms(h.as_ref(), 0.99),
                objects: count(s.sum("ovnkit_reconcile_objects_total", &label)),
                kind,
            }
        })
        .collect();
    let warnings = s
        .matching("ovnkit_reconcile_errors_total", &[])
        .map(|(series, v)| WarningCount {
            kind: series.label("kind").unwrap_or("").to_owned(),
            reason: series.label("reason").unwrap_or("").to_owned(),
            count: count(v),
        })
        .collect();
    let mut subnets: Vec<SubnetUsage> = s
        .matching("subnet_used_ip_count", &[])
        .map(|(series, used)| {
            let labels: Vec<(&str, &str)> = series
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            SubnetUsage {
                subnet: series.label("subnet_name").unwrap_or("").to_owned(),
                cidr: series.label("subnet_cidr").unwrap_or("").to_owned(),
                used: count(used),
                available: count(s.value("subnet_available_ip_count", &labels).unwrap_or(0.0)),
            }
        })
        .collect();
    subnets.sort_by(|a, b| (&a.subnet, &a.cidr).cmp(&(&b.subnet, &b.cidr)));
    let transactions = s.histogram("ovnkit_ovsdb_transaction_duration_seconds", &[]);
    ControllerMetrics {
        steps: count(step.as_ref().map_or(0.0, |h| h.count)),
        step_mean_ms: step.as_ref().and_then(Histogram::mean).map_or(0.0, ms),
        step_p99_ms: quantile_ms(step.as_ref(), 0.99),
        kinds,
        warnings,
        transactions_committed: count(s.sum(
            "ovnkit_ovsdb_transactions_total",
            &[("result", "committed")],
        )),
        transactions_refused: count(
            s.sum("ovnkit_ovsdb_transactions_total", &[("result", "refused")]),
        ),
        transaction_p99_ms: quantile_ms(transactions.as_ref(), 0.99),
        lock_held: s
            .matching("ovnkit_ovsdb_lock_held", &[])
            .any(|(_, v)| v == 1.0),
        subnets,
    }
}

/// An agent's part of the report from its samples.
pub fn agent_metrics(node: &str, s: &Samples) -> AgentMetrics {
    let requests = s
        .matching("ovnkit_cni_request_duration_seconds_count", &[])
        .map(|(series, v)| RequestCount {
            command: series.label("command").unwrap_or("").to_owned(),
            result: series.label("result").unwrap_or("").to_owned(),
            count: count(v),
        })
        .collect();
    let add = s.histogram(
        "ovnkit_cni_request_duration_seconds",
        &[("command", "ADD"), ("result", "ok")],
    );
    AgentMetrics {
        node: node.to_owned(),
        requests,
        add_p50_ms: quantile_ms(add.as_ref(), 0.5),
        add_p99_ms: quantile_ms(add.as_ref(), 0.99),
        add_phases: ADD_PHASES
            .iter()
            .map(|phase| {
                let mean = s
                    .histogram("ovnkit_cni_add_phase_duration_seconds", &[("phase", phase)])
                    .and_then(|h| h.mean())
                    .map(ms);
                ((*phase).to_owned(), mean)
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    use ovnkit_kube::metrics::{AgentMetrics as KubeAgent, ControllerMetrics as KubeController};
    use ovnkit_kube::metrics::{Registry, render};

    /// What a controller renders after a few steps, as it serves it.
    fn controller_text() -> String {
        let mut registry = Registry::default();
        let m = KubeController::new(&mut registry);
        for took in [1, 1, 3, 40] {
            m.step(Duration::from_millis(took));
        }
        m.reconciled(&[
            ("pod", Duration::from_micros(300)),
            ("cluster", Duration::from_millis(2)),
        ]);
        m.reconciled(&[("pod", Duration::from_millis(5))]);
        m.objects("pod", 14);
        m.objects("cluster", 1);
        m.error("pod", "no address");
        m.transaction("committed", Duration::from_millis(3));
        m.transaction("committed", Duration::from_millis(6));
        m.transaction("refused", Duration::from_millis(1));
        m.lock_held("ovnkit_controller", true);
        let mut ipam = ipam::Ipam::new(1);
        ipam.add_subnet(ipam::SubnetConfig::new(
            "web",
            "10.17.0.0/24".parse().unwrap(),
        ))
        .unwrap();
        let _ = ipam.allocate(&ipam::Request::new("web", "a")).unwrap();
        m.ipam(&ipam.all_stats());
        render(&registry)
    }

    #[test]
    fn the_controllers_own_text_parses_into_the_reports_figures() {
        let text = controller_text();
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
        let s = parse(&text).unwrap();
        assert_eq!(
            s.value("ovnkit_reconcile_objects_total", &[("kind", "pod")]),
            Some(14.0)
        );
        assert_eq!(
            s.value(
                "ovnkit_reconcile_duration_seconds_bucket",
                &[("kind", "pod"), ("le", "+Inf")]
            ),
            Some(2.0)
        );
        let c = controller_metrics(&s);
        assert_eq!(c.steps, 4);
        assert!((c.step_mean_ms - 11.25).abs() < 1e-6, "{}", c.step_mean_ms);
        // 40 ms falls into the bucket up to 0.0005 * 2^7 s = 64 ms.
        assert_eq!(c.step_p99_ms, Some(64.0));
        let pod = c.kinds.iter().find(|k| k.kind == "pod").unwrap();
        assert_eq!((pod.reconciles, pod.objects), (2, 14));
        assert_eq!(pod.p99_ms, Some(8.0));
        let cluster = c.kinds.iter().find(|k| k.kind == "cluster").unwrap();
        assert_eq!((cluster.reconciles, cluster.objects), (1, 1));
        assert_eq!(
            c.warnings,
            vec![WarningCount {
                kind: "pod".into(),
                reason: "no address".into(),
                count: 1
            }]
        );
        assert_eq!((c.transactions_committed, c.transactions_refused), (2, 1));
        assert_eq!(c.transaction_p99_ms, Some(8.0));
        assert!(c.lock_held);
        assert_eq!(
            c.subnets,
            vec![SubnetUsage {
                subnet: "web".into(),
                cidr: "10.17.0.0/24".into(),
                used: 1,
                available: 252
            }]
        );
    }

    #[test]
    fn the_agents_own_text_parses_into_the_reports_figures() {
        let mut registry = Registry::default();
        let m = KubeAgent::new(&mut registry);
        m.request("ADD", "ok", Duration::from_millis(100));
        m.request("ADD", "ok", Duration::from_millis(300));
        m.request("ADD", "11", Duration::from_millis(1));
        m.request("DEL", "ok", Duration::from_millis(2));
        m.add_phases(&[
            ("wait_port", Duration::from_millis(10)),
            ("plumb", Duration::from_millis(20)),
        ]);
        m.add_phases(&[("wait_port", Duration::from_millis(30))]);
        let s = parse(&render(&registry)).unwrap();
        let a = agent_metrics("node1", &s);
        assert_eq!(a.node, "node1");
        assert_eq!(a.count("ADD", "ok"), 2);
        assert_eq!(a.count("ADD", "11"), 1);
        assert_eq!(a.count("DEL", "ok"), 1);
        // 100 ms in the bucket up to 128 ms, 300 ms up to 512 ms; the failed ADD not counted.
        assert_eq!(a.add_p50_ms, Some(128.0));
        assert_eq!(a.add_p99_ms, Some(512.0));
        let phase = |p: &str| a.add_phases.iter().find(|(n, _)| n == p).unwrap().1;
        assert!((phase("wait_port").unwrap() - 20.0).abs() < 1e-6);
        assert!((phase("plumb").unwrap() - 20.0).abs() < 1e-6);
        assert_eq!(phase("ovs"), None);
        let order: Vec<&str> = a.add_phases.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(order, ADD_PHASES);
    }

    #[test]
    fn escapes_exemplars_timestamps_and_comments() {
        let text = "# HELP x_total A counter.\n\
                    # TYPE x_total counter\n\
                    \n\
                    x_total{path=\"a \\\"quoted\\\" \\\\ b\\nc\",z=\"1\" , a=\"\"} 3 # {trace_id=\"t\"} 1.0\n\
                    y 1.5e3 1700000000\n\
                    up{job=\"}{,\"} -Inf\r\n\
                    nan_one NaN\n\
                    h_bucket{le=\"0.1\"} 1\n\
                    h_bucket{le=\"+Inf\"} 4\n\
                    # EOF\n";
        let s = parse(text).unwrap();
        assert_eq!(
            s.value(
                "x_total",
                &[("a", ""), ("path", "a \"quoted\" \\ b\nc"), ("z", "1")]
            ),
            Some(3.0)
        );
        assert_eq!(s.value("x_total", &[("z", "1")]), None, "not every label");
        assert_eq!(s.sum("x_total", &[("z", "1")]), 3.0);
        assert_eq!(s.value("y", &[]), Some(1500.0));
        assert_eq!(s.value("up", &[("job", "}{,")]), Some(f64::NEG_INFINITY));
        assert!(s.value("nan_one", &[]).unwrap().is_nan());
        // No `_count`: the `+Inf` bucket counts; 3 of 4 beyond the last bound.
        let h = s.histogram("h", &[]).unwrap();
        assert_eq!(h.count, 4.0);
        assert_eq!(h.quantile(0.25), Some(0.1));
        assert_eq!(h.quantile(0.99), Some(f64::INFINITY));
        assert_eq!(s.histogram("missing", &[]), None);
        assert_eq!(s.0.len(), 6);
    }

    #[test]
    fn what_is_no_sample_is_an_error_naming_its_line() {
        for (text, line, what) in [
            ("ok 1\n{a=\"b\"} 1\n", 2, "no metric name"),
            ("x{a=\"b} 1\n", 1, "does not end"),
            ("x{a=b} 1\n", 1, "not quoted"),
            ("x{a=\"b\"", 1, "no `,` or `}`"),
            ("x{a=\"b\"}1\n", 1, "no space before the value"),
            ("# c\nx 1\nx{a=\"\\q\"} 1\n", 3, "the escape \\q"),
            ("x one\n", 1, "is no number"),
            ("x{a=\"1\",a=\"2\"} 1\n", 1, "a label given twice"),
            ("x\n", 1, "no space before the value"),
            ("x{a=\"1\" b=\"2\"} 1\n", 1, "no `,` or `}`"),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.what.contains(what), "{text:?}: {e}");
        }
    }

    #[test]
    fn a_quantile_is_the_upper_bound_of_the_bucket_that_reaches_it() {
        let h = Histogram {
            buckets: vec![
                (0.001, 50.0),
                (0.002, 98.0),
                (0.004, 99.0),
                (0.008, 100.0),
                (f64::INFINITY, 100.0),
            ],
            count: 100.0,
            sum: 0.15,
        };
        assert_eq!(h.quantile(0.5), Some(0.001));
        assert_eq!(h.quantile(0.51), Some(0.002));
        assert_eq!(h.quantile(0.98), Some(0.002));
        assert_eq!(h.quantile(0.99), Some(0.004));
        assert_eq!(h.quantile(1.0), Some(0.008));
        assert_eq!(h.quantile(0.0), Some(0.001), "the first observation");
        assert!((h.mean().unwrap() - 0.0015).abs() < 1e-12);
        let empty = Histogram {
            buckets: vec![(0.001, 0.0), (f64::INFINITY, 0.0)],
            ..Histogram::default()
        };
        assert_eq!(empty.quantile(0.99), None);
        assert_eq!(empty.mean(), None);
        assert_eq!(quantile_ms(Some(&h), 0.99), Some(4.0));
        let beyond = Histogram {
            buckets: vec![(0.001, 0.0), (f64::INFINITY, 1.0)],
            count: 1.0,
            sum: 100.0,
        };
        assert_eq!(quantile_ms(Some(&beyond), 0.99), None, "the +Inf bucket");
    }

    #[test]
    fn the_bound_address_is_the_last_one_the_log_names() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("agent.log");
        assert_eq!(bound_in_log(&log), None);
        std::fs::write(
            &log,
            "2026-12-03T18:00:00Z  INFO ovnkit: serving metrics bound=127.0.0.1:40001\n\
             2026-12-03T18:00:01Z  INFO ovnkit: serving CNI requests\n\
             2026-12-03T18:01:00Z  INFO ovnkit: serving metrics bound=127.0.0.1:40002\n",
        )
        .unwrap();
        assert_eq!(bound_in_log(&log), Some("127.0.0.1:40002".parse().unwrap()));
    }

    #[test]
    fn a_scrape_over_http_1_0_reads_the_daemons_endpoint() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let mut registry = Registry::default();
        let m = KubeController::new(&mut registry);
        m.transaction("committed", Duration::from_millis(3));
        let (addr, server) = rt
            .block_on(ovnkit_kube::metrics::serve(
                "127.0.0.1:0".parse().unwrap(),
                std::sync::Arc::new(registry),
                std::future::pending(),
            ))
            .unwrap();
        rt.spawn(server);
        let s = scrape_samples(None, addr).unwrap();
        assert_eq!(
            s.value(
                "ovnkit_ovsdb_transactions_total",
                &[("result", "committed")]
            ),
            Some(1.0)
        );
    }

    #[test]
    fn a_daemon_not_scraped_is_named_with_why_and_does_not_fail_the_verdict() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = listener.local_addr().unwrap();
        drop(listener);
        let targets = Targets {
            controller: Some(closed),
            agents: vec![AgentTarget {
                node: "node1".into(),
                netns: "ovkxxxxx-n1".into(),
                addr: None,
            }],
        };
        let m = targets.scrape();
        assert_eq!(m.controller, None);
        assert!(m.agents.is_empty());
        assert_eq!(m.not_scraped.len(), 2, "{:?}", m.not_scraped);
        assert!(
            m.not_scraped[0].starts_with(&format!("controller: connecting to {closed}")),
            "{:?}",
            m.not_scraped
        );
        assert_eq!(
            m.not_scraped[1],
            "agent node1: its log names no metrics address"
        );
        let mut report = super::super::report::Report {
            metrics: Some(m),
            ..Default::default()
        };
        report.conclude();
        assert!(report.passed);
        let text = report.render();
        assert!(
            text.contains(&format!(
                "metrics: not scraped: controller: connecting to {closed}"
            )),
            "{text}"
        );
        assert!(
            text.contains("metrics: not scraped: agent node1: its log names no metrics address"),
            "{text}"
        );
    }

    #[test]
    fn a_scrape_of_a_closed_port_names_the_address() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let e = scrape(addr, Duration::from_secs(1)).unwrap_err();
        assert!(
            format!("{e:#}").contains(&format!("connecting to {addr}")),
            "{e:#}"
        );
    }
}
