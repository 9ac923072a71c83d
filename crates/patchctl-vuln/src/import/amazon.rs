//! Amazon Linux Security Advisories (ALAS) from the repositories' `updateinfo.xml`
//! (read by [`super::updateinfo`]): feed [`FEED`].
//!
//! One [`Record`] per `<update>`: id the ALAS id, aliases the `<reference type="cve">`
//! ids, severity Amazon's word as written (`critical`, `Important`: the severity module
//! reads it case-insensitively), summary the title without its `Amazon Linux 2 … - ALAS…:`
//! prefix. Each `<package>` is a fixed **binary** RPM (a `src` package is kept under its
//! own name too): one [`crate::Status::Fixed`] per package name at `[epoch:]version-release`
//! (arches collapse; should two arches carry different builds, the lowest is the fixed
//! version and the note names the others). The epoch attribute is part of the version
//! (`2:8.2.3512-1.amzn2022` for vim, `10:1.5.3-141.amzn2.5.3` for qemu-kvm): rpm orders
//! `2:…` above every epoch-less version.
//!
//! The data states only fixes: Amazon publishes no "not affected", "will not fix" or
//! unfixed-CVE statements in `updateinfo.xml`, so this importer produces no other status.
//!
//! Ecosystem ([`names::amazon`]), from the id's prefix `ALAS<release><topic>-YYYY-N`:
//! `ALAS-` → `Amazon Linux:1`, `ALAS2-` → `Amazon Linux:2`, `ALAS2022-`, `ALAS2023-`.
//! A topic names a separate repository: Amazon Linux 2's kernel extras
//! (`ALAS2KERNEL-5.15-…`) → `Amazon Linux:2 extras kernel-5.15` (the kernel's package
//! names are the core kernel's, so only a host running that kernel gets that
//! ecosystem); `LIVEPATCH` and AL2023's `NVIDIA` packages have names of their own and
//! stay in the release's ecosystem; any other AL2 extra (`ALAS2DOCKER-`, `ALAS2PHP8.0-`,
//! whose names can be the core's: php 8.0 vs core php 5.4) gets its own
//! `Amazon Linux:2 extras <topic>`, which no host is given yet (never a false match).
//! The packages' `.amznN` release tag must agree with the id (`ALAS2023-` packages are
//! `.amzn2023`); a disagreement rejects the advisory.
//!
//! Rejected (by id): an id that is not `ALAS…-YYYY-N…`, no package, a version rpm
//! cannot read, a release tag of another Amazon Linux.

use crate::ecosystem::{self, names};
use crate::{Record, Rejected};

use super::updateinfo::{Update, fixed_per_name};
use super::{bare_record, one_line};

/// Feed name of Amazon Linux's ALAS advisories.
pub const FEED: &str = "amazon-alas";

/// The record of one ALAS `<update>`; `Ok(None)` for an update that is not of type
/// `security` (none in Amazon's data, kept for safety).
pub fn parse_update(u: &Update) -> Result<Option<Record>, Rejected> {
    let reject = |reason: String| Rejected {
        id: u.id.clone(),
        reason,
    };
    if !u.kind.is_empty() && u.kind != "security" {
        return Ok(None);
    }
    let (release, extra) = release_of(&u.id).ok_or_else(|| {
        reject("not an ALAS id (ALAS[release][topic]-YYYY-NNN expected)".to_string())
    })?;
    let eco = names::amazon(&release, extra.as_deref());
    if u.packages.is_empty() {
        return Err(reject("no <package> in the pkglist".into()));
    }
    let scheme = ecosystem::rules(&eco)
        .map(|r| r.scheme)
        .ok_or_else(|| reject(format!("no version rules for {eco}")))?;
    for p in &u.packages {
        if let Some(tagged) = release_tag(&p.release) {
            if tagged != release {
                return Err(reject(format!(
                    "package {} has release {} of Amazon Linux {tagged}, but the id is of \
                     Amazon Linux {release}",
                    p.name, p.release
                )));
            }
        }
    }
    let affected = fixed_per_name(&eco, scheme, &u.packages).map_err(reject)?;
    let mut record = bare_record(u.id.clone(), u.updated.clone().or(u.issued.clone()));
    record.published = u.issued.clone();
    record.summary = summary(u);
    record.severity = Some(u.severity.clone()).filter(|s| !s.is_empty());
    record.aliases = u
        .references
        .iter()
        .filter(|r| r.kind.eq_ignore_ascii_case("cve") && !r.id.is_empty())
        .map(|r| r.id.clone())
        .collect();
    record.affected = affected;
    record.normalize();
    Ok(Some(record))
}

