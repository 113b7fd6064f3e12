//! Memory per live ipam lease, measured two ways after 1,000,000 allocations in a /8:
//! the growth of the process's resident set (from /proc/self/statm, so allocator overhead and
//! hash-table slack included), and `Ipam::lease_heap_bytes`, computed from capacities and sizes.
//! Prints a small table; run with `cargo bench -p benches --bench ipam_memory`.

use std::fmt::Write as _;

use ipam::{Ipam, Request, SubnetConfig};

const LEASES: usize = 1_000_000;

fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn main() {
    let before = resident_bytes();
    let mut ipam = Ipam::new(1);
    ipam.add_subnet(SubnetConfig::new(
        "big",
        "10.0.0.0/8".parse().expect("cidr"),
    ))
    .expect("subnet");
    let mut owner = String::new();
    let mut owner_bytes = 0usize;
    for i in 0..LEASES {
        owner.clear();
        let _ = write!(owner, "ns{}/pod-{i}", i % 100);
        owner_bytes += owner.len();
        ipam.allocate(&Request::new("big", &owner))
            .expect("free address");
    }
    let after = resident_bytes();
    let computed = ipam.lease_heap_bytes();
    let per = |b: usize| b as f64 / LEASES as f64;
    println!(
        "ipam memory, {LEASES} live leases in a /8 (owner names average {:.1} bytes)",
        per(owner_bytes)
    );
    println!("{:<44} {:>12}", "measure", "bytes/lease");
    if let (Some(b), Some(a)) = (before, after) {
        println!(
            "{:<44} {:>12.1}",
            "resident set growth (all included)",
            per(a.saturating_sub(b))
        );
    }
    println!(
        "{:<44} {:>12.1}",
        "computed from sizes (all included)",
        per(computed)
    );
    println!(
        "{:<44} {:>12.1}",
        "computed from sizes, without owner text",
        per(computed - owner_bytes)
    );
    std::hint::black_box(&ipam);
}
