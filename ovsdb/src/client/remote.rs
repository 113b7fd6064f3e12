//! Remotes in the Open vSwitch syntax: `tcp:IP:PORT`, `ssl:IP:PORT`, `unix:PATH`, and comma
//! separated lists of them.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use super::error::ConnectError;

/// The port OVSDB uses when a remote names none (IANA's assignment for OVSDB).
pub const DEFAULT_PORT: u16 = 6640;

/// One place to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// `tcp:IP[:PORT]`; IPv6 addresses in brackets (`tcp:[::1]:6641`).
    Tcp(SocketAddr),
    /// `ssl:IP[:PORT]`: TCP with TLS, which needs a [`super::TlsConfig`].
    Ssl(SocketAddr),
    /// `unix:PATH`.
    Unix(PathBuf),
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Remote::Tcp(a) => write!(f, "tcp:{a}"),
            Remote::Ssl(a) => write!(f, "ssl:{a}"),
            Remote::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl FromStr for Remote {
    type Err = ConnectError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| ConnectError::InvalidRemote {
            remote: s.to_owned(),
            reason: reason.to_owned(),
        };
        let (kind, rest) = s
            .split_once(':')
            .ok_or_else(|| invalid("expected tcp:IP:PORT, ssl:IP:PORT or unix:PATH"))?;
        match kind {
            "unix" if rest.is_empty() => Err(invalid("empty socket path")),
            "unix" => Ok(Remote::Unix(PathBuf::from(rest))),
            "tcp" => parse_addr(rest).map(Remote::Tcp).map_err(&invalid),
            "ssl" => parse_addr(rest).map(Remote::Ssl).map_err(&invalid),
            "punix" | "ptcp" | "pssl" => Err(invalid("a passive (listening) remote")),
            _ => Err(invalid("unknown kind; expected tcp, ssl or unix")),
        }
    }
}

fn parse_addr(s: &str) -> Result<SocketAddr, &'static str> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let host = s
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(s);
    host.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, DEFAULT_PORT))
        .map_err(|_| "expected an IP address and an optional port")
}

/// Parses a comma separated list of remotes, tried in order by [`super::connect`].
pub fn parse_remotes(list: &str) -> Result<Vec<Remote>, ConnectError> {
    let remotes = list
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(Remote::from_str)
        .collect::<Result<Vec<_>, _>>()?;
    if remotes.is_empty() {
        return Err(ConnectError::InvalidRemote {
            remote: list.to_owned(),
            reason: "no remote given".to_owned(),
        });
    }
    Ok(remotes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_open_vswitch_forms() {
        assert_eq!(
            "tcp:127.0.0.1:6641".parse::<Remote>().unwrap(),
            Remote::Tcp("127.0.0.1:6641".parse().unwrap())
        );
        assert_eq!(
            "ssl:[::1]:6643".parse::<Remote>().unwrap(),
            Remote::Ssl("[::1]:6643".parse().unwrap())
        );
        assert_eq!(
            "tcp:10.0.0.1".parse::<Remote>().unwrap(),
            Remote::Tcp("10.0.0.1:6640".parse().unwrap())
        );
        assert_eq!(
            "tcp:[fe80::1]".parse::<Remote>().unwrap(),
            Remote::Tcp("[fe80::1]:6640".parse().unwrap())
        );
        assert_eq!(
            "unix:/run/ovn/ovnnb_db.sock".parse::<Remote>().unwrap(),
            Remote::Unix("/run/ovn/ovnnb_db.sock".into())
        );
        let list = parse_remotes("tcp:127.0.0.1:1, unix:/x").unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].to_string(), "tcp:127.0.0.1:1");
    }

    #[test]
    fn refuses_malformed_remotes_naming_them() {
        for bad in [
            "",
            "tcp",
            "tcp:host:1",
            "ptcp:6641",
            "udp:1.2.3.4:5",
            "unix:",
            ",",
        ] {
            let err = parse_remotes(bad).unwrap_err();
            assert!(
                matches!(&err, ConnectError::InvalidRemote { .. }),
                "{bad}: {err:?}"
            );
        }
        let err = "tcp:nope:1".parse::<Remote>().unwrap_err();
        assert!(err.to_string().contains("tcp:nope:1"), "{err}");
    }
}
