//! Reads what a person needs from an X.509 certificate (RFC 5280): subject, issuer,
//! validity, the names of its subject alternative name extension and whether it is a
//! CA. Nothing is verified here; rustls/webpki verify.
//!
//! A small DER reader rather than a general X.509 crate: this runs inside the agent
//! binary, whose resident size is budgeted (docs/benchmarks.md), and `x509-parser` with
//! its ASN.1 stack added about 0.55 MB to it for these five fields. The input may come
//! from any server (the inspection-only handshake), so every length is checked and any
//! malformed input is an error, never a panic (`tests` feed it random and mutated
//! certificates).

use std::net::IpAddr;

/// What a certificate says about itself, for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject, as `CN=..., O=...`.
    pub subject: String,
    /// The issuer, as `CN=..., O=...`.
    pub issuer: String,
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity, Unix seconds.
    pub not_after: i64,
    /// DNS names of the subject alternative name extension.
    pub dns_names: Vec<String>,
    /// IP addresses of the subject alternative name extension.
    pub ip_addresses: Vec<IpAddr>,
    /// `basicConstraints CA:true`.
    pub is_ca: bool,
}

impl CertInfo {
    /// Every name the certificate is valid for (DNS names, then addresses).
    pub fn names(&self) -> Vec<String> {
        let mut out = self.dns_names.clone();
        out.extend(self.ip_addresses.iter().map(IpAddr::to_string));
        out
    }
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const INTEGER: u8 = 0x02;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const VERSION: u8 = 0xa0;
const EXTENSIONS: u8 = 0xa3;
const SAN_DNS: u8 = 0x82;
const SAN_IP: u8 = 0x87;

/// Subject alternative name, 2.5.29.17.
const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];
/// Basic constraints, 2.5.29.19.
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];

/// Reads a DER certificate; the error says where it stopped making sense.
pub fn cert_info(der: &[u8]) -> Result<CertInfo, String> {
    parse(der).map_err(|e| format!("not a readable X.509 certificate: {e}"))
}

fn parse(der: &[u8]) -> Result<CertInfo, &'static str> {
    let mut outer = der;
    let cert = expect(&mut outer, SEQUENCE, "certificate")?;
    let mut cert = cert;
    let mut tbs = expect(&mut cert, SEQUENCE, "to-be-signed part")?;
    if peek(tbs) == Some(VERSION) {
        read(&mut tbs)?;
    }
    expect(&mut tbs, INTEGER, "serial number")?;
    expect(&mut tbs, SEQUENCE, "signature algorithm")?;
    let issuer = name(expect(&mut tbs, SEQUENCE, "issuer")?)?;
    let mut validity = expect(&mut tbs, SEQUENCE, "validity")?;
    let not_before = time(&mut validity)?;
    let not_after = time(&mut validity)?;
    let subject = name(expect(&mut tbs, SEQUENCE, "subject")?)?;
    expect(&mut tbs, SEQUENCE, "public key")?;
    let mut info = CertInfo {
        subject,
        issuer,
        not_before,
        not_after,
        dns_names: Vec::new(),
        ip_addresses: Vec::new(),
        is_ca: false,
    };
    while !tbs.is_empty() {
        let (tag, content) = read(&mut tbs)?;
        if tag == EXTENSIONS {
            let mut content = content;
            extensions(expect(&mut content, SEQUENCE, "extensions")?, &mut info)?;
        }
    }
    Ok(info)
}

