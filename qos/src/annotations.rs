//! Pod annotations -> [`QosIntent`], with the keys and units of Kube-OVN.
//!
//! | key | unit | notes |
//! |---|---|---|
//! | `ovn.kubernetes.io/ingress_rate` | Mbit/s | toward the pod; decimals allowed (`0.5`); empty or `0`: no limit |
//! | `ovn.kubernetes.io/egress_rate` | Mbit/s | from the pod; as above |
//! | `ovn.kubernetes.io/ingress_burst` | Mbit (megabits) | default: one second of the rate (the same number as the rate); needs `ingress_rate` |
//! | `ovn.kubernetes.io/egress_burst` | Mbit (megabits) | as above, with `egress_rate` |
//! | `ovn.kubernetes.io/latency` | ms | netem delay; up to 3 decimals |
//! | `ovn.kubernetes.io/jitter` | ms | netem delay variation |
//! | `ovn.kubernetes.io/loss` | percent | 0 to 100, up to 2 decimals |
//! | `ovn.kubernetes.io/limit` | packets | netem queue limit, an integer |
//! | `ovnkit.io/dscp` | code point | 0 to 63 (an ovnkit key: Kube-OVN has none) |
//!
//! Values are plain decimal numbers in the unit of the table, with no unit suffix: `10`, `2.5`.
//! Anything else (`10M`, `-1`, `1e3`, `fast`, a rate above 100 Gbit/s) is an
//! [`AnnotationError`] naming the pod, the key and the value, and no intent is produced, so the
//! caller never reaches the planner and the pod's current QoS stays as it was.
//!
//! ```
//! use qos::annotations::{self, BadValue};
//! use qos::{BitRate, Burst, PodId};
//!
//! let pod = PodId::new("default", "web");
//! let intent = annotations::parse(&pod, [("ovn.kubernetes.io/egress_rate", "2.5")]).unwrap();
//! let egress = intent.egress.unwrap();
//! assert_eq!(egress.rate, BitRate::from_kbit_per_s(2_500));
//! assert_eq!(egress.burst, Burst::from_kbit(2_500)); // one second of the rate
//!
//! let err = annotations::parse(&pod, [("ovn.kubernetes.io/egress_rate", "10M")]).unwrap_err();
//! assert_eq!(err.key, "ovn.kubernetes.io/egress_rate");
//! assert!(matches!(err.reason, BadValue::UnknownUnit { .. }));
//! assert_eq!(
//!     err.to_string(),
//!     r#"pod default/web: annotation ovn.kubernetes.io/egress_rate="10M": unknown unit "M" (write a plain number of Mbit/s)"#
//! );
//! ```

use std::time::Duration;

use crate::intent::{Limit, Netem, PodId, QosIntent};
use crate::units::{BitRate, Burst, Dscp, LossPercent};

/// Rate toward the pod, Mbit/s.
pub const INGRESS_RATE: &str = "ovn.kubernetes.io/ingress_rate";
/// Rate from the pod, Mbit/s.
pub const EGRESS_RATE: &str = "ovn.kubernetes.io/egress_rate";
/// Burst toward the pod, Mbit.
pub const INGRESS_BURST: &str = "ovn.kubernetes.io/ingress_burst";
/// Burst from the pod, Mbit.
pub const EGRESS_BURST: &str = "ovn.kubernetes.io/egress_burst";
/// Netem delay, ms.
pub const LATENCY: &str = "ovn.kubernetes.io/latency";
/// Netem delay variation, ms.
pub const JITTER: &str = "ovn.kubernetes.io/jitter";
/// Netem loss, percent.
pub const LOSS: &str = "ovn.kubernetes.io/loss";
/// Netem queue limit, packets.
pub const LIMIT: &str = "ovn.kubernetes.io/limit";
/// DSCP code point for the pod's outgoing packets (an ovnkit key).
pub const DSCP: &str = "ovnkit.io/dscp";

/// Every key the parser reads.
pub const KEYS: [&str; 9] = [
    INGRESS_RATE,
    EGRESS_RATE,
    INGRESS_BURST,
    EGRESS_BURST,
    LATENCY,
    JITTER,
    LOSS,
    LIMIT,
    DSCP,
];

