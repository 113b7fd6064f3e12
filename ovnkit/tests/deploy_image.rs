//! The image and the paths of `deploy/` against the `ovnkit` binary:
//!
//! - the paths agree: the binary the Dockerfile puts in the image is the one every container
//!   runs and the init container installs as the plugin the conflist names; the conflist's
//!   agent socket is where the agent listens, on a host directory; the OVS socket is on the
//!   host's OVS run directory; the programs the agent runs are installed in the image;
//! - the agent's readiness probe, run as written against the binary, answers ready when an
//!   agent answers `STATUS` and not ready when none listens; every HTTP probe asks the metrics
//!   endpoint (`ovnkit_kube::metrics::serve`) for a path it answers, on the port the
//!   container serves it on.

mod deploy;
#[path = "../../kube/tests/deploy_common/mod.rs"]
mod deploy_common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use deploy::{
    BIN, agent_flag, config_json, default_of, dockerfile, dockerfile_stages, ovnkit_containers,
};
use deploy_common::{load, workload, workloads};
use k8s_openapi::api::core::v1::{Container, Volume};
use ovnkit_kube::cni::protocol::Reply;
use ovnkit_kube::cni::spec::NetConf;
use serde_json::Value;

// ---- the image ----

#[test]
fn the_builder_is_the_workspaces_rust_on_the_runtimes_debian() {
    let stages = dockerfile_stages();
    let image = dockerfile();
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
            .unwrap();
    let msrv = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .expect("the workspace's rust-version")
        .trim_matches('"');
    assert_eq!(
        image.rust, msrv,
        "the builder's Rust is the workspace's rust-version"
    );
    // Same Debian release on both sides: the binary needs the glibc it was linked against.
    let release = |from: &str| {
        ["bookworm", "trixie", "bullseye"]
            .into_iter()
            .find(|r| from.contains(r))
            .unwrap_or_else(|| panic!("{from}: name the Debian release"))
    };
    let builder = &stages[0].0;
    let runtime = &stages.last().unwrap().0;
    assert_eq!(release(builder), release(runtime), "{builder} vs {runtime}");
}

/// The programs the agent's code runs (`Command::new("...")` in the modules `ovnkit agent` is
/// made of).
fn programs_the_agent_runs() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for path in deploy_common::agent_sources() {
        let text = std::fs::read_to_string(&path).unwrap();
        for part in text.split("Command::new(\"").skip(1) {
            out.insert(part.split('"').next().unwrap().to_owned());
        }
    }
    out
}

#[test]
fn the_image_installs_what_the_agent_runs() {
    let image = dockerfile();
    let programs = programs_the_agent_runs();
    assert!(!programs.is_empty());
    // The Debian package of each program the agent runs.
    let package_of = BTreeMap::from([("nft", "nftables"), ("ethtool", "ethtool")]);
    for program in &programs {
        let package = package_of.get(program.as_str()).unwrap_or_else(|| {
            panic!(
                "the agent runs `{program}`: install its package in deploy/Dockerfile and name \
                 it here"
            )
        });
        assert!(
            image.packages.contains(*package),
            "deploy/Dockerfile does not install {package} (for `{program}`): {:?}",
            image.packages
        );
    }
}

// ---- paths between the image, the init container, the conflist and the agent ----

/// Where a path in a container comes from: the image, a host path, or a ConfigMap key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Image(String),
    Host(String),
    ConfigMap { name: String, key: String },
}

/// `path` in container `c` of a pod with `volumes`.
fn origin(c: &Container, volumes: &[Volume], path: &str) -> Origin {
    let mount = c
        .volume_mounts
        .iter()
        .flatten()
        .filter(|m| path == m.mount_path || path.starts_with(&format!("{}/", m.mount_path)))
        .max_by_key(|m| m.mount_path.len());
    let Some(mount) = mount else {
        return Origin::Image(path.to_owned());
    };
    let rest = path[mount.mount_path.len()..].trim_start_matches('/');
    let volume = volumes
        .iter()
        .find(|v| v.name == mount.name)
        .unwrap_or_else(|| panic!("{}: no volume {}", c.name, mount.name));
    if let Some(host) = &volume.host_path {
        let host = host.path.trim_end_matches('/');
        return Origin::Host(if rest.is_empty() {
            host.to_owned()
        } else {
            format!("{host}/{rest}")
        });
    }
    if let Some(map) = &volume.config_map {
        return Origin::ConfigMap {
            name: map.name.clone(),
            key: rest.to_owned(),
        };
    }
    panic!(
        "{}: volume {} is neither a host path nor a ConfigMap",
        c.name, volume.name
    );
}

