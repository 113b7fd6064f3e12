//! The controller's loop: object events in, one transaction per step out, results written back.
//!
//! - The NB is followed by a [`ReplicaClient`] (the Raft leader where the NB is clustered) that
//!   holds the OVSDB lock [`ControllerConfig::lock`]; only the holder writes, and every
//!   transaction starts with an `assert` of the lock, so two controllers never both write. A
//!   standby keeps following objects and takes over when the lock comes to it (the holder died
//!   or stepped down), rebuilding its IPAM from OVN first.
//! - Events of every kind are applied to the [`ControllerState`] as they come; a step runs when
//!   something is dirty, at most every [`STEP_INTERVAL`], so a burst of objects becomes a few
//!   large transactions, not one per object.
//! - A step's plan goes out as one transaction; only once it committed are the annotations
//!   written back and the events reported. A refused transaction puts everything back to be
//!   planned again after a backoff, from a fresh snapshot.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ovn_model::owner;
use ovn_model::snapshot::{self, Typed};
use ovsdb::client::{
    ReplicaClient, ReplicaClientError, ReplicaConfig, ReplicaEvent, ReplicaEvents,
};
use tokio::sync::watch;
use tokio::time::Instant;

use super::config::ControllerConfig;
use super::source::{EventType, ObjectSource, StatusSink};
use super::state::{ControllerState, StepOutput};
use crate::metrics::ControllerMetrics;

/// The shortest time between two steps (events arriving in between are planned together).
pub const STEP_INTERVAL: Duration = Duration::from_millis(50);
/// How long objects that could not be handled (or a refused transaction) wait before they are
/// tried again the first time; the wait doubles while they keep failing, up to
/// [`MAX_RETRY_INTERVAL`].
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// The longest wait between two tries.
pub const MAX_RETRY_INTERVAL: Duration = Duration::from_secs(30);

/// The NB tables the controller reads and writes.
pub const NB_TABLES: [&str; 18] = [
    "Logical_Router",
    "Logical_Router_Port",
    "Logical_Router_Policy",
    "Logical_Router_Static_Route",
    "NAT",
    "Gateway_Chassis",
    "Logical_Switch",
    "Logical_Switch_Port",
    "ACL",
    "QoS",
    "NB_Global",
    "Load_Balancer",
    "Load_Balancer_Group",
    "Load_Balancer_Health_Check",
    "Chassis_Template_Var",
    "Port_Group",
    "Address_Set",
    "DNS",
];

/// Why the controller stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The settings are unusable.
    #[error("controller configuration: {0}")]
    Config(String),
    /// The NB could not be followed.
    #[error("following the OVN northbound database")]
    Nb(#[source] ReplicaClientError),
    /// An object source ended (it never should).
    #[error("the {0} stream ended")]
    SourceEnded(&'static str),
}

/// What the loop did, for logs, tests and benchmarks ([`run_observed`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Steps that sent a transaction.
    pub transactions: u64,
    /// Transactions refused (planned again).
    pub refused: u64,
    /// Times this controller took the lock.
    pub takeovers: u64,
    /// Whether this controller writes and has nothing left to plan: OVN holds what the
    /// objects ask for, as far as it can be had.
    pub settled: bool,
}

/// Runs the controller on `nb_remotes` until `shutdown` completes.
///
/// # Errors
/// [`RunError`] when it cannot go on.
pub async fn run(
    config: ControllerConfig,
    nb_remotes: &str,
    source: &dyn ObjectSource,
    sink: Arc<dyn StatusSink>,
    shutdown: impl Future<Output = ()>,
) -> Result<Progress, RunError> {
    let (progress, _) = watch::channel(Progress::default());
    run_observed(config, nb_remotes, source, sink, shutdown, &progress).await
}

/// [`run`], publishing its [`Progress`] on `observer` after every tick that changed it.
///
/// # Errors
/// [`RunError`] when it cannot go on.
pub async fn run_observed(
    config: ControllerConfig,
    nb_remotes: &str,
    source: &dyn ObjectSource,
    sink: Arc<dyn StatusSink>,
    shutdown: impl Future<Output = ()>,
    observer: &watch::Sender<Progress>,
) -> Result<Progress, RunError> {
    let metrics = ControllerMetrics::new(&mut crate::metrics::Registry::default());
    run_instrumented(
        config, nb_remotes, source, sink, shutdown, observer, &metrics,
    )
    .await
}

