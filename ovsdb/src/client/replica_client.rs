//! A replica that stays live and correct across restarts, leader changes and hung servers.
//!
//! [`ReplicaClient::start`] fetches the schema (for at most [`ReplicaConfig::start_timeout`],
//! reporting each refused remote as it goes), then spawns a task that owns the connection
//! loop: connect to a remote of the list (in order or shuffled, [`RemoteOrder`]), check it
//! through `_Server` ([`super::raft`]: in leader-only mode only the Raft leader is used, and a
//! server behind what was already seen is never used), subscribe with the newest monitor
//! method the server knows, apply every notification to the [`Replica`], and keep the lock if
//! one is configured. When the connection drops (the server closed it, died, stopped being
//! the leader, or stopped answering) it tries the next remote at once, then whole rounds with
//! [`Backoff`] between them. The new subscription resumes with `monitor_cond_since` and the
//! last transaction id when the server still knows it; otherwise its full contents replace the
//! replica and the difference is reported as changes. Nothing is lost either way: consumers
//! ([`ReplicaClient::changes`]) see every row that changed, coalesced.
//!
//! Every decision of that loop (which remote next, how long to wait, whether a server may be
//! used, when a Raft member counts as frozen, when the lock is held) is made by a sans-IO state
//! machine (`replica_machine`, unit-tested with simulated time); the task only performs its
//! actions. Its module docs say how clustered databases fail over quickly: a member refused
//! during an election is watched until the election ends, and a frozen leader is given up
//! after two [`ReplicaConfig::with_raft_probe`] intervals.
//!
//! Transactions ([`ReplicaClient::transact`]) go to the current connection. One in flight when
//! the connection drops (or whose deadline passes) fails with
//! [`ReplicaClientError::MaybeCommitted`], whose source says why (for example "the server is
//! not the cluster leader"); it is never sent again by the client. Make writes idempotent (a
//! `wait` or a guarded condition), or look for their effect, before retrying them.
//!
//! Giving up (after [`ReplicaConfig::with_max_rounds`] failed rounds) is an event and an error on
//! every later call, never a panic. Failures keep their causes typed ([`LinkError`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use ovsdb::client::{ReplicaClient, ReplicaConfig};
//! use ovsdb::monitor::{MonitorMethod, MonitorRequest, TableMonitor};
//!
//! let monitor = MonitorRequest::new("OVN_Northbound", MonitorMethod::MonitorCondSince)
//!     .with_table("Logical_Switch", TableMonitor::all().with_columns(["name", "ports"]));
//! let config = ReplicaConfig::new("tcp:127.0.0.1:6641,tcp:127.0.0.1:6643", monitor)
//!     .with_lock("my-controller");
//! let (replica, mut events) = ReplicaClient::start(config).await?;
//! replica.wait_synced().await?;
//! let mut changes = replica.changes();
//! while let Some((set, snapshot)) = changes.next().await {
//!     println!("{} rows changed; {} switches", set.len(),
//!              snapshot.table("Logical_Switch").map_or(0, |t| t.len()));
//!     if replica.has_lock() { /* reconcile */ }
//! }
//! # let _ = events.next().await;
//! # Ok(()) }
//! ```

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::sync::{mpsc, watch};

use super::reconnect::{Backoff, RemoteOrder, ordered};
use super::replica_error::{LinkError, ReplicaClientError};
use super::replica_task::Runner;
use super::{
    Client, ClientError, ConnectConfig, InactivityProbe, Remote, TlsConfig, parse_remotes,
};
use crate::framing::DEFAULT_MAX_MESSAGE_LEN;
use crate::monitor::MonitorRequest;
use crate::replica::{self, ApplyStats, ConsumerId, Replica, Snapshot};
use crate::{TransactOutcome, Transaction};

