//! Chaos on a 3-member Raft NB with writers committing: the writers, the events (leader
//! kill, leader freeze, follower kill) and the final count. Shared by the test
//! `chaos_raft_events` (correctness) and the example `raft_chaos` (unavailability per event).
//!
//! Every write inserts a `Logical_Switch` named by a unique id, without a guard, so a client
//! that sent one twice would leave two rows. A write that may or may not have committed is
//! never sent again as is: the writer looks for its row on the server, and only if it is
//! absent sends a guarded insert (a `wait` for the name to be absent, then the insert), which
//! cannot commit if the first one did, whatever the order in the Raft log.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ovn_testbed::NbCluster;
use ovsdb::client::{ClientError, ReplicaClient, ReplicaClientError};
use ovsdb::{Condition, Datum, Insert, Row, Select, TransactError, Transaction, Wait, WaitUntil};

pub const NB: &str = "OVN_Northbound";

/// What the chaos does to the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chaos {
    /// SIGKILL the leader, restart it after the hold.
    KillLeader,
    /// SIGSTOP the leader, SIGCONT it after the hold.
    FreezeLeader,
    /// SIGKILL a follower, restart it after the hold.
    KillFollower,
}

impl Chaos {
    pub fn name(self) -> &'static str {
        match self {
            Chaos::KillLeader => "leader kill",
            Chaos::FreezeLeader => "leader freeze (SIGSTOP)",
            Chaos::KillFollower => "follower kill",
        }
    }
}

/// Does `chaos` to `cluster`, holds it for `hold`, undoes it and waits for a leader; returns
/// when it started. Blocking (call it inside `block_in_place`).
pub fn inflict(cluster: &mut NbCluster, chaos: Chaos, hold: Duration) -> Instant {
    let leader = cluster
        .wait_leader(Duration::from_secs(15))
        .expect("a leader");
    let started = Instant::now();
    match chaos {
        Chaos::KillLeader => {
            cluster.kill(leader).expect("kill");
            std::thread::sleep(hold);
            cluster.restart(leader).expect("restart");
        }
        Chaos::FreezeLeader => {
            cluster.pause(leader).expect("SIGSTOP");
            std::thread::sleep(hold);
            cluster.resume(leader).expect("SIGCONT");
        }
        Chaos::KillFollower => {
            let follower = (0..3).find(|&i| i != leader).expect("a follower");
            cluster.kill(follower).expect("kill");
            std::thread::sleep(hold);
            cluster.restart(follower).expect("restart");
        }
    }
    wait_stable(cluster);
    started
}

