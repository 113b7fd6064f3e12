//! Unit tests of the replica client's [`Machine`] with simulated time: backoff growth and
//! reset, rotation through the remotes, refusing followers and stale members, watching a
//! refused member through an election, the liveness probe of Raft members, the set-up
//! deadlines, and the lock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::client::reconnect::Backoff;

const DB: &str = "OVN_Northbound";

fn config(remotes: usize) -> MachineConfig {
    MachineConfig {
        db: DB.to_owned(),
        remotes: (0..remotes).map(|i| format!("unix:/m{i}")).collect(),
        backoff: Backoff::new(Duration::from_millis(100), Duration::from_millis(800)),
        max_rounds: None,
        leader_only: true,
        lock: None,
        check_timeout: Duration::from_secs(2),
        setup_timeout: Duration::from_secs(10),
        raft_probe: Some(Duration::from_secs(1)),
    }
}

fn clustered(connected: bool, leader: bool, index: i64) -> Option<DatabaseStatus> {
    Some(DatabaseStatus {
        model: "clustered".into(),
        connected,
        leader,
        index: Some(index),
    })
}

fn leader(index: i64) -> Option<DatabaseStatus> {
    clustered(true, true, index)
}

fn follower(index: i64) -> Option<DatabaseStatus> {
    clustered(true, false, index)
}

/// A machine under test with its simulated clock.
struct Sim {
    m: Machine,
    now: Instant,
    /// The last `Connect` drained and not yet answered.
    connect: Option<(ConnId, usize)>,
}

impl Sim {
    fn new(config: MachineConfig) -> Self {
        let now = Instant::now();
        let mut m = Machine::new(config);
        m.start(now);
        Self {
            m,
            now,
            connect: None,
        }
    }

    fn actions(&mut self) -> Vec<Action> {
        let actions: Vec<Action> = std::iter::from_fn(|| self.m.poll_action()).collect();
        for a in &actions {
            if let Action::Connect { conn, remote } = a {
                self.connect = Some((*conn, *remote));
            }
        }
        actions
    }

    /// Advances the clock to the next deadline and fires it.
    fn fire(&mut self) -> Duration {
        let at = self.m.poll_timeout().expect("a deadline");
        let waited = at.saturating_duration_since(self.now);
        self.now = self.now.max(at);
        self.m.handle_timeout(self.now);
        waited
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.m.handle_timeout(self.now);
    }

    fn input(&mut self, input: Input) {
        self.m.handle(self.now, input);
    }

    /// The connection the last `Connect` opened, and its remote.
    fn connecting(&mut self) -> (ConnId, usize) {
        let actions = self.actions();
        self.connect
            .take()
            .unwrap_or_else(|| panic!("no connect in {actions:?}"))
    }

    /// Answers the pending connect with `status`; returns the actions that follow.
    fn check(&mut self, status: Option<DatabaseStatus>) -> (usize, Vec<Action>) {
        let (conn, remote) = self.connecting();
        self.input(Input::Checked {
            conn,
            server_db: true,
            status,
        });
        (remote, self.actions())
    }

    /// Connects the pending attempt to a leader and brings it up; returns its id and remote.
    fn bring_up(&mut self, index: i64) -> (ConnId, usize) {
        let (conn, remote) = self.connecting();
        self.input(Input::Checked {
            conn,
            server_db: true,
            status: leader(index),
        });
        // Members parked during the round are let go.
        let actions = self.actions();
        assert!(
            matches!(actions.last(), Some(Action::Subscribe { conn: c }) if *c == conn),
            "{actions:?}"
        );
        self.input(Input::Subscribed {
            conn,
            resumed: false,
            applied: ApplyStats::default(),
        });
        (conn, remote)
    }
}

fn refused(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Emit(ReplicaEvent::Refused { reason, .. }) => Some(reason.to_string()),
            _ => None,
        })
        .collect()
}

