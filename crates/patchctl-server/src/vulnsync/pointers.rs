//! The sync pointers: the small files that say where a feed's records are, parsed here
//! (they are not records): Red Hat's `archive_latest.txt` and `changes.csv`, a
//! repository's `repomd.xml` and Amazon's `mirror.list`, and the URL arithmetic between
//! them.
//!
//! Every parser takes any bytes (they come from the network) and returns a value or a
//! [`PointerError`]; none panics, and none allocates more than its input.

use chrono::{DateTime, Utc};

/// Why a pointer file could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointerError {
    /// `archive_latest.txt` does not name a `.tar.zst` archive file.
    #[error(
        "archive_latest.txt does not name an archive file (expected csaf_vex_YYYY-MM-DD.tar.zst)"
    )]
    BadArchiveName,
    /// `mirror.list` has no https:// line.
    #[error("mirror.list names no https:// mirror")]
    NoMirror,
    /// `repomd.xml` has no `updateinfo` data with a location.
    #[error("repomd.xml lists no updateinfo data; the repository publishes no security advisories")]
    NoUpdateinfo,
    /// A location or path points outside the feed's directory, or is not a plain path.
    #[error("{0:?} is not a relative path below the feed's directory")]
    BadPath(String),
    /// Text that must be UTF-8 is not.
    #[error("the file is not UTF-8 text")]
    NotText,
}

/// The archive `archive_latest.txt` names (`csaf_vex_2024-08-04.tar.zst`): a plain file
/// name ending in `.tar.zst`, without any directory.
pub fn archive_latest(bytes: &[u8]) -> Result<String, PointerError> {
    let text = std::str::from_utf8(bytes).map_err(|_| PointerError::NotText)?;
    let name = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or(PointerError::BadArchiveName)?;
    let plain = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !plain || name.starts_with('.') || !name.ends_with(".tar.zst") || name.len() > 200 {
        return Err(PointerError::BadArchiveName);
    }
    Ok(name.to_owned())
}

/// The day an archive name carries (`csaf_vex_2024-08-04.tar.zst` → 2024-08-04 00:00
/// UTC), if any.
pub fn archive_date(name: &str) -> Option<DateTime<Utc>> {
    let stem = name.strip_suffix(".tar.zst")?;
    let day = stem.get(stem.len().checked_sub(10)?..)?;
    let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc())
}

/// One line of `changes.csv` or `deletions.csv`: a document's path below the feed's
/// directory and when it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `2023/cve-2023-6240.json`: checked by [`relative_path`].
    pub path: String,
    /// When the document changed.
    pub at: DateTime<Utc>,
}

/// The lines of a `changes.csv` (`"2023/cve-2023-6240.json","2024-08-04T10:17:22+00:00"`)
/// and how many lines were skipped as malformed (not two fields, a path that is not a
/// plain relative path, a time that is not RFC 3339).
pub fn changes_csv(bytes: &[u8]) -> Result<(Vec<Change>, usize), PointerError> {
    let text = std::str::from_utf8(bytes).map_err(|_| PointerError::NotText)?;
    let mut out = Vec::new();
    let mut skipped = 0;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let parsed = line.split_once(',').and_then(|(path, at)| {
            let path = unquote(path)?;
            let at = DateTime::parse_from_rfc3339(unquote(at)?).ok()?;
            relative_path(path).ok()?;
            Some(Change {
                path: path.to_owned(),
                at: at.with_timezone(&Utc),
            })
        });
        match parsed {
            Some(c) => out.push(c),
            None => skipped += 1,
        }
    }
    Ok((out, skipped))
}

/// A CSV field: `"text"` (no quote inside) or bare text without quotes.
fn unquote(field: &str) -> Option<&str> {
    let field = field.trim();
    let inner = match field.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"')?,
        None => field,
    };
    (!inner.contains('"')).then_some(inner)
}

/// Checks that `path` is a plain relative path (`2023/cve-2023-6240.json`): segments of
/// letters, digits, `-`, `_`, `.`, none empty, `.` or `..`.
pub fn relative_path(path: &str) -> Result<&str, PointerError> {
    let bad = || PointerError::BadPath(path.chars().take(200).collect());
    if path.is_empty() || path.len() > 512 {
        return Err(bad());
    }
    for segment in path.split('/') {
        let plain = segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !plain || segment.is_empty() || segment == "." || segment == ".." {
            return Err(bad());
        }
    }
    Ok(path)
}

