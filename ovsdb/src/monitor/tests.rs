use super::*;
use crate::Datum;
use serde_json::json;

const SCHEMA: &str = r#"{"name":"DB","version":"1.0.0","tables":{
  "T":{"columns":{
    "name":{"type":"string"},
    "n":{"type":"integer"},
    "tags":{"type":{"key":"string","min":0,"max":"unlimited"}},
    "ext":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}}},
   "indexes":[["name"]]},
  "U":{"columns":{"r":{"type":"real"}}}}}"#;

fn schema() -> DatabaseSchema {
    DatabaseSchema::from_json_str(SCHEMA).unwrap()
}

const U1: &str = "11111111-1111-4111-8111-111111111111";

#[test]
fn params_of_each_method() {
    let req = MonitorRequest::new("DB", MonitorMethod::Monitor)
        .with_id("m1")
        .with_table("T", TableMonitor::all().with_columns(["name", "n"]));
    req.validate(&schema()).unwrap();
    assert_eq!(
        serde_json::to_value(req.params(None)).unwrap(),
        json!(["DB", "m1", {"T": {"columns": ["name", "n"]}}])
    );
    let sel = MonitorSelect {
        initial: false,
        ..MonitorSelect::default()
    };
    let req = req.with_method(MonitorMethod::MonitorCond).with_table(
        "U",
        TableMonitor::all().with_where([false]).with_select(sel),
    );
    assert_eq!(
        serde_json::to_value(req.params(None)).unwrap(),
        json!(["DB", "m1", {"T": {"columns": ["name", "n"]},
            "U": {"where": [false], "select": {"initial": false, "insert": true, "delete": true, "modify": true}}}])
    );
    let since = req.with_method(MonitorMethod::MonitorCondSince);
    let v = serde_json::to_value(since.params(Some(U1.parse().unwrap()))).unwrap();
    assert_eq!(v[3], json!(U1));
    assert_eq!(MonitorMethod::MonitorCondSince.notification(), "update3");
    assert_eq!(
        MonitorMethod::MonitorCondSince.fallback(),
        Some(MonitorMethod::MonitorCond)
    );
}

#[test]
fn plain_monitor_drops_no_conditions_silently() {
    let req = MonitorRequest::new("DB", MonitorMethod::Monitor)
        .with_table("T", TableMonitor::all().with_where([Condition::eq("n", 1)]));
    assert!(matches!(
        req.validate(&schema()),
        Err(MonitorError::ConditionsNotSupported { .. })
    ));
    let bad = MonitorRequest::new("DB", MonitorMethod::MonitorCond)
        .with_table("T", TableMonitor::all().with_columns(["nope"]));
    assert!(matches!(
        bad.validate(&schema()),
        Err(MonitorError::UnknownColumn { .. })
    ));
    let bad =
        MonitorRequest::new("DB", MonitorMethod::MonitorCond).with_table("X", TableMonitor::all());
    assert!(matches!(
        bad.validate(&schema()),
        Err(MonitorError::UnknownTable { .. })
    ));
}

#[test]
fn cond_change_and_cancel_params() {
    let mut req = MonitorRequest::new("DB", MonitorMethod::MonitorCond)
        .with_id(7)
        .with_table("T", TableMonitor::all());
    let change = req
        .cond_change("T", vec![Condition::eq("name", "a").into()])
        .unwrap();
    assert_eq!(
        serde_json::to_value(&change).unwrap(),
        json!([7, 7, {"T": [{"where": [["name", "==", "a"]]}]}])
    );
    assert!(req.tables["T"].conditions.is_some());
    assert_eq!(
        serde_json::to_value(req.cancel_params()).unwrap(),
        json!([7])
    );
    assert!(req.cond_change("X", vec![]).is_err());
}

#[test]
fn decodes_update2_forms_with_column_types() {
    let layout = Layout::new(&schema());
    let params = json!(["id", {"T": {
        U1: {"modify": {"n": 3, "ext": ["map", [["a", "b"]]]}},
        "22222222-2222-4222-8222-222222222222": {"delete": null},
        "33333333-3333-4333-8333-333333333333": {"insert": {"name": "x", "tags": ["set", ["p", "q"]]}}
    }, "U": {"44444444-4444-4444-8444-444444444444": {"initial": {"r": 1}}}}]);
    let n = UpdateNotification::decode(&layout, "update2", &params.to_string()).unwrap();
    assert_eq!(n.monitor_id, json!("id"));
    assert_eq!(n.last_txn_id, None);
    assert_eq!(n.updates.row_count(), 4);
    let t = &n.updates.tables[0];
    let (_, tl) = layout.table("T").unwrap();
    let ext = tl.column_id("ext").unwrap();
    let RowOp::Modify(cells) = &t.rows[0].op else {
        panic!("modify expected")
    };
    assert!(cells.contains(&(ext, Datum::map([("a", "b")]))));
    assert_eq!(t.rows[1].op, RowOp::Delete);
    let RowOp::Initial(cells) = &n.updates.tables[1].rows[0].op else {
        panic!("initial expected")
    };
    // An integer in a real column is a real.
    assert_eq!(cells[0].1, Datum::from(1.0));
}

