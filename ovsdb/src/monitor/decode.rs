//! Decoding `update`, `update2` and `update3` notifications and monitor replies, straight from
//! the JSON text against a [`Layout`]: every value goes through a typed
//! [`DatumSeed`](crate::DatumSeed) for its column, no `serde_json::Value` is built for rows.

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::MonitorError;
use super::layout::{ColumnId, Layout, TableId, TableLayout};
use crate::value::{Datum, DatumSeed, Uuid};

/// The shape of the table updates: RFC 7047 `update` (old and new rows) or the `update2` form
/// (`initial`/`insert`/`delete`/`modify`, also used inside `update3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateFormat {
    /// `<table-updates>`: `{"old": row, "new": row}` per row.
    Update,
    /// `<table-updates2>`: `{"initial"|"insert"|"modify": row}` or `{"delete": null}`.
    Update2,
}

/// A whole row's values: sorted by column, each column once, columns that hold their default
/// value left out. The replica stores these as they are (one allocation per row).
pub type Cells = Arc<[(ColumnId, Datum)]>;

/// Per column, a diff or a new value: sorted by column, each column once.
pub type ColumnValues = Vec<(ColumnId, Datum)>;

/// What happened to one row.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOp {
    /// The row is part of the initial contents (`update2` `initial`).
    Initial(Cells),
    /// The row was inserted (`update2` `insert`, or `update` with only `new`).
    Insert(Cells),
    /// `update2` `modify`: per changed column, the diff to apply (see
    /// [`apply_diff`](crate::replica::apply_diff)).
    Modify(ColumnValues),
    /// `update` with `old` and `new`: the new values of the monitored columns.
    Replace(ColumnValues),
    /// The row was deleted.
    Delete,
}

/// One row's update.
#[derive(Debug, Clone, PartialEq)]
pub struct RowUpdate {
    /// The row.
    pub uuid: Uuid,
    /// What happened to it.
    pub op: RowOp,
}

/// The updates of one table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableUpdate {
    /// The table.
    pub table: TableId,
    /// Row updates, in the order the server wrote them.
    pub rows: Vec<RowUpdate>,
}

/// Decoded `<table-updates>` or `<table-updates2>`: everything one notification or reply
/// changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableUpdates {
    /// Per table, in the order the server wrote them.
    pub tables: Vec<TableUpdate>,
}

impl TableUpdates {
    /// Number of row updates over all tables.
    #[must_use]
    pub fn row_count(&self) -> usize {
        self.tables.iter().map(|t| t.rows.len()).sum()
    }

    /// Decodes `<table-updates>` (`format` [`UpdateFormat::Update`]) or `<table-updates2>`.
    pub fn decode(layout: &Layout, format: UpdateFormat, json: &str) -> Result<Self, MonitorError> {
        let ctx = Ctx::default();
        let what = match format {
            UpdateFormat::Update => "table-updates",
            UpdateFormat::Update2 => "table-updates2",
        };
        run(layout, &ctx, what, json, |de| {
            UpdatesSeed {
                layout,
                format,
                ctx: &ctx,
            }
            .deserialize(de)
        })
    }
}

/// A decoded `update`, `update2` or `update3` notification.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateNotification {
    /// The monitor id the client chose (`params[0]`).
    pub monitor_id: serde_json::Value,
    /// The id of the transaction that made these changes (`update3` only).
    pub last_txn_id: Option<Uuid>,
    /// The changes.
    pub updates: TableUpdates,
}

impl UpdateNotification {
    /// Decodes the params of notification `method` (`update`, `update2` or `update3`).
    pub fn decode(layout: &Layout, method: &str, params: &str) -> Result<Self, MonitorError> {
        let (format, since) = match method {
            "update" => (UpdateFormat::Update, false),
            "update2" => (UpdateFormat::Update2, false),
            "update3" => (UpdateFormat::Update2, true),
            other => {
                return Err(MonitorError::UnknownMethod {
                    method: other.to_owned(),
                });
            }
        };
        let ctx = Ctx::default();
        let what = match method {
            "update" => "update notification",
            "update2" => "update2 notification",
            _ => "update3 notification",
        };
        run(layout, &ctx, what, params, |de| {
            de.deserialize_seq(NotificationVisitor {
                layout,
                format,
                since,
                ctx: &ctx,
            })
        })
    }
}

