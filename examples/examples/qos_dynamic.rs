//! Dynamic bandwidth QoS on running pods, measured with real traffic.
//!
//! Two pods on different lab nodes; pod `a` sends TCP to pod `b`. The pods' annotations change
//! while they run: an egress limit on `a` (OVN NB `QoS` rows, enforced by OVN meters), then an
//! ingress limit on `b` (a `linux-htb` `QoS` and `Queue` on `b`'s OVS port), then the same
//! ingress limit through OVN (a `to-lport` NB `QoS` row). Each change is
//! parsed, planned by `qos` against the rows read from the databases, and applied as one
//! transaction per database; a pinger runs from `a` to `b` the whole time.
//!
//! ```text
//! cargo run -p examples --example qos_dynamic      # as root, with OVN/OVS installed
//! ```

use std::time::Duration;

use anyhow::{Context, Result, bail};
use examples::Table;
use ovn_model::{nb, vswitch};
use ovn_testbed::{CentralOptions, Lab, Pinger, Pod, PodConfig};
use ovsdb::client::{Client, ConnectConfig, connect};
use ovsdb::{DatabaseSchema, Select, Transaction};
use qos::annotations::{EGRESS_RATE, INGRESS_RATE};
use qos::{Config, IngressMechanism, NbObserved, NodeObserved, Planner, PodId, PodTarget};
use tokio::runtime::Runtime;

/// Long enough to be many times the default burst (one second of the rate).
const LIMITED: Duration = Duration::from_secs(12);
const UNLIMITED: Duration = Duration::from_secs(3);