/// What the init container's script leaves on the host: host path -> where its content
/// came from. Understands `cp SRC DST`, `mv [-f] SRC DST` and `chmod MODE PATH`; any other
/// command fails the test.
fn installed(c: &Container, volumes: &[Volume]) -> BTreeMap<String, Origin> {
    let words: Vec<&String> = c
        .command
        .iter()
        .flatten()
        .chain(c.args.iter().flatten())
        .collect();
    let [shell, flags, script] = words.as_slice() else {
        panic!("{}: expected [sh, -ec, SCRIPT], got {words:?}", c.name);
    };
    assert_eq!(
        (shell.as_str(), flags.as_str()),
        ("sh", "-ec"),
        "{}: stops at the first failure",
        c.name
    );
    let mut files: BTreeMap<String, Origin> = BTreeMap::new();
    let source = |files: &BTreeMap<String, Origin>, path: &str| match origin(c, volumes, path) {
        Origin::Host(h) => files.get(&h).cloned().unwrap_or(Origin::Host(h)),
        other => other,
    };
    for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["cp", from, to] => {
                let content = source(&files, from);
                let Origin::Host(to) = origin(c, volumes, to) else {
                    panic!("{}: {line}: not onto the host", c.name);
                };
                files.insert(to, content);
            }
            ["mv", "-f", from, to] | ["mv", from, to] => {
                let (Origin::Host(from), Origin::Host(to)) =
                    (origin(c, volumes, from), origin(c, volumes, to))
                else {
                    panic!("{}: {line}: not on the host", c.name);
                };
                let content = files.remove(&from).unwrap_or(Origin::Host(from));
                files.insert(to, content);
            }
            ["chmod", _mode, path] => {
                let Origin::Host(path) = origin(c, volumes, path) else {
                    panic!("{}: {line}: not on the host", c.name);
                };
                assert!(
                    files.contains_key(&path),
                    "{}: {line}: nothing there",
                    c.name
                );
            }
            _ => panic!("{}: {line:?}: a command this test does not follow", c.name),
        }
    }
    files
}

