//! Property tests of the streaming framer: however a stream of concatenated JSON-RPC messages
//! is split, the same messages come out, byte for byte, and decode to what was sent.

use ovsdb::framing::Framer;
use ovsdb::jsonrpc::Message;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Strings full of what trips a naive scanner: brackets, quotes, backslashes, control
/// characters, multi-byte UTF-8 (2, 3 and 4 bytes).
fn tricky_string() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('{'),
            Just('}'),
            Just('['),
            Just(']'),
            Just('"'),
            Just('\\'),
            Just('\n'),
            Just('\u{1}'),
            Just('é'),
            Just('日'),
            Just('😀'),
            Just(','),
            Just(':'),
            Just(' '),
            proptest::char::range('a', 'z'),
        ],
        0..12,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        tricky_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec((tricky_string(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A JSON-RPC message as ovsdb-server sends them: a response, a notification or a request.
fn message() -> impl Strategy<Value = Value> {
    prop_oneof![
        (any::<u32>(), json_value())
            .prop_map(|(id, result)| json!({"id": id, "result": result, "error": null})),
        (tricky_string(), json_value())
            .prop_map(|(m, p)| json!({"method": format!("update2{m}"), "params": [p], "id": null})),
        json_value().prop_map(|p| json!({"method": "echo", "params": [p], "id": "echo"})),
    ]
}

fn separator() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just(""), Just(" "), Just("\n"), Just("\r\n\t ")]
}

/// The messages, each serialized, and the stream made of them with separators.
fn stream() -> impl Strategy<Value = (Vec<String>, Vec<u8>)> {
    proptest::collection::vec((message(), separator()), 1..5).prop_map(|msgs| {
        let texts: Vec<String> = msgs.iter().map(|(m, _)| m.to_string()).collect();
        let mut bytes = Vec::new();
        for (text, (_, sep)) in texts.iter().zip(&msgs) {
            bytes.extend_from_slice(sep.as_bytes());
            bytes.extend_from_slice(text.as_bytes());
        }
        (texts, bytes)
    })
}

fn feed(chunks: &[&[u8]]) -> Vec<String> {
    let mut framer = Framer::new();
    let mut out = Vec::new();
    for chunk in chunks {
        framer.extend(chunk);
        while let Some(frame) = framer.next_frame().expect("a valid stream") {
            out.push(String::from_utf8(frame.to_vec()).expect("frames of UTF-8 input are UTF-8"));
        }
    }
    assert_eq!(framer.buffered_len(), 0, "nothing left over");
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_single_split_point_yields_the_same_messages((texts, bytes) in stream()) {
        for at in 0..=bytes.len() {
            let (a, b) = bytes.split_at(at);
            prop_assert_eq!(&feed(&[a, b]), &texts, "split at byte {}", at);
        }
    }

    #[test]
    fn random_multi_splits_yield_the_same_messages(
        (texts, bytes) in stream(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        at.sort_unstable();
        at.dedup();
        let mut chunks = Vec::new();
        let mut prev = 0;
        for cut in at {
            chunks.push(&bytes[prev..cut]);
            prev = cut;
        }
        chunks.push(&bytes[prev..]);
        prop_assert_eq!(&feed(&chunks), &texts);
    }

    #[test]
    fn byte_at_a_time_frames_decode_to_what_was_sent((texts, bytes) in stream()) {
        let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
        let frames = feed(&chunks);
        prop_assert_eq!(&frames, &texts);
        for frame in &frames {
            let sent: Value = serde_json::from_str(frame).expect("JSON");
            let decoded = Message::decode(frame.as_bytes()).expect("a JSON-RPC message");
            match decoded {
                Message::Response(r) => {
                    let result: Value =
                        serde_json::from_str(r.result.expect("ok").get()).expect("JSON");
                    prop_assert_eq!(&result, &sent["result"]);
                    prop_assert_eq!(&r.id, &sent["id"]);
                }
                Message::Notification(n) => {
                    let params: Value = serde_json::from_str(n.params.get()).expect("JSON");
                    prop_assert_eq!(&params, &sent["params"]);
                    prop_assert_eq!(&n.method, sent["method"].as_str().expect("string"));
                }
                Message::Request(r) => {
                    let params: Value = serde_json::from_str(r.params.get()).expect("JSON");
                    prop_assert_eq!(&params, &sent["params"]);
                    prop_assert_eq!(r.id, json!("echo"));
                }
            }
        }
    }
}

/// A 50 MB message arriving in 64 KiB pieces comes out whole. Each piece is scanned once (the
/// unit tests check the scan position); no timing is asserted here.
#[test]
fn large_message_in_64k_chunks() {
    let row = json!({"name": "p{1}", "addresses": ["0a:00:00:00:00:01 10.16.0.1"], "s": "\\\"}"});
    let row_text = row.to_string();
    let mut text = String::from(r#"{"id":1,"result":["#);
    while text.len() < 50 << 20 {
        text.push_str(&row_text);
        text.push(',');
    }
    text.push_str(&row_text);
    text.push_str(r#"],"error":null}"#);
    let frames = feed(&text.as_bytes().chunks(64 << 10).collect::<Vec<_>>());
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].len(), text.len());
}