/// Waits until one member is the leader and every other one a follower, three looks in a row
/// 200 ms apart (a member thawed after SIGSTOP may still call itself leader for a moment).
pub fn wait_stable(cluster: &NbCluster) {
    use ovn_testbed::RaftRole;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut streak = 0;
    while streak < 3 {
        assert!(Instant::now() < deadline, "the cluster did not settle");
        let roles: Vec<_> = (0..3).map(|i| cluster.role(i).ok().flatten()).collect();
        let leaders = roles
            .iter()
            .filter(|r| **r == Some(RaftRole::Leader))
            .count();
        let followers = roles
            .iter()
            .filter(|r| **r == Some(RaftRole::Follower))
            .count();
        streak = if leaders == 1 && followers == 2 {
            streak + 1
        } else {
            0
        };
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What one writer did.
#[derive(Debug, Default)]
pub struct WriterLog {
    /// The ids it wrote, each known to be committed.
    pub ids: Vec<String>,
    /// When each write was known committed.
    pub done_at: Vec<Instant>,
    /// Writes committed by their first send.
    pub at_once: usize,
    /// Writes whose outcome was unknown and whose row was then found on the server.
    pub found: usize,
    /// Writes whose outcome was unknown, found absent, and committed by a guarded insert.
    pub guarded: usize,
    /// Writes whose guarded insert found the row after all (the first send committed late).
    pub guard_found: usize,
}

/// Writes `{prefix}{i}` for i = 0, 1, ... one at a time until `stop` is set, waiting `pace`
/// between writes.
pub async fn writer(
    client: ReplicaClient,
    prefix: String,
    stop: Arc<AtomicBool>,
    pace: Duration,
) -> WriterLog {
    let mut log = WriterLog::default();
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        if !pace.is_zero() {
            tokio::time::sleep(pace).await;
        }
        let id = format!("{prefix}{i}");
        write_one(&client, &id, &mut log).await;
        log.ids.push(id);
        log.done_at.push(Instant::now());
        i += 1;
    }
    log
}

fn insert(id: &str) -> Transaction {
    Transaction::new(NB).with(Insert::new("Logical_Switch", Row::new().with("name", id)))
}

fn guarded(id: &str) -> Transaction {
    let mut txn = Transaction::new(NB);
    txn.push(
        Wait::new(
            "Logical_Switch",
            ["name"],
            WaitUntil::Equal,
            Vec::<Row>::new(),
        )
        .filter(Condition::eq("name", id))
        .timeout_ms(0),
    );
    txn.push(Insert::new("Logical_Switch", Row::new().with("name", id)));
    txn
}

/// Whether a failure means the write was certainly not carried out: nothing was sent.
fn not_sent(e: &ReplicaClientError) -> bool {
    matches!(e, ReplicaClientError::NotConnected { .. })
}

/// Whether a guarded insert failed on its guard: the row is there.
fn guard_failed(e: &ReplicaClientError) -> bool {
    matches!(
        e,
        ReplicaClientError::Request(ClientError::Transact(TransactError::Operation {
            index: 0,
            ..
        }))
    )
}

async fn write_one(client: &ReplicaClient, id: &str, log: &mut WriterLog) {
    let mut attempts = 0;
    // First send, repeated only while nothing could be sent.
    loop {
        attempts += 1;
        assert!(
            attempts < 1000,
            "{id}: no connection after {attempts} tries"
        );
        match client.transact(&insert(id)).await {
            Ok(_) => {
                log.at_once += 1;
                return;
            }
            Err(e) if not_sent(&e) => pause().await,
            Err(_) => break,
        }
    }
    // The outcome is unknown: look, and only then send the guarded insert.
    loop {
        attempts += 1;
        assert!(attempts < 1000, "{id}: unresolved after {attempts} tries");
        match present(client, id).await {
            None => pause().await,
            Some(true) => {
                log.found += 1;
                return;
            }
            Some(false) => match client.transact(&guarded(id)).await {
                Ok(_) => {
                    log.guarded += 1;
                    return;
                }
                Err(e) if guard_failed(&e) => {
                    log.guard_found += 1;
                    return;
                }
                Err(_) => pause().await,
            },
        }
    }
}

async fn pause() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// Whether the switch `id` exists on the server the client is connected to; `None` if the
/// question could not be asked.
async fn present(client: &ReplicaClient, id: &str) -> Option<bool> {
    let mut txn = Transaction::new(NB);
    let h = txn.push(
        Select::new("Logical_Switch")
            .filter(Condition::eq("name", id))
            .columns(["name"]),
    );
    let outcome = client.transact(&txn).await.ok()?;
    outcome.rows(&h).map(|rows| !rows.is_empty())
}

/// The number of switches per name, read from the server.
pub async fn switch_counts(client: &ReplicaClient) -> BTreeMap<String, usize> {
    let mut txn = Transaction::new(NB);
    let h = txn.push(Select::new("Logical_Switch").columns(["name"]));
    let mut tries = 0;
    let outcome = loop {
        match client.transact(&txn).await {
            Ok(o) => break o,
            Err(e) => {
                tries += 1;
                assert!(tries < 500, "cannot read the switches: {e}");
                pause().await;
            }
        }
    };
    let mut count = BTreeMap::new();
    for row in outcome.rows(&h).expect("rows") {
        let name = row
            .get("name")
            .and_then(Datum::as_atom)
            .and_then(|a| a.as_str())
            .expect("a name")
            .to_owned();
        *count.entry(name).or_default() += 1;
    }
    count
}

/// The longest time without a completed write from `at` to `until` (the next event): from
/// `at` (or the last completion before it) to the first completion after it, or between two
/// completions after it. `None` if no write completed in between.
pub fn stall(done_at: &[Instant], at: Instant, until: Instant) -> Option<Duration> {
    let before = done_at.iter().filter(|&&t| t <= at).max().copied();
    let mut after: Vec<Instant> = done_at
        .iter()
        .filter(|&&t| t > at && t <= until)
        .copied()
        .collect();
    after.sort();
    let first = *after.first()?;
    let mut worst = first.duration_since(before.unwrap_or(at));
    for w in after.windows(2) {
        worst = worst.max(w[1].duration_since(w[0]));
    }
    Some(worst)
}
