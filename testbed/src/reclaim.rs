//! Cleaning up a lab whose owner died without dropping it (a crashed or SIGKILLed program):
//! everything is found from the lab directory and the lab's name prefix.

use std::fs;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cmd;
use crate::containerd::{CREATED_DIRS, SYSTEM_DIRS, remove_leftovers};
use crate::cri::CriClient;
use crate::daemon::{is_alive, pidfile_owner};
use crate::error::{Error, Result};
use crate::lab::namespaces_with_prefix;
use crate::leftovers::mounts_under;

/// How long the processes of a reclaimed lab get after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(10);

/// What [`reclaim`] found and removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// Processes stopped by their pidfiles: (pidfile, PID).
    pub processes: Vec<(PathBuf, i32)>,
    /// Pod sandboxes removed through a still running containerd's CRI.
    pub sandboxes: usize,
    /// Processes left by a containerd (pods, shims) that were killed.
    pub leftovers: usize,
    /// Network namespaces deleted.
    pub namespaces: Vec<String>,
    /// Whether the lab directory existed and was removed.
    pub dir_removed: bool,
}

/// The lab id of lab directory `dir` (`.../ovk<id>`), if its name has that shape.
pub fn lab_id_of(dir: &Path) -> Option<String> {
    let id = dir.file_name()?.to_str()?.strip_prefix("ovk")?;
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric())).then(|| id.to_owned())
}

/// Removes everything of the lab whose directory is `dir` (`.../ovk<id>`, as
/// [`Lab::dir`](crate::Lab::dir) gives it), for when the program that owned the lab died
/// without dropping it. What a dropped lab does, done from what is on disk:
///
/// 1. every containerd of the lab that still runs removes its pods through CRI (the CNI
///    plugin sees DEL while the node agents still run);
/// 2. every process named by a pidfile (`*.pid`) under `dir` is stopped, after checking
///    that the PID is still that process (its command line carries `--pidfile=<file>`, or
///    the argument on the pidfile's second line): SIGCONT and SIGTERM, then SIGKILL after a
///    grace period;
/// 3. what each containerd left is removed (pod processes in its cgroups, shims of its
///    socket, mounts, network namespace files, cgroups, the system directories it created
///    when empty, and stale shim sockets there);
/// 4. every network namespace `ovk<id>-*` is deleted, with its `/etc/netns` directory;
/// 5. `dir` is removed.
///
/// Nothing is killed by name. A missing `dir` is not an error (the namespaces are still
/// looked for).
pub fn reclaim(dir: &Path) -> Result<Reclaimed> {
    let id = lab_id_of(dir).ok_or_else(|| {
        Error::Invalid(format!(
            "{} is not a lab directory (its name is not ovk<id>)",
            dir.display()
        ))
    })?;
    let mut out = Reclaimed::default();
    let containerds = containerd_dirs(dir);
    for c in &containerds {
        out.sandboxes += remove_sandboxes(c);
    }
    out.processes = stop_pidfiles(dir);
    for c in &containerds {
        out.leftovers +=
            remove_leftovers(c, &c.join("run/containerd.sock"), &cgroup_parent(&id, c));
        remove_created_dirs(c);
    }
    for mount in mounts_under(dir) {
        let _ = nix::mount::umount2(&mount, nix::mount::MntFlags::MNT_DETACH);
    }
    for name in namespaces_with_prefix(&format!("ovk{id}-"))? {
        let _ = cmd::raw_output(Command::new("ip").args(["netns", "del", &name]));
        let _ = fs::remove_dir_all(Path::new("/etc/netns").join(&name));
        out.namespaces.push(name);
    }
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(|e| Error::io(format!("removing {}", dir.display()), e))?;
        out.dir_removed = true;
    }
    Ok(out)
}

/// The containerd directories of a lab: `c<index>` holding a containerd config.
fn containerd_dirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix('c'))
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
                && p.join("etc/containerd.toml").is_file()
        })
        .collect();
    out.sort();
    out
}

