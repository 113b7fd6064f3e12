//! Database schemas (RFC 7047 section 3.2): what a `.ovsschema` file or a `get_schema` reply says.
//!
//! ```
//! use ovsdb::{AtomicType, DatabaseSchema, Max};
//!
//! let schema = DatabaseSchema::from_json_str(r#"{
//!     "name": "Demo", "version": "1.0.0",
//!     "tables": {"Port": {"columns": {
//!         "tag": {"type": {"key": {"type": "integer", "minInteger": 1, "maxInteger": 4095},
//!                          "min": 0, "max": 1}}},
//!         "isRoot": true}}}"#).unwrap();
//! let tag = &schema.table("Port").unwrap().column("tag").unwrap().type_;
//! assert_eq!(tag.key.atomic, AtomicType::Integer);
//! assert_eq!((tag.min, tag.max), (0, Max::Limited(1)));
//! assert_eq!(tag.key.max_integer, Some(4095));
//! ```

mod check;
mod parse;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

pub use check::{AtomRole, ConstraintError};

use crate::value::{AtomicType, Set};

/// Why a schema could not be parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The text is not JSON.
    #[error("schema is not valid JSON")]
    Json(#[source] serde_json::Error),
    /// The JSON does not describe a valid schema.
    #[error("invalid schema{}: {reason}", location(table.as_deref(), column.as_deref()))]
    Invalid {
        /// The table where the problem is, if it is in one.
        table: Option<String>,
        /// The column where the problem is, if it is in one.
        column: Option<String>,
        /// What is wrong.
        reason: String,
    },
}

fn location(table: Option<&str>, column: Option<&str>) -> String {
    match (table, column) {
        (Some(t), Some(c)) => format!(" (table {t}, column {c})"),
        (Some(t), None) => format!(" (table {t})"),
        _ => String::new(),
    }
}

/// A whole database schema.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseSchema {
    /// Database name, e.g. `OVN_Northbound`.
    pub name: String,
    /// Schema version, `x.y.z`.
    pub version: String,
    /// Optional checksum string.
    pub cksum: Option<String>,
    /// Tables by name.
    pub tables: BTreeMap<String, TableSchema>,
}

impl DatabaseSchema {
    /// Parses schema JSON text (a `.ovsschema` file or a `get_schema` reply).
    pub fn from_json_str(json: &str) -> Result<Self, SchemaError> {
        let v: serde_json::Value = serde_json::from_str(json).map_err(SchemaError::Json)?;
        Self::from_value(&v)
    }

    /// Parses schema JSON bytes.
    pub fn from_slice(json: &[u8]) -> Result<Self, SchemaError> {
        let v: serde_json::Value = serde_json::from_slice(json).map_err(SchemaError::Json)?;
        Self::from_value(&v)
    }

    /// Parses an already decoded JSON value.
    pub fn from_value(json: &serde_json::Value) -> Result<Self, SchemaError> {
        parse::database(json)
    }

    /// The table called `name`.
    #[must_use]
    pub fn table(&self, name: &str) -> Option<&TableSchema> {
        self.tables.get(name)
    }
}

impl<'de> serde::Deserialize<'de> for DatabaseSchema {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Self::from_value(&v).map_err(serde::de::Error::custom)
    }
}

/// One table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSchema {
    /// Table name.
    pub name: String,
    /// Declared columns by name (without `_uuid` and `_version`; see [`TableSchema::column`]).
    pub columns: BTreeMap<String, ColumnSchema>,
    /// Whether rows are kept without being referenced (garbage collection roots).
    ///
    /// As ovsdb-server does, when no table of a schema says `isRoot`, every table is a root.
    pub is_root: bool,
    /// Sets of columns whose values must be unique across rows.
    pub indexes: Vec<Vec<String>>,
    /// Maximum number of rows, if limited.
    pub max_rows: Option<u64>,
}

impl TableSchema {
    /// A column by name, including the implicit `_uuid` and `_version` columns.
    #[must_use]
    pub fn column(&self, name: &str) -> Option<&ColumnSchema> {
        match name {
            "_uuid" => Some(&IMPLICIT.0),
            "_version" => Some(&IMPLICIT.1),
            _ => self.columns.get(name),
        }
    }
}

static IMPLICIT: LazyLock<(ColumnSchema, ColumnSchema)> = LazyLock::new(|| {
    let col = |name: &str| ColumnSchema {
        name: name.to_owned(),
        type_: ColumnType::scalar(BaseType::new(AtomicType::Uuid)),
        ephemeral: false,
        mutable: false,
    };
    (col("_uuid"), col("_version"))
});

