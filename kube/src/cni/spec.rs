//! The CNI side of the plugin, pure: the environment, the network configuration, the result and
//! the error object of CNI 1.0.0 and 1.1.0. No IO: [`plugin`](super::plugin) reads stdin, talks
//! to the agent and prints what these functions return.
//!
//! ```
//! use std::collections::BTreeMap;
//! use ovnkit_kube::cni::spec::{CniCommand, CniEnv, CniError, NetConf};
//!
//! let env: BTreeMap<String, String> = [
//!     ("CNI_COMMAND", "ADD"),
//!     ("CNI_CONTAINERID", "f00d"),
//!     ("CNI_NETNS", "/var/run/netns/cni-1"),
//!     ("CNI_IFNAME", "eth0"),
//!     ("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web"),
//! ]
//! .into_iter()
//! .map(|(k, v)| (k.to_owned(), v.to_owned()))
//! .collect();
//! let env = CniEnv::from_map(&env).unwrap();
//! assert_eq!(env.command, CniCommand::Add);
//! assert_eq!(env.args.pod.as_ref().unwrap().name, "web");
//!
//! let conf = NetConf::parse(br#"{"cniVersion":"1.0.0","name":"ovn","type":"ovnkit"}"#).unwrap();
//! assert_eq!(conf.agent_socket.to_str(), Some("/run/ovnkit/agent.sock"));
//!
//! let err = NetConf::parse(br#"{"cniVersion":"0.4.0","name":"ovn","type":"ovnkit"}"#).unwrap_err();
//! assert_eq!(err.code, CniError::INCOMPATIBLE_VERSION);
//! assert_eq!(
//!     err.msg,
//!     r#"network configuration: cniVersion "0.4.0" is not supported (supported: 1.0.0, 1.1.0)"#
//! );
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::protocol::{
    Attachment, AttachmentRef, Command, Dns, Interface, IpConfig, PodRef, Request, Route,
};

/// The CNI versions the plugin speaks, oldest first.
pub const SUPPORTED_VERSIONS: [&str; 2] = ["1.0.0", "1.1.0"];
/// The largest network configuration read from stdin, in bytes (1 MiB).
pub const MAX_CONFIG: usize = 1 << 20;
/// Where the agent listens unless the configuration says `agentSocket`.
pub const DEFAULT_AGENT_SOCKET: &str = "/run/ovnkit/agent.sock";
/// How long the plugin waits for the agent's reply unless the configuration says
/// `timeoutSeconds`.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 60;
/// The largest `timeoutSeconds` accepted (one hour).
pub const MAX_TIMEOUT_SECONDS: u64 = 3600;
/// The smallest `mtu` accepted (the IPv4 minimum).
pub const MIN_MTU: u32 = 68;
/// The largest `mtu` accepted.
pub const MAX_MTU: u32 = 65535;

/// A CNI version the plugin speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum CniVersion {
    /// `1.0.0`: `ADD`, `DEL`, `CHECK`, `VERSION`.
    V1_0_0,
    /// `1.1.0`: adds `STATUS`, `GC` and `mtu` on result interfaces.
    V1_1_0,
}

impl CniVersion {
    /// The version as CNI writes it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            CniVersion::V1_0_0 => "1.0.0",
            CniVersion::V1_1_0 => "1.1.0",
        }
    }

    /// The version written `s`, if the plugin speaks it.
    #[must_use]
    pub fn parse(s: &str) -> Option<CniVersion> {
        match s {
            "1.0.0" => Some(CniVersion::V1_0_0),
            "1.1.0" => Some(CniVersion::V1_1_0),
            _ => None,
        }
    }
}

impl fmt::Display for CniVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A CNI error: what the plugin prints on stdout (as [`CniError::to_json`]) before it exits 1.
///
/// Its `Display` is libcni's: `msg`, then `; details` when there are details.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg}{}", if details.is_empty() { String::new() } else { format!("; {details}") })]
pub struct CniError {
    /// The CNI error code (the constants of this type, or the agent's own code, 100 and up).
    pub code: u32,
    /// What failed and why, naming the variable, field or socket.
    pub msg: String,
    /// More context: the underlying OS or decoder error, or what to do about it.
    pub details: String,
}

