//! RFC 7047 JSON encoding of values, written straight against serde's data model.
//!
//! Encoding: a one-element set is written as its bare atom, any other set as
//! `["set",[...]]`, a map as `["map",[[k,v],...]]`, a UUID as `["uuid","..."]` and a named UUID
//! as `["named-uuid","..."]`. Decoding without a column type (the `Deserialize` impls here) is
//! exact except that it cannot tell a real written as an integer (`1`) from an integer; decode
//! with [`DatumSeed`](super::DatumSeed) when the column type is known.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, SeqAccess, Unexpected, Visitor};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Deserializer, Serialize};

use super::{Atom, AtomicType, Datum, Map, NamedUuid, Set, Uuid};
use crate::schema::ColumnType;

impl Serialize for Uuid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = uuid::Uuid::encode_buffer();
        s.serialize_str(self.0.hyphenated().encode_lower(&mut buf))
    }
}

impl<'de> Deserialize<'de> for Uuid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(UuidStrVisitor)
    }
}

struct UuidStrVisitor;

impl Visitor<'_> for UuidStrVisitor {
    type Value = Uuid;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a UUID string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Uuid, E> {
        v.parse().map_err(E::custom)
    }
}

impl Serialize for NamedUuid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for NamedUuid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(NamedStrVisitor)
    }
}

struct NamedStrVisitor;

impl Visitor<'_> for NamedStrVisitor {
    type Value = NamedUuid;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a named-uuid identifier")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<NamedUuid, E> {
        NamedUuid::new(v).map_err(E::custom)
    }
}

impl Serialize for Atom {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Atom::Integer(i) => s.serialize_i64(*i),
            Atom::Real(r) => s.serialize_f64(*r),
            Atom::Boolean(b) => s.serialize_bool(*b),
            Atom::String(v) => s.serialize_str(v),
            Atom::Uuid(u) => {
                let mut t = s.serialize_tuple(2)?;
                t.serialize_element("uuid")?;
                t.serialize_element(u)?;
                t.end()
            }
            Atom::NamedUuid(n) => {
                let mut t = s.serialize_tuple(2)?;
                t.serialize_element("named-uuid")?;
                t.serialize_element(n.as_str())?;
                t.end()
            }
        }
    }
}

impl Serialize for Set {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let [one] = self.as_slice() {
            return one.serialize(s);
        }
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element("set")?;
        t.serialize_element(self.as_slice())?;
        t.end()
    }
}

impl Serialize for Map {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element("map")?;
        t.serialize_element(self.0.as_slice())?;
        t.end()
    }
}

impl Serialize for Datum {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Datum::Set(set) => set.serialize(s),
            Datum::Map(map) => map.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Atom {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AtomVisitor { ty: None })
    }
}

impl<'de> Deserialize<'de> for Datum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DatumVisitor { ty: None })
    }
}

/// The first element of a tagged JSON array.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Tag {
    Set,
    Map,
    Uuid,
    NamedUuid,
}

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Tag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#""set", "map", "uuid" or "named-uuid""#)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Tag, E> {
                Ok(match v {
                    "set" => Tag::Set,
                    "map" => Tag::Map,
                    "uuid" => Tag::Uuid,
                    "named-uuid" => Tag::NamedUuid,
                    other => {
                        return Err(E::unknown_variant(
                            other,
                            &["set", "map", "uuid", "named-uuid"],
                        ));
                    }
                })
            }
        }
        d.deserialize_str(V)
    }
}

fn finish<'de, A: SeqAccess<'de>>(mut seq: A, what: &str) -> Result<(), A::Error> {
    if seq.next_element::<IgnoredAny>()?.is_some() {
        return Err(de::Error::custom(format_args!(
            "trailing elements after {what}"
        )));
    }
    Ok(())
}

fn need<T, E: de::Error>(v: Option<T>, what: &str) -> Result<T, E> {
    v.ok_or_else(|| E::custom(format_args!("missing {what}")))
}

/// Decodes the tail of `["uuid", "..."]` or `["named-uuid", "..."]` after the tag.
fn tagged_uuid<'de, A: SeqAccess<'de>>(tag: Tag, mut seq: A) -> Result<Atom, A::Error> {
    let atom = if tag == Tag::Uuid {
        Atom::Uuid(need(seq.next_element::<Uuid>()?, "UUID string")?)
    } else {
        Atom::NamedUuid(need(seq.next_element::<NamedUuid>()?, "named-uuid string")?)
    };
    finish(seq, "a UUID")?;
    Ok(atom)
}

/// Decodes one atom, of a given type or (with `ty: None`) of whatever type the JSON shows.
#[derive(Clone, Copy)]
pub(super) struct AtomVisitor {
    pub(super) ty: Option<AtomicType>,
}

