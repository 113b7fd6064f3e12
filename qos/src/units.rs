//! Units with their scale in the type: [`BitRate`] (bit/s), [`Burst`] (bits), [`Dscp`] and
//! [`LossPercent`].
//!
//! Every value is an integer in its smallest unit, so converting to what a database column wants
//! (OVN `kbps` and `kbits`, OVS `kbps`, `kb`, bit/s) is exact or rounds up, never down to zero.

use std::fmt;

/// A data rate, stored in bit/s (1 kbit/s = 1000 bit/s, 1 Mbit/s = 1 000 000 bit/s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BitRate(u64);

impl BitRate {
    /// `bps` bit/s.
    #[must_use]
    pub const fn from_bit_per_s(bps: u64) -> Self {
        BitRate(bps)
    }

    /// `kbps` kbit/s.
    #[must_use]
    pub const fn from_kbit_per_s(kbps: u64) -> Self {
        BitRate(kbps.saturating_mul(1_000))
    }

    /// `mbps` Mbit/s.
    #[must_use]
    pub const fn from_mbit_per_s(mbps: u64) -> Self {
        BitRate(mbps.saturating_mul(1_000_000))
    }

    /// The rate in bit/s.
    #[must_use]
    pub const fn bit_per_s(self) -> u64 {
        self.0
    }

    /// The rate in kbit/s, rounded up (a positive rate never becomes 0).
    #[must_use]
    pub const fn kbit_per_s_ceil(self) -> u64 {
        self.0.div_ceil(1_000)
    }

    /// What this rate sends in one second: the default burst.
    #[must_use]
    pub const fn one_second(self) -> Burst {
        Burst(self.0)
    }
}

impl fmt::Display for BitRate {
    /// `10 Mbit/s`, `1.5 Mbit/s`, `300 kbit/s`, `42 bit/s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        scaled(f, self.0, "bit/s")
    }
}

/// An amount of data a policer or meter lets through at line rate, stored in bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Burst(u64);

impl Burst {
    /// `bits` bits.
    #[must_use]
    pub const fn from_bits(bits: u64) -> Self {
        Burst(bits)
    }

    /// `kbit` kilobits (1000 bits).
    #[must_use]
    pub const fn from_kbit(kbit: u64) -> Self {
        Burst(kbit.saturating_mul(1_000))
    }

    /// `mbit` megabits (1 000 000 bits).
    #[must_use]
    pub const fn from_mbit(mbit: u64) -> Self {
        Burst(mbit.saturating_mul(1_000_000))
    }

    /// `bytes` bytes (8 bits each).
    #[must_use]
    pub const fn from_bytes(bytes: u64) -> Self {
        Burst(bytes.saturating_mul(8))
    }

    /// The size in bits.
    #[must_use]
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// The size in kilobits, rounded up (a positive burst never becomes 0).
    #[must_use]
    pub const fn kbit_ceil(self) -> u64 {
        self.0.div_ceil(1_000)
    }
}

impl fmt::Display for Burst {
    /// `10 Mbit`, `500 kbit`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        scaled(f, self.0, "bit")
    }
}

/// Writes `v` with the largest SI prefix (k, M, G) that leaves a whole or decimal number.
fn scaled(f: &mut fmt::Formatter<'_>, v: u64, unit: &str) -> fmt::Result {
    for (scale, prefix) in [(1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")] {
        if v >= scale {
            let whole = v / scale;
            let frac = v % scale;
            if frac == 0 {
                return write!(f, "{whole} {prefix}{unit}");
            }
            let digits = scale.ilog10() as usize;
            let frac = format!("{frac:0digits$}");
            return write!(f, "{whole}.{} {prefix}{unit}", frac.trim_end_matches('0'));
        }
    }
    write!(f, "{v} {unit}")
}

/// A DSCP code point (0 to 63), written into the IP header of a pod's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dscp(u8);

impl Dscp {
    /// The highest code point.
    pub const MAX: u8 = 63;

    /// The code point, if it is at most 63.
    #[must_use]
    pub const fn new(value: u8) -> Option<Self> {
        if value <= Self::MAX {
            Some(Dscp(value))
        } else {
            None
        }
    }

    /// The code point.
    #[must_use]
    pub const fn value(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Dscp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A packet loss probability in hundredths of a percent (0 to 10 000 = 0 % to 100 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LossPercent(u16);

impl LossPercent {
    /// 100 %, in hundredths.
    pub const MAX_HUNDREDTHS: u16 = 10_000;

    /// `hundredths` hundredths of a percent, if at most 100 %.
    #[must_use]
    pub const fn from_hundredths(hundredths: u16) -> Option<Self> {
        if hundredths <= Self::MAX_HUNDREDTHS {
            Some(LossPercent(hundredths))
        } else {
            None
        }
    }

    /// `percent` whole percent, if at most 100.
    #[must_use]
    pub const fn from_percent(percent: u8) -> Option<Self> {
        Self::from_hundredths(percent as u16 * 100)
    }

    /// Hundredths of a percent.
    #[must_use]
    pub const fn hundredths(self) -> u16 {
        self.0
    }

    /// The whole percent nearest to this value: what OVS 3.1 reads from
    /// `QoS:other_config:loss` (an integer).
    #[must_use]
    pub const fn whole_percent_rounded(self) -> u16 {
        (self.0 + 50) / 100
    }
}

impl fmt::Display for LossPercent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 100, self.0 % 100);
        if frac == 0 {
            write!(f, "{whole} %")
        } else {
            let frac = format!("{frac:02}");
            write!(f, "{whole}.{} %", frac.trim_end_matches('0'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_convert_exactly_and_round_up_to_kbit() {
        assert_eq!(BitRate::from_mbit_per_s(10).bit_per_s(), 10_000_000);
        assert_eq!(BitRate::from_kbit_per_s(300).kbit_per_s_ceil(), 300);
        assert_eq!(BitRate::from_bit_per_s(1).kbit_per_s_ceil(), 1);
        assert_eq!(BitRate::from_bit_per_s(1_001).kbit_per_s_ceil(), 2);
        assert_eq!(
            BitRate::from_mbit_per_s(5).one_second(),
            Burst::from_mbit(5)
        );
        assert_eq!(Burst::from_bytes(125).bits(), 1_000);
        assert_eq!(Burst::from_bits(1).kbit_ceil(), 1);
    }

    #[test]
    fn display_uses_the_largest_prefix() {
        assert_eq!(BitRate::from_mbit_per_s(10).to_string(), "10 Mbit/s");
        assert_eq!(BitRate::from_kbit_per_s(1_500).to_string(), "1.5 Mbit/s");
        assert_eq!(BitRate::from_kbit_per_s(300).to_string(), "300 kbit/s");
        assert_eq!(BitRate::from_bit_per_s(42).to_string(), "42 bit/s");
        assert_eq!(Burst::from_kbit(10_250).to_string(), "10.25 Mbit");
        assert_eq!(
            LossPercent::from_hundredths(150).unwrap().to_string(),
            "1.5 %"
        );
        assert_eq!(LossPercent::from_percent(3).unwrap().to_string(), "3 %");
    }

    #[test]
    fn bounds_are_enforced() {
        assert!(Dscp::new(63).is_some());
        assert!(Dscp::new(64).is_none());
        assert!(LossPercent::from_percent(101).is_none());
        assert_eq!(
            LossPercent::from_hundredths(149)
                .unwrap()
                .whole_percent_rounded(),
            1
        );
        assert_eq!(
            LossPercent::from_hundredths(150)
                .unwrap()
                .whole_percent_rounded(),
            2
        );
    }
}
