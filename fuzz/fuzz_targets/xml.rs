//! XML bodies: any bytes parse to text and attributes or to an error.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = rampart_waf::body::xml::parse(data);
});
