//! The lab: a private directory, a unique name prefix, and the shared underlay network.

use std::env;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use crate::cmd;
use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::node::UnderlayPeer;

/// Programs the lab runs, each with the Debian package that ships it.
const PROGRAMS: &[&str] = &[
    "ovsdb-server",
    "ovsdb-tool",
    "ovsdb-client",
    "ovs-vswitchd",
    "ovs-vsctl",
    "ovs-appctl",
    "ovs-pki",
    "ovn-northd",
    "ovn-nbctl",
    "ovn-sbctl",
    "ovn-controller",
    "ip",
    "ethtool",
    "ping",
    "nsenter",
    // The CRI lab.
    "containerd",
    "containerd-shim-runc-v2",
    "ctr",
    "runc",
    "busybox",
    // The DNS lab: queries from inside pods.
    "dig",
];

/// Where Debian's `containernetworking-plugins` puts the standard CNI plugins.
pub const CNI_PLUGIN_DIR: &str = "/usr/lib/cni";

/// The standard CNI plugins the CRI lab links into every containerd's plugin directory.
pub(crate) const CNI_PLUGINS: &[&str] = &["loopback", "ptp", "host-local", "bridge"];

/// Paths of the schemas installed by the Debian packages.
pub mod schemas {
    /// OVN_Northbound.
    pub const NB: &str = "/usr/share/ovn/ovn-nb.ovsschema";
    /// OVN_Southbound.
    pub const SB: &str = "/usr/share/ovn/ovn-sb.ovsschema";
    /// Open_vSwitch.
    pub const VSWITCH: &str = "/usr/share/openvswitch/vswitch.ovsschema";
}

/// Finds `program` on `PATH` (and in `/usr/sbin`, `/sbin`, where Debian puts the daemons).
pub(crate) fn find_program(program: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Checks that every program and schema the lab uses is installed.
///
/// The error names what is missing and the Debian packages to install.
pub fn check_install() -> Result<()> {
    check_install_with(find_program)
}

pub(crate) fn check_install_with(find: impl Fn(&str) -> Option<PathBuf>) -> Result<()> {
    let mut missing: Vec<String> = PROGRAMS
        .iter()
        .filter(|p| find(p).is_none())
        .map(|p| p.to_string())
        .collect();
    for schema in [schemas::NB, schemas::SB, schemas::VSWITCH] {
        if !Path::new(schema).is_file() {
            missing.push(schema.to_string());
        }
    }
    for plugin in CNI_PLUGINS {
        let path = Path::new(CNI_PLUGIN_DIR).join(plugin);
        if !path.is_file() {
            missing.push(path.display().to_string());
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::NotInstalled { missing })
    }
}

/// State shared by everything a lab started. It is dropped after the last piece of the lab,
/// taking the underlay namespace and the lab directory with it.
#[derive(Debug)]
pub(crate) struct LabShared {
    /// Short, unique: every namespace name of this lab starts with `ovk<id>-`.
    pub(crate) id: String,
    pub(crate) dir: PathBuf,
    next_node: AtomicU8,
    underlay: Mutex<Option<Arc<Netns>>>,
    /// The nodes that exist now.
    pub(crate) live_nodes: Mutex<Vec<UnderlayPeer>>,
    /// Nodes whose data plane was killed.
    stopped_nodes: Mutex<Vec<u8>>,
    /// The CRI lab's image archives, once built.
    pub(crate) cri_images: Mutex<Option<Vec<PathBuf>>>,
    _tempdir: Option<tempfile::TempDir>,
}

impl LabShared {
    /// The name of this lab's namespace for `role`.
    pub(crate) fn ns_name(&self, role: &str) -> String {
        format!("ovk{}-{role}", self.id)
    }

    /// A fresh sub-directory of the lab directory.
    pub(crate) fn subdir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        Ok(dir)
    }

    /// Whether node `index`'s data plane runs (it was not killed, or was restarted).
    pub(crate) fn node_running(&self, index: u8) -> bool {
        !self
            .stopped_nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&index)
    }

    pub(crate) fn set_node_running(&self, index: u8, running: bool) {
        let mut stopped = self.stopped_nodes.lock().unwrap_or_else(|e| e.into_inner());
        stopped.retain(|&i| i != index);
        if !running {
            stopped.push(index);
        }
    }

    pub(crate) fn next_node_index(&self) -> Result<u8> {
        let index = self.next_node.fetch_add(1, Ordering::SeqCst);
        if index == 0 || index > 200 {
            return Err(Error::Invalid("a lab holds at most 200 nodes".into()));
        }
        Ok(index)
    }

    /// The underlay: a namespace with a Linux bridge `br0` that every node's `u0` link joins
    /// (172.30.0.0/24). Created with the first node.
    pub(crate) fn underlay(&self) -> Result<Arc<Netns>> {
        let mut guard = self.underlay.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ns) = guard.as_ref() {
            return Ok(ns.clone());
        }
        let ns = Netns::create(&self.ns_name("u"))?;
        ns.exec("ip", &["link", "add", "br0", "type", "bridge"])?;
        ns.exec("ip", &["link", "set", "br0", "up"])?;
        let ns = Arc::new(ns);
        *guard = Some(ns.clone());
        Ok(ns)
    }
}

