//! Proptest strategies shared by the in-memory and the real-server property tests.

use std::time::Duration;

use proptest::prelude::*;
use qos::{
    BitRate, Burst, Config, Dscp, EgressMechanism, IngressMechanism, Limit, LossPercent, Netem,
    QosIntent,
};

pub fn limit() -> impl Strategy<Value = Limit> {
    (1u64..=100_000, prop::option::of(1u64..=100_000)).prop_map(|(kbps, burst)| {
        let l = Limit::new(BitRate::from_kbit_per_s(kbps));
        burst.map_or(l, |b| l.with_burst(Burst::from_kbit(b)))
    })
}

pub fn intent() -> impl Strategy<Value = QosIntent> {
    (
        prop::option::of(limit()),
        prop::option::of(limit()),
        prop::option::of(0u8..=63),
        prop::option::of((
            0u64..=100,
            0u64..=10,
            0u16..=10_000,
            prop::option::of(1u32..=5000),
        )),
    )
        .prop_map(|(ingress, egress, dscp, netem)| QosIntent {
            ingress,
            egress,
            dscp: dscp.and_then(Dscp::new),
            netem: netem.map(|(lat, jit, loss, limit)| Netem {
                latency: Duration::from_millis(lat),
                jitter: Duration::from_millis(jit),
                loss: LossPercent::from_hundredths(loss).unwrap(),
                limit,
            }),
        })
}

pub fn config() -> impl Strategy<Value = Config> {
    (any::<bool>(), any::<bool>()).prop_map(|(e, i)| {
        Config::default()
            .with_egress(if e {
                EgressMechanism::OvsPolicing
            } else {
                EgressMechanism::OvnQos
            })
            .with_ingress(if i {
                IngressMechanism::OvsHtb
            } else {
                IngressMechanism::OvnQos
            })
    })
}
