//! The decisions of the replica client, sans-IO: which remote to try next, how long to wait
//! between rounds, whether a server may be used (Raft leader, not stale), when a Raft member
//! is frozen, and when the lock is held. No socket, no clock and no task: like
//! [`crate::session::Session`], it takes inputs stamped with `now`
//! ([`Machine::handle`], [`Machine::handle_timeout`]) and hands out [`Action`]s
//! ([`Machine::poll_action`]) and the next deadline ([`Machine::poll_timeout`]). The pump in
//! `replica_task` performs the actions (connect, subscribe, lock, echo, close) and reports
//! their results; its unit tests (`replica_machine_tests.rs`) drive it with simulated time.
//!
//! One connection at a time, named by a [`ConnId`]; inputs about an older connection are
//! ignored. An attempt goes through three phases:
//!
//! 1. **Check**: connect and read `_Server` (bounded by `check_timeout`), then
//!    [`raft::judge`] the database's row.
//! 2. **Setup**: subscribe, then take the lock if one is configured (bounded, from the
//!    connect, by `setup_timeout`).
//! 3. **Up**: follow it until it fails, `_Server` rejects it, or (for a Raft member) it
//!    answers nothing, not even a liveness `echo`, for two `raft_probe` intervals.
//!
//! A refused attempt moves on to the next remote of the round ([`Rotation`]); a round in
//! which every remote was refused counts as failed, and the next one starts after
//! [`Backoff::delay`] of the failed rounds so far, until `max_rounds`. An established
//! connection that ends resets the count and starts the next round at once, from the remote
//! after it: the previous server was healthy, so nothing suggests waiting.
//!
//! **Failover of clustered databases.** Two decisions bound the time writes stall:
//!
//! - A member that is alive but refused only for the cluster's state (not the leader, or
//!   not connected to its cluster: an election is under way) is not closed: its connection is
//!   parked and its `_Server` row watched for the rest of the round and during the backoff
//!   after it. The row of the member that wins the election changes at once (`leader`
//!   becomes true), and setup goes on on that very connection; if the round has failed and a
//!   parked row changes otherwise, a new round starts at once. The backoff is then only an
//!   upper bound, and a leader kill costs about the election time. Nothing is polled: the
//!   parked connections wait for one notification each.
//! - A frozen leader (SIGSTOP, a hung host) keeps its socket open and sends nothing; the
//!   session's inactivity probe (5 s, twice, on TCP; none on unix sockets) would take 10 s or
//!   forever. A Raft member is instead probed after `raft_probe` (1 s by default, the default
//!   Raft election timer of ovsdb-server) without input and given up one more `raft_probe`
//!   later. By then the other members have elected a new leader (they wait one election
//!   timer too), so the next round finds it. A member that is merely slow for two election
//!   timers has lost its leadership anyway; set `raft_probe` to the cluster's election timer
//!   when it was raised.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use super::raft::{self, DatabaseStatus, Rejection};
use super::reconnect::Rotation;
use super::replica_client::ReplicaEvent;
use super::replica_error::LinkError;
use crate::replica::ApplyStats;

/// Names one connection of the machine.
pub(crate) type ConnId = u64;

#[path = "replica_machine_io.rs"]
mod io;
pub(crate) use io::{Action, Input, LockChange, MachineConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Subscribing,
    Locking { resumed: bool, applied: ApplyStats },
}

/// A member refused for the cluster's state, its connection kept open.
#[derive(Debug)]
struct Parked {
    conn: ConnId,
    remote: usize,
    status: Option<DatabaseStatus>,
}

#[derive(Debug)]
enum State {
    /// Before [`Machine::start`].
    Idle,
    /// Between rounds.
    Waiting {
        until: Instant,
    },
    /// Connecting and reading `_Server`.
    Checking {
        conn: ConnId,
        remote: usize,
        since: Instant,
    },
    Setup {
        conn: ConnId,
        remote: usize,
        since: Instant,
        clustered: bool,
        phase: Phase,
    },
    Up {
        conn: ConnId,
        remote: usize,
        clustered: bool,
        resubscribing: bool,
        last_input: Instant,
        probe_sent: Option<Instant>,
    },
    /// Between rounds, with parked members watched.
    Watching {
        until: Instant,
    },
    GaveUp,
}

