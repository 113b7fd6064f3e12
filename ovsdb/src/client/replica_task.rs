//! The pump behind [`super::ReplicaClient`]: one [`Runner`] per replica client, run as a
//! spawned task. It performs the [`Action`]s of the sans-IO [`Machine`] (connect, read
//! `_Server`, subscribe, lock, echo, close) and reports what came of them, applies monitor
//! replies and notifications to the replica, and publishes the connection to the handles. It
//! decides nothing itself: every choice (which remote, how long to wait, whether a server may
//! be used, when a member is frozen) is the machine's and is tested there with simulated time;
//! this file is covered by the real-server tests (`client_monitor_*`, `lock_race`,
//! `chaos_raft_*`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

use super::lock::{LockNotice, lock_notice};
use super::monitor::{MonitorNotice, monitor_notice};
use super::raft::{self, SERVER_MONITOR_ID};
use super::replica_client::{Link, ReplicaConfig, ReplicaEvent, Shared};
use super::replica_error::{LinkError, ReplicaClientError};
use super::replica_machine::{Action, ConnId, Input, LockChange, Machine, MachineConfig};
use super::{Client, ClientError, Remote, Updates, connect};
use crate::DatabaseSchema;
use crate::jsonrpc::Notification;
use crate::monitor::MonitorMethod;
use crate::replica::{ApplyStats, Replica};

type Events = mpsc::UnboundedSender<ReplicaEvent>;
type Step = Pin<Box<dyn Future<Output = Done> + Send>>;
/// A liveness echo: its connection, and whether it was answered.
type Probe = Pin<Box<dyn Future<Output = (ConnId, bool)> + Send>>;

/// Tries every remote in rounds (with the backoff between failed rounds) until one returns
/// the schema of the monitored database, for at most [`ReplicaConfig::start_timeout`].
pub(crate) async fn fetch_schema(
    config: &ReplicaConfig,
    remotes: &[Remote],
    events: &Events,
) -> Result<DatabaseSchema, ReplicaClientError> {
    let db = &config.monitor.db;
    let mut last: Option<Arc<LinkError>> = None;
    let rounds = async {
        let mut rounds = 0u32;
        loop {
            for remote in remotes {
                let attempt = async {
                    let (driver, client, _updates) = connect(&config.connect_config(remote))
                        .await
                        .map_err(LinkError::Connect)?;
                    let task = tokio::spawn(driver);
                    let schema = client
                        .get_schema(db)
                        .await
                        .map_err(|e| LinkError::request("fetching the schema", e));
                    task.abort();
                    schema
                };
                let error = match tokio::time::timeout(config.check_timeout, attempt).await {
                    Ok(Ok(schema)) => return Ok(schema),
                    Ok(Err(e)) => Arc::new(e),
                    Err(_) => Arc::new(LinkError::CheckTimedOut(config.check_timeout)),
                };
                tracing::info!(%remote, error = %error, "OVSDB remote refused while starting");
                let _ = events.send(ReplicaEvent::Refused {
                    remote: remote.to_string(),
                    reason: error.clone(),
                });
                last = Some(error);
            }
            rounds += 1;
            if config.max_rounds.is_some_and(|max| rounds >= max) {
                let last = last
                    .clone()
                    .unwrap_or_else(|| Arc::new(LinkError::DriverStopped));
                return Err(ReplicaClientError::GaveUp { rounds, last });
            }
            tokio::time::sleep(config.backoff.delay(rounds)).await;
        }
    };
    match config.start_timeout {
        None => rounds.await,
        Some(waited) => match tokio::time::timeout(waited, rounds).await {
            Ok(r) => r,
            Err(_) => Err(ReplicaClientError::StartTimedOut {
                db: db.clone(),
                waited,
                last,
            }),
        },
    }
}

/// What a step of the pump ended with.
enum Done {
    Connected(Box<Conn>, Option<Option<DatabaseSchema>>, Input),
    Subscribed(ConnId, MonitorMethod, Result<(bool, ApplyStats), LinkError>),
    Locked(ConnId, Result<bool, LinkError>),
    Failed(ConnId, LinkError),
}

