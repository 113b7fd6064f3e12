//! The plugin's own processes on a lab, as an operator runs them: `ovnkit controller` in
//! manifest mode and `ovnkit agent` inside a node's network namespace, each a
//! [`LabProcess`] with a pidfile in the lab directory (so that
//! [`ovn_testbed::reclaim`] finds them after a crash), and the CNI configuration that makes a
//! node's containerd run `ovnkit` as its plugin. The sandbox and the lab tests both use them.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ovn_testbed::{Central, LabProcess, Node};
use ovnkit_kube::cni::protocol::{self, Reply, Request};

/// `RUST_LOG` of the processes: the plugin's own crate at `debug`.
const LOG_FILTER: &str = "info,ovnkit_kube=debug";

fn log_file(log: &Path) -> Result<(File, File)> {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let err = out.try_clone()?;
    Ok((out, err))
}

/// A daemon's settings: `RUST_LOG`, no stdin, stdout and stderr appended to `log`, and its
/// own process group (not the terminal's: Ctrl-C stops the sandbox, which stops the daemon).
fn daemon_io(command: &mut Command, log: &Path) -> Result<()> {
    let (out, err) = log_file(log)?;
    command
        .env("RUST_LOG", LOG_FILTER)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    Ok(())
}

/// The last `lines` lines of a log file.
pub fn log_tail(log: &Path, lines: usize) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(lines).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// `ovnkit controller --nb <nb> --manifests <dir> --state-dir <dir>`: stopped (SIGTERM, then
/// SIGKILL) when dropped.
#[derive(Debug)]
pub struct ControllerProcess {
    process: LabProcess,
    log: PathBuf,
}

impl ControllerProcess {
    /// Starts `exe controller` on `nb` with `manifests` and `state`, plus `extra` arguments;
    /// output goes to `log` (appended, so that restarts keep one log). The pidfile is
    /// `<state>.pid` (the state directory's path is the argument that identifies it).
    pub fn start(
        exe: &Path,
        nb: &str,
        manifests: &Path,
        state: &Path,
        log: &Path,
        extra: &[&str],
    ) -> Result<Self> {
        let mut command = Command::new(exe);
        command
            .args(["controller", "--nb", nb, "--manifests"])
            .arg(manifests)
            .arg("--state-dir")
            .arg(state)
            .args(extra);
        daemon_io(&mut command, log)?;
        let pidfile = state.with_extension("pid");
        let owner = state.display().to_string();
        let process = LabProcess::spawn("controller", command, &pidfile, &owner)?;
        Ok(ControllerProcess {
            process,
            log: log.to_owned(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.process.pid()
    }

    /// The log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        self.process.kill();
    }
}

/// An `ovnkit agent` in a node's network namespace (through `nsenter --net`, so it keeps the
/// host's mount namespace and sees the pod namespace files a runtime mounts later, as a
/// DaemonSet's `HostToContainer` propagation does); stopped when dropped.
#[derive(Debug)]
pub struct AgentProcess {
    process: LabProcess,
    log: PathBuf,
    socket: PathBuf,
}

impl AgentProcess {
    /// Starts `exe agent` for `node` on `central`'s NB, with its run directory
    /// `<lab>/agent-<node>` (the argument that identifies it; its pidfile is
    /// `<lab>/agent-<node>.pid`), its log `<lab>/agent-<node>.log`, and `extra` arguments;
    /// waits until it answers `STATUS` (at most `within`).
    pub fn start(
        exe: &Path,
        lab_dir: &Path,
        central: &Central,
        node: &Node,
        extra: &[&str],
        within: Duration,
    ) -> Result<Self> {
        let run_dir = lab_dir.join(format!("agent-{}", node.name()));
        let log = lab_dir.join(format!("agent-{}.log", node.name()));
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net=/var/run/netns/{}", node.netns().name()))
            .arg("--")
            .arg(exe)
            .args([
                "agent",
                "--node",
                &node.name(),
                "--nb",
                &central.nb_remote(),
            ])
            .args(["--ovs", &node.ovsdb().unix_remote(), "--run-dir"])
            .arg(&run_dir)
            .args(extra);
        daemon_io(&mut command, &log)?;
        let pidfile = run_dir.with_extension("pid");
        let owner = run_dir.display().to_string();
        let process =
            LabProcess::spawn(&format!("agent {}", node.name()), command, &pidfile, &owner)?;
        let mut agent = AgentProcess {
            process,
            log,
            socket: run_dir.join(ovnkit_kube::agent::server::SOCKET),
        };
        let start = Instant::now();
        loop {
            if let Some(status) = agent.process.has_exited() {
                bail!(
                    "the agent of {} exited ({status}); its log ends:\n{}",
                    node.name(),
                    log_tail(&agent.log, 20)
                );
            }
            if agent.socket.exists()
                && matches!(
                    agent_call(&agent.socket, &status_request()),
                    Ok(Reply::Done)
                )
            {
                return Ok(agent);
            }
            if start.elapsed() > within {
                bail!(
                    "the agent of {} did not answer STATUS within {within:?}; its log ends:\n{}",
                    node.name(),
                    log_tail(&agent.log, 20)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The agent's CNI socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.process.pid()
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        self.process.kill();
    }
}

/// A `STATUS` request.
pub fn status_request() -> Request {
    Request {
        command: protocol::Command::Status,
        container_id: String::new(),
        netns: String::new(),
        ifname: "eth0".to_owned(),
        pod: None,
        network: "ovnkit".to_owned(),
        mtu: None,
        prev_result: None,
        valid_attachments: Vec::new(),
    }
}

/// One request over an agent's socket, as the CNI plugin sends it.
pub fn agent_call(socket: &Path, request: &Request) -> Result<Reply> {
    let mut stream = UnixStream::connect(socket)
        .with_context(|| format!("connecting to {}", socket.display()))?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut out = String::new();
    stream.read_to_string(&mut out)?;
    serde_json::from_str(out.trim()).with_context(|| format!("the agent's answer {out:?}"))
}

/// The conflist a node's containerd loads: plugin `ovnkit` (the `ovnkit` binary, named so in
/// the runtime's plugin directory) talking to the agent's `socket`.
pub fn conflist(socket: &Path) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "ovnkit",
        "plugins": [{ "type": "ovnkit", "agentSocket": socket }]
    })
    .to_string()
}
