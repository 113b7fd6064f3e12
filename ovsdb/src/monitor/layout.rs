//! A schema compiled for decoding updates and storing rows: tables and columns by number.

use std::sync::Arc;

use crate::schema::{ColumnType, DatabaseSchema, Max, TableSchema};
use crate::value::{Atom, AtomicType, Datum, Uuid};

/// A table's position in a [`Layout`] (tables in name order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableId(pub u16);

impl TableId {
    /// The position as an index.
    #[must_use]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A column's position in a [`TableLayout`] (declared columns in name order; `_uuid` and
/// `_version` are not stored as columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ColumnId(pub u16);

impl ColumnId {
    /// The position as an index.
    #[must_use]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// One column of a [`TableLayout`].
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnLayout {
    /// The column name.
    pub name: String,
    /// The column type.
    pub type_: ColumnType,
    /// The value a row has when the server leaves the column out (the empty set or map, or for
    /// a column that needs exactly one atom: `0`, `0.0`, `false`, `""` or the all-zero UUID).
    pub default: Datum,
    /// Whether `update` and `mutate` may change it (the schema's `mutable`).
    pub(crate) mutable: bool,
}

/// One table: its columns by [`ColumnId`] and its schema indexes.
#[derive(Debug, Clone, PartialEq)]
pub struct TableLayout {
    /// The table name.
    pub name: String,
    /// The declared columns, in name order.
    pub columns: Vec<ColumnLayout>,
    /// The schema's `indexes` (unique column sets), as column ids.
    pub indexes: Vec<Vec<ColumnId>>,
    /// Whether rows are kept without strong references (the schema's `isRoot`).
    pub(crate) is_root: bool,
    /// The schema's `maxRows`.
    pub(crate) max_rows: Option<u64>,
}

impl TableLayout {
    fn new(t: &TableSchema) -> Self {
        let columns: Vec<ColumnLayout> = t
            .columns
            .values()
            .map(|c| ColumnLayout {
                name: c.name.clone(),
                type_: c.type_.clone(),
                default: default_datum(&c.type_),
                mutable: c.mutable,
            })
            .collect();
        let mut layout = TableLayout {
            name: t.name.clone(),
            columns,
            indexes: Vec::new(),
            is_root: t.is_root,
            max_rows: t.max_rows,
        };
        layout.indexes = t
            .indexes
            .iter()
            .filter_map(|cols| {
                cols.iter()
                    .map(|c| layout.column_id(c))
                    .collect::<Option<Vec<_>>>()
            })
            .collect();
        layout
    }

    /// The id of column `name` (`None` for unknown columns and for `_uuid`/`_version`).
    #[must_use]
    pub fn column_id(&self, name: &str) -> Option<ColumnId> {
        self.columns
            .binary_search_by(|c| c.name.as_str().cmp(name))
            .ok()
            .and_then(|i| u16::try_from(i).ok())
            .map(ColumnId)
    }

    /// The column with id `id`.
    #[must_use]
    pub fn column(&self, id: ColumnId) -> Option<&ColumnLayout> {
        self.columns.get(id.index())
    }
}

/// The default value of a column of type `ty` (what `insert` writes when it names no value).
#[must_use]
pub fn default_datum(ty: &ColumnType) -> Datum {
    if ty.value.is_some() {
        return Datum::empty_map();
    }
    if ty.min == 0 || ty.max == Max::Limited(0) {
        return Datum::empty_set();
    }
    Datum::from(match ty.key.atomic {
        AtomicType::Integer => Atom::Integer(0),
        AtomicType::Real => Atom::Real(0.0),
        AtomicType::Boolean => Atom::Boolean(false),
        AtomicType::String => Atom::String(String::new()),
        AtomicType::Uuid => Atom::Uuid(Uuid::NIL),
    })
}

/// A [`DatabaseSchema`] compiled for the replica: tables and columns numbered in name order, and
/// each column's default value. Cheap to share (`Arc`).
///
/// ```
/// use ovsdb::monitor::Layout;
///
/// let schema = ovsdb::DatabaseSchema::from_json_str(r#"{"name":"D","version":"1.0.0",
///     "tables":{"T":{"columns":{"b":{"type":"integer"},"a":{"type":"string"}}}}}"#).unwrap();
/// let layout = Layout::new(&schema);
/// let (id, t) = layout.table("T").unwrap();
/// assert_eq!(id.index(), 0);
/// assert_eq!(t.column_id("a").unwrap().index(), 0);
/// assert_eq!(t.columns[1].default, ovsdb::Datum::from(0));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// The database name.
    pub name: String,
    /// Tables by [`TableId`], in name order.
    pub tables: Vec<Arc<TableLayout>>,
}

impl Layout {
    /// Compiles `schema`.
    #[must_use]
    pub fn new(schema: &DatabaseSchema) -> Self {
        Layout {
            name: schema.name.clone(),
            tables: schema
                .tables
                .values()
                .map(|t| Arc::new(TableLayout::new(t)))
                .collect(),
        }
    }

    /// The table called `name`, with its id.
    #[must_use]
    pub fn table(&self, name: &str) -> Option<(TableId, &TableLayout)> {
        let i = self
            .tables
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .ok()?;
        Some((TableId(u16::try_from(i).ok()?), &self.tables[i]))
    }

    /// The table with id `id`.
    #[must_use]
    pub fn table_by_id(&self, id: TableId) -> Option<&TableLayout> {
        self.tables.get(id.index()).map(|t| &**t)
    }
}