/// How a [`ReplicaClient`] connects and what it monitors. `new` plus chained setters.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// One remote or a comma separated list.
    pub(crate) remotes: String,
    /// Key, certificate and CA for `ssl:` remotes.
    pub(crate) tls: Option<TlsConfig>,
    /// What to monitor: the database, the monitor id, the newest method to try, and the
    /// columns and conditions per table.
    pub(crate) monitor: MonitorRequest,
    /// The inactivity probe on every remote.
    pub(crate) inactivity_probe: InactivityProbe,
    /// The delays between rounds of failed attempts.
    pub(crate) backoff: Backoff,
    /// Give up after this many failed rounds in a row (every remote refused); `None`, the
    /// default, never gives up.
    pub(crate) max_rounds: Option<u32>,
    /// How the remote list is tried.
    pub(crate) order: RemoteOrder,
    /// Use only the Raft leader (the default, as `ovn-nbctl` does); `false` reads from
    /// followers too.
    pub(crate) leader_only: bool,
    /// A lock to take on every connection (for leader election among controllers).
    pub(crate) lock: Option<String>,
    /// The longest a connection may take from connect to synced before it is given up.
    pub(crate) setup_timeout: Duration,
    /// The longest connecting and reading `_Server` may take (5 s by default): a frozen
    /// member, whose socket still accepts, is skipped after this instead of `setup_timeout`.
    pub(crate) check_timeout: Duration,
    /// The liveness probe of Raft members (1 s by default; `None` disables it): a member that
    /// sends nothing for this long gets an `echo`, and one that answers nothing for another
    /// interval is given up, so that a frozen leader is left within about two intervals
    /// while the rest of the cluster elects a new one. Match it to the cluster's election
    /// timer when that was raised. Standalone servers keep `inactivity_probe` only.
    pub(crate) raft_probe: Option<Duration>,
    /// The longest [`ReplicaClient::start`] tries to fetch the schema before failing with
    /// [`ReplicaClientError::StartTimedOut`] (30 s by default; `None` tries for as long as
    /// `max_rounds` allows). Each failed attempt is logged and sent as
    /// [`ReplicaEvent::Refused`].
    pub(crate) start_timeout: Option<Duration>,
    /// The deadline of each request on the replica client's connections
    /// ([`ConnectConfig::request_timeout`]).
    pub(crate) request_timeout: Option<Duration>,
    /// How long [`ReplicaClient::transact`] waits for a connection before failing.
    pub(crate) request_wait: Duration,
    /// The largest message accepted from a server.
    pub(crate) max_message_len: usize,
}

impl ReplicaConfig {
    /// Monitors `monitor` through `remotes`, with the defaults.
    pub fn new(remotes: impl Into<String>, monitor: MonitorRequest) -> Self {
        Self {
            remotes: remotes.into(),
            tls: None,
            monitor,
            inactivity_probe: InactivityProbe::Default,
            backoff: Backoff::default(),
            max_rounds: None,
            order: RemoteOrder::InOrder,
            leader_only: true,
            lock: None,
            setup_timeout: Duration::from_secs(120),
            check_timeout: Duration::from_secs(5),
            raft_probe: Some(Duration::from_secs(1)),
            start_timeout: Some(Duration::from_secs(30)),
            request_timeout: Some(super::DEFAULT_REQUEST_TIMEOUT),
            request_wait: Duration::from_secs(30),
            max_message_len: DEFAULT_MAX_MESSAGE_LEN,
        }
    }

    /// Sets the TLS files for `ssl:` remotes.
    #[must_use]
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets the inactivity probe on every remote, unix sockets included (`None` disables it).
    #[must_use]
    pub fn with_inactivity_probe(mut self, probe: Option<Duration>) -> Self {
        self.inactivity_probe = InactivityProbe::from(probe);
        self
    }

    /// Replaces what is monitored.
    #[must_use]
    pub fn with_monitor(mut self, monitor: MonitorRequest) -> Self {
        self.monitor = monitor;
        self
    }

    /// The remotes.
    #[must_use]
    pub fn remotes(&self) -> &str {
        &self.remotes
    }

    /// What is monitored.
    #[must_use]
    pub fn monitor(&self) -> &MonitorRequest {
        &self.monitor
    }

    /// The lock taken on every connection, if any.
    #[must_use]
    pub fn lock(&self) -> Option<&str> {
        self.lock.as_deref()
    }

    /// Whether only the Raft leader is used.
    #[must_use]
    pub fn leader_only(&self) -> bool {
        self.leader_only
    }

    /// The longest [`ReplicaClient::start`] tries to fetch the schema, if bounded.
    #[must_use]
    pub fn start_timeout(&self) -> Option<Duration> {
        self.start_timeout
    }

    /// Sets the backoff.
    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Gives up after `rounds` failed rounds in a row.
    #[must_use]
    pub fn with_max_rounds(mut self, rounds: u32) -> Self {
        self.max_rounds = Some(rounds);
        self
    }

    /// Sets the order in which remotes are tried.
    #[must_use]
    pub fn with_order(mut self, order: RemoteOrder) -> Self {
        self.order = order;
        self
    }

    /// Leader-only (`true`, the default) or any member (`false`).
    #[must_use]
    pub fn with_leader_only(mut self, leader_only: bool) -> Self {
        self.leader_only = leader_only;
        self
    }

