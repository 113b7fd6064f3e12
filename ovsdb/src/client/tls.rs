//! TLS for `ssl:` remotes, the way Open vSwitch does it.
//!
//! `ovs-pki` makes certificates whose subjectAltName is `DNS:<name> id:<uuid>`, not a host
//! name, and Open vSwitch checks the peer's certificate chain against the configured CA without
//! matching any name. [`CaOnlyVerifier`] does the same on top of rustls: the chain must lead to
//! the configured CA and be valid now, and the handshake signatures are verified as usual; only
//! the host-name match is left out. The client always presents its own certificate: every
//! `ssl:` server of OVS requires one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::error::ConnectError;

/// Files for `ssl:` remotes, as `ovs-pki` makes them (the `--private-key`, `--certificate`
/// and `--ca-cert` options of the OVS tools).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// The client's private key (PEM: PKCS#1, PKCS#8 or SEC1).
    pub private_key: PathBuf,
    /// The client's certificate chain (PEM), leaf first.
    pub certificate: PathBuf,
    /// The CA certificate(s) (PEM) the server's chain must lead to.
    pub ca_cert: PathBuf,
}

impl TlsConfig {
    /// A configuration from the three files.
    pub fn new(
        private_key: impl Into<PathBuf>,
        certificate: impl Into<PathBuf>,
        ca_cert: impl Into<PathBuf>,
    ) -> Self {
        Self {
            private_key: private_key.into(),
            certificate: certificate.into(),
            ca_cert: ca_cert.into(),
        }
    }

    /// Loads the files and builds the rustls configuration.
    pub(crate) fn load(&self) -> Result<Arc<ClientConfig>, ConnectError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for ca in read_certs("CA certificate", &self.ca_cert)? {
            roots
                .add(ca)
                .map_err(|e| file_error("CA certificate", &self.ca_cert, e))?;
        }
        let chain = read_certs("certificate", &self.certificate)?;
        let key = read_file("private key", &self.private_key).and_then(|pem| {
            PrivateKeyDer::from_pem_slice(&pem)
                .map_err(|e| file_error("private key", &self.private_key, e))
        })?;
        let verifier = Arc::new(CaOnlyVerifier {
            roots: Arc::new(roots),
            algs: provider.signature_verification_algorithms,
        });
        let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(ConnectError::TlsConfig)?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(chain, key)
            .map_err(ConnectError::TlsConfig)?;
        Ok(Arc::new(config))
    }
}

fn file_error(
    what: &'static str,
    path: &Path,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> ConnectError {
    ConnectError::TlsFile {
        what,
        path: path.to_owned(),
        source: source.into(),
    }
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, ConnectError> {
    std::fs::read(path).map_err(|e| file_error(what, path, e))
}

fn read_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ConnectError> {
    let pem = read_file(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(what, path, e))?;
    if certs.is_empty() {
        return Err(file_error(what, path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

/// Verifies the server's certificate chain against the configured CA only, without matching
/// a host name (what Open vSwitch does); signatures, validity dates and the chain are checked.
#[derive(Debug)]
pub struct CaOnlyVerifier {
    roots: Arc<RootCertStore>,
    algs: WebPkiSupportedAlgorithms,
}

impl CaOnlyVerifier {
    /// A verifier trusting `roots`, with the signature algorithms of `provider`.
    pub fn new(roots: Arc<RootCertStore>, provider: &CryptoProvider) -> Self {
        Self {
            roots,
            algs: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for CaOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algs.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}