/// One open connection.
struct Conn {
    id: ConnId,
    remote: Remote,
    client: Client,
    updates: Updates,
    driver: DriverTask,
    /// The replica of `_Server`; `None` for servers without it.
    server: Option<Replica>,
}

/// Aborts a connection's driver task when dropped, unless it was told to close by itself.
struct DriverTask(Option<tokio::task::JoinHandle<Result<(), Arc<super::DriverError>>>>);

impl Drop for DriverTask {
    fn drop(&mut self) {
        if let Some(h) = &self.0 {
            h.abort();
        }
    }
}

/// The pump.
pub(crate) struct Runner {
    config: ReplicaConfig,
    remotes: Vec<Remote>,
    shared: Arc<Shared>,
    events: Events,
    machine: Machine,
    /// The newest monitor method the servers know (lowered on "unknown method").
    method: MonitorMethod,
    /// `_Server`'s schema, once fetched; `Some(None)` for servers without `_Server`.
    server_schema: Option<Option<DatabaseSchema>>,
    conn: Option<Conn>,
    /// Members refused for the cluster's state, kept open to watch their `_Server` row.
    parked: Vec<Conn>,
    step: Option<Step>,
    probe: Option<Probe>,
}

impl Runner {
    pub(crate) fn new(
        config: ReplicaConfig,
        remotes: Vec<Remote>,
        shared: Arc<Shared>,
        events: Events,
    ) -> Self {
        let machine = Machine::new(MachineConfig {
            db: config.monitor.db.clone(),
            remotes: remotes.iter().map(ToString::to_string).collect(),
            backoff: config.backoff,
            max_rounds: config.max_rounds,
            leader_only: config.leader_only,
            lock: config.lock.clone(),
            check_timeout: config.check_timeout,
            setup_timeout: config.setup_timeout,
            raft_probe: config.raft_probe,
        });
        Self {
            method: config.monitor.method,
            config,
            remotes,
            shared,
            events,
            machine,
            server_schema: None,
            conn: None,
            parked: Vec::new(),
            step: None,
            probe: None,
        }
    }

    pub(crate) async fn run(mut self) {
        self.machine.start(Instant::now());
        loop {
            while let Some(action) = self.machine.poll_action() {
                self.perform(action);
            }
            if self.machine.is_done() {
                return;
            }
            let timeout = self
                .machine
                .poll_timeout()
                .map(tokio::time::Instant::from_std);
            // Updates wait while a step runs: a monitor reply is applied before the
            // notifications that follow it.
            let follow = self.step.is_none() && self.conn.is_some();
            tokio::select! {
                done = poll_opt(&mut self.step) => {
                    self.step = None;
                    self.done(done);
                }
                n = next_update(&mut self.conn), if follow => match n {
                    Some((id, n)) => self.notification(id, &n),
                    None => self.closed(),
                },
                (id, n) = next_parked(&mut self.parked), if !self.parked.is_empty() => {
                    self.parked_update(id, n);
                }
                (id, answered) = poll_opt(&mut self.probe) => {
                    self.probe = None;
                    if answered {
                        self.machine.handle(Instant::now(), Input::Activity { conn: id });
                    }
                }
                () = sleep_until(timeout), if timeout.is_some() => {
                    self.machine.handle_timeout(Instant::now());
                }
            }
        }
    }

    fn emit(&self, event: ReplicaEvent) {
        // Nobody listening is fine: the stream was dropped.
        let _ = self.events.send(event);
    }

    fn client(&self, id: ConnId) -> Option<Client> {
        self.conn
            .as_ref()
            .filter(|c| c.id == id)
            .map(|c| c.client.clone())
    }

