//! Errors of the replica client: what a call on a [`super::ReplicaClient`] returns
//! ([`ReplicaClientError`]), and why a connection attempt was refused or an established
//! connection ended ([`LinkError`], carried by events and by [`ReplicaClientError::GaveUp`]).
//!
//! Causes stay typed: a [`LinkError`] keeps the [`ConnectError`], [`ClientError`],
//! [`Rejection`] or [`DriverError`] it comes from as its source, shared in an `Arc` because one
//! failure is reported to the event stream and to every waiting call.
//!
//! Their texts are checked against real servers: `tests/client_errors.rs` (what a failed
//! transaction and a start on a missing socket say) and `tests/client_monitor_raft.rs` (the
//! Raft rejection behind a transaction in flight when the leader leaves).

use std::sync::Arc;
use std::time::Duration;

use super::raft::Rejection;
use super::{ClientError, ConnectError, DriverError};
use crate::monitor::MonitorError;
use crate::replica::ReplicaError;

/// What went wrong for a [`super::ReplicaClient`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaClientError {
    /// The remote list is malformed, or TLS files are unusable.
    #[error("invalid configuration")]
    Config(#[from] ConnectError),
    /// The monitor request does not fit the server's schema.
    #[error("the monitor request does not fit the schema of {db}")]
    Monitor {
        /// The database.
        db: String,
        /// What does not fit.
        #[source]
        source: MonitorError,
    },
    /// No remote returned the database's schema within
    /// [`super::ReplicaConfig::start_timeout`].
    #[error("no remote returned the schema of {db} within {waited:?}")]
    StartTimedOut {
        /// The database.
        db: String,
        /// How long [`super::ReplicaClient::start`] tried.
        waited: Duration,
        /// The last failure, if an attempt ended before the deadline.
        #[source]
        last: Option<Arc<LinkError>>,
    },
    /// No remote could be used for [`super::ReplicaConfig::with_max_rounds`] rounds in a row.
    #[error("gave up after {rounds} rounds of connection attempts")]
    GaveUp {
        /// Failed rounds.
        rounds: u32,
        /// The last failure.
        #[source]
        last: Arc<LinkError>,
    },
    /// No connection came up within [`super::ReplicaConfig::with_request_wait`].
    #[error("no connection to a usable server within {waited:?}")]
    NotConnected {
        /// How long the call waited.
        waited: Duration,
    },
    /// The connection dropped (or the request deadline passed) while the transaction was in
    /// flight: it may or may not have committed. It is not sent again; check the database (or
    /// make the transaction idempotent and retry). The source says why, for example
    /// [`Rejection::NotLeader`] after a leader change.
    #[error(
        "the transaction sent to {remote} may or may not have committed: no reply came before the connection dropped or the deadline passed"
    )]
    MaybeCommitted {
        /// The server it was sent to.
        remote: String,
        /// Why no reply came ([`ClientError::Disconnected`] or [`ClientError::TimedOut`]).
        #[source]
        source: Box<ClientError>,
    },
    /// [`super::ReplicaClient::steal_lock`] or [`super::ReplicaClient::unlock`] without a
    /// lock in the configuration ([`super::ReplicaConfig::with_lock`]).
    #[error("no lock is configured")]
    NoLock,
    /// The server answered with an error, or the request failed otherwise; its message is the
    /// [`ClientError`]'s (for a failed transaction: the operation and the server's words).
    #[error(transparent)]
    Request(#[from] ClientError),
    /// The replica client was shut down.
    #[error("the replica client is shut down")]
    Stopped,
}

impl ReplicaClientError {
    /// The Raft rejection behind this error, if a server was given up for one (for example,
    /// [`Rejection::NotLeader`] when a transaction's connection was dropped after a leader
    /// change).
    #[must_use]
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            ReplicaClientError::MaybeCommitted { source, .. } => client_rejection(source),
            ReplicaClientError::Request(source) => client_rejection(source),
            ReplicaClientError::GaveUp { last, .. } => last.rejection(),
            ReplicaClientError::StartTimedOut { last, .. } => {
                last.as_deref().and_then(LinkError::rejection)
            }
            _ => None,
        }
    }
}

/// The Raft rejection for which the connection of a request was given up, if any.
fn client_rejection(e: &ClientError) -> Option<&Rejection> {
    match e {
        ClientError::Disconnected { source } => match &**source {
            DriverError::Abandoned { reason, .. } => reason
                .downcast_ref::<LinkError>()
                .and_then(LinkError::rejection),
            _ => None,
        },
        _ => None,
    }
}

/// Why a connection attempt was refused, or why an established connection ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The connection could not be opened.
    #[error(transparent)]
    Connect(ConnectError),
    /// A request of the set-up or of the upkeep failed.
    #[error("{step} failed")]
    Request {
        /// What the client was doing (`fetching the schema`, `monitoring _Server`, ...).
        step: &'static str,
        /// The request's error.
        #[source]
        source: ClientError,
    },
    /// `_Server` says the server may not be used (not the leader, cut off, stale).
    #[error(transparent)]
    Rejected(Rejection),
    /// Connecting and checking `_Server` took longer than
    /// [`super::ReplicaConfig::with_check_timeout`].
    #[error("connecting and checking _Server took longer than {0:?}")]
    CheckTimedOut(Duration),
    /// Connecting, checking and subscribing took longer than
    /// [`super::ReplicaConfig::with_setup_timeout`].
    #[error("not synced within {0:?}")]
    SetupTimedOut(Duration),
    /// A Raft member sent nothing for this long, a liveness `echo` included
    /// ([`super::ReplicaConfig::with_raft_probe`]): it is frozen or cut off.
    #[error("the cluster member sent nothing for {0:?}, a liveness echo unanswered")]
    Unresponsive(Duration),
    /// The connection ended.
    #[error(transparent)]
    Closed(Arc<DriverError>),
    /// The connection ended without an error to tell (its driver stopped).
    #[error("the connection's driver stopped")]
    DriverStopped,
    /// An update could not be applied to the replica.
    #[error("applying {what} failed")]
    Apply {
        /// The reply or notification (`the monitor reply`, `update2`, ...).
        what: String,
        /// What the replica found.
        #[source]
        source: ReplicaError,
    },
    /// The server canceled the monitor of `_Server`.
    #[error("the server canceled the _Server monitor")]
    ServerMonitorCanceled,
}

impl LinkError {
    /// The Raft rejection behind this failure, if any.
    #[must_use]
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            LinkError::Rejected(r) => Some(r),
            LinkError::Request { source, .. } => client_rejection(source),
            _ => None,
        }
    }

    /// A request of `step` failed; a connection that ended during it is told as such.
    pub(crate) fn request(step: &'static str, source: ClientError) -> LinkError {
        match source {
            ClientError::Disconnected { source } => LinkError::Closed(source),
            source => LinkError::Request { step, source },
        }
    }
}
