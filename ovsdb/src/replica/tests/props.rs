//! Properties: update2 diffs against full-row updates, diff rules, resync, indexes, changes.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{replica, uuid};
use crate::replica::{Changes, Replica, apply_diff};
use crate::{ColumnType, Datum, Row, Uuid};

#[derive(Debug, Clone, PartialEq)]
struct Vals {
    name: String,
    n: i64,
    flag: Option<bool>,
    tags: BTreeSet<i64>,
    ext: BTreeMap<String, String>,
}

const COLUMNS: [&str; 5] = ["name", "n", "flag", "tags", "ext"];

impl Vals {
    fn datum(&self, col: &str) -> Datum {
        match col {
            "name" => Datum::from(self.name.as_str()),
            "n" => Datum::from(self.n),
            "flag" => Datum::optional(self.flag),
            "tags" => Datum::set(self.tags.iter().copied()),
            _ => Datum::map(self.ext.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        }
    }

    fn take(&self, other: &Vals, mask: u8) -> Vals {
        Vals {
            name: if mask & 1 != 0 {
                other.name.clone()
            } else {
                self.name.clone()
            },
            n: if mask & 2 != 0 { other.n } else { self.n },
            flag: if mask & 4 != 0 { other.flag } else { self.flag },
            tags: if mask & 8 != 0 {
                other.tags.clone()
            } else {
                self.tags.clone()
            },
            ext: if mask & 16 != 0 {
                other.ext.clone()
            } else {
                self.ext.clone()
            },
        }
    }

    fn row(&self, u: Uuid) -> Row {
        let mut row: Row = COLUMNS.iter().map(|c| (*c, self.datum(c))).collect();
        row.insert("_uuid", u);
        row
    }
}

fn j(d: &Datum) -> Value {
    serde_json::to_value(d).expect("datum encodes")
}

fn vals() -> impl Strategy<Value = Vals> {
    (
        prop::sample::select(vec!["", "a", "b", "c"]),
        0i64..3,
        prop::option::of(any::<bool>()),
        prop::collection::btree_set(0i64..4, 0..4),
        prop::collection::btree_map(
            prop::sample::select(vec!["k1", "k2", "k3"]),
            prop::sample::select(vec!["x", "y"]),
            0..3,
        ),
    )
        .prop_map(|(name, n, flag, tags, ext)| Vals {
            name: name.to_owned(),
            n,
            flag,
            tags,
            ext: ext
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        })
}

/// One row action: slot, action selector, values, column mask.
type Action = (u8, u8, Vals, u8);

fn steps() -> impl Strategy<Value = Vec<(Vec<Action>, bool)>> {
    prop::collection::vec(
        (
            prop::collection::vec((0u8..6, any::<u8>(), vals(), any::<u8>()), 1..4),
            any::<bool>(),
        ),
        1..25,
    )
}

/// The update2 diff of one column, computed as ovsdb-server(7) describes it.
fn diff(col: &str, old: &Vals, new: &Vals) -> Datum {
    match col {
        // At most one element: the new value (ovsdb_type_is_composite is false).
        "name" | "n" | "flag" => new.datum(col),
        "tags" => Datum::set(old.tags.symmetric_difference(&new.tags).copied()),
        _ => {
            let mut pairs: Vec<(String, String)> = Vec::new();
            for (k, v) in &old.ext {
                match new.ext.get(k) {
                    None => pairs.push((k.clone(), v.clone())), // removed: old pair
                    Some(nv) if nv != v => pairs.push((k.clone(), nv.clone())), // changed: new value
                    Some(_) => {}
                }
            }
            for (k, v) in &new.ext {
                if !old.ext.contains_key(k) {
                    pairs.push((k.clone(), v.clone())); // added
                }
            }
            Datum::map(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        }
    }
}

/// Builds the update2 and update notifications of one step and advances the model.
fn step(model: &mut BTreeMap<u8, Vals>, actions: &[Action]) -> (String, String) {
    let mut u2 = serde_json::Map::new();
    let mut u1 = serde_json::Map::new();
    let mut seen = BTreeSet::new();
    for (slot, action, v, mask) in actions {
        if !seen.insert(*slot) {
            continue;
        }
        let key = uuid(u128::from(*slot)).to_string();
        match model.get(slot).cloned() {
            None => {
                let all = action % 2 == 0;
                let cols: serde_json::Map<String, Value> = COLUMNS
                    .iter()
                    .map(|c| ((*c).to_owned(), v.datum(c)))
                    .filter(|(c, d)| all || *d != Vals::default_for(c))
                    .map(|(c, d)| (c, j(&d)))
                    .collect();
                let full: serde_json::Map<String, Value> = COLUMNS
                    .iter()
                    .map(|c| ((*c).to_owned(), j(&v.datum(c))))
                    .collect();
                u2.insert(key.clone(), json!({"insert": cols}));
                u1.insert(key, json!({"new": full}));
                model.insert(*slot, v.clone());
            }
            Some(old) if action % 3 == 0 => {
                let full: serde_json::Map<String, Value> = COLUMNS
                    .iter()
                    .map(|c| ((*c).to_owned(), j(&old.datum(c))))
                    .collect();
                u2.insert(key.clone(), json!({"delete": null}));
                u1.insert(key, json!({"old": full}));
                model.remove(slot);
            }
            Some(old) => {
                let new = old.take(v, *mask);
                let changed: Vec<&str> = COLUMNS
                    .iter()
                    .copied()
                    .filter(|c| old.datum(c) != new.datum(c))
                    .collect();
                if changed.is_empty() {
                    continue;
                }
                let d: serde_json::Map<String, Value> = changed
                    .iter()
                    .map(|c| ((*c).to_owned(), j(&diff(c, &old, &new))))
                    .collect();
                let o: serde_json::Map<String, Value> = changed
                    .iter()
                    .map(|c| ((*c).to_owned(), j(&old.datum(c))))
                    .collect();
                let full: serde_json::Map<String, Value> = COLUMNS
                    .iter()
                    .map(|c| ((*c).to_owned(), j(&new.datum(c))))
                    .collect();
                u2.insert(key.clone(), json!({"modify": d}));
                u1.insert(key, json!({"old": o, "new": full}));
                model.insert(*slot, new);
            }
        }
    }
    (
        json!([null, {"T": u2}]).to_string(),
        json!([null, {"T": u1}]).to_string(),
    )
}

impl Vals {
    fn default_for(col: &str) -> Datum {
        match col {
            "name" => Datum::from(""),
            "n" => Datum::from(0),
            "ext" => Datum::empty_map(),
            _ => Datum::empty_set(),
        }
    }
}

fn expected(model: &BTreeMap<u8, Vals>) -> BTreeMap<Uuid, Row> {
    model
        .iter()
        .map(|(s, v)| (uuid(u128::from(*s)), v.row(uuid(u128::from(*s)))))
        .collect()
}

fn rows_of(r: &Replica) -> BTreeMap<Uuid, Row> {
    r.snapshot().table("T").expect("table T").to_rows()
}

/// The value of index part `spec` (a column, or `column:key` of a map) in `row`, computed
/// without the index.
fn part(row: &crate::replica::RowView<'_>, spec: &str) -> Datum {
    match spec.split_once(':') {
        Some((col, key)) => row
            .get(col)
            .and_then(Datum::as_map)
            .and_then(|m| m.get(&crate::Atom::from(key)))
            .map_or_else(Datum::empty_set, |v| Datum::from(v.clone())),
        None => row.get(spec).cloned().unwrap_or_else(Datum::empty_set),
    }
}

/// Index parts checked against a scan: plain columns, map keys, and a mix.
const INDEXES: [&[&str]; 4] = [&["name"], &["n", "flag"], &["ext:k1"], &["name", "ext:k2"]];

fn add_indexes(r: &mut Replica) {
    for cols in &INDEXES[1..] {
        r.add_index("T", cols).expect("index");
    }
}

fn check_indexes(r: &Replica) -> Result<(), TestCaseError> {
    let snap = r.snapshot();
    let t = snap.table("T").expect("table T");
    let probes = [Datum::empty_set(), Datum::from("x"), Datum::from("y")];
    for cols in INDEXES {
        let mut keys: Vec<Vec<Datum>> = t
            .rows()
            .map(|row| cols.iter().map(|c| part(&row, c)).collect())
            .collect();
        // Map-key values no row may hold, and rows lacking the key.
        for p in &probes {
            keys.push(
                cols.iter()
                    .map(|c| {
                        if c.contains(':') {
                            p.clone()
                        } else {
                            Datum::from("a")
                        }
                    })
                    .collect(),
            );
        }
        for key in keys {
            let mut found: Vec<Uuid> = t
                .find(cols, &key)
                .expect("index")
                .iter()
                .map(|r| r.uuid())
                .collect();
            found.sort();
            let mut brute: Vec<Uuid> = t
                .rows()
                .filter(|o| cols.iter().zip(&key).all(|(c, k)| part(o, c) == *k))
                .map(|o| o.uuid())
                .collect();
            brute.sort();
            prop_assert_eq!(found, brute, "index on {:?}", cols);
        }
    }
    Ok(())
}

fn check_changes(
    set: &Changes,
    before: &BTreeMap<Uuid, Row>,
    now: &BTreeMap<Uuid, Row>,
    touched: &BTreeSet<Uuid>,
) -> Result<(), TestCaseError> {
    let empty = Default::default();
    let t = set.table("T").unwrap_or(&empty);
    let ins: BTreeSet<Uuid> = now
        .keys()
        .filter(|u| !before.contains_key(u))
        .copied()
        .collect();
    let del: BTreeSet<Uuid> = before
        .keys()
        .filter(|u| !now.contains_key(u))
        .copied()
        .collect();
    // Every row present at both pulls that had any event in between is reported modified,
    // and nothing else is.
    let modi: BTreeSet<Uuid> = now
        .keys()
        .filter(|u| before.contains_key(u) && touched.contains(u))
        .copied()
        .collect();
    prop_assert_eq!(t.inserted.iter().copied().collect::<BTreeSet<_>>(), ins);
    prop_assert_eq!(t.deleted.iter().copied().collect::<BTreeSet<_>>(), del);
    prop_assert_eq!(t.modified.iter().copied().collect::<BTreeSet<_>>(), modi);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Applying update2 diffs gives the same replica as applying the equivalent full-row
    /// `update` notifications, and both equal the model; indexes and change sets stay exact.
    #[test]
    fn update2_equals_update_model(steps in steps()) {
        let mut a = replica();
        let mut b = replica();
        add_indexes(&mut a);
        add_indexes(&mut b);
        let (consumer, _) = a.subscribe();
        let mut model = BTreeMap::new();
        let mut at_take = BTreeMap::new();
        let mut touched = BTreeSet::new();
        for (actions, take) in &steps {
            let before = model.clone();
            let (u2, u1) = step(&mut model, actions);
            a.apply_notification("update2", &u2).expect("update2 applies");
            b.apply_notification("update", &u1).expect("update applies");
            for (s, v) in &before {
                if model.get(s) != Some(v) {
                    touched.insert(uuid(u128::from(*s)));
                }
            }
            let want = expected(&model);
            prop_assert_eq!(&rows_of(&a), &want);
            prop_assert_eq!(&rows_of(&b), &want);
            check_indexes(&a)?;
            check_indexes(&b)?;
            if *take {
                let (set, snap) = a.take_changes(consumer).expect("consumer");
                prop_assert_eq!(snap.seq(), set.seq);
                check_changes(&set, &at_take, &want, &touched)?;
                at_take = want;
                touched.clear();
            }
        }
    }

    /// A full resync replaces the contents and reports exactly the difference.
    #[test]
    fn resync_reports_the_difference(
        old in prop::collection::btree_map(0u8..8, vals(), 0..8),
        new in prop::collection::btree_map(0u8..8, vals(), 0..8),
    ) {
        let monitor = crate::monitor::MonitorRequest::new("DB", crate::monitor::MonitorMethod::MonitorCond)
            .with_table("T", crate::monitor::TableMonitor::all());
        let contents = |m: &BTreeMap<u8, Vals>| {
            let rows: serde_json::Map<String, Value> = m.iter().map(|(s, v)| {
                let cols: serde_json::Map<String, Value> =
                    COLUMNS.iter().map(|c| ((*c).to_owned(), j(&v.datum(c)))).collect();
                (uuid(u128::from(*s)).to_string(), json!({"initial": cols}))
            }).collect();
            json!({"T": rows}).to_string()
        };
        let mut r = replica();
        add_indexes(&mut r);
        r.apply_reply(&monitor, &contents(&old)).expect("first sync");
        let (c, _) = r.subscribe();
        r.mark_unsynced();
        let applied = r.apply_reply(&monitor, &contents(&new)).expect("resync");
        prop_assert!(r.is_synced());
        let (set, _) = r.take_changes(c).expect("consumer");
        let before = expected(&old);
        let now = expected(&new);
        let changed: BTreeSet<Uuid> = now.iter().filter(|(u, row)| before.get(u).is_some_and(|o| o != *row)).map(|(u, _)| *u).collect();
        check_changes(&set, &before, &now, &changed)?;
        prop_assert_eq!(applied.modified, changed.len());
        prop_assert_eq!(rows_of(&r), now);
        check_indexes(&r)?;
    }

    /// ovsdb-server(7) diff rules: applying diff(old, new) to old gives new, for sets (the
    /// symmetric difference), maps (changed keys carry the new value, removed keys the old) and
    /// columns of at most one element (the new value).
    #[test]
    fn diffs_follow_the_rfc(a in vals(), b in vals()) {
        let set: ColumnType = serde_json::from_str(r#"{"key":"integer","min":0,"max":"unlimited"}"#).expect("type");
        let opt: ColumnType = serde_json::from_str(r#"{"key":"boolean","min":0,"max":1}"#).expect("type");
        let map: ColumnType = serde_json::from_str(r#"{"key":"string","value":"string","min":0,"max":"unlimited"}"#).expect("type");
        let int: ColumnType = serde_json::from_str(r#""integer""#).expect("type");
        for (col, ty) in [("tags", &set), ("flag", &opt), ("ext", &map), ("n", &int)] {
            let got = apply_diff(ty, &a.datum(col), diff(col, &a, &b));
            prop_assert_eq!(got, Some(b.datum(col)), "column {}", col);
        }
        // A map pair with the same key and value as the old one removes the key.
        if let Some((k, v)) = a.ext.iter().next() {
            let got = apply_diff(&map, &a.datum("ext"), Datum::map([(k.as_str(), v.as_str())])).expect("fits");
            prop_assert!(got.as_map().expect("map").get(&crate::Atom::from(k.as_str())).is_none());
        }
    }
}
