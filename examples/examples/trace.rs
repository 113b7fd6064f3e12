//! `ovnkit trace` as a library: a packet's path through OVN, explained in the cluster's words.
//!
//! A central and two nodes; namespace `default` on the default subnet and `web` on a private
//! subnet; three pods attached as the controller (running in this process) allocated them.
//! Then two traces with `ovnkit_kube::trace::trace`, which runs `ovn-trace` on the microflow
//! it builds from the objects: `default/a` to `default/b` on the other node is delivered;
//! `default/a` to `web/w` is dropped, and the verdict names the rule: the private subnet.
//!
//! ```text
//! cargo run -p examples --example trace      # as root, with OVN/OVS installed
//! ```

use anyhow::{Context, Result};
use examples::cluster::{Cluster, namespace, pod};
use ovn_model::snapshot::{self, Typed};
use ovnkit_kube::controller::config::ControllerConfig;
use ovnkit_kube::trace::{self, Protocol};
use ovsdb::client::{ReplicaClient, ReplicaConfig};

fn main() -> Result<()> {
    let cluster = Cluster::start(
        2,
        &[
            namespace("default", &[]),
            namespace(
                "web",
                &[
                    ("ovn.kubernetes.io/cidr", "10.17.0.0/24"),
                    ("ovn.kubernetes.io/private", "true"),
                ],
            ),
        ],
        ControllerConfig::default(),
    )?;
    let names: Vec<String> = cluster.nodes.iter().map(|n| n.name()).collect();
    let specs = [("default/a", 0), ("default/b", 1), ("web/w", 1)];
    let docs: Vec<String> = specs
        .iter()
        .map(|(p, n)| {
            let (ns, name) = p.split_once('/').unwrap_or_default();
            pod(ns, name, &names[*n], &[], &[])
        })
        .collect();
    cluster.write("pods.yaml", &docs)?;
    let keys: Vec<String> = specs.iter().map(|(p, _)| (*p).to_owned()).collect();
    let allocated = cluster.allocated(&keys)?;
    let _pods = specs
        .iter()
        .map(|(p, n)| cluster.attach(p, *n, &allocated[*p]))
        .collect::<Result<Vec<_>>>()?;
    cluster.central.sync_hv()?;
    println!(
        "lab {}: pods a ({}), b ({}) in default, w ({}) in the private namespace web\n",
        cluster.lab.id(),
        names[0],
        names[1],
        names[1]
    );

    // The NB as the library reads it, from a replica.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let monitor = snapshot::monitor(
        ovn_model::nb::DATABASE,
        &[
            "Logical_Switch",
            "Logical_Switch_Port",
            "Logical_Router",
            "Logical_Router_Port",
            "Load_Balancer",
            "ACL",
            "Port_Group",
        ],
    );
    let snap = rt.block_on(async {
        let (nb, _events) =
            ReplicaClient::start(ReplicaConfig::new(cluster.central.nb_remote(), monitor)).await?;
        nb.wait_synced().await
    })?;
    let nb = Typed::new(&snap);
    let sb = cluster.central.sb_remote();
    for (from, to) in [("default/a", "default/b:8080"), ("default/a", "web/w:8080")] {
        let explained = trace::trace(&nb, &sb, from, to, Protocol::Tcp)
            .with_context(|| format!("tracing {from} -> {to}"))?;
        println!("$ ovnkit trace {from} {to}\n{explained}\n");
    }
    cluster.stop()?;
    Ok(())
}
