//! One reconcile step, one transaction: random worlds of subnets and pods are planned by a
//! topology reconciler (router, switches, router ports, pod ports), the `qos` planner (every
//! pod) and the `gateway` planner (every subnet), all on the reconcile core of `ovn-model`;
//! their plans are merged into one and sent to a real OVN_Northbound `ovsdb-server`, and the
//! same transaction is run on a copy of what the server held with `ovsdb`'s in-memory engine.
//! The transaction must commit, and the server's contents must then equal the in-memory
//! result (UUIDs of new rows matched through the two outcomes). Several worlds in a row make
//! each case insert, update and delete across the three planners.
//!
//! Needs root and OVN (skipped otherwise, failed under `CI=true`).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use gateway::{Cluster, EgressIntent, NativeGateway, NodeState};
use ipnet::IpNet;
use ovn_model::nb::{
    self, LogicalRouter, LogicalRouterPort, LogicalSwitch, LogicalSwitchPort, NbGlobal,
};
use ovn_model::owner::{Component, Key, Object, Scope};
use ovn_model::plan::{Plan, RowTarget, Target};
use ovn_model::reconcile::{self, Want};
use ovn_model::snapshot::{self, Typed};
use ovn_model::{LspAddress, MacAddr};
use ovn_testbed::{Lab, OvsdbServer, OvsdbServerOptions, schemas};
use ovsdb::client::{Client, ConnectConfig, connect};
use ovsdb::replica::Replica;
use ovsdb::{Atom, Datum, Map, OperationResult, Row, Set, Table, TransactOutcome, Uuid};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use qos::{BitRate, Dscp, Limit, PodId, PodTarget, QosIntent};

const ROUTER: &str = "ovn-cluster";
const NATIVE_PORT: &str = "ovn-cluster-ext";
const NODES: u8 = 3;

/// A pod: its subnet, node, and what it asks for.
#[derive(Debug, Clone)]
struct PodSpec {
    subnet: u8,
    index: u8,
    node: u8,
    qos: QosIntent,
}

/// A subnet and how it leaves the cluster (0 distributed, 1 centralized, 2 OVN-native).
#[derive(Debug, Clone)]
struct SubnetSpec {
    k: u8,
    mode: u8,
    gateways: Vec<u8>,
}

#[derive(Debug, Clone)]
struct World {
    subnets: Vec<SubnetSpec>,
    pods: Vec<PodSpec>,
}

fn world() -> impl Strategy<Value = World> {
    let subnet = (0u8..3, prop::collection::btree_set(1..=NODES, 1..=2));
    let pod = (
        1..=NODES,
        prop::option::of(1u64..=50_000),
        prop::option::of(1u64..=50_000),
        prop::option::of(0u8..=63),
    );
    (
        prop::collection::btree_map(1u8..=4, subnet, 1..=4),
        prop::collection::vec((1u8..=4, 0u8..5, pod), 0..=16),
    )
        .prop_map(|(subnets, pods)| {
            let subnets: Vec<SubnetSpec> = subnets
                .into_iter()
                .map(|(k, (mode, gws))| SubnetSpec {
                    k,
                    mode,
                    gateways: gws.into_iter().collect(),
                })
                .collect();
            let mut seen = BTreeMap::new();
            let pods = pods
                .into_iter()
                .filter(|(k, _, _)| subnets.iter().any(|s| s.k == *k))
                .filter(|(k, j, _)| seen.insert((*k, *j), ()).is_none())
                .map(|(k, j, (node, egress, ingress, dscp))| PodSpec {
                    subnet: k,
                    index: j,
                    node,
                    qos: QosIntent {
                        egress: egress.map(|r| Limit::new(BitRate::from_kbit_per_s(r))),
                        ingress: ingress.map(|r| Limit::new(BitRate::from_kbit_per_s(r))),
                        dscp: dscp.and_then(Dscp::new),
                        netem: None,
                    },
                })
                .collect();
            World { subnets, pods }
        })
}

fn cidr(k: u8) -> IpNet {
    format!("10.16.{k}.0/24").parse().unwrap()
}

