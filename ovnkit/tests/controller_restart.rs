//! Two `ovnkit controller` processes share one NB and its OVSDB lock while a seeded burst of
//! 500 pod creations and deletions goes through a manifest directory; the writing controller
//! is SIGKILLed at random points (at least 20 times) and restarted as the standby each time.
//! At the end: no duplicate address or MAC, no port without a pod, no pod without a port,
//! every written-back annotation equal to the NB, and the two controllers never wrote at the
//! same time (their writing periods, from their logs, do not overlap).
//!
//! `OVNKIT_SEED=<n>` replays another sequence.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Controller, nb_rows, pod, results, wait_for, write_manifest};
use ovn_testbed::{CentralOptions, Lab};

const OPERATIONS: usize = 500;
const ROUNDS: usize = 25;
const FILES: usize = 10;
const NODES: [&str; 3] = ["node1", "node2", "node3"];

/// xorshift64*: a seeded sequence, the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One controller process and what it logged.
struct Instance {
    process: Controller,
    log: PathBuf,
    state: PathBuf,
}

fn start(lab_dir: &Path, nb: &str, manifests: &Path, n: usize) -> Instance {
    let log = lab_dir.join(format!("controller-{n}.log"));
    let state = lab_dir.join(format!("state-{n}"));
    let process = Controller::start(nb, manifests, &state, &log, &[]);
    Instance {
        process,
        log,
        state,
    }
}

/// The log lines of an instance, without terminal colours.
fn lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Whether the instance logged that it holds the lock.
fn writing(log: &Path) -> bool {
    lines(log)
        .iter()
        .any(|l| l.contains("holding the lock: writing"))
}

/// The period an instance wrote in: its takeover line's time and its last commit's time.
fn writing_period(log: &Path) -> Option<(String, String)> {
    let lines = lines(log);
    let stamp = |l: &str| l.split_whitespace().next().unwrap_or_default().to_owned();
    let start = lines
        .iter()
        .find(|l| l.contains("holding the lock: writing"))
        .map(|l| stamp(l))?;
    let end = lines
        .iter()
        .rev()
        .find(|l| l.contains("committed"))
        .map(|l| stamp(l))
        .unwrap_or_else(|| start.clone());
    Some((start, end))
}

/// The pod documents of the live set, spread over `FILES` files; rewrites the files whose
/// content changed.
fn write_pods(
    manifests: &Path,
    live: &BTreeMap<String, usize>,
    written: &mut BTreeMap<usize, Vec<String>>,
) {
    let mut files: BTreeMap<usize, Vec<String>> = (0..FILES).map(|f| (f, Vec::new())).collect();
    for (name, node) in live {
        let file = name
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31) + usize::from(b))
            % FILES;
        files
            .get_mut(&file)
            .expect("a file")
            .push(pod("burst", name, NODES[*node], &[], None));
    }
    for (f, docs) in files {
        if written.get(&f) != Some(&docs) {
            write_manifest(manifests, &format!("pods-{f:02}.yaml"), &docs);
            written.insert(f, docs);
        }
    }
}

