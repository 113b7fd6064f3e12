//! OVSDB values: atoms, sets, maps, UUIDs and named UUIDs (RFC 7047 section 5.1).
//!
//! A column always holds a [`Datum`]: either a [`Set`] of atoms (a scalar column is a set of
//! exactly one atom, an optional column a set of zero or one) or a [`Map`] from key atoms to
//! value atoms. Both keep their elements sorted and unique, as OVSDB does, so that two data
//! with the same content compare equal whatever order they were built in.
//!
//! The JSON encoding is implemented directly on serde's data model (no detour through
//! `serde_json::Value`): [`Datum`] and [`Atom`] implement `Serialize` and an untyped
//! `Deserialize`, and [`DatumSeed`] decodes against a [`ColumnType`](crate::ColumnType).
//! Reals round-trip bit for bit (the crate enables serde_json's `float_roundtrip`), so a value
//! read from the server and written back is unchanged.
//!
//! ```
//! use ovsdb::{Atom, Datum};
//!
//! let tags = Datum::set([Atom::from(3), Atom::from(1), Atom::from(3)]);
//! assert_eq!(serde_json::to_string(&tags).unwrap(), r#"["set",[1,3]]"#);
//! let one = Datum::from("x");
//! assert_eq!(serde_json::to_string(&one).unwrap(), r#""x""#);
//! let back: Datum = serde_json::from_str(r#"["map",[["k","v"]]]"#).unwrap();
//! assert_eq!(back.as_map().unwrap().get(&Atom::from("k")), Some(&Atom::from("v")));
//! ```

mod json;
mod typed;
mod uuid;

use std::cmp::Ordering;
use std::fmt;

pub use typed::{AtomSeed, DatumSeed, RowSeed};
pub use uuid::{NamedUuid, Uuid};

/// Why a value could not be built from its parts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The text is not a UUID in the `8-4-4-4-12` hexadecimal form.
    #[error("invalid UUID {text:?}")]
    InvalidUuid {
        /// The text that was given.
        text: String,
    },
    /// The text is not a valid named-UUID (an identifier: `[A-Za-z_][A-Za-z0-9_]*`).
    #[error("invalid named-uuid {text:?}: must match [A-Za-z_][A-Za-z0-9_]*")]
    InvalidNamedUuid {
        /// The text that was given.
        text: String,
    },
}

/// The five atomic types of OVSDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AtomicType {
    /// 64-bit signed integer.
    Integer,
    /// IEEE 754 double.
    Real,
    /// `true` or `false`.
    Boolean,
    /// UTF-8 string.
    String,
    /// Row UUID (or a named UUID within a transaction).
    Uuid,
}

impl AtomicType {
    /// The name used in schemas (`"integer"`, `"real"`, ...).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            AtomicType::Integer => "integer",
            AtomicType::Real => "real",
            AtomicType::Boolean => "boolean",
            AtomicType::String => "string",
            AtomicType::Uuid => "uuid",
        }
    }

    /// Parses a schema type name.
    #[must_use]
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "integer" => AtomicType::Integer,
            "real" => AtomicType::Real,
            "boolean" => AtomicType::Boolean,
            "string" => AtomicType::String,
            "uuid" => AtomicType::Uuid,
            _ => return None,
        })
    }
}

impl fmt::Display for AtomicType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One atomic value.
///
/// Equality and order are total: reals compare with [`f64::total_cmp`], atoms of different types
/// order by type (integer < real < boolean < string < uuid < named-uuid).
#[derive(Debug, Clone)]
pub enum Atom {
    /// An integer.
    Integer(i64),
    /// A real.
    Real(f64),
    /// A boolean.
    Boolean(bool),
    /// A string.
    String(String),
    /// A row UUID.
    Uuid(Uuid),
    /// A reference to a row inserted earlier in the same transaction.
    NamedUuid(NamedUuid),
}

impl Atom {
    /// The atomic type of this atom (a named UUID is of type `uuid`).
    #[must_use]
    pub fn atomic_type(&self) -> AtomicType {
        match self {
            Atom::Integer(_) => AtomicType::Integer,
            Atom::Real(_) => AtomicType::Real,
            Atom::Boolean(_) => AtomicType::Boolean,
            Atom::String(_) => AtomicType::String,
            Atom::Uuid(_) | Atom::NamedUuid(_) => AtomicType::Uuid,
        }
    }

