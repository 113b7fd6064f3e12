//! Probing gateway nodes: a real packet to each node's management port, and a tracker that
//! turns probe results into node health with hysteresis.
//!
//! A centralized gateway is healthy when its management port answers through the overlay
//! (the probe crosses the join switch, a Geneve tunnel and the node's `br-int` into its
//! `ovn0`), so a dead `ovs-vswitchd` or `ovn-controller` on the gateway shows up as a failed
//! probe, not as a guess from a timer. [`probe_all`] sends one ICMP echo per target with `ping`
//! from the calling thread's network namespace; [`HealthTracker`] marks a node down after
//! `down_after` consecutive failures and up again after one success.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Sends one ICMP echo to every target in parallel (from the calling thread's namespace) and
/// returns which answered within `timeout`.
#[must_use]
pub fn probe_all(targets: &[(String, IpAddr)], timeout: Duration) -> BTreeMap<String, bool> {
    let wait = format!("{:.3}", timeout.as_secs_f64().max(0.001));
    let children: Vec<(String, Option<std::process::Child>)> = targets
        .iter()
        .map(|(name, ip)| {
            let child = Command::new("ping")
                .args(["-n", "-q", "-c", "1", "-W", &wait, &ip.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok();
            (name.clone(), child)
        })
        .collect();
    children
        .into_iter()
        .map(|(name, child)| {
            let ok = child
                .and_then(|mut c| c.wait().ok())
                .is_some_and(|s| s.success());
            (name, ok)
        })
        .collect()
}

/// Node health from successive probe rounds: down after `down_after` consecutive failures,
/// up after one success. Pure: feed it rounds, read the health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthTracker {
    down_after: u32,
    failures: BTreeMap<String, u32>,
    healthy: BTreeMap<String, bool>,
}

impl HealthTracker {
    /// A tracker that declares a node down after `down_after` (at least 1) failed probes in a
    /// row; every node starts healthy.
    #[must_use]
    pub fn new(down_after: u32) -> Self {
        HealthTracker {
            down_after: down_after.max(1),
            failures: BTreeMap::new(),
            healthy: BTreeMap::new(),
        }
    }

    /// Records one probe round; returns the nodes whose health changed.
    pub fn record(&mut self, round: &BTreeMap<String, bool>) -> Vec<String> {
        let mut changed = Vec::new();
        for (node, ok) in round {
            let failures = self.failures.entry(node.clone()).or_default();
            *failures = if *ok { 0 } else { failures.saturating_add(1) };
            let now = *failures < self.down_after;
            let before = self.healthy.insert(node.clone(), now).unwrap_or(true);
            if before != now {
                changed.push(node.clone());
            }
        }
        changed
    }

    /// Whether `node` is healthy (unknown nodes are).
    #[must_use]
    pub fn is_healthy(&self, node: &str) -> bool {
        self.healthy.get(node).copied().unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(pairs: &[(&str, bool)]) -> BTreeMap<String, bool> {
        pairs.iter().map(|(n, ok)| ((*n).to_owned(), *ok)).collect()
    }

    #[test]
    fn a_node_is_down_only_after_consecutive_failures() {
        let mut t = HealthTracker::new(2);
        assert!(t.record(&round(&[("a", false), ("b", true)])).is_empty());
        assert!(t.is_healthy("a"));
        assert!(t.record(&round(&[("a", true)])).is_empty());
        assert!(t.record(&round(&[("a", false)])).is_empty());
        assert_eq!(t.record(&round(&[("a", false)])), vec!["a".to_owned()]);
        assert!(!t.is_healthy("a"));
        assert_eq!(t.record(&round(&[("a", true)])), vec!["a".to_owned()]);
        assert!(t.is_healthy("a"));
    }
}