impl CniError {
    /// 1: the configuration's `cniVersion` is not one the plugin speaks, or the command does not
    /// exist in it (`STATUS` or `GC` under 1.0.0).
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// 2: a field of the network configuration is not supported.
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// 3: the container is unknown or does not exist.
    pub const CONTAINER_UNKNOWN: u32 = 3;
    /// 4: a `CNI_*` environment variable is missing or invalid.
    pub const INVALID_ENV: u32 = 4;
    /// 5: I/O failed: reading stdin, or the agent's connection.
    pub const IO_FAILURE: u32 = 5;
    /// 6: content could not be decoded: stdin, or the agent's reply.
    pub const DECODE_FAILURE: u32 = 6;
    /// 7: the network configuration is invalid.
    pub const INVALID_CONFIG: u32 = 7;
    /// 11: a transient condition (the agent is not reachable or did not answer in time).
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// 50: the plugin cannot serve `ADD` now (`STATUS`).
    pub const NOT_AVAILABLE: u32 = 50;
    /// 51: the plugin cannot serve `ADD` and existing containers may have limited connectivity
    /// (`STATUS`).
    pub const LIMITED_CONNECTIVITY: u32 = 51;

    /// An error with no details.
    #[must_use]
    pub fn new(code: u32, msg: impl Into<String>) -> CniError {
        CniError {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    /// The same error with `details`.
    #[must_use]
    pub fn with_details(mut self, details: impl Into<String>) -> CniError {
        self.details = details.into();
        self
    }

    /// The CNI error object in `version`: `{"cniVersion","code","msg","details"}` (`details`
    /// left out when empty).
    #[must_use]
    pub fn to_json(&self, version: CniVersion) -> Value {
        let mut v = json!({
            "cniVersion": version.as_str(),
            "code": self.code,
            "msg": self.msg,
        });
        if !self.details.is_empty() {
            v["details"] = Value::String(self.details.clone());
        }
        v
    }
}

fn invalid_env(msg: impl Into<String>) -> CniError {
    CniError::new(CniError::INVALID_ENV, msg)
}

fn invalid_config(msg: impl fmt::Display) -> CniError {
    CniError::new(
        CniError::INVALID_CONFIG,
        format!("network configuration: {msg}"),
    )
}

/// `CNI_COMMAND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CniCommand {
    /// `ADD`.
    Add,
    /// `DEL`.
    Del,
    /// `CHECK`.
    Check,
    /// `VERSION`: answered by the plugin itself.
    Version,
    /// `STATUS` (1.1.0).
    Status,
    /// `GC` (1.1.0).
    Gc,
}

impl CniCommand {
    /// The command written `s` (as in `CNI_COMMAND`).
    #[must_use]
    pub fn parse(s: &str) -> Option<CniCommand> {
        Some(match s {
            "ADD" => CniCommand::Add,
            "DEL" => CniCommand::Del,
            "CHECK" => CniCommand::Check,
            "VERSION" => CniCommand::Version,
            "STATUS" => CniCommand::Status,
            "GC" => CniCommand::Gc,
            _ => return None,
        })
    }

    /// The command as CNI writes it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            CniCommand::Add => "ADD",
            CniCommand::Del => "DEL",
            CniCommand::Check => "CHECK",
            CniCommand::Version => "VERSION",
            CniCommand::Status => "STATUS",
            CniCommand::Gc => "GC",
        }
    }

    /// The environment variables the command needs besides `CNI_COMMAND` (the spec's
    /// "required environment parameters"; `DEL` may have an empty `CNI_NETNS`).
    #[must_use]
    pub fn required_vars(self) -> &'static [&'static str] {
        match self {
            CniCommand::Add | CniCommand::Check => &[CONTAINERID, NETNS, IFNAME],
            CniCommand::Del => &[CONTAINERID, IFNAME],
            CniCommand::Version | CniCommand::Status | CniCommand::Gc => &[],
        }
    }

    /// The oldest CNI version that has the command.
    #[must_use]
    pub fn since(self) -> CniVersion {
        match self {
            CniCommand::Status | CniCommand::Gc => CniVersion::V1_1_0,
            _ => CniVersion::V1_0_0,
        }
    }

    /// What the plugin asks the agent (`None` for `VERSION`, answered locally).
    #[must_use]
    pub fn agent_command(self) -> Option<Command> {
        match self {
            CniCommand::Add => Some(Command::Add),
            CniCommand::Del => Some(Command::Del),
            CniCommand::Check => Some(Command::Check),
            CniCommand::Status => Some(Command::Status),
            CniCommand::Gc => Some(Command::Gc),
            CniCommand::Version => None,
        }
    }
}

