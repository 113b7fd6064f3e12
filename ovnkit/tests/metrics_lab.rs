//! `/metrics` of a running `ovnkit controller` and `ovnkit agent` on a real OVN lab: the
//! families are there, and the counters move when pods come (the controller's transactions and
//! subnet usage, the agent's CNI requests and their phases).

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::agent::{AgentProc, TestPod, added, call};
use common::{Controller, pod, wait_for, write_manifest};
use ovn_testbed::{CentralOptions, Lab, Netns};
use ovnkit::sandbox::metrics;
use ovnkit_kube::cni::protocol::Command;

/// `GET /metrics` on `addr`, from the calling thread's namespace: the body of a `200`.
fn scrape(addr: SocketAddr) -> String {
    metrics::scrape(addr, metrics::SCRAPE_TIMEOUT).expect("GET /metrics answers 200")
}

/// `GET /metrics` on `addr` inside `ns`.
fn scrape_in(ns: &Netns, addr: SocketAddr) -> String {
    ns.spawn(move || scrape(addr)).unwrap().join().unwrap()
}

/// The samples of `text`: the series (name and labels) -> value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("HTTP") && l.contains(' '))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The address a daemon says it serves metrics on (its log line `serving metrics bound=...`).
fn bound(log: &std::path::Path) -> SocketAddr {
    metrics::wait_bound(log, Duration::from_secs(20)).expect("the metrics address in the log")
}

fn value(s: &BTreeMap<String, f64>, series: &str) -> f64 {
    *s.get(series)
        .unwrap_or_else(|| panic!("no series {series} in {s:#?}"))
}

#[test]
fn controller_and_agent_export_their_families_and_the_counters_move_when_pods_come() {
    let Some(lab) = Lab::for_test() else { return };
    let central = lab
        .start_central(CentralOptions::default())
        .expect("central");
    let node = lab.start_node(&central).expect("node");
    let manifests = lab.dir().join("manifests");
    let state = lab.dir().join("state");
    std::fs::create_dir_all(&manifests).unwrap();
    write_manifest(
        &manifests,
        "namespaces.yaml",
        &[common::namespace("default", &[])],
    );
    write_manifest(
        &manifests,
        "nodes.yaml",
        &[common::node(&node.name(), &node.chassis())],
    );
    let pods = |n: usize| -> Vec<String> {
        (0..n)
            .map(|i| pod("default", &format!("p{i}"), &node.name(), &[], None))
            .collect()
    };
    write_manifest(&manifests, "pods.yaml", &pods(2));
    let controller = Controller::start(
        &central.nb_remote(),
        &manifests,
        &state,
        &lab.dir().join("controller.log"),
        &["--metrics-addr", "127.0.0.1:0"],
    );
    let addr = bound(&controller.log);
    let used = "subnet_used_ip_count{subnet_name=\"ovn-default\",protocol=\"IPv4\",subnet_cidr=\"10.16.0.0/16\"}";
    let committed = "ovnkit_ovsdb_transactions_total{result=\"committed\"}";
    let before = wait_for(Duration::from_secs(20), "two pods counted", || {
        let s = samples(&scrape(addr));
        (s.get(used) == Some(&2.0)).then_some(s)
    });
    for series in [
        "ovnkit_ovsdb_lock_held{lock=\"ovnkit_controller\"}",
        "ovnkit_ovsdb_connected{database=\"OVN_Northbound\"}",
    ] {
        assert_eq!(value(&before, series), 1.0, "{series}");
    }
    assert!(value(&before, committed) >= 1.0);
    assert!(value(&before, "ovnkit_controller_step_duration_seconds_count") >= 1.0);
    assert!(value(&before, "ovnkit_reconcile_objects_total{kind=\"pod\"}") >= 2.0);
    for kind in ["cluster", "pod"] {
        let series = format!("ovnkit_reconcile_duration_seconds_count{{kind=\"{kind}\"}}");
        assert!(value(&before, &series) >= 1.0, "{series}");
    }
    assert_eq!(value(&before, "ovnkit_queue_depth{kind=\"pod\"}"), 0.0);
    assert!(
        before
            .keys()
            .any(|k| k.starts_with("subnet_available_ip_count{subnet_name=\"join\""))
    );

    // A third pod: one more transaction, one more address used.
    write_manifest(&manifests, "pods.yaml", &pods(3));
    let after = wait_for(Duration::from_secs(20), "three pods counted", || {
        let s = samples(&scrape(addr));
        (s.get(used) == Some(&3.0)).then_some(s)
    });
    assert!(value(&after, committed) > value(&before, committed));
    let pod_parts = "ovnkit_reconcile_duration_seconds_count{kind=\"pod\"}";
    assert!(value(&after, pod_parts) > value(&before, pod_parts));

    // The agent: a pod attached through its socket shows as an ADD and its phases.
    let agent = AgentProc::start_with(&lab, &central, &node, &["--metrics-addr", "127.0.0.1:0"]);
    let agent_addr = bound(&agent.log);
    let s = samples(&scrape_in(node.netns(), agent_addr));
    assert_eq!(
        s.get("ovnkit_cni_request_duration_seconds_count{command=\"ADD\",result=\"ok\"}"),
        None
    );
    let p0 = TestPod::new(&lab, "p0", 0);
    added(call(&agent.socket, &p0.req(Command::Add)), "p0");
    let s = wait_for(Duration::from_secs(10), "the agent's counters", || {
        let s = samples(&scrape_in(node.netns(), agent_addr));
        s.contains_key("ovnkit_ovsdb_connected{database=\"Open_vSwitch\"}")
            .then_some(s)
    });
    assert_eq!(
        value(
            &s,
            "ovnkit_cni_request_duration_seconds_count{command=\"ADD\",result=\"ok\"}"
        ),
        1.0
    );
    for phase in ["wait_port", "plumb", "ovs", "wait_up"] {
        assert_eq!(
            value(
                &s,
                &format!("ovnkit_cni_add_phase_duration_seconds_count{{phase=\"{phase}\"}}")
            ),
            1.0,
            "{phase}"
        );
    }
    for db in ["OVN_Northbound", "Open_vSwitch"] {
        assert_eq!(
            value(&s, &format!("ovnkit_ovsdb_connected{{database=\"{db}\"}}")),
            1.0
        );
    }
    // A failing request is counted with its CNI code.
    let stray = TestPod::new(&lab, "stray", 1);
    let mut req = stray.req(Command::Add);
    req.netns = "/var/run/netns/does-not-exist".into();
    let _ = call(&agent.socket, &req);
    let s = samples(&scrape_in(node.netns(), agent_addr));
    assert!(
        s.keys().any(|k| k
            .starts_with("ovnkit_cni_request_duration_seconds_count{command=\"ADD\",result=\"")
            && !k.contains("result=\"ok\"")),
        "{s:#?}"
    );
    drop(agent);
    drop(controller);
}
