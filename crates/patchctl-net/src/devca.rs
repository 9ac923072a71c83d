//! Development PKI: a local ECDSA P-256 CA and a server certificate signed by it.
//!
//! [`ensure_dev_pki`] gives a platform server started in development mode a
//! working certificate without any manual steps, while keeping the product's
//! promise that certificates are always verified: agents and the CLI are given
//! the generated `ca.pem` as their CA bundle and verify the server against it
//! like against any other CA. Keys are written with mode 0600 from the moment
//! the file is created. [`testing`] exposes the same real certificate
//! machinery with chosen names and validity periods for integration tests.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::{ServerName, UnixTime};
use time::{Duration, OffsetDateTime};

use crate::tls::{TlsError, crypto_provider, load_certs};

/// Common name of the development CA certificate.
pub const DEV_CA_NAME: &str = "PatchCTL development CA";
/// File name of the development CA certificate (give it to clients as CA bundle).
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the development CA private key (mode 0600).
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// File name of the development server certificate.
pub const SERVER_CERT_FILE: &str = "server.pem";
/// File name of the development server private key (mode 0600).
pub const SERVER_KEY_FILE: &str = "server-key.pem";

const CA_VALIDITY_DAYS: i64 = 3650;
const SERVER_VALIDITY_DAYS: i64 = 730;
/// Certificates start being valid a little in the past to tolerate clock skew.
const BACKDATE: Duration = Duration::hours(1);

/// Paths of the development PKI files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevPki {
    /// The CA certificate: configure clients with it as their CA bundle.
    pub ca_cert: PathBuf,
    /// The server certificate (PEM), for [`crate::server_config`].
    pub server_cert: PathBuf,
    /// The server private key (PEM, mode 0600), for [`crate::server_config`].
    pub server_key: PathBuf,
}

