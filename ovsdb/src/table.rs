//! Typed tables: the [`Table`] trait that generated models implement (see `ovsdb-codegen`),
//! typed row references ([`Ref`], [`WeakRef`]), and the [`Decoder`] and [`Encoder`] that the
//! generated `from_row` and `to_row` are written with.
//!
//! Decoding is forgiving: a row from a newer or older server decodes whatever it holds; an
//! unknown enum value becomes the enum's `Other(..)` variant, a missing column its default, a
//! value of the wrong type the default plus a [`DecodeWarning`], and extra columns are ignored.
//! Encoding is strict: every value is checked against the model's own schema (enum values,
//! integer ranges, string lengths, set sizes) and a violation is an [`EncodeError`] naming the
//! table and column.
//!
//! ```
//! use ovsdb::table::{Decoder, Ref};
//! use ovsdb::{Datum, Row, Uuid};
//!
//! struct Port;
//! let row = Row::new()
//!     .with("name", 7) // wrong type: a warning, the default
//!     .with("ports", Datum::set([Uuid::from_u128(1)]));
//! let mut d = Decoder::new("Switch", &row);
//! let name: String = d.scalar("name");
//! let ports: std::collections::BTreeSet<Ref<Port>> = d.set("ports");
//! let warnings = d.finish();
//! assert_eq!(name, "");
//! assert_eq!(ports.len(), 1);
//! assert_eq!(warnings.len(), 1);
//! assert_eq!(warnings[0].column, "name");
//! ```

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use crate::row::Row;
use crate::schema::{ConstraintError, TableSchema};
use crate::value::{Atom, AtomicType, Datum, Map, NamedUuid, Set, Uuid};

/// A typed row of one table: what `ovsdb-codegen` generates for every table of a schema.
pub trait Table: Sized + Clone + fmt::Debug + Default + PartialEq {
    /// The table's name in the schema (e.g. `Logical_Switch`).
    const TABLE: &'static str;
    /// The model's columns, in schema order (without `_uuid` and `_version`).
    const COLUMNS: &'static [&'static str];
    /// Whether the table is a garbage-collection root: rows of a non-root table live only as
    /// long as another row refers to them.
    const IS_ROOT: bool;

    /// The row's `_uuid` (nil for a row not read from a server).
    fn uuid(&self) -> Uuid;

    /// The model's schema of this table, against which [`Table::to_row`] checks values.
    fn table_schema() -> &'static TableSchema;

    /// Decodes a row, forgivingly: never fails, reports what it had to default.
    fn from_row(uuid: Uuid, row: &Row) -> (Self, Vec<DecodeWarning>);

    /// Writes every column into `encoder` (which checks them against [`Table::table_schema`]).
    fn encode(&self, encoder: &mut Encoder) -> Result<(), EncodeError>;

    /// Encodes every column, strictly: a value the model does not allow is an error.
    fn to_row(&self) -> Result<Row, EncodeError> {
        let mut e = Encoder::new(Self::TABLE, Self::table_schema());
        self.encode(&mut e)?;
        Ok(e.finish())
    }

    /// Encodes only `columns` (for an `update` that leaves the other columns alone); the other
    /// columns are neither written nor checked.
    fn to_row_columns(&self, columns: &[&str]) -> Result<Row, EncodeError> {
        if let Some(c) = columns.iter().find(|c| !Self::COLUMNS.contains(c)) {
            return Err(EncodeError::UnknownColumn {
                table: Self::TABLE,
                column: (*c).to_owned(),
            });
        }
        let mut e = Encoder::new(Self::TABLE, Self::table_schema());
        e.only = Some(columns.iter().map(|c| (*c).to_owned()).collect());
        self.encode(&mut e)?;
        Ok(e.finish())
    }
}

/// What [`Table::from_row`] had to forgive in one column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeWarning {
    /// Table.
    pub table: &'static str,
    /// Column.
    pub column: &'static str,
    /// What was wrong.
    pub problem: DecodeProblem,
}

impl fmt::Display for DecodeWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "table {}, column {}: {}",
            self.table, self.column, self.problem
        )
    }
}

/// The kinds of problem a forgiving decode reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeProblem {
    /// The row has no such column (an older server, or a projection): the default was used.
    Missing,
    /// The value's shape (set, map, number of atoms) does not fit: the default was used.
    Shape {
        /// What the value looked like, as JSON.
        found: String,
    },
    /// An atom has the wrong type: it was dropped (the default was used for a scalar).
    AtomType {
        /// The atom.
        atom: String,
        /// The atomic type the model wants.
        expected: AtomicType,
    },
    /// A domain decoder (override) rejected the value: the default was used.
    Domain {
        /// Why.
        reason: String,
    },
}

