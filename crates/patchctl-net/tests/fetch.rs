//! `HttpsClient::fetch_to`, the self-update download, against a FAKE server: a real TLS
//! 1.3 listener on loopback that writes hand-made HTTP/1.1 answers, because a body cut
//! off before its `Content-Length`, or one longer than announced, cannot be had from
//! the real platform (it stores and serves exactly what was published). Each answer is
//! checked for what the download makes of it: complete, truncated, oversize (announced
//! or streamed), an error status.

use std::sync::Arc;
use std::time::Duration;

use patchctl_net::fetch::FetchError;
use patchctl_net::testing::TestCa;
use patchctl_net::{ClientError, HttpsClient, client_config, server_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Serves `answer` (raw bytes: status line, headers, body) to every connection, then
/// closes it. Returns a client trusting the server's CA.
async fn fake_server(answer: Vec<u8>) -> (HttpsClient, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("PatchCTL fetch test CA").unwrap();
    let ca_path = ca.write_cert(dir.path(), "ca.pem").unwrap();
    let (cert, key) = ca
        .issue(&["127.0.0.1"])
        .unwrap()
        .write(dir.path(), "server")
        .unwrap();
    let mut cfg = (*server_config(&cert, &key).unwrap()).clone();
    // No ALPN: the client speaks HTTP/1.1, which this fake writes by hand.
    cfg.alpn_protocols.clear();
    let acceptor = TlsAcceptor::from(Arc::new(cfg));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let answer = answer.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls.write_all(&answer).await;
                let _ = tls.flush().await;
                let _ = tls.shutdown().await;
            });
        }
    });
    let client = HttpsClient::new(
        &format!("https://127.0.0.1:{port}"),
        client_config(Some(&ca_path)).unwrap(),
    )
    .unwrap();
    (client, dir)
}

fn answer(headers: &str, body: &[u8]) -> Vec<u8> {
    let mut a = format!("HTTP/1.1 200 OK\r\n{headers}\r\n").into_bytes();
    a.extend_from_slice(body);
    a
}

async fn fetch(client: &HttpsClient, limit: u64) -> (Result<u64, FetchError>, Vec<u8>) {
    let mut sink = Vec::new();
    let r = client
        .fetch_to(
            "/artifact",
            Some("cred"),
            &mut sink,
            limit,
            Duration::from_secs(20),
        )
        .await;
    (r, sink)
}

#[tokio::test]
async fn a_complete_body_arrives_whole() {
    let body = vec![7u8; 100_000];
    let (client, _d) = fake_server(answer(
        &format!("Content-Length: {}\r\nConnection: close\r\n", body.len()),
        &body,
    ))
    .await;
    let (r, got) = fetch(&client, body.len() as u64).await;
    assert_eq!(r.unwrap(), body.len() as u64);
    assert_eq!(got, body);
}

#[tokio::test]
async fn a_body_cut_short_is_truncated_not_a_short_success() {
    let (client, _d) = fake_server(answer(
        "Content-Length: 100000\r\nConnection: close\r\n",
        &[1u8; 40_000],
    ))
    .await;
    let (r, _) = fetch(&client, 100_000).await;
    match r {
        Err(FetchError::Truncated { expected, got }) => {
            assert_eq!(expected, 100_000);
            assert!(got <= 40_000);
        }
        Err(FetchError::Broken { got, .. }) => assert!(got <= 40_000),
        other => panic!("expected a truncated download, got {other:?}"),
    }
}

#[tokio::test]
async fn an_announced_oversize_body_is_refused_before_reading() {
    let (client, _d) = fake_server(answer(
        "Content-Length: 5000\r\nConnection: close\r\n",
        &[2u8; 5000],
    ))
    .await;
    let (r, got) = fetch(&client, 1000).await;
    assert!(
        matches!(r, Err(FetchError::TooLarge { limit: 1000 })),
        "{r:?}"
    );
    assert!(got.is_empty());
}

#[tokio::test]
async fn an_unannounced_oversize_body_stops_at_the_limit() {
    // No Content-Length: the body runs until the connection closes.
    let (client, _d) = fake_server(answer("Connection: close\r\n", &[3u8; 50_000])).await;
    let (r, got) = fetch(&client, 1000).await;
    assert!(
        matches!(r, Err(FetchError::TooLarge { limit: 1000 })),
        "{r:?}"
    );
    assert!(
        got.len() <= 1000,
        "{} bytes written past the limit",
        got.len()
    );
}

#[tokio::test]
async fn an_error_status_is_the_platforms_message() {
    let body = br#"{"error":"no release 9.9.9 for this target"}"#;
    let mut a = format!(
        "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    a.extend_from_slice(body);
    let (client, _d) = fake_server(a).await;
    let (r, got) = fetch(&client, 1000).await;
    match r {
        Err(FetchError::Client(ClientError::Status {
            status, message, ..
        })) => {
            assert_eq!(status, 404);
            assert!(message.contains("no release 9.9.9"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(got.is_empty());
}
