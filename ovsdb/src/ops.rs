//! The operations of a `transact` request (RFC 7047 section 5.2, plus the Open vSwitch
//! extension of `insert` with a client-chosen `uuid`).
//!
//! Each operation is a small builder; [`Operation`] is the sum of them. Add operations to a
//! [`Transaction`](crate::Transaction), which hands back a typed handle per operation.

use std::fmt;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::condition::{Condition, Mutation};
use crate::row::Row;
use crate::value::{NamedUuid, Uuid};

/// The kind of an operation (its `"op"` member).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// `insert`.
    Insert,
    /// `select`.
    Select,
    /// `update`.
    Update,
    /// `mutate`.
    Mutate,
    /// `delete`.
    Delete,
    /// `wait`.
    Wait,
    /// `commit`.
    Commit,
    /// `abort`.
    Abort,
    /// `comment`.
    Comment,
    /// `assert`.
    Assert,
}

impl OpKind {
    /// The wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            OpKind::Insert => "insert",
            OpKind::Select => "select",
            OpKind::Update => "update",
            OpKind::Mutate => "mutate",
            OpKind::Delete => "delete",
            OpKind::Wait => "wait",
            OpKind::Commit => "commit",
            OpKind::Abort => "abort",
            OpKind::Comment => "comment",
            OpKind::Assert => "assert",
        }
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `insert`: adds a row; the result is its UUID.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Insert {
    /// Table.
    pub table: String,
    /// Column values (omitted columns take their defaults).
    pub row: Row,
    /// Name by which later operations of the transaction refer to the new row.
    pub uuid_name: Option<NamedUuid>,
    /// UUID chosen by the client (Open vSwitch extension) instead of one made by the server.
    pub uuid: Option<Uuid>,
}

impl Insert {
    /// Inserts `row` into `table`.
    pub fn new(table: impl Into<String>, row: Row) -> Self {
        Insert {
            table: table.into(),
            row,
            uuid_name: None,
            uuid: None,
        }
    }

    /// Names the new row for references within the transaction.
    pub fn uuid_name(mut self, name: NamedUuid) -> Self {
        self.uuid_name = Some(name);
        self
    }

    /// Asks the server to use this UUID for the new row.
    pub fn with_uuid(mut self, uuid: Uuid) -> Self {
        self.uuid = Some(uuid);
        self
    }
}

/// `select`: reads the rows matching the conditions.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Select {
    /// Table.
    pub table: String,
    /// `where` clauses (all must hold; none selects every row).
    pub conditions: Vec<Condition>,
    /// Columns to return; `None` returns all of them, `_uuid` and `_version` included.
    pub columns: Option<Vec<String>>,
}

impl Select {
    /// Selects every row of `table`.
    pub fn new(table: impl Into<String>) -> Self {
        Select {
            table: table.into(),
            conditions: Vec::new(),
            columns: None,
        }
    }

    /// Adds a `where` clause.
    pub fn filter(mut self, condition: Condition) -> Self {
        self.conditions.push(condition);
        self
    }

    /// Returns only these columns.
    pub fn columns<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }
}

/// `update`: sets columns of the matching rows; the result is the number of rows matched.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Update {
    /// Table.
    pub table: String,
    /// `where` clauses.
    pub conditions: Vec<Condition>,
    /// New column values.
    pub row: Row,
}

impl Update {
    /// Sets `row`'s columns on every row of `table` that matches the filters added next.
    pub fn new(table: impl Into<String>, row: Row) -> Self {
        Update {
            table: table.into(),
            conditions: Vec::new(),
            row,
        }
    }

    /// Adds a `where` clause.
    pub fn filter(mut self, condition: Condition) -> Self {
        self.conditions.push(condition);
        self
    }
}

/// `mutate`: changes columns of the matching rows in place; the result is the number matched.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Mutate {
    /// Table.
    pub table: String,
    /// `where` clauses.
    pub conditions: Vec<Condition>,
    /// Mutations, applied in order.
    pub mutations: Vec<Mutation>,
}

impl Mutate {
    /// A mutate of `table` with no mutation and no filter yet.
    pub fn new(table: impl Into<String>) -> Self {
        Mutate {
            table: table.into(),
            conditions: Vec::new(),
            mutations: Vec::new(),
        }
    }

