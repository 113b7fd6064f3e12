//! Results of `transact` (RFC 7047 section 4.1.3): typed per-operation results and errors.
//!
//! The server answers with one element per operation. If operation `i` fails, element `i` is an
//! error object and the later ones are `null` (or missing); if every operation succeeds but the
//! commit fails (for example on referential integrity), the array has one extra element, the
//! commit error. [`TransactError`] tells these apart and keeps the server's `error` and `details`.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::ops::{OpKind, Operation};
use crate::row::Row;
use crate::schema::{DatabaseSchema, TableSchema};
use crate::transaction::{CountHandle, InsertHandle, SelectHandle};
use crate::value::{Atom, RowSeed, Uuid};

/// The result of one successful operation.
#[derive(Debug, Clone, PartialEq)]
pub enum OperationResult {
    /// `insert`: the new row's UUID.
    Uuid(Uuid),
    /// `update`, `mutate`, `delete`: rows matched.
    Count(u64),
    /// `select`: the rows.
    Rows(Vec<Row>),
    /// `wait`, `commit`, `abort`, `comment`, `assert`: nothing.
    Empty,
}

/// A successful transaction's results, one per operation.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactOutcome {
    results: Vec<OperationResult>,
}

impl TransactOutcome {
    /// An outcome from its results (the replica's transaction engine makes them).
    pub(crate) fn new(results: Vec<OperationResult>) -> Self {
        TransactOutcome { results }
    }

    /// Every result, in operation order.
    #[must_use]
    pub fn results(&self) -> &[OperationResult] {
        &self.results
    }

    /// The results, by value.
    #[must_use]
    pub fn into_results(self) -> Vec<OperationResult> {
        self.results
    }

    /// The UUID of an inserted row (`None` if the handle is from another transaction).
    #[must_use]
    pub fn uuid(&self, h: &InsertHandle) -> Option<Uuid> {
        match self.results.get(h.index) {
            Some(OperationResult::Uuid(u)) => Some(*u),
            _ => None,
        }
    }

    /// The rows of a select.
    #[must_use]
    pub fn rows(&self, h: &SelectHandle) -> Option<&[Row]> {
        match self.results.get(h.index) {
            Some(OperationResult::Rows(r)) => Some(r),
            _ => None,
        }
    }

    /// Takes the rows of a select out of the outcome (later calls return `None`).
    pub fn take_rows(&mut self, h: &SelectHandle) -> Option<Vec<Row>> {
        match self.results.get_mut(h.index) {
            Some(OperationResult::Rows(r)) => Some(std::mem::take(r)),
            _ => None,
        }
    }

    /// The number of rows an update, mutate or delete matched.
    #[must_use]
    pub fn count(&self, h: &CountHandle) -> Option<u64> {
        match self.results.get(h.index) {
            Some(OperationResult::Count(c)) => Some(*c),
            _ => None,
        }
    }
}

/// Well-known values of the server's `error` member (RFC 7047 and ovsdb-server).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// `constraint violation`: a value breaks its column's constraints, or an index is duplicated.
    ConstraintViolation,
    /// `referential integrity violation`: a strong reference to a missing row.
    ReferentialIntegrity,
    /// `timed out`: a `wait` did not become true in time.
    TimedOut,
    /// `aborted`: the transaction had an `abort` operation.
    Aborted,
    /// `not owner`: an `assert` on a lock this session does not hold.
    NotOwner,
    /// `duplicate uuid-name`.
    DuplicateUuidName,
    /// `domain error` (division by zero, ...).
    DomainError,
    /// `range error` (arithmetic overflow, ...).
    RangeError,
    /// `resources exhausted` (for example a table's `maxRows`).
    ResourcesExhausted,
    /// `I/O error`.
    IoError,
    /// `not supported`.
    NotSupported,
    /// `unknown column`.
    UnknownColumn,
    /// `unknown table`.
    UnknownTable,
    /// `syntax error`.
    SyntaxError,
    /// Anything else, as the server spelled it.
    Other(String),
}

impl ErrorKind {
    /// Classifies the server's `error` string.
    #[must_use]
    pub fn from_error(s: &str) -> Self {
        match s {
            "constraint violation" => ErrorKind::ConstraintViolation,
            "referential integrity violation" => ErrorKind::ReferentialIntegrity,
            "timed out" => ErrorKind::TimedOut,
            "aborted" => ErrorKind::Aborted,
            "not owner" => ErrorKind::NotOwner,
            "duplicate uuid-name" => ErrorKind::DuplicateUuidName,
            "domain error" => ErrorKind::DomainError,
            "range error" => ErrorKind::RangeError,
            "resources exhausted" => ErrorKind::ResourcesExhausted,
            "I/O error" => ErrorKind::IoError,
            "not supported" => ErrorKind::NotSupported,
            "unknown column" => ErrorKind::UnknownColumn,
            "unknown table" => ErrorKind::UnknownTable,
            "syntax error" => ErrorKind::SyntaxError,
            other => ErrorKind::Other(other.to_owned()),
        }
    }
}

