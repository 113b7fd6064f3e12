//! The CNI server: the agent's unix socket and what each request does.
//!
//! [`serve`] listens on `<run-dir>/agent.sock` (the directory mode 0700, the socket 0600) and
//! gives every connection its own task, so fifty `ADD`s run side by side and one pod whose
//! port is late holds up no other. A connection carries one [`Request`] and one [`Reply`]
//! (see [`crate::cni::protocol`]); nothing over [`MAX_MESSAGE`] is read.
//!
//! [`Agent::handle`] does the work:
//!
//! | command | steps |
//! |---|---|
//! | `ADD` | wait for the pod's port in the NB -> veth pair -> OVS port -> node QoS -> wait until the port is `up` -> the attachment |
//! | `DEL` | node QoS cleared -> OVS port removed -> veth removed; succeeds when nothing is left to remove |
//! | `CHECK` | the host veth, the pod interface's MAC and addresses, the OVS port |
//! | `GC` | tears down every attachment of the agent not in `valid_attachments` |
//! | `STATUS` | fails (code 50) unless both the NB and the OVS replicas are connected |
//!
//! Failures are CNI errors ([`Failure`]) naming the pod, the interface and the reason, with
//! the codes of [`code`]. The parts of every `ADD` are timed ([`AddTiming`], logged and kept
//! for [`Agent::timings`]).

use std::collections::{BTreeSet, VecDeque};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tracing::Instrument;

use super::ovs::{AttachmentPort, NodeOvs, OvsError};
use super::plumb::{self, PlumbError, VethSpec};
use super::ports::{NbView, PortError, PortInfo};
use super::run::AgentConfig;
use crate::cni::protocol::{
    Attachment, Command, Failure, Interface, IpConfig, MAX_MESSAGE, Reply, Request, Route,
};

/// The CNI error codes the agent answers with.
pub mod code {
    /// The container (its network namespace) is unknown or gone.
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// The request lacks what the command needs.
    pub const INVALID_REQUEST: u32 = 4;
    /// A netlink, OVSDB or socket operation failed.
    pub const IO: u32 = 5;
    /// The port's data (from the controller) cannot be used.
    pub const CONFIG: u32 = 7;
    /// The pod's port did not appear, or did not come up, in time: try again later.
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// `STATUS`: the agent cannot serve `ADD` now.
    pub const NOT_AVAILABLE: u32 = 50;
}

/// The socket's file name in the run directory.
pub const SOCKET: &str = "agent.sock";

/// How long each part of one `ADD` took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddTiming {
    /// The logical switch port (`<namespace>.<pod>`).
    pub port: String,
    /// Waiting for the port in the NB.
    pub wait_port: Duration,
    /// The veth pair and its configuration.
    pub plumb: Duration,
    /// The OVS port and the node QoS.
    pub ovs: Duration,
    /// Waiting until the port is `up`.
    pub wait_up: Duration,
    /// The whole request.
    pub total: Duration,
}

/// How long a connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// How many [`AddTiming`]s [`Agent::timings`] keeps.
const TIMINGS_KEPT: usize = 4096;

/// The agent: its NB and OVS views and what it does per request.
#[derive(Debug, Clone)]
pub struct Agent {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: AgentConfig,
    nb: NbView,
    ovs: NodeOvs,
    planner: qos::Planner,
    timings: Mutex<VecDeque<AddTiming>>,
    metrics: crate::metrics::AgentMetrics,
}

/// The CNI command's name, as metrics label it.
fn command_name(command: Command) -> &'static str {
    match command {
        Command::Add => "ADD",
        Command::Del => "DEL",
        Command::Check => "CHECK",
        Command::Gc => "GC",
        Command::Status => "STATUS",
    }
}

fn failure(code: u32, msg: impl Into<String>, details: impl Into<String>) -> Failure {
    Failure {
        code,
        msg: msg.into(),
        details: details.into(),
    }
}

/// The error and its sources, one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn plumb_failure(what: &str, e: &PlumbError) -> Failure {
    let code = match e {
        PlumbError::NetnsGone { .. } => code::UNKNOWN_CONTAINER,
        _ => code::IO,
    };
    failure(code, format!("{what}: {e}"), chain(e))
}

fn ovs_failure(what: &str, e: &OvsError) -> Failure {
    failure(code::IO, format!("{what}: {e}"), chain(e))
}