fn failed(conn: ConnId) -> Input {
    Input::Failed {
        conn,
        error: Arc::new(LinkError::DriverStopped),
    }
}

#[test]
fn rounds_rotate_through_the_remotes_and_the_backoff_doubles_to_its_max() {
    let mut s = Sim::new(config(3));
    let mut waits = Vec::new();
    for _round in 0..6 {
        let mut order = Vec::new();
        for _ in 0..3 {
            let (conn, remote) = s.connecting();
            order.push(remote);
            s.input(failed(conn));
        }
        assert_eq!(
            order,
            vec![0, 1, 2],
            "every remote once per round, in order"
        );
        waits.push(s.fire().as_millis());
    }
    assert_eq!(waits, vec![100, 200, 400, 800, 800, 800]);
}

#[test]
fn an_established_connection_resets_the_backoff_and_the_next_round_starts_after_it() {
    let mut s = Sim::new(config(3));
    for _ in 0..3 {
        let (conn, _) = s.connecting();
        s.input(failed(conn));
    }
    assert_eq!(s.fire(), Duration::from_millis(100));
    for _ in 0..3 {
        let (conn, _) = s.connecting();
        s.input(failed(conn));
    }
    assert_eq!(s.fire(), Duration::from_millis(200));
    let (c0, _) = s.connecting();
    s.input(failed(c0));
    let (conn, remote) = s.bring_up(5);
    assert_eq!(remote, 1);
    let up = s.actions();
    assert!(
        up.iter()
            .any(|a| matches!(a, Action::Up { conn: c } if *c == conn))
    );
    assert!(up.iter().any(
        |a| matches!(a, Action::Emit(ReplicaEvent::Synced { remote, .. }) if remote == "unix:/m1")
    ));

    // The healthy connection ends: the next attempt is at once, on the remote after it.
    s.input(failed(conn));
    let actions = s.actions();
    assert!(matches!(actions[0], Action::Close { .. }));
    assert!(actions.iter().any(|a| matches!(a, Action::Down)));
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Emit(ReplicaEvent::Disconnected { remote, .. }) if remote == "unix:/m1"))
    );
    assert!(
        matches!(actions.last(), Some(Action::Connect { remote: 2, .. })),
        "{actions:?}"
    );
    // And a failed round after it waits the initial delay again.
    let (conn, _) = s.connecting();
    s.input(failed(conn));
    for _ in 0..2 {
        let (conn, _) = s.connecting();
        s.input(failed(conn));
    }
    assert_eq!(s.fire(), Duration::from_millis(100));
}

#[test]
fn gives_up_after_max_rounds_with_the_last_failure() {
    let mut cfg = config(2);
    cfg.max_rounds = Some(2);
    let mut s = Sim::new(cfg);
    for round in 0..2 {
        for _ in 0..2 {
            let (conn, _) = s.connecting();
            s.input(Input::Failed {
                conn,
                error: Arc::new(LinkError::CheckTimedOut(Duration::from_secs(round))),
            });
        }
        if round == 0 {
            s.fire();
        }
    }
    let actions = s.actions();
    let Some(Action::GiveUp { rounds, last }) = actions.last() else {
        panic!("{actions:?}")
    };
    assert_eq!(*rounds, 2);
    assert!(matches!(**last, LinkError::CheckTimedOut(_)));
    assert!(s.m.is_done());
    assert_eq!(s.m.poll_timeout(), None);
}