impl fmt::Display for DecodeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeProblem::Missing => f.write_str("missing, using the default"),
            DecodeProblem::Shape { found } => {
                write!(f, "unexpected value {found}, using the default")
            }
            DecodeProblem::AtomType { atom, expected } => {
                write!(f, "atom {atom} is not of type {expected}, dropped")
            }
            DecodeProblem::Domain { reason } => write!(f, "{reason}, using the default"),
        }
    }
}

/// Why [`Table::to_row`] refused a value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The value breaks the column's constraints in the model's schema.
    #[error("table {table}, column {column}: the value breaks the column's constraints")]
    Constraint {
        /// Table.
        table: &'static str,
        /// Column.
        column: &'static str,
        /// The broken constraint.
        #[source]
        source: ConstraintError,
    },
    /// A domain encoder (override) rejected the value.
    #[error("table {table}, column {column}: {reason}")]
    Domain {
        /// Table.
        table: &'static str,
        /// Column.
        column: &'static str,
        /// Why.
        reason: String,
    },
    /// The column is not in the model.
    #[error("table {table} has no column {column} in the model")]
    UnknownColumn {
        /// Table.
        table: &'static str,
        /// Column.
        column: String,
    },
}

/// A Rust value stored as one OVSDB atom.
pub trait AtomValue: Sized {
    /// The atomic type in the schema.
    const TYPE: AtomicType;
    /// The value, if the atom has the right type (enums accept any string).
    fn from_atom(atom: &Atom) -> Option<Self>;
    /// The atom.
    fn to_atom(&self) -> Atom;
}

impl AtomValue for i64 {
    const TYPE: AtomicType = AtomicType::Integer;
    fn from_atom(atom: &Atom) -> Option<Self> {
        atom.as_integer()
    }
    fn to_atom(&self) -> Atom {
        Atom::Integer(*self)
    }
}

impl AtomValue for f64 {
    const TYPE: AtomicType = AtomicType::Real;
    #[allow(clippy::cast_precision_loss)] // An integer in a real column is that real.
    fn from_atom(atom: &Atom) -> Option<Self> {
        atom.as_real()
            .or_else(|| atom.as_integer().map(|i| i as f64))
    }
    fn to_atom(&self) -> Atom {
        Atom::Real(*self)
    }
}

impl AtomValue for bool {
    const TYPE: AtomicType = AtomicType::Boolean;
    fn from_atom(atom: &Atom) -> Option<Self> {
        atom.as_bool()
    }
    fn to_atom(&self) -> Atom {
        Atom::Boolean(*self)
    }
}

impl AtomValue for String {
    const TYPE: AtomicType = AtomicType::String;
    fn from_atom(atom: &Atom) -> Option<Self> {
        atom.as_str().map(str::to_owned)
    }
    fn to_atom(&self) -> Atom {
        Atom::String(self.clone())
    }
}

impl AtomValue for Uuid {
    const TYPE: AtomicType = AtomicType::Uuid;
    fn from_atom(atom: &Atom) -> Option<Self> {
        atom.as_uuid()
    }
    fn to_atom(&self) -> Atom {
        Atom::Uuid(*self)
    }
}

/// The target of a row reference: a row's UUID, or the named UUID of a row inserted earlier in
/// the same transaction.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RowId {
    /// An existing row.
    Uuid(Uuid),
    /// A row inserted in the same transaction.
    Named(NamedUuid),
}

impl RowId {
    /// The atom written on the wire.
    #[must_use]
    pub fn to_atom(&self) -> Atom {
        match self {
            RowId::Uuid(u) => Atom::Uuid(*u),
            RowId::Named(n) => Atom::NamedUuid(n.clone()),
        }
    }

    /// The UUID, if this refers to an existing row.
    #[must_use]
    pub fn uuid(&self) -> Option<Uuid> {
        match self {
            RowId::Uuid(u) => Some(*u),
            RowId::Named(_) => None,
        }
    }

    fn from_atom(atom: &Atom) -> Option<Self> {
        match atom {
            Atom::Uuid(u) => Some(RowId::Uuid(*u)),
            Atom::NamedUuid(n) => Some(RowId::Named(n.clone())),
            _ => None,
        }
    }
}

