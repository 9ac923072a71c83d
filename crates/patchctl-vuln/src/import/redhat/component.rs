//! The RPM a CSAF product or an API entry names: from its purl
//! (`pkg:rpm/redhat/openssl@3.0.7-27.el9?arch=aarch64&epoch=1`, modular builds with
//! `rpmmod=ruby:2.7:…`), else from Red Hat's id (`openssl-1:3.0.7-27.el9.aarch64`, a
//! bare source name `libtiff`, the API's source NVR `openssh-0:8.7p1-38.el9_4.1`).

/// One RPM (or a bare package name, for statements without a version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Component {
    /// Package name (binary, or source for `.src` and bare names).
    pub name: String,
    /// `epoch:version-release`, the epoch always written (0 when the data has none).
    pub evr: Option<String>,
    /// The module stream of a module build (`ruby:2.7`).
    pub module: Option<String>,
}

/// Reads an rpm purl; `None` for another purl type (container images) or a malformed one.
pub(super) fn from_purl(purl: &str) -> Option<Component> {
    let rest = purl.strip_prefix("pkg:rpm/")?;
    let (path, qualifiers) = match rest.split_once('?') {
        Some((p, q)) => (p, q),
        None => (rest, ""),
    };
    let path = path.split('#').next().unwrap_or(path);
    let (path, version) = match path.split_once('@') {
        Some((p, v)) => (p, Some(decode(v)?)),
        None => (path, None),
    };
    let name = decode(path.rsplit('/').next()?)?;
    if !plausible_name(&name) {
        return None;
    }
    let mut epoch = "0".to_string();
    let mut module = None;
    for q in qualifiers.split('&') {
        let (k, v) = q.split_once('=').unwrap_or((q, ""));
        match k {
            "epoch" => epoch = decode(v)?,
            "rpmmod" => {
                let v = decode(v)?;
                let mut parts = v.split(':');
                if let (Some(n), Some(s)) = (parts.next(), parts.next()) {
                    module = Some(format!("{n}:{s}"));
                }
            }
            _ => {}
        }
    }
    if !epoch.bytes().all(|b| b.is_ascii_digit()) || epoch.is_empty() {
        return None;
    }
    Some(Component {
        name,
        evr: version.map(|v| format!("{epoch}:{v}")),
        module,
    })
}

/// Reads Red Hat's component id: `name-epoch:version-release.arch` (CSAF),
/// `name-epoch:version-release` (`with_arch` false: the API's source NVR), or a bare
/// name. `None` when it is none of these.
pub(super) fn from_id(id: &str, with_arch: bool) -> Option<Component> {
    let Some((left, right)) = id.split_once(':') else {
        return plausible_name(id).then(|| Component {
            name: id.to_string(),
            evr: None,
            module: None,
        });
    };
    let (name, epoch) = left.rsplit_once('-')?;
    if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()) || !plausible_name(name) {
        return None;
    }
    let vr = if with_arch {
        right.rsplit_once('.')?.0
    } else {
        right
    };
    let (version, release) = vr.rsplit_once('-')?;
    if version.is_empty() || release.is_empty() {
        return None;
    }
    Some(Component {
        name: name.to_string(),
        evr: Some(format!("{epoch}:{vr}")),
        module: None,
    })
}

/// An RPM package name: non-empty, no white space, `/` or `:`.
fn plausible_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/' || c == ':' || c == '@')
}

/// Percent-decoding (`%2B` → `+`); `None` for a bad escape or non-UTF-8 result.
fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, evr: Option<&str>, module: Option<&str>) -> Option<Component> {
        Some(Component {
            name: name.into(),
            evr: evr.map(str::to_string),
            module: module.map(str::to_string),
        })
    }

    #[test]
    fn purls() {
        assert_eq!(
            from_purl("pkg:rpm/redhat/openssl@3.0.7-27.el9?arch=aarch64&epoch=1"),
            c("openssl", Some("1:3.0.7-27.el9"), None)
        );
        assert_eq!(
            from_purl("pkg:rpm/redhat/libtiff@4.4.0-12.el9?arch=src"),
            c("libtiff", Some("0:4.4.0-12.el9"), None)
        );
        assert_eq!(
            from_purl("pkg:rpm/redhat/libtiff?arch=src"),
            c("libtiff", None, None)
        );
        assert_eq!(
            from_purl(
                "pkg:rpm/redhat/ruby@2.7.8-139.module%2Bel8.8.0%2B18745%2Bf1bef313?arch=aarch64&rpmmod=ruby:2.7:8080020230427102918:63b34585"
            ),
            c(
                "ruby",
                Some("0:2.7.8-139.module+el8.8.0+18745+f1bef313"),
                Some("ruby:2.7")
            )
        );
        assert_eq!(from_purl("pkg:oci/ubi9@sha256%3Aabc"), None);
        assert_eq!(from_purl("pkg:rpm/redhat/x@1%zz"), None);
    }

    #[test]
    fn ids() {
        assert_eq!(
            from_id("libtiff-tools-0:4.4.0-12.el9.aarch64", true),
            c("libtiff-tools", Some("0:4.4.0-12.el9"), None)
        );
        assert_eq!(
            from_id("bind-32:9.8.2-0.68.rc1.el6_10.17.src", true),
            c("bind", Some("32:9.8.2-0.68.rc1.el6_10.17"), None)
        );
        assert_eq!(
            from_id("openssh-0:8.7p1-38.el9_4.1", false),
            c("openssh", Some("0:8.7p1-38.el9_4.1"), None)
        );
        assert_eq!(from_id("libtiff", true), c("libtiff", None, None));
        assert_eq!(from_id("ruby:2.7/ruby", true), None);
        assert_eq!(from_id("a b", true), None);
    }
}
