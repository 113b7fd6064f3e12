//! The CNI side of the node: the plugin the container runtime runs, and the protocol between
//! it and the node agent.
//!
//! # What the plugin does
//!
//! The runtime (containerd, CRI-O) executes `<bin_dir>/<type>` with the `CNI_*` variables in
//! its environment and the network configuration on stdin. The `ovnkit` binary is that
//! executable: with no arguments and `CNI_COMMAND` set it runs [`plugin::run`] before anything
//! else (no logging set-up: stdout carries only the CNI answer), and `ovnkit cni` does the same
//! explicitly. A configuration list names it with `"type": "ovnkit"`:
//!
//! ```json
//! { "cniVersion": "1.0.0", "name": "ovn",
//!   "plugins": [ { "type": "ovnkit", "agentSocket": "/run/ovnkit/agent.sock", "mtu": 1400 } ] }
//! ```
//!
//! The plugin does no networking itself. [`spec`] (pure) checks the environment and the
//! configuration and turns them into one [`protocol::Request`]; [`plugin`] sends it over a
//! blocking unix socket to the node agent, which does the work and answers one
//! [`protocol::Reply`]; [`spec::result_json`] turns an `ADD`'s attachment into the result of
//! the `cniVersion` the configuration asked for (containerd 1.6 refuses a result of a version it
//! does not know, so a 1.0.0 configuration gets a 1.0.0 result). `VERSION` is answered without
//! the agent.
//!
//! | command | needs (besides `CNI_COMMAND`) | sent to the agent | success prints |
//! |---|---|---|---|
//! | `ADD` | `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME` | container, netns, ifname, pod, network, mtu | the result |
//! | `DEL` | `CNI_CONTAINERID`, `CNI_IFNAME` (`CNI_NETNS` may be empty) | the same; `prevResult` is not read | nothing |
//! | `CHECK` | as `ADD`, and `prevResult` | the same and `prevResult` as an attachment | nothing |
//! | `STATUS` | 1.1.0 | the network | nothing |
//! | `GC` | 1.1.0, and `cni.dev/valid-attachments` | the network and the attachments to keep | nothing |
//! | `VERSION` | nothing | (not sent) | `{"cniVersion","supportedVersions":["1.0.0","1.1.0"]}` |
//!
//! `CNI_ARGS` gives the pod (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`, `K8S_POD_UID`); other keys
//! are ignored, `IgnoreUnknown` or not. `CNI_PATH` is read but unused (nothing is delegated).
//!
//! # Configuration
//!
//! | field | default | meaning |
//! |---|---|---|
//! | `cniVersion` | required | `1.0.0` or `1.1.0` |
//! | `name` | required | the network (a letter or digit, then letters, digits, `_`, `.`, `-`) |
//! | `type` | required | the executable's name, `ovnkit` |
//! | `agentSocket` | `/run/ovnkit/agent.sock` | the agent's socket, an absolute path |
//! | `mtu` | the agent's | the pod interface's MTU, 68 to 65535 |
//! | `timeoutSeconds` | 60 | how long to wait for the agent's reply, 1 to 3600 |
//! | `prevResult` | | set by the runtime; `CHECK` needs it |
//! | `cni.dev/valid-attachments` | | set by the runtime; `GC` needs it |
//!
//! Other fields (`capabilities`, `runtimeConfig`, `args`) are accepted and ignored. The
//! configuration is read up to 1 MiB.
//!
//! # Errors
//!
//! A failure prints the CNI error object `{"cniVersion","code","msg","details"}` on stdout (as
//! the spec says: stderr is for logs) and exits 1. `cniVersion` is the configuration's when it
//! names one the plugin speaks, else 1.0.0. `msg` names the variable, field or socket and the
//! reason; `details` adds the context (the OS error's attempt, what to check).
//!
//! | code | when |
//! |---|---|
//! | 1 | `cniVersion` other than 1.0.0 and 1.1.0 (the message lists both); `STATUS` or `GC` under 1.0.0, which does not have them (libcni's `skel` answers the same) |
//! | 4 | `CNI_COMMAND` missing or unknown; a variable the command needs missing or empty (all named); a container id or interface name the spec forbids; `CNI_ARGS` not `KEY=VALUE;...` or with a pod name but no namespace |
//! | 5 | stdin unreadable or over 1 MiB; the agent's connection failed mid-way, closed without a reply, or the reply is over [`protocol::MAX_MESSAGE`] |
//! | 6 | stdin not a JSON object; the agent's reply not a [`protocol::Reply`], or the wrong one for the command |
//! | 7 | a field missing, of the wrong type or out of range (named); `CHECK` without a usable `prevResult`; `GC` without `cni.dev/valid-attachments` |
//! | 11 | the agent's socket refused, absent or not accepting for 2 s (`ADD`, `CHECK`, `GC`), or no reply within `timeoutSeconds` |
//! | 50 | `STATUS` when the agent's socket is refused or absent for 2 s |
//! | other | the agent's [`protocol::Failure`], passed through as it is (its code, `msg`, `details`) |
//!
//! # `DEL` without the agent
//!
//! The spec asks `DEL` to release what it can and succeed, and to be idempotent; containerd
//! forgets its cached result only after a successful `DEL`, and a `DEL` that keeps failing keeps
//! the pod sandbox (and the pod, in kubelet) from going away. So when the agent cannot be
//! reached at all (no socket, or refused for 2 s), `DEL` succeeds and says so on stderr. What
//! the attachment held (the OVS port, the host end of the veth) is the agent's to clean up
//! when it starts, by comparing what it finds with the sandboxes that still exist, as it must
//! anyway for the `DEL`s it missed while down. When the agent is reachable but fails or does
//! not answer in time, `DEL` fails with its error (the runtime retries), since the agent is
//! there to finish the job.

pub mod plugin;
pub mod protocol;
pub mod spec;
