//! The replica client on a 3-member Raft NB: a leadership transfer during a steady monitor
//! (the replica converges within 5 s and the change stream reports every row written
//! meanwhile), SIGSTOP of the connected member (detected within twice the inactivity
//! probe, then the client moves to another member), and a transaction in flight when the
//! leader leaves (it fails as "may or may not have committed" with the Raft rejection as its
//! typed cause, not as a stopped driver).
#![cfg(feature = "client")]

mod client_monitor_common;
mod replica_common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use client_monitor_common::*;
use ovn_testbed::{Lab, NbCluster};
use ovsdb::client::ReplicaEvent;
use ovsdb::{Datum, Uuid};

/// The member whose unix remote is `remote`.
fn member_of(cluster: &NbCluster, remote: &str) -> usize {
    (0..3)
        .find(|&i| cluster.member(i).expect("member").server().unix_remote() == remote)
        .unwrap_or_else(|| panic!("{remote} is no member"))
}

fn switch_names(snap: &ovsdb::replica::Snapshot) -> BTreeSet<String> {
    snap.table("Logical_Switch")
        .expect("table")
        .rows()
        .filter_map(|r| {
            r.get("name")
                .and_then(Datum::as_atom)?
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_transfer_during_a_steady_monitor_converges_and_reports_every_change() {
    let Some(lab) = Lab::for_test() else { return };
    let cluster = lab.start_nb_cluster(3).expect("cluster");
    cluster
        .wait_leader(Duration::from_secs(10))
        .expect("leader");
    let remotes = cluster.unix_remotes();
    let (monitor, mut events) = started(config(&remotes)).await;
    let mut changes = monitor.changes();
    let (writer, _writer_events) = started(config(&remotes)).await;
    let old = monitor.remote().expect("connected");
    let old_member = member_of(&cluster, &old);

    // A steady stream of guarded writes through the leader.
    let stop = Arc::new(AtomicBool::new(false));
    let writes = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut names = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let name = format!("t{i}");
                write_until_known(&writer, &name).await;
                names.push(name);
                i += 1;
            }
            names
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    let ctl = cluster
        .member(old_member)
        .expect("member")
        .server()
        .ctl_path();
    let transfer = Instant::now();
    let out = std::process::Command::new("ovs-appctl")
        .arg("-t")
        .arg(&ctl)
        .args(["cluster/leave", "OVN_Northbound"])
        .output()
        .expect("ovs-appctl");
    assert!(out.status.success(), "cluster/leave: {out:?}");
    let synced = wait_event(
        &mut events,
        Duration::from_secs(20),
        |e| matches!(e, ReplicaEvent::Synced { remote, .. } if *remote != old),
    )
    .await;
    let took = transfer.elapsed();
    eprintln!("leadership transfer: synced with the new leader after {took:?}: {synced:?}");
    assert!(
        took < Duration::from_secs(5),
        "converged after {took:?}, not within 5 s"
    );

    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let names = writes.await.expect("writer");
    assert!(names.len() > 10, "only {} writes", names.len());
    write_until_known(&monitor, "marker").await;
    let all: BTreeSet<String> = names.iter().cloned().chain(["marker".into()]).collect();
    let converged = wait_until(Duration::from_secs(5), || {
        switch_names(&monitor.snapshot()).is_superset(&all)
    })
    .await;
    assert!(
        converged.is_some(),
        "the replica misses acknowledged writes"
    );

    // Every row written meanwhile was reported as inserted.
    let mut inserted: BTreeSet<Uuid> = BTreeSet::new();
    while let Some((set, _)) = changes.try_next() {
        if let Some(t) = set.table("Logical_Switch") {
            inserted.extend(t.inserted.iter().copied());
            for d in &t.deleted {
                inserted.remove(d);
            }
        }
    }
    let snap = monitor.snapshot();
    let table = snap.table("Logical_Switch").expect("table");
    for row in table.rows() {
        let name = row.get("name").cloned().unwrap_or(Datum::from(""));
        assert!(
            inserted.contains(&row.uuid()),
            "{name:?} was never reported"
        );
    }

    // Row for row equal to the new leader's dump.
    let now = member_of(&cluster, &monitor.remote().expect("connected"));
    let server = cluster.member(now).expect("member").server();
    for t in ["Logical_Switch", "Logical_Switch_Port"] {
        let want = replica_common::dump(server, snap.layout(), t);
        let got = snap.table(t).expect("table").to_rows();
        assert_eq!(got, want, "{t} differs from the dump of member {now}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstop_of_the_connected_member_is_detected_within_two_probes() {
    let Some(lab) = Lab::for_test() else { return };
    let cluster = lab.start_nb_cluster(3).expect("cluster");
    cluster
        .wait_leader(Duration::from_secs(10))
        .expect("leader");
    let probe = Duration::from_secs(1);
    let cfg = config(&cluster.unix_remotes())
        .with_leader_only(false)
        .with_inactivity_probe(Some(probe));
    let (monitor, mut events) = started(cfg).await;
    let first = monitor.remote().expect("connected");
    let frozen = member_of(&cluster, &first);

    cluster.pause(frozen).expect("SIGSTOP");
    let stopped = Instant::now();
    let gone = wait_event(&mut events, Duration::from_secs(10), |e| {
        matches!(e, ReplicaEvent::Disconnected { .. })
    })
    .await;
    let detected = stopped.elapsed();
    eprintln!("SIGSTOP detected after {detected:?}: {gone:?}");
    // Twice the probe, plus scheduling margin on a shared machine.
    assert!(
        detected <= 2 * probe + Duration::from_millis(750),
        "detected after {detected:?}, probe {probe:?}"
    );
    let moved = wait_event(&mut events, Duration::from_secs(10), |e| {
        matches!(e, ReplicaEvent::Synced { .. })
    })
    .await;
    let ReplicaEvent::Synced { remote, .. } = &moved else {
        unreachable!()
    };
    assert_ne!(*remote, first, "moved to another member");

    // The replica keeps following on the new member.
    write_until_known(&monitor, "after-stop").await;
    let seen = wait_until(Duration::from_secs(5), || {
        switch_names(&monitor.snapshot()).contains("after-stop")
    })
    .await;
    assert!(seen.is_some());
    cluster.resume(frozen).expect("SIGCONT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_in_flight_when_the_leader_leaves_fails_with_the_typed_raft_rejection() {
    let Some(lab) = Lab::for_test() else { return };
    let cluster = lab.start_nb_cluster(3).expect("cluster");
    cluster
        .wait_leader(Duration::from_secs(10))
        .expect("leader");
    let (writer, _events) = started(config(&cluster.unix_remotes())).await;
    let old = member_of(&cluster, &writer.remote().expect("connected"));
    // A wait that blocks on the leader until it is no longer the leader.
    let mut txn = ovsdb::Transaction::new(NB);
    txn.push(
        ovsdb::Wait::new(
            "Logical_Switch",
            ["name"],
            ovsdb::WaitUntil::Equal,
            vec![ovsdb::Row::new().with("name", "never")],
        )
        .timeout_ms(60_000),
    );
    let blocked = tokio::spawn({
        let writer = writer.clone();
        async move { writer.transact(&txn).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ctl = cluster.member(old).expect("member").server().ctl_path();
    let out = std::process::Command::new("ovs-appctl")
        .arg("-t")
        .arg(&ctl)
        .args(["cluster/leave", "OVN_Northbound"])
        .output()
        .expect("ovs-appctl");
    assert!(out.status.success(), "cluster/leave: {out:?}");
    let e = tokio::time::timeout(Duration::from_secs(20), blocked)
        .await
        .expect("the blocked transaction ends")
        .expect("task")
        .unwrap_err();
    let mut text = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        text.push_str(": ");
        text.push_str(&s.to_string());
        src = s.source();
    }
    assert!(
        matches!(e, ovsdb::client::ReplicaClientError::MaybeCommitted { .. }),
        "{e:?}"
    );
    // The member leaving the cluster says it is cut off from it (a member that stays, as a
    // follower, says it is not the leader: the machine's tests cover both).
    use ovsdb::client::raft::Rejection;
    let rejection = e.rejection().cloned();
    assert!(
        matches!(
            rejection,
            Some(Rejection::NotLeader | Rejection::NotConnected)
        ),
        "{text}"
    );
    let said = rejection.map(|r| r.to_string()).unwrap_or_default();
    assert!(text.ends_with(&said), "{text}");
    assert!(!text.contains("driver"), "{text}");
}