fn port_failure(what: &str, e: &PortError) -> Failure {
    let code = match e {
        PortError::Timeout { .. } => code::TRY_AGAIN_LATER,
        PortError::BadPort { .. } => code::CONFIG,
        PortError::Client { .. } => code::IO,
    };
    failure(code, format!("{what}: {e}"), chain(e))
}

impl Agent {
    /// An agent over `nb` and `ovs`, configured by `config`.
    #[must_use]
    pub fn new(config: AgentConfig, nb: NbView, ovs: NodeOvs) -> Self {
        Agent::with_metrics(config, nb, ovs, crate::metrics::AgentMetrics::default())
    }

    /// An agent that records what it does in `metrics`.
    #[must_use]
    pub fn with_metrics(
        config: AgentConfig,
        nb: NbView,
        ovs: NodeOvs,
        metrics: crate::metrics::AgentMetrics,
    ) -> Self {
        let planner = qos::Planner::new(config.qos);
        Agent {
            inner: Arc::new(Inner {
                config,
                nb,
                ovs,
                planner,
                timings: Mutex::new(VecDeque::new()),
                metrics,
            }),
        }
    }

    /// The agent's metrics.
    #[must_use]
    pub fn metrics(&self) -> &crate::metrics::AgentMetrics {
        &self.inner.metrics
    }

    /// The NB view.
    #[must_use]
    pub fn nb(&self) -> &NbView {
        &self.inner.nb
    }

    /// The OVS view.
    #[must_use]
    pub fn ovs(&self) -> &NodeOvs {
        &self.inner.ovs
    }

