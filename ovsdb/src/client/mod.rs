//! The tokio client (feature `client`): connect to an OVSDB server over TCP, a unix socket or
//! TLS, and send requests from any number of tasks at once.
//!
//! [`connect`] returns three things, in the manner of rtnetlink's `new_connection()`:
//! a [`Driver`] future to spawn, which owns the socket and a [`crate::session::Session`] and
//! only pumps bytes and timers between them; a [`Client`] handle, cheap to clone, whose
//! methods send requests to the driver over a channel and await their replies; and an
//! [`Updates`] stream of the server's notifications (`update2`, `locked`, ...), delivered in
//! the order the server sent them, so the `update2` caused by a client's own transaction
//! arrives on the stream before that transaction's reply resolves.
//!
//! Requests are pipelined: a thousand `transact` calls from a thousand tasks are all on the
//! wire at once and their replies are matched by id.
//!
//! No request waits forever: each has a deadline ([`ConnectConfig::request_timeout`], 60 s by
//! default) after which it is canceled and fails with [`ClientError::TimedOut`] naming the
//! method; a request on a driver that was never spawned fails with [`ClientError::NotSpawned`]
//! after [`DRIVER_START_GRACE`]; and once the driver has stopped every request fails with
//! [`ClientError::Disconnected`], whose source is the driver's own [`DriverError`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use ovsdb::client::{connect, ConnectConfig, TlsConfig};
//! use ovsdb::{Insert, Row, Transaction};
//!
//! // One remote, or a list tried in order; ssl: needs the ovs-pki files.
//! let config = ConnectConfig::new("ssl:192.0.2.10:6641,unix:/run/ovn/ovnnb_db.sock")
//!     .with_tls(TlsConfig::new("/etc/ovn/key.pem", "/etc/ovn/cert.pem", "/etc/ovn/cacert.pem"));
//! let (driver, client, _updates) = connect(&config).await?;
//! tokio::spawn(driver);
//!
//! println!("{:?} on server {}", client.list_dbs().await?, client.get_server_id().await?);
//! let schema = client.get_schema("OVN_Northbound").await?;
//! let mut txn = Transaction::new("OVN_Northbound");
//! let sw = txn.push(Insert::new("Logical_Switch", Row::new().with("name", "sw0")));
//! let outcome = client.transact_validated(&schema, &txn).await?;
//! println!("sw0 is {:?}", outcome.uuid(&sw));
//! # Ok(()) }
//! ```

mod driver;
mod error;
mod lock;
mod monitor;
pub mod raft;
pub mod reconnect;
mod remote;
mod replica_client;
mod replica_error;
mod replica_machine;
mod replica_task;
mod tls;
mod transport;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};

pub use driver::Driver;
pub use error::{ClientError, ConnectError, DriverError};
pub use lock::{LockNotice, lock_notice};
pub use monitor::{MonitorNotice, MonitorStarted, is_unknown_method, monitor_notice};
pub use reconnect::{Backoff, RemoteOrder};
pub use remote::{DEFAULT_PORT, Remote, parse_remotes};
pub use replica_client::{ChangeStream, ReplicaClient, ReplicaConfig, ReplicaEvent, ReplicaEvents};
pub use replica_error::{LinkError, ReplicaClientError};
pub use tls::{CaOnlyVerifier, TlsConfig};

use crate::framing::DEFAULT_MAX_MESSAGE_LEN;
use crate::jsonrpc::Notification;
use crate::session::{Session, SessionConfig};
use crate::{DatabaseSchema, TransactOutcome, Transaction};
use driver::{Command, DriverStatus};

/// Where and how to connect. `Default` plus chained setters; checked by [`connect`].
#[derive(Debug, Clone)]
pub struct ConnectConfig {
    /// One remote or a comma separated list (`tcp:127.0.0.1:6641,unix:/run/nb.sock`), tried in
    /// order until one connects.
    pub(crate) remote: String,
    /// Key, certificate and CA for `ssl:` remotes.
    pub(crate) tls: Option<TlsConfig>,
    /// The inactivity probe ([`SessionConfig::inactivity_probe`]).
    pub(crate) inactivity_probe: InactivityProbe,
    /// The largest message accepted from the server.
    pub(crate) max_message_len: usize,
    /// How long any request waits for its reply before it is canceled and fails with
    /// [`ClientError::TimedOut`] ([`DEFAULT_REQUEST_TIMEOUT`] by default); `None` waits as
    /// long as the connection lives. The inactivity probe only notices a server that sends
    /// nothing at all; this bounds one that answers `echo` but never a given request.
    pub(crate) request_timeout: Option<Duration>,
}