    fn perform(&mut self, action: Action) {
        match action {
            Action::Connect { conn, remote } => {
                let Some(remote) = self.remotes.get(remote).cloned() else {
                    return;
                };
                self.step = Some(Box::pin(open(
                    conn,
                    remote,
                    self.config.clone(),
                    self.server_schema.clone(),
                )));
            }
            Action::Subscribe { conn } => {
                if let Some(i) = self.parked.iter().position(|c| c.id == conn) {
                    // A parked member won the election: it becomes the connection in use.
                    self.conn = Some(self.parked.remove(i));
                }
                if let Some(client) = self.client(conn) {
                    self.step = Some(Box::pin(subscribe(
                        conn,
                        client,
                        self.config.clone(),
                        self.method,
                        self.shared.clone(),
                    )));
                }
            }
            Action::RequestLock { conn } => {
                if let (Some(client), Some(name)) = (self.client(conn), self.config.lock.clone()) {
                    self.step = Some(Box::pin(async move {
                        let held = client
                            .lock(&name)
                            .await
                            .map_err(|e| LinkError::request("taking the lock", e));
                        Done::Locked(conn, held)
                    }));
                }
            }
            Action::Probe { conn } => {
                if let Some(client) = self.client(conn) {
                    self.probe = Some(Box::pin(async move {
                        (conn, client.echo(Vec::new()).await.is_ok())
                    }));
                }
            }
            Action::Up { conn, .. } => {
                if let Some(c) = self.conn.as_ref().filter(|c| c.id == conn) {
                    self.shared.link.send_replace(Link::Up {
                        client: c.client.clone(),
                        remote: c.remote.to_string(),
                    });
                }
            }
            Action::Down => {
                self.shared.link.send_replace(Link::Connecting);
                self.shared.replica().mark_unsynced();
                self.shared.bump();
            }
            Action::Park { conn } => {
                if let Some(c) = self.conn.take_if(|c| c.id == conn) {
                    self.parked.push(c);
                }
            }
            Action::Close { conn, error } => {
                let c = match self.parked.iter().position(|c| c.id == conn) {
                    Some(i) => Some(self.parked.remove(i)),
                    None => {
                        // What was under way on it goes with it.
                        self.step = None;
                        self.probe = None;
                        self.conn.take_if(|c| c.id == conn)
                    }
                };
                if let Some(mut c) = c {
                    // The driver fails what waits with this reason, then stops by itself.
                    c.client.abandon(error);
                    c.driver.0 = None;
                }
            }
            Action::LockChanged(change) => self.lock_changed(change),
            Action::Emit(event) => self.emit(event),
            Action::GiveUp { rounds, last } => {
                tracing::warn!(rounds, last = %last, "OVSDB replica gave up");
                self.shared.link.send_replace(Link::GaveUp { rounds, last });
                self.shared.bump();
            }
        }
    }

    fn lock_changed(&self, change: LockChange) {
        let Some(name) = &self.config.lock else {
            return;
        };
        let held = change == LockChange::Acquired;
        if self.shared.has_lock.swap(held, Ordering::SeqCst) != held {
            self.emit(match change {
                LockChange::Acquired => ReplicaEvent::LockAcquired { name: name.clone() },
                LockChange::Lost { stolen } => ReplicaEvent::LockLost {
                    name: name.clone(),
                    stolen,
                },
            });
        }
    }

    fn done(&mut self, done: Done) {
        let now = Instant::now();
        let input = match done {
            Done::Connected(conn, server_schema, input) => {
                if server_schema.is_some() {
                    self.server_schema = server_schema;
                }
                self.conn = Some(*conn);
                input
            }
            Done::Subscribed(conn, method, result) => {
                self.method = method;
                match result {
                    Ok((resumed, applied)) => Input::Subscribed {
                        conn,
                        resumed,
                        applied,
                    },
                    Err(e) => Input::Failed {
                        conn,
                        error: Arc::new(e),
                    },
                }
            }
            Done::Locked(conn, Ok(held)) => Input::LockReply { conn, held },
            Done::Locked(conn, Err(e)) | Done::Failed(conn, e) => Input::Failed {
                conn,
                error: Arc::new(e),
            },
        };
        self.machine.handle(now, input);
    }

