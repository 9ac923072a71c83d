#![no_main]
// The offline inventory readers of `patchctl vulns check` and the CVSS vector parser:
// untrusted files and feed strings, never a panic.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = patchctl_vuln::inventory::parse_dpkg_status(&text);
    let _ = patchctl_vuln::inventory::parse_rpm_qa(&text);
    let _ = patchctl_vuln::inventory::parse_apk_installed(&text);
    let _ = patchctl_vuln::inventory::parse_scan_print(&text);
    let _ = patchctl_vuln::inventory::parse_os_release(&text);
    let _ = patchctl_vuln::cvss::base_score(&text);
    let _ = patchctl_vuln::severity::from_distro(&text);
});
