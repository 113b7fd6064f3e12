//! A replica of 20,000 ports synced from a real ovsdb-server with `monitor_cond_since` (one
//! reply of several megabytes, `_version` columns included) equals `ovsdb-client dump`, and
//! the schema index finds every port by name.
#![cfg(feature = "client")]

mod replica_common;

use ovn_testbed::{Lab, OvsdbServerOptions, schemas};
use ovsdb::Datum;
use ovsdb::monitor::MonitorMethod;
use ovsdb::replica::Replica;
use replica_common::*;

const PORTS: u32 = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_ports_match_the_dump() {
    let Some(lab) = Lab::for_test() else { return };
    let server = lab
        .start_ovsdb_server(OvsdbServerOptions::new(schemas::NB))
        .expect("start ovsdb-server");
    let conn = conn(&server.unix_remote()).await;
    populate_via(&conn.client, "ls0", "p", PORTS).await;
    let schema = conn.client.get_schema(NB).await.expect("schema");
    let mut replica = Replica::new(&schema);
    let (consumer, _) = replica.subscribe();
    subscribe(
        &conn,
        &mut replica,
        &monitor(MonitorMethod::MonitorCondSince, "big"),
    )
    .await;
    assert_matches_dump(&server, &replica, "20k sync");

    let (changes, snap) = replica.take_changes(consumer).expect("consumer");
    assert_eq!(
        changes
            .table("Logical_Switch_Port")
            .expect("ports")
            .inserted
            .len(),
        PORTS as usize
    );
    let ports = snap.table("Logical_Switch_Port").expect("table");
    for i in (1..=PORTS).step_by(997) {
        let name = format!("p{i}");
        let row = ports
            .find_one(&["name"], &[Datum::from(name.as_str())])
            .expect("schema index on name")
            .unwrap_or_else(|| panic!("{name} not found"));
        assert_eq!(
            row.get("external_ids"),
            Some(&Datum::map([("pod", name.as_str())]))
        );
    }
}
