//! TLS 1.3-only rustls configurations for PatchCTL clients and servers.
//!
//! Every configuration built here uses the `ring` crypto provider passed
//! explicitly (no process-wide default provider is installed or consulted) and
//! enables TLS 1.3 alone. Client configurations always verify the server
//! certificate chain and host name: against the operating system's root
//! certificates, or, when a CA bundle file is configured, against the
//! certificates in that file alone. There is deliberately no way to turn
//! verification off.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// ALPN protocols offered by [`server_config`], in order of preference.
pub const SERVER_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// What went wrong while loading certificates, keys or building a TLS configuration.
///
/// Every message names the file involved (where there is one), says what was
/// wrong with it and what to do about it. No message ever contains key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read (missing, unreadable, not a file).
    #[error(
        "cannot read the {what} file {path}: {source}; check that the path is right and that \
         the PatchCTL service user may read it"
    )]
    Read {
        /// What the file was supposed to hold, e.g. "CA bundle" or "private key".
        what: &'static str,
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// A file that should hold PEM certificates holds none.
    #[error(
        "the {what} file {path} contains no certificate (expected at least one \
         \"-----BEGIN CERTIFICATE-----\" PEM block); point the setting at a PEM certificate file"
    )]
    NoCertificate {
        /// What the file was supposed to hold, e.g. "CA bundle".
        what: &'static str,
        /// The file without certificates.
        path: PathBuf,
    },
    /// A file could not be parsed as PEM, or a certificate in it is malformed.
    #[error("the {what} file {path} is not usable: {detail}; replace it with a valid PEM file")]
    BadPem {
        /// What the file was supposed to hold.
        what: &'static str,
        /// The malformed file.
        path: PathBuf,
        /// What the parser reported.
        detail: String,
    },
    /// A file that should hold a PEM private key holds none.
    #[error(
        "the private key file {path} contains no private key (expected a PKCS#8 \"BEGIN PRIVATE \
         KEY\", SEC1 \"BEGIN EC PRIVATE KEY\" or PKCS#1 \"BEGIN RSA PRIVATE KEY\" block; \
         encrypted keys are not supported); point the setting at the unencrypted key file"
    )]
    NoPrivateKey {
        /// The file without a private key.
        path: PathBuf,
    },
    /// The private key could not be used (unsupported algorithm or corrupt).
    #[error(
        "the private key in {path} cannot be used: {detail}; use an ECDSA (P-256/P-384), \
         Ed25519 or RSA key"
    )]
    UnusableKey {
        /// The key file.
        path: PathBuf,
        /// What rustls reported.
        detail: String,
    },
    /// The private key does not belong to the first certificate of the chain.
    #[error(
        "the private key in {key} does not match the certificate in {cert}; the first \
         certificate in the chain file must be the server certificate issued for this key \
         (check that the two files were issued together)"
    )]
    KeyMismatch {
        /// The certificate chain file.
        cert: PathBuf,
        /// The private key file.
        key: PathBuf,
    },
    /// No usable root certificate was found in the operating system's trust store.
    #[error(
        "no usable root certificates were found in the system trust store ({detail}); install \
         the system CA certificates (e.g. the ca-certificates package) or configure a CA bundle \
         file"
    )]
    NoSystemRoots {
        /// What the loader reported.
        detail: String,
    },
    /// rustls refused to build the configuration.
    #[error("cannot build the TLS configuration: {0}")]
    Config(String),
    /// Generating a certificate or key failed.
    #[error("cannot generate the development certificates: {0}")]
    Generate(String),
    /// Writing a generated certificate or key failed.
    #[error(
        "cannot write {path}: {source}; check that the directory exists and is writable by the \
         PatchCTL service user"
    )]
    Write {
        /// The file that could not be written.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// The development PKI directory is in a state that cannot be used or repaired safely.
    #[error("development PKI in {dir}: {detail}")]
    DevPki {
        /// The development PKI directory.
        dir: PathBuf,
        /// What is wrong and what to do.
        detail: String,
    },
}

