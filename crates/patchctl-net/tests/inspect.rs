//! `inspect`: real TLS servers on 127.0.0.1:0 (tokio-rustls) presenting certificates
//! made for each case; the verified handshake says why it failed, and the
//! inspection-only handshake still reads the chain that was refused.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use patchctl_net::inspect::{
    HandshakeFailure, cert_info, inspection_only_peer_chain, verified_handshake,
};
use patchctl_net::testing::{TestCa, TestLeaf};
use patchctl_net::{Dated, HttpsClient, client_config, server_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts TLS connections with `config` until the test ends; after a handshake it
/// answers one HTTP/1.1 request with 404 and a Date header, and records whether any
/// application data arrived.
async fn serve(
    config: Arc<rustls::ServerConfig>,
) -> (SocketAddr, Arc<std::sync::Mutex<Vec<usize>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = received.clone();
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let n = tls.read(&mut buf).await.unwrap_or(0);
                seen.lock().unwrap().push(n);
                if n > 0 {
                    let _ = tls
                        .write_all(
                            b"HTTP/1.1 404 Not Found\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\ncontent-type: application/json\r\ncontent-length: 24\r\nconnection: close\r\n\r\n{\"error\":\"no such route\"}",
                        )
                        .await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    (addr, received)
}

struct Case {
    dir: tempfile::TempDir,
    ca: TestCa,
}

impl Case {
    fn new() -> Case {
        Case {
            dir: tempfile::tempdir().unwrap(),
            ca: TestCa::new("Inspect Trusted CA").unwrap(),
        }
    }

    fn trust(&self) -> Arc<rustls::ClientConfig> {
        let path = self.dir.path().join("trusted-ca.pem");
        if !path.exists() {
            self.ca
                .write_cert(self.dir.path(), "trusted-ca.pem")
                .unwrap();
        }
        client_config(Some(&path)).unwrap()
    }

    async fn server(
        &self,
        leaf: &TestLeaf,
        stem: &str,
    ) -> (SocketAddr, Arc<std::sync::Mutex<Vec<usize>>>) {
        let (cert, key) = leaf.write(self.dir.path(), stem).unwrap();
        // The canned answer is HTTP/1.1: do not let ALPN pick h2.
        let mut cfg = (*server_config(&cert, &key).unwrap()).clone();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        serve(Arc::new(cfg)).await
    }
}

fn first_info(
    chain: &[rustls::pki_types::CertificateDer<'static>],
) -> patchctl_net::inspect::CertInfo {
    cert_info(chain.first().expect("a certificate")).unwrap()
}

#[tokio::test]
async fn a_trusted_server_gives_its_chain_and_tls13() {
    let case = Case::new();
    let leaf = case.ca.issue(&["localhost"]).unwrap();
    let (addr, received) = case.server(&leaf, "good").await;
    let hs = verified_handshake(case.trust(), addr, "localhost", TIMEOUT)
        .await
        .unwrap();
    assert_eq!(hs.version, "TLSv1_3");
    let info = first_info(&hs.chain);
    assert_eq!(info.dns_names, ["localhost"]);
    assert!(info.issuer.contains("CN=Inspect Trusted CA"), "{info:?}");
    // The verified handshake closes without a request.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(*received.lock().unwrap(), [0]);
}

#[tokio::test]
async fn another_ca_is_an_unknown_issuer_and_inspection_names_it() {
    let case = Case::new();
    let other = TestCa::new("Some Other CA").unwrap();
    let leaf = other.issue(&["localhost"]).unwrap();
    let (addr, received) = case.server(&leaf, "other").await;
    let err = verified_handshake(case.trust(), addr, "localhost", TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, HandshakeFailure::UnknownIssuer(_)), "{err:?}");
    let chain = inspection_only_peer_chain(addr, "localhost", TIMEOUT)
        .await
        .unwrap();
    assert!(first_info(&chain).issuer.contains("CN=Some Other CA"));
    // Neither handshake sent a byte of application data.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // (The inspection handshake completed on the server's side, which then read EOF.)
    assert_eq!(*received.lock().unwrap(), [0]);
}

#[tokio::test]
async fn an_expired_certificate_is_expired() {
    let case = Case::new();
    let day = Duration::from_secs(86_400);
    let leaf = case
        .ca
        .issue_with_validity(
            &["localhost"],
            SystemTime::now() - 30 * day,
            SystemTime::now() - 2 * day,
        )
        .unwrap();
    let (addr, _) = case.server(&leaf, "expired").await;
    let err = verified_handshake(case.trust(), addr, "localhost", TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, HandshakeFailure::Expired(_)), "{err:?}");
    let chain = inspection_only_peer_chain(addr, "localhost", TIMEOUT)
        .await
        .unwrap();
    let info = first_info(&chain);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(info.not_after < now - 86_400, "{info:?}");
}

#[tokio::test]
async fn a_certificate_for_another_name_lists_its_names() {
    let case = Case::new();
    let leaf = case.ca.issue(&["platform.example", "10.9.8.7"]).unwrap();
    let (addr, _) = case.server(&leaf, "name").await;
    let err = verified_handshake(case.trust(), addr, "localhost", TIMEOUT)
        .await
        .unwrap_err();
    let HandshakeFailure::NotValidForName { presented, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(
        presented.iter().any(|n| n.contains("platform.example")),
        "{presented:?}"
    );
    let chain = inspection_only_peer_chain(addr, "localhost", TIMEOUT)
        .await
        .unwrap();
    assert_eq!(first_info(&chain).names(), ["platform.example", "10.9.8.7"]);
}

/// A server that only speaks TLS 1.2 (possible only because the test build of rustls
/// has the `tls12` feature; the product's configurations never enable it).
#[tokio::test]
async fn a_tls12_only_server_is_not_tls13() {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let case = Case::new();
    let leaf = case.ca.issue(&["localhost"]).unwrap();
    let (cert, key) = leaf.write(case.dir.path(), "tls12").unwrap();
    let chain = CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        chain,
        PrivateKeyDer::from_pem_file(Path::new(&key)).unwrap(),
    )
    .unwrap();
    let (addr, _) = serve(Arc::new(cfg)).await;
    let err = verified_handshake(case.trust(), addr, "localhost", TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, HandshakeFailure::NotTls13(_)), "{err:?}");
}

#[tokio::test]
async fn a_plain_tcp_service_is_not_tls() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let _ = tcp.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").await;
        }
    });
    let case = Case::new();
    let err = verified_handshake(case.trust(), addr, "localhost", TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, HandshakeFailure::NotTls(_)), "{err:?}");
}

#[tokio::test]
async fn json_dated_returns_the_date_of_an_error_answer() {
    let case = Case::new();
    let leaf = case.ca.issue(&["localhost"]).unwrap();
    let (addr, _) = case.server(&leaf, "dated").await;
    let client =
        HttpsClient::new(&format!("https://localhost:{}", addr.port()), case.trust()).unwrap();
    let Dated { result, date } = client
        .json_dated::<serde_json::Value>(
            http::Method::GET,
            "/api/v1/agent/whoami",
            Some("canary-dated-token"),
        )
        .await;
    let err = result.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert!(!format!("{err:?}").contains("canary-dated-token"));
    assert_eq!(date.as_deref(), Some("Sun, 06 Nov 1994 08:49:37 GMT"));
}
