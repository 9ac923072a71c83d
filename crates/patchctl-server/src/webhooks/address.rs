//! Which addresses a webhook may be sent to: the address classifier ([`classify`]),
//! networks (`Cidr`, the `webhook_allow_networks` setting) and the target check
//! ([`check_target`]) run at subscription create/update and again at every delivery,
//! whose connection then goes only to the addresses checked (no DNS rebinding).
//!
//! A target resolving to any address that is not global — loopback, link-local,
//! private (RFC 1918, ULA `fc00::/7`, CGNAT `100.64.0.0/10`), unspecified, multicast,
//! documentation, benchmarking, reserved — is refused unless that address is inside an
//! allowed network. `https://` always; `http://` only when every address is inside an
//! allowed network.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A network: an address and a prefix length (`10.0.0.0/8`, `::1/128`; an address
/// alone is a host network).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a network's text is not a CIDR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{text:?} is not a network: {why}; write it as ADDRESS/PREFIX such as 10.1.0.0/16 or fd00::/8"
)]
pub struct CidrError {
    text: String,
    why: &'static str,
}

impl Cidr {
    /// The network `addr/prefix`; `None` when the prefix is too long for the family.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    /// Whether `ip` is inside (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = unmap(ip);
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(
                u128::from(n.to_bits()) << 96,
                u128::from(a.to_bits()) << 96,
                self.prefix,
            ),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(n.to_bits(), a.to_bits(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = 128 - u32::from(prefix);
    (a >> shift) == (b >> shift)
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let err = |why| CidrError {
            text: s.to_owned(),
            why,
        };
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| err("not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse::<u8>()
                .map_err(|_| err("the prefix is not a number"))?,
            Some(_) => return Err(err("the prefix is not a number")),
        };
        Cidr::new(addr, prefix).ok_or_else(|| err("the prefix is longer than the address"))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What kind of address an IP is, for the target check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// Reachable on the internet: the only class allowed without an allowance.
    Global,
    /// Loopback (`127.0.0.0/8`, `::1`).
    Loopback,
    /// Private: RFC 1918, ULA `fc00::/7`, CGNAT `100.64.0.0/10`.
    Private,
    /// Link-local (`169.254.0.0/16`, `fe80::/10`).
    LinkLocal,
    /// Unspecified (`0.0.0.0/8`, `::`).
    Unspecified,
    /// Multicast or broadcast.
    Multicast,
    /// Documentation, benchmarking, reserved or otherwise not global.
    Reserved,
}

impl AddressClass {
    /// In words, for errors.
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Global => "global",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link-local",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Multicast => "multicast",
            AddressClass::Reserved => "reserved (not global)",
        }
    }
}

/// An IPv4-mapped IPv6 address as its IPv4 address; anything else as it is.
fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn in4(ip: Ipv4Addr, net: [u8; 4], prefix: u8) -> bool {
    prefix_eq(
        u128::from(ip.to_bits()) << 96,
        u128::from(Ipv4Addr::from(net).to_bits()) << 96,
        prefix,
    )
}

fn in6(ip: Ipv6Addr, net: u128, prefix: u8) -> bool {
    prefix_eq(ip.to_bits(), net, prefix)
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    use AddressClass::*;
    let table: [([u8; 4], u8, AddressClass); 15] = [
        ([0, 0, 0, 0], 8, Unspecified),
        ([10, 0, 0, 0], 8, Private),
        ([100, 64, 0, 0], 10, Private),
        ([127, 0, 0, 0], 8, Loopback),
        ([169, 254, 0, 0], 16, LinkLocal),
        ([172, 16, 0, 0], 12, Private),
        ([192, 0, 0, 0], 24, Reserved),
        ([192, 0, 2, 0], 24, Reserved),
        ([192, 88, 99, 0], 24, Reserved),
        ([192, 168, 0, 0], 16, Private),
        ([198, 18, 0, 0], 15, Reserved),
        ([198, 51, 100, 0], 24, Reserved),
        ([203, 0, 113, 0], 24, Reserved),
        ([224, 0, 0, 0], 4, Multicast),
        ([240, 0, 0, 0], 4, Reserved),
    ];
    if ip == Ipv4Addr::BROADCAST {
        return Multicast;
    }
    table
        .iter()
        .find(|(net, p, _)| in4(ip, *net, *p))
        .map_or(Global, |(_, _, c)| *c)
}

/// The class of `ip`. IPv6 addresses that embed an IPv4 address (mapped, NAT64
/// `64:ff9b::/96`) are classed by it; IPv6 is global only inside `2000::/3` and
/// outside its special blocks (documentation, Teredo, 6to4, ORCHID, ...).
pub fn classify(ip: IpAddr) -> AddressClass {
    use AddressClass::*;
    let v6 = match unmap(ip) {
        IpAddr::V4(v4) => return classify_v4(v4),
        IpAddr::V6(v6) => v6,
    };
    let bits = v6.to_bits();
    if v6.is_unspecified() {
        return Unspecified;
    }
    if v6.is_loopback() {
        return Loopback;
    }
    if in6(v6, 0x0064_ff9b << 96, 96) {
        let v4 = Ipv4Addr::from_bits(bits as u32);
        return classify_v4(v4);
    }
    if in6(v6, 0xff00 << 112, 8) {
        return Multicast;
    }
    if in6(v6, 0xfe80 << 112, 10) {
        return LinkLocal;
    }
    if in6(v6, 0xfc00 << 112, 7) {
        return Private;
    }
    if !in6(v6, 0x2000 << 112, 3) {
        return Reserved;
    }
    // Special blocks inside 2000::/3: IETF protocol assignments (incl. Teredo,
    // benchmarking, ORCHID), documentation, 6to4.
    let special: [(u128, u8); 4] = [
        (0x2001 << 112, 23),
        (0x2001_0db8 << 96, 32),
        (0x2002 << 112, 16),
        (0x3fff << 112, 20),
    ];
    if special.iter().any(|(n, p)| in6(v6, *n, *p)) {
        return Reserved;
    }
    Global
}