#[test]
fn followers_and_stale_members_are_refused_and_the_leader_is_used() {
    let mut s = Sim::new(config(3));
    let (conn, _) = s.bring_up(10);
    s.actions();
    // A leader change: the member says it is a follower now.
    s.input(Input::Status {
        conn,
        status: follower(11),
    });
    let actions = s.actions();
    let Some(Action::Close { error, .. }) = actions.first() else {
        panic!("{actions:?}")
    };
    assert!(matches!(**error, LinkError::Rejected(Rejection::NotLeader)));
    assert_eq!(error.to_string(), "the server is not the cluster leader");

    // Next member: a leader behind the index already seen (it would show older data).
    let (remote, actions) = s.check(leader(9));
    assert_eq!(remote, 1);
    assert_eq!(
        refused(&actions),
        vec!["the server's log index 9 is behind index 10 already seen"]
    );
    // Next: a follower; then the first member, now leader, is used.
    let (remote, actions) = s.check(follower(12));
    assert_eq!(remote, 2);
    assert_eq!(
        refused(&actions),
        vec!["the server is not the cluster leader"]
    );
    let (_, remote) = s.bring_up(12);
    assert_eq!(remote, 0);
}

#[test]
fn any_member_serves_when_not_leader_only_but_never_a_disconnected_one() {
    let mut cfg = config(2);
    cfg.leader_only = false;
    let mut s = Sim::new(cfg);
    let (_, actions) = s.check(clustered(false, false, 3));
    assert_eq!(
        refused(&actions),
        vec!["the server is not connected to its cluster"]
    );
    let (_, actions) = s.check(follower(3));
    assert!(
        matches!(actions.last(), Some(Action::Subscribe { .. })),
        "{actions:?}"
    );
}

fn parked(actions: &[Action]) -> Vec<ConnId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Park { conn } => Some(*conn),
            _ => None,
        })
        .collect()
}

#[test]
fn members_refused_during_an_election_are_watched_and_the_winner_used_at_once() {
    let mut s = Sim::new(config(3));
    let (conn, _) = s.bring_up(5);
    s.actions();
    s.input(failed(conn)); // the leader, m0, died
    // m1 and m2 are alive, still following the dead leader: refused but parked, not closed.
    let (c1, remote) = s.connecting();
    assert_eq!(remote, 1);
    s.input(Input::Checked {
        conn: c1,
        server_db: true,
        status: follower(5),
    });
    let actions = s.actions();
    assert_eq!(refused(&actions).len(), 1);
    assert_eq!(parked(&actions), vec![c1]);
    let (c2, _) = s.connecting();
    s.input(Input::Checked {
        conn: c2,
        server_db: true,
        status: follower(5),
    });
    assert_eq!(parked(&s.actions()), vec![c2]);
    let (c0, remote) = s.connecting();
    assert_eq!(remote, 0);
    s.input(failed(c0));
    s.actions();
    assert_eq!(s.m.parked(), vec![c1, c2]);
    assert_eq!(s.m.current(), None, "between rounds");
    // 40 ms into the 100 ms backoff m2 wins the election: set up on its connection, m1 closed.
    s.advance(Duration::from_millis(40));
    s.input(Input::Status {
        conn: c2,
        status: leader(6),
    });
    let actions = s.actions();
    assert!(
        matches!(actions[..], [Action::Close { conn, .. }, Action::Subscribe { conn: sub }] if conn == c1 && sub == c2),
        "{actions:?}"
    );
    assert_eq!(s.m.current(), Some(c2));
    assert!(s.m.parked().is_empty());
}

#[test]
fn a_parked_member_that_wins_during_the_round_replaces_the_attempt_under_way() {
    let mut s = Sim::new(config(2));
    let (c0, _) = s.connecting();
    s.input(Input::Checked {
        conn: c0,
        server_db: true,
        status: clustered(false, false, 5),
    });
    let (c1, _) = s.connecting();
    // m0 wins while m1 is still being checked.
    s.input(Input::Status {
        conn: c0,
        status: leader(6),
    });
    let actions = s.actions();
    assert!(
        matches!(actions[..], [Action::Close { conn, .. }, Action::Subscribe { conn: sub }] if conn == c1 && sub == c0),
        "{actions:?}"
    );
}

