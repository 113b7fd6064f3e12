//! The client's methods against a real NB `ovsdb-server`, over unix and TCP.
#![cfg(feature = "client")]

mod client_common;

use client_common::{NB, connected, nb_server, oracle_switch_names, oracle_transact};
use futures::{FutureExt, StreamExt};
use ovsdb::client::{ClientError, ConnectConfig, ConnectError, connect};
use ovsdb::{Condition, Insert, NamedUuid, Row, Select, Transaction};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_dbs_get_schema_echo_and_server_id_over_unix_and_tcp() {
    let Some((_lab, server)) = nb_server() else {
        return;
    };
    let tcp = server.tcp_remote().expect("tcp remote");
    let mut ids = Vec::new();
    for remote in [server.unix_remote(), tcp] {
        let (client, _updates, _task) = connected(&remote).await;
        let dbs = client.list_dbs().await.expect("list_dbs");
        assert!(dbs.contains(&NB.to_owned()), "{remote}: {dbs:?}");
        assert!(dbs.contains(&"_Server".to_owned()), "{remote}: {dbs:?}");

        let schema = client.get_schema(NB).await.expect("get_schema");
        assert_eq!(schema.name, NB);
        assert!(schema.table("Logical_Switch_Port").is_some());
        assert_eq!(
            schema.tables.len(),
            30,
            "OVN_Northbound 7.0.0 has 30 tables"
        );

        let payload = vec![json!("x{\"}"), json!(1), json!({"é": [true, null]})];
        assert_eq!(client.echo(payload.clone()).await.expect("echo"), payload);

        ids.push(client.get_server_id().await.expect("get_server_id"));
    }
    assert_eq!(ids[0], ids[1], "one server, one id, whatever the transport");
    assert_ne!(ids[0], ovsdb::Uuid::NIL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_database_is_a_server_error() {
    let Some((_lab, server)) = nb_server() else {
        return;
    };
    let (client, _updates, _task) = connected(&server.unix_remote()).await;
    let err = client.get_schema("Nope").await.unwrap_err();
    let ClientError::Server { method, error } = &err else {
        panic!("expected a server error, got {err:?}");
    };
    assert_eq!(method, "get_schema");
    assert_eq!(error.error(), Some("unknown database"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_transact_writes_what_the_oracle_reads_and_reads_what_it_wrote() {
    let Some((_lab, server)) = nb_server() else {
        return;
    };
    let (client, _updates, _task) = connected(&server.tcp_remote().expect("tcp")).await;
    let schema = client.get_schema(NB).await.expect("schema");

    let mut txn = Transaction::new(NB);
    let ls = NamedUuid::new("ls").expect("valid name");
    let inserted = txn.push(
        Insert::new(
            "Logical_Switch",
            Row::new().with("name", "sw-ovnkit").with(
                "external_ids",
                ovsdb::Datum::map([("owner", "ovnkit"), ("quote", "a\"{b}")]),
            ),
        )
        .uuid_name(ls),
    );
    let outcome = client
        .transact_validated(&schema, &txn)
        .await
        .expect("transact");
    let uuid = outcome.uuid(&inserted).expect("insert result");

    // Written by ovnkit, read by ovsdb-client.
    let res = oracle_transact(
        &server,
        &json!([NB, {"op": "select", "table": "Logical_Switch",
                     "where": [["name", "==", "sw-ovnkit"]], "columns": ["_uuid", "external_ids"]}]),
    );
    let row = &res[0]["rows"][0];
    assert_eq!(row["_uuid"], json!(["uuid", uuid.to_string()]));
    assert_eq!(
        row["external_ids"],
        json!(["map", [["owner", "ovnkit"], ["quote", "a\"{b}"]]])
    );

    // Written by ovsdb-client, read by ovnkit.
    oracle_transact(
        &server,
        &json!([NB, {"op": "insert", "table": "Logical_Switch", "row": {"name": "sw-oracle"}}]),
    );
    let mut read = Transaction::new(NB);
    let sel = read.push(
        Select::new("Logical_Switch")
            .filter(Condition::eq("name", "sw-oracle"))
            .columns(["name"]),
    );
    let outcome = client.transact(&read).await.expect("select");
    let rows = outcome.rows(&sel).expect("select result");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].atom("name").and_then(|a| a.as_str()),
        Some("sw-oracle")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_operation_is_a_typed_transact_error() {
    let Some((_lab, server)) = nb_server() else {
        return;
    };
    let (client, _updates, _task) = connected(&server.unix_remote()).await;
    let txn = Transaction::new(NB).with(Insert::new(
        "Logical_Switch",
        Row::new().with("no_such_column", 1),
    ));
    let err = client.transact(&txn).await.unwrap_err();
    let ClientError::Transact(err) = &err else {
        panic!("expected a transact error, got {err:?}");
    };
    let server_err = err.server_error().expect("the server's error is kept");
    assert!(
        server_err.to_string().contains("no_such_column"),
        "{server_err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_pipelined_transactions_on_one_connection() {
    let Some((_lab, server)) = nb_server() else {
        return;
    };
    let (client, _updates, _task) = connected(&server.unix_remote()).await;
    let calls = (0..1000).map(|i| {
        let client = client.clone();
        async move {
            let mut txn = Transaction::new(NB);
            let h = txn.push(Insert::new(
                "Logical_Switch",
                Row::new().with("name", format!("ls{i}")),
            ));
            let outcome = client.transact(&txn).await.expect("transact");
            outcome.uuid(&h).expect("uuid")
        }
    });
    let uuids = futures::future::join_all(calls).await;
    let distinct: std::collections::HashSet<_> = uuids.iter().collect();
    assert_eq!(distinct.len(), 1000);
    let names = oracle_switch_names(&server);
    assert_eq!(names.len(), 1000);
    assert!(names.contains(&"ls999".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_for_own_write_is_on_the_stream_before_the_reply_resolves() {
    let Some((_lab, server)) = nb_server() else {
        return;
    };
    let (client, mut updates, _task) = connected(&server.unix_remote()).await;
    let initial = client
        .request(
            "monitor_cond",
            &json!([NB, "mon", {"Logical_Switch": [{"columns": ["name"]}]}]),
        )
        .await
        .expect("monitor_cond");
    assert_eq!(initial.get(), "{}", "empty database: no initial rows");

    let txn = Transaction::new(NB).with(Insert::new(
        "Logical_Switch",
        Row::new().with("name", "watched"),
    ));
    client.transact(&txn).await.expect("transact");
    let update = updates
        .next()
        .now_or_never()
        .expect("the update2 was delivered before the transact reply")
        .expect("stream open");
    assert_eq!(update.method, "update2");
    assert!(
        update.params.get().contains("\"watched\""),
        "{}",
        update.params.get()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_list_is_tried_in_order_and_failures_name_each_remote() {
    let Some((lab, server)) = nb_server() else {
        return;
    };
    let dead = format!("unix:{}/nobody.sock", lab.dir().display());
    let list = format!("{dead},{}", server.unix_remote());
    let (client, _updates, _task) = connected(&list).await;
    assert_eq!(client.remote().to_string(), server.unix_remote());
    client
        .list_dbs()
        .await
        .expect("list_dbs over the second remote");

    let err = connect(&ConnectConfig::new(format!("{dead},tcp:127.0.0.1:1")))
        .await
        .map(|_| ())
        .unwrap_err();
    let ConnectError::AllFailed(errors) = &err else {
        panic!("expected every remote to fail, got {err:?}");
    };
    assert_eq!(errors.len(), 2);
    let text = err.to_string();
    assert!(
        text.contains(&dead) && text.contains("tcp:127.0.0.1:1"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_going_away_fails_requests_and_ends_the_driver() {
    let Some((_lab, mut server)) = nb_server() else {
        return;
    };
    let (driver, client, mut updates) = connect(&ConnectConfig::new(server.unix_remote()))
        .await
        .expect("connect");
    let task = tokio::spawn(driver);
    client.list_dbs().await.expect("list_dbs");
    server.kill().expect("kill the server");
    let result = task.await.expect("driver task");
    assert!(result.is_err(), "the driver reports the lost connection");
    let err = client.list_dbs().await.unwrap_err();
    assert!(matches!(err, ClientError::Disconnected { .. }), "{err:?}");
    assert!(updates.next().await.is_none(), "the update stream ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_blocked_request_cancels_it_and_the_connection_goes_on() {
    let Some((_lab, server)) = nb_server() else {
        return;
    };
    let (client, _updates, _task) = connected(&server.unix_remote()).await;
    // A wait that cannot be satisfied blocks on the server for its whole timeout.
    let blocked = json!([NB, {"op": "wait", "table": "Logical_Switch", "where": [],
                              "columns": ["name"], "until": "==", "rows": [{"name": "never"}],
                              "timeout": 600000}]);
    let waiting = client.transact_raw(&blocked);
    let outcome = tokio::time::timeout(std::time::Duration::from_millis(200), waiting).await;
    assert!(outcome.is_err(), "the wait is still blocked");
    // The cancel went out; later requests are answered as usual.
    assert!(
        client
            .list_dbs()
            .await
            .expect("list_dbs")
            .contains(&NB.to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_remotes_are_refused_before_connecting() {
    for bad in ["", "tcp:localhost:6641", "pssl:6640", "unix:"] {
        let err = connect(&ConnectConfig::new(bad))
            .await
            .map(|_| ())
            .unwrap_err();
        assert!(
            matches!(err, ConnectError::InvalidRemote { .. }),
            "{bad}: {err:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_server_is_detected_by_the_inactivity_probe() {
    let Some((_lab, server)) = nb_server() else {
        return;
    };
    let config = ConnectConfig::new(server.unix_remote())
        .with_inactivity_probe(Some(std::time::Duration::from_millis(100)));
    let (driver, client, _updates) = connect(&config).await.expect("connect");
    let task = tokio::spawn(driver);
    client.list_dbs().await.expect("list_dbs");
    server.pause().expect("SIGSTOP the server");
    let result = task.await.expect("driver task");
    server.resume().expect("SIGCONT the server");
    let err = result.expect_err("the driver gives up on a silent server");
    assert!(
        matches!(
            &*err,
            ovsdb::client::DriverError::Protocol {
                source: ovsdb::session::SessionError::InactivityTimeout(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(client.is_closed());
}
