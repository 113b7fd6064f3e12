//! A clustered (Raft) OVN_Northbound database on loopback.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cmd;
use crate::daemon::appctl;
use crate::error::{Error, Result};
use crate::lab::{Lab, LabShared, free_port, schemas};
use crate::ovsdb_server::{OvsdbServer, OvsdbServerOptions};

/// The Raft role of one member, as `cluster/status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaftRole {
    /// The member that takes writes.
    Leader,
    /// A member that follows the leader.
    Follower,
    /// A member asking for votes.
    Candidate,
}

/// One member of an [`NbCluster`].
#[derive(Debug)]
pub struct ClusterMember {
    server: OvsdbServer,
    raft_port: u16,
}

impl ClusterMember {
    /// The member's ovsdb-server.
    pub fn server(&self) -> &OvsdbServer {
        &self.server
    }

    /// The Raft address (`tcp:127.0.0.1:<port>`) the members talk to each other on.
    pub fn raft_address(&self) -> String {
        format!("tcp:127.0.0.1:{}", self.raft_port)
    }
}

/// A 3-member (or larger) Raft cluster of OVN_Northbound, each member on its own unix socket and
/// TCP port of 127.0.0.1.
#[derive(Debug)]
pub struct NbCluster {
    members: Vec<ClusterMember>,
    dir: PathBuf,
    started_in: Duration,
    _lab: Arc<LabShared>,
}

/// The database name inside the cluster.
const DB: &str = "OVN_Northbound";

impl Lab {
    /// Starts a Raft NB cluster of `size` members (at least 1) and waits until it has a leader
    /// and every member has joined.
    pub fn start_nb_cluster(&self, size: usize) -> Result<NbCluster> {
        if size == 0 {
            return Err(Error::Invalid("a cluster needs at least one member".into()));
        }
        let start = Instant::now();
        let dir = self.shared.subdir("nbcluster")?;
        let raft_ports = (0..size).map(|_| free_port()).collect::<Result<Vec<_>>>()?;
        let mut members = Vec::with_capacity(size);
        for (i, port) in raft_ports.iter().enumerate() {
            let name = format!("nb{}", i + 1);
            let db = dir.join(format!("{name}.db"));
            let address = format!("tcp:127.0.0.1:{port}");
            let mut create = cmd::in_dir("ovsdb-tool", &dir);
            if i == 0 {
                create
                    .arg("create-cluster")
                    .arg(&db)
                    .arg(schemas::NB)
                    .arg(&address);
            } else {
                let first = format!("tcp:127.0.0.1:{}", raft_ports[0]);
                create
                    .arg("join-cluster")
                    .arg(&db)
                    .arg(DB)
                    .arg(&address)
                    .arg(first);
            }
            cmd::output(&mut create)?;
            let options = OvsdbServerOptions::new(schemas::NB)
                .with_name(&name)
                .with_tcp();
            let server = OvsdbServer::start_on_db(&self.shared, &dir, options, db, None)?;
            members.push(ClusterMember {
                server,
                raft_port: *port,
            });
        }
        let mut cluster = NbCluster {
            members,
            dir,
            started_in: Duration::ZERO,
            _lab: self.shared.clone(),
        };
        cluster.wait_formed(Duration::from_secs(20))?;
        cluster.started_in = start.elapsed();
        Ok(cluster)
    }
}

impl NbCluster {
    /// The members, in the order they were created.
    pub fn members(&self) -> &[ClusterMember] {
        &self.members
    }

    /// Member `i` (0-based).
    pub fn member(&self, i: usize) -> Result<&ClusterMember> {
        self.members
            .get(i)
            .ok_or_else(|| Error::Invalid(format!("the cluster has no member {i}")))
    }

    fn member_mut(&mut self, i: usize) -> Result<&mut ClusterMember> {
        self.members
            .get_mut(i)
            .ok_or_else(|| Error::Invalid(format!("the cluster has no member {i}")))
    }

    /// The unix remotes of all members, joined with commas (`unix:a,unix:b,unix:c`).
    pub fn unix_remotes(&self) -> String {
        self.members
            .iter()
            .map(|m| m.server.unix_remote())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The TCP remotes of all members, joined with commas.
    pub fn tcp_remotes(&self) -> String {
        self.members
            .iter()
            .filter_map(|m| m.server.tcp_remote())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// How long the cluster took to form.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// The role member `i` reports, or `None` if it is not running or not answering.
    pub fn role(&self, i: usize) -> Result<Option<RaftRole>> {
        let member = self.member(i)?;
        if member.server.pid().is_none() {
            return Ok(None);
        }
        let status = match appctl(
            &self.dir,
            &member.server.ctl_path(),
            &["--timeout=2", "cluster/status", DB],
        ) {
            Ok(status) => status,
            Err(_) => return Ok(None),
        };
        let role = status.lines().find_map(|l| l.trim().strip_prefix("Role: "));
        Ok(match role {
            Some("leader") => Some(RaftRole::Leader),
            Some("follower") => Some(RaftRole::Follower),
            Some("candidate") => Some(RaftRole::Candidate),
            _ => None,
        })
    }

    /// The index of the member that is leader now, if any.
    pub fn current_leader(&self) -> Option<usize> {
        (0..self.members.len()).find(|&i| matches!(self.role(i), Ok(Some(RaftRole::Leader))))
    }

    /// Waits until some running member is leader and returns its index.
    pub fn wait_leader(&self, timeout: Duration) -> Result<usize> {
        cmd::wait_for(
            || "a Raft leader".to_string(),
            timeout,
            || self.current_leader(),
        )
    }

    fn wait_formed(&self, timeout: Duration) -> Result<()> {
        self.wait_leader(timeout)?;
        for i in 0..self.members.len() {
            cmd::wait_for(
                || format!("member {i} to join the cluster"),
                timeout,
                || self.role(i).ok().flatten(),
            )?;
        }
        Ok(())
    }

    /// Kills member `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) -> Result<()> {
        self.member_mut(i)?.server.kill()
    }

    /// Freezes member `i` with SIGSTOP (it keeps its sockets but answers nothing).
    pub fn pause(&self, i: usize) -> Result<()> {
        self.member(i)?.server.pause()
    }

    /// Thaws member `i` with SIGCONT.
    pub fn resume(&self, i: usize) -> Result<()> {
        self.member(i)?.server.resume()
    }

    /// Restarts a killed or stopped member `i` on its database; it rejoins the cluster.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        self.member_mut(i)?.server.restart()
    }

    /// The directory holding the members' databases, sockets and logs.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}
