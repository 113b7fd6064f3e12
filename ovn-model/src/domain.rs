//! Domain types that the generated models use instead of strings (through the override table in
//! `ovn-model/codegen/*.json`): MAC addresses and logical switch port addresses.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Why a domain value could not be parsed from its database text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// Not a MAC address `xx:xx:xx:xx:xx:xx`.
    #[error("invalid MAC address {text:?}")]
    Mac {
        /// The text.
        text: String,
    },
    /// Not an IP network `addr/len`.
    #[error("invalid IP network {text:?}")]
    Network {
        /// The text.
        text: String,
    },
}

/// An Ethernet MAC address; written in lower-case `xx:xx:xx:xx:xx:xx` form. The same six
/// bytes as `ipam::MacAddr`: convert with `MacAddr::from(ipam_mac.octets())` (and back with
/// `ipam::MacAddr::from(mac.octets())`).
///
/// ```
/// use ovn_model::MacAddr;
///
/// let mac: MacAddr = "0A:00:00:00:00:01".parse().unwrap();
/// assert_eq!(mac.to_string(), "0a:00:00:00:00:01");
/// assert_eq!(MacAddr::from(mac.octets()), mac);
/// assert!("0a:00".parse::<MacAddr>().is_err());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// A MAC from its six bytes.
    #[must_use]
    pub const fn new(bytes: [u8; 6]) -> Self {
        MacAddr(bytes)
    }

    /// The six bytes.
    #[must_use]
    pub const fn octets(self) -> [u8; 6] {
        self.0
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(bytes: [u8; 6]) -> Self {
        MacAddr(bytes)
    }
}

impl FromStr for MacAddr {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DomainError::Mac { text: s.to_owned() };
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for b in &mut out {
            let p = parts.next().ok_or_else(err)?;
            if p.is_empty() || p.len() > 2 {
                return Err(err());
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// One entry of `Logical_Switch_Port.addresses` (also `Port_Binding.mac`).
///
/// ```
/// use ovn_model::{LspAddress, MacAddr};
///
/// let a: LspAddress = "0a:00:00:00:00:01 10.0.0.5 fd00::5".parse().unwrap();
/// let LspAddress::Mac { mac, ips } = &a else { panic!() };
/// assert_eq!(*mac, "0a:00:00:00:00:01".parse::<MacAddr>().unwrap());
/// assert_eq!(ips.len(), 2);
/// assert_eq!(a.to_string(), "0a:00:00:00:00:01 10.0.0.5 fd00::5");
/// assert_eq!("router".parse::<LspAddress>().unwrap(), LspAddress::Router);
/// assert_eq!("dynamic 10.0.0.9".parse::<LspAddress>().unwrap(),
///            LspAddress::Other("dynamic 10.0.0.9".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LspAddress {
    /// `router`: the addresses of the peer router port.
    Router,
    /// `unknown`: the port receives traffic for unknown MACs.
    Unknown,
    /// `dynamic`: northd allocates MAC and IP.
    Dynamic,
    /// `MAC [IP...]`: a static MAC and its IPs.
    Mac {
        /// The MAC.
        mac: MacAddr,
        /// The IPs (may be empty).
        ips: Vec<IpAddr>,
    },
    /// Any other form (`MAC dynamic`, `dynamic IP`, a future syntax), kept as written.
    Other(String),
}

impl LspAddress {
    /// A static MAC with IPs.
    #[must_use]
    pub fn mac(mac: MacAddr, ips: impl IntoIterator<Item = IpAddr>) -> Self {
        LspAddress::Mac {
            mac,
            ips: ips.into_iter().collect(),
        }
    }
}

impl FromStr for LspAddress {
    type Err = std::convert::Infallible;

    /// Never fails: an unrecognised form is [`LspAddress::Other`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "router" => LspAddress::Router,
            "unknown" => LspAddress::Unknown,
            "dynamic" => LspAddress::Dynamic,
            _ => {
                let mut words = s.split_whitespace();
                let mac = words.next().and_then(|w| w.parse::<MacAddr>().ok());
                let ips: Option<Vec<IpAddr>> = words.map(|w| w.parse().ok()).collect();
                match (mac, ips) {
                    (Some(mac), Some(ips)) => LspAddress::Mac { mac, ips },
                    _ => LspAddress::Other(s.to_owned()),
                }
            }
        })
    }
}

impl fmt::Display for LspAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LspAddress::Router => f.write_str("router"),
            LspAddress::Unknown => f.write_str("unknown"),
            LspAddress::Dynamic => f.write_str("dynamic"),
            LspAddress::Mac { mac, ips } => {
                write!(f, "{mac}")?;
                for ip in ips {
                    write!(f, " {ip}")?;
                }
                Ok(())
            }
            LspAddress::Other(s) => f.write_str(s),
        }
    }
}
