//! containerd on a node, driven through CRI: real pod sandboxes whose networks a CNI plugin
//! sets up, without a kubelet and without a registry.
//!
//! [`Node::start_containerd`] gives each node its own containerd, configured entirely inside a
//! short directory of the lab (`<lab>/c<index>`): config, root and state, gRPC socket, CNI
//! plugin and config directories, pod logs. It runs inside the node's network namespace, so
//! the CNI plugins it calls work there (the host ends of pod links live in the node). The
//! lab's two local images are imported into containerd's `k8s.io` namespace before use.
//! [`Containerd::run_pod`] runs a pod (sandbox and one app container) and returns a
//! [`CriPod`].

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::mount::{MntFlags, umount2};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cmd;
use crate::cri::{CriClient, PodSpec, SandboxSummary};
use crate::cri_pod::{CriPod, PodTimings};
use crate::error::{Error, Result};
use crate::lab::{CNI_PLUGIN_DIR, CNI_PLUGINS, LabShared, find_program};
use crate::leftovers::{mount_points, mounts_under, shims_for, walk_dirs};
use crate::netns::Netns;
use crate::node::Node;

/// How long containerd gets to exit after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(10);

/// How long containerd may take to open its socket and report ready.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Directories outside the lab that containerd and libcni create on first use and never
/// remove: the shims' sockets and libcni's result cache. Removed (when empty) by the
/// containerd that created them.
pub(crate) const SYSTEM_DIRS: &[&str] = &[
    "/run/containerd/s",
    "/run/containerd",
    "/var/lib/cni/results",
    "/var/lib/cni",
];

/// The file in a containerd's directory listing the [`SYSTEM_DIRS`] it created.
pub(crate) const CREATED_DIRS: &str = "created-dirs";

/// The CNI setup of a lab containerd: the conflist and the plugins it names.
///
/// The standard plugins `loopback` (which containerd always calls for `lo`), `ptp`,
/// `host-local` and `bridge` are always linked into the plugin directory; a custom plugin is
/// added with [`with_plugin`](Self::with_plugin) under the name its `"type"` uses. Only
/// that directory is on the plugins' `CNI_PATH`, so a plugin that delegates to another needs
/// it linked too.
#[derive(Debug, Clone)]
pub struct CniConfig {
    conflist: String,
    plugins: Vec<(String, PathBuf)>,
}

impl CniConfig {
    /// A setup with `conflist` (the JSON text of a CNI network configuration list). Use
    /// `cniVersion` 1.0.0 or lower: containerd 1.6 rejects results of later versions.
    pub fn new(conflist: impl Into<String>) -> Self {
        CniConfig {
            conflist: conflist.into(),
            plugins: Vec::new(),
        }
    }

    /// Adds plugin `name` (the conflist's `"type"`), run from `binary`.
    pub fn with_plugin(mut self, name: &str, binary: impl Into<PathBuf>) -> Self {
        self.plugins.push((name.to_string(), binary.into()));
        self
    }

    /// Checks the conflist parses and every top-level plugin type is available; returns the
    /// network's name.
    fn validate(&self) -> Result<String> {
        let invalid = |why: &str| Error::Invalid(format!("CNI conflist: {why}"));
        let value: serde_json::Value =
            serde_json::from_str(&self.conflist).map_err(|e| invalid(&e.to_string()))?;
        let name = value
            .get("name")
            .and_then(|n| n.as_str())
            .filter(|n| {
                !n.is_empty()
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            })
            .ok_or_else(|| invalid("needs a \"name\" of [A-Za-z0-9._-]"))?;
        let plugins = value
            .get("plugins")
            .and_then(|p| p.as_array())
            .filter(|p| !p.is_empty())
            .ok_or_else(|| invalid("needs a non-empty \"plugins\" list"))?;
        for plugin in plugins {
            let kind = plugin
                .get("type")
                .and_then(|t| t.as_str())
                .ok_or_else(|| invalid("a plugin without \"type\""))?;
            let known = CNI_PLUGINS.contains(&kind) || self.plugins.iter().any(|(n, _)| n == kind);
            if !known {
                return Err(invalid(&format!(
                    "plugin type {kind:?} is neither standard ({}) nor added with with_plugin",
                    CNI_PLUGINS.join(", ")
                )));
            }
        }
        for (name, binary) in &self.plugins {
            if name.is_empty() || name.contains('/') || !binary.is_file() {
                return Err(invalid(&format!(
                    "plugin {name:?}: {} is not a file",
                    binary.display()
                )));
            }
        }
        Ok(name.to_string())
    }
}

