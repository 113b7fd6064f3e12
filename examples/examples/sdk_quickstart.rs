//! The SDK as a library user meets it: connect to OVN_Northbound, write a switch with two ports
//! as one transaction, delete one port by name, and watch the typed changes (the rows
//! themselves, a deleted row's last contents included). `main` starts a private `ovsdb-server`
//! for it and stops it at the end; `quickstart` is the part a program of yours would hold,
//! pointed at your own NB (for example `unix:/var/run/ovn/ovnnb_db.sock`, or a comma separated
//! list of Raft members).
//!
//! ```sh
//! cargo run -p examples --example sdk_quickstart     # as root, with OVN installed
//! ```

use anyhow::{Context, Result, ensure};
use ovn_model::events::{Batch, Event};
use ovn_model::nb::{LogicalSwitch, LogicalSwitchPort};
use ovn_model::plan::Plan;
use ovn_model::snapshot::{Monitor, Typed};
use ovn_model::{LspAddress, MacAddr};
use ovn_testbed::{Lab, OvsdbServerOptions, schemas};
use ovsdb::client::{ChangeStream, ReplicaClient, ReplicaConfig};

async fn quickstart(remote: &str) -> Result<()> {
    // A replica of the switches and their ports that follows the server (and, for a Raft
    // cluster, its leader) across reconnects.
    let monitor = Monitor::nb()
        .table::<LogicalSwitch>()
        .table::<LogicalSwitchPort>();
    let (nb, _progress) = ReplicaClient::start(ReplicaConfig::new(remote, monitor.into())).await?;
    nb.wait_synced().await?;
    let mut changes = nb.changes();

    // One transaction: a switch and two ports, each port inserted with its switch's reference.
    let mut plan = Plan::nb();
    let web = plan.insert(&LogicalSwitch::new("web").with_subnet("10.0.1.0/24".parse()?))?;
    for (name, mac, ip) in [
        ("web-1", "0a:00:00:00:01:01", "10.0.1.11"),
        ("web-2", "0a:00:00:00:01:02", "10.0.1.12"),
    ] {
        let mac: MacAddr = mac.parse()?;
        let port = LogicalSwitchPort::new(name).with_address(LspAddress::mac(mac, [ip.parse()?]));
        plan.insert_child(&web, &port)?;
    }
    println!("{plan}");
    // Checked against the built-in schema here; `Plan::transaction` skips the check.
    plan.validated(ovn_model::nb::schema())?
        .send_via(&nb)
        .await?;
    print_events(&mut changes, 3).await?;

    // Then one port goes, found by name in the replica: the event carries what it held.
    let mut plan = Plan::nb();
    let found = plan.delete_named::<LogicalSwitchPort>(&Typed::new(&nb.snapshot()), "web-2")?;
    ensure!(found, "web-2 is not in the replica");
    plan.transaction()?.send_via(&nb).await?;
    print_events(&mut changes, 2).await?;
    Ok(())
}

/// Prints typed events until `count` have been seen.
async fn print_events(changes: &mut ChangeStream, count: usize) -> Result<()> {
    let mut seen = 0;
    while seen < count {
        let before = changes.last_snapshot().clone();
        let (set, now) = changes.next().await.context("the replica client stopped")?;
        let batch = Batch::new(before, set, now);
        for event in batch.of::<LogicalSwitch>() {
            seen += 1;
            match event {
                Event::Inserted(s) => println!("switch {} added ({})", s.name, s.uuid),
                Event::Modified { new, .. } => {
                    println!("switch {} holds {} port(s) now", new.name, new.ports.len())
                }
                Event::Deleted(s) => println!("switch {} deleted", s.name),
            }
        }
        for event in batch.of::<LogicalSwitchPort>() {
            seen += 1;
            match event {
                Event::Inserted(p) => println!("port {} added: {}", p.name, words(&p.addresses)),
                Event::Modified { new, .. } => println!("port {} changed", new.name),
                Event::Deleted(p) => {
                    println!("port {} deleted; it held {}", p.name, words(&p.addresses));
                }
            }
        }
    }
    Ok(())
}

fn words(addresses: &[LspAddress]) -> String {
    addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn main() -> Result<()> {
    let lab = Lab::new().context("a private ovsdb-server needs root and OVN installed")?;
    let server = lab.start_ovsdb_server(OvsdbServerOptions::new(schemas::NB))?;
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(quickstart(&server.unix_remote()));
    drop(server); // stopped by PID
    result
}
