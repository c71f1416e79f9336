//! JSON bodies: any bytes parse to arguments or to an error, never a panic
//! (nesting is capped).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = rampart_waf::body::json::parse(data);
});
