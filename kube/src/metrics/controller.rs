//! The controller's metrics.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::duration_buckets;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    kind: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct DatabaseLabel {
    pub(super) database: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LockLabel {
    lock: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SubnetLabels {
    subnet_name: String,
    protocol: String,
    subnet_cidr: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    subnet_name: String,
    protocol: String,
    pool: String,
}

/// The OVSDB connection families, shared by the controller and the agent.
#[derive(Debug, Clone, Default)]
pub(super) struct OvsdbFamilies {
    pub(super) connected: Family<DatabaseLabel, Gauge>,
    pub(super) reconnects: Family<DatabaseLabel, Counter>,
}

impl OvsdbFamilies {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "ovnkit_ovsdb_connected",
            "1 while synced with the database",
            self.connected.clone(),
        );
        registry.register(
            "ovnkit_ovsdb_reconnects",
            "Connections to the database lost",
            self.reconnects.clone(),
        );
    }

    pub(super) fn connected(&self, database: &str, up: bool) {
        let label = DatabaseLabel {
            database: database.to_owned(),
        };
        let before = self.connected.get_or_create(&label).set(i64::from(up));
        if before == 1 && !up {
            self.reconnects.get_or_create(&label).inc();
        }
    }
}

/// The controller's metrics (see [the module](super) for the families).
#[derive(Debug, Clone)]
pub struct ControllerMetrics {
    step: Histogram,
    reconcile: Family<KindLabel, Histogram>,
    objects: Family<KindLabel, Counter>,
    errors: Family<ErrorLabels, Counter>,
    queue: Family<KindLabel, Gauge>,
    transactions: Family<ResultLabel, Counter>,
    transaction_duration: Histogram,
    ovsdb: OvsdbFamilies,
    lock: Family<LockLabel, Gauge>,
    available: Family<SubnetLabels, Gauge>,
    used: Family<SubnetLabels, Gauge>,
    pool_size: Family<PoolLabels, Gauge>,
    pool_used: Family<PoolLabels, Gauge>,
    pool_available: Family<PoolLabels, Gauge>,
}