/// The pod cgroup parent of the containerd in `c` (`/ovk<id>-n<index>`).
fn cgroup_parent(id: &str, c: &Path) -> String {
    let index = c
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix('c'))
        .unwrap_or_default();
    format!("/ovk{id}-n{index}")
}

/// Removes every pod sandbox through the CRI of the containerd in `c`, if it runs.
fn remove_sandboxes(c: &Path) -> usize {
    if pidfile_owner(&c.join("containerd.pid")).is_none() {
        return 0;
    }
    let Ok(cri) = CriClient::connect(&c.join("run/containerd.sock")) else {
        return 0;
    };
    let cri = cri.with_timeout(Duration::from_secs(20));
    let Ok(sandboxes) = cri.list_pod_sandboxes() else {
        return 0;
    };
    sandboxes
        .iter()
        .filter(|s| cri.stop_pod_sandbox(&s.id).is_ok() && cri.remove_pod_sandbox(&s.id).is_ok())
        .count()
}

/// Every `*.pid` file under `dir`.
fn pidfiles(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                // containerd's root and state hold image layers and pod files, no pidfiles.
                if !(path.ends_with("root") || path.ends_with("state")) {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "pid") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Stops the live process of every pidfile under `dir`.
fn stop_pidfiles(dir: &Path) -> Vec<(PathBuf, i32)> {
    let live: Vec<(PathBuf, i32)> = pidfiles(dir)
        .into_iter()
        .filter_map(|f| pidfile_owner(&f).map(|pid| (f, pid)))
        .collect();
    for (_, pid) in &live {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGCONT);
        let _ = kill(Pid::from_raw(*pid), Signal::SIGTERM);
    }
    let start = Instant::now();
    while start.elapsed() < TERM_GRACE && live.iter().any(|(_, pid)| is_alive(*pid)) {
        thread::sleep(Duration::from_millis(10));
    }
    for (file, pid) in &live {
        if pidfile_owner(file) == Some(*pid) {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
    }
    let start = Instant::now();
    while start.elapsed() < TERM_GRACE && live.iter().any(|(_, pid)| is_alive(*pid)) {
        thread::sleep(Duration::from_millis(10));
    }
    live
}

/// Removes the system directories the containerd in `c` created, when they hold nothing but
/// stale sockets (no process listens on them any more).
fn remove_created_dirs(c: &Path) {
    let listed = fs::read_to_string(c.join(CREATED_DIRS)).unwrap_or_default();
    for dir in listed.lines().map(Path::new) {
        if !SYSTEM_DIRS.iter().any(|d| Path::new(d) == dir) {
            continue;
        }
        if let Ok(entries) = fs::read_dir(dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                let is_socket = entry
                    .file_type()
                    .is_ok_and(|t| std::os::unix::fs::FileTypeExt::is_socket(&t));
                if is_socket && UnixStream::connect(&path).is_err() {
                    let _ = fs::remove_file(&path);
                }
            }
        }
        let _ = fs::remove_dir(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lab_directory_is_reclaimed() {
        assert_eq!(lab_id_of(Path::new("/tmp/ovkab1C2")), Some("ab1C2".into()));
        assert_eq!(lab_id_of(Path::new("/tmp/ovk")), None);
        assert_eq!(lab_id_of(Path::new("/home/user")), None);
        assert_eq!(lab_id_of(Path::new("/tmp/ovk..")), None);
        assert!(reclaim(Path::new("/etc")).is_err());
    }

    #[test]
    fn pidfiles_are_found_below_the_lab_but_not_in_containerd_state() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["central", "node1", "c1/state", "c1/root"] {
            fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        for f in [
            "central/nb.pid",
            "node1/ovs-vswitchd.pid",
            "c1/containerd.pid",
        ] {
            fs::write(dir.path().join(f), "1\n").unwrap();
        }
        fs::write(dir.path().join("c1/state/x.pid"), "1\n").unwrap();
        let found: Vec<String> = pidfiles(dir.path())
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(
            found,
            [
                "c1/containerd.pid",
                "central/nb.pid",
                "node1/ovs-vswitchd.pid"
            ]
        );
    }
}