/// Makes sure `dir` holds a development CA and a server certificate for `names`.
///
/// `names` are the host names and IP addresses clients use to reach the
/// server (e.g. `localhost`, `127.0.0.1`, `::1`); each becomes a DNS or IP
/// subject alternative name. At least one is required.
///
/// * No files yet: creates `dir` (mode 0700) if needed, generates an ECDSA
///   P-256 CA ("PatchCTL development CA", CA-constrained, valid 10 years) and
///   a server certificate it signs (valid 2 years, server-auth usage), and
///   writes `ca.pem`, `ca-key.pem`, `server.pem`, `server-key.pem`.
/// * `ca.pem`, `server.pem` and `server-key.pem` present, the key matching the
///   certificate and the certificate valid now for every name under `ca.pem`:
///   reuses them unchanged (`ca-key.pem` may have been moved away).
/// * The server certificate is missing, expired or does not cover every
///   name, and `ca-key.pem` is present: issues a new server certificate and key
///   from the existing CA (replacing the old ones atomically), so clients that
///   already trust `ca.pem` keep working.
/// * Anything else (e.g. the CA certificate missing while other files exist)
///   is an error telling what to remove; nothing is overwritten then.
pub fn ensure_dev_pki(dir: &Path, names: &[String]) -> Result<DevPki, TlsError> {
    let pki_err = |detail: String| TlsError::DevPki {
        dir: dir.to_path_buf(),
        detail,
    };
    if names.is_empty() {
        return Err(pki_err(
            "no server name given; pass the host names or IP addresses clients use to reach \
             the server (e.g. localhost, 127.0.0.1)"
                .into(),
        ));
    }
    let sans = parse_names(names.iter().map(String::as_str))?;
    let pki = DevPki {
        ca_cert: dir.join(CA_CERT_FILE),
        server_cert: dir.join(SERVER_CERT_FILE),
        server_key: dir.join(SERVER_KEY_FILE),
    };
    let ca_key_path = dir.join(CA_KEY_FILE);

    let exists = |p: &Path| {
        p.try_exists().map_err(|source| TlsError::Read {
            what: "development PKI",
            path: p.to_path_buf(),
            source,
        })
    };
    let has_ca = exists(&pki.ca_cert)?;
    let has_ca_key = exists(&ca_key_path)?;
    let has_cert = exists(&pki.server_cert)?;
    let has_key = exists(&pki.server_key)?;

    if !has_ca && !has_ca_key && !has_cert && !has_key {
        create_private_dir(dir)?;
        let (ca_cert, ca_key) = generate_ca(
            DEV_CA_NAME,
            now() - BACKDATE,
            now() + days(CA_VALIDITY_DAYS),
        )?;
        let (cert, key) = issue_leaf(
            &ca_cert,
            &ca_key,
            &sans,
            now() - BACKDATE,
            now() + days(SERVER_VALIDITY_DAYS),
        )?;
        write_file(&ca_key_path, &ca_key.serialize_pem(), true, false)?;
        write_file(&pki.ca_cert, &ca_cert.pem(), false, false)?;
        write_file(&pki.server_key, &key.serialize_pem(), true, false)?;
        write_file(&pki.server_cert, &cert.pem(), false, false)?;
        return Ok(pki);
    }

    if !has_ca {
        return Err(pki_err(format!(
            "{CA_CERT_FILE} is missing but other development PKI files exist; clients could not \
             verify a certificate issued now; remove the directory to generate a new CA (clients \
             must then be given the new {CA_CERT_FILE})"
        )));
    }

    let problem = if has_cert && has_key {
        // Reusable only if the pair loads and the certificate verifies against
        // ca.pem for every requested name right now.
        match crate::tls::server_config(&pki.server_cert, &pki.server_key) {
            // An unreadable file is a permissions problem to report, not to paper over.
            Err(e @ TlsError::Read { .. }) => return Err(e),
            Err(e) => Some(e.to_string()),
            Ok(_) => verify_leaf(&pki.ca_cert, &pki.server_cert, names)
                .err()
                .map(|e| e.to_string()),
        }
    } else if has_cert || has_key {
        Some(format!(
            "only one of {SERVER_CERT_FILE} and {SERVER_KEY_FILE} exists"
        ))
    } else {
        Some(format!("{SERVER_CERT_FILE} does not exist yet"))
    };
    let Some(problem) = problem else {
        return Ok(pki);
    };
    if !has_ca_key {
        return Err(pki_err(format!(
            "the server certificate cannot be used ({problem}) and {CA_KEY_FILE} is missing, so \
             a new one cannot be issued; restore {CA_KEY_FILE} or remove the directory to \
             generate a new CA"
        )));
    }

    // Re-issue the server certificate from the existing CA.
    let ca_key_pem = fs::read_to_string(&ca_key_path).map_err(|source| TlsError::Read {
        what: "development CA key",
        path: ca_key_path.clone(),
        source,
    })?;
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(|e| TlsError::UnusableKey {
        path: ca_key_path.clone(),
        detail: e.to_string(),
    })?;
    // rcgen signs with the issuer's subject name and key; rebuilding the CA's
    // parameters with the same key yields an issuer equivalent to ca.pem. The
    // verification below proves it before anything is written.
    let (issuer, ca_key) = self_sign(ca_params(DEV_CA_NAME, now(), now() + days(1)), ca_key)?;
    let (cert, key) = issue_leaf(
        &issuer,
        &ca_key,
        &sans,
        now() - BACKDATE,
        now() + days(SERVER_VALIDITY_DAYS),
    )?;
    let tmp = tempfile_path(dir, SERVER_CERT_FILE);
    write_file(&tmp, &cert.pem(), false, true)?;
    if let Err(e) = verify_leaf(&pki.ca_cert, &tmp, names) {
        let _ = fs::remove_file(&tmp);
        return Err(pki_err(format!(
            "{CA_CERT_FILE} and {CA_KEY_FILE} do not form a usable CA ({e}); remove the \
             directory to generate a new CA"
        )));
    }
    let _ = fs::remove_file(&tmp);
    write_file(&pki.server_key, &key.serialize_pem(), true, true)?;
    write_file(&pki.server_cert, &cert.pem(), false, true)?;
    Ok(pki)
}

