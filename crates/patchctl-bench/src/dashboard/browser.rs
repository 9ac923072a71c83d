//! A minimal browser for the benchmark: HTTPS through hyper and rustls (ALPN h2 or
//! HTTP/1.1, one pooled connection), the cookies the platform sets kept and sent back,
//! form posts, and the hidden fields of a page read back (the CSRF token).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// An answer: status, headers, body.
pub struct Page {
    /// Status.
    pub status: StatusCode,
    /// Body (HTML).
    pub body: String,
}

impl Page {
    /// The value of the first `<input ... name="NAME" ... value="V">` of the page.
    pub fn hidden(&self, name: &str) -> Option<String> {
        let needle = format!("name=\"{name}\"");
        let at = self.body.find(&needle)?;
        let start = self.body[..at].rfind('<')?;
        let end = at + self.body[at..].find('>')?;
        let tag = &self.body[start..end];
        let v = tag.find("value=\"")? + "value=\"".len();
        let len = tag[v..].find('"')?;
        Some(tag[v..v + len].to_owned())
    }
}

/// The benchmark's browser.
pub struct Browser {
    base: String,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    cookies: BTreeMap<String, String>,
    timeout: Duration,
}

impl Browser {
    /// A browser for `base` (`https://127.0.0.1:PORT`) trusting `ca`.
    pub fn new(base: &str, ca: &Path, timeout: Duration) -> anyhow::Result<Browser> {
        let mut tls = (*patchctl_net::client_config(Some(ca))?).clone();
        tls.alpn_protocols.clear();
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        Ok(Browser {
            base: base.trim_end_matches('/').to_owned(),
            client: Client::builder(TokioExecutor::new()).build(connector),
            cookies: BTreeMap::new(),
            timeout,
        })
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, headers: &HeaderMap) {
        for v in headers.get_all(http::header::SET_COOKIE) {
            let Ok(v) = v.to_str() else { continue };
            let pair = v.split(';').next().unwrap_or("");
            if let Some((k, val)) = pair.split_once('=') {
                if val.is_empty() || v.to_ascii_lowercase().contains("max-age=0") {
                    self.cookies.remove(k.trim());
                } else {
                    self.cookies
                        .insert(k.trim().to_owned(), val.trim().to_owned());
                }
            }
        }
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        form: Option<String>,
    ) -> anyhow::Result<Page> {
        let mut req = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base))
            .header("accept", "text/html");
        if !self.cookies.is_empty() {
            req = req.header("cookie", self.cookie_header());
        }
        let body = match form {
            Some(f) => {
                req = req
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("origin", self.base.clone());
                Full::new(Bytes::from(f))
            }
            None => Full::new(Bytes::new()),
        };
        let req = req.body(body)?;
        let fut = async {
            let resp = self.client.request(req).await?;
            let (parts, body) = resp.into_parts();
            let bytes = body.collect().await?.to_bytes();
            Ok::<_, anyhow::Error>((parts, bytes))
        };
        let (parts, bytes) = tokio::time::timeout(self.timeout, fut)
            .await
            .with_context(|| format!("{method} {path}: no answer within {:?}", self.timeout))?
            .with_context(|| format!("{method} {path}"))?;
        self.keep_cookies(&parts.headers);
        Ok(Page {
            status: parts.status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    /// GETs `path`.
    pub async fn get(&mut self, path: &str) -> anyhow::Result<Page> {
        self.send(Method::GET, path, None).await
    }

    /// POSTs the form `fields` to `path` (with the page's `Origin`).
    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> anyhow::Result<Page> {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.send(Method::POST, path, Some(body)).await
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_fields_and_encoding() {
        let p = Page {
            status: StatusCode::OK,
            body: r#"<form><input type="hidden" name="csrf" value="ab12"><input name="x"></form>"#
                .into(),
        };
        assert_eq!(p.hidden("csrf").as_deref(), Some("ab12"));
        assert_eq!(p.hidden("x"), None);
        assert_eq!(p.hidden("nope"), None);
        assert_eq!(encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }
}