impl fmt::Display for RowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowId::Uuid(u) => write!(f, "{u}"),
            RowId::Named(n) => write!(f, "@{n}"),
        }
    }
}

macro_rules! typed_ref {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name<T> {
            id: RowId,
            _table: PhantomData<fn() -> T>,
        }

        impl<T> $name<T> {
            /// A reference to an existing row.
            #[must_use]
            pub fn new(uuid: Uuid) -> Self {
                Self::from_id(RowId::Uuid(uuid))
            }

            /// A reference to the row inserted as `name` in the same transaction.
            #[must_use]
            pub fn named(name: NamedUuid) -> Self {
                Self::from_id(RowId::Named(name))
            }

            /// A reference to `id`.
            #[must_use]
            pub fn from_id(id: RowId) -> Self {
                Self { id, _table: PhantomData }
            }

            /// The target.
            #[must_use]
            pub fn id(&self) -> &RowId {
                &self.id
            }

            /// The UUID, if the reference is to an existing row.
            #[must_use]
            pub fn uuid(&self) -> Option<Uuid> {
                self.id.uuid()
            }
        }

        impl<T> Clone for $name<T> {
            fn clone(&self) -> Self {
                Self::from_id(self.id.clone())
            }
        }
        impl<T> PartialEq for $name<T> {
            fn eq(&self, other: &Self) -> bool {
                self.id == other.id
            }
        }
        impl<T> Eq for $name<T> {}
        impl<T> PartialOrd for $name<T> {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }
        impl<T> Ord for $name<T> {
            fn cmp(&self, other: &Self) -> Ordering {
                self.id.cmp(&other.id)
            }
        }
        impl<T> Hash for $name<T> {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.id.hash(state);
            }
        }
        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.id)
            }
        }
        impl<T> fmt::Display for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.id, f)
            }
        }
        impl<T> Default for $name<T> {
            /// A reference to the nil UUID (what a missing reference decodes to).
            fn default() -> Self {
                Self::new(Uuid::NIL)
            }
        }
        impl<T> From<Uuid> for $name<T> {
            fn from(u: Uuid) -> Self {
                Self::new(u)
            }
        }
        impl<T> From<NamedUuid> for $name<T> {
            fn from(n: NamedUuid) -> Self {
                Self::named(n)
            }
        }
        impl<T> AtomValue for $name<T> {
            const TYPE: AtomicType = AtomicType::Uuid;
            fn from_atom(atom: &Atom) -> Option<Self> {
                RowId::from_atom(atom).map(Self::from_id)
            }
            fn to_atom(&self) -> Atom {
                self.id.to_atom()
            }
        }
    };
}

typed_ref!(
    /// A strong reference to a row of table `T`: the row cannot be deleted while referenced, and
    /// a non-root row lives as long as something refers to it.
    Ref
);
typed_ref!(
    /// A weak reference to a row of table `T`: it disappears when the row is deleted.
    WeakRef
);

/// Reads columns of one row forgivingly, collecting [`DecodeWarning`]s.
#[derive(Debug)]
pub struct Decoder<'a> {
    table: &'static str,
    row: &'a Row,
    warnings: Vec<DecodeWarning>,
}

impl<'a> Decoder<'a> {
    /// A decoder for `row` of `table`.
    #[must_use]
    pub fn new(table: &'static str, row: &'a Row) -> Self {
        Decoder {
            table,
            row,
            warnings: Vec::new(),
        }
    }

    fn warn(&mut self, column: &'static str, problem: DecodeProblem) {
        self.warnings.push(DecodeWarning {
            table: self.table,
            column,
            problem,
        });
    }

