//! The transaction builder: a database name and a list of operations, with a typed handle per
//! operation to read its result back from the [`TransactOutcome`].
//!
//! ```
//! use ovsdb::{Condition, Insert, NamedUuid, Mutate, Mutation, Row, Select, Transaction};
//!
//! let mut txn = Transaction::new("OVN_Northbound");
//! let ls = NamedUuid::new("ls").unwrap();
//! let inserted = txn.push(Insert::new("Logical_Switch", Row::new().with("name", "sw0")).uuid_name(ls.clone()));
//! txn.push(Mutate::new("Logical_Router").mutation(Mutation::add("options", 0)).filter(Condition::eq("name", "r")));
//! let listed = txn.push(Select::new("Logical_Switch").columns(["name"]));
//!
//! // What goes on the wire as the params of "transact":
//! let params = serde_json::to_string(&txn).unwrap();
//! assert!(params.starts_with(r#"["OVN_Northbound",{"op":"insert""#));
//!
//! // The server's reply `result`, decoded:
//! let reply = r#"[{"uuid":["uuid","2f1b2c4e-0c43-4f5e-8f7a-1a2b3c4d5e6f"]},{"count":0},{"rows":[{"name":"sw0"}]}]"#;
//! let outcome = txn.decode_result_slice(reply.as_bytes()).unwrap();
//! assert_eq!(outcome.uuid(&inserted).unwrap().to_string(), "2f1b2c4e-0c43-4f5e-8f7a-1a2b3c4d5e6f");
//! assert_eq!(outcome.rows(&listed).unwrap()[0].atom("name").and_then(|a| a.as_str()), Some("sw0"));
//! ```

use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use crate::ops::{Delete, Insert, Mutate, Operation, Select, Update, Wait};
use crate::result::{self, TransactError, TransactOutcome};
use crate::schema::DatabaseSchema;
use crate::validate::{self, ValidationError};
use crate::value::NamedUuid;

/// A transaction: what the `transact` method sends.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Transaction {
    db: String,
    ops: Vec<Operation>,
}

impl Transaction {
    /// An empty transaction on database `db`.
    pub fn new(db: impl Into<String>) -> Self {
        Transaction {
            db: db.into(),
            ops: Vec::new(),
        }
    }

    /// An empty transaction with room for `n` operations.
    pub fn with_capacity(db: impl Into<String>, n: usize) -> Self {
        Transaction {
            db: db.into(),
            ops: Vec::with_capacity(n),
        }
    }

    /// Appends an operation and returns the handle to its result.
    pub fn push<O: IntoOperation>(&mut self, op: O) -> O::Handle {
        let index = self.ops.len();
        let handle = op.handle(index);
        self.ops.push(op.into_operation());
        handle
    }

    /// Appends an operation, builder style (the handle is dropped).
    pub fn with<O: IntoOperation>(mut self, op: O) -> Self {
        self.push(op);
        self
    }

    /// The database name.
    #[must_use]
    pub fn database(&self) -> &str {
        &self.db
    }

    /// The operations, in order.
    #[must_use]
    pub fn operations(&self) -> &[Operation] {
        &self.ops
    }

