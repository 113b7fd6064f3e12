//! Locks for leader election against a real ovsdb-server: two replica clients race for one
//! lock and exactly one holds it; `steal` moves it and the loser is told; after `unlock` the
//! loser, waiting in the queue again, gets it back.
#![cfg(feature = "client")]

mod client_monitor_common;

use std::time::Duration;

use client_monitor_common::*;
use ovn_testbed::{Lab, OvsdbServerOptions, schemas};
use ovsdb::client::ReplicaEvent;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_race_for_one_lock_and_steal_moves_it() {
    let Some(lab) = Lab::for_test() else { return };
    let server = lab
        .start_ovsdb_server(OvsdbServerOptions::new(schemas::NB))
        .expect("start ovsdb-server");
    let cfg = config(&server.unix_remote()).with_lock("controller");
    let ((a, ea), (b, eb)) = tokio::join!(started(cfg.clone()), started(cfg));

    let one = wait_until(Duration::from_secs(5), || a.has_lock() || b.has_lock()).await;
    assert!(one.is_some(), "nobody got the lock");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        a.has_lock() ^ b.has_lock(),
        "exactly one holds it: a {} b {}",
        a.has_lock(),
        b.has_lock()
    );
    let (winner, mut winner_events, loser) = if a.has_lock() { (a, ea, b) } else { (b, eb, a) };
    // Drain the winner's acquisition so the next lock event is the steal.
    wait_event(&mut winner_events, Duration::from_secs(5), |e| {
        matches!(e, ReplicaEvent::LockAcquired { .. })
    })
    .await;

    loser.steal_lock().await.expect("steal");
    assert!(loser.has_lock());
    let told = wait_event(&mut winner_events, Duration::from_secs(5), |e| {
        matches!(e, ReplicaEvent::LockLost { .. })
    })
    .await;
    assert!(
        matches!(&told, ReplicaEvent::LockLost { name, stolen: true } if name == "controller"),
        "{told:?}"
    );
    assert!(!winner.has_lock(), "the old holder knows it lost the lock");

    // The old holder waits in the queue again: releasing the lock hands it back.
    loser.unlock().await.expect("unlock");
    let back = wait_event(&mut winner_events, Duration::from_secs(5), |e| {
        matches!(e, ReplicaEvent::LockAcquired { .. })
    })
    .await;
    assert!(
        matches!(&back, ReplicaEvent::LockAcquired { name } if name == "controller"),
        "{back:?}"
    );
    assert!(winner.has_lock() && !loser.has_lock());
}
