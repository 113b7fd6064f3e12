//! What goes in and out of the replica client's [`Machine`](super::Machine): its settings,
//! the pump's reports ([`Input`]) and what it asks of the pump ([`Action`]). Tested with it,
//! in `replica_machine_tests.rs`.

use std::sync::Arc;
use std::time::Duration;

use super::super::raft::DatabaseStatus;
use super::super::reconnect::Backoff;
use super::super::replica_client::ReplicaEvent;
use super::super::replica_error::LinkError;
use super::ConnId;
use crate::replica::ApplyStats;

/// The settings the machine decides with.
#[derive(Debug, Clone)]
pub(crate) struct MachineConfig {
    /// The monitored database.
    pub(crate) db: String,
    /// The remotes, as shown in events, in the order to try them.
    pub(crate) remotes: Vec<String>,
    pub(crate) backoff: Backoff,
    pub(crate) max_rounds: Option<u32>,
    pub(crate) leader_only: bool,
    pub(crate) lock: Option<String>,
    pub(crate) check_timeout: Duration,
    pub(crate) setup_timeout: Duration,
    /// The liveness probe of Raft members; `None` leaves it to the session's probe.
    pub(crate) raft_probe: Option<Duration>,
}

/// What the pump reports.
#[derive(Debug)]
pub(crate) enum Input {
    /// `conn` is open; `_Server` says `status` about the database (`None` inside: no row).
    /// `server_db` is false when the server has no `_Server` database (accepted as is).
    Checked {
        conn: ConnId,
        server_db: bool,
        status: Option<DatabaseStatus>,
    },
    /// A later `_Server` update on `conn`.
    Status {
        conn: ConnId,
        status: Option<DatabaseStatus>,
    },
    /// The monitor of the database is set up (or set up again) on `conn`.
    Subscribed {
        conn: ConnId,
        resumed: bool,
        applied: ApplyStats,
    },
    /// The server canceled the monitor of the database on `conn`.
    MonitorCanceled { conn: ConnId },
    /// The reply to `lock` on `conn`.
    LockReply { conn: ConnId, held: bool },
    /// `locked` arrived on `conn`.
    Locked { conn: ConnId },
    /// `stolen` arrived on `conn`.
    Stolen { conn: ConnId },
    /// Something arrived on `conn` (a notification, a reply, an echo's answer).
    Activity { conn: ConnId },
    /// `conn` failed: it could not be opened, a request failed, or it ended.
    Failed { conn: ConnId, error: Arc<LinkError> },
}

/// A change of the lock, for the pump to apply to the shared flag (and to report if it
/// changed the flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockChange {
    Acquired,
    Lost { stolen: bool },
}

/// What the pump must do.
#[derive(Debug)]
pub(crate) enum Action {
    /// Open `conn` to remote number `remote`, read `_Server`, report [`Input::Checked`].
    Connect { conn: ConnId, remote: usize },
    /// Subscribe (again) on `conn`; report [`Input::Subscribed`].
    Subscribe { conn: ConnId },
    /// Ask for the lock on `conn`; report [`Input::LockReply`].
    RequestLock { conn: ConnId },
    /// Keep `conn` open, its `_Server` monitor followed, beside the next attempts; report its
    /// updates as [`Input::Status`]. [`Action::Subscribe`] on it makes it the connection in
    /// use; [`Action::Close`] ends it.
    Park { conn: ConnId },
    /// Send an `echo` on `conn`; report its answer as [`Input::Activity`].
    Probe { conn: ConnId },
    /// `conn` is synced: hand it to the callers.
    Up { conn: ConnId },
    /// The established connection is gone: the replica is no longer synced.
    Down,
    /// Close `conn`; what waits on it fails with `error`.
    Close { conn: ConnId, error: Arc<LinkError> },
    /// Apply a change of the lock.
    LockChanged(LockChange),
    /// Report an event.
    Emit(ReplicaEvent),
    /// Stop: the rounds are exhausted (a [`ReplicaEvent::GaveUp`] precedes this).
    GiveUp { rounds: u32, last: Arc<LinkError> },
}
