//! W3 and W4 of the peer comparison (`benches/peers/`), through [`ReplicaClient`] as a
//! controller would use it.
//!
//! W3: start a replica of `Logical_Switch_Port` (every column), wait until it is synced,
//! report the row count. W4: the same with the runner's 10,000 ports, then create the ready
//! file and read the coalesced change sets until every port shows `external_ids:gen ==
//! BENCH_GEN`.

use std::collections::HashSet;
use std::env;

use anyhow::{Context, Result, bail};
use ovsdb::client::{ReplicaClient, ReplicaConfig};
use ovsdb::monitor::{MonitorMethod, MonitorRequest, TableMonitor};
use ovsdb::{Atom, Datum, Uuid};

const LSP: &str = "Logical_Switch_Port";

fn config(remote: &str, db: &str) -> ReplicaConfig {
    let monitor = MonitorRequest::new(db, MonitorMethod::MonitorCondSince)
        .with_id("bench")
        .with_table(LSP, TableMonitor::all());
    // A busy machine can take long to serve 100k rows: the runner has its own timeout.
    ReplicaConfig::new(remote, monitor)
        .with_max_rounds(3)
        .with_setup_timeout(std::time::Duration::from_secs(600))
}

/// Initial sync of every port into the replica; writes `{"rows": N}`.
pub async fn w3(remote: &str, db: &str, n: u64) -> Result<()> {
    let (replica, _events) = ReplicaClient::start(config(remote, db))
        .await
        .context("start the replica")?;
    let snap = replica.wait_synced().await.context("initial sync")?;
    let rows = snap.table(LSP).map_or(0, |t| t.len());
    if let Ok(path) = env::var("BENCH_RESULT_FILE") {
        std::fs::write(&path, format!("{{\"rows\": {rows}}}")).context("BENCH_RESULT_FILE")?;
    }
    if rows as u64 != n {
        bail!("synced {rows} ports, expected {n}");
    }
    Ok(())
}

/// Monitors the ports, signals ready, and waits until all of them carry generation `gen`.
pub async fn w4(remote: &str, db: &str, n: u64, gen_value: &str) -> Result<()> {
    let (replica, _events) = ReplicaClient::start(config(remote, db))
        .await
        .context("start the replica")?;
    let mut changes = replica.changes();
    let snap = replica.wait_synced().await.context("initial sync")?;
    let key = Atom::from("gen");
    let want = Atom::from(gen_value);
    let at_gen = |d: Option<&Datum>| {
        d.and_then(Datum::as_map)
            .and_then(|m| m.get(&key))
            .is_some_and(|v| *v == want)
    };
    let mut done: HashSet<Uuid> = HashSet::with_capacity(n as usize);
    if let Some(t) = snap.table(LSP) {
        done.extend(
            t.rows()
                .filter(|r| at_gen(r.get("external_ids")))
                .map(|r| r.uuid()),
        );
    }
    let ready = env::var("BENCH_READY_FILE").context("BENCH_READY_FILE is not set")?;
    std::fs::write(&ready, b"").context("create BENCH_READY_FILE")?;
    while (done.len() as u64) < n {
        let (set, snap) = changes.next().await.context("the replica client stopped")?;
        let (Some(ch), Some(t)) = (set.table(LSP), snap.table(LSP)) else {
            continue;
        };
        for uuid in ch.modified.iter().chain(&ch.inserted) {
            if t.get(*uuid).is_some_and(|r| at_gen(r.get("external_ids"))) {
                done.insert(*uuid);
            }
        }
    }
    Ok(())
}
