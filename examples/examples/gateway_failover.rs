//! Egress gateways in a real 3-node OVN lab with an external network: for each mode, which
//! source address the external host sees; then node1 (the active centralized gateway, an ECMP
//! member and the highest-priority OVN-native gateway chassis) loses its data plane, a health
//! loop that probes the gateways' `ovn0` re-plans, and the outage of each mode is printed
//! beside Kube-OVN's documented figures.
//!
//! ```sh
//! cargo run -p examples --example gateway_failover   # as root, OVN/OVS installed
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use examples::Table;
use gateway::{BfdTimers, Cluster, EgressIntent, NativeGateway, NodePlan, Observed, Plan, Planner};
use ovn_model::snapshot::Typed;
use ovn_testbed::{
    Central, CentralOptions, ExternalNet, Lab, Node, Pinger, Pod, PodConfig, SourceEcho,
};
use ovnkit_kube::health::{HealthTracker, probe_all};
use ovsdb::client::{Client, ConnectConfig, connect};

const ROUTER: &str = "ovn-cluster";
const NATIVE_PORT: &str = "ovn-cluster-ext";
const NATIVE_IP: Ipv4Addr = Ipv4Addr::new(10, 18, 0, 254);
const FIP: Ipv4Addr = Ipv4Addr::new(10, 18, 0, 200);
const ECHO: u16 = 7007;

/// The controller side: observe, plan, one transaction; the node agents apply node plans.
struct Controller {
    planner: Planner,
    client: Client,
    rt: tokio::runtime::Runtime,
    health: BTreeMap<String, bool>,
    joins: BTreeMap<String, IpAddr>,
}

impl Controller {
    fn reconcile(&self, intents: &[EgressIntent], nodes: &[Node]) -> Result<Plan> {
        let replica = self.rt.block_on(
            self.client
                .fetch(&Observed::monitor(), ovn_model::nb::schema()),
        )?;
        let observed =
            Observed::from_snapshot(&Typed::new(&replica.snapshot()), self.planner.cluster());
        let view: Vec<gateway::NodeState> = nodes
            .iter()
            .map(|n| {
                gateway::NodeState::new(n.name(), n.chassis())
                    .with_join_ip(self.joins[&n.name()])
                    .with_health(self.health.get(&n.name()).copied().unwrap_or(true))
            })
            .collect();
        let plan = self.planner.plan(intents, &view, &observed)?;
        if let Some(e) = plan.rejected().first() {
            bail!("{e}");
        }
        let apply = |node: &Node, p: NodePlan| -> Result<()> {
            node.netns().run(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime")
                    .block_on(ovnkit_kube::node::gateway::apply(&p))
            })??;
            Ok(())
        };
        // Make before break: nodes gain what they will carry before OVN steers traffic to
        // them, and lose what they no longer carry only after.
        for node in nodes.iter().filter(|n| n.data_plane_running()) {
            if let Some(p) = plan.node_plans_before().get(&node.name()) {
                apply(node, p.clone())?;
            }
        }
        if !plan.is_empty() {
            self.rt
                .block_on(plan.nb().transaction()?.send(&self.client))?;
        }
        for node in nodes.iter().filter(|n| n.data_plane_running()) {
            apply(
                node,
                plan.node_plan(&node.name()).cloned().unwrap_or_default(),
            )?;
        }
        Ok(plan)
    }
}

/// Router, join switch with `ovn0` on every node (join addresses and MACs from the IPAM),
/// external switch with the native gateway port. Returns each node's join address.
fn wire(
    central: &Central,
    nodes: &[Node],
    external: &ExternalNet,
    cluster: &Cluster,
) -> Result<BTreeMap<String, IpAddr>> {
    central.add_router(ROUTER)?;
    central.add_routed_switch(
        ROUTER,
        "join",
        "100.64.0.1/16".parse()?,
        "0a:00:64:00:00:01",
    )?;
    let mut ipam = ipam::Ipam::new(1);
    gateway::join::add_join_subnet(&mut ipam, cluster)?;
    let mut joins = BTreeMap::new();
    for node in nodes {
        external.connect(node)?;
        let join = gateway::join::assign(&mut ipam, &node.name())?;
        let ip = format!("{}/16", join.ip).parse()?;
        central.add_mgmt_port(node, "join", "ovn0", &join.mac.to_string(), ip)?;
        joins.insert(node.name(), join.ip);
    }
    central.attach_external(
        ROUTER,
        NATIVE_PORT,
        "0a:00:12:00:00:fe",
        format!("{NATIVE_IP}/24").parse()?,
    )?;
    Ok(joins)
}

fn add_pod(central: &Central, node: &Node, k: u8, j: u8) -> Result<Pod> {
    let lsp = format!("p{k}-{j}");
    let mac = format!("0a:00:10:{k:02x}:00:{j:02x}");
    let ip = IpAddr::V4(Ipv4Addr::new(10, 16, k, 10 + j));
    central.add_switch_port(&format!("ls{k}"), &lsp, &mac, ip)?;
    let gw = IpAddr::V4(Ipv4Addr::new(10, 16, k, 1));
    let pod = node.add_pod(
        PodConfig::new(
            &format!("p{k}x{j}"),
            &lsp,
            &mac,
            format!("{ip}/24").parse()?,
        )
        .with_gateway(gw),
    )?;
    central.wait_port_up(&lsp, Duration::from_secs(20))?;
    Ok(pod)
}