    /// Adds a `where` clause.
    pub fn filter(mut self, condition: Condition) -> Self {
        self.conditions.push(condition);
        self
    }

    /// Adds a mutation.
    pub fn mutation(mut self, mutation: Mutation) -> Self {
        self.mutations.push(mutation);
        self
    }
}

/// `delete`: deletes the matching rows; the result is the number deleted.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Delete {
    /// Table.
    pub table: String,
    /// `where` clauses.
    pub conditions: Vec<Condition>,
}

impl Delete {
    /// Deletes the rows of `table` matching the filters added next (every row if none).
    pub fn new(table: impl Into<String>) -> Self {
        Delete {
            table: table.into(),
            conditions: Vec::new(),
        }
    }

    /// Adds a `where` clause.
    pub fn filter(mut self, condition: Condition) -> Self {
        self.conditions.push(condition);
        self
    }
}

/// What a `wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitUntil {
    /// Until the selected rows equal the given rows (`"=="`).
    Equal,
    /// Until they differ (`"!="`).
    NotEqual,
}

impl WaitUntil {
    /// The wire spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            WaitUntil::Equal => "==",
            WaitUntil::NotEqual => "!=",
        }
    }
}

/// `wait`: blocks the transaction until the selected rows (projected on `columns`) compare to
/// `rows` as `until` says, or fails with `timed out` after `timeout` milliseconds.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Wait {
    /// Table.
    pub table: String,
    /// `where` clauses.
    pub conditions: Vec<Condition>,
    /// Columns compared.
    pub columns: Vec<String>,
    /// Equal or not equal.
    pub until: WaitUntil,
    /// Expected rows (with only `columns`).
    pub rows: Vec<Row>,
    /// Milliseconds before giving up; `None` waits forever, `Some(0)` checks once.
    pub timeout: Option<u64>,
}

impl Wait {
    /// Waits on `columns` of `table`'s matching rows.
    pub fn new<S: Into<String>>(
        table: impl Into<String>,
        columns: impl IntoIterator<Item = S>,
        until: WaitUntil,
        rows: Vec<Row>,
    ) -> Self {
        Wait {
            table: table.into(),
            conditions: Vec::new(),
            columns: columns.into_iter().map(Into::into).collect(),
            until,
            rows,
            timeout: None,
        }
    }

    /// Adds a `where` clause.
    pub fn filter(mut self, condition: Condition) -> Self {
        self.conditions.push(condition);
        self
    }

    /// Gives up after `ms` milliseconds.
    pub fn timeout_ms(mut self, ms: u64) -> Self {
        self.timeout = Some(ms);
        self
    }
}

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// `insert`.
    Insert(Insert),
    /// `select`.
    Select(Select),
    /// `update`.
    Update(Update),
    /// `mutate`.
    Mutate(Mutate),
    /// `delete`.
    Delete(Delete),
    /// `wait`.
    Wait(Wait),
    /// `commit`; `durable` asks the server to sync to disk before replying.
    Commit {
        /// Whether to wait for the disk.
        durable: bool,
    },
    /// `abort`: makes the whole transaction fail with `aborted`.
    Abort,
    /// `comment`: text for the server's log.
    Comment(String),
    /// `assert`: fails with `not owner` unless this session holds the lock.
    Assert {
        /// Lock name.
        lock: String,
    },
}

impl Operation {
    /// The kind.
    #[must_use]
    pub fn kind(&self) -> OpKind {
        match self {
            Operation::Insert(_) => OpKind::Insert,
            Operation::Select(_) => OpKind::Select,
            Operation::Update(_) => OpKind::Update,
            Operation::Mutate(_) => OpKind::Mutate,
            Operation::Delete(_) => OpKind::Delete,
            Operation::Wait(_) => OpKind::Wait,
            Operation::Commit { .. } => OpKind::Commit,
            Operation::Abort => OpKind::Abort,
            Operation::Comment(_) => OpKind::Comment,
            Operation::Assert { .. } => OpKind::Assert,
        }
    }

    /// The table the operation works on, if any.
    #[must_use]
    pub fn table(&self) -> Option<&str> {
        match self {
            Operation::Insert(o) => Some(&o.table),
            Operation::Select(o) => Some(&o.table),
            Operation::Update(o) => Some(&o.table),
            Operation::Mutate(o) => Some(&o.table),
            Operation::Delete(o) => Some(&o.table),
            Operation::Wait(o) => Some(&o.table),
            _ => None,
        }
    }
}

