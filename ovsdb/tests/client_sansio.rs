//! The sans-IO session driven by hand over a blocking unix socket against a real
//! `ovsdb-server`: no tokio, no driver, just bytes in and out.
#![cfg(feature = "client")]

mod client_common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use client_common::{NB, nb_server};
use ovsdb::session::{Event, Session, SessionConfig};
use serde_json::json;
use serde_json::value::to_raw_value;

fn flush(session: &mut Session, sock: &mut UnixStream) {
    while let Some(bytes) = session.poll_transmit() {
        sock.write_all(&bytes).expect("write");
    }
}

/// Reads until the session has an event; returns it and the raw bytes read on the way.
fn next_event(session: &mut Session, sock: &mut UnixStream) -> (Event, Vec<u8>) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(event) = session.poll_event() {
            return (event, seen);
        }
        flush(session, sock);
        let n = sock.read(&mut buf).expect("read");
        assert!(n > 0, "server closed the connection");
        seen.extend_from_slice(&buf[..n]);
        session.handle_input(Instant::now(), &buf[..n]);
    }
}

#[test]
fn cancel_reaches_the_server_and_no_reply_event_follows() {
    let Some((_lab, server)) = nb_server() else {
        return;
    };
    let blocked = to_raw_value(&json!([NB, {"op": "wait", "table": "Logical_Switch",
        "where": [], "columns": ["name"], "until": "==", "rows": [{"name": "never"}],
        "timeout": 600000}]))
    .expect("JSON");

    // Plain session: ovsdb-server drops the canceled wait without a reply.
    // db-change-aware session: it answers `canceled`, which the session swallows.
    for db_change_aware in [false, true] {
        let mut sock = UnixStream::connect(server.socket_path()).expect("connect");
        let mut session = Session::new(SessionConfig::default(), Instant::now());
        if db_change_aware {
            session
                .request("set_db_change_aware", &[true])
                .expect("params");
            let (event, _) = next_event(&mut session, &mut sock);
            assert!(
                matches!(event, Event::Reply { result: Ok(_), .. }),
                "{event:?}"
            );
        }
        // A wait that blocks on the server for ten minutes unless canceled.
        let waiting = session.transact(&blocked);
        flush(&mut session, &mut sock);
        assert!(session.cancel(waiting));
        assert_eq!(session.pending_requests(), 0);
        let list = session.list_dbs();

        let (event, seen) = next_event(&mut session, &mut sock);
        let Event::Reply { id, result } = event else {
            panic!("expected the list_dbs reply, got {event:?}");
        };
        assert_eq!(id, list);
        assert!(result.expect("list_dbs succeeds").get().contains(NB));
        let text = String::from_utf8_lossy(&seen);
        assert_eq!(
            text.contains(r#""error":"canceled""#),
            db_change_aware,
            "db_change_aware={db_change_aware}: {text}"
        );
        assert_eq!(session.pending_requests(), 0);
    }
}