/// An error object from the server: `{"error": ..., "details": ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvsdbError {
    /// The `error` member (a short fixed string such as `constraint violation`).
    pub error: String,
    /// The `details` member, if any (human-readable).
    pub details: Option<String>,
    /// The `syntax` member ovsdb-server adds to syntax-class errors: the JSON it could not
    /// accept.
    pub syntax: Option<String>,
}

impl OvsdbError {
    /// The classified `error`.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::from_error(&self.error)
    }
}

impl fmt::Display for OvsdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.details {
            Some(d) => write!(f, "{}: {d}", self.error),
            None => f.write_str(&self.error),
        }
    }
}

/// Why a transaction failed, or why its reply could not be understood.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransactError {
    /// Operation `index` failed; the server did nothing.
    #[error("operation {index} ({kind}{}) failed: {error}", table.as_deref().map(|t| format!(" on {t}")).unwrap_or_default())]
    Operation {
        /// Position of the failed operation.
        index: usize,
        /// Its kind.
        kind: OpKind,
        /// Its table, if it has one.
        table: Option<String>,
        /// The server's error.
        error: OvsdbError,
    },
    /// Every operation succeeded but the commit failed (e.g. referential integrity).
    #[error("transaction failed at commit: {error}")]
    Commit {
        /// The server's error.
        error: OvsdbError,
    },
    /// The reply is valid JSON but does not match the transaction's operations.
    #[error("transact result does not match the transaction: {reason}")]
    Mismatch {
        /// What does not match.
        reason: String,
    },
    /// The reply could not be decoded.
    #[error("transact result could not be decoded")]
    Decode(#[source] serde_json::Error),
}

impl TransactError {
    /// The server's error, for the two kinds that carry one.
    #[must_use]
    pub fn server_error(&self) -> Option<&OvsdbError> {
        match self {
            TransactError::Operation { error, .. } | TransactError::Commit { error } => Some(error),
            _ => None,
        }
    }

    /// The classified server error, if any.
    #[must_use]
    pub fn kind(&self) -> Option<ErrorKind> {
        self.server_error().map(OvsdbError::kind)
    }
}

/// One element of the result array, before it is matched to its operation.
#[derive(Default)]
struct RawResult {
    uuid: Option<Uuid>,
    count: Option<u64>,
    rows: Option<Vec<Row>>,
    error: Option<String>,
    details: Option<String>,
    syntax: Option<String>,
}

pub(crate) fn decode(
    ops: &[Operation],
    schema: Option<&DatabaseSchema>,
    bytes: &[u8],
) -> Result<TransactOutcome, TransactError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let raw = ResultsSeed { ops, schema }
        .deserialize(&mut de)
        .map_err(TransactError::Decode)?;
    de.end().map_err(TransactError::Decode)?;
    classify(ops, raw)
}

fn classify(
    ops: &[Operation],
    raw: Vec<Option<RawResult>>,
) -> Result<TransactOutcome, TransactError> {
    let mismatch = |reason: String| Err(TransactError::Mismatch { reason });
    if let Some(i) = raw
        .iter()
        .position(|r| r.as_ref().is_some_and(|r| r.error.is_some()))
    {
        let r = raw.into_iter().nth(i).flatten().unwrap_or_default();
        let error = OvsdbError {
            error: r.error.unwrap_or_default(),
            details: r.details,
            syntax: r.syntax,
        };
        return match ops.get(i) {
            Some(op) => Err(TransactError::Operation {
                index: i,
                kind: op.kind(),
                table: op.table().map(str::to_owned),
                error,
            }),
            None => Err(TransactError::Commit { error }),
        };
    }
    if raw.len() != ops.len() {
        return mismatch(format!(
            "{} results for {} operations and no error",
            raw.len(),
            ops.len()
        ));
    }
    let mut results = Vec::with_capacity(ops.len());
    for (i, (op, r)) in ops.iter().zip(raw).enumerate() {
        let Some(r) = r else {
            return mismatch(format!("result {i} is null but no operation failed"));
        };
        let res = match (op.kind(), r) {
            (OpKind::Insert, RawResult { uuid: Some(u), .. }) => OperationResult::Uuid(u),
            (
                OpKind::Select,
                RawResult {
                    rows: Some(rows), ..
                },
            ) => OperationResult::Rows(rows),
            (
                OpKind::Update | OpKind::Mutate | OpKind::Delete,
                RawResult { count: Some(c), .. },
            ) => OperationResult::Count(c),
            (
                OpKind::Wait | OpKind::Commit | OpKind::Abort | OpKind::Comment | OpKind::Assert,
                _,
            ) => OperationResult::Empty,
            (kind, _) => return mismatch(format!("result {i} lacks what a {kind} returns")),
        };
        results.push(res);
    }
    Ok(TransactOutcome { results })
}