fn source(external: &ExternalNet, pod: &Pod) -> String {
    let server = SocketAddr::new(external.host_ip(), ECHO);
    let started = Instant::now();
    loop {
        match ovn_testbed::source_seen_by(pod.netns(), server, Duration::from_secs(1)) {
            Ok(ip) => return ip.to_string(),
            Err(_) if started.elapsed() < Duration::from_secs(15) => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => return format!("unreachable ({e})"),
        }
    }
}

fn wait_bfd(nodes: &[Node]) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if nodes.iter().all(|n| {
            let s = n
                .vsctl(&[
                    "--bare",
                    "--columns=bfd_status",
                    "find",
                    "interface",
                    "type=geneve",
                ])
                .unwrap_or_default();
            s.contains("forwarding=true") && !s.contains("forwarding=false")
        }) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn main() -> Result<()> {
    let lab = Lab::new()?;
    let central = lab.start_central(CentralOptions::default())?;
    let mut nodes: Vec<Node> = (0..3)
        .map(|_| lab.start_node(&central))
        .collect::<Result<_, _>>()?;
    let external = lab.start_external_net()?;
    let cluster = Cluster::default().with_router(ROUTER).with_native(
        // BFD at 300 ms x 3 instead of OVN's 1 s x 3 (which moves the port in ~2.4-3.1 s).
        NativeGateway::new(NATIVE_PORT, NATIVE_IP.into(), ["node1", "node2"])
            .with_bfd(BfdTimers::new(300, 3)),
    );
    let joins = wire(&central, &nodes, &external, &cluster)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let client = rt.block_on(async {
        let (driver, client, _) = connect(&ConnectConfig::new(central.nb_remote())).await?;
        tokio::spawn(driver);
        anyhow::Ok(client)
    })?;
    let mut ctl = Controller {
        planner: Planner::new(cluster),
        client,
        rt,
        health: BTreeMap::new(),
        joins,
    };

    // One subnet per mode; every subnet has a pod on node3 (never a gateway).
    let modes = [
        (1, "distributed"),
        (2, "centralized active-backup (node1, node2)"),
        (3, "centralized ECMP (node1, node2)"),
        (4, "no SNAT (distributed)"),
        (5, "OVN-native SNAT (chassis node1 > node2)"),
        (6, "OVN-native FIP 10.18.0.200"),
    ];
    let mut pods = BTreeMap::new();
    for k in 1..=6u8 {
        central.add_routed_switch(
            ROUTER,
            &format!("ls{k}"),
            format!("10.16.{k}.1/24").parse()?,
            &format!("0a:00:10:10:{k:02x}:01"),
        )?;
        pods.insert(k, add_pod(&central, &nodes[2], k, 1)?);
    }
    let near = add_pod(&central, &nodes[1], 1, 2)?;
    let ecmp_extra = [
        add_pod(&central, &nodes[2], 3, 2)?,
        add_pod(&central, &nodes[2], 3, 3)?,
    ];
    let cidr = |k: u8| -> ipnet::IpNet { format!("10.16.{k}.0/24").parse().expect("valid") };
    let intents = [
        EgressIntent::distributed("ls1", cidr(1))
            .with_pod("node3", pods[&1].ip())
            .with_pod("node2", near.ip()),
        EgressIntent::centralized("ls2", cidr(2), ["node1", "node2"]),
        EgressIntent::centralized("ls3", cidr(3), ["node1", "node2"]).with_ecmp(),
        EgressIntent::distributed("ls4", cidr(4))
            .without_snat()
            .with_pod("node3", pods[&4].ip()),
        EgressIntent::ovn_native("ls5", cidr(5)),
        EgressIntent::ovn_native("ls6", cidr(6))
            .without_snat()
            .with_fip(pods[&6].ip(), FIP.into()),
    ];
    let plan = ctl.reconcile(&intents, &nodes)?;
    println!(
        "plan ({} OVN changes in one transaction):",
        plan.nb().steps().len()
    );
    for line in plan.explain() {
        println!("  {line}");
    }
    central.sync_hv()?;
    external.netns().exec(
        "ip",
        &[
            "route",
            "add",
            &cidr(4).to_string(),
            "via",
            &ExternalNet::node_ip(&nodes[2]).to_string(),
        ],
    )?;
    if !wait_bfd(&nodes) {
        println!("warning: BFD not up on every tunnel after 30 s");
    }

    let _echo = SourceEcho::start(external.netns(), SocketAddr::new(external.host_ip(), ECHO))?;
    let mut seen = Table::new(&["mode", "pod", "source the external host sees"]);
    seen.row([
        "distributed".into(),
        format!("{} on node2", near.ip()),
        source(&external, &near),
    ]);
    for (k, mode) in modes {
        let pod = &pods[&k];
        seen.row([
            mode.to_owned(),
            format!("{} on node3", pod.ip()),
            source(&external, pod),
        ]);
    }
    println!(
        "\nnode addresses: node1 10.18.0.101, node2 10.18.0.102, node3 10.18.0.103; OVN gateway port {NATIVE_IP}"
    );
    seen.print();

    // Kill node1's data plane; every mode's node3 pod pings the external host meanwhile.
    // ECMP hashes each flow to one gateway: ping from three pods so that some flow is likely
    // to go through node1.
    let mut sources: Vec<(u8, &Pod)> = [1u8, 2, 3, 5].iter().map(|k| (*k, &pods[k])).collect();
    sources.extend(ecmp_extra.iter().map(|p| (3u8, p)));
    let pingers: Vec<(u8, IpAddr, Pinger)> = sources
        .into_iter()
        .map(|(k, pod)| {
            let p = Pinger::start(pod.netns(), external.host_ip(), Duration::from_millis(50))?;
            Ok((k, pod.ip(), p))
        })
        .collect::<Result<_>>()?;
    let fip_pinger = Pinger::start(external.netns(), FIP.into(), Duration::from_millis(50))?;
    std::thread::sleep(Duration::from_secs(1));
    let killed = Instant::now();
    nodes[0].kill_data_plane()?;
    println!("\nkilled node1's ovs-vswitchd and ovn-controller");

    // The health loop: probe node1's and node2's ovn0 from node3 through the overlay.
    let targets: Vec<(String, IpAddr)> = nodes[..2]
        .iter()
        .map(|n| (n.name(), ctl.joins[&n.name()]))
        .collect();
    let mut tracker = HealthTracker::new(2);
    let mut replanned = None;
    for _ in 0..200 {
        let t = targets.clone();
        let round = nodes[2]
            .netns()
            .run(move || probe_all(&t, Duration::from_millis(300)))?;
        let changed = tracker.record(&round);
        if changed.iter().any(|n| !tracker.is_healthy(n)) {
            let detected = killed.elapsed();
            for n in &changed {
                ctl.health.insert(n.clone(), tracker.is_healthy(n));
            }
            let plan = ctl.reconcile(&intents, &nodes)?;
            for line in plan.explain().iter().filter(|l| l.contains("unhealthy")) {
                println!("  re-plan: {line}");
            }
            replanned = Some((detected, killed.elapsed()));
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (detected, replanned) = replanned.context("the probes never found node1 down")?;
    let mut moved = None;
    while killed.elapsed() < Duration::from_secs(20) && moved.is_none() {
        if central
            .port_chassis(&format!("cr-{NATIVE_PORT}"))
            .as_deref()
            == Some("chassis-2")
        {
            moved = Some(killed.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(3));

    let mut t = Table::new(&[
        "mode",
        "what moved it",
        "outages (start+length)",
        "longest gap",
        "Kube-OVN documented",
    ]);
    let fmt = |o: &[(Duration, Duration)]| -> String {
        if o.is_empty() {
            return "none".into();
        }
        o.iter()
            .map(|(s, l)| format!("{:.2}s+{:.2}s", s.as_secs_f64(), l.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let probe = format!(
        "probe: down after {:.2}s, re-planned {:.2}s",
        detected.as_secs_f64(),
        replanned.as_secs_f64()
    );
    for (k, ip, p) in pingers {
        let tl = p.stop();
        let (mode, how, doc) = match k {
            1 => (
                "distributed (pod on node3)",
                "nothing to move".to_owned(),
                "-",
            ),
            2 => ("centralized active-backup", probe.clone(), "up to minutes"),
            3 => ("centralized ECMP", probe.clone(), "5-10 s"),
            _ => (
                "OVN-native SNAT",
                moved.map_or("port never moved".into(), |m| {
                    format!(
                        "BFD 300 ms x3: port on chassis-2 at {:.2}s",
                        m.as_secs_f64()
                    )
                }),
                "-",
            ),
        };
        let o = tl.outages(Duration::from_millis(300));
        t.row([
            format!("{mode} ({ip})"),
            how,
            fmt(&o),
            format!("{:.2}s", tl.longest_gap().as_secs_f64()),
            doc.to_owned(),
        ]);
    }
    let tl = fip_pinger.stop();
    t.row([
        "OVN-native FIP (inbound)".to_owned(),
        moved.map_or("port never moved".into(), |m| {
            format!(
                "BFD 300 ms x3: port on chassis-2 at {:.2}s",
                m.as_secs_f64()
            )
        }),
        fmt(&tl.outages(Duration::from_millis(300))),
        format!("{:.2}s", tl.longest_gap().as_secs_f64()),
        "-".to_owned(),
    ]);
    println!("\noutage timelines (pings every 50 ms from node3's pods; node1 killed at ~1.0s):");
    t.print();
    println!("\nafter the failover:");
    let mut after = Table::new(&["mode", "source the external host sees"]);
    for (k, mode) in modes.iter().filter(|(k, _)| [2u8, 3, 5].contains(k)) {
        after.row([(*mode).to_owned(), source(&external, &pods[k])]);
    }
    after.print();
    Ok(())
}
