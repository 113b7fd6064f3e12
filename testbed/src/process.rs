//! Foreground processes the lab starts (programs that do not daemonize themselves), known by a
//! pidfile the lab writes, so that [`reclaim`](crate::reclaim) finds them after a crash.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cmd;
use crate::daemon::{has_arg, is_alive};
use crate::error::{Error, Result};

/// How long a process gets after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(10);

/// A process the lab started and keeps as a child, with a pidfile of two lines: its PID and
/// an argument of its command line that names it uniquely (a path inside the lab directory,
/// say). A PID is only signalled after checking that it is alive and that its command line
/// still carries that argument; nothing is killed by name.
///
/// Dropping it stops it: SIGTERM, then SIGKILL after a grace period; the child is reaped and
/// the pidfile removed. Put the pidfile inside the lab directory: [`reclaim`](crate::reclaim)
/// stops the processes of every pidfile there, for when the program that started them died
/// without dropping them.
#[derive(Debug)]
pub struct LabProcess {
    name: String,
    child: Option<Child>,
    pid: i32,
    pidfile: PathBuf,
    owner: String,
}

impl LabProcess {
    /// Spawns `command` and writes `pidfile`. `owner` must be one of the command's own
    /// arguments (for a command run through `nsenter ... -- program args`, one of `args`;
    /// `nsenter` execs the program, so the PID is the program's).
    pub fn spawn(name: &str, mut command: Command, pidfile: &Path, owner: &str) -> Result<Self> {
        if !command.get_args().any(|a| a == owner) {
            return Err(Error::Invalid(format!(
                "{name}: the owner argument {owner:?} is not an argument of `{}`",
                cmd::show(&command)
            )));
        }
        let child = command.spawn().map_err(|source| Error::Spawn {
            command: cmd::show(&command),
            source,
        })?;
        let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
        let mut process = LabProcess {
            name: name.to_owned(),
            child: Some(child),
            pid,
            pidfile: pidfile.to_owned(),
            owner: owner.to_owned(),
        };
        fs::write(pidfile, format!("{pid}\n{owner}\n"))
            .map_err(|e| Error::io(format!("writing {}", pidfile.display()), e))?;
        // Until the exec (through nsenter, say) the command line is not the program's yet.
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5)
            && process.has_exited().is_none()
            && !has_arg(pid, owner.as_bytes())
        {
            thread::sleep(Duration::from_millis(2));
        }
        Ok(process)
    }

    /// The name given at the start.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The pidfile.
    pub fn pidfile(&self) -> &Path {
        &self.pidfile
    }

    /// The exit status, once the process has exited (it is reaped then).
    pub fn has_exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Whether it runs and is still the process its pidfile names.
    pub fn is_running(&mut self) -> bool {
        self.has_exited().is_none()
            && self.child.is_some()
            && is_alive(self.pid)
            && has_arg(self.pid, self.owner.as_bytes())
    }

    /// SIGKILL (checked), then reaps it.
    pub fn kill(&mut self) {
        if self.is_running() {
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
        }
        self.reap();
    }

    /// SIGTERM, SIGKILL after a grace period (each checked), then reaps it.
    pub fn stop(&mut self) {
        if self.is_running() {
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGTERM);
            let start = Instant::now();
            while start.elapsed() < TERM_GRACE && self.is_running() {
                thread::sleep(Duration::from_millis(5));
            }
            if self.is_running() {
                let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
            }
        }
        self.reap();
    }

    fn reap(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
            let _ = fs::remove_file(&self.pidfile);
        }
    }
}

impl Drop for LabProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
