#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = patchctl_agent::pkgmgr::apk::parse_simulation(s).transaction();
        let _ = patchctl_agent::pkgmgr::apk::error_reason(s, s);
    }
});
