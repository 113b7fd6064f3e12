//! The ovsdb replica: decoding and applying the `monitor_cond_since` reply that syncs 100,000
//! `Logical_Switch_Port` rows (built like the `benches/peers` fixture), and then 10,000 `update3`
//! notifications that each modify one port's `external_ids` (the W4 writer's change).
//!
//! Run with `cargo bench -p benches --bench replica_apply`. Before criterion runs, it prints
//! the resident-set growth of one synced replica (the JSON text freed) and of the peak while
//! syncing, from `/proc/self/statm`, and the wall and CPU time of a sync and of the 10,000
//! modifies (CPU time from `/proc/self/stat`, which stays meaningful on a loaded machine).

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput};
use ovsdb::DatabaseSchema;
use ovsdb::monitor::{Layout, MonitorMethod, MonitorReply, MonitorRequest, TableMonitor};
use ovsdb::replica::Replica;

const NB_SCHEMA: &str = "/usr/share/ovn/ovn-nb.ovsschema";
const ROWS: u32 = 100_000;
const MODIFIES: u32 = 10_000;

fn uuid(i: u32) -> String {
    format!("{:08x}-0000-4000-8000-{:012x}", i, u64::from(i) * 7919)
}

/// The reply to `monitor_cond_since` for `ROWS` ports, as ovsdb-server writes it.
fn initial_reply() -> String {
    let mut s = String::with_capacity(ROWS as usize * 160);
    s.push_str(r#"[false,"6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a",{"Logical_Switch_Port":{"#);
    for i in 1..=ROWS {
        if i > 1 {
            s.push(',');
        }
        let _ = write!(
            s,
            r#""{}":{{"initial":{{"name":"p{i}","addresses":"0a:00:00:{:02x}:{:02x}:{:02x} 10.{}.{}.{}","external_ids":["map",[["pod","p{i}"]]]}}}}"#,
            uuid(i),
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255,
            16 + (i >> 16),
            (i >> 8) & 255,
            i & 255
        );
    }
    s.push_str("}}]");
    s
}

/// `MODIFIES` update3 notifications, each adding `gen` to one port's `external_ids`.
fn modifies() -> Vec<String> {
    (1..=MODIFIES)
        .map(|i| {
            format!(
                r#"[null,"{}",{{"Logical_Switch_Port":{{"{}":{{"modify":{{"external_ids":["map",[["gen","1"]]]}}}}}}}}]"#,
                uuid(ROWS + i),
                uuid(i * (ROWS / MODIFIES))
            )
        })
        .collect()
}

fn monitor() -> MonitorRequest {
    MonitorRequest::new("OVN_Northbound", MonitorMethod::MonitorCondSince)
        .with_table("Logical_Switch_Port", TableMonitor::all())
}

fn synced(schema: &DatabaseSchema, reply: &str) -> Replica {
    let mut r = Replica::new(schema);
    r.apply_reply(&monitor(), reply)
        .expect("initial reply applies");
    r
}

fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// User plus system CPU time of this process, from `/proc/self/stat` (10 ms resolution).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn memory(schema: &DatabaseSchema) {
    let mb = |b: usize| b as f64 / (1024.0 * 1024.0);
    let base = resident_bytes();
    let reply = initial_reply();
    let with_json = resident_bytes();
    let replica = synced(schema, &reply);
    let peak = resident_bytes();
    let json_len = reply.len();
    drop(reply);
    let after = resident_bytes();
    if let (Some(b), Some(j), Some(p), Some(a)) = (base, with_json, peak, after) {
        println!("ovsdb replica, {ROWS} Logical_Switch_Port rows");
        println!(
            "  reply JSON text                  {:>8.1} MB",
            mb(json_len)
        );
        println!(
            "  resident growth, JSON only       {:>8.1} MB",
            mb(j.saturating_sub(b))
        );
        println!(
            "  resident growth, JSON + replica  {:>8.1} MB",
            mb(p.saturating_sub(b))
        );
        println!(
            "  resident growth, replica only    {:>8.1} MB ({:.0} bytes/row)",
            mb(a.saturating_sub(b)),
            a.saturating_sub(b) as f64 / f64::from(ROWS)
        );
    }
    black_box(replica);
}