    /// The integer, if this is one.
    #[must_use]
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Atom::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The real, if this is one (integers are not converted).
    #[must_use]
    pub fn as_real(&self) -> Option<f64> {
        match self {
            Atom::Real(r) => Some(*r),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    #[must_use]
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Atom::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The string, if this is one.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Atom::String(s) => Some(s),
            _ => None,
        }
    }

    /// The UUID, if this is one.
    #[must_use]
    pub fn as_uuid(&self) -> Option<Uuid> {
        match self {
            Atom::Uuid(u) => Some(*u),
            _ => None,
        }
    }

    /// The named UUID, if this is one.
    #[must_use]
    pub fn as_named_uuid(&self) -> Option<&NamedUuid> {
        match self {
            Atom::NamedUuid(n) => Some(n),
            _ => None,
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Atom::Integer(_) => 0,
            Atom::Real(_) => 1,
            Atom::Boolean(_) => 2,
            Atom::String(_) => 3,
            Atom::Uuid(_) => 4,
            Atom::NamedUuid(_) => 5,
        }
    }
}

impl PartialEq for Atom {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Atom {}

impl PartialOrd for Atom {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Atom {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Atom::Integer(a), Atom::Integer(b)) => a.cmp(b),
            (Atom::Real(a), Atom::Real(b)) => a.total_cmp(b),
            (Atom::Boolean(a), Atom::Boolean(b)) => a.cmp(b),
            (Atom::String(a), Atom::String(b)) => a.cmp(b),
            (Atom::Uuid(a), Atom::Uuid(b)) => a.cmp(b),
            (Atom::NamedUuid(a), Atom::NamedUuid(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl std::hash::Hash for Atom {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.rank().hash(state);
        match self {
            Atom::Integer(i) => i.hash(state),
            Atom::Real(r) => r.to_bits().hash(state),
            Atom::Boolean(b) => b.hash(state),
            Atom::String(s) => s.hash(state),
            Atom::Uuid(u) => u.hash(state),
            Atom::NamedUuid(n) => n.hash(state),
        }
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Atom::Integer(i) => write!(f, "{i}"),
            Atom::Real(r) => write!(f, "{r}"),
            Atom::Boolean(b) => write!(f, "{b}"),
            Atom::String(s) => write!(f, "{s:?}"),
            Atom::Uuid(u) => write!(f, "{u}"),
            Atom::NamedUuid(n) => write!(f, "@{n}"),
        }
    }
}

impl From<i64> for Atom {
    fn from(v: i64) -> Self {
        Atom::Integer(v)
    }
}
impl From<i32> for Atom {
    fn from(v: i32) -> Self {
        Atom::Integer(v.into())
    }
}
impl From<u32> for Atom {
    fn from(v: u32) -> Self {
        Atom::Integer(v.into())
    }
}
impl From<f64> for Atom {
    fn from(v: f64) -> Self {
        Atom::Real(v)
    }
}
impl From<bool> for Atom {
    fn from(v: bool) -> Self {
        Atom::Boolean(v)
    }
}
impl From<String> for Atom {
    fn from(v: String) -> Self {
        Atom::String(v)
    }
}
impl From<&str> for Atom {
    fn from(v: &str) -> Self {
        Atom::String(v.to_owned())
    }
}
impl From<Uuid> for Atom {
    fn from(v: Uuid) -> Self {
        Atom::Uuid(v)
    }
}
impl From<NamedUuid> for Atom {
    fn from(v: NamedUuid) -> Self {
        Atom::NamedUuid(v)
    }
}
impl From<&NamedUuid> for Atom {
    fn from(v: &NamedUuid) -> Self {
        Atom::NamedUuid(v.clone())
    }
}

/// A sorted set of unique atoms.
///
/// A one-atom set (every scalar column value) is stored inline, without a heap allocation of
/// its own.
#[derive(Clone)]
pub struct Set(Atoms);

/// The storage of a [`Set`]: `Many` holds zero or at least two atoms.
#[derive(Clone)]
enum Atoms {
    One(Atom),
    Many(Vec<Atom>),
}

impl Set {
    /// The empty set.
    #[must_use]
    pub const fn new() -> Self {
        Set(Atoms::Many(Vec::new()))
    }

