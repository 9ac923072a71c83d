#![no_main]
// Any bytes as a repository `updateinfo.xml` (Amazon ALAS, Fedora): the shared reader,
// the vendor importers behind it, and the import front door never panic. Every record
// they produce has an id, and every statement a fixed version.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(feeds) = patchctl_vuln::import::updateinfo::parse("fuzz", text) {
            for (_, parsed) in feeds {
                for record in parsed.records {
                    assert!(!record.id.is_empty());
                    assert!(
                        record
                            .affected
                            .iter()
                            .all(|a| a.status.fixed_version().is_some())
                    );
                }
            }
        }
    }
    let _ = patchctl_vuln::import::parse_bytes("updateinfo.xml", data);
});
