#![no_main]
//! A release bundle as the agent downloads it (and the platform takes it at publishing):
//! any bytes are parsed and verified against the test root, never panicking; a release
//! version string is parsed and compared both ways.
use std::sync::OnceLock;

use patchctl_release::{PublicKey, ReleaseBundle, ReleaseVersion, TrustedRoots};

fn roots() -> &'static TrustedRoots {
    static R: OnceLock<TrustedRoots> = OnceLock::new();
    R.get_or_init(|| {
        let text = include_str!("../../crates/patchctl-release/testdata/test-root.pub");
        TrustedRoots::new(PublicKey::parse_file(text).unwrap())
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let now = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap();
    if let Ok(bundle) = serde_json::from_slice::<ReleaseBundle>(data) {
        if let Ok(v) = patchctl_release::verify_bundle(roots(), &bundle, now) {
            let _ = v.check_artifact(data);
        }
        let _ = patchctl_release::verify_unrooted(&bundle, now);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let half = s.len() / 2;
        if let (Some(a), Some(b)) = (s.get(..half), s.get(half..)) {
            if let (Ok(x), Ok(y)) = (ReleaseVersion::parse(a), ReleaseVersion::parse(b)) {
                assert_eq!(x.cmp(&y), y.cmp(&x).reverse());
            }
        }
    }
});
