//! Explaining a packet's path through OVN: `ovnkit trace` and the library under it.
//!
//! [`trace`] resolves the two ends from the NB ([`endpoints`]: a pod's or node's port with its
//! MAC and IP, a Service's VIP and backends, an address), builds the microflow, runs
//! `ovn-trace --detailed` against the southbound database (every connection-tracking step
//! seen as a new connection, and a Service's first backend as the load balancer's choice),
//! parses what it prints ([`parse`]) and explains it ([`explain`]): the hops, and the verdict
//! named by the cluster's objects: delivered, dropped by which NetworkPolicy or by a private
//! subnet, no route, or a destination port that is down or bound to no chassis (from the NB's
//! `up` and the southbound `Port_Binding`).
//!
//! The parsing and explaining are pure and work on any `ovn-trace` output and NB snapshot;
//! only [`trace`] runs processes (`ovn-trace`, `ovn-sbctl`).

pub mod endpoints;
pub mod explain;
pub mod parse;

use std::process::Command;

use ovn_model::nb::LogicalSwitchPort;
use ovn_model::snapshot::Typed;
use serde::Serialize;

pub use endpoints::{Destination, EndpointError, Protocol, Source};
pub use explain::{DecidingAcl, Hop, Rule, Verdict};

/// What a trace found.
#[derive(Debug, Clone, Serialize)]
pub struct Explained {
    /// Where the packet starts.
    pub source: Source,
    /// Where it goes.
    pub destination: Destination,
    /// The protocol.
    pub protocol: Protocol,
    /// The microflow given to `ovn-trace`.
    pub microflow: String,
    /// The backend asked of the load balancer (`--lb-dst`), if the destination is a Service.
    pub lb_backend: Option<String>,
    /// The hops.
    pub hops: Vec<Hop>,
    /// The verdict.
    pub verdict: Verdict,
    /// The ACL that decided (allowed or dropped), if one did.
    pub acl: Option<DecidingAcl>,
    /// What `ovn-trace` printed.
    pub ovn_trace: String,
}

impl std::fmt::Display for Explained {
    /// The path hop by hop and the verdict, for people.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} {} -> {} ({}{})",
            self.protocol.as_str(),
            self.source.name,
            self.destination.name,
            self.destination.ip,
            self.destination
                .port
                .map(|p| format!(":{p}"))
                .unwrap_or_default()
        )?;
        if let (Some((lb, backends)), Some(chosen)) =
            (&self.destination.load_balancer, &self.lb_backend)
        {
            writeln!(
                f,
                "  load balancer {lb}: backends {}; traced with {chosen}",
                backends.join(", ")
            )?;
        }
        for hop in &self.hops {
            if hop.kind == "conntrack" {
                continue;
            }
            writeln!(f, "  {} {} ({})", hop.kind, hop.datapath, hop.pipeline)?;
            for n in &hop.notes {
                writeln!(f, "    {n}")?;
            }
        }
        write!(f, "verdict: {}", self.verdict)
    }
}

/// Why a trace could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// An end could not be resolved.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// The NB could not be read.
    #[error("reading the NB at {remotes}: {message}")]
    Nb {
        /// The remotes.
        remotes: String,
        /// Why.
        message: String,
    },
    /// `ovn-trace` (or `ovn-sbctl`) could not run or failed.
    #[error("{program}: {message}")]
    Tool {
        /// The program.
        program: &'static str,
        /// Its error output, or why it could not start.
        message: String,
    },
}

/// Traces a packet of `protocol` from `from` to `to` (see the module docs), with the NB as
/// `nb` holds it and the southbound database at `sb_remote`.
///
/// # Errors
/// [`TraceError`] when an end cannot be resolved or `ovn-trace` fails.
pub fn trace(
    nb: &Typed<'_>,
    sb_remote: &str,
    from: &str,
    to: &str,
    protocol: Protocol,
) -> Result<Explained, TraceError> {
    let source = endpoints::source(nb, from)?;
    let destination = endpoints::destination(nb, &source, to)?;
    let microflow = endpoints::microflow(&source, &destination, protocol);
    let lb_backend = destination
        .load_balancer
        .as_ref()
        .and_then(|(_, b)| b.first().cloned());
    let mut args = vec![format!("--db={sb_remote}"), "--detailed".to_owned()];
    args.extend(std::iter::repeat_n("--ct=new".to_owned(), 6));
    if let Some(b) = &lb_backend {
        args.push(format!("--lb-dst={b}"));
    }
    args.push(source.switch.clone());
    args.push(microflow.clone());
    let output = run("ovn-trace", &args)?;
    let parsed = parse::parse(&output);
    let (hops, mut verdict, acl) = explain::explain(&parsed, nb, lb_backend.as_deref());
    if let Verdict::Delivered { port } = &verdict {
        let lsp: Option<LogicalSwitchPort> = nb.by_name(port);
        let bound = run(
            "ovn-sbctl",
            &[
                format!("--db={sb_remote}"),
                "--bare".to_owned(),
                "--columns=chassis".to_owned(),
                "find".to_owned(),
                "Port_Binding".to_owned(),
                format!("logical_port={port}"),
            ],
        )?;
        if bound.trim().is_empty() {
            verdict = Verdict::NotBound { port: port.clone() };
        } else if lsp.is_some_and(|l| l.up != Some(true)) {
            verdict = Verdict::PortDown { port: port.clone() };
        }
    }
    Ok(Explained {
        source,
        destination,
        protocol,
        microflow,
        lb_backend,
        hops,
        verdict,
        acl,
        ovn_trace: output,
    })
}

/// The NB tables [`trace`] reads.
pub const NB_TABLES: [&str; 7] = [
    "Logical_Switch",
    "Logical_Switch_Port",
    "Logical_Router",
    "Logical_Router_Port",
    "Load_Balancer",
    "ACL",
    "Port_Group",
];

/// A snapshot of the NB tables [`trace`] reads, from `remotes`, waiting up to 10 s for the
/// first sync (for callers without a runtime of their own: it runs one).
///
/// # Errors
/// [`TraceError::Nb`] when the NB cannot be read.
pub fn nb_snapshot(remotes: &str) -> Result<ovsdb::replica::Snapshot, TraceError> {
    let nb_err = |message: String| TraceError::Nb {
        remotes: remotes.to_owned(),
        message,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| nb_err(e.to_string()))?;
    rt.block_on(async {
        let monitor = ovn_model::snapshot::monitor(ovn_model::nb::DATABASE, &NB_TABLES);
        let (nb, _events) = ovsdb::client::ReplicaClient::start(ovsdb::client::ReplicaConfig::new(
            remotes, monitor,
        ))
        .await
        .map_err(|e| nb_err(e.to_string()))?;
        tokio::time::timeout(std::time::Duration::from_secs(10), nb.wait_synced())
            .await
            .map_err(|_| nb_err("no sync within 10 s".to_owned()))?
            .map_err(|e| nb_err(e.to_string()))
    })
}

fn run(program: &'static str, args: &[String]) -> Result<String, TraceError> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| TraceError::Tool {
            program,
            message: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(TraceError::Tool {
            program,
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