fn pod_ip(p: &PodSpec) -> IpAddr {
    format!("10.16.{}.{}", p.subnet, 10 + p.index)
        .parse()
        .unwrap()
}

fn pod_id(p: &PodSpec) -> PodId {
    PodId::new("ns", format!("p{}-{}", p.subnet, p.index))
}

fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

fn cluster() -> Cluster {
    Cluster::default()
        .with_router(ROUTER)
        .with_native(NativeGateway::new(
            NATIVE_PORT,
            "10.18.0.254".parse().unwrap(),
            ["node1", "node2"],
        ))
}

fn nodes() -> Vec<NodeState> {
    (1..=NODES)
        .map(|i| {
            NodeState::new(format!("node{i}"), format!("chassis-{i}"))
                .with_join_ip(format!("100.64.0.{}", i + 1).parse().unwrap())
        })
        .collect()
}

fn topology_key(object: Object, role: &str) -> Key {
    Key::new(Component::TOPOLOGY, object, role)
}

/// The topology the world needs: the router and its external port, a switch per subnet on the
/// router, a port per pod. Roots first, then the children under the resolved parents.
fn plan_topology(w: &World, nb: &Typed<'_>) -> Plan {
    let scope = Scope::component(Component::TOPOLOGY);
    let mut plan = Plan::nb();
    let mut roots = vec![
        Want::root(
            topology_key(Object::cluster(), "router"),
            &LogicalRouter::new(ROUTER),
            "the cluster router",
        )
        .unwrap(),
    ];
    for s in &w.subnets {
        let sw = LogicalSwitch::new(&format!("ls{}", s.k)).with_subnet(cidr(s.k));
        roots.push(
            Want::root(
                topology_key(Object::subnet(&sw.name), "switch"),
                &sw,
                "a subnet",
            )
            .unwrap(),
        );
    }
    let mut owned = nb.owned::<LogicalRouter>(&scope);
    owned.extend(nb.owned::<LogicalSwitch>(&scope));
    let resolved = reconcile::diff(&mut plan, roots, owned).unwrap();
    let parent =
        |table: &str, key: &Key| -> RowTarget { resolved.target(table, key).unwrap().clone() };
    let router: Target<LogicalRouter> = Target::Ref(
        parent(
            LogicalRouter::TABLE,
            &topology_key(Object::cluster(), "router"),
        )
        .to_ref()
        .unwrap(),
    );

    let ext = LogicalRouterPort::new(
        NATIVE_PORT,
        mac("0a:00:12:00:00:fe"),
        ["10.18.0.254/24".parse().unwrap()],
    );
    let mut children = vec![
        Want::child(
            topology_key(Object::cluster(), "external-port"),
            &ext,
            router.clone(),
            "external port",
        )
        .unwrap(),
    ];
    for s in &w.subnets {
        let name = format!("ls{}", s.k);
        let sw: Target<LogicalSwitch> = Target::Ref(
            parent(
                LogicalSwitch::TABLE,
                &topology_key(Object::subnet(&name), "switch"),
            )
            .to_ref()
            .unwrap(),
        );
        let lrp = LogicalRouterPort::new(
            &format!("rtr-{name}"),
            mac(&format!("0a:00:10:10:{:02x}:01", s.k)),
            [format!("10.16.{}.1/24", s.k).parse().unwrap()],
        );
        children.push(
            Want::child(
                topology_key(Object::subnet(&name), "router-port"),
                &lrp,
                router.clone(),
                "router port",
            )
            .unwrap(),
        );
        let peer = LogicalSwitchPort::router(&format!("{name}-rtr"), &lrp.name);
        children.push(
            Want::child(
                topology_key(Object::subnet(&name), "router-peer"),
                &peer,
                sw.clone(),
                "router peer",
            )
            .unwrap(),
        );
        for p in w.pods.iter().filter(|p| p.subnet == s.k) {
            let id = pod_id(p);
            let m = mac(&format!("0a:00:10:{:02x}:00:{:02x}", p.subnet, p.index));
            let lsp =
                LogicalSwitchPort::new(id.name()).with_address(LspAddress::mac(m, [pod_ip(p)]));
            let key = topology_key(id.object(), "port");
            children.push(
                Want::child(key, &lsp, sw.clone(), "pod port")
                    .unwrap()
                    .ignoring(&["up", "dynamic_addresses"]),
            );
        }
    }
    let mut owned = nb.owned::<LogicalRouterPort>(&scope);
    owned.extend(nb.owned::<LogicalSwitchPort>(&scope));
    reconcile::diff(&mut plan, children, owned).unwrap();
    plan
}

