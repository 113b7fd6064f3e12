//! A row: column names to values, as written in `insert`/`update`/`wait` and read from `select`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::value::{Atom, Datum, Uuid};

/// Column values of one row, ordered by column name.
///
/// ```
/// use ovsdb::{Datum, Row};
///
/// let row = Row::new().with("name", "sw0").with("external_ids", Datum::map([("owner", "me")]));
/// assert_eq!(serde_json::to_string(&row).unwrap(),
///            r#"{"external_ids":["map",[["owner","me"]]],"name":"sw0"}"#);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Row(BTreeMap<String, Datum>);

impl Row {
    /// An empty row.
    #[must_use]
    pub fn new() -> Self {
        Row(BTreeMap::new())
    }

    /// Adds a column value (builder style).
    #[must_use]
    pub fn with(mut self, column: impl Into<String>, value: impl Into<Datum>) -> Self {
        self.0.insert(column.into(), value.into());
        self
    }

    /// Sets a column value, returning the previous one.
    pub fn insert(&mut self, column: impl Into<String>, value: impl Into<Datum>) -> Option<Datum> {
        self.0.insert(column.into(), value.into())
    }

    /// Removes a column.
    pub fn remove(&mut self, column: &str) -> Option<Datum> {
        self.0.remove(column)
    }

    /// The value of `column`.
    #[must_use]
    pub fn get(&self, column: &str) -> Option<&Datum> {
        self.0.get(column)
    }

    /// The single atom of `column`, if it holds exactly one.
    #[must_use]
    pub fn atom(&self, column: &str) -> Option<&Atom> {
        self.get(column).and_then(Datum::as_atom)
    }

    /// The row's `_uuid`, if the row carries it (rows from `select` do unless columns were chosen).
    #[must_use]
    pub fn uuid(&self) -> Option<Uuid> {
        self.atom("_uuid").and_then(Atom::as_uuid)
    }

    /// The row's `_version`, if the row carries it.
    #[must_use]
    pub fn version(&self) -> Option<Uuid> {
        self.atom("_version").and_then(Atom::as_uuid)
    }

    /// Iterates over `(column, value)` in column order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Datum)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The column names, in order.
    pub fn columns(&self) -> impl ExactSizeIterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Number of columns.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the row has no column.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The underlying map.
    #[must_use]
    pub fn into_inner(self) -> BTreeMap<String, Datum> {
        self.0
    }
}

impl<K: Into<String>, V: Into<Datum>> FromIterator<(K, V)> for Row {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Row(iter
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect())
    }
}

impl From<BTreeMap<String, Datum>> for Row {
    fn from(m: BTreeMap<String, Datum>) -> Self {
        Row(m)
    }
}

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Row;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a row object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Row, A::Error> {
                let mut row = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, Datum>()? {
                    row.insert(k, v);
                }
                Ok(Row(row))
            }
        }
        d.deserialize_map(V)
    }
}
