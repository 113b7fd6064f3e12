//! Standalone `ovsdb-server` processes and the `ovs-pki` certificates to reach them over TLS.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::cmd;
use crate::daemon::Daemon;
use crate::error::{Error, Result};
use crate::lab::{Lab, LabShared, free_port};

/// The files a TLS endpoint needs (as `ovs-pki` makes them).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM private key.
    pub key: PathBuf,
    /// PEM certificate signed by the CA.
    pub cert: PathBuf,
    /// PEM CA certificate the peer is checked against.
    pub ca_cert: PathBuf,
}

/// How to start an [`OvsdbServer`]: a schema, and which remotes to listen on besides its unix
/// socket.
#[derive(Debug, Clone)]
pub struct OvsdbServerOptions {
    schema: PathBuf,
    name: String,
    tcp: bool,
    ssl: Option<TlsFiles>,
}

impl OvsdbServerOptions {
    /// A server for `schema` (for example [`schemas::NB`](crate::schemas::NB)) on a unix
    /// socket only.
    pub fn new(schema: impl Into<PathBuf>) -> Self {
        OvsdbServerOptions {
            schema: schema.into(),
            name: "db".into(),
            tcp: false,
            ssl: None,
        }
    }

    /// Also listen on a free TCP port of 127.0.0.1.
    pub fn with_tcp(mut self) -> Self {
        self.tcp = true;
        self
    }

    /// Also listen for TLS (`pssl:`) on a free port of 127.0.0.1, with these server files.
    pub fn with_ssl(mut self, files: TlsFiles) -> Self {
        self.ssl = Some(files);
        self
    }

    /// The file stem of the server's database, socket, log and pidfile (default `db`). Must be
    /// unique within a lab.
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }
}

/// A standalone `ovsdb-server` with one database, stopped by PID when dropped.
#[derive(Debug)]
pub struct OvsdbServer {
    daemon: Daemon,
    dir: PathBuf,
    name: String,
    db: PathBuf,
    tcp_port: Option<u16>,
    ssl_port: Option<u16>,
    started_in: Duration,
    _lab: Arc<LabShared>,
}

impl Lab {
    /// Starts a standalone `ovsdb-server` with a fresh database.
    pub fn start_ovsdb_server(&self, options: OvsdbServerOptions) -> Result<OvsdbServer> {
        let dir = self.shared.subdir(&format!("ovsdb-{}", options.name))?;
        OvsdbServer::start(&self.shared, &dir, options, None)
    }

    /// Makes a fresh `ovs-pki` certificate authority in the lab directory under `name`.
    pub fn pki(&self, name: &str) -> Result<Pki> {
        let dir = self.shared.subdir(&format!("pki-{name}"))?;
        let mut init = cmd::in_dir("ovs-pki", &dir);
        init.arg(format!("--dir={}", dir.join("ca").display()))
            .arg(format!("--log={}", dir.join("ovs-pki.log").display()))
            .args(["--batch", "init"]);
        cmd::output(&mut init)?;
        Ok(Pki { dir })
    }
}

impl OvsdbServer {
    pub(crate) fn start(
        lab: &Arc<LabShared>,
        dir: &Path,
        options: OvsdbServerOptions,
        netns: Option<&str>,
    ) -> Result<OvsdbServer> {
        let start = Instant::now();
        let db = dir.join(format!("{}.db", options.name));
        let _ = std::fs::remove_file(&db);
        cmd::output(
            cmd::in_dir("ovsdb-tool", dir)
                .arg("create")
                .arg(&db)
                .arg(&options.schema),
        )?;
        let mut server = Self::start_on_db(lab, dir, options, db, netns)?;
        server.started_in = start.elapsed();
        Ok(server)
    }

    /// Starts a server on an existing database file (for example a Raft member's).
    pub(crate) fn start_on_db(
        lab: &Arc<LabShared>,
        dir: &Path,
        options: OvsdbServerOptions,
        db: PathBuf,
        netns: Option<&str>,
    ) -> Result<OvsdbServer> {
        let start = Instant::now();
        let name = options.name.clone();
        let mut args = vec![
            db.display().to_string(),
            format!("--unixctl={}", dir.join(format!("{name}.ctl")).display()),
            format!(
                "--remote=punix:{}",
                dir.join(format!("{name}.sock")).display()
            ),
        ];
        let tcp_port = if options.tcp {
            Some(free_port()?)
        } else {
            None
        };
        if let Some(port) = tcp_port {
            args.push(format!("--remote=ptcp:{port}:127.0.0.1"));
        }
        let ssl_port = if options.ssl.is_some() {
            Some(free_port()?)
        } else {
            None
        };
        if let (Some(port), Some(files)) = (ssl_port, &options.ssl) {
            args.push(format!("--remote=pssl:{port}:127.0.0.1"));
            args.push(format!("--private-key={}", files.key.display()));
            args.push(format!("--certificate={}", files.cert.display()));
            args.push(format!("--ca-cert={}", files.ca_cert.display()));
        }
        let daemon = Daemon::start(&name, dir, netns, "ovsdb-server", &args)?;
        let server = OvsdbServer {
            daemon,
            dir: dir.to_path_buf(),
            name,
            db,
            tcp_port,
            ssl_port,
            started_in: Duration::ZERO,
            _lab: lab.clone(),
        };
        server.wait_ready()?;
        Ok(OvsdbServer {
            started_in: start.elapsed(),
            ..server
        })
    }

