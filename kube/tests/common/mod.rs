//! A real OVN lab wired for egress gateways (the topology `gateway`'s crate docs describe),
//! and the controller and node-agent loop around the pure planner: observe, plan, send one
//! transaction, apply each node's plan in its namespace.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use gateway::{Cluster, EgressIntent, NativeGateway, NodePlan, Observed, Plan, Planner};
use ovn_model::snapshot::Typed;
use ovn_testbed::{Central, CentralOptions, ExternalNet, Lab, Node, Pod, PodConfig, SourceEcho};
use ovnkit_kube::node::gateway::{ApplyError, ApplyReport, apply};
use ovsdb::client::{Client, ConnectConfig, connect};

pub const ROUTER: &str = "ovn-cluster";
pub const NATIVE_PORT: &str = "ovn-cluster-ext";
pub const NATIVE_IP: Ipv4Addr = Ipv4Addr::new(10, 18, 0, 254);
pub const ECHO_PORT: u16 = 7007;

/// Subnet `k`: `10.16.<k>.0/24`, its switch `ls<k>`.
pub fn subnet(k: u8) -> ipnet::IpNet {
    format!("10.16.{k}.0/24").parse().expect("valid")
}

pub struct EgressLab {
    pub planner: Planner,
    pub health: BTreeMap<String, bool>,
    pub joins: BTreeMap<String, IpAddr>,
    rt: tokio::runtime::Runtime,
    client: Client,
    pub external: ExternalNet,
    pub nodes: Vec<Node>,
    pub central: Central,
    lab: Lab,
}

