//! A topology built only with `ovn-model`: two switches, a router joining them and a TCP load
//! balancer, written as ONE transaction through the `ovsdb` client; pods on two nodes; ping
//! across the router, TCP through the VIP reaching both backends, and `ovn-trace` showing the
//! path it took.
//!
//! ```text
//! cargo run -p examples --example ovn_topology      # as root, with OVN/OVS installed
//! ```

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use examples::Table;
use ipnet::IpNet;
use ovn_model::nb::{
    LoadBalancer, LoadBalancerProtocol, LogicalRouter, LogicalRouterPort, LogicalSwitch,
    LogicalSwitchPort,
};
use ovn_model::plan::Plan;
use ovn_model::{LspAddress, MacAddr};
use ovn_testbed::{CentralOptions, Lab, Pod, PodConfig};
use ovsdb::client::{ConnectConfig, connect};

/// (pod, node index, switch, MAC, address/len)
const PODS: &[(&str, usize, &str, &str, &str)] = &[
    ("web1", 0, "web", "0a:00:00:00:01:0a", "10.0.1.10/24"),
    ("web2", 1, "web", "0a:00:00:00:01:0b", "10.0.1.11/24"),
    ("client1", 0, "clients", "0a:00:00:00:02:0a", "10.0.2.10/24"),
];
/// (switch, subnet, router port address, router port MAC)
const SWITCHES: &[(&str, &str, &str, &str)] = &[
    ("web", "10.0.1.0/24", "10.0.1.1/24", "0a:00:00:00:01:01"),
    ("clients", "10.0.2.0/24", "10.0.2.1/24", "0a:00:00:00:02:01"),
];
const VIP: &str = "10.96.0.10:80";
/// An IP-only VIP (every protocol, ICMP included) on the same backends.
const IP_VIP: &str = "10.96.0.11";
const BACKEND_PORT: u16 = 8080;
const CONNECTIONS: usize = 40;

fn main() -> Result<()> {
    let lab = Lab::new().context("starting the lab")?;
    println!("lab {} in {}", lab.id(), lab.dir().display());
    let central = lab.start_central(CentralOptions::default())?;
    let nodes = [lab.start_node(&central)?, lab.start_node(&central)?];

    // The whole topology as one change set, checked against the server's schema, sent once.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let txn_len = rt.block_on(async {
        let (driver, client, _updates) = connect(&ConnectConfig::new(central.nb_remote())).await?;
        tokio::spawn(driver);
        let schema = client.get_schema("OVN_Northbound").await?;
        let report = ovn_model::compat::check(ovn_model::nb::schema(), &schema);
        report.check()?;
        let prepared = topology()?.validated(&schema)?;
        prepared.send(&client).await?;
        anyhow::Ok(prepared.transaction().len())
    })?;
    println!("topology written as one transaction of {txn_len} operations");

    let mut pods = Vec::new();
    for &(name, node, switch, mac, ip) in PODS {
        let ip: IpNet = ip.parse()?;
        let gw = SWITCHES
            .iter()
            .find(|s| s.0 == switch)
            .map(|s| s.2)
            .unwrap_or_default();
        let gw: IpNet = gw.parse()?;
        pods.push(
            nodes[node].add_pod(PodConfig::new(name, name, mac, ip).with_gateway(gw.addr()))?,
        );
    }
    for pod in &pods {
        central.wait_port_up(pod.port(), Duration::from_secs(20))?;
    }
    central.sync_hv()?;

    let [web1, web2, client1] = [&pods[0], &pods[1], &pods[2]];
    let mut pings = Table::new(&["from", "to", "path", "sent", "loss"]);
    let ip_vip: IpAddr = IP_VIP.parse()?;
    for (to, ip, path) in [
        (web1.name(), web1.ip(), "routed, same node"),
        (web2.name(), web2.ip(), "routed, across nodes"),
        ("IP-only VIP", ip_vip, "load-balanced, routed"),
    ] {
        let stats = client1.ping(ip, 3)?;
        pings.row([
            client1.name().to_string(),
            format!("{to} ({ip})"),
            path.to_string(),
            stats.transmitted.to_string(),
            format!("{:.0}%", stats.loss_percent()),
        ]);
        if stats.loss_percent() > 0.0 {
            bail!("ping {} -> {to} lost packets", client1.name());
        }
    }
    pings.print();

    let hits = tcp_through_vip(client1, &[web1, web2])?;
    let mut tcp = Table::new(&["VIP", "backend", "connections answered"]);
    for (backend, n) in &hits {
        tcp.row([VIP.to_string(), backend.clone(), n.to_string()]);
    }
    println!();
    tcp.print();
    if hits.len() != 2 || hits.values().any(|n| *n == 0) {
        bail!("the VIP did not reach both backends: {hits:?}");
    }

    // ovn-trace: the same flow, as the logical pipelines see it.
    let router_mac = SWITCHES[1].3;
    let vip: SocketAddr = VIP.parse()?;
    let flow = format!(
        "inport == \"client1\" && eth.src == {} && eth.dst == {router_mac} && ip4.src == {} && \
         ip4.dst == {} && ip.ttl == 64 && tcp && tcp.src == 40000 && tcp.dst == {}",
        client1.mac(),
        client1.ip(),
        vip.ip(),
        vip.port()
    );
    for backend in [web1, web2] {
        let lb_dst = format!("--lb-dst={}:{BACKEND_PORT}", backend.ip());
        let sb = format!("--db={}", central.sb_remote());
        let out = std::process::Command::new("ovn-trace")
            .args([
                sb.as_str(),
                "--ct=new",
                lb_dst.as_str(),
                "clients",
                flow.as_str(),
            ])
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let reaches = text.contains(&format!("output(\"{}\")", backend.name()))
            || text.contains(&format!("output to \"{}\"", backend.name()));
        println!(
            "\novn-trace --lb-dst={}:{BACKEND_PORT} (VIP match, backend chosen, output):",
            backend.ip()
        );
        for line in text.lines().filter(|l| {
            (l.contains(&format!("ip4.dst == {}", vip.ip())) && l.contains("priority"))
                || l.trim() == "ct_lb_mark;"
                || l.contains("output to")
                || l.contains(&format!("reg0 == {}", backend.ip()))
        }) {
            println!("  {}", line.trim());
        }
        if !out.status.success() || !text.contains("ct_lb") || !reaches {
            bail!(
                "ovn-trace does not show the VIP reaching {}:\n{text}",
                backend.name()
            );
        }
    }
    Ok(())
}

