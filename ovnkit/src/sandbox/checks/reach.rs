//! The reachability matrix: ping and TCP between pods, each cell against its expected verdict.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::super::net::{PROBE_PORT, in_netns, ping_once, tcp_ask};
use super::super::policy::{Expected, Traffic};
use super::super::report::{Cell, Matrix, Outcome, Probe};
use super::super::world::SCALE_NAMESPACE;
use super::Ctx;

/// Up to this many pods, every pair is probed.
const ALL_PAIRS_UP_TO: usize = 40;
/// Rows probed at once.
const PARALLEL_ROWS: usize = 16;
/// Tries of a probe expected to pass (the first packets of a new path may be lost while
/// flows are installed); a probe expected to be blocked is tried once.
const TRIES: u32 = 3;

/// The pairs to probe among `pods` (sorted `namespace/name`): all of them for a small
/// sandbox; else every pair of the manifests' own pods, and each pod towards three others
/// (the next in name order, and those a third and two thirds of the way round), so that
/// every pod is probed from and towards, across nodes. The text says which.
pub fn pairs(pods: &[String]) -> (Vec<(String, String)>, Option<String>) {
    let n = pods.len();
    let mut out = Vec::new();
    if n <= ALL_PAIRS_UP_TO {
        for a in pods {
            for b in pods {
                if a != b {
                    out.push((a.clone(), b.clone()));
                }
            }
        }
        return (out, None);
    }
    let own: Vec<&String> = pods
        .iter()
        .filter(|p| !p.starts_with(&format!("{SCALE_NAMESPACE}/")))
        .collect();
    let mut set = BTreeSet::new();
    for a in &own {
        for b in &own {
            if a != b {
                set.insert(((*a).clone(), (*b).clone()));
            }
        }
    }
    for i in 0..n {
        for offset in [1, n / 3, 2 * n / 3] {
            let j = (i + offset) % n;
            if i != j {
                set.insert((pods[i].clone(), pods[j].clone()));
            }
        }
    }
    out.extend(set);
    let text = format!(
        "{} of {} pairs: every pair of the {} pods of the manifests, and each pod towards the \
         next one in name order and those a third and two thirds of the way round",
        out.len(),
        n * (n - 1),
        own.len()
    );
    (out, Some(text))
}

/// One probe, tried [`TRIES`] times when it is expected to pass.
fn probe(expected: bool, mut once: impl FnMut() -> bool) -> Probe {
    let tries = if expected { TRIES } else { 1 };
    let reached = (0..tries).any(|i| {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(200));
        }
        once()
    });
    Probe { expected, reached }
}

/// Probes `cells` (destination key, address, expected ping, expected TCP) from inside the
/// source's namespace.
fn probe_row(cells: Vec<(String, IpAddr, bool, bool)>) -> Vec<(String, Probe, Probe)> {
    cells
        .into_iter()
        .map(|(to, ip, ping_expected, tcp_expected)| {
            let ping = probe(ping_expected, || ping_once(ip));
            let addr = SocketAddr::new(ip, PROBE_PORT);
            let tcp = probe(tcp_expected, || {
                tcp_ask(addr, Duration::from_secs(1)).is_ok_and(|answer| answer == to)
            });
            (to, ping, tcp)
        })
        .collect()
}

