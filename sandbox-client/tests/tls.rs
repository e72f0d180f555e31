//! HTTPS to the sandbox with a configured CA: trusted with `ca`, refused without it.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_sandbox_client::{ApiError, SandboxApi, SandboxConfig, TaskStatus};

/// Serves one fixed CAPE status answer per TLS connection, for `connections` connections.
async fn tls_server(connections: usize) -> (std::net::SocketAddr, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert_pem = key.cert.pem();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![key.cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for _ in 0..connections {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let ok = String::from_utf8_lossy(&buf).contains("authorization: Token t\r\n");
                let body = if ok {
                    r#"{"error": false, "data": "reported"}"#
                } else {
                    r#"{"error": true}"#
                };
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (addr, cert_pem)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn https_with_the_configured_ca_and_not_without() {
    let (addr, cert_pem) = tls_server(2).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert_pem).unwrap();
    let base = SandboxConfig {
        url: format!("https://{addr}/"),
        token: "t".into(),
        timeout_secs: 5,
        ..SandboxConfig::default()
    };

    let trusted = SandboxApi::new(&SandboxConfig {
        ca: Some(ca),
        ..base.clone()
    })
    .unwrap();
    assert_eq!(trusted.status(1).await.unwrap(), TaskStatus::Reported);

    let untrusted = SandboxApi::new(&base).unwrap();
    let err = untrusted.status(1).await.unwrap_err();
    assert!(
        matches!(err, ApiError::Unreachable(ref m) if m.to_lowercase().contains("certificate")),
        "{err}"
    );
}

#[test]
fn a_bad_ca_file_is_a_configuration_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let err = SandboxApi::new(&SandboxConfig {
        ca: Some(missing),
        ..SandboxConfig::default()
    })
    .err()
    .unwrap();
    assert!(err.contains("missing.pem"), "{err}");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let err = SandboxApi::new(&SandboxConfig {
        ca: Some(garbage),
        ..SandboxConfig::default()
    })
    .err()
    .unwrap();
    assert!(err.contains("garbage.pem"), "{err}");
}
