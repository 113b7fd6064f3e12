//! Chaos on a 3-member Raft NB: a writer commits 2,000 guarded transactions (a `wait` for
//! the name to be absent, then the insert, so a retry after "may or may not have committed"
//! can never write twice) while the leader is killed and restarted 3 times. At the end every
//! acknowledged write is present exactly once, and the replica of a monitoring client equals
//! `ovsdb-client dump` of the leader, row for row.
#![cfg(feature = "client")]

mod client_monitor_common;
mod replica_common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use client_monitor_common::*;
use ovn_testbed::Lab;
use ovsdb::Datum;

const WRITES: usize = 2000;
const KILLS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_three_times_during_2000_guarded_writes() {
    let Some(lab) = Lab::for_test() else { return };
    let mut cluster = lab.start_nb_cluster(3).expect("cluster");
    cluster
        .wait_leader(Duration::from_secs(10))
        .expect("leader");
    let remotes = cluster.unix_remotes();
    let (writer, _we) = started(config(&remotes)).await;
    let (monitor, _me) = started(config(&remotes)).await;

    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let writes = tokio::spawn({
        let done = done.clone();
        async move {
            let (mut now, mut before, mut retries) = (0, 0, 0);
            for i in 0..WRITES {
                let (w, r) = write_until_known(&writer, &format!("c{i}")).await;
                match w {
                    Written::Now => now += 1,
                    Written::Before => before += 1,
                }
                retries += r;
                done.store(i + 1, Ordering::SeqCst);
            }
            (now, before, retries)
        }
    });
    for k in 1..=KILLS {
        let at = k * WRITES / (KILLS + 1);
        while done.load(Ordering::SeqCst) < at {
            assert!(!writes.is_finished(), "writer stopped early");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let leader = tokio::task::block_in_place(|| cluster.wait_leader(Duration::from_secs(15)))
            .expect("a leader");
        eprintln!(
            "kill {k}: leader {leader} after {} writes",
            done.load(Ordering::SeqCst)
        );
        tokio::task::block_in_place(|| {
            cluster.kill(leader).expect("kill");
            std::thread::sleep(Duration::from_millis(300));
            cluster.restart(leader).expect("restart");
        });
    }
    let (now, before, retries) = writes.await.expect("writer");
    eprintln!(
        "{WRITES} writes in {:?}: {now} committed at once, {before} found committed by an earlier attempt, {retries} retries",
        start.elapsed()
    );
    assert_eq!(now + before, WRITES);

    let leader = tokio::task::block_in_place(|| cluster.wait_leader(Duration::from_secs(15)))
        .expect("a leader");
    let server = cluster.member(leader).expect("member").server();
    let snap0 = monitor.snapshot();
    let dumped = replica_common::dump(server, snap0.layout(), "Logical_Switch");
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for row in dumped.values() {
        let name = row
            .get("name")
            .and_then(Datum::as_atom)
            .and_then(|a| a.as_str())
            .expect("name")
            .to_owned();
        *count.entry(name).or_default() += 1;
    }
    for i in 0..WRITES {
        assert_eq!(
            count.get(&format!("c{i}")),
            Some(&1),
            "c{i} not exactly once"
        );
    }
    assert_eq!(count.len(), WRITES, "no other switch");

    // The monitoring client converges on exactly the leader's contents.
    write_until_known(&monitor, "marker").await;
    let has_marker = || {
        monitor
            .snapshot()
            .table("Logical_Switch")
            .expect("table")
            .rows()
            .any(|r| r.get("name") == Some(&Datum::from("marker")))
    };
    assert!(
        wait_until(Duration::from_secs(10), has_marker)
            .await
            .is_some()
    );
    let snap = monitor.snapshot();
    for t in ["Logical_Switch", "Logical_Switch_Port"] {
        let want = replica_common::dump(server, snap.layout(), t);
        let got = snap.table(t).expect("table").to_rows();
        assert_eq!(got.len(), want.len(), "{t} row count");
        assert_eq!(got, want, "{t} differs from the leader's dump");
    }
}
