//! A blocking client of the Container Runtime Interface (CRI), the gRPC API the kubelet drives
//! a container runtime with.
//!
//! The testbed is synchronous, so [`CriClient`] owns a small tokio current-thread runtime and
//! blocks on each call with a timeout. It speaks CRI `v1` over a unix socket (containerd's
//! `grpc.address`), and knows the few calls a lab needs: run a pod sandbox, read its IP and
//! network namespace, run one app container in it, and tear it all down. Errors name the call
//! and the pod ([`Error::Cri`]).

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::error::{Error, Result};

/// How long a CRI call may take by default.
pub const CRI_TIMEOUT: Duration = Duration::from_secs(30);

/// The sandbox image the lab's containerd is configured with.
pub const PAUSE_IMAGE: &str = "localhost/pause:latest";

/// The image of the lab's app containers: busybox, `Cmd` `/bin/sh`.
pub const BUSYBOX_IMAGE: &str = "localhost/busybox:latest";

/// What a pod sandbox is made of: the CRI `PodSandboxConfig` fields the lab sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSpec {
    name: String,
    namespace: String,
    uid: String,
    hostname: String,
    log_directory: Option<PathBuf>,
    cgroup_parent: String,
    app: Option<ContainerSpec>,
}

impl PodSpec {
    /// A pod `name` in namespace `default`, with uid `uid-<name>`, hostname `name`, and one
    /// app container ([`ContainerSpec::sleep`]).
    pub fn new(name: &str) -> Self {
        PodSpec {
            name: name.to_string(),
            namespace: "default".to_string(),
            uid: format!("uid-{name}"),
            hostname: name.to_string(),
            log_directory: None,
            cgroup_parent: String::new(),
            app: Some(ContainerSpec::sleep("app")),
        }
    }

    /// Sets the Kubernetes namespace (default `default`).
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = namespace.to_string();
        self
    }

    /// Sets the pod's uid (default `uid-<name>`).
    pub fn uid(mut self, uid: &str) -> Self {
        self.uid = uid.to_string();
        self
    }

    /// Sets the hostname (default: the pod's name).
    pub fn hostname(mut self, hostname: &str) -> Self {
        self.hostname = hostname.to_string();
        self
    }

    /// Sets the pod's log directory (a lab's containerd uses one under its own directory).
    pub fn log_directory(mut self, dir: impl Into<PathBuf>) -> Self {
        self.log_directory = Some(dir.into());
        self
    }

    /// Sets the cgroup parent (a lab's containerd sets one of its own).
    pub fn cgroup_parent(mut self, parent: &str) -> Self {
        self.cgroup_parent = parent.to_string();
        self
    }

    /// Replaces the app container; `None` runs the sandbox alone.
    pub fn app(mut self, app: Option<ContainerSpec>) -> Self {
        self.app = app;
        self
    }

    /// The pod's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `namespace/name`, as errors show the pod.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub(crate) fn log_directory_path(&self) -> Option<&Path> {
        self.log_directory.as_deref()
    }

    pub(crate) fn has_cgroup_parent(&self) -> bool {
        !self.cgroup_parent.is_empty()
    }

    pub(crate) fn app_spec(&self) -> Option<&ContainerSpec> {
        self.app.as_ref()
    }

    fn namespace_options() -> cri::NamespaceOption {
        cri::NamespaceOption {
            network: cri::NamespaceMode::Pod as i32,
            pid: cri::NamespaceMode::Container as i32,
            ipc: cri::NamespaceMode::Pod as i32,
            ..Default::default()
        }
    }

    /// The CRI sandbox config (also sent along with every CreateContainer).
    fn to_cri(&self) -> cri::PodSandboxConfig {
        cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: self.name.clone(),
                uid: self.uid.clone(),
                namespace: self.namespace.clone(),
                attempt: 0,
            }),
            hostname: self.hostname.clone(),
            log_directory: self
                .log_directory
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: self.cgroup_parent.clone(),
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(Self::namespace_options()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// An app container: name, image, command and arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    name: String,
    image: String,
    command: Vec<String>,
    args: Vec<String>,
}

