//! Monitors (RFC 7047 section 4.1.5 and ovsdb-server(7)): requests as values, and the decoding
//! of their replies and of the `update`, `update2` and `update3` notifications.
//!
//! A [`MonitorRequest`] names the database, the monitor id, the method
//! ([`MonitorMethod::Monitor`], [`MonitorMethod::MonitorCond`] or
//! [`MonitorMethod::MonitorCondSince`]) and per table a [`TableMonitor`]: the columns, the
//! conditions (`monitor_cond*` only) and which kinds of change to send ([`MonitorSelect`]).
//! [`MonitorRequest::params`] is the request's `params`; [`MonitorRequest::cond_change`] and
//! [`MonitorRequest::cancel_params`] build `monitor_cond_change` and `monitor_cancel`.
//!
//! Replies and notifications decode against a [`Layout`] (the schema with tables and columns
//! numbered) straight from their JSON text: [`MonitorReply::decode`],
//! [`UpdateNotification::decode`]. The [`Replica`](crate::replica::Replica) applies them.
//!
//! ```
//! use ovsdb::monitor::{Layout, MonitorMethod, MonitorReply, MonitorRequest, RowOp, TableMonitor};
//! use ovsdb::{Condition, DatabaseSchema};
//!
//! let schema = DatabaseSchema::from_json_str(r#"{"name":"OVN_Northbound","version":"7.0.0",
//!     "tables":{"Logical_Switch":{"columns":{"name":{"type":"string"}}}}}"#).unwrap();
//! let req = MonitorRequest::new("OVN_Northbound", MonitorMethod::MonitorCondSince)
//!     .with_table("Logical_Switch", TableMonitor::all().with_where([Condition::ne("name", "")]));
//! req.validate(&schema).unwrap();
//! assert_eq!(
//!     serde_json::to_string(&req.params(None)).unwrap(),
//!     r#"["OVN_Northbound",null,{"Logical_Switch":{"where":[["name","!=",""]]}},"00000000-0000-0000-0000-000000000000"]"#
//! );
//!
//! let layout = Layout::new(&schema);
//! let reply = MonitorReply::decode(&layout, req.method, r#"[false,"2f6c4a8e-1b9d-4f8a-9a59-6c3c8b1f0b3e",
//!     {"Logical_Switch":{"5a3c0f1e-4a1b-4c2d-8e3f-9a0b1c2d3e4f":{"initial":{"name":"sw0"}}}}]"#).unwrap();
//! let MonitorReply::Since { found, updates, .. } = reply else { unreachable!() };
//! assert!(!found);
//! assert!(matches!(updates.tables[0].rows[0].op, RowOp::Initial(_)));
//! ```

mod decode;
mod layout;

use std::collections::BTreeMap;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

pub use decode::{
    Cells, ColumnValues, MonitorReply, RowOp, RowUpdate, TableUpdate, TableUpdates, UpdateFormat,
    UpdateNotification,
};
pub(crate) use decode::{is_row_form, row_cells};
pub use layout::{ColumnId, ColumnLayout, Layout, TableId, TableLayout, default_datum};

use crate::condition::Condition;
use crate::schema::DatabaseSchema;
use crate::value::Uuid;

/// Why a monitor request is invalid or a reply or notification could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MonitorError {
    /// The JSON does not have the expected shape or a value does not fit its column.
    #[error("cannot decode {what}{}", context(table.as_deref(), row.as_ref(), column.as_deref()))]
    Decode {
        /// What was being decoded (`update2 notification`, `monitor_cond_since reply`, ...).
        what: &'static str,
        /// The table being decoded when it failed, if any.
        table: Option<String>,
        /// The row being decoded when it failed, if any.
        row: Option<Uuid>,
        /// The column being decoded when it failed, if any.
        column: Option<String>,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The notification is not `update`, `update2` or `update3`.
    #[error("{method} is not a monitor update notification")]
    UnknownMethod {
        /// The method.
        method: String,
    },
    /// A request names a table the schema does not have.
    #[error("monitor request names unknown table {table}")]
    UnknownTable {
        /// The table.
        table: String,
    },
    /// A request names a column the table does not have.
    #[error("monitor request names unknown column {column} of table {table}")]
    UnknownColumn {
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// Conditions were given to plain `monitor`, which has none.
    #[error("monitor (without _cond) takes no conditions, but table {table} has some")]
    ConditionsNotSupported {
        /// The table.
        table: String,
    },
}

fn context(table: Option<&str>, row: Option<&Uuid>, column: Option<&str>) -> String {
    let mut out = String::new();
    let mut sep = " (";
    for (label, v) in [
        ("table", table.map(str::to_owned)),
        ("row", row.map(ToString::to_string)),
        ("column", column.map(str::to_owned)),
    ] {
        if let Some(v) = v {
            out.push_str(sep);
            out.push_str(label);
            out.push(' ');
            out.push_str(&v);
            sep = ", ";
        }
    }
    if !out.is_empty() {
        out.push(')');
    }
    out
}

/// The three monitor methods, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MonitorMethod {
    /// `monitor` (RFC 7047): full rows, `update` notifications, no conditions.
    Monitor,
    /// `monitor_cond`: conditions, diffs, `update2` notifications.
    MonitorCond,
    /// `monitor_cond_since`: `monitor_cond` that can resume from a transaction id, `update3`.
    MonitorCondSince,
}