impl ControllerMetrics {
    /// The metrics, registered in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = ControllerMetrics {
            step: Histogram::new(duration_buckets()),
            reconcile: Family::new_with_constructor(|| Histogram::new(duration_buckets())),
            objects: Family::default(),
            errors: Family::default(),
            queue: Family::default(),
            transactions: Family::default(),
            transaction_duration: Histogram::new(duration_buckets()),
            ovsdb: OvsdbFamilies::default(),
            lock: Family::default(),
            available: Family::default(),
            used: Family::default(),
            pool_size: Family::default(),
            pool_used: Family::default(),
            pool_available: Family::default(),
        };
        registry.register_with_unit(
            "ovnkit_controller_step_duration",
            "Planning one reconcile step",
            Unit::Seconds,
            m.step.clone(),
        );
        registry.register_with_unit(
            "ovnkit_reconcile_duration",
            "Planning one kind's part of a step, by kind",
            Unit::Seconds,
            m.reconcile.clone(),
        );
        registry.register(
            "ovnkit_reconcile_objects",
            "Objects planned, by kind",
            m.objects.clone(),
        );
        registry.register(
            "ovnkit_reconcile_errors",
            "Warnings reported on objects, by kind and reason",
            m.errors.clone(),
        );
        registry.register(
            "ovnkit_queue_depth",
            "Objects waiting to be planned, by kind",
            m.queue.clone(),
        );
        registry.register(
            "ovnkit_ovsdb_transactions",
            "Transactions sent, by result",
            m.transactions.clone(),
        );
        registry.register_with_unit(
            "ovnkit_ovsdb_transaction_duration",
            "A transaction from send until the replica shows it",
            Unit::Seconds,
            m.transaction_duration.clone(),
        );
        m.ovsdb.register(registry);
        registry.register(
            "ovnkit_ovsdb_lock_held",
            "1 while this controller holds the writers' lock",
            m.lock.clone(),
        );
        registry.register(
            "subnet_available_ip_count",
            "Free addresses of a subnet",
            m.available.clone(),
        );
        registry.register(
            "subnet_used_ip_count",
            "Leased addresses of a subnet",
            m.used.clone(),
        );
        registry.register(
            "ovnkit_ipam_pool_size",
            "Allocatable addresses of an IP pool",
            m.pool_size.clone(),
        );
        registry.register(
            "ovnkit_ipam_pool_used",
            "Leased addresses of an IP pool",
            m.pool_used.clone(),
        );
        registry.register(
            "ovnkit_ipam_pool_available",
            "Free addresses of an IP pool",
            m.pool_available.clone(),
        );
        m
    }

    /// A step was planned in `took`.
    pub fn step(&self, took: Duration) {
        self.step.observe(took.as_secs_f64());
    }

    /// The parts of a step, by kind, took these durations.
    pub fn reconciled(&self, parts: &[(&str, Duration)]) {
        for (kind, took) in parts {
            self.reconcile
                .get_or_create(&KindLabel {
                    kind: (*kind).to_owned(),
                })
                .observe(took.as_secs_f64());
        }
    }

    /// `n` objects of `kind` were planned.
    pub fn objects(&self, kind: &str, n: usize) {
        if n > 0 {
            self.objects
                .get_or_create(&KindLabel {
                    kind: kind.to_owned(),
                })
                .inc_by(n as u64);
        }
    }

    /// A warning about an object of `kind`.
    pub fn error(&self, kind: &str, reason: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                kind: kind.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// How many objects of each kind wait.
    pub fn queue(&self, depths: &[(&str, usize)]) {
        for (kind, n) in depths {
            self.queue
                .get_or_create(&KindLabel {
                    kind: (*kind).to_owned(),
                })
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }

    /// A transaction ended with `result` (`committed`, `refused`) after `took`.
    pub fn transaction(&self, result: &str, took: Duration) {
        self.transactions
            .get_or_create(&ResultLabel {
                result: result.to_owned(),
            })
            .inc();
        self.transaction_duration.observe(took.as_secs_f64());
    }

    /// The connection to `database` is synced (or not).
    pub fn connected(&self, database: &str, up: bool) {
        self.ovsdb.connected(database, up);
    }

    /// Whether this controller holds `lock`.
    pub fn lock_held(&self, lock: &str, held: bool) {
        self.lock
            .get_or_create(&LockLabel {
                lock: lock.to_owned(),
            })
            .set(i64::from(held));
    }

    /// The IPAM's counters, replacing the previous ones (subnets that went disappear).
    pub fn ipam(&self, stats: &[ipam::SubnetStats]) {
        for f in [&self.available, &self.used] {
            f.clear();
        }
        for f in [&self.pool_size, &self.pool_used, &self.pool_available] {
            f.clear();
        }
        let g = |v: u128| i64::try_from(v).unwrap_or(i64::MAX);
        for s in stats {
            for fam in &s.families {
                let protocol = if fam.cidr.addr().is_ipv4() {
                    "IPv4"
                } else {
                    "IPv6"
                };
                let labels = SubnetLabels {
                    subnet_name: s.subnet.clone(),
                    protocol: protocol.to_owned(),
                    subnet_cidr: fam.cidr.to_string(),
                };
                self.available.get_or_create(&labels).set(g(fam.available));
                self.used.get_or_create(&labels).set(g(fam.used));
                for p in &fam.pools {
                    let labels = PoolLabels {
                        subnet_name: s.subnet.clone(),
                        protocol: protocol.to_owned(),
                        pool: p.pool.clone(),
                    };
                    self.pool_size.get_or_create(&labels).set(g(p.size));
                    self.pool_used.get_or_create(&labels).set(g(p.used));
                    self.pool_available
                        .get_or_create(&labels)
                        .set(g(p.available));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipam_counters_follow_the_subnets_and_a_lost_connection_counts_once() {
        let mut registry = Registry::default();
        let m = ControllerMetrics::new(&mut registry);
        let mut ipam = ipam::Ipam::new(1);
        ipam.add_subnet(ipam::SubnetConfig::new(
            "web",
            "10.17.0.0/24".parse().unwrap(),
        ))
        .unwrap();
        let _ = ipam.allocate(&ipam::Request::new("web", "a")).unwrap();
        m.ipam(&ipam.all_stats());
        let text = super::super::render(&registry);
        assert!(
            text.contains(
                "subnet_available_ip_count{subnet_name=\"web\",protocol=\"IPv4\",subnet_cidr=\"10.17.0.0/24\"} 252"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "subnet_used_ip_count{subnet_name=\"web\",protocol=\"IPv4\",subnet_cidr=\"10.17.0.0/24\"} 1"
            ),
            "{text}"
        );
        m.ipam(&[]);
        assert!(!super::super::render(&registry).contains("subnet_name=\"web\""));

        m.connected("OVN_Northbound", true);
        m.connected("OVN_Northbound", false);
        m.connected("OVN_Northbound", false);
        let text = super::super::render(&registry);
        assert!(
            text.contains("ovnkit_ovsdb_reconnects_total{database=\"OVN_Northbound\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ovnkit_ovsdb_connected{database=\"OVN_Northbound\"} 0"),
            "{text}"
        );
    }
}