/// The release (`1`, `2`, `2022`, `2023`) and, for Amazon Linux 2's extras, the extra
/// of an ALAS id (see the module docs); `None` for an id of another shape.
pub fn release_of(id: &str) -> Option<(String, Option<String>)> {
    let rest = id.strip_prefix("ALAS")?;
    // the trailing -YYYY-N
    let (head, number) = rest.rsplit_once('-')?;
    let (head, year) = head.rsplit_once('-').unwrap_or(("", head));
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if !(year.len() == 4 && digits(year) && digits(number)) {
        return None;
    }
    let release: String = head.chars().take_while(char::is_ascii_digit).collect();
    let topic = head[release.len()..].to_ascii_lowercase();
    let release = if release.is_empty() {
        "1".to_string()
    } else {
        release
    };
    if !matches!(release.as_str(), "1" | "2" | "2022" | "2023") {
        return None;
    }
    let topic = topic.trim_matches('-');
    let extra = match (release.as_str(), topic) {
        (_, "" | "livepatch") => None,
        ("2", t) => Some(t.to_string()),
        // AL2023's topics (NVIDIA, ...) have package names of their own
        _ => None,
    };
    Some((release, extra))
}

/// The Amazon Linux release a package release names (`38.79.amzn2` → `2`,
/// `3.amzn2023.0.2` → `2023`, `1.18.amzn1` → `1`); `None` without an `.amznN` tag
/// (AL2023's NVIDIA packages).
fn release_tag(release: &str) -> Option<String> {
    let at = release.find(".amzn")?;
    let n: String = release[at + 5..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!n.is_empty()).then_some(n)
}

/// The title without its `Amazon Linux 2 2017.12 - ALAS2-2018-939: ` prefix.
fn summary(u: &Update) -> String {
    let title = u.title.trim();
    let text = title
        .find(&format!("{}: ", u.id))
        .map_or(title, |at| &title[at + u.id.len() + 2..]);
    one_line(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_and_extras_from_ids() {
        let r = |id: &str| release_of(id);
        let plain = |rel: &str| Some((rel.to_string(), None));
        assert_eq!(r("ALAS-2011-1"), plain("1"));
        assert_eq!(r("ALAS2-2018-939"), plain("2"));
        assert_eq!(r("ALAS2022-2021-001"), plain("2022"));
        assert_eq!(r("ALAS2023-2023-001"), plain("2023"));
        assert_eq!(r("ALAS2023LIVEPATCH-2023-001"), plain("2023"));
        assert_eq!(r("ALAS2023NVIDIA-2025-001"), plain("2023"));
        assert_eq!(r("ALAS2LIVEPATCH-2020-001"), plain("2"));
        assert_eq!(
            r("ALAS2KERNEL-5.15-2022-001"),
            Some(("2".into(), Some("kernel-5.15".into())))
        );
        assert_eq!(
            r("ALAS2DOCKER-2023-033"),
            Some(("2".into(), Some("docker".into())))
        );
        for bad in [
            "ALAS2-2018",
            "RHSA-2018-1",
            "ALAS2-18-1",
            "ALAS7-2018-1",
            "ALAS2-2018-x",
        ] {
            assert_eq!(r(bad), None, "{bad}");
        }
        assert_eq!(release_tag("3.amzn2023.0.2").as_deref(), Some("2023"));
        assert_eq!(release_tag("141.amzn2.5.3").as_deref(), Some("2"));
        assert_eq!(release_tag("1"), None);
    }
}
