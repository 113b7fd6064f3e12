//! What users read when a request fails. Against a real NB `ovsdb-server` (the testbed): a
//! duplicate `Logical_Switch_Port` name and a dangling strong reference, sent through
//! `Client::transact`, `Client::transact_validated` and `ReplicaClient::transact`, print the
//! server's `error` and `details` once, in the top-level message, with no source repeating
//! them. Against fake servers on unix sockets of the test's own (no lab needed): a request
//! the server never answers fails at its deadline naming the method, a request on a driver
//! that was never spawned fails instead of hanging, a server dying mid-message is told as
//! such, and a replica client started on a missing socket fails within its start timeout
//! naming the socket.
#![cfg(feature = "client")]

mod client_common;

use std::error::Error;
use std::path::PathBuf;
use std::time::Duration;

use client_common::{NB, nb_server};
use ovsdb::client::{
    ClientError, ConnectConfig, DriverError, ReplicaClient, ReplicaClientError, ReplicaConfig,
    connect,
};
use ovsdb::monitor::{MonitorMethod, MonitorRequest, TableMonitor};
use ovsdb::{Condition, Datum, Insert, Mutate, Mutation, Row, Transaction, Uuid};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

fn port(name: &str, uuid: u128) -> Insert {
    Insert::new("Logical_Switch_Port", Row::new().with("name", name))
        .with_uuid(Uuid::from_u128(uuid))
}

/// `e`'s message, and the messages of its sources.
fn chain(e: &dyn Error) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        out.push(s.to_string());
        src = s.source();
    }
    out
}

fn replica_config(remote: &str) -> ReplicaConfig {
    ReplicaConfig::new(
        remote,
        MonitorRequest::new(NB, MonitorMethod::MonitorCondSince)
            .with_table("Logical_Switch_Port", TableMonitor::all()),
    )
}