#[test]
fn a_parked_row_that_moves_after_a_failed_round_starts_a_round_at_once() {
    let mut s = Sim::new(config(2));
    for _ in 0..2 {
        let _ = s.check(clustered(false, false, 5));
    }
    let watched = s.m.parked();
    assert_eq!(watched.len(), 2);
    s.advance(Duration::from_millis(10));
    // The same status again changes nothing.
    s.input(Input::Status {
        conn: watched[0],
        status: clustered(false, false, 5),
    });
    assert!(s.actions().is_empty());
    // A leader elsewhere: this member is connected to its cluster again.
    s.input(Input::Status {
        conn: watched[0],
        status: follower(6),
    });
    let actions = s.actions();
    let closed: Vec<ConnId> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Close { conn, .. } => Some(*conn),
            _ => None,
        })
        .collect();
    assert_eq!(closed, watched, "the parked members are let go");
    assert!(
        matches!(actions.last(), Some(Action::Connect { remote: 0, .. })),
        "{actions:?}"
    );
}

#[test]
fn parked_members_are_closed_when_the_backoff_ends_and_dead_ones_are_not_parked() {
    let mut s = Sim::new(config(1));
    let _ = s.check(clustered(false, false, 5));
    let watched = s.m.parked();
    assert_eq!(s.fire(), Duration::from_millis(100));
    let actions = s.actions();
    assert!(matches!(actions.first(), Some(Action::Close { conn, .. }) if [*conn] == watched[..]));
    assert!(matches!(actions.last(), Some(Action::Connect { .. })));

    let mut s = Sim::new(config(1));
    let (conn, _) = s.connecting();
    s.input(failed(conn));
    assert!(parked(&s.actions()).is_empty());
    assert!(s.m.parked().is_empty());
    assert_eq!(s.fire(), Duration::from_millis(100));
}

#[test]
fn a_frozen_raft_member_is_probed_then_given_up_after_two_probe_intervals() {
    let mut s = Sim::new(config(3));
    let (conn, _) = s.bring_up(5);
    s.actions();
    // Input keeps it alive.
    s.advance(Duration::from_millis(900));
    s.input(Input::Activity { conn });
    assert_eq!(s.fire(), Duration::from_secs(1));
    assert!(matches!(s.actions()[..], [Action::Probe { conn: c }] if c == conn));
    // The echo's answer is input too.
    s.advance(Duration::from_millis(300));
    s.input(Input::Activity { conn });
    assert!(s.actions().is_empty());
    // Frozen: nothing more arrives.
    let frozen_at = s.now;
    assert_eq!(s.fire(), Duration::from_secs(1));
    assert!(matches!(s.actions()[..], [Action::Probe { .. }]));
    assert_eq!(s.fire(), Duration::from_secs(1));
    assert_eq!(s.now - frozen_at, Duration::from_secs(2));
    let actions = s.actions();
    let Some(Action::Close { error, .. }) = actions.first() else {
        panic!("{actions:?}")
    };
    assert!(matches!(**error, LinkError::Unresponsive(d) if d == Duration::from_secs(2)));
    assert!(matches!(
        actions.last(),
        Some(Action::Connect { remote: 1, .. })
    ));
}

#[test]
fn standalone_servers_are_not_probed_by_the_machine() {
    let mut s = Sim::new(config(1));
    let (conn, _) = s.connecting();
    s.input(Input::Checked {
        conn,
        server_db: true,
        status: Some(DatabaseStatus {
            model: "standalone".into(),
            connected: true,
            leader: true,
            index: None,
        }),
    });
    s.input(Input::Subscribed {
        conn,
        resumed: false,
        applied: ApplyStats::default(),
    });
    s.actions();
    assert_eq!(s.m.poll_timeout(), None);
    let mut cfg = config(1);
    cfg.raft_probe = None;
    let mut s = Sim::new(cfg);
    s.bring_up(1);
    assert_eq!(s.m.poll_timeout(), None);
}

