//! TLS diagnosis for `patchctl-agent doctor`: one handshake exactly as the agent makes
//! it, the reason in plain terms when it fails, and the certificates the platform
//! presented, read by [`cert`] so that a person can see the chain, the issuer, the
//! expiry and the names.
//!
//! To show the chain even when verification fails, [`inspection_only_peer_chain`] makes
//! a second handshake that accepts any certificate. It is the one place in PatchCTL
//! where a certificate goes unverified, and it is built so that nothing can be sent
//! over that connection: the function returns the presented certificates and nothing
//! else (neither the connection nor the configuration leaves this module), and it
//! closes the connection right after the handshake. It never carries a request.

mod cert;

pub use cert::{CertInfo, cert_info};

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::client::{chain_text, find_rustls};

/// A finished, verified handshake.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// The negotiated protocol version, e.g. `TLSv1_3`.
    pub version: String,
    /// The certificates the server presented, its own first.
    pub chain: Vec<CertificateDer<'static>>,
}

/// Why a handshake did not complete, in the terms an operator acts on.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeFailure {
    /// The chain does not lead to a trusted CA.
    #[error("the certificate is issued by a CA that is not trusted here ({0})")]
    UnknownIssuer(String),
    /// The certificate's validity ended.
    #[error("the certificate has expired ({0})")]
    Expired(String),
    /// The certificate's validity has not started.
    #[error("the certificate is not valid yet ({0})")]
    NotValidYet(String),
    /// The certificate does not name the host.
    #[error("the certificate is not valid for this host name ({detail})")]
    NotValidForName {
        /// The names rustls saw in the certificate, when it said.
        presented: Vec<String>,
        /// rustls' text.
        detail: String,
    },
    /// The server does not offer TLS 1.3.
    #[error("the server does not offer TLS 1.3 ({0})")]
    NotTls13(String),
    /// What answered is not a TLS server.
    #[error("the server does not speak TLS ({0})")]
    NotTls(String),
    /// The certificate was refused for another reason.
    #[error("the certificate was refused: {0}")]
    Certificate(String),
    /// No answer in time.
    #[error("no TLS answer within {0} s")]
    Timeout(u64),
    /// The connection failed below TLS.
    #[error("the connection failed: {0}")]
    Io(String),
    /// Anything else rustls refused.
    #[error("the handshake failed: {0}")]
    Other(String),
}

/// Connects to `addr` and makes the handshake with `config` (the agent's own
/// configuration from [`crate::client_config`]) for `server_name`, then closes the
/// connection (close_notify) without sending a request.
pub async fn verified_handshake(
    config: Arc<ClientConfig>,
    addr: SocketAddr,
    server_name: &str,
    timeout: Duration,
) -> Result<Handshake, HandshakeFailure> {
    let (version, chain) = handshake(config, addr, server_name, timeout, true).await?;
    Ok(Handshake { version, chain })
}

/// INSPECTION ONLY: the certificates `addr` presents for `server_name`, without
/// verifying them, so that a failed verification can be explained. The handshake's
/// signature is still checked against the presented certificate; nothing is sent
/// after the handshake and the connection is dropped.
pub async fn inspection_only_peer_chain(
    addr: SocketAddr,
    server_name: &str,
    timeout: Duration,
) -> Result<Vec<CertificateDer<'static>>, HandshakeFailure> {
    let provider = crate::crypto_provider();
    let verifier = Arc::new(InspectionOnlyVerifier {
        algorithms: provider.signature_verification_algorithms,
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| HandshakeFailure::Other(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let (_, chain) = handshake(Arc::new(config), addr, server_name, timeout, false).await?;
    Ok(chain)
}

async fn handshake(
    config: Arc<ClientConfig>,
    addr: SocketAddr,
    server_name: &str,
    timeout: Duration,
    close_politely: bool,
) -> Result<(String, Vec<CertificateDer<'static>>), HandshakeFailure> {
    let name = ServerName::try_from(server_name.trim_matches(['[', ']']).to_owned())
        .map_err(|e| HandshakeFailure::Other(format!("{server_name:?} is not a host name: {e}")))?;
    let attempt = async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| HandshakeFailure::Io(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let mut tls = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| classify(&e))?;
        let (_, conn) = tls.get_ref();
        let version = conn
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default();
        let chain: Vec<CertificateDer<'static>> = conn
            .peer_certificates()
            .unwrap_or_default()
            .iter()
            .map(|c| c.clone().into_owned())
            .collect();
        if close_politely {
            use tokio::io::AsyncWriteExt;
            let _ = tls.shutdown().await;
        }
        Ok((version, chain))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| HandshakeFailure::Timeout(timeout.as_secs()))?
}

/// Sorts a failed handshake's error into what the operator must fix.
fn classify(err: &io::Error) -> HandshakeFailure {
    use rustls::{AlertDescription, CertificateError as C, Error as E, PeerIncompatible as P};
    let Some(tls) = find_rustls(err) else {
        return HandshakeFailure::Io(chain_text(err));
    };
    let text = tls.to_string();
    match tls {
        E::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
            HandshakeFailure::UnknownIssuer(text)
        }
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            HandshakeFailure::Expired(text)
        }
        E::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            HandshakeFailure::NotValidYet(text)
        }
        E::InvalidCertificate(C::NotValidForNameContext { presented, .. }) => {
            HandshakeFailure::NotValidForName {
                presented: presented.clone(),
                detail: text,
            }
        }
        E::InvalidCertificate(C::NotValidForName) => HandshakeFailure::NotValidForName {
            presented: Vec::new(),
            detail: text,
        },
        E::InvalidCertificate(_) => HandshakeFailure::Certificate(text),
        E::AlertReceived(AlertDescription::ProtocolVersion)
        | E::PeerIncompatible(
            P::ServerTlsVersionIsDisabledByOurConfig
            | P::SupportedVersionsExtensionRequired
            | P::ServerDoesNotSupportTls12Or13
            | P::Tls12NotOffered
            | P::Tls12NotOfferedOrEnabled,
        ) => HandshakeFailure::NotTls13(text),
        E::InvalidMessage(_) | E::InappropriateMessage { .. } => HandshakeFailure::NotTls(text),
        _ => HandshakeFailure::Other(text),
    }
}

/// INSPECTION ONLY. Accepts any certificate chain so that the chain can be read after
/// the real verification failed. Used by [`inspection_only_peer_chain`] alone, whose
/// connection never carries data.
#[derive(Debug)]
struct InspectionOnlyVerifier {
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for InspectionOnlyVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
