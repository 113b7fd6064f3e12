//! Fuzzes the wire side of `ovsdb`: framing, JSON-RPC decoding and the session.
//!
//! The first byte picks a chunk size; the rest is the byte stream from the "server". The stream
//! goes through a `Framer` in one piece and in chunks (both must yield the same frames), each
//! frame through `Message::decode`, and the chunks through a `Session` with requests pending.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use ovsdb::framing::Framer;
use ovsdb::jsonrpc::Message;
use ovsdb::session::{Event, Session, SessionConfig};

fn frames(chunks: &mut dyn Iterator<Item = &[u8]>) -> (Vec<Vec<u8>>, bool) {
    let mut framer = Framer::with_max_message_len(1 << 20);
    let mut out = Vec::new();
    for chunk in chunks {
        framer.extend(chunk);
        loop {
            match framer.next_frame() {
                Ok(Some(f)) => out.push(f.to_vec()),
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first % 17) + 1;

    let whole = frames(&mut std::iter::once(stream));
    let split = frames(&mut stream.chunks(chunk));
    assert_eq!(
        whole, split,
        "framing must not depend on how the stream is split"
    );
    for frame in &whole.0 {
        let _ = Message::decode(frame);
    }

    let t0 = Instant::now();
    let cfg = SessionConfig::default().with_inactivity_probe(Some(Duration::from_secs(1)));
    let mut session = Session::new(cfg, t0);
    let ids = [
        session.list_dbs(),
        session.get_server_id(),
        session.get_schema("db"),
    ];
    session.cancel(ids[1]);
    let mut now = t0;
    for piece in stream.chunks(chunk) {
        session.handle_input(now, piece);
        now += Duration::from_millis(700);
        session.handle_timeout(now);
        while let Some(ev) = session.poll_event() {
            if let Event::Reply { id, .. } = ev {
                assert!(
                    ids.contains(&id) && id != ids[1],
                    "reply to a request never sent"
                );
            }
        }
        let _ = session.poll_transmit();
    }
});
