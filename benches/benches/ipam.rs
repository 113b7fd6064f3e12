//! ipam benches: allocation in a /8, churn in a nearly full /16, restore across 500 subnets.
//!
//! Two yardsticks of the machine run beside them: inserting the same names into a `std`
//! `HashMap`, and dependent random reads in 64 MiB.
//!
//! Each measured iteration does the whole batch (1,000,000 allocations, 1,000,000
//! release+allocate pairs, 100,000 restored records), so criterion's time per iteration divided
//! by the batch size is the cost per address, pair or record; the throughput line gives the same
//! as elements per second. Owner names and records are made before the clock starts.
//!
//! The clock is the CPU time of the bench thread (`/proc/thread-self/schedstat`, nanoseconds),
//! so that the figures are single-core costs even on a machine shared with other jobs; where
//! that file is missing, wall-clock time is used. Set `IPAM_BENCH_WALL=1` to force wall-clock.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use ipam::{Ipam, ObservedLease, Request, SubnetConfig};

const ALLOCS: usize = 1_000_000;
const CHURN_PAIRS: usize = 1_000_000;
const RESTORE_RECORDS: usize = 100_000;
const RESTORE_SUBNETS: usize = 500;

/// A point in time: on-CPU nanoseconds of this thread, or wall-clock.
#[derive(Clone, Copy)]
enum Stamp {
    Cpu(u64),
    Wall(Instant),
}

fn now() -> Stamp {
    if std::env::var_os("IPAM_BENCH_WALL").is_none() {
        let cpu = std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| {
                s.split_whitespace()
                    .next()
                    .and_then(|f| f.parse::<u64>().ok())
            });
        if let Some(ns) = cpu {
            return Stamp::Cpu(ns);
        }
    }
    Stamp::Wall(Instant::now())
}

fn since(start: Stamp) -> Duration {
    match (start, now()) {
        (Stamp::Cpu(a), Stamp::Cpu(b)) => Duration::from_nanos(b.saturating_sub(a)),
        (Stamp::Wall(a), _) => a.elapsed(),
        (Stamp::Cpu(_), Stamp::Wall(_)) => Duration::ZERO,
    }
}

fn owners(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{prefix}{}/pod-{i}", i % 100))
        .collect()
}

/// Allocates 1,000,000 addresses one by one in a fresh /8.
fn allocate_slash8(c: &mut Criterion) {
    let names = owners("ns", ALLOCS);
    let mut g = c.benchmark_group("ipam");
    g.throughput(Throughput::Elements(ALLOCS as u64));
    g.sample_size(10);
    g.bench_function("allocate_1M_in_slash8", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut ipam = Ipam::new(1);
                ipam.add_subnet(SubnetConfig::new(
                    "big",
                    "10.0.0.0/8".parse().expect("cidr"),
                ))
                .expect("subnet");
                let start = now();
                for owner in &names {
                    black_box(
                        ipam.allocate(&Request::new("big", owner))
                            .expect("free address"),
                    );
                }
                total += since(start);
                drop(black_box(ipam));
            }
            total
        });
    });
    g.finish();
}

/// Calibration on the same machine and clock: inserting the same 1,000,000 owner names into a
/// plain `std::collections::HashMap<&str, u32>`. Not a goal, a yardstick for the figures above.
fn baseline_std_hashmap(c: &mut Criterion) {
    let names = owners("ns", ALLOCS);
    let mut g = c.benchmark_group("ipam");
    g.throughput(Throughput::Elements(ALLOCS as u64));
    g.sample_size(10);
    g.bench_function("baseline_std_hashmap_insert_1M", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut map = std::collections::HashMap::new();
                let start = now();
                for (i, owner) in names.iter().enumerate() {
                    map.insert(owner.as_str(), i as u32);
                }
                total += since(start);
                drop(black_box(map));
            }
            total
        });
    });
    g.finish();
}

/// Calibration: one dependent read at a random place of a 64 MiB array (a pointer chase through
/// a random cycle), about the size of the /8 bench's lease tables. An allocation into a large
/// table cannot cost much less than one such read; how much one costs varies by machine (more
/// on virtual machines, whose page walks are nested), so it is measured in the same run.
fn baseline_random_read(c: &mut Criterion) {
    let n = 64 * 1024 * 1024 / size_of::<u32>();
    // Sattolo's shuffle: one cycle through every index.
    let mut next: Vec<u32> = (0..n as u32).collect();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        next.swap(i, (x % i as u64) as usize);
    }
    let mut g = c.benchmark_group("ipam");
    g.throughput(Throughput::Elements(ALLOCS as u64));
    g.sample_size(10);
    g.bench_function("baseline_random_read_64MiB_1M", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut at = 0u32;
            for _ in 0..iters {
                let start = now();
                for _ in 0..ALLOCS {
                    at = next[at as usize];
                }
                total += since(start);
            }
            black_box(at);
            total
        });
    });
    g.finish();
}

