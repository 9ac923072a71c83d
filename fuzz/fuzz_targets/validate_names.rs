#![no_main]
// The validators that stand between the network and a package manager's argv: whatever
// they accept must be argv-safe, for every family.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        for family in ["apt", "dnf", "yum", "zypper", "apk", "pacman"] {
            if patchctl_proto::validate::family_name(family, s).is_ok() {
                assert!(patchctl_proto::validate::PackageName::parse(s).is_ok());
                assert!(!s.starts_with('-'));
            }
        }
        if let Ok(v) = patchctl_proto::validate::PackageVersion::parse(s) {
            assert!(!v.as_str().starts_with('-'));
            assert!(!v.as_str().contains(|c: char| c.is_whitespace() || c == '\0'));
        }
    }
});