/// The default [`ConnectConfig::request_timeout`]: long enough for a `wait` operation or the
/// first monitor reply of a large database on a loaded server, short enough that a lost
/// reply is reported instead of waited for forever.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a request waits for a [`Driver`] that was never polled before it fails with
/// [`ClientError::NotSpawned`].
pub const DRIVER_START_GRACE: Duration = Duration::from_secs(2);

impl Default for ConnectConfig {
    fn default() -> Self {
        Self {
            remote: String::new(),
            tls: None,
            inactivity_probe: InactivityProbe::Default,
            max_message_len: DEFAULT_MAX_MESSAGE_LEN,
            request_timeout: Some(DEFAULT_REQUEST_TIMEOUT),
        }
    }
}

impl ConnectConfig {
    /// A configuration for `remote` (one remote or a comma separated list).
    pub fn new(remote: impl Into<String>) -> Self {
        Self {
            remote: remote.into(),
            ..Self::default()
        }
    }

    /// Sets the TLS files used for `ssl:` remotes.
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets the inactivity probe; `None` disables it.
    pub fn with_inactivity_probe(mut self, probe: Option<Duration>) -> Self {
        self.inactivity_probe = InactivityProbe::from(probe);
        self
    }

    /// Sets the largest message accepted from the server.
    pub fn with_max_message_len(mut self, len: usize) -> Self {
        self.max_message_len = len;
        self
    }

    /// Sets the request deadline; `None` disables it.
    pub fn with_request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The remote (or comma separated list).
    #[must_use]
    pub fn remote(&self) -> &str {
        &self.remote
    }

    /// The inactivity probe.
    #[must_use]
    pub fn inactivity_probe(&self) -> InactivityProbe {
        self.inactivity_probe
    }

    /// The largest message accepted from the server.
    #[must_use]
    pub fn max_message_len(&self) -> usize {
        self.max_message_len
    }

    /// The request deadline, if any.
    #[must_use]
    pub fn request_timeout(&self) -> Option<Duration> {
        self.request_timeout
    }
}

/// The inactivity probe of a connection: a server silent for the interval gets an `echo`, and
/// one silent for another interval is given up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InactivityProbe {
    /// What Open vSwitch does: 5 s on TCP and TLS, off on unix sockets (a single-threaded
    /// server computing a huge initial reply is silent for a long time, and a local socket
    /// breaks visibly when the server dies).
    #[default]
    Default,
    /// Every this long, on every remote.
    Every(Duration),
    /// Never.
    Off,
}

impl InactivityProbe {
    /// The interval on `remote`.
    pub(crate) fn on(self, remote: &Remote) -> Option<Duration> {
        match (self, remote) {
            (InactivityProbe::Default, Remote::Unix(_)) | (InactivityProbe::Off, _) => None,
            (InactivityProbe::Default, _) => Some(Duration::from_secs(5)),
            (InactivityProbe::Every(d), _) => Some(d),
        }
    }
}

impl From<Option<Duration>> for InactivityProbe {
    /// `Some(d)`: every `d`; `None`: off.
    fn from(probe: Option<Duration>) -> Self {
        probe.map_or(InactivityProbe::Off, InactivityProbe::Every)
    }
}

/// Connects to the first remote of `config` that accepts, and returns the driver to spawn,
/// the request handle and the notification stream.
pub async fn connect(config: &ConnectConfig) -> Result<(Driver, Client, Updates), ConnectError> {
    let remotes = parse_remotes(&config.remote)?;
    let tls = match &config.tls {
        Some(t) if remotes.iter().any(|r| matches!(r, Remote::Ssl(_))) => Some(t.load()?),
        _ => None,
    };
    let mut errors = Vec::new();
    for remote in &remotes {
        match transport::open(remote, tls.as_ref()).await {
            Ok(io) => return Ok(start(io, remote, config)),
            Err(e) => {
                tracing::debug!(%remote, error = %e, "OVSDB remote failed");
                errors.push(e);
            }
        }
    }
    if errors.len() == 1 {
        Err(errors.remove(0))
    } else {
        Err(ConnectError::AllFailed(errors))
    }
}

