//! Doctor's checks of the way to the platform: the name in DNS, a TCP connection, the
//! TLS 1.3 handshake with its certificates explained, the clock against the platform's
//! and how the platform sees the stored credential (`GET /api/v1/agent/whoami`).

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use http::Method;
use patchctl_net::client::{ClientError, HttpsClient};
use patchctl_net::inspect::{self, CertInfo, HandshakeFailure, cert_info};
use patchctl_proto::trust::{Approval, ErrorCode, WhoAmI};

use super::local::{TlsSetup, date, short_list, utc};
use super::{Level, Report};
use crate::config::AgentConfig;
use crate::state::{self, RevokedMarker};

/// How long each network step may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// Clock difference that is worth a warning, seconds.
pub const SKEW_WARN_SECS: f64 = 30.0;
/// Clock difference that fails the check, seconds: certificates and tokens with a
/// validity window start to break around here.
pub const SKEW_FAIL_SECS: f64 = 300.0;
/// A certificate that expires within this many days is worth a warning.
const EXPIRY_WARN_DAYS: i64 = 14;
/// At most this many addresses are tried for TCP.
const MAX_ADDRESSES: usize = 4;

/// The host and port of `server_url`.
pub fn host_port(server_url: &str) -> Option<(String, u16)> {
    let uri: http::Uri = server_url.parse().ok()?;
    let auth = uri.authority()?;
    let host = auth.host().trim_start_matches('[').trim_end_matches(']');
    Some((host.to_owned(), auth.port_u16().unwrap_or(443)))
}

/// Runs `dns`, `tcp`, `tls`, `clock` and `credential`, each skipped when the one
/// before it failed (the credential's revoked marker is read in any case).
pub async fn checks(r: &mut Report, cfg: Option<&AgentConfig>, tls: Option<&TlsSetup>) {
    let Some(cfg) = cfg else {
        for name in ["dns", "tcp", "tls", "clock"] {
            r.skip(name, "the configuration could not be read");
        }
        r.skip("credential", "the configuration could not be read");
        return;
    };
    let marker = state::load_revoked(cfg.dir());
    let Some((host, port)) = host_port(&cfg.server_url) else {
        r.fail(
            "dns",
            format!("no host name in server_url {}", cfg.server_url),
            format!(
                "set server_url in {} to https://HOST:PORT",
                cfg.path.display()
            ),
        );
        for name in ["tcp", "tls", "clock"] {
            r.skip(name, "server_url names no host");
        }
        credential(r, cfg, marker.as_ref(), None);
        return;
    };
    let addrs = dns(r, cfg, &host, port).await;
    let tcp_ok = match &addrs {
        Some(addrs) => tcp(r, &host, port, addrs).await,
        None => {
            r.skip("tcp", format!("{host} did not resolve"));
            None
        }
    };
    let tls_ok = match (tcp_ok, tls) {
        (Some(addr), Some(setup)) => tls_check(r, cfg, setup, &host, addr).await,
        (None, _) => {
            r.skip("tls", "no TCP connection to the platform");
            false
        }
        (Some(_), None) => {
            r.skip("tls", "the CA bundle is not usable");
            false
        }
    };
    let answer = match (tls_ok, tls) {
        (true, Some(setup)) => Some(whoami(cfg, setup).await),
        _ => None,
    };
    match &answer {
        Some(a) => clock(r, a),
        None => r.skip("clock", "no verified TLS connection to the platform"),
    }
    credential(r, cfg, marker.as_ref(), answer.as_ref());
}