/// A decoded monitor reply.
#[derive(Debug, Clone, PartialEq)]
pub enum MonitorReply {
    /// The reply of `monitor` or `monitor_cond`: the initial contents.
    Initial(TableUpdates),
    /// The reply of `monitor_cond_since`.
    Since {
        /// Whether the server knew the client's last transaction id: then `updates` are the
        /// changes since it, else they are the whole initial contents.
        found: bool,
        /// The id of the newest transaction included.
        last_txn_id: Uuid,
        /// The changes or the contents.
        updates: TableUpdates,
    },
}

impl MonitorReply {
    /// Decodes the `result` of a `method` request.
    pub fn decode(
        layout: &Layout,
        method: super::MonitorMethod,
        result: &str,
    ) -> Result<Self, MonitorError> {
        use super::MonitorMethod as M;
        match method {
            M::Monitor => {
                TableUpdates::decode(layout, UpdateFormat::Update, result).map(Self::Initial)
            }
            M::MonitorCond => {
                TableUpdates::decode(layout, UpdateFormat::Update2, result).map(Self::Initial)
            }
            M::MonitorCondSince => {
                let ctx = Ctx::default();
                run(layout, &ctx, "monitor_cond_since reply", result, |de| {
                    de.deserialize_seq(SinceReplyVisitor { layout, ctx: &ctx })
                })
            }
        }
    }

    /// The updates, whatever the form.
    #[must_use]
    pub fn updates(&self) -> &TableUpdates {
        match self {
            Self::Initial(u) | Self::Since { updates: u, .. } => u,
        }
    }
}

/// Where decoding is, for error messages.
#[derive(Default)]
struct Ctx {
    table: Cell<Option<TableId>>,
    row: Cell<Option<Uuid>>,
    column: Cell<Option<ColumnId>>,
    /// A buffer reused for every row, so that each row costs one exact allocation.
    scratch: Cell<Vec<(ColumnId, Datum)>>,
}

/// Sorts `cells` by column; of a repeated column the last value wins.
fn sort_cells(cells: &mut Vec<(ColumnId, Datum)>) {
    if cells.is_sorted_by(|a, b| a.0 < b.0) {
        return;
    }
    cells.sort_by_key(|c| c.0);
    let mut i = 0;
    while i + 1 < cells.len() {
        if cells[i].0 == cells[i + 1].0 {
            cells.remove(i);
        } else {
            i += 1;
        }
    }
}

/// Stored form of a whole row: sorted, defaults left out, one allocation.
pub(crate) fn row_cells(table: &TableLayout, cells: &mut Vec<(ColumnId, Datum)>) -> Cells {
    sort_cells(cells);
    cells.retain(|(c, d)| table.column(*c).is_none_or(|col| *d != col.default));
    cells.drain(..).collect()
}

/// Whether `cells` are already in stored form for `table`.
pub(crate) fn is_row_form(table: &TableLayout, cells: &[(ColumnId, Datum)]) -> bool {
    cells.is_sorted_by(|a, b| a.0 < b.0)
        && cells
            .iter()
            .all(|(c, d)| table.column(*c).is_some_and(|col| *d != col.default))
}

fn run<T>(
    layout: &Layout,
    ctx: &Ctx,
    what: &'static str,
    json: &str,
    f: impl FnOnce(
        &mut serde_json::Deserializer<serde_json::de::StrRead<'_>>,
    ) -> Result<T, serde_json::Error>,
) -> Result<T, MonitorError> {
    let mut de = serde_json::Deserializer::from_str(json);
    let out = f(&mut de).and_then(|v| de.end().map(|()| v));
    out.map_err(|source| {
        let table = ctx.table.get().and_then(|t| layout.table_by_id(t));
        MonitorError::Decode {
            what,
            table: table.map(|t| t.name.clone()),
            row: ctx.row.get(),
            column: ctx
                .column
                .get()
                .and_then(|c| table.and_then(|t| t.column(c)))
                .map(|c| c.name.clone()),
            source,
        }
    })
}

/// A JSON string borrowed from the input when it has no escapes.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
}

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v.to_owned()))
            }
        }
        d.deserialize_str(V)
    }
}

struct NotificationVisitor<'a> {
    layout: &'a Layout,
    format: UpdateFormat,
    since: bool,
    ctx: &'a Ctx,
}

