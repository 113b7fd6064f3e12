//! Applying `update2` diffs (ovsdb-server(7), "modify").

use std::cmp::Ordering;

use crate::schema::ColumnType;
use crate::value::{Atom, Datum, Map, Set};

/// Applies an `update2` "modify" diff for one column to its old value, as ovsdb-server(7)
/// defines it:
///
/// - a column that holds at most one element (`max` 1: scalars and optional values, as
///   ovsdb-server's `ovsdb_type_is_composite` says): the diff is the new value;
/// - a set: the diff is the symmetric difference of the old and new sets, so every element of
///   the diff is toggled;
/// - a map: for each pair of the diff, a key absent from the old map is added, a key present
///   with a different value takes the diff's value, and a key present with the same value is
///   removed.
///
/// Returns `None` when the shapes do not fit (a map diff for a set, or the reverse).
///
/// ```
/// use ovsdb::{ColumnType, Datum};
/// use ovsdb::replica::apply_diff;
///
/// let set: ColumnType = serde_json::from_str(r#"{"key":"string","min":0,"max":"unlimited"}"#).unwrap();
/// let old = Datum::set(["a", "b"]);
/// assert_eq!(apply_diff(&set, &old, Datum::set(["b", "c"])), Some(Datum::set(["a", "c"])));
///
/// let map: ColumnType =
///     serde_json::from_str(r#"{"key":"string","value":"string","min":0,"max":"unlimited"}"#).unwrap();
/// let old = Datum::map([("keep", "1"), ("drop", "2"), ("change", "3")]);
/// let diff = Datum::map([("drop", "2"), ("change", "4"), ("add", "5")]);
/// assert_eq!(
///     apply_diff(&map, &old, diff),
///     Some(Datum::map([("keep", "1"), ("change", "4"), ("add", "5")]))
/// );
/// ```
#[must_use]
pub fn apply_diff(ty: &ColumnType, old: &Datum, diff: Datum) -> Option<Datum> {
    if matches!(ty.max, crate::Max::Limited(0 | 1)) {
        return Some(diff);
    }
    match (old, diff) {
        (Datum::Set(old), Datum::Set(diff)) if !ty.is_map() => Some(Datum::Set(set_xor(old, diff))),
        (Datum::Map(old), Datum::Map(diff)) if ty.is_map() => Some(Datum::Map(map_diff(old, diff))),
        _ => None,
    }
}

fn set_xor(old: &Set, diff: Set) -> Set {
    let a = old.as_slice();
    let mut out = Vec::with_capacity(a.len() + diff.len());
    let mut i = 0;
    for atom in diff.into_vec() {
        while i < a.len() && a[i] < atom {
            out.push(a[i].clone());
            i += 1;
        }
        if i < a.len() && a[i] == atom {
            i += 1; // in both: toggled off
        } else {
            out.push(atom);
        }
    }
    out.extend(a[i..].iter().cloned());
    Set::from_vec(out)
}

fn map_diff(old: &Map, diff: Map) -> Map {
    let a = old.as_slice();
    let mut out: Vec<(Atom, Atom)> = Vec::with_capacity(a.len() + diff.len());
    let mut i = 0;
    for (k, v) in diff.into_vec() {
        while i < a.len() && a[i].0 < k {
            out.push(a[i].clone());
            i += 1;
        }
        match a.get(i).map(|p| p.0.cmp(&k)) {
            Some(Ordering::Equal) => {
                if a[i].1 != v {
                    out.push((k, v));
                }
                i += 1;
            }
            _ => out.push((k, v)),
        }
    }
    out.extend(a[i..].iter().cloned());
    Map::from_vec(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(json: &str) -> ColumnType {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn scalar_diff_is_the_new_value() {
        let t = ty(r#""string""#);
        assert_eq!(
            apply_diff(&t, &Datum::from("a"), Datum::from("b")),
            Some(Datum::from("b"))
        );
    }

    #[test]
    fn optional_column_diff_is_the_new_value() {
        // ovsdb-server sends the new value for columns of at most one element (seen on the
        // wire: `enabled` going from [true] to [false] arrives as `"enabled": false`).
        let t = ty(r#"{"key":"boolean","min":0,"max":1}"#);
        let old = Datum::set([true]);
        assert_eq!(
            apply_diff(&t, &old, Datum::set([false])),
            Some(Datum::set([false]))
        );
        assert_eq!(
            apply_diff(&t, &old, Datum::empty_set()),
            Some(Datum::empty_set())
        );
        assert_eq!(
            apply_diff(&t, &Datum::empty_set(), Datum::set([true])),
            Some(Datum::set([true]))
        );
    }

    #[test]
    fn shape_mismatch_is_none() {
        let t = ty(r#"{"key":"string","value":"string","min":0,"max":"unlimited"}"#);
        assert_eq!(apply_diff(&t, &Datum::empty_map(), Datum::set(["x"])), None);
    }
}