impl fmt::Display for CniCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `CNI_COMMAND`.
pub const COMMAND: &str = "CNI_COMMAND";
/// `CNI_CONTAINERID`.
pub const CONTAINERID: &str = "CNI_CONTAINERID";
/// `CNI_NETNS`.
pub const NETNS: &str = "CNI_NETNS";
/// `CNI_IFNAME`.
pub const IFNAME: &str = "CNI_IFNAME";
/// `CNI_ARGS`.
pub const ARGS: &str = "CNI_ARGS";
/// `CNI_PATH`.
pub const PATH: &str = "CNI_PATH";

/// `CNI_ARGS`: `KEY=VALUE` pairs separated by `;`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs {
    /// Every pair, in order.
    pub pairs: Vec<(String, String)>,
    /// The pod, from `K8S_POD_NAMESPACE`, `K8S_POD_NAME` and `K8S_POD_UID`.
    pub pod: Option<PodRef>,
    /// `K8S_POD_INFRA_CONTAINER_ID`.
    pub infra_container_id: Option<String>,
}

impl CniArgs {
    /// Parses `CNI_ARGS`. Keys the plugin does not know are kept in `pairs` and otherwise
    /// ignored (whether or not `IgnoreUnknown=1` is there).
    ///
    /// # Errors
    /// Code 4: a pair without `=` or with an empty key, a key given twice, or a pod name
    /// without its namespace (or the other way round).
    pub fn parse(s: &str) -> Result<CniArgs, CniError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in s.split(';').filter(|p| !p.is_empty()) {
            let Some((k, v)) = part.split_once('=') else {
                return Err(invalid_env(format!("{ARGS}: {part:?} is not KEY=VALUE")));
            };
            if k.is_empty() {
                return Err(invalid_env(format!("{ARGS}: {part:?} has an empty key")));
            }
            if pairs.iter().any(|(seen, _)| seen == k) {
                return Err(invalid_env(format!("{ARGS}: {k} is given twice")));
            }
            pairs.push((k.to_owned(), v.to_owned()));
        }
        let get = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        let pod = match (get("K8S_POD_NAMESPACE"), get("K8S_POD_NAME")) {
            (Some(namespace), Some(name)) => Some(PodRef {
                namespace,
                name,
                uid: get("K8S_POD_UID"),
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid_env(format!(
                    "{ARGS}: K8S_POD_NAMESPACE without K8S_POD_NAME"
                )));
            }
            (None, Some(_)) => {
                return Err(invalid_env(format!(
                    "{ARGS}: K8S_POD_NAME without K8S_POD_NAMESPACE"
                )));
            }
        };
        let infra_container_id = get("K8S_POD_INFRA_CONTAINER_ID");
        Ok(CniArgs {
            pairs,
            pod,
            infra_container_id,
        })
    }
}

/// The `CNI_*` environment of one invocation, checked for the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniEnv {
    /// `CNI_COMMAND`.
    pub command: CniCommand,
    /// `CNI_CONTAINERID` (empty when the command needs none and none was given).
    pub container_id: String,
    /// `CNI_NETNS` (empty on the second `DEL` of containerd, and for `STATUS`/`GC`).
    pub netns: String,
    /// `CNI_IFNAME`.
    pub ifname: String,
    /// `CNI_ARGS`.
    pub args: CniArgs,
    /// `CNI_PATH`, split on `:` (the plugin delegates to nothing, so it is only kept).
    pub path: Vec<PathBuf>,
}