    /// The set of one atom.
    #[must_use]
    pub const fn one(atom: Atom) -> Self {
        Set(Atoms::One(atom))
    }

    /// A set from atoms in any order; duplicates are dropped.
    pub fn from_atoms(atoms: impl IntoIterator<Item = Atom>) -> Self {
        Set::from_vec(atoms.into_iter().collect())
    }

    pub(crate) fn from_vec(mut v: Vec<Atom>) -> Self {
        if !v.is_sorted_by(|a, b| a < b) {
            v.sort_unstable();
            v.dedup();
        }
        if v.len() == 1
            && let Some(a) = v.pop()
        {
            return Set(Atoms::One(a));
        }
        Set(Atoms::Many(v))
    }

    /// The atoms, in order.
    #[must_use]
    pub fn as_slice(&self) -> &[Atom] {
        match &self.0 {
            Atoms::One(a) => std::slice::from_ref(a),
            Atoms::Many(v) => v,
        }
    }

    /// Iterates over the atoms in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Atom> {
        self.as_slice().iter()
    }

    /// Number of atoms.
    #[must_use]
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    /// Whether `atom` is in the set.
    #[must_use]
    pub fn contains(&self, atom: &Atom) -> bool {
        self.as_slice().binary_search(atom).is_ok()
    }

    /// Adds an atom (no effect if present).
    pub fn insert(&mut self, atom: Atom) {
        let Err(i) = self.as_slice().binary_search(&atom) else {
            return;
        };
        let mut v = std::mem::take(self).into_vec();
        v.insert(i, atom);
        *self = Set::from_vec(v);
    }

    /// The atoms, by value.
    #[must_use]
    pub fn into_vec(self) -> Vec<Atom> {
        match self.0 {
            Atoms::One(a) => vec![a],
            Atoms::Many(v) => v,
        }
    }
}

impl Default for Set {
    fn default() -> Self {
        Set::new()
    }
}

impl fmt::Debug for Set {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Set").field(&self.as_slice()).finish()
    }
}

impl PartialEq for Set {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Set {}

impl PartialOrd for Set {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Set {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl std::hash::Hash for Set {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl FromIterator<Atom> for Set {
    fn from_iter<I: IntoIterator<Item = Atom>>(iter: I) -> Self {
        Set::from_atoms(iter)
    }
}

impl<'a> IntoIterator for &'a Set {
    type Item = &'a Atom;
    type IntoIter = std::slice::Iter<'a, Atom>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// A map from unique key atoms to value atoms, sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Map(Vec<(Atom, Atom)>);

impl Map {
    /// The empty map.
    #[must_use]
    pub const fn new() -> Self {
        Map(Vec::new())
    }

    /// A map from pairs in any order; for a repeated key the last pair wins.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (Atom, Atom)>) -> Self {
        Map::from_vec(pairs.into_iter().collect())
    }

    pub(crate) fn from_vec(mut v: Vec<(Atom, Atom)>) -> Self {
        if !v.is_sorted_by(|a, b| a.0 < b.0) {
            // Stable sort keeps the input order of equal keys, so "last wins" is well defined.
            v.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out: Vec<(Atom, Atom)> = Vec::with_capacity(v.len());
            for (k, val) in v {
                match out.last_mut() {
                    Some(last) if last.0 == k => last.1 = val,
                    _ => out.push((k, val)),
                }
            }
            v = out;
        }
        Map(v)
    }

    /// The pairs, in key order.
    #[must_use]
    pub fn as_slice(&self) -> &[(Atom, Atom)] {
        &self.0
    }

    /// Iterates over the pairs in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Atom, &Atom)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// Number of pairs.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the map is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value for `key`.
    #[must_use]
    pub fn get(&self, key: &Atom) -> Option<&Atom> {
        self.0
            .binary_search_by(|(k, _)| k.cmp(key))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// Sets `key` to `value`, replacing any previous value.
    pub fn insert(&mut self, key: Atom, value: Atom) {
        match self.0.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (key, value)),
        }
    }