fn main() -> Result<()> {
    let lab = Lab::new().context("starting the lab")?;
    let central = lab.start_central(CentralOptions::default())?;
    let node1 = lab.start_node(&central)?;
    let node2 = lab.start_node(&central)?;
    central.nbctl(&["ls-add", "ls1"])?;
    let (mac_a, mac_b) = ("0a:00:00:00:01:0a", "0a:00:00:00:01:0b");
    let (ip_a, ip_b): (ipnet::IpNet, ipnet::IpNet) =
        ("10.0.1.10/24".parse()?, "10.0.1.11/24".parse()?);
    central.add_switch_port("ls1", "a", mac_a, ip_a.addr())?;
    central.add_switch_port("ls1", "b", mac_b, ip_b.addr())?;
    let a = node1.add_pod(PodConfig::new("a", "a", mac_a, ip_a))?;
    let b = node2.add_pod(PodConfig::new("b", "b", mac_b, ip_b))?;
    central.wait_port_up("a", Duration::from_secs(20))?;
    central.wait_port_up("b", Duration::from_secs(20))?;
    central.sync_hv()?;
    if a.ping(b.ip(), 3)?.loss_percent() > 0.0 {
        bail!("pods a and b cannot reach each other");
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let live = Live {
        nb: rt.block_on(client(&central.nb_remote()))?,
        node1: rt.block_on(client(&node1.ovsdb().unix_remote()))?,
        node2: rt.block_on(client(&node2.ovsdb().unix_remote()))?,
        rt,
    };
    let target_a = PodTarget::new(PodId::new("default", "a"), "ls1", "a", a.ovs_port());
    let target_b = PodTarget::new(PodId::new("default", "b"), "ls1", "b", b.ovs_port());

    let pinger = Pinger::start(a.netns(), b.ip(), Duration::from_millis(100))?;
    let mut table = Table::new(&["direction", "step", "limit", "measured", "vs limit"]);
    let htb = Planner::new(Config::default().with_ingress(IngressMechanism::OvsHtb));
    let ovn = Planner::new(Config::default());
    let sections = [
        ("egress of a (OVN meter)", &target_a, EGRESS_RATE, &htb),
        ("ingress of b (OVS htb)", &target_b, INGRESS_RATE, &htb),
        ("ingress of b (OVN meter)", &target_b, INGRESS_RATE, &ovn),
    ];
    let steps = [
        ("unlimited", None),
        ("limit", Some(10.0)),
        ("changed", Some(5.0)),
        ("removed", None),
    ];
    for (direction, target, key, planner) in sections {
        let node = if target.pod.name() == "a" {
            &live.node1
        } else {
            &live.node2
        };
        for (step, mbit) in steps {
            let value = mbit.map(|m: f64| m.to_string()).unwrap_or_default();
            let explained = live.reconcile(planner, target, node, &[(key, value.as_str())])?;
            central.sync_hv()?;
            println!("{direction}: {step}");
            for line in &explained {
                println!("  {line}");
            }
            let measured = measure(&a, &b, if mbit.is_some() { LIMITED } else { UNLIMITED })?;
            table.row([
                direction.to_owned(),
                step.to_owned(),
                mbit.map_or("none".to_owned(), |m| format!("{m} Mbit/s")),
                format!("{measured:.1} Mbit/s"),
                mbit.map_or(String::new(), |m| deviation(measured, m)),
            ]);
        }
    }
    let timeline = pinger.stop();
    println!();
    table.print();
    println!(
        "\nping a -> b every 100 ms during all changes: {} sent, {} replies, longest gap {} ms",
        timeline.sent(),
        timeline.replies.len(),
        timeline.longest_gap().as_millis()
    );
    Ok(())
}

/// `+3 %`, `-5 %`, `0 %`.
fn deviation(measured: f64, limit: f64) -> String {
    let pct = ((measured / limit - 1.0) * 100.0).round();
    if pct == 0.0 {
        "0 %".to_owned()
    } else {
        format!("{pct:+.0} %")
    }
}

fn measure(a: &Pod, b: &Pod, duration: Duration) -> Result<f64> {
    Ok(a.tcp_throughput(b, duration)?.mbit_per_s())
}

async fn client(remote: &str) -> Result<Client> {
    let (driver, client, _updates) = connect(&ConnectConfig::new(remote))
        .await
        .with_context(|| format!("connecting to {remote}"))?;
    tokio::spawn(async move {
        if let Err(e) = driver.await {
            eprintln!("ovsdb driver: {e}");
        }
    });
    Ok(client)
}

/// Connections to the NB and to both nodes' Open_vSwitch databases.
struct Live {
    rt: Runtime,
    nb: Client,
    node1: Client,
    node2: Client,
}

impl Live {
    fn select<T: ovsdb::Table>(&self, client: &Client, schema: &DatabaseSchema) -> Result<Vec<T>> {
        let mut txn = Transaction::new(schema.name.clone());
        let h = txn.push(Select::new(T::TABLE));
        let out = self.rt.block_on(client.transact_validated(schema, &txn))?;
        Ok(out
            .rows(&h)
            .unwrap_or_default()
            .iter()
            .filter_map(|r| Some(T::from_row(r.uuid()?, r).0))
            .collect())
    }

    /// Parses the pod's annotations, plans both databases from the rows they hold now, and
    /// applies each plan as one transaction. Returns the plans' explanations.
    fn reconcile(
        &self,
        planner: &Planner,
        target: &PodTarget,
        node: &Client,
        annotations: &[(&str, &str)],
    ) -> Result<Vec<String>> {
        let intent = qos::annotations::parse(&target.pod, annotations.iter().copied())?;
        let switches: Vec<nb::LogicalSwitch> = self.select(&self.nb, nb::schema())?;
        let nb_qos: Vec<nb::QoS> = self.select(&self.nb, nb::schema())?;
        let nb_plan = planner.plan_nb(
            target,
            &intent,
            &NbObserved::from_rows(&switches, &nb_qos, target),
        )?;
        let ports: Vec<vswitch::Port> = self.select(node, vswitch::schema())?;
        let interfaces: Vec<vswitch::Interface> = self.select(node, vswitch::schema())?;
        let qos: Vec<vswitch::QoS> = self.select(node, vswitch::schema())?;
        let queues: Vec<vswitch::Queue> = self.select(node, vswitch::schema())?;
        let node_plan = planner.plan_node(
            target,
            &intent,
            &NodeObserved::from_rows(&ports, &interfaces, &qos, &queues, target),
        )?;
        let mut explained = nb_plan.explain();
        explained.extend(node_plan.explain());
        for plan in [nb_plan, node_plan] {
            let client = if plan.database() == nb::DATABASE {
                &self.nb
            } else {
                node
            };
            if !plan.is_empty() {
                // Every row was checked against the model when the plan was made.
                self.rt.block_on(plan.transaction()?.send(client))?;
            }
        }
        Ok(explained)
    }
}