impl CniEnv {
    /// Reads the `CNI_*` variables from `vars` (the process environment, or a test's map).
    ///
    /// # Errors
    /// Code 4, naming the variables: `CNI_COMMAND` missing or unknown; the command's required
    /// variables missing or empty (all of them in one message); a container id or interface
    /// name the spec forbids; a bad `CNI_ARGS`.
    pub fn from_map(vars: &BTreeMap<String, String>) -> Result<CniEnv, CniError> {
        let command = CniEnv::command_of(vars)?;
        let get = |k: &str| vars.get(k).map(String::as_str).unwrap_or_default();
        let missing: Vec<&str> = command
            .required_vars()
            .iter()
            .copied()
            .filter(|k| get(k).is_empty())
            .collect();
        if !missing.is_empty() {
            return Err(invalid_env(format!(
                "{} {} not set ({command} needs {})",
                list_and(&missing),
                if missing.len() == 1 { "is" } else { "are" },
                list_and(command.required_vars()),
            )));
        }
        let container_id = get(CONTAINERID).to_owned();
        if !container_id.is_empty()
            && let Some(reason) = bad_identifier(&container_id)
        {
            return Err(invalid_env(format!(
                "{CONTAINERID}={container_id:?}: {reason}"
            )));
        }
        let ifname = get(IFNAME).to_owned();
        if !ifname.is_empty()
            && let Some(reason) = bad_ifname(&ifname)
        {
            return Err(invalid_env(format!("{IFNAME}={ifname:?}: {reason}")));
        }
        let args = CniArgs::parse(get(ARGS))?;
        let path = get(PATH)
            .split(':')
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect();
        Ok(CniEnv {
            command,
            container_id,
            netns: get(NETNS).to_owned(),
            ifname,
            args,
            path,
        })
    }

    /// Only `CNI_COMMAND` of `vars`.
    ///
    /// # Errors
    /// Code 4: missing, empty or unknown.
    pub fn command_of(vars: &BTreeMap<String, String>) -> Result<CniCommand, CniError> {
        match vars.get(COMMAND).map(String::as_str) {
            None | Some("") => Err(invalid_env(format!(
                "{COMMAND} is not set (ADD, DEL, CHECK, STATUS, GC or VERSION)"
            ))),
            Some(c) => CniCommand::parse(c).ok_or_else(|| {
                invalid_env(format!(
                    "{COMMAND}={c:?}: unknown command (ADD, DEL, CHECK, STATUS, GC or VERSION)"
                ))
            }),
        }
    }
}

fn list_and(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Why `s` is not a container id or network name of the spec: an alphanumeric character, then
/// alphanumerics, `_`, `.` and `-`.
fn bad_identifier(s: &str) -> Option<&'static str> {
    let mut chars = s.chars();
    match chars.next() {
        None => Some("empty"),
        Some(c) if !c.is_ascii_alphanumeric() => Some("must start with a letter or digit"),
        _ if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) => {
            Some("only letters, digits, '_', '.' and '-' are allowed")
        }
        _ => None,
    }
}

/// Why `s` is not an interface name of the spec.
fn bad_ifname(s: &str) -> Option<&'static str> {
    if s == "." || s == ".." {
        Some("\".\" and \"..\" are not interface names")
    } else if s.len() > 15 {
        Some("longer than 15 bytes")
    } else if s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        Some("'/', ':' and whitespace are not allowed")
    } else {
        None
    }
}

/// The network configuration on stdin: the CNI fields and the plugin's own.
///
/// | field | type | default | |
/// |---|---|---|---|
/// | `cniVersion` | string | required | `1.0.0` or `1.1.0` |
/// | `name` | string | required | the network; the agent's `Request::network` |
/// | `type` | string | required | the executable's name (`ovnkit`) |
/// | `agentSocket` | string | `/run/ovnkit/agent.sock` | an absolute path |
/// | `mtu` | integer | the agent's | 68 to 65535 |
/// | `timeoutSeconds` | integer | 60 | 1 to 3600: how long to wait for the agent's reply |
/// | `prevResult` | object | | the `ADD` result (`CHECK` needs it; `DEL` does not read it) |
/// | `cni.dev/valid-attachments` | array | | `GC` (1.1.0) needs it: `{"containerID","ifname"}` |
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NetConf {
    /// `cniVersion`.
    pub cni_version: CniVersion,
    /// `name`.
    pub name: String,
    /// `type`.
    pub plugin_type: String,
    /// `agentSocket`.
    pub agent_socket: PathBuf,
    /// `mtu`.
    pub mtu: Option<u32>,
    /// `timeoutSeconds`.
    pub timeout: Duration,
    /// `prevResult`, as given.
    pub prev_result: Option<Value>,
    /// `cni.dev/valid-attachments`.
    pub valid_attachments: Option<Vec<AttachmentRef>>,
}

