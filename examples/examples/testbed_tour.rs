//! A tour of the lab: central + 3 nodes, pods on two subnets joined by a router, ping across
//! nodes and subnets, TCP data between nodes, a table of what it measured, clean teardown.
//!
//! ```text
//! cargo run -p examples --example testbed_tour      # as root, with OVN/OVS installed
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use examples::Table;
use ovn_testbed::{CentralOptions, Lab, PodConfig, namespaces_with_prefix};

/// (pod, node index, switch, mac, address/len, gateway)
const PODS: &[(&str, usize, &str, &str, &str, &str)] = &[
    (
        "web1",
        0,
        "ls1",
        "0a:00:00:00:01:0a",
        "10.0.1.10/24",
        "10.0.1.1",
    ),
    (
        "web2",
        1,
        "ls1",
        "0a:00:00:00:01:0b",
        "10.0.1.11/24",
        "10.0.1.1",
    ),
    (
        "db1",
        2,
        "ls2",
        "0a:00:00:00:02:0a",
        "10.0.2.10/24",
        "10.0.2.1",
    ),
    (
        "db2",
        0,
        "ls2",
        "0a:00:00:00:02:0b",
        "10.0.2.11/24",
        "10.0.2.1",
    ),
];

fn main() -> Result<()> {
    let total = Instant::now();
    let mut timings = Table::new(&["part", "ready in"]);
    let lab = Lab::new().context("starting the lab")?;
    println!("lab {} in {}", lab.id(), lab.dir().display());

    let central = lab.start_central(CentralOptions::default())?;
    timings.row([
        String::from("central (NB, SB, northd)"),
        ms(central.started_in()),
    ]);
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let node = lab.start_node(&central)?;
        timings.row([
            format!("{} ({})", node.name(), node.chassis()),
            ms(node.started_in()),
        ]);
        nodes.push(node);
    }

    let t = Instant::now();
    central.add_router("lr0")?;
    central.add_routed_switch("lr0", "ls1", "10.0.1.1/24".parse()?, "0a:00:00:00:01:01")?;
    central.add_routed_switch("lr0", "ls2", "10.0.2.1/24".parse()?, "0a:00:00:00:02:01")?;
    let mut pods = Vec::new();
    for &(name, node, switch, mac, ip, gw) in PODS {
        let ip: ipnet::IpNet = ip.parse()?;
        central.add_switch_port(switch, name, mac, ip.addr())?;
        pods.push(
            nodes[node].add_pod(PodConfig::new(name, name, mac, ip).with_gateway(gw.parse()?))?,
        );
    }
    for pod in &pods {
        central.wait_port_up(pod.port(), Duration::from_secs(20))?;
    }
    central.sync_hv()?;
    timings.row([
        String::from("router, 2 switches, 4 pods up"),
        ms(t.elapsed()),
    ]);
    timings.print();

    let node_of = |name: &str| {
        PODS.iter()
            .find(|p| p.0 == name)
            .map(|p| p.1 + 1)
            .unwrap_or(0)
    };
    let subnet_of = |name: &str| PODS.iter().find(|p| p.0 == name).map(|p| p.2).unwrap_or("");
    let mut pings = Table::new(&["from", "to", "path", "sent", "loss"]);
    let pairs: Vec<_> = pods
        .iter()
        .flat_map(|from| pods.iter().map(move |to| (from, to)))
        .filter(|(from, to)| from.name() != to.name())
        .collect();
    // All pairs at once: each ping runs in its own pod namespace.
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = pairs
            .iter()
            .map(|(from, to)| s.spawn(move || from.ping(to.ip(), 5)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("ping thread"))
            .collect::<Vec<_>>()
    });
    let mut lost = 0.0;
    for ((from, to), stats) in pairs.iter().zip(results) {
        let stats = stats?;
        lost += stats.loss_percent();
        let path = format!(
            "node{} -> node{}, {}",
            node_of(from.name()),
            node_of(to.name()),
            if subnet_of(from.name()) == subnet_of(to.name()) {
                "same subnet"
            } else {
                "routed"
            }
        );
        pings.row([
            from.name().to_string(),
            format!("{} ({})", to.name(), to.ip()),
            path,
            stats.transmitted.to_string(),
            format!("{:.0}%", stats.loss_percent()),
        ]);
    }
    println!();
    pings.print();

    let mut tcp = Table::new(&["from", "to", "path", "bytes", "throughput"]);
    for (from, to, path) in [
        (0, 1, "node1 -> node2, same subnet"),
        (0, 2, "node1 -> node3, routed"),
    ] {
        let t = pods[from].tcp_throughput(&pods[to], Duration::from_secs(2))?;
        tcp.row([
            pods[from].name().to_string(),
            pods[to].name().to_string(),
            path.to_string(),
            t.bytes.to_string(),
            format!("{:.0} Mbit/s", t.mbit_per_s()),
        ]);
    }
    println!();
    tcp.print();

    let prefix = format!("ovk{}-", lab.id());
    let t = Instant::now();
    drop((pods, nodes, central, lab));
    let left = namespaces_with_prefix(&prefix)?;
    println!();
    println!(
        "teardown: {} ms, namespaces left: {}; whole tour: {:.1} s",
        t.elapsed().as_millis(),
        left.len(),
        total.elapsed().as_secs_f64()
    );
    if lost > 0.0 {
        bail!("some pings were lost");
    }
    if !left.is_empty() {
        bail!("namespaces left behind: {left:?}");
    }
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}
