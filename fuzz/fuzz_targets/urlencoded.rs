//! URL-encoded bodies and query strings: any bytes split into arguments
//! without a panic, and every argument accounted for.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let pairs = rampart_waf::request::form_pairs(data);
    assert!(pairs.len() <= data.len() / 2 + 1);
});
