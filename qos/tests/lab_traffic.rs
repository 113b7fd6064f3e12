//! Enforced rates with real traffic in the lab: two pods on different nodes, pod `a` sends TCP
//! to pod `b` while the pods' annotations change on the running pods.
//!
//! - egress of `a` through OVN NB `QoS` (meters): 10 Mbit/s within +-20 %, changed to
//!   5 Mbit/s within +-20 %, removed: more than 5x the 10 Mbit/s limit;
//! - ingress of `b` through OVS `linux-htb`: the same bands;
//! - a pinger from `a` to `b` runs through all changes: no reply gap longer than 2 s.
//!
//! These are functional assertions of enforced shaping, not speed benchmarks: limited transfers
//! last 12 s, many times the one-second default burst. Needs root and OVN/OVS (skipped
//! otherwise, failed under `CI=true`).

use std::time::Duration;

use ovn_model::{nb, vswitch};
use ovn_testbed::{CentralOptions, Lab, Pinger, Pod, PodConfig};
use ovsdb::client::{Client, ConnectConfig, connect};
use ovsdb::{DatabaseSchema, Select, Transaction};
use qos::annotations::{EGRESS_RATE, INGRESS_RATE};
use qos::{Config, IngressMechanism, NbObserved, NodeObserved, Planner, PodId, PodTarget};
use tokio::runtime::Runtime;

const LIMITED: Duration = Duration::from_secs(12);
const UNLIMITED: Duration = Duration::from_secs(3);

struct Live {
    rt: Runtime,
    nb: Client,
    planner: Planner,
}

impl Live {
    fn select<T: ovsdb::Table>(&self, client: &Client, schema: &DatabaseSchema) -> Vec<T> {
        let mut txn = Transaction::new(schema.name.clone());
        let h = txn.push(Select::new(T::TABLE));
        let out = self
            .rt
            .block_on(client.transact_validated(schema, &txn))
            .expect("select");
        out.rows(&h)
            .unwrap_or_default()
            .iter()
            .map(|r| T::from_row(r.uuid().expect("_uuid"), r).0)
            .collect()
    }

    /// Parse, plan both databases from what they hold, apply one transaction each.
    fn reconcile(&self, target: &PodTarget, node: &Client, annotations: &[(&str, &str)]) {
        let intent = qos::annotations::parse(&target.pod, annotations.iter().copied()).unwrap();
        let switches: Vec<nb::LogicalSwitch> = self.select(&self.nb, nb::schema());
        let nb_qos: Vec<nb::QoS> = self.select(&self.nb, nb::schema());
        let nb_plan = self
            .planner
            .plan_nb(
                target,
                &intent,
                &NbObserved::from_rows(&switches, &nb_qos, target),
            )
            .unwrap();
        let ports: Vec<vswitch::Port> = self.select(node, vswitch::schema());
        let interfaces: Vec<vswitch::Interface> = self.select(node, vswitch::schema());
        let qos: Vec<vswitch::QoS> = self.select(node, vswitch::schema());
        let queues: Vec<vswitch::Queue> = self.select(node, vswitch::schema());
        let node_plan = self
            .planner
            .plan_node(
                target,
                &intent,
                &NodeObserved::from_rows(&ports, &interfaces, &qos, &queues, target),
            )
            .unwrap();
        for plan in [nb_plan, node_plan] {
            eprintln!("{plan}");
            let client = if plan.database() == nb::DATABASE {
                &self.nb
            } else {
                node
            };
            if !plan.is_empty() {
                self.rt
                    .block_on(plan.transaction().unwrap().send(client))
                    .expect("plan applies");
            }
        }
    }
}

async fn client(remote: &str) -> Client {
    let (driver, client, _updates) = connect(&ConnectConfig::new(remote))
        .await
        .unwrap_or_else(|e| panic!("connect {remote}: {e}"));
    tokio::spawn(async move {
        let _ = driver.await;
    });
    client
}

fn mbit(a: &Pod, b: &Pod, duration: Duration) -> f64 {
    let m = a
        .tcp_throughput(b, duration)
        .expect("transfer")
        .mbit_per_s();
    eprintln!("measured {m:.1} Mbit/s over {duration:?}");
    m
}

fn assert_within(measured: f64, limit: f64, what: &str) {
    assert!(
        (limit * 0.8..=limit * 1.2).contains(&measured),
        "{what}: measured {measured:.2} Mbit/s, limit {limit} Mbit/s +-20 %"
    );
}

