//! `ovnkit`: the reference binary of the ovnkit networking plugin.
//!
//! ```text
//! ovnkit controller --nb <remotes> [--kubeconfig PATH | --manifests DIR --state-dir DIR]
//!     [--metrics-addr ADDR]
//! ovnkit agent --node NAME --nb REMOTES --ovs REMOTE --run-dir DIR [--chassis ID] [--mtu 1400]
//!     [--port-timeout SECS] [--htb-ingress] [--policing-egress] [--no-mgmt-port] [--no-egress]
//!     [--no-node-ports] [--metrics-addr ADDR] [--dns-server IP] [--cluster-domain cluster.local]
//! ovnkit cni                       # the CNI plugin, as `ovnkit` with no arguments and CNI_COMMAND set
//! ovnkit trace FROM TO [--tcp|--udp|--icmp] [--nb REMOTES] [--sb REMOTE] [--json]
//! ovnkit sandbox up|status|down    # the whole plugin on one machine (see `ovnkit::sandbox`)
//! ```
//!
//! `controller` turns Namespaces, Pods and Nodes into one OVN logical topology (see the
//! `ovnkit_kube::controller` docs). Objects come from a Kubernetes API server (`--kubeconfig`,
//! else the in-cluster or `KUBECONFIG` configuration) or from a directory of manifests, whose
//! results go into `--state-dir`. Logs go to stderr; `RUST_LOG` filters them (`info` by default).
//!
//! `agent` is the node agent (see the `ovnkit_kube::agent` docs): the CNI socket, the node's
//! management port `ovn0`, its part of egress (`--no-egress` turns it off) and its node ports
//! (`--no-node-ports` turns them off).
//!
//! `cni` is the CNI plugin (see the `ovnkit_kube::cni` docs). A runtime executes
//! `<bin_dir>/<type>` with no arguments, so the binary (or a symlink to it) named `ovnkit` in
//! the runtime's CNI `bin_dir` is the plugin of a configuration with `"type": "ovnkit"`: with no
//! arguments and `CNI_COMMAND` in the environment it runs the plugin before parsing arguments
//! or setting up logs, so that stdout carries only the CNI answer.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
use ovnkit_kube::agent::AgentConfig;
use ovnkit_kube::controller::config::ControllerConfig;
use ovnkit_kube::controller::kubeapi::{KubeSource, KubeStatus};
use ovnkit_kube::controller::manifests::{ManifestSource, StateDir};
use ovnkit_kube::controller::run;
use ovnkit_kube::controller::source::{ObjectSource, StatusSink};

#[derive(Parser)]
#[command(name = "ovnkit", version, about = "The ovnkit OVN networking plugin")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller: Namespaces, Pods and Nodes into OVN.
    Controller(ControllerArgs),
    /// Run the node agent: the CNI server that plumbs pods into OVS and OVN.
    Agent(AgentArgs),
    /// Run the CNI plugin: the `CNI_*` environment and the network configuration on stdin, the
    /// answer on stdout (what a runtime gets from `ovnkit` run with no arguments).
    Cni,
    /// The whole plugin on one machine: a lab, the controller, an agent and containerd per
    /// node, pods from Kubernetes manifests, and a report of what the network did.
    Sandbox(ovnkit::sandbox::SandboxArgs),
    /// Explain a packet's path through OVN, from a pod (or a node's management port) to a
    /// pod, a Service or an address, with the verdict named by the cluster's objects.
    Trace(TraceArgs),
}

