#![no_main]
// The certificate reader of `patchctl-agent doctor`: the chain a server presents is
// read before (and whether or not) it is trusted.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = patchctl_net::inspect::cert_info(data);
});