#[test]
fn egress_meter_and_ingress_htb_limits_hold_and_change_on_running_pods() {
    let Some(lab) = Lab::for_test() else { return };
    let central = lab.start_central(CentralOptions::default()).unwrap();
    let node1 = lab.start_node(&central).unwrap();
    let node2 = lab.start_node(&central).unwrap();
    central.nbctl(&["ls-add", "ls1"]).unwrap();
    let (mac_a, mac_b) = ("0a:00:00:00:01:0a", "0a:00:00:00:01:0b");
    let ip_a: ipnet::IpNet = "10.0.1.10/24".parse().unwrap();
    let ip_b: ipnet::IpNet = "10.0.1.11/24".parse().unwrap();
    central
        .add_switch_port("ls1", "a", mac_a, ip_a.addr())
        .unwrap();
    central
        .add_switch_port("ls1", "b", mac_b, ip_b.addr())
        .unwrap();
    let a = node1
        .add_pod(PodConfig::new("a", "a", mac_a, ip_a))
        .unwrap();
    let b = node2
        .add_pod(PodConfig::new("b", "b", mac_b, ip_b))
        .unwrap();
    central.wait_port_up("a", Duration::from_secs(20)).unwrap();
    central.wait_port_up("b", Duration::from_secs(20)).unwrap();
    central.sync_hv().unwrap();
    assert_eq!(a.ping(b.ip(), 3).unwrap().loss_percent(), 0.0);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let ovs1 = rt.block_on(client(&node1.ovsdb().unix_remote()));
    let ovs2 = rt.block_on(client(&node2.ovsdb().unix_remote()));
    let live = Live {
        nb: rt.block_on(client(&central.nb_remote())),
        rt,
        planner: Planner::new(Config::default().with_ingress(IngressMechanism::OvsHtb)),
    };
    let target_a = PodTarget::new(PodId::new("default", "a"), "ls1", "a", a.ovs_port());
    let target_b = PodTarget::new(PodId::new("default", "b"), "ls1", "b", b.ovs_port());
    let pinger = Pinger::start(a.netns(), b.ip(), Duration::from_millis(100)).unwrap();

    // Egress of a, through OVN meters.
    live.reconcile(&target_a, &ovs1, &[(EGRESS_RATE, "10")]);
    central.sync_hv().unwrap();
    assert_within(mbit(&a, &b, LIMITED), 10.0, "egress 10 Mbit/s");
    live.reconcile(&target_a, &ovs1, &[(EGRESS_RATE, "5")]);
    central.sync_hv().unwrap();
    assert_within(mbit(&a, &b, LIMITED), 5.0, "egress changed to 5 Mbit/s");
    live.reconcile(&target_a, &ovs1, &[]);
    central.sync_hv().unwrap();
    let restored = mbit(&a, &b, UNLIMITED);
    assert!(restored > 50.0, "egress removed: {restored:.1} Mbit/s");

    // Ingress of b, through OVS htb on b's node.
    live.reconcile(&target_b, &ovs2, &[(INGRESS_RATE, "10")]);
    central.sync_hv().unwrap();
    assert_within(mbit(&a, &b, LIMITED), 10.0, "ingress 10 Mbit/s");
    live.reconcile(&target_b, &ovs2, &[(INGRESS_RATE, "5")]);
    central.sync_hv().unwrap();
    assert_within(mbit(&a, &b, LIMITED), 5.0, "ingress changed to 5 Mbit/s");
    live.reconcile(&target_b, &ovs2, &[]);
    central.sync_hv().unwrap();
    let restored = mbit(&a, &b, UNLIMITED);
    assert!(restored > 50.0, "ingress removed: {restored:.1} Mbit/s");

    let timeline = pinger.stop();
    eprintln!(
        "ping: {} sent, {} replies, longest gap {:?}",
        timeline.sent(),
        timeline.replies.len(),
        timeline.longest_gap()
    );
    let outages = timeline.outages(Duration::from_secs(2));
    assert!(outages.is_empty(), "ping stopped: {outages:?}");

    // Nothing the planner made is left on either node or in the NB (ovn-controller keeps its
    // own untagged linux-noop QoS rows).
    let tagged = |ids: &std::collections::BTreeMap<String, String>| {
        ids.get(ovn_model::owner::OWNER).map(String::as_str)
            == Some(ovn_model::owner::Component::QOS)
    };
    let nb_qos: Vec<nb::QoS> = live.select(&live.nb, nb::schema());
    assert!(
        !nb_qos.iter().any(|q| tagged(&q.external_ids)),
        "{nb_qos:?}"
    );
    for node in [&ovs1, &ovs2] {
        let q: Vec<vswitch::QoS> = live.select(node, vswitch::schema());
        let queues: Vec<vswitch::Queue> = live.select(node, vswitch::schema());
        assert!(!q.iter().any(|q| tagged(&q.external_ids)), "{q:?}");
        assert!(queues.is_empty(), "{queues:?}");
    }
}
