//! Chaos on a 3-member Raft NB while two writers commit: the leader is killed, then frozen
//! (SIGSTOP), then a follower is killed, each for 2 s and then undone. Every write carries a
//! unique id; a write whose outcome was unknown is looked up on the server and only then
//! sent again, guarded (see `chaos_common`). Afterwards every acknowledged write is on the
//! server exactly once, nothing else is, and writes went on after each event. Correctness
//! only: the unavailability per event is measured by the example `raft_chaos`.
#![cfg(feature = "client")]

mod chaos_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chaos_common::*;
use ovn_testbed::Lab;
use ovsdb::client::{Backoff, ReplicaClient, ReplicaConfig};
use ovsdb::monitor::{MonitorMethod, MonitorRequest, TableMonitor};

fn config(remotes: &str) -> ReplicaConfig {
    let monitor = MonitorRequest::new(NB, MonitorMethod::MonitorCondSince)
        .with_table("Logical_Switch", TableMonitor::all().with_columns(["name"]));
    ReplicaConfig::new(remotes, monitor)
        .with_backoff(Backoff::new(
            Duration::from_millis(100),
            Duration::from_secs(1),
        ))
        .with_setup_timeout(Duration::from_secs(10))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kill_leader_freeze_and_follower_kill_lose_and_duplicate_no_write() {
    let Some(lab) = Lab::for_test() else { return };
    let mut cluster = lab.start_nb_cluster(3).expect("cluster");
    cluster
        .wait_leader(Duration::from_secs(10))
        .expect("leader");
    let remotes = cluster.unix_remotes();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    let mut reader = None;
    for w in 0..2 {
        let (client, _events) = ReplicaClient::start(config(&remotes)).await.expect("start");
        tokio::time::timeout(Duration::from_secs(30), client.wait_synced())
            .await
            .expect("synced within 30 s")
            .expect("synced");
        reader.get_or_insert_with(|| client.clone());
        writers.push(tokio::spawn(writer(
            client,
            format!("w{w}-"),
            stop.clone(),
            Duration::ZERO,
        )));
    }
    let reader = reader.expect("a client");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut events = Vec::new();
    for chaos in [Chaos::KillLeader, Chaos::FreezeLeader, Chaos::KillFollower] {
        let at =
            tokio::task::block_in_place(|| inflict(&mut cluster, chaos, Duration::from_secs(2)));
        events.push((chaos, at));
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut logs = Vec::new();
    for w in writers {
        logs.push(w.await.expect("writer"));
    }

    let count = switch_counts(&reader).await;
    let mut written = 0;
    for log in &logs {
        eprintln!(
            "{} writes: {} at once, {} found after an unknown outcome, {} by a guarded insert, {} found by the guard",
            log.ids.len(),
            log.at_once,
            log.found,
            log.guarded,
            log.guard_found
        );
        for id in &log.ids {
            assert_eq!(count.get(id), Some(&1), "{id} not exactly once");
        }
        written += log.ids.len();
        for (chaos, at) in &events {
            assert!(
                log.done_at.iter().any(|t| t > at),
                "no write completed after the {}",
                chaos.name()
            );
        }
    }
    assert_eq!(count.len(), written, "no other switch");
}
