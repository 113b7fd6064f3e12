//! Shared pieces of the replica tests against a real ovsdb-server: the oracle (`ovsdb-client
//! transact` and `dump`), monitors on a live connection, and waiting for a marker row.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use ovn_testbed::OvsdbServer;
use ovsdb::client::{Client, ConnectConfig, Updates, connect};
use ovsdb::monitor::{Layout, MonitorMethod, MonitorRequest, TableMonitor};
use ovsdb::replica::Replica;
use ovsdb::{Datum, DatumSeed, Row, Uuid};
use serde_json::{Value, json};

pub const NB: &str = "OVN_Northbound";
pub const TABLES: [&str; 2] = ["Logical_Switch", "Logical_Switch_Port"];

/// Runs a transaction through `ovsdb-client transact` and checks that no operation failed.
pub fn oracle_transact(server: &OvsdbServer, ops: Vec<Value>) -> Value {
    let mut txn = vec![json!(NB)];
    txn.extend(ops);
    let out = server
        .client(&["transact"], &[&Value::Array(txn).to_string()])
        .expect("ovsdb-client transact");
    let v: Value = serde_json::from_str(&out).expect("ovsdb-client prints JSON");
    for r in v.as_array().expect("result array") {
        assert!(r.get("error").is_none(), "transaction failed: {v}");
    }
    v
}

/// Port `i` as the bench harness writes it.
pub fn port_row(prefix: &str, i: u32) -> Value {
    let name = format!("{prefix}{i}");
    let addr = format!(
        "0a:00:00:{:02x}:{:02x}:{:02x} 10.{}.{}.{}",
        (i >> 16) & 255,
        (i >> 8) & 255,
        i & 255,
        16 + (i >> 16),
        (i >> 8) & 255,
        i & 255
    );
    json!({"name": name, "addresses": addr, "external_ids": ["map", [["pod", name]]]})
}

/// The operations creating switch `ls` with ports `prefix`1..=n.
pub fn populate_ops(ls: &str, prefix: &str, n: u32) -> Vec<Value> {
    let mut ops: Vec<Value> = (1..=n)
        .map(|i| json!({"op": "insert", "table": "Logical_Switch_Port", "row": port_row(prefix, i), "uuid-name": format!("p{i}")}))
        .collect();
    let ports: Vec<Value> = (1..=n)
        .map(|i| json!(["named-uuid", format!("p{i}")]))
        .collect();
    ops.push(json!({"op": "insert", "table": "Logical_Switch", "row": {"name": ls, "ports": ["set", ports]}}));
    ops
}

/// Creates switch `ls` with ports `prefix`1..=n in one transaction sent over `client` (for
/// transactions too big for a command line).
pub async fn populate_via(client: &Client, ls: &str, prefix: &str, n: u32) {
    let mut txn = vec![json!(NB)];
    txn.extend(populate_ops(ls, prefix, n));
    let raw = client
        .request("transact", &Value::Array(txn))
        .await
        .expect("transact");
    let v: Value = serde_json::from_str(raw.get()).expect("result JSON");
    for r in v.as_array().expect("result array") {
        assert!(r.get("error").is_none(), "transaction failed: {r}");
    }
}

/// Creates switch `ls` with ports `prefix`1..=n in one transaction.
pub fn populate(server: &OvsdbServer, ls: &str, prefix: &str, n: u32) {
    oracle_transact(server, populate_ops(ls, prefix, n));
}

