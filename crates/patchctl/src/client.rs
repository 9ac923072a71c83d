//! The operator API client: how to reach the platform ([`Conn`], the global flags of
//! the API commands) and the authenticated JSON calls ([`Api`]).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use http::Method;
use patchctl_net::HttpsClient;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::output::Format;

/// How to reach the platform.
#[derive(Args, Clone, Debug)]
pub struct Conn {
    /// Platform URL (https://HOST:PORT).
    #[arg(long, env = "PATCHCTL_SERVER", global = true)]
    pub server: Option<String>,
    /// Operator API token.
    #[arg(long, env = "PATCHCTL_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// CA bundle to trust instead of the system roots (the dev CA in --dev mode).
    #[arg(long, env = "PATCHCTL_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table, global = true)]
    pub output: Format,
}

/// An authenticated client of the operator API (`/api/v1/...`).
pub struct Api {
    client: HttpsClient,
    token: String,
}

impl Api {
    /// A client for the platform and token `conn` names.
    pub fn new(conn: &Conn) -> anyhow::Result<Api> {
        let server = conn
            .server
            .as_deref()
            .context("no platform given: pass --server https://HOST:PORT or set PATCHCTL_SERVER")?;
        let token = conn
            .token
            .clone()
            .context("no API token given: pass --token or set PATCHCTL_TOKEN")?;
        let tls = patchctl_net::client_config(conn.ca_file.as_deref())?;
        Ok(Api {
            client: HttpsClient::new(server, tls)?,
            token,
        })
    }

    /// This client with another per-request timeout (default 30 s), for a request
    /// that carries much (`release publish`).
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Api {
        self.client = self.client.with_timeout(timeout);
        self
    }

    /// Sends `body` (if any) with `method` to `path` and decodes the answer.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Req>,
    ) -> anyhow::Result<Resp> {
        Ok(self
            .client
            .json(method, path, Some(&self.token), body)
            .await?)
    }

    /// `GET path`.
    pub async fn get<Resp: DeserializeOwned>(&self, path: &str) -> anyhow::Result<Resp> {
        self.call::<(), Resp>(Method::GET, path, None).await
    }

    /// `GET path` of one page of a paged list: the page and the cursor of the next one
    /// (`X-Next-Cursor`), `None` on the last page.
    pub async fn get_page<Resp: DeserializeOwned>(
        &self,
        path: &str,
    ) -> anyhow::Result<(Resp, Option<String>)> {
        Ok(self.client.json_page(path, Some(&self.token)).await?)
    }

    /// `GET path` of a paged list, every page: follows `X-Next-Cursor` until the last
    /// page, and returns each page's answer in order.
    pub async fn get_pages<Resp: DeserializeOwned>(&self, path: &str) -> anyhow::Result<Vec<Resp>> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let at = match &cursor {
                None => path.to_owned(),
                Some(c) => format!("{path}{sep}cursor={}", enc(c)),
            };
            let (page, next) = self.client.json_page(&at, Some(&self.token)).await?;
            pages.push(page);
            match next {
                // A platform that repeats a cursor would loop for ever.
                Some(n) if cursor.as_deref() != Some(n.as_str()) => cursor = Some(n),
                _ => return Ok(pages),
            }
        }
    }

    /// `GET path` of a paged list whose answer is an array: every item of every page.
    pub async fn get_all<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<Vec<T>> {
        Ok(self
            .get_pages::<Vec<T>>(path)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    /// `POST path` without a body.
    pub async fn post<Resp: DeserializeOwned>(&self, path: &str) -> anyhow::Result<Resp> {
        self.call::<(), Resp>(Method::POST, path, None).await
    }
}

/// `s` percent-encoded for a path segment or a query value (unreserved characters
/// kept).
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parses `30d`, `12h`, `90m`, `45s`, `2w` or a sum of them (`1h30m`) into seconds;
/// at least one second.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let secs = parse_secs(s)?;
    if secs == 0 {
        return Err(format!(
            "{s:?} is no time at all; give a positive duration such as 30d"
        ));
    }
    Ok(secs)
}

fn parse_secs(s: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "{s:?} is not a duration; use a number and a unit (s, m, h, d, w), such as 30d, 12h, 90m or 1h30m"
        )
    };
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(|| format!("{s:?} is too long"))?;
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    #[test]
    fn enc_keeps_unreserved_and_escapes_the_rest() {
        assert_eq!(super::enc("web-1.example_org~"), "web-1.example_org~");
        assert_eq!(super::enc("a b/c?d&é"), "a%20b%2Fc%3Fd%26%C3%A9");
    }
}