/// One column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSchema {
    /// Column name.
    pub name: String,
    /// Its type and constraints.
    pub type_: ColumnType,
    /// Whether the server may forget the value across restarts.
    pub ephemeral: bool,
    /// Whether `update` and `mutate` may change it (`false`: only `insert` sets it).
    pub mutable: bool,
}

impl ColumnSchema {
    /// Whether the column is `_uuid` or `_version`, which no operation may write.
    #[must_use]
    pub fn is_implicit(&self) -> bool {
        self.name == "_uuid" || self.name == "_version"
    }
}

/// Upper bound on the number of elements of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Max {
    /// At most this many.
    Limited(u64),
    /// No limit (`"unlimited"`).
    Unlimited,
}

impl Max {
    /// Whether `n` elements are within the bound.
    #[must_use]
    pub fn allows(self, n: u64) -> bool {
        match self {
            Max::Limited(m) => n <= m,
            Max::Unlimited => true,
        }
    }
}

impl fmt::Display for Max {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Max::Limited(m) => write!(f, "{m}"),
            Max::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// A column type: key type, optional value type (then the column is a map), and size bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnType {
    /// Type of the atoms (of the keys, for a map).
    pub key: BaseType,
    /// Type of the values of a map; `None` for sets and scalars.
    pub value: Option<BaseType>,
    /// Minimum number of elements (0 or 1).
    pub min: u64,
    /// Maximum number of elements.
    pub max: Max,
}

impl ColumnType {
    /// A scalar (exactly one atom) of `key`.
    #[must_use]
    pub fn scalar(key: BaseType) -> Self {
        ColumnType {
            key,
            value: None,
            min: 1,
            max: Max::Limited(1),
        }
    }

    /// Whether values are maps.
    #[must_use]
    pub fn is_map(&self) -> bool {
        self.value.is_some()
    }

    /// Whether values are exactly one atom.
    #[must_use]
    pub fn is_scalar(&self) -> bool {
        self.value.is_none() && self.min == 1 && self.max == Max::Limited(1)
    }

    /// Whether values are zero or one atom.
    #[must_use]
    pub fn is_optional(&self) -> bool {
        self.value.is_none() && self.min == 0 && self.max == Max::Limited(1)
    }

    /// Whether values are sets in the OVSDB sense (not a scalar and not a map).
    #[must_use]
    pub fn is_set(&self) -> bool {
        self.value.is_none() && !self.is_scalar()
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "map of {} to {}", self.key.atomic, v.atomic)?,
            None if self.is_scalar() => return write!(f, "{}", self.key.atomic),
            None => write!(f, "set of {}", self.key.atomic)?,
        }
        write!(f, " ({}..{})", self.min, self.max)
    }
}

impl<'de> serde::Deserialize<'de> for ColumnType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        parse::column_type(&v).map_err(serde::de::Error::custom)
    }
}

/// Strong references keep the referenced row alive; weak ones are dropped when it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefType {
    /// Deleting a referenced row is a referential integrity violation.
    #[default]
    Strong,
    /// The reference disappears with the referenced row.
    Weak,
}

/// An atomic type with its constraints.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseType {
    /// The atomic type.
    pub atomic: AtomicType,
    /// The only allowed values, if restricted.
    pub enumeration: Option<Set>,
    /// Smallest allowed integer.
    pub min_integer: Option<i64>,
    /// Largest allowed integer.
    pub max_integer: Option<i64>,
    /// Smallest allowed real.
    pub min_real: Option<f64>,
    /// Largest allowed real.
    pub max_real: Option<f64>,
    /// Shortest allowed string, in Unicode characters.
    pub min_length: Option<u64>,
    /// Longest allowed string, in Unicode characters.
    pub max_length: Option<u64>,
    /// Table the UUIDs refer to, if any.
    pub ref_table: Option<String>,
    /// Strength of those references (meaningful only with `ref_table`).
    pub ref_type: RefType,
}

impl BaseType {
    /// An unconstrained base type.
    #[must_use]
    pub fn new(atomic: AtomicType) -> Self {
        BaseType {
            atomic,
            enumeration: None,
            min_integer: None,
            max_integer: None,
            min_real: None,
            max_real: None,
            min_length: None,
            max_length: None,
            ref_table: None,
            ref_type: RefType::Strong,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implicit_columns_resolve() {
        let s = DatabaseSchema::from_json_str(
            r#"{"name":"D","version":"1.0.0","tables":{"T":{"columns":{"a":{"type":"integer"}}}}}"#,
        )
        .unwrap();
        let t = s.table("T").unwrap();
        assert!(t.column("_uuid").unwrap().is_implicit());
        assert!(t.column("_version").is_some());
        assert!(t.column("b").is_none());
        // No table says isRoot: every table is a root.
        assert!(t.is_root);
    }
}