/// Wall and CPU time of `f`, averaged over `runs` (CPU time does not count waiting for a core,
/// so it stays meaningful on a shared machine).
fn timed(what: &str, runs: u32, mut f: impl FnMut()) {
    let cpu0 = cpu_seconds();
    let wall = std::time::Instant::now();
    for _ in 0..runs {
        f();
    }
    let wall = wall.elapsed().as_secs_f64() / f64::from(runs);
    let cpu = cpu_seconds()
        .zip(cpu0)
        .map(|(a, b)| (a - b) / f64::from(runs));
    println!(
        "  {what:<32} {:>8.0} ms wall, {:>5.0} ms CPU (mean of {runs})",
        wall * 1e3,
        cpu.unwrap_or(f64::NAN) * 1e3
    );
}

fn cpu_report(schema: &DatabaseSchema) {
    let reply = initial_reply();
    let notes = modifies();
    println!("ovsdb replica, time per run (includes no drop of the replica)");
    let mut keep = Vec::new();
    timed("sync 100k (decode + apply)", 3, || {
        keep.push(synced(schema, &reply));
    });
    let mut done = Vec::new();
    timed("10k modifies (decode + apply)", 3, || {
        let mut r = keep.pop().expect("one replica per run");
        for n in &notes {
            r.apply_notification("update3", n).expect("applies");
        }
        done.push(r);
    });
    drop(done);
}

fn main() {
    let text = std::fs::read_to_string(NB_SCHEMA)
        .unwrap_or_else(|e| panic!("{NB_SCHEMA}: {e} (install ovn-central, see docs/lab.md)"));
    let schema = DatabaseSchema::from_json_str(&text).expect("NB schema parses");
    memory(&schema);
    cpu_report(&schema);

    let mut c = Criterion::default().sample_size(10).configure_from_args();
    let reply = initial_reply();
    let layout = Layout::new(&schema);

    let mut g = c.benchmark_group("replica_initial_100k");
    g.throughput(Throughput::Elements(u64::from(ROWS)));
    g.bench_function("decode", |b| {
        b.iter(|| {
            MonitorReply::decode(&layout, MonitorMethod::MonitorCondSince, black_box(&reply))
                .expect("decodes")
        });
    });
    g.bench_function("decode_apply", |b| {
        b.iter_batched(
            || Replica::new(&schema),
            |mut r| {
                r.apply_reply(&monitor(), black_box(&reply))
                    .expect("applies");
                r
            },
            BatchSize::LargeInput,
        );
    });
    g.bench_function("decode_apply_with_consumer", |b| {
        b.iter_batched(
            || {
                let mut r = Replica::new(&schema);
                let (c, _) = r.subscribe();
                (r, c)
            },
            |(mut r, c)| {
                r.apply_reply(&monitor(), black_box(&reply))
                    .expect("applies");
                let (changes, _) = r.take_changes(c).expect("consumer");
                assert_eq!(changes.len(), ROWS as usize);
                r
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();

    let notes = modifies();
    let mut g = c.benchmark_group("replica_modify_10k");
    g.throughput(Throughput::Elements(u64::from(MODIFIES)));
    g.bench_function("decode_apply", |b| {
        b.iter_batched(
            || synced(&schema, &reply),
            |mut r| {
                for n in &notes {
                    r.apply_notification("update3", black_box(n))
                        .expect("applies");
                }
                r
            },
            BatchSize::LargeInput,
        );
    });
    g.bench_function("decode_apply_snapshot_held", |b| {
        b.iter_batched(
            || {
                let mut r = synced(&schema, &reply);
                let (c, _) = r.subscribe();
                (r.snapshot(), r, c)
            },
            |(snap, mut r, c)| {
                for n in &notes {
                    r.apply_notification("update3", black_box(n))
                        .expect("applies");
                }
                let (changes, _) = r.take_changes(c).expect("consumer");
                assert_eq!(changes.len(), MODIFIES as usize);
                (snap, r)
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
    c.final_summary();
}