    /// Takes the lock `name` on every connection.
    #[must_use]
    pub fn with_lock(mut self, name: impl Into<String>) -> Self {
        self.lock = Some(name.into());
        self
    }

    /// Sets how long a connection may take to get synced.
    #[must_use]
    pub fn with_setup_timeout(mut self, timeout: Duration) -> Self {
        self.setup_timeout = timeout;
        self
    }

    /// Sets how long connecting and reading `_Server` may take.
    #[must_use]
    pub fn with_check_timeout(mut self, timeout: Duration) -> Self {
        self.check_timeout = timeout;
        self
    }

    /// Sets the liveness probe of Raft members; `None` disables it.
    #[must_use]
    pub fn with_raft_probe(mut self, probe: Option<Duration>) -> Self {
        self.raft_probe = probe;
        self
    }

    /// Sets how long [`ReplicaClient::start`] tries; `None` for as long as `max_rounds`
    /// allows.
    #[must_use]
    pub fn with_start_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Sets the deadline of each request; `None` disables it.
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets how long a transaction waits for a connection.
    #[must_use]
    pub fn with_request_wait(mut self, wait: Duration) -> Self {
        self.request_wait = wait;
        self
    }

    /// Sets the largest message accepted from a server.
    #[must_use]
    pub fn with_max_message_len(mut self, len: usize) -> Self {
        self.max_message_len = len;
        self
    }

    pub(crate) fn connect_config(&self, remote: &Remote) -> ConnectConfig {
        let probe = self.inactivity_probe.on(remote);
        let mut c = ConnectConfig::new(remote.to_string())
            .with_inactivity_probe(probe)
            .with_max_message_len(self.max_message_len)
            .with_request_timeout(self.request_timeout);
        c.tls = self.tls.clone();
        c
    }
}

/// What the connection loop reports, in order. Nothing is dropped: the stream is unbounded,
/// and it holds a handful of events per connection attempt.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ReplicaEvent {
    /// A connection is up and the replica is synced.
    Synced {
        /// The server.
        remote: String,
        /// Whether `monitor_cond_since` resumed from the last transaction id (only the
        /// changes since were sent) instead of sending everything.
        resumed: bool,
        /// What the subscription changed in the replica.
        applied: ApplyStats,
    },
    /// A remote could not be used (connect failed, not the leader, stale, timed out).
    Refused {
        /// The remote.
        remote: String,
        /// Why.
        reason: Arc<LinkError>,
    },
    /// An established connection ended.
    Disconnected {
        /// The server.
        remote: String,
        /// Why.
        reason: Arc<LinkError>,
    },
    /// The server canceled the monitor (`monitor_canceled`); it was sent again.
    Resubscribed {
        /// The server.
        remote: String,
    },
    /// The configured lock is held.
    LockAcquired {
        /// The lock.
        name: String,
    },
    /// The configured lock was lost: stolen, or its connection ended. After a steal the client
    /// waits in the lock's queue again.
    LockLost {
        /// The lock.
        name: String,
        /// `true` when another client stole it.
        stolen: bool,
    },
    /// The loop gave up ([`ReplicaConfig::with_max_rounds`]); the replica keeps its last contents.
    GaveUp {
        /// Failed rounds.
        rounds: u32,
        /// The last failure.
        last: Arc<LinkError>,
    },
}

/// The stream of [`ReplicaEvent`]s; ends when the loop stops.
#[derive(Debug)]
pub struct ReplicaEvents {
    rx: mpsc::UnboundedReceiver<ReplicaEvent>,
}

impl ReplicaEvents {
    /// The next event.
    pub async fn next(&mut self) -> Option<ReplicaEvent> {
        self.rx.recv().await
    }
}

impl Stream for ReplicaEvents {
    type Item = ReplicaEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ReplicaEvent>> {
        self.rx.poll_recv(cx)
    }
}

/// The connection as the loop last set it.
#[derive(Debug, Clone)]
pub(crate) enum Link {
    Connecting,
    Up { client: Client, remote: String },
    GaveUp { rounds: u32, last: Arc<LinkError> },
}

/// State shared between the handles and the loop.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) replica: Mutex<Replica>,
    /// Bumped on every change of the replica or of its synced flag.
    pub(crate) epoch: watch::Sender<u64>,
    pub(crate) link: watch::Sender<Link>,
    pub(crate) has_lock: AtomicBool,
}

impl Shared {
    pub(crate) fn replica(&self) -> MutexGuard<'_, Replica> {
        // A panic while holding the lock cannot leave the replica half-updated (every call
        // is atomic), so a poisoned lock is still usable.
        self.replica.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn bump(&self) {
        self.epoch.send_modify(|e| *e += 1);
    }
}

