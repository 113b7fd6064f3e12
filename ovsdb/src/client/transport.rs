//! Opening the byte stream to one remote: TCP, unix socket or TLS over TCP.

use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

use super::error::ConnectError;
use super::remote::Remote;

/// A connected byte stream of any transport.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// Connects to `remote`; `tls` must be `Some` for `ssl:` remotes (there is no fallback).
pub(crate) async fn open(
    remote: &Remote,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Box<dyn Io>, ConnectError> {
    let io_err = |source| ConnectError::Io {
        remote: remote.to_string(),
        source,
    };
    match remote {
        Remote::Unix(path) => Ok(Box::new(UnixStream::connect(path).await.map_err(io_err)?)),
        Remote::Tcp(addr) => {
            let tcp = TcpStream::connect(addr).await.map_err(io_err)?;
            tcp.set_nodelay(true).map_err(io_err)?;
            Ok(Box::new(tcp))
        }
        Remote::Ssl(addr) => {
            let config = tls.ok_or_else(|| ConnectError::TlsConfigMissing {
                remote: remote.to_string(),
            })?;
            let tcp = TcpStream::connect(addr).await.map_err(io_err)?;
            tcp.set_nodelay(true).map_err(io_err)?;
            // OVS certificates name no host; the verifier ignores the name (see `tls`).
            let name = ServerName::IpAddress(addr.ip().into());
            let stream = tokio_rustls::TlsConnector::from(Arc::clone(config))
                .connect(name, tcp)
                .await
                .map_err(|source| ConnectError::Handshake {
                    remote: remote.to_string(),
                    source,
                })?;
            Ok(Box::new(stream))
        }
    }
}