/// The largest rate accepted: 100 Gbit/s (in Mbit/s).
pub const MAX_RATE_MBIT: u64 = 100_000;
/// The largest burst accepted: 100 Gbit (in Mbit).
pub const MAX_BURST_MBIT: u64 = 100_000;
/// The largest netem latency or jitter accepted, in ms (one minute).
pub const MAX_DELAY_MS: u64 = 60_000;
/// The largest netem queue limit accepted, in packets.
pub const MAX_LIMIT_PACKETS: u64 = 1_000_000;

/// A QoS annotation the parser refused: which pod, which key, which value, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pod {pod}: annotation {key}={value:?}: {reason}")]
pub struct AnnotationError {
    /// The pod.
    pub pod: PodId,
    /// The annotation key (one of the constants of this module).
    pub key: &'static str,
    /// The value as written (trimmed).
    pub value: Box<str>,
    /// What is wrong with it (in the message already, so not a `source`).
    pub reason: BadValue,
}

/// Why an annotation value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadValue {
    /// Not a decimal number.
    #[error("not a number (write a plain number of {unit})")]
    NotANumber {
        /// The unit the key is in.
        unit: &'static str,
    },
    /// A negative number.
    #[error("negative")]
    Negative,
    /// A number followed by a unit or suffix: the unit is fixed by the key.
    #[error("unknown unit {suffix:?} (write a plain number of {unit})")]
    UnknownUnit {
        /// What followed the number.
        suffix: Box<str>,
        /// The unit the key is in.
        unit: &'static str,
    },
    /// More decimals than the unit can carry.
    #[error("more than {max_decimals} decimals")]
    TooPrecise {
        /// Decimals allowed.
        max_decimals: u32,
    },
    /// A decimal where an integer is needed.
    #[error("not an integer")]
    NotAnInteger,
    /// Above the largest value accepted.
    #[error("larger than {max}")]
    TooLarge {
        /// The largest value accepted, with its unit.
        max: String,
    },
    /// Zero where only a positive value makes sense.
    #[error("must be positive")]
    Zero,
    /// A burst without the rate it belongs to.
    #[error("a burst needs {rate_key}")]
    BurstWithoutRate {
        /// The rate annotation that is missing.
        rate_key: &'static str,
    },
}

/// Parses the QoS annotations of `pod` (other keys are ignored).
///
/// # Errors
/// The first bad value, as an [`AnnotationError`].
pub fn parse<K, V>(
    pod: &PodId,
    annotations: impl IntoIterator<Item = (K, V)>,
) -> Result<QosIntent, AnnotationError>
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut values = Values::default();
    for (k, v) in annotations {
        let (k, v) = (k.as_ref(), v.as_ref());
        let slot = match k {
            INGRESS_RATE => &mut values.ingress_rate,
            EGRESS_RATE => &mut values.egress_rate,
            INGRESS_BURST => &mut values.ingress_burst,
            EGRESS_BURST => &mut values.egress_burst,
            LATENCY => &mut values.latency,
            JITTER => &mut values.jitter,
            LOSS => &mut values.loss,
            LIMIT => &mut values.limit,
            DSCP => &mut values.dscp,
            _ => continue,
        };
        *slot = Some(v.to_owned());
    }
    values.into_intent(pod)
}

/// The raw values of the keys, before parsing.
#[derive(Default)]
struct Values {
    ingress_rate: Option<String>,
    egress_rate: Option<String>,
    ingress_burst: Option<String>,
    egress_burst: Option<String>,
    latency: Option<String>,
    jitter: Option<String>,
    loss: Option<String>,
    limit: Option<String>,
    dscp: Option<String>,
}

