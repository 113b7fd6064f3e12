//! Pods through containerd's CRI on a lab node, networked by the standard `ptp` and
//! `host-local` CNI plugins, and the teardown of all of it.

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use ovn_testbed::{
    Central, CentralOptions, CniConfig, Containerd, CriPod, Lab, Node, PodSpec, mounts_under,
    namespaces_with_prefix, process_alive,
};

const SUBNET: &str = "10.99.1.0/24";

fn ptp_conflist(lab: &Lab, subnet: &str) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "labnet",
        "plugins": [{
            "type": "ptp",
            "ipMasq": false,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": subnet}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": lab.dir().join("ipam").display().to_string(),
            },
        }],
    })
    .to_string()
}

/// Links in the node's namespace, by name.
fn links(node: &Node) -> Vec<String> {
    let out = node.netns().exec("ip", &["-o", "link", "show"]).unwrap();
    let mut names: Vec<String> = out
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or_default().to_string())
        .collect();
    names.sort();
    names
}

/// The cgroup directories named `parent` under every cgroup hierarchy.
fn cgroup_dirs(parent: &str) -> Vec<PathBuf> {
    let relative = parent.trim_start_matches('/');
    let mut dirs = Vec::new();
    for entry in fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let dir = entry.path().join(relative);
        if dir.exists() {
            dirs.push(dir);
        }
    }
    if Path::new("/sys/fs/cgroup").join(relative).exists() {
        dirs.push(Path::new("/sys/fs/cgroup").join(relative));
    }
    dirs
}

fn inode(path: &Path) -> u64 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .ino()
}

struct CriLab {
    // Field order is drop order: containerd goes first, with the pods still running.
    containerd: Containerd,
    pods: Vec<CriPod>,
    node: Node,
    _central: Central,
    lab: Lab,
}

fn cri_lab(lab: Lab, pods: &[&str]) -> CriLab {
    let central = lab.start_central(CentralOptions::default()).unwrap();
    let node = lab.start_node(&central).unwrap();
    let containerd = node
        .start_containerd(CniConfig::new(ptp_conflist(&lab, SUBNET)))
        .unwrap();
    let pods = pods
        .iter()
        .map(|name| containerd.run_pod(PodSpec::new(name)).unwrap())
        .collect();
    CriLab {
        containerd,
        pods,
        node,
        _central: central,
        lab,
    }
}

#[test]
fn two_cri_pods_get_addresses_from_the_range_share_their_netns_and_ping_each_other() {
    let Some(lab) = Lab::for_test() else { return };
    let central = lab.start_central(CentralOptions::default()).unwrap();
    let node = lab.start_node(&central).unwrap();
    let links_before = links(&node);
    let containerd = node
        .start_containerd(CniConfig::new(ptp_conflist(&lab, SUBNET)))
        .unwrap();
    let version = containerd.cri().version().unwrap();
    assert_eq!(version.runtime_name, "containerd");
    assert_eq!(version.api_version, "v1");
    let status = containerd.cri().status().unwrap();
    assert!(
        status.runtime_ready() && status.network_ready(),
        "{status:?}"
    );
    let images = containerd.cri().list_images().unwrap();
    for image in [ovn_testbed::PAUSE_IMAGE, ovn_testbed::BUSYBOX_IMAGE] {
        assert!(images.iter().any(|i| i == image), "{image} in {images:?}");
    }

    let a = containerd.run_pod(PodSpec::new("pod-a")).unwrap();
    let b = containerd.run_pod(PodSpec::new("pod-b")).unwrap();
    let subnet: Ipv4Net = SUBNET.parse().unwrap();
    for pod in [&a, &b] {
        match pod.ip() {
            IpAddr::V4(ip) => assert!(subnet.contains(&ip), "{} has {ip}", pod.name()),
            other => panic!("{} has {other}", pod.name()),
        }
        // The app container lives in the sandbox's network namespace.
        let pid = pod.app_pid().expect("the app container runs");
        assert_eq!(
            inode(&PathBuf::from(format!("/proc/{pid}/ns/net"))),
            inode(pod.netns_path()),
            "{}",
            pod.name()
        );
        let addrs = pod.exec_in_netns("ip", &["-4", "-o", "addr"]).unwrap();
        assert!(addrs.contains(&pod.ip().to_string()), "{addrs}");
    }
    assert_ne!(a.ip(), b.ip());
    assert_eq!(a.ping(b.ip(), 3).unwrap().loss_percent(), 0.0);
    assert_eq!(b.ping(a.ip(), 3).unwrap().loss_percent(), 0.0);
    let timings = containerd.pod_timings();
    assert_eq!(timings.len(), 2);
    eprintln!(
        "pod timings: {timings:?}; bring-up: {:?}",
        containerd.timings()
    );

    // Stop and remove through CRI: nothing of the pods is left.
    let netns_files = [a.netns_path().to_path_buf(), b.netns_path().to_path_buf()];
    a.remove().unwrap();
    b.remove().unwrap();
    assert_eq!(containerd.list_pod_sandboxes().unwrap(), vec![]);
    for file in &netns_files {
        assert!(!file.exists(), "{} is left", file.display());
    }
    assert_eq!(mounts_under(lab.dir()), Vec::<PathBuf>::new());
    assert_eq!(links(&node), links_before);

    let parent = containerd.cgroup_parent().to_string();
    drop(containerd);
    assert_eq!(cgroup_dirs(&parent), Vec::<PathBuf>::new());
    assert_eq!(mounts_under(lab.dir()), Vec::<PathBuf>::new());
}

#[test]
fn dropping_a_cri_lab_with_pods_running_leaves_nothing() {
    let Some(lab) = Lab::for_test() else { return };
    let running = cri_lab(lab, &["pod-a", "pod-b"]);
    let prefix = format!("ovk{}-", running.lab.id());
    let lab_dir = running.lab.dir().to_path_buf();
    let containerd_pid = running.containerd.pid().expect("containerd runs");
    let parent = running.containerd.cgroup_parent().to_string();
    let app_pids: Vec<i32> = running.pods.iter().filter_map(|p| p.app_pid()).collect();
    let netns_files: Vec<PathBuf> = running
        .pods
        .iter()
        .map(|p| p.netns_path().to_path_buf())
        .collect();
    assert_eq!(app_pids.len(), 2);
    assert_eq!(
        running.pods[0]
            .ping(running.pods[1].ip(), 2)
            .unwrap()
            .loss_percent(),
        0.0
    );
    assert!(!cgroup_dirs(&parent).is_empty(), "the pods have cgroups");
    assert!(!mounts_under(&lab_dir).is_empty(), "the pods have mounts");
    assert!(!running.node.pids().is_empty());

    drop(running);

    assert!(!process_alive(containerd_pid), "containerd survived");
    for pid in app_pids {
        assert!(!process_alive(pid), "app process {pid} survived");
    }
    for file in &netns_files {
        assert!(!file.exists(), "{} is left", file.display());
    }
    assert_eq!(mounts_under(&lab_dir), Vec::<PathBuf>::new());
    assert_eq!(cgroup_dirs(&parent), Vec::<PathBuf>::new());
    assert_eq!(
        namespaces_with_prefix(&prefix).unwrap(),
        Vec::<String>::new()
    );
    assert!(!lab_dir.exists() || std::env::var_os("OVNKIT_LAB_KEEP").is_some());
}