impl EgressLab {
    /// `nodes` nodes on an external network, router, join switch and `ovn0` on every node;
    /// an OVN-native gateway port hosted on `native_chassis` (node indexes, highest priority
    /// first) when not empty. `None` when the machine cannot run OVN (outside CI).
    pub fn start(nodes: u8, native_chassis: &[u8]) -> Option<EgressLab> {
        let lab = Lab::for_test()?;
        let central = lab
            .start_central(CentralOptions::default())
            .expect("central");
        let nodes: Vec<Node> = (0..nodes)
            .map(|_| lab.start_node(&central).expect("node"))
            .collect();
        let external = lab.start_external_net().expect("external net");
        central.add_router(ROUTER).expect("router");
        central
            .add_routed_switch(
                ROUTER,
                "join",
                "100.64.0.1/16".parse().unwrap(),
                "0a:00:64:00:00:01",
            )
            .expect("join switch");
        let mut cluster = Cluster::default().with_router(ROUTER);
        // Join addresses and MACs come from the IPAM, as the controller hands them out.
        let mut ipam = ipam::Ipam::new(1);
        gateway::join::add_join_subnet(&mut ipam, &cluster).expect("join subnet");
        let mut joins = BTreeMap::new();
        for node in &nodes {
            external.connect(node).expect("external link");
            let join = gateway::join::assign(&mut ipam, &node.name()).expect("join address");
            joins.insert(node.name(), join.ip);
            let ip = format!("{}/16", join.ip).parse().unwrap();
            central
                .add_mgmt_port(node, "join", "ovn0", &join.mac.to_string(), ip)
                .expect("ovn0");
        }
        if !native_chassis.is_empty() {
            central
                .attach_external(
                    ROUTER,
                    NATIVE_PORT,
                    "0a:00:12:00:00:fe",
                    format!("{NATIVE_IP}/24").parse().unwrap(),
                )
                .expect("external switch");
            let names: Vec<String> = native_chassis.iter().map(|i| format!("node{i}")).collect();
            cluster = cluster.with_native(NativeGateway::new(NATIVE_PORT, NATIVE_IP.into(), names));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let client = rt.block_on(async {
            let (driver, client, _updates) = connect(&ConnectConfig::new(central.nb_remote()))
                .await
                .expect("connect to NB");
            tokio::spawn(driver);
            client
        });
        let health = nodes.iter().map(|n| (n.name(), true)).collect();
        Some(EgressLab {
            planner: Planner::new(cluster),
            health,
            joins,
            rt,
            client,
            external,
            nodes,
            central,
            lab,
        })
    }

    /// Adds subnet `k` (switch `ls<k>`, `10.16.<k>.0/24`, gateway `.1`) on the router.
    pub fn add_subnet(&self, k: u8) -> ipnet::IpNet {
        self.central
            .add_routed_switch(
                ROUTER,
                &format!("ls{k}"),
                format!("10.16.{k}.1/24").parse().unwrap(),
                &format!("0a:00:10:10:{k:02x}:01"),
            )
            .expect("subnet switch");
        subnet(k)
    }

    /// Adds pod `j` of subnet `k` on node `node` (0-based position in `nodes`): address
    /// `10.16.<k>.<10 + j>`.
    pub fn add_pod(&self, node: usize, k: u8, j: u8) -> Pod {
        let lsp = format!("p{k}-{j}");
        let mac = format!("0a:00:10:{k:02x}:00:{j:02x}");
        let ip = IpAddr::V4(Ipv4Addr::new(10, 16, k, 10 + j));
        self.central
            .add_switch_port(&format!("ls{k}"), &lsp, &mac, ip)
            .expect("pod port");
        let gw = IpAddr::V4(Ipv4Addr::new(10, 16, k, 1));
        let pod = self.nodes[node]
            .add_pod(
                PodConfig::new(
                    &format!("p{k}x{j}"),
                    &lsp,
                    &mac,
                    format!("{ip}/24").parse().unwrap(),
                )
                .with_gateway(gw),
            )
            .expect("pod");
        self.central
            .wait_port_up(&lsp, Duration::from_secs(20))
            .expect("pod up");
        pod
    }

    /// The planner's view of the nodes.
    pub fn gateway_nodes(&self) -> Vec<gateway::NodeState> {
        self.nodes
            .iter()
            .map(|n| {
                gateway::NodeState::new(n.name(), n.chassis())
                    .with_join_ip(self.joins[&n.name()])
                    .with_health(self.health.get(&n.name()).copied().unwrap_or(true))
            })
            .collect()
    }

    /// Reads the rows the planner needs, from a replica's snapshot.
    pub fn observe(&self) -> Observed {
        let replica = self
            .rt
            .block_on(
                self.client
                    .fetch(&Observed::monitor(), ovn_model::nb::schema()),
            )
            .expect("observe");
        Observed::from_snapshot(&Typed::new(&replica.snapshot()), self.planner.cluster())
    }

    /// Plans against the current state.
    pub fn plan(&self, intents: &[EgressIntent]) -> Plan {
        self.planner
            .plan(intents, &self.gateway_nodes(), &self.observe())
            .expect("plan")
    }

    /// One reconcile: observe, plan, send the transaction, apply every node's plan on the
    /// nodes whose data plane runs. Returns the plan.
    pub fn reconcile(&self, intents: &[EgressIntent]) -> Plan {
        let plan = self.plan(intents);
        // Make before break: nodes gain what they will carry before OVN steers traffic to them.
        for (i, node) in self.nodes.iter().enumerate() {
            if let Some(p) = plan.node_plans_before().get(&node.name())
                && node.data_plane_running()
            {
                self.apply_node(i, p).expect("node plan applies");
            }
        }
        if !plan.is_empty() {
            let prepared = plan.nb().transaction().expect("the plan builds");
            self.rt
                .block_on(prepared.send(&self.client))
                .unwrap_or_else(|e| panic!("transaction failed: {e}\n{:#?}", plan.explain()));
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if node.data_plane_running() {
                let p = plan.node_plan(&node.name()).cloned().unwrap_or_default();
                self.apply_node(i, &p).expect("node plan applies");
            }
        }
        plan
    }

    /// Applies `plan` in node `i`'s namespace the way the node agent does: on a thread in the
    /// namespace, with a current-thread runtime.
    pub fn apply_node(&self, i: usize, plan: &NodePlan) -> Result<ApplyReport, ApplyError> {
        let plan = plan.clone();
        self.nodes[i]
            .netns()
            .run(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime")
                    .block_on(apply(&plan))
            })
            .expect("thread in the node's namespace")
    }

    /// Waits until every node's data plane has caught up with the NB.
    pub fn sync(&self) {
        self.central.sync_hv().expect("sync hv");
    }