    /// Number of operations.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether there is no operation.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The `transact` params `[db, op, ...]` as a JSON value.
    ///
    /// The `Serialize` impl writes the same array without building a `Value`; prefer it when
    /// writing straight to a buffer.
    #[must_use]
    pub fn to_params(&self) -> serde_json::Value {
        // Serializing our own types to a Value cannot fail: all map keys are strings.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Checks every operation against `schema` before sending.
    pub fn validate(&self, schema: &DatabaseSchema) -> Result<(), ValidationError> {
        validate::transaction(self, schema)
    }

    /// Decodes the `result` of the reply to this transaction.
    ///
    /// Select rows are decoded without a schema (an integer in a real column stays an integer);
    /// use [`Transaction::decode_result_typed`] to decode them against the schema.
    pub fn decode_result(&self, result: &RawValue) -> Result<TransactOutcome, TransactError> {
        self.decode_result_slice(result.get().as_bytes())
    }

    /// [`Transaction::decode_result`] from bytes.
    pub fn decode_result_slice(&self, result: &[u8]) -> Result<TransactOutcome, TransactError> {
        result::decode(&self.ops, None, result)
    }

    /// Decodes the `result`, reading select rows against their table in `schema`.
    pub fn decode_result_typed(
        &self,
        result: &[u8],
        schema: &DatabaseSchema,
    ) -> Result<TransactOutcome, TransactError> {
        result::decode(&self.ops, Some(schema), result)
    }
}

impl Serialize for Transaction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.ops.len() + 1))?;
        seq.serialize_element(&self.db)?;
        for op in &self.ops {
            seq.serialize_element(op)?;
        }
        seq.end()
    }
}

/// Something that becomes one operation of a transaction, with a typed handle to its result.
pub trait IntoOperation {
    /// Handle to the result.
    type Handle;
    /// The handle for the operation at `index`.
    fn handle(&self, index: usize) -> Self::Handle;
    /// The operation.
    fn into_operation(self) -> Operation;
}

/// Handle to the result of an `insert`: the new row's UUID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InsertHandle {
    /// Position of the operation in the transaction.
    pub index: usize,
    /// The insert's `uuid-name`, for references in later operations.
    pub uuid_name: Option<NamedUuid>,
}

/// Handle to the result of a `select`: the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SelectHandle {
    /// Position of the operation in the transaction.
    pub index: usize,
}

/// Handle to the result of an `update`, `mutate` or `delete`: the number of rows matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CountHandle {
    /// Position of the operation in the transaction.
    pub index: usize,
}

/// Handle to an operation whose result is empty (`wait`, `commit`, `abort`, `comment`, `assert`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpHandle {
    /// Position of the operation in the transaction.
    pub index: usize,
}

impl IntoOperation for Insert {
    type Handle = InsertHandle;
    fn handle(&self, index: usize) -> InsertHandle {
        InsertHandle {
            index,
            uuid_name: self.uuid_name.clone(),
        }
    }
    fn into_operation(self) -> Operation {
        Operation::Insert(self)
    }
}

impl IntoOperation for Select {
    type Handle = SelectHandle;
    fn handle(&self, index: usize) -> SelectHandle {
        SelectHandle { index }
    }
    fn into_operation(self) -> Operation {
        Operation::Select(self)
    }
}

macro_rules! count_op {
    ($($t:ident),*) => {$(
        impl IntoOperation for $t {
            type Handle = CountHandle;
            fn handle(&self, index: usize) -> CountHandle {
                CountHandle { index }
            }
            fn into_operation(self) -> Operation {
                Operation::$t(self)
            }
        }
    )*};
}

count_op!(Update, Mutate, Delete);

impl IntoOperation for Wait {
    type Handle = OpHandle;
    fn handle(&self, index: usize) -> OpHandle {
        OpHandle { index }
    }
    fn into_operation(self) -> Operation {
        Operation::Wait(self)
    }
}

/// Any [`Operation`] can be pushed as is; its handle is the bare index.
impl IntoOperation for Operation {
    type Handle = usize;
    fn handle(&self, index: usize) -> usize {
        index
    }
    fn into_operation(self) -> Operation {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Row;

    #[test]
    fn params_are_db_then_ops() {
        let txn = Transaction::new("D")
            .with(Insert::new("T", Row::new()))
            .with(Operation::Commit { durable: false });
        assert_eq!(
            txn.to_params(),
            serde_json::json!(["D", {"op":"insert","table":"T","row":{}}, {"op":"commit","durable":false}])
        );
        assert_eq!(serde_json::to_value(&txn).unwrap(), txn.to_params());
    }
}
