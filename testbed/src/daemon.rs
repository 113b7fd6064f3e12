//! Daemons started with `--detach --pidfile` and stopped by PID.
//!
//! A daemon is only ever signalled after checking that the PID in its pidfile still belongs to
//! it: the process's command line must carry `--pidfile=<that file>`. Nothing is ever killed by
//! name.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cmd;
use crate::error::{Error, Result};

/// How long a daemon gets to exit after SIGTERM before it is sent SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(5);

/// A detached OVS/OVN daemon, known by its pidfile.
#[derive(Debug)]
pub(crate) struct Daemon {
    name: String,
    pidfile: PathBuf,
    /// The command that starts it, kept for restarts.
    start: Vec<String>,
    env_dir: PathBuf,
    netns: Option<String>,
    pid: Option<i32>,
}

impl Daemon {
    /// Starts a daemon. `args` must not contain `--pidfile` or `--detach`: they are added here.
    /// The command runs inside network namespace `netns` when given, with the OVS/OVN run
    /// directories pointed at `dir`; the pidfile is `dir/<name>.pid`.
    pub(crate) fn start(
        name: &str,
        dir: &Path,
        netns: Option<&str>,
        program: &str,
        args: &[String],
    ) -> Result<Daemon> {
        let pidfile = dir.join(format!("{name}.pid"));
        let mut start = vec![program.to_string()];
        start.extend(args.iter().cloned());
        start.extend([
            "--detach".to_string(),
            "--no-chdir".to_string(),
            "-vconsole:off".to_string(),
            format!("--pidfile={}", pidfile.display()),
            format!("--log-file={}", dir.join(format!("{name}.log")).display()),
        ]);
        let mut daemon = Daemon {
            name: name.to_string(),
            pidfile,
            start,
            env_dir: dir.to_path_buf(),
            netns: netns.map(str::to_string),
            pid: None,
        };
        daemon.spawn()?;
        Ok(daemon)
    }

    fn spawn(&mut self) -> Result<()> {
        let mut command = match &self.netns {
            Some(ns) => {
                let mut c = cmd::in_dir("ip", &self.env_dir);
                c.args(["netns", "exec", ns]);
                c.args(&self.start);
                c
            }
            None => {
                let mut c = cmd::in_dir(&self.start[0], &self.env_dir);
                c.args(&self.start[1..]);
                c
            }
        };
        // With --detach the parent returns once the daemon has initialised and written its
        // pidfile.
        cmd::output(&mut command)?;
        self.pid = Some(read_pid(&self.name, &self.pidfile)?);
        Ok(())
    }

    /// The PID, if the process still exists, is not a zombie and is still this daemon.
    pub(crate) fn live_pid(&self) -> Option<i32> {
        let pid = self.pid?;
        (is_alive(pid) && owns_pidfile(pid, &self.pidfile)).then_some(pid)
    }

    /// Whether the daemon is running.
    pub(crate) fn is_running(&self) -> bool {
        self.live_pid().is_some()
    }

    /// Sends `signal` after checking the PID still belongs to this daemon.
    pub(crate) fn signal(&self, signal: Signal) -> Result<()> {
        let pid = self.live_pid().ok_or_else(|| Error::DaemonGone {
            name: self.name.clone(),
            pidfile: self.pidfile.clone(),
        })?;
        kill(Pid::from_raw(pid), signal).map_err(|e| {
            Error::io(
                format!("sending {signal} to {} ({pid})", self.name),
                e.into(),
            )
        })
    }

    /// Kills the daemon with SIGKILL and waits until it is gone.
    pub(crate) fn kill(&mut self) -> Result<()> {
        if let Some(pid) = self.live_pid() {
            // A stopped process still dies of SIGKILL.
            self.signal(Signal::SIGKILL)?;
            wait_dead(pid, TERM_GRACE);
        }
        self.pid = None;
        Ok(())
    }

    /// Stops the daemon: SIGCONT (in case it was stopped), SIGTERM, then SIGKILL after a grace
    /// period. Does nothing if it is not running.
    pub(crate) fn stop(&mut self) {
        if let Some(pid) = self.live_pid() {
            let _ = self.signal(Signal::SIGCONT);
            let _ = self.signal(Signal::SIGTERM);
            if !wait_dead(pid, TERM_GRACE) && owns_pidfile(pid, &self.pidfile) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                wait_dead(pid, TERM_GRACE);
            }
        }
        self.pid = None;
    }

    /// Starts the daemon again with the same command line. It must not be running.
    pub(crate) fn restart(&mut self) -> Result<()> {
        if self.is_running() {
            return Err(Error::Invalid(format!(
                "daemon {} is still running",
                self.name
            )));
        }
        let _ = fs::remove_file(&self.pidfile);
        self.spawn()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_pid(name: &str, pidfile: &Path) -> Result<i32> {
    let text = fs::read_to_string(pidfile).map_err(|e| {
        Error::io(
            format!("reading pidfile of {name}: {}", pidfile.display()),
            e,
        )
    })?;
    text.trim().parse().map_err(|_| Error::Parse {
        what: format!("pidfile {}", pidfile.display()),
        output: text.clone(),
    })
}

/// Whether `pid` exists and is not a zombie (this machine's PID 1 reaps detached daemons late,
/// so a zombie counts as dead).
pub(crate) fn is_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Whether process `pid` was started with `--pidfile=<pidfile>`.
pub(crate) fn owns_pidfile(pid: i32, pidfile: &Path) -> bool {
    let wanted = format!("--pidfile={}", pidfile.display());
    has_arg(pid, wanted.as_bytes())
}

/// Whether process `pid`'s command line has an argument equal to `arg`.
pub(crate) fn has_arg(pid: i32, arg: &[u8]) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| raw.split(|b| *b == 0).any(|a| a == arg))
        .unwrap_or(false)
}

/// The PID a pidfile names, if that process is alive and is the one the pidfile was written
/// for: started with `--pidfile=<pidfile>` (the detached daemons), or carrying the argument
/// on the pidfile's second line (processes the lab started in the foreground, which write no
/// pidfile themselves: [`LabProcess`](crate::LabProcess), containerd).
pub(crate) fn pidfile_owner(pidfile: &Path) -> Option<i32> {
    let text = fs::read_to_string(pidfile).ok()?;
    let mut lines = text.lines();
    let pid: i32 = lines.next()?.trim().parse().ok()?;
    if pid <= 1 || !is_alive(pid) {
        return None;
    }
    let owner = lines.next().map(str::trim).filter(|l| !l.is_empty());
    let owned = owns_pidfile(pid, pidfile) || owner.is_some_and(|o| has_arg(pid, o.as_bytes()));
    owned.then_some(pid)
}

fn wait_dead(pid: i32, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if !is_alive(pid) {
            return true;
        }
        thread::sleep(Duration::from_millis(5));
    }
    !is_alive(pid)
}

/// Runs `ovs-appctl -t <ctl> <args>` (also works for OVN daemons).
pub(crate) fn appctl(dir: &Path, target: &Path, args: &[&str]) -> Result<String> {
    let mut command = cmd::in_dir("ovs-appctl", dir);
    command.arg("-t").arg(target).args(args);
    cmd::output(&mut command)
}