impl MonitorMethod {
    /// The method name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Monitor => "monitor",
            Self::MonitorCond => "monitor_cond",
            Self::MonitorCondSince => "monitor_cond_since",
        }
    }

    /// The notification this method's monitor sends.
    #[must_use]
    pub const fn notification(self) -> &'static str {
        match self {
            Self::Monitor => "update",
            Self::MonitorCond => "update2",
            Self::MonitorCondSince => "update3",
        }
    }

    /// The next older method, to fall back to when a server answers "unknown method".
    #[must_use]
    pub const fn fallback(self) -> Option<Self> {
        match self {
            Self::MonitorCondSince => Some(Self::MonitorCond),
            Self::MonitorCond => Some(Self::Monitor),
            Self::Monitor => None,
        }
    }
}

/// Which kinds of change a monitor reports for a table (`"select"`); all by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MonitorSelect {
    /// The initial contents, in the reply.
    pub initial: bool,
    /// Inserted rows.
    pub insert: bool,
    /// Deleted rows.
    pub delete: bool,
    /// Modified rows.
    pub modify: bool,
}

impl Default for MonitorSelect {
    fn default() -> Self {
        Self {
            initial: true,
            insert: true,
            delete: true,
            modify: true,
        }
    }
}

impl Serialize for MonitorSelect {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("initial", &self.initial)?;
        m.serialize_entry("insert", &self.insert)?;
        m.serialize_entry("delete", &self.delete)?;
        m.serialize_entry("modify", &self.modify)?;
        m.end()
    }
}

/// One clause of a monitor condition: a [`Condition`], or the constant `true` or `false`
/// (ovsdb-server(7): a table whose conditions are `[false]` sends no rows).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Clause {
    /// `[column, function, value]`.
    Condition(Condition),
    /// `true` or `false`.
    Bool(bool),
}

impl From<Condition> for Clause {
    fn from(c: Condition) -> Self {
        Clause::Condition(c)
    }
}

impl From<bool> for Clause {
    fn from(b: bool) -> Self {
        Clause::Bool(b)
    }
}

impl Serialize for Clause {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Clause::Condition(c) => c.serialize(s),
            Clause::Bool(b) => s.serialize_bool(*b),
        }
    }
}

/// What to monitor in one table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableMonitor {
    /// The columns; `None` for all of them.
    pub columns: Option<Vec<String>>,
    /// The conditions (rows matching any clause are sent); `None` for every row.
    pub conditions: Option<Vec<Clause>>,
    /// Which kinds of change to send.
    pub select: MonitorSelect,
}

impl TableMonitor {
    /// Every column, every row, every kind of change.
    #[must_use]
    pub fn all() -> Self {
        Self::default()
    }

    /// Only these columns.
    #[must_use]
    pub fn with_columns<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// Only rows matching one of these clauses.
    #[must_use]
    pub fn with_where<C: Into<Clause>>(mut self, clauses: impl IntoIterator<Item = C>) -> Self {
        self.conditions = Some(clauses.into_iter().map(Into::into).collect());
        self
    }

    /// Only these kinds of change.
    #[must_use]
    pub fn with_select(mut self, select: MonitorSelect) -> Self {
        self.select = select;
        self
    }
}

/// A monitor: database, id, method and what to watch per table.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorRequest {
    /// The database.
    pub db: String,
    /// The monitor id, echoed in every notification (`null` by default).
    pub id: serde_json::Value,
    /// The method.
    pub method: MonitorMethod,
    /// What to watch, per table.
    pub tables: BTreeMap<String, TableMonitor>,
}

impl MonitorRequest {
    /// A monitor of no table yet, with id `null`.
    pub fn new(db: impl Into<String>, method: MonitorMethod) -> Self {
        Self {
            db: db.into(),
            id: serde_json::Value::Null,
            method,
            tables: BTreeMap::new(),
        }
    }

    /// Sets the monitor id.
    #[must_use]
    pub fn with_id(mut self, id: impl Into<serde_json::Value>) -> Self {
        self.id = id.into();
        self
    }

    /// Sets the method (for falling back to an older one).
    #[must_use]
    pub fn with_method(mut self, method: MonitorMethod) -> Self {
        self.method = method;
        self
    }

    /// Adds or replaces a table.
    #[must_use]
    pub fn with_table(mut self, table: impl Into<String>, monitor: TableMonitor) -> Self {
        self.tables.insert(table.into(), monitor);
        self
    }

