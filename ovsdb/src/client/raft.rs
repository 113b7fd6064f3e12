//! Raft clusters: what the `_Server` database says about a database on the server a client
//! reached (model, connected, leader, index), and whether the client may use that server.
//!
//! [`super::ReplicaClient`] monitors `_Server`'s `Database` table on every connection and
//! checks each update with [`judge`]: in leader-only mode a follower is refused, a member cut
//! off from its cluster is always refused, and so is a server whose log index is behind what
//! the client has already seen (it would show the client an older database).

use crate::Datum;
use crate::monitor::{MonitorMethod, MonitorRequest, TableMonitor};
use crate::replica::Snapshot;

/// The `_Server` database.
pub const SERVER_DB: &str = "_Server";
/// The monitor id the replica client uses for `_Server`.
pub const SERVER_MONITOR_ID: &str = "_Server";

/// The monitor of `_Server`'s `Database` table that [`judge`] needs.
#[must_use]
pub fn server_monitor() -> MonitorRequest {
    MonitorRequest::new(SERVER_DB, MonitorMethod::MonitorCond)
        .with_id(SERVER_MONITOR_ID)
        .with_table(
            "Database",
            TableMonitor::all().with_columns(["name", "model", "connected", "leader", "index"]),
        )
}

/// One database as `_Server` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseStatus {
    /// `standalone`, `clustered`, `relay` or `active-backup`.
    pub model: String,
    /// Whether the server is connected to its cluster (always true when not clustered).
    pub connected: bool,
    /// Whether the server is the cluster's leader (always true when not clustered).
    pub leader: bool,
    /// The last log index the server applied (clustered only).
    pub index: Option<i64>,
}

/// The status of `db` in a replica of `_Server`, if it has a row for it.
#[must_use]
pub fn database_status(server: &Snapshot, db: &str) -> Option<DatabaseStatus> {
    let table = server.table("Database")?;
    let row = table
        .rows()
        .find(|r| r.get("name").and_then(atom_str) == Some(db))?;
    let flag = |c: &str| {
        row.get(c)
            .and_then(Datum::as_atom)
            .and_then(crate::Atom::as_bool)
            .unwrap_or(false)
    };
    Some(DatabaseStatus {
        model: row
            .get("model")
            .and_then(atom_str)
            .unwrap_or_default()
            .to_owned(),
        connected: flag("connected"),
        leader: flag("leader"),
        index: row
            .get("index")
            .and_then(|d| d.atoms().next())
            .and_then(crate::Atom::as_integer),
    })
}

fn atom_str(d: &Datum) -> Option<&str> {
    d.as_atom().and_then(crate::Atom::as_str)
}

/// Why a server may not be used for a database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// `_Server` has no row for the database.
    #[error("the server has no database {db}")]
    NoDatabase {
        /// The database.
        db: String,
    },
    /// The server is a cluster member that lost contact with its cluster.
    #[error("the server is not connected to its cluster")]
    NotConnected,
    /// Leader-only mode, and the server is a follower.
    #[error("the server is not the cluster leader")]
    NotLeader,
    /// The server's log is behind what the client has already seen.
    #[error("the server's log index {index} is behind index {seen} already seen")]
    Stale {
        /// The server's index.
        index: i64,
        /// The highest index the client saw before.
        seen: i64,
    },
}

/// Whether a server with `status` for `db` may be used; `seen` is the highest log index seen
/// so far (raised by the caller after an accepted status).
pub fn judge(
    db: &str,
    status: Option<&DatabaseStatus>,
    leader_only: bool,
    seen: Option<i64>,
) -> Result<(), Rejection> {
    let Some(s) = status else {
        return Err(Rejection::NoDatabase { db: db.to_owned() });
    };
    if s.model != "clustered" {
        return Ok(());
    }
    if !s.connected {
        return Err(Rejection::NotConnected);
    }
    if leader_only && !s.leader {
        return Err(Rejection::NotLeader);
    }
    if let (Some(index), Some(seen)) = (s.index, seen)
        && index < seen
    {
        return Err(Rejection::Stale { index, seen });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(connected: bool, leader: bool, index: Option<i64>) -> DatabaseStatus {
        DatabaseStatus {
            model: "clustered".into(),
            connected,
            leader,
            index,
        }
    }

    #[test]
    fn judges_cluster_members() {
        let db = "OVN_Northbound";
        assert_eq!(
            judge(db, None, true, None),
            Err(Rejection::NoDatabase { db: db.into() })
        );
        let standalone = DatabaseStatus {
            model: "standalone".into(),
            connected: true,
            leader: true,
            index: None,
        };
        assert_eq!(judge(db, Some(&standalone), true, Some(9)), Ok(()));
        assert_eq!(
            judge(db, Some(&status(false, true, Some(5))), false, None),
            Err(Rejection::NotConnected)
        );
        let follower = status(true, false, Some(5));
        assert_eq!(
            judge(db, Some(&follower), true, None),
            Err(Rejection::NotLeader)
        );
        assert_eq!(judge(db, Some(&follower), false, Some(5)), Ok(()));
        assert_eq!(
            judge(db, Some(&status(true, true, Some(4))), true, Some(5)),
            Err(Rejection::Stale { index: 4, seen: 5 })
        );
    }
}