struct Inner {
    shared: Arc<Shared>,
    config: ReplicaConfig,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A live replica with reconnection, leader-only mode and locks; clone it freely. The loop
/// stops when the last clone is dropped.
#[derive(Clone)]
pub struct ReplicaClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ReplicaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaClient")
            .field("remotes", &self.inner.config.remotes)
            .field("db", &self.inner.config.monitor.db)
            .finish_non_exhaustive()
    }
}

impl ReplicaClient {
    /// Fetches the schema from the first remote that answers (within the backoff and
    /// [`ReplicaConfig::with_max_rounds`]), checks the monitor request against it, and starts the
    /// connection loop. Returns at once after that; wait with [`ReplicaClient::wait_synced`].
    pub async fn start(
        config: ReplicaConfig,
    ) -> Result<(ReplicaClient, ReplicaEvents), ReplicaClientError> {
        let remotes = ordered(parse_remotes(&config.remotes)?, config.order);
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let schema = super::replica_task::fetch_schema(&config, &remotes, &events_tx).await?;
        config
            .monitor
            .validate(&schema)
            .map_err(|source| ReplicaClientError::Monitor {
                db: config.monitor.db.clone(),
                source,
            })?;
        let shared = Arc::new(Shared {
            replica: Mutex::new(Replica::new(&schema)),
            epoch: watch::Sender::new(0),
            link: watch::Sender::new(Link::Connecting),
            has_lock: AtomicBool::new(false),
        });
        let runner = Runner::new(config.clone(), remotes, shared.clone(), events_tx);
        let task = tokio::spawn(runner.run());
        Ok((
            ReplicaClient {
                inner: Arc::new(Inner {
                    shared,
                    config,
                    task,
                }),
            },
            ReplicaEvents { rx: events_rx },
        ))
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// A consistent view of the replica now, O(1).
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        self.shared().replica().snapshot()
    }

    /// Whether the replica is synced with a connected server now.
    #[must_use]
    pub fn is_synced(&self) -> bool {
        self.shared().replica().is_synced()
    }

    /// Whether this client holds the configured lock now.
    #[must_use]
    pub fn has_lock(&self) -> bool {
        self.shared().has_lock.load(Ordering::SeqCst)
    }

    /// The server of the current connection, if one is up.
    #[must_use]
    pub fn remote(&self) -> Option<String> {
        match &*self.shared().link.borrow() {
            Link::Up { remote, .. } => Some(remote.clone()),
            _ => None,
        }
    }

    /// Runs `f` on the replica under its lock (to add an index, for example); keep it short.
    pub fn with_replica<T>(&self, f: impl FnOnce(&mut Replica) -> T) -> T {
        let out = f(&mut self.shared().replica());
        self.shared().bump();
        out
    }

    /// Waits until the replica is synced (the first time, or again after a reconnect) and its
    /// connection is up, so that [`remote`](Self::remote) names the server it is synced with.
    pub async fn wait_synced(&self) -> Result<Snapshot, ReplicaClientError> {
        let mut rx = self.shared().epoch.subscribe();
        // Subscribed before the first look, so no change of the link is missed between a look
        // and the wait.
        let mut link = self.shared().link.subscribe();
        loop {
            let snap = self.snapshot();
            // The replica is marked synced during set-up, a moment before the link is published
            // as up: wait for both.
            match &*link.borrow_and_update() {
                Link::Up { .. } if snap.is_synced() => return Ok(snap),
                Link::GaveUp { rounds, last } => {
                    return Err(ReplicaClientError::GaveUp {
                        rounds: *rounds,
                        last: last.clone(),
                    });
                }
                _ => {}
            }
            tokio::select! {
                r = rx.changed() => r.map_err(|_| ReplicaClientError::Stopped)?,
                r = link.changed() => r.map_err(|_| ReplicaClientError::Stopped)?,
            }
        }
    }

    /// A consumer of the replica's changes from now on; see [`ChangeStream::next`].
    #[must_use]
    pub fn changes(&self) -> ChangeStream {
        let (id, snapshot) = self.shared().replica().subscribe();
        ChangeStream {
            client: self.clone(),
            id,
            epoch: self.shared().epoch.subscribe(),
            last: snapshot,
        }
    }

