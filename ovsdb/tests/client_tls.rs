//! `ssl:` remotes against a real `ovsdb-server` with certificates made by `ovs-pki`: the right
//! CA and client certificate connect; a wrong CA, a client certificate the server does not
//! trust, or no client certificate at all are refused; nothing falls back to plaintext.
#![cfg(feature = "client")]

mod client_common;

use std::sync::Arc;

use client_common::NB;
use ovn_testbed::{Lab, OvsdbServer, OvsdbServerOptions, TlsFiles, schemas};
use ovsdb::client::{CaOnlyVerifier, ClientError, ConnectConfig, ConnectError, TlsConfig, connect};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct TlsLab {
    _lab: Lab,
    server: OvsdbServer,
    client: TlsFiles,
    /// A second CA, unrelated to the server's, with a certificate of its own.
    other: TlsFiles,
}

fn tls_lab() -> Option<TlsLab> {
    let lab = Lab::for_test()?;
    let pki = lab.pki("main").expect("ovs-pki init");
    let server_files = pki.sign("server").expect("sign server");
    let client = pki.sign("client").expect("sign client");
    let other = lab
        .pki("other")
        .and_then(|p| p.sign("stranger"))
        .expect("second CA");
    let server = lab
        .start_ovsdb_server(
            OvsdbServerOptions::new(schemas::NB)
                .with_tcp()
                .with_ssl(server_files),
        )
        .expect("start ovsdb-server with pssl");
    Some(TlsLab {
        _lab: lab,
        server,
        client,
        other,
    })
}

fn tls(files: &TlsFiles) -> TlsConfig {
    TlsConfig::new(&files.key, &files.cert, &files.ca_cert)
}

/// Connects and runs `list_dbs`; the first error of either step.
async fn try_list_dbs(config: &ConnectConfig) -> Result<Vec<String>, String> {
    let (driver, client, _updates) = connect(config)
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let task = tokio::spawn(driver);
    let result = client
        .list_dbs()
        .await
        .map_err(|e: ClientError| format!("list_dbs: {e:?}"));
    drop(client);
    let _ = task.await;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn right_ca_and_client_certificate_connect() {
    let Some(t) = tls_lab() else {
        return;
    };
    let remote = t.server.ssl_remote().expect("ssl remote");
    let config = ConnectConfig::new(&remote).with_tls(tls(&t.client));
    let dbs = try_list_dbs(&config).await.expect("TLS session works");
    assert!(dbs.contains(&NB.to_owned()), "{dbs:?}");

    // And the full client over TLS: schema and a transaction.
    let (driver, client, _updates) = connect(&config).await.expect("connect");
    tokio::spawn(driver);
    let schema = client.get_schema(NB).await.expect("get_schema over TLS");
    assert!(schema.table("Logical_Switch").is_some());
    let id = client.get_server_id().await.expect("server id");
    assert_ne!(id, ovsdb::Uuid::NIL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_certificate_from_another_ca_is_refused() {
    let Some(t) = tls_lab() else {
        return;
    };
    let remote = t.server.ssl_remote().expect("ssl remote");
    let wrong_ca = TlsConfig::new(&t.client.key, &t.client.cert, &t.other.ca_cert);
    let err = connect(&ConnectConfig::new(&remote).with_tls(wrong_ca))
        .await
        .map(|_| ())
        .unwrap_err();
    let ConnectError::Handshake {
        remote: named,
        source,
    } = &err
    else {
        panic!("expected a handshake error, got {err:?}");
    };
    assert_eq!(named, &remote);
    // ovs-pki names its CA after the time it was made: two CAs made in the same second share a
    // subject, and the chain check then fails on the signature instead of the issuer. Both mean
    // "not signed by the configured CA".
    let cause = format!("{source:?}");
    assert!(
        cause.contains("UnknownIssuer") || cause.contains("BadSignature"),
        "{cause}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_the_server_does_not_trust_is_refused() {
    let Some(t) = tls_lab() else {
        return;
    };
    let remote = t.server.ssl_remote().expect("ssl remote");
    // Our side trusts the server, but our certificate comes from a CA the server does not know.
    let untrusted = TlsConfig::new(&t.other.key, &t.other.cert, &t.client.ca_cert);
    let result = try_list_dbs(&ConnectConfig::new(&remote).with_tls(untrusted)).await;
    assert!(result.is_err(), "the server must refuse: {result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_client_certificate_is_refused_by_the_server() {
    let Some(t) = tls_lab() else {
        return;
    };
    let remote = t.server.ssl_remote().expect("ssl remote");
    let addr = remote.trim_start_matches("ssl:").to_owned();
    // A client that verifies the server like ovnkit does but presents no certificate.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&t.client.ca_cert).expect("CA PEM"))
        .expect("CA");
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(CaOnlyVerifier::new(Arc::new(roots), &provider)))
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(&addr).await.expect("tcp");
    let name = ServerName::IpAddress(tcp.peer_addr().expect("peer").ip().into());
    let outcome = async {
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        tls.write_all(br#"{"method":"list_dbs","params":[],"id":0}"#)
            .await?;
        tls.flush().await?;
        let mut buf = vec![0u8; 4096];
        let n = tls.read(&mut buf).await?;
        Ok::<_, std::io::Error>(buf[..n].to_vec())
    }
    .await;
    match outcome {
        Err(_) => {}
        Ok(reply) => assert!(
            reply.is_empty(),
            "the server answered a client without a certificate: {}",
            String::from_utf8_lossy(&reply)
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_never_falls_back_to_plaintext() {
    let Some(t) = tls_lab() else {
        return;
    };
    // ssl: without TLS files is a configuration error, not a plaintext connection.
    let remote = t.server.ssl_remote().expect("ssl remote");
    let err = connect(&ConnectConfig::new(&remote))
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(err, ConnectError::TlsConfigMissing { .. }),
        "{err:?}"
    );

    // ssl: to a plaintext (ptcp) port fails the handshake instead of speaking plaintext.
    let plain = t
        .server
        .tcp_remote()
        .expect("tcp remote")
        .replace("tcp:", "ssl:");
    let result = try_list_dbs(&ConnectConfig::new(&plain).with_tls(tls(&t.client))).await;
    assert!(result.is_err(), "{result:?}");

    // Unreadable files are named.
    let missing = TlsConfig::new("/nonexistent/key.pem", &t.client.cert, &t.client.ca_cert);
    let err = connect(&ConnectConfig::new(&remote).with_tls(missing))
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(
            &err,
            ConnectError::TlsFile {
                what: "private key",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("/nonexistent/key.pem"), "{err}");
}
