//! Unit tests of the downloader's private helpers.

use super::*;
use proptest::prelude::*;

fn bad_reason(url: &str) -> (String, String) {
    match Target::parse(url) {
        Err(DownloadError::BadUrl { url, reason }) => (url, reason),
        Err(other) => panic!("expected BadUrl for {url:?}, got {other:?}"),
        Ok(t) => panic!("expected BadUrl for {url:?}, got {}", t.uri),
    }
}

#[test]
fn targets() {
    let t = Target::parse(" https://Feeds.Example:8443/a/b.json?sig=abc#frag ").unwrap();
    assert_eq!(t.uri, "https://Feeds.Example:8443/a/b.json?sig=abc");
    assert_eq!(t.shown, "https://Feeds.Example:8443/a/b.json");
    assert_eq!(t.origin, "feeds.example:8443");
    assert!(t.basic_auth.is_none());

    let t = Target::parse("HTTPS://user:p%40ss@[::1]:443").unwrap();
    assert_eq!(t.uri, "https://[::1]:443/");
    assert_eq!(t.shown, "https://[::1]:443/");
    let auth = t.basic_auth.unwrap();
    assert!(auth.is_sensitive());
    assert_eq!(auth, "Basic dXNlcjpwQHNz"); // user:p@ss

    let (url, reason) = bad_reason("http://feeds.example/x?token=1");
    assert_eq!(url, "http://feeds.example/x");
    assert!(
        reason.contains("only https:// URLs are accepted"),
        "{reason}"
    );
    assert!(reason.contains("plain http://"), "{reason}");
    for url in [
        "ftp://feeds.example/x",
        "feeds.example/x",
        "",
        "/etc/passwd",
    ] {
        let (_, reason) = bad_reason(url);
        assert!(reason.contains("only https:// URLs"), "{url}: {reason}");
    }
    assert!(bad_reason("https://").1.contains("not a valid"));
    assert!(bad_reason("https://a b/").1.contains("not a valid"));
    let (url, _) = bad_reason("http://user:hunter2@feeds.example/a?b");
    assert_eq!(url, "http://feeds.example/a");
    let (url, _) = bad_reason("https://user:hunter2@feeds example/");
    assert_eq!(url, "(URL not shown: it may contain credentials)");
}

#[test]
fn redirect_targets() {
    let base = Target::parse("https://u:pw@a.example/dir/file.json?x=1").unwrap();
    let follow = |loc: &str| base.follow(loc).unwrap();
    assert_eq!(follow("/other").uri, "https://a.example/other");
    assert_eq!(
        follow("next.json?y").uri,
        "https://a.example/dir/next.json?y"
    );
    assert_eq!(
        follow("?page=2").uri,
        "https://a.example/dir/file.json?page=2"
    );
    assert_eq!(follow("../up/./x").uri, "https://a.example/up/x");
    assert_eq!(follow("/a/b/../../../c/.").uri, "https://a.example/c/");
    assert_eq!(follow("").uri, "https://a.example/dir/file.json");
    assert_eq!(follow("//b.example/z").uri, "https://b.example/z");
    assert_eq!(follow("HTTPS://A.example/z").uri, "https://A.example/z");
    // Credentials stay with their origin.
    assert!(follow("/other").basic_auth.is_some());
    assert!(follow("https://A.EXAMPLE/z").basic_auth.is_some());
    assert!(follow("https://b.example/z").basic_auth.is_none());
    assert!(follow("https://a.example:444/z").basic_auth.is_none());
    match base.follow("http://a.example/z?t=1") {
        Err(DownloadError::BadUrl { url, reason }) => {
            assert_eq!(url, "http://a.example/z");
            assert!(reason.starts_with("https://a.example/dir/file.json redirected there"));
            assert!(reason.contains("only https://"), "{reason}");
        }
        other => panic!("{:?}", other.map(|t| t.shown)),
    }
}

#[test]
fn encodings() {
    for (input, expected) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(input.as_bytes()), expected, "{input}");
    }
    assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
    assert_eq!(percent_decode("a%20b%2Fc%zz%4"), b"a b/c%zz%4");
    assert_eq!(percent_decode("%C3%A9"), "é".as_bytes());
}

#[test]
fn status_messages() {
    let e = DownloadError::Status {
        url: "https://h/x".into(),
        status: 404,
    };
    assert_eq!(
        e.to_string(),
        "https://h/x answered HTTP 404 Not Found; check the feed URL in the configuration"
    );
    let e = DownloadError::Status {
        url: "https://h/x".into(),
        status: 599,
    };
    assert!(e.to_string().contains("HTTP 599; the server has a problem"));
}

#[test]
fn conditional_headers_skip_unsendable_values() {
    let known = Validators {
        etag: Some("\"v1\"".into()),
        last_modified: Some("bad\nvalue".into()),
    };
    let headers = conditional_headers(&known);
    assert_eq!(headers.len(), 1);
    assert_eq!(headers[0].0, IF_NONE_MATCH);
    assert_eq!(headers[0].1, "\"v1\"");
    assert!(conditional_headers(&Validators::default()).is_empty());
    assert!(Validators::default().is_empty());
}

proptest! {
    #[test]
    fn parsing_and_redirects_never_panic(url in any::<String>(), location in any::<String>()) {
        if let Ok(t) = Target::parse(&url) {
            let _ = t.follow(&location);
        }
        let _ = percent_decode(&url);
        let _ = shown_raw(&url);
    }

    #[test]
    fn url_shaped_input_never_panics(
        url in "(https?|HTTP|ftp)?(://)?([a-z:%@]{0,12}@)?[a-z0-9.\\[\\]:]{0,20}(/[ -~]{0,20})?"
    ) {
        if let Ok(t) = Target::parse(&url) {
            let _ = t.follow(&url);
        }
    }

    #[test]
    fn passwords_never_shown(
        scheme in "(https|http|HTTPS|ftp)",
        user in "[a-z]{1,8}",
        host in "[a-z]{1,10}(\\.[a-z]{2,5})?(:[0-9]{1,5})?",
        path in "(/[a-z0-9._-]{0,12}){0,3}",
        location in "[ -~]{0,30}",
    ) {
        let password = "PW-SECRET-7f3a";
        let url = format!("{scheme}://{user}:{password}@{host}{path}?token={password}");
        let mut shown = Vec::new();
        match Target::parse(&url) {
            Ok(t) => {
                shown.push(t.shown.clone());
                match t.follow(&location) {
                    Ok(next) => shown.push(next.shown),
                    Err(e) => shown.push(format!("{e} {e:?}")),
                }
            }
            Err(e) => shown.push(format!("{e} {e:?}")),
        }
        for s in shown {
            prop_assert!(!s.contains(password), "{}", s);
        }
    }

    #[test]
    fn base64_has_the_right_length(input in proptest::collection::vec(any::<u8>(), 0..64)) {
        let encoded = base64(&input);
        prop_assert_eq!(encoded.len(), input.len().div_ceil(3) * 4);
        prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)));
    }
}
