#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let name = s.lines().next().and_then(|l| l.strip_suffix(" policy:")).unwrap_or("x");
        let p = patchctl_agent::pkgmgr::apk::parse_policy(s, name);
        let _ = p.candidate(|a, b| Some(a.cmp(b)));
    }
});