    /// The pairs, by value.
    #[must_use]
    pub fn into_vec(self) -> Vec<(Atom, Atom)> {
        self.0
    }
}

impl FromIterator<(Atom, Atom)> for Map {
    fn from_iter<I: IntoIterator<Item = (Atom, Atom)>>(iter: I) -> Self {
        Map::from_pairs(iter)
    }
}

/// The value of a column: a set of atoms or a map.
///
/// A scalar value is a one-element set ([`Datum::from`] an atom or a Rust scalar builds one).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Datum {
    /// A set (also scalars and optional values).
    Set(Set),
    /// A map.
    Map(Map),
}

impl Datum {
    /// The empty set (`["set",[]]`).
    #[must_use]
    pub const fn empty_set() -> Self {
        Datum::Set(Set::new())
    }

    /// The empty map (`["map",[]]`).
    #[must_use]
    pub const fn empty_map() -> Self {
        Datum::Map(Map::new())
    }

    /// A set from atoms (or anything that converts into atoms).
    pub fn set<A: Into<Atom>>(atoms: impl IntoIterator<Item = A>) -> Self {
        Datum::Set(Set::from_atoms(atoms.into_iter().map(Into::into)))
    }

    /// A map from key/value pairs (of anything that converts into atoms).
    pub fn map<K: Into<Atom>, V: Into<Atom>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Datum::Map(Map::from_pairs(
            pairs.into_iter().map(|(k, v)| (k.into(), v.into())),
        ))
    }

    /// An optional value: the empty set for `None`, a one-element set for `Some`.
    pub fn optional<A: Into<Atom>>(atom: Option<A>) -> Self {
        Datum::Set(atom.map_or_else(Set::new, |a| Set::one(a.into())))
    }

    /// The set, if this is one.
    #[must_use]
    pub fn as_set(&self) -> Option<&Set> {
        match self {
            Datum::Set(s) => Some(s),
            Datum::Map(_) => None,
        }
    }

    /// The map, if this is one.
    #[must_use]
    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Datum::Map(m) => Some(m),
            Datum::Set(_) => None,
        }
    }

    /// The only atom of a one-element set.
    #[must_use]
    pub fn as_atom(&self) -> Option<&Atom> {
        match self {
            Datum::Set(Set(Atoms::One(a))) => Some(a),
            _ => None,
        }
    }

    /// Number of atoms (set) or pairs (map).
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Datum::Set(s) => s.len(),
            Datum::Map(m) => m.len(),
        }
    }

    /// Whether the datum has no element.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every atom of the datum (keys and values of a map), in order.
    pub fn atoms(&self) -> impl Iterator<Item = &Atom> {
        let (set, map) = match self {
            Datum::Set(s) => (s.as_slice(), &[][..]),
            Datum::Map(m) => (&[][..], m.as_slice()),
        };
        set.iter().chain(map.iter().flat_map(|(k, v)| [k, v]))
    }
}

impl<T: Into<Atom>> From<T> for Datum {
    fn from(v: T) -> Self {
        Datum::Set(Set::one(v.into()))
    }
}

impl From<Set> for Datum {
    fn from(s: Set) -> Self {
        Datum::Set(s)
    }
}

impl From<Map> for Datum {
    fn from(m: Map) -> Self {
        Datum::Map(m)
    }
}

impl fmt::Display for Datum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&serde_json::to_string(self).map_err(|_| fmt::Error)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_sort_and_dedup() {
        let s = Set::from_atoms([Atom::from(3), Atom::from(1), Atom::from(3)]);
        assert_eq!(s.as_slice(), &[Atom::from(1), Atom::from(3)]);
        assert!(s.contains(&Atom::from(3)));
    }

    #[test]
    fn maps_keep_last_value_of_repeated_key() {
        let m = Map::from_pairs([
            (Atom::from("b"), Atom::from(1)),
            (Atom::from("a"), Atom::from(2)),
            (Atom::from("b"), Atom::from(3)),
        ]);
        assert_eq!(m.len(), 2);
        assert_eq!(m.get(&Atom::from("b")), Some(&Atom::from(3)));
    }

    #[test]
    fn reals_order_totally() {
        assert_eq!(Atom::Real(-0.0).cmp(&Atom::Real(0.0)), Ordering::Less);
        assert_eq!(Atom::Real(1.5), Atom::Real(1.5));
    }
}
