//! Fuzzes the decoding of monitor replies and update notifications against a schema's layout
//! (`ovsdb::monitor`): `TableUpdates::decode`, `MonitorReply::decode` and
//! `UpdateNotification::decode` on arbitrary text.
//!
//! The input is the `<table-updates>` text. It is decoded in both formats, and inside every
//! envelope that carries it (the `monitor`, `monitor_cond` and `monitor_cond_since` replies,
//! the `update`, `update2` and `update3` notifications): an envelope decodes exactly when the
//! bare updates do, to the same updates. Whatever decodes keeps the decoder's promises: known
//! table and column ids, whole rows sorted by column with defaults left out, diffs sorted by
//! column, each column once.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use ovsdb::monitor::{
    Layout, MonitorMethod, MonitorReply, RowOp, TableUpdates, UpdateFormat, UpdateNotification,
};
use ovsdb::{DatabaseSchema, Uuid};

/// Every kind of column: scalars of each atomic type with and without constraints, optional
/// values, sets, maps, strong and weak references.
const SCHEMA: &str = r#"{"name":"F","version":"1.0.0","tables":{
  "A":{"columns":{
    "s":{"type":"string"},
    "i":{"type":{"key":{"type":"integer","minInteger":0,"maxInteger":9}}},
    "r":{"type":"real"},
    "b":{"type":"boolean"},
    "u":{"type":"uuid"},
    "e":{"type":{"key":{"type":"string","enum":["set",["x","y"]]}}},
    "o":{"type":{"key":"string","min":0,"max":1}},
    "t":{"type":{"key":"integer","min":0,"max":3}},
    "v":{"type":{"key":"string","min":1,"max":"unlimited"}},
    "m":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}},
    "n":{"type":{"key":"integer","value":{"type":"uuid","refTable":"B","refType":"weak"},"min":0,"max":"unlimited"}},
    "k":{"type":{"key":{"type":"uuid","refTable":"B"},"min":0,"max":"unlimited"}}},
   "indexes":[["s"]],"isRoot":true},
  "B":{"columns":{"x":{"type":"integer"},"y":{"type":{"key":"real","min":0,"max":1}}}}}}"#;

static LAYOUT: LazyLock<Layout> =
    LazyLock::new(|| Layout::new(&DatabaseSchema::from_json_str(SCHEMA).expect("schema")));

const TXN: &str = "11111111-2222-4333-8444-555555555555";

fn check(layout: &Layout, updates: &TableUpdates) {
    for t in &updates.tables {
        let table = layout.table_by_id(t.table).expect("a known table id");
        for row in &t.rows {
            match &row.op {
                RowOp::Initial(cells) | RowOp::Insert(cells) => {
                    assert!(cells.windows(2).all(|w| w[0].0 < w[1].0), "row not sorted");
                    for (id, datum) in cells.iter() {
                        let column = table.column(*id).expect("a known column id");
                        assert_ne!(datum, &column.default, "a default value is stored");
                    }
                }
                RowOp::Modify(cells) | RowOp::Replace(cells) => {
                    assert!(cells.windows(2).all(|w| w[0].0 < w[1].0), "diff not sorted");
                    for (id, _) in cells {
                        assert!(table.column(*id).is_some(), "unknown column id");
                    }
                }
                RowOp::Delete => {}
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let layout = &*LAYOUT;
    let txn: Uuid = TXN.parse().expect("uuid");

    for (format, reply, notification) in [
        (UpdateFormat::Update, MonitorMethod::Monitor, "update"),
        (UpdateFormat::Update2, MonitorMethod::MonitorCond, "update2"),
    ] {
        let bare = TableUpdates::decode(layout, format, text).ok();
        if let Some(updates) = &bare {
            check(layout, updates);
        }
        let in_reply = MonitorReply::decode(layout, reply, text).ok();
        assert_eq!(
            in_reply.as_ref().map(MonitorReply::updates),
            bare.as_ref(),
            "{reply:?} reply"
        );
        let params = format!("[\"m\",{text}]");
        let in_notification = UpdateNotification::decode(layout, notification, &params).ok();
        assert_eq!(
            in_notification.as_ref().map(|n| &n.updates),
            bare.as_ref(),
            "{notification} notification"
        );
        if let Some(n) = in_notification {
            assert_eq!(n.monitor_id, serde_json::json!("m"));
            assert_eq!(n.last_txn_id, None);
        }

        if format == UpdateFormat::Update2 {
            let params = format!("[\"m\",\"{TXN}\",{text}]");
            let update3 = UpdateNotification::decode(layout, "update3", &params).ok();
            assert_eq!(
                update3.as_ref().map(|n| &n.updates),
                bare.as_ref(),
                "update3"
            );
            if let Some(n) = update3 {
                assert_eq!(n.last_txn_id, Some(txn));
            }
            let result = format!("[true,\"{TXN}\",{text}]");
            let since = MonitorReply::decode(layout, MonitorMethod::MonitorCondSince, &result).ok();
            assert_eq!(
                since.as_ref().map(MonitorReply::updates),
                bare.as_ref(),
                "monitor_cond_since reply"
            );
            if let Some(reply) = since {
                assert!(matches!(
                    reply,
                    MonitorReply::Since { found: true, last_txn_id, .. } if last_txn_id == txn
                ));
            }
        }
    }

    // The text as a whole notification or `monitor_cond_since` result: anything goes, but
    // whatever decodes keeps the promises.
    for method in ["update", "update2", "update3"] {
        if let Ok(n) = UpdateNotification::decode(layout, method, text) {
            check(layout, &n.updates);
        }
    }
    if let Ok(reply) = MonitorReply::decode(layout, MonitorMethod::MonitorCondSince, text) {
        check(layout, reply.updates());
    }
});