/// The replica client's decisions. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct Machine {
    config: MachineConfig,
    rotation: Rotation<usize>,
    /// The remotes left in the current round.
    round: VecDeque<usize>,
    failed_rounds: u32,
    last_error: Option<Arc<LinkError>>,
    /// Members of this round refused only for the cluster's state, kept open and watched.
    parked: Vec<Parked>,
    /// The highest Raft log index seen on any server.
    seen_index: Option<i64>,
    next_conn: ConnId,
    state: State,
    actions: VecDeque<Action>,
}

impl Machine {
    pub(crate) fn new(config: MachineConfig) -> Self {
        let rotation = Rotation::new((0..config.remotes.len()).collect());
        Self {
            config,
            rotation,
            round: VecDeque::new(),
            failed_rounds: 0,
            last_error: None,
            parked: Vec::new(),
            seen_index: None,
            next_conn: 0,
            state: State::Idle,
            actions: VecDeque::new(),
        }
    }

    /// Starts the first round at `now`.
    pub(crate) fn start(&mut self, now: Instant) {
        if matches!(self.state, State::Idle) {
            self.begin_round(now);
        }
    }

    /// The next thing to do.
    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Whether the machine gave up for good.
    pub(crate) fn is_done(&self) -> bool {
        matches!(self.state, State::GaveUp)
    }

    /// The connection in use (checked, set up or up), if any.
    pub(crate) fn current(&self) -> Option<ConnId> {
        match self.state {
            State::Checking { conn, .. } | State::Setup { conn, .. } | State::Up { conn, .. } => {
                Some(conn)
            }
            State::Idle | State::Waiting { .. } | State::Watching { .. } | State::GaveUp => None,
        }
    }

    /// The parked connections.
    #[cfg(test)]
    pub(crate) fn parked(&self) -> Vec<ConnId> {
        self.parked.iter().map(|p| p.conn).collect()
    }

