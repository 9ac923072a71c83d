#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let parsed = patchctl_agent::pkgmgr::apk::parse_upgradable(s);
        let _ = parsed.updates(|a, b| Some(a.cmp(b)));
        let _ = patchctl_agent::pkgmgr::apk::split_pkgver(s);
    }
});
