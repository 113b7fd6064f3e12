//! The planner against real `ovsdb-server`s (OVN_Northbound and Open_vSwitch, standalone, from
//! the testbed): plans are applied as one transaction each through the `ovsdb` client, rows are
//! observed back through the client and read back through `ovn-nbctl` and `ovs-vsctl`.
//!
//! Needs root and OVN/OVS installed (skipped otherwise, failed under `CI=true`).

mod common;

use std::error::Error;
use std::process::Command;

use common::strategies::{config, intent};
use ovn_model::snapshot::Typed;
use ovn_model::{nb, vswitch};
use ovn_testbed::{Lab, OvsdbServer, OvsdbServerOptions, schemas};
use ovsdb::client::{Client, ConnectConfig, connect};
use ovsdb::replica::Replica;
use ovsdb::{Atom, Datum, Insert, NamedUuid, Row, Table, Transaction};
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use qos::{Config, IngressMechanism, PlanError, Planner, PodId, PodTarget, QosIntent, annotations};
use tokio::runtime::Runtime;

type BoxError = Box<dyn Error + Send + Sync>;

/// A lab with an NB and an Open_vSwitch server, connected clients, and a runtime for them.
struct Servers {
    rt: Runtime,
    nb: Client,
    ovs: Client,
    nb_server: OvsdbServer,
    ovs_server: OvsdbServer,
    _lab: Lab,
}