impl ContainerSpec {
    /// A container `name` of [`BUSYBOX_IMAGE`] running `/bin/sleep 3600`.
    pub fn sleep(name: &str) -> Self {
        ContainerSpec {
            name: name.to_string(),
            image: BUSYBOX_IMAGE.to_string(),
            command: vec!["/bin/sleep".to_string()],
            args: vec!["3600".to_string()],
        }
    }

    /// A container `name` of `image` running `command` (the first word is the program).
    /// The image must already be in containerd's `k8s.io` namespace: CreateContainer does not
    /// pull, and a short name such as `busybox` means `docker.io/library/busybox`.
    pub fn new(name: &str, image: &str, command: &[&str]) -> Self {
        let mut words = command.iter().map(|w| w.to_string());
        ContainerSpec {
            name: name.to_string(),
            image: image.to_string(),
            command: words.next().into_iter().collect(),
            args: words.collect(),
        }
    }

    /// The container's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The runtime's name and versions, as `Version` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeVersion {
    /// E.g. `containerd`.
    pub runtime_name: String,
    /// E.g. `1.6.20~ds1`.
    pub runtime_version: String,
    /// The CRI API version, e.g. `v1`.
    pub api_version: String,
}

/// The runtime's conditions, as `Status` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConditions {
    /// `(type, status, reason, message)` of each condition.
    pub conditions: Vec<(String, bool, String, String)>,
}

impl RuntimeConditions {
    fn is(&self, kind: &str) -> bool {
        self.conditions.iter().any(|(t, s, _, _)| t == kind && *s)
    }

    /// `RuntimeReady` is true.
    pub fn runtime_ready(&self) -> bool {
        self.is("RuntimeReady")
    }

    /// `NetworkReady` is true: the runtime loaded a CNI configuration.
    pub fn network_ready(&self) -> bool {
        self.is("NetworkReady")
    }
}

/// What `PodSandboxStatus` (verbose) says of a sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxStatus {
    /// The sandbox id.
    pub id: String,
    /// Whether the sandbox is `SANDBOX_READY`.
    pub ready: bool,
    /// The pod IP: the first IP of the CNI result.
    pub ip: Option<IpAddr>,
    /// The pod's network namespace file (from the runtime spec in containerd's verbose info).
    pub netns: Option<PathBuf>,
    /// The PID of the sandbox (pause) process.
    pub pid: Option<i32>,
}

/// A sandbox as `ListPodSandbox` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSummary {
    /// The sandbox id.
    pub id: String,
    /// The pod's name.
    pub name: String,
    /// The pod's Kubernetes namespace.
    pub namespace: String,
    /// Whether the sandbox is `SANDBOX_READY`.
    pub ready: bool,
}

