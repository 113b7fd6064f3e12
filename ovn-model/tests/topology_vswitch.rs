//! The change-set layer on Open_vSwitch: a bridge, a port with its interface (a non-root row
//! that needs a non-root child) and a linux-htb QoS with a queue, written through the `ovsdb`
//! client as one transaction to a real `ovsdb-server`, read back with `ovs-vsctl`.

use std::process::Command;

use ovn_model::plan::Plan;
use ovn_model::vswitch::{self, Bridge, Interface, OpenVSwitch, Port, QoS, Queue};
use ovn_testbed::{Lab, OvsdbServerOptions};
use ovsdb::client::{ConnectConfig, connect};
use ovsdb::table::Ref;

fn vsctl(remote: &str, args: &[&str]) -> String {
    let out = Command::new("ovs-vsctl")
        .arg(format!("--db={remote}"))
        .args(["--no-wait", "--timeout=20"])
        .args(args)
        .output()
        .expect("ovs-vsctl runs");
    assert!(
        out.status.success(),
        "ovs-vsctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn bridge_port_interface_and_qos_in_one_transaction() {
    let Some(lab) = Lab::for_test() else { return };
    let server = lab
        .start_ovsdb_server(OvsdbServerOptions::new(ovn_testbed::schemas::VSWITCH))
        .expect("server starts");
    let remote = server.unix_remote();

    let mut cs = Plan::new(vswitch::DATABASE);
    let ovs = cs.insert(&OpenVSwitch::default()).unwrap();
    let br = Bridge {
        name: "br-test".into(),
        datapath_type: "netdev".into(),
        ..Bridge::default()
    };
    let br = cs.insert_child(&ovs, &br).unwrap();
    let queue = cs
        .insert(&Queue {
            other_config: [("max-rate".to_owned(), "2000000".to_owned())].into(),
            ..Queue::default()
        })
        .unwrap();
    let qos = cs
        .insert(&QoS {
            type_: "linux-htb".into(),
            queues: [(0, queue)].into(),
            other_config: [("max-rate".to_owned(), "2000000".to_owned())].into(),
            ..QoS::default()
        })
        .unwrap();
    let port = Port {
        name: "pod1-h".into(),
        qos: Some(qos),
        ..Port::default()
    };
    let iface = Interface {
        name: "pod1-h".into(),
        external_ids: [("iface-id".to_owned(), "pod1".to_owned())].into(),
        ..Interface::default()
    };
    // A port cannot exist without an interface: the port is created with it, under the bridge.
    assert!(
        cs.clone()
            .insert_child_with_children::<Bridge, Port, Interface>(&br, &port, &[])
            .is_err()
    );
    cs.insert_child_with_children(&br, &port, &[iface]).unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (driver, client, _updates) =
            connect(&ConnectConfig::new(remote.clone())).await.unwrap();
        tokio::spawn(driver);
        let schema = client.get_schema(vswitch::DATABASE).await.unwrap();
        let plan = cs.validated(&schema).expect("fits the server's schema");
        client
            .transact(plan.transaction())
            .await
            .expect("transaction");
    });

    assert_eq!(vsctl(&remote, &["list-br"]), "br-test");
    assert_eq!(vsctl(&remote, &["list-ports", "br-test"]), "pod1-h");
    assert_eq!(vsctl(&remote, &["list-ifaces", "br-test"]), "pod1-h");
    assert_eq!(
        vsctl(
            &remote,
            &["get", "Interface", "pod1-h", "external_ids:iface-id"]
        ),
        "pod1"
    );
    assert_eq!(
        vsctl(&remote, &["get", "Bridge", "br-test", "datapath_type"]),
        "netdev"
    );
    let qos_uuid = vsctl(&remote, &["get", "Port", "pod1-h", "qos"]);
    assert_eq!(
        vsctl(&remote, &["get", "QoS", &qos_uuid, "type"]),
        "linux-htb"
    );
    assert_eq!(
        vsctl(&remote, &["get", "QoS", &qos_uuid, "other_config:max-rate"]),
        "\"2000000\""
    );
    let queue_uuid = vsctl(&remote, &["get", "QoS", &qos_uuid, "queues:0"]);
    assert_eq!(
        vsctl(
            &remote,
            &["get", "Queue", &queue_uuid, "other_config:max-rate"]
        ),
        "\"2000000\""
    );

    // Remove the port from the bridge: the server collects the port and its interface.
    let port_uuid: ovsdb::Uuid = vsctl(&remote, &["get", "Port", "pod1-h", "_uuid"])
        .parse()
        .unwrap();
    let mut cs = Plan::new(vswitch::DATABASE);
    cs.remove_child::<Bridge, Port>("br-test", &Ref::new(port_uuid))
        .unwrap();
    rt.block_on(async {
        let (driver, client, _updates) =
            connect(&ConnectConfig::new(remote.clone())).await.unwrap();
        tokio::spawn(driver);
        let schema = client.get_schema(vswitch::DATABASE).await.unwrap();
        client
            .transact(cs.validated(&schema).unwrap().transaction())
            .await
            .unwrap();
    });
    assert_eq!(vsctl(&remote, &["list-ports", "br-test"]), "");
    assert_eq!(vsctl(&remote, &["--columns=name", "list", "Interface"]), "");
}