impl Values {
    fn into_intent(self, pod: &PodId) -> Result<QosIntent, AnnotationError> {
        let err = |key: &'static str, value: &str, reason| AnnotationError {
            pod: pod.clone(),
            key,
            value: value.into(),
            reason,
        };
        // Each field: (key, value) -> Option<parsed>, with empty meaning absent.
        let field = |key: &'static str, value: &Option<String>, spec: &Spec| match value
            .as_deref()
            .map(str::trim)
        {
            None | Some("") => Ok(None),
            Some(v) => spec.parse(v).map(Some).map_err(|r| err(key, v, r)),
        };
        let limit =
            |rate_key, burst_key, rate_text: &Option<String>, burst_text: &Option<String>| {
                let rate = field(rate_key, rate_text, &RATE)?.filter(|r| *r > 0);
                let burst = match (rate, burst_text.as_deref().map(str::trim)) {
                    // Without a rate, a burst is an error whatever its value.
                    (None, Some(b)) if !b.is_empty() => Some(0),
                    _ => field(burst_key, burst_text, &BURST)?,
                };
                match (rate, burst) {
                    (None, None) => Ok(None),
                    (None, Some(_)) => Err(err(
                        burst_key,
                        burst_text.as_deref().map(str::trim).unwrap_or_default(),
                        BadValue::BurstWithoutRate { rate_key },
                    )),
                    (Some(r), b) => {
                        let l = Limit::new(BitRate::from_bit_per_s(r));
                        Ok(Some(b.map_or(l, |b| l.with_burst(Burst::from_bits(b)))))
                    }
                }
            };
        let ingress = limit(
            INGRESS_RATE,
            INGRESS_BURST,
            &self.ingress_rate,
            &self.ingress_burst,
        )?;
        let egress = limit(
            EGRESS_RATE,
            EGRESS_BURST,
            &self.egress_rate,
            &self.egress_burst,
        )?;
        let latency = field(LATENCY, &self.latency, &DELAY)?;
        let jitter = field(JITTER, &self.jitter, &DELAY)?;
        let loss = field(LOSS, &self.loss, &PERCENT)?;
        let queue = field(LIMIT, &self.limit, &PACKETS)?;
        let dscp = field(DSCP, &self.dscp, &CODE_POINT)?;
        let netem = (latency.is_some() || jitter.is_some() || loss.is_some() || queue.is_some())
            .then(|| Netem {
                latency: Duration::from_micros(latency.unwrap_or(0)),
                jitter: Duration::from_micros(jitter.unwrap_or(0)),
                // PERCENT caps the value at 10 000 hundredths.
                loss: loss
                    .and_then(|l| u16::try_from(l).ok())
                    .and_then(LossPercent::from_hundredths)
                    .unwrap_or_default(),
                limit: queue.and_then(|q| u32::try_from(q).ok()),
            });
        Ok(QosIntent {
            ingress,
            egress,
            // CODE_POINT caps the value at 63.
            dscp: dscp.and_then(|d| u8::try_from(d).ok()).and_then(Dscp::new),
            netem,
        })
    }
}

/// How one key's value is read: a decimal number of `unit`, scaled by `10^decimals` to an
/// integer, at least `min` and at most `max` (both scaled).
struct Spec {
    unit: &'static str,
    decimals: u32,
    min: u64,
    max: u64,
}

const RATE: Spec = Spec {
    unit: "Mbit/s",
    decimals: 6,
    min: 0,
    max: MAX_RATE_MBIT * 1_000_000,
};
const BURST: Spec = Spec {
    unit: "Mbit",
    decimals: 6,
    min: 1,
    max: MAX_BURST_MBIT * 1_000_000,
};
const DELAY: Spec = Spec {
    unit: "ms",
    decimals: 3,
    min: 0,
    max: MAX_DELAY_MS * 1_000,
};
const PERCENT: Spec = Spec {
    unit: "percent",
    decimals: 2,
    min: 0,
    max: 100 * 100,
};
const PACKETS: Spec = Spec {
    unit: "packets",
    decimals: 0,
    min: 1,
    max: MAX_LIMIT_PACKETS,
};
const CODE_POINT: Spec = Spec {
    unit: "DSCP code point",
    decimals: 0,
    min: 0,
    max: Dscp::MAX as u64,
};