/// Runs the matrix over the running pods.
pub fn reachability(ctx: &Ctx<'_>) -> Matrix {
    let start = Instant::now();
    let keys: Vec<String> = ctx.cluster.pods.keys().cloned().collect();
    let (pairs, sampled) = pairs(&keys);
    let rules = ctx.rules();
    let mut by_row: BTreeMap<String, Vec<(String, IpAddr, bool, bool)>> = BTreeMap::new();
    let mut restricted: BTreeMap<(String, String), String> = BTreeMap::new();
    for (a, b) in &pairs {
        let (Some(src), Some(dst)) = (ctx.end(a), ctx.end(b)) else {
            continue;
        };
        let ping: Expected = rules.expect(src, dst, Traffic::Icmp);
        let tcp: Expected = rules.expect(src, dst, Traffic::Tcp(PROBE_PORT));
        let by = if !ping.allowed {
            ping.by
        } else if !tcp.allowed {
            tcp.by
        } else {
            ping.by
        };
        restricted.insert((a.clone(), b.clone()), by);
        by_row
            .entry(a.clone())
            .or_default()
            .push((b.clone(), dst.ip, ping.allowed, tcp.allowed));
    }
    let mut cells = run_rows(ctx, by_row, &restricted);
    // A change of the manifests may still be on its way into OVN: what differs is probed
    // again after a pause, twice at most.
    for _ in 0..2 {
        let wrong: BTreeMap<String, Vec<(String, IpAddr, bool, bool)>> = cells
            .iter()
            .filter(|c| c.ping.expected != c.ping.reached || c.tcp.expected != c.tcp.reached)
            .fold(BTreeMap::new(), |mut m, c| {
                if let Some(dst) = ctx.end(&c.to) {
                    m.entry(c.from.clone()).or_default().push((
                        c.to.clone(),
                        dst.ip,
                        c.ping.expected,
                        c.tcp.expected,
                    ));
                }
                m
            });
        if wrong.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
        for again in run_rows(ctx, wrong, &restricted) {
            if let Some(c) = cells
                .iter_mut()
                .find(|c| c.from == again.from && c.to == again.to)
            {
                *c = again;
            }
        }
    }
    cells.sort_by(|a, b| (&a.from, &a.to).cmp(&(&b.from, &b.to)));
    let wrong = cells
        .iter()
        .filter(|c| c.ping.expected != c.ping.reached || c.tcp.expected != c.tcp.reached)
        .count();
    Matrix {
        pods: keys,
        port: PROBE_PORT,
        sampled,
        expectations: ctx.expectations(),
        outcome: Outcome::check(wrong == 0, || format!("{wrong} pairs not as expected")),
        cells,
        ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

/// Runs rows, [`PARALLEL_ROWS`] at a time, each on a thread inside its source pod.
fn run_rows(
    ctx: &Ctx<'_>,
    rows: BTreeMap<String, Vec<(String, IpAddr, bool, bool)>>,
    restricted: &BTreeMap<(String, String), String>,
) -> Vec<Cell> {
    let queue = Mutex::new(rows.into_iter().collect::<Vec<_>>());
    let out = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL_ROWS {
            s.spawn(|| {
                loop {
                    let Some((from, cells)) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop()
                    else {
                        break;
                    };
                    let Some(pod) = ctx.cluster.pods.get(&from) else {
                        continue;
                    };
                    let n = cells.len();
                    let results = in_netns(&pod.cri, move || probe_row(cells))
                        .unwrap_or_else(|_| Vec::with_capacity(n));
                    let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
                    for (to, ping, tcp) in results {
                        let by = restricted
                            .get(&(from.clone(), to.clone()))
                            .cloned()
                            .unwrap_or_default();
                        out.push(Cell {
                            from: from.clone(),
                            to,
                            ping,
                            tcp,
                            by,
                        });
                    }
                }
            });
        }
    });
    out.into_inner().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_sandbox_probes_every_pair_and_a_large_one_a_sample_that_covers_every_pod() {
        let small: Vec<String> = (0..4).map(|i| format!("a/p{i}")).collect();
        let (p, sampled) = pairs(&small);
        assert_eq!(p.len(), 12);
        assert!(sampled.is_none());

        let mut large: Vec<String> = (0..5).map(|i| format!("apps/p{i}")).collect();
        large.extend((0..200).map(|i| format!("scale/load-{i:03}")));
        large.sort();
        let (p, sampled) = pairs(&large);
        assert!(sampled.unwrap().contains("of 41820 pairs"));
        for pod in &large {
            assert!(p.iter().any(|(a, _)| a == pod), "{pod} probes");
            assert!(p.iter().any(|(_, b)| b == pod), "{pod} is probed");
        }
        for a in large.iter().filter(|k| k.starts_with("apps/")) {
            for b in large.iter().filter(|k| k.starts_with("apps/") && *k != a) {
                assert!(p.contains(&(a.clone(), b.clone())));
            }
        }
        assert!(p.len() < 700);
    }
}