/// Pods `a` and `b` on switch `ls1`, ports `veth-a` and `veth-b` on `br-int`.
fn servers() -> Option<Servers> {
    let lab = Lab::for_test()?;
    let nb_server = lab
        .start_ovsdb_server(OvsdbServerOptions::new(schemas::NB).with_name("nb"))
        .expect("start NB");
    let ovs_server = lab
        .start_ovsdb_server(OvsdbServerOptions::new(schemas::VSWITCH).with_name("ovs"))
        .expect("start Open_vSwitch");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (nb, ovs) = rt.block_on(async {
        let nb = client(&nb_server.unix_remote()).await;
        let ovs = client(&ovs_server.unix_remote()).await;
        (nb, ovs)
    });
    let s = Servers {
        rt,
        nb,
        ovs,
        nb_server,
        ovs_server,
        _lab: lab,
    };
    s.seed();
    Some(s)
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

fn named(n: &str) -> NamedUuid {
    NamedUuid::new(n).unwrap()
}

fn set_of(names: &[&str]) -> Datum {
    Datum::set(names.iter().map(|n| Atom::NamedUuid(named(n))))
}

fn pod(name: &str) -> PodTarget {
    PodTarget::new(PodId::new("ns", name), "ls1", name, format!("veth-{name}"))
}

impl Servers {
    fn seed(&self) {
        let mut nb = Transaction::new(nb::DATABASE);
        for p in ["a", "b"] {
            nb.push(
                Insert::new("Logical_Switch_Port", Row::new().with("name", p)).uuid_name(named(p)),
            );
        }
        nb.push(Insert::new(
            "Logical_Switch",
            Row::new()
                .with("name", "ls1")
                .with("ports", set_of(&["a", "b"])),
        ));
        let mut ovs = Transaction::new(vswitch::DATABASE);
        for p in ["a", "b"] {
            let name = format!("veth-{p}");
            ovs.push(
                Insert::new("Interface", Row::new().with("name", name.as_str()))
                    .uuid_name(named(&format!("i{p}"))),
            );
            ovs.push(
                Insert::new(
                    "Port",
                    Row::new()
                        .with("name", name.as_str())
                        .with("interfaces", set_of(&[&format!("i{p}")])),
                )
                .uuid_name(named(&format!("p{p}"))),
            );
        }
        ovs.push(
            Insert::new(
                "Bridge",
                Row::new()
                    .with("name", "br-int")
                    .with("ports", set_of(&["pa", "pb"])),
            )
            .uuid_name(named("br")),
        );
        ovs.push(Insert::new(
            "Open_vSwitch",
            Row::new().with("bridges", set_of(&["br"])),
        ));
        self.rt.block_on(async {
            self.nb.transact(&nb).await.expect("seed NB");
            self.ovs.transact(&ovs).await.expect("seed Open_vSwitch");
        });
    }

    fn observe(&self) -> Observed {
        // Read as the controller and the node agent read: a replica's snapshot.
        let (nb, ovs) = self.rt.block_on(async {
            let nb = self
                .nb
                .fetch(&qos::NbObserved::monitor(), nb::schema())
                .await;
            let ovs = self
                .ovs
                .fetch(&qos::NodeObserved::monitor(), vswitch::schema())
                .await;
            (nb.expect("fetch NB"), ovs.expect("fetch Open_vSwitch"))
        });
        Observed {
            switches: rows(&nb),
            nb_qos: rows(&nb),
            ports: rows(&ovs),
            interfaces: rows(&ovs),
            qos: rows(&ovs),
            queues: rows(&ovs),
            nb,
            ovs,
        }
    }

    /// Plans both databases for `target` and applies each plan as one transaction; returns
    /// the number of steps applied.
    fn apply(
        &self,
        planner: &Planner,
        target: &PodTarget,
        intent: &QosIntent,
    ) -> Result<usize, PlanError> {
        let seen = self.observe();
        let nb_plan = planner.plan_nb(target, intent, &seen.nb(target))?;
        let node_plan = planner.plan_node(target, intent, &seen.node(target))?;
        let steps = nb_plan.steps().len() + node_plan.steps().len();
        let nb_txn = nb_plan.validated(nb::schema()).expect("NB plan fits");
        let node_txn = node_plan
            .validated(vswitch::schema())
            .expect("node plan fits");
        self.rt.block_on(async {
            if !nb_plan.is_empty() {
                nb_txn.send(&self.nb).await.expect("NB plan applies");
            }
            if !node_plan.is_empty() {
                node_txn.send(&self.ovs).await.expect("node plan applies");
            }
        });
        Ok(steps)
    }

    /// What a controller does for a pod: parse its annotations, then plan and apply.
    fn reconcile(
        &self,
        planner: &Planner,
        target: &PodTarget,
        annotations: &[(&str, &str)],
    ) -> Result<usize, BoxError> {
        let intent = annotations::parse(&target.pod, annotations.iter().copied())?;
        Ok(self.apply(planner, target, &intent)?)
    }

    fn nbctl(&self, args: &[&str]) -> String {
        run(
            "ovn-nbctl",
            &format!("--db={}", self.nb_server.unix_remote()),
            args,
        )
    }

    fn vsctl(&self, args: &[&str]) -> String {
        let db = format!("--db={}", self.ovs_server.unix_remote());
        let mut all = vec!["--no-wait"];
        all.extend_from_slice(args);
        run("ovs-vsctl", &db, &all)
    }
}

fn run(program: &str, db: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .arg(db)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every row of `T` in `replica`, in UUID order.
fn rows<T: Table>(replica: &Replica) -> Vec<T> {
    let snap = replica.snapshot();
    let mut rows: Vec<T> = Typed::new(&snap).rows::<T>().collect();
    rows.sort_by_key(|r| r.uuid().to_string());
    rows
}

/// What the servers hold, as typed rows to compare, and the replicas the planner reads.
struct Observed {
    switches: Vec<nb::LogicalSwitch>,
    nb_qos: Vec<nb::QoS>,
    ports: Vec<vswitch::Port>,
    interfaces: Vec<vswitch::Interface>,
    qos: Vec<vswitch::QoS>,
    queues: Vec<vswitch::Queue>,
    nb: Replica,
    ovs: Replica,
}

impl PartialEq for Observed {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.switches,
            &self.nb_qos,
            &self.ports,
            &self.interfaces,
            &self.qos,
            &self.queues,
        ) == (
            &other.switches,
            &other.nb_qos,
            &other.ports,
            &other.interfaces,
            &other.qos,
            &other.queues,
        )
    }
}

impl std::fmt::Debug for Observed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observed")
            .field("switches", &self.switches)
            .field("nb_qos", &self.nb_qos)
            .field("ports", &self.ports)
            .field("interfaces", &self.interfaces)
            .field("qos", &self.qos)
            .field("queues", &self.queues)
            .finish()
    }
}

impl Observed {
    fn nb(&self, target: &PodTarget) -> qos::NbObserved {
        qos::NbObserved::from_snapshot(&Typed::new(&self.nb.snapshot()), target)
    }

    fn node(&self, target: &PodTarget) -> qos::NodeObserved {
        qos::NodeObserved::from_snapshot(&Typed::new(&self.ovs.snapshot()), target)
    }

