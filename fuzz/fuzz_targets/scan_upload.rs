#![no_main]
// A scan upload as the platform receives it: parsing never panics, and applying a delta
// either fails cleanly or yields a canonical state.
use patchctl_proto::scan::{ScanBody, ScanState, ScanUpload};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(upload) = serde_json::from_slice::<ScanUpload>(data) else {
        return;
    };
    if let ScanBody::Delta { system, added, removed, updates, .. } = &upload.body {
        let base = ScanState::default();
        if let Ok(next) = base.apply(system.as_ref(), added, removed, updates.as_ref()) {
            let mut again = next.clone();
            again.canonicalize();
            assert_eq!(again.digest(), next.digest());
        }
    }
});