/// The key of the attachments a `GC` keeps.
pub const VALID_ATTACHMENTS: &str = "cni.dev/valid-attachments";

impl NetConf {
    /// Parses the network configuration (at most [`MAX_CONFIG`] bytes; the caller enforces it
    /// when reading, this checks it again).
    ///
    /// # Errors
    /// Code 5 over [`MAX_CONFIG`]; 6 when not a JSON object; 1 for a `cniVersion` the plugin
    /// does not speak; 7 for a missing or invalid field, naming it.
    pub fn parse(bytes: &[u8]) -> Result<NetConf, CniError> {
        if bytes.len() > MAX_CONFIG {
            return Err(too_large(bytes.len()));
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            CniError::new(
                CniError::DECODE_FAILURE,
                format!("network configuration on stdin is not JSON: {e}"),
            )
        })?;
        let Value::Object(obj) = value else {
            return Err(CniError::new(
                CniError::DECODE_FAILURE,
                format!(
                    "network configuration on stdin must be a JSON object, not {}",
                    kind(&value)
                ),
            ));
        };
        let version = string_field(&obj, "cniVersion")?;
        let cni_version = CniVersion::parse(version).ok_or_else(|| {
            CniError::new(
                CniError::INCOMPATIBLE_VERSION,
                format!(
                    "network configuration: cniVersion {version:?} is not supported (supported: {})",
                    SUPPORTED_VERSIONS.join(", ")
                ),
            )
        })?;
        let name = string_field(&obj, "name")?;
        if let Some(reason) = bad_identifier(name) {
            return Err(invalid_config(format_args!("name {name:?}: {reason}")));
        }
        let plugin_type = string_field(&obj, "type")?.to_owned();
        let agent_socket = match obj.get("agentSocket") {
            None | Some(Value::Null) => PathBuf::from(DEFAULT_AGENT_SOCKET),
            Some(Value::String(s)) if s.starts_with('/') => PathBuf::from(s),
            Some(Value::String(s)) => {
                return Err(invalid_config(format_args!(
                    "agentSocket {s:?}: not an absolute path"
                )));
            }
            Some(v) => return Err(wrong_type("agentSocket", "a string", v)),
        };
        let mtu = integer_field(&obj, "mtu", u64::from(MIN_MTU), u64::from(MAX_MTU))?
            .map(|m| u32::try_from(m).unwrap_or(MAX_MTU));
        let timeout = Duration::from_secs(
            integer_field(&obj, "timeoutSeconds", 1, MAX_TIMEOUT_SECONDS)?
                .unwrap_or(DEFAULT_TIMEOUT_SECONDS),
        );
        let prev_result = match obj.get("prevResult") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) => Some(v.clone()),
            Some(v) => return Err(wrong_type("prevResult", "an object", v)),
        };
        let valid_attachments = match obj.get(VALID_ATTACHMENTS) {
            None | Some(Value::Null) => None,
            Some(v) => Some(valid_attachments(v)?),
        };
        Ok(NetConf {
            cni_version,
            name: name.to_owned(),
            plugin_type,
            agent_socket,
            mtu,
            timeout,
            prev_result,
            valid_attachments,
        })
    }

    /// The `cniVersion` of `bytes` if it is a JSON object with a version the plugin speaks:
    /// the version to answer errors and `VERSION` in, before (or without) a full parse.
    #[must_use]
    pub fn requested_version(bytes: &[u8]) -> Option<CniVersion> {
        if bytes.len() > MAX_CONFIG {
            return None;
        }
        // Through `Value`, as `parse` reads it (the last of repeated keys wins).
        let value: Value = serde_json::from_slice(bytes).ok()?;
        CniVersion::parse(value.get("cniVersion")?.as_str()?)
    }
}

