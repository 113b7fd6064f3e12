//! The replica client and the monitor methods against a standalone NB ovsdb-server:
//! `monitor_cond_change`, `monitor_cancel` and `set_db_change_aware` on a plain connection; a
//! restart of a server holding 100k ports (the client resyncs, the replica matches the dump
//! and the offline changes are reported); a transaction in flight when the server dies fails
//! with "may or may not have committed"; giving up is an event and an error, not a panic.
#![cfg(feature = "client")]

mod client_monitor_common;
mod replica_common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use client_monitor_common::*;
use futures::StreamExt;
use ovn_testbed::{Lab, OvsdbServer, OvsdbServerOptions, schemas};
use ovsdb::client::{ReplicaClient, ReplicaClientError, ReplicaEvent};
use ovsdb::monitor::{Clause, MonitorMethod, MonitorRequest, TableMonitor};
use ovsdb::replica::Replica;
use ovsdb::{Condition, Datum, Insert, NamedUuid, Row, Transaction};
use serde_json::json;

fn nb(lab: &Lab) -> OvsdbServer {
    lab.start_ovsdb_server(OvsdbServerOptions::new(schemas::NB))
        .expect("start ovsdb-server")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cond_change_cancel_and_db_change_aware_on_a_connection() {
    let Some(lab) = Lab::for_test() else { return };
    let server = nb(&lab);
    replica_common::oracle_transact(
        &server,
        vec![
            json!({"op": "insert", "table": "Logical_Switch", "row": {"name": "a"}}),
            json!({"op": "insert", "table": "Logical_Switch", "row": {"name": "b"}}),
        ],
    );
    let mut conn = replica_common::conn(&server.unix_remote()).await;
    let client = conn.client.clone();
    client
        .set_db_change_aware(true)
        .await
        .expect("set_db_change_aware");
    let schema = client.get_schema(NB).await.expect("schema");
    let mut req = MonitorRequest::new(NB, MonitorMethod::MonitorCondSince)
        .with_id("m")
        .with_table(
            "Logical_Switch",
            TableMonitor::all()
                .with_columns(["name"])
                .with_where([Condition::eq("name", "a")]),
        );
    let mut replica = Replica::new(&schema);
    let started = client.monitor(&req, None).await.expect("monitor");
    assert_eq!(started.method, MonitorMethod::MonitorCondSince);
    replica
        .apply_reply(&req, started.result.get())
        .expect("apply reply");
    let names = |r: &Replica| -> BTreeSet<String> {
        r.snapshot()
            .table("Logical_Switch")
            .expect("table")
            .rows()
            .map(|r| {
                r.get("name")
                    .and_then(Datum::as_atom)
                    .and_then(|a| a.as_str())
                    .unwrap_or("")
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(names(&replica), BTreeSet::from(["a".to_owned()]));

    // New conditions: "b" enters, "a" leaves, as notifications.
    let change = req
        .cond_change(
            "Logical_Switch",
            vec![Clause::from(Condition::eq("name", "b"))],
        )
        .expect("cond_change");
    client
        .monitor_cond_change(&change)
        .await
        .expect("monitor_cond_change");
    let wait = async {
        while names(&replica) != BTreeSet::from(["b".to_owned()]) {
            let n = conn.updates.next().await.expect("stream");
            replica
                .apply_notification(&n.method, n.params.get())
                .expect("apply");
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .expect("b arrives, a leaves");

    // After monitor_cancel nothing more arrives for it.
    client
        .monitor_cancel(&req.id)
        .await
        .expect("monitor_cancel");
    replica_common::oracle_transact(
        &server,
        vec![
            json!({"op": "update", "table": "Logical_Switch", "where": [["name", "==", "b"]],
                    "row": {"external_ids": ["map", [["k", "v"]]]}}),
        ],
    );
    let quiet = tokio::time::timeout(Duration::from_millis(500), conn.updates.next()).await;
    assert!(quiet.is_err(), "notification after cancel: {quiet:?}");
}

/// Inserts `n` ports on switch `ls0` through the client, in one transaction.
async fn populate(remote: &str, n: u64) {
    let conn = replica_common::conn(remote).await;
    let mut txn = Transaction::with_capacity(NB, n as usize + 1);
    let mut ports = Vec::with_capacity(n as usize);
    for i in 1..=n {
        let named = NamedUuid::numbered("p", i);
        let name = format!("p{i}");
        let row = Row::new()
            .with(
                "addresses",
                Datum::set([format!("0a:00:00:00:00:01 10.0.0.{}", i % 250)]),
            )
            .with("external_ids", Datum::map([("pod", name.as_str())]))
            .with("name", name.as_str());
        txn.push(Insert::new("Logical_Switch_Port", row).uuid_name(named.clone()));
        ports.push(named);
    }
    txn.push(Insert::new(
        "Logical_Switch",
        Row::new()
            .with("name", "ls0")
            .with("ports", Datum::set(ports)),
    ));
    conn.client.transact(&txn).await.expect("populate");
}

/// `uuid -> (name, external_ids)` of every port, as `ovsdb-client dump` prints them.
fn dumped_ports(server: &OvsdbServer) -> BTreeMap<String, (String, serde_json::Value)> {
    let out = server
        .client(
            &["--format=json", "dump"],
            &[NB, "Logical_Switch_Port", "_uuid", "name", "external_ids"],
        )
        .expect("dump");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let h: Vec<&str> = v["headings"]
        .as_array()
        .expect("headings")
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    let col = |c: &str| h.iter().position(|x| *x == c).expect("column");
    let (u, nm, e) = (col("_uuid"), col("name"), col("external_ids"));
    v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|r| {
            (
                r[u][1].as_str().expect("uuid").to_owned(),
                (r[nm].as_str().expect("name").to_owned(), r[e].clone()),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_of_a_server_holding_100k_ports_resyncs() {
    let Some(lab) = Lab::for_test() else { return };
    let mut server = nb(&lab);
    let remote = server.unix_remote();
    populate(&remote, 100_000).await;
    replica_common::oracle_transact(
        &server,
        vec![json!({"op": "insert", "table": "Logical_Switch", "row": {"name": "gone"}})],
    );
    // Unoptimised test builds take seconds to decode 100k rows on a busy machine.
    // Only the columns compared below (column selection also keeps the test quick).
    let cfg = config(&remote)
        .with_setup_timeout(Duration::from_secs(120))
        .with_monitor(
            MonitorRequest::new(NB, MonitorMethod::MonitorCondSince)
                .with_id("restart")
                .with_table("Logical_Switch", TableMonitor::all().with_columns(["name"]))
                .with_table(
                    "Logical_Switch_Port",
                    TableMonitor::all().with_columns(["name", "external_ids"]),
                ),
        );
    let t = std::time::Instant::now();
    let (replica, mut events) = ReplicaClient::start(cfg).await.expect("start");
    replica.wait_synced().await.expect("synced");
    eprintln!("initial sync of 100k ports: {:?}", t.elapsed());
    assert_eq!(
        replica
            .snapshot()
            .table("Logical_Switch_Port")
            .unwrap()
            .len(),
        100_000
    );
    let mut changes = replica.changes();

    // Stop the server, change the database behind its back, start it again.
    server.stop();
    let tool = std::process::Command::new("ovsdb-tool")
        .arg("transact")
        .arg(server.db_path())
        .arg(
            json!([NB,
                {"op": "update", "table": "Logical_Switch_Port", "where": [["name", "==", "p1"]],
                 "row": {"external_ids": ["map", [["pod", "p1"], ["gen", "offline"]]]}},
                {"op": "update", "table": "Logical_Switch_Port", "where": [["name", "==", "p2"]],
                 "row": {"external_ids": ["map", [["pod", "p2"], ["gen", "offline"]]]}},
                {"op": "insert", "table": "Logical_Switch", "row": {"name": "offline"}},
                {"op": "delete", "table": "Logical_Switch", "where": [["name", "==", "gone"]]}])
            .to_string(),
        )
        .output()
        .expect("ovsdb-tool");
    assert!(tool.status.success(), "ovsdb-tool transact: {tool:?}");
    server.restart().expect("restart");

    wait_event(&mut events, Duration::from_secs(30), |e| {
        matches!(e, ReplicaEvent::Disconnected { .. })
    })
    .await;
    let synced = wait_event(&mut events, Duration::from_secs(120), |e| {
        matches!(e, ReplicaEvent::Synced { .. })
    })
    .await;
    let ReplicaEvent::Synced {
        resumed, applied, ..
    } = synced
    else {
        unreachable!()
    };
    assert!(!resumed, "a standalone server keeps no history");
    assert_eq!(
        (applied.inserted, applied.modified, applied.deleted),
        (1, 2, 1),
        "{applied:?}"
    );

    let (set, snap) = changes.try_next().expect("the difference is reported");
    let ls = set.table("Logical_Switch").expect("switch changes");
    assert_eq!((ls.inserted.len(), ls.deleted.len()), (1, 1));
    let lsp = set.table("Logical_Switch_Port").expect("port changes");
    assert_eq!(lsp.modified.len(), 2);
    assert!(lsp.inserted.is_empty() && lsp.deleted.is_empty());

    let want = dumped_ports(&server);
    let table = snap.table("Logical_Switch_Port").expect("table");
    let ext_type = &table.layout().columns[table
        .layout()
        .column_id("external_ids")
        .expect("column")
        .index()]
    .type_;
    assert_eq!(table.len(), want.len());
    for row in table.rows() {
        let (name, ext) = want.get(&row.uuid().to_string()).expect("row in the dump");
        assert_eq!(row.get("name"), Some(&Datum::from(name.as_str())));
        let ext: Datum = ovsdb::DatumSeed(ext_type).decode_value(ext).expect("map");
        assert_eq!(row.get("external_ids"), Some(&ext), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_transaction_fails_as_maybe_committed_and_giving_up_is_no_panic() {
    let Some(lab) = Lab::for_test() else { return };
    let mut server = nb(&lab);
    let cfg = config(&server.unix_remote())
        .with_max_rounds(2)
        .with_request_wait(Duration::from_secs(2));
    let (replica, mut events) = started(cfg).await;
    server.pause().expect("SIGSTOP");
    let txn = guarded_insert("in-flight");
    let pending = tokio::spawn({
        let replica = replica.clone();
        async move { replica.transact(&txn).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill().expect("kill");
    let err = pending.await.expect("task").expect_err("no reply");
    assert!(
        matches!(err, ReplicaClientError::MaybeCommitted { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("may or may not have committed"),
        "{err}"
    );

    let gave_up = wait_event(&mut events, Duration::from_secs(20), |e| {
        matches!(e, ReplicaEvent::GaveUp { .. })
    })
    .await;
    assert!(matches!(gave_up, ReplicaEvent::GaveUp { rounds: 2, .. }));
    let err = replica
        .transact(&guarded_insert("late"))
        .await
        .expect_err("gave up");
    assert!(matches!(err, ReplicaClientError::GaveUp { .. }), "{err:?}");
    assert!(!replica.is_synced());
    // The last contents stay readable.
    assert!(replica.snapshot().table("Logical_Switch").is_some());
}