impl AtomVisitor {
    fn mismatch<E: de::Error>(self, unexp: Unexpected<'_>) -> Result<Atom, E> {
        Err(E::invalid_type(unexp, &self))
    }
}

impl<'de> Visitor<'de> for AtomVisitor {
    type Value = Atom;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ty {
            None => f.write_str("an OVSDB atom"),
            Some(AtomicType::Uuid) => f.write_str(r#"a ["uuid", ...] or ["named-uuid", ...] atom"#),
            Some(t) => write!(f, "an atom of type {t}"),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Atom, E> {
        match self.ty {
            None | Some(AtomicType::Integer) => Ok(Atom::Integer(v)),
            #[allow(clippy::cast_precision_loss)]
            Some(AtomicType::Real) => Ok(Atom::Real(v as f64)),
            Some(_) => self.mismatch(Unexpected::Signed(v)),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Atom, E> {
        match (self.ty, i64::try_from(v)) {
            (_, Ok(i)) => self.visit_i64(i),
            #[allow(clippy::cast_precision_loss)]
            (Some(AtomicType::Real), Err(_)) => Ok(Atom::Real(v as f64)),
            (_, Err(_)) => Err(E::invalid_value(
                Unexpected::Unsigned(v),
                &"a 64-bit signed integer",
            )),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Atom, E> {
        match self.ty {
            None | Some(AtomicType::Real) => Ok(Atom::Real(v)),
            Some(_) => self.mismatch(Unexpected::Float(v)),
        }
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Atom, E> {
        match self.ty {
            None | Some(AtomicType::Boolean) => Ok(Atom::Boolean(v)),
            Some(_) => self.mismatch(Unexpected::Bool(v)),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Atom, E> {
        match self.ty {
            None | Some(AtomicType::String) => Ok(Atom::String(v.to_owned())),
            Some(_) => self.mismatch(Unexpected::Str(v)),
        }
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Atom, E> {
        match self.ty {
            None | Some(AtomicType::String) => Ok(Atom::String(v)),
            Some(_) => self.mismatch(Unexpected::Str(&v)),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Atom, A::Error> {
        match self.ty {
            None | Some(AtomicType::Uuid) => {}
            Some(_) => return self.mismatch(Unexpected::Seq),
        }
        match need(seq.next_element::<Tag>()?, "tag")? {
            tag @ (Tag::Uuid | Tag::NamedUuid) => tagged_uuid(tag, seq),
            Tag::Set | Tag::Map => self.mismatch(Unexpected::Seq),
        }
    }
}

impl<'de> DeserializeSeed<'de> for AtomVisitor {
    type Value = Atom;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Atom, D::Error> {
        d.deserialize_any(self)
    }
}

/// Decodes `[atom, ...]`.
struct AtomsSeed(AtomVisitor);

impl<'de> DeserializeSeed<'de> for AtomsSeed {
    type Value = Vec<Atom>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Atom>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for AtomsSeed {
    type Value = Vec<Atom>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of atoms")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Atom>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(a) = seq.next_element_seed(self.0)? {
            out.push(a);
        }
        Ok(out)
    }
}

/// Decodes `[[key, value], ...]`.
struct PairsSeed(AtomVisitor, AtomVisitor);

impl<'de> DeserializeSeed<'de> for PairsSeed {
    type Value = Vec<(Atom, Atom)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for PairsSeed {
    type Value = Vec<(Atom, Atom)>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of [key, value] pairs")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(p) = seq.next_element_seed(PairSeed(self.0, self.1))? {
            out.push(p);
        }
        Ok(out)
    }
}

struct PairSeed(AtomVisitor, AtomVisitor);

impl<'de> DeserializeSeed<'de> for PairSeed {
    type Value = (Atom, Atom);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for PairSeed {
    type Value = (Atom, Atom);
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a [key, value] pair")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let k = need(seq.next_element_seed(self.0)?, "map key")?;
        let v = need(seq.next_element_seed(self.1)?, "map value")?;
        finish(seq, "a map pair")?;
        Ok((k, v))
    }
}

/// Decodes a datum, against a column type or (with `ty: None`) as the JSON shows.
#[derive(Clone, Copy)]
pub(super) struct DatumVisitor<'a> {
    pub(super) ty: Option<&'a ColumnType>,
}

impl DatumVisitor<'_> {
    fn key(&self) -> AtomVisitor {
        AtomVisitor {
            ty: self.ty.map(|t| t.key.atomic),
        }
    }

    fn value(&self) -> AtomVisitor {
        AtomVisitor {
            ty: self.ty.and_then(|t| t.value.as_ref().map(|v| v.atomic)),
        }
    }

    fn is_map(&self) -> bool {
        self.ty.is_some_and(ColumnType::is_map)
    }

    fn scalar<E: de::Error>(self, r: Result<Atom, E>, unexp: Unexpected<'_>) -> Result<Datum, E> {
        if self.is_map() {
            return Err(E::invalid_type(unexp, &self));
        }
        r.map(Datum::from)
    }
}

impl<'de> Visitor<'de> for DatumVisitor<'_> {
    type Value = Datum;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ty {
            None => f.write_str("an OVSDB value"),
            Some(t) if t.is_map() => write!(f, r#"a ["map", ...] of {t}"#),
            Some(t) => write!(f, r#"an atom or ["set", ...] of {t}"#),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Datum, E> {
        self.scalar(self.key().visit_i64(v), Unexpected::Signed(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Datum, E> {
        self.scalar(self.key().visit_u64(v), Unexpected::Unsigned(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Datum, E> {
        self.scalar(self.key().visit_f64(v), Unexpected::Float(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Datum, E> {
        self.scalar(self.key().visit_bool(v), Unexpected::Bool(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Datum, E> {
        self.scalar(self.key().visit_str(v), Unexpected::Str(v))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Datum, E> {
        if self.is_map() {
            return Err(E::invalid_type(Unexpected::Str(&v), &self));
        }
        self.key().visit_string(v).map(Datum::from)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Datum, A::Error> {
        let tag = need(seq.next_element::<Tag>()?, "tag")?;
        let datum = match tag {
            Tag::Map => {
                if self.ty.is_some() && !self.is_map() {
                    return Err(de::Error::invalid_type(Unexpected::Other("a map"), &self));
                }
                let pairs = need(
                    seq.next_element_seed(PairsSeed(self.key(), self.value()))?,
                    "map pairs",
                )?;
                Datum::Map(Map::from_vec(pairs))
            }
            Tag::Set => {
                if self.is_map() {
                    return Err(de::Error::invalid_type(Unexpected::Other("a set"), &self));
                }
                let atoms = need(seq.next_element_seed(AtomsSeed(self.key()))?, "set atoms")?;
                Datum::Set(Set::from_vec(atoms))
            }
            Tag::Uuid | Tag::NamedUuid => {
                if self.is_map() || self.ty.is_some_and(|t| t.key.atomic != AtomicType::Uuid) {
                    return Err(de::Error::invalid_type(Unexpected::Other("a UUID"), &self));
                }
                return tagged_uuid(tag, seq).map(Datum::from);
            }
        };
        finish(seq, "a set or map")?;
        Ok(datum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(d: &Datum) -> String {
        serde_json::to_string(d).unwrap()
    }

    fn dec(s: &str) -> Datum {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn encodes_rfc7047_forms() {
        let u: Uuid = "550e8400-e29b-41d4-a716-446655440000".parse().unwrap();
        assert_eq!(enc(&Datum::empty_set()), r#"["set",[]]"#);
        assert_eq!(enc(&Datum::empty_map()), r#"["map",[]]"#);
        assert_eq!(enc(&Datum::from(7)), "7");
        assert_eq!(
            enc(&Datum::from(u)),
            r#"["uuid","550e8400-e29b-41d4-a716-446655440000"]"#
        );
        let n = NamedUuid::new("r1").unwrap();
        assert_eq!(enc(&Datum::from(n)), r#"["named-uuid","r1"]"#);
        assert_eq!(enc(&Datum::set([true, false])), r#"["set",[false,true]]"#);
        assert_eq!(
            enc(&Datum::map([("b", 2), ("a", 1)])),
            r#"["map",[["a",1],["b",2]]]"#
        );
        assert_eq!(enc(&Datum::from("q\"\u{e9}")), "\"q\\\"\u{e9}\"");
    }

    #[test]
    fn decodes_untyped_forms() {
        assert_eq!(dec("7"), Datum::from(7));
        assert_eq!(dec("7.5"), Datum::from(7.5));
        assert_eq!(dec(r#"["set",[]]"#), Datum::empty_set());
        assert_eq!(dec(r#"["map",[]]"#), Datum::empty_map());
        assert_eq!(dec(r#"["set",[3,1,3]]"#), Datum::set([1, 3]));
        let u = dec(r#"["uuid","550e8400-e29b-41d4-a716-446655440000"]"#);
        assert!(u.as_atom().and_then(Atom::as_uuid).is_some());
        assert_eq!(dec(r#"["set",[["named-uuid","x"]]]"#).len(), 1);
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            r#"["uuid","nope"]"#,
            r#"["named-uuid","1x"]"#,
            r#"["bag",[]]"#,
            r#"["set",[],1]"#,
            r#"["map",[["k"]]]"#,
            r#"["map",[[1,2,3]]]"#,
            "18446744073709551615",
            "null",
            "{}",
            "[]",
        ] {
            assert!(serde_json::from_str::<Datum>(bad).is_err(), "{bad} decoded");
        }
    }
}
