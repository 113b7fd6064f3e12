//! Shared set-up of the client tests: a lab with one NB `ovsdb-server`, and a connection.

#![allow(dead_code)]

use ovn_testbed::{Lab, OvsdbServer, OvsdbServerOptions, schemas};
use ovsdb::client::{Client, ConnectConfig, Updates, connect};
use serde_json::Value;

pub const NB: &str = "OVN_Northbound";

/// A lab and an NB server listening on unix and TCP; `None` when this machine has no lab
/// (and CI is not set: there it panics instead).
pub fn nb_server() -> Option<(Lab, OvsdbServer)> {
    let lab = Lab::for_test()?;
    let server = lab
        .start_ovsdb_server(OvsdbServerOptions::new(schemas::NB).with_tcp())
        .expect("start ovsdb-server");
    Some((lab, server))
}

/// Connects to `remote` and spawns the driver.
pub async fn connected(remote: &str) -> (Client, Updates, tokio::task::JoinHandle<()>) {
    let (driver, client, updates) = connect(&ConnectConfig::new(remote))
        .await
        .unwrap_or_else(|e| panic!("connect to {remote}: {e:?}"));
    let task = tokio::spawn(async move {
        if let Err(e) = driver.await {
            eprintln!("driver: {e}");
        }
    });
    (client, updates, task)
}

/// Runs `ovsdb-client transact` on the server's unix socket (the oracle) and returns the
/// result array.
pub fn oracle_transact(server: &OvsdbServer, txn: &Value) -> Value {
    let out = server
        .client(&["transact"], &[&txn.to_string()])
        .expect("ovsdb-client transact");
    serde_json::from_str(&out).expect("ovsdb-client prints JSON")
}

/// The names of every `Logical_Switch`, read through `ovsdb-client`.
pub fn oracle_switch_names(server: &OvsdbServer) -> Vec<String> {
    let res = oracle_transact(
        server,
        &serde_json::json!([NB, {"op": "select", "table": "Logical_Switch", "where": [], "columns": ["name"]}]),
    );
    let mut names: Vec<String> = res[0]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["name"].as_str().expect("name").to_owned())
        .collect();
    names.sort();
    names
}