    /// Waits until the unix socket accepts connections.
    fn wait_ready(&self) -> Result<()> {
        let path = self.socket_path();
        cmd::wait_for(
            || format!("ovsdb-server {} to accept on {}", self.name, path.display()),
            Duration::from_secs(10),
            || std::os::unix::net::UnixStream::connect(&path).ok(),
        )
        .map(drop)
    }

    /// The unix socket's path.
    pub fn socket_path(&self) -> PathBuf {
        self.dir.join(format!("{}.sock", self.name))
    }

    /// `unix:<socket>`.
    pub fn unix_remote(&self) -> String {
        format!("unix:{}", self.socket_path().display())
    }

    /// `tcp:127.0.0.1:<port>` when started [`with_tcp`](OvsdbServerOptions::with_tcp).
    pub fn tcp_remote(&self) -> Option<String> {
        self.tcp_port.map(|p| format!("tcp:127.0.0.1:{p}"))
    }

    /// `ssl:127.0.0.1:<port>` when started [`with_ssl`](OvsdbServerOptions::with_ssl).
    pub fn ssl_remote(&self) -> Option<String> {
        self.ssl_port.map(|p| format!("ssl:127.0.0.1:{p}"))
    }

    /// The database file.
    pub fn db_path(&self) -> &Path {
        &self.db
    }

    /// The server's unixctl socket (for `ovs-appctl -t`).
    pub fn ctl_path(&self) -> PathBuf {
        self.dir.join(format!("{}.ctl", self.name))
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.name))
    }

    /// The server's PID while it runs.
    pub fn pid(&self) -> Option<i32> {
        self.daemon.live_pid()
    }

    /// How long the server took to create its database and start.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// Kills the server with SIGKILL (the database file stays).
    pub fn kill(&mut self) -> Result<()> {
        self.daemon.kill()
    }

    /// Stops the server cleanly (SIGTERM).
    pub fn stop(&mut self) {
        self.daemon.stop();
    }

    /// Freezes the server (SIGSTOP): its sockets stay open, it answers nothing.
    pub fn pause(&self) -> Result<()> {
        self.daemon.signal(Signal::SIGSTOP)
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) -> Result<()> {
        self.daemon.signal(Signal::SIGCONT)
    }

    /// Starts the server again on the same database and remotes.
    pub fn restart(&mut self) -> Result<()> {
        self.daemon.restart()?;
        self.wait_ready()
    }

    /// Runs `ovsdb-client <args> <this server's unix remote> <tail>`, returning its stdout.
    pub fn client(&self, args: &[&str], tail: &[&str]) -> Result<String> {
        let mut command = cmd::in_dir("ovsdb-client", &self.dir);
        command.args(args).arg(self.unix_remote()).args(tail);
        cmd::output(&mut command)
    }
}

/// A certificate authority made with `ovs-pki`, in the lab directory.
#[derive(Debug, Clone)]
pub struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// The CA certificate that `switch` certificates are signed with.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca/switchca/cacert.pem")
    }

    /// Makes and signs a key pair called `name`; returns the files of that endpoint with this
    /// CA as its trust anchor.
    pub fn sign(&self, name: &str) -> Result<TlsFiles> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(Error::Invalid(format!(
                "certificate name {name:?}: use [A-Za-z0-9-]"
            )));
        }
        let mut command = cmd::in_dir("ovs-pki", &self.dir);
        command
            .current_dir(&self.dir)
            .arg(format!("--dir={}", self.dir.join("ca").display()))
            .arg(format!("--log={}", self.dir.join("ovs-pki.log").display()))
            .args(["--batch", "--force", "req+sign", name, "switch"]);
        cmd::output(&mut command)?;
        Ok(TlsFiles {
            key: self.dir.join(format!("{name}-privkey.pem")),
            cert: self.dir.join(format!("{name}-cert.pem")),
            ca_cert: self.ca_cert(),
        })
    }
}