    /// The current connection's handle, waiting up to [`ReplicaConfig::with_request_wait`] for
    /// one. Requests on it fail once that connection drops; they are not moved to the next.
    pub async fn client(&self) -> Result<(Client, String), ReplicaClientError> {
        let wait = self.inner.config.request_wait;
        let mut link = self.shared().link.subscribe();
        let found = tokio::time::timeout(wait, async {
            loop {
                match &*link.borrow_and_update() {
                    Link::Up { client, remote } if !client.is_closed() => {
                        return Ok((client.clone(), remote.clone()));
                    }
                    Link::GaveUp { rounds, last } => {
                        return Err(ReplicaClientError::GaveUp {
                            rounds: *rounds,
                            last: last.clone(),
                        });
                    }
                    _ => {}
                }
                if link.changed().await.is_err() {
                    return Err(ReplicaClientError::Stopped);
                }
            }
        })
        .await;
        found.unwrap_or(Err(ReplicaClientError::NotConnected { waited: wait }))
    }

    /// Sends `txn` on the current connection (waiting for one if none is up). If that
    /// connection drops before the reply, the result is
    /// [`ReplicaClientError::MaybeCommitted`]; the transaction is not sent again.
    pub async fn transact(&self, txn: &Transaction) -> Result<TransactOutcome, ReplicaClientError> {
        let (client, remote) = self.client().await?;
        client
            .transact(txn)
            .await
            .map_err(|e| maybe_committed(e, &remote))
    }

    /// Steals the configured lock from whoever holds it (they get `stolen`).
    pub async fn steal_lock(&self) -> Result<(), ReplicaClientError> {
        let name = self.lock_name()?;
        let (client, remote) = self.client().await?;
        // The server refuses `steal` from a client already waiting for the lock (it always is
        // after a connection came up): leave the queue first.
        client
            .unlock(&name)
            .await
            .map_err(|e| maybe_committed(e, &remote))?;
        client
            .steal(&name)
            .await
            .map_err(|e| maybe_committed(e, &remote))?;
        if !self.shared().has_lock.swap(true, Ordering::SeqCst) {
            tracing::debug!(lock = %name, "lock stolen by this client");
        }
        Ok(())
    }

    /// Releases the configured lock on the current connection (it is taken again after the
    /// next reconnect).
    pub async fn unlock(&self) -> Result<(), ReplicaClientError> {
        let name = self.lock_name()?;
        let (client, remote) = self.client().await?;
        client
            .unlock(&name)
            .await
            .map_err(|e| maybe_committed(e, &remote))?;
        self.shared().has_lock.store(false, Ordering::SeqCst);
        Ok(())
    }

    fn lock_name(&self) -> Result<String, ReplicaClientError> {
        self.inner
            .config
            .lock
            .clone()
            .ok_or(ReplicaClientError::NoLock)
    }
}

/// A request that got no reply (the connection dropped, the deadline passed) may have been
/// carried out: say so instead of passing the connection's error on.
fn maybe_committed(e: ClientError, remote: &str) -> ReplicaClientError {
    if e.is_ambiguous() {
        ReplicaClientError::MaybeCommitted {
            remote: remote.to_owned(),
            source: Box::new(e),
        }
    } else {
        ReplicaClientError::Request(e)
    }
}

/// One consumer of a [`ReplicaClient`]'s changes: every row that changed since the previous
/// [`ChangeStream::next`], coalesced per row, with a snapshot that shows them. Dropping it
/// unsubscribes.
///
/// [`ChangeStream::last_snapshot`] is the snapshot of the previous pull (or of the
/// subscription): with the next pull's changes and snapshot, it is what typed change events
/// (old and new rows, a deleted row's contents) are made from.
#[derive(Debug)]
pub struct ChangeStream {
    client: ReplicaClient,
    id: ConsumerId,
    epoch: watch::Receiver<u64>,
    last: Snapshot,
}

impl ChangeStream {
    /// The snapshot of the previous pull, or the one the subscription started from.
    #[must_use]
    pub fn last_snapshot(&self) -> &Snapshot {
        &self.last
    }

    /// Waits until some row changed, then returns the changes and a snapshot at the same
    /// point; `None` once the loop has stopped.
    pub async fn next(&mut self) -> Option<(replica::Changes, Snapshot)> {
        loop {
            if let Some(out) = self.try_next() {
                return Some(out);
            }
            self.epoch.changed().await.ok()?;
        }
    }

    /// The changes pending now, if any, without waiting.
    pub fn try_next(&mut self) -> Option<(replica::Changes, Snapshot)> {
        self.epoch.borrow_and_update();
        let (set, snap) = self.client.shared().replica().take_changes(self.id).ok()?;
        if set.is_empty() {
            return None;
        }
        self.last = snap.clone();
        Some((set, snap))
    }
}

impl Drop for ChangeStream {
    fn drop(&mut self) {
        self.client.shared().replica().unsubscribe(self.id);
    }
}