/// Why a target was refused. Its text says what to do; it never holds a secret (a URL's
/// user information is refused, and the URL is never repeated whole).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not an absolute `http(s)://host[:port]/...` URL.
    #[error("the webhook URL is not valid: {0}")]
    Url(String),
    /// Neither `https` nor `http`.
    #[error(
        "the webhook URL's scheme is {0:?}: use https:// (or http:// inside an allowed network)"
    )]
    Scheme(String),
    /// The host did not resolve.
    #[error("the webhook host {host} does not resolve: {why}")]
    Resolve {
        /// The host.
        host: String,
        /// What the resolver said.
        why: String,
    },
    /// An address is not global and not allowed.
    #[error(
        "the webhook host {host} resolves to {ip}, a {class} address; webhooks go only to \
         global addresses unless the platform's webhook_allow_networks \
         (PATCHCTL_WEBHOOK_ALLOW_NETWORKS) allows the network"
    )]
    NotAllowed {
        /// The host.
        host: String,
        /// The address.
        ip: IpAddr,
        /// Its class.
        class: &'static str,
    },
    /// `http://` to an address outside the allowed networks.
    #[error(
        "the webhook host {host} resolves to {ip}, outside webhook_allow_networks: plain \
         http:// is allowed only inside those networks; use https://"
    )]
    PlainHttp {
        /// The host.
        host: String,
        /// The address.
        ip: IpAddr,
    },
}

/// A parsed webhook URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https` (true) or `http`.
    pub tls: bool,
    /// The host as written (without brackets for IPv6).
    pub host: String,
    /// The port.
    pub port: u16,
    /// Path and query (`/` at least).
    pub path: String,
}

impl Target {
    /// Parses an absolute `http(s)` URL; no user information, no fragment.
    pub fn parse(url: &str) -> Result<Target, TargetError> {
        if url.len() > 2048 {
            return Err(TargetError::Url("longer than 2048 characters".into()));
        }
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(TargetError::Url(
                "it contains whitespace or control characters".into(),
            ));
        }
        let uri: http::Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| TargetError::Url(e.to_string()))?;
        let scheme = uri
            .scheme_str()
            .ok_or_else(|| {
                TargetError::Url("give an absolute URL such as https://host/path".into())
            })?
            .to_ascii_lowercase();
        let tls = match scheme.as_str() {
            "https" => true,
            "http" => false,
            other => return Err(TargetError::Scheme(other.to_owned())),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| TargetError::Url("it has no host".into()))?;
        if authority.as_str().contains('@') {
            return Err(TargetError::Url(
                "user information (user:password@) is not allowed; the signature authenticates the platform".into(),
            ));
        }
        if url.contains('#') {
            return Err(TargetError::Url("a fragment (#...) is not allowed".into()));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(TargetError::Url("it has no host".into()));
        }
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        if port == 0 {
            return Err(TargetError::Url("port 0".into()));
        }
        let path = uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        Ok(Target {
            tls,
            host: host.to_ascii_lowercase(),
            port,
            path: if path.is_empty() { "/".into() } else { path },
        })
    }

    /// The `Host` header's value.
    pub fn host_header(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Checks every address of `addrs` (the target's resolution) against the rules; the
/// addresses a delivery may connect to.
pub fn check_addresses(
    target: &Target,
    addrs: &[IpAddr],
    allow: &[Cidr],
) -> Result<(), TargetError> {
    if addrs.is_empty() {
        return Err(TargetError::Resolve {
            host: target.host.clone(),
            why: "no address".into(),
        });
    }
    for ip in addrs {
        let allowed = allow.iter().any(|n| n.contains(*ip));
        let class = classify(*ip);
        if class != AddressClass::Global && !allowed {
            return Err(TargetError::NotAllowed {
                host: target.host.clone(),
                ip: *ip,
                class: class.describe(),
            });
        }
        if !target.tls && !allowed {
            return Err(TargetError::PlainHttp {
                host: target.host.clone(),
                ip: *ip,
            });
        }
    }
    Ok(())
}

/// Parses `url`, resolves its host and checks every address: the socket addresses a
/// delivery connects to.
pub async fn check_target(
    url: &str,
    allow: &[Cidr],
) -> Result<(Target, Vec<SocketAddr>), TargetError> {
    let target = Target::parse(url)?;
    let addrs: Vec<SocketAddr> = match target.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, target.port)],
        Err(_) => tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|e| TargetError::Resolve {
                host: target.host.clone(),
                why: e.to_string(),
            })?
            .collect(),
    };
    let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
    check_addresses(&target, &ips, allow)?;
    Ok((target, addrs))
}

#[cfg(test)]
mod tests;
