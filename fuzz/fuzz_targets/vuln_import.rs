#![no_main]
// One downloaded feed file as `patchctl vulndb sync` hands it to the importers (zip,
// JSON or YAML, decided by content): parsing never panics, whatever the bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = patchctl_vuln::import::parse_bytes("fuzz", data);
});