/// [`run_observed`], recording what the loop does in `metrics`.
///
/// # Errors
/// [`RunError`] when it cannot go on.
pub async fn run_instrumented(
    config: ControllerConfig,
    nb_remotes: &str,
    source: &dyn ObjectSource,
    sink: Arc<dyn StatusSink>,
    shutdown: impl Future<Output = ()>,
    observer: &watch::Sender<Progress>,
    metrics: &ControllerMetrics,
) -> Result<Progress, RunError> {
    let mut state = ControllerState::new(config.clone()).map_err(RunError::Config)?;
    let monitor = snapshot::monitor(ovn_model::nb::DATABASE, &NB_TABLES);
    tracing::info!(nb = nb_remotes, "following the OVN northbound database");
    let (nb, nb_events) = ReplicaClient::start(
        ReplicaConfig::new(nb_remotes, monitor).with_lock(config.lock().to_owned()),
    )
    .await
    .map_err(RunError::Nb)?;
    nb.with_replica(|r| owner::index(r).ok());
    let _log_nb = AbortOnDrop(tokio::spawn(log_nb_events(nb_events, metrics.clone())));
    let mut namespaces = source.namespaces();
    let mut pods = source.pods();
    let mut nodes = source.nodes();
    let mut services = source.services();
    let mut slices = source.endpoint_slices();
    let mut policies = source.network_policies();
    let mut progress = Progress::default();
    let mut leader = false;
    let mut waiting_logged = false;
    // Objects that could not be handled are tried again at `retry_at`; after a refused
    // transaction nothing is planned before `hold_until`. Both waits grow while failures go on.
    let mut retry_at: Option<Instant> = None;
    let mut hold_until: Option<Instant> = None;
    let mut retry_wait = RETRY_INTERVAL;
    let mut tick = tokio::time::interval(STEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(progress),
            e = namespaces.next() => match e {
                Some(Ok(e)) => state.namespace_event(e),
                Some(Err(e)) => tracing::warn!(error = %chain(&e), "namespaces"),
                None => return Err(RunError::SourceEnded("namespace")),
            },
            e = pods.next() => match e {
                Some(Ok(e)) => state.pod_event(e),
                Some(Err(e)) => tracing::warn!(error = %chain(&e), "pods"),
                None => return Err(RunError::SourceEnded("pod")),
            },
            e = nodes.next() => match e {
                Some(Ok(e)) => state.node_event(e),
                Some(Err(e)) => tracing::warn!(error = %chain(&e), "nodes"),
                None => return Err(RunError::SourceEnded("node")),
            },
            e = services.next() => match e {
                Some(Ok(e)) => state.service_event(e),
                Some(Err(e)) => tracing::warn!(error = %chain(&e), "services"),
                None => return Err(RunError::SourceEnded("service")),
            },
            e = slices.next() => match e {
                Some(Ok(e)) => state.endpoint_slice_event(e),
                Some(Err(e)) => tracing::warn!(error = %chain(&e), "endpoint slices"),
                None => return Err(RunError::SourceEnded("endpoint slice")),
            },
            e = policies.next() => match e {
                Some(Ok(e)) => state.network_policy_event(e),
                Some(Err(e)) => tracing::warn!(error = %chain(&e), "network policies"),
                None => return Err(RunError::SourceEnded("network policy")),
            },
            _ = tick.tick() => {
                let holder = nb.is_synced() && nb.has_lock();
                metrics.lock_held(config.lock(), holder);
                let was = progress;
                progress.settled = false;
                'tick: {
                    if !holder {
                        if leader {
                            tracing::warn!(lock = config.lock(), "lost the lock: standing by");
                            leader = false;
                        }
                        break 'tick;
                    }
                    if !state.listed() {
                        if !waiting_logged {
                            tracing::info!("waiting for the first listing of every watched kind");
                            waiting_logged = true;
                        }
                        break 'tick;
                    }
                    if !leader {
                        leader = true;
                        progress.takeovers += 1;
                        let snap = nb.snapshot();
                        let events = state.restore(&Typed::new(&snap));
                        tracing::info!(lock = config.lock(), leases = state.ipam().len(), "holding the lock: writing");
                        report(sink.as_ref(), StepOutput::events_only(events)).await;
                    }
                    let now = Instant::now();
                    if hold_until.is_some_and(|t| now < t) {
                        break 'tick;
                    }
                    hold_until = None;
                    if retry_at.is_some_and(|t| now >= t) {
                        retry_at = None;
                        state.retry_failed();
                    }
                    let (mut refused, mut unresolved) = (false, false);
                    while state.is_dirty() {
                        let snap = nb.snapshot();
                        let before = state.queue_depths();
                        let started = Instant::now();
                        let out = tracing::info_span!("step").in_scope(|| {
                            state.step_clocked(&Typed::new(&snap), &mut || started.elapsed())
                        });
                        metrics.step(started.elapsed());
                        metrics.reconciled(&out.durations);
                        let after = state.queue_depths();
                        for ((kind, b), (_, a)) in before.iter().zip(&after) {
                            metrics.objects(kind, b.saturating_sub(*a));
                        }
                        for e in out.events.iter().filter(|e| e.type_ == EventType::Warning) {
                            metrics.error(e.object.kind.as_str(), &e.reason);
                        }
                        unresolved |= out.retry;
                        let more = out.more;
                        if !send(&nb, &config, &mut state, &mut progress, out, sink.as_ref(), metrics).await {
                            refused = true;
                            break;
                        }
                        if !more {
                            break;
                        }
                    }
                    if refused {
                        hold_until = Some(Instant::now() + retry_wait);
                    } else if unresolved {
                        retry_at.get_or_insert(Instant::now() + retry_wait);
                    }
                    if refused || unresolved {
                        retry_wait = (retry_wait * 2).min(MAX_RETRY_INTERVAL);
                    } else if !state.has_failed() {
                        retry_wait = RETRY_INTERVAL;
                    }
                    progress.settled = !state.is_dirty() && !refused;
                }
                metrics.queue(&state.queue_depths());
                if progress.transactions != was.transactions || progress.takeovers != was.takeovers {
                    metrics.ipam(&state.ipam().all_stats());
                }
                if progress != was {
                    observer.send_replace(progress);
                }
            }
        }
    }
}

