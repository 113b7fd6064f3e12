//! A lab whose owner died without dropping it (here: every handle forgotten, as a SIGKILL
//! leaves it) is removed entirely by `reclaim` from its directory: daemons, a foreground
//! process, containerd with a running pod, mounts, namespaces, the directory.

use std::process::{Command, Stdio};

use ovn_testbed::{
    CentralOptions, CniConfig, Lab, LabProcess, PodSpec, mounts_under, namespaces_with_prefix,
    process_alive, reclaim,
};

#[test]
fn reclaim_removes_a_forgotten_lab_with_its_daemons_processes_pods_and_namespaces() {
    let Some(lab) = Lab::for_test() else { return };
    let central = lab
        .start_central(CentralOptions::default())
        .expect("central");
    let node = lab.start_node(&central).expect("node");
    let external = lab.start_external_net().expect("external net");
    external.connect(&node).expect("external link");
    let conflist = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "labnet",
        "plugins": [{
            "type": "ptp",
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": "10.99.2.0/24"}]],
                "dataDir": lab.dir().join("ipam").display().to_string(),
            },
        }],
    })
    .to_string();
    let containerd = node
        .start_containerd(CniConfig::new(conflist))
        .expect("containerd");
    let pod = containerd.run_pod(PodSpec::new("left")).expect("a pod");
    // A process that runs until killed, with a path of the lab on its command line.
    let marker = lab.dir().join("follow-me");
    std::fs::write(&marker, "").unwrap();
    let mut tail = Command::new("tail");
    tail.arg("-f")
        .arg(&marker)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let sleeper = LabProcess::spawn(
        "tail",
        tail,
        &lab.dir().join("sleeper.pid"),
        &marker.display().to_string(),
    )
    .expect("a foreground process");

    let dir = lab.dir().to_owned();
    let prefix = format!("ovk{}-", lab.id());
    let mut pids = central.pids();
    pids.extend(node.pids());
    pids.push(containerd.pid().expect("containerd runs"));
    pids.push(sleeper.pid());
    assert!(pids.iter().all(|p| process_alive(*p)));
    assert!(!namespaces_with_prefix(&prefix).unwrap().is_empty());
    let app = pod.app_pid().expect("the pod's app runs");

    // The owner dies: nothing is dropped.
    std::mem::forget(pod);
    std::mem::forget(containerd);
    std::mem::forget(sleeper);
    std::mem::forget(external);
    std::mem::forget(node);
    std::mem::forget(central);
    std::mem::forget(lab);

    let reclaimed = reclaim(&dir).expect("reclaim");
    assert_eq!(reclaimed.sandboxes, 1, "the pod removed through CRI");
    assert!(reclaimed.processes.len() >= pids.len(), "{reclaimed:?}");
    for pid in pids.iter().chain([&app]) {
        assert!(!process_alive(*pid), "process {pid} still runs");
    }
    assert!(namespaces_with_prefix(&prefix).unwrap().is_empty());
    assert!(mounts_under(&dir).is_empty());
    assert!(!dir.exists());
    // Nothing left to do the second time.
    let again = reclaim(&dir).expect("reclaim again");
    assert!(again.processes.is_empty() && again.namespaces.is_empty() && !again.dir_removed);
}