    fn datum(&mut self, column: &'static str) -> Option<&'a Datum> {
        let d = self.row.get(column);
        if d.is_none() {
            self.warn(column, DecodeProblem::Missing);
        }
        d
    }

    fn atom<T: AtomValue>(&mut self, column: &'static str, atom: &Atom) -> Option<T> {
        let v = T::from_atom(atom);
        if v.is_none() {
            self.warn(
                column,
                DecodeProblem::AtomType {
                    atom: atom.to_string(),
                    expected: T::TYPE,
                },
            );
        }
        v
    }

    fn shape(&mut self, column: &'static str, d: &Datum) {
        self.warn(
            column,
            DecodeProblem::Shape {
                found: d.to_string(),
            },
        );
    }

    /// A column holding exactly one atom; the default when it cannot be read.
    pub fn scalar<T: AtomValue + Default>(&mut self, column: &'static str) -> T {
        self.scalar_or(column, T::default())
    }

    /// A column holding exactly one atom; `fallback` when it cannot be read.
    pub fn scalar_or<T: AtomValue>(&mut self, column: &'static str, fallback: T) -> T {
        let Some(d) = self.datum(column) else {
            return fallback;
        };
        match d.as_atom() {
            Some(a) => self.atom(column, a).unwrap_or(fallback),
            None => {
                self.shape(column, d);
                fallback
            }
        }
    }

    /// A column holding zero or one atom.
    pub fn optional<T: AtomValue>(&mut self, column: &'static str) -> Option<T> {
        let d = self.datum(column)?;
        match d {
            Datum::Set(s) if s.is_empty() => None,
            Datum::Set(s) if s.len() == 1 => self.atom(column, &s.as_slice()[0]),
            _ => {
                self.shape(column, d);
                None
            }
        }
    }

    fn atoms(&mut self, column: &'static str) -> &'a [Atom] {
        match self.datum(column) {
            None => &[],
            Some(Datum::Set(s)) => s.as_slice(),
            Some(d @ Datum::Map(_)) => {
                self.shape(column, d);
                &[]
            }
        }
    }

    /// A set column, as an ordered set; atoms of the wrong type are dropped with a warning.
    pub fn set<T: AtomValue + Ord>(&mut self, column: &'static str) -> BTreeSet<T> {
        let atoms = self.atoms(column);
        atoms.iter().filter_map(|a| self.atom(column, a)).collect()
    }

    /// A set column, as a vector in the set's order (for element types that are not `Ord`).
    pub fn vec<T: AtomValue>(&mut self, column: &'static str) -> Vec<T> {
        let atoms = self.atoms(column);
        atoms.iter().filter_map(|a| self.atom(column, a)).collect()
    }

    /// A map column; pairs with an atom of the wrong type are dropped with a warning.
    pub fn map<K: AtomValue + Ord, V: AtomValue>(
        &mut self,
        column: &'static str,
    ) -> BTreeMap<K, V> {
        let pairs: &[(Atom, Atom)] = match self.datum(column) {
            None => &[],
            Some(Datum::Map(m)) => m.as_slice(),
            Some(d @ Datum::Set(s)) => {
                // An empty set is how some writers spell an empty map.
                if !s.is_empty() {
                    self.shape(column, d);
                }
                &[]
            }
        };
        pairs
            .iter()
            .filter_map(|(k, v)| Some((self.atom(column, k)?, self.atom(column, v)?)))
            .collect()
    }

    /// A column with a domain decoder (an override); a rejected value becomes the default.
    pub fn custom<T: Default>(
        &mut self,
        column: &'static str,
        decode: impl FnOnce(&Datum) -> Result<T, String>,
    ) -> T {
        let Some(d) = self.datum(column) else {
            return T::default();
        };
        match decode(d) {
            Ok(v) => v,
            Err(reason) => {
                self.warn(column, DecodeProblem::Domain { reason });
                T::default()
            }
        }
    }

    /// The warnings collected.
    #[must_use]
    pub fn finish(self) -> Vec<DecodeWarning> {
        self.warnings
    }
}

/// Writes columns of one row strictly, checking each against the model's [`TableSchema`].
#[derive(Debug)]
pub struct Encoder {
    schema: &'static TableSchema,
    table: &'static str,
    row: Row,
    only: Option<Vec<String>>,
}

impl Encoder {
    /// An encoder for a row of `table`, checked against `schema`.
    #[must_use]
    pub fn new(table: &'static str, schema: &'static TableSchema) -> Self {
        Encoder {
            schema,
            table,
            row: Row::new(),
            only: None,
        }
    }

    /// Whether `column` is written (all are, unless [`Table::to_row_columns`] chose some).
    #[must_use]
    pub fn wants(&self, column: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|c| c == column))
    }

    /// Sets `column` to `datum` after checking it.
    pub fn datum(&mut self, column: &'static str, datum: Datum) -> Result<(), EncodeError> {
        if !self.wants(column) {
            return Ok(());
        }
        let Some(col) = self.schema.columns.get(column) else {
            return Err(EncodeError::UnknownColumn {
                table: self.table,
                column: column.to_owned(),
            });
        };
        col.type_
            .check(&datum)
            .map_err(|source| EncodeError::Constraint {
                table: self.table,
                column,
                source,
            })?;
        self.row.insert(column, datum);
        Ok(())
    }