/// The error for a network configuration over [`MAX_CONFIG`] bytes (`read`: at least how
/// many there were).
#[must_use]
pub fn too_large(read: usize) -> CniError {
    CniError::new(
        CniError::IO_FAILURE,
        format!("network configuration on stdin is over {MAX_CONFIG} bytes (read {read})"),
    )
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(field: &str, want: &str, got: &Value) -> CniError {
    invalid_config(format_args!("{field} must be {want}, not {}", kind(got)))
}

fn string_field<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, CniError> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(invalid_config(format_args!("{field} is missing"))),
        Some(Value::String(s)) if s.is_empty() => {
            Err(invalid_config(format_args!("{field} is empty")))
        }
        Some(Value::String(s)) => Ok(s),
        Some(v) => Err(wrong_type(field, "a string", v)),
    }
}

fn integer_field(
    obj: &Map<String, Value>,
    field: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, CniError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(i) if (min..=max).contains(&i) => Ok(Some(i)),
            _ => Err(invalid_config(format_args!(
                "{field} {n}: not an integer from {min} to {max}"
            ))),
        },
        Some(v) => Err(wrong_type(field, "an integer", v)),
    }
}

fn valid_attachments(v: &Value) -> Result<Vec<AttachmentRef>, CniError> {
    let Value::Array(items) = v else {
        return Err(wrong_type(VALID_ATTACHMENTS, "an array", v));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let field = |key: &str| match item.get(key) {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                _ => Err(invalid_config(format_args!(
                    "{VALID_ATTACHMENTS}[{i}]: {key} is missing or not a non-empty string"
                ))),
            };
            Ok(AttachmentRef {
                container_id: field("containerID")?,
                ifname: field("ifname")?,
            })
        })
        .collect()
}

/// What the plugin asks the agent for `env` and `conf`. `None` for `VERSION`.
///
/// # Errors
/// Code 1 for `STATUS` or `GC` under `cniVersion` 1.0.0 (as libcni's `skel` answers); 7 for a
/// `CHECK` without a usable `prevResult`, or a `GC` without `cni.dev/valid-attachments`
/// (without it the agent would remove every attachment).
pub fn request(env: &CniEnv, conf: &NetConf) -> Result<Option<Request>, CniError> {
    let Some(command) = env.command.agent_command() else {
        return Ok(None);
    };
    if conf.cni_version < env.command.since() {
        return Err(CniError::new(
            CniError::INCOMPATIBLE_VERSION,
            format!(
                "{} is not a command of cniVersion {} (it is one of {} and later)",
                env.command,
                conf.cni_version,
                env.command.since()
            ),
        ));
    }
    let prev_result = match env.command {
        CniCommand::Check => {
            let Some(prev) = &conf.prev_result else {
                return Err(invalid_config(
                    "CHECK needs prevResult (the result of the ADD)",
                ));
            };
            Some(attachment_of_result(prev, &env.ifname)?)
        }
        _ => None,
    };
    let valid_attachments = match env.command {
        CniCommand::Gc => conf.valid_attachments.clone().ok_or_else(|| {
            invalid_config(format_args!(
                "GC needs {VALID_ATTACHMENTS} (without it every attachment would be removed)"
            ))
        })?,
        _ => Vec::new(),
    };
    Ok(Some(Request {
        command,
        container_id: env.container_id.clone(),
        netns: env.netns.clone(),
        ifname: env.ifname.clone(),
        pod: env.args.pod.clone(),
        network: conf.name.clone(),
        mtu: conf.mtu,
        prev_result,
        valid_attachments,
    }))
}