fn extensions(mut list: &[u8], info: &mut CertInfo) -> Result<(), &'static str> {
    while !list.is_empty() {
        let mut ext = expect(&mut list, SEQUENCE, "extension")?;
        let oid = expect(&mut ext, OID, "extension id")?;
        if peek(ext) == Some(BOOLEAN) {
            read(&mut ext)?;
        }
        let mut value = expect(&mut ext, OCTET_STRING, "extension value")?;
        if oid == OID_SAN {
            let mut names = expect(&mut value, SEQUENCE, "subject alternative names")?;
            while !names.is_empty() {
                match read(&mut names)? {
                    (SAN_DNS, n) => info.dns_names.push(String::from_utf8_lossy(n).into_owned()),
                    (SAN_IP, ip) => {
                        if let Ok(v4) = <[u8; 4]>::try_from(ip) {
                            info.ip_addresses.push(IpAddr::from(v4));
                        } else if let Ok(v6) = <[u8; 16]>::try_from(ip) {
                            info.ip_addresses.push(IpAddr::from(v6));
                        }
                    }
                    _ => {}
                }
            }
        } else if oid == OID_BASIC_CONSTRAINTS {
            let constraints = expect(&mut value, SEQUENCE, "basic constraints")?;
            let mut c = constraints;
            if peek(c) == Some(BOOLEAN) {
                let (_, flag) = read(&mut c)?;
                info.is_ca = flag.first().is_some_and(|b| *b != 0);
            }
        }
    }
    Ok(())
}

/// The next tag without consuming it.
fn peek(input: &[u8]) -> Option<u8> {
    input.first().copied()
}

/// Reads one DER element: its tag and content.
fn read<'a>(input: &mut &'a [u8]) -> Result<(u8, &'a [u8]), &'static str> {
    let data: &'a [u8] = input;
    let (tag, first, rest) = match data {
        &[tag, first, ref rest @ ..] => (tag, first, rest),
        _ => return Err("truncated element"),
    };
    if tag & 0x1f == 0x1f {
        return Err("multi-byte tag");
    }
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81..=0x84 => {
            let n = usize::from(first & 0x7f);
            if rest.len() < n {
                return Err("truncated length");
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[n..])
        }
        _ => return Err("unsupported length"),
    };
    if rest.len() < len {
        return Err("element longer than its container");
    }
    *input = &rest[len..];
    Ok((tag, &rest[..len]))
}

/// Reads one element that must carry `tag`.
fn expect<'a>(input: &mut &'a [u8], tag: u8, what: &'static str) -> Result<&'a [u8], &'static str> {
    match read(input) {
        Ok((t, content)) if t == tag => Ok(content),
        Ok(_) => Err(what),
        Err(e) => Err(e),
    }
}

/// A distinguished name as `CN=..., O=...`, in the order it is encoded.
fn name(mut rdns: &[u8]) -> Result<String, &'static str> {
    let mut parts = Vec::new();
    while !rdns.is_empty() {
        let mut set = expect(&mut rdns, SET, "name component")?;
        while !set.is_empty() {
            let mut atv = expect(&mut set, SEQUENCE, "name attribute")?;
            let oid = expect(&mut atv, OID, "name attribute type")?;
            let (tag, value) = read(&mut atv)?;
            parts.push(format!("{}={}", attribute(oid), string(tag, value)));
        }
    }
    Ok(if parts.is_empty() {
        "(empty name)".to_owned()
    } else {
        parts.join(", ")
    })
}

/// The short name of a name attribute, else its dotted OID.
fn attribute(oid: &[u8]) -> String {
    let short = match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x05] => "serialNumber",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x0a] => "O",
        [0x55, 0x04, 0x0b] => "OU",
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC",
        _ => return dotted(oid),
    };
    short.to_owned()
}

/// An OID as `1.2.840...`.
fn dotted(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for b in oid {
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        }
        if acc > u64::MAX >> 8 {
            return "OID(?)".into();
        }
    }
    format!(
        "OID({})",
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(".")
    )
}

/// A directory string as text (UTF-8, printable, IA5, T.61 as Latin-1, BMP).
fn string(tag: u8, value: &[u8]) -> String {
    match tag {
        // BMPString: UTF-16 big-endian.
        0x1e => char::decode_utf16(
            value
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])),
        )
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect(),
        // T61String: in practice Latin-1.
        0x14 => value.iter().map(|b| char::from(*b)).collect(),
        _ => String::from_utf8_lossy(value).into_owned(),
    }
}