#[test]
fn the_image_the_init_container_the_conflist_and_the_agent_agree_on_paths() {
    let documents = load();
    let image = dockerfile();
    let agent = workload(&documents, "agent");
    let volumes: &[Volume] = agent.spec.volumes.as_deref().unwrap_or_default();

    // One image for everything.
    let all = workloads(&documents);
    let images: BTreeSet<&str> = all
        .iter()
        .flat_map(|w| {
            w.containers()
                .filter_map(|c| c.image.as_deref())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(images.len(), 1, "{images:?}");

    // The init container installs the image's binary into the host's CNI bin directory, and
    // a conflist from the ConfigMap into the host's CNI configuration directory.
    let init = agent
        .spec
        .init_containers
        .iter()
        .flatten()
        .find(|c| c.name == "install-cni")
        .expect("the install-cni init container");
    let files = installed(init, volumes);
    let plugins: Vec<(&str, &str)> = files
        .iter()
        .filter_map(|(path, content)| {
            let name = path.strip_prefix("/opt/cni/bin/")?;
            (*content == Origin::Image(image.binary.clone())).then_some((name, path.as_str()))
        })
        .collect();
    let [(plugin, _)] = plugins.as_slice() else {
        panic!("the image's binary is installed once into /opt/cni/bin: {files:?}");
    };
    let conflists: Vec<(&str, &Origin)> = files
        .iter()
        .filter_map(|(path, content)| {
            let name = path.strip_prefix("/etc/cni/net.d/")?;
            name.ends_with(".conflist").then_some((name, content))
        })
        .collect();
    let [(conflist_name, Origin::ConfigMap { name: map, key })] = conflists.as_slice() else {
        panic!("one conflist from a ConfigMap into /etc/cni/net.d: {files:?}");
    };
    assert_eq!(conflist_name, key, "installed under its ConfigMap key");
    assert!(
        files
            .keys()
            .all(|f| !f.rsplit('/').next().unwrap().starts_with('.')),
        "temporary files left behind: {files:?}"
    );

    // The conflist names the installed plugin, and the plugin accepts its configuration as a
    // runtime hands it over (the list's name and version added).
    let conflist = config_json(&documents, agent.namespace, map, key);
    let entries = conflist["plugins"].as_array().expect("plugins");
    let ours: Vec<&Value> = entries.iter().filter(|p| p["type"] == *plugin).collect();
    let [ours] = ours.as_slice() else {
        panic!("the conflist names the plugin {plugin} once: {conflist}");
    };
    let mut config = (*ours).clone();
    config["name"] = conflist["name"].clone();
    config["cniVersion"] = conflist["cniVersion"].clone();
    let conf = NetConf::parse(config.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("the plugin refuses the conflist: {e:?}"));

    // The agent listens where the plugin dials, on a host directory seen at the same path
    // (the plugin runs on the host).
    let (main, args) = ovnkit_containers(&agent, &image.binary)
        .into_iter()
        .next()
        .expect("the agent's container");
    let run_dir = agent_flag(&args, "run-dir").unwrap_or_else(|| default_of("agent", "run-dir"));
    assert_eq!(
        conf.agent_socket,
        Path::new(&run_dir).join(ovnkit_kube::agent::server::SOCKET),
        "the conflist's agentSocket"
    );
    assert_eq!(
        origin(main, volumes, &run_dir),
        Origin::Host(run_dir.clone()),
        "the agent's run directory is the host's, at the same path"
    );

    // The node's OVS database through the host's OVS run directory.
    let ovs = agent_flag(&args, "ovs").unwrap_or_else(|| default_of("agent", "ovs"));
    let socket = ovs
        .strip_prefix("unix:")
        .expect("the node's OVS over its unix socket");
    assert_eq!(
        origin(main, volumes, socket),
        Origin::Host(socket.to_owned()),
        "the OVS socket is the host's"
    );
    assert_eq!(
        Path::new(socket).parent(),
        Some(Path::new("/var/run/openvswitch"))
    );

    // The pods' network namespaces (containerd's /var/run/netns).
    assert_eq!(
        origin(main, volumes, "/var/run/netns"),
        Origin::Host("/var/run/netns".into())
    );
    let netns = main
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == "/var/run/netns")
        .unwrap();
    assert_eq!(
        netns.mount_propagation.as_deref(),
        Some("HostToContainer"),
        "namespaces created after the agent started are seen"
    );

    let spec = agent.spec;
    assert_eq!(spec.host_network, Some(true));
    assert_eq!(spec.host_pid, Some(true));
    assert_eq!(
        spec.priority_class_name.as_deref(),
        Some("system-node-critical")
    );
    assert!(
        spec.tolerations
            .iter()
            .flatten()
            .any(|t| t.operator.as_deref() == Some("Exists")
                && t.key.is_none()
                && t.effect.is_none()),
        "the agent tolerates every taint"
    );
    for c in agent.containers() {
        assert_eq!(
            c.security_context.as_ref().and_then(|s| s.privileged),
            Some(true),
            "{} is privileged",
            c.name
        );
    }
}

// ---- the agent's readiness probe ----

/// An agent on `socket` that answers each `STATUS` with `Done`, for `count` connections.
fn status_agent(socket: &Path, count: usize) -> std::thread::JoinHandle<Vec<Value>> {
    let listener = UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..count {
            let (mut stream, _) = listener.accept().unwrap();
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line).unwrap();
            seen.push(serde_json::from_str(&line).unwrap());
            let reply = serde_json::to_string(&Reply::Done).unwrap();
            stream.write_all(format!("{reply}\n").as_bytes()).unwrap();
        }
        seen
    })
}