/// `dns`: the platform's name resolves; its addresses.
async fn dns(r: &mut Report, cfg: &AgentConfig, host: &str, port: u16) -> Option<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        r.ok("dns", format!("{host} is an IP address: no lookup needed"));
        return Some(vec![SocketAddr::new(ip, port)]);
    }
    let remedy = format!(
        "check the host name in server_url ({}) and this machine's resolver (/etc/resolv.conf, resolvectl status): `getent hosts {host}` must print an address",
        cfg.path.display()
    );
    match tokio::time::timeout(STEP_TIMEOUT, tokio::net::lookup_host((host, port))).await {
        Err(_) => {
            r.fail(
                "dns",
                format!(
                    "no DNS answer for {host} within {} s",
                    STEP_TIMEOUT.as_secs()
                ),
                remedy,
            );
            None
        }
        Ok(Err(e)) => {
            r.fail("dns", format!("{host} does not resolve: {e}"), remedy);
            None
        }
        Ok(Ok(found)) => {
            let mut addrs: Vec<SocketAddr> = Vec::new();
            for a in found {
                if !addrs.contains(&a) {
                    addrs.push(a);
                }
            }
            if addrs.is_empty() {
                r.fail("dns", format!("{host} resolves to no address"), remedy);
                return None;
            }
            let list = addrs
                .iter()
                .map(|a| a.ip().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            r.ok("dns", format!("{host} resolves to {list}"));
            Some(addrs)
        }
    }
}

