//! The report as text.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::report::{Cell, Matrix, Metrics, Outcome, Report};

/// A plain-text table with aligned columns.
struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(header: &[&str]) -> Self {
        Table {
            rows: vec![header.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self, out: &mut String) {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &self.rows {
            for (i, c) in row.iter().enumerate() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        for (n, row) in self.rows.iter().enumerate() {
            let cells: Vec<String> = (0..columns)
                .map(|i| {
                    let c = row.get(i).map(String::as_str).unwrap_or("");
                    format!("{c:<w$}", w = widths[i])
                })
                .collect();
            let _ = writeln!(out, "  {}", cells.join("  ").trim_end());
            if n == 0 {
                let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                let _ = writeln!(out, "  {}", rule.join("  "));
            }
        }
    }
}

fn outcome(o: &Outcome) -> String {
    match o {
        Outcome::Pass => "pass".into(),
        Outcome::Fail(why) => format!("FAIL: {why}"),
        Outcome::Unavailable(why) => format!("n/a: {why}"),
    }
}

fn short(o: &Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail(_) => "FAIL",
        Outcome::Unavailable(_) => "n/a",
    }
}

/// One character per probe: `+` passed as expected, `-` blocked as expected, `!` not as
/// expected.
fn mark(p: &super::report::Probe) -> char {
    match (p.expected, p.reached) {
        (true, true) => '+',
        (false, false) => '-',
        _ => '!',
    }
}

fn matrix(m: &Matrix, out: &mut String) {
    let _ = writeln!(
        out,
        "\nreachability: ping and TCP {} ({} pairs, {} ms; expected verdicts: {}) - {}",
        m.port,
        m.cells.len(),
        m.ms,
        m.expectations,
        short(&m.outcome)
    );
    if let Some(s) = &m.sampled {
        let _ = writeln!(out, "  sampled: {s}");
    }
    let cells: BTreeMap<(&str, &str), &Cell> = m
        .cells
        .iter()
        .map(|c| ((c.from.as_str(), c.to.as_str()), c))
        .collect();
    if m.sampled.is_none() && m.pods.len() <= 30 {
        let _ = writeln!(
            out,
            "  each cell: ping then TCP; + passes as expected, - blocked as expected, ! not as expected"
        );
        let width = m.pods.iter().map(String::len).max().unwrap_or(0);
        let mut header = format!("  {:>w$}  ", "from \\ to", w = width + 3);
        for i in 0..m.pods.len() {
            let _ = write!(header, "{i:>2} ");
        }
        let _ = writeln!(out, "{}", header.trim_end());
        for (i, from) in m.pods.iter().enumerate() {
            let mut line = format!("  {i:>2} {from:<width$}  ");
            for to in &m.pods {
                let cell = match cells.get(&(from.as_str(), to.as_str())) {
                    Some(c) => format!("{}{}", mark(&c.ping), mark(&c.tcp)),
                    None if from == to => "  ".into(),
                    None => "..".into(),
                };
                let _ = write!(line, "{cell} ");
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
    } else {
        let (mut pass, mut block) = (0, 0);
        for c in &m.cells {
            for p in [&c.ping, &c.tcp] {
                match (p.expected, p.reached) {
                    (true, true) => pass += 1,
                    (false, false) => block += 1,
                    _ => {}
                }
            }
        }
        let _ = writeln!(
            out,
            "  {pass} probes passed and {block} were blocked as expected"
        );
    }
    let mut restricted: BTreeMap<&str, usize> = BTreeMap::new();
    for c in m
        .cells
        .iter()
        .filter(|c| !(c.ping.expected && c.tcp.expected))
    {
        *restricted.entry(c.by.as_str()).or_default() += 1;
    }
    for (by, n) in restricted {
        let _ = writeln!(out, "  {n} pairs blocked (ping, or ping and TCP) by {by}");
    }
    for c in &m.cells {
        for (what, p) in [("ping", &c.ping), ("TCP", &c.tcp)] {
            if p.expected != p.reached {
                let _ = writeln!(
                    out,
                    "  ! {what} {} -> {}: {} (expected {}{})",
                    c.from,
                    c.to,
                    if p.reached { "passed" } else { "blocked" },
                    if p.expected {
                        "to pass"
                    } else {
                        "to be blocked"
                    },
                    if c.by.is_empty() {
                        String::new()
                    } else {
                        format!(" by {}", c.by)
                    }
                );
            }
        }
    }
}

/// A duration in ms: one decimal below 10 ms.
fn ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.0} ms")
    }
}

/// A quantile estimated from histogram buckets: `<= X ms`, or `-` without observations or in
/// the `+Inf` bucket.
fn le(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("<= {}", ms(v)))
}