#[test]
fn sigkilled_controllers_leave_no_duplicate_or_orphan_and_never_write_together() {
    let Some(lab) = Lab::for_test() else { return };
    let seed: u64 = std::env::var("OVNKIT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x005e_ed0f_0e1c);
    eprintln!("seed {seed} (OVNKIT_SEED={seed} replays it)");
    let mut rng = Rng(seed | 1);
    let central = lab
        .start_central(CentralOptions::default())
        .expect("central");
    let nb = central.nb_remote();
    let dir = lab.dir().to_owned();
    let manifests = dir.join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    write_manifest(
        &manifests,
        "cluster.yaml",
        &[
            common::namespace("burst", &[("ovn.kubernetes.io/cidr", "10.20.0.0/16")]),
            common::node("node1", "chassis-1"),
            common::node("node2", "chassis-2"),
            common::node("node3", "chassis-3"),
        ],
    );
    let mut written = BTreeMap::new();
    let mut live: BTreeMap<String, usize> = BTreeMap::new();
    write_pods(&manifests, &live, &mut written);

    let mut started = 0;
    let mut instances: Vec<Instance> = Vec::new();
    let mut finished: Vec<PathBuf> = Vec::new();
    for _ in 0..2 {
        instances.push(start(&dir, &nb, &manifests, started));
        started += 1;
    }
    let mut next_pod = 0;
    let mut kills = 0;
    for round in 0..ROUNDS {
        // Each round: 20 operations, a few milliseconds apart, and the writer is SIGKILLed
        // after a random one of them (restarted at once as the new standby).
        let kill_at = rng.below((OPERATIONS / ROUNDS) as u64) as usize;
        for op in 0..OPERATIONS / ROUNDS {
            // Mostly creations while few pods live, mostly deletions while many do.
            let create = live.is_empty() || rng.below(400) >= live.len() as u64;
            if create {
                live.insert(format!("p{next_pod}"), rng.below(3) as usize);
                next_pod += 1;
            } else {
                let victim = live
                    .keys()
                    .nth(rng.below(live.len() as u64) as usize)
                    .cloned()
                    .expect("a live pod");
                live.remove(&victim);
            }
            write_pods(&manifests, &live, &mut written);
            std::thread::sleep(Duration::from_millis(rng.below(60)));
            if op == kill_at {
                let leader = wait_for(Duration::from_secs(20), "a controller writes", || {
                    instances.iter().position(|i| writing(&i.log))
                });
                let old = instances.remove(leader);
                old.process.kill();
                finished.push(old.log);
                kills += 1;
                instances.push(start(&dir, &nb, &manifests, started));
                started += 1;
            }
        }
        eprintln!("round {round}: {} live pods", live.len());
    }
    assert!(kills >= 20);

    // Takeover time: SIGKILL the writer once the standby follows the NB, until the standby
    // logs that it writes (its IPAM rebuilt from OVN).
    let mut takeovers = Vec::new();
    for _ in 0..5 {
        wait_for(
            Duration::from_secs(20),
            "both controllers follow the NB",
            || {
                instances
                    .iter()
                    .all(|i| lines(&i.log).iter().any(|l| l.contains("NB synced")))
                    .then_some(())
            },
        );
        let leader = wait_for(Duration::from_secs(20), "a controller writes", || {
            instances.iter().position(|i| writing(&i.log))
        });
        let old = instances.remove(leader);
        let t0 = std::time::Instant::now();
        old.process.kill();
        finished.push(old.log);
        let standby = &instances[0].log;
        while !writing(standby) {
            assert!(t0.elapsed() < Duration::from_secs(20), "no takeover");
            std::thread::sleep(Duration::from_millis(2));
        }
        takeovers.push(t0.elapsed());
        kills += 1;
        instances.push(start(&dir, &nb, &manifests, started));
        started += 1;
    }
    takeovers.sort();
    eprintln!(
        "takeover after SIGKILL of the writer: min {:?}, median {:?}, max {:?}",
        takeovers[0],
        takeovers[takeovers.len() / 2],
        takeovers[takeovers.len() - 1]
    );

    // The writer settles on the final set.
    let expected: BTreeSet<String> = live.keys().map(|p| format!("burst.{p}")).collect();
    let nbctl = |args: &[&str]| central.nbctl(args).expect("ovn-nbctl");
    let (state, ports) = wait_for(
        Duration::from_secs(60),
        "NB and results match the pods",
        || {
            let writer = instances.iter().find(|i| writing(&i.log))?;
            let ports: BTreeMap<String, String> =
                nb_rows(nbctl, "Logical_Switch_Port", "name,addresses")
                    .into_iter()
                    .filter(|r| r[0].starts_with("burst."))
                    .map(|r| (r[0].clone(), r[1].clone()))
                    .collect();
            let names: BTreeSet<String> = ports.keys().cloned().collect();
            let annotated = results(&writer.state, "pods.json");
            let done = annotated
                .values()
                .filter(|a| a.contains_key("ovn.kubernetes.io/ip_address"))
                .count();
            (names == expected && annotated.len() == expected.len() && done == expected.len())
                .then(|| (writer.state.clone(), ports))
        },
    );

    // No duplicate address or MAC.
    let mut macs = BTreeSet::new();
    let mut ips = BTreeSet::new();
    for (name, addresses) in &ports {
        let mut words = addresses.split_whitespace();
        let mac = words.next().expect("a MAC").to_owned();
        assert!(macs.insert(mac.clone()), "MAC {mac} twice ({name})");
        for ip in words {
            assert!(ips.insert(ip.to_owned()), "address {ip} twice ({name})");
        }
    }
    // Every annotation equals the NB.
    for (key, a) in results(&state, "pods.json") {
        let port = format!("burst.{}", key.trim_start_matches("burst/"));
        assert_eq!(
            ports[&port],
            format!(
                "{} {}",
                a["ovn.kubernetes.io/mac_address"], a["ovn.kubernetes.io/ip_address"]
            ),
            "{key}"
        );
    }
    let events = common::events(&state);
    assert!(events.is_empty(), "nothing to report: {events:#?}");

    // Never two writers at once: the writing periods of all instances, in order, are disjoint.
    for i in &instances {
        finished.push(i.log.clone());
    }
    let mut periods: Vec<(String, String)> =
        finished.iter().filter_map(|l| writing_period(l)).collect();
    periods.sort();
    let commits: usize = finished
        .iter()
        .map(|l| lines(l).iter().filter(|l| l.contains("committed")).count())
        .sum();
    eprintln!(
        "{kills} kills, {} writing periods, {commits} transactions, {} pods at the end",
        periods.len(),
        expected.len()
    );
    assert!(periods.len() > kills, "every kill handed over: {periods:?}");
    for w in periods.windows(2) {
        assert!(
            w[0].1 < w[1].0,
            "a writer committed at {} after the next one took over at {}",
            w[0].1,
            w[1].0
        );
    }
    drop(instances);
}