fn start(
    io: Box<dyn transport::Io>,
    remote: &Remote,
    config: &ConnectConfig,
) -> (Driver, Client, Updates) {
    let probe = config.inactivity_probe.on(remote);
    let session_config = SessionConfig::default()
        .with_inactivity_probe(probe)
        .with_max_message_len(config.max_message_len);
    let session = Session::new(session_config, std::time::Instant::now());
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (upd_tx, upd_rx) = mpsc::unbounded_channel();
    let status = Arc::new(DriverStatus::default());
    let driver = Driver::new(
        io,
        session,
        cmd_rx,
        upd_tx,
        remote.to_string(),
        status.clone(),
    );
    let client = Client {
        commands: cmd_tx,
        next_token: Arc::new(AtomicU64::new(0)),
        remote: remote.clone(),
        status,
        request_timeout: config.request_timeout,
    };
    (driver, client, Updates { rx: upd_rx })
}

/// The server's notifications, in the order it sent them. Ends when the driver stops.
#[derive(Debug)]
pub struct Updates {
    rx: mpsc::UnboundedReceiver<Notification>,
}

impl Stream for Updates {
    type Item = Notification;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Notification>> {
        self.rx.poll_recv(cx)
    }
}

/// A handle for sending requests on one connection; clone it freely.
///
/// Dropping a request's future before it resolves sends the RFC 7047 `cancel` for it.
#[derive(Debug, Clone)]
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
    next_token: Arc<AtomicU64>,
    remote: Remote,
    status: Arc<DriverStatus>,
    request_timeout: Option<Duration>,
}

/// Sends `cancel` for a request whose caller stopped waiting.
struct CancelOnDrop<'a> {
    commands: &'a mpsc::UnboundedSender<Command>,
    token: u64,
    armed: bool,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.commands.send(Command::Cancel { token: self.token });
        }
    }
}

