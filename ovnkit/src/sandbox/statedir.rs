//! The sandbox's state directory: a record of the running sandbox written before anything
//! starts (so that `down` can clean up after a crash of `up`), the last report, and the
//! default manifests for a user to edit.
//!
//! ```text
//! <dir>/sandbox.json     the record: who runs it, the lab's directory and id, where the
//!                        daemons serve their metrics
//! <dir>/report.json      the last report (what `status` shows)
//! <dir>/report.txt       the same as text
//! <dir>/manifests/       the default manifests, when no --manifests DIR was given
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::metrics::Targets;
use super::report::Report;

/// The default state directory.
pub const DEFAULT_DIR: &str = "/run/ovnkit-sandbox";

/// What a running (or crashed) `up` recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The PID of `ovnkit sandbox up`.
    pub pid: i32,
    /// Its start time (clock ticks after boot, `/proc/<pid>/stat` field 22): with the PID,
    /// what tells that a process is still that `up`.
    pub started: u64,
    /// The lab's directory, once made.
    pub lab_dir: Option<PathBuf>,
    /// The lab's id.
    pub lab_id: Option<String>,
    /// The manifests directory applied.
    pub manifests: PathBuf,
    /// Whether `up` stays in the foreground after its checks.
    pub keep: bool,
    /// What `up` is doing: `starting`, `creating pods`, `checking`, `running`.
    pub phase: String,
    /// Where the controller and the agents serve their metrics, once they run.
    #[serde(default)]
    pub metrics: Option<Targets>,
}

impl Record {
    /// Whether the `up` that wrote this still runs.
    pub fn up_running(&self) -> bool {
        self.pid > 1 && start_time(self.pid) == Some(self.started)
    }
}

/// The start time of process `pid` (field 22 of `/proc/<pid>/stat`), if it runs and is not a
/// zombie.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (the state).
    if matches!(fields.first(), Some(&"Z" | &"X")) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// The resident memory of process `pid` in KiB (`VmRSS`).
pub fn rss_kib(pid: i32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// A state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

impl StateDir {
    /// The state directory at `dir` (not created).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StateDir { dir: dir.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Creates the directory.
    pub fn create(&self) -> Result<()> {
        fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))
    }

    /// Where the default manifests go.
    pub fn manifests(&self) -> PathBuf {
        self.dir.join("manifests")
    }

    /// The record, if there is one.
    pub fn record(&self) -> Option<Record> {
        let bytes = fs::read(self.dir.join("sandbox.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Writes the record.
    pub fn write_record(&self, record: &Record) -> Result<()> {
        write_atomic(
            &self.dir.join("sandbox.json"),
            &serde_json::to_vec_pretty(record)?,
        )
    }

    /// The last report, if there is one.
    pub fn report(&self) -> Option<Report> {
        let bytes = fs::read(self.dir.join("report.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Writes the report (JSON and text).
    pub fn write_report(&self, report: &Report) -> Result<()> {
        write_atomic(
            &self.dir.join("report.json"),
            &serde_json::to_vec_pretty(report)?,
        )?;
        write_atomic(&self.dir.join("report.txt"), report.render().as_bytes())
    }

    /// Removes the directory.
    pub fn remove(&self) -> Result<()> {
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {}", self.dir.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_start_time_and_a_record_of_it_is_running() {
        let pid = i32::try_from(std::process::id()).unwrap();
        let started = start_time(pid).expect("a start time");
        let record = Record {
            pid,
            started,
            ..Record::default()
        };
        assert!(record.up_running());
        let other = Record {
            started: started + 1,
            ..record.clone()
        };
        assert!(!other.up_running(), "same PID, another process");
        assert!(rss_kib(pid) > 0);
    }

    #[test]
    fn the_record_round_trips_and_remove_takes_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::new(tmp.path().join("s"));
        dir.create().unwrap();
        assert_eq!(dir.record(), None);
        let record = Record {
            pid: 42,
            lab_dir: Some("/tmp/ovkabcde".into()),
            phase: "starting".into(),
            ..Record::default()
        };
        dir.write_record(&record).unwrap();
        assert_eq!(dir.record(), Some(record));
        dir.remove().unwrap();
        assert!(!dir.path().exists());
        dir.remove().unwrap();
    }
}