/// The TLS 1.3 cipher suites, in the order PatchCTL prefers them.
///
/// `TLS13_AES_128_GCM_SHA256` comes first (rustls' default puts AES-256 with SHA-384
/// first). A resumed handshake is mostly key schedule: HKDF over SHA-384 ran in software
/// (`sha512_block_data_order_nohw`, 5.9 % of the platform's CPU under a new connection
/// per heartbeat, issue 16), while SHA-256 runs on the CPU's SHA extensions where they
/// exist. AES-128-GCM is the suite TLS 1.3 requires every peer to implement; the other
/// two stay accepted.
pub const CIPHER_SUITES: [rustls::SupportedCipherSuite; 3] = [
    rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
    rustls::crypto::ring::cipher_suite::TLS13_AES_256_GCM_SHA384,
    rustls::crypto::ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
];

/// The crypto provider used by every PatchCTL TLS configuration (`ring`, with the
/// TLS 1.3 suites of [`CIPHER_SUITES`] in that order).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        cipher_suites: CIPHER_SUITES.to_vec(),
        ..rustls::crypto::ring::default_provider()
    })
}

/// Builds the TLS 1.3-only client configuration.
///
/// With `ca_bundle = None` the server certificate is verified against the
/// operating system's root certificates (loaded with `rustls-native-certs`);
/// with `Some(path)` it is verified against the PEM certificates in that file
/// alone (the system roots are then not trusted). Host names are always
/// checked. No client certificate is presented.
///
/// The ALPN list is left empty on purpose: `hyper-rustls` requires that and
/// fills it in itself (`h2`, `http/1.1`); [`crate::HttpsClient`] does so.
pub fn client_config(ca_bundle: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = match ca_bundle {
        Some(path) => bundle_roots(path)?,
        None => system_roots()?,
    };
    let config = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Builds the TLS 1.3-only server configuration.
///
/// `cert_chain_pem` holds the server certificate first, optionally followed by
/// intermediate CA certificates; `key_pem` holds its private key. ALPN offers
/// `h2` then `http/1.1`. Client certificates are not requested.
///
/// Sessions resume with stateless tickets (rustls' `ring` ticketer: AEAD-sealed, keys
/// rotated every 6 hours, kept only in this process): a client reconnecting with the
/// ticket of its previous session skips the certificate exchange, and the server keeps
/// nothing per client, so any number of agents can resume (rustls' default stateful
/// cache holds 256 sessions). Tickets do not survive a restart of the process: after
/// one, every client makes one full handshake.
pub fn server_config(cert_chain_pem: &Path, key_pem: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = load_certs(cert_chain_pem, "server certificate")?;
    let key = load_private_key(key_pem)?;
    let mut config = ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                TlsError::KeyMismatch {
                    cert: cert_chain_pem.to_path_buf(),
                    key: key_pem.to_path_buf(),
                }
            }
            rustls::Error::InvalidCertificate(_) | rustls::Error::InvalidMessage(_) => {
                TlsError::BadPem {
                    what: "server certificate",
                    path: cert_chain_pem.to_path_buf(),
                    detail: e.to_string(),
                }
            }
            other => TlsError::UnusableKey {
                path: key_pem.to_path_buf(),
                detail: other.to_string(),
            },
        })?;
    config.alpn_protocols = SERVER_ALPN.iter().map(|p| p.to_vec()).collect();
    // The server's order of suites wins, so that agents of older releases (which put
    // AES-256/SHA-384 first) get the cheaper handshake too.
    config.ignore_client_order = true;
    config.ticketer =
        rustls::crypto::ring::Ticketer::new().map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Arc::new(config))
}

/// Reads every PEM certificate from `path`; `what` names the file's role in errors.
///
/// Fails if the file cannot be read, is malformed, or holds no certificate.
pub fn load_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_file(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem {
            what,
            path: path.to_path_buf(),
            detail: PemErrorText(&e).to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// Reads the first PEM private key (PKCS#8, SEC1 or PKCS#1) from `path`.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read_file(path, "private key")?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => Err(TlsError::NoPrivateKey {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(TlsError::BadPem {
            what: "private key",
            path: path.to_path_buf(),
            detail: PemErrorText(&e).to_string(),
        }),
    }
}

fn read_file(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Root store holding exactly the certificates of a CA bundle file.
fn bundle_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let certs = load_certs(path, "CA bundle")?;
    let mut roots = RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|e| TlsError::BadPem {
            what: "CA bundle",
            path: path.to_path_buf(),
            detail: format!(
                "certificate #{} cannot be used as a trust anchor: {e}",
                i + 1
            ),
        })?;
    }
    Ok(roots)
}