/// Two switches with subnets, a router wired to both, the pods' ports, and the load balancer on
/// the clients' switch.
fn topology() -> Result<Plan> {
    let mut cs = Plan::nb();
    let router = cs.insert(&LogicalRouter::new("lr0"))?;
    let mut switches = BTreeMap::new();
    for &(name, subnet, router_ip, router_mac) in SWITCHES {
        let sw = cs.insert(&LogicalSwitch::new(name).with_subnet(subnet.parse()?))?;
        let port = LogicalRouterPort::new(
            &format!("lr0-{name}"),
            router_mac.parse()?,
            [router_ip.parse()?],
        );
        cs.connect_router_to_switch(&router, &sw, &port, &format!("lr0-{name}-peer"))?;
        switches.insert(name, sw);
    }
    for &(name, _, switch, mac, ip) in PODS {
        let mac: MacAddr = mac.parse()?;
        let ip: IpNet = ip.parse()?;
        let port = LogicalSwitchPort::new(name)
            .with_address(LspAddress::mac(mac, [ip.addr()]))
            .with_port_security(mac, &[IpNet::from(ip.addr())]);
        cs.insert_child(&switches[switch], &port)?;
    }
    let backends: Vec<SocketAddr> = PODS
        .iter()
        .filter(|p| p.2 == "web")
        .map(|p| Ok(SocketAddr::new(p.4.parse::<IpNet>()?.addr(), BACKEND_PORT)))
        .collect::<Result<_>>()?;
    let lb = cs.insert(
        &LoadBalancer::new("web-vip", Some(LoadBalancerProtocol::Tcp))
            .with_vip(VIP.parse()?, &backends),
    )?;
    cs.attach_load_balancer(&switches["clients"], &lb)?;
    let ips: Vec<IpAddr> = backends.iter().map(SocketAddr::ip).collect();
    let ip_lb =
        cs.insert(&LoadBalancer::new("web-ip-vip", None).with_ip_vip(IP_VIP.parse()?, &ips))?;
    cs.attach_load_balancer(&switches["clients"], &ip_lb)?;
    Ok(cs)
}

/// Opens `CONNECTIONS` TCP connections from `client` to the VIP; each backend answers with its
/// name. Returns how many connections each backend answered.
fn tcp_through_vip(client: &Pod, backends: &[&Pod]) -> Result<BTreeMap<String, usize>> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut servers = Vec::new();
    for b in backends {
        let (name, ip, stop) = (b.name().to_string(), b.ip(), stop.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        servers.push(
            b.netns()
                .spawn(move || serve_name(ip, &name, &stop, &ready_tx))?,
        );
        // Connect only once the listener is bound.
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .context("backend listener did not start")?;
    }
    let vip: SocketAddr = VIP.parse()?;
    let answers = client.netns().run(move || {
        (0..CONNECTIONS)
            .map(|_| ask_name(vip))
            .collect::<std::io::Result<Vec<String>>>()
    })?;
    stop.store(true, Ordering::Relaxed);
    for s in servers {
        s.join()??;
    }
    let mut hits: BTreeMap<String, usize> =
        backends.iter().map(|b| (b.name().to_string(), 0)).collect();
    for a in answers? {
        *hits.entry(a).or_default() += 1;
    }
    Ok(hits)
}

/// Accepts connections on `ip:BACKEND_PORT` and writes `name` to each, until `stop`.
fn serve_name(
    ip: IpAddr,
    name: &str,
    stop: &AtomicBool,
    ready: &std::sync::mpsc::Sender<()>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind((ip, BACKEND_PORT))?;
    listener.set_nonblocking(true)?;
    let _ = ready.send(());
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut conn, _)) => {
                conn.set_nonblocking(false)?;
                conn.write_all(name.as_bytes())?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn ask_name(vip: SocketAddr) -> std::io::Result<String> {
    let mut conn = TcpStream::connect_timeout(&vip, Duration::from_secs(5))?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut name = String::new();
    conn.read_to_string(&mut name)?;
    Ok(name)
}