#[derive(Args)]
struct TraceArgs {
    /// Where the packet starts: `<namespace>/<pod>` or `node/<name>`.
    from: String,
    /// Where it goes: `<namespace>/<pod>`, `<namespace>/<service>[:port]`, `node/<name>` or
    /// `<ip>[:port]`.
    to: String,
    /// A TCP packet (the default).
    #[arg(long, conflicts_with_all = ["udp", "icmp"])]
    tcp: bool,
    /// A UDP packet.
    #[arg(long, conflicts_with = "icmp")]
    udp: bool,
    /// An ICMP echo request.
    #[arg(long)]
    icmp: bool,
    /// The OVN northbound database.
    #[arg(
        long,
        value_name = "REMOTES",
        default_value = "unix:/var/run/ovn/ovnnb_db.sock"
    )]
    nb: String,
    /// The OVN southbound database (ovn-trace reads its logical flows).
    #[arg(
        long,
        value_name = "REMOTE",
        default_value = "unix:/var/run/ovn/ovnsb_db.sock"
    )]
    sb: String,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct AgentArgs {
    /// This node's name (the Kubernetes Node).
    #[arg(long)]
    node: String,
    /// The OVN northbound database: one remote or a comma separated list.
    #[arg(long, value_name = "REMOTES")]
    nb: String,
    /// The node's Open_vSwitch database.
    #[arg(
        long,
        value_name = "REMOTE",
        default_value = "unix:/var/run/openvswitch/db.sock"
    )]
    ovs: String,
    /// Where the socket (agent.sock) goes.
    #[arg(long, value_name = "DIR", default_value = "/run/ovnkit")]
    run_dir: PathBuf,
    /// The node's chassis name (default: the OVS external_ids:system-id).
    #[arg(long, value_name = "ID")]
    chassis: Option<String>,
    /// The pods' MTU when the port does not say.
    #[arg(long, default_value_t = 1400)]
    mtu: u32,
    /// Limit pods' ingress with OVS linux-htb on their port instead of OVN QoS rows.
    #[arg(long)]
    htb_ingress: bool,
    /// Limit pods' egress with OVS interface policing instead of OVN QoS rows.
    #[arg(long)]
    policing_egress: bool,
    /// How long ADD waits for the pod's port in the NB, and then for it to be up, in
    /// seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    port_timeout: u64,
    /// Make no management port (ovn0).
    #[arg(long)]
    no_mgmt_port: bool,
    /// Do not apply the node's egress plan (routes, forwarding, masquerade); a node without
    /// a management port applies none either.
    #[arg(long)]
    no_egress: bool,
    /// Serve Prometheus metrics on this address (`GET /metrics`).
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Do not make the node forward its node ports (nftables DNAT to the node-port VIP, the
    /// VIP's route into ovn0, masquerade for externalTrafficPolicy Cluster).
    #[arg(long)]
    no_node_ports: bool,
    /// The pods' nameserver, put into each CNI result with the cluster's search path (none
    /// without it): the upstream resolver for names outside the cluster; OVN answers the
    /// Services' names on the way.
    #[arg(long, value_name = "IP")]
    dns_server: Option<IpAddr>,
    /// The cluster's DNS domain (the controller's `--cluster-domain`), for the pods' search path.
    #[arg(long, value_name = "DOMAIN", default_value = "cluster.local")]
    cluster_domain: String,
}

#[derive(Args)]
struct ControllerArgs {
    /// The OVN northbound database: one remote or a comma separated list
    /// (`unix:/var/run/ovn/ovnnb_db.sock`, `tcp:10.0.0.1:6641,tcp:10.0.0.2:6641`).
    #[arg(long, value_name = "REMOTES")]
    nb: String,
    /// Watch a Kubernetes API server through this kubeconfig file.
    #[arg(long, value_name = "PATH", conflicts_with = "manifests")]
    kubeconfig: Option<PathBuf>,
    /// Read the objects from this directory of YAML manifests instead of an API server.
    #[arg(long, value_name = "DIR", requires = "state_dir")]
    manifests: Option<PathBuf>,
    /// Where results go in manifest mode: namespaces.json, pods.json, nodes.json (the
    /// annotations an API server would get) and events.jsonl.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// The cluster router's name.
    #[arg(long, default_value = "ovn-cluster")]
    router: String,
    /// The default subnet (namespaces that name none): NAME=CIDR.
    #[arg(
        long,
        value_name = "NAME=CIDR",
        default_value = "ovn-default=10.16.0.0/16"
    )]
    default_subnet: String,
    /// The join subnet of the nodes' management ports: NAME=CIDR, the router's address being
    /// the CIDR's first.
    #[arg(long, value_name = "NAME=CIDR", default_value = "join=100.64.0.0/16")]
    join_subnet: String,
    /// The pods' MTU.
    #[arg(long, default_value_t = 1400)]
    mtu: u16,
    /// The OVSDB lock the writing controller holds (controllers sharing it elect one writer).
    #[arg(long, default_value = "ovnkit_controller")]
    lock: String,
    /// The cluster's OVN-native gateway, for subnets with `gateway_type: native`:
    /// PORT=ADDRESS@NODE[,NODE...], the router port on the external network (created by the
    /// operator), its external address, and the nodes that may host it, highest priority
    /// first.
    #[arg(long, value_name = "PORT=ADDRESS@NODE,...")]
    native_gateway: Option<String>,
    /// Serve Prometheus metrics on this address (`GET /metrics`).
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// The cluster's DNS domain: Services are `<service>.<namespace>.svc.<domain>`.
    #[arg(long, value_name = "DOMAIN", default_value = "cluster.local")]
    cluster_domain: String,
    /// The address nodes forward node-port traffic to (an OVN load balancer VIP each node
    /// routes into its management port; used nowhere else).
    #[arg(long, value_name = "IP", default_value = "169.254.169.3")]
    node_port_vip: IpAddr,
    /// Health-check Services' IPv4 backends with OVN (Kube-OVN's settings) unless a Service's
    /// `ovnkit.io/health-check` annotation says otherwise.
    #[arg(long)]
    service_health_checks: bool,
}