impl Spec {
    fn parse(&self, text: &str) -> Result<u64, BadValue> {
        let not_a_number = BadValue::NotANumber { unit: self.unit };
        let number_len = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, suffix) = text.split_at(number_len);
        if number.is_empty() {
            let rest = text.strip_prefix('-').unwrap_or("");
            return Err(if !rest.is_empty() && self.parse(rest).is_ok() {
                BadValue::Negative
            } else {
                not_a_number
            });
        }
        if !suffix.is_empty() {
            let is_unit = suffix.chars().all(|c| c.is_ascii_alphabetic() || c == '/');
            return Err(if is_unit {
                BadValue::UnknownUnit {
                    suffix: suffix.into(),
                    unit: self.unit,
                }
            } else {
                not_a_number
            });
        }
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() || frac.contains('.') || (number.contains('.') && frac.is_empty()) {
            return Err(not_a_number);
        }
        if frac.len() > self.decimals as usize {
            return Err(if self.decimals == 0 {
                BadValue::NotAnInteger
            } else {
                BadValue::TooPrecise {
                    max_decimals: self.decimals,
                }
            });
        }
        let too_large = || BadValue::TooLarge {
            max: format!("{} {}", self.max_display(), self.unit),
        };
        let scale = 10_u64.pow(self.decimals);
        let frac_scaled = if frac.is_empty() {
            0
        } else {
            let digits: u64 = frac.parse().map_err(|_| not_a_number.clone())?;
            digits * 10_u64.pow(self.decimals - frac.len() as u32)
        };
        let value = whole
            .parse::<u64>()
            .ok()
            .and_then(|w| w.checked_mul(scale))
            .and_then(|w| w.checked_add(frac_scaled))
            .ok_or_else(too_large)?;
        if value > self.max {
            return Err(too_large());
        }
        if value < self.min {
            return Err(BadValue::Zero);
        }
        Ok(value)
    }

    fn max_display(&self) -> u64 {
        self.max / 10_u64.pow(self.decimals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> PodId {
        PodId::new("ns", "p")
    }

    fn one(key: &'static str, value: &str) -> Result<QosIntent, AnnotationError> {
        parse(&pod(), [(key, value)])
    }

    fn reason(key: &'static str, value: &str) -> BadValue {
        let e = one(key, value).unwrap_err();
        assert_eq!(e.pod, pod());
        assert_eq!(e.key, key);
        assert_eq!(&*e.value, value.trim());
        e.reason
    }

    #[test]
    fn rates_are_mbit_per_s_with_decimals_and_default_burst() {
        let i = one(INGRESS_RATE, "10").unwrap();
        let l = i.ingress.unwrap();
        assert_eq!(l.rate, BitRate::from_mbit_per_s(10));
        assert_eq!(l.burst, Burst::from_mbit(10));
        let e = one(EGRESS_RATE, " 0.125 ").unwrap().egress.unwrap();
        assert_eq!(e.rate, BitRate::from_kbit_per_s(125));
    }

    #[test]
    fn zero_or_empty_rate_means_no_limit() {
        assert!(one(EGRESS_RATE, "0").unwrap().is_none());
        assert!(one(EGRESS_RATE, "").unwrap().is_none());
        assert!(one(EGRESS_RATE, "0.0").unwrap().is_none());
    }

    #[test]
    fn bursts_are_megabits() {
        let i = parse(&pod(), [(EGRESS_RATE, "10"), (EGRESS_BURST, "2.5")]).unwrap();
        assert_eq!(i.egress.unwrap().burst, Burst::from_kbit(2_500));
        let e = parse(&pod(), [(INGRESS_BURST, "2")]).unwrap_err();
        assert_eq!(e.key, INGRESS_BURST);
        assert_eq!(
            e.reason,
            BadValue::BurstWithoutRate {
                rate_key: INGRESS_RATE
            }
        );
        assert_eq!(
            reason(EGRESS_BURST, "0"),
            BadValue::BurstWithoutRate {
                rate_key: EGRESS_RATE
            }
        );
        let z = parse(&pod(), [(EGRESS_RATE, "1"), (EGRESS_BURST, "0")]).unwrap_err();
        assert_eq!(z.reason, BadValue::Zero);
    }

    #[test]
    fn netem_and_dscp() {
        let i = parse(
            &pod(),
            [
                (LATENCY, "20"),
                (JITTER, "1.5"),
                (LOSS, "0.5"),
                (LIMIT, "500"),
                (DSCP, "46"),
            ],
        )
        .unwrap();
        let n = i.netem.unwrap();
        assert_eq!(n.latency, Duration::from_millis(20));
        assert_eq!(n.jitter, Duration::from_micros(1_500));
        assert_eq!(n.loss, LossPercent::from_hundredths(50).unwrap());
        assert_eq!(n.limit, Some(500));
        assert_eq!(i.dscp, Dscp::new(46));
    }

    #[test]
    fn bad_values_are_named() {
        let mbit = "Mbit/s";
        assert_eq!(
            reason(EGRESS_RATE, "fast"),
            BadValue::NotANumber { unit: mbit }
        );
        assert_eq!(reason(EGRESS_RATE, "-5"), BadValue::Negative);
        assert_eq!(
            reason(EGRESS_RATE, "-x"),
            BadValue::NotANumber { unit: mbit }
        );
        assert_eq!(
            reason(EGRESS_RATE, "10Mbit/s"),
            BadValue::UnknownUnit {
                suffix: "Mbit/s".into(),
                unit: mbit
            }
        );
        assert_eq!(
            reason(EGRESS_RATE, "1e3"),
            BadValue::NotANumber { unit: mbit }
        );
        assert_eq!(
            reason(EGRESS_RATE, "10M"),
            BadValue::UnknownUnit {
                suffix: "M".into(),
                unit: mbit
            }
        );
        assert_eq!(
            reason(EGRESS_RATE, "1.2.3"),
            BadValue::NotANumber { unit: mbit }
        );
        assert_eq!(
            reason(EGRESS_RATE, "1."),
            BadValue::NotANumber { unit: mbit }
        );
        assert_eq!(
            reason(EGRESS_RATE, ".5"),
            BadValue::NotANumber { unit: mbit }
        );
        assert_eq!(
            reason(EGRESS_RATE, "0.0000001"),
            BadValue::TooPrecise { max_decimals: 6 }
        );
        assert_eq!(
            reason(INGRESS_RATE, "100001"),
            BadValue::TooLarge {
                max: "100000 Mbit/s".into()
            }
        );
        assert!(matches!(
            reason(INGRESS_RATE, "99999999999999999999999"),
            BadValue::TooLarge { .. }
        ));
        assert_eq!(reason(LIMIT, "1.5"), BadValue::NotAnInteger);
        assert_eq!(reason(LIMIT, "0"), BadValue::Zero);
        assert!(matches!(reason(LOSS, "100.01"), BadValue::TooLarge { .. }));
        assert!(matches!(reason(DSCP, "64"), BadValue::TooLarge { .. }));
        assert!(matches!(
            reason(LATENCY, "60001"),
            BadValue::TooLarge { .. }
        ));
    }

    #[test]
    fn other_keys_are_ignored() {
        let i = parse(&pod(), [("ovn.kubernetes.io/ip_address", "x"), ("a", "b")]).unwrap();
        assert!(i.is_none());
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_an_intent_or_a_named_error(key in 0usize..9, value in ".{0,24}") {
            let keys = [INGRESS_RATE, EGRESS_RATE, INGRESS_BURST, EGRESS_BURST, LATENCY, JITTER, LOSS, LIMIT, DSCP];
            let key = keys[key];
            if let Err(e) = parse(&pod(), [(EGRESS_RATE, "1"), (key, value.as_str())]) {
                proptest::prop_assert_eq!(e.key, key);
                proptest::prop_assert_eq!(&*e.value, value.trim());
            }
        }

        #[test]
        fn decimal_mbit_rates_are_exact(whole in 0u64..100_000, frac in 0u64..1_000_000) {
            let text = format!("{whole}.{frac:06}");
            let i = one(EGRESS_RATE, &text).unwrap();
            let bps = whole * 1_000_000 + frac;
            proptest::prop_assert_eq!(i.egress.map(|l| l.rate.bit_per_s()), (bps > 0).then_some(bps));
        }
    }
}
