//! Unavailability of writes on a 3-member Raft NB per chaos event, with the replica client's
//! defaults (what users get): one writer commits one switch at a time (at most one every
//! 10 ms) while the leader is killed, the leader is frozen (SIGSTOP), and a follower is
//! killed, `ROUNDS` times each. For each event it prints the stall: the longest time without
//! a completed write from the event on. At the end every write is checked to be on the server
//! exactly once. `CHAOS_SETTLE` sets the seconds between events (3); `CHAOS_EVENTS=1` prints
//! the client's events.
//!
//! Needs root and OVN (the testbed). Run from the workspace root:
//!
//! ```text
//! cargo run --release -p ovsdb --features client --example raft_chaos -- [ROUNDS] [tcp|unix]
//! ```

#[cfg(feature = "client")]
#[path = "../tests/chaos_common/mod.rs"]
mod chaos_common;

#[cfg(not(feature = "client"))]
fn main() {
    eprintln!("raft_chaos needs the client feature: --features client");
}

#[cfg(feature = "client")]
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use chaos_common::*;
    use ovn_testbed::Lab;
    use ovsdb::client::{ReplicaClient, ReplicaConfig};
    use ovsdb::monitor::{MonitorMethod, MonitorRequest, TableMonitor};

    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(Ok(3), |a| a.parse())?;
    let transport = args.next().unwrap_or_else(|| "tcp".to_owned());

    let lab = Lab::new()?;
    let mut cluster = lab.start_nb_cluster(3)?;
    cluster.wait_leader(Duration::from_secs(10))?;
    let remotes = match transport.as_str() {
        "unix" => cluster.unix_remotes(),
        _ => cluster.tcp_remotes(),
    };
    let monitor = MonitorRequest::new(NB, MonitorMethod::MonitorCondSince)
        .with_table("Logical_Switch", TableMonitor::all().with_columns(["name"]));
    let (client, mut replica_events) =
        ReplicaClient::start(ReplicaConfig::new(remotes, monitor)).await?;
    client.wait_synced().await?;
    // CHAOS_EVENTS=1 prints the replica client's events as they come, with the time.
    let t0 = std::time::Instant::now();
    let show = std::env::var_os("CHAOS_EVENTS").is_some();
    tokio::spawn(async move {
        while let Some(e) = replica_events.next().await {
            if show {
                eprintln!("{:8.3} {e:?}", t0.elapsed().as_secs_f64());
            }
        }
    });
    let stop = Arc::new(AtomicBool::new(false));
    // One write every 10 ms at most: the stall is resolved to about that, and the database
    // stays small enough (tens of thousands of rows) that snapshots do not stall the cluster.
    let pace = Duration::from_millis(10);
    let task = tokio::spawn(writer(client.clone(), "c".to_owned(), stop.clone(), pace));

    // CHAOS_SETTLE seconds between events (3 by default).
    let settle = std::env::var("CHAOS_SETTLE")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(3), Duration::from_secs);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut events = Vec::new();
    for round in 1..=rounds {
        for (chaos, hold) in [
            (Chaos::KillLeader, Duration::from_secs(5)),
            (Chaos::FreezeLeader, Duration::from_secs(12)),
            (Chaos::KillFollower, Duration::from_secs(3)),
        ] {
            let at = tokio::task::block_in_place(|| inflict(&mut cluster, chaos, hold));
            if show {
                eprintln!(
                    "{:8.3} {} (round {round})",
                    at.duration_since(t0).as_secs_f64(),
                    chaos.name()
                );
            }
            events.push((round, chaos, at));
            tokio::time::sleep(settle).await;
        }
    }
    stop.store(true, Ordering::SeqCst);
    let log = task.await?;

    println!("| event | round | writes stalled s |");
    println!("|---|---|---|");
    let end = std::time::Instant::now();
    for (k, (round, chaos, at)) in events.iter().enumerate() {
        let until = events.get(k + 1).map_or(end, |e| e.2);
        let s = stall(&log.done_at, *at, until).map_or("none after".to_owned(), |d| {
            format!("{:.2}", d.as_secs_f64())
        });
        println!("| {} | {round} | {s} |", chaos.name());
    }
    let count = switch_counts(&client).await;
    let lost = log.ids.iter().filter(|id| !count.contains_key(*id)).count();
    let duplicated = count.values().filter(|&&n| n > 1).count();
    println!(
        "{} writes over {transport}: {} at once, {} found after an unknown outcome, {} by a guarded insert, {} found by the guard; {lost} lost, {duplicated} duplicated, {} other rows",
        log.ids.len(),
        log.at_once,
        log.found,
        log.guarded,
        log.guard_found,
        count.len().saturating_sub(log.ids.len() - lost),
    );
    Ok(())
}
