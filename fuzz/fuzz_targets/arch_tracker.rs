#![no_main]
// Any JSON as Arch security tracker data and as Fedora Bodhi updates: the parsers never
// panic, and a record is always an `AVG-` group resp. has an id.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let arch = patchctl_vuln::import::arch::parse("fuzz", &v);
    assert!(arch.records.iter().all(|r| r.id.starts_with("AVG-")));
    let _ = patchctl_vuln::import::arch::looks_like(&v);
    let bodhi = patchctl_vuln::import::fedora::parse_bodhi("fuzz", &v);
    assert!(bodhi.records.iter().all(|r| !r.id.is_empty()));
    let _ = patchctl_vuln::import::fedora::looks_like_bodhi(&v);
    let _ = patchctl_vuln::import::fedora::looks_like_bodhi_releases(&v);
});
