//! A tour of `ipam`: a dual-stack subnet with exclusions and named pools, StatefulSet ordinals,
//! a static IP conflict, delayed reuse, a configuration change under live leases, stats, and a
//! restore after a "restart" whose observed records contain stale and foreign entries.
//!
//! Run: `cargo run -p examples --example ipam_pools`

use anyhow::Result;
use ipam::{Ipam, ObservedLease, PoolConfig, Request, SubnetConfig};

fn main() -> Result<()> {
    let mut ipam = Ipam::new(0x5eed);

    println!("== a dual-stack subnet with exclusions and pools");
    let config = SubnetConfig::new("ns1", "10.16.0.0/24".parse()?)
        .with_cidr("fd00:10:16::/120".parse()?)
        .with_exclude("10.16.0.2..10.16.0.9")
        .with_exclude("10.16.0.250")
        .with_pool(
            PoolConfig::new("db")
                .with_entry("10.16.0.100")
                .with_entry("10.16.0.110")
                .with_entry("10.16.0.120"),
        )
        .with_pool(
            PoolConfig::new("web")
                .with_entry("10.16.0.128/28")
                .with_entry("fd00:10:16::80/124"),
        );
    println!(
        "cidrs {:?}\nexclude {:?}",
        config.cidrs(),
        config.exclusions()
    );
    for pool in config.pools() {
        println!("pool {} {:?}", pool.name(), pool.entries());
    }
    ipam.add_subnet(config)?;

    println!("\n== dynamic leases (default pool; gateway .1 and the exclusions are skipped)");
    for pod in ["ns1/a/eth0", "ns1/b/eth0"] {
        let lease = ipam.allocate(&Request::new("ns1", pod))?;
        println!("{pod:<14} {lease}");
    }
    let again = ipam.allocate(&Request::new("ns1", "ns1/a/eth0"))?;
    println!("{:<14} {again}   (asked again: same lease)", "ns1/a/eth0");

    println!("\n== pools and StatefulSet ordinals");
    for i in [2, 0] {
        let owner = format!("ns1/db-{i}/eth0");
        let lease = ipam.allocate(&Request::new("ns1", &owner).with_pool("db").with_ordinal(i))?;
        println!("{owner:<14} {lease}   (ordinal {i})");
    }
    let web = ipam.allocate(&Request::new("ns1", "ns1/web-x/eth0").with_pool("web"))?;
    println!("{:<14} {web}   (pool web)", "ns1/web-x/eth0");

    println!("\n== static requests that are refused");
    let taken = Request::new("ns1", "ns1/c/eth0").with_ip("10.16.0.10".parse()?);
    println!("{}", ipam.allocate(&taken).unwrap_err());
    let excluded = Request::new("ns1", "ns1/c/eth0").with_ip("10.16.0.5".parse()?);
    println!("{}", ipam.allocate(&excluded).unwrap_err());
    let mac = Request::new("ns1", "ns1/c/eth0").with_mac(web.mac);
    println!("{}", ipam.allocate(&mac).unwrap_err());
    let stray = Request::new("ns1", "ns1/c/eth0").with_ip("10.99.0.1".parse()?);
    println!("{}", ipam.allocate(&stray).unwrap_err());
    let allowed = Request::new("ns1", "ns1/c/eth0")
        .with_ip("10.16.0.5".parse()?)
        .with_allow_reserved(true);
    println!(
        "ns1/c/eth0     {}   (excluded, but explicitly allowed)",
        ipam.allocate(&allowed)?
    );

    println!("\n== release: the address goes to the back of the line");
    ipam.release("ns1/a/eth0");
    let d = ipam.allocate(&Request::new("ns1", "ns1/d/eth0"))?;
    println!("ns1/d/eth0     {d}   (not a's old 10.16.0.10)");

    println!("\n== exclusions change under live leases");
    let changed = ipam
        .subnet_config("ns1")
        .cloned()
        .map(|c| c.with_exclude("10.16.0.11"))
        .ok_or_else(|| anyhow::anyhow!("subnet ns1 vanished"))?;
    for issue in ipam.update_subnet(changed)? {
        println!("kept, but reported: {issue}");
    }

    println!("\n== stats");
    for fam in ipam.stats("ns1")?.families {
        println!(
            "{} {}: size {} used {} available {}",
            fam.family, fam.cidr, fam.size, fam.used, fam.available
        );
        for p in fam.pools {
            println!(
                "    pool {:<8} size {:>4} used {:>2} available {:>4}",
                p.pool, p.size, p.used, p.available
            );
        }
    }

    println!("\n== restart: rebuild from observed records");
    let mut records: Vec<ObservedLease> = ipam
        .state()
        .leases
        .into_iter()
        .map(|l| ObservedLease {
            owner: l.owner,
            subnet: None,
            addresses: l.addresses,
            mac: Some(l.mac),
        })
        .collect();
    records.push(ObservedLease {
        owner: "ns1/stale/eth0".into(),
        subnet: None,
        addresses: vec!["10.16.0.12".parse()?],
        mac: None,
    });
    records.push(ObservedLease {
        owner: "other/pod/eth0".into(),
        subnet: None,
        addresses: vec!["192.168.7.7".parse()?],
        mac: None,
    });
    // A new process gets a new seed (random in production), so new MACs follow a new sequence.
    let mut restarted = Ipam::new(0x5eed + 1);
    for cfg in ipam.state().subnets {
        restarted.add_subnet(cfg)?;
    }
    let report = restarted.restore(records);
    println!("restored {} leases", report.restored);
    for issue in &report.issues {
        println!("  {issue}");
    }
    let next = restarted.allocate(&Request::new("ns1", "ns1/e/eth0"))?;
    println!(
        "ns1/e/eth0     {next}   (observed records carry no release queue: lowest free address)"
    );
    assert!(restarted.lease("ns1/d/eth0").is_some() && restarted.lease("ns1/stale/eth0").is_none());
    Ok(())
}