    /// The notification stream of the connection ended: its driver stopped.
    fn closed(&mut self) {
        let Some(c) = &self.conn else { return };
        let error = match c.client.ended() {
            Some(e) => LinkError::Closed(e),
            None => LinkError::DriverStopped,
        };
        let conn = c.id;
        self.machine.handle(
            Instant::now(),
            Input::Failed {
                conn,
                error: Arc::new(error),
            },
        );
    }

    /// A notification of a parked member (only its `_Server` monitor counts), or the end of
    /// its stream.
    fn parked_update(&mut self, id: ConnId, n: Option<Notification>) {
        let Some(c) = self.parked.iter_mut().find(|c| c.id == id) else {
            return;
        };
        let input = match n {
            None => Some(Input::Failed {
                conn: id,
                error: Arc::new(
                    c.client
                        .ended()
                        .map_or(LinkError::DriverStopped, LinkError::Closed),
                ),
            }),
            Some(n) => match monitor_notice(&n) {
                Some(MonitorNotice::Update { monitor_id, method })
                    if monitor_id == SERVER_MONITOR_ID =>
                {
                    server_status(c, &self.config.monitor.db, method, &n)
                }
                _ => None,
            },
        };
        if let Some(input) = input {
            self.machine.handle(Instant::now(), input);
        }
    }

    fn notification(&mut self, conn: ConnId, n: &Notification) {
        let now = Instant::now();
        self.machine.handle(now, Input::Activity { conn });
        let input = if let Some(notice) = monitor_notice(n) {
            self.monitor_notice(conn, n, notice)
        } else {
            let ours = |name: &String| self.config.lock.as_ref() == Some(name);
            match lock_notice(n) {
                Some(LockNotice::Locked(name)) if ours(&name) => Some(Input::Locked { conn }),
                Some(LockNotice::Stolen(name)) if ours(&name) => Some(Input::Stolen { conn }),
                _ => None,
            }
        };
        if let Some(input) = input {
            self.machine.handle(now, input);
        }
    }

    fn monitor_notice(
        &mut self,
        conn: ConnId,
        n: &Notification,
        notice: MonitorNotice<'_>,
    ) -> Option<Input> {
        let our_id = &self.config.monitor.id;
        let server_id = Value::from(SERVER_MONITOR_ID);
        let failed = |error: LinkError| Input::Failed {
            conn,
            error: Arc::new(error),
        };
        match notice {
            MonitorNotice::Update { monitor_id, method } if monitor_id == *our_id => {
                let r = {
                    let mut replica = self.shared.replica();
                    let r = replica.apply_notification(method, n.params.get());
                    if r.is_err() {
                        replica.forget_txn_id();
                    }
                    r
                };
                self.shared.bump();
                r.err().map(|source| {
                    failed(LinkError::Apply {
                        what: method.to_string(),
                        source,
                    })
                })
            }
            MonitorNotice::Update { monitor_id, method } if monitor_id == server_id => {
                server_status(self.conn.as_mut()?, &self.config.monitor.db, method, n)
            }
            MonitorNotice::Canceled { monitor_id } if monitor_id == *our_id => {
                self.shared.replica().forget_txn_id();
                Some(Input::MonitorCanceled { conn })
            }
            MonitorNotice::Canceled { monitor_id } if monitor_id == server_id => {
                Some(failed(LinkError::ServerMonitorCanceled))
            }
            _ => None,
        }
    }
}

/// Applies a `_Server` update to the connection's replica of it; the database's status.
fn server_status(c: &mut Conn, db: &str, method: &str, n: &Notification) -> Option<Input> {
    let server = c.server.as_mut()?;
    if let Err(source) = server.apply_notification(method, n.params.get()) {
        return Some(Input::Failed {
            conn: c.id,
            error: Arc::new(LinkError::Apply {
                what: format!("_Server {method}"),
                source,
            }),
        });
    }
    let status = raft::database_status(&server.snapshot(), db);
    Some(Input::Status { conn: c.id, status })
}