/// Every row of `table` as `ovsdb-client dump` prints it, with all columns and `_uuid`.
pub fn dump(server: &OvsdbServer, layout: &Layout, table: &str) -> BTreeMap<Uuid, Row> {
    let out = server
        .client(&["--format=json", "dump"], &[NB, table])
        .expect("ovsdb-client dump");
    let (_, tl) = layout.table(table).expect("table in layout");
    let uuid_type = ovsdb::ColumnType::scalar(ovsdb::BaseType::new(ovsdb::AtomicType::Uuid));
    let mut rows = BTreeMap::new();
    for v in serde_json::Deserializer::from_str(&out).into_iter::<Value>() {
        let v = v.expect("dump prints JSON");
        let headings: Vec<&str> = v["headings"]
            .as_array()
            .expect("headings")
            .iter()
            .map(|h| h.as_str().expect("heading"))
            .collect();
        for data in v["data"].as_array().expect("data") {
            let mut row = Row::new();
            for (h, cell) in headings.iter().zip(data.as_array().expect("row")) {
                if *h == "_version" {
                    continue;
                }
                let ty = match tl.column_id(h) {
                    Some(c) => &tl.columns[c.index()].type_,
                    None => &uuid_type,
                };
                let d: Datum = DatumSeed(ty).decode_value(cell).expect("dump value fits");
                row.insert(*h, d);
            }
            rows.insert(row.uuid().expect("_uuid"), row);
        }
    }
    rows
}

/// A connection with its driver running.
pub struct Conn {
    pub client: Client,
    pub updates: Updates,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn conn(remote: &str) -> Conn {
    let (driver, client, updates) = connect(&ConnectConfig::new(remote))
        .await
        .unwrap_or_else(|e| panic!("connect to {remote}: {e:?}"));
    let task = tokio::spawn(async move {
        let _ = driver.await;
    });
    Conn {
        client,
        updates,
        task,
    }
}

/// A monitor of [`TABLES`] (every column) with `method` and id `id`.
pub fn monitor(method: MonitorMethod, id: &str) -> MonitorRequest {
    TABLES
        .iter()
        .fold(MonitorRequest::new(NB, method).with_id(id), |m, t| {
            m.with_table(*t, TableMonitor::all())
        })
}

/// Sends `monitor` and applies its reply to `replica`; returns the raw reply.
pub async fn subscribe(conn: &Conn, replica: &mut Replica, monitor: &MonitorRequest) -> String {
    let raw = conn
        .client
        .request(
            monitor.method.as_str(),
            &monitor.params(replica.last_txn_id()),
        )
        .await
        .unwrap_or_else(|e| panic!("{}: {e:?}", monitor.method.as_str()));
    replica
        .apply_reply(monitor, raw.get())
        .unwrap_or_else(|e| panic!("apply {} reply: {e}", monitor.method.as_str()));
    raw.get().to_owned()
}

/// Writes a marker switch through the oracle, then applies notifications (each to the
/// replica whose method matches) until every replica holds it: everything written before the
/// marker has then arrived too.
pub async fn settle(
    server: &OvsdbServer,
    conn: &mut Conn,
    replicas: &mut [(&str, &mut Replica)],
    marker: &str,
) {
    oracle_transact(
        server,
        vec![json!({"op": "insert", "table": "Logical_Switch", "row": {"name": marker}})],
    );
    let has_marker = |r: &Replica| {
        r.snapshot()
            .table("Logical_Switch")
            .expect("table")
            .rows()
            .any(|row| row.get("name") == Some(&Datum::from(marker)))
    };
    let wait = async {
        while !replicas.iter().all(|(_, r)| has_marker(r)) {
            let n = conn
                .updates
                .next()
                .await
                .expect("notification stream ended");
            for (method, r) in replicas.iter_mut() {
                if n.method == *method {
                    r.apply_notification(&n.method, n.params.get())
                        .unwrap_or_else(|e| panic!("apply {}: {e}", n.method));
                }
            }
        }
    };
    // A deadline so that a lost notification fails the test instead of hanging it.
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .expect("marker never arrived");
}

/// Asserts that `replica` equals the dump of every table in [`TABLES`].
pub fn assert_matches_dump(server: &OvsdbServer, replica: &Replica, what: &str) {
    let snap = replica.snapshot();
    for t in TABLES {
        let want = dump(server, replica.layout(), t);
        let got = snap.table(t).expect("table").to_rows();
        assert_eq!(got.len(), want.len(), "{what}: {t} row count");
        for (u, row) in &want {
            assert_eq!(got.get(u), Some(row), "{what}: {t} row {u}");
        }
    }
}
