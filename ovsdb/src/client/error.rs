//! Errors of the client: connecting ([`ConnectError`]) and using a connection
//! ([`ClientError`]).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::jsonrpc::RpcError;
use crate::session::SessionError;
use crate::{SchemaError, TransactError, ValidationError};

/// Opening a connection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The remote string is not `tcp:IP:PORT`, `ssl:IP:PORT` or `unix:PATH` (or a list).
    #[error("invalid remote {remote:?}: {reason}")]
    InvalidRemote {
        /// The remote as given.
        remote: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An `ssl:` remote without a [`super::TlsConfig`]. There is no plaintext fallback.
    #[error("remote {remote} is ssl: but no TLS configuration (key, certificate, CA) was given")]
    TlsConfigMissing {
        /// The remote.
        remote: String,
    },
    /// A key, certificate or CA file could not be read or holds nothing usable.
    #[error("TLS {what} file {} is unusable", path.display())]
    TlsFile {
        /// `private key`, `certificate` or `CA certificate`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why: the I/O or PEM error, or what the file lacks.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// rustls refused the configuration (for example, the key does not match the certificate).
    #[error("TLS configuration refused")]
    TlsConfig(#[source] rustls::Error),
    /// The socket could not be opened.
    #[error("connecting to {remote} failed")]
    Io {
        /// The remote.
        remote: String,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// The TLS handshake failed: the server's certificate is not signed by the configured CA,
    /// or the server refused the client certificate.
    #[error("TLS handshake with {remote} failed")]
    Handshake {
        /// The remote.
        remote: String,
        /// The handshake error (its source is the rustls error, if any).
        #[source]
        source: io::Error,
    },
    /// Every remote of a list failed; the errors are in the list's order.
    #[error("no remote could be reached: {}", list(.0))]
    AllFailed(Vec<ConnectError>),
}

fn list(errors: &[ConnectError]) -> String {
    errors
        .iter()
        .map(|e| match std::error::Error::source(e) {
            Some(src) => format!("{e} ({src})"),
            None => e.to_string(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A request on an open connection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The connection ended before the reply came: the server hung up, the protocol failed,
    /// or the connection was given up. The driver's error, shared by every request that was
    /// waiting, is the source.
    #[error("the connection ended before the reply")]
    Disconnected {
        /// Why the connection ended.
        #[source]
        source: Arc<DriverError>,
    },
    /// The connection's [`super::Driver`] is not running: it was dropped or aborted, or it
    /// finished, without an error to tell.
    #[error("the connection's driver is not running (dropped, aborted or finished)")]
    NotRunning,
    /// The connection's [`super::Driver`] was never polled: it must be spawned
    /// (`tokio::spawn(driver)`) for requests to make progress.
    #[error(
        "the connection's driver was not started within {waited:?}; spawn it with tokio::spawn"
    )]
    NotSpawned {
        /// How long the request waited for the driver to start.
        waited: Duration,
    },
    /// No reply within the request deadline ([`super::ConnectConfig::request_timeout`]); the
    /// request was canceled. A `transact` may or may not have committed.
    #[error("no reply to {method} within {after:?}")]
    TimedOut {
        /// The method of the request.
        method: String,
        /// The deadline.
        after: Duration,
    },
    /// The server answered the request with an error.
    #[error("the server answered {method} with an error: {error}")]
    Server {
        /// The method of the request.
        method: String,
        /// The error as the server sent it.
        error: RpcError,
    },
    /// The request's params could not be serialized.
    #[error("encoding the params of {method}")]
    Encode {
        /// The method.
        method: String,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// The transaction failed (an operation or the commit), or its result did not match it.
    /// Its message is the [`TransactError`]'s: the failed operation and the server's `error`
    /// and `details`.
    #[error(transparent)]
    Transact(#[from] TransactError),
    /// The transaction does not fit the schema; nothing was sent.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The schema the server sent could not be parsed.
    #[error("the schema of {db} sent by the server could not be parsed")]
    Schema {
        /// The database.
        db: String,
        /// The parser's error.
        #[source]
        source: SchemaError,
    },
    /// The reply did not have the shape the method's result has.
    #[error("decoding the reply to {method}")]
    Decode {
        /// The method.
        method: String,
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// A monitor reply could not be applied to a replica (it does not fit the schema).
    #[error("the monitor reply for {db} could not be applied")]
    Monitor {
        /// The database.
        db: String,
        /// What the replica found.
        #[source]
        source: Box<crate::replica::ReplicaError>,
    },
}

impl ClientError {
    /// Whether the request may have been carried out by the server although no reply came
    /// (the connection ended or the deadline passed after it was sent).
    #[must_use]
    pub fn is_ambiguous(&self) -> bool {
        matches!(
            self,
            ClientError::Disconnected { .. } | ClientError::TimedOut { .. }
        )
    }
}

/// Why a [`super::Driver`] stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// Reading or writing the socket failed.
    #[error("I/O on the connection to {remote}")]
    Io {
        /// The remote.
        remote: String,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// The server closed the connection, between messages or in the middle of one.
    #[error("{remote} closed the connection{}", if *mid_message { " in the middle of a message" } else { "" })]
    Closed {
        /// The remote.
        remote: String,
        /// Whether part of a message had arrived (the server died while sending it).
        mid_message: bool,
    },
    /// The server broke the protocol or stopped answering.
    #[error("protocol failure on the connection to {remote}")]
    Protocol {
        /// The remote.
        remote: String,
        /// The session's error.
        #[source]
        source: SessionError,
    },
    /// The client gave the connection up (for example, a replica client found that the
    /// server is no longer the cluster leader, or that it stopped answering).
    #[error("the client gave up the connection to {remote}")]
    Abandoned {
        /// The remote.
        remote: String,
        /// Why the client gave it up.
        #[source]
        reason: Arc<dyn std::error::Error + Send + Sync>,
    },
}