fn main() -> ExitCode {
    // A runtime runs the plugin with no arguments: answer before clap and before any logging.
    if ovnkit_kube::cni::plugin::invoked_as_plugin() {
        return cni();
    }
    let command = Cli::parse().command;
    if matches!(command, Command::Cni) {
        return cni();
    }
    if let Command::Trace(args) = command {
        return match trace(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ovnkit: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    // The sandbox prints progress lines of its own; its logs are warnings only by default.
    let default_filter = if matches!(command, Command::Sandbox(_)) {
        "warn"
    } else {
        "info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let command = match command {
        // The sandbox runs runtimes and threads of its own.
        Command::Sandbox(args) => return ovnkit::sandbox::run(args),
        other => other,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ovnkit: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Controller(args) => controller(args).await,
            Command::Agent(args) => agent(args).await,
            Command::Cni | Command::Trace(_) | Command::Sandbox(_) => {
                unreachable!("answered before the runtime starts")
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ovnkit: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `PORT=ADDRESS@NODE[,NODE...]`.
fn native_gateway(value: &str) -> Result<gateway::NativeGateway> {
    let usage = "write PORT=ADDRESS@NODE[,NODE...], such as lrp-ext=172.20.0.2@node1,node2";
    let Some((port, rest)) = value.split_once('=') else {
        bail!("--native-gateway {value:?}: no '=': {usage}");
    };
    let Some((address, chassis)) = rest.split_once('@') else {
        bail!("--native-gateway {value:?}: no '@': {usage}");
    };
    let address: IpAddr = address
        .parse()
        .with_context(|| format!("--native-gateway {value:?}: {address:?} is not an address"))?;
    let nodes: Vec<&str> = chassis.split(',').map(str::trim).collect();
    if port.is_empty() || nodes.iter().any(|n| n.is_empty()) {
        bail!("--native-gateway {value:?}: empty port or node name: {usage}");
    }
    Ok(gateway::NativeGateway::new(port, address, nodes))
}

/// The CNI plugin on this process's environment and standard streams.
fn cni() -> ExitCode {
    let code = ovnkit_kube::cni::plugin::run_process();
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// `NAME=CIDR`.
fn named_cidr(flag: &str, value: &str) -> Result<(String, IpNet)> {
    let Some((name, cidr)) = value.split_once('=') else {
        bail!("--{flag} {value:?}: write NAME=CIDR, such as ovn-default=10.16.0.0/16");
    };
    let cidr: IpNet = cidr
        .parse()
        .with_context(|| format!("--{flag} {value:?}: {cidr:?} is not a CIDR"))?;
    Ok((name.to_owned(), cidr.trunc()))
}

async fn controller(args: ControllerArgs) -> Result<()> {
    let (default_name, default_cidr) = named_cidr("default-subnet", &args.default_subnet)?;
    let (join_name, join_cidr) = named_cidr("join-subnet", &args.join_subnet)?;
    let router_ip: IpAddr = join_cidr
        .hosts()
        .next()
        .with_context(|| format!("--join-subnet {join_cidr} has no address for the router"))?;
    let config = ControllerConfig::default()
        .with_router(args.router)
        .with_default_subnet(default_name, default_cidr)
        .with_join(join_name, join_cidr, router_ip)
        .with_mtu(args.mtu)
        .with_cluster_domain(args.cluster_domain)
        .with_node_port_vip(args.node_port_vip)
        .with_service_health_checks(args.service_health_checks)
        .with_lock(args.lock);
    let config = match &args.native_gateway {
        Some(v) => config.with_native_gateway(native_gateway(v)?),
        None => config,
    };
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("controller configuration: {e}"))?;

    let (source, sink): (Box<dyn ObjectSource>, Arc<dyn StatusSink>) = match args.manifests {
        Some(dir) => {
            let state = args.state_dir.context("--manifests needs --state-dir")?;
            let source = ManifestSource::open(&dir)?;
            let sink = StateDir::open(&state)
                .with_context(|| format!("opening the state directory {}", state.display()))?;
            tracing::info!(manifests = %dir.display(), state = %state.display(), "objects from manifests");
            (Box::new(source), Arc::new(sink))
        }
        None => {
            if args.state_dir.is_some() {
                bail!(
                    "--state-dir is for manifest mode (--manifests); an API server keeps results on the objects"
                );
            }
            let (source, sink) = match &args.kubeconfig {
                Some(path) => (
                    KubeSource::from_kubeconfig(path).await?,
                    KubeStatus::from_kubeconfig(path).await?,
                ),
                None => (KubeSource::from_env().await?, KubeStatus::from_env().await?),
            };
            tracing::info!("objects from the Kubernetes API server");
            (Box::new(source), Arc::new(sink))
        }
    };
    let mut registry = ovnkit_kube::metrics::Registry::default();
    let metrics = ovnkit_kube::metrics::ControllerMetrics::new(&mut registry);
    if let Some(addr) = args.metrics_addr {
        let (bound, server) =
            ovnkit_kube::metrics::serve(addr, Arc::new(registry), std::future::pending()).await?;
        tracing::info!(%bound, "serving metrics");
        tokio::spawn(server);
    }
    let (observer, _) = tokio::sync::watch::channel(run::Progress::default());
    let progress = run::run_instrumented(
        config,
        &args.nb,
        source.as_ref(),
        sink,
        shutdown(),
        &observer,
        &metrics,
    )
    .await?;
    tracing::info!(
        transactions = progress.transactions,
        refused = progress.refused,
        takeovers = progress.takeovers,
        "stopped"
    );
    Ok(())
}

async fn agent(args: AgentArgs) -> Result<()> {
    let mut qos = qos::Config::default();
    if args.htb_ingress {
        qos = qos.with_ingress(qos::IngressMechanism::OvsHtb);
    }
    if args.policing_egress {
        qos = qos.with_egress(qos::EgressMechanism::OvsPolicing);
    }
    let mut config = AgentConfig::default()
        .with_node(args.node)
        .with_nb(args.nb)
        .with_ovs(args.ovs)
        .with_run_dir(args.run_dir)
        .with_mtu(args.mtu)
        .with_waits(
            std::time::Duration::from_secs(args.port_timeout),
            std::time::Duration::from_secs(args.port_timeout),
        )
        .with_qos(qos)
        .with_mgmt_port((!args.no_mgmt_port).then(|| "ovn0".to_owned()))
        .with_egress(!args.no_egress)
        .with_node_ports(!args.no_node_ports)
        .with_dns(args.dns_server, args.cluster_domain);
    if let Some(c) = args.chassis {
        config = config.with_chassis(c);
    }
    if let Some(addr) = args.metrics_addr {
        config = config.with_metrics_addr(addr);
    }
    ovnkit_kube::agent::run(config, shutdown()).await?;
    Ok(())
}

/// `ovnkit trace`: synchronous (the library's NB read runs its own runtime).
fn trace(args: TraceArgs) -> Result<()> {
    use ovnkit_kube::trace::{self, Protocol};
    let protocol = if args.udp {
        Protocol::Udp
    } else if args.icmp {
        Protocol::Icmp
    } else {
        Protocol::Tcp
    };
    let snap = trace::nb_snapshot(&args.nb)?;
    let nb = ovn_model::snapshot::Typed::new(&snap);
    let explained = trace::trace(&nb, &args.sb, &args.from, &args.to, protocol)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&explained)?);
    } else {
        println!("{explained}");
    }
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping");
}