impl<'de> Visitor<'de> for NotificationVisitor<'_> {
    type Value = UpdateNotification;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.since {
            f.write_str("[monitor-id, last-txn-id, table-updates2]")
        } else {
            f.write_str("[monitor-id, table-updates]")
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let monitor_id: serde_json::Value = need(seq.next_element()?, "monitor id")?;
        let last_txn_id = if self.since {
            Some(need(seq.next_element::<Uuid>()?, "last transaction id")?)
        } else {
            None
        };
        let updates = need(
            seq.next_element_seed(UpdatesSeed {
                layout: self.layout,
                format: self.format,
                ctx: self.ctx,
            })?,
            "table updates",
        )?;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(
                "trailing elements in notification params",
            ));
        }
        Ok(UpdateNotification {
            monitor_id,
            last_txn_id,
            updates,
        })
    }
}

struct SinceReplyVisitor<'a> {
    layout: &'a Layout,
    ctx: &'a Ctx,
}

impl<'de> Visitor<'de> for SinceReplyVisitor<'_> {
    type Value = MonitorReply;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[found, last-txn-id, table-updates2]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let found: bool = need(seq.next_element()?, "found")?;
        let last_txn_id: Uuid = need(seq.next_element()?, "last transaction id")?;
        let updates = need(
            seq.next_element_seed(UpdatesSeed {
                layout: self.layout,
                format: UpdateFormat::Update2,
                ctx: self.ctx,
            })?,
            "table updates",
        )?;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom("trailing elements in reply"));
        }
        Ok(MonitorReply::Since {
            found,
            last_txn_id,
            updates,
        })
    }
}

fn need<T, E: de::Error>(v: Option<T>, what: &str) -> Result<T, E> {
    v.ok_or_else(|| E::custom(format_args!("missing {what}")))
}

struct UpdatesSeed<'a> {
    layout: &'a Layout,
    format: UpdateFormat,
    ctx: &'a Ctx,
}

impl<'de> DeserializeSeed<'de> for UpdatesSeed<'_> {
    type Value = TableUpdates;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<TableUpdates, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for UpdatesSeed<'_> {
    type Value = TableUpdates;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of table name to row updates")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TableUpdates, A::Error> {
        let mut tables = Vec::new();
        while let Some(name) = map.next_key::<Key<'de>>()? {
            let Some((id, table)) = self.layout.table(name.as_str()) else {
                return Err(de::Error::custom(format_args!(
                    "unknown table {}",
                    name.as_str()
                )));
            };
            self.ctx.table.set(Some(id));
            let rows = map.next_value_seed(RowsSeed {
                table,
                format: self.format,
                ctx: self.ctx,
            })?;
            self.ctx.row.set(None);
            tables.push(TableUpdate { table: id, rows });
        }
        self.ctx.table.set(None);
        Ok(TableUpdates { tables })
    }
}

struct RowsSeed<'a> {
    table: &'a TableLayout,
    format: UpdateFormat,
    ctx: &'a Ctx,
}

impl<'de> DeserializeSeed<'de> for RowsSeed<'_> {
    type Value = Vec<RowUpdate>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowsSeed<'_> {
    type Value = Vec<RowUpdate>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "an object of row UUID to row update for table {}",
            self.table.name
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut rows = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let uuid: Uuid = key.as_str().parse().map_err(de::Error::custom)?;
            self.ctx.row.set(Some(uuid));
            let op = match self.format {
                UpdateFormat::Update2 => map.next_value_seed(Row2Seed {
                    table: self.table,
                    ctx: self.ctx,
                })?,
                UpdateFormat::Update => map.next_value_seed(Row1Seed {
                    table: self.table,
                    ctx: self.ctx,
                })?,
            };
            rows.push(RowUpdate { uuid, op });
        }
        Ok(rows)
    }
}

/// `{"initial": row}`, `{"insert": row}`, `{"modify": row}` or `{"delete": null}`.
struct Row2Seed<'a> {
    table: &'a TableLayout,
    ctx: &'a Ctx,
}

