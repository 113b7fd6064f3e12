//! The connection loop behind [`super::ReplicaClient`]: one [`Runner`] per replica client,
//! run as a spawned task. See the module docs of `replica_client` for what it does.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

use super::error::error_chain;
use super::lock::{LockNotice, lock_notice};
use super::monitor::{MonitorNotice, monitor_notice};
use super::raft::{self, DatabaseStatus, Rejection, SERVER_MONITOR_ID};
use super::reconnect::Rotation;
use super::replica_client::{Link, ReplicaClientError, ReplicaConfig, ReplicaEvent, Shared};
use super::{Client, ClientError, Remote, Updates, connect};
use crate::DatabaseSchema;
use crate::monitor::MonitorMethod;
use crate::replica::Replica;

type Events = mpsc::UnboundedSender<ReplicaEvent>;

/// Tries every remote in rounds (with the backoff between failed rounds) until one returns
/// the schema of the monitored database.
pub(crate) async fn fetch_schema(
    config: &ReplicaConfig,
    remotes: &[Remote],
    events: &Events,
) -> Result<DatabaseSchema, ReplicaClientError> {
    let db = &config.monitor.db;
    let mut rounds = 0u32;
    loop {
        let mut last = String::new();
        for remote in remotes {
            let attempt = async {
                let (driver, client, _updates) = connect(&config.connect_config(remote))
                    .await
                    .map_err(|e| error_chain(&e))?;
                let task = tokio::spawn(driver);
                let schema = client.get_schema(db).await.map_err(|e| error_chain(&e));
                task.abort();
                schema
            };
            match tokio::time::timeout(config.setup_timeout, attempt).await {
                Ok(Ok(schema)) => return Ok(schema),
                Ok(Err(reason)) => last = reason,
                Err(_) => last = format!("no schema within {:?}", config.setup_timeout),
            }
            let _ = events.send(ReplicaEvent::Refused {
                remote: remote.to_string(),
                reason: last.clone(),
            });
        }
        rounds += 1;
        if config.max_rounds.is_some_and(|max| rounds >= max) {
            return Err(ReplicaClientError::GaveUp { rounds, last });
        }
        tokio::time::sleep(config.backoff.delay(rounds)).await;
    }
}

/// How one connection attempt ended.
enum End {
    /// It never got synced.
    Refused(String),
    /// It was synced, then ended.
    Ended(String),
}

/// The connection loop.
pub(crate) struct Runner {
    config: ReplicaConfig,
    rotation: Rotation<Remote>,
    shared: Arc<Shared>,
    events: Events,
    /// The newest monitor method the servers know (lowered on "unknown method").
    method: MonitorMethod,
    /// `_Server`'s schema, once fetched; `None` before, and for servers without `_Server`.
    server_schema: Option<Option<DatabaseSchema>>,
    /// The highest Raft log index seen on any server.
    seen_index: Option<i64>,
}

/// Aborts a connection's driver task when the attempt ends, however it ends.
struct DriverTask(Option<tokio::task::JoinHandle<Result<(), super::DriverError>>>);

impl Drop for DriverTask {
    fn drop(&mut self) {
        if let Some(h) = &self.0 {
            h.abort();
        }
    }
}

impl Runner {
    pub(crate) fn new(
        config: ReplicaConfig,
        remotes: Vec<Remote>,
        shared: Arc<Shared>,
        events: Events,
    ) -> Self {
        Self {
            method: config.monitor.method,
            config,
            rotation: Rotation::new(remotes),
            shared,
            events,
            server_schema: None,
            seen_index: None,
        }
    }

    fn emit(&self, event: ReplicaEvent) {
        // Nobody listening is fine: the stream was dropped.
        let _ = self.events.send(event);
    }

    pub(crate) async fn run(mut self) {
        let mut failed_rounds = 0u32;
        loop {
            let mut last = String::new();
            let mut established = false;
            for (i, remote) in self.rotation.round() {
                match self.attempt(&remote).await {
                    End::Refused(reason) => {
                        self.emit(ReplicaEvent::Refused {
                            remote: remote.to_string(),
                            reason: reason.clone(),
                        });
                        last = reason;
                    }
                    End::Ended(reason) => {
                        self.rotation.used(i);
                        self.emit(ReplicaEvent::Disconnected {
                            remote: remote.to_string(),
                            reason,
                        });
                        established = true;
                        break;
                    }
                }
            }
            if established {
                failed_rounds = 0;
                continue;
            }
            failed_rounds += 1;
            if self.config.max_rounds.is_some_and(|m| failed_rounds >= m) {
                tracing::warn!(rounds = failed_rounds, last = %last, "OVSDB replica gave up");
                self.shared.link.send_replace(Link::GaveUp {
                    rounds: failed_rounds,
                    last: last.clone(),
                });
                self.shared.bump();
                self.emit(ReplicaEvent::GaveUp {
                    rounds: failed_rounds,
                    last,
                });
                return;
            }
            tokio::time::sleep(self.config.backoff.delay(failed_rounds)).await;
        }
    }