impl Client {
    /// Whether the driver has stopped (requests would fail with [`ClientError::Disconnected`]).
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }

    /// The error the driver ended with, if it has.
    pub(crate) fn ended(&self) -> Option<Arc<DriverError>> {
        self.status.ended.get().cloned()
    }

    /// The request deadline of this connection ([`ConnectConfig::request_timeout`]).
    pub fn request_timeout(&self) -> Option<Duration> {
        self.request_timeout
    }

    /// Closes the connection: requests waiting for a reply fail with
    /// [`ClientError::Disconnected`] whose source is [`DriverError::Abandoned`] with `reason`,
    /// and the driver stops.
    pub fn abandon(&self, reason: Arc<dyn std::error::Error + Send + Sync>) {
        let _ = self.commands.send(Command::Abandon { reason });
    }

    /// The remote this handle's connection reached.
    pub fn remote(&self) -> &Remote {
        &self.remote
    }

    /// Sends any request and returns its raw result. The monitor and lock methods build on this.
    pub async fn request<P: Serialize + ?Sized>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<Box<RawValue>, ClientError> {
        let params =
            serde_json::value::to_raw_value(params).map_err(|source| ClientError::Encode {
                method: method.to_owned(),
                source,
            })?;
        self.request_raw(method, params).await
    }

    /// Sends a request whose params are already JSON.
    pub async fn request_raw(
        &self,
        method: &str,
        params: Box<RawValue>,
    ) -> Result<Box<RawValue>, ClientError> {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Request {
            token,
            method: method.to_owned(),
            params,
            reply,
        };
        if self.commands.send(cmd).is_err() {
            return Err(self.status.closed_error());
        }
        let mut guard = CancelOnDrop {
            commands: &self.commands,
            token,
            armed: true,
        };
        let result = self.wait_reply(method, rx).await;
        // A request that timed out is canceled by the guard; one that was answered is not.
        guard.armed = result.is_err();
        match result? {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(failure)) => Err(failure.into_error(method)),
            Err(_) => Err(self.status.closed_error()),
        }
    }

    /// Waits for the reply within the request deadline, failing early if the driver was
    /// never started.
    async fn wait_reply<T>(
        &self,
        method: &str,
        rx: oneshot::Receiver<T>,
    ) -> Result<Result<T, oneshot::error::RecvError>, ClientError> {
        let start = tokio::time::Instant::now();
        let deadline = self.request_timeout.map(|t| start + t);
        let timed_out = || ClientError::TimedOut {
            method: method.to_owned(),
            after: self.request_timeout.unwrap_or_default(),
        };
        tokio::pin!(rx);
        if !self.status.started.load(Ordering::Relaxed) {
            let grace = start + DRIVER_START_GRACE;
            let first = deadline.map_or(grace, |d| d.min(grace));
            match tokio::time::timeout_at(first, &mut rx).await {
                Ok(r) => return Ok(r),
                Err(_) if !self.status.started.load(Ordering::Relaxed) => {
                    return Err(ClientError::NotSpawned {
                        waited: DRIVER_START_GRACE,
                    });
                }
                Err(_) if deadline.is_some_and(|d| d <= first) => return Err(timed_out()),
                Err(_) => {}
            }
        }
        match deadline {
            Some(d) => tokio::time::timeout_at(d, rx)
                .await
                .map_err(|_| timed_out()),
            None => Ok(rx.await),
        }
    }

    pub(crate) async fn call<T: DeserializeOwned, P: Serialize + ?Sized>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<T, ClientError> {
        let raw = self.request(method, params).await?;
        serde_json::from_str(raw.get()).map_err(|source| ClientError::Decode {
            method: method.to_owned(),
            source,
        })
    }

    /// `list_dbs`: the names of the server's databases.
    pub async fn list_dbs(&self) -> Result<Vec<String>, ClientError> {
        self.call("list_dbs", &[(); 0]).await
    }

    /// `get_schema`: the schema of `db`, parsed.
    pub async fn get_schema(&self, db: &str) -> Result<DatabaseSchema, ClientError> {
        let raw = self.get_schema_raw(db).await?;
        DatabaseSchema::from_slice(raw.get().as_bytes()).map_err(|source| ClientError::Schema {
            db: db.to_owned(),
            source,
        })
    }

    /// `transact`: sends `txn` and decodes the reply into one typed result per operation.
    /// A failed operation or commit is a [`ClientError::Transact`] that names the operation
    /// and keeps the server's `error` and `details`.
    pub async fn transact(&self, txn: &Transaction) -> Result<TransactOutcome, ClientError> {
        let raw = self.transact_raw(txn).await?;
        Ok(txn.decode_result(&raw)?)
    }

    /// Checks `txn` against `schema` ([`Transaction::validate`]), then sends it; select rows in
    /// the result are decoded against the schema's column types.
    pub async fn transact_validated(
        &self,
        schema: &DatabaseSchema,
        txn: &Transaction,
    ) -> Result<TransactOutcome, ClientError> {
        txn.validate(schema)?;
        let raw = self.transact_raw(txn).await?;
        Ok(txn.decode_result_typed(raw.get().as_bytes(), schema)?)
    }

    /// `get_schema`, the schema JSON as sent.
    pub async fn get_schema_raw(&self, db: &str) -> Result<Box<RawValue>, ClientError> {
        self.request("get_schema", &[db]).await
    }

    /// `transact` with params (`[db, op...]`) built by the caller; the raw result (an array
    /// with one element per operation, errors included).
    pub async fn transact_raw<P: Serialize + ?Sized>(
        &self,
        params: &P,
    ) -> Result<Box<RawValue>, ClientError> {
        self.request("transact", params).await
    }

    /// `echo`: the server sends `params` back.
    pub async fn echo(&self, params: Vec<Value>) -> Result<Vec<Value>, ClientError> {
        self.call("echo", &params).await
    }

    /// `get_server_id`: the server's UUID (Open vSwitch extension).
    pub async fn get_server_id(&self) -> Result<crate::Uuid, ClientError> {
        let id: uuid::Uuid = self.call("get_server_id", &[(); 0]).await?;
        Ok(id.into())
    }
}
