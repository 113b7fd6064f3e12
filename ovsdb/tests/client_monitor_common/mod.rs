//! Shared pieces of the replica client tests: monitors, configs with short delays, waiting
//! for events, and guarded (idempotent) writes.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use ovsdb::client::{
    Backoff, ReplicaClient, ReplicaClientError, ReplicaConfig, ReplicaEvent, ReplicaEvents,
};
use ovsdb::monitor::{MonitorMethod, MonitorRequest, TableMonitor};
use ovsdb::{Condition, Insert, Row, Transaction, Wait, WaitUntil};

pub const NB: &str = "OVN_Northbound";

/// A `monitor_cond_since` of `Logical_Switch` and `Logical_Switch_Port`, every column.
pub fn nb_monitor() -> MonitorRequest {
    MonitorRequest::new(NB, MonitorMethod::MonitorCondSince)
        .with_id("test")
        .with_table("Logical_Switch", TableMonitor::all())
        .with_table("Logical_Switch_Port", TableMonitor::all())
}

/// A config with test-sized delays: backoff 100 ms doubling to 1 s.
pub fn config(remotes: &str) -> ReplicaConfig {
    ReplicaConfig::new(remotes, nb_monitor())
        .with_backoff(Backoff::new(
            Duration::from_millis(100),
            Duration::from_secs(1),
        ))
        .with_setup_timeout(Duration::from_secs(10))
}

/// Starts a replica client and waits until it is synced.
pub async fn started(config: ReplicaConfig) -> (ReplicaClient, ReplicaEvents) {
    let (client, events) = ReplicaClient::start(config).await.expect("start");
    tokio::time::timeout(Duration::from_secs(30), client.wait_synced())
        .await
        .expect("synced within 30 s")
        .expect("synced");
    (client, events)
}

/// The next event for which `pred` is true, within `timeout`; the events skipped are returned
/// too (for the failure message).
pub async fn wait_event(
    events: &mut ReplicaEvents,
    timeout: Duration,
    mut pred: impl FnMut(&ReplicaEvent) -> bool,
) -> ReplicaEvent {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(e)) if pred(&e) => return e,
            Ok(Some(e)) => seen.push(e),
            Ok(None) => panic!("event stream ended; seen {seen:#?}"),
            Err(_) => panic!("no matching event within {timeout:?}; seen {seen:#?}"),
        }
    }
}

/// Polls `f` every 20 ms until it is true or `timeout` passes; returns how long it took.
pub async fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f().then(|| start.elapsed())
}

/// Inserts switch `name` unless one exists: a `wait` for no such switch, then the insert.
pub fn guarded_insert(name: &str) -> Transaction {
    let mut txn = Transaction::new(NB);
    txn.push(
        Wait::new(
            "Logical_Switch",
            ["name"],
            WaitUntil::Equal,
            Vec::<Row>::new(),
        )
        .filter(Condition::eq("name", name))
        .timeout_ms(0),
    );
    txn.push(Insert::new("Logical_Switch", Row::new().with("name", name)));
    txn
}

/// How a guarded insert ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    /// Committed by this attempt.
    Now,
    /// The guard failed: an earlier attempt had committed it.
    Before,
}

/// Sends `guarded_insert(name)` until it is known to be in the database, retrying after
/// "may or may not have committed" and after no connection; other errors fail the test.
pub async fn write_until_known(client: &ReplicaClient, name: &str) -> (Written, u32) {
    let txn = guarded_insert(name);
    let mut retries = 0;
    loop {
        match client.transact(&txn).await {
            Ok(_) => return (Written::Now, retries),
            Err(ReplicaClientError::Request(ovsdb::client::ClientError::Transact(
                ovsdb::TransactError::Operation { index: 0, .. },
            ))) => return (Written::Before, retries),
            Err(
                ReplicaClientError::MaybeCommitted { .. } | ReplicaClientError::NotConnected { .. },
            ) => {}
            Err(ReplicaClientError::Request(e)) => {
                // A member that lost leadership while the request was on its way may refuse
                // it ("not leader", commit failure); nothing was written, try again.
                eprintln!("{name}: retrying after {e}");
            }
            Err(e) => panic!("{name}: {e}"),
        }
        retries += 1;
        assert!(
            retries < 200,
            "{name}: still not written after 200 attempts"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
