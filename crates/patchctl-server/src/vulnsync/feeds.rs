//! The feeds synced when none are configured
//! ([`DEFAULT_FEEDS`]).

use crate::settings::Feed;
pub use crate::settings::FeedKind;

/// The official feeds synced when `vuln_feeds` is empty: `(name, kind, url)`.
pub const DEFAULT_FEEDS: [(&str, FeedKind, &str); 17] = [
    (
        "osv-almalinux",
        FeedKind::File,
        "https://osv-vulnerabilities.storage.googleapis.com/AlmaLinux/all.zip",
    ),
    (
        "osv-rocky",
        FeedKind::File,
        "https://osv-vulnerabilities.storage.googleapis.com/Rocky%20Linux/all.zip",
    ),
    (
        "osv-ubuntu",
        FeedKind::File,
        "https://osv-vulnerabilities.storage.googleapis.com/Ubuntu/all.zip",
    ),
    (
        "osv-alpine",
        FeedKind::File,
        "https://osv-vulnerabilities.storage.googleapis.com/Alpine/all.zip",
    ),
    (
        "debian-tracker",
        FeedKind::File,
        "https://security-tracker.debian.org/tracker/data/json",
    ),
    (
        "osv-debian",
        FeedKind::File,
        "https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip",
    ),
    (
        "redhat-vex",
        FeedKind::RedhatVexBulk,
        "https://security.access.redhat.com/data/csaf/v2/vex/archive_latest.txt",
    ),
    (
        "suse-csaf-vex",
        FeedKind::File,
        "https://ftp.suse.com/pub/projects/security/csaf-vex.tar.bz2",
    ),
    (
        "amazon-linux-2",
        FeedKind::Repomd,
        "https://cdn.amazonlinux.com/2/core/latest/x86_64/mirror.list",
    ),
    (
        "amazon-linux-2-kernel-5.10",
        FeedKind::Repomd,
        "https://cdn.amazonlinux.com/2/extras/kernel-5.10/latest/x86_64/mirror.list",
    ),
    (
        "amazon-linux-2-kernel-5.15",
        FeedKind::Repomd,
        "https://cdn.amazonlinux.com/2/extras/kernel-5.15/latest/x86_64/mirror.list",
    ),
    (
        "amazon-linux-2023",
        FeedKind::Repomd,
        "https://cdn.amazonlinux.com/al2023/core/mirrors/latest/x86_64/mirror.list",
    ),
    (
        "fedora-43-updates",
        FeedKind::Repomd,
        "https://dl.fedoraproject.org/pub/fedora/linux/updates/43/Everything/x86_64/repodata/repomd.xml",
    ),
    (
        "fedora-44-updates",
        FeedKind::Repomd,
        "https://dl.fedoraproject.org/pub/fedora/linux/updates/44/Everything/x86_64/repodata/repomd.xml",
    ),
    (
        "fedora-45-updates",
        FeedKind::Repomd,
        "https://dl.fedoraproject.org/pub/fedora/linux/updates/45/Everything/x86_64/repodata/repomd.xml",
    ),
    (
        "arch",
        FeedKind::File,
        "https://security.archlinux.org/all.json",
    ),
    (
        "cisa-kev",
        FeedKind::File,
        "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json",
    ),
];

/// [`DEFAULT_FEEDS`] as [`Feed`]s.
pub fn default_feeds() -> Vec<Feed> {
    DEFAULT_FEEDS
        .iter()
        .map(|&(name, kind, url)| Feed {
            name: name.to_owned(),
            url: url.to_owned(),
            kind,
        })
        .collect()
}

/// The feeds to sync: `configured` (the `vuln_feeds` setting) when not empty, else
/// [`DEFAULT_FEEDS`].
pub fn effective_feeds(configured: &[Feed]) -> Vec<Feed> {
    if configured.is_empty() {
        default_feeds()
    } else {
        configured.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_cover_every_family_and_the_kev_catalog() {
        let names: Vec<&str> = DEFAULT_FEEDS.iter().map(|f| f.0).collect();
        for family in [
            "almalinux",
            "rocky",
            "ubuntu",
            "alpine",
            "debian",
            "redhat",
            "suse",
            "amazon-linux-2",
            "amazon-linux-2023",
            "fedora",
            "arch",
            "cisa-kev",
        ] {
            assert!(
                names.iter().any(|n| n.contains(family)),
                "no default feed for {family}: {names:?}"
            );
        }
        let kind_of = |n: &str| DEFAULT_FEEDS.iter().find(|f| f.0 == n).map(|f| f.1);
        assert_eq!(kind_of("redhat-vex"), Some(FeedKind::RedhatVexBulk));
        assert_eq!(kind_of("amazon-linux-2023"), Some(FeedKind::Repomd));
        assert!(DEFAULT_FEEDS.iter().all(|f| f.2.starts_with("https://")));
        // a configured list replaces the defaults
        let mine = [Feed {
            name: "mirror".into(),
            url: "https://mirror.example/all.zip".into(),
            kind: FeedKind::File,
        }];
        assert_eq!(effective_feeds(&mine).len(), 1);
        assert_eq!(effective_feeds(&[]).len(), DEFAULT_FEEDS.len());
    }
}
