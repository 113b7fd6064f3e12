//! Unit tests of [`Session`] with simulated time.

use std::time::{Duration, Instant};

use serde_json::value::RawValue;

use super::*;

fn raw(s: &str) -> Box<RawValue> {
    RawValue::from_string(s.to_owned()).expect("valid JSON")
}

fn sent(session: &mut Session) -> String {
    session
        .poll_transmit()
        .map(|b| String::from_utf8(b.to_vec()).expect("utf-8"))
        .unwrap_or_default()
}

fn events(session: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| session.poll_event()).collect()
}

#[test]
fn replies_are_matched_by_id_whatever_their_order() {
    let t0 = Instant::now();
    let mut s = Session::new(SessionConfig::default(), t0);
    let a = s.list_dbs();
    let b = s.get_schema("OVN_Northbound");
    let c = s.get_server_id();
    assert_eq!(
        sent(&mut s),
        concat!(
            r#"{"method":"list_dbs","params":[],"id":0}"#,
            r#"{"method":"get_schema","params":["OVN_Northbound"],"id":1}"#,
            r#"{"method":"get_server_id","params":[],"id":2}"#,
        )
    );
    assert_eq!(s.pending_requests(), 3);
    s.handle_input(
        Instant::now(),
        br#"{"id":2,"result":"abc","error":null}{"id":0,"result":["x"],"error":null}"#,
    );
    s.handle_input(
        Instant::now(),
        br#"{"id":1,"result":null,"error":{"error":"unknown database"}}"#,
    );
    let got: Vec<_> = events(&mut s)
        .into_iter()
        .map(|e| match e {
            Event::Reply { id, result } => (id, result.map(|r| r.get().to_owned())),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(got[0], (c, Ok("\"abc\"".to_owned())));
    assert_eq!(got[1], (a, Ok("[\"x\"]".to_owned())));
    assert_eq!(got[2].0, b);
    let err = got[2].1.clone().unwrap_err();
    assert_eq!(err.error(), Some("unknown database"));
    assert_eq!(s.pending_requests(), 0);
}

#[test]
fn update_before_the_transact_reply_is_delivered_first() {
    let mut s = Session::new(SessionConfig::default(), Instant::now());
    let id = s.transact(&raw(
        r#"["OVN_Northbound",{"op":"insert","table":"Logical_Switch","row":{}}]"#,
    ));
    let _ = sent(&mut s);
    s.handle_input(
        Instant::now(),
        br#"{"method":"update2","params":["m",{"Logical_Switch":{}}],"id":null}{"id":0,"result":[{"uuid":["uuid","u"]}],"error":null}"#,
    );
    let ev = events(&mut s);
    assert!(matches!(&ev[0], Event::Notification(n) if n.method == "update2"));
    assert!(matches!(&ev[1], Event::Reply { id: got, result: Ok(_) } if *got == id));
    assert_eq!(ev.len(), 2);
}

#[test]
fn server_echo_is_answered_without_an_event() {
    let mut s = Session::new(SessionConfig::default(), Instant::now());
    s.handle_input(
        Instant::now(),
        br#"{"id":"echo","method":"echo","params":["x",1]}"#,
    );
    assert!(events(&mut s).is_empty());
    assert_eq!(
        sent(&mut s),
        r#"{"id":"echo","result":["x",1],"error":null}"#
    );
}

#[test]
fn unknown_server_request_gets_an_error_reply() {
    let mut s = Session::new(SessionConfig::default(), Instant::now());
    s.handle_input(
        Instant::now(),
        br#"{"id":5,"method":"frobnicate","params":[]}"#,
    );
    assert!(events(&mut s).is_empty());
    assert_eq!(
        sent(&mut s),
        r#"{"id":5,"result":null,"error":"unknown method"}"#
    );
}

#[test]
fn cancel_sends_the_notification_and_drops_the_late_reply() {
    let mut s = Session::new(SessionConfig::default(), Instant::now());
    let id = s.transact(&raw(r#"["db",{"op":"wait","timeout":100000}]"#));
    let _ = sent(&mut s);
    assert!(s.cancel(id));
    assert!(!s.cancel(id), "a second cancel is a no-op");
    assert_eq!(
        sent(&mut s),
        r#"{"method":"cancel","params":[0],"id":null}"#
    );
    assert_eq!(
        s.pending_requests(),
        0,
        "forgotten at once: the server may never answer"
    );
    s.handle_input(
        Instant::now(),
        br#"{"id":0,"result":null,"error":"canceled"}"#,
    );
    assert!(events(&mut s).is_empty());
    assert!(!s.cancel(RequestId(42)));
}

#[test]
fn stray_and_foreign_reply_ids_are_ignored() {
    let mut s = Session::new(SessionConfig::default(), Instant::now());
    s.handle_input(
        Instant::now(),
        br#"{"id":99,"result":[],"error":null}{"id":"x","result":[],"error":null}"#,
    );
    assert!(events(&mut s).is_empty());
    assert!(!s.is_closed());
}

#[test]
fn garbage_fails_the_session_once_and_later_input_is_ignored() {
    let mut s = Session::new(SessionConfig::default(), Instant::now());
    s.list_dbs();
    s.handle_input(Instant::now(), br#"{"id":7,"result":[]} ]"#);
    let ev = events(&mut s);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert!(
        matches!(ev[0], Event::Failed(SessionError::Framing(_))),
        "{ev:?}"
    );
    assert!(s.is_closed());
    s.handle_input(Instant::now(), br#"{"id":0,"result":[],"error":null}"#);
    assert!(events(&mut s).is_empty());
}

#[test]
fn undecodable_message_fails_the_session() {
    for input in [&br#"{"foo":1}"#[..], b"[1]", b"{\"id\":1,\"result\":[]]"] {
        let mut s = Session::new(SessionConfig::default(), Instant::now());
        s.handle_input(Instant::now(), input);
        let ev = events(&mut s);
        assert!(
            matches!(ev[..], [Event::Failed(SessionError::Decode(_))]),
            "{ev:?}"
        );
    }
}

#[test]
fn inactivity_probe_sends_echo_then_times_out() {
    let t0 = Instant::now();
    let probe = Duration::from_secs(5);
    let cfg = SessionConfig::default().with_inactivity_probe(Some(probe));
    let mut s = Session::new(cfg, t0);
    assert_eq!(s.poll_timeout(), Some(t0 + probe));

    s.handle_timeout(t0 + Duration::from_secs(1));
    assert_eq!(sent(&mut s), "", "too early");

    s.handle_timeout(t0 + probe);
    assert_eq!(sent(&mut s), r#"{"method":"echo","params":[],"id":0}"#);
    assert_eq!(s.poll_timeout(), Some(t0 + probe * 2));

    s.handle_timeout(t0 + probe * 2);
    let ev = events(&mut s);
    assert!(
        matches!(ev[..], [Event::Failed(SessionError::InactivityTimeout(d))] if d == probe * 2),
        "{ev:?}"
    );
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn traffic_keeps_the_probe_quiet_and_the_echo_reply_is_internal() {
    let t0 = Instant::now();
    let probe = Duration::from_secs(5);
    let second = Duration::from_secs(1);
    let cfg = SessionConfig::default().with_inactivity_probe(Some(probe));
    let mut s = Session::new(cfg, t0);
    s.handle_input(
        t0 + second,
        br#"{"method":"update2","params":[],"id":null}"#,
    );
    let _ = events(&mut s);
    s.handle_timeout(t0 + probe);
    assert_eq!(sent(&mut s), "", "input arrived: no probe");
    assert_eq!(s.poll_timeout(), Some(t0 + second + probe));

    s.handle_timeout(t0 + second + probe);
    assert_eq!(sent(&mut s), r#"{"method":"echo","params":[],"id":0}"#);
    s.handle_input(
        t0 + second * 2 + probe,
        br#"{"id":0,"result":[],"error":null}"#,
    );
    assert!(
        events(&mut s).is_empty(),
        "the probe's reply is not an event"
    );
    s.handle_timeout(t0 + second + probe * 2);
    assert!(!s.is_closed());
    assert_eq!(s.poll_timeout(), Some(t0 + second * 2 + probe * 2));
}

#[test]
fn a_silent_server_is_given_up_two_intervals_after_its_last_bytes() {
    let probe = Duration::from_millis(1000);
    // The last bytes arrive at various points of the probe's cycle: just after the start, just
    // before the first echo would go out, just after it went out.
    for last in [1, 999, 1001, 1500, 1999] {
        let t0 = Instant::now();
        let cfg = SessionConfig::default().with_inactivity_probe(Some(probe));
        let mut s = Session::new(cfg, t0);
        let last = t0 + Duration::from_millis(last);
        // The timer fires on time up to the last bytes...
        while let Some(t) = s.poll_timeout().filter(|&t| t <= last) {
            s.handle_timeout(t);
            let _ = sent(&mut s);
        }
        s.handle_input(last, br#"{"method":"update2","params":[],"id":null}"#);
        let _ = events(&mut s);
        // ... and after them, until the session gives up.
        let mut gave_up = None;
        while let Some(t) = s.poll_timeout() {
            s.handle_timeout(t);
            let _ = sent(&mut s);
            if s.is_closed() {
                gave_up = Some(t);
            }
        }
        assert_eq!(gave_up, Some(last + probe * 2), "last bytes at {last:?}");
    }
}

#[test]
fn request_with_failing_params_sends_nothing() {
    struct Bad;
    impl serde::Serialize for Bad {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("no"))
        }
    }
    let mut s = Session::new(SessionConfig::default(), Instant::now());
    s.list_dbs();
    assert!(s.request("transact", &Bad).is_err());
    assert_eq!(sent(&mut s), r#"{"method":"list_dbs","params":[],"id":0}"#);
    assert_eq!(s.pending_requests(), 1);
}

#[test]
fn a_thousand_pipelined_requests_answered_in_reverse_order() {
    let mut s = Session::new(SessionConfig::default(), Instant::now());
    let ids: Vec<RequestId> = (0..1000).map(|i| s.echo(&raw(&format!("[{i}]")))).collect();
    let wire = sent(&mut s);
    assert_eq!(wire.matches("\"method\":\"echo\"").count(), 1000);
    assert_eq!(s.pending_requests(), 1000);
    let mut replies = String::new();
    for (i, id) in ids.iter().enumerate().rev() {
        replies.push_str(&format!(r#"{{"id":{id},"result":[{i}],"error":null}}"#));
    }
    // Delivered in 7-byte pieces, as a slow socket might.
    for piece in replies.as_bytes().chunks(7) {
        s.handle_input(Instant::now(), piece);
    }
    let got = events(&mut s);
    assert_eq!(got.len(), 1000);
    for (event, (i, id)) in got.iter().zip(ids.iter().enumerate().rev()) {
        let Event::Reply {
            id: got_id,
            result: Ok(r),
        } = event
        else {
            panic!("unexpected {event:?}")
        };
        assert_eq!(got_id, id);
        assert_eq!(r.get(), format!("[{i}]"));
    }
    assert_eq!(s.pending_requests(), 0);
}
