#![no_main]
// The sync pointers the platform's feed sync reads from the network (Red Hat's
// archive_latest.txt and changes.csv, a repository's repomd.xml, Amazon's mirror.list):
// parsing never panics, and every path a parser accepts stays below the feed's
// directory (no `..`, not absolute, no scheme).
use patchctl_server::vulnsync::pointers;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(name) = pointers::archive_latest(data) {
        assert!(!name.contains('/') && !name.starts_with('.'));
        let _ = pointers::archive_date(&name);
    }
    if let Ok((changes, _)) = pointers::changes_csv(data) {
        for c in changes {
            assert!(pointers::relative_path(&c.path).is_ok());
            assert!(!c.path.starts_with('/') && !c.path.split('/').any(|s| s == ".."));
        }
    }
    if let Ok(base) = pointers::mirror_list(data) {
        assert!(base.starts_with("https://"));
    }
    if let Ok(href) = pointers::repomd_updateinfo(data) {
        if let Ok(url) = pointers::join("https://mirror.example/repo/", &href) {
            assert!(url.starts_with("https://mirror.example/repo/"));
            assert!(!url["https://".len()..].contains("/../"));
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = pointers::repository_base(text);
        let _ = pointers::directory_of(text);
    }
});