/// A private OVN/OVS lab on this machine.
///
/// Each lab has its own short directory under `/tmp` (sockets, databases, logs, pidfiles) and
/// its own namespace names (`ovk<id>-...`), so labs can run side by side. Every part it starts
/// ([`Central`](crate::Central), [`NbCluster`](crate::NbCluster), [`Node`](crate::Node),
/// [`Pod`](crate::Pod), [`ExternalNet`](crate::ExternalNet), [`OvsdbServer`](crate::OvsdbServer))
/// is an RAII value: dropping it stops its daemons by PID and deletes its namespaces, also when
/// a test panics. The lab directory goes when the last part is dropped (set `OVNKIT_LAB_KEEP=1`
/// to keep it, with the daemons' logs, for debugging).
#[derive(Debug, Clone)]
pub struct Lab {
    pub(crate) shared: Arc<LabShared>,
}

impl Lab {
    /// Creates a lab. Fails with [`Error::NotRoot`] or [`Error::NotInstalled`] when the machine
    /// cannot run one.
    pub fn new() -> Result<Lab> {
        let uid = nix::unistd::geteuid().as_raw();
        if uid != 0 {
            return Err(Error::NotRoot { uid });
        }
        check_install()?;
        let tempdir = tempfile::Builder::new()
            .prefix("ovk")
            .rand_bytes(5)
            .tempdir_in("/tmp")
            .map_err(|e| Error::io("creating the lab directory under /tmp", e))?;
        let dir = tempdir.path().to_path_buf();
        let id = dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("ovk"))
            .unwrap_or_default()
            .to_string();
        let keep = env::var_os("OVNKIT_LAB_KEEP").is_some_and(|v| v != "0" && !v.is_empty());
        let tempdir = if keep {
            eprintln!("ovn-testbed: keeping lab directory {}", dir.display());
            let _ = tempdir.keep();
            None
        } else {
            Some(tempdir)
        };
        Ok(Lab {
            shared: Arc::new(LabShared {
                id,
                dir,
                next_node: AtomicU8::new(1),
                underlay: Mutex::new(None),
                live_nodes: Mutex::new(Vec::new()),
                stopped_nodes: Mutex::new(Vec::new()),
                cri_images: Mutex::new(None),
                _tempdir: tempdir,
            }),
        })
    }

    /// A lab for a test: `None` (after printing why) when this machine cannot run one and the
    /// `CI` environment variable is not `true`.
    ///
    /// # Panics
    /// When `CI=true` and the lab cannot start: in CI a missing prerequisite is a failure, never
    /// a silent skip. Also on any other bring-up error.
    pub fn for_test() -> Option<Lab> {
        match Lab::new() {
            Ok(lab) => Some(lab),
            Err(e @ (Error::NotRoot { .. } | Error::NotInstalled { .. })) => {
                if env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("CI=true and the lab cannot run: {e}");
                }
                eprintln!("SKIPPED (no lab on this machine): {e}");
                None
            }
            Err(e) => panic!("lab bring-up failed: {e}"),
        }
    }

    /// The lab's private directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The lab's unique id; every namespace of the lab is called `ovk<id>-<role>`.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// Names of the network namespaces of this lab that exist right now.
    pub fn namespaces(&self) -> Result<Vec<String>> {
        namespaces_with_prefix(&format!("ovk{}-", self.shared.id))
    }
}

/// Names of existing network namespaces that start with `prefix`.
pub fn namespaces_with_prefix(prefix: &str) -> Result<Vec<String>> {
    let out = cmd::output(std::process::Command::new("ip").args(["netns", "list"]))?;
    Ok(out
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| name.starts_with(prefix))
        .map(str::to_string)
        .collect())
}

/// A free TCP port on 127.0.0.1 (asked of the kernel, then released for a daemon to bind).
pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::io("finding a free port on 127.0.0.1", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::io("reading the free port", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_machine_without_ovn_gets_an_error_naming_the_packages() {
        let err = check_install_with(|_| None).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::NotInstalled { .. }));
        for package in [
            "openvswitch-switch",
            "ovn-central",
            "ovn-host",
            "iputils-ping",
        ] {
            assert!(text.contains(package), "{text}");
        }
        assert!(
            text.contains("ovn-controller") && text.contains("ovsdb-server"),
            "{text}"
        );
    }

    #[test]
    fn a_single_missing_program_is_named_alone() {
        let err = check_install_with(|p| (p != "ovn-northd").then(|| PathBuf::from("/bin/true")));
        match err {
            // Schemas may be missing on a machine without OVN; the program must be listed.
            Err(Error::NotInstalled { missing }) => assert!(missing.contains(&"ovn-northd".into())),
            other => panic!("expected NotInstalled, got {other:?}"),
        }
    }
}