const FIRST: u128 = 0x1111_1111_1111_4111_8111_1111_1111_1111;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_port_name_shows_the_server_details_once() {
    let Some((_lab, server)) = nb_server() else {
        return;
    };
    let (client, _updates, _task) = client_common::connected(&server.unix_remote()).await;
    let schema = client.get_schema(NB).await.expect("schema");
    // A port lives only while a switch refers to it.
    let first = Transaction::new(NB)
        .with(port("pod1", FIRST))
        .with(Insert::new(
            "Logical_Switch",
            Row::new()
                .with("name", "sw0")
                .with("ports", Datum::set([Uuid::from_u128(FIRST)])),
        ));
    client.transact(&first).await.expect("the first pod1");
    let (replica, _events) = ReplicaClient::start(replica_config(&server.unix_remote()))
        .await
        .expect("start");
    replica.wait_synced().await.expect("synced");

    let details = |k: u128| {
        format!(
            "transaction failed at commit: constraint violation: Transaction causes multiple rows in \"Logical_Switch_Port\" table to have identical values (pod1) for index on column \"name\".  First row, with UUID {}, was inserted by this transaction.  Second row, with UUID {}, existed in the database before this transaction and was not modified by the transaction.",
            Uuid::from_u128(FIRST + k),
            Uuid::from_u128(FIRST)
        )
    };
    let second = |k: u128| {
        Transaction::new(NB).with(port("pod1", FIRST + k)).with(
            Mutate::new("Logical_Switch")
                .filter(Condition::eq("name", "sw0"))
                .mutation(Mutation::insert(
                    "ports",
                    Datum::set([Uuid::from_u128(FIRST + k)]),
                )),
        )
    };
    let e = client.transact(&second(1)).await.unwrap_err();
    assert_eq!(chain(&e), vec![details(1)], "Client::transact");
    let e = client
        .transact_validated(&schema, &second(2))
        .await
        .unwrap_err();
    assert_eq!(chain(&e), vec![details(2)], "Client::transact_validated");
    let e = replica.transact(&second(3)).await.unwrap_err();
    assert_eq!(chain(&e), vec![details(3)], "ReplicaClient::transact");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dangling_strong_reference_shows_the_integrity_violation_once() {
    let Some((_lab, server)) = nb_server() else {
        return;
    };
    let (client, _updates, _task) = client_common::connected(&server.unix_remote()).await;
    let schema = client.get_schema(NB).await.expect("schema");
    let (replica, _events) = ReplicaClient::start(replica_config(&server.unix_remote()))
        .await
        .expect("start");
    replica.wait_synced().await.expect("synced");
    let missing = Uuid::from_u128(0xdead_beef_0000_4000_8000_0000_0000_0001);
    let switch = |k: u128| {
        Transaction::new(NB).with(
            Insert::new(
                "Logical_Switch",
                Row::new()
                    .with("name", "sw")
                    .with("ports", Datum::set([missing])),
            )
            .with_uuid(Uuid::from_u128(FIRST + k)),
        )
    };
    let text = |k: u128| {
        format!(
            "transaction failed at commit: referential integrity violation: Table Logical_Switch column ports row {} references nonexistent row {missing} in table Logical_Switch_Port.",
            Uuid::from_u128(FIRST + k)
        )
    };
    let e = client.transact(&switch(1)).await.unwrap_err();
    assert_eq!(chain(&e), vec![text(1)], "Client::transact");
    let e = client
        .transact_validated(&schema, &switch(2))
        .await
        .unwrap_err();
    assert_eq!(chain(&e), vec![text(2)], "Client::transact_validated");
    let e = replica.transact(&switch(3)).await.unwrap_err();
    assert_eq!(chain(&e), vec![text(3)], "ReplicaClient::transact");
}

/// A socket path of this test's own, removed (with its directory) when dropped.
struct Socket(PathBuf);

impl Drop for Socket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn socket(name: &str) -> Socket {
    let dir =
        std::env::temp_dir().join(format!("ovsdb-client-errors-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    Socket(path)
}

/// A server that answers `echo` and nothing else; `reply_prefix`, if given, is sent as the
/// start of a reply to the first other request, and then the connection is closed.
async fn fake_server(path: &PathBuf, reply_prefix: Option<&'static str>) {
    let listener = UnixListener::bind(path).expect("bind");
    tokio::spawn(async move {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let mut framer = ovsdb::framing::Framer::new();
        let mut buf = vec![0u8; 4096];
        loop {
            let n = match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            framer.extend(&buf[..n]);
            while let Ok(Some(frame)) = framer.next_frame() {
                let Ok(ovsdb::jsonrpc::Message::Request(req)) =
                    ovsdb::jsonrpc::Message::decode(&frame)
                else {
                    continue;
                };
                if req.method == "echo" {
                    let reply = format!(r#"{{"id":{},"result":[],"error":null}}"#, req.id);
                    let _ = sock.write_all(reply.as_bytes()).await;
                } else if let Some(prefix) = reply_prefix {
                    let _ = sock.write_all(prefix.as_bytes()).await;
                    return;
                }
            }
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_the_server_never_answers_fails_at_its_deadline_naming_the_method() {
    let sock = socket("silent.sock");
    let path = &sock.0;
    fake_server(path, None).await;
    // The probe gets answers, so only the deadline can end the wait.
    let config = ConnectConfig::new(format!("unix:{}", path.display()))
        .with_inactivity_probe(Some(Duration::from_millis(50)))
        .with_request_timeout(Some(Duration::from_millis(400)));
    assert_eq!(
        ConnectConfig::default().request_timeout(),
        Some(ovsdb::client::DEFAULT_REQUEST_TIMEOUT),
        "bounded by default"
    );
    let (driver, client, _updates) = connect(&config).await.expect("connect");
    tokio::spawn(driver);
    let e = client.list_dbs().await.unwrap_err();
    assert!(matches!(e, ClientError::TimedOut { .. }), "{e:?}");
    assert_eq!(e.to_string(), "no reply to list_dbs within 400ms");
    assert!(e.is_ambiguous());
    // The connection is still usable.
    assert_eq!(
        client.echo(vec![]).await.expect("echo"),
        Vec::<serde_json::Value>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_on_a_driver_never_spawned_fails_instead_of_hanging() {
    let sock = socket("unspawned.sock");
    let path = &sock.0;
    fake_server(path, None).await;
    let config = ConnectConfig::new(format!("unix:{}", path.display())).with_request_timeout(None);
    let (driver, client, _updates) = connect(&config).await.expect("connect");
    let e = client.list_dbs().await.unwrap_err();
    assert!(matches!(e, ClientError::NotSpawned { .. }), "{e:?}");
    assert!(e.to_string().contains("spawn it with tokio::spawn"), "{e}");
    // Dropped without running: requests fail at once.
    drop(driver);
    let e = client.list_dbs().await.unwrap_err();
    assert!(matches!(e, ClientError::NotRunning), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_dying_mid_message_is_told_as_such_to_every_request() {
    let sock = socket("dying.sock");
    let path = &sock.0;
    fake_server(path, Some(r#"{"id":0,"result":["OVN_Nor"#)).await;
    let remote = format!("unix:{}", path.display());
    let (driver, client, _updates) = connect(&ConnectConfig::new(&remote))
        .await
        .expect("connect");
    let task = tokio::spawn(driver);
    let e = client.list_dbs().await.unwrap_err();
    let closed = format!("{remote} closed the connection in the middle of a message");
    assert_eq!(
        chain(&e),
        vec![
            "the connection ended before the reply".to_owned(),
            closed.clone()
        ]
    );
    let ended = task.await.expect("driver task").unwrap_err();
    assert!(
        matches!(
            &*ended,
            DriverError::Closed {
                mid_message: true,
                ..
            }
        ),
        "{ended:?}"
    );
    // Later requests get the same typed cause.
    let e = client.list_dbs().await.unwrap_err();
    assert_eq!(e.source().map(ToString::to_string), Some(closed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_client_started_on_a_missing_socket_fails_naming_it() {
    assert!(
        replica_config("unix:/x").start_timeout().is_some(),
        "start is bounded by default"
    );
    let sock = socket("nobody.sock");
    let path = &sock.0;
    let remote = format!("unix:{}", path.display());
    let config = replica_config(&remote).with_start_timeout(Some(Duration::from_millis(500)));
    let e = ReplicaClient::start(config).await.unwrap_err();
    assert!(
        matches!(e, ReplicaClientError::StartTimedOut { .. }),
        "{e:?}"
    );
    let text = chain(&e);
    assert_eq!(
        text[0],
        "no remote returned the schema of OVN_Northbound within 500ms"
    );
    assert_eq!(text[1], format!("connecting to {remote} failed"));
    assert!(text[2].contains("No such file or directory"), "{text:?}");
}