    /// One connection: set up (bounded by the setup timeout), then follow it until it ends.
    async fn attempt(&mut self, remote: &Remote) -> End {
        let setup_timeout = self.config.setup_timeout;
        let setup = tokio::time::timeout(setup_timeout, self.setup(remote)).await;
        let (client, mut updates, driver, mut server) = match setup {
            Ok(Ok(up)) => up,
            Ok(Err(reason)) => return End::Refused(reason),
            Err(_) => return End::Refused(format!("not synced within {setup_timeout:?}")),
        };
        let remote_s = remote.to_string();
        self.shared.link.send_replace(Link::Up {
            client: client.clone(),
            remote: remote_s.clone(),
        });
        let reason = self
            .follow(&client, &mut updates, &mut server, &remote_s)
            .await;
        // The connection is over: fail what is in flight, then tell everyone.
        drop(updates);
        let reason = match reason {
            Some(r) => r,
            None => driver_reason(driver).await,
        };
        self.shared.link.send_replace(Link::Connecting);
        self.shared.replica().mark_unsynced();
        self.shared.bump();
        self.lose_lock(false);
        End::Ended(reason)
    }

    fn lose_lock(&self, stolen: bool) {
        if let Some(name) = &self.config.lock
            && self.shared.has_lock.swap(false, Ordering::SeqCst)
        {
            self.emit(ReplicaEvent::LockLost {
                name: name.clone(),
                stolen,
            });
        }
    }

    /// Connects, checks the server, subscribes and takes the lock. Errors are reasons.
    async fn setup(
        &mut self,
        remote: &Remote,
    ) -> Result<(Client, Updates, DriverTask, Option<Replica>), String> {
        let (driver, client, updates) = connect(&self.config.connect_config(remote))
            .await
            .map_err(|e| error_chain(&e))?;
        let driver = DriverTask(Some(tokio::spawn(driver)));
        let server = self.check_server(&client).await?;
        // Only so that a removed database cancels the monitor instead of closing the
        // connection; servers that do not know the method are fine.
        let _ = client.set_db_change_aware(true).await;
        let (resumed, applied) = self.subscribe(&client).await?;
        if let Some(name) = &self.config.lock {
            let held = client.lock(name).await.map_err(|e| error_chain(&e))?;
            if held {
                self.acquired();
            }
        }
        self.emit(ReplicaEvent::Synced {
            remote: remote.to_string(),
            resumed,
            applied,
        });
        Ok((client, updates, driver, server))
    }

    fn acquired(&self) {
        if let Some(name) = &self.config.lock
            && !self.shared.has_lock.swap(true, Ordering::SeqCst)
        {
            self.emit(ReplicaEvent::LockAcquired { name: name.clone() });
        }
    }

    /// Monitors `_Server` and judges the server; returns the `_Server` replica (`None` when
    /// the server has no `_Server` database).
    async fn check_server(&mut self, client: &Client) -> Result<Option<Replica>, String> {
        if self.server_schema.is_none() {
            self.server_schema = Some(match client.get_schema(raft::SERVER_DB).await {
                Ok(s) => Some(s),
                Err(ClientError::Server { .. }) => None,
                Err(e) => return Err(error_chain(&e)),
            });
        }
        let Some(Some(schema)) = &self.server_schema else {
            return Ok(None);
        };
        let mut server = Replica::new(schema);
        let req = raft::server_monitor();
        let started = client
            .monitor(&req, None)
            .await
            .map_err(|e| error_chain(&e))?;
        server
            .apply_reply(
                &req.clone().with_method(started.method),
                started.result.get(),
            )
            .map_err(|e| error_chain(&e))?;
        self.judge(&server)?;
        Ok(Some(server))
    }

    fn judge(&mut self, server: &Replica) -> Result<(), String> {
        let db = &self.config.monitor.db;
        let status: Option<DatabaseStatus> = raft::database_status(&server.snapshot(), db);
        raft::judge(
            db,
            status.as_ref(),
            self.config.leader_only,
            self.seen_index,
        )
        .map_err(|r: Rejection| r.to_string())?;
        if let Some(i) = status.and_then(|s| s.index) {
            self.seen_index = Some(self.seen_index.map_or(i, |s| s.max(i)));
        }
        Ok(())
    }