    fn port(&self, name: &str) -> &vswitch::Port {
        self.ports.iter().find(|p| p.name == name).expect("port")
    }
}

fn planner() -> Planner {
    Planner::new(Config::default().with_ingress(IngressMechanism::OvsHtb))
}

#[test]
fn set_change_clear_against_real_servers() {
    let Some(s) = servers() else { return };
    let (planner, a) = (planner(), pod("a"));
    let set = [
        (annotations::EGRESS_RATE, "10"),
        (annotations::INGRESS_RATE, "10"),
        (annotations::DSCP, "46"),
    ];
    assert!(s.reconcile(&planner, &a, &set).unwrap() > 0);
    assert_eq!(
        s.reconcile(&planner, &a, &set).unwrap(),
        0,
        "plan after apply"
    );

    // Read back through the OVN and OVS tools.
    let qos_list = s.nbctl(&["qos-list", "ls1"]);
    assert!(
        qos_list.contains("from-lport  2000 (inport == \"a\") rate=10000 burst=10000"),
        "{qos_list}"
    );
    assert!(qos_list.contains("dscp=46"), "{qos_list}");
    let port_qos = s.vsctl(&["get", "Port", "veth-a", "qos"]);
    let qos_type = s.vsctl(&["get", "QoS", port_qos.trim(), "type"]);
    assert_eq!(qos_type.trim(), "linux-htb");
    let queue = s.vsctl(&["get", "QoS", port_qos.trim(), "queues:0"]);
    let max_rate = s.vsctl(&["get", "Queue", queue.trim(), "other_config:max-rate"]);
    assert_eq!(max_rate.trim(), "\"10000000\"");

    // A rate change updates the same rows.
    let before = s.observe();
    let slower = [
        (annotations::EGRESS_RATE, "5"),
        (annotations::INGRESS_RATE, "5"),
        (annotations::DSCP, "46"),
    ];
    assert_eq!(
        s.reconcile(&planner, &a, &slower).unwrap(),
        2,
        "one update per direction"
    );
    let after = s.observe();
    let uuids = |o: &Observed| {
        (
            o.nb_qos.iter().map(|q| q.uuid).collect::<Vec<_>>(),
            o.qos.iter().map(|q| q.uuid).collect::<Vec<_>>(),
            o.queues.iter().map(|q| q.uuid).collect::<Vec<_>>(),
        )
    };
    assert_eq!(uuids(&before), uuids(&after));
    let max_rate = s.vsctl(&["get", "Queue", queue.trim(), "other_config:max-rate"]);
    assert_eq!(max_rate.trim(), "\"5000000\"");
    assert!(
        s.nbctl(&["qos-list", "ls1"])
            .contains("rate=5000 burst=5000")
    );

    // Clearing removes every row it made, roots included.
    s.reconcile(&planner, &a, &[]).unwrap();
    let cleared = s.observe();
    assert!(cleared.nb_qos.is_empty() && cleared.qos.is_empty() && cleared.queues.is_empty());
    assert!(cleared.switches.iter().all(|sw| sw.qos_rules.is_empty()));
    assert_eq!(cleared.port("veth-a").qos, None);
    assert_eq!(s.vsctl(&["list", "Queue"]).trim(), "");
    assert_eq!(s.nbctl(&["qos-list", "ls1"]).trim(), "");
}

#[test]
fn bad_annotation_leaves_the_pods_qos_as_it_was() {
    let Some(s) = servers() else { return };
    let (planner, a) = (planner(), pod("a"));
    let good = [
        (annotations::EGRESS_RATE, "10"),
        (annotations::INGRESS_RATE, "20"),
        (annotations::LATENCY, ""),
    ];
    s.reconcile(&planner, &a, &good).unwrap();
    let before = s.observe();
    for (key, value) in [
        (annotations::EGRESS_RATE, "ten"),
        (annotations::EGRESS_RATE, "-1"),
        (annotations::EGRESS_RATE, "10Mbps"),
        (annotations::INGRESS_RATE, "1000000000"),
        (annotations::INGRESS_BURST, "0.0000001"),
        (annotations::DSCP, "64"),
        (annotations::LOSS, "101"),
    ] {
        let mut bad = good.to_vec();
        bad.push((key, value));
        let err = s.reconcile(&planner, &a, &bad).unwrap_err();
        let err = err
            .downcast_ref::<qos::AnnotationError>()
            .unwrap_or_else(|| panic!("{key}={value}: not an annotation error: {err}"));
        assert_eq!(
            (err.pod.to_string().as_str(), err.key, &*err.value),
            ("ns/a", key, value)
        );
        assert_eq!(s.observe(), before, "{key}={value} changed rows");
    }
    // Planning conflicts are refused before anything is sent, too.
    let conflict = [
        (annotations::INGRESS_RATE, "20"),
        (annotations::LATENCY, "5"),
    ];
    let err = s.reconcile(&planner, &a, &conflict).unwrap_err();
    assert!(matches!(
        err.downcast_ref::<PlanError>(),
        Some(PlanError::HtbAndNetem { .. })
    ));
    assert_eq!(s.observe(), before);
}

