//! Standalone servers, TLS certificates and Raft clusters, checked with `ovsdb-client`.

use std::process::Command;
use std::time::Duration;

use ovn_testbed::{Lab, OvsdbServerOptions, RaftRole, schemas};

fn ovsdb_client(args: &[&str]) -> std::process::Output {
    Command::new("ovsdb-client")
        .args(args)
        .output()
        .expect("ovsdb-client runs")
}

#[test]
fn standalone_server_answers_on_unix_and_tcp() {
    let Some(lab) = Lab::for_test() else { return };
    let server = lab
        .start_ovsdb_server(OvsdbServerOptions::new(schemas::NB).with_tcp())
        .unwrap();
    let tcp = server.tcp_remote().expect("a tcp remote");
    for remote in [server.unix_remote(), tcp] {
        let out = ovsdb_client(&["list-dbs", &remote]);
        assert!(
            out.status.success(),
            "{remote}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dbs = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            dbs.lines().any(|db| db == "OVN_Northbound"),
            "{remote}: {dbs}"
        );
    }
}

#[test]
fn ssl_server_accepts_a_client_of_its_ca_and_refuses_others() {
    let Some(lab) = Lab::for_test() else { return };
    let pki = lab.pki("main").unwrap();
    let server_files = pki.sign("server").unwrap();
    let client = pki.sign("client").unwrap();
    let server = lab
        .start_ovsdb_server(OvsdbServerOptions::new(schemas::NB).with_ssl(server_files))
        .unwrap();
    let remote = server.ssl_remote().expect("an ssl remote");
    let with = |files: &ovn_testbed::TlsFiles| {
        let out = ovsdb_client(&[
            "--timeout=5",
            &format!("--private-key={}", files.key.display()),
            &format!("--certificate={}", files.cert.display()),
            &format!("--ca-cert={}", files.ca_cert.display()),
            "list-dbs",
            &remote,
        ]);
        out.status.success()
    };
    assert!(
        with(&client),
        "a client signed by the server's CA must connect"
    );
    let other = lab.pki("other").unwrap().sign("stranger").unwrap();
    assert!(!with(&other), "a client of another CA must be refused");
}

#[test]
fn raft_cluster_elects_a_new_leader_when_the_leader_dies_and_takes_it_back() {
    let Some(lab) = Lab::for_test() else { return };
    let mut cluster = lab.start_nb_cluster(3).unwrap();
    let leader = cluster.wait_leader(Duration::from_secs(10)).unwrap();
    let roles: Vec<_> = (0..3).map(|i| cluster.role(i).unwrap()).collect();
    assert_eq!(
        roles
            .iter()
            .filter(|r| **r == Some(RaftRole::Leader))
            .count(),
        1,
        "{roles:?}"
    );
    for remote in cluster.unix_remotes().split(',') {
        let out = ovsdb_client(&["list-dbs", remote]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("OVN_Northbound"),
            "{remote}"
        );
    }

    cluster.kill(leader).unwrap();
    assert_eq!(cluster.role(leader).unwrap(), None);
    let new_leader = cluster.wait_leader(Duration::from_secs(10)).unwrap();
    assert_ne!(new_leader, leader);

    cluster.restart(leader).unwrap();
    let rejoined = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        matches!(cluster.role(leader), Ok(Some(RaftRole::Follower)))
    });
    assert!(
        rejoined,
        "the restarted member did not rejoin as a follower"
    );
}

#[test]
fn a_paused_raft_member_answers_nothing_until_resumed() {
    let Some(lab) = Lab::for_test() else { return };
    let cluster = lab.start_nb_cluster(3).unwrap();
    let member = (cluster.wait_leader(Duration::from_secs(10)).unwrap() + 1) % 3;
    cluster.pause(member).unwrap();
    assert_eq!(
        cluster.role(member).unwrap(),
        None,
        "a stopped member must not answer"
    );
    let remote = cluster.member(member).unwrap().server().unix_remote();
    let out = ovsdb_client(&["--timeout=1", "list-dbs", &remote]);
    assert!(!out.status.success());
    cluster.resume(member).unwrap();
    let back = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        cluster.role(member).unwrap().is_some()
    });
    assert!(back, "the resumed member never answered again");
}