/// Root store holding the operating system's trusted root certificates.
fn system_roots() -> Result<RootCertStore, TlsError> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
    if added == 0 {
        let detail = if loaded.errors.is_empty() {
            "the store is empty".to_string()
        } else {
            loaded
                .errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        };
        return Err(TlsError::NoSystemRoots { detail });
    }
    Ok(roots)
}

/// Human text for a PEM parse error (the upstream text shows raw byte vectors).
struct PemErrorText<'a>(&'a pem::Error);

impl fmt::Display for PemErrorText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            pem::Error::MissingSectionEnd { end_marker } => write!(
                f,
                "a PEM block is not terminated (missing \"{}\")",
                String::from_utf8_lossy(end_marker)
            ),
            pem::Error::IllegalSectionStart { .. } => {
                write!(f, "a PEM \"-----BEGIN\" line is malformed")
            }
            pem::Error::Base64Decode(_) => write!(f, "a PEM block is not valid base64"),
            pem::Error::Io(e) => write!(f, "read error: {e}"),
            pem::Error::NoItemsFound => write!(f, "no PEM block of the expected kind"),
            other => write!(f, "{other}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devca::testing::TestCa;
    use rustls::pki_types::ServerName;
    use rustls::{ClientConnection, ServerConnection};

    /// Drives an in-memory handshake; returns the negotiated version or the first error.
    fn handshake(
        client: Arc<ClientConfig>,
        server: Arc<ServerConfig>,
        name: &str,
    ) -> Result<rustls::ProtocolVersion, rustls::Error> {
        let name = ServerName::try_from(name.to_string()).unwrap();
        let mut c = ClientConnection::new(client, name)?;
        let mut s = ServerConnection::new(server)?;
        for _ in 0..20 {
            let mut buf = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut buf).unwrap();
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                s.read_tls(&mut rd).unwrap();
            }
            // The server's error must not hide the alert it sends to the client.
            let server_result = s.process_new_packets();
            let mut buf = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut buf).unwrap();
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                c.read_tls(&mut rd).unwrap();
            }
            let client_result = c.process_new_packets();
            server_result?;
            client_result?;
            if !c.is_handshaking() && !s.is_handshaking() {
                return Ok(c.protocol_version().unwrap());
            }
        }
        panic!("handshake did not finish");
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        ca: PathBuf,
        cert: PathBuf,
        key: PathBuf,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("unit test CA").unwrap();
        let leaf = ca.issue(&["localhost"]).unwrap();
        let ca_path = ca.write_cert(dir.path(), "ca.pem").unwrap();
        let (cert, key) = leaf.write(dir.path(), "server").unwrap();
        Fixture {
            _dir: dir,
            ca: ca_path,
            cert,
            key,
        }
    }

    fn tls12_only_client(ca: &Path) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for c in load_certs(ca, "CA").unwrap() {
            roots.add(c).unwrap();
        }
        Arc::new(
            // A foreign peer: rustls' whole default provider (its TLS 1.2 suites too).
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS12])
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }

    fn tls12_only_server(cert: &Path, key: &Path) -> Arc<ServerConfig> {
        Arc::new(
            // A foreign peer: rustls' whole default provider (its TLS 1.2 suites too).
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS12])
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    load_certs(cert, "cert").unwrap(),
                    load_private_key(key).unwrap(),
                )
                .unwrap(),
        )
    }

    #[test]
    fn our_client_and_server_negotiate_tls13() {
        let f = fixture();
        let v = handshake(
            client_config(Some(&f.ca)).unwrap(),
            server_config(&f.cert, &f.key).unwrap(),
            "localhost",
        )
        .unwrap();
        assert_eq!(v, rustls::ProtocolVersion::TLSv1_3);
    }

    #[test]
    fn tls12_client_is_refused_by_server_config() {
        let f = fixture();
        // Sanity: the TLS 1.2 client works against a TLS 1.2 server, so the refusal
        // below is about the version and nothing else.
        let v = handshake(
            tls12_only_client(&f.ca),
            tls12_only_server(&f.cert, &f.key),
            "localhost",
        )
        .unwrap();
        assert_eq!(v, rustls::ProtocolVersion::TLSv1_2);

        let err = handshake(
            tls12_only_client(&f.ca),
            server_config(&f.cert, &f.key).unwrap(),
            "localhost",
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::PeerIncompatible(_)
                    | rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion)
            ),
            "unexpected error: {err:?}"
        );
    }

    #[test]
    fn tls12_server_is_refused_by_client_config() {
        let f = fixture();
        let err = handshake(
            client_config(Some(&f.ca)).unwrap(),
            tls12_only_server(&f.cert, &f.key),
            "localhost",
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::PeerIncompatible(_)
                    | rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion)
            ),
            "unexpected error: {err:?}"
        );
    }

    /// One in-memory handshake and the tickets that follow it; returns how it went.
    fn connect(
        client: &Arc<ClientConfig>,
        server: &Arc<ServerConfig>,
    ) -> Option<rustls::HandshakeKind> {
        drive(client, server).handshake_kind()
    }

    /// The cipher suite one in-memory handshake settles on.
    fn negotiated_suite(
        client: &Arc<ClientConfig>,
        server: &Arc<ServerConfig>,
    ) -> Option<rustls::CipherSuite> {
        drive(client, server)
            .negotiated_cipher_suite()
            .map(|s| s.suite())
    }

    /// The client's side of one in-memory handshake, once both sides are done.
    fn drive(client: &Arc<ClientConfig>, server: &Arc<ServerConfig>) -> ClientConnection {
        let name = ServerName::try_from("localhost".to_string()).unwrap();
        let mut c = ClientConnection::new(client.clone(), name).unwrap();
        let mut s = ServerConnection::new(server.clone()).unwrap();
        // A few more rounds than the handshake needs: TLS 1.3 tickets come after it.
        for _ in 0..6 {
            let mut buf = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut buf).unwrap();
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                s.read_tls(&mut rd).unwrap();
            }
            s.process_new_packets().unwrap();
            let mut buf = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut buf).unwrap();
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                c.read_tls(&mut rd).unwrap();
            }
            c.process_new_packets().unwrap();
        }
        assert!(!c.is_handshaking() && !s.is_handshaking());
        c
    }

    #[test]
    fn the_handshake_settles_on_aes_128_with_sha_256() {
        let f = fixture();
        let server = server_config(&f.cert, &f.key).unwrap();
        let ours = client_config(Some(&f.ca)).unwrap();
        // A client that prefers AES-256/SHA-384 (rustls' default order, as agents of
        // earlier releases have it) gets the server's choice all the same.
        let theirs = Arc::new(
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .with_root_certificates(bundle_roots(&f.ca).unwrap())
                .with_no_client_auth(),
        );
        for client in [&ours, &theirs] {
            let suite = negotiated_suite(client, &server);
            assert_eq!(
                suite,
                Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256),
                "the suite negotiated"
            );
        }
    }

    #[test]
    fn a_second_connection_resumes_with_a_stateless_ticket() {
        let f = fixture();
        let client = client_config(Some(&f.ca)).unwrap();
        let server = server_config(&f.cert, &f.key).unwrap();
        assert!(server.ticketer.enabled(), "the server must issue tickets");
        assert_eq!(connect(&client, &server), Some(rustls::HandshakeKind::Full));
        assert_eq!(
            connect(&client, &server),
            Some(rustls::HandshakeKind::Resumed)
        );
        // Stateless: with no server-side session storage at all, it still resumes.
        let mut stateless = (*server).clone();
        stateless.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        let stateless = Arc::new(stateless);
        assert_eq!(
            connect(&client, &stateless),
            Some(rustls::HandshakeKind::Resumed)
        );
        // Tickets belong to one server process: another one's keys do not open them.
        let other = server_config(&f.cert, &f.key).unwrap();
        let fresh = client_config(Some(&f.ca)).unwrap();
        assert_eq!(connect(&fresh, &server), Some(rustls::HandshakeKind::Full));
        assert_eq!(connect(&fresh, &other), Some(rustls::HandshakeKind::Full));
    }

    #[test]
    fn server_config_offers_h2_and_http11() {
        let f = fixture();
        let cfg = server_config(&f.cert, &f.key).unwrap();
        assert_eq!(
            cfg.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        // hyper-rustls panics if the client config already carries ALPN protocols.
        assert!(
            client_config(Some(&f.ca))
                .unwrap()
                .alpn_protocols
                .is_empty()
        );
    }

    #[test]
    fn client_config_with_bundle_trusts_only_the_bundle() {
        let f = fixture();
        let other = tempfile::tempdir().unwrap();
        let other_ca = TestCa::new("another CA").unwrap();
        let other_ca_path = other_ca.write_cert(other.path(), "ca.pem").unwrap();
        let err = handshake(
            client_config(Some(&other_ca_path)).unwrap(),
            server_config(&f.cert, &f.key).unwrap(),
            "localhost",
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
            ),
            "unexpected error: {err:?}"
        );
    }

    #[test]
    fn client_config_checks_host_name() {
        let f = fixture();
        let err = handshake(
            client_config(Some(&f.ca)).unwrap(),
            server_config(&f.cert, &f.key).unwrap(),
            "not-localhost.example",
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForNameContext { .. }
                        | rustls::CertificateError::NotValidForName
                )
            ),
            "unexpected error: {err:?}"
        );
    }

    #[test]
    fn system_roots_are_used_without_bundle() {
        // On a machine with a system trust store the config builds; without one the
        // error must explain what to do. Either way, a server from a private CA is
        // not trusted by the system roots.
        match client_config(None) {
            Ok(cfg) => {
                let f = fixture();
                let err = handshake(cfg, server_config(&f.cert, &f.key).unwrap(), "localhost")
                    .unwrap_err();
                assert!(
                    matches!(
                        err,
                        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
                    ),
                    "unexpected error: {err:?}"
                );
            }
            Err(e) => {
                assert!(matches!(e, TlsError::NoSystemRoots { .. }), "{e}");
                assert!(e.to_string().contains("CA bundle"), "{e}");
            }
        }
    }

    #[test]
    fn missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let e = client_config(Some(&missing)).unwrap_err();
        assert!(matches!(e, TlsError::Read { .. }), "{e:?}");
        assert!(e.to_string().contains("nope.pem"), "{e}");
        assert!(e.to_string().contains("CA bundle"), "{e}");

        let f = fixture();
        let e = server_config(&missing, &f.key).unwrap_err();
        assert!(e.to_string().contains("nope.pem"), "{e}");
        let e = server_config(&f.cert, &missing).unwrap_err();
        assert!(e.to_string().contains("nope.pem"), "{e}");
        assert!(e.to_string().contains("private key"), "{e}");
    }

    #[test]
    fn files_without_certificates_or_keys_are_refused() {
        let f = fixture();
        // The key file holds no certificate, and the certificate file holds no key.
        let e = client_config(Some(&f.key)).unwrap_err();
        assert!(matches!(e, TlsError::NoCertificate { .. }), "{e:?}");
        assert!(e.to_string().contains("server-key.pem"), "{e}");

        let e = server_config(&f.key, &f.key).unwrap_err();
        assert!(matches!(e, TlsError::NoCertificate { .. }), "{e:?}");

        let e = server_config(&f.cert, &f.cert).unwrap_err();
        assert!(matches!(e, TlsError::NoPrivateKey { .. }), "{e:?}");
        assert!(e.to_string().contains("server.pem"), "{e}");

        let garbage = f._dir.path().join("garbage.pem");
        std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\n!!!!\n").unwrap();
        let e = client_config(Some(&garbage)).unwrap_err();
        assert!(matches!(e, TlsError::BadPem { .. }), "{e:?}");
        assert!(e.to_string().contains("garbage.pem"), "{e}");
    }

    #[test]
    fn key_not_matching_certificate_is_refused() {
        let f = fixture();
        let ca = TestCa::new("unit test CA 2").unwrap();
        let other = ca.issue(&["localhost"]).unwrap();
        let (_, other_key) = other.write(f._dir.path(), "other").unwrap();
        let e = server_config(&f.cert, &other_key).unwrap_err();
        assert!(matches!(e, TlsError::KeyMismatch { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("other-key.pem") && text.contains("server.pem"),
            "{text}"
        );
        // No key material in the message.
        assert!(!text.contains("PRIVATE KEY"), "{text}");
    }
}
