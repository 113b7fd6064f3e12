//! Running the OVN/OVS command-line tools.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Renders a command line for error messages.
pub(crate) fn show(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Runs `command`, failing with its stderr unless it exits 0; returns stdout.
pub(crate) fn output(command: &mut Command) -> Result<String> {
    let out = raw_output(command)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(failed(command, &out))
    }
}

/// Runs `command` and returns its output whatever its exit status.
pub(crate) fn raw_output(command: &mut Command) -> Result<Output> {
    command
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            command: show(command),
            source,
        })
}

pub(crate) fn failed(command: &Command, out: &Output) -> Error {
    Error::Command {
        command: show(command),
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    }
}

/// A command with the OVS/OVN run, log and db directories pointed at `dir`, so that daemons and
/// their control tools never touch the system's `/var/run/openvswitch`.
pub(crate) fn in_dir(program: impl AsRef<OsStr>, dir: &Path) -> Command {
    let mut command = Command::new(program);
    for var in [
        "OVS_RUNDIR",
        "OVS_LOGDIR",
        "OVS_DBDIR",
        "OVN_RUNDIR",
        "OVN_LOGDIR",
        "OVN_DBDIR",
    ] {
        command.env(var, dir);
    }
    command
}

/// Polls `check` every 10 ms until it returns `Some`, or fails after `timeout`.
pub(crate) fn wait_for<T>(
    what: impl FnOnce() -> String,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return Ok(value);
        }
        if start.elapsed() >= timeout {
            return Err(Error::Timeout {
                what: what(),
                waited: timeout,
            });
        }
        thread::sleep(Duration::from_millis(10));
    }
}
