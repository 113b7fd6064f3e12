//! The replica against a real NB ovsdb-server: `monitor`, `monitor_cond` and
//! `monitor_cond_since` on one connection feed three replicas, which must equal
//! `ovsdb-client dump` after inserts, map and set changes and deletes; a full resync after a
//! reconnect reports exactly the difference; on a Raft cluster `monitor_cond_since` resumes.
#![cfg(feature = "client")]

mod replica_common;

use std::collections::{BTreeMap, BTreeSet};

use ovn_testbed::{Lab, OvsdbServerOptions, schemas};
use ovsdb::monitor::MonitorMethod;
use ovsdb::replica::Replica;
use ovsdb::{Row, Uuid};
use replica_common::*;
use serde_json::json;

/// Changes of every kind: a map key added and a value changed, a set grown, an optional
/// column set, ports deleted (and removed from the switch), ports inserted.
fn churn(server: &ovn_testbed::OvsdbServer, round: u32) {
    let w = |name: &str| json!([["name", "==", name]]);
    let mut ops = vec![
        json!({"op": "update", "table": "Logical_Switch_Port", "where": w("p1"),
               "row": {"external_ids": ["map", [["pod", "p1"], ["gen", round.to_string()]]]}}),
        json!({"op": "mutate", "table": "Logical_Switch_Port", "where": w("p2"),
               "mutations": [["addresses", "insert", ["set", [format!("dynamic{round}")]]]]}),
        json!({"op": "update", "table": "Logical_Switch_Port", "where": w("p3"),
               "row": {"enabled": round.is_multiple_of(2), "options": ["map", [["requested-chassis", format!("n{round}")]]]}}),
        json!({"op": "update", "table": "Logical_Switch_Port", "where": w("p5"),
               "row": {"tag_request": round, "type": "localnet"}}),
    ];
    // Ports are not root rows: dropping one from the switch deletes it.
    let dead = format!("p{}", 10 + round);
    let sel = oracle_transact(
        server,
        vec![
            json!({"op": "select", "table": "Logical_Switch_Port", "where": w(&dead), "columns": ["_uuid"]}),
        ],
    );
    let dead_uuid = sel[0]["rows"][0]["_uuid"].clone();
    ops.push(
        json!({"op": "mutate", "table": "Logical_Switch", "where": w("ls0"),
                    "mutations": [["ports", "delete", ["set", [dead_uuid]]]]}),
    );
    ops.push(
        json!({"op": "insert", "table": "Logical_Switch_Port", "uuid-name": "n",
                    "row": port_row("new", round)}),
    );
    ops.push(
        json!({"op": "mutate", "table": "Logical_Switch", "where": w("ls0"),
                    "mutations": [["ports", "insert", ["set", [["named-uuid", "n"]]]]]}),
    );
    oracle_transact(server, ops);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_monitor_methods_match_the_dump() {
    let Some(lab) = Lab::for_test() else { return };
    let server = lab
        .start_ovsdb_server(OvsdbServerOptions::new(schemas::NB))
        .expect("start ovsdb-server");
    populate(&server, "ls0", "p", 300);

    let mut conn = conn(&server.unix_remote()).await;
    let schema = conn.client.get_schema(NB).await.expect("schema");
    let mut r1 = Replica::new(&schema);
    let mut r2 = Replica::new(&schema);
    let mut r3 = Replica::new(&schema);
    subscribe(&conn, &mut r1, &monitor(MonitorMethod::Monitor, "m1")).await;
    subscribe(&conn, &mut r2, &monitor(MonitorMethod::MonitorCond, "m2")).await;
    subscribe(
        &conn,
        &mut r3,
        &monitor(MonitorMethod::MonitorCondSince, "m3"),
    )
    .await;
    for r in [&r1, &r2, &r3] {
        assert!(r.is_synced());
        assert_eq!(
            r.snapshot().table("Logical_Switch_Port").unwrap().len(),
            300
        );
    }
    assert!(r3.last_txn_id().is_some());
    assert_matches_dump(&server, &r3, "initial");

    for round in 1..=3 {
        churn(&server, round);
    }
    settle(
        &server,
        &mut conn,
        &mut [
            ("update", &mut r1),
            ("update2", &mut r2),
            ("update3", &mut r3),
        ],
        "marker1",
    )
    .await;
    assert_matches_dump(&server, &r1, "monitor (update)");
    assert_matches_dump(&server, &r2, "monitor_cond (update2)");
    assert_matches_dump(&server, &r3, "monitor_cond_since (update3)");
}

fn diff(
    before: &BTreeMap<Uuid, Row>,
    after: &BTreeMap<Uuid, Row>,
) -> (BTreeSet<Uuid>, BTreeSet<Uuid>, BTreeSet<Uuid>) {
    let ins = after
        .keys()
        .filter(|u| !before.contains_key(u))
        .copied()
        .collect();
    let del = before
        .keys()
        .filter(|u| !after.contains_key(u))
        .copied()
        .collect();
    let modi = after
        .iter()
        .filter(|(u, r)| before.get(u).is_some_and(|b| b != *r))
        .map(|(u, _)| *u)
        .collect();
    (ins, modi, del)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_resync_after_reconnect_reports_the_difference() {
    let Some(lab) = Lab::for_test() else { return };
    let server = lab
        .start_ovsdb_server(OvsdbServerOptions::new(schemas::NB))
        .expect("start ovsdb-server");
    populate(&server, "ls0", "p", 100);

    let schema;
    let mut replica;
    let m = monitor(MonitorMethod::MonitorCond, "m");
    {
        let c = conn(&server.unix_remote()).await;
        schema = c.client.get_schema(NB).await.expect("schema");
        replica = Replica::new(&schema);
        subscribe(&c, &mut replica, &m).await;
    }
    // Disconnected: the world moves on.
    replica.mark_unsynced();
    let (consumer, _) = replica.subscribe();
    let before = dump(&server, replica.layout(), "Logical_Switch_Port");
    churn(&server, 1);
    churn(&server, 2);
    let after = dump(&server, replica.layout(), "Logical_Switch_Port");

    let c = conn(&server.unix_remote()).await;
    subscribe(&c, &mut replica, &m).await;
    assert!(replica.is_synced());
    assert_matches_dump(&server, &replica, "after resync");
    let (changes, _) = replica.take_changes(consumer).expect("consumer");
    let t = changes.table("Logical_Switch_Port").expect("port changes");
    let (ins, modi, del) = diff(&before, &after);
    assert_eq!(t.inserted.iter().copied().collect::<BTreeSet<_>>(), ins);
    assert_eq!(t.modified.iter().copied().collect::<BTreeSet<_>>(), modi);
    assert_eq!(t.deleted.iter().copied().collect::<BTreeSet<_>>(), del);
    assert_eq!(
        (ins.len(), modi.len(), del.len()),
        (2, 4, 2),
        "churn x2 shape"
    );
    // ls0 gained and lost ports.
    assert_eq!(
        changes
            .table("Logical_Switch")
            .expect("switch")
            .modified
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_cond_since_resumes_on_a_raft_cluster() {
    let Some(lab) = Lab::for_test() else { return };
    let cluster = lab.start_nb_cluster(3).expect("start cluster");
    let leader = cluster
        .wait_leader(std::time::Duration::from_secs(10))
        .expect("leader");
    let server = cluster.member(leader).expect("leader").server();
    populate(server, "ls0", "p", 50);
    // ovsdb-server keeps no more history than the database holds atoms, dropping the oldest
    // transactions first: the big populating one goes as soon as more follow. Make the last
    // transaction before subscribing a small one, so that it stays in the history.
    oracle_transact(
        server,
        vec![json!({"op": "insert", "table": "Logical_Switch", "row": {"name": "small"}})],
    );

    let m = monitor(MonitorMethod::MonitorCondSince, "m");
    let mut replica;
    {
        let c = conn(&server.unix_remote()).await;
        let schema = c.client.get_schema(NB).await.expect("schema");
        replica = Replica::new(&schema);
        subscribe(&c, &mut replica, &m).await;
    }
    let first_id = replica
        .last_txn_id()
        .expect("a clustered server sends a txn id");
    replica.mark_unsynced();
    let (consumer, _) = replica.subscribe();
    let before = dump(server, replica.layout(), "Logical_Switch_Port");
    churn(server, 1);
    let after = dump(server, replica.layout(), "Logical_Switch_Port");

    let c = conn(&server.unix_remote()).await;
    let raw = subscribe(&c, &mut replica, &m).await;
    let reply: serde_json::Value = serde_json::from_str(&raw).expect("reply JSON");
    assert_eq!(
        reply[0],
        json!(true),
        "the server knew the last txn id: {reply}"
    );
    assert_ne!(replica.last_txn_id(), Some(first_id));
    assert_matches_dump(server, &replica, "after resume");
    let (changes, _) = replica.take_changes(consumer).expect("consumer");
    let t = changes.table("Logical_Switch_Port").expect("port changes");
    let (ins, modi, del) = diff(&before, &after);
    assert_eq!(t.inserted.iter().copied().collect::<BTreeSet<_>>(), ins);
    assert_eq!(t.modified.iter().copied().collect::<BTreeSet<_>>(), modi);
    assert_eq!(t.deleted.iter().copied().collect::<BTreeSet<_>>(), del);
}
