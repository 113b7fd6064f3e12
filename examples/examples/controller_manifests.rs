//! The controller in manifest mode, run in-process on a real OVN lab.
//!
//! A central and two nodes; a directory of manifests: namespaces (`web` defines its own subnet
//! with `ovn.kubernetes.io/cidr` and excludes `.2` to `.9`), the two Nodes naming their OVN
//! chassis, and five pods, those in `web` with an egress limit of 10 Mbit/s (QoS is read per
//! pod). The controller of `ovnkit_kube` runs as a task on a tokio runtime. Once every pod has
//! its address (the controller writes it into `state/pods.json`), the example prints what the
//! NB holds, read back with `ovn-nbctl`. Then it edits the manifests as an operator would (one
//! pod more, the `web` pods' egress limit raised to 20 Mbit/s), waits for the NB to follow,
//! prints the QoS rows before and after, and stops the controller.
//!
//! ```text
//! cargo run -p examples --example controller_manifests      # as root, with OVN/OVS installed
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use examples::Table;
use examples::cluster::{namespace, node, pod, results, wait_for, write_manifest};
use ovn_testbed::{Central, CentralOptions, Lab};
use ovnkit_kube::controller::config::ControllerConfig;
use ovnkit_kube::controller::manifests::{ManifestSource, StateDir};
use ovnkit_kube::controller::run;

const EGRESS_RATE: &str = "ovn.kubernetes.io/egress_rate";

/// (namespace, pod, node index, egress limit in Mbit/s)
type PodSpec = (&'static str, &'static str, usize, Option<&'static str>);

fn main() -> Result<()> {
    let lab = Lab::new().context("starting the lab")?;
    let central = lab.start_central(CentralOptions::default())?;
    let nodes = [lab.start_node(&central)?, lab.start_node(&central)?];
    println!(
        "lab {}: central, {} ({}), {} ({})",
        lab.id(),
        nodes[0].name(),
        nodes[0].chassis(),
        nodes[1].name(),
        nodes[1].chassis()
    );

    let manifests = lab.dir().join("manifests");
    let state = lab.dir().join("state");
    std::fs::create_dir_all(&manifests)?;
    write_manifest(
        &manifests,
        "namespaces.yaml",
        &[
            namespace("default", &[]),
            namespace(
                "web",
                &[
                    ("ovn.kubernetes.io/cidr", "10.17.0.0/24"),
                    ("ovn.kubernetes.io/exclude_ips", "10.17.0.2..10.17.0.9"),
                ],
            ),
        ],
    )?;
    let node_docs: Vec<String> = nodes
        .iter()
        .map(|n| node(&n.name(), &n.chassis()))
        .collect();
    write_manifest(&manifests, "nodes.yaml", &node_docs)?;
    let node_names = [nodes[0].name(), nodes[1].name()];
    let mut pods: Vec<PodSpec> = vec![
        ("default", "app-0", 0, None),
        ("default", "app-1", 1, None),
        ("web", "web-0", 0, Some("10")),
        ("web", "web-1", 1, Some("10")),
        ("web", "web-2", 0, Some("10")),
    ];
    write_manifest(&manifests, "pods.yaml", &pod_docs(&pods, &node_names))?;
    println!(
        "manifests in {}: 2 namespaces, 2 nodes, {} pods\n",
        manifests.display(),
        pods.len()
    );

    // The controller, in this process: a task on a runtime, stopped through a oneshot.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let source = ManifestSource::open(&manifests)?;
    let sink = Arc::new(StateDir::open(&state)?);
    let nb_remote = central.nb_remote();
    let started = Instant::now();
    let controller = rt.spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        run::run(
            ControllerConfig::default(),
            &nb_remote,
            &source,
            sink,
            shutdown,
        )
        .await
    });

    let allocated = wait_for("every pod allocated", || {
        let r = results(&state)?;
        let done = pods.iter().all(|(ns, name, _, _)| {
            r.get(&format!("{ns}/{name}"))
                .and_then(|a| a.get("ovn.kubernetes.io/allocated"))
                .is_some_and(|v| v == "true")
        });
        Ok(done.then_some(r))
    })?;
    println!(
        "{} pods allocated in {} ms (state/pods.json):",
        pods.len(),
        started.elapsed().as_millis()
    );
    let mut written = Table::new(&["pod", "ip_address", "mac_address", "logical_switch"]);
    for (pod, a) in &allocated {
        let get = |k: &str| {
            a.get(&format!("ovn.kubernetes.io/{k}"))
                .cloned()
                .unwrap_or_default()
        };
        written.row([
            pod.clone(),
            get("ip_address"),
            get("mac_address"),
            get("logical_switch"),
        ]);
    }
    written.print();

    println!("\nwhat the NB holds (ovn-nbctl):");
    println!("{}", router_line(&central)?);
    ports_table(&central)?.print();
    let qos_before = central.nbctl(&["qos-list", "web"])?;
    println!("\nqos-list web:\n{}", indent(&qos_before));

    // The operator edits the manifests: one pod more, the web pods' egress limit raised.
    pods.push(("default", "app-2", 1, None));
    for p in pods.iter_mut().filter(|p| p.0 == "web") {
        p.3 = Some("20");
    }
    let edited = Instant::now();
    write_manifest(&manifests, "pods.yaml", &pod_docs(&pods, &node_names))?;
    println!("edited pods.yaml: added default/app-2, web pods' {EGRESS_RATE} 10 -> 20");
    let web_pods = pods.iter().filter(|p| p.0 == "web").count();
    let qos_after = wait_for("the NB follows the edit", || {
        let qos = central.nbctl(&["qos-list", "web"])?;
        let raised = qos.matches("rate=20000").count() == web_pods && !qos.contains("rate=10000");
        let port = central.nbctl(&[
            "--bare",
            "--columns=addresses",
            "find",
            "Logical_Switch_Port",
            "name=default.app-2",
        ])?;
        Ok((raised && !port.trim().is_empty()).then_some(qos))
    })?;
    println!(
        "the NB followed in {} ms\n\nqos-list web:\n{}",
        edited.elapsed().as_millis(),
        indent(&qos_after)
    );
    println!("switch ports now:");
    ports_table(&central)?.print();

    let events = std::fs::read_to_string(state.join("events.jsonl")).unwrap_or_default();
    println!(
        "\nevents reported (state/events.jsonl): {}",
        events.lines().count()
    );
    for line in events.lines() {
        println!("  {line}");
    }

    let _ = stop.send(());
    let progress = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), controller).await })
        .context("the controller did not stop within 10 s")??
        .context("the controller")?;
    println!(
        "controller stopped: {} transactions, {} refused, took the OVSDB lock {} time(s)",
        progress.transactions, progress.refused, progress.takeovers
    );
    Ok(())
}