/// A blocking CRI `v1` client on a unix socket.
///
/// Each call blocks on a private current-thread tokio runtime and fails after the timeout
/// (default [`CRI_TIMEOUT`]). The client remembers which pod each sandbox and container id
/// belongs to, so that errors name the pod. It may be shared between threads.
pub struct CriClient {
    rt: tokio::runtime::Runtime,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
    socket: PathBuf,
    timeout: Duration,
    /// Sandbox and container ids -> `namespace/name` of their pod.
    owners: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for CriClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CriClient")
            .field("socket", &self.socket)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn transport(call: &'static str, pod: &str, message: impl std::fmt::Display) -> Error {
    Error::Cri {
        call,
        pod: pod.to_string(),
        code: "Transport".to_string(),
        message: message.to_string(),
    }
}

impl CriClient {
    /// Connects to the CRI server on unix socket `socket`.
    pub fn connect(socket: &Path) -> Result<CriClient> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("building the CRI client's runtime", e))?;
        let path = socket.to_path_buf();
        // The URI is never dialled: the connector below opens the unix socket instead.
        let endpoint = Endpoint::from_static("http://[::]:50051");
        let channel = rt.block_on(async {
            let connect =
                endpoint.connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?))
                    }
                }));
            match tokio::time::timeout(CRI_TIMEOUT, connect).await {
                Ok(Ok(channel)) => Ok(channel),
                Ok(Err(e)) => Err(transport(
                    "connect",
                    "",
                    format!("{}: {e:?}", socket.display()),
                )),
                Err(_) => Err(transport(
                    "connect",
                    "",
                    format!("{}: timed out", socket.display()),
                )),
            }
        })?;
        Ok(CriClient {
            rt,
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
            socket: socket.to_path_buf(),
            timeout: CRI_TIMEOUT,
            owners: Mutex::new(HashMap::new()),
        })
    }

    /// Sets the per-call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Runs one call with the timeout; maps its failure to [`Error::Cri`].
    fn call<T, F>(&self, call: &'static str, pod: &str, fut: F) -> Result<T>
    where
        F: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let timeout = self.timeout;
        match self
            .rt
            .block_on(async { tokio::time::timeout(timeout, fut).await })
        {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(Error::Cri {
                call,
                pod: pod.to_string(),
                code: format!("{:?}", status.code()),
                message: status.message().to_string(),
            }),
            Err(_) => Err(Error::Timeout {
                what: format!(
                    "CRI {call}{}",
                    if pod.is_empty() {
                        String::new()
                    } else {
                        format!(" for pod {pod}")
                    }
                ),
                waited: timeout,
            }),
        }
    }

    /// The pod an id belongs to, or the id itself when this client did not create it.
    fn owner(&self, id: &str) -> String {
        self.owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("with id {}", id.get(..12).unwrap_or(id)))
    }

    fn set_owner(&self, id: &str, pod: &str) {
        self.owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), pod.to_string());
    }

    /// `Version`: the runtime's name and versions.
    pub fn version(&self) -> Result<RuntimeVersion> {
        let mut client = self.runtime.clone();
        let request = cri::VersionRequest {
            version: "v1".to_string(),
        };
        let v = self.call("Version", "", client.version(request))?;
        Ok(RuntimeVersion {
            runtime_name: v.runtime_name,
            runtime_version: v.runtime_version,
            api_version: v.runtime_api_version,
        })
    }

    /// `Status`: the runtime's conditions (`RuntimeReady`, `NetworkReady`).
    pub fn status(&self) -> Result<RuntimeConditions> {
        let mut client = self.runtime.clone();
        let s = self.call(
            "Status",
            "",
            client.status(cri::StatusRequest { verbose: false }),
        )?;
        let conditions = s
            .status
            .map(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.r#type, c.status, c.reason, c.message))
            .collect();
        Ok(RuntimeConditions { conditions })
    }

    /// `ListImages`: the references of the images in the runtime's CRI namespace.
    pub fn list_images(&self) -> Result<Vec<String>> {
        let mut client = self.images.clone();
        let list = self.call(
            "ListImages",
            "",
            client.list_images(cri::ListImagesRequest::default()),
        )?;
        Ok(list
            .images
            .into_iter()
            .flat_map(|image| image.repo_tags)
            .collect())
    }

    /// `RunPodSandbox`: creates the pod's network namespace (CNI ADD) and starts its sandbox
    /// container; returns the sandbox id. If `log_directory` is set, it must exist.
    pub fn run_pod_sandbox(&self, spec: &PodSpec) -> Result<String> {
        let mut client = self.runtime.clone();
        let pod = spec.full_name();
        let request = cri::RunPodSandboxRequest {
            config: Some(spec.to_cri()),
            runtime_handler: String::new(),
        };
        let id = self
            .call("RunPodSandbox", &pod, client.run_pod_sandbox(request))?
            .pod_sandbox_id;
        self.set_owner(&id, &pod);
        Ok(id)
    }

    /// `PodSandboxStatus` (verbose): state, IP, network namespace path and PID.
    pub fn pod_sandbox_status(&self, sandbox_id: &str) -> Result<SandboxStatus> {
        let mut client = self.runtime.clone();
        let pod = self.owner(sandbox_id);
        let request = cri::PodSandboxStatusRequest {
            pod_sandbox_id: sandbox_id.to_string(),
            verbose: true,
        };
        let response = self.call("PodSandboxStatus", &pod, client.pod_sandbox_status(request))?;
        let status = response.status.unwrap_or_default();
        let ip = status
            .network
            .as_ref()
            .and_then(|n| n.ip.parse::<IpAddr>().ok());
        let info: Option<serde_json::Value> = response
            .info
            .get("info")
            .and_then(|text| serde_json::from_str(text).ok());
        let netns = info.as_ref().and_then(netns_of_info);
        let pid = info.as_ref().and_then(pid_of_info);
        Ok(SandboxStatus {
            id: status.id,
            ready: status.state == cri::PodSandboxState::SandboxReady as i32,
            ip,
            netns,
            pid,
        })
    }

    /// `CreateContainer`: creates `container` in sandbox `sandbox_id` of pod `spec`; returns
    /// the container id.
    pub fn create_container(
        &self,
        sandbox_id: &str,
        spec: &PodSpec,
        container: &ContainerSpec,
    ) -> Result<String> {
        let mut client = self.runtime.clone();
        let pod = spec.full_name();
        let config = cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: container.name.clone(),
                attempt: 0,
            }),
            image: Some(cri::ImageSpec {
                image: container.image.clone(),
                ..Default::default()
            }),
            command: container.command.clone(),
            args: container.args.clone(),
            log_path: format!("{}.log", container.name),
            linux: Some(cri::LinuxContainerConfig {
                security_context: Some(cri::LinuxContainerSecurityContext {
                    namespace_options: Some(PodSpec::namespace_options()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let request = cri::CreateContainerRequest {
            pod_sandbox_id: sandbox_id.to_string(),
            config: Some(config),
            sandbox_config: Some(spec.to_cri()),
        };
        let id = self
            .call("CreateContainer", &pod, client.create_container(request))?
            .container_id;
        self.set_owner(&id, &pod);
        Ok(id)
    }

    /// `StartContainer`.
    pub fn start_container(&self, container_id: &str) -> Result<()> {
        let mut client = self.runtime.clone();
        let request = cri::StartContainerRequest {
            container_id: container_id.to_string(),
        };
        self.call(
            "StartContainer",
            &self.owner(container_id),
            client.start_container(request),
        )
        .map(drop)
    }

    /// `ContainerStatus` (verbose): the PID of the container's first process, if it runs.
    pub fn container_pid(&self, container_id: &str) -> Result<Option<i32>> {
        let mut client = self.runtime.clone();
        let request = cri::ContainerStatusRequest {
            container_id: container_id.to_string(),
            verbose: true,
        };
        let response = self.call(
            "ContainerStatus",
            &self.owner(container_id),
            client.container_status(request),
        )?;
        Ok(response
            .info
            .get("info")
            .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
            .as_ref()
            .and_then(pid_of_info))
    }

    /// `StopContainer` with timeout 0 (SIGKILL at once: `sleep` as PID 1 ignores SIGTERM, so
    /// any grace period would be waited out in full).
    pub fn stop_container(&self, container_id: &str) -> Result<()> {
        let mut client = self.runtime.clone();
        let request = cri::StopContainerRequest {
            container_id: container_id.to_string(),
            timeout: 0,
        };
        self.call(
            "StopContainer",
            &self.owner(container_id),
            client.stop_container(request),
        )
        .map(drop)
    }

    /// `RemoveContainer`.
    pub fn remove_container(&self, container_id: &str) -> Result<()> {
        let mut client = self.runtime.clone();
        let request = cri::RemoveContainerRequest {
            container_id: container_id.to_string(),
        };
        self.call(
            "RemoveContainer",
            &self.owner(container_id),
            client.remove_container(request),
        )
        .map(drop)
    }

    /// `StopPodSandbox`: stops the pod's containers and runs CNI DEL.
    pub fn stop_pod_sandbox(&self, sandbox_id: &str) -> Result<()> {
        let mut client = self.runtime.clone();
        let request = cri::StopPodSandboxRequest {
            pod_sandbox_id: sandbox_id.to_string(),
        };
        self.call(
            "StopPodSandbox",
            &self.owner(sandbox_id),
            client.stop_pod_sandbox(request),
        )
        .map(drop)
    }

    /// `RemovePodSandbox`: removes the sandbox and whatever containers are left in it.
    pub fn remove_pod_sandbox(&self, sandbox_id: &str) -> Result<()> {
        let mut client = self.runtime.clone();
        let request = cri::RemovePodSandboxRequest {
            pod_sandbox_id: sandbox_id.to_string(),
        };
        let pod = self.owner(sandbox_id);
        self.call("RemovePodSandbox", &pod, client.remove_pod_sandbox(request))?;
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        owners.retain(|_, owner| *owner != pod);
        Ok(())
    }

    /// `ListPodSandbox`: every sandbox the runtime knows, in any state.
    pub fn list_pod_sandboxes(&self) -> Result<Vec<SandboxSummary>> {
        let mut client = self.runtime.clone();
        let list = self.call(
            "ListPodSandbox",
            "",
            client.list_pod_sandbox(cri::ListPodSandboxRequest { filter: None }),
        )?;
        Ok(list
            .items
            .into_iter()
            .map(|s| {
                let meta = s.metadata.unwrap_or_default();
                SandboxSummary {
                    id: s.id,
                    name: meta.name,
                    namespace: meta.namespace,
                    ready: s.state == cri::PodSandboxState::SandboxReady as i32,
                }
            })
            .collect())
    }
}

/// The network namespace path in containerd's verbose sandbox info:
/// `runtimeSpec.linux.namespaces[type=network].path`.
fn netns_of_info(info: &serde_json::Value) -> Option<PathBuf> {
    info.pointer("/runtimeSpec/linux/namespaces")?
        .as_array()?
        .iter()
        .find(|ns| ns.get("type").and_then(|t| t.as_str()) == Some("network"))?
        .get("path")?
        .as_str()
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

fn pid_of_info(info: &serde_json::Value) -> Option<i32> {
    info.get("pid")?
        .as_i64()
        .and_then(|p| i32::try_from(p).ok())
        .filter(|p| *p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbose_info_gives_the_network_namespace_and_the_pid() {
        let info: serde_json::Value = serde_json::from_str(
            r#"{"pid": 4242, "runtimeSpec": {"linux": {"namespaces": [
                {"type": "pid"}, {"type": "ipc"},
                {"type": "network", "path": "/tmp/x/state/netns/cni-1"}]}}}"#,
        )
        .unwrap();
        assert_eq!(
            netns_of_info(&info),
            Some(PathBuf::from("/tmp/x/state/netns/cni-1"))
        );
        assert_eq!(pid_of_info(&info), Some(4242));
        assert_eq!(netns_of_info(&serde_json::json!({})), None);
    }

    #[test]
    fn a_pod_spec_sets_the_network_namespace_of_the_pod() {
        let config = PodSpec::new("a")
            .namespace("ns1")
            .log_directory("/tmp/l/a")
            .cgroup_parent("/lab")
            .to_cri();
        let meta = config.metadata.unwrap();
        assert_eq!((meta.name.as_str(), meta.namespace.as_str()), ("a", "ns1"));
        assert_eq!(meta.uid, "uid-a");
        assert_eq!(config.hostname, "a");
        assert_eq!(config.log_directory, "/tmp/l/a");
        let linux = config.linux.unwrap();
        assert_eq!(linux.cgroup_parent, "/lab");
        let ns = linux.security_context.unwrap().namespace_options.unwrap();
        assert_eq!(ns.network, cri::NamespaceMode::Pod as i32);
    }

    #[test]
    fn a_container_command_splits_into_program_and_arguments() {
        let c = ContainerSpec::new("web", BUSYBOX_IMAGE, &["/bin/httpd", "-f", "-p", "80"]);
        assert_eq!(c.command, ["/bin/httpd"]);
        assert_eq!(c.args, ["-f", "-p", "80"]);
        assert_eq!(ContainerSpec::sleep("app").args, ["3600"]);
    }
}
