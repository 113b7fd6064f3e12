//! `ovnkit sandbox`: the whole plugin on one machine, from Kubernetes manifests, with a
//! report of what the network did.
//!
//! ```text
//! ovnkit sandbox up [--nodes 3] [--manifests DIR] [--keep] [--pods N] [--json] [--dir DIR]
//! ovnkit sandbox status [--json] [--dir DIR]
//! ovnkit sandbox down [--dir DIR]
//! ```
//!
//! `up` builds a real OVN lab with the `ovn-testbed` crate (NB, SB and northd; N nodes, each
//! a network namespace with its own Open vSwitch and `ovn-controller`; an external network
//! wired to every node), then runs the plugin as a cluster runs it: `ovnkit controller` in
//! manifest mode, `ovnkit agent` in each node's namespace, and a containerd per node whose
//! CNI plugin is this binary. Every Pod of the manifests is created through CRI on its node,
//! as a kubelet creates it. The sandbox plays the rest of a cluster: it makes the Nodes,
//! schedules pods without `spec.nodeName` round-robin, gives Services their cluster IP and
//! node ports when the manifests leave them empty, and acts as the EndpointSlice controller
//! (a Service's ready endpoints are its running pods matching its selector, named target
//! ports resolved from their container ports). It writes all of this as a working copy of
//! the manifests, which is what the controller reads. Each pod runs a small TCP and UDP
//! server answering its `namespace/name` on port 8080 and on its container ports.
//!
//! The checks then send real traffic and judge it against the manifests (see the report's
//! fields): the addresses the runtime reports against the controller's, ping and TCP between
//! pods (every pair, or a sample of a large sandbox) against what private subnets and
//! NetworkPolicies allow, every Service port from a pod and every node port from the external
//! host on every node, the DNS names of the Services, the QoS rates against the annotations,
//! and the source address each subnet's pods leave the cluster with. `up` prints the report
//! (JSON with `--json`) and exits non-zero when a check failed; it tears everything down
//! unless `--keep` is given. With `--keep` it stays in the foreground and follows the
//! manifests: a pod added is created through CRI, a pod removed is removed, any other change
//! reaches the controller, and the checks the change affects run again; `status` shows it.
//! The report and `status` carry the daemons' own figures, scraped from their `/metrics`
//! ([`metrics`]).
//!
//! Everything lives in the state directory (`--dir`, default [`statedir::DEFAULT_DIR`]) and
//! the lab's directory, recorded before anything starts, so `down` can stop and remove every
//! process (by its checked pidfile), namespace and file even after `up` was killed.

pub mod checks;
pub mod cluster;
pub mod down;
pub mod keep;
pub mod metrics;
pub mod net;
pub mod objects;
pub mod policy;
pub mod procs;
mod render;
pub mod report;
pub mod statedir;
pub mod status;
pub mod up;
pub mod world;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

/// `ovnkit sandbox ...`.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    #[command(subcommand)]
    command: SandboxCommand,
}

#[derive(Debug, Subcommand)]
enum SandboxCommand {
    /// Build the sandbox from manifests, check the network, print the report.
    Up(UpArgs),
    /// Show the live state of a running sandbox and its last checks.
    Status(StatusArgs),
    /// Stop a sandbox and remove everything of it (also after a crash of `up`).
    Down(DirArg),
}

#[derive(Debug, Args)]
struct DirArg {
    /// The sandbox's state directory.
    #[arg(long, value_name = "DIR", default_value = statedir::DEFAULT_DIR)]
    dir: PathBuf,
}

#[derive(Debug, Args)]
struct UpArgs {
    /// How many nodes.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// A directory of Kubernetes manifests (default: the ones this binary carries,
    /// `examples/cluster.yaml` of the repository, written to DIR/manifests for editing).
    #[arg(long, value_name = "DIR")]
    manifests: Option<PathBuf>,
    /// Stay in the foreground after the checks and follow the manifests (until Ctrl-C,
    /// SIGTERM or `ovnkit sandbox down`).
    #[arg(long)]
    keep: bool,
    /// Add N pods (`scale/load-NNN`) for scale figures.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pods: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Concurrent pod creations per node (more rarely helps on a small machine: the pods
    /// come no faster, each one slower).
    #[arg(long, value_name = "N", default_value_t = 1)]
    creators: usize,
    #[command(flatten)]
    dir: DirArg,
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// Print the status as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    dir: DirArg,
}

/// Runs `ovnkit sandbox ...`: 0 when every check held (or the command succeeded), 1 when a
/// check failed, 2 when the sandbox could not be built or the command failed.
pub fn run(args: SandboxArgs) -> ExitCode {
    let result = match args.command {
        SandboxCommand::Up(a) => up::up(&up::UpOptions {
            nodes: a.nodes,
            manifests: a.manifests,
            keep: a.keep,
            pods: a.pods,
            json: a.json,
            dir: a.dir.dir,
            creators: a.creators,
        })
        .map(|passed| {
            if passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }),
        SandboxCommand::Status(a) => {
            let s = status::status(&statedir::StateDir::new(&a.dir.dir));
            if a.json {
                serde_json::to_string_pretty(&s)
                    .map(|j| println!("{j}"))
                    .map_err(Into::into)
            } else {
                print!("{}", status::render(&s));
                Ok(())
            }
            .map(|()| ExitCode::SUCCESS)
        }
        SandboxCommand::Down(a) => {
            down::down(&statedir::StateDir::new(&a.dir)).map(|()| ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ovnkit sandbox: {e:#}");
            ExitCode::from(2)
        }
    }
}