    /// A source-address echo server on the external host.
    pub fn echo(&self) -> SourceEcho {
        SourceEcho::start(
            self.external.netns(),
            SocketAddr::new(self.external.host_ip(), ECHO_PORT),
        )
        .expect("echo server")
    }

    /// The source address the external host sees for a connection from `pod`, retried for up
    /// to `within` (the first packets of a new path may be lost while ARP resolves).
    pub fn source_seen(&self, pod: &Pod, within: Duration) -> Option<IpAddr> {
        let server = SocketAddr::new(self.external.host_ip(), ECHO_PORT);
        let started = Instant::now();
        loop {
            match ovn_testbed::source_seen_by(pod.netns(), server, Duration::from_secs(1)) {
                Ok(ip) => return Some(ip),
                Err(_) if started.elapsed() < within => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(_) => return None,
            }
        }
    }

    /// The node's external address.
    pub fn external_ip(&self, i: usize) -> IpAddr {
        IpAddr::V4(ExternalNet::node_ip(&self.nodes[i]))
    }

    /// What a node holds: `ip route show proto 141` and the `ovnkit` nft table.
    pub fn node_state(&self, i: usize) -> String {
        let ns = self.nodes[i].netns();
        let routes = ns
            .exec("ip", &["route", "show", "proto", "141"])
            .unwrap_or_default();
        let nft = ns
            .exec_raw("nft", &["list", "table", "inet", "ovnkit"])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        format!("{routes}{nft}")
    }

    /// Waits until BFD reports `forwarding=true` on every Geneve tunnel that runs it, on
    /// every node (else the native gateway flaps right after start-up).
    pub fn wait_bfd(&self, timeout: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < timeout {
            let ok = self.nodes.iter().all(|n| {
                let out = n
                    .vsctl(&[
                        "--bare",
                        "--columns=bfd_status",
                        "find",
                        "interface",
                        "type=geneve",
                    ])
                    .unwrap_or_default();
                out.contains("forwarding=true") && !out.contains("forwarding=false")
            });
            if ok {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// The chassis (name) the native gateway port is bound to, if any.
    pub fn native_chassis(&self) -> Option<String> {
        self.central.port_chassis(&format!("cr-{NATIVE_PORT}"))
    }
}

/// What a failover took.
#[derive(Debug, Clone)]
pub struct Failover {
    /// From the kill until the probes declared the gateway down.
    pub detected_after: Duration,
    /// From the kill until the new plan was sent and applied.
    pub replanned_after: Duration,
    /// The re-plan.
    pub plan: Plan,
    /// Probe rounds run.
    pub rounds: usize,
}

impl EgressLab {
    /// The health loop of the controller: probes the join addresses of `gateways` (node
    /// positions) from node `from`'s namespace every `interval` (one ICMP echo each, `timeout`
    /// to answer); when a node's health changes, re-plans `intents` with the new health and
    /// applies it. Returns after the first change that marks a node down, or `None` after
    /// `max_rounds`.
    pub fn health_loop(
        &mut self,
        from: usize,
        gateways: &[usize],
        intents: &[EgressIntent],
        killed_at: Instant,
        max_rounds: usize,
    ) -> Option<Failover> {
        use ovnkit_kube::health::{HealthTracker, probe_all};
        let targets: Vec<(String, IpAddr)> = gateways
            .iter()
            .map(|&g| (self.nodes[g].name(), self.joins[&self.nodes[g].name()]))
            .collect();
        let mut tracker = HealthTracker::new(2);
        for round in 1..=max_rounds {
            let t = targets.clone();
            let results = self.nodes[from]
                .netns()
                .run(move || probe_all(&t, Duration::from_millis(300)))
                .expect("probe thread");
            let changed = tracker.record(&results);
            if changed.iter().any(|n| !tracker.is_healthy(n)) {
                let detected_after = killed_at.elapsed();
                for n in &changed {
                    self.health.insert(n.clone(), tracker.is_healthy(n));
                }
                let plan = self.reconcile(intents);
                return Some(Failover {
                    detected_after,
                    replanned_after: killed_at.elapsed(),
                    plan,
                    rounds: round,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}