/// A /16 at 90% full; each pair releases a random live lease and allocates a new owner.
///
/// The victims are drawn by a fixed xorshift before the clock starts, and their names are laid
/// out in the order they are released, as a controller has the name of the pod whose deletion it
/// handles at hand. Looking them up at random in the table of all names instead would measure
/// cache misses on the bench's own data, not the cost of a release.
fn churn_slash16(c: &mut Criterion) {
    let usable = 65_534 - 1; // minus network, broadcast and gateway
    let live = usable * 9 / 10;
    let initial = owners("init", live);
    let fresh = owners("churn", CHURN_PAIRS);
    // Slot i holds the index (into `initial` or `fresh`) of a live owner.
    let mut holders: Vec<(bool, usize)> = (0..live).map(|i| (false, i)).collect();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let victims: Vec<String> = (0..CHURN_PAIRS)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let victim = (x % live as u64) as usize;
            let (is_fresh, idx) = holders[victim];
            holders[victim] = (true, i);
            if is_fresh {
                fresh[idx].clone()
            } else {
                initial[idx].clone()
            }
        })
        .collect();
    let mut g = c.benchmark_group("ipam");
    g.throughput(Throughput::Elements(CHURN_PAIRS as u64));
    g.sample_size(10);
    g.bench_function("churn_1M_pairs_in_slash16_at_90pct", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut ipam = Ipam::new(2);
                ipam.add_subnet(SubnetConfig::new("s", "10.1.0.0/16".parse().expect("cidr")))
                    .expect("subnet");
                for o in &initial {
                    ipam.allocate(&Request::new("s", o)).expect("free address");
                }
                let start = now();
                for (victim, owner) in victims.iter().zip(&fresh) {
                    black_box(ipam.release(victim).expect("a live lease"));
                    black_box(
                        ipam.allocate(&Request::new("s", owner))
                            .expect("free address"),
                    );
                }
                total += since(start);
            }
            total
        });
    });
    g.finish();
}

/// Rebuilds 100,000 leases across 500 /24 subnets from observed records (subnet found by
/// address, MAC given), including creating the subnets.
fn restore_500_subnets(c: &mut Criterion) {
    let per = RESTORE_RECORDS / RESTORE_SUBNETS;
    let configs: Vec<SubnetConfig> = (0..RESTORE_SUBNETS)
        .map(|s| {
            let net = format!("10.{}.{}.0/24", s / 256, s % 256);
            SubnetConfig::new(format!("ns-{s}"), net.parse().expect("cidr"))
        })
        .collect();
    let records: Vec<ObservedLease> = (0..RESTORE_RECORDS)
        .map(|i| {
            let (s, k) = (i % RESTORE_SUBNETS, i / RESTORE_SUBNETS);
            // Spread over the /24, skipping the gateway (.1).
            let host = 2 + (k * 37) % 250;
            let addr = IpAddr::V4(Ipv4Addr::new(
                10,
                (s / 256) as u8,
                (s % 256) as u8,
                host as u8,
            ));
            let m = (i as u64 + 1).to_be_bytes();
            ObservedLease {
                owner: format!("ns-{s}/pod-{k}/eth0"),
                subnet: None,
                addresses: vec![addr],
                mac: Some(ipam::MacAddr([0x0a, 0x58, m[4], m[5], m[6], m[7]])),
            }
        })
        .collect();
    assert!(per <= 250);
    let mut g = c.benchmark_group("ipam");
    g.throughput(Throughput::Elements(RESTORE_RECORDS as u64));
    g.sample_size(10);
    g.bench_function("restore_100k_leases_500_subnets", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let input = records.clone();
                let cfgs = configs.clone();
                let start = now();
                let mut ipam = Ipam::new(3);
                for cfg in cfgs {
                    ipam.add_subnet(cfg).expect("subnet");
                }
                let report = ipam.restore(input);
                total += since(start);
                assert_eq!(
                    report.restored,
                    RESTORE_RECORDS,
                    "{:?}",
                    report.issues.first()
                );
                drop(black_box(ipam));
            }
            total
        });
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    allocate_slash8(&mut c);
    baseline_std_hashmap(&mut c);
    baseline_random_read(&mut c);
    churn_slash16(&mut c);
    restore_500_subnets(&mut c);
    c.final_summary();
}