/// Stops a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Logs what the NB connection does (syncs, refusals, disconnections, the lock) and records
/// whether it is synced.
async fn log_nb_events(mut events: ReplicaEvents, metrics: ControllerMetrics) {
    while let Some(event) = events.next().await {
        match event {
            ReplicaEvent::Synced {
                remote, resumed, ..
            } => {
                metrics.connected(ovn_model::nb::DATABASE, true);
                tracing::info!(%remote, resumed, "NB synced");
            }
            ReplicaEvent::Refused { remote, reason } => {
                tracing::warn!(%remote, reason = %chain(reason.as_ref()), "NB remote refused");
            }
            ReplicaEvent::Disconnected { remote, reason } => {
                metrics.connected(ovn_model::nb::DATABASE, false);
                tracing::warn!(%remote, reason = %chain(reason.as_ref()), "NB connection lost");
            }
            ReplicaEvent::LockAcquired { name } => tracing::info!(lock = %name, "lock acquired"),
            ReplicaEvent::LockLost { name, stolen } => {
                tracing::warn!(lock = %name, stolen, "lock lost");
            }
            ReplicaEvent::GaveUp { rounds, last } => {
                tracing::error!(rounds, last = %chain(last.as_ref()), "gave up on the NB");
            }
            other => tracing::debug!(?other, "NB"),
        }
    }
}

/// Sends a step's plan and writes its results; `false` when the transaction was refused.
async fn send(
    nb: &ReplicaClient,
    config: &ControllerConfig,
    state: &mut ControllerState,
    progress: &mut Progress,
    out: StepOutput,
    sink: &dyn StatusSink,
    metrics: &ControllerMetrics,
) -> bool {
    if !out.plan.is_empty() {
        tracing::trace!("sending one transaction:\n{}", out.plan);
        let started = Instant::now();
        let seq = nb.with_replica(|r| r.seq());
        let result = match out.plan.transaction_holding(config.lock()) {
            Ok(prepared) => prepared
                .send_via(nb)
                .await
                .map(|outcome| prepared.inserted_rows(&outcome)),
            Err(e) => Err(e),
        };
        match result {
            Ok(rows) => {
                progress.transactions += 1;
                tracing::debug!(
                    steps = out.plan.steps().len(),
                    inserted = rows.len(),
                    "committed"
                );
                wait_seen(nb, seq, &rows).await;
                metrics.transaction("committed", started.elapsed());
            }
            Err(e) => {
                progress.refused += 1;
                metrics.transaction("refused", started.elapsed());
                tracing::warn!(error = %chain(&e), steps = out.plan.steps().len(), "transaction refused; planning again");
                state.requeue_all();
                return false;
            }
        }
    }
    report(sink, out).await;
    true
}

/// Waits (briefly) until the replica shows a committed transaction: a change after `seq` and
/// every inserted row, so that the next step plans from a snapshot that includes it.
async fn wait_seen(nb: &ReplicaClient, seq: u64, rows: &[(String, ovsdb::Uuid)]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let seen = nb.with_replica(|r| {
            let snap = r.snapshot();
            r.seq() > seq
                && rows
                    .iter()
                    .all(|(t, u)| snap.table(t).is_some_and(|t| t.get(*u).is_some()))
        });
        if seen || Instant::now() >= deadline {
            if !seen {
                tracing::warn!("the replica did not show the committed transaction within 5 s");
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Writes back annotations, forgets deleted objects' results and reports events; failures
/// are logged (the next step writes again what differs).
async fn report(sink: &dyn StatusSink, out: StepOutput) {
    for problem in &out.problems {
        tracing::error!("{problem}");
    }
    for (object, e) in sink.annotate_all(&out.annotations).await {
        tracing::warn!(%object, error = %chain(&e), "writing back");
    }
    for object in &out.forget {
        if let Err(e) = sink.forget(object).await {
            tracing::warn!(%object, error = %chain(&e), "forgetting");
        }
    }
    for event in &out.events {
        match event.type_ {
            EventType::Warning => {
                tracing::warn!(object = %event.object, reason = %event.reason, "{}", event.message);
            }
            EventType::Normal => {
                tracing::info!(object = %event.object, reason = %event.reason, "{}", event.message);
            }
        }
        if let Err(e) = sink.event(event).await {
            tracing::warn!(object = %event.object, error = %chain(&e), "reporting an event");
        }
    }
}

/// `e` and its sources, joined by `: `.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}