/// The CNI result of `ADD` in `version`: `interfaces` (the host end, then the pod end with
/// its `sandbox`), `ips` pointing at the pod end (`"interface": 1`), `routes` and `dns`.
/// `mtu` on interfaces only in 1.1.0, which defines it.
#[must_use]
pub fn result_json(version: CniVersion, a: &Attachment) -> Value {
    let iface = |i: &Interface| {
        let mut v = json!({ "name": i.name, "mac": i.mac });
        if let (Some(mtu), CniVersion::V1_1_0) = (i.mtu, version) {
            v["mtu"] = mtu.into();
        }
        if let Some(sandbox) = &i.sandbox {
            v["sandbox"] = sandbox.clone().into();
        }
        v
    };
    let mut out = json!({
        "cniVersion": version.as_str(),
        "interfaces": [iface(&a.host), iface(&a.pod)],
        "ips": a.ips.iter().map(|ip| {
            let mut v = json!({ "address": ip.address.to_string(), "interface": 1 });
            if let Some(gw) = ip.gateway {
                v["gateway"] = gw.to_string().into();
            }
            v
        }).collect::<Vec<_>>(),
    });
    if !a.routes.is_empty() {
        out["routes"] = a
            .routes
            .iter()
            .map(|r| {
                let mut v = json!({ "dst": r.dst.to_string() });
                if let Some(gw) = r.gw {
                    v["gw"] = gw.to_string().into();
                }
                v
            })
            .collect();
    }
    if let Some(dns) = &a.dns {
        out["dns"] = serde_json::to_value(dns).unwrap_or_default();
    }
    out
}

/// The answer to `VERSION`, in `version` (the configuration's, when it names one the plugin
/// speaks; else 1.0.0, which every runtime that speaks CNI 1.x reads).
#[must_use]
pub fn version_json(version: Option<CniVersion>) -> Value {
    json!({
        "cniVersion": version.unwrap_or(CniVersion::V1_0_0).as_str(),
        "supportedVersions": SUPPORTED_VERSIONS,
    })
}

#[derive(Deserialize)]
struct ResultIn {
    #[serde(default)]
    interfaces: Vec<InterfaceIn>,
    #[serde(default)]
    ips: Vec<IpIn>,
    #[serde(default)]
    routes: Vec<Route>,
    #[serde(default)]
    dns: Option<Dns>,
}

#[derive(Deserialize)]
struct InterfaceIn {
    name: String,
    #[serde(default)]
    mac: String,
    #[serde(default)]
    mtu: Option<u32>,
    #[serde(default)]
    sandbox: Option<String>,
}

#[derive(Deserialize)]
struct IpIn {
    address: ipnet::IpNet,
    #[serde(default)]
    gateway: Option<std::net::IpAddr>,
    #[serde(default)]
    interface: Option<usize>,
}

/// The attachment a CNI result (a `prevResult`) describes, for the pod interface `ifname`: the
/// first interface without a sandbox is the host end, the one in a sandbox named `ifname`
/// (else the first in a sandbox) the pod end; the addresses are those on the pod end or on no
/// interface. The inverse of [`result_json`].
///
/// # Errors
/// Code 7, naming `prevResult` and what is wrong in it.
pub fn attachment_of_result(result: &Value, ifname: &str) -> Result<Attachment, CniError> {
    let r = ResultIn::deserialize(result)
        .map_err(|e| invalid_config(format_args!("prevResult: {e}")))?;
    let in_sandbox = |i: &InterfaceIn| i.sandbox.as_deref().is_some_and(|s| !s.is_empty());
    let host = r
        .interfaces
        .iter()
        .position(|i| !in_sandbox(i))
        .ok_or_else(|| invalid_config("prevResult: no host interface (one without a sandbox)"))?;
    let pod = r
        .interfaces
        .iter()
        .position(|i| in_sandbox(i) && i.name == ifname)
        .or_else(|| r.interfaces.iter().position(in_sandbox))
        .ok_or_else(|| invalid_config("prevResult: no pod interface (one with a sandbox)"))?;
    let to_iface = |i: &InterfaceIn| Interface {
        name: i.name.clone(),
        mac: i.mac.clone(),
        mtu: i.mtu,
        sandbox: i.sandbox.clone().filter(|s| !s.is_empty()),
    };
    Ok(Attachment {
        host: to_iface(&r.interfaces[host]),
        pod: to_iface(&r.interfaces[pod]),
        ips: r
            .ips
            .iter()
            .filter(|ip| ip.interface.is_none_or(|i| i == pod))
            .map(|ip| IpConfig {
                address: ip.address,
                gateway: ip.gateway,
            })
            .collect(),
        routes: r.routes,
        dns: r.dns.filter(|d| *d != Dns::default()),
    })
}

#[cfg(test)]
mod tests;