    /// Sends the monitor (resuming from the last transaction id) and applies its reply.
    async fn subscribe(
        &mut self,
        client: &Client,
    ) -> Result<(bool, crate::replica::ApplyStats), String> {
        let req = self.config.monitor.clone().with_method(self.method);
        let last = self.shared.replica().last_txn_id();
        let started = client
            .monitor(&req, last)
            .await
            .map_err(|e| error_chain(&e))?;
        self.method = started.method;
        let resumed = started.method == MonitorMethod::MonitorCondSince
            && super::monitor::first_param(started.result.get()) == Some(Value::Bool(true));
        let req = req.with_method(started.method);
        let applied = {
            let mut replica = self.shared.replica();
            let r = replica.apply_reply(&req, started.result.get());
            if r.is_err() {
                replica.forget_txn_id();
            }
            r
        };
        self.shared.bump();
        let applied = applied.map_err(|e| format!("applying the monitor reply: {e}"))?;
        Ok((resumed, applied))
    }

    /// Applies notifications until the connection ends (`None`: ask the driver why) or must
    /// be given up (`Some(reason)`).
    async fn follow(
        &mut self,
        client: &Client,
        updates: &mut Updates,
        server: &mut Option<Replica>,
        remote: &str,
    ) -> Option<String> {
        let our_id = self.config.monitor.id.clone();
        let server_id = Value::from(SERVER_MONITOR_ID);
        while let Some(n) = updates.next().await {
            if let Some(notice) = monitor_notice(&n) {
                match notice {
                    MonitorNotice::Update { monitor_id, method } if monitor_id == our_id => {
                        let r = {
                            let mut replica = self.shared.replica();
                            let r = replica.apply_notification(method, n.params.get());
                            if r.is_err() {
                                replica.forget_txn_id();
                            }
                            r
                        };
                        self.shared.bump();
                        if let Err(e) = r {
                            return Some(format!("applying {method}: {e}"));
                        }
                    }
                    MonitorNotice::Update { monitor_id, method } if monitor_id == server_id => {
                        let Some(s) = server.as_mut() else { continue };
                        if let Err(e) = s.apply_notification(method, n.params.get()) {
                            return Some(format!("applying _Server {method}: {e}"));
                        }
                        if let Err(reason) = self.judge(s) {
                            return Some(reason);
                        }
                    }
                    MonitorNotice::Canceled { monitor_id } if monitor_id == our_id => {
                        self.shared.replica().forget_txn_id();
                        if let Err(reason) = self.subscribe(client).await {
                            return Some(reason);
                        }
                        self.emit(ReplicaEvent::Resubscribed {
                            remote: remote.to_owned(),
                        });
                    }
                    MonitorNotice::Canceled { monitor_id } if monitor_id == server_id => {
                        return Some("the server canceled the _Server monitor".to_owned());
                    }
                    _ => {}
                }
            } else if let Some(lock) = lock_notice(&n) {
                let ours = |name: &String| self.config.lock.as_ref() == Some(name);
                match lock {
                    LockNotice::Locked(name) if ours(&name) => self.acquired(),
                    LockNotice::Stolen(name) if ours(&name) => {
                        self.lose_lock(true);
                        // Wait in the queue again, as a standby; a reply of `true` or a
                        // later `locked` hands it back.
                        let client = client.clone();
                        let shared = self.shared.clone();
                        let events = self.events.clone();
                        tokio::spawn(async move {
                            if let Ok(true) = client.lock(&name).await
                                && !shared.has_lock.swap(true, Ordering::SeqCst)
                            {
                                let _ = events.send(ReplicaEvent::LockAcquired { name });
                            }
                        });
                    }
                    _ => {}
                }
            }
        }
        None
    }
}

async fn driver_reason(mut driver: DriverTask) -> String {
    let Some(handle) = driver.0.take() else {
        return "the connection closed".to_owned();
    };
    // The notification stream ends only when the driver has stopped, so this is quick.
    match tokio::time::timeout(std::time::Duration::from_secs(1), handle).await {
        Ok(Ok(Ok(()))) => "the connection closed".to_owned(),
        Ok(Ok(Err(e))) => error_chain(&e),
        Ok(Err(e)) => format!("the driver task failed: {e}"),
        Err(_) => "the notification stream ended".to_owned(),
    }
}