/// `router ovn-cluster: <port> <networks>, ...`.
fn router_line(central: &Central) -> Result<String> {
    let mut ports: Vec<String> = nb_rows(central, "Logical_Router_Port", "name,networks")?
        .into_iter()
        .map(|r| format!("{} {}", r[0], r[1]))
        .collect();
    ports.sort();
    Ok(format!("router ovn-cluster: {}", ports.join(", ")))
}

/// The switch ports, with their switch, addresses and chassis.
fn ports_table(central: &Central) -> Result<Table> {
    let mut switch_of: BTreeMap<String, String> = BTreeMap::new();
    for row in nb_rows(central, "Logical_Switch", "name,ports")? {
        for port in row[1].split_whitespace() {
            switch_of.insert(port.to_owned(), row[0].clone());
        }
    }
    let mut rows = Vec::new();
    for row in nb_rows(
        central,
        "Logical_Switch_Port",
        "_uuid,name,addresses,options",
    )? {
        let chassis = row[3]
            .split_whitespace()
            .find_map(|o| o.strip_prefix("requested-chassis="))
            .unwrap_or("")
            .to_owned();
        let switch = switch_of.get(&row[0]).cloned().unwrap_or_default();
        rows.push([switch, row[1].clone(), row[2].clone(), chassis]);
    }
    rows.sort();
    let mut table = Table::new(&["switch", "port", "addresses", "requested-chassis"]);
    for row in rows {
        table.row(row);
    }
    Ok(table)
}

/// Rows of `ovn-nbctl --format=csv --data=bare --no-headings --columns=... list TABLE`.
fn nb_rows(central: &Central, table: &str, columns: &str) -> Result<Vec<Vec<String>>> {
    let out = central.nbctl(&[
        "--format=csv",
        "--data=bare",
        "--no-headings",
        &format!("--columns={columns}"),
        "list",
        table,
    ])?;
    Ok(out
        .lines()
        .filter(|l| !l.is_empty())
        .map(split_csv)
        .collect())
}

/// One CSV line (fields may be quoted, with `""` for a quote).
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Each line of `text`, indented.
fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

fn pod_docs(pods: &[PodSpec], nodes: &[String]) -> Vec<String> {
    pods.iter()
        .map(|(ns, name, node, egress)| {
            let annotations: Vec<(&str, &str)> =
                egress.iter().map(|rate| (EGRESS_RATE, *rate)).collect();
            pod(ns, name, &nodes[*node], &[], &annotations)
        })
        .collect()
}