/// The `metrics` part: the controller's figures and one row per agent.
pub(super) fn metrics(m: &Metrics, out: &mut String) {
    if let Some(c) = &m.controller {
        let _ = writeln!(
            out,
            "\nmetrics: controller: {} steps, mean {}, p99 {}; transactions {} committed, {} \
             refused, p99 {}; lock {}",
            c.steps,
            ms(c.step_mean_ms),
            le(c.step_p99_ms),
            c.transactions_committed,
            c.transactions_refused,
            le(c.transaction_p99_ms),
            if c.lock_held { "held" } else { "NOT held" }
        );
        let mut t = Table::new(&["kind", "reconciles", "p99", "objects"]);
        for k in &c.kinds {
            t.row(vec![
                k.kind.clone(),
                k.reconciles.to_string(),
                le(k.p99_ms),
                k.objects.to_string(),
            ]);
        }
        t.render(out);
        if c.warnings.is_empty() {
            let _ = writeln!(out, "  warnings: none");
        } else {
            let w: Vec<String> = c
                .warnings
                .iter()
                .map(|w| format!("{} {} x{}", w.kind, w.reason, w.count))
                .collect();
            let _ = writeln!(out, "  warnings: {}", w.join(", "));
        }
        let mut t = Table::new(&["subnet", "CIDR", "used", "available"]);
        for s in &c.subnets {
            t.row(vec![
                s.subnet.clone(),
                s.cidr.clone(),
                s.used.to_string(),
                s.available.to_string(),
            ]);
        }
        t.render(out);
    }
    if !m.agents.is_empty() {
        let _ = writeln!(out, "\nmetrics: agents (CNI requests; ADD phases: mean):");
        let mut header = vec!["node", "ADD", "DEL", "ADD p50", "ADD p99"];
        let phases: Vec<&str> = m
            .agents
            .first()
            .map(|a| a.add_phases.iter().map(|(p, _)| p.as_str()).collect())
            .unwrap_or_default();
        header.extend(&phases);
        let mut t = Table::new(&header);
        let by_result = |a: &super::report::AgentMetrics, command: &str| {
            let counts: Vec<String> = a
                .requests
                .iter()
                .filter(|r| r.command == command)
                .map(|r| format!("{} x{}", r.result, r.count))
                .collect();
            if counts.is_empty() {
                "0".to_owned()
            } else {
                counts.join(", ")
            }
        };
        for a in &m.agents {
            let mut row = vec![
                a.node.clone(),
                by_result(a, "ADD"),
                by_result(a, "DEL"),
                le(a.add_p50_ms),
                le(a.add_p99_ms),
            ];
            row.extend(
                a.add_phases
                    .iter()
                    .map(|(_, mean)| mean.map_or_else(|| "-".to_owned(), ms)),
            );
            t.row(row);
        }
        t.render(out);
    }
    if m.controller.is_none() && m.agents.is_empty() {
        out.push('\n');
        if m.not_scraped.is_empty() {
            let _ = writeln!(out, "metrics: not scraped: no daemon to scrape");
        }
    }
    for why in &m.not_scraped {
        let _ = writeln!(out, "metrics: not scraped: {why}");
    }
}

