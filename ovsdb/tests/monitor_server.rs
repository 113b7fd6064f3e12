//! Monitor requests against a real NB ovsdb-server: conditions, `monitor_cond_change` moving
//! rows in and out of the replica, column selection, and `monitor_cancel`.
#![cfg(feature = "client")]

mod replica_common;

use std::time::Duration;

use futures::StreamExt;
use ovn_testbed::{Lab, OvsdbServerOptions, schemas};
use ovsdb::client::ClientError;
use ovsdb::monitor::{Clause, MonitorMethod, MonitorRequest, TableMonitor};
use ovsdb::replica::Replica;
use ovsdb::{Condition, Datum};
use replica_common::*;

fn names(r: &Replica) -> Vec<String> {
    let snap = r.snapshot();
    let mut v: Vec<String> = snap
        .table("Logical_Switch_Port")
        .expect("table")
        .rows()
        .filter_map(|row| {
            row.get("name")
                .and_then(Datum::as_atom)
                .and_then(|a| a.as_str())
                .map(str::to_owned)
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_cond_change_columns_and_cancel() {
    let Some(lab) = Lab::for_test() else { return };
    let server = lab
        .start_ovsdb_server(OvsdbServerOptions::new(schemas::NB))
        .expect("start ovsdb-server");
    populate(&server, "ls0", "p", 20);
    let mut conn = conn(&server.unix_remote()).await;
    let schema = conn.client.get_schema(NB).await.expect("schema");

    let mut m = MonitorRequest::new(NB, MonitorMethod::MonitorCond)
        .with_id("c")
        .with_table(
            "Logical_Switch_Port",
            TableMonitor::all()
                .with_columns(["name", "external_ids"])
                .with_where([Condition::eq("name", "p1"), Condition::eq("name", "p2")]),
        );
    m.validate(&schema).expect("valid monitor");
    let mut replica = Replica::new(&schema);
    subscribe(&conn, &mut replica, &m).await;
    assert_eq!(names(&replica), ["p1", "p2"]);
    // Only the chosen columns arrived: the address stays at its default.
    let snap = replica.snapshot();
    let p1 = snap
        .table("Logical_Switch_Port")
        .unwrap()
        .find_one(&["name"], &[Datum::from("p1")])
        .unwrap()
        .expect("p1");
    assert_eq!(p1.get("addresses"), Some(&Datum::empty_set()));
    assert_eq!(p1.get("external_ids"), Some(&Datum::map([("pod", "p1")])));

    // Move the condition: p2 leaves, p3 and p4 come in.
    let change = m
        .cond_change(
            "Logical_Switch_Port",
            vec![
                Clause::from(Condition::eq("name", "p1")),
                Condition::eq("name", "p3").into(),
                Condition::eq("name", "p4").into(),
            ],
        )
        .expect("table is monitored");
    conn.client
        .request("monitor_cond_change", &change)
        .await
        .expect("monitor_cond_change");
    let wait = async {
        while names(&replica) != ["p1", "p3", "p4"] {
            let n = conn
                .updates
                .next()
                .await
                .expect("notification stream ended");
            assert_eq!(n.method, "update2");
            replica
                .apply_notification(&n.method, n.params.get())
                .expect("update2 applies");
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .expect("the condition change never showed");

    // Cancel: the server forgets the monitor, so a second cancel is an error.
    conn.client
        .request("monitor_cancel", &m.cancel_params())
        .await
        .expect("monitor_cancel");
    let err = conn
        .client
        .request("monitor_cancel", &m.cancel_params())
        .await
        .expect_err("second cancel");
    assert!(matches!(err, ClientError::Server { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn false_condition_sends_nothing_and_select_skips_initial() {
    let Some(lab) = Lab::for_test() else { return };
    let server = lab
        .start_ovsdb_server(OvsdbServerOptions::new(schemas::NB))
        .expect("start ovsdb-server");
    populate(&server, "ls0", "p", 5);
    let conn = conn(&server.unix_remote()).await;
    let schema = conn.client.get_schema(NB).await.expect("schema");

    let m = MonitorRequest::new(NB, MonitorMethod::MonitorCondSince)
        .with_table(
            "Logical_Switch_Port",
            TableMonitor::all().with_where([false]),
        )
        .with_table(
            "Logical_Switch",
            TableMonitor::all().with_select(ovsdb::monitor::MonitorSelect {
                initial: false,
                ..Default::default()
            }),
        );
    let mut replica = Replica::new(&schema);
    subscribe(&conn, &mut replica, &m).await;
    assert!(replica.is_synced());
    let snap = replica.snapshot();
    assert!(snap.table("Logical_Switch_Port").unwrap().is_empty());
    assert!(snap.table("Logical_Switch").unwrap().is_empty());
}