#[test]
fn the_agents_readiness_probe_asks_the_agent_for_status() {
    let documents = load();
    let image = dockerfile();
    let agent = workload(&documents, "agent");
    let volumes: &[Volume] = agent.spec.volumes.as_deref().unwrap_or_default();
    let (main, _) = ovnkit_containers(&agent, &image.binary)
        .into_iter()
        .next()
        .unwrap();
    let probe = main
        .readiness_probe
        .as_ref()
        .and_then(|p| p.exec.as_ref())
        .and_then(|e| e.command.clone())
        .expect("an exec readiness probe");
    let [shell, flag, script] = probe.as_slice() else {
        panic!("[sh, -c, SCRIPT], not {probe:?}");
    };
    assert_eq!((shell.as_str(), flag.as_str()), ("sh", "-c"));
    // The script's configuration file, from the ConfigMap.
    let file = script
        .split_whitespace()
        .find_map(|w| match origin(main, volumes, w) {
            Origin::ConfigMap { name, key } => Some((w.to_owned(), name, key)),
            _ => None,
        });
    let (path, map, key) = file.expect("the probe reads its configuration from the ConfigMap");
    let mut config = config_json(&documents, agent.namespace, &map, &key);
    let conf = NetConf::parse(config.to_string().as_bytes()).expect("the plugin accepts it");
    let run_dir = agent_flag(&ovnkit_containers(&agent, &image.binary)[0].1, "run-dir")
        .unwrap_or_else(|| default_of("agent", "run-dir"));
    assert_eq!(
        conf.agent_socket,
        Path::new(&run_dir).join(ovnkit_kube::agent::server::SOCKET)
    );

    // The script as written, with this build's binary and a copy of the configuration whose
    // socket is a temporary one.
    let dir = tempfile::tempdir().unwrap();
    let socket: PathBuf = dir.path().join("agent.sock");
    config["agentSocket"] = Value::String(socket.display().to_string());
    let copy = dir.path().join("status.json");
    std::fs::write(&copy, config.to_string()).unwrap();
    assert!(
        script.contains(&image.binary),
        "the probe runs the image's binary"
    );
    let script = script
        .replace(&image.binary, BIN)
        .replace(&path, &copy.display().to_string());
    let probe = || {
        Command::new("sh")
            .args(["-c", &script])
            .env_remove("CNI_COMMAND")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };

    // No agent: not ready, with the plugin's "not available" code.
    let out = probe();
    assert!(!out.status.success());
    let error: Value = serde_json::from_slice(&out.stdout).expect("a CNI error");
    assert_eq!(error["code"], 50, "{error}");

    // An agent that answers: ready, and it was asked for STATUS.
    let agent = status_agent(&socket, 1);
    let out = probe();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let seen = agent.join().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["command"], "STATUS", "{seen:?}");
}

// ---- HTTP probes: the metrics endpoint ----

#[tokio::test]
async fn http_probes_ask_the_metrics_endpoint_on_its_port() {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let documents = load();
    let image = dockerfile();
    // The endpoint the binary serves, on a free port here.
    let registry = std::sync::Arc::new(ovnkit_kube::metrics::Registry::default());
    let (bound, server) = ovnkit_kube::metrics::serve(
        "127.0.0.1:0".parse().unwrap(),
        registry,
        std::future::pending(),
    )
    .await
    .expect("the metrics endpoint");
    tokio::spawn(server);
    let get = |path: String| async move {
        let mut stream = tokio::net::TcpStream::connect(bound).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nhost: probe\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer.lines().next().unwrap_or_default().to_owned()
    };

    let mut probed = 0;
    for w in workloads(&documents) {
        for (c, args) in ovnkit_containers(&w, &image.binary) {
            let probes = [&c.liveness_probe, &c.readiness_probe, &c.startup_probe];
            for http in probes
                .into_iter()
                .flatten()
                .filter_map(|p| p.http_get.as_ref())
            {
                let port = match &http.port {
                    IntOrString::Int(n) => *n,
                    IntOrString::String(name) => {
                        c.ports
                            .iter()
                            .flatten()
                            .find(|p| p.name.as_deref() == Some(name.as_str()))
                            .unwrap_or_else(|| panic!("{} {}: no port {name}", w.what, c.name))
                            .container_port
                    }
                };
                let addr: std::net::SocketAddr = agent_flag(&args, "metrics-addr")
                    .unwrap_or_else(|| {
                        panic!("{} {}: an HTTP probe but no --metrics-addr", w.what, c.name)
                    })
                    .parse()
                    .expect("an address");
                assert_eq!(
                    i32::from(addr.port()),
                    port,
                    "{} {}: the probe's port is the metrics port",
                    w.what,
                    c.name
                );
                assert!(
                    addr.ip().is_unspecified(),
                    "{} {}: the kubelet probes the pod's (the node's) address, not {addr}",
                    w.what,
                    c.name
                );
                assert!(
                    c.ports.iter().flatten().any(|p| p.container_port == port),
                    "{} {}: the port is declared (the scheduler then keeps two off one node)",
                    w.what,
                    c.name
                );
                let path = http.path.clone().unwrap_or_else(|| "/".to_owned());
                let status = get(path.clone()).await;
                assert!(
                    status.starts_with("HTTP/1.1 200"),
                    "{} {}: GET {path} answers {status:?}",
                    w.what,
                    c.name
                );
                probed += 1;
            }
        }
    }
    assert!(probed > 0, "no HTTP probe");
}