/// QoS for every pod of the world, and an empty intent for pods that left.
fn plan_qos(w: &World, previous: &World, nb: &Typed<'_>) -> Plan {
    let planner = qos::Planner::default();
    let mut plan = Plan::nb();
    let gone = previous
        .pods
        .iter()
        .filter(|p| !w.pods.iter().any(|q| pod_id(q) == pod_id(p)))
        .map(|p| (p, QosIntent::none()));
    for (p, intent) in w.pods.iter().map(|p| (p, p.qos)).chain(gone) {
        let id = pod_id(p);
        let target = PodTarget::new(
            id.clone(),
            format!("ls{}", p.subnet),
            id.name(),
            format!("veth-{}", id.name()),
        );
        let observed = qos::NbObserved::from_snapshot(nb, &target);
        plan.merge(planner.plan_nb(&target, &intent, &observed).unwrap())
            .unwrap();
    }
    plan
}

fn plan_gateway(w: &World, nb: &Typed<'_>) -> Plan {
    let intents: Vec<EgressIntent> = w
        .subnets
        .iter()
        .map(|s| {
            let name = format!("ls{}", s.k);
            let mut i = match s.mode {
                0 => EgressIntent::distributed(&name, cidr(s.k)),
                1 => EgressIntent::centralized(
                    &name,
                    cidr(s.k),
                    s.gateways.iter().map(|g| format!("node{g}")),
                ),
                _ => EgressIntent::ovn_native(&name, cidr(s.k)),
            };
            for p in w.pods.iter().filter(|p| p.subnet == s.k) {
                i = i.with_pod(format!("node{}", p.node), pod_ip(p));
            }
            i
        })
        .collect();
    let observed = gateway::Observed::from_snapshot(nb, &cluster());
    let plan = gateway::Planner::new(cluster())
        .plan(&intents, &nodes(), &observed)
        .unwrap();
    assert!(plan.rejected().is_empty(), "{:?}", plan.rejected());
    plan.into_nb()
}

struct Server {
    rt: tokio::runtime::Runtime,
    client: Client,
    _server: OvsdbServer,
    _lab: Lab,
}

impl Server {
    fn fetch(&self) -> Replica {
        let tables: Vec<&str> = nb::schema().tables.keys().map(String::as_str).collect();
        self.rt
            .block_on(
                self.client
                    .fetch(&snapshot::monitor(nb::DATABASE, &tables), nb::schema()),
            )
            .expect("fetch NB")
    }
}

fn server() -> Option<Server> {
    let lab = Lab::for_test()?;
    let server = lab
        .start_ovsdb_server(OvsdbServerOptions::new(schemas::NB))
        .expect("start NB");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = rt.block_on(async {
        let (driver, client, _updates) = connect(&ConnectConfig::new(server.unix_remote()))
            .await
            .expect("connect");
        tokio::spawn(driver);
        client
    });
    let s = Server {
        rt,
        client,
        _server: server,
        _lab: lab,
    };
    let mut seed = Plan::nb();
    seed.insert(&NbGlobal::default()).unwrap();
    s.rt.block_on(seed.transaction().unwrap().send(&s.client))
        .expect("seed NB_Global");
    Some(s)
}

