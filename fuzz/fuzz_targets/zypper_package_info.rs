#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = patchctl_agent::pkgmgr::zypper::parse_package_info(s);
    }
});
