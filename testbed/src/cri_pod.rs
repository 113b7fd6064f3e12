//! Pods run through CRI, and what their CRI calls cost.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::cmd;
use crate::containerd::Shared;
use crate::error::Result;
use crate::traffic::{self, PingStats};

/// How long the CRI calls of one pod took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PodTimings {
    /// `RunPodSandbox`: network namespace, CNI ADD, sandbox container.
    pub run_sandbox: Duration,
    /// `CreateContainer` of the app (zero without one).
    pub create_container: Duration,
    /// `StartContainer` of the app (zero without one).
    pub start_container: Duration,
}

/// A pod run through CRI: its sandbox (with its network namespace, set up by the CNI plugin)
/// and, usually, one app container.
///
/// Dropping it stops and removes the pod through CRI (the CNI plugin sees DEL), unless its
/// containerd has been dropped first, which removed it already.
#[derive(Debug)]
pub struct CriPod {
    pub(crate) name: String,
    pub(crate) full_name: String,
    pub(crate) sandbox_id: String,
    pub(crate) container_id: Option<String>,
    pub(crate) ip: IpAddr,
    pub(crate) netns: PathBuf,
    pub(crate) app_pid: Option<i32>,
    pub(crate) timings: PodTimings,
    pub(crate) shared: Arc<Shared>,
}

impl crate::netns::EnterNetns for CriPod {
    fn netns_file(&self) -> PathBuf {
        self.netns.clone()
    }

    fn netns_label(&self) -> String {
        format!("pod {}", self.full_name)
    }
}

impl CriPod {
    /// The pod's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `namespace/name`.
    pub fn full_name(&self) -> &str {
        &self.full_name
    }

    /// The sandbox id.
    pub fn sandbox_id(&self) -> &str {
        &self.sandbox_id
    }

    /// The app container's id.
    pub fn container_id(&self) -> Option<&str> {
        self.container_id.as_deref()
    }

    /// The pod's IP (the first IP of the CNI result).
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The pod's network namespace file.
    pub fn netns_path(&self) -> &Path {
        &self.netns
    }

    /// The PID of the app container's first process.
    pub fn app_pid(&self) -> Option<i32> {
        self.app_pid
    }

    /// How long the pod's CRI calls took.
    pub fn timings(&self) -> PodTimings {
        self.timings
    }

    /// A command running `program` inside the pod's network namespace
    /// (`nsenter --net=<netns>`; the host's file system and tools).
    pub fn command_in_netns(&self, program: &str) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net={}", self.netns.display()))
            .arg("--")
            .arg(program);
        command
    }

    /// Runs `program args` inside the pod's network namespace; fails unless it exits 0;
    /// returns its stdout.
    pub fn exec_in_netns(&self, program: &str, args: &[&str]) -> Result<String> {
        cmd::output(self.command_in_netns(program).args(args))
    }

    /// Pings `dst` from the pod `count` times (0.2 s apart, 1 s timeout each).
    pub fn ping(&self, dst: IpAddr, count: u32) -> Result<PingStats> {
        traffic::ping_with(
            self.command_in_netns("ping"),
            &format!("pod {}", self.full_name),
            dst,
            count,
        )
    }

    /// Stops and removes the pod through CRI now, reporting errors that a drop would ignore.
    pub fn remove(self) -> Result<()> {
        self.remove_now()
    }

    fn remove_now(&self) -> Result<()> {
        if self.shared.stopped.load(Ordering::SeqCst) || !self.shared.forget(&self.sandbox_id) {
            return Ok(());
        }
        self.shared.remove_sandbox(&self.sandbox_id)
    }
}

impl Drop for CriPod {
    fn drop(&mut self) {
        let _ = self.remove_now();
    }
}