/// `tcp`: a connection to one of the addresses; refused and timed out told apart.
async fn tcp(r: &mut Report, host: &str, port: u16, addrs: &[SocketAddr]) -> Option<SocketAddr> {
    let mut refused = Vec::new();
    let mut timed_out = Vec::new();
    let mut other = Vec::new();
    for addr in addrs.iter().take(MAX_ADDRESSES) {
        let started = Instant::now();
        match tokio::time::timeout(STEP_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => {
                r.ok(
                    "tcp",
                    format!(
                        "connected to {addr} in {} ms",
                        started.elapsed().as_millis()
                    ),
                );
                return Some(*addr);
            }
            Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => refused.push(*addr),
            Ok(Err(e)) if e.kind() == ErrorKind::TimedOut => timed_out.push(*addr),
            Ok(Err(e)) => other.push(format!("{addr}: {e}")),
            Err(_) => timed_out.push(*addr),
        }
    }
    let list = |a: &[SocketAddr]| {
        a.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !refused.is_empty() {
        r.fail(
            "tcp",
            format!(
                "connection refused by {}: nothing listens on port {port} there (or a firewall rejects it)",
                list(&refused)
            ),
            format!("start the platform, or fix the port in server_url; on the platform's host, `ss -ltn` must show port {port} listening"),
        );
    } else if !timed_out.is_empty() {
        r.fail(
            "tcp",
            format!(
                "no answer from {} within {} s: the packets are dropped on the way or the host is down",
                list(&timed_out),
                STEP_TIMEOUT.as_secs()
            ),
            format!("allow outbound TCP from this machine to {host} port {port} in the firewalls on the way, and check that the platform's host is up"),
        );
    } else {
        r.fail(
            "tcp",
            format!("cannot connect: {}", other.join("; ")),
            "check this machine's network: `ip route get ADDRESS` must show a route to the platform".to_owned(),
        );
    }
    None
}

/// The names a certificate is for (its subject when it has none).
fn names_of(c: &CertInfo) -> String {
    let names = c.names();
    if names.is_empty() {
        c.subject.clone()
    } else {
        names.join(", ")
    }
}

/// One line about a certificate.
fn describe(c: &CertInfo) -> String {
    format!(
        "certificate for {}, issued by {}, valid until {}",
        names_of(c),
        c.issuer,
        date(c.not_after)
    )
}

/// `tls`: the handshake the agent makes, explained; on failure, the reason with the
/// certificate's issuer, expiry or names read from an inspection-only handshake.
async fn tls_check(
    r: &mut Report,
    cfg: &AgentConfig,
    setup: &TlsSetup,
    host: &str,
    addr: SocketAddr,
) -> bool {
    let timeout = STEP_TIMEOUT * 2;
    let failure = match inspect::verified_handshake(setup.config.clone(), addr, host, timeout).await
    {
        Ok(hs) => {
            let leaf = hs.chain.first().and_then(|c| cert_info(c).ok());
            let version = if hs.version == "TLSv1_3" {
                "TLS 1.3".to_owned()
            } else {
                hs.version.clone()
            };
            let Some(leaf) = leaf else {
                r.ok("tls", format!("{version} with {host}; verified"));
                return true;
            };
            let detail = format!(
                "{version} with {host}, verified: {}; chain of {} certificate{}",
                describe(&leaf),
                hs.chain.len(),
                if hs.chain.len() == 1 { "" } else { "s" }
            );
            let days_left = (leaf.not_after - Utc::now().timestamp()) / 86_400;
            if days_left < EXPIRY_WARN_DAYS {
                r.warn(
                    "tls",
                    format!("{detail}; it expires in {days_left} days"),
                    format!(
                        "renew the platform's certificate before {}",
                        date(leaf.not_after)
                    ),
                );
            } else {
                r.ok("tls", detail);
            }
            return true;
        }
        Err(f) => f,
    };
    // INSPECTION ONLY: read what the platform presents, to explain the failure.
    let presented = inspect::inspection_only_peer_chain(addr, host, timeout)
        .await
        .ok()
        .and_then(|chain| chain.first().and_then(|c| cert_info(c).ok()));
    let trust = match &setup.bundle {
        Some((path, cas)) => format!(
            "the CA bundle {} (it holds {})",
            path.display(),
            short_list(cas.iter().map(|c| c.subject.clone()))
        ),
        None => "the system trust store".to_owned(),
    };
    let cfg_path = cfg.path.display();
    let now = Utc::now();
    let (detail, remedy) = match (&failure, &presented) {
        (HandshakeFailure::UnknownIssuer(_), Some(c)) => (
            format!(
                "the platform's certificate (for {}, valid until {}) is issued by {}, which {trust} does not trust",
                names_of(c),
                date(c.not_after),
                c.issuer
            ),
            match &setup.bundle {
                Some(_) => format!(
                    "set ca_bundle in {cfg_path} to the certificate of the CA {} (for `patchctl server --dev`: the CA file it prints), or have the platform's certificate issued by a CA in the bundle",
                    c.issuer
                ),
                None => format!(
                    "install the certificate of the CA {} in /usr/local/share/ca-certificates and run update-ca-certificates, or set ca_bundle in {cfg_path} to it",
                    c.issuer
                ),
            },
        ),
        (HandshakeFailure::Expired(_), Some(c)) => (
            format!(
                "the platform's certificate (for {}, issued by {}) expired on {} ({} days ago; this machine's clock says {})",
                names_of(c),
                c.issuer,
                date(c.not_after),
                (now.timestamp() - c.not_after) / 86_400,
                utc(now)
            ),
            "renew the platform's certificate; if this machine's date above is wrong, enable time synchronisation: timedatectl set-ntp true".to_owned(),
        ),
        (HandshakeFailure::NotValidYet(_), Some(c)) => (
            format!(
                "the platform's {} is valid only from {}; this machine's clock says {}",
                describe(c),
                date(c.not_before),
                utc(now)
            ),
            "fix this machine's clock: timedatectl set-ntp true (or the platform's certificate was issued with a future start)".to_owned(),
        ),
        (HandshakeFailure::NotValidForName { presented: names, .. }, c) => {
            let names = match c {
                Some(c) if !c.names().is_empty() => c.names(),
                _ => names.clone(),
            };
            (
                format!(
                    "the platform's certificate is valid for {}, not for {host}",
                    if names.is_empty() {
                        "no host name at all".to_owned()
                    } else {
                        names.join(", ")
                    }
                ),
                format!(
                    "use one of those names in server_url ({cfg_path}), or reissue the platform's certificate with {host} among its subject alternative names"
                ),
            )
        }
        (HandshakeFailure::NotTls13(why), _) => (
            format!("{host}:{} does not offer TLS 1.3 ({why})", addr.port()),
            "enable TLS 1.3 on the platform or on the proxy in front of it: the agent speaks only TLS 1.3".to_owned(),
        ),
        (HandshakeFailure::NotTls(why), _) => (
            format!("what answers on {addr} does not speak TLS ({why})"),
            format!("check the port in server_url ({cfg_path}): it must be the platform's HTTPS port"),
        ),
        (f, _) => (
            format!("TLS handshake with {host} ({addr}) failed: {f}"),
            format!("check the platform's certificate and {trust}; `openssl s_client -connect {host}:{} -servername {host}` shows the server's side", addr.port()),
        ),
    };
    r.fail("tls", detail, remedy);
    false
}

/// The platform's answer to `whoami`, timed for the clock check.
pub struct Answer {
    /// The answer, or why there is none.
    pub result: Result<WhoAmI, ClientError>,
    /// The `Date` header of the answer.
    pub date: Option<String>,
    /// When the request was sent, local clock.
    pub sent_at: DateTime<Utc>,
    /// How long the exchange took.
    pub rtt: Duration,
    /// True when the stored credential was sent.
    pub with_credential: bool,
}

async fn whoami(cfg: &AgentConfig, setup: &TlsSetup) -> Answer {
    let identity = state::load_identity(cfg.dir())
        .ok()
        .flatten()
        .filter(|id| id.server_url == cfg.server_url);
    let bearer = identity.as_ref().map(|id| id.credential.expose());
    let sent_at = Utc::now();
    let started = Instant::now();
    let dated = match HttpsClient::new(&cfg.server_url, setup.config.clone()) {
        Ok(client) => {
            client
                .with_timeout(STEP_TIMEOUT * 2)
                .json_dated::<WhoAmI>(Method::GET, "/api/v1/agent/whoami", bearer)
                .await
        }
        Err(e) => patchctl_net::Dated {
            result: Err(e),
            date: None,
        },
    };
    Answer {
        result: dated.result,
        date: dated.date,
        sent_at,
        rtt: started.elapsed(),
        with_credential: bearer.is_some(),
    }
}

/// Local clock minus the platform's, in seconds, from an answer: `whoami`'s
/// `server_time`, else the `Date` header.
pub fn skew_secs(a: &Answer) -> Option<(f64, &'static str)> {
    let midpoint = a.sent_at + chrono::Duration::from_std(a.rtt / 2).unwrap_or_default();
    if let Ok(w) = &a.result {
        return Some((
            (midpoint - w.server_time).num_milliseconds() as f64 / 1000.0,
            "whoami",
        ));
    }
    let date = http_date(a.date.as_deref()?)?;
    // The header has whole seconds: half a second is the best estimate of the rest.
    let server = date + chrono::Duration::milliseconds(500);
    Some((
        (midpoint - server).num_milliseconds() as f64 / 1000.0,
        "the Date header",
    ))
}

/// Reads an HTTP `Date` header (IMF-fixdate, RFC 9110: `Sun, 06 Nov 1994 08:49:37
/// GMT`), the only form a current server sends.
pub fn http_date(s: &str) -> Option<DateTime<Utc>> {
    let f: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, clock, "GMT"] = f[..] else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
    let mut hms = clock.split(':').map(|x| x.parse::<u32>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    let d = chrono::NaiveDate::from_ymd_opt(year.parse().ok()?, month, day.parse().ok()?)?
        .and_hms_opt(h, m, sec)?;
    Some(d.and_utc())
}

/// The level of a clock difference.
pub fn skew_level(skew: f64) -> Level {
    if skew.abs() >= SKEW_FAIL_SECS {
        Level::Fail
    } else if skew.abs() >= SKEW_WARN_SECS {
        Level::Warn
    } else {
        Level::Ok
    }
}

/// `clock`: this machine's clock against the platform's.
fn clock(r: &mut Report, a: &Answer) {
    let Some((skew, source)) = skew_secs(a) else {
        let why = match &a.result {
            Err(e @ (ClientError::Connect(_) | ClientError::Timeout)) => {
                format!("the platform did not answer: {e}")
            }
            _ => "the platform's answer carried no time".into(),
        };
        r.warn(
            "clock",
            format!("not compared: {why}"),
            "check the time with timedatectl; keep time synchronisation on: timedatectl set-ntp true",
        );
        return;
    };
    let remedy = "enable time synchronisation (timedatectl set-ntp true, which starts systemd-timesyncd, or chrony), then check with timedatectl";
    let ahead = if skew >= 0.0 { "ahead of" } else { "behind" };
    let detail = format!(
        "this machine's clock is {:.1} s {ahead} the platform's (from {source})",
        skew.abs()
    );
    match skew_level(skew) {
        Level::Ok => r.ok("clock", detail),
        Level::Warn => r.warn("clock", detail, remedy),
        _ => r.fail(
            "clock",
            format!("{detail}: certificate and credential checks fail with this much"),
            remedy,
        ),
    }
}

/// The operator's way back after a revocation.
const REENROLL: &str = "if this host should come back: patchctl-agent reenroll, then systemctl restart patchctl (it enrolls with the license key as a new host)";

/// `credential`: accepted, waiting for approval, unknown or revoked.
fn credential(
    r: &mut Report,
    cfg: &AgentConfig,
    marker: Option<&RevokedMarker>,
    answer: Option<&Answer>,
) {
    if let Some(m) = marker {
        let confirmed = match answer.map(|a| &a.result) {
            Some(Err(e)) if e.code() == Some(ErrorCode::CredentialRevoked.as_str()) => {
                "; the platform confirms it"
            }
            _ => "",
        };
        r.fail(
            "credential",
            format!(
                "revoked: {} revoked this host{} on {} ({}); the agent stopped and does not contact the platform{confirmed}",
                if m.server_url.is_empty() { "the platform" } else { &m.server_url },
                m.host_id.map(|h| format!(" ({h})")).unwrap_or_default(),
                utc(m.revoked_at),
                m.message
            ),
            REENROLL,
        );
        return;
    }
    let Some(a) = answer else {
        r.skip("credential", "no verified TLS connection to the platform");
        return;
    };
    if !a.with_credential {
        let detail = match state::load_identity(cfg.dir()) {
            Err(e) => {
                r.fail(
                    "credential",
                    e.to_string(),
                    format!(
                        "fix or delete the credential file in {}; the agent then enrolls again",
                        cfg.dir().display()
                    ),
                );
                return;
            }
            Ok(Some(id)) => format!(
                "the stored credential is for {}, not {}: the agent enrolls anew at its next start",
                id.server_url, cfg.server_url
            ),
            Ok(None) => format!("not enrolled yet: no credential in {}", cfg.dir().display()),
        };
        r.warn(
            "credential",
            detail,
            "start the agent (systemctl start patchctl): it enrolls with the license key in the config",
        );
        return;
    }
    match &a.result {
        Ok(w) => match w.approval {
            Approval::Approved => r.ok(
                "credential",
                format!(
                    "accepted: host {} ({}), credential issued {}",
                    w.host_id,
                    w.hostname,
                    utc(w.credential_issued_at)
                ),
            ),
            Approval::Pending => r.warn(
                "credential",
                format!(
                    "pending approval: host {} ({}) waits for an operator; the agent asks again at every heartbeat and does nothing else",
                    w.host_id, w.hostname
                ),
                format!("an operator approves it on the platform: patchctl hosts approve {}", w.host_id),
            ),
            Approval::Rejected => r.fail(
                "credential",
                format!("rejected: an operator refused host {} ({})", w.host_id, w.hostname),
                REENROLL,
            ),
        },
        Err(e) => {
            let code = e.code();
            if code == Some(ErrorCode::CredentialRevoked.as_str()) {
                r.fail(
                    "credential",
                    format!("revoked: the platform refuses this host's credential ({e}); the agent stops at its next request"),
                    REENROLL,
                );
            } else if code == Some(ErrorCode::PendingApproval.as_str()) {
                r.warn(
                    "credential",
                    format!("pending approval: {e}"),
                    "an operator approves the host on the platform: patchctl hosts approve HOST",
                );
            } else if e.is_unauthorized() {
                r.fail(
                    "credential",
                    format!("unknown: the platform does not know this credential ({e})"),
                    "restart the agent (systemctl restart patchctl): it enrolls again with the license key in the config (put a valid enrollment key there first if that one was revoked)",
                );
            } else if e.status() == Some(404) {
                r.warn(
                    "credential",
                    "not checked: the platform does not answer GET /api/v1/agent/whoami (an older version)",
                    "upgrade the platform to check credentials from here; the agent's log shows whether its heartbeats are accepted",
                );
            } else {
                r.fail(
                    "credential",
                    format!("the platform did not say: {e}"),
                    "look at the platform's log for this request; try again",
                );
            }
        }
    }
}