    /// The timings of the latest `ADD`s that succeeded, oldest first.
    #[must_use]
    pub fn timings(&self) -> Vec<AddTiming> {
        self.inner
            .timings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Answers one request.
    pub async fn handle(&self, req: &Request) -> Reply {
        let span = tracing::info_span!(
            "cni",
            command = ?req.command,
            pod = %req.pod.as_ref().map(|p| format!("{}/{}", p.namespace, p.name)).unwrap_or_default(),
            container = %req.container_id,
        );
        let started = Instant::now();
        let reply = self.answer(req).instrument(span).await;
        let result = match &reply {
            Reply::Failed { failure } => failure.code.to_string(),
            _ => "ok".to_owned(),
        };
        self.inner
            .metrics
            .request(command_name(req.command), &result, started.elapsed());
        reply
    }

    async fn answer(&self, req: &Request) -> Reply {
        let result = match req.command {
            Command::Add => self
                .add(req)
                .await
                .map(|attachment| Reply::Added { attachment }),
            Command::Del => self.del(req).await.map(|()| Reply::Done),
            Command::Check => self.check(req).await.map(|()| Reply::Done),
            Command::Gc => self.gc(req).await.map(|()| Reply::Done),
            Command::Status => self.status().map(|()| Reply::Done),
        };
        result.unwrap_or_else(|failure| {
            tracing::warn!(command = ?req.command, container = %req.container_id, code = failure.code, msg = %failure.msg, "request failed");
            Reply::Failed { failure }
        })
    }

    fn status(&self) -> Result<(), Failure> {
        let (nb, ovs) = (self.inner.nb.is_connected(), self.inner.ovs.is_connected());
        if nb && ovs {
            Ok(())
        } else {
            Err(failure(
                code::NOT_AVAILABLE,
                format!("agent not ready: NB connected {nb}, OVS connected {ovs}"),
                "",
            ))
        }
    }

    async fn add(&self, req: &Request) -> Result<Attachment, Failure> {
        let start = Instant::now();
        let pod = req.pod.as_ref().ok_or_else(|| {
            failure(
                code::INVALID_REQUEST,
                format!("ADD {}: no pod in CNI_ARGS", req.container_id),
                "",
            )
        })?;
        let who = format!(
            "pod {}/{} interface {}",
            pod.namespace, pod.name, req.ifname
        );
        if req.container_id.is_empty() || req.ifname.is_empty() || req.netns.is_empty() {
            return Err(failure(
                code::INVALID_REQUEST,
                format!("ADD {who}: CNI_CONTAINERID, CNI_IFNAME and CNI_NETNS are all needed"),
                "",
            ));
        }
        if !Path::new(&req.netns).exists() {
            return Err(failure(
                code::UNKNOWN_CONTAINER,
                format!("ADD {who}: network namespace {} does not exist", req.netns),
                "",
            ));
        }
        let cfg = &self.inner.config;
        let port = self
            .inner
            .nb
            .wait_port(&pod.namespace, &pod.name, cfg.port_wait)
            .await
            .map_err(|e| port_failure(&format!("ADD {who}"), &e))?;
        let wait_port = start.elapsed();

        let t = Instant::now();
        let mtu = port.mtu.or(req.mtu).unwrap_or(cfg.mtu);
        let spec = VethSpec {
            container_id: req.container_id.clone(),
            netns: PathBuf::from(&req.netns),
            ifname: req.ifname.clone(),
            mac: port.mac,
            mtu,
            ips: port.ips.clone(),
            gateways: port.gateways.clone(),
        };
        // A retried ADD starts afresh: the old OVS interface is bound to a device that
        // plumbing is about to replace.
        let host = plumb::host_ifname(&req.container_id);
        self.inner.ovs.delete_port(&host).await.map_err(|e| {
            ovs_failure(
                &format!("ADD {who}: removing the stale OVS port {host}"),
                &e,
            )
        })?;
        let plumbed = plumb::attach(&spec)
            .await
            .map_err(|e| plumb_failure(&format!("ADD {who}: plumbing"), &e))?;
        let plumb_time = t.elapsed();

        let t = Instant::now();
        let attachment = AttachmentPort {
            name: plumbed.host.clone(),
            namespace: pod.namespace.clone(),
            pod: pod.name.clone(),
            container_id: req.container_id.clone(),
            ifname: req.ifname.clone(),
            netns: req.netns.clone(),
        };
        self.inner
            .ovs
            .add_attachment(&attachment)
            .await
            .map_err(|e| ovs_failure(&format!("ADD {who}: OVS port {}", plumbed.host), &e))?;
        self.apply_qos(&who, &attachment, &port).await?;
        let ovs_time = t.elapsed();

        let t = Instant::now();
        self.inner
            .nb
            .wait_up(&port.name, cfg.up_wait)
            .await
            .map_err(|e| port_failure(&format!("ADD {who}"), &e))?;
        let timing = AddTiming {
            port: port.name.clone(),
            wait_port,
            plumb: plumb_time,
            ovs: ovs_time,
            wait_up: t.elapsed(),
            total: start.elapsed(),
        };
        tracing::info!(
            port = %timing.port, host = %plumbed.host,
            wait_port_ms = timing.wait_port.as_millis() as u64,
            plumb_ms = timing.plumb.as_millis() as u64,
            ovs_ms = timing.ovs.as_millis() as u64,
            wait_up_ms = timing.wait_up.as_millis() as u64,
            total_ms = timing.total.as_millis() as u64,
            "pod attached"
        );
        self.inner.metrics.add_phases(&[
            ("wait_port", timing.wait_port),
            ("plumb", timing.plumb),
            ("ovs", timing.ovs),
            ("wait_up", timing.wait_up),
        ]);
        {
            let mut timings = self.inner.timings.lock().unwrap_or_else(|e| e.into_inner());
            if timings.len() == TIMINGS_KEPT {
                timings.pop_front();
            }
            timings.push_back(timing);
        }
        Ok(attachment_of(
            req,
            &port,
            &plumbed,
            mtu,
            cfg.pod_dns(&pod.namespace),
        ))
    }

    async fn apply_qos(
        &self,
        who: &str,
        attachment: &AttachmentPort,
        port: &PortInfo,
    ) -> Result<(), Failure> {
        let id = qos::PodId::new(&attachment.namespace, &attachment.pod);
        let annotations = port
            .qos_annotations()
            .map_err(|e| port_failure(&format!("ADD {who}"), &e))?;
        let intent = qos::annotations::parse(&id, annotations)
            .map_err(|e| failure(code::CONFIG, format!("ADD {who}: QoS: {e}"), chain(&e)))?;
        let target = qos::PodTarget::new(id, &port.subnet, &port.name, &attachment.name);
        self.inner
            .ovs
            .apply_qos(&self.inner.planner, &target, &intent)
            .await
            .map_err(|e| ovs_failure(&format!("ADD {who}"), &e))?;
        Ok(())
    }

    /// Removes everything of one attachment: node QoS, OVS port, veth.
    async fn teardown(&self, container_id: &str, who: &str) -> Result<(), Failure> {
        let host = plumb::host_ifname(container_id);
        let owner = self
            .inner
            .ovs
            .attachments()
            .into_iter()
            .find(|a| a.name == host);
        if let Some(a) = &owner {
            let target = qos::PodTarget::new(
                qos::PodId::new(&a.namespace, &a.pod),
                "",
                a.iface_id(),
                &a.name,
            );
            self.inner
                .ovs
                .apply_qos(&self.inner.planner, &target, &qos::QosIntent::none())
                .await
                .map_err(|e| ovs_failure(&format!("{who}: clearing QoS"), &e))?;
        }
        self.inner
            .ovs
            .delete_port(&host)
            .await
            .map_err(|e| ovs_failure(&format!("{who}: removing OVS port {host}"), &e))?;
        plumb::detach(container_id)
            .await
            .map_err(|e| plumb_failure(&format!("{who}: removing veth {host}"), &e))?;
        Ok(())
    }

    async fn del(&self, req: &Request) -> Result<(), Failure> {
        let who = match &req.pod {
            Some(p) => format!(
                "DEL pod {}/{} interface {}",
                p.namespace, p.name, req.ifname
            ),
            None => format!(
                "DEL container {} interface {}",
                req.container_id, req.ifname
            ),
        };
        if req.container_id.is_empty() {
            return Err(failure(
                code::INVALID_REQUEST,
                format!("{who}: no CNI_CONTAINERID"),
                "",
            ));
        }
        self.teardown(&req.container_id, &who).await?;
        tracing::info!(container = %req.container_id, "pod detached");
        Ok(())
    }

    async fn check(&self, req: &Request) -> Result<(), Failure> {
        let pod = req.pod.as_ref().ok_or_else(|| {
            failure(
                code::INVALID_REQUEST,
                format!("CHECK {}: no pod in CNI_ARGS", req.container_id),
                "",
            )
        })?;
        let who = format!(
            "CHECK pod {}/{} interface {}",
            pod.namespace, pod.name, req.ifname
        );
        let host = plumb::host_ifname(&req.container_id);
        let lsp = self
            .inner
            .nb
            .port(&format!("{}.{}", pod.namespace, pod.name))
            .ok_or_else(|| {
                failure(
                    code::TRY_AGAIN_LATER,
                    format!("{who}: the pod has no port on this node in the NB"),
                    "",
                )
            })?;
        let port = PortInfo::from_port(&lsp).map_err(|e| port_failure(&who, &e))?;
        if let Some(prev) = &req.prev_result {
            let recorded: BTreeSet<_> = prev.ips.iter().map(|c| c.address).collect();
            let now: BTreeSet<_> = port.ips.iter().copied().collect();
            if recorded != now {
                return Err(failure(
                    code::IO,
                    format!(
                        "{who}: the recorded addresses {recorded:?} are not the port's {now:?}"
                    ),
                    "",
                ));
            }
        }
        let state = plumb::inspect(&req.container_id, Path::new(&req.netns), &req.ifname)
            .await
            .map_err(|e| plumb_failure(&who, &e))?;
        let bad = |reason: String| failure(code::IO, format!("{who}: {reason}"), "");
        if !state.host {
            return Err(bad(format!("host veth {host} is missing")));
        }
        let Some(mac) = state.pod_mac else {
            return Err(bad(format!(
                "interface {} is missing in {}",
                req.ifname, req.netns
            )));
        };
        if mac != port.mac.to_string() {
            return Err(bad(format!(
                "interface {} has MAC {mac}, the port says {}",
                req.ifname, port.mac
            )));
        }
        let have: BTreeSet<_> = state.pod_ips.iter().collect();
        if let Some(missing) = port.ips.iter().find(|ip| !have.contains(ip)) {
            return Err(bad(format!(
                "interface {} lacks address {missing}",
                req.ifname
            )));
        }
        match self.inner.ovs.port(&host) {
            Some(p) if p.external_ids.get(super::ovs::IFACE_ID) == Some(&port.name) => Ok(()),
            Some(_) => Err(bad(format!(
                "OVS port {host} is not bound to {}",
                port.name
            ))),
            None => Err(bad(format!("OVS port {host} is missing"))),
        }
    }

    async fn gc(&self, req: &Request) -> Result<(), Failure> {
        let keep: BTreeSet<(&str, &str)> = req
            .valid_attachments
            .iter()
            .map(|a| (a.container_id.as_str(), a.ifname.as_str()))
            .collect();
        for a in self.inner.ovs.attachments() {
            if keep.contains(&(a.container_id.as_str(), a.ifname.as_str())) {
                continue;
            }
            let who = format!("GC pod {}/{} interface {}", a.namespace, a.pod, a.ifname);
            self.teardown(&a.container_id, &who).await?;
            tracing::info!(container = %a.container_id, pod = %a.iface_id(), "attachment collected");
        }
        Ok(())
    }

    /// Tears down the attachments whose network namespace is gone (after a restart of the
    /// agent, or pods deleted while it was down). Returns how many.
    ///
    /// # Errors
    /// The first teardown that failed.
    pub async fn reconcile(&self) -> Result<usize, Failure> {
        let mut n = 0;
        for a in self.inner.ovs.attachments() {
            if !a.netns.is_empty() && Path::new(&a.netns).exists() {
                continue;
            }
            let who = format!(
                "reconcile pod {}/{} interface {} (netns {:?} gone)",
                a.namespace, a.pod, a.ifname, a.netns
            );
            self.teardown(&a.container_id, &who).await?;
            tracing::info!(container = %a.container_id, pod = %a.iface_id(), "stale attachment removed");
            n += 1;
        }
        Ok(n)
    }
}

fn attachment_of(
    req: &Request,
    port: &PortInfo,
    plumbed: &plumb::Plumbed,
    mtu: u32,
    dns: Option<crate::cni::protocol::Dns>,
) -> Attachment {
    let gateway_for = |ip: &ipnet::IpNet| port.gateways.iter().find(|g| ip.contains(*g)).copied();
    let ips: Vec<IpConfig> = port
        .ips
        .iter()
        .map(|ip| IpConfig {
            address: *ip,
            gateway: gateway_for(ip),
        })
        .collect();
    let routes = ips
        .iter()
        .filter_map(|c| {
            let gw = c.gateway?;
            let dst = if gw.is_ipv4() {
                "0.0.0.0/0".parse().ok()?
            } else {
                "::/0".parse().ok()?
            };
            Some(Route { dst, gw: Some(gw) })
        })
        .collect();
    Attachment {
        host: Interface {
            name: plumbed.host.clone(),
            mac: plumbed.host_mac.clone(),
            mtu: Some(mtu),
            sandbox: None,
        },
        pod: Interface {
            name: req.ifname.clone(),
            mac: port.mac.to_string(),
            mtu: Some(mtu),
            sandbox: Some(req.netns.clone()),
        },
        ips,
        routes,
        dns,
    }
}

/// Creates `run_dir` (mode 0700) and binds `<run_dir>/agent.sock` (mode 0600), replacing a
/// stale socket.
///
/// # Errors
/// What creating the directory or binding the socket failed with.
pub fn bind(run_dir: &Path) -> std::io::Result<UnixListener> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(run_dir)?;
    std::fs::set_permissions(run_dir, std::fs::Permissions::from_mode(0o700))?;
    let path = run_dir.join(SOCKET);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves `listener` until `shutdown` completes, one task per connection.
pub async fn serve(agent: Agent, listener: UnixListener, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let agent = agent.clone();
                    tokio::spawn(async move {
                        if let Err(e) = connection(&agent, stream).await {
                            tracing::warn!(error = %e, "CNI connection failed");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a CNI connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

async fn connection(agent: &Agent, stream: UnixStream) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = Vec::new();
    let limit = u64::try_from(MAX_MESSAGE).unwrap_or(u64::MAX) + 1;
    // A client that connects and sends nothing does not hold its task forever.
    tokio::time::timeout(
        READ_TIMEOUT,
        BufReader::new(read.take(limit)).read_until(b'\n', &mut line),
    )
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no request within 60 s"))??;
    let reply = if line.len() > MAX_MESSAGE {
        Reply::Failed {
            failure: failure(
                code::INVALID_REQUEST,
                format!("request larger than {MAX_MESSAGE} bytes"),
                "",
            ),
        }
    } else {
        match serde_json::from_slice::<Request>(&line) {
            Ok(req) => agent.handle(&req).await,
            Err(e) => Reply::Failed {
                failure: failure(
                    code::INVALID_REQUEST,
                    format!("unreadable request: {e}"),
                    "",
                ),
            },
        }
    };
    let mut out = serde_json::to_vec(&reply).map_err(std::io::Error::other)?;
    out.push(b'\n');
    write.write_all(&out).await?;
    write.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_socket_is_0600_in_a_0700_directory_and_a_stale_one_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        drop(bind(&dir).unwrap());
        // A socket file left by a killed agent does not stop the next one.
        let _listener = bind(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(SOCKET)), 0o600);
    }
}
