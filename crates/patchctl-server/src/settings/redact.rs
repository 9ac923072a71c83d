//! The redaction of secrets in URLs, for `Debug` of the settings and for log lines.

/// Query parameters whose values are secrets (compared without case).
const SECRET_PARAMS: [&str; 10] = [
    "password",
    "passwd",
    "pwd",
    "sslpassword",
    "token",
    "access_token",
    "secret",
    "api_key",
    "apikey",
    "signature",
];

/// `url` with the password of its user information and the values of secret query
/// parameters replaced by `***`: `postgres://app:***@db/patchctl?sslmode=require`. What
/// is not a URL is returned as it is, with any `password=VALUE` word redacted.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        // Not a URL (a libpq-style "host=... password=..." string, say).
        return redact_params(url, ' ');
    };
    let (scheme, rest) = url.split_at(scheme_end + 3);
    let (before_query, query) = match rest.find(['?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    // The user information ends at the last '@' before the query: a password holding an
    // unescaped '@' or '/' is still hidden whole.
    let mut out = String::with_capacity(url.len());
    out.push_str(scheme);
    match before_query.rfind('@') {
        Some(at) => {
            let (userinfo, host) = before_query.split_at(at);
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..=colon]);
                    out.push_str("***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(host);
        }
        None => out.push_str(before_query),
    }
    match query.strip_prefix('?') {
        Some(q) => {
            let (params, fragment) = match q.find('#') {
                Some(i) => q.split_at(i),
                None => (q, ""),
            };
            out.push('?');
            out.push_str(&redact_params(params, '&'));
            out.push_str(fragment);
        }
        None => out.push_str(query),
    }
    out
}

/// `key=value` pairs separated by `sep`, with the values of [`SECRET_PARAMS`] as `***`.
fn redact_params(params: &str, sep: char) -> String {
    params
        .split(sep)
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if SECRET_PARAMS.iter().any(|s| s.eq_ignore_ascii_case(k)) => {
                format!("{k}=***")
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(&sep.to_string())
}
