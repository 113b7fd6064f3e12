//! The node agent's socket protocol: what the CNI plugin asks and what it gets back.
//!
//! One connection per request, on the agent's unix socket (mode 0600): the plugin writes one
//! [`Request`] as JSON followed by a newline, the agent answers one [`Reply`] as JSON followed
//! by a newline and closes the connection. Neither side accepts a message over
//! [`MAX_MESSAGE`] bytes. The messages do not depend on the CNI version the runtime speaks:
//! the plugin turns an [`Attachment`] into the result of the version the network
//! configuration asks for.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The largest request or reply either side reads, in bytes.
pub const MAX_MESSAGE: usize = 1 << 20;

/// What the runtime asked the plugin to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Command {
    /// Attach the container (`CNI_COMMAND=ADD`).
    Add,
    /// Detach it; succeeds when there is nothing to detach (`DEL`).
    Del,
    /// Verify an attachment (`CHECK`).
    Check,
    /// Remove every attachment not in [`Request::valid_attachments`] (`GC`, CNI 1.1.0).
    Gc,
    /// Whether the agent can serve `ADD` now (`STATUS`, CNI 1.1.0).
    Status,
}

/// The pod a request is for, from `CNI_ARGS` (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`,
/// `K8S_POD_UID`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodRef {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// The pod's UID, when the runtime passed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// One attachment the runtime still knows (a `GC` request's `cni.dev/valid-attachments`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AttachmentRef {
    /// `CNI_CONTAINERID` of the attachment.
    pub container_id: String,
    /// `CNI_IFNAME` of the attachment.
    pub ifname: String,
}

/// A request of the plugin to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// What to do.
    pub command: Command,
    /// `CNI_CONTAINERID` (empty for `GC` and `STATUS`).
    #[serde(default)]
    pub container_id: String,
    /// `CNI_NETNS`: the path of the pod's network namespace (may be empty on `DEL`).
    #[serde(default)]
    pub netns: String,
    /// `CNI_IFNAME`: the interface to create in the pod (`eth0`).
    #[serde(default)]
    pub ifname: String,
    /// The pod, from `CNI_ARGS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodRef>,
    /// The network configuration's `name`.
    #[serde(default)]
    pub network: String,
    /// The MTU the network configuration asks for, if it does (the agent's default otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// For `CHECK`: the attachment the runtime recorded from `ADD` (its `prevResult`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_result: Option<Attachment>,
    /// For `GC`: the attachments to keep.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub valid_attachments: Vec<AttachmentRef>,
}

/// An interface of an attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Its name.
    pub name: String,
    /// Its MAC address, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// Its MTU, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The network namespace path it is in; `None` for the host side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

/// An address on the pod's interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// The address with the subnet's prefix length (`10.16.0.5/16`).
    pub address: IpNet,
    /// The gateway of its subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

/// A route in the pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The destination.
    pub dst: IpNet,
    /// The next hop (`None`: on link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
}

/// The pod's resolver settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    /// Name servers, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// The local domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The search list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// Resolver options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// What `ADD` made: the host and pod ends of the veth pair, the pod's addresses and routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The host end (on `br-int`).
    pub host: Interface,
    /// The pod end (`CNI_IFNAME` in the pod's namespace).
    pub pod: Interface,
    /// The pod's addresses.
    pub ips: Vec<IpConfig>,
    /// The pod's routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// The pod's resolver settings, when the agent has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
}

/// Why a request failed, as a CNI error: `code` is one of the CNI error codes (see
/// [`crate::cni`]), `msg` a short text, `details` the longer one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The CNI error code.
    pub code: u32,
    /// A short message.
    pub msg: String,
    /// The details.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

/// The agent's answer.
// One reply per connection, decoded once and dropped: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reply")]
pub enum Reply {
    /// `ADD` attached the pod.
    Added {
        /// What it made.
        attachment: Attachment,
    },
    /// `DEL`, `CHECK`, `GC` or `STATUS` succeeded.
    Done,
    /// The request failed.
    Failed {
        /// Why.
        #[serde(flatten)]
        failure: Failure,
    },
}