/// How long the parts of a containerd bring-up took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContainerdTimings {
    /// Building the two local images (zero when the lab had built them already).
    pub images: Duration,
    /// From spawning containerd to its CRI answering with runtime and network ready.
    pub start: Duration,
    /// Importing the images with `ctr`.
    pub import: Duration,
}

/// What a containerd shares with its pods.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) cri: CriClient,
    /// Live pods: sandbox id and `namespace/name`.
    pub(crate) pods: Mutex<Vec<(String, String)>>,
    /// Set once containerd's teardown began: pods no longer remove themselves.
    pub(crate) stopped: AtomicBool,
    pub(crate) timings: Mutex<Vec<PodTimings>>,
}

impl Shared {
    pub(crate) fn forget(&self, sandbox_id: &str) -> bool {
        let mut pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        let before = pods.len();
        pods.retain(|(id, _)| id != sandbox_id);
        pods.len() != before
    }

    /// StopPodSandbox then RemovePodSandbox (which also removes the pod's containers).
    pub(crate) fn remove_sandbox(&self, sandbox_id: &str) -> Result<()> {
        self.cri.stop_pod_sandbox(sandbox_id)?;
        self.cri.remove_pod_sandbox(sandbox_id)
    }
}

/// A containerd serving CRI for one node, running in the node's network namespace.
///
/// Dropping it tears everything down in this order: every pod is stopped and removed through
/// CRI (so the CNI plugin sees DEL), containerd gets SIGTERM and after a bound SIGKILL (by the
/// PID it was started with, after checking it is still that process), processes left in its
/// cgroups and its leftover shims are killed, mounts left under its directory are unmounted
/// deepest first, network namespace files are removed, its cgroup directories are removed
/// bottom up, the node's `net.ipv4.ip_forward` is restored if a plugin changed it, and the
/// system directories it created (shim sockets, libcni cache) are removed when empty.
#[derive(Debug)]
pub struct Containerd {
    shared: Arc<Shared>,
    process: Process,
    dir: PathBuf,
    socket: PathBuf,
    cgroup_parent: String,
    ip_forward: String,
    created_dirs: Vec<PathBuf>,
    timings: ContainerdTimings,
    node_ns: Arc<Netns>,
    _lab: Arc<LabShared>,
}

fn io_err(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let context = format!("{what} {}", path.display());
    move |e| Error::io(context, e)
}

fn mkdir(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(io_err("creating", path))
}

/// containerd's configuration (version 2) for a lab directory.
fn config_text(dir: &Path, cni: &Path) -> String {
    let d = dir.display();
    let cni = cni.display();
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
oom_score = 0

[grpc]
  address = "{d}/run/containerd.sock"

[ttrpc]
  address = "{d}/run/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  # The lab runs as root without CAP_SYS_RESOURCE: CRI's oom_score_adj of -998 would fail.
  restrict_oom_score_adj = true
  # Pod network namespaces under the state directory, not /var/run/netns.
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  enable_selinux = false

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "{d}/state/runc"
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni}/bin"
    conf_dir = "{cni}/conf"
    max_conf_num = 1
"#,
        pause = crate::cri::PAUSE_IMAGE,
    )
}

