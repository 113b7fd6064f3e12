//! The testbed's error type.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// The Debian packages the lab and the tests built on it need (see `docs/lab.md`), separated by spaces: OVN and
/// Open vSwitch, `ping`, `ethtool`, `ip`, `nft` for the node-side gateway (masquerade in a
/// node's namespace), and for the CRI lab containerd, runc, the standard CNI plugins,
/// busybox (the local images), `protoc` (the CRI client's build) and `dig` (DNS queries from
/// pods, answered by OVN). The one list:
/// `cargo xtask install` installs exactly these.
pub const PACKAGES: &str = "openvswitch-switch ovn-central ovn-host iputils-ping ethtool iproute2 \
     nftables containerd runc containernetworking-plugins busybox-static protobuf-compiler \
     bind9-dnsutils";

/// Everything that can go wrong while bringing up, using or tearing down a lab.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Programs the lab needs are not installed.
    #[error(
        "OVN/OVS is not installed (missing: {}); as root run: apt-get update && \
         DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {PACKAGES} \
         (or `cargo xtask install`)",
        missing.join(", ")
    )]
    NotInstalled {
        /// The programs or files that were not found.
        missing: Vec<String>,
    },
    /// The lab creates network namespaces and veths, which needs root.
    #[error(
        "the lab needs root to create network namespaces and veth pairs (running as uid {uid})"
    )]
    NotRoot {
        /// The effective user id of this process.
        uid: u32,
    },
    /// A command could not be started at all.
    #[error("could not start `{command}`")]
    Spawn {
        /// The command line.
        command: String,
        /// Why it could not be started.
        #[source]
        source: io::Error,
    },
    /// A command ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr (trimmed).
        stderr: String,
    },
    /// Something did not become ready in time.
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long the lab waited.
        waited: Duration,
    },
    /// A file-system or socket operation failed.
    #[error("{context}")]
    Io {
        /// What the lab was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A daemon's pidfile did not name a live process of that daemon.
    #[error("daemon {name}: pidfile {} does not name a running {name}", pidfile.display())]
    DaemonGone {
        /// The daemon's name.
        name: String,
        /// Its pidfile.
        pidfile: PathBuf,
    },
    /// Output of a tool did not have the expected shape.
    #[error("unexpected output from {what}: {output:?}")]
    Parse {
        /// The tool and what was parsed.
        what: String,
        /// The text that did not parse.
        output: String,
    },
    /// A CRI call to containerd failed (or its connection did).
    #[error("CRI {call}{} failed ({code}): {message}", for_pod(pod))]
    Cri {
        /// The CRI call, e.g. `RunPodSandbox`.
        call: &'static str,
        /// The pod it was for (`namespace/name`), empty for calls about no pod.
        pod: String,
        /// The gRPC status code (`Unavailable`, `NotFound`, ...), or `Transport`.
        code: String,
        /// What containerd (or the transport) said.
        message: String,
    },
    /// A request named something the lab does not have or cannot do.
    #[error("{0}")]
    Invalid(String),
}

fn for_pod(pod: &str) -> String {
    if pod.is_empty() {
        String::new()
    } else {
        format!(" for pod {pod}")
    }
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// The testbed's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
