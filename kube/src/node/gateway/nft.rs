//! Masquerade rules as one nftables table, rewritten as a whole.

use std::io::Write;
use std::process::{Command, Stdio};

use ipnet::IpNet;

use super::ApplyError;

/// The nftables table that holds ovnkit's masquerade rules (family `inet`).
pub const NFT_TABLE: &str = "ovnkit";

fn family(net: &IpNet) -> &'static str {
    match net {
        IpNet::V4(_) => "ip",
        IpNet::V6(_) => "ip6",
    }
}

/// The `nft -f -` script that makes the table hold exactly `plan`'s masquerade rules (and
/// removes the table when there are none). It is one nftables transaction.
#[must_use]
pub fn nft_script(plan: &gateway::NodePlan) -> String {
    let mut s = format!("table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\n");
    if plan.masquerade.is_empty() {
        return s;
    }
    s.push_str(&format!(
        "table inet {NFT_TABLE} {{\n  chain postrouting {{\n"
    ));
    s.push_str("    type nat hook postrouting priority srcnat; policy accept;\n");
    for m in &plan.masquerade {
        let fam = family(&m.source);
        let except: Vec<String> = m
            .except
            .iter()
            .filter(|n| family(n) == fam)
            .map(ToString::to_string)
            .collect();
        s.push_str(&format!("    {fam} saddr {}", m.source));
        if !except.is_empty() {
            s.push_str(&format!(" {fam} daddr != {{ {} }}", except.join(", ")));
        }
        let comment: String = m.subnet.chars().filter(|c| *c != '"').take(120).collect();
        s.push_str(&format!(" masquerade comment \"{comment}\"\n"));
    }
    s.push_str("  }\n}\n");
    s
}

pub(super) fn sync(plan: &gateway::NodePlan) -> Result<(), ApplyError> {
    run_script(nft_script(plan))
}

/// Runs `script` with `nft -f -` in the calling thread's network namespace (one nftables
/// transaction).
pub(crate) fn run_script(script: String) -> Result<(), ApplyError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(ApplyError::NftSpawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(ApplyError::NftSpawn)?;
    }
    let out = child.wait_with_output().map_err(ApplyError::NftSpawn)?;
    if !out.status.success() {
        return Err(ApplyError::Nft {
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            script,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_replaces_the_whole_table_and_an_empty_plan_removes_it() {
        let mut plan = gateway::NodePlan::empty("node1");
        assert_eq!(
            nft_script(&plan),
            "table inet ovnkit\ndelete table inet ovnkit\n"
        );
        plan.masquerade.insert(gateway::Masquerade {
            subnet: "ls1".into(),
            source: "10.16.1.0/24".parse().unwrap(),
            except: [
                "10.16.0.0/16".parse().unwrap(),
                "fd00::/64".parse().unwrap(),
            ]
            .into(),
        });
        assert_eq!(
            nft_script(&plan),
            "table inet ovnkit\ndelete table inet ovnkit\ntable inet ovnkit {\n  chain postrouting {\n    \
             type nat hook postrouting priority srcnat; policy accept;\n    \
             ip saddr 10.16.1.0/24 ip daddr != { 10.16.0.0/16 } masquerade comment \"ls1\"\n  }\n}\n"
        );
    }
}