impl Serialize for Operation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("op", self.kind().as_str())?;
        if let Some(t) = self.table() {
            m.serialize_entry("table", t)?;
        }
        match self {
            Operation::Insert(o) => {
                m.serialize_entry("row", &o.row)?;
                if let Some(n) = &o.uuid_name {
                    m.serialize_entry("uuid-name", n)?;
                }
                if let Some(u) = &o.uuid {
                    m.serialize_entry("uuid", u)?;
                }
            }
            Operation::Select(o) => {
                m.serialize_entry("where", &o.conditions)?;
                if let Some(c) = &o.columns {
                    m.serialize_entry("columns", c)?;
                }
            }
            Operation::Update(o) => {
                m.serialize_entry("where", &o.conditions)?;
                m.serialize_entry("row", &o.row)?;
            }
            Operation::Mutate(o) => {
                m.serialize_entry("where", &o.conditions)?;
                m.serialize_entry("mutations", &o.mutations)?;
            }
            Operation::Delete(o) => m.serialize_entry("where", &o.conditions)?,
            Operation::Wait(o) => {
                if let Some(t) = o.timeout {
                    m.serialize_entry("timeout", &t)?;
                }
                m.serialize_entry("where", &o.conditions)?;
                m.serialize_entry("columns", &o.columns)?;
                m.serialize_entry("until", o.until.as_str())?;
                m.serialize_entry("rows", &o.rows)?;
            }
            Operation::Commit { durable } => m.serialize_entry("durable", durable)?,
            Operation::Abort => {}
            Operation::Comment(c) => m.serialize_entry("comment", c)?,
            Operation::Assert { lock } => m.serialize_entry("lock", lock)?,
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Datum;
    use serde_json::json;

    fn js(op: Operation) -> serde_json::Value {
        serde_json::to_value(op).unwrap()
    }

    #[test]
    fn insert_with_name_and_uuid() {
        let u = Uuid::from_u128(1);
        let op = Insert::new("T", Row::new().with("a", 1))
            .uuid_name(NamedUuid::new("n").unwrap())
            .with_uuid(u);
        assert_eq!(
            js(Operation::Insert(op)),
            json!({"op":"insert","table":"T","row":{"a":1},"uuid-name":"n",
                   "uuid":"00000000-0000-0000-0000-000000000001"})
        );
    }

    #[test]
    fn every_other_op_serializes() {
        let w = Wait::new(
            "T",
            ["a"],
            WaitUntil::NotEqual,
            vec![Row::new().with("a", 1)],
        )
        .filter(Condition::eq("a", 1))
        .timeout_ms(0);
        assert_eq!(
            js(Operation::Wait(w)),
            json!({"op":"wait","table":"T","timeout":0,"where":[["a","==",1]],"columns":["a"],
                   "until":"!=","rows":[{"a":1}]})
        );
        assert_eq!(
            js(Operation::Select(Select::new("T").columns(["a"]))),
            json!({"op":"select","table":"T","where":[],"columns":["a"]})
        );
        let m = Mutate::new("T").mutation(Mutation::delete("s", Datum::set(["x"])));
        assert_eq!(
            js(Operation::Mutate(m)),
            json!({"op":"mutate","table":"T","where":[],"mutations":[["s","delete","x"]]})
        );
        assert_eq!(
            js(Operation::Commit { durable: true }),
            json!({"op":"commit","durable":true})
        );
        assert_eq!(js(Operation::Abort), json!({"op":"abort"}));
        assert_eq!(
            js(Operation::Comment("hi".into())),
            json!({"op":"comment","comment":"hi"})
        );
        assert_eq!(
            js(Operation::Assert { lock: "l".into() }),
            json!({"op":"assert","lock":"l"})
        );
        assert_eq!(
            js(Operation::Delete(
                Delete::new("T").filter(Condition::uuid(Uuid::NIL))
            )),
            json!({"op":"delete","table":"T","where":[["_uuid","==",["uuid","00000000-0000-0000-0000-000000000000"]]]})
        );
        assert_eq!(
            js(Operation::Update(Update::new("T", Row::new().with("a", 2)))),
            json!({"op":"update","table":"T","where":[],"row":{"a":2}})
        );
    }
}