impl<'de> DeserializeSeed<'de> for Row2Seed<'_> {
    type Value = RowOp;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RowOp, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Row2Seed<'_> {
    type Value = RowOp;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a row update2: {"initial"|"insert"|"modify": row} or {"delete": null}"#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RowOp, A::Error> {
        let mut op = None;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            if op.is_some() {
                return Err(de::Error::custom("a row update2 has more than one member"));
            }
            let cells = |kind| CellsSeed {
                table: self.table,
                ctx: self.ctx,
                kind,
            };
            op = Some(match key.as_str() {
                "initial" => map.next_value_seed(cells(Kind::Initial))?,
                "insert" => map.next_value_seed(cells(Kind::Insert))?,
                "modify" => map.next_value_seed(cells(Kind::Modify))?,
                "delete" => {
                    map.next_value::<IgnoredAny>()?;
                    RowOp::Delete
                }
                other => {
                    return Err(de::Error::unknown_field(
                        other,
                        &["initial", "insert", "modify", "delete"],
                    ));
                }
            });
        }
        need(op, "row update2 member")
    }
}

/// `{"old": row, "new": row}` with either member optional.
struct Row1Seed<'a> {
    table: &'a TableLayout,
    ctx: &'a Ctx,
}

impl<'de> DeserializeSeed<'de> for Row1Seed<'_> {
    type Value = RowOp;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RowOp, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Row1Seed<'_> {
    type Value = RowOp;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a row update: {"old": row, "new": row}"#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RowOp, A::Error> {
        let mut old = false;
        let mut new = None;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match key.as_str() {
                "old" => {
                    // The replica knows the old values; only the presence matters.
                    map.next_value::<IgnoredAny>()?;
                    old = true;
                }
                "new" => {
                    new = Some(map.next_value_seed(CellsSeed {
                        table: self.table,
                        ctx: self.ctx,
                        kind: Kind::Replace,
                    })?);
                }
                other => return Err(de::Error::unknown_field(other, &["old", "new"])),
            }
        }
        match (old, new) {
            (true, Some(op)) => Ok(op),
            (false, Some(RowOp::Replace(mut cells))) => {
                Ok(RowOp::Insert(row_cells(self.table, &mut cells)))
            }
            (false, Some(op)) => Ok(op),
            (true, None) => Ok(RowOp::Delete),
            (false, None) => Err(de::Error::custom(
                r#"a row update has neither "old" nor "new""#,
            )),
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Initial,
    Insert,
    Modify,
    Replace,
}

/// A row object: column name to value, decoded with each column's type, into the [`RowOp`]
/// of `kind`.
struct CellsSeed<'a> {
    table: &'a TableLayout,
    ctx: &'a Ctx,
    kind: Kind,
}

impl<'de> DeserializeSeed<'de> for CellsSeed<'_> {
    type Value = RowOp;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RowOp, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for CellsSeed<'_> {
    type Value = RowOp;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a row of table {}", self.table.name)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RowOp, A::Error> {
        let mut cells = self.ctx.scratch.take();
        cells.clear();
        let op = self.fill(&mut map, &mut cells).map(|()| match self.kind {
            Kind::Initial => RowOp::Initial(row_cells(self.table, &mut cells)),
            Kind::Insert => RowOp::Insert(row_cells(self.table, &mut cells)),
            Kind::Modify | Kind::Replace => {
                sort_cells(&mut cells);
                // An exact allocation; the scratch buffer keeps its capacity.
                let mut values = Vec::with_capacity(cells.len());
                values.append(&mut cells);
                if matches!(self.kind, Kind::Modify) {
                    RowOp::Modify(values)
                } else {
                    RowOp::Replace(values)
                }
            }
        });
        self.ctx.scratch.set(cells);
        op
    }
}

impl CellsSeed<'_> {
    fn fill<'de, A: MapAccess<'de>>(
        &self,
        map: &mut A,
        cells: &mut Vec<(ColumnId, Datum)>,
    ) -> Result<(), A::Error> {
        while let Some(name) = map.next_key::<Key<'de>>()? {
            let name = name.as_str();
            let Some(id) = self.table.column_id(name) else {
                if name == "_uuid" || name == "_version" {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                return Err(de::Error::custom(format_args!(
                    "unknown column {name} in table {}",
                    self.table.name
                )));
            };
            self.ctx.column.set(Some(id));
            let col = &self.table.columns[id.index()];
            let datum = map.next_value_seed(DatumSeed(&col.type_))?;
            cells.push((id, datum));
        }
        self.ctx.column.set(None);
        Ok(())
    }
}