#[test]
fn proptest_plan_after_apply_is_empty_and_clear_leaves_no_row() {
    let Some(s) = servers() else { return };
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    });
    let strategy = (
        config(),
        proptest::collection::vec(intent(), 1..4),
        intent(),
    );
    runner
        .run(&strategy, |(config, intents, other)| {
            let planner = Planner::new(config);
            let b_ok = s.apply(&planner, &pod("b"), &other).is_ok();
            let with_b = s.observe();
            for i in &intents {
                match s.apply(&planner, &pod("a"), i) {
                    Ok(_) => {
                        let seen = s.observe();
                        let again_nb = planner.plan_nb(&pod("a"), i, &seen.nb(&pod("a"))).unwrap();
                        let again_node = planner
                            .plan_node(&pod("a"), i, &seen.node(&pod("a")))
                            .unwrap();
                        assert!(again_nb.is_empty(), "{again_nb}");
                        assert!(again_node.is_empty(), "{again_node}");
                    }
                    Err(PlanError::HtbAndNetem { .. }) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            s.apply(&planner, &pod("a"), &QosIntent::none()).unwrap();
            let back = s.observe();
            assert_eq!(back.nb_qos, with_b.nb_qos, "pod b's NB rows are untouched");
            assert_eq!(back.qos, with_b.qos);
            assert_eq!(back.queues, with_b.queues);
            if b_ok {
                s.apply(&planner, &pod("b"), &QosIntent::none()).unwrap();
            }
            let empty = s.observe();
            assert!(empty.nb_qos.is_empty() && empty.qos.is_empty() && empty.queues.is_empty());
            assert!(
                empty
                    .interfaces
                    .iter()
                    .all(|i| i.ingress_policing_rate == 0)
            );
            Ok(())
        })
        .unwrap();
}

#[test]
fn policing_and_netem_are_written_as_ovs_reads_them() {
    let Some(s) = servers() else { return };
    let planner = Planner::new(Config::default().with_egress(qos::EgressMechanism::OvsPolicing));
    let a = pod("a");
    let asked = [
        (annotations::EGRESS_RATE, "2.5"),
        (annotations::EGRESS_BURST, "5"),
        (annotations::LATENCY, "20"),
        (annotations::JITTER, "1.5"),
        (annotations::LOSS, "3"),
        (annotations::LIMIT, "500"),
    ];
    s.reconcile(&planner, &a, &asked).unwrap();
    assert_eq!(s.reconcile(&planner, &a, &asked).unwrap(), 0);
    let get = |args: &[&str]| s.vsctl(args).trim().to_owned();
    assert_eq!(
        get(&["get", "Interface", "veth-a", "ingress_policing_rate"]),
        "2500"
    );
    assert_eq!(
        get(&["get", "Interface", "veth-a", "ingress_policing_burst"]),
        "5000"
    );
    let qos = get(&["get", "Port", "veth-a", "qos"]);
    assert_eq!(get(&["get", "QoS", &qos, "type"]), "linux-netem");
    let config = get(&["get", "QoS", &qos, "other_config"]);
    assert_eq!(
        config,
        r#"{jitter="1500", latency="20000", limit="500", loss="3"}"#
    );
    s.reconcile(&planner, &a, &[]).unwrap();
    assert_eq!(
        get(&["get", "Interface", "veth-a", "ingress_policing_rate"]),
        "0"
    );
    assert_eq!(get(&["list", "QoS"]), "");
}
