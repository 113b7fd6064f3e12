//! Services, NetworkPolicy and DNS, all in OVN, on a real lab.
//!
//! A central and two nodes on the testbed's external network, the controller running in this
//! process on a manifest directory, and a node agent per node (for the management port and
//! the node ports). Pods `web-0` and `web-1` serve TCP on 8080 (each answers with the address
//! it sees); `client` and `other` are clients. Then:
//!
//! 1. Service `web` (ClusterIP `10.96.0.50:80`, NodePort 30080) with its EndpointSlice:
//!    `client` reaches it through OVN's load balancer, and so does the external host through
//!    either node's address on the node port.
//! 2. A NetworkPolicy lets only pods labelled `role: client` reach `web-*`: `client` still
//!    connects, `other` is blocked.
//! 3. `dig` in `client`'s namespace asks a nameserver address where nothing listens for
//!    `web.default.svc.cluster.local`, and OVN answers with the ClusterIP.
//!
//! ```text
//! cargo run -p examples --example services_policy      # as root, with OVN/OVS installed
//! ```

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, Result};
use examples::cluster::{AgentThread, Cluster, namespace, pod, wait_for};
use ovn_testbed::{SourceEcho, source_seen_by};
use ovnkit_kube::agent::AgentConfig;
use ovnkit_kube::controller::config::ControllerConfig;

const CLUSTER_IP: &str = "10.96.0.50";
const NODE_PORT: u16 = 30080;

/// A pod: name, node index, labels.
type PodSpec = (&'static str, usize, &'static [(&'static str, &'static str)]);

fn main() -> Result<()> {
    let cluster = Cluster::start(2, &[namespace("default", &[])], ControllerConfig::default())?;
    let external = cluster.lab.start_external_net()?;
    let ext: Vec<IpAddr> = cluster
        .nodes
        .iter()
        .map(|n| external.connect(n).map(IpAddr::V4))
        .collect::<Result<_, _>>()?;
    let _agents: Vec<AgentThread> = cluster
        .nodes
        .iter()
        .map(|n| AgentThread::start(&cluster.lab, &cluster.central, n, AgentConfig::default()))
        .collect::<Result<_>>()?;
    let names: Vec<String> = cluster.nodes.iter().map(|n| n.name()).collect();
    // (pod, node, labels)
    let specs: [PodSpec; 4] = [
        ("web-0", 0, &[("app", "web")]),
        ("web-1", 1, &[("app", "web")]),
        ("client", 0, &[("role", "client")]),
        ("other", 1, &[]),
    ];
    let docs: Vec<String> = specs
        .iter()
        .map(|(p, n, labels)| pod("default", p, &names[*n], labels, &[]))
        .collect();
    cluster.write("pods.yaml", &docs)?;
    let keys: Vec<String> = specs.iter().map(|(p, ..)| format!("default/{p}")).collect();
    let allocated = cluster.allocated(&keys)?;
    let pods = keys
        .iter()
        .zip(&specs)
        .map(|(k, (_, n, _))| cluster.attach(k, *n, &allocated[k]))
        .collect::<Result<Vec<_>>>()?;
    let ip = |i: usize| pods[i].ip();
    let _servers = [0, 1].map(|i| SourceEcho::start(pods[i].netns(), SocketAddr::new(ip(i), 8080)));
    println!(
        "lab {}: web-0 {} and client {} on {}, web-1 {} and other {} on {}\n",
        cluster.lab.id(),
        ip(0),
        ip(2),
        names[0],
        ip(1),
        ip(3),
        names[1]
    );

    // 1. The Service and its EndpointSlice, as the API server and its controllers hold them.
    let slice_endpoints: String = [0, 1]
        .iter()
        .map(|&i| {
            format!(
                "- addresses: [\"{}\"]\n  conditions: {{ready: true}}\n  nodeName: {}\n  targetRef: {{kind: Pod, namespace: default, name: web-{i}}}\n",
                ip(i),
                names[i]
            )
        })
        .collect();
    cluster.write(
        "services.yaml",
        &[
            format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: default\nspec:\n  type: NodePort\n  clusterIP: {CLUSTER_IP}\n  clusterIPs: [{CLUSTER_IP}]\n  selector: {{app: web}}\n  ports:\n  - {{name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: {NODE_PORT}}}\n"),
            format!("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-1\n  namespace: default\n  labels: {{kubernetes.io/service-name: web}}\naddressType: IPv4\nports:\n- {{name: http, protocol: TCP, port: 8080}}\nendpoints:\n{slice_endpoints}"),
        ],
    )?;
    let vip = SocketAddr::new(CLUSTER_IP.parse()?, 80);
    let seen = wait_for("the Service answering client", || {
        cluster.central.sync_hv()?;
        Ok(source_seen_by(pods[2].netns(), vip, Duration::from_secs(1)).ok())
    })?;
    println!("client -> Service web {vip}: answered (the backend saw {seen})");
    for (i, addr) in ext.iter().enumerate() {
        let to = SocketAddr::new(*addr, NODE_PORT);
        let seen = wait_for("the node port answering", || {
            Ok(source_seen_by(external.netns(), to, Duration::from_secs(1)).ok())
        })?;
        println!(
            "external host {} -> {} ({}) node port: answered (the backend saw {seen}, the node's ovn0)",
            external.host_ip(),
            to,
            names[i]
        );
    }

    // 2. Only pods labelled role=client may reach web-*.
    cluster.write(
        "policies.yaml",
        &["apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: web-clients\n  namespace: default\nspec:\n  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n  ingress:\n  - from: [{podSelector: {matchLabels: {role: client}}}]\n".to_owned()],
    )?;
    let to_web0 = SocketAddr::new(ip(0), 8080);
    wait_for("the policy blocking other", || {
        cluster.central.sync_hv()?;
        Ok(
            source_seen_by(pods[3].netns(), to_web0, Duration::from_millis(500))
                .is_err()
                .then_some(()),
        )
    })?;
    let client_ok = source_seen_by(pods[2].netns(), to_web0, Duration::from_secs(2)).is_ok();
    println!(
        "\nNetworkPolicy web-clients: client -> web-0: {}, other -> web-0: blocked",
        if client_ok { "allowed" } else { "BLOCKED" }
    );

    // 3. DNS: OVN answers the Service's name; nothing listens at 10.96.0.10.
    let answer = pods[2]
        .netns()
        .exec(
            "dig",
            &[
                "+short",
                "+noedns",
                "+time=2",
                "+tries=1",
                "@10.96.0.10",
                "web.default.svc.cluster.local",
            ],
        )
        .context("dig in client's namespace (bind9-dnsutils)")?;
    println!(
        "\ndig @10.96.0.10 web.default.svc.cluster.local (no DNS server anywhere) -> {}",
        answer.trim()
    );
    cluster.stop()?;
    Ok(())
}