struct ResultsSeed<'a> {
    ops: &'a [Operation],
    schema: Option<&'a DatabaseSchema>,
}

impl<'de> DeserializeSeed<'de> for ResultsSeed<'_> {
    type Value = Vec<Option<RawResult>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ResultsSeed<'_> {
    type Value = Vec<Option<RawResult>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of operation results")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(self.ops.len() + 1);
        loop {
            let i = out.len();
            if i > self.ops.len() {
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom(format_args!(
                        "more than {} results for {} operations",
                        self.ops.len() + 1,
                        self.ops.len()
                    )));
                }
                break;
            }
            let table = match (self.schema, self.ops.get(i)) {
                (Some(s), Some(Operation::Select(sel))) => s.table(&sel.table),
                _ => None,
            };
            match seq.next_element_seed(OneResultSeed { table })? {
                Some(r) => out.push(r),
                None => break,
            }
        }
        Ok(out)
    }
}

struct OneResultSeed<'a> {
    table: Option<&'a TableSchema>,
}

impl<'de> DeserializeSeed<'de> for OneResultSeed<'_> {
    type Value = Option<RawResult>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OneResultSeed<'_> {
    type Value = Option<RawResult>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an operation result object or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut r = RawResult::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "uuid" => match map.next_value::<Atom>()? {
                    Atom::Uuid(u) => r.uuid = Some(u),
                    other => {
                        return Err(de::Error::custom(format_args!(
                            "\"uuid\" is {other}, not a UUID"
                        )));
                    }
                },
                "count" => r.count = Some(map.next_value()?),
                "rows" => r.rows = Some(map.next_value_seed(RowsSeed { table: self.table })?),
                "error" => r.error = Some(map.next_value()?),
                "details" => r.details = map.next_value::<Option<serde_json::Value>>()?.map(text),
                "syntax" => r.syntax = map.next_value::<Option<serde_json::Value>>()?.map(text),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(r))
    }
}

/// A string member as is; anything else as its JSON text.
fn text(v: serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

struct RowsSeed<'a> {
    table: Option<&'a TableSchema>,
}

impl<'de> DeserializeSeed<'de> for RowsSeed<'_> {
    type Value = Vec<Row>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowsSeed<'_> {
    type Value = Vec<Row>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut rows = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        match self.table {
            Some(t) => {
                while let Some(r) = seq.next_element_seed(RowSeed(t))? {
                    rows.push(r);
                }
            }
            None => {
                while let Some(r) = seq.next_element::<Row>()? {
                    rows.push(r);
                }
            }
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Condition, Insert, Select, Transaction, Update};

    fn txn() -> Transaction {
        Transaction::new("D")
            .with(Insert::new("T", Row::new()))
            .with(Update::new("T", Row::new()).filter(Condition::eq("a", 1)))
            .with(Select::new("T"))
    }

    #[test]
    fn error_in_op_names_it() {
        let e = txn()
            .decode_result_slice(br#"[{"uuid":["uuid","00000000-0000-0000-0000-000000000001"]},{"error":"constraint violation","details":"bad"},null]"#)
            .unwrap_err();
        match &e {
            TransactError::Operation {
                index: 1,
                kind: OpKind::Update,
                table: Some(t),
                error,
            } => {
                assert_eq!(t, "T");
                assert_eq!(error.kind(), ErrorKind::ConstraintViolation);
                assert_eq!(error.details.as_deref(), Some("bad"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(e.to_string().contains("operation 1 (update on T)"), "{e}");
    }

    #[test]
    fn extra_element_is_commit_error() {
        let e = txn()
            .decode_result_slice(br#"[{"uuid":["uuid","00000000-0000-0000-0000-000000000001"]},{"count":1},{"rows":[]},{"error":"referential integrity violation","details":"x"}]"#)
            .unwrap_err();
        assert!(matches!(e, TransactError::Commit { .. }));
        assert_eq!(e.kind(), Some(ErrorKind::ReferentialIntegrity));
    }

    #[test]
    fn error_with_missing_later_results() {
        let e = txn()
            .decode_result_slice(br#"[{"error":"aborted"}]"#)
            .unwrap_err();
        assert!(matches!(e, TransactError::Operation { index: 0, .. }));
    }

    #[test]
    fn shape_mismatch_is_reported() {
        assert!(matches!(
            txn().decode_result_slice(br#"[{"count":1},{"count":1},{"rows":[]}]"#),
            Err(TransactError::Mismatch { .. })
        ));
        assert!(matches!(
            txn().decode_result_slice(br#"[{}]"#),
            Err(TransactError::Mismatch { .. })
        ));
        assert!(matches!(
            txn().decode_result_slice(b"{}"),
            Err(TransactError::Decode(_))
        ));
        assert!(matches!(
            txn().decode_result_slice(br#"[null,null,null,null,null]"#),
            Err(TransactError::Decode(_))
        ));
    }
}
