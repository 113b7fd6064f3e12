use super::*;
use crate::Datum;
use crate::monitor::{MonitorMethod, TableMonitor};
use serde_json::json;

mod props;

pub(super) const SCHEMA: &str = r#"{"name":"DB","version":"1.0.0","tables":{
  "T":{"columns":{
    "name":{"type":"string"},
    "n":{"type":"integer"},
    "flag":{"type":{"key":"boolean","min":0,"max":1}},
    "tags":{"type":{"key":"integer","min":0,"max":"unlimited"}},
    "ext":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}}},
   "indexes":[["name"]]},
  "U":{"columns":{"r":{"type":"real"}}}}}"#;

pub(super) fn replica() -> Replica {
    Replica::new(&DatabaseSchema::from_json_str(SCHEMA).unwrap())
}

pub(super) fn uuid(n: u128) -> Uuid {
    Uuid::from_u128(0x1000_0000_0000_4000_8000_0000_0000_0000 | n)
}

fn u2(table_rows: serde_json::Value) -> String {
    json!([null, table_rows]).to_string()
}

fn monitor() -> MonitorRequest {
    MonitorRequest::new("DB", MonitorMethod::MonitorCond).with_table("T", TableMonitor::all())
}

#[test]
fn insert_modify_delete_through_update2() {
    let mut r = replica();
    let a = uuid(1).to_string();
    r.apply_reply(&monitor(), &json!({"T": {&a: {"initial": {"name": "a", "tags": ["set", [1, 2]], "ext": ["map", [["k", "v"], ["x", "y"]]]}}}}).to_string())
        .unwrap();
    assert!(r.is_synced());
    let applied = r
        .apply_notification(
            "update2",
            &u2(json!({"T": {&a: {"modify": {"n": 5, "flag": true, "tags": ["set", [2, 3]], "ext": ["map", [["k", "w"], ["x", "y"], ["z", "1"]]]}}}})),
        )
        .unwrap();
    assert_eq!(applied.modified, 1);
    let snap = r.snapshot();
    let row = snap.table("T").unwrap().get(uuid(1)).unwrap();
    assert_eq!(row.get("n"), Some(&Datum::from(5)));
    assert_eq!(row.get("flag"), Some(&Datum::set([true])));
    assert_eq!(row.get("tags"), Some(&Datum::set([1, 3])));
    assert_eq!(row.get("ext"), Some(&Datum::map([("k", "w"), ("z", "1")])));
    assert_eq!(row.get("nope"), None);

    r.apply_notification("update2", &u2(json!({"T": {&a: {"delete": null}}})))
        .unwrap();
    assert!(r.snapshot().table("T").unwrap().is_empty());
    // The old snapshot still sees the row.
    assert_eq!(snap.table("T").unwrap().len(), 1);
}