impl Node {
    /// Starts a containerd for this node with the CNI setup `cni`, and waits until its CRI
    /// reports the runtime and the network ready.
    ///
    /// Its directory is `<lab>/c<index>`; the conflist is written before containerd starts
    /// (containerd 1.6 does not notice a conflist moved into its directory later). The lab's
    /// images ([`PAUSE_IMAGE`](crate::PAUSE_IMAGE), [`BUSYBOX_IMAGE`](crate::BUSYBOX_IMAGE))
    /// are built on first use and imported. One containerd per node.
    pub fn start_containerd(&self, cni: CniConfig) -> Result<Containerd> {
        let net_name = cni.validate()?;
        let containerd = find_program("containerd").ok_or_else(|| Error::NotInstalled {
            missing: vec!["containerd".to_string()],
        })?;
        let dir = self.lab.dir.join(format!("c{}", self.index));
        if dir.exists() {
            return Err(Error::Invalid(format!(
                "node{} already has a containerd ({})",
                self.index,
                dir.display()
            )));
        }
        let socket = dir.join("run/containerd.sock");
        if socket.as_os_str().len() + ".ttrpc".len() >= 108 {
            return Err(Error::Invalid(format!(
                "socket path {} is too long for a unix socket",
                socket.display()
            )));
        }
        let cni_dir = dir.join("cni");
        for sub in ["etc", "run", "root", "state", "opt", "logs"] {
            mkdir(&dir.join(sub))?;
        }
        for sub in ["bin", "conf", "ipam", "log"] {
            mkdir(&cni_dir.join(sub))?;
        }
        for plugin in CNI_PLUGINS {
            let link = cni_dir.join("bin").join(plugin);
            std::os::unix::fs::symlink(Path::new(CNI_PLUGIN_DIR).join(plugin), &link)
                .map_err(io_err("linking", &link))?;
        }
        for (name, binary) in &cni.plugins {
            let link = cni_dir.join("bin").join(name);
            let _ = fs::remove_file(&link);
            let target = fs::canonicalize(binary).map_err(io_err("resolving", binary))?;
            std::os::unix::fs::symlink(target, &link).map_err(io_err("linking", &link))?;
        }
        let conflist = cni_dir.join(format!("conf/10-{net_name}.conflist"));
        fs::write(&conflist, &cni.conflist).map_err(io_err("writing", &conflist))?;
        let config = dir.join("etc/containerd.toml");
        fs::write(&config, config_text(&dir, &cni_dir)).map_err(io_err("writing", &config))?;

        let mut timings = ContainerdTimings::default();
        let t = Instant::now();
        let images = self.lab.cri_images()?;
        timings.images = t.elapsed();

        let ip_forward = self
            .ns
            .exec("cat", &["/proc/sys/net/ipv4/ip_forward"])?
            .trim()
            .to_string();
        let created_dirs: Vec<PathBuf> = SYSTEM_DIRS
            .iter()
            .map(PathBuf::from)
            .filter(|d| !d.exists())
            .collect();
        // For `reclaim`, which removes them (when empty) if this process dies undropped.
        let listed = dir.join(CREATED_DIRS);
        let text: String = created_dirs
            .iter()
            .map(|d| format!("{}\n", d.display()))
            .collect();
        fs::write(&listed, text).map_err(io_err("writing", &listed))?;

        let t = Instant::now();
        let log_path = dir.join("containerd.log");
        let log = File::create(&log_path).map_err(io_err("creating", &log_path))?;
        let log2 = log.try_clone().map_err(io_err("opening", &log_path))?;
        // nsenter enters only the network namespace (`ip netns exec` would also give it a
        // private mount namespace, hiding its mounts from the host) and then execs
        // containerd, so the child's PID is containerd's.
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net=/var/run/netns/{}", self.ns.name()))
            .arg("--")
            .arg(&containerd)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        // Its own process group: a terminal's Ctrl-C goes to the program that owns the lab,
        // which then stops containerd after removing its pods, not to containerd itself.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().map_err(|source| Error::Spawn {
            command: cmd::show(&command),
            source,
        })?;
        let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
        let pidfile = dir.join("containerd.pid");
        // From here on, a failure drops `process`, which stops containerd again.
        let mut process = Process {
            child: Some(child),
            pid,
            config: config.clone(),
            pidfile,
        };
        // Two lines: the PID and the config path its command line carries, which is how
        // `reclaim` tells that the PID is still this containerd.
        fs::write(
            &process.pidfile,
            format!("{pid}\n{}\n", process.config.display()),
        )
        .map_err(io_err("writing", &process.pidfile))?;
        let cri = cmd::wait_for(
            || format!("containerd's socket {}", socket.display()),
            START_TIMEOUT,
            || {
                if process.has_exited() {
                    return Some(None);
                }
                socket
                    .exists()
                    .then(|| CriClient::connect(&socket).ok())
                    .flatten()
                    .map(Some)
            },
        )?
        .ok_or_else(|| exited_error(&dir))?;
        cmd::wait_for(
            || "containerd's CRI to report RuntimeReady and NetworkReady".to_string(),
            START_TIMEOUT,
            || {
                cri.status()
                    .ok()
                    .filter(|s| s.runtime_ready() && s.network_ready())
            },
        )?;
        timings.start = t.elapsed();

        let t = Instant::now();
        for image in images {
            cmd::output(
                Command::new("ctr")
                    .arg("-a")
                    .arg(&socket)
                    .args(["-n", "k8s.io", "images", "import"])
                    .arg(&image),
            )?;
        }
        timings.import = t.elapsed();
        Ok(Containerd {
            shared: Arc::new(Shared {
                cri,
                pods: Mutex::new(Vec::new()),
                stopped: AtomicBool::new(false),
                timings: Mutex::new(Vec::new()),
            }),
            process,
            dir,
            socket,
            cgroup_parent: format!("/ovk{}-n{}", self.lab.id, self.index),
            ip_forward,
            created_dirs,
            timings,
            node_ns: self.ns.clone(),
            _lab: self.lab.clone(),
        })
    }
}

