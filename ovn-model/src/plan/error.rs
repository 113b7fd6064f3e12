//! [`PlanError`]: why a change could not be added, a plan not built, or a transaction not
//! committed as the plan meant it.

use ovsdb::table::EncodeError;
use ovsdb::{OvsdbError, TransactError, Uuid, ValidationError};

use super::RowTarget;

/// Why a change could not be added, the plan could not become a transaction, or the server did
/// not do what the plan asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// A row breaks the model's constraints (names the table and column).
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The transaction does not fit the server's schema; nothing was sent.
    #[error("the plan does not fit the server's schema")]
    Invalid(#[source] ValidationError),
    /// A reference to a row that another plan creates.
    #[error("table {table}: row @{name} is not created by this plan")]
    UnknownNamedRow {
        /// The table.
        table: &'static str,
        /// The named UUID.
        name: String,
    },
    /// Two inserts of one plan under the same named UUID.
    #[error("table {table}: the plan already inserts a row named @{name}")]
    DuplicateName {
        /// The table.
        table: &'static str,
        /// The named UUID.
        name: String,
    },
    /// Two wanted rows with the same table and key (a planner bug).
    #[error("table {table}: two wanted rows have the key {key}")]
    DuplicateKey {
        /// The table.
        table: &'static str,
        /// The key, in words.
        key: String,
    },
    /// A row of a non-root table that nothing in the plan refers to: the server would collect it
    /// at once.
    #[error("table {table}: row @{name} is not referred to by any row of the plan")]
    Orphan {
        /// The table.
        table: &'static str,
        /// The named UUID.
        name: String,
    },
    /// Plans of two databases cannot be merged.
    #[error("a plan for {found} cannot be merged into a plan for {expected}")]
    OtherDatabase {
        /// The database of the plan merged into.
        expected: &'static str,
        /// The database of the other plan.
        found: &'static str,
    },
    /// A row of a non-root table is deleted through its parents, which needs its UUID.
    #[error(
        "table {table}: row {target} cannot be deleted by name: rows of a non-root table are removed from their parents by UUID"
    )]
    ChildByName {
        /// The table.
        table: &'static str,
        /// The target as given.
        target: RowTarget,
    },
    /// A row the plan writes into or under does not exist: the server refused the whole
    /// transaction, nothing changed.
    #[error("{table} {target} matched no row, so nothing was changed (needed by: {needed_by})")]
    Missing {
        /// The table.
        table: &'static str,
        /// The row.
        target: RowTarget,
        /// The steps that needed it, in words.
        needed_by: String,
    },
    /// A row the plan inserts only if absent appeared in the meantime: the server refused the
    /// whole transaction, nothing changed (plan again from a fresh snapshot).
    #[error(
        "{table} {target} exists now, so nothing was changed (the plan inserts it only if absent)"
    )]
    Exists {
        /// The table.
        table: &'static str,
        /// The row.
        target: RowTarget,
    },
    /// A name matched several rows where the plan means one.
    #[error("{table} named {name:?} matched {count} rows where one was meant ({what})")]
    Several {
        /// The table.
        table: &'static str,
        /// The name.
        name: String,
        /// How many rows it matched.
        count: u64,
        /// What the plan did or would have done with them, in words.
        what: String,
    },
    /// A row the plan changed by UUID was gone when the transaction ran (the plan was made
    /// from an older state); the other changes committed.
    #[error(
        "{table} row {uuid} no longer exists: {what} changed nothing (plan again from a fresh snapshot)"
    )]
    Stale {
        /// The table.
        table: &'static str,
        /// The row.
        uuid: Uuid,
        /// The step, in words.
        what: String,
    },
    /// The transaction asserted a lock this client does not hold (another client writes):
    /// nothing changed.
    #[error("this client does not hold the lock {lock:?}: nothing was written")]
    NotLockOwner {
        /// The lock.
        lock: String,
    },
    /// The server refused an operation or the commit: nothing changed.
    #[error("the server refused {what}: {error}")]
    Refused {
        /// The refused step (or `the commit`), in words.
        what: String,
        /// The failed operation's position in the transaction (`None` for the commit).
        index: Option<usize>,
        /// The server's `error` and `details`.
        error: OvsdbError,
    },
    /// The transaction could not be sent or answered (feature `client`; the source is the
    /// client's error).
    #[cfg(feature = "client")]
    #[error("the plan's transaction could not be sent")]
    Send(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The server's reply could not be understood.
    #[error("the reply to the plan's transaction could not be understood")]
    Reply(#[source] TransactError),
    /// An observed row lacks a column a wanted row sets (the server's schema is older than the
    /// model's).
    #[error("{table} row {uuid} ({key}): the server has no column {column}")]
    UnknownColumn {
        /// The table.
        table: &'static str,
        /// The observed row.
        uuid: Uuid,
        /// Its owner key, in words.
        key: String,
        /// The column.
        column: String,
    },
    /// A wanted row of a table without `external_ids`, where owner tags cannot be kept.
    #[error("table {table} has no external_ids column to carry owner tags")]
    NoExternalIds {
        /// The table.
        table: &'static str,
    },
}
