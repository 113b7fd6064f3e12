//! `monitor_canceled` from a real ovsdb-server: the replica client is db-change-aware, so
//! removing the database cancels its monitor instead of closing the connection; the client
//! resubscribes, finds no database, keeps trying, and resyncs once the database is back.
#![cfg(feature = "client")]

mod client_monitor_common;
mod replica_common;

use std::time::Duration;

use client_monitor_common::*;
use ovn_testbed::{Lab, OvsdbServerOptions, schemas};
use ovsdb::client::ReplicaEvent;
use serde_json::json;

fn appctl(ctl: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("ovs-appctl")
        .arg("-t")
        .arg(ctl)
        .args(args)
        .output()
        .expect("ovs-appctl");
    assert!(out.status.success(), "ovs-appctl {args:?}: {out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_database_cancels_the_monitor_and_the_client_resyncs_when_it_returns() {
    let Some(lab) = Lab::for_test() else { return };
    let server = lab
        .start_ovsdb_server(OvsdbServerOptions::new(schemas::NB))
        .expect("start ovsdb-server");
    replica_common::oracle_transact(
        &server,
        vec![json!({"op": "insert", "table": "Logical_Switch", "row": {"name": "kept"}})],
    );
    let (replica, mut events) = started(config(&server.unix_remote())).await;

    appctl(&server.ctl_path(), &["ovsdb-server/remove-db", NB]);
    let gone = wait_event(&mut events, Duration::from_secs(10), |e| {
        matches!(e, ReplicaEvent::Disconnected { .. })
    })
    .await;
    eprintln!("after remove-db: {gone:?}");
    assert!(!replica.is_synced());
    // Refused while the database is missing, and no panic.
    wait_event(
        &mut events,
        Duration::from_secs(10),
        |e| matches!(e, ReplicaEvent::Refused { reason, .. } if reason.to_string().contains(NB)),
    )
    .await;

    let db = server.db_path().to_str().expect("utf-8 path").to_owned();
    appctl(&server.ctl_path(), &["ovsdb-server/add-db", &db]);
    let back = wait_event(&mut events, Duration::from_secs(15), |e| {
        matches!(e, ReplicaEvent::Synced { .. })
    })
    .await;
    eprintln!("after add-db: {back:?}");
    let snap = replica.wait_synced().await.expect("synced");
    assert_eq!(snap.table("Logical_Switch").expect("table").len(), 1);
}