    /// Checks tables and columns against `schema`, and that plain `monitor` has no conditions.
    pub fn validate(&self, schema: &DatabaseSchema) -> Result<(), MonitorError> {
        for (name, t) in &self.tables {
            let Some(ts) = schema.table(name) else {
                return Err(MonitorError::UnknownTable {
                    table: name.clone(),
                });
            };
            let cond_columns = t.conditions.iter().flatten().filter_map(|c| match c {
                Clause::Condition(c) => Some(&c.column),
                Clause::Bool(_) => None,
            });
            for col in t.columns.iter().flatten().chain(cond_columns) {
                if ts.column(col).is_none() {
                    return Err(MonitorError::UnknownColumn {
                        table: name.clone(),
                        column: col.clone(),
                    });
                }
            }
            if self.method == MonitorMethod::Monitor && t.conditions.is_some() {
                return Err(MonitorError::ConditionsNotSupported {
                    table: name.clone(),
                });
            }
        }
        Ok(())
    }

    /// The request's params: `[db, id, requests]`, plus the last transaction id for
    /// `monitor_cond_since` (all zeros when `last_txn_id` is `None`, which asks for everything).
    #[must_use]
    pub fn params(&self, last_txn_id: Option<Uuid>) -> MonitorParams<'_> {
        MonitorParams {
            req: self,
            last_txn_id: last_txn_id.unwrap_or(Uuid::NIL),
        }
    }

    /// Replaces the conditions of `table` (in this request too, so that a later resubscription
    /// uses them) and returns the `monitor_cond_change` params, keeping the monitor id.
    pub fn cond_change(
        &mut self,
        table: &str,
        clauses: Vec<Clause>,
    ) -> Result<CondChange, MonitorError> {
        let Some(t) = self.tables.get_mut(table) else {
            return Err(MonitorError::UnknownTable {
                table: table.to_owned(),
            });
        };
        t.conditions = Some(clauses.clone());
        Ok(CondChange {
            monitor_id: self.id.clone(),
            new_id: self.id.clone(),
            tables: BTreeMap::from([(table.to_owned(), clauses)]),
        })
    }

    /// The `monitor_cancel` params: `[id]`.
    #[must_use]
    pub fn cancel_params(&self) -> [&serde_json::Value; 1] {
        [&self.id]
    }
}

/// The params of a monitor request (see [`MonitorRequest::params`]).
#[derive(Debug, Clone, Copy)]
pub struct MonitorParams<'a> {
    req: &'a MonitorRequest,
    last_txn_id: Uuid,
}

struct Requests<'a>(&'a MonitorRequest);

struct OneTable<'a>(&'a TableMonitor, bool);

impl Serialize for OneTable<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        let mut m = s.serialize_map(None)?;
        if let Some(cols) = &t.columns {
            m.serialize_entry("columns", cols)?;
        }
        if self.1
            && let Some(c) = &t.conditions
        {
            m.serialize_entry("where", c)?;
        }
        if t.select != MonitorSelect::default() {
            m.serialize_entry("select", &t.select)?;
        }
        m.end()
    }
}

impl Serialize for Requests<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let cond = self.0.method != MonitorMethod::Monitor;
        let mut m = s.serialize_map(Some(self.0.tables.len()))?;
        for (name, t) in &self.0.tables {
            m.serialize_entry(name, &OneTable(t, cond))?;
        }
        m.end()
    }
}

impl Serialize for MonitorParams<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let since = self.req.method == MonitorMethod::MonitorCondSince;
        let mut seq = s.serialize_seq(Some(if since { 4 } else { 3 }))?;
        seq.serialize_element(&self.req.db)?;
        seq.serialize_element(&self.req.id)?;
        seq.serialize_element(&Requests(self.req))?;
        if since {
            seq.serialize_element(&self.last_txn_id)?;
        }
        seq.end()
    }
}

/// The params of `monitor_cond_change`: `[monitor-id, new-monitor-id, {table: [{"where": ...}]}]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CondChange {
    /// The monitor to change.
    pub monitor_id: serde_json::Value,
    /// The id the monitor has afterwards (usually the same).
    pub new_id: serde_json::Value,
    /// New conditions per table.
    pub tables: BTreeMap<String, Vec<Clause>>,
}

impl Serialize for CondChange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Where<'a>(&'a [Clause]);
        impl Serialize for Where<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("where", self.0)?;
                m.end()
            }
        }
        struct Tables<'a>(&'a BTreeMap<String, Vec<Clause>>);
        impl Serialize for Tables<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (name, c) in self.0 {
                    m.serialize_entry(name, &[Where(c)])?;
                }
                m.end()
            }
        }
        (&self.monitor_id, &self.new_id, Tables(&self.tables)).serialize(s)
    }
}

#[cfg(test)]
mod tests;