#[test]
fn a_member_that_accepts_but_never_answers_is_skipped_after_the_check_timeout() {
    let mut s = Sim::new(config(2));
    let (conn, _) = s.connecting();
    assert_eq!(s.fire(), Duration::from_secs(2));
    let actions = s.actions();
    assert!(matches!(
        actions.first(),
        Some(Action::Emit(ReplicaEvent::Refused { .. }))
    ));
    assert!(matches!(actions.get(1), Some(Action::Close { conn: c, .. }) if *c == conn));
    assert_eq!(
        refused(&actions),
        vec!["connecting and checking _Server took longer than 2s"]
    );
    // A late answer from the abandoned connection changes nothing.
    s.input(Input::Checked {
        conn,
        server_db: true,
        status: leader(1),
    });
    assert!(s.actions().is_empty());
    let (c1, remote) = s.connecting();
    assert_eq!(remote, 1);
    // A subscription that never completes hits the setup timeout, counted from the connect.
    s.input(Input::Checked {
        conn: c1,
        server_db: true,
        status: leader(1),
    });
    s.actions();
    assert_eq!(s.fire(), Duration::from_secs(10));
    assert_eq!(refused(&s.actions()), vec!["not synced within 10s"]);
}

#[test]
fn the_lock_is_taken_before_synced_and_lost_stolen_and_regained() {
    let mut cfg = config(2);
    cfg.lock = Some("ctl".into());
    let mut s = Sim::new(cfg);
    let (conn, _) = s.connecting();
    s.input(Input::Checked {
        conn,
        server_db: true,
        status: leader(1),
    });
    s.actions();
    s.input(Input::Subscribed {
        conn,
        resumed: true,
        applied: ApplyStats::default(),
    });
    assert!(matches!(s.actions()[..], [Action::RequestLock { conn: c }] if c == conn));
    // Someone else holds it: synced without it, waiting in the queue.
    s.input(Input::LockReply { conn, held: false });
    let actions = s.actions();
    assert!(!actions.iter().any(|a| matches!(a, Action::LockChanged(_))));
    assert!(actions.iter().any(|a| matches!(a, Action::Up { .. })));
    s.input(Input::Locked { conn });
    assert!(matches!(
        s.actions()[..],
        [Action::LockChanged(LockChange::Acquired)]
    ));
    // Stolen: lost, and back in the queue.
    s.input(Input::Stolen { conn });
    assert!(matches!(
        s.actions()[..],
        [
            Action::LockChanged(LockChange::Lost { stolen: true }),
            Action::RequestLock { .. }
        ]
    ));
    s.input(Input::LockReply { conn, held: true });
    assert!(matches!(
        s.actions()[..],
        [Action::LockChanged(LockChange::Acquired)]
    ));
    // The connection ends: the lock goes with it.
    s.input(failed(conn));
    assert!(
        s.actions()
            .iter()
            .any(|a| matches!(a, Action::LockChanged(LockChange::Lost { stolen: false })))
    );
}

#[test]
fn a_canceled_monitor_is_sent_again_and_reported() {
    let mut s = Sim::new(config(1));
    let (conn, _) = s.bring_up(1);
    s.actions();
    s.input(Input::MonitorCanceled { conn });
    assert!(matches!(s.actions()[..], [Action::Subscribe { .. }]));
    s.input(Input::Subscribed {
        conn,
        resumed: false,
        applied: ApplyStats::default(),
    });
    assert!(matches!(
        s.actions()[..],
        [Action::Emit(ReplicaEvent::Resubscribed { .. })]
    ));
}

#[test]
fn servers_without_server_db_are_used_as_they_are() {
    let mut s = Sim::new(config(1));
    let (conn, _) = s.connecting();
    s.input(Input::Checked {
        conn,
        server_db: false,
        status: None,
    });
    assert!(matches!(s.actions()[..], [Action::Subscribe { .. }]));
    // But a server whose _Server has no row for the database is refused.
    let mut s = Sim::new(config(1));
    let (_, actions) = s.check(None);
    assert_eq!(
        refused(&actions),
        vec!["the server has no database OVN_Northbound"]
    );
}