/// Reads a UTCTime or GeneralizedTime (`...Z`) as Unix seconds.
fn time(input: &mut &[u8]) -> Result<i64, &'static str> {
    let (tag, text) = read(input)?;
    let digits = |s: &[u8]| -> Result<i64, &'static str> {
        s.iter().try_fold(0i64, |acc, b| {
            if b.is_ascii_digit() {
                Ok(acc * 10 + i64::from(b - b'0'))
            } else {
                Err("time with a non-digit")
            }
        })
    };
    let (year, rest) = match (tag, text) {
        (UTC_TIME, [y @ .., b'Z']) if y.len() == 12 => {
            let yy = digits(&y[..2])?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &y[2..])
        }
        (GENERALIZED_TIME, [y @ .., b'Z']) if y.len() == 14 => (digits(&y[..4])?, &y[4..]),
        _ => return Err("validity time"),
    };
    let field = |i: usize| digits(&rest[i..i + 2]);
    let (month, day, hour, min, sec) = (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return Err("validity time out of range");
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devca::testing::TestCa;
    use proptest::prelude::*;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use std::time::{Duration, SystemTime};

    fn der(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    fn unix(t: SystemTime) -> i64 {
        t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64
    }

    #[test]
    fn reads_names_issuer_and_validity() {
        let ca = TestCa::new("Inspect Test CA").unwrap();
        let leaf = ca.issue(&["platform.example", "10.0.0.7", "::1"]).unwrap();
        let info = cert_info(&der(&leaf.cert_pem)).unwrap();
        assert!(info.issuer.contains("CN=Inspect Test CA"), "{info:?}");
        assert_eq!(info.dns_names, ["platform.example"]);
        assert_eq!(
            info.ip_addresses,
            [
                "10.0.0.7".parse::<IpAddr>().unwrap(),
                "::1".parse::<IpAddr>().unwrap()
            ]
        );
        assert_eq!(info.names(), ["platform.example", "10.0.0.7", "::1"]);
        assert!(!info.is_ca);
        assert!(info.not_before < info.not_after);
        let ca_info = cert_info(&der(&ca.cert_pem())).unwrap();
        assert!(ca_info.is_ca);
        assert_eq!(ca_info.subject, ca_info.issuer);
        assert!(cert_info(b"not a certificate").is_err());
    }

    #[test]
    fn validity_is_read_to_the_second() {
        let ca = TestCa::new("Validity CA").unwrap();
        let day = Duration::from_secs(86_400);
        let epoch = SystemTime::UNIX_EPOCH;
        // Both encodings: UTCTime before 2050, GeneralizedTime from 2050 on.
        for (from, to) in [
            (
                epoch + Duration::from_secs(1_700_000_000),
                epoch + Duration::from_secs(1_700_000_000) + 30 * day,
            ),
            (
                epoch + Duration::from_secs(2_000_000_000),
                epoch + Duration::from_secs(2_600_000_123),
            ),
        ] {
            let leaf = ca.issue_with_validity(&["a.example"], from, to).unwrap();
            let info = cert_info(&der(&leaf.cert_pem)).unwrap();
            assert_eq!((info.not_before, info.not_after), (unix(from), unix(to)));
        }
    }

    #[test]
    fn calendar_and_oids() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        assert_eq!(
            dotted(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]),
            "OID(1.2.840.10045.4.3.2)"
        );
        assert_eq!(attribute(&[0x55, 0x04, 0x03]), "CN");
        assert_eq!(attribute(&[0x55, 0x04, 0x61]), "OID(2.5.4.97)");
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = cert_info(&bytes);
        }

        #[test]
        fn damaged_certificates_never_panic(
            at in 0usize..2000,
            byte in any::<u8>(),
            cut in 0usize..2000,
        ) {
            let ca = TestCa::new("Fuzz CA").unwrap();
            let mut d = der(&ca.issue(&["x.example", "10.1.2.3"]).unwrap().cert_pem);
            let at = at % d.len();
            d[at] = byte;
            d.truncate(cut % (d.len() + 1));
            let _ = cert_info(&d);
        }
    }
}