/// Connects to `remote`, reads `_Server` (fetching its schema the first time) and reports
/// the database's status.
async fn open(
    id: ConnId,
    remote: Remote,
    config: ReplicaConfig,
    mut server_schema: Option<Option<DatabaseSchema>>,
) -> Done {
    let (driver, client, updates) = match connect(&config.connect_config(&remote)).await {
        Ok(c) => c,
        Err(e) => return Done::Failed(id, LinkError::Connect(e)),
    };
    let driver = DriverTask(Some(tokio::spawn(driver)));
    let fetched = server_schema.is_none();
    if fetched {
        server_schema = Some(match client.get_schema(raft::SERVER_DB).await {
            Ok(s) => Some(s),
            Err(ClientError::Server { .. }) => None,
            Err(e) => return Done::Failed(id, LinkError::request("fetching _Server's schema", e)),
        });
    }
    let mut conn = Conn {
        id,
        remote,
        client,
        updates,
        driver,
        server: None,
    };
    // Handed back to be kept when it was fetched now.
    let newly = if fetched { server_schema.clone() } else { None };
    let Some(Some(schema)) = &server_schema else {
        let input = Input::Checked {
            conn: id,
            server_db: false,
            status: None,
        };
        return Done::Connected(Box::new(conn), newly, input);
    };
    let mut server = Replica::new(schema);
    let req = raft::server_monitor();
    let started = match conn.client.monitor(&req, None).await {
        Ok(s) => s,
        Err(e) => return Done::Failed(id, LinkError::request("monitoring _Server", e)),
    };
    if let Err(source) = server.apply_reply(
        &req.clone().with_method(started.method),
        started.result.get(),
    ) {
        return Done::Failed(
            id,
            LinkError::Apply {
                what: "the _Server monitor reply".to_owned(),
                source,
            },
        );
    }
    let status = raft::database_status(&server.snapshot(), &config.monitor.db);
    conn.server = Some(server);
    let input = Input::Checked {
        conn: id,
        server_db: true,
        status,
    };
    Done::Connected(Box::new(conn), newly, input)
}

/// Tells the server about removed databases, sends the monitor (resuming from the last
/// transaction id) and applies its reply.
async fn subscribe(
    id: ConnId,
    client: Client,
    config: ReplicaConfig,
    method: MonitorMethod,
    shared: Arc<Shared>,
) -> Done {
    // Only so that a removed database cancels the monitor instead of closing the connection;
    // servers that do not know the method are fine.
    let _ = client.set_db_change_aware(true).await;
    let req = config.monitor.clone().with_method(method);
    let last = shared.replica().last_txn_id();
    let started = match client.monitor(&req, last).await {
        Ok(s) => s,
        Err(e) => {
            return Done::Subscribed(id, method, Err(LinkError::request("subscribing", e)));
        }
    };
    let resumed = started.method == MonitorMethod::MonitorCondSince
        && super::monitor::first_param(started.result.get()) == Some(Value::Bool(true));
    let req = req.with_method(started.method);
    let applied = {
        let mut replica = shared.replica();
        let r = replica.apply_reply(&req, started.result.get());
        if r.is_err() {
            replica.forget_txn_id();
        }
        r
    };
    shared.bump();
    let result = applied
        .map(|applied| (resumed, applied))
        .map_err(|source| LinkError::Apply {
            what: "the monitor reply".to_owned(),
            source,
        });
    Done::Subscribed(id, started.method, result)
}

async fn poll_opt<T>(f: &mut Option<Pin<Box<dyn Future<Output = T> + Send>>>) -> T {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// The next notification of any parked connection (`None`: that one's stream ended).
async fn next_parked(parked: &mut [Conn]) -> (ConnId, Option<Notification>) {
    std::future::poll_fn(|cx| {
        for c in parked.iter_mut() {
            if let std::task::Poll::Ready(n) = c.updates.poll_next_unpin(cx) {
                return std::task::Poll::Ready((c.id, n));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

async fn next_update(conn: &mut Option<Conn>) -> Option<(ConnId, Notification)> {
    let c = conn.as_mut()?;
    c.updates.next().await.map(|n| (c.id, n))
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
