//! Decoding values against their schema type.
//!
//! Untyped decoding cannot know that `1` in a `real` column is the real `1.0`, nor reject a
//! string in an integer column; these seeds can. They check atomic types and the set/map shape,
//! not the constraints (enums, ranges, sizes): use [`ColumnType::check`] for those.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};

use super::json::{AtomVisitor, DatumVisitor};
use super::{Atom, AtomicType, Datum};
use crate::Row;
use crate::schema::{ColumnType, TableSchema};

/// Decodes one [`Atom`] of a known [`AtomicType`] (an integer is accepted for a real).
///
/// ```
/// use ovsdb::{Atom, AtomSeed, AtomicType};
/// use serde::de::DeserializeSeed;
///
/// let mut de = serde_json::Deserializer::from_str("1");
/// assert_eq!(AtomSeed(AtomicType::Real).deserialize(&mut de).unwrap(), Atom::Real(1.0));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AtomSeed(pub AtomicType);

impl<'de> DeserializeSeed<'de> for AtomSeed {
    type Value = Atom;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Atom, D::Error> {
        d.deserialize_any(AtomVisitor { ty: Some(self.0) })
    }
}

/// Decodes a [`Datum`] of a known [`ColumnType`].
///
/// ```
/// use ovsdb::{ColumnType, Datum, DatumSeed};
///
/// let ty: ColumnType = serde_json::from_str(r#"{"key":"real","min":0,"max":"unlimited"}"#).unwrap();
/// let d = DatumSeed(&ty).decode_str("2").unwrap();
/// assert_eq!(d, Datum::from(2.0));
/// assert!(DatumSeed(&ty).decode_str(r#""two""#).is_err());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct DatumSeed<'a>(pub &'a ColumnType);

impl DatumSeed<'_> {
    /// Decodes JSON text.
    pub fn decode_str(self, json: &str) -> Result<Datum, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(json);
        let d = self.deserialize(&mut de)?;
        de.end()?;
        Ok(d)
    }

    /// Decodes an already parsed JSON value.
    pub fn decode_value(self, json: &serde_json::Value) -> Result<Datum, serde_json::Error> {
        self.deserialize(json)
    }
}

impl<'de> DeserializeSeed<'de> for DatumSeed<'_> {
    type Value = Datum;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Datum, D::Error> {
        d.deserialize_any(DatumVisitor { ty: Some(self.0) })
    }
}

/// Decodes a [`Row`] (a JSON object of column name to value) against a [`TableSchema`].
///
/// The implicit `_uuid` and `_version` columns are accepted; any other column the table does not
/// have is an error naming it.
#[derive(Debug, Clone, Copy)]
pub struct RowSeed<'a>(pub &'a TableSchema);

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = Row;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Row, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = Row;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a row of table {}", self.0.name)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Row, A::Error> {
        let mut row = Row::new();
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let Some(col) = self.0.column(&name) else {
                return Err(de::Error::custom(format_args!(
                    "unknown column {name} in table {}",
                    self.0.name
                )));
            };
            let datum = map.next_value_seed(DatumSeed(&col.type_))?;
            row.insert(name.into_owned(), datum);
        }
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(json: &str) -> ColumnType {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn bare_atom_decodes_as_one_element_set() {
        let t = ty(r#"{"key":"integer","min":0,"max":"unlimited"}"#);
        assert_eq!(DatumSeed(&t).decode_str("5").unwrap(), Datum::set([5]));
    }

    #[test]
    fn map_column_requires_map_form() {
        let t = ty(r#"{"key":"string","value":"string","min":0,"max":"unlimited"}"#);
        assert!(DatumSeed(&t).decode_str(r#"["set",[]]"#).is_err());
        assert!(DatumSeed(&t).decode_str(r#""x""#).is_err());
        let m = DatumSeed(&t).decode_str(r#"["map",[["a","b"]]]"#).unwrap();
        assert_eq!(m, Datum::map([("a", "b")]));
        assert!(DatumSeed(&t).decode_str(r#"["map",[["a",1]]]"#).is_err());
    }

    #[test]
    fn typed_decoding_rejects_wrong_atom_type() {
        let t = ty(r#""integer""#);
        assert!(DatumSeed(&t).decode_str("1.5").is_err());
        assert!(
            DatumSeed(&t)
                .decode_str(r#"["uuid","550e8400-e29b-41d4-a716-446655440000"]"#)
                .is_err()
        );
        let u = ty(r#"{"key":{"type":"uuid","refTable":"T"}}"#);
        assert!(
            DatumSeed(&u)
                .decode_str(r#"["uuid","550e8400-e29b-41d4-a716-446655440000"]"#)
                .is_ok()
        );
        assert!(
            DatumSeed(&u)
                .decode_str(r#""550e8400-e29b-41d4-a716-446655440000""#)
                .is_err()
        );
    }
}