/// The containerd process: a child of this process, known by its PID, its pidfile and its
/// config path.
#[derive(Debug)]
struct Process {
    child: Option<Child>,
    pid: i32,
    config: PathBuf,
    pidfile: PathBuf,
}

impl Process {
    /// Whether it runs. An unreaped child keeps its PID, so it cannot belong to anyone else;
    /// the pidfile and the command line are checked as well.
    fn is_running(&mut self) -> bool {
        let Some(child) = self.child.as_mut() else {
            return false;
        };
        matches!(child.try_wait(), Ok(None)) && self.is_ours()
    }

    /// Whether the child has exited. (Right after the spawn, `is_running` may still see
    /// `nsenter` on its way to exec containerd.)
    fn has_exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|child| !matches!(child.try_wait(), Ok(None)))
    }

    /// The PID is alive (not a zombie), the pidfile names it, and its command line carries
    /// this containerd's config path.
    fn is_ours(&self) -> bool {
        let pidfile_ok = fs::read_to_string(&self.pidfile).is_ok_and(|text| {
            text.lines().next().map(str::trim) == Some(self.pid.to_string().as_str())
        });
        let config = self.config.as_os_str().as_encoded_bytes();
        let cmdline_ok = fs::read(format!("/proc/{}/cmdline", self.pid))
            .is_ok_and(|raw| raw.split(|b| *b == 0).any(|arg| arg == config));
        self.child.is_some() && crate::daemon::is_alive(self.pid) && pidfile_ok && cmdline_ok
    }

    /// SIGTERM, then SIGKILL after [`TERM_GRACE`], by the checked PID; reaps the child.
    fn stop(&mut self) {
        if self.is_running() {
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGTERM);
            let start = Instant::now();
            while start.elapsed() < TERM_GRACE && self.is_running() {
                thread::sleep(Duration::from_millis(10));
            }
            if self.is_running() {
                let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
            }
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        let _ = fs::remove_file(&self.pidfile);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

fn exited_error(dir: &Path) -> Error {
    let log = fs::read_to_string(dir.join("containerd.log")).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(5).collect();
    Error::Invalid(format!(
        "containerd exited during start-up; its log ends: {}",
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
    ))
}

impl Containerd {
    /// The containerd's directory (`<lab>/c<index>`): config, root, state, sockets, CNI
    /// directories, pod logs, `containerd.log`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CRI (gRPC) socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// containerd's PID while it runs.
    pub fn pid(&self) -> Option<i32> {
        self.process.is_ours().then_some(self.process.pid)
    }

    /// The directory of pod network namespace files.
    pub fn netns_dir(&self) -> PathBuf {
        netns_dir(&self.dir)
    }

    /// The cgroup parent of every pod (`/ovk<lab>-n<index>`), under each cgroup hierarchy.
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// The CRI client, for calls the lab does not wrap.
    pub fn cri(&self) -> &CriClient {
        &self.shared.cri
    }

    /// How long the bring-up took.
    pub fn timings(&self) -> ContainerdTimings {
        self.timings
    }

    /// The CRI timings of every pod run so far, in order.
    pub fn pod_timings(&self) -> Vec<PodTimings> {
        self.shared
            .timings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `ListPodSandbox`: every sandbox containerd knows.
    pub fn list_pod_sandboxes(&self) -> Result<Vec<SandboxSummary>> {
        self.shared.cri.list_pod_sandboxes()
    }

    /// Runs pod `spec` through CRI: RunPodSandbox, then (unless the spec has none) the app
    /// container's CreateContainer and StartContainer; reads the pod's IP and network
    /// namespace. The log directory defaults to `logs/<namespace>_<name>` and the cgroup
    /// parent to [`cgroup_parent`](Self::cgroup_parent). If a step after RunPodSandbox fails,
    /// the sandbox is stopped and removed before the error is returned.
    pub fn run_pod(&self, spec: PodSpec) -> Result<CriPod> {
        let mut spec = spec;
        if spec.log_directory_path().is_none() {
            let logs = self
                .dir
                .join("logs")
                .join(spec.full_name().replace('/', "_"));
            spec = spec.log_directory(logs);
        }
        if !spec.has_cgroup_parent() {
            spec = spec.cgroup_parent(&self.cgroup_parent);
        }
        let cri = &self.shared.cri;
        if let Some(logs) = spec.log_directory_path() {
            mkdir(logs)?;
        }
        let mut timings = PodTimings::default();
        let t = Instant::now();
        let sandbox_id = cri.run_pod_sandbox(&spec)?;
        timings.run_sandbox = t.elapsed();
        self.shared
            .pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((sandbox_id.clone(), spec.full_name()));
        let mut finish = || -> Result<CriPod> {
            let status = cri.pod_sandbox_status(&sandbox_id)?;
            let missing = |what: &str| Error::Parse {
                what: format!("PodSandboxStatus of pod {}: no {what}", spec.full_name()),
                output: format!("{status:?}"),
            };
            let ip = status.ip.ok_or_else(|| missing("IP"))?;
            let netns = status.netns.clone().ok_or_else(|| missing("netns path"))?;
            let (mut container_id, mut app_pid) = (None, None);
            if let Some(app) = spec.app_spec() {
                let t = Instant::now();
                let id = cri.create_container(&sandbox_id, &spec, app)?;
                timings.create_container = t.elapsed();
                container_id = Some(id.clone());
                let t = Instant::now();
                cri.start_container(&id)?;
                timings.start_container = t.elapsed();
                app_pid = cri.container_pid(&id)?;
            }
            Ok(CriPod {
                name: spec.name().to_string(),
                full_name: spec.full_name(),
                sandbox_id: sandbox_id.clone(),
                container_id,
                ip,
                netns,
                app_pid,
                timings,
                shared: self.shared.clone(),
            })
        };
        match finish() {
            Ok(pod) => {
                self.shared
                    .timings
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(timings);
                Ok(pod)
            }
            Err(e) => {
                // A failed pod would hold its name: remove it as kubelet would.
                if self.shared.forget(&sandbox_id) {
                    let _ = self.shared.remove_sandbox(&sandbox_id);
                }
                Err(e)
            }
        }
    }

    /// Stops and removes every pod through CRI, the ones this handle ran and any other
    /// sandbox containerd knows (a failed run can leave one behind).
    fn remove_all_pods(&self) {
        let pods: Vec<(String, String)> = {
            let mut pods = self.shared.pods.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.stopped.store(true, Ordering::SeqCst);
            std::mem::take(&mut *pods)
        };
        for (id, _) in &pods {
            let _ = self.shared.remove_sandbox(id);
        }
        if let Ok(left) = self.shared.cri.list_pod_sandboxes() {
            for sandbox in left {
                let _ = self.shared.remove_sandbox(&sandbox.id);
            }
        }
    }
}

/// The cgroup directories of pods with cgroup parent `cgroup_parent` (`/ovk<lab>-n<index>`):
/// `<hierarchy><cgroup_parent>` under every mounted cgroup hierarchy that has one.
fn cgroup_dirs(cgroup_parent: &str) -> Vec<PathBuf> {
    let relative = cgroup_parent.trim_start_matches('/');
    mount_points()
        .into_iter()
        .filter(|(_, fstype)| fstype == "cgroup" || fstype == "cgroup2")
        .map(|(point, _)| point.join(relative))
        .filter(|dir| dir.is_dir())
        .collect()
}

/// What a stopped containerd with directory `dir`, socket `socket` and pod cgroup parent
/// `cgroup_parent` may leave on the host, removed: processes in its cgroups (the pods' own,
/// by construction) and shims started for its socket are killed, mounts under its directory
/// are unmounted deepest first, pod network namespace files removed, and its cgroup
/// directories removed bottom up. Returns how many processes were killed.
pub(crate) fn remove_leftovers(dir: &Path, socket: &Path, cgroup_parent: &str) -> usize {
    let mut killed = 0;
    for cgroup in cgroup_dirs(cgroup_parent) {
        for procs in walk_dirs(&cgroup).iter().map(|d| d.join("cgroup.procs")) {
            for pid in fs::read_to_string(&procs).unwrap_or_default().lines() {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    killed += usize::from(kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok());
                }
            }
        }
    }
    for pid in shims_for(socket.as_os_str().as_encoded_bytes()) {
        killed += usize::from(kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok());
    }
    for mount in mounts_under(dir) {
        let _ = umount2(&mount, MntFlags::MNT_DETACH);
    }
    if let Ok(entries) = fs::read_dir(netns_dir(dir)) {
        for entry in entries.flatten() {
            let _ = fs::remove_file(entry.path());
        }
    }
    // A cgroup can be removed once its last process is gone, which takes a moment after
    // SIGKILL.
    for _ in 0..100 {
        let mut left = false;
        for cgroup in cgroup_dirs(cgroup_parent) {
            for sub in walk_dirs(&cgroup) {
                left |= fs::remove_dir(sub).is_err();
            }
        }
        if !left {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    killed
}

/// The directory of pod network namespace files of the containerd in `dir`.
fn netns_dir(dir: &Path) -> PathBuf {
    dir.join("state/io.containerd.grpc.v1.cri/netns")
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.remove_all_pods();
        self.process.stop();
        remove_leftovers(&self.dir, &self.socket, &self.cgroup_parent);
        let forward = self
            .node_ns
            .exec("cat", &["/proc/sys/net/ipv4/ip_forward"])
            .map(|v| v.trim().to_string());
        if forward.is_ok_and(|v| v != self.ip_forward) {
            let _ = self.node_ns.exec(
                "sh",
                &[
                    "-c",
                    &format!("echo {} > /proc/sys/net/ipv4/ip_forward", self.ip_forward),
                ],
            );
        }
        for dir in &self.created_dirs {
            let _ = fs::remove_dir(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conflist_naming_an_unknown_plugin_is_refused() {
        let conf = r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"nope"}]}"#;
        let err = CniConfig::new(conf).validate().unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
        let ok = r#"{"cniVersion":"1.0.0","name":"n1","plugins":[{"type":"ptp"}]}"#;
        assert_eq!(CniConfig::new(ok).validate().unwrap(), "n1");
        assert!(CniConfig::new("{").validate().is_err());
    }

    #[test]
    fn the_config_keeps_everything_in_the_lab_directory() {
        let text = config_text(Path::new("/tmp/ovkx/c1"), Path::new("/tmp/ovkx/c1/cni"));
        assert!(text.contains(r#"address = "/tmp/ovkx/c1/run/containerd.sock""#));
        assert!(text.contains("restrict_oom_score_adj = true"));
        assert!(text.contains("netns_mounts_under_state_dir = true"));
        assert!(text.contains(r#"bin_dir = "/tmp/ovkx/c1/cni/bin""#));
        for line in text.lines().filter(|l| l.contains("= \"/")) {
            assert!(line.contains("\"/tmp/ovkx/c1"), "{line}");
        }
    }
}