/// Renders `r`.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ovnkit sandbox: lab {} ({}), {} nodes, {} pods, manifests {}",
        r.lab_id,
        r.lab_dir,
        r.nodes.len(),
        r.pods.len(),
        r.manifests
    );
    let mut t = Table::new(&["node", "chassis", "external IP", "daemon", "PID", "RSS MiB"]);
    for n in &r.nodes {
        let agent = r
            .daemons
            .iter()
            .find(|d| d.name == format!("agent {}", n.name));
        t.row(vec![
            n.name.clone(),
            n.chassis.clone(),
            n.external_ip.clone(),
            agent.map(|d| d.name.clone()).unwrap_or_default(),
            agent.map(|d| d.pid.to_string()).unwrap_or_default(),
            agent
                .map(|d| format!("{:.1}", d.rss_kib as f64 / 1024.0))
                .unwrap_or_default(),
        ]);
    }
    for d in r.daemons.iter().filter(|d| !d.name.starts_with("agent ")) {
        t.row(vec![
            String::new(),
            String::new(),
            String::new(),
            d.name.clone(),
            d.pid.to_string(),
            format!("{:.1}", d.rss_kib as f64 / 1024.0),
        ]);
    }
    out.push('\n');
    t.render(&mut out);

    if r.pods.len() <= 40 {
        let mut t = Table::new(&["pod", "node", "IP", "MAC", "subnet", "ready ms", "check"]);
        for p in &r.pods {
            t.row(vec![
                format!("{}/{}", p.namespace, p.name),
                p.node.clone(),
                p.ip.clone(),
                p.mac.clone(),
                p.subnet.clone(),
                p.ready_ms.to_string(),
                outcome(&p.outcome),
            ]);
        }
        out.push('\n');
        t.render(&mut out);
    } else {
        let bad = r.pods.iter().filter(|p| p.outcome.failed()).count();
        let _ = writeln!(
            out,
            "\npods: {} (addresses as the controller allocated them: {})",
            r.pods.len(),
            r.pods.len() - bad
        );
    }

    if let Some(m) = &r.reachability {
        matrix(m, &mut out);
    }

    if !r.services.is_empty() || !r.node_ports.is_empty() {
        let _ = writeln!(out, "\nservices:");
        let mut t = Table::new(&["service", "address", "from", "answers", "check"]);
        for s in r.services.iter().chain(&r.node_ports) {
            let answers: Vec<String> = s.answers.iter().map(|(k, n)| format!("{k} x{n}")).collect();
            t.row(vec![
                s.service.clone(),
                s.address.clone(),
                s.client.clone(),
                answers.join(", "),
                outcome(&s.outcome),
            ]);
        }
        t.render(&mut out);
    }

    if !r.dns.is_empty() {
        let _ = writeln!(out, "\nDNS:");
        let mut t = Table::new(&["name", "from", "via", "answer", "check"]);
        for d in &r.dns {
            t.row(vec![
                d.name.clone(),
                d.client.clone(),
                d.via.clone(),
                d.answer.join(", "),
                outcome(&d.outcome),
            ]);
        }
        t.render(&mut out);
    }

    if !r.qos.is_empty() {
        let _ = writeln!(out, "\nQoS (TCP, measured by the receiver):");
        let mut t = Table::new(&["pod", "direction", "peer", "annotated", "measured", "check"]);
        for q in &r.qos {
            t.row(vec![
                q.pod.clone(),
                q.direction.clone(),
                q.peer.clone(),
                format!("{:.0} Mbit/s", q.annotated_mbit),
                format!("{:.1} Mbit/s", q.measured_mbit),
                outcome(&q.outcome),
            ]);
        }
        t.render(&mut out);
    }

    if !r.gateways.is_empty() {
        let _ = writeln!(out, "\ngateways (source address the external host sees):");
        let mut t = Table::new(&["subnet", "type", "expected", "pod", "seen as", "check"]);
        for g in &r.gateways {
            for (i, (pod, seen)) in g.seen.iter().enumerate() {
                let first = |s: &str| if i == 0 { s.to_owned() } else { String::new() };
                t.row(vec![
                    first(&g.subnet),
                    first(&g.gateway_type),
                    first(&g.expected),
                    pod.clone(),
                    seen.clone(),
                    first(&outcome(&g.outcome)),
                ]);
            }
        }
        t.render(&mut out);
    }

    if let Some(s) = &r.scale {
        let _ = writeln!(
            out,
            "\nscale: {} pods ({} per node): ready p50 {} ms, p99 {} ms, max {} ms \
             (RunPodSandbox alone p50 {} ms, p99 {} ms); all created in {} ms; the controller \
             allocated them in {} ms; reachability check {} ms",
            s.pods,
            match s.creators_per_node {
                1 => "one creator".to_owned(),
                n => format!("{n} creators"),
            },
            s.ready_p50_ms,
            s.ready_p99_ms,
            s.ready_max_ms,
            s.sandbox_p50_ms,
            s.sandbox_p99_ms,
            s.pods_wall_ms,
            s.controller_allocated_ms,
            s.reachability_ms
        );
    }

    if let Some(m) = &r.metrics {
        metrics(m, &mut out);
    }

    if !r.changes.is_empty() {
        let _ = writeln!(out, "\nchanges applied:");
        for c in &r.changes {
            let _ = writeln!(out, "  {c}");
        }
    }

    let _ = writeln!(out, "\ntimings:");
    let mut t = Table::new(&["part", "ms"]);
    for timing in &r.timings {
        t.row(vec![timing.part.clone(), timing.ms.to_string()]);
    }
    t.render(&mut out);

    for u in &r.unavailable {
        let _ = writeln!(out, "not checked: {u}");
    }
    if r.passed {
        let _ = writeln!(out, "\nverdict: PASS");
    } else {
        let _ = writeln!(out, "\nverdict: FAIL ({} checks)", r.failures.len());
        for f in &r.failures {
            let _ = writeln!(out, "  {f}");
        }
    }
    out
}