/// Why a server certificate does not verify against the development CA.
#[derive(Debug, thiserror::Error)]
enum LeafError {
    /// A file could not be read or parsed, or a name is not a DNS name or IP address.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The CA certificate is not usable as a trust anchor.
    #[error("{}: {error}", path.display())]
    BadRoot { path: PathBuf, error: rustls::Error },
    /// No verifier could be built from the CA.
    #[error(transparent)]
    Verifier(#[from] rustls::client::VerifierBuilderError),
    /// The server certificate file holds no certificate.
    #[error("empty chain")]
    EmptyChain,
    /// The certificate does not verify for a name.
    #[error("{} for {name}: {error}", leaf.display())]
    NotValidFor {
        leaf: PathBuf,
        name: String,
        error: rustls::Error,
    },
}

/// Checks that the certificate in `leaf` chains to `ca` and is valid now for every name.
fn verify_leaf(ca: &Path, leaf: &Path, names: &[String]) -> Result<(), LeafError> {
    let mut roots = RootCertStore::empty();
    for c in load_certs(ca, "development CA certificate")? {
        roots.add(c).map_err(|error| LeafError::BadRoot {
            path: ca.to_path_buf(),
            error,
        })?;
    }
    let verifier =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), crypto_provider()).build()?;
    let chain = load_certs(leaf, "server certificate")?;
    let (end_entity, intermediates) = chain.split_first().ok_or(LeafError::EmptyChain)?;
    for name in names {
        let server_name = server_name(name)?;
        verifier
            .verify_server_cert(
                end_entity,
                intermediates,
                &server_name,
                &[],
                UnixTime::now(),
            )
            .map_err(|error| LeafError::NotValidFor {
                leaf: leaf.to_path_buf(),
                name: name.clone(),
                error,
            })?;
    }
    Ok(())
}

fn server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    let name = trim_name(name);
    ServerName::try_from(name.to_string()).map_err(|_| {
        TlsError::Generate(format!("{name:?} is neither a DNS name nor an IP address"))
    })
}

fn trim_name(name: &str) -> &str {
    let name = name.trim();
    name.strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name)
}

/// Turns host names / IP addresses into subject alternative names.
fn parse_names<'a>(names: impl Iterator<Item = &'a str>) -> Result<Vec<SanType>, TlsError> {
    names
        .map(|raw| {
            let name = trim_name(raw);
            if let Ok(ip) = name.parse::<IpAddr>() {
                return Ok(SanType::IpAddress(ip));
            }
            // Validate with the same rules the verifier applies.
            rustls_pki_types::DnsName::try_from(name).map_err(|_| {
                TlsError::Generate(format!("{raw:?} is neither a DNS name nor an IP address"))
            })?;
            let ia5 = name
                .try_into()
                .map_err(|e| TlsError::Generate(format!("{raw:?}: {e}")))?;
            Ok(SanType::DnsName(ia5))
        })
        .collect()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn days(n: i64) -> Duration {
    Duration::days(n)
}

fn gen_err(e: rcgen::Error) -> TlsError {
    TlsError::Generate(e.to_string())
}

fn new_key() -> Result<KeyPair, TlsError> {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen_err)
}

fn ca_params(
    common_name: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "PatchCTL");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = not_before;
    params.not_after = not_after;
    params
}

fn self_sign(params: CertificateParams, key: KeyPair) -> Result<(Certificate, KeyPair), TlsError> {
    let cert = params.self_signed(&key).map_err(gen_err)?;
    Ok((cert, key))
}

fn generate_ca(
    common_name: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<(Certificate, KeyPair), TlsError> {
    self_sign(ca_params(common_name, not_before, not_after), new_key()?)
}

fn leaf_params(
    sans: &[SanType],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    let cn = match sans.first() {
        Some(SanType::DnsName(n)) => n.as_str().to_string(),
        Some(SanType::IpAddress(ip)) => ip.to_string(),
        _ => "PatchCTL server".to_string(),
    };
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.subject_alt_names = sans.to_vec();
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = not_before;
    params.not_after = not_after;
    params
}

fn issue_leaf(
    ca_cert: &Certificate,
    ca_key: &KeyPair,
    sans: &[SanType],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<(Certificate, KeyPair), TlsError> {
    let key = new_key()?;
    let cert = leaf_params(sans, not_before, not_after)
        .signed_by(&key, ca_cert, ca_key)
        .map_err(gen_err)?;
    Ok((cert, key))
}

fn create_private_dir(dir: &Path) -> Result<(), TlsError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| TlsError::Write {
        path: dir.to_path_buf(),
        source,
    })
}

