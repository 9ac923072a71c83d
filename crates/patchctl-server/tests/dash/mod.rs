//! The dashboard driven in-process, through the platform's real router (sessions,
//! CSRF tokens, role checks, audit): what the `ui_*` tests share. Each test builds its
//! own `AppState` and world; this module only speaks HTTP to it.

// Each test binary uses a different part of it.
#![allow(dead_code)]

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use patchctl_server::{AppState, app};
use tower::ServiceExt;

/// A logged-in user: the session cookie and the CSRF token of its forms.
pub struct User {
    pub cookie: String,
    pub csrf: String,
}

/// One answer of the dashboard.
pub struct Answer {
    pub status: StatusCode,
    pub location: Option<String>,
    pub cookies: Vec<String>,
    pub body: String,
}

/// A form body.
pub fn form(fields: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(fields).unwrap()
}

/// The value of the first hidden input `name` of a page.
pub fn hidden(body: &str, name: &str) -> Option<String> {
    let at = body.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &body[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// Sends one request (a form when `body` is given) from a loopback peer.
pub async fn send(
    st: &AppState,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    body: Option<String>,
) -> Answer {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let mut req = req.body(Body::from(body.unwrap_or_default())).unwrap();
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    let resp = app(st.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    let cookies = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        location,
        cookies,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Logs `username` in with `password`; the CSRF token is read from the first of
/// `pages` the user may open (an auditor opens only the audit log).
pub async fn login(st: &AppState, username: &str, password: &str, pages: &[&str]) -> User {
    let a = send(
        st,
        "POST",
        "/ui/login",
        None,
        Some(form(&[
            ("username", username),
            ("password", password),
            ("next", "/ui/"),
        ])),
    )
    .await;
    assert!(
        a.status.is_redirection(),
        "login of {username}: {} {}",
        a.status,
        a.body
    );
    let cookie = a
        .cookies
        .iter()
        .find(|c| c.starts_with("__Host-patchctl_session="))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    for path in pages {
        let page = send(st, "GET", path, Some(&cookie), None).await;
        if page.status == StatusCode::OK {
            let csrf = hidden(&page.body, "csrf").expect("the logout form's CSRF token");
            return User { cookie, csrf };
        }
    }
    panic!("{username} may open none of {pages:?}");
}

/// A page the user may open (200), its body.
pub async fn page(st: &AppState, cookie: &str, path: &str) -> String {
    let a = send(st, "GET", path, Some(cookie), None).await;
    assert_eq!(a.status, StatusCode::OK, "GET {path}: {}", a.body);
    a.body
}

/// Posts a form with the user's CSRF token first.
pub async fn post(st: &AppState, u: &User, path: &str, fields: &[(&str, &str)]) -> Answer {
    let mut f: Vec<(&str, &str)> = vec![("csrf", u.csrf.as_str())];
    f.extend_from_slice(fields);
    send(st, "POST", path, Some(&u.cookie), Some(form(&f))).await
}