#[test]
fn decodes_update_old_new() {
    let layout = Layout::new(&schema());
    let params = json!([null, {"T": {
        U1: {"old": {"n": 1}, "new": {"name": "a", "n": 2, "tags": ["set", []], "ext": ["map", []]}},
        "22222222-2222-4222-8222-222222222222": {"old": {"name": "b"}},
        "33333333-3333-4333-8333-333333333333": {"new": {"name": "c"}}
    }}]);
    let n = UpdateNotification::decode(&layout, "update", &params.to_string()).unwrap();
    let rows = &n.updates.tables[0].rows;
    assert!(matches!(rows[0].op, RowOp::Replace(ref c) if c.len() == 4));
    assert_eq!(rows[1].op, RowOp::Delete);
    assert!(matches!(rows[2].op, RowOp::Insert(_)));
}

#[test]
fn decodes_update3_and_since_reply() {
    let layout = Layout::new(&schema());
    let n = UpdateNotification::decode(
        &layout,
        "update3",
        &json!([["a", 1], U1, {"T": {U1: {"delete": null}}}]).to_string(),
    )
    .unwrap();
    assert_eq!(n.last_txn_id, Some(U1.parse().unwrap()));
    let r = MonitorReply::decode(
        &layout,
        MonitorMethod::MonitorCondSince,
        &json!([true, U1, {}]).to_string(),
    )
    .unwrap();
    assert!(matches!(r, MonitorReply::Since { found: true, .. }));
    assert!(r.updates().tables.is_empty());
}

#[test]
fn decode_errors_name_table_row_and_column() {
    let layout = Layout::new(&schema());
    let bad = json!([null, {"T": {U1: {"insert": {"n": "three"}}}}]).to_string();
    let err = UpdateNotification::decode(&layout, "update2", &bad).unwrap_err();
    let MonitorError::Decode {
        table, row, column, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(table.as_deref(), Some("T"));
    assert_eq!(row.map(|r| r.to_string()).as_deref(), Some(U1));
    assert_eq!(column.as_deref(), Some("n"));
    assert!(err.to_string().contains("column n"), "{err}");

    for bad in [
        json!([null, {"X": {}}]),
        json!([null, {"T": {"not-a-uuid": {"delete": null}}}]),
        json!([null, {"T": {U1: {"insert": {"nope": 1}}}}]),
        json!([null, {"T": {U1: {"insert": {}, "delete": null}}}]),
        json!([null, {"T": {U1: {"upsert": {}}}}]),
        json!([null, {"T": {U1: {}}}]),
        json!([null]),
        json!([null, {}, 1]),
    ] {
        assert!(
            UpdateNotification::decode(&layout, "update2", &bad.to_string()).is_err(),
            "{bad} decoded"
        );
    }
    assert!(matches!(
        UpdateNotification::decode(&layout, "locked", "[]"),
        Err(MonitorError::UnknownMethod { .. })
    ));
}

#[test]
fn default_values_per_column_type() {
    let layout = Layout::new(&schema());
    let (_, t) = layout.table("T").unwrap();
    let d = |c: &str| t.columns[t.column_id(c).unwrap().index()].default.clone();
    assert_eq!(d("name"), Datum::from(""));
    assert_eq!(d("n"), Datum::from(0));
    assert_eq!(d("tags"), Datum::empty_set());
    assert_eq!(d("ext"), Datum::empty_map());
    assert_eq!(t.indexes, vec![vec![t.column_id("name").unwrap()]]);
}

mod garbage {
    use super::*;
    use proptest::prelude::*;

    const VALID: &str = r#"["id",{"T":{"11111111-1111-4111-8111-111111111111":{"modify":{"n":3,"ext":["map",[["a","b"]]]}},"22222222-2222-4222-8222-222222222222":{"insert":{"name":"x\u00e9","tags":["set",["p","q"]]}}},"U":{"44444444-4444-4444-8444-444444444444":{"initial":{"r":1.5}}}}]"#;

    proptest! {
        /// Truncated or corrupted notifications decode to an error, never a panic, and a
        /// replica fed them either applies them or refuses them whole.
        #[test]
        fn corrupted_notifications_never_panic(
            cut in 0usize..VALID.len(),
            flips in prop::collection::vec((0usize..VALID.len(), any::<u8>()), 0..4),
            method in prop::sample::select(vec!["update", "update2", "update3"]),
        ) {
            let layout = Layout::new(&schema());
            let mut bytes = VALID.as_bytes()[..cut].to_vec();
            for (at, b) in flips {
                if let Some(x) = bytes.get_mut(at) {
                    *x = b;
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            let _ = UpdateNotification::decode(&layout, method, &text);
            let mut replica = crate::replica::Replica::new(&schema());
            let before = replica.seq();
            if replica.apply_notification(method, &text).is_err() {
                prop_assert_eq!(replica.seq(), before);
            }
        }
    }
}