fn tempfile_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes `contents` to `path`; private files get mode 0600 from creation on.
///
/// With `replace = false` an existing file is an error. With `replace = true`
/// the content goes to a fresh temporary file that is renamed over `path`, so
/// the replaced file never exists with weaker permissions or partial content.
fn write_file(path: &Path, contents: &str, private: bool, replace: bool) -> Result<(), TlsError> {
    let werr = |p: &Path| {
        let p = p.to_path_buf();
        move |source| TlsError::Write { path: p, source }
    };
    let target = if replace {
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        tempfile_path(dir, &format!("{name}.new"))
    } else {
        path.to_path_buf()
    };
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = opts.open(&target).map_err(werr(&target))?;
    let written = file
        .write_all(contents.as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        let _ = fs::remove_file(&target);
        return Err(werr(&target)(e));
    }
    if replace {
        fs::rename(&target, path).map_err(|e| {
            let _ = fs::remove_file(&target);
            werr(path)(e)
        })?;
    }
    Ok(())
}

/// Certificate helpers for tests (this crate's and other crates' integration tests).
///
/// Everything here produces real ECDSA P-256 certificates and keys that real
/// TLS handshakes verify or refuse; nothing is mocked. Use them to start TLS
/// servers presenting a certificate from a known CA, another CA, a
/// self-signed certificate, a certificate for the wrong name or an expired
/// one. They are not meant for production use: production certificates come
/// from the operator, or from [`super::ensure_dev_pki`] in development.
pub mod testing {
    use std::fmt;
    use std::path::{Path, PathBuf};
    use std::time::SystemTime;

    use rcgen::{Certificate, KeyPair};
    use time::OffsetDateTime;

    use super::{
        BACKDATE, generate_ca, issue_leaf, leaf_params, new_key, now, parse_names, write_file,
    };
    use crate::tls::TlsError;

    /// A CA (certificate and key) that can issue leaf certificates.
    pub struct TestCa {
        cert: Certificate,
        key: KeyPair,
    }