    /// A column holding exactly one atom.
    pub fn scalar<T: AtomValue>(&mut self, column: &'static str, v: &T) -> Result<(), EncodeError> {
        self.datum(column, Datum::from(v.to_atom()))
    }

    /// A column holding zero or one atom.
    pub fn optional<T: AtomValue>(
        &mut self,
        column: &'static str,
        v: Option<&T>,
    ) -> Result<(), EncodeError> {
        self.datum(column, Datum::optional(v.map(AtomValue::to_atom)))
    }

    /// A set column.
    pub fn set<'v, T: AtomValue + 'v>(
        &mut self,
        column: &'static str,
        v: impl IntoIterator<Item = &'v T>,
    ) -> Result<(), EncodeError> {
        let set: Set = v.into_iter().map(AtomValue::to_atom).collect();
        self.datum(column, Datum::Set(set))
    }

    /// A map column.
    pub fn map<'v, K: AtomValue + 'v, V: AtomValue + 'v>(
        &mut self,
        column: &'static str,
        v: impl IntoIterator<Item = (&'v K, &'v V)>,
    ) -> Result<(), EncodeError> {
        let map: Map = v
            .into_iter()
            .map(|(k, v)| (k.to_atom(), v.to_atom()))
            .collect();
        self.datum(column, Datum::Map(map))
    }

    /// A column with a domain encoder (an override).
    pub fn custom(
        &mut self,
        column: &'static str,
        encoded: Result<Datum, String>,
    ) -> Result<(), EncodeError> {
        if !self.wants(column) {
            return Ok(());
        }
        let datum = encoded.map_err(|reason| EncodeError::Domain {
            table: self.table,
            column,
            reason,
        })?;
        self.datum(column, datum)
    }

    /// The row.
    #[must_use]
    pub fn finish(self) -> Row {
        self.row
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DatabaseSchema;
    use std::sync::LazyLock;

    static SCHEMA: LazyLock<DatabaseSchema> = LazyLock::new(|| {
        DatabaseSchema::from_json_str(
            r#"{"name":"D","version":"1.0.0","tables":{"T":{"columns":{
                "n":{"type":{"key":{"type":"integer","maxInteger":9}}},
                "e":{"type":{"key":{"type":"string","enum":["set",["a","b"]]},"min":0,"max":1}}}}}}"#,
        )
        .unwrap()
    });

    #[test]
    fn decoder_forgives_and_reports() {
        let row = Row::new()
            .with("n", "x")
            .with("s", Datum::set([Atom::from(1), Atom::from("a")]))
            .with("m", Datum::map([("k", 1)]));
        let mut d = Decoder::new("T", &row);
        assert_eq!(d.scalar::<i64>("n"), 0);
        assert_eq!(d.set::<i64>("s").into_iter().collect::<Vec<_>>(), vec![1]);
        assert!(d.map::<String, String>("m").is_empty());
        assert_eq!(d.optional::<bool>("absent"), None);
        let w = d.finish();
        assert_eq!(w.len(), 4, "{w:?}");
        assert_eq!(w[3].problem, DecodeProblem::Missing);
    }

    #[test]
    fn encoder_is_strict() {
        let t = SCHEMA.table("T").unwrap();
        let mut e = Encoder::new("T", t);
        assert!(e.scalar("n", &5_i64).is_ok());
        let err = e.scalar("n", &10_i64).unwrap_err();
        assert!(matches!(err, EncodeError::Constraint { column: "n", .. }));
        assert!(e.optional("e", Some(&"c".to_owned())).is_err());
        assert!(e.optional::<String>("e", None).is_ok());
        assert!(matches!(
            e.scalar("zz", &1_i64),
            Err(EncodeError::UnknownColumn { .. })
        ));
        assert_eq!(e.finish().len(), 2);
    }

    #[test]
    fn refs_encode_named_and_real_uuids() {
        struct P;
        let a: Ref<P> = Ref::named(NamedUuid::new("p").unwrap());
        assert_eq!(a.to_atom(), Atom::NamedUuid(NamedUuid::new("p").unwrap()));
        let b: WeakRef<P> = WeakRef::new(Uuid::from_u128(3));
        assert_eq!(b.uuid(), Some(Uuid::from_u128(3)));
        assert_eq!(WeakRef::<P>::from_atom(&b.to_atom()), Some(b));
    }
}
