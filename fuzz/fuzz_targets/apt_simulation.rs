#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let sim = patchctl_agent::pkgmgr::apt::parse_simulation(s);
        let _ = sim.transaction();
        let _ = sim.incomplete();
        // The same text as apt-get update's output.
        let _ = patchctl_agent::pkgmgr::apt::update_failures(s, s);
    }
});