#[test]
fn failed_notification_changes_nothing() {
    let mut r = replica();
    let a = uuid(1).to_string();
    let b = uuid(2).to_string();
    r.apply_notification(
        "update2",
        &u2(json!({"T": {&a: {"insert": {"name": "a"}}}})),
    )
    .unwrap();
    let seq = r.seq();
    // The insert of b is fine, the modify of a missing row is not: neither is applied.
    let err = r
        .apply_notification(
            "update2",
            &u2(json!({"T": {&b: {"insert": {"name": "b"}}, &uuid(3).to_string(): {"modify": {"n": 1}}}})),
        )
        .unwrap_err();
    assert!(
        matches!(err, ReplicaError::NoSuchRow { op: "modify", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("table T"), "{err}");
    assert_eq!(r.seq(), seq);
    assert_eq!(r.snapshot().table("T").unwrap().len(), 1);
    let err = r
        .apply_notification(
            "update2",
            &u2(json!({"T": {&a: {"insert": {"name": "a"}}}})),
        )
        .unwrap_err();
    assert!(matches!(err, ReplicaError::RowExists { .. }));
    let err = r
        .apply_notification("update2", &u2(json!({"T": {&b: {"delete": null}}})))
        .unwrap_err();
    assert!(matches!(err, ReplicaError::NoSuchRow { op: "delete", .. }));
}

#[test]
fn rows_store_only_non_default_cells() {
    let mut r = replica();
    let a = uuid(1).to_string();
    r.apply_notification(
        "update2",
        &u2(json!({"T": {&a: {"insert": {"name": "", "n": 0, "tags": ["set", []], "ext": ["map", [["k", "v"]]]}}}})),
    )
    .unwrap();
    let snap = r.snapshot();
    let row = snap.table("T").unwrap().get(uuid(1)).unwrap();
    assert_eq!(row.cells().map(|(c, _)| c).collect::<Vec<_>>(), vec!["ext"]);
    assert_eq!(row.get("name"), Some(&Datum::from("")));
    let full = row.to_row();
    assert_eq!(full.len(), 6);
    assert_eq!(full.uuid(), Some(uuid(1)));
}

#[test]
fn update3_keeps_last_txn_id_and_since_reply_found_applies_on_top() {
    let mut r = replica();
    let a = uuid(1).to_string();
    let m = monitor().with_method(MonitorMethod::MonitorCondSince);
    let t1 = uuid(100);
    r.apply_reply(
        &m,
        &json!([false, t1, {"T": {&a: {"initial": {"name": "a"}}}}]).to_string(),
    )
    .unwrap();
    assert_eq!(r.last_txn_id(), Some(t1));
    let t2 = uuid(101);
    r.apply_notification(
        "update3",
        &json!([null, t2, {"T": {&a: {"modify": {"n": 2}}}}]).to_string(),
    )
    .unwrap();
    assert_eq!(r.last_txn_id(), Some(t2));
    r.mark_unsynced();
    assert!(!r.is_synced());
    // Resumed: the server knew t2 and sends only what changed since.
    let t3 = uuid(102);
    r.apply_reply(
        &m,
        &json!([true, t3, {"T": {&a: {"modify": {"n": 3}}}}]).to_string(),
    )
    .unwrap();
    assert!(r.is_synced());
    assert_eq!(r.last_txn_id(), Some(t3));
    let snap = r.snapshot();
    assert_eq!(
        snap.table("T").unwrap().get(uuid(1)).unwrap().get("n"),
        Some(&Datum::from(3))
    );
}

#[test]
fn full_resync_replaces_and_reports_difference() {
    let mut r = replica();
    let (c, _) = r.subscribe();
    let row = |name: &str| json!({"initial": {"name": name}});
    r.apply_reply(&monitor(), &json!({"T": {
        uuid(1).to_string(): row("keep"), uuid(2).to_string(): row("change"), uuid(3).to_string(): row("gone")
    }}).to_string())
    .unwrap();
    let (first, _) = r.take_changes(c).unwrap();
    assert_eq!(first.table("T").unwrap().inserted.len(), 3);

    r.mark_unsynced();
    let applied = r
        .apply_reply(&monitor(), &json!({"T": {
            uuid(1).to_string(): row("keep"), uuid(2).to_string(): row("changed"), uuid(4).to_string(): row("new")
        }}).to_string())
        .unwrap();
    assert_eq!(
        (applied.inserted, applied.modified, applied.deleted),
        (1, 1, 1)
    );
    let (changes, snap) = r.take_changes(c).unwrap();
    let t = changes.table("T").unwrap();
    assert_eq!(t.inserted, vec![uuid(4)]);
    assert_eq!(t.modified, vec![uuid(2)]);
    assert_eq!(t.deleted, vec![uuid(3)]);
    let view = snap.table("T").unwrap();
    assert_eq!(view.len(), 3);
    // The schema index was rebuilt with the new contents.
    assert!(
        view.find_one(&["name"], &[Datum::from("gone")])
            .unwrap()
            .is_none()
    );
    assert_eq!(
        view.find_one(&["name"], &[Datum::from("new")])
            .unwrap()
            .map(|r| r.uuid()),
        Some(uuid(4))
    );
    // An identical resync reports nothing and does not move the sequence number.
    let seq = r.seq();
    r.apply_reply(&monitor(), &json!({"T": {
        uuid(1).to_string(): row("keep"), uuid(2).to_string(): row("changed"), uuid(4).to_string(): row("new")
    }}).to_string())
    .unwrap();
    assert_eq!(r.seq(), seq);
    assert!(r.take_changes(c).unwrap().0.is_empty());
}

#[test]
fn changes_coalesce_per_row() {
    let mut r = replica();
    let (c, _) = r.subscribe();
    let ins =
        |u: u128, name: &str| u2(json!({"T": {uuid(u).to_string(): {"insert": {"name": name}}}}));
    let modi = |u: u128, n: i64| u2(json!({"T": {uuid(u).to_string(): {"modify": {"n": n}}}}));
    let del = |u: u128| u2(json!({"T": {uuid(u).to_string(): {"delete": null}}}));
    r.apply_notification("update2", &ins(1, "a")).unwrap();
    r.apply_notification("update2", &ins(2, "b")).unwrap();
    let (first, _) = r.take_changes(c).unwrap();
    assert_eq!(first.since, 0);
    assert_eq!(first.seq, 2);
    for n in 1..100 {
        r.apply_notification("update2", &modi(1, n)).unwrap();
    }
    r.apply_notification("update2", &ins(3, "c")).unwrap();
    r.apply_notification("update2", &modi(3, 1)).unwrap();
    r.apply_notification("update2", &ins(4, "d")).unwrap();
    r.apply_notification("update2", &del(4)).unwrap();
    r.apply_notification("update2", &del(2)).unwrap();
    assert_eq!(r.pending_changes(c), Some(3));
    let (set, snap) = r.take_changes(c).unwrap();
    assert_eq!(set.since, 2);
    assert_eq!(set.seq, snap.seq());
    let t = set.table("T").unwrap();
    assert_eq!(t.modified, vec![uuid(1)]);
    assert_eq!(t.inserted, vec![uuid(3)]);
    assert_eq!(t.deleted, vec![uuid(2)]);
    assert!(r.unsubscribe(c));
    assert!(matches!(
        r.take_changes(c),
        Err(ReplicaError::UnknownConsumer { .. })
    ));
}

#[test]
fn user_indexes_and_lookups() {
    let mut r = replica();
    for (u, name, n) in [(1, "a", 1), (2, "b", 1), (3, "c", 2)] {
        r.apply_notification(
            "update2",
            &u2(json!({"T": {uuid(u).to_string(): {"insert": {"name": name, "n": n}}}})),
        )
        .unwrap();
    }
    r.add_index("T", &["n"]).unwrap();
    r.add_index("T", &["n", "flag"]).unwrap();
    let snap = r.snapshot();
    let t = snap.table("T").unwrap();
    assert_eq!(t.indexes().count(), 3);
    let mut ones: Vec<Uuid> = t
        .find(&["n"], &[Datum::from(1)])
        .unwrap()
        .iter()
        .map(RowView::uuid)
        .collect();
    ones.sort();
    assert_eq!(ones, vec![uuid(1), uuid(2)]);
    assert_eq!(
        t.find(&["n", "flag"], &[Datum::from(2), Datum::empty_set()])
            .unwrap()
            .len(),
        1
    );
    assert!(matches!(
        t.find(&["flag"], &[Datum::empty_set()]),
        Err(ReplicaError::NoIndex { .. })
    ));
    assert!(matches!(
        t.find(&["n"], &[]),
        Err(ReplicaError::KeyLength { .. })
    ));
    assert!(matches!(
        r.add_index("T", &["zz"]),
        Err(ReplicaError::UnknownColumn { .. })
    ));
    assert!(matches!(
        r.add_index("Z", &["n"]),
        Err(ReplicaError::UnknownTable { .. })
    ));
}

#[test]
fn indexes_on_a_map_key() {
    let mut r = replica();
    let tag = "ovnkit.io/object";
    for (u, name, ext) in [
        (1, "a", json!(["map", [[tag, "pod/default/web"]]])),
        (
            2,
            "b",
            json!(["map", [[tag, "pod/default/web"], ["x", "1"]]]),
        ),
        (3, "c", json!(["map", [[tag, "pod/default/db"]]])),
        (4, "d", json!(["map", [["x", "1"]]])),
    ] {
        r.apply_notification(
            "update2",
            &u2(json!({"T": {uuid(u).to_string(): {"insert": {"name": name, "ext": ext}}}})),
        )
        .unwrap();
    }
    let spec = "ext:ovnkit.io/object";
    r.add_index("T", &[spec]).unwrap();
    r.add_index("T", &["name", spec]).unwrap();
    let found = |r: &Replica, cols: &[&str], key: &[Datum]| -> Vec<Uuid> {
        let snap = r.snapshot();
        let mut v: Vec<Uuid> = snap
            .table("T")
            .unwrap()
            .find(cols, key)
            .unwrap()
            .iter()
            .map(RowView::uuid)
            .collect();
        v.sort();
        v
    };
    let web = Datum::from("pod/default/web");
    assert_eq!(
        found(&r, &[spec], std::slice::from_ref(&web)),
        vec![uuid(1), uuid(2)]
    );
    // Rows without the key are found by the empty set.
    assert_eq!(found(&r, &[spec], &[Datum::empty_set()]), vec![uuid(4)]);
    assert_eq!(
        found(&r, &["name", spec], &[Datum::from("b"), web.clone()]),
        vec![uuid(2)]
    );
    assert!(
        r.snapshot()
            .table("T")
            .unwrap()
            .indexes()
            .any(|cols| cols == vec!["name", spec])
    );

    // Kept up to date by updates: a's tag changes, b loses it, c goes.
    r.apply_notification(
        "update2",
        &u2(json!({"T": {
            uuid(1).to_string(): {"modify": {"ext": ["map", [[tag, "pod/default/db"]]]}},
            uuid(2).to_string(): {"modify": {"ext": ["map", [[tag, "pod/default/web"]]]}},
            uuid(3).to_string(): {"delete": null}}})),
    )
    .unwrap();
    assert!(found(&r, &[spec], &[web]).is_empty());
    assert_eq!(
        found(&r, &[spec], &[Datum::from("pod/default/db")]),
        vec![uuid(1)]
    );
    assert_eq!(
        found(&r, &[spec], &[Datum::empty_set()]),
        vec![uuid(2), uuid(4)]
    );

    // What cannot be indexed says why.
    assert!(matches!(
        r.add_index("T", &["nope:k"]),
        Err(ReplicaError::UnknownColumn { ref column, .. }) if column == "nope"
    ));
    let e = r.add_index("T", &["name:k"]).unwrap_err();
    assert!(matches!(e, ReplicaError::BadIndexPart { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "table T: cannot index \"name:k\": column name is not a map"
    );
    assert!(matches!(
        r.snapshot()
            .table("T")
            .unwrap()
            .find(&["ext:other"], &[Datum::empty_set()]),
        Err(ReplicaError::NoIndex { .. })
    ));
}

#[test]
fn update_v1_replace_keeps_unsent_columns() {
    let mut r = replica();
    let a = uuid(1).to_string();
    r.apply_notification(
        "update",
        &json!([null, {"T": {&a: {"new": {"name": "a", "n": 1}}}}]).to_string(),
    )
    .unwrap();
    r.apply_notification(
        "update",
        &json!([null, {"T": {&a: {"old": {"n": 1}, "new": {"n": 2}}}}]).to_string(),
    )
    .unwrap();
    let snap = r.snapshot();
    let row = snap.table("T").unwrap().get(uuid(1)).unwrap();
    assert_eq!(row.get("name"), Some(&Datum::from("a")));
    assert_eq!(row.get("n"), Some(&Datum::from(2)));
    r.apply_notification(
        "update",
        &json!([null, {"T": {&a: {"old": {"n": 2}}}}]).to_string(),
    )
    .unwrap();
    assert!(r.snapshot().table("T").unwrap().is_empty());
}

#[test]
fn replace_rejects_non_initial_rows() {
    let mut r = replica();
    let err = r
        .apply_reply(
            &monitor().with_method(MonitorMethod::MonitorCondSince),
            &json!([false, uuid(9), {"T": {uuid(1).to_string(): {"modify": {"n": 1}}}}])
                .to_string(),
        )
        .unwrap_err();
    assert!(matches!(err, ReplicaError::NotInitial { .. }), "{err}");
    assert!(!r.is_synced());
}

#[test]
fn reply_without_initial_contents_keeps_the_table() {
    let mut r = replica();
    r.apply_reply(
        &monitor(),
        &json!({"T": {uuid(1).to_string(): {"initial": {"name": "a"}}}}).to_string(),
    )
    .unwrap();
    let no_initial = crate::monitor::MonitorSelect {
        initial: false,
        ..Default::default()
    };
    let m = MonitorRequest::new("DB", MonitorMethod::MonitorCond)
        .with_table("T", TableMonitor::all().with_select(no_initial));
    r.apply_reply(&m, "{}").unwrap();
    assert_eq!(r.snapshot().table("T").unwrap().len(), 1);
    // With the initial contents selected, an empty reply empties the table.
    r.apply_reply(&monitor(), "{}").unwrap();
    assert!(r.snapshot().table("T").unwrap().is_empty());
}

#[test]
fn one_call_may_touch_a_row_twice_among_many() {
    use crate::monitor::{RowUpdate, TableUpdate};
    let mut r = replica();
    let layout = r.layout().clone();
    let (t, tl) = layout.table("T").unwrap();
    let name = tl.column_id("name").unwrap();
    let n = tl.column_id("n").unwrap();
    let mut rows: Vec<RowUpdate> = (0..40)
        .map(|i| RowUpdate {
            uuid: uuid(i),
            op: RowOp::Insert(vec![(name, Datum::from(format!("r{i}")))].into()),
        })
        .collect();
    rows.push(RowUpdate {
        uuid: uuid(30),
        op: RowOp::Modify(vec![(n, Datum::from(7))]),
    });
    rows.push(RowUpdate {
        uuid: uuid(3),
        op: RowOp::Delete,
    });
    let applied = r
        .apply(TableUpdates {
            tables: vec![TableUpdate { table: t, rows }],
        })
        .unwrap();
    assert_eq!(
        (applied.inserted, applied.modified, applied.deleted),
        (39, 0, 0)
    );
    let snap = r.snapshot();
    let view = snap.table("T").unwrap();
    assert_eq!(view.len(), 39);
    assert_eq!(view.get(uuid(30)).unwrap().get("n"), Some(&Datum::from(7)));
    assert!(view.get(uuid(3)).is_none());
    // A second insert of a row already in this call fails the whole call.
    let dup = vec![
        RowUpdate {
            uuid: uuid(100),
            op: RowOp::Insert(vec![].into()),
        },
        RowUpdate {
            uuid: uuid(100),
            op: RowOp::Insert(vec![].into()),
        },
    ];
    assert!(matches!(
        r.apply(TableUpdates {
            tables: vec![TableUpdate {
                table: t,
                rows: dup
            }],
        }),
        Err(ReplicaError::RowExists { .. })
    ));
    assert_eq!(r.snapshot().table("T").unwrap().len(), 39);
}