/// Every UUID atom of `d` through `map`.
fn remap_datum(d: &Datum, map: &HashMap<Uuid, Uuid>) -> Datum {
    let atom = |a: &Atom| match a {
        Atom::Uuid(u) => Atom::Uuid(*map.get(u).unwrap_or(u)),
        other => other.clone(),
    };
    match d {
        Datum::Set(s) => Datum::Set(s.iter().map(atom).collect::<Set>()),
        Datum::Map(m) => Datum::Map(Map::from_pairs(m.iter().map(|(k, v)| (atom(k), atom(v))))),
    }
}

/// Every row of every table, with UUIDs (keys and references) through `map`.
fn contents(replica: &Replica, map: &HashMap<Uuid, Uuid>) -> BTreeMap<String, BTreeMap<Uuid, Row>> {
    let snap = replica.snapshot();
    snap.tables()
        .map(|t| {
            let rows = t
                .to_rows()
                .into_iter()
                .map(|(u, row)| {
                    let row: Row = row
                        .iter()
                        .map(|(c, d)| (c.to_owned(), remap_datum(d, map)))
                        .collect();
                    (*map.get(&u).unwrap_or(&u), row)
                })
                .collect();
            (t.name().to_owned(), rows)
        })
        .collect()
}

/// The in-memory engine's UUIDs of new rows to the server's, through the two outcomes.
fn uuid_map(mem: &TransactOutcome, real: &TransactOutcome) -> HashMap<Uuid, Uuid> {
    mem.results()
        .iter()
        .zip(real.results())
        .filter_map(|(a, b)| match (a, b) {
            (OperationResult::Uuid(a), OperationResult::Uuid(b)) => Some((*a, *b)),
            _ => None,
        })
        .collect()
}

#[test]
fn merged_plans_of_topology_qos_and_gateway_commit_as_one_transaction_and_match_memory() {
    let Some(s) = server() else { return };
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(48);
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        ..ProptestConfig::default()
    });
    let transactions = std::cell::Cell::new(0);
    runner
        .run(&prop::collection::vec(world(), 1..=3), |worlds| {
            let mut previous = World {
                subnets: Vec::new(),
                pods: Vec::new(),
            };
            // Each world of the sequence, then nothing: every row the planners made goes.
            let empty = World {
                subnets: Vec::new(),
                pods: Vec::new(),
            };
            for w in worlds.iter().chain([&empty]) {
                let before = s.fetch();
                let snap = before.snapshot();
                let typed = Typed::new(&snap);
                let mut step = plan_topology(w, &typed);
                step.merge(plan_qos(w, &previous, &typed)).unwrap();
                step.merge(plan_gateway(w, &typed)).unwrap();
                let prepared = step.validated(nb::schema()).unwrap();
                let mut memory = before.clone();
                let mem_outcome = prepared
                    .apply(&mut memory)
                    .unwrap_or_else(|e| panic!("in memory: {e}\n{step}"));
                let real_outcome =
                    s.rt.block_on(prepared.send(&s.client))
                        .unwrap_or_else(|e| panic!("on the server: {e}\n{step}"));
                transactions.set(transactions.get() + 1);
                let map = uuid_map(&mem_outcome, &real_outcome);
                let after = s.fetch();
                prop_assert_eq!(
                    contents(&memory, &map),
                    contents(&after, &HashMap::new()),
                    "{}",
                    step
                );
                previous = w.clone();
            }
            // Nothing of any subnet or pod is left: only the cluster's router, its external port
            // with the port's two gateway chassis, and the NB_Global row the test made.
            let left: BTreeMap<String, usize> = contents(&s.fetch(), &HashMap::new())
                .into_iter()
                .filter(|(_, rows)| !rows.is_empty())
                .map(|(t, rows)| (t, rows.len()))
                .collect();
            let cluster_only: BTreeMap<String, usize> = [
                ("Gateway_Chassis", 2),
                ("Logical_Router", 1),
                ("Logical_Router_Port", 1),
                ("NB_Global", 1),
            ]
            .into_iter()
            .map(|(t, n)| (t.to_owned(), n))
            .collect();
            prop_assert_eq!(left, cluster_only);
            Ok(())
        })
        .unwrap();
    eprintln!(
        "{} merged transactions committed and matched the in-memory engine",
        transactions.get()
    );
}