    /// When [`Machine::handle_timeout`] must be called next.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Idle | State::GaveUp => None,
            State::Waiting { until } | State::Watching { until, .. } => Some(*until),
            State::Checking { since, .. } => {
                Some(*since + self.config.check_timeout.min(self.config.setup_timeout))
            }
            State::Setup { since, .. } => Some(*since + self.config.setup_timeout),
            State::Up {
                clustered: true,
                last_input,
                probe_sent,
                ..
            } => {
                let probe = self.config.raft_probe?;
                Some(match probe_sent {
                    None => *last_input + probe,
                    Some(sent) => *sent + probe,
                })
            }
            State::Up { .. } => None,
        }
    }

    /// Advances the timers to `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let Some(at) = self.poll_timeout() else {
            return;
        };
        if now < at {
            return;
        }
        match self.state {
            State::Waiting { .. } | State::Watching { .. } => self.begin_round(now),
            State::Checking { conn, remote, .. } => {
                let t = self.config.check_timeout.min(self.config.setup_timeout);
                let error = Arc::new(LinkError::CheckTimedOut(t));
                self.refuse(now, conn, remote, error, None);
            }
            State::Setup { conn, remote, .. } => {
                let error = Arc::new(LinkError::SetupTimedOut(self.config.setup_timeout));
                self.refuse(now, conn, remote, error, None);
            }
            State::Up {
                conn,
                last_input,
                ref mut probe_sent,
                ..
            } => match probe_sent {
                None => {
                    *probe_sent = Some(now);
                    self.push(Action::Probe { conn });
                }
                Some(_) => {
                    let silence = now.saturating_duration_since(last_input);
                    self.end(now, Arc::new(LinkError::Unresponsive(silence)));
                }
            },
            State::Idle | State::GaveUp => {}
        }
    }

    /// Takes what the pump reports about a connection.
    pub(crate) fn handle(&mut self, now: Instant, input: Input) {
        let conn = match &input {
            Input::Checked { conn, .. }
            | Input::Status { conn, .. }
            | Input::Subscribed { conn, .. }
            | Input::MonitorCanceled { conn }
            | Input::LockReply { conn, .. }
            | Input::Locked { conn }
            | Input::Stolen { conn }
            | Input::Activity { conn }
            | Input::Failed { conn, .. } => *conn,
        };
        if let Some(i) = self.parked.iter().position(|p| p.conn == conn) {
            self.parked_input(now, i, input);
            return;
        }
        if self.current() != Some(conn) {
            return;
        }
        if let State::Up {
            last_input,
            probe_sent,
            ..
        } = &mut self.state
        {
            *last_input = now;
            *probe_sent = None;
        }
        match input {
            Input::Checked {
                server_db, status, ..
            } => self.checked(now, server_db, status),
            Input::Status { status, .. } => self.status(now, status),
            Input::Subscribed {
                resumed, applied, ..
            } => self.subscribed(now, resumed, applied),
            Input::MonitorCanceled { .. } => {
                if let State::Up { resubscribing, .. } = &mut self.state {
                    *resubscribing = true;
                    self.push(Action::Subscribe { conn });
                }
            }
            Input::LockReply { held, .. } => self.lock_reply(now, held),
            Input::Locked { .. } => {
                if let State::Up { .. } = self.state {
                    self.push(Action::LockChanged(LockChange::Acquired));
                }
            }
            Input::Stolen { .. } => {
                if let State::Up { .. } = self.state {
                    // Wait in the lock's queue again, as a standby.
                    self.push(Action::LockChanged(LockChange::Lost { stolen: true }));
                    self.push(Action::RequestLock { conn });
                }
            }
            Input::Activity { .. } => {}
            Input::Failed { error, .. } => self.failed(now, error),
        }
    }

    fn push(&mut self, action: Action) {
        self.actions.push_back(action);
    }

    fn emit(&mut self, event: ReplicaEvent) {
        self.push(Action::Emit(event));
    }

    fn remote_name(&self, remote: usize) -> String {
        self.config.remotes.get(remote).cloned().unwrap_or_default()
    }

    fn begin_round(&mut self, now: Instant) {
        self.close_parked();
        self.round = self.rotation.round().into_iter().map(|(i, _)| i).collect();
        self.next_attempt(now);
    }

    fn next_attempt(&mut self, now: Instant) {
        let Some(remote) = self.round.pop_front() else {
            self.round_failed(now);
            return;
        };
        let conn = self.next_conn;
        self.next_conn += 1;
        self.state = State::Checking {
            conn,
            remote,
            since: now,
        };
        self.push(Action::Connect { conn, remote });
    }

    /// Closes every parked connection.
    fn close_parked(&mut self) {
        for p in std::mem::take(&mut self.parked) {
            let error = self
                .last_error
                .clone()
                .unwrap_or_else(|| Arc::new(LinkError::Rejected(Rejection::NotLeader)));
            self.push(Action::Close {
                conn: p.conn,
                error,
            });
        }
    }

    /// Every remote of the round was refused: give up, or wait the backoff (watching the
    /// parked members meanwhile).
    fn round_failed(&mut self, now: Instant) {
        self.failed_rounds += 1;
        let last = self
            .last_error
            .clone()
            .unwrap_or_else(|| Arc::new(LinkError::DriverStopped));
        if self
            .config
            .max_rounds
            .is_some_and(|m| self.failed_rounds >= m)
        {
            self.close_parked();
            self.state = State::GaveUp;
            let rounds = self.failed_rounds;
            self.emit(ReplicaEvent::GaveUp {
                rounds,
                last: last.clone(),
            });
            self.push(Action::GiveUp { rounds, last });
            return;
        }
        let until = now + self.config.backoff.delay(self.failed_rounds);
        self.state = if self.parked.is_empty() {
            State::Waiting { until }
        } else {
            State::Watching { until }
        };
    }

    /// The attempt on `conn` is refused: close it, or park it when `parked` holds the status
    /// it was refused for (alive, refused only for the cluster's state); then try the next
    /// remote.
    fn refuse(
        &mut self,
        now: Instant,
        conn: ConnId,
        remote: usize,
        error: Arc<LinkError>,
        parked: Option<Option<DatabaseStatus>>,
    ) {
        self.emit(ReplicaEvent::Refused {
            remote: self.remote_name(remote),
            reason: error.clone(),
        });
        self.last_error = Some(error.clone());
        match parked {
            Some(status) => {
                self.parked.push(Parked {
                    conn,
                    remote,
                    status,
                });
                self.push(Action::Park { conn });
            }
            None => self.push(Action::Close { conn, error }),
        }
        self.next_attempt(now);
    }

    /// What a parked member reports.
    fn parked_input(&mut self, now: Instant, i: usize, input: Input) {
        match input {
            Input::Status { status, .. } => {
                if self.judge(status.as_ref()).is_ok() {
                    // It won the election: set up on it, whatever else was under way.
                    let p = self.parked.remove(i);
                    self.close_parked();
                    if let Some(conn) = self.current() {
                        let error = self
                            .last_error
                            .clone()
                            .unwrap_or_else(|| Arc::new(LinkError::Rejected(Rejection::NotLeader)));
                        self.push(Action::Close { conn, error });
                    }
                    self.subscribe(p.conn, p.remote, now, true);
                } else if status != self.parked[i].status {
                    self.parked[i].status = status;
                    // The cluster moved (a leader elsewhere): after a failed round, try again
                    // now rather than at the end of the backoff.
                    if let State::Watching { .. } = self.state {
                        self.begin_round(now);
                    }
                }
            }
            Input::Failed { error, .. } => {
                let p = self.parked.remove(i);
                self.push(Action::Close {
                    conn: p.conn,
                    error,
                });
                if let (State::Watching { until }, true) = (&self.state, self.parked.is_empty()) {
                    self.state = State::Waiting { until: *until };
                }
            }
            _ => {}
        }
    }

    /// Judges a status; raises the index seen when it is accepted.
    fn judge(&mut self, status: Option<&DatabaseStatus>) -> Result<(), Rejection> {
        raft::judge(
            &self.config.db,
            status,
            self.config.leader_only,
            self.seen_index,
        )?;
        if let Some(i) = status.and_then(|s| s.index) {
            self.seen_index = Some(self.seen_index.map_or(i, |s| s.max(i)));
        }
        Ok(())
    }

    /// Whether a member refused for `rejection` is worth watching: it is alive and only the
    /// cluster's state (an election) stands in the way.
    fn watchable(rejection: &Rejection) -> bool {
        matches!(rejection, Rejection::NotLeader | Rejection::NotConnected)
    }

    fn checked(&mut self, now: Instant, server_db: bool, status: Option<DatabaseStatus>) {
        let State::Checking {
            conn,
            remote,
            since,
        } = self.state
        else {
            return;
        };
        let verdict = if server_db {
            self.judge(status.as_ref())
        } else {
            Ok(())
        };
        let clustered = status.as_ref().is_some_and(|s| s.model == "clustered");
        match verdict {
            Ok(()) => self.subscribe(conn, remote, since, clustered),
            Err(rejection) => {
                let parked = Self::watchable(&rejection).then_some(status);
                let error = Arc::new(LinkError::Rejected(rejection));
                self.refuse(now, conn, remote, error, parked);
            }
        }
    }

    fn subscribe(&mut self, conn: ConnId, remote: usize, since: Instant, clustered: bool) {
        self.close_parked();
        self.state = State::Setup {
            conn,
            remote,
            since,
            clustered,
            phase: Phase::Subscribing,
        };
        self.push(Action::Subscribe { conn });
    }

    fn status(&mut self, now: Instant, status: Option<DatabaseStatus>) {
        match self.state {
            State::Checking { .. } => {}
            State::Setup { conn, remote, .. } => {
                if let Err(rejection) = self.judge(status.as_ref()) {
                    let parked = Self::watchable(&rejection).then_some(status);
                    let error = Arc::new(LinkError::Rejected(rejection));
                    self.refuse(now, conn, remote, error, parked);
                }
            }
            State::Up { .. } => {
                if let Err(rejection) = self.judge(status.as_ref()) {
                    self.end(now, Arc::new(LinkError::Rejected(rejection)));
                }
            }
            State::Idle | State::Waiting { .. } | State::Watching { .. } | State::GaveUp => {}
        }
    }

    fn subscribed(&mut self, now: Instant, resumed: bool, applied: ApplyStats) {
        match &mut self.state {
            State::Setup {
                conn,
                phase: phase @ Phase::Subscribing,
                ..
            } => {
                let conn = *conn;
                if self.config.lock.is_some() {
                    *phase = Phase::Locking { resumed, applied };
                    self.push(Action::RequestLock { conn });
                } else {
                    self.up(now, resumed, applied);
                }
            }
            State::Up {
                resubscribing: r @ true,
                remote,
                ..
            } => {
                *r = false;
                let remote = *remote;
                let remote = self.remote_name(remote);
                self.emit(ReplicaEvent::Resubscribed { remote });
            }
            _ => {}
        }
    }

    fn lock_reply(&mut self, now: Instant, held: bool) {
        match self.state {
            State::Setup {
                phase: Phase::Locking { resumed, applied },
                ..
            } => {
                if held {
                    self.push(Action::LockChanged(LockChange::Acquired));
                }
                self.up(now, resumed, applied);
            }
            State::Up { .. } if held => self.push(Action::LockChanged(LockChange::Acquired)),
            _ => {}
        }
    }

    /// The connection is synced: it is up, the failed rounds are forgotten, and the next
    /// round will start after this remote.
    fn up(&mut self, now: Instant, resumed: bool, applied: ApplyStats) {
        let State::Setup {
            conn,
            remote,
            clustered,
            ..
        } = self.state
        else {
            return;
        };
        self.state = State::Up {
            conn,
            remote,
            clustered,
            resubscribing: false,
            last_input: now,
            probe_sent: None,
        };
        self.failed_rounds = 0;
        self.rotation.used(remote);
        self.close_parked();
        self.push(Action::Up { conn });
        self.emit(ReplicaEvent::Synced {
            remote: self.remote_name(remote),
            resumed,
            applied,
        });
    }

    fn failed(&mut self, now: Instant, error: Arc<LinkError>) {
        match self.state {
            State::Checking { conn, remote, .. } | State::Setup { conn, remote, .. } => {
                self.refuse(now, conn, remote, error, None);
            }
            State::Up { .. } => self.end(now, error),
            State::Idle | State::Waiting { .. } | State::Watching { .. } | State::GaveUp => {}
        }
    }

    /// The established connection ends for `error`: tell, lose the lock, and start the next
    /// round at once (the server was healthy until now; no backoff).
    fn end(&mut self, now: Instant, error: Arc<LinkError>) {
        let State::Up { conn, remote, .. } = self.state else {
            return;
        };
        self.push(Action::Close {
            conn,
            error: error.clone(),
        });
        self.push(Action::Down);
        if self.config.lock.is_some() {
            self.push(Action::LockChanged(LockChange::Lost { stolen: false }));
        }
        self.emit(ReplicaEvent::Disconnected {
            remote: self.remote_name(remote),
            reason: error.clone(),
        });
        self.last_error = Some(error);
        self.failed_rounds = 0;
        self.begin_round(now);
    }
}

#[cfg(test)]
#[path = "replica_machine_tests.rs"]
mod tests;