    impl fmt::Debug for TestCa {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("TestCa").finish_non_exhaustive()
        }
    }

    /// A leaf certificate and its private key, both PEM encoded.
    #[derive(Clone)]
    pub struct TestLeaf {
        /// The certificate (PEM, one `CERTIFICATE` block).
        pub cert_pem: String,
        /// The private key (PEM, PKCS#8).
        pub key_pem: String,
    }

    impl fmt::Debug for TestLeaf {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("TestLeaf")
                .field("cert_pem", &self.cert_pem)
                .finish_non_exhaustive()
        }
    }

    impl TestCa {
        /// Generates a new ECDSA P-256 CA named `common_name`, valid from an hour ago for 10 years.
        pub fn new(common_name: &str) -> Result<Self, TlsError> {
            let (cert, key) =
                generate_ca(common_name, now() - BACKDATE, now() + super::days(3650))?;
            Ok(Self { cert, key })
        }

        /// The CA certificate, PEM encoded.
        pub fn cert_pem(&self) -> String {
            self.cert.pem()
        }

        /// The CA private key, PEM encoded (PKCS#8).
        pub fn key_pem(&self) -> String {
            self.key.serialize_pem()
        }

        /// Writes the CA certificate to `dir/file_name` and returns the path.
        ///
        /// The file must not exist yet.
        pub fn write_cert(&self, dir: &Path, file_name: &str) -> Result<PathBuf, TlsError> {
            let path = dir.join(file_name);
            write_file(&path, &self.cert_pem(), false, false)?;
            Ok(path)
        }

        /// Issues a server certificate for `names` (DNS names or IP addresses),
        /// valid from an hour ago for one day.
        pub fn issue(&self, names: &[&str]) -> Result<TestLeaf, TlsError> {
            let sans = parse_names(names.iter().copied())?;
            let (cert, key) = issue_leaf(
                &self.cert,
                &self.key,
                &sans,
                now() - BACKDATE,
                now() + super::days(1),
            )?;
            Ok(TestLeaf {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            })
        }

        /// Issues a server certificate for `names` valid exactly from
        /// `not_before` to `not_after` (use a past `not_after` for an expired one).
        pub fn issue_with_validity(
            &self,
            names: &[&str],
            not_before: SystemTime,
            not_after: SystemTime,
        ) -> Result<TestLeaf, TlsError> {
            let sans = parse_names(names.iter().copied())?;
            let (cert, key) = issue_leaf(
                &self.cert,
                &self.key,
                &sans,
                OffsetDateTime::from(not_before),
                OffsetDateTime::from(not_after),
            )?;
            Ok(TestLeaf {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            })
        }
    }

    impl TestLeaf {
        /// Writes `dir/<stem>.pem` (certificate) and `dir/<stem>-key.pem` (key,
        /// mode 0600) and returns their paths. The files must not exist yet.
        pub fn write(&self, dir: &Path, stem: &str) -> Result<(PathBuf, PathBuf), TlsError> {
            let cert = dir.join(format!("{stem}.pem"));
            let key = dir.join(format!("{stem}-key.pem"));
            write_file(&key, &self.key_pem, true, false)?;
            write_file(&cert, &self.cert_pem, false, false)?;
            Ok((cert, key))
        }
    }

    /// Generates a self-signed (CA-less) server certificate for `names`,
    /// valid from an hour ago for one day.
    pub fn self_signed_leaf(names: &[&str]) -> Result<TestLeaf, TlsError> {
        let sans = parse_names(names.iter().copied())?;
        let key = new_key()?;
        let cert = leaf_params(&sans, now() - BACKDATE, now() + super::days(1))
            .self_signed(&key)
            .map_err(super::gen_err)?;
        Ok(TestLeaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn generates_all_files_with_private_key_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pki");
        let pki = ensure_dev_pki(&dir, &names(&["localhost", "127.0.0.1", "[::1]"])).unwrap();
        assert_eq!(pki.ca_cert, dir.join("ca.pem"));
        for f in [CA_CERT_FILE, CA_KEY_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE] {
            assert!(dir.join(f).is_file(), "{f} missing");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |f: &str| fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(CA_KEY_FILE), 0o600);
            assert_eq!(mode(SERVER_KEY_FILE), 0o600);
            assert_eq!(
                fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
        verify_leaf(
            &pki.ca_cert,
            &pki.server_cert,
            &names(&["localhost", "127.0.0.1", "::1"]),
        )
        .unwrap();
        assert!(verify_leaf(&pki.ca_cert, &pki.server_cert, &names(&["other.example"])).is_err());
        // The server config loads (key matches certificate).
        crate::tls::server_config(&pki.server_cert, &pki.server_key).unwrap();
    }

    #[test]
    fn certificates_are_ecdsa_p256_and_ca_constrained() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = ensure_dev_pki(tmp.path(), &names(&["localhost"])).unwrap();
        let key = KeyPair::from_pem(&fs::read_to_string(&pki.server_key).unwrap()).unwrap();
        assert_eq!(key.algorithm(), &rcgen::PKCS_ECDSA_P256_SHA256);
        let ca_key =
            KeyPair::from_pem(&fs::read_to_string(tmp.path().join(CA_KEY_FILE)).unwrap()).unwrap();
        assert_eq!(ca_key.algorithm(), &rcgen::PKCS_ECDSA_P256_SHA256);
        let ca_der = &load_certs(&pki.ca_cert, "ca").unwrap()[0];
        let server_der = &load_certs(&pki.server_cert, "srv").unwrap()[0];
        // ecdsa-with-SHA256 OID 1.2.840.10045.4.3.2 in both.
        let oid = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
        assert!(ca_der.windows(oid.len()).any(|w| w == oid));
        assert!(server_der.windows(oid.len()).any(|w| w == oid));
        // The CA name is in the CA certificate.
        assert!(
            ca_der
                .windows(DEV_CA_NAME.len())
                .any(|w| w == DEV_CA_NAME.as_bytes())
        );
    }

    #[test]
    fn reuses_existing_files() {
        let tmp = tempfile::tempdir().unwrap();
        let n = names(&["localhost"]);
        let pki = ensure_dev_pki(tmp.path(), &n).unwrap();
        let before: Vec<String> = [&pki.ca_cert, &pki.server_cert, &pki.server_key]
            .iter()
            .map(|p| fs::read_to_string(p).unwrap())
            .collect();
        let again = ensure_dev_pki(tmp.path(), &n).unwrap();
        assert_eq!(pki, again);
        let after: Vec<String> = [&pki.ca_cert, &pki.server_cert, &pki.server_key]
            .iter()
            .map(|p| fs::read_to_string(p).unwrap())
            .collect();
        assert_eq!(before, after);
    }

    #[test]
    fn reissues_server_certificate_from_existing_ca_for_new_names() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = ensure_dev_pki(tmp.path(), &names(&["localhost"])).unwrap();
        let ca_before = fs::read_to_string(&pki.ca_cert).unwrap();
        let cert_before = fs::read_to_string(&pki.server_cert).unwrap();
        let n = names(&["localhost", "patchctl.internal", "10.1.2.3"]);
        ensure_dev_pki(tmp.path(), &n).unwrap();
        assert_eq!(ca_before, fs::read_to_string(&pki.ca_cert).unwrap());
        assert_ne!(cert_before, fs::read_to_string(&pki.server_cert).unwrap());
        verify_leaf(&pki.ca_cert, &pki.server_cert, &n).unwrap();
        crate::tls::server_config(&pki.server_cert, &pki.server_key).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&pki.server_key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // No temporary files left behind.
        let leftovers: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn missing_server_files_are_reissued_from_the_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let n = names(&["localhost"]);
        let pki = ensure_dev_pki(tmp.path(), &n).unwrap();
        fs::remove_file(&pki.server_cert).unwrap();
        fs::remove_file(&pki.server_key).unwrap();
        ensure_dev_pki(tmp.path(), &n).unwrap();
        verify_leaf(&pki.ca_cert, &pki.server_cert, &n).unwrap();
    }

    #[test]
    fn inconsistent_directories_are_refused_without_overwriting() {
        let tmp = tempfile::tempdir().unwrap();
        let n = names(&["localhost"]);
        let pki = ensure_dev_pki(tmp.path(), &n).unwrap();
        fs::remove_file(&pki.ca_cert).unwrap();
        let key_before = fs::read_to_string(&pki.server_key).unwrap();
        let e = ensure_dev_pki(tmp.path(), &n).unwrap_err();
        assert!(e.to_string().contains("ca.pem is missing"), "{e}");
        assert_eq!(key_before, fs::read_to_string(&pki.server_key).unwrap());

        // CA key gone and names changed: cannot reissue.
        let tmp = tempfile::tempdir().unwrap();
        ensure_dev_pki(tmp.path(), &n).unwrap();
        fs::remove_file(tmp.path().join(CA_KEY_FILE)).unwrap();
        // Same names: reusable without the CA key.
        ensure_dev_pki(tmp.path(), &n).unwrap();
        let e = ensure_dev_pki(tmp.path(), &names(&["other.example"])).unwrap_err();
        assert!(e.to_string().contains("ca-key.pem is missing"), "{e}");

        // A CA key that does not belong to ca.pem is detected before writing.
        let tmp = tempfile::tempdir().unwrap();
        let pki = ensure_dev_pki(tmp.path(), &n).unwrap();
        let other = testing::TestCa::new(DEV_CA_NAME).unwrap();
        fs::remove_file(tmp.path().join(CA_KEY_FILE)).unwrap();
        fs::write(tmp.path().join(CA_KEY_FILE), other.key_pem()).unwrap();
        let cert_before = fs::read_to_string(&pki.server_cert).unwrap();
        let e = ensure_dev_pki(tmp.path(), &names(&["other.example"])).unwrap_err();
        assert!(e.to_string().contains("do not form a usable CA"), "{e}");
        assert_eq!(cert_before, fs::read_to_string(&pki.server_cert).unwrap());
    }

    #[test]
    fn bad_names_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let e = ensure_dev_pki(tmp.path(), &[]).unwrap_err();
        assert!(e.to_string().contains("no server name"), "{e}");
        let e = ensure_dev_pki(tmp.path(), &names(&["not a name"])).unwrap_err();
        assert!(
            e.to_string().contains("neither a DNS name nor an IP"),
            "{e}"
        );
        assert!(fs::read_dir(tmp.path()).unwrap().next().is_none());
    }
}