/// The base URL `mirror.list` names: its first non-blank line that is an `https://`
/// URL with a host, without a trailing `/`.
pub fn mirror_list(bytes: &[u8]) -> Result<String, PointerError> {
    let text = std::str::from_utf8(bytes).map_err(|_| PointerError::NotText)?;
    let has_host = |l: &str| {
        l.strip_prefix("https://")
            .is_some_and(|rest| !rest.split('/').next().unwrap_or("").is_empty())
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .find(|l| has_host(l) && !l.chars().any(char::is_whitespace))
        .map(|l| l.trim_end_matches('/').to_owned())
        .ok_or(PointerError::NoMirror)
}

/// The `location href` of the `updateinfo` data of a `repomd.xml`, entities decoded:
/// relative to the repository's base (`repodata/…-updateinfo.xml.zst`).
pub fn repomd_updateinfo(bytes: &[u8]) -> Result<String, PointerError> {
    let text = std::str::from_utf8(bytes).map_err(|_| PointerError::NotText)?;
    let mut in_updateinfo = false;
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else { break };
        let tag = &after[..close];
        rest = &after[close + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        if let Some(end) = tag.strip_prefix('/') {
            if local_name(end.trim()) == "data" {
                in_updateinfo = false;
            }
            continue;
        }
        let name_end = tag
            .find(|c: char| c.is_whitespace() || c == '/')
            .unwrap_or(tag.len());
        let name = local_name(&tag[..name_end]);
        let attrs = &tag[name_end..];
        match name {
            "data" => {
                in_updateinfo = attribute(attrs, "type").as_deref() == Some("updateinfo")
                    && !attrs.trim_end().ends_with('/');
            }
            "location" if in_updateinfo => {
                return attribute(attrs, "href").ok_or(PointerError::NoUpdateinfo);
            }
            _ => {}
        }
    }
    Err(PointerError::NoUpdateinfo)
}

/// `repo:data` → `data`.
fn local_name(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// The value of attribute `name` in a tag's attribute text, entities decoded.
fn attribute(attrs: &str, name: &str) -> Option<String> {
    let mut rest = attrs;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
        let eq = rest.find('=')?;
        let key = rest[..eq].trim();
        let value = rest[eq + 1..].trim_start();
        let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let body = &value[1..];
        let end = body.find(quote)?;
        if local_name(key) == name {
            return Some(decode_entities(&body[..end]));
        }
        rest = &body[end + 1..];
    }
}

/// The five predefined XML entities (others are left as written).
fn decode_entities(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// `url` without its last path segment, ending in `/`
/// (`https://h/a/repodata/repomd.xml` → `https://h/a/repodata/`). Query and fragment
/// are dropped.
pub fn directory_of(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    let path_start = url.find("://").map_or(0, |i| i + 3);
    match url[path_start..].rfind('/') {
        Some(i) => url[..path_start + i + 1].to_owned(),
        None => format!("{url}/"),
    }
}

/// The repository base of a `repomd.xml` URL: the directory above `repodata/`
/// (`https://h/f/43/x86_64/repodata/repomd.xml` → `https://h/f/43/x86_64/`).
pub fn repository_base(repomd_url: &str) -> String {
    let dir = directory_of(repomd_url);
    match dir.strip_suffix("repodata/") {
        Some(base) => base.to_owned(),
        None => dir,
    }
}

/// `href` (a relative path checked by [`relative_path`]) below `dir` (ending in `/`).
pub fn join(dir: &str, href: &str) -> Result<String, PointerError> {
    let href = relative_path(href)?;
    if dir.ends_with('/') {
        Ok(format!("{dir}{href}"))
    } else {
        Ok(format!("{dir}/{href}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names() {
        assert_eq!(
            archive_latest(b"csaf_vex_2024-08-04.tar.zst").unwrap(),
            "csaf_vex_2024-08-04.tar.zst"
        );
        assert_eq!(
            archive_latest(b"\n csaf_vex_2024-08-04.tar.zst \n").unwrap(),
            "csaf_vex_2024-08-04.tar.zst"
        );
        for bad in [&b""[..], b"../x.tar.zst", b"a/b.tar.zst", b"x.zip", b"\xff"] {
            assert!(archive_latest(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            archive_date("csaf_vex_2024-08-04.tar.zst")
                .unwrap()
                .to_rfc3339(),
            "2024-08-04T00:00:00+00:00"
        );
        assert_eq!(archive_date("x.tar.zst"), None);
    }

    #[test]
    fn changes_lines() {
        let (c, skipped) = changes_csv(
            b"\"2023/cve-2023-6240.json\",\"2024-08-04T10:17:22+00:00\"\n\
              \"../etc/passwd\",\"2024-08-04T10:17:22+00:00\"\n\
              2021/cve-2021-47343.json,2024-07-29T18:39:58Z\n\
              garbage\n",
        )
        .unwrap();
        assert_eq!(skipped, 2);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].path, "2023/cve-2023-6240.json");
        assert_eq!(c[1].at.to_rfc3339(), "2024-07-29T18:39:58+00:00");
    }

    #[test]
    fn repomd_and_mirrors() {
        let xml = br#"<?xml version="1.0"?><repomd xmlns="x"><data type="primary"><location href="repodata/primary.xml.gz"/></data>
            <data type='updateinfo'><checksum type="sha256">ab</checksum><location xml:base="" href="repodata/u&amp;i.xml.gz"/></data></repomd>"#;
        assert_eq!(repomd_updateinfo(xml).unwrap(), "repodata/u&i.xml.gz");
        assert_eq!(
            repomd_updateinfo(
                br#"<repomd><data type="primary"><location href="p"/></data></repomd>"#
            ),
            Err(PointerError::NoUpdateinfo)
        );
        assert_eq!(
            mirror_list(b"\nhttps://cdn.example/2/core/2.0/x86_64/abc/\nhttps://other\n").unwrap(),
            "https://cdn.example/2/core/2.0/x86_64/abc"
        );
        assert_eq!(mirror_list(b"http://plain\n"), Err(PointerError::NoMirror));
        // a URL without a host is no mirror (found by the fuzz target feed_pointers:
        // "https://" gave the base "https:")
        assert_eq!(mirror_list(b"https://"), Err(PointerError::NoMirror));
        assert_eq!(mirror_list(b"https:///x\n"), Err(PointerError::NoMirror));
        assert_eq!(
            mirror_list(b"https://\nhttps://h/x//").unwrap(),
            "https://h/x"
        );
        assert_eq!(
            repository_base("https://h/f/43/x86_64/repodata/repomd.xml"),
            "https://h/f/43/x86_64/"
        );
        assert_eq!(
            join("https://h/base/", "repodata/u.xml.gz").unwrap(),
            "https://h/base/repodata/u.xml.gz"
        );
        assert!(join("https://h/", "/etc/passwd").is_err());
        assert!(join("https://h/", "a/../../b").is_err());
        assert!(join("https://h/", "https://evil/x").is_err());
    }

    proptest::proptest! {
        #[test]
        fn no_parser_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = archive_latest(&bytes);
            let _ = changes_csv(&bytes);
            let _ = mirror_list(&bytes);
            let _ = repomd_updateinfo(&bytes);
            if let Ok(s) = std::str::from_utf8(&bytes) {
                let _ = archive_date(s);
                let _ = directory_of(s);
                let _ = repository_base(s);
                if let Ok(p) = relative_path(s) {
                    proptest::prop_assert!(!p.split('/').any(|seg| seg == ".."));
                }
            }
        }

        #[test]
        fn repomd_finds_any_plain_href(href in "[a-z0-9_-]{1,20}(/[a-z0-9_.-]{1,20}){0,3}") {
            let xml = format!(
                "<repomd><data type=\"other\"><location href=\"x\"/></data>\
                 <data type=\"updateinfo\"><location href=\"{href}\"/></data></repomd>"
            );
            proptest::prop_assert_eq!(repomd_updateinfo(xml.as_bytes()).unwrap(), href);
        }
    }
}
