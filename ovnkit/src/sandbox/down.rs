//! `ovnkit sandbox down`: stops a running `up` (SIGTERM, and it tears everything down), or
//! cleans up after one that died, from its record: every process of the lab by its checked
//! pidfile, containerd's leftovers, the lab's namespaces and directory; then the state
//! directory.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::cluster::Progress;
use super::statedir::{Record, StateDir};

/// How long a running `up` gets to tear down after SIGTERM before it is killed.
const UP_GRACE: Duration = Duration::from_secs(180);

/// Removes what `record`'s lab left: its processes, namespaces and directory.
pub fn reclaim_record(state: &StateDir, record: &Record, progress: &Progress) -> Result<()> {
    let _ = state;
    let Some(dir) = &record.lab_dir else {
        return Ok(());
    };
    let reclaimed = ovn_testbed::reclaim(dir)
        .with_context(|| format!("cleaning up the lab in {}", dir.display()))?;
    if !reclaimed.processes.is_empty()
        || !reclaimed.namespaces.is_empty()
        || reclaimed.dir_removed
        || reclaimed.sandboxes > 0
    {
        progress.line(format!(
            "lab {}: stopped {} processes by their pidfiles, removed {} pods, killed {} leftover \
             processes, deleted {} namespaces{}",
            record.lab_id.as_deref().unwrap_or("?"),
            reclaimed.processes.len(),
            reclaimed.sandboxes,
            reclaimed.leftovers,
            reclaimed.namespaces.len(),
            if reclaimed.dir_removed {
                ", removed its directory"
            } else {
                ""
            }
        ));
    }
    Ok(())
}

/// Stops the sandbox of `state` and removes everything of it.
pub fn down(state: &StateDir) -> Result<()> {
    let progress = Progress::new();
    let Some(record) = state.record() else {
        if state.path().exists() {
            state.remove()?;
            progress.line(format!("removed {}", state.path().display()));
        } else {
            progress.line(format!("no sandbox in {}", state.path().display()));
        }
        return Ok(());
    };
    if record.up_running() {
        progress.line(format!(
            "stopping ovnkit sandbox up (PID {}); it removes its pods and stops its daemons",
            record.pid
        ));
        let _ = kill(Pid::from_raw(record.pid), Signal::SIGTERM);
        let start = Instant::now();
        while record.up_running() && start.elapsed() < UP_GRACE {
            std::thread::sleep(Duration::from_millis(100));
        }
        if record.up_running() {
            progress.line("it did not stop in time: killing it and cleaning up after it");
            let _ = kill(Pid::from_raw(record.pid), Signal::SIGKILL);
            while record.up_running() && start.elapsed() < UP_GRACE + Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    reclaim_record(state, &record, &progress)?;
    state.remove()?;
    progress.line("sandbox removed");
    Ok(())
}
